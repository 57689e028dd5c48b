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
use std::sync::PoisonError;
use std::time::Duration;

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

/// Runs the checker until the task is dropped.
pub async fn run(shared: Shared) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event<Subscriber>>();
    let mut checker = Checker::new(tx);
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
                checker.set_watches(wanted);
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
