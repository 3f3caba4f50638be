//! Speed: install N services × 10 destinations through `apply` and the same rules with
//! `ipvsadm -R`, and time both plus the full dump. Needs root and ip_vs; run it in the VM:
//!
//! ```sh
//! IPVS_VM_TIMEOUT=1200 CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/scripts/ipvs-vm.sh \
//!   cargo run --release -p ipvs-netlink --example speed
//! ```
//!
//! `IPVS_SPEED_SERVICES` (default 10000) changes N (pass it with `IPVS_VM_PASSENV`);
//! `IPVS_SPEED_SKIP_IPVSADM=1` skips the (slow) `ipvsadm -R` / `-Ln` timings. Give the VM
//! more than one vCPU (`IPVS_VM_SMP=2`) for the multi-socket dumps to have CPUs to use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Instant;

use ipvs_netlink::{Client, DesiredService, Dest, ForwardMethod, Service, ServiceKey};

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

fn main() {
    let mut c = Client::new().expect("IPVS family (run this in the VM, as root)");
    let n: u32 = std::env::var("IPVS_SPEED_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    c.flush().unwrap();
    let mut desired = Vec::new();
    let mut script = String::new();
    for i in 0..n {
        let [_, _, a, b] = (i + 256).to_be_bytes();
        let vip = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 20, a, b)), 80);
        let key = ServiceKey::tcp(vip);
        script.push_str(&format!("-A -t {vip} -s wlc\n"));
        let mut dests = Vec::new();
        for j in 0..10u8 {
            let rip = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 30 + j, a, b)), 8080);
            script.push_str(&format!("-a -t {vip} -r {rip} -m -w 1\n"));
            dests.push(Dest::new(rip, ForwardMethod::Masq).unwrap());
        }
        desired.push(DesiredService::new(
            Service::new(key, "wlc").unwrap(),
            dests,
        ));
    }
    std::fs::write("/tmp/rules", &script).unwrap();

    let t = Instant::now();
    let report = c.apply(&desired).unwrap();
    let apply = t.elapsed();
    assert_eq!(report.operations(), (n * 11) as usize);

    // The full dump: `table` (one socket), then `table_with` on 2, 4, 8 sockets and 1 again.
    let t = Instant::now();
    let table = c.table().unwrap();
    let dump = t.elapsed();
    assert_eq!(table.len(), n as usize);
    assert_eq!(
        table.iter().map(|(_, d)| d.len()).sum::<usize>(),
        (n * 10) as usize
    );
    let mut by_sockets = String::new();
    // 1 again: the first dump may pay for warming caches.
    for k in [2, 4, 8, 1] {
        let t = Instant::now();
        let again = c.table_with(k).unwrap();
        by_sockets.push_str(&format!(
            " dump({k}-sockets)={:.3}s",
            t.elapsed().as_secs_f64()
        ));
        assert!(again == table, "{k} sockets give another table");
    }

    let t = Instant::now();
    let again = c.apply(&desired).unwrap();
    let reapply = t.elapsed();
    assert!(again.is_empty());

    let skip = std::env::var("IPVS_SPEED_SKIP_IPVSADM").as_deref() == Ok("1");
    let (mut restore, mut ipvsadm_dump, mut listed) = (apply, dump, String::from("skipped"));
    if !skip {
        c.flush().unwrap();
        let t = Instant::now();
        let out = sh("ipvsadm -R < /tmp/rules");
        restore = t.elapsed();
        assert!(out.is_empty(), "{out}");
        assert_eq!(c.services().unwrap().len(), n as usize);
        let t = Instant::now();
        listed = sh("ipvsadm -Ln | wc -l");
        ipvsadm_dump = t.elapsed();
    }
    c.flush().unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!(
        "SPEED cpus={cpus} services={n} dests={} apply={:.3}s ipvsadm-R={:.3}s ratio={:.2}x dump(table)={:.3}s{by_sockets} ipvsadm-Ln={:.3}s ({} lines) reapply(no-op)={:.3}s",
        n * 10,
        apply.as_secs_f64(),
        restore.as_secs_f64(),
        restore.as_secs_f64() / apply.as_secs_f64(),
        dump.as_secs_f64(),
        ipvsadm_dump.as_secs_f64(),
        listed.trim(),
        reapply.as_secs_f64()
    );
}
