//! Rise and fall: a dest goes up after `rise` passes in a row and down after `fall` failures
//! in a row; in between it keeps its verdict.

use rvs_core::Health;

/// The verdict of one probe and the run that may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    state: Health,
    passes: u32,
    failures: u32,
    rise: u32,
    fall: u32,
}

impl Tracker {
    /// A tracker starting at `state` (up or down).
    #[must_use]
    pub const fn new(state: Health, rise: u32, fall: u32) -> Self {
        Self {
            state,
            passes: 0,
            failures: 0,
            rise,
            fall,
        }
    }

    /// The verdict.
    #[must_use]
    pub const fn state(&self) -> Health {
        self.state
    }

    /// Whether a run against the verdict has begun (HAProxy's transitional states, when
    /// `fastinter` applies).
    #[must_use]
    pub const fn changing(&self) -> bool {
        match self.state {
            Health::Down => self.passes > 0,
            Health::Up | Health::Unchecked => self.failures > 0,
        }
    }

    /// Counts one outcome; returns the new verdict when it changes.
    pub fn record(&mut self, passed: bool) -> Option<Health> {
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
            if self.state != Health::Up && self.passes >= self.rise {
                self.state = Health::Up;
                return Some(Health::Up);
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.passes = 0;
            if self.state != Health::Down && self.failures >= self.fall {
                self.state = Health::Down;
                return Some(Health::Down);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_count_runs_in_a_row() {
        let mut t = Tracker::new(Health::Down, 2, 3);
        assert_eq!(t.record(true), None);
        assert!(t.changing());
        assert_eq!(t.record(false), None, "a failure breaks the run");
        assert!(!t.changing());
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(Health::Up));
        assert_eq!(t.record(true), None, "a verdict is reported once");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(Health::Down));
        assert_eq!(t.state(), Health::Down);
    }

    #[test]
    fn one_pass_brings_up_a_dest_that_starts_down_with_rise_one() {
        let mut t = Tracker::new(Health::Down, 1, 1);
        assert_eq!(t.record(true), Some(Health::Up));
        assert_eq!(t.record(false), Some(Health::Down));
    }
}
