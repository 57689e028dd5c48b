//! When checks run: every `interval`, `fastinter` while a verdict is changing, `downinter`
//! while down; the first check of each probe at an offset within the interval taken from a
//! hash of the probe, so a thousand probes added at once spread over it. Each next time is
//! counted from the previous *scheduled* time, not from when the check ended, so checks do
//! not drift by their own duration.

use rvs_core::{CheckSpec, Health};
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// The longest a first check waits: a checked dest starts down, so the first check should
/// come soon even with a long interval.
pub const FIRST_CHECK_WITHIN: Duration = Duration::from_secs(1);

/// The delay before a probe's first check: a stable spread of `key` over the interval
/// (at most [`FIRST_CHECK_WITHIN`]).
#[must_use]
pub fn first_delay(spec: &CheckSpec, key: &impl Hash) -> Duration {
    let window = spec.interval.duration().min(FIRST_CHECK_WITHIN);
    let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x7276_7368, 0x6865_616c);
    key.hash(&mut h);
    Duration::from_micros(h.finish() % window_us)
}

/// The delay between a check and the next, given the verdict and whether it is changing.
#[must_use]
pub fn next_delay(spec: &CheckSpec, state: Health, changing: bool) -> Duration {
    let chosen = if changing {
        spec.fastinter
    } else if state == Health::Down {
        spec.downinter
    } else {
        None
    };
    chosen.unwrap_or(spec.interval).duration()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{CheckKind, Seconds};

    #[test]
    fn first_checks_spread_over_the_window_and_intervals_follow_the_state() {
        let mut spec = CheckSpec::new(CheckKind::Tcp);
        spec.interval = Seconds(500);
        spec.fastinter = Some(Seconds(100));
        spec.downinter = Some(Seconds(5000));
        let delays: Vec<Duration> = (0..1000u32).map(|i| first_delay(&spec, &i)).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_millis(500)));
        // Spread: each tenth of the window holds some.
        for tenth in 0..10u64 {
            let lo = Duration::from_millis(50 * tenth);
            let hi = lo + Duration::from_millis(50);
            let n = delays.iter().filter(|d| **d >= lo && **d < hi).count();
            assert!((50..=150).contains(&n), "tenth {tenth}: {n}");
        }
        assert_eq!(
            next_delay(&spec, Health::Up, false),
            Duration::from_millis(500)
        );
        assert_eq!(
            next_delay(&spec, Health::Up, true),
            Duration::from_millis(100)
        );
        assert_eq!(
            next_delay(&spec, Health::Down, false),
            Duration::from_millis(5000)
        );
        assert_eq!(
            next_delay(&spec, Health::Down, true),
            Duration::from_millis(100)
        );
    }
}
