//! Outage analysis of a [`Probe`](crate::Probe)'s samples (as the shell harness's probe.py):
//! [`outage`](fn@outage), [`takeover`] and [`serving_at`].

use std::time::{Duration, Instant};

use crate::Sample;

fn answered_by<'a>(samples: &'a [Sample], name: &'a str) -> impl Iterator<Item = &'a Sample> {
    samples
        .iter()
        .filter(move |s| s.answer.as_deref() == Some(name))
}

/// The switch-over gap a client saw: the first answer from `to` at or after `after`, minus the
/// last answer from `from` received before it. `None` if `to` never answered after `after` or
/// `from` never answered before that.
pub fn outage(samples: &[Sample], from: &str, to: &str, after: Instant) -> Option<Duration> {
    let first_to = answered_by(samples, to)
        .filter(|s| s.t >= after)
        .map(|s| s.t)
        .min()?;
    let last_from = answered_by(samples, from)
        .filter(|s| s.t <= first_to)
        .map(|s| s.t)
        .max()?;
    Some(first_to.saturating_duration_since(last_from))
}

/// From the fault to the first answer from `to` at or after it.
pub fn takeover(samples: &[Sample], to: &str, fault_at: Instant) -> Option<Duration> {
    let first_to = answered_by(samples, to)
        .filter(|s| s.t >= fault_at)
        .map(|s| s.t)
        .min()?;
    Some(first_to.saturating_duration_since(fault_at))
}

/// Who was serving at `t`: the answer of the last successful probe completed at or before `t`.
pub fn serving_at(samples: &[Sample], t: Instant) -> Option<&str> {
    samples
        .iter()
        .filter(|s| s.t <= t)
        .filter_map(|s| s.answer.as_deref().map(|a| (s.t, a)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn sample(base: Instant, ms: u64, answer: Option<&str>) -> Sample {
        let t = base + Duration::from_millis(ms);
        Sample {
            sent: t,
            t,
            answer: answer.map(str::to_owned),
            error: answer.is_none().then_some(io::ErrorKind::TimedOut),
        }
    }

    #[test]
    fn analyses() {
        let b = Instant::now();
        let s = vec![
            sample(b, 0, Some("lb1")),
            sample(b, 5, Some("lb1")),
            sample(b, 10, None),
            sample(b, 300, Some("lb2")),
            sample(b, 305, Some("lb1")),
            sample(b, 310, Some("lb2")),
        ];
        let fault = b + Duration::from_millis(7);
        assert_eq!(
            outage(&s, "lb1", "lb2", fault),
            Some(Duration::from_millis(295))
        );
        assert_eq!(takeover(&s, "lb2", fault), Some(Duration::from_millis(293)));
        assert_eq!(serving_at(&s, b + Duration::from_millis(200)), Some("lb1"));
        assert_eq!(serving_at(&s, b + Duration::from_millis(300)), Some("lb2"));
        assert_eq!(outage(&s, "lb1", "lb3", fault), None);
        assert_eq!(serving_at(&s[2..], b + Duration::from_millis(20)), None);
    }
}
