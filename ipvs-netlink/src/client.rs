//! The blocking client: a `NETLINK_GENERIC` socket (netlink-sys), the IPVS family id, and
//! one method per ipvsadm operation. All the byte work is in [`crate::exchange`].

use std::net::SocketAddr;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_GENERIC};

use crate::error::{IpvsError, Op};
use crate::exchange::{self, Event};
use crate::model::{
    DaemonState, Dest, DestEntry, Info, Service, ServiceEntry, ServiceKey, SyncDaemon, Timeouts,
};
use crate::wire::consts as c;
use crate::wire::{CmdAttr, DaemonAttr, DestAttr, IpvsCmd, IpvsMessage};

/// `MSG_TRUNC` (linux/socket.h): make `recv` return the real datagram length.
const MSG_TRUNC: i32 = 0x20;
/// Receive buffer: larger than any datagram the kernel builds for a dump (32 KiB).
const RX_BUF: usize = 256 * 1024;
/// Requests in flight at once in [`Client::batch`]; their ACKs must fit the socket's
/// receive buffer (about 1 KiB of kernel memory each).
const WINDOW: usize = 128;
/// How long a reply may take before [`IpvsError::Timeout`] (see [`Client::set_timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking IPVS client over generic netlink. Needs `CAP_NET_ADMIN` for changes.
///
/// Each method names the ipvsadm flag it corresponds to.
#[derive(Debug)]
pub struct Client {
    sock: Socket,
    family: u16,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl Client {
    /// Open a socket and resolve the "IPVS" family.
    ///
    /// Fails with [`IpvsError::FamilyNotFound`] when `ip_vs` is not loaded, and
    /// [`IpvsError::Io`] when the socket cannot be opened.
    pub fn new() -> Result<Self, IpvsError> {
        let mut client = Self::open(0, Some(DEFAULT_TIMEOUT))?;
        client.family = client.resolve_family()?;
        Ok(client)
    }

    /// Open a socket for an already resolved `family` (0: not yet resolved).
    fn open(family: u16, timeout: Option<Duration>) -> Result<Self, IpvsError> {
        let io = |source| IpvsError::Io {
            op: Op::ResolveFamily,
            source,
        };
        let mut sock = Socket::new(NETLINK_GENERIC).map_err(io)?;
        sock.bind_auto().map_err(io)?;
        sock.connect(&NlAddr::new(0, 0)).map_err(io)?;
        // Best effort: a bigger receive buffer lets more ACKs queue; capped by rmem_max.
        let _ = sock.set_rx_buf_sz(8 * 1024 * 1024);
        let _ = sock.set_cap_ack(true);
        socket2::SockRef::from(&sock)
            .set_read_timeout(timeout)
            .map_err(io)?;
        Ok(Self {
            sock,
            family,
            seq: 1,
            rx: Vec::with_capacity(RX_BUF),
            tx: Vec::with_capacity(64 * 1024),
        })
    }

    /// How long to wait for each reply datagram (`None`: forever); default
    /// [`DEFAULT_TIMEOUT`]. A kernel that does not answer in time gives
    /// [`IpvsError::Timeout`] instead of blocking the caller for ever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), IpvsError> {
        socket2::SockRef::from(&self.sock)
            .set_read_timeout(timeout)
            .map_err(|source| IpvsError::Io {
                op: Op::ResolveFamily,
                source,
            })
    }

    /// The generic netlink family id the kernel gave "IPVS".
    #[must_use]
    pub const fn family_id(&self) -> u16 {
        self.family
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send_tx(&mut self, op: Op) -> Result<(), IpvsError> {
        let n = self
            .sock
            .send(&self.tx, 0)
            .map_err(|source| IpvsError::Io { op, source })?;
        if n != self.tx.len() {
            return Err(IpvsError::Protocol {
                op,
                what: "short send on the netlink socket",
            });
        }
        Ok(())
    }

    fn recv_events(&mut self, op: Op) -> Result<Vec<Event>, IpvsError> {
        self.rx.clear();
        let n = self
            .sock
            .recv(&mut self.rx, MSG_TRUNC)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    IpvsError::Timeout { op }
                }
                _ => IpvsError::Io { op, source },
            })?;
        if n > self.rx.len() {
            return Err(IpvsError::Protocol {
                op,
                what: "datagram larger than the receive buffer",
            });
        }
        exchange::classify(&self.rx, self.family).map_err(|source| IpvsError::Wire { op, source })
    }

    fn resolve_family(&mut self) -> Result<u16, IpvsError> {
        let op = Op::ResolveFamily;
        let seq = self.next_seq();
        self.tx.clear();
        exchange::encode_get_family(&mut self.tx, seq, c::IPVS_GENL_NAME)
            .map_err(|source| IpvsError::Wire { op, source })?;
        self.send_tx(op)?;
        let mut id = None;
        loop {
            for ev in self.recv_events(op)? {
                match ev {
                    Event::OtherFamily { seq: s, msg } if s == seq => {
                        id = exchange::family_id_of(&msg)
                            .map_err(|source| IpvsError::Wire { op, source })?;
                    }
                    Event::Error { seq: s, errno } if s == seq => {
                        return Err(if errno == crate::error::errno::ENOENT {
                            IpvsError::FamilyNotFound
                        } else {
                            IpvsError::kernel(op, errno)
                        });
                    }
                    Event::Ack { seq: s } if s == seq => {
                        return id.ok_or(IpvsError::Protocol {
                            op,
                            what: "no CTRL_ATTR_FAMILY_ID in the controller's reply",
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Send one request and collect its data replies until ACK / error / DONE.
    fn request(
        &mut self,
        op: Op,
        msg: &IpvsMessage,
        dump: bool,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let seq = self.next_seq();
        let flags = if dump { c::NLM_F_DUMP } else { c::NLM_F_ACK };
        self.tx.clear();
        exchange::encode_request(&mut self.tx, self.family, flags, seq, msg)
            .map_err(|source| IpvsError::Wire { op, source })?;
        self.send_tx(op)?;
        let mut out = Vec::new();
        loop {
            for ev in self.recv_events(op)? {
                match ev {
                    Event::Data { seq: s, msg } if s == seq => out.push(msg),
                    Event::Ack { seq: s } if s == seq => return Ok(out),
                    Event::Done { seq: s, errno } if s == seq => {
                        return if errno == 0 {
                            Ok(out)
                        } else {
                            Err(IpvsError::kernel(op, errno))
                        };
                    }
                    Event::Error { seq: s, errno } if s == seq => {
                        return Err(IpvsError::kernel(op, errno));
                    }
                    _ => {}
                }
            }
        }
    }

    fn command(&mut self, op: Op, cmd: IpvsCmd, attrs: Vec<CmdAttr>) -> Result<(), IpvsError> {
        self.request(op, &IpvsMessage::new(cmd, attrs), false)
            .map(drop)
    }

    /// Send many requests pipelined on this socket (up to 128 in flight, one `send` per
    /// window) and collect every ACK. Returns one result per request, in order; the outer
    /// error is for socket or protocol failures.
    pub fn batch(
        &mut self,
        requests: &[(Op, IpvsMessage)],
    ) -> Result<Vec<Result<(), IpvsError>>, IpvsError> {
        let mut results = Vec::with_capacity(requests.len());
        for window in requests.chunks(WINDOW) {
            let Some(&(first_op, _)) = window.first() else {
                continue;
            };
            self.tx.clear();
            let first_seq = self.seq.wrapping_add(1);
            for (op, msg) in window {
                let seq = self.next_seq();
                exchange::encode_request(&mut self.tx, self.family, c::NLM_F_ACK, seq, msg)
                    .map_err(|source| IpvsError::Wire { op: *op, source })?;
            }
            self.send_tx(first_op)?;
            let mut slots: Vec<Option<Result<(), IpvsError>>> =
                (0..window.len()).map(|_| None).collect();
            let mut pending = window.len();
            while pending > 0 {
                for ev in self.recv_events(first_op)? {
                    let (seq, res) = match ev {
                        Event::Ack { seq } => (seq, Ok(())),
                        Event::Error { seq, errno } => (seq, Err(errno)),
                        _ => continue,
                    };
                    let idx = usize::try_from(seq.wrapping_sub(first_seq)).unwrap_or(usize::MAX);
                    if let (Some(slot @ None), Some((op, _))) =
                        (slots.get_mut(idx), window.get(idx))
                    {
                        *slot = Some(res.map_err(|errno| IpvsError::kernel(*op, errno)));
                        pending -= 1;
                    }
                }
            }
            results.extend(slots.into_iter().map(|s| s.unwrap_or(Ok(()))));
        }
        Ok(results)
    }

    // ---- services ----

    /// All services (`ipvsadm -Ln`), with their counters.
    pub fn services(&mut self) -> Result<Vec<ServiceEntry>, IpvsError> {
        let op = Op::ListServices;
        let replies = self.request(op, &IpvsMessage::new(IpvsCmd::GetService, vec![]), true)?;
        replies.iter().map(|m| service_of(op, m)).collect()
    }

    /// One service (`ipvsadm -Ln -t ADDR:PORT`); [`crate::KernelError::NoSuchService`] if absent.
    pub fn service(&mut self, key: &ServiceKey) -> Result<ServiceEntry, IpvsError> {
        let op = Op::GetService;
        let msg = IpvsMessage::new(IpvsCmd::GetService, vec![CmdAttr::Service(key.attrs())]);
        let replies = self.request(op, &msg, false)?;
        let first = replies.first().ok_or(IpvsError::Protocol {
            op,
            what: "no service in the reply",
        })?;
        service_of(op, first)
    }

    /// Add a service (`ipvsadm -A`).
    pub fn add_service(&mut self, svc: &Service) -> Result<(), IpvsError> {
        self.command(
            Op::AddService,
            IpvsCmd::NewService,
            vec![CmdAttr::Service(svc.attrs())],
        )
    }

    /// Change a service's scheduler, flags, persistence or engine (`ipvsadm -E`).
    pub fn edit_service(&mut self, svc: &Service) -> Result<(), IpvsError> {
        self.command(
            Op::EditService,
            IpvsCmd::SetService,
            vec![CmdAttr::Service(svc.attrs())],
        )
    }

    /// Delete a service and its destinations (`ipvsadm -D`).
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.command(
            Op::DeleteService,
            IpvsCmd::DelService,
            vec![CmdAttr::Service(key.attrs())],
        )
    }

    // ---- destinations ----

    /// The destinations of a service (`ipvsadm -Ln -t ADDR:PORT`).
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<DestEntry>, IpvsError> {
        let op = Op::ListDests;
        let msg = IpvsMessage::new(IpvsCmd::GetDest, vec![CmdAttr::Service(key.attrs())]);
        let replies = self.request(op, &msg, true)?;
        let family = key.family();
        replies
            .iter()
            .map(|m| {
                let attrs = m
                    .attrs
                    .iter()
                    .find_map(|a| match a {
                        CmdAttr::Dest(d) => Some(d),
                        _ => None,
                    })
                    .ok_or(IpvsError::Protocol {
                        op,
                        what: "destination reply without IPVS_CMD_ATTR_DEST",
                    })?;
                Ok(DestEntry::from_attrs(attrs, family)?)
            })
            .collect()
    }

    /// Add a destination to a service (`ipvsadm -a`).
    pub fn add_dest(&mut self, key: &ServiceKey, dest: &Dest) -> Result<(), IpvsError> {
        self.command(Op::AddDest, IpvsCmd::NewDest, dest_attrs(key, dest.attrs()))
    }

    /// Change a destination's method, weight or thresholds (`ipvsadm -e`).
    pub fn edit_dest(&mut self, key: &ServiceKey, dest: &Dest) -> Result<(), IpvsError> {
        self.command(
            Op::EditDest,
            IpvsCmd::SetDest,
            dest_attrs(key, dest.attrs()),
        )
    }

    /// Remove a destination (`ipvsadm -d`).
    pub fn delete_dest(&mut self, key: &ServiceKey, addr: SocketAddr) -> Result<(), IpvsError> {
        let attrs = Dest::new(addr, crate::ForwardMethod::Masq)?.key_attrs();
        self.command(Op::DeleteDest, IpvsCmd::DelDest, dest_attrs(key, attrs))
    }

    // ---- table-wide ----

    /// Delete every service (`ipvsadm -C`).
    pub fn flush(&mut self) -> Result<(), IpvsError> {
        self.command(Op::Flush, IpvsCmd::Flush, vec![])
    }

    /// Zero the counters of one service, or of all when `None` (`ipvsadm -Z [-t …]`).
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let attrs = key
            .map(|k| vec![CmdAttr::Service(k.attrs())])
            .unwrap_or_default();
        self.command(Op::Zero, IpvsCmd::Zero, attrs)
    }

    /// The connection timeouts (`ipvsadm -L --timeout`).
    pub fn timeouts(&mut self) -> Result<Timeouts, IpvsError> {
        let op = Op::GetTimeouts;
        let replies = self.request(op, &IpvsMessage::new(IpvsCmd::GetConfig, vec![]), false)?;
        let m = replies.first().ok_or(IpvsError::Protocol {
            op,
            what: "no timeouts in the reply",
        })?;
        Ok(Timeouts::from_attrs(&m.attrs))
    }

    /// Set the connection timeouts (`ipvsadm --set TCP TCPFIN UDP`); 0 keeps a value.
    pub fn set_timeouts(&mut self, t: Timeouts) -> Result<(), IpvsError> {
        self.command(Op::SetTimeouts, IpvsCmd::SetConfig, t.attrs())
    }

    /// Version and connection table size (the `IP Virtual Server version` line of `-L`).
    pub fn info(&mut self) -> Result<Info, IpvsError> {
        let op = Op::Info;
        let replies = self.request(op, &IpvsMessage::new(IpvsCmd::GetInfo, vec![]), false)?;
        let m = replies.first().ok_or(IpvsError::Protocol {
            op,
            what: "no info in the reply",
        })?;
        Ok(Info::from_attrs(&m.attrs))
    }

    // ---- sync daemons ----

    /// Start a sync daemon (`ipvsadm --start-daemon`).
    pub fn start_daemon(&mut self, d: &SyncDaemon) -> Result<(), IpvsError> {
        self.command(
            Op::StartDaemon,
            IpvsCmd::NewDaemon,
            vec![CmdAttr::Daemon(d.attrs())],
        )
    }

    /// Stop the master or backup sync daemon (`ipvsadm --stop-daemon`).
    ///
    /// The kernel can stop a daemon without answering: when the daemon's kernel thread has
    /// not run yet (a stop right after the start, common on a single busy CPU),
    /// `kthread_stop` returns `-EINTR`, `stop_sync_thread` passes that on, and
    /// `netlink_rcv_skb` sends no ACK for `-EINTR` (it reserves that value for "a dump
    /// started"), so a client waiting for the ACK waits for ever. So the request goes out together with a
    /// `GET_DAEMON` dump on the same socket: the kernel handles both in order, and a dump
    /// that arrives with no answer to the stop before it means the stop was swallowed; the
    /// dump then shows whether the daemon is gone (success) or not
    /// ([`IpvsError::Protocol`]).
    pub fn stop_daemon(&mut self, state: DaemonState) -> Result<(), IpvsError> {
        let op = Op::StopDaemon;
        let bits = match state {
            DaemonState::Master => c::IP_VS_STATE_MASTER,
            DaemonState::Backup => c::IP_VS_STATE_BACKUP,
        };
        let stop = IpvsMessage::new(
            IpvsCmd::DelDaemon,
            vec![CmdAttr::Daemon(vec![DaemonAttr::State(bits)])],
        );
        let list = IpvsMessage::new(IpvsCmd::GetDaemon, vec![]);
        let stop_seq = self.next_seq();
        let list_seq = self.next_seq();
        self.tx.clear();
        exchange::encode_request(&mut self.tx, self.family, c::NLM_F_ACK, stop_seq, &stop)
            .map_err(|source| IpvsError::Wire { op, source })?;
        exchange::encode_request(&mut self.tx, self.family, c::NLM_F_DUMP, list_seq, &list)
            .map_err(|source| IpvsError::Wire { op, source })?;
        self.send_tx(op)?;
        let mut answer: Option<Result<(), IpvsError>> = None;
        let mut still_running = false;
        loop {
            for ev in self.recv_events(op)? {
                match ev {
                    Event::Ack { seq } if seq == stop_seq => answer = Some(Ok(())),
                    Event::Error { seq, errno } if seq == stop_seq => {
                        answer = Some(Err(IpvsError::kernel(op, errno)));
                    }
                    Event::Data { seq, msg } if seq == list_seq => {
                        for a in &msg.attrs {
                            if let CmdAttr::Daemon(d) = a
                                && SyncDaemon::from_attrs(d)?.state == state
                            {
                                still_running = true;
                            }
                        }
                    }
                    Event::Error { seq, errno } if seq == list_seq => {
                        return answer.unwrap_or(Err(IpvsError::kernel(Op::ListDaemons, errno)));
                    }
                    Event::Done { seq, .. } if seq == list_seq => {
                        return answer.unwrap_or(if still_running {
                            Err(IpvsError::Protocol {
                                op,
                                what: "the kernel did not answer the stop and the daemon still runs",
                            })
                        } else {
                            Ok(())
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// The running sync daemons (`ipvsadm -L --daemon`).
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, IpvsError> {
        let op = Op::ListDaemons;
        let replies = self.request(op, &IpvsMessage::new(IpvsCmd::GetDaemon, vec![]), true)?;
        let mut out = Vec::new();
        for m in &replies {
            for a in &m.attrs {
                if let CmdAttr::Daemon(d) = a {
                    out.push(SyncDaemon::from_attrs(d)?);
                }
            }
        }
        Ok(out)
    }
}

fn service_of(op: Op, m: &IpvsMessage) -> Result<ServiceEntry, IpvsError> {
    let attrs = m
        .attrs
        .iter()
        .find_map(|a| match a {
            CmdAttr::Service(s) => Some(s),
            _ => None,
        })
        .ok_or(IpvsError::Protocol {
            op,
            what: "service reply without IPVS_CMD_ATTR_SERVICE",
        })?;
    Ok(ServiceEntry::from_attrs(attrs)?)
}

pub(crate) fn dest_attrs(key: &ServiceKey, dest: Vec<DestAttr>) -> Vec<CmdAttr> {
    vec![CmdAttr::Service(key.attrs()), CmdAttr::Dest(dest)]
}

impl Client {
    /// The whole table: every service with its destinations (`ipvsadm -Ln`), services in the
    /// kernel's dump order: one dump for the services, then one `IPVS_CMD_GET_DEST` dump per
    /// service (the kernel has no dump of all destinations), all on this socket.
    ///
    /// A service removed by someone else between the two steps gives
    /// [`crate::KernelError::NoSuchService`].
    pub fn table(&mut self) -> Result<Vec<(ServiceEntry, Vec<DestEntry>)>, IpvsError> {
        self.table_with(1)
    }

    /// [`Client::table`] with the per-service destination dumps spread over `sockets`
    /// sockets, one thread each, on contiguous shares of the services (a netlink socket runs
    /// one dump at a time); 0 or 1 means this socket only. The result is the same whatever
    /// `sockets` is; each extra socket shares this client's reply timeout.
    ///
    /// Not the default, because it did not pay off where it was measured: the kernel runs
    /// every request and dump callback of the IPVS family under the global `genl_mutex`
    /// (the family is not `parallel_ops`) and `__ip_vs_mutex`, so only the socket calls and
    /// the decoding overlap. In the VM (2 vCPUs, TCG, 10,000 services × 10) 2 to 8 sockets
    /// took 0.7× to 2.7× the time of one; see BENCHMARKS.md. Measure on your host.
    pub fn table_with(
        &mut self,
        sockets: usize,
    ) -> Result<Vec<(ServiceEntry, Vec<DestEntry>)>, IpvsError> {
        let services = self.services()?;
        self.dests_of(services, sockets)
    }

    fn dests_of(
        &mut self,
        services: Vec<ServiceEntry>,
        sockets: usize,
    ) -> Result<Vec<(ServiceEntry, Vec<DestEntry>)>, IpvsError> {
        let sockets = sockets.min(services.len());
        if sockets <= 1 {
            let mut out = Vec::with_capacity(services.len());
            for s in services {
                let dests = self.dests(s.service.key())?;
                out.push((s, dests));
            }
            return Ok(out);
        }
        let timeout = socket2::SockRef::from(&self.sock)
            .read_timeout()
            .map_err(|source| IpvsError::Io {
                op: Op::ListDests,
                source,
            })?;
        let family = self.family;
        // Contiguous shares keep the merge trivial: concatenating the shares in order gives
        // the services' order back.
        let share = services.len().div_ceil(sockets);
        let keys: Vec<ServiceKey> = services.iter().map(|s| *s.service.key()).collect();
        let dests: Vec<Vec<DestEntry>> = std::thread::scope(|scope| {
            let mut workers = Vec::with_capacity(sockets);
            for chunk in keys.chunks(share) {
                let worker = std::thread::Builder::new()
                    .name("ipvs-dump".into())
                    .spawn_scoped(scope, move || -> Result<Vec<Vec<DestEntry>>, IpvsError> {
                        let mut c = Self::open(family, timeout)?;
                        chunk.iter().map(|k| c.dests(k)).collect()
                    })
                    .map_err(|source| IpvsError::Io {
                        op: Op::ListDests,
                        source,
                    })?;
                workers.push(worker);
            }
            let mut all = Vec::with_capacity(keys.len());
            for w in workers {
                let part = w.join().map_err(|_| IpvsError::Protocol {
                    op: Op::ListDests,
                    what: "a destination dump thread panicked",
                })??;
                all.extend(part);
            }
            Ok::<_, IpvsError>(all)
        })?;
        Ok(services.into_iter().zip(dests).collect())
    }

    /// Reconcile the kernel to `desired` (see [`crate::apply`]): reads the table, plans the
    /// fewest operations (adds, in-place edits, then removals; never a flush) and sends them
    /// pipelined. Returns what changed; a re-apply of the same state sends nothing.
    ///
    /// If the kernel refuses an operation, the others are still sent and the first refusal
    /// is returned (the table is then partly applied; apply again once fixed).
    pub fn apply(
        &mut self,
        desired: &[crate::apply::DesiredService],
    ) -> Result<crate::apply::ApplyReport, IpvsError> {
        let current: Vec<(Service, Vec<Dest>)> = self
            .table()?
            .into_iter()
            .map(|(s, ds)| (s.service, ds.into_iter().map(|d| d.dest).collect()))
            .collect();
        let planned = crate::apply::plan_ops(&current, desired);
        let requests: Vec<(Op, IpvsMessage)> =
            planned.iter().map(|p| (p.op, p.msg.clone())).collect();
        let results = self.batch(&requests)?;
        let mut report = crate::apply::ApplyReport::default();
        let mut first_err = None;
        for (p, r) in planned.into_iter().zip(results) {
            match r {
                Ok(()) => report.changes.push(p.change),
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}
