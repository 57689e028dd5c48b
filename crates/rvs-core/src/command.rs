//! What can be asked of the table (commands, ipvsadm's verbs) and what it reports back (changes).

use crate::config::{DestConfig, ServiceConfig, Timeouts};
use crate::health::{Health, HealthPolicy};
use crate::key::ServiceKey;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A request to change the table. Each is validated whole before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// `-A`: add a virtual service.
    AddService(ServiceConfig),
    /// `-E`: change a virtual service's scheduler, flags or persistence.
    EditService(ServiceConfig),
    /// `-D`: delete a virtual service and its dests.
    DelService {
        /// The service.
        service: ServiceKey,
    },
    /// `-a`: add a dest to a service.
    AddDest {
        /// The service.
        service: ServiceKey,
        /// The dest.
        dest: DestConfig,
    },
    /// `-e`: change a dest's forwarding, weight or thresholds.
    EditDest {
        /// The service.
        service: ServiceKey,
        /// The dest, with its new settings.
        dest: DestConfig,
    },
    /// `-d`: delete a dest.
    DelDest {
        /// The service.
        service: ServiceKey,
        /// The dest's address.
        dest: SocketAddr,
    },
    /// `-C`: delete every service.
    Clear,
    /// `-Z`: zero the counters of one service, or of all.
    Zero {
        /// The service, or `None` for all.
        service: Option<ServiceKey>,
    },
    /// `--set`: the tcp, tcpfin and udp timeouts; 0 keeps a value.
    SetTimeouts(Timeouts),
    /// A service's health policy (intent: failure handling, fallback, quorum).
    SetHealthPolicy {
        /// The service.
        service: ServiceKey,
        /// The policy (boxed: it is far larger than the other commands).
        policy: Box<HealthPolicy>,
    },
    /// What checks found of a dest (the runtime overlay; never intent).
    SetHealth {
        /// The service.
        service: ServiceKey,
        /// The dest's address.
        dest: SocketAddr,
        /// The verdict.
        health: Health,
    },
    /// Several commands applied all or none (`-R`, config reloads).
    Batch {
        /// The commands, in order.
        commands: Vec<Command>,
    },
}

impl Command {
    /// A batch of commands, applied all or none.
    #[must_use]
    pub const fn batch(commands: Vec<Self>) -> Self {
        Self::Batch { commands }
    }
}

/// One applied change: what data planes and other mirrors of the table receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A service was added (it has no dests yet).
    ServiceAdded(ServiceConfig),
    /// A service's settings changed.
    ServiceEdited(ServiceConfig),
    /// A service and its dests were removed.
    ServiceRemoved {
        /// The service.
        service: ServiceKey,
    },
    /// A dest was added (at the head of the service's list).
    DestAdded {
        /// The service.
        service: ServiceKey,
        /// The dest, normalised.
        dest: DestConfig,
    },
    /// A dest's settings changed.
    DestEdited {
        /// The service.
        service: ServiceKey,
        /// The dest's new settings.
        dest: DestConfig,
    },
    /// A dest was removed.
    DestRemoved {
        /// The service.
        service: ServiceKey,
        /// The dest's address.
        dest: SocketAddr,
    },
    /// Counters were zeroed.
    Zeroed {
        /// The service, or `None` for all.
        service: Option<ServiceKey>,
    },
    /// The timeouts now in force.
    TimeoutsSet(Timeouts),
    /// A service's health policy changed.
    HealthPolicySet {
        /// The service.
        service: ServiceKey,
        /// The policy (boxed: it is far larger than the other commands).
        policy: Box<HealthPolicy>,
    },
    /// A dest's health changed.
    HealthSet {
        /// The service.
        service: ServiceKey,
        /// The dest's address.
        dest: SocketAddr,
        /// The verdict.
        health: Health,
    },
}

impl Change {
    /// The one service this change is about, if it is about one.
    #[must_use]
    pub const fn service(&self) -> Option<ServiceKey> {
        match self {
            Self::ServiceAdded(c) | Self::ServiceEdited(c) => Some(c.key),
            Self::ServiceRemoved { service }
            | Self::DestAdded { service, .. }
            | Self::DestEdited { service, .. }
            | Self::DestRemoved { service, .. }
            | Self::HealthPolicySet { service, .. }
            | Self::HealthSet { service, .. } => Some(*service),
            Self::Zeroed { service } => *service,
            Self::TimeoutsSet(_) => None,
        }
    }

    /// The command that makes this change on a table that mirrors the one it came from.
    #[must_use]
    pub fn to_command(&self) -> Command {
        match self.clone() {
            Self::ServiceAdded(c) => Command::AddService(c),
            Self::ServiceEdited(c) => Command::EditService(c),
            Self::ServiceRemoved { service } => Command::DelService { service },
            Self::DestAdded { service, dest } => Command::AddDest { service, dest },
            Self::DestEdited { service, dest } => Command::EditDest { service, dest },
            Self::DestRemoved { service, dest } => Command::DelDest { service, dest },
            Self::Zeroed { service } => Command::Zero { service },
            Self::TimeoutsSet(t) => Command::SetTimeouts(t),
            Self::HealthPolicySet { service, policy } => {
                Command::SetHealthPolicy { service, policy }
            }
            Self::HealthSet {
                service,
                dest,
                health,
            } => Command::SetHealth {
                service,
                dest,
                health,
            },
        }
    }
}
