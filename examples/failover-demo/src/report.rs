//! What the demo measured: per-event outages, wrong answers, session continuity, the
//! timeline, the SVG chart and the JSON summary line.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{Outcome, Sample};

/// Something the demo did to the pair.
#[derive(Clone, Debug)]
pub struct Event {
    /// The key in the JSON summary, e.g. `lb1_proxy_killed`.
    pub key: String,
    /// What happened, for the timeline.
    pub label: String,
    /// When the action began (the event's window of requests starts here).
    pub at: Instant,
    /// From when the node's new state is certain: a killed process has been reaped (no
    /// request started later can reach it); for a restart, `at` (nothing started earlier can
    /// have reached the new process).
    pub settled: Instant,
    /// Which node went down or came back.
    pub node: String,
    /// `true` when the node went down.
    pub down: bool,
}

/// Per-event figures.
#[derive(Clone, Debug, Serialize)]
pub struct EventReport {
    /// The event's key.
    pub event: String,
    /// When it happened, ms after the first request.
    pub at_ms: f64,
    /// Requests started until the next event.
    pub requests: usize,
    /// Of which failed.
    pub errors: usize,
    /// The longest run of consecutive failed requests (all clients merged by start time):
    /// from its first request to the next successful one (0 when nothing failed).
    pub outage_ms: f64,
    /// Balancer events: from the event to the first answer through another balancer (the
    /// balancer went down) or through this one again (it came back); `None` when that never
    /// happened, and for real-server events.
    pub switch_ms: Option<f64>,
    /// The slowest successful answer in the window.
    pub max_latency_ms: f64,
}

/// Latency percentiles of the successful answers.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// The one-line JSON summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// How the balancers tracked their proxy (`script` or `process`).
    pub track: String,
    /// The session store the real servers shared.
    pub store: String,
    /// Client threads.
    pub clients: usize,
    /// Total request rate.
    pub rate: f64,
    /// The VRRP advertisement interval.
    pub advert_int_ms: f64,
    /// The bound every outage must stay within.
    pub vrrp_bound_ms: f64,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (refused, reset, timeout, non-200).
    pub errors: usize,
    /// Successful answers from a party that could not have answered (a killed proxy or
    /// server, an unknown one) or that are not the demo's answer.
    pub wrong_answers: usize,
    /// Answers whose session was missing, another user's, or older than one already seen.
    pub session_errors: usize,
    /// `true` when `session_errors` is 0 and the client stayed logged in throughout.
    pub session_kept: bool,
    /// Outage per event, by event key.
    pub outage_ms: serde_json::Map<String, serde_json::Value>,
    /// Every event in order.
    pub events: Vec<EventReport>,
    /// Latency of the successful answers.
    pub latency_ms: Latency,
    /// Every outage within `vrrp_bound_ms`.
    pub within_bound: bool,
    /// Namespaces and processes all gone after the run (filled in after teardown).
    pub teardown_clean: bool,
    /// Where the chart was written.
    pub svg: Option<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn since(t: Instant, epoch: Instant) -> Duration {
    t.saturating_duration_since(epoch)
}

/// Whether `node` was certainly down at `t`: between a down event's `settled` and the next
/// up event's `settled`.
fn down_at(events: &[Event], node: &str, t: Instant) -> bool {
    let mut down = false;
    for e in events.iter().filter(|e| e.node == node) {
        if e.settled > t {
            break;
        }
        down = e.down;
    }
    down
}

/// Counts wrong answers: a successful answer from a balancer or real server that was down
/// when the request started, from a party that is not one of `known`, or a malformed `200`.
#[must_use]
pub fn wrong_answers(samples: &[Sample], events: &[Event], known: &[&str]) -> usize {
    samples
        .iter()
        .filter(|s| match &s.outcome {
            Outcome::Answer(a) => {
                !known.contains(&a.served_by.as_str())
                    || !known.contains(&a.via.as_str())
                    || down_at(events, &a.via, s.start)
                    || down_at(events, &a.served_by, s.start)
            }
            Outcome::Malformed => true,
            _ => false,
        })
        .count()
}

/// Counts session errors per client: an answer without the user or with another user, a
/// counter that did not grow, or a 401.
#[must_use]
pub fn session_errors(samples: &[Sample], users: &[String]) -> usize {
    let mut last_hits: Vec<u64> = vec![0; users.len()];
    let mut errors = 0;
    for s in samples {
        match &s.outcome {
            Outcome::Answer(a) => {
                let user = users.get(s.client);
                if a.user.as_ref() != user {
                    errors += 1;
                    continue;
                }
                match (a.hits, last_hits.get_mut(s.client)) {
                    (Some(h), Some(last)) if h > *last => *last = h,
                    _ => errors += 1,
                }
            }
            Outcome::Status(401) => errors += 1,
            _ => {}
        }
    }
    errors
}

fn route(o: &Outcome) -> Option<(&str, &str)> {
    match o {
        Outcome::Answer(a) => Some((a.via.as_str(), a.served_by.as_str())),
        _ => None,
    }
}

/// Per-event figures; `samples` sorted by start.
#[must_use]
pub fn per_event(samples: &[Sample], events: &[Event], epoch: Instant) -> Vec<EventReport> {
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let end = events.get(i + 1).map(|n| n.at);
        let window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.start >= e.at && end.is_none_or(|end| s.start < end))
            .collect();
        let errors = window.iter().filter(|s| !s.outcome.is_ok()).count();
        // The longest run of consecutive failed requests (all clients merged by start time),
        // from its first request to the next successful one (or the run's last failure's end).
        let mut outage = Duration::ZERO;
        let mut i = 0;
        while i < window.len() {
            if window[i].outcome.is_ok() {
                i += 1;
                continue;
            }
            let first = window[i].start;
            let mut j = i;
            while j < window.len() && !window[j].outcome.is_ok() {
                j += 1;
            }
            let until = window.get(j).map_or_else(
                || window[j - 1].start + window[j - 1].latency,
                |ok| ok.start,
            );
            outage = outage.max(until.saturating_duration_since(first));
            i = j;
        }
        // Balancer events: the first answer through another balancer (down) or through this
        // one again (up).
        let switch = e
            .node
            .starts_with("lb")
            .then(|| {
                window
                    .iter()
                    .find(|s| route(&s.outcome).is_some_and(|(via, _)| (via == e.node) != e.down))
            })
            .flatten()
            .map(|s| ms(s.start.saturating_duration_since(e.at)));
        let max_latency = window
            .iter()
            .filter(|s| s.outcome.is_ok())
            .map(|s| s.latency)
            .max()
            .unwrap_or_default();
        out.push(EventReport {
            event: e.key.clone(),
            at_ms: ms(since(e.at, epoch)),
            requests: window.len(),
            errors,
            outage_ms: ms(outage),
            switch_ms: switch,
            max_latency_ms: ms(max_latency),
        });
    }
    out
}

/// Percentiles of the successful answers' latency.
#[must_use]
pub fn latency(samples: &[Sample]) -> Latency {
    let mut l: Vec<Duration> = samples
        .iter()
        .filter(|s| s.outcome.is_ok())
        .map(|s| s.latency)
        .collect();
    l.sort_unstable();
    let pick = |q: f64| -> f64 {
        if l.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q * l.len() as f64).ceil() as usize).clamp(1, l.len());
        ms(l[rank - 1])
    };
    Latency {
        p50: pick(0.5),
        p99: pick(0.99),
        max: pick(1.0),
    }
}

/// The timeline: runs of consecutive samples with the same route or failure, with the events
/// in between.
#[must_use]
pub fn timeline(samples: &[Sample], events: &[Event], epoch: Instant) -> String {
    struct Run {
        key: String,
        servers: BTreeSet<String>,
        first: Instant,
        last: Instant,
        count: usize,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut ev = events.iter().peekable();
    let mut out = String::new();
    let flush = |runs: &mut Vec<Run>, out: &mut String| {
        for r in runs.drain(..) {
            let servers = if r.servers.is_empty() {
                String::new()
            } else {
                format!(
                    " from {}",
                    r.servers.iter().cloned().collect::<Vec<_>>().join("+")
                )
            };
            let _ = writeln!(
                out,
                "  {:>9.3} s .. {:>9.3} s  {:>6} x {}{}",
                since(r.first, epoch).as_secs_f64(),
                since(r.last, epoch).as_secs_f64(),
                r.count,
                r.key,
                servers
            );
        }
    };
    for s in samples {
        while let Some(e) = ev.next_if(|e| e.at <= s.start) {
            flush(&mut runs, &mut out);
            let _ = writeln!(
                out,
                "  {:>9.3} s  ---- {}",
                since(e.at, epoch).as_secs_f64(),
                e.label
            );
        }
        let (key, server) = match &s.outcome {
            Outcome::Answer(a) => (format!("OK via {}", a.via), Some(a.served_by.clone())),
            o => (format!("FAILED ({})", o.label()), None),
        };
        match runs.last_mut() {
            Some(r) if r.key == key => {
                r.last = s.start;
                r.count += 1;
                r.servers.extend(server);
            }
            _ => {
                flush(&mut runs, &mut out);
                runs.push(Run {
                    key,
                    servers: server.into_iter().collect(),
                    first: s.start,
                    last: s.start,
                    count: 1,
                });
            }
        }
    }
    flush(&mut runs, &mut out);
    for e in ev {
        let _ = writeln!(
            out,
            "  {:>9.3} s  ---- {}",
            since(e.at, epoch).as_secs_f64(),
            e.label
        );
    }
    out
}

fn color(o: &Outcome) -> &'static str {
    match o {
        Outcome::Answer(a) => match (a.via.as_str(), a.served_by.as_str()) {
            ("lb1", "rs1") => "#1f4e9c",
            ("lb1", _) => "#5b9bd5",
            ("lb2", "rs1") => "#c55a11",
            ("lb2", _) => "#f4b183",
            _ => "#7f7f7f",
        },
        _ => "#d62728",
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG chart: latency (log scale) of every request over time, coloured by the balancer
/// and real server that answered, failures in red, a strip showing the serving balancer, and
/// the events as vertical lines.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn svg(samples: &[Sample], events: &[Event], epoch: Instant, title: &str) -> String {
    const W: f64 = 1100.0;
    const H: f64 = 520.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const PLOT_H: f64 = 340.0;
    const STRIP_Y: f64 = TOP + PLOT_H + 30.0;
    const STRIP_H: f64 = 18.0;
    // Latency axis: 0.1 ms .. 2 s, log10.
    const LMIN: f64 = -1.0;
    const LMAX: f64 = 3.301;
    let end = samples
        .iter()
        .map(|s| since(s.start + s.latency, epoch).as_secs_f64())
        .fold(0.1_f64, f64::max);
    let x = |t: f64| LEFT + (W - LEFT - RIGHT) * t / end;
    let y = |lat_ms: f64| {
        let l = lat_ms.max(0.1).log10().clamp(LMIN, LMAX);
        TOP + PLOT_H * (1.0 - (l - LMIN) / (LMAX - LMIN))
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        xml_escape(title)
    );
    // Axes and grid.
    for (v, label) in [
        (0.1, "0.1 ms"),
        (1.0, "1 ms"),
        (10.0, "10 ms"),
        (100.0, "100 ms"),
        (1000.0, "1 s"),
    ] {
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    let step = if end > 60.0 {
        10.0
    } else if end > 20.0 {
        5.0
    } else if end > 8.0 {
        2.0
    } else {
        1.0
    };
    let mut t = 0.0;
    while t <= end {
        let xx = x(t);
        let _ = writeln!(
            o,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#f0f0f0"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{t} s</text>"##,
            TOP + PLOT_H,
            STRIP_Y + STRIP_H + 16.0
        );
        t += step;
    }
    let _ = writeln!(
        o,
        r#"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{PLOT_H}" fill="none" stroke="black"/>"#,
        W - LEFT - RIGHT
    );
    let _ = writeln!(
        o,
        r#"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">latency (log)</text>"#,
        TOP + PLOT_H / 2.0,
        TOP + PLOT_H / 2.0
    );
    // Events: a dashed line each, labelled with the event key inside the plot (staggered).
    for (i, e) in events.iter().enumerate() {
        let xx = x(since(e.at, epoch).as_secs_f64());
        let _ = writeln!(
            o,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#444" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#222"><title>{}</title>{}</text>"##,
            STRIP_Y + STRIP_H,
            xx + 3.0,
            TOP + 14.0 + 14.0 * (i % 2) as f64,
            xml_escape(&e.label),
            xml_escape(&e.key.replace('_', " "))
        );
    }
    // Points (thinned to at most ~20,000, failures always kept).
    let ok = samples.iter().filter(|s| s.outcome.is_ok()).count();
    let keep_every = (ok / 20_000).max(1);
    let mut n_ok = 0;
    for s in samples {
        let t = since(s.start, epoch).as_secs_f64();
        let lat = s.latency.as_secs_f64() * 1e3;
        if s.outcome.is_ok() {
            n_ok += 1;
            if n_ok % keep_every != 0 {
                continue;
            }
            let _ = writeln!(
                o,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.8" fill="{}"/>"#,
                x(t),
                y(lat),
                color(&s.outcome)
            );
        } else {
            let (cx, cy) = (x(t), y(lat));
            let _ = writeln!(
                o,
                r##"<path d="M{:.1} {:.1}l5 5m0 -5l-5 5" stroke="#d62728" stroke-width="1.2"/>"##,
                cx - 2.5,
                cy - 2.5
            );
        }
    }
    // The serving strip: which balancer answered, failures in red.
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">serving</text>"#,
        LEFT - 6.0,
        STRIP_Y + 13.0
    );
    for s in samples {
        let t = since(s.start, epoch).as_secs_f64();
        let c = match &s.outcome {
            Outcome::Answer(a) if a.via == "lb1" => "#1f4e9c",
            Outcome::Answer(a) if a.via == "lb2" => "#c55a11",
            Outcome::Answer(_) => "#7f7f7f",
            _ => "#d62728",
        };
        let _ = writeln!(
            o,
            r#"<rect x="{:.1}" y="{STRIP_Y}" width="1.2" height="{STRIP_H}" fill="{c}"/>"#,
            x(t)
        );
    }
    // Legend.
    let legend = [
        ("#1f4e9c", "lb1 -> rs1"),
        ("#5b9bd5", "lb1 -> rs2"),
        ("#c55a11", "lb2 -> rs1"),
        ("#f4b183", "lb2 -> rs2"),
        ("#d62728", "failed (x)"),
    ];
    let mut lx = LEFT;
    let ly = H - 12.0;
    for (c, label) in legend {
        let _ = writeln!(
            o,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{c}"/><text x="{:.1}" y="{ly:.1}">{label}</text>"#,
            ly - 9.0,
            lx + 14.0
        );
        lx += 130.0;
    }
    o.push_str("</svg>\n");
    o
}
