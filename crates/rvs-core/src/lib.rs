//! The IPVS model of rvs: virtual services, dests, the 14 schedulers with the Linux kernel's
//! semantics, persistence templates, thresholds, counters and rates.
//!
//! This crate performs **no I/O**: no sockets, no files, no clock, no async runtime. Time is
//! passed in as a [`Timestamp`], randomness as a [`rand_core::RngCore`]. The rest of rvs turns
//! requests into [`Command`]s, applies them to the one [`Table`], and hands the resulting
//! [`Change`]s to the data planes, which implement [`DataPlane`].
//!
//! ```
//! use rvs_core::{Command, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey, Table};
//!
//! let vip = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
//! let mut table = Table::new();
//! table.apply(Command::AddService(ServiceConfig::new(vip).with_scheduler(SchedulerKind::Rr))).unwrap();
//! let dest = DestConfig::new("198.18.1.1:80".parse().unwrap(), ForwardMethod::Masq);
//! let changes = table.apply(Command::AddDest { service: vip, dest }).unwrap();
//! assert_eq!(changes.len(), 1);
//! assert!(table.apply(Command::AddDest { service: vip, dest }).is_err(), "already there");
//! ```

#![deny(missing_docs)]

pub mod check;
pub mod command;
pub mod config;
pub mod conn;
pub mod dataplane;
pub mod describe;
pub mod dest;
pub mod error;
pub mod health;
pub mod key;
pub mod overlay;
pub mod persistence;
pub mod protocol;
pub mod sched;
pub mod service;
pub mod stats;
pub mod table;
pub mod time;
pub mod validate;

pub use check::{CheckKind, CheckSpec, Seconds};
pub use command::{Change, Command};
pub use config::{
    DestConfig, ForwardMethod, PersistMask, Persistence, ProxyProtocol, SchedFlags, SchedulerKind,
    ServiceConfig, Timeouts, Tunnel, TunnelCsum, TunnelKind,
};
pub use conn::{ConnState, ConnVirtual, ConnectionEntry};
pub use dataplane::{
    ConnectionReader, DataPlane, DataPlaneError, DestStats, PlaneCounter, ServiceStats,
};
pub use dest::{ConnCounts, Dest};
pub use error::{ErrnoClass, TableError};
pub use health::{DestRuntime, Health, HealthPolicy, OnFailure};
pub use key::ServiceKey;
pub use protocol::{Family, Protocol};
pub use sched::Flow;
pub use service::{ConnTicket, NoDestination, Service};
pub use stats::{Counters, Rates, Stats};
pub use table::{ServiceEntry, Table, TableConfig};
pub use time::Timestamp;
