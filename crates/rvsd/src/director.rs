//! The director: the one table, its durable state, the sync daemons and the data plane.
//! Every writer of intent (API, reload, later VRRP) goes through [`Director::apply`]; health
//! checks through [`Director::set_health`], which changes the runtime overlay only. The plane
//! gets what the overlay makes of the table (`rvs_core::overlay`): effective weights and
//! membership, never health itself.

use crate::state::{Entry, State, StateError, StateStore};
use rvs_config as config;
use rvs_core::{overlay, Change, Command, ConnectionEntry, DataPlane, Health, ServiceKey, Table};
use rvs_proto::{ApiError, Applied, ErrorKind, SyncDaemon, SyncState, TableView};
use std::collections::HashMap;
use std::path::PathBuf;

/// Lists the health checks (the checker's probes and their subscribers).
pub type CheckReader = std::sync::Arc<dyn Fn() -> Vec<rvs_proto::CheckView> + Send + Sync>;

/// The size the listing banner shows (`IP Virtual Server version 1.2.1 (size=4096)`).
pub const CONN_TABLE_SIZE: u32 = 4096;

/// Why rvsd cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state could not be loaded.
    #[error(transparent)]
    State(#[from] StateError),
    /// The configuration file was refused.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The data plane refused the restored table.
    #[error("the {plane} data plane cannot realise the restored table: {message}")]
    Plane {
        /// The plane.
        plane: &'static str,
        /// Why.
        message: String,
    },
}

/// The director.
pub struct Director {
    table: Table,
    /// What the plane has: the table with health laid over it.
    plane_table: Table,
    /// Counts changes of intent, so the health checker knows when to look at the table again.
    intent_version: u64,
    /// Reads the health checker's probes, for listings made without the director's lock.
    check_reader: Option<CheckReader>,
    daemons: Vec<SyncDaemon>,
    plane: Box<dyn DataPlane>,
    store: StateStore,
    config_path: Option<PathBuf>,
    /// Services of the table the plane refused at start (an occupied VIP port, ...), with
    /// its reason: the rest run, these are retried ([`Director::retry_unrealised`]) and
    /// their changes are kept from the plane until then.
    unrealised: HashMap<ServiceKey, String>,
}

/// How often services the plane refused at start are tried again.
pub const RETRY_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands restored changes to the plane service by service: the changes of no one service
/// must succeed; a service the plane refuses is left out and returned with the reason.
fn realise(
    plane: &mut dyn DataPlane,
    changes: &[Change],
) -> Result<HashMap<ServiceKey, String>, rvs_core::DataPlaneError> {
    let global: Vec<Change> = changes
        .iter()
        .filter(|c| c.service().is_none())
        .cloned()
        .collect();
    plane.apply(&global)?;
    let mut groups: Vec<(ServiceKey, Vec<Change>)> = Vec::new();
    for c in changes {
        let Some(key) = c.service() else { continue };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(c.clone()),
            None => groups.push((key, vec![c.clone()])),
        }
    }
    let mut refused = HashMap::new();
    for (key, group) in groups {
        if let Err(e) = plane.apply(&group) {
            tracing::error!(
                service = %key,
                error = %e,
                "the data plane cannot serve this service yet; the others run, and it is retried every {} s",
                RETRY_PERIOD.as_secs()
            );
            refused.insert(key, e.to_string());
        }
    }
    Ok(refused)
}

impl Director {
    /// Restores the state from `store`, then applies the configuration file if one is given
    /// (the file is the declared truth), and hands the table to the plane.
    ///
    /// # Errors
    /// [`StartError`] naming what was refused; nothing is written in that case.
    pub fn start(
        mut store: StateStore,
        mut plane: Box<dyn DataPlane>,
        config_path: Option<PathBuf>,
    ) -> Result<Self, StartError> {
        let state = store.load()?;
        let mut table = Table::new();
        let plane_err = |plane: &dyn DataPlane, e: String| StartError::Plane {
            plane: plane.name(),
            message: e,
        };
        let mut changes = table
            .apply(Command::batch(Table::diff(
                &rvs_core::TableConfig::default(),
                &state.table,
            )))
            .map_err(|e| {
                StartError::State(StateError::Corrupt {
                    path: store.path(),
                    problem: e.to_string(),
                })
            })?;
        if let Some(path) = &config_path {
            let wanted = config::load(path)?.table;
            let more = table
                .apply(Command::batch(Table::diff(&table.config(), &wanted)))
                .map_err(|e| config::ConfigError {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            changes.extend(more);
        }
        drop(changes);
        let mut plane_table = Table::new();
        let changes = overlay::plane_from(&mut plane_table, &table)
            .map_err(|e| plane_err(plane.as_ref(), format!("the table's effective copy: {e}")))?;
        plane
            .check(&changes)
            .map_err(|e| plane_err(plane.as_ref(), e.to_string()))?;
        let unrealised = realise(plane.as_mut(), &changes)
            .map_err(|e| plane_err(plane.as_ref(), e.to_string()))?;
        let mut director = Self {
            table,
            plane_table,
            intent_version: 0,
            check_reader: None,
            daemons: state.daemons,
            plane,
            store,
            config_path,
            unrealised,
        };
        // A config may have changed the table; a journal left from before is folded in.
        if director.config_path.is_some() || director.store.replayed() > 0 {
            director.save()?;
        }
        tracing::info!(
            services = director.table.services().len(),
            plane = director.plane.name(),
            "table restored"
        );
        Ok(director)
    }

    fn state(&self) -> State {
        State {
            table: self.table.config(),
            daemons: self.daemons.clone(),
        }
    }

    fn save(&mut self) -> Result<(), StateError> {
        let state = self.state();
        self.store.save(&state)
    }

    /// The data plane's name.
    #[must_use]
    pub fn plane_name(&self) -> &'static str {
        self.plane.name()
    }

    /// Number of services.
    #[must_use]
    pub fn service_count(&self) -> usize {
        self.table.services().len()
    }

    /// The data plane's own counters.
    ///
    /// # Errors
    /// The plane's failure to read them.
    pub fn plane_counters(&self) -> Result<Vec<rvs_core::PlaneCounter>, ApiError> {
        Ok(self.plane.counters()?)
    }

    /// The services the plane does not serve yet, and why.
    #[must_use]
    pub fn unrealised(&self) -> Vec<rvs_proto::Unrealised> {
        let mut out: Vec<rvs_proto::Unrealised> = self
            .unrealised
            .iter()
            .map(|(service, error)| rvs_proto::Unrealised {
                service: *service,
                error: error.clone(),
            })
            .collect();
        out.sort_by_key(|u| u.service.to_string());
        out
    }

    /// Offers each service the plane refused at start to it again, as it now stands in the
    /// table (its settings, then its dests oldest first, so the list order is the table's).
    pub fn retry_unrealised(&mut self) {
        let keys: Vec<ServiceKey> = self.unrealised.keys().copied().collect();
        for key in keys {
            let Some(service) = self.plane_table.service(&key) else {
                self.unrealised.remove(&key);
                continue;
            };
            let mut group = vec![Change::ServiceAdded(service.config().clone())];
            group.extend(service.dests().iter().rev().map(|d| Change::DestAdded {
                service: key,
                dest: d.config,
            }));
            match self.plane.apply(&group) {
                Ok(()) => {
                    tracing::info!(service = %key, "the data plane serves the service now");
                    self.unrealised.remove(&key);
                }
                Err(e) => {
                    tracing::debug!(service = %key, error = %e, "still not served");
                    self.unrealised.insert(key, e.to_string());
                }
            }
        }
    }

    /// The table with counters: the plane's when it counts, the table's otherwise.
    ///
    /// # Errors
    /// The plane's failure to read its counters (shown, not hidden behind zeros).
    pub fn view(&self) -> Result<TableView, ApiError> {
        let mut view = TableView::from_table(&self.table, self.daemons.clone(), CONN_TABLE_SIZE);
        for s in self.plane.stats()? {
            let Some(v) = view.services.iter_mut().find(|v| v.config.key == s.service) else {
                continue;
            };
            v.counters = s.counters;
            v.rates = s.rates;
            for d in s.dests {
                if let Some(dv) = v.dests.iter_mut().find(|dv| dv.config.addr == d.addr) {
                    dv.conns = d.conns;
                    dv.counters = d.counters;
                    dv.rates = d.rates;
                }
            }
        }
        Ok(view)
    }

    /// The table (intent, with its health overlay).
    #[must_use]
    pub const fn table(&self) -> &Table {
        &self.table
    }

    /// How many changes of intent there have been since start.
    #[must_use]
    pub const fn intent_version(&self) -> u64 {
        self.intent_version
    }

    /// Where listings read the health checks from (the checker, once it runs).
    pub fn set_check_reader(&mut self, reader: CheckReader) {
        self.check_reader = Some(reader);
    }

    /// The health checks' reader, if a checker runs.
    #[must_use]
    pub fn check_reader(&self) -> Option<CheckReader> {
        self.check_reader.clone()
    }

    /// The plane's reader of live connections, for listings made without the director's
    /// lock (none: [`Director::connections`]).
    #[must_use]
    pub fn connection_reader(&self) -> Option<std::sync::Arc<dyn rvs_core::ConnectionReader>> {
        self.plane.connection_reader()
    }

    /// Live connections, from the plane.
    ///
    /// # Errors
    /// The plane's failure to read them.
    pub fn connections(&self) -> Result<Vec<ConnectionEntry>, ApiError> {
        Ok(self.plane.connections()?)
    }

    /// Validates, persists and applies a command; when this returns `Ok`, the change is on disk.
    ///
    /// # Errors
    /// The table's or plane's refusal, or a storage failure; the table is then unchanged.
    pub fn apply(&mut self, command: Command) -> Result<Applied, ApiError> {
        refuse_health(&command)?;
        let mut staged = self.table.clone();
        let entry = Entry::Command(command.clone());
        let changes = staged.apply(command)?;
        self.commit(staged, changes, Some(&entry))
    }

    /// Records what checks found of a dest: the runtime overlay changes (and what the plane
    /// serves with it), nothing is written to disk. Setting what it is already changes nothing.
    ///
    /// # Errors
    /// When the service or dest is gone, or the plane refuses the effective change.
    pub fn set_health(
        &mut self,
        service: ServiceKey,
        dest: std::net::SocketAddr,
        health: Health,
    ) -> Result<Applied, ApiError> {
        let mut staged = self.table.clone();
        let changes = staged.apply(Command::SetHealth {
            service,
            dest,
            health,
        })?;
        self.commit(staged, changes, None)
    }

    /// Stages, checks, records (when `entry` is given: intent is durable, health is not) and
    /// hands the plane what the change makes of the effective table.
    fn commit(
        &mut self,
        staged: Table,
        changes: Vec<Change>,
        entry: Option<&Entry>,
    ) -> Result<Applied, ApiError> {
        if changes.is_empty() {
            return Ok(Applied::default());
        }
        let mut plane_staged = self.plane_table.clone();
        // Fails only if the copy drifted from the table (a bug), before anything is applied.
        let plane_changes = overlay::plane_changes(&mut plane_staged, &staged, &changes)?;
        self.plane.check(&plane_changes)?;
        if let Some(entry) = entry {
            let daemons = self.daemons.clone();
            self.store
                .record(entry, || State {
                    table: staged.config(),
                    daemons,
                })
                .map_err(|e| ApiError::new(ErrorKind::Storage, e.to_string()))?;
        }
        // A service the plane does not serve yet gets the changes when it is realised.
        let for_plane: Vec<Change> = plane_changes
            .iter()
            .filter(|c| {
                c.service()
                    .is_none_or(|k| !self.unrealised.contains_key(&k))
            })
            .cloned()
            .collect();
        if let Err(e) = self.plane.apply(&for_plane) {
            // Put the previous state back on disk; the table itself was never changed.
            if entry.is_some() {
                if let Err(undo) = self.save() {
                    tracing::error!(error = %undo, "could not restore the previous state after a data-plane failure");
                }
            }
            return Err(e.into());
        }
        self.table = staged;
        self.plane_table = plane_staged;
        if entry.is_some() {
            self.intent_version += 1;
        }
        let table = &self.table;
        self.unrealised.retain(|k, _| table.service(k).is_some());
        for c in &changes {
            tracing::info!(target: "rvs_audit", "{c}");
        }
        Ok(Applied { changes })
    }

    /// Re-reads the configuration file and applies only the difference.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when there is no file or it is refused; nothing changes then.
    pub fn reload(&mut self) -> Result<Applied, ApiError> {
        let Some(path) = self.config_path.clone() else {
            return Err(ApiError::new(
                ErrorKind::Config,
                "rvsd was started without --config; there is nothing to reload",
            ));
        };
        let wanted = config::load(&path)
            .map_err(|e| ApiError::new(ErrorKind::Config, e.to_string()))?
            .table;
        let batch = Command::batch(Table::diff(&self.table.config(), &wanted));
        let entry = Entry::Command(batch.clone());
        let mut staged = self.table.clone();
        let changes = staged.apply(batch).map_err(|e| {
            ApiError::new(ErrorKind::Config, format!("config {}: {e}", path.display()))
        })?;
        let applied = self.commit(staged, changes, Some(&entry))?;
        tracing::info!(changes = applied.changes.len(), "config reloaded");
        Ok(applied)
    }

    /// Records a sync daemon (the sync itself is a later feature).
    ///
    /// # Errors
    /// [`ErrorKind::DaemonRunning`] if one of that role is recorded.
    pub fn start_daemon(&mut self, daemon: SyncDaemon) -> Result<Applied, ApiError> {
        let daemon = with_kernel_defaults(daemon)?;
        if self.daemons.iter().any(|d| d.state == daemon.state) {
            return Err(ApiError::new(
                ErrorKind::DaemonRunning,
                format!("a {} sync daemon is already running", daemon.state.name()),
            ));
        }
        let mut daemons = self.daemons.clone();
        daemons.push(daemon);
        self.set_daemons(daemons)
    }

    /// Removes a sync daemon.
    ///
    /// # Errors
    /// [`ErrorKind::DaemonNotRunning`] if none of that role is recorded.
    pub fn stop_daemon(&mut self, state: SyncState) -> Result<Applied, ApiError> {
        if !self.daemons.iter().any(|d| d.state == state) {
            return Err(ApiError::new(
                ErrorKind::DaemonNotRunning,
                format!("no {} sync daemon is running", state.name()),
            ));
        }
        let daemons = self
            .daemons
            .iter()
            .filter(|d| d.state != state)
            .cloned()
            .collect();
        self.set_daemons(daemons)
    }

    fn set_daemons(&mut self, daemons: Vec<SyncDaemon>) -> Result<Applied, ApiError> {
        let table = &self.table;
        let after = daemons.clone();
        self.store
            .record(&Entry::Daemons(daemons.clone()), || State {
                table: table.config(),
                daemons: after,
            })
            .map_err(|e| ApiError::new(ErrorKind::Storage, e.to_string()))?;
        self.daemons = daemons;
        Ok(Applied::default())
    }
}

/// Health is what checks find, not something a client sets: a `set_health` command (alone or
/// in a batch) is refused.
fn refuse_health(command: &Command) -> Result<(), ApiError> {
    match command {
        Command::SetHealth { service, dest, .. } => Err(ApiError::new(
            ErrorKind::BadRequest,
            format!(
                "set_health ({dest} of {service}): health is set by checks, not by commands; configure a check instead"
            ),
        )),
        Command::Batch { commands } => commands.iter().try_for_each(refuse_health),
        _ => Ok(()),
    }
}

/// A sync daemon as the kernel completes it (`start_sync_thread`): group 224.0.0.81, port
/// 8848 and TTL 1 when unset; the message length from the interface's MTU (1500 for a master,
/// the MTU clamped to 1500..=65535 for a backup) less the IP and UDP headers, or the one given
/// clamped to 1 (1024 for a backup) up to that; and the interface must exist (ENODEV).
///
/// # Errors
/// [`ErrorKind::NoDevice`] when the interface does not exist.
pub fn with_kernel_defaults(mut d: SyncDaemon) -> Result<SyncDaemon, ApiError> {
    let mtu_file = std::path::Path::new("/sys/class/net")
        .join(&d.mcast_ifn)
        .join("mtu");
    let mtu: u32 = std::fs::read_to_string(&mtu_file)
        .ok()
        .filter(|_| !d.mcast_ifn.is_empty() && !d.mcast_ifn.contains('/'))
        .and_then(|m| m.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NoDevice,
                format!(
                    "no interface is named {:?} for the sync daemon",
                    d.mcast_ifn
                ),
            )
        })?;
    let group = *d
        .mcast_group
        .get_or_insert(std::net::IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 81)));
    d.mcast_port.get_or_insert(8848);
    d.mcast_ttl.get_or_insert(1);
    let headers = if group.is_ipv6() { 40 + 8 } else { 20 + 8 };
    let (mtu, min) = match d.state {
        SyncState::Backup => (mtu.clamp(1500, 65535), 1024),
        SyncState::Master => (1500, 1),
    };
    let most = mtu - headers;
    let maxlen = d
        .sync_maxlen
        .map_or(most, |m| u32::from(m).clamp(min, most));
    d.sync_maxlen = Some(u16::try_from(maxlen).unwrap_or(u16::MAX));
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{DataPlaneError, ServiceStats};

    /// A plane whose maps cannot be read.
    struct Unreadable;

    impl DataPlane for Unreadable {
        fn name(&self) -> &'static str {
            "unreadable"
        }
        fn check(&self, _: &[Change]) -> Result<(), DataPlaneError> {
            Ok(())
        }
        fn apply(&mut self, _: &[Change]) -> Result<(), DataPlaneError> {
            Ok(())
        }
        fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
            Err(DataPlaneError::Failed {
                plane: "unreadable".into(),
                operation: "open map rvs_stats".into(),
                message: "Operation not permitted".into(),
            })
        }
        fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
            self.stats().map(|_| Vec::new())
        }
    }

    #[test]
    fn a_plane_that_cannot_read_its_counters_says_so_instead_of_listing_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let d = Director::start(store, Box::new(Unreadable), None).unwrap();
        let e = d.view().unwrap_err();
        assert!(e.message.contains("open map rvs_stats"), "{e:?}");
        assert!(d.connections().is_err());
    }

    /// A plane that keeps a copy of what it was given.
    struct Recording(std::sync::Arc<std::sync::Mutex<Table>>);

    impl DataPlane for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }
        fn check(&self, _: &[Change]) -> Result<(), DataPlaneError> {
            Ok(())
        }
        fn apply(&mut self, changes: &[Change]) -> Result<(), DataPlaneError> {
            let mut t = self.0.lock().unwrap();
            for c in changes {
                t.apply_change(c).unwrap();
            }
            Ok(())
        }
        fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
            Ok(Vec::new())
        }
        fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn health_reaches_the_plane_as_effective_weights_and_never_the_disk() {
        use rvs_core::{DestConfig, ForwardMethod, HealthPolicy, ServiceConfig};
        let dir = tempfile::tempdir().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Table::new()));
        let plane = Box::new(Recording(std::sync::Arc::clone(&seen)));
        let mut d = Director::start(StateStore::open(dir.path()).unwrap(), plane, None).unwrap();
        let key = ServiceKey::tcp("127.0.0.1:8080".parse().unwrap());
        let real: std::net::SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let policy = HealthPolicy {
            check: Some(rvs_core::CheckSpec::new(rvs_core::CheckKind::Tcp)),
            ..HealthPolicy::default()
        };
        d.apply(Command::batch(vec![
            Command::AddService(ServiceConfig::new(key)),
            Command::SetHealthPolicy {
                service: key,
                policy: Box::new(policy),
            },
            Command::AddDest {
                service: key,
                dest: DestConfig::new(real, ForwardMethod::Masq).with_weight(5),
            },
        ]))
        .unwrap();
        let weight = |t: &Table| t.service(&key).unwrap().dest(&real).unwrap().weight();
        assert_eq!(
            weight(&seen.lock().unwrap()),
            0,
            "a checked dest starts down"
        );
        d.set_health(key, real, Health::Up).unwrap();
        assert_eq!(weight(&seen.lock().unwrap()), 5);
        d.set_health(key, real, Health::Down).unwrap();
        assert_eq!(weight(&seen.lock().unwrap()), 0);
        // The listing shows both; the disk only the operator's weight.
        let v = d.view().unwrap();
        let dv = &v.services[0].dests[0];
        assert_eq!((dv.config.weight, dv.effective_weight()), (5, 0));
        drop(d);
        let restarted = Director::start(
            StateStore::open(dir.path()).unwrap(),
            Box::new(Recording(std::sync::Arc::new(std::sync::Mutex::new(
                Table::new(),
            )))),
            None,
        )
        .unwrap();
        let v = restarted.view().unwrap();
        let dv = &v.services[0].dests[0];
        assert_eq!(
            (dv.config.weight, dv.effective_weight()),
            (5, 0),
            "a restart keeps the weight and does not revive the dest"
        );
    }

    #[test]
    fn clients_cannot_set_health_even_inside_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut d = Director::start(store, Box::new(Unreadable), None).unwrap();
        let key = ServiceKey::tcp("127.0.0.1:8080".parse().unwrap());
        let e = d
            .apply(Command::batch(vec![Command::SetHealth {
                service: key,
                dest: "127.0.0.1:9001".parse().unwrap(),
                health: Health::Up,
            }]))
            .unwrap_err();
        assert!(e.message.contains("health is set by checks"), "{e:?}");
    }
}
