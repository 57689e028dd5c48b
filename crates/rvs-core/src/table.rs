//! The table: every virtual service, and the one place where commands become changes.
//!
//! [`Table::apply`] validates a command against the current table first and only then changes
//! it, so a refused command leaves the table exactly as it was; a [`Command::Batch`] is applied
//! to a copy that replaces the table only when every command succeeded.

use crate::command::{Change, Command};
use crate::config::{DestConfig, ServiceConfig, Timeouts};
use crate::error::TableError;
use crate::health::HealthPolicy;
use crate::key::ServiceKey;
use crate::sched::Scheduler;
use crate::service::Service;
use crate::time::Timestamp;
use crate::validate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A service's configuration and its dests', as stored and compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// The service.
    #[serde(flatten)]
    pub config: ServiceConfig,
    /// Its dests in kernel list order (newest first).
    #[serde(default)]
    pub dests: Vec<DestConfig>,
    /// Its health policy (absent where nothing checks it).
    #[serde(default, skip_serializing_if = "HealthPolicy::is_default")]
    pub health: HealthPolicy,
}

/// The configuration of a whole table: what persists across restarts and what reloads compare.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableConfig {
    /// Services in the order they were added.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// The `--set` timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// Every virtual service, in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Shared until written: a staged copy of the table (the director stages every command on
    /// one) costs a pointer per service, and a change then copies only the service it touches.
    services: Vec<Arc<Service>>,
    index: HashMap<ServiceKey, usize>,
    timeouts: Timeouts,
    expire_quiescent_template: bool,
}

impl Table {
    /// An empty table with the kernel's default timeouts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a table from a configuration, validating it as one batch.
    ///
    /// # Errors
    /// The first rule the configuration breaks, inside [`TableError::InBatch`].
    pub fn from_config(config: &TableConfig) -> Result<Self, TableError> {
        let mut table = Self::new();
        table.apply(Command::batch(Self::diff(&TableConfig::default(), config)))?;
        Ok(table)
    }

    /// The configuration of the whole table.
    #[must_use]
    pub fn config(&self) -> TableConfig {
        TableConfig {
            services: self.services.iter().map(|s| s.entry()).collect(),
            timeouts: self.timeouts,
        }
    }

    /// The services in the order they were added.
    pub fn services(&self) -> impl ExactSizeIterator<Item = &Service> {
        self.services.iter().map(|s| &**s)
    }

    /// One service.
    #[must_use]
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.index.get(key).map(|&i| &*self.services[i])
    }

    /// One service, mutable: data planes schedule and count connections through it.
    pub fn service_mut(&mut self, key: &ServiceKey) -> Option<&mut Service> {
        self.index
            .get(key)
            .map(|&i| Arc::make_mut(&mut self.services[i]))
    }

    /// The timeouts in force.
    #[must_use]
    pub const fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sets the kernel's `expire_quiescent_template` sysctl for every service.
    pub fn set_expire_quiescent_template(&mut self, on: bool) {
        self.expire_quiescent_template = on;
        for s in &mut self.services {
            Arc::make_mut(s).set_expire_quiescent_template(on);
        }
    }

    /// Validates and applies a command, returning the changes made.
    ///
    /// # Errors
    /// Why the command was refused; the table is then unchanged.
    pub fn apply(&mut self, command: Command) -> Result<Vec<Change>, TableError> {
        if let Command::Batch { commands } = command {
            return self.apply_batch(commands);
        }
        let command = self.check(command)?;
        Ok(self.commit(command))
    }

    /// Applies a change reported by another table, to keep a mirror in step.
    ///
    /// # Errors
    /// When the mirror has drifted and the change does not fit it.
    pub fn apply_change(&mut self, change: &Change) -> Result<(), TableError> {
        self.apply(change.to_command()).map(drop)
    }

    fn apply_batch(&mut self, commands: Vec<Command>) -> Result<Vec<Change>, TableError> {
        let mut staged = self.clone();
        let mut changes = Vec::new();
        for (index, command) in commands.into_iter().enumerate() {
            match staged.apply(command) {
                Ok(c) => changes.extend(c),
                Err(e) => {
                    return Err(TableError::InBatch {
                        index,
                        source: Box::new(e),
                    })
                }
            }
        }
        *self = staged;
        Ok(changes)
    }

    fn existing(&self, service: ServiceKey) -> Result<&Service, TableError> {
        self.service(&service)
            .ok_or(TableError::ServiceNotFound { service })
    }

    fn check_dest_limit(service: &ServiceConfig, count: usize) -> Result<(), TableError> {
        match Scheduler::dest_limit(service.scheduler) {
            Some(limit) if count > limit => Err(TableError::TooManyDests {
                service: service.key,
                scheduler: service.scheduler,
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Validates a command against the table; returns it normalised.
    fn check(&self, command: Command) -> Result<Command, TableError> {
        match command {
            Command::AddService(config) => {
                // The kernel looks the service up first (EEXIST), then its scheduler and
                // persistence engine (ENOENT) and the rest.
                if self.index.contains_key(&config.key) {
                    return Err(TableError::ServiceExists {
                        service: config.key,
                    });
                }
                validate::service(&config)?;
                Ok(Command::AddService(config))
            }
            Command::EditService(config) => {
                validate::service(&config)?;
                let existing = self.existing(config.key)?;
                Self::check_dest_limit(&config, existing.dests().len())?;
                Ok(Command::EditService(config))
            }
            Command::DelService { service } => {
                self.existing(service)?;
                Ok(Command::DelService { service })
            }
            Command::AddDest { service, dest } => {
                let svc = self.existing(service)?;
                let dest = validate::dest(svc.config(), dest)?;
                if svc.dest(&dest.addr).is_some() {
                    return Err(TableError::DestExists {
                        service,
                        dest: dest.addr,
                    });
                }
                Self::check_dest_limit(svc.config(), svc.dests().len() + 1)?;
                Ok(Command::AddDest { service, dest })
            }
            Command::EditDest { service, dest } => {
                let svc = self.existing(service)?;
                let dest = validate::dest(svc.config(), dest)?;
                if svc.dest(&dest.addr).is_none() {
                    return Err(TableError::DestNotFound {
                        service,
                        dest: dest.addr,
                    });
                }
                Ok(Command::EditDest { service, dest })
            }
            Command::DelDest { service, dest } => {
                let svc = self.existing(service)?;
                if svc.dest(&dest).is_none() {
                    return Err(TableError::DestNotFound { service, dest });
                }
                Ok(Command::DelDest { service, dest })
            }
            Command::Zero {
                service: Some(service),
            } => {
                self.existing(service)?;
                Ok(Command::Zero {
                    service: Some(service),
                })
            }
            Command::SetTimeouts(t) => {
                validate::timeouts(&t)?;
                Ok(Command::SetTimeouts(t))
            }
            Command::SetHealthPolicy { service, policy } => {
                let svc = self.existing(service)?;
                validate::health_policy(svc.config(), &policy)?;
                Ok(Command::SetHealthPolicy { service, policy })
            }
            Command::SetHealth {
                service,
                dest,
                health,
            } => {
                let svc = self.existing(service)?;
                if svc.dest(&dest).is_none() {
                    return Err(TableError::DestNotFound { service, dest });
                }
                Ok(Command::SetHealth {
                    service,
                    dest,
                    health,
                })
            }
            other @ (Command::Clear | Command::Zero { service: None } | Command::Batch { .. }) => {
                Ok(other)
            }
        }
    }

    /// Applies a validated command. Never fails.
    fn commit(&mut self, command: Command) -> Vec<Change> {
        match command {
            Command::AddService(config) => {
                let mut service = Service::new(config.clone());
                service.set_expire_quiescent_template(self.expire_quiescent_template);
                self.index.insert(config.key, self.services.len());
                self.services.push(Arc::new(service));
                vec![Change::ServiceAdded(config)]
            }
            Command::EditService(config) => {
                if let Some(s) = self.service_mut(&config.key) {
                    s.set_config(config.clone());
                }
                vec![Change::ServiceEdited(config)]
            }
            Command::DelService { service } => {
                self.remove_service(&service);
                vec![Change::ServiceRemoved { service }]
            }
            Command::AddDest { service, dest } => {
                if let Some(s) = self.service_mut(&service) {
                    s.add_dest(dest);
                }
                vec![Change::DestAdded { service, dest }]
            }
            Command::EditDest { service, dest } => {
                if let Some(s) = self.service_mut(&service) {
                    s.edit_dest(dest);
                }
                vec![Change::DestEdited { service, dest }]
            }
            Command::DelDest { service, dest } => {
                if let Some(s) = self.service_mut(&service) {
                    s.remove_dest(&dest);
                }
                vec![Change::DestRemoved { service, dest }]
            }
            Command::Clear => {
                let keys: Vec<ServiceKey> = self.services.iter().map(|s| s.key()).collect();
                self.services.clear();
                self.index.clear();
                keys.into_iter()
                    .map(|service| Change::ServiceRemoved { service })
                    .collect()
            }
            Command::Zero { service } => {
                for s in &mut self.services {
                    if service.is_none_or(|k| k == s.key()) {
                        Arc::make_mut(s).zero();
                    }
                }
                vec![Change::Zeroed { service }]
            }
            Command::SetTimeouts(t) => {
                let keep = |new: u32, old: u32| if new == 0 { old } else { new };
                self.timeouts = Timeouts {
                    tcp: keep(t.tcp, self.timeouts.tcp),
                    tcp_fin: keep(t.tcp_fin, self.timeouts.tcp_fin),
                    udp: keep(t.udp, self.timeouts.udp),
                };
                vec![Change::TimeoutsSet(self.timeouts)]
            }
            Command::SetHealthPolicy { service, policy } => {
                if let Some(s) = self.service_mut(&service) {
                    s.set_policy((*policy).clone());
                }
                vec![Change::HealthPolicySet { service, policy }]
            }
            Command::SetHealth {
                service,
                dest,
                health,
            } => {
                let Some(s) = self.service_mut(&service) else {
                    return Vec::new();
                };
                if s.dest(&dest).is_some_and(|d| d.health == health) {
                    return Vec::new();
                }
                s.set_health(&dest, health);
                vec![Change::HealthSet {
                    service,
                    dest,
                    health,
                }]
            }
            Command::Batch { commands } => {
                commands.into_iter().flat_map(|c| self.commit(c)).collect()
            }
        }
    }

    fn remove_service(&mut self, key: &ServiceKey) {
        if let Some(i) = self.index.remove(key) {
            self.services.remove(i);
            for (pos, s) in self.services.iter().enumerate().skip(i) {
                self.index.insert(s.key(), pos);
            }
        }
    }

    /// Runs estimators and expiry timers of every service up to `now`.
    pub fn tick(&mut self, now: Timestamp) {
        for s in &mut self.services {
            let s = Arc::make_mut(s);
            s.estimate(now);
            s.expire(now);
        }
    }

    /// The commands that turn configuration `from` into `to`, touching only what differs:
    /// unchanged services and dests are left alone, so they keep their connections, counters
    /// and health.
    #[must_use]
    pub fn diff(from: &TableConfig, to: &TableConfig) -> Vec<Command> {
        let old: HashMap<ServiceKey, &ServiceEntry> =
            from.services.iter().map(|s| (s.config.key, s)).collect();
        let new: HashMap<ServiceKey, &ServiceEntry> =
            to.services.iter().map(|s| (s.config.key, s)).collect();
        let mut commands: Vec<Command> = from
            .services
            .iter()
            .filter(|s| !new.contains_key(&s.config.key))
            .map(|s| Command::DelService {
                service: s.config.key,
            })
            .collect();
        for entry in &to.services {
            let service = entry.config.key;
            match old.get(&service) {
                None => {
                    commands.push(Command::AddService(entry.config.clone()));
                    if !entry.health.is_default() {
                        // Before the dests, so they start with the policy's initial health.
                        commands.push(Command::SetHealthPolicy {
                            service,
                            policy: Box::new(entry.health.clone()),
                        });
                    }
                    commands.extend(
                        entry
                            .dests
                            .iter()
                            .rev()
                            .map(|&dest| Command::AddDest { service, dest }),
                    );
                }
                Some(before) => {
                    if before.config != entry.config {
                        commands.push(Command::EditService(entry.config.clone()));
                    }
                    if before.health != entry.health {
                        commands.push(Command::SetHealthPolicy {
                            service,
                            policy: Box::new(entry.health.clone()),
                        });
                    }
                    commands.extend(diff_dests(service, &before.dests, &entry.dests));
                }
            }
        }
        if from.timeouts != to.timeouts {
            commands.push(Command::SetTimeouts(to.timeouts));
        }
        commands
    }
}

/// Dest commands from one dest list to another: deletions, edits, then additions oldest first.
fn diff_dests(service: ServiceKey, from: &[DestConfig], to: &[DestConfig]) -> Vec<Command> {
    let old: HashMap<SocketAddr, &DestConfig> = from.iter().map(|d| (d.addr, d)).collect();
    let new: HashMap<SocketAddr, &DestConfig> = to.iter().map(|d| (d.addr, d)).collect();
    let mut commands: Vec<Command> = from
        .iter()
        .filter(|d| !new.contains_key(&d.addr))
        .map(|d| Command::DelDest {
            service,
            dest: d.addr,
        })
        .collect();
    for d in to.iter().rev() {
        match old.get(&d.addr) {
            None => commands.push(Command::AddDest { service, dest: *d }),
            Some(before) if *before != d => commands.push(Command::EditDest { service, dest: *d }),
            Some(_) => {}
        }
    }
    commands
}
