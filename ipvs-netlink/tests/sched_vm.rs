//! lvs-sched against the kernel: the same random sequences of destination adds, edits,
//! deletions, re-adds, connections opened and closed, run on real IPVS services in the qemu VM
//! and on `lvs_sched::Service` models; every connection's destination and every
//! destination's active/inactive counts must be equal.
//!
//! ```sh
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/scripts/ipvs-vm.sh \
//!   cargo test -p ipvs-netlink --all-features --test sched_vm -- --ignored --nocapture
//! ```
//!
//! `SCHED_VM_SEED=<n>` repeats a run (pass it into the VM with `IPVS_VM_PASSENV=SCHED_VM_SEED`);
//! `SCHED_VM_STEPS=<n>` sets the steps per scheduler run (default 1200).
//!
//! Set-up inside the VM: the virtual services are 10.40.r.v:80 (run r) (several per run, one model
//! each, the same operations applied to all), the real servers 10.20.0.k:9000, the clients
//! 10.30.0.1-250, all on `lo`; one listener on 0.0.0.0:9000 accepts for every real server
//! (masquerading to a local address), so the accepted socket's local address is the kernel's
//! choice. IPVS schedules these locally generated connections (its `LOCAL_OUT` hook).
//!
//! Deterministic by design: the test is single-threaded (connect, then accept, in turn);
//! `lblc`/`lblcr` entries and replica sets only expire after 24 h and their tables stay far
//! from over-full, so no collection runs. A closed connection (FIN both ways) is inactive
//! until the kernel's connection timer ends it (`TIME_WAIT` 120 s, `CLOSE` 10 s), at a time
//! the model cannot know: the test reports its end to the model (`conn_closed`) once the
//! kernel lists fewer inactive connections and the entry has left `/proc/net/ip_vs_conn`,
//! checked before every connection and every count comparison (a timer firing between that
//! check and the next SYN, microseconds later, would show as a mismatch). Each run uses new
//! services and addresses.
//! `twos` is not in Linux 6.1 and is left out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use ipvs_netlink::{Client, Dest, ForwardMethod, Service, ServiceFlags, ServiceKey};
use lvs_sched::{
    DestId, Flow, Instant, Rng, SchedConfig, SchedFlags, SchedulerKind as K, SplitMix64,
};

const DESTS: u8 = 12;
const CLIENTS: u8 = 250;
const MAX_OPEN: usize = 150;

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

/// Virtual service `v` of run `run`: every run has its own addresses, since a new service
/// with an earlier one's address and port takes that one's deleted destinations back from the
/// kernel's trash, connection counters and all (`ip_vs_trash_get_dest`).
fn vip(run: usize, v: usize) -> SocketAddr {
    v4(
        10,
        40,
        u8::try_from(run).unwrap(),
        u8::try_from(v + 1).unwrap(),
        80,
    )
}

fn rs(k: usize) -> SocketAddr {
    v4(10, 20, 0, u8::try_from(k + 1).unwrap(), 9000)
}

/// `/proc/net/ip_vs_conn`: (client, virtual) → real server.
fn proc_conns() -> HashMap<(SocketAddr, SocketAddr), SocketAddr> {
    let text = std::fs::read_to_string("/proc/net/ip_vs_conn").unwrap();
    let addr = |ip: &str, port: &str| {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).unwrap())),
            u16::from_str_radix(port, 16).unwrap(),
        )
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 7 && f[0] == "TCP")
                .then(|| ((addr(f[1], f[2]), addr(f[3], f[4])), addr(f[5], f[6])))
        })
        .collect()
}

struct Open {
    src: SocketAddr,
    client: TcpStream,
    server: TcpStream,
    v: usize,
    id: DestId,
}

/// Closed connections of service `v` that the kernel's timer has ended end in its model too
/// (`conn_closed`, inactive): the timer decides when, the test reports it, as any caller of
/// the model does. Only looked for when the kernel lists fewer inactive connections for a
/// destination than the model; a connection counts as ended when two reads of
/// `/proc/net/ip_vs_conn` (a table being changed can skip entries in one read) both lack it.
/// Returns how many ended.
fn expire(
    c: &mut Client,
    key: &ServiceKey,
    v: usize,
    closed: &mut Vec<(SocketAddr, SocketAddr, usize, DestId)>,
    model: &mut lvs_sched::Service,
) -> usize {
    let deficit: HashMap<SocketAddr, u32> = c
        .dests(key)
        .unwrap()
        .iter()
        .filter_map(|d| {
            let m = model
                .dests()
                .iter()
                .find(|(_, md)| md.addr == d.dest.addr())?
                .1
                .inactive_conns();
            (d.inactive_conns < m).then(|| (d.dest.addr(), m - d.inactive_conns))
        })
        .collect();
    if deficit.is_empty() {
        return 0;
    }
    let (a, b) = (proc_conns(), proc_conns());
    let mut left = deficit;
    let mut ended = 0;
    closed.retain(|&(src, v_addr, cv, id)| {
        if cv != v || a.contains_key(&(src, v_addr)) || b.contains_key(&(src, v_addr)) {
            return true;
        }
        let Some(addr) = model.dests().get(id).map(|d| d.addr) else {
            return true;
        };
        match left.get_mut(&addr) {
            Some(n) if *n > 0 => {
                *n -= 1;
                model.conn_closed(id, false);
                ended += 1;
                false
            }
            _ => true,
        }
    });
    ended
}

struct Run {
    index: usize,
    kind: K,
    flags: SchedFlags,
    vips: usize,
}

#[derive(Default)]
struct Tally {
    flows: usize,
    refused: usize,
    proc_checked: usize,
    expired: usize,
    counts_checked: usize,
}

/// Kernel and model agree on the destination list (order included) and every counter.
fn counts_equal(c: &mut Client, key: &ServiceKey, m: &lvs_sched::Service) -> Result<(), String> {
    let kernel: Vec<(SocketAddr, u32, u32, u32)> = c
        .dests(key)
        .unwrap()
        .iter()
        .map(|d| {
            (
                d.dest.addr(),
                d.dest.weight(),
                d.active_conns,
                d.inactive_conns,
            )
        })
        .collect();
    let model: Vec<(SocketAddr, u32, u32, u32)> = m
        .dests()
        .ipvs_iter()
        .filter(|(_, d)| d.is_available())
        .map(|(_, d)| (d.addr, d.weight(), d.active_conns(), d.inactive_conns()))
        .collect();
    if kernel == model {
        Ok(())
    } else {
        Err(format!("kernel {kernel:?}\n model {model:?}"))
    }
}

fn run(c: &mut Client, listener: &TcpListener, r: &Run, seed: u64, steps: usize) -> Tally {
    let mut rng = SplitMix64::new(seed);
    let mut t = Tally::default();
    let flags = match (r.flags.fallback, r.flags.port) {
        (false, false) => ServiceFlags::default(),
        (true, false) => ServiceFlags::SCHED1,
        (false, true) => ServiceFlags::SCHED2,
        (true, true) => ServiceFlags::SCHED1 | ServiceFlags::SCHED2,
    };
    let keys: Vec<ServiceKey> = (0..r.vips)
        .map(|v| ServiceKey::tcp(vip(r.index, v)))
        .collect();
    let config = SchedConfig {
        flags: r.flags,
        ..SchedConfig::default()
    };
    let mut models: Vec<lvs_sched::Service> = Vec::new();
    for key in &keys {
        c.add_service(&Service::new(*key, r.kind.name()).unwrap().with_flags(flags))
            .unwrap();
        models.push(lvs_sched::Service::new(r.kind, config));
    }
    // Pool index → id in the models (the same in every model: the same operations).
    let mut ids: Vec<Option<DestId>> = vec![None; usize::from(DESTS)];
    let mut open: Vec<Open> = Vec::new();
    // Closed connections the kernel still lists (inactive until its timer ends them).
    let mut closed: Vec<(SocketAddr, SocketAddr, usize, DestId)> = Vec::new();
    let mut flows: Vec<(SocketAddr, SocketAddr, SocketAddr)> = Vec::new();
    let kdest = |k: usize, w: u32| {
        Dest::new(rs(k), ForwardMethod::Masq)
            .unwrap()
            .with_weight(w)
            .unwrap()
    };
    for step in 0..steps {
        let now = Instant::from_millis(u64::try_from(step).unwrap());
        let present: Vec<usize> = (0..usize::from(DESTS))
            .filter(|&k| ids[k].is_some_and(|id| models[0].dests().get(id).unwrap().is_available()))
            .collect();
        let deleted: Vec<usize> = (0..usize::from(DESTS))
            .filter(|&k| ids[k].is_some() && !present.contains(&k))
            .collect();
        let fresh: Vec<usize> = (0..usize::from(DESTS))
            .filter(|&k| ids[k].is_none())
            .collect();
        let op = rng.below(100);
        let pick = |rng: &mut SplitMix64, v: &[usize]| v[rng.below(v.len() as u32) as usize];
        let w = rng.below(6);
        let mut touched: Option<usize> = None;
        if op < 8 && !fresh.is_empty() || present.is_empty() && !fresh.is_empty() {
            let k = pick(&mut rng, &fresh);
            for (key, m) in keys.iter().zip(&mut models) {
                c.add_dest(key, &kdest(k, w)).unwrap();
                ids[k] = Some(m.add_dest(lvs_sched::Dest::new(rs(k), w)));
            }
        } else if op < 14 && !present.is_empty() {
            let k = pick(&mut rng, &present);
            for (key, m) in keys.iter().zip(&mut models) {
                c.edit_dest(key, &kdest(k, w)).unwrap();
                m.set_weight(ids[k].unwrap(), w);
            }
        } else if op < 18 && present.len() > 1 {
            let k = pick(&mut rng, &present);
            for (key, m) in keys.iter().zip(&mut models) {
                c.delete_dest(key, rs(k)).unwrap();
                m.set_available(ids[k].unwrap(), false);
            }
        } else if op < 22 && !deleted.is_empty() {
            // Added back: the kernel takes it from its trash (counters kept), at the head.
            let k = pick(&mut rng, &deleted);
            for (key, m) in keys.iter().zip(&mut models) {
                let id = ids[k].unwrap();
                let w = m.dests().get(id).unwrap().weight();
                c.add_dest(key, &kdest(k, w)).unwrap();
                m.set_available(id, true);
            }
        } else if (op < 40 && !open.is_empty()) || open.len() >= MAX_OPEN {
            let i = rng.below(open.len() as u32) as usize;
            let o = open.swap_remove(i);
            o.client.shutdown(Shutdown::Both).unwrap();
            drop(o.client);
            drop(o.server);
            closed.push((o.src, vip(r.index, o.v), o.v, o.id));
            models[o.v].conn_deactivated(o.id);
            touched = Some(o.v);
        } else {
            let v = rng.below(r.vips as u32) as usize;
            t.expired += expire(c, &keys[v], v, &mut closed, &mut models[v]);
            let cl = u8::try_from(1 + rng.below(u32::from(CLIENTS))).unwrap();
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .unwrap();
            sock.bind(&v4(10, 30, 0, cl, 0).into()).unwrap();
            let connected = sock.connect_timeout(&vip(r.index, v).into(), Duration::from_secs(3));
            let src = sock.local_addr().unwrap().as_socket().unwrap();
            let flow = Flow::tcp(src, vip(r.index, v));
            let want = models[v].schedule(&flow, now);
            t.flows += 1;
            match (connected, want) {
                (Ok(()), Some(id)) => {
                    let (server, _) = listener.accept().unwrap();
                    let got = server.local_addr().unwrap();
                    let m_addr = models[v].dests().get(id).unwrap().addr;
                    assert_eq!(
                        got,
                        m_addr,
                        "{} seed {seed} step {step}: flow {src} → {}: kernel {got}, model {m_addr}",
                        r.kind,
                        vip(r.index, v)
                    );
                    models[v].conn_opened(id);
                    flows.push((src, vip(r.index, v), got));
                    open.push(Open {
                        src,
                        client: sock.into(),
                        server,
                        v,
                        id,
                    });
                    touched = Some(v);
                }
                (Err(_), None) => t.refused += 1,
                (k, m) => panic!(
                    "{} seed {seed} step {step}: flow {src} → {}: kernel {k:?}, model {m:?}",
                    r.kind,
                    vip(r.index, v)
                ),
            }
        }
        // Counters (and the list order) after every step; a close settles asynchronously.
        let vs: Vec<usize> = touched.map_or_else(|| (0..r.vips).collect(), |v| vec![v]);
        for v in vs {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                t.expired += expire(c, &keys[v], v, &mut closed, &mut models[v]);
                match counts_equal(c, &keys[v], &models[v]) {
                    Ok(()) => break,
                    Err(e) if std::time::Instant::now() > deadline => {
                        panic!(
                            "{} seed {seed} step {step} vip {}: {e}",
                            r.kind,
                            vip(r.index, v)
                        )
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            t.counts_checked += 1;
        }
    }
    // Every connection's destination, as /proc/net/ip_vs_conn shows it: the open ones must
    // be listed; a closed one may have been ended by the kernel's timer meanwhile.
    let mut table = proc_conns();
    table.extend(proc_conns());
    let open_srcs: std::collections::HashSet<SocketAddr> = open.iter().map(|o| o.src).collect();
    for (src, v, d) in &flows {
        match table.get(&(*src, *v)) {
            None if !open_srcs.contains(src) => continue,
            got => assert_eq!(
                got,
                Some(d),
                "{} seed {seed}: /proc/net/ip_vs_conn for {src} → {v}",
                r.kind
            ),
        }
        t.proc_checked += 1;
    }
    drop(open);
    for key in &keys {
        c.delete_service(key).unwrap();
    }
    t
}

#[test]
#[ignore = "needs ip_vs: runs in the qemu VM via scripts/ipvs-vm.sh"]
fn schedulers_decide_as_the_kernel() {
    let seed: u64 = std::env::var("SCHED_VM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    let steps: usize = std::env::var("SCHED_VM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1200);
    println!("sched_vm: seed {seed} (SCHED_VM_SEED={seed} repeats it), {steps} steps per run");
    let started = std::time::Instant::now();
    let mut setup = String::from("set -e\n");
    for k in 0..usize::from(DESTS) {
        setup.push_str(&format!("ip addr add {}/32 dev lo\n", rs(k).ip()));
    }
    for cl in 1..=CLIENTS {
        setup.push_str(&format!("ip addr add 10.30.0.{cl}/32 dev lo\n"));
    }
    sh(&setup);
    let mut c = Client::new().expect("IPVS family (is this running in the VM?)");
    c.set_timeout(Some(Duration::from_secs(20))).unwrap();
    c.flush().unwrap();
    let listener = TcpListener::bind("0.0.0.0:9000").unwrap();
    let plain = SchedFlags::default();
    let all_flags = [
        plain,
        SchedFlags {
            fallback: true,
            port: false,
        },
        SchedFlags {
            fallback: false,
            port: true,
        },
        SchedFlags {
            fallback: true,
            port: true,
        },
    ];
    let mut runs = Vec::new();
    for kind in [K::Rr, K::Wrr, K::Lc, K::Wlc, K::Sed, K::Nq, K::Fo, K::Ovf] {
        runs.push(Run {
            index: runs.len(),
            kind,
            flags: plain,
            vips: 3,
        });
    }
    for kind in [K::Dh, K::Lblc, K::Lblcr] {
        runs.push(Run {
            index: runs.len(),
            kind,
            flags: plain,
            vips: 16,
        });
    }
    for kind in [K::Sh, K::Mh] {
        for flags in all_flags {
            runs.push(Run {
                index: runs.len(),
                kind,
                flags,
                vips: 2,
            });
        }
    }
    let mut setup = String::from("set -e\n");
    for r in &runs {
        for v in 0..r.vips {
            setup.push_str(&format!("ip addr add {}/32 dev lo\n", vip(r.index, v).ip()));
        }
    }
    sh(&setup);
    let mut total = 0;
    for (i, r) in runs.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let s = seed.wrapping_mul(1000).wrapping_add(i as u64);
        let t = run(&mut c, &listener, r, s, steps);
        println!(
            "sched_vm: {:<5} fallback={:<5} port={:<5} {:>5} flows ({} refused), {} count checks, \
             {} in ip_vs_conn, {} expired, {:.1} s",
            r.kind.name(),
            r.flags.fallback,
            r.flags.port,
            t.flows,
            t.refused,
            t.counts_checked,
            t.proc_checked,
            t.expired,
            t0.elapsed().as_secs_f64()
        );
        total += t.flows;
    }
    println!(
        "sched_vm: {total} flows compared in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(total >= 10_000, "only {total} flows");
}
