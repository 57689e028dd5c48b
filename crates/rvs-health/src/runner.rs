//! The [`Checker`]: one task per probe, a probe being an (address, check) pair, shared by
//! every subscriber that wants the same check of the same address (keepalived checks a real
//! server once per virtual server that lists it; its users ask for this merge). Each task
//! checks on schedule, keeps the verdict, and reports a change of verdict once, to all its
//! subscribers; a subscriber joining a probe whose verdict it does not share hears it at once.
//! The last outcome and when the verdict last changed are kept for listings.

use crate::outcome::Outcome;
use crate::schedule;
use crate::verdict::Tracker;
use rvs_core::{CheckSpec, Health};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What is checked: an address and a check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    /// The address the check goes to.
    pub target: SocketAddr,
    /// The check.
    pub spec: CheckSpec,
}

/// One subscriber's wish: `subscriber` wants `key` checked and starts believing `initial`.
#[derive(Debug, Clone)]
pub struct Watch<S> {
    /// Who is told.
    pub subscriber: S,
    /// What is checked.
    pub key: ProbeKey,
    /// The verdict the subscriber holds now (down for a new checked dest).
    pub initial: Health,
}

/// A verdict for some subscribers.
#[derive(Debug, Clone)]
pub struct Event<S> {
    /// Who it is for.
    pub subscribers: Vec<S>,
    /// The probe.
    pub key: ProbeKey,
    /// The verdict.
    pub health: Health,
    /// The outcome that decided it (none when a subscriber joined a probe that had decided).
    pub outcome: Option<Outcome>,
}

/// A probe's state, for listings.
#[derive(Debug, Clone)]
pub struct Status {
    /// The verdict.
    pub state: Health,
    /// When it last changed (or the probe started).
    pub since: SystemTime,
    /// The last check's outcome.
    pub last: Option<Outcome>,
    /// When the last check started.
    pub last_at: Option<SystemTime>,
    /// How late the last check started against its schedule.
    pub last_drift: Duration,
    /// Checks made.
    pub checks: u64,
}

struct Shared<S> {
    subscribers: HashSet<S>,
    tracker: Tracker,
    status: Status,
}

struct Probe<S> {
    shared: Arc<Mutex<Shared<S>>>,
    task: JoinHandle<()>,
}

impl<S> Drop for Probe<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The probes and their tasks.
pub struct Checker<S> {
    probes: HashMap<ProbeKey, Probe<S>>,
    events: UnboundedSender<Event<S>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A probe task that panicked mid-update leaves counters, not broken invariants.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S: Clone + Eq + Hash + Send + 'static> Checker<S> {
    /// A checker reporting to `events`.
    #[must_use]
    pub fn new(events: UnboundedSender<Event<S>>) -> Self {
        Self {
            probes: HashMap::new(),
            events,
        }
    }

    /// Makes the probes exactly those `watches` want: new probes start (their first check
    /// spread within the interval), probes nobody wants stop, subscribers move. Must be called
    /// inside a tokio runtime.
    pub fn set_watches(&mut self, watches: Vec<Watch<S>>) {
        let mut wanted: HashMap<ProbeKey, Vec<(S, Health)>> = HashMap::new();
        for w in watches {
            wanted
                .entry(w.key)
                .or_default()
                .push((w.subscriber, w.initial));
        }
        self.probes.retain(|k, _| wanted.contains_key(k));
        for (key, subs) in wanted {
            if let Some(probe) = self.probes.get(&key) {
                let mut shared = locked(&probe.shared);
                let decided = shared.status.checks > 0;
                let state = shared.tracker.state();
                let mut told = Vec::new();
                let now: HashSet<S> = subs.iter().map(|(s, _)| s.clone()).collect();
                for (s, initial) in subs {
                    if !shared.subscribers.contains(&s) && decided && initial != state {
                        told.push(s);
                    }
                }
                shared.subscribers = now;
                drop(shared);
                if !told.is_empty() {
                    let _ = self.events.send(Event {
                        subscribers: told,
                        key: key.clone(),
                        health: state,
                        outcome: None,
                    });
                }
                continue;
            }
            let initial = match subs[0].1 {
                Health::Up => Health::Up,
                Health::Down | Health::Unchecked => Health::Down,
            };
            let shared = Arc::new(Mutex::new(Shared {
                subscribers: subs.into_iter().map(|(s, _)| s).collect(),
                tracker: Tracker::new(initial, key.spec.rise, key.spec.fall),
                status: Status {
                    state: initial,
                    since: SystemTime::now(),
                    last: None,
                    last_at: None,
                    last_drift: Duration::ZERO,
                    checks: 0,
                },
            }));
            let task = tokio::spawn(run(key.clone(), Arc::clone(&shared), self.events.clone()));
            self.probes.insert(key, Probe { shared, task });
        }
    }

    /// Every probe with its subscribers and state.
    #[must_use]
    pub fn statuses(&self) -> Vec<(ProbeKey, Vec<S>, Status)> {
        self.probes
            .iter()
            .map(|(k, p)| {
                let shared = locked(&p.shared);
                (
                    k.clone(),
                    shared.subscribers.iter().cloned().collect(),
                    shared.status.clone(),
                )
            })
            .collect()
    }

    /// How many probes run.
    #[must_use]
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// Whether none runs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }
}

/// A probe's task: check, judge, report, wait for the next scheduled time.
async fn run<S: Clone + Send + 'static>(
    key: ProbeKey,
    shared: Arc<Mutex<Shared<S>>>,
    events: UnboundedSender<Event<S>>,
) {
    let mut next = Instant::now() + schedule::first_delay(&key.spec, &key);
    loop {
        tokio::time::sleep_until(next).await;
        let started = Instant::now();
        let drift = started.saturating_duration_since(next);
        let at = SystemTime::now();
        let outcome = crate::probe::run(&key.spec, key.target).await;
        let (change, subscribers, delay) = {
            let mut s = locked(&shared);
            let change = s.tracker.record(outcome.passed());
            s.status.checks += 1;
            s.status.last = Some(outcome.clone());
            s.status.last_at = Some(at);
            s.status.last_drift = drift;
            if let Some(h) = change {
                s.status.state = h;
                s.status.since = SystemTime::now();
            }
            let delay = schedule::next_delay(&key.spec, s.tracker.state(), s.tracker.changing());
            (
                change,
                s.subscribers.iter().cloned().collect::<Vec<S>>(),
                delay,
            )
        };
        if let Some(health) = change {
            tracing::debug!(target = %key.target, ?health, %outcome, "verdict changed");
            if events
                .send(Event {
                    subscribers,
                    key: key.clone(),
                    health,
                    outcome: Some(outcome),
                })
                .is_err()
            {
                return;
            }
        }
        // From the scheduled time, so checks keep their rhythm; never in the past.
        next = (next + delay).max(Instant::now());
    }
}
