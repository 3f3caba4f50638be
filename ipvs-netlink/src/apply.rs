//! Declarative reconcile: make the kernel's table equal to a desired set of services and
//! destinations with the fewest operations.
//!
//! [`plan`] is pure (current state in, operations out); [`crate::Client::apply`] reads the
//! current state, plans, and sends the plan pipelined on one socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::error::Op;
use crate::model::{Dest, Service, ServiceKey};
use crate::wire::{CmdAttr, IpvsCmd, IpvsMessage};

/// A service and the destinations it should have.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    /// The service.
    pub service: Service,
    /// Its destinations (at most one per address and port; a later duplicate wins).
    pub dests: Vec<Dest>,
}

impl DesiredService {
    /// A service with its destinations.
    #[must_use]
    pub const fn new(service: Service, dests: Vec<Dest>) -> Self {
        Self { service, dests }
    }
}

/// One change made to the kernel.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A service was added.
    AddService(ServiceKey),
    /// A service's options were edited in place.
    EditService(ServiceKey),
    /// A service (and with it its destinations) was deleted.
    DeleteService(ServiceKey),
    /// A destination was added.
    AddDest(ServiceKey, SocketAddr),
    /// A destination was edited in place.
    EditDest(ServiceKey, SocketAddr),
    /// A destination was removed.
    DeleteDest(ServiceKey, SocketAddr),
}

/// What [`crate::Client::apply`] changed: every operation sent, in order.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// The changes, in the order they were sent (adds, edits, then removals).
    pub changes: Vec<Change>,
}

impl ApplyReport {
    /// Number of netlink operations sent (one per change).
    #[must_use]
    pub fn operations(&self) -> usize {
        self.changes.len()
    }
    /// Whether nothing had to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// One planned operation: the change, the op for error reporting, the request.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) change: Change,
    #[cfg_attr(
        not(feature = "client"),
        allow(dead_code, reason = "read by Client::apply")
    )]
    pub(crate) op: Op,
    pub(crate) msg: IpvsMessage,
}

/// Compute the operations that turn `current` into `desired`: adds first (a new service
/// before its destinations), then in-place edits, then destination removals, then service
/// removals. Nothing is sent for what already matches; there is never a flush.
#[must_use]
pub fn plan(
    current: &[(Service, Vec<Dest>)],
    desired: &[DesiredService],
) -> Vec<(Change, IpvsMessage)> {
    plan_ops(current, desired)
        .into_iter()
        .map(|p| (p.change, p.msg))
        .collect()
}

pub(crate) fn plan_ops(
    current: &[(Service, Vec<Dest>)],
    desired: &[DesiredService],
) -> Vec<Planned> {
    let cur: BTreeMap<ServiceKey, (&Service, BTreeMap<SocketAddr, &Dest>)> = current
        .iter()
        .map(|(s, ds)| (*s.key(), (s, ds.iter().map(|d| (d.addr(), d)).collect())))
        .collect();
    let want: BTreeMap<ServiceKey, (&Service, BTreeMap<SocketAddr, &Dest>)> = desired
        .iter()
        .map(|d| {
            (
                *d.service.key(),
                (&d.service, d.dests.iter().map(|x| (x.addr(), x)).collect()),
            )
        })
        .collect();

    let mut adds = Vec::new();
    let mut edits = Vec::new();
    let mut dest_dels = Vec::new();
    let mut svc_dels = Vec::new();

    for (key, (svc, dests)) in &want {
        let svc_attr = || CmdAttr::Service(key.attrs());
        match cur.get(key) {
            None => {
                adds.push(Planned {
                    change: Change::AddService(*key),
                    op: Op::AddService,
                    msg: IpvsMessage::new(IpvsCmd::NewService, vec![CmdAttr::Service(svc.attrs())]),
                });
                for (addr, d) in dests {
                    adds.push(Planned {
                        change: Change::AddDest(*key, *addr),
                        op: Op::AddDest,
                        msg: IpvsMessage::new(
                            IpvsCmd::NewDest,
                            vec![svc_attr(), CmdAttr::Dest(d.attrs())],
                        ),
                    });
                }
            }
            Some((cur_svc, cur_dests)) => {
                if cur_svc != svc {
                    edits.push(Planned {
                        change: Change::EditService(*key),
                        op: Op::EditService,
                        msg: IpvsMessage::new(
                            IpvsCmd::SetService,
                            vec![CmdAttr::Service(svc.attrs())],
                        ),
                    });
                }
                for (addr, d) in dests {
                    match cur_dests.get(addr) {
                        None => adds.push(Planned {
                            change: Change::AddDest(*key, *addr),
                            op: Op::AddDest,
                            msg: IpvsMessage::new(
                                IpvsCmd::NewDest,
                                vec![svc_attr(), CmdAttr::Dest(d.attrs())],
                            ),
                        }),
                        Some(c) if c != d => edits.push(Planned {
                            change: Change::EditDest(*key, *addr),
                            op: Op::EditDest,
                            msg: IpvsMessage::new(
                                IpvsCmd::SetDest,
                                vec![svc_attr(), CmdAttr::Dest(d.attrs())],
                            ),
                        }),
                        Some(_) => {}
                    }
                }
                for (addr, d) in cur_dests {
                    if !dests.contains_key(addr) {
                        dest_dels.push(Planned {
                            change: Change::DeleteDest(*key, *addr),
                            op: Op::DeleteDest,
                            msg: IpvsMessage::new(
                                IpvsCmd::DelDest,
                                vec![svc_attr(), CmdAttr::Dest(d.key_attrs())],
                            ),
                        });
                    }
                }
            }
        }
    }
    for key in cur.keys() {
        if !want.contains_key(key) {
            svc_dels.push(Planned {
                change: Change::DeleteService(*key),
                op: Op::DeleteService,
                msg: IpvsMessage::new(IpvsCmd::DelService, vec![CmdAttr::Service(key.attrs())]),
            });
        }
    }
    adds.extend(edits);
    adds.extend(dest_dels);
    adds.extend(svc_dels);
    adds
}
