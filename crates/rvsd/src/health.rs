//! rvsd's health checking: the table says which dests are checked and how (each service's
//! health policy); rvs-health's [`Checker`] runs the probes; each verdict it reports becomes a
//! health change on the one table ([`Director::set_health`]), logged once with its reason.
//! The checker looks at the table again whenever its intent changed (a command, a reload).
//!
//! [`Director::set_health`]: crate::director::Director::set_health

use crate::api::Shared;
use rvs_core::{Health, ServiceKey, Table};
use rvs_health::runner::{Checker, Event, ProbeKey, Watch};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Who hears a verdict: a dest of a service.
pub type Subscriber = (ServiceKey, SocketAddr);

/// How often the checker looks for a changed table.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// Every check the table asks for: each dest of a service whose policy checks it, at the
/// check's port or else the dest's, starting from the health the dest has now.
#[must_use]
pub fn watches(table: &Table) -> Vec<Watch<Subscriber>> {
    let mut out = Vec::new();
    for service in table.services() {
        let policy = service.policy();
        for dest in service.dests() {
            let Some(spec) = policy.check_for(&dest.addr()) else {
                continue;
            };
            let port = spec.port.unwrap_or(dest.addr().port());
            if port == 0 {
                tracing::warn!(service = %service.key(), dest = %dest.addr(), "a check needs a port: give the check one (port = ...)");
                continue;
            }
            out.push(Watch {
                subscriber: (service.key(), dest.addr()),
                key: ProbeKey {
                    target: SocketAddr::new(dest.addr().ip(), port),
                    spec: spec.clone(),
                },
                initial: dest.health,
            });
        }
    }
    out
}

fn word(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Down => "down",
        Health::Unchecked => "unchecked",
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every checked dest with its probe's state, ordered by service and dest.
fn views(checker: &Checker<Subscriber>) -> Vec<rvs_proto::CheckView> {
    let mut out = Vec::new();
    for (key, subscribers, status) in checker.statuses() {
        for (service, dest) in subscribers {
            out.push(rvs_proto::CheckView {
                service,
                dest,
                target: key.target,
                kind: key.spec.kind,
                health: status.state,
                since: epoch(status.since),
                checks: status.checks,
                code: status.last.as_ref().map(|o| o.code.name().to_owned()),
                detail: status.last.as_ref().map(|o| o.detail.clone()),
                last_check: status.last_at.map(epoch),
                duration_ms: status.last.as_ref().map(|o| o.duration.as_secs_f64() * 1e3),
                drift_ms: status.last_drift.as_secs_f64() * 1e3,
            });
        }
    }
    out.sort_by_key(|v| (v.service.to_string(), v.dest));
    out
}

/// Runs the checker until the task is dropped.
pub async fn run(shared: Shared) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event<Subscriber>>();
    let checker = Arc::new(Mutex::new(Checker::new(tx)));
    {
        let checker = Arc::clone(&checker);
        shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_check_reader(Arc::new(move || {
                views(&checker.lock().unwrap_or_else(PoisonError::into_inner))
            }));
    }
    let mut seen = None;
    let mut look = tokio::time::interval(LOOK_EVERY);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = look.tick() => {
                let wanted = {
                    let d = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    let v = d.intent_version();
                    if seen == Some(v) {
                        continue;
                    }
                    seen = Some(v);
                    watches(d.table())
                };
                checker.lock().unwrap_or_else(PoisonError::into_inner).set_watches(wanted);
            }
            Some(event) = rx.recv() => {
                let reason = event.outcome.as_ref().map_or_else(
                    || "as its probe found before".to_owned(),
                    ToString::to_string,
                );
                let mut d = shared.lock().unwrap_or_else(PoisonError::into_inner);
                for (service, dest) in event.subscribers {
                    match tokio::task::block_in_place(|| d.set_health(service, dest, event.health)) {
                        Ok(applied) if !applied.changes.is_empty() => tracing::info!(
                            target: "rvs_health",
                            "real server {dest} of {service} is {}: {reason}",
                            word(event.health)
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(%service, %dest, error = %e.message, "a health verdict was not applied"),
                    }
                }
            }
        }
    }
}
