//! rvs's health checks, apart from what the table does with them:
//! - [`probe`]: one check of one address, as its [`CheckSpec`] says (tcp, http, https),
//!   answering an [`Outcome`] with HAProxy's reason codes (`L4OK`, `L4CON`, `L7STS`, ...);
//! - [`verdict`]: rise and fall, turning outcomes into up and down;
//! - [`schedule`]: when the next check is due (interval, fastinter, downinter), first checks
//!   spread over the interval so thousands of them do not fire together;
//! - [`runner`]: the [`Checker`], one task per (address, check) however many services use it,
//!   reporting each verdict change to its subscribers.
//!
//! rvsd turns the reports into health commands on the one table.
//!
//! [`CheckSpec`]: rvs_core::CheckSpec
//! [`Outcome`]: outcome::Outcome
//! [`Checker`]: runner::Checker

#![deny(missing_docs)]

pub mod outcome;
pub mod probe;
pub mod runner;
pub mod schedule;
pub mod verdict;
