//! A virtual service at run time: its dests in kernel order, its scheduler, its persistence
//! templates, its stats, and the connection accounting the data planes feed.
//!
//! A data plane asks [`Service::schedule`] for a dest for each new connection (or each packet
//! with one-packet scheduling) and gets a [`ConnTicket`]. It reports state changes with
//! [`Service::set_active`], traffic with [`Service::record`] and the end with
//! [`Service::release`]. The counts, the overload flags and the templates stay exact because
//! they change only through these calls.

use crate::config::{DestConfig, ServiceConfig};
use crate::dest::Dest;
use crate::health::{DestRuntime, Health, HealthPolicy, OnFailure};
use crate::key::ServiceKey;
use crate::persistence::{mask_client, Template, TemplateKey, Templates};
use crate::sched::{DestIndex, DestSet, Flow, Input, Scheduler};
use crate::stats::{Counters, Stats};
use crate::table::ServiceEntry;
use crate::time::Timestamp;
use rand_core::RngCore;
use std::net::SocketAddr;
use std::time::Duration;

/// No dest could take a new connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {service}: no destination available")]
pub struct NoDestination {
    /// The service.
    pub service: ServiceKey,
}

/// A scheduled connection, held by the data plane until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnTicket {
    /// The dest chosen.
    pub dest: SocketAddr,
    generation: u64,
    /// The persistence template that chose it, if any.
    pub template: Option<TemplateKey>,
    /// Whether the connection counts as active (ESTABLISHED) now.
    pub active: bool,
}

/// A virtual service at run time.
#[derive(Debug, Clone)]
pub struct Service {
    config: ServiceConfig,
    dests: Vec<Dest>,
    index: DestIndex,
    scheduler: Scheduler,
    templates: Templates,
    stats: Stats,
    next_generation: u64,
    expire_quiescent_template: bool,
    /// What to do with failed dests; the fallback server; the quorum (intent).
    policy: HealthPolicy,
    /// Whether the quorum holds (the runtime overlay; hysteresis needs the last state).
    quorum_up: bool,
}

impl Service {
    /// A new service with no dests.
    #[must_use]
    pub fn new(config: ServiceConfig) -> Self {
        Self {
            scheduler: Scheduler::new(config.scheduler, &[]),
            config,
            dests: Vec::new(),
            index: DestIndex::default(),
            templates: Templates::default(),
            stats: Stats::default(),
            next_generation: 0,
            expire_quiescent_template: false,
            policy: HealthPolicy::default(),
            quorum_up: true,
        }
    }

    /// Its configuration.
    #[must_use]
    pub const fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Its key.
    #[must_use]
    pub const fn key(&self) -> ServiceKey {
        self.config.key
    }

    /// Its dests in kernel list order (newest first).
    #[must_use]
    pub fn dests(&self) -> &[Dest] {
        &self.dests
    }

    /// One dest by address.
    #[must_use]
    pub fn dest(&self, addr: &SocketAddr) -> Option<&Dest> {
        self.index.get(addr).map(|&i| &self.dests[i])
    }

    /// The service's own stats (the sum over its dests, plus dests since removed).
    #[must_use]
    pub const fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Its live persistence templates.
    #[must_use]
    pub const fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Sets the kernel's `expire_quiescent_template` behaviour for this service.
    pub fn set_expire_quiescent_template(&mut self, on: bool) {
        self.expire_quiescent_template = on;
    }

    pub(crate) fn set_config(&mut self, config: ServiceConfig) {
        if config.scheduler != self.config.scheduler {
            self.scheduler = Scheduler::new(config.scheduler, &self.dests);
        }
        self.config = config;
    }

    fn reindex(&mut self) {
        self.index = self
            .dests
            .iter()
            .enumerate()
            .map(|(i, d)| (d.addr(), i))
            .collect();
    }

    /// Links a new dest at the head of the list, as the kernel does.
    pub(crate) fn add_dest(&mut self, config: DestConfig) {
        let health = self.policy.initial_health(&config.addr);
        let dest = Dest::new(config, self.next_generation, health);
        self.next_generation += 1;
        self.dests.insert(0, dest);
        self.reindex();
        self.scheduler.dest_added(&self.dests);
        self.refresh_quorum();
    }

    pub(crate) fn edit_dest(&mut self, config: DestConfig) {
        if let Some(&i) = self.index.get(&config.addr) {
            self.dests[i].update(config);
            self.scheduler.dests_changed(&self.dests);
            self.refresh_quorum();
        }
    }

    pub(crate) fn remove_dest(&mut self, addr: &SocketAddr) -> Option<Dest> {
        let i = *self.index.get(addr)?;
        let dest = self.dests.remove(i);
        self.reindex();
        self.scheduler.dest_removed(i, &self.dests);
        self.refresh_quorum();
        Some(dest)
    }

    /// Its configuration, dests and policy, as stored.
    #[must_use]
    pub fn entry(&self) -> ServiceEntry {
        ServiceEntry {
            config: self.config.clone(),
            dests: self.dests.iter().map(|d| d.config).collect(),
            health: self.policy.clone(),
        }
    }

    /// Its health policy.
    #[must_use]
    pub const fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// Whether the quorum holds (always, without one).
    #[must_use]
    pub const fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// A new policy; a dest whose check comes or goes takes the initial health of its new
    /// state (a dest that is still checked keeps its verdict).
    pub(crate) fn set_policy(&mut self, policy: HealthPolicy) {
        for d in &mut self.dests {
            let was = self.policy.check_for(&d.config.addr).is_some();
            let is = policy.check_for(&d.config.addr).is_some();
            if was != is {
                d.health = policy.initial_health(&d.config.addr);
            }
        }
        self.policy = policy;
        self.refresh_quorum();
    }

    pub(crate) fn set_health(&mut self, addr: &SocketAddr, health: Health) {
        if let Some(&i) = self.index.get(addr) {
            self.dests[i].health = health;
            self.refresh_quorum();
        }
    }

    /// The total configured weight of the dests that may serve.
    fn weight_up(&self) -> u64 {
        self.dests
            .iter()
            .filter(|d| d.health.serves())
            .map(|d| u64::from(d.config.weight))
            .sum()
    }

    fn refresh_quorum(&mut self) {
        self.quorum_up = self.policy.quorum_holds(self.weight_up(), self.quorum_up);
    }

    /// Whether the fallback server takes the new connections now: it is configured, and no
    /// dest may serve with a weight above 0, or the quorum is lost.
    #[must_use]
    pub fn fallback_active(&self) -> bool {
        self.policy.fallback.is_some() && (self.weight_up() == 0 || !self.quorum_up)
    }

    /// What health makes of each dest, in list order, and of the fallback server last.
    #[must_use]
    pub fn dest_runtimes(&self) -> Vec<(DestConfig, DestRuntime)> {
        let fallback = self.fallback_active();
        let mut out: Vec<(DestConfig, DestRuntime)> = self
            .dests
            .iter()
            .map(|d| {
                let serves = d.health.serves() && !fallback;
                let removed = !d.health.serves() && self.policy.on_failure == OnFailure::Remove;
                let runtime = DestRuntime {
                    health: d.health,
                    effective_weight: if serves { d.config.weight } else { 0 },
                    in_plane: !removed,
                    fallback: false,
                };
                (d.config, runtime)
            })
            .collect();
        if let Some(dest) = self.policy.fallback_dest() {
            // A fallback that is also one of the dests is that dest, not a second entry.
            if !self.index.contains_key(&dest.addr) {
                out.push((
                    dest,
                    DestRuntime {
                        health: Health::Unchecked,
                        effective_weight: if fallback { dest.weight } else { 0 },
                        in_plane: fallback,
                        fallback: true,
                    },
                ));
            }
        }
        out
    }

    /// The service as the data planes serve it: its settings, and its dests with their
    /// effective weights (failed ones quiesced or left out, the fallback server in while it
    /// is active), in list order with the fallback server at the head, where a dest added
    /// last would be.
    #[must_use]
    pub fn effective_entry(&self) -> ServiceEntry {
        let mut dests: Vec<DestConfig> = Vec::with_capacity(self.dests.len() + 1);
        for (config, runtime) in self.dest_runtimes() {
            if !runtime.in_plane {
                continue;
            }
            let dest = DestConfig {
                weight: runtime.effective_weight,
                ..config
            };
            if runtime.fallback {
                dests.insert(0, dest);
            } else {
                dests.push(dest);
            }
        }
        ServiceEntry {
            config: self.config.clone(),
            dests,
            health: HealthPolicy::default(),
        }
    }

    fn find(&self, addr: SocketAddr, generation: u64) -> Option<usize> {
        self.index
            .get(&addr)
            .copied()
            .filter(|&i| self.dests[i].generation == generation)
    }

    /// Chooses a dest for a new connection from `flow`, honouring persistence, and counts the
    /// connection (active or inactive) against it.
    ///
    /// # Errors
    /// [`NoDestination`] when the scheduler finds no available dest.
    pub fn schedule(
        &mut self,
        flow: &Flow,
        active: bool,
        now: Timestamp,
        rng: &mut dyn RngCore,
    ) -> Result<ConnTicket, NoDestination> {
        self.schedule_avoiding(flow, active, now, rng, &[])
    }

    /// [`Service::schedule`] for a connection that `avoid`'s dests already refused: the
    /// scheduler sees them as overloaded (so it skips them exactly as it skips an overloaded
    /// dest, and a hashing scheduler without fallback finds no dest), and a persistence
    /// template on one of them is replaced by a fresh pick.
    ///
    /// # Errors
    /// [`NoDestination`] when no other dest is available.
    pub fn schedule_avoiding(
        &mut self,
        flow: &Flow,
        active: bool,
        now: Timestamp,
        rng: &mut dyn RngCore,
        avoid: &[SocketAddr],
    ) -> Result<ConnTicket, NoDestination> {
        let Some(persistence) = self.config.persistence else {
            let i = self.pick_avoiding(flow, now, rng, avoid)?;
            return Ok(self.bind(i, None, active));
        };
        let key = mask_client(flow.client.ip(), persistence.netmask);
        let timeout = Duration::from_secs(u64::from(persistence.timeout));
        let timeout_ms = u64::from(persistence.timeout) * 1000;
        if let Some(t) = self.templates.lookup(&key, now, timeout_ms) {
            let (dest, generation) = (t.dest, t.generation);
            let i = self.find(dest, generation);
            let quiesced_out =
                |i: usize| self.expire_quiescent_template && self.dests[i].weight() == 0;
            let valid = i.is_some_and(|i| !avoid.contains(&dest) && !quiesced_out(i));
            if let (true, Some(i)) = (valid, i) {
                if let Some(t) = self.templates.get_mut(&key) {
                    t.controlled += 1;
                    t.expires = now + timeout;
                }
                return Ok(self.bind(i, Some(key), active));
            }
            if !avoid.contains(&dest) {
                self.drop_template(&key);
            }
        }
        let i = self.pick_avoiding(flow, now, rng, avoid)?;
        let d = &mut self.dests[i];
        d.conns.persistent += 1;
        d.check_overload_after_bind();
        let template = Template {
            dest: d.addr(),
            generation: d.generation,
            controlled: 1,
            expires: now + timeout,
        };
        if let Some(old) = self.templates.insert(key, template) {
            self.unbind_template(&old);
        }
        Ok(self.bind(i, Some(key), active))
    }

    fn pick_avoiding(
        &mut self,
        flow: &Flow,
        now: Timestamp,
        rng: &mut dyn RngCore,
        avoid: &[SocketAddr],
    ) -> Result<usize, NoDestination> {
        if avoid.is_empty() {
            return self.pick(flow, now, rng);
        }
        let mut hidden = Vec::with_capacity(avoid.len());
        for addr in avoid {
            if let Some(&i) = self.index.get(addr) {
                hidden.push((i, self.dests[i].overloaded));
                self.dests[i].overloaded = true;
            }
        }
        let picked = self.pick(flow, now, rng);
        for (i, was) in hidden {
            self.dests[i].overloaded = was;
        }
        picked
    }

    fn pick(
        &mut self,
        flow: &Flow,
        now: Timestamp,
        rng: &mut dyn RngCore,
    ) -> Result<usize, NoDestination> {
        let set = DestSet::new(&self.dests, &self.index);
        let input = Input {
            flow,
            flags: self.config.sched_flags,
            now,
            rng,
        };
        self.scheduler.schedule(set, input).ok_or(NoDestination {
            service: self.config.key,
        })
    }

    fn bind(&mut self, i: usize, template: Option<TemplateKey>, active: bool) -> ConnTicket {
        let d = &mut self.dests[i];
        if active {
            d.conns.active += 1;
        } else {
            d.conns.inactive += 1;
        }
        d.check_overload_after_bind();
        let one = Counters {
            conns: 1,
            ..Counters::default()
        };
        d.stats.record(one);
        self.stats.record(one);
        ConnTicket {
            dest: d.addr(),
            generation: d.generation,
            template,
            active,
        }
    }

    fn drop_template(&mut self, key: &TemplateKey) {
        if let Some(t) = self.templates.remove(key) {
            self.unbind_template(&t);
        }
    }

    fn unbind_template(&mut self, t: &Template) {
        if let Some(i) = self.find(t.dest, t.generation) {
            let d = &mut self.dests[i];
            d.conns.persistent = d.conns.persistent.saturating_sub(1);
            d.check_overload_after_unbind();
        }
    }

    /// Moves a connection between active (ESTABLISHED) and inactive (any other state).
    pub fn set_active(&mut self, ticket: &mut ConnTicket, active: bool) {
        if ticket.active == active {
            return;
        }
        ticket.active = active;
        if let Some(i) = self.find(ticket.dest, ticket.generation) {
            let c = &mut self.dests[i].conns;
            if active {
                c.inactive = c.inactive.saturating_sub(1);
                c.active += 1;
            } else {
                c.active = c.active.saturating_sub(1);
                c.inactive += 1;
            }
        }
    }

    /// Adds a connection's traffic to its dest's and the service's counters.
    pub fn record(&mut self, ticket: &ConnTicket, traffic: Counters) {
        self.stats.record(traffic);
        if let Some(i) = self.find(ticket.dest, ticket.generation) {
            self.dests[i].stats.record(traffic);
        }
    }

    /// Ends a connection: uncounts it and releases its template, which then lives on for the
    /// persistence timeout from its last use.
    pub fn release(&mut self, ticket: ConnTicket) {
        if let Some(i) = self.find(ticket.dest, ticket.generation) {
            let d = &mut self.dests[i];
            if ticket.active {
                d.conns.active = d.conns.active.saturating_sub(1);
            } else {
                d.conns.inactive = d.conns.inactive.saturating_sub(1);
            }
            d.check_overload_after_unbind();
        }
        if let Some(key) = ticket.template {
            if let Some(t) = self.templates.get_mut(&key) {
                if t.dest == ticket.dest && t.generation == ticket.generation {
                    t.controlled = t.controlled.saturating_sub(1);
                }
            }
        }
    }

    /// Ends a connection that never happened: its dest refused it (or did not answer).
    /// Like [`Service::release`], and it also takes back the `Conns` count and the
    /// persistence template (see [`Service::unpersist`]): `Conns` counts connections, not
    /// attempts.
    pub fn refused(&mut self, mut ticket: ConnTicket) {
        self.unpersist(&mut ticket);
        let (dest, generation) = (ticket.dest, ticket.generation);
        self.release(ticket);
        self.stats.uncount_conn();
        if let Some(i) = self.find(dest, generation) {
            self.dests[i].stats.uncount_conn();
        }
    }

    /// Detaches a refused attempt from its persistence template, and drops the template when
    /// no other connection holds it, so the client's next attempt is scheduled afresh instead
    /// of sent to the same refusing dest. The ticket still counts against its dest until it
    /// is handed to [`Service::refused`].
    fn unpersist(&mut self, ticket: &mut ConnTicket) {
        let Some(key) = ticket.template.take() else {
            return;
        };
        let Some(t) = self.templates.get_mut(&key) else {
            return;
        };
        if t.dest != ticket.dest || t.generation != ticket.generation {
            return;
        }
        t.controlled = t.controlled.saturating_sub(1);
        if t.controlled == 0 {
            self.drop_template(&key);
        }
    }

    /// Runs the rate estimators up to `now`.
    pub fn estimate(&mut self, now: Timestamp) {
        self.stats.estimate(now);
        for d in &mut self.dests {
            d.stats.estimate(now);
        }
    }

    /// Expires templates and scheduler caches due by `now`.
    pub fn expire(&mut self, now: Timestamp) {
        for t in self.templates.drain_expired(now) {
            self.unbind_template(&t);
        }
        self.scheduler.expire(now);
    }

    /// Zeroes the service's and its dests' counters and rates (`-Z`).
    pub fn zero(&mut self) {
        self.stats.zero();
        for d in &mut self.dests {
            d.stats.zero();
        }
    }
}
