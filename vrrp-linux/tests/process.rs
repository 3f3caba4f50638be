//! [`vrrp_linux::process::ProcessWatcher`] on the kernel's real process-event connector:
//! processes started, renamed, re-executed and killed; lost events recounted; a watcher
//! started inside a network namespace.
//!
//! Needs root (the connector and namespaces); skipped otherwise (failing when `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Each test runs on a runtime of its own; the guard held across its awaits serialises them.
#![allow(clippy::await_holding_lock)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use testbed::netns::Netns;
use vrrp_linux::process::{ParamMatch, ProcessSpec, ProcessWatcher, QuorumChange};

/// The tests count system-wide processes: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A copy of `sleep` under a name no other process has (`tag` ≤ 4 bytes).
fn program(tag: &str) -> (tempdir::Dir, PathBuf, String) {
    let name = format!("hp{tag}{}", std::process::id() % 100_000);
    let dir = tempdir::Dir::new();
    let path = dir.0.join(&name);
    std::fs::copy("/bin/sleep", &path).unwrap();
    (dir, path, name)
}

mod tempdir {
    use std::path::PathBuf;

    pub(crate) struct Dir(pub(crate) PathBuf);

    impl Dir {
        pub(crate) fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("vrrp-linux-process-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

struct Kids(Vec<Child>);

impl Kids {
    fn start(&mut self, path: &PathBuf, args: &[&str]) -> u32 {
        let c = Command::new(path)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = c.id();
        self.0.push(c);
        pid
    }

    fn kill(&mut self, pid: u32) {
        let i = self.0.iter().position(|c| c.id() == pid).unwrap();
        let mut c = self.0.remove(i);
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn next(w: &mut ProcessWatcher, within: Duration) -> QuorumChange {
    let c = tokio::time::timeout(within, w.next()).await;
    let counts: Vec<_> = (0..w.tracker().specs().len())
        .map(|i| w.tracker().count(i))
        .collect();
    let Ok(c) = c else {
        panic!(
            "no quorum change within {within:?}; counts {counts:?}, {:?}",
            w.stats()
        );
    };
    c.unwrap()
}

async fn quiet(w: &mut ProcessWatcher, for_: Duration) {
    if let Ok(c) = tokio::time::timeout(for_, w.next()).await {
        panic!("unexpected change {c:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn starts_and_deaths_are_seen_at_once() {
    if !Netns::require_or_skip() {
        return;
    }
    let _g = serial();
    let (_dir, path, name) = program("a");
    let mut kids = Kids(Vec::new());
    let first = kids.start(&path, &["30"]);
    let mut spec = ProcessSpec::new("two", &name);
    spec.quorum = 2;
    let mut full = ProcessSpec::new("exact", path.to_str().unwrap());
    full.full_command = true;
    full.param_match = ParamMatch::Exact;
    full.params = vec!["31".into()];
    let mut w = ProcessWatcher::open(vec![spec, full]).await.unwrap();
    // The first scan: one process, no quorum; none with the exact command line.
    let s = Duration::from_secs(5);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: false
        }
    );
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 1,
            have_quorum: false
        }
    );
    assert_eq!(w.tracker().count(0), Some(1));

    let second = kids.start(&path, &["31"]);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: true
        }
    );
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 1,
            have_quorum: true
        }
    );
    assert_eq!(w.tracker().count(0), Some(2));

    // A death is reported the moment the kernel reaps it.
    let t = Instant::now();
    kids.kill(second);
    let a = next(&mut w, s).await;
    let b = next(&mut w, s).await;
    let took = t.elapsed();
    let mut got = [a, b];
    got.sort_by_key(|c| c.spec);
    assert_eq!(
        got,
        [
            QuorumChange {
                spec: 0,
                have_quorum: false
            },
            QuorumChange {
                spec: 1,
                have_quorum: false
            }
        ]
    );
    eprintln!("process death reported {took:?} after kill()");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // A process that re-executes another program stops counting; one renamed to the name
    // starts counting.
    let _ = first;
    let shell = kids.start(
        &PathBuf::from("/bin/sh"),
        &["-c", &format!("exec {} 32", path.display())],
    );
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: true
        }
    );
    assert_eq!(w.tracker().count(0), Some(2));
    kids.kill(shell);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: false
        }
    );
    let stats = w.stats();
    assert!(stats.events > 0 && stats.malformed == 0, "{stats:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn delays_and_quorum_max() {
    if !Netns::require_or_skip() {
        return;
    }
    let _g = serial();
    let (_dir, path, name) = program("b");
    let mut kids = Kids(Vec::new());
    let mut spec = ProcessSpec::new("one", &name);
    spec.quorum_max = 1;
    spec.terminate_delay = Duration::from_millis(400);
    let mut w = ProcessWatcher::open(vec![spec]).await.unwrap();
    let s = Duration::from_secs(5);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: false
        }
    );
    let a = kids.start(&path, &["30"]);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: true
        }
    );
    // A second one is one too many (quorum_max 1).
    let b = kids.start(&path, &["30"]);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: false
        }
    );
    // Back to one by an exit: counted after terminate_delay.
    let t = Instant::now();
    kids.kill(b);
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: true
        }
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(390), "{took:?}");
    // None left: lost after terminate_delay too.
    kids.kill(a);
    quiet(&mut w, Duration::from_millis(250)).await;
    assert_eq!(
        next(&mut w, s).await,
        QuorumChange {
            spec: 0,
            have_quorum: false
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn lost_events_are_recounted() {
    if !Netns::require_or_skip() {
        return;
    }
    let _g = serial();
    let (_dir, path, name) = program("c");
    let mut kids = Kids(Vec::new());
    let mut spec = ProcessSpec::new("three", &name);
    spec.quorum = 3;
    let mut w = ProcessWatcher::open(vec![spec]).await.unwrap();
    assert!(!next(&mut w, Duration::from_secs(5)).await.have_quorum);
    // The smallest buffer, and a burst of processes while nobody reads it.
    w.set_receive_buffer(256).unwrap();
    for _ in 0..3 {
        kids.start(&path, &["30"]);
    }
    for _ in 0..200 {
        Command::new("/bin/true").status().unwrap();
    }
    let t = Instant::now();
    let c = next(&mut w, Duration::from_secs(10)).await;
    assert!(c.have_quorum, "{c:?}");
    assert_eq!(w.tracker().count(0), Some(3));
    let stats = w.stats();
    assert!(stats.overflows >= 1 && stats.rescans >= 1, "{stats:?}");
    eprintln!("recounted after {:?}: {stats:?}", t.elapsed());
}

#[test]
fn a_watcher_in_a_network_namespace_sees_processes() {
    if !Netns::require_or_skip() {
        return;
    }
    let _g = serial();
    let (_dir, path, name) = program("d");
    // A thread of its own in a new network namespace, where the kernel does not serve
    // process events: the watcher opens its socket in the initial one.
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut w = ProcessWatcher::open(vec![ProcessSpec::new("p", &name)])
                .await
                .unwrap();
            let s = Duration::from_secs(5);
            assert!(!next(&mut w, s).await.have_quorum);
            let mut kids = Kids(Vec::new());
            let pid = kids.start(&path, &["30"]);
            assert!(next(&mut w, s).await.have_quorum);
            kids.kill(pid);
            assert!(!next(&mut w, s).await.have_quorum);
        });
    })
    .join()
    .unwrap();
}
