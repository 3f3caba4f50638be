//! The reconcile planner, without a kernel: fewest operations, removals last, idempotence.
#![allow(clippy::unwrap_used, missing_docs)]

use ipvs_netlink::{Change, DesiredService, Dest, ForwardMethod, Service, ServiceKey, plan};

fn svc(a: &str, s: &str) -> Service {
    Service::new(ServiceKey::tcp(a.parse().unwrap()), s).unwrap()
}
fn dest(a: &str, w: u32) -> Dest {
    Dest::new(a.parse().unwrap(), ForwardMethod::Masq)
        .unwrap()
        .with_weight(w)
        .unwrap()
}

#[test]
fn plan_is_minimal_and_orders_removals_last() {
    let current = vec![
        (
            svc("10.0.0.1:80", "rr"),
            vec![dest("10.1.0.1:80", 1), dest("10.1.0.2:80", 1)],
        ),
        (svc("10.0.0.2:80", "rr"), vec![dest("10.1.0.3:80", 1)]),
    ];
    let desired = vec![
        DesiredService::new(
            svc("10.0.0.1:80", "wrr"),
            vec![dest("10.1.0.1:80", 5), dest("10.1.0.9:80", 1)],
        ),
        DesiredService::new(svc("10.0.0.3:80", "lc"), vec![dest("10.1.0.4:80", 1)]),
    ];
    let ops: Vec<Change> = plan(&current, &desired)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let k1 = ServiceKey::tcp("10.0.0.1:80".parse().unwrap());
    let k2 = ServiceKey::tcp("10.0.0.2:80".parse().unwrap());
    let k3 = ServiceKey::tcp("10.0.0.3:80".parse().unwrap());
    assert_eq!(
        ops,
        vec![
            Change::AddDest(k1, "10.1.0.9:80".parse().unwrap()),
            Change::AddService(k3),
            Change::AddDest(k3, "10.1.0.4:80".parse().unwrap()),
            Change::EditService(k1),
            Change::EditDest(k1, "10.1.0.1:80".parse().unwrap()),
            Change::DeleteDest(k1, "10.1.0.2:80".parse().unwrap()),
            Change::DeleteService(k2),
        ]
    );
    // Applying the desired state to itself does nothing.
    let same: Vec<(Service, Vec<Dest>)> = desired
        .iter()
        .map(|d| (d.service.clone(), d.dests.clone()))
        .collect();
    assert!(plan(&same, &desired).is_empty());
}
