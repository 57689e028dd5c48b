//! What one check found.

use std::fmt;
use std::time::Duration;

/// Why a check passed or failed, in HAProxy's words (its `check_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Layer 4 passed: the connection was accepted.
    L4Ok,
    /// Layer 4 timed out: no answer to the connect.
    L4Tout,
    /// Layer 4 failed: refused, unreachable, reset.
    L4Con,
    /// Layer 6 (TLS) timed out.
    L6Tout,
    /// Layer 6 (TLS) failed: handshake or certificate.
    L6Rsp,
    /// Layer 7 passed.
    L7Ok,
    /// Layer 7 timed out: no complete answer in time.
    L7Tout,
    /// Layer 7 answer was not valid, or did not hold what was expected.
    L7Rsp,
    /// Layer 7 answer had a status that does not pass.
    L7Sts,
}

impl Code {
    /// HAProxy's name for it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::L4Ok => "L4OK",
            Self::L4Tout => "L4TOUT",
            Self::L4Con => "L4CON",
            Self::L6Tout => "L6TOUT",
            Self::L6Rsp => "L6RSP",
            Self::L7Ok => "L7OK",
            Self::L7Tout => "L7TOUT",
            Self::L7Rsp => "L7RSP",
            Self::L7Sts => "L7STS",
        }
    }

    /// Whether it is a pass.
    #[must_use]
    pub const fn passed(self) -> bool {
        matches!(self, Self::L4Ok | Self::L7Ok)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Why it passed or failed.
    pub code: Code,
    /// What was seen, for a person ("connection refused", "status 503", ...).
    pub detail: String,
    /// How long it took.
    pub duration: Duration,
}

impl Outcome {
    /// Whether it passed.
    #[must_use]
    pub const fn passed(&self) -> bool {
        self.code.passed()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in {} ms",
            self.code,
            self.detail,
            self.duration.as_millis()
        )
    }
}
