//! What the data planes receive once health is laid over the operator's intent.
//!
//! The director keeps two tables: the intent table (the operator's commands, with each dest's
//! health and each service's policy beside them) and a copy of what the plane has, the
//! *effective* table: failed dests quiesced or left out, the fallback server in while it is
//! needed, every dest unchecked. After each command, [`plane_changes`] brings the copy in line
//! for the services the command touched, and the changes that makes are what the plane gets:
//! ordinary dest additions, edits and removals, as the kernel sees them under keepalived or
//! ldirectord. The planes never see health.

use crate::command::{Change, Command};
use crate::error::TableError;
use crate::key::ServiceKey;
use crate::table::{ServiceEntry, Table, TableConfig};

/// Brings `plane` (the effective copy) in line with `intent` for what `changes` touched,
/// returning the plane's changes in order. A service removed in `changes` is removed from the
/// plane first (so a removed and re-added service starts afresh there too); the services
/// touched otherwise are then made to match, each in the order it was first touched.
///
/// # Errors
/// When the copy has drifted from what it was built from (a bug: nothing is applied then but
/// what came before the drifted step).
pub fn plane_changes(
    plane: &mut Table,
    intent: &Table,
    changes: &[Change],
) -> Result<Vec<Change>, TableError> {
    let mut out = Vec::new();
    let mut touched: Vec<ServiceKey> = Vec::new();
    for change in changes {
        match change {
            Change::ServiceRemoved { service } => {
                touched.retain(|k| k != service);
                if plane.service(service).is_some() {
                    out.extend(plane.apply(Command::DelService { service: *service })?);
                }
                touched.push(*service);
            }
            Change::Zeroed { .. } | Change::TimeoutsSet(_) => {
                out.extend(plane.apply(change.to_command())?);
            }
            other => {
                if let Some(key) = other.service() {
                    if !touched.contains(&key) {
                        touched.push(key);
                    }
                }
            }
        }
    }
    for key in touched {
        out.extend(sync_service(plane, intent, key)?);
    }
    Ok(out)
}

/// The whole intent table as the plane should have it, for a plane that starts empty.
///
/// # Errors
/// As [`plane_changes`].
pub fn plane_from(plane: &mut Table, intent: &Table) -> Result<Vec<Change>, TableError> {
    let mut out = plane.apply(Command::SetTimeouts(intent.timeouts()))?;
    for service in intent.services() {
        out.extend(sync_service(plane, intent, service.key())?);
    }
    Ok(out)
}

/// Makes the plane's copy of one service match its effective entry.
fn sync_service(
    plane: &mut Table,
    intent: &Table,
    key: ServiceKey,
) -> Result<Vec<Change>, TableError> {
    let one = |entry: Option<ServiceEntry>| TableConfig {
        services: entry.into_iter().collect(),
        timeouts: plane.timeouts(),
    };
    let want = one(intent.service(&key).map(crate::Service::effective_entry));
    let have = one(plane.service(&key).map(crate::Service::entry));
    let commands = Table::diff(&have, &want);
    let mut out = Vec::new();
    for command in commands {
        out.extend(plane.apply(command)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DestConfig, ForwardMethod, ServiceConfig};
    use crate::health::{Health, HealthPolicy, OnFailure};
    use std::net::SocketAddr;

    fn key() -> ServiceKey {
        ServiceKey::tcp("192.0.2.10:80".parse().unwrap())
    }

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 80))
    }

    /// An intent table with dests .1 (weight 2) and .2 (weight 3) under `policy`, and its
    /// plane copy.
    fn tables(policy: HealthPolicy) -> (Table, Table) {
        let mut intent = Table::new();
        let mut plane = Table::new();
        let mut all = intent
            .apply(Command::AddService(ServiceConfig::new(key())))
            .unwrap();
        all.extend(
            intent
                .apply(Command::SetHealthPolicy {
                    service: key(),
                    policy: Box::new(policy.clone()),
                })
                .unwrap(),
        );
        for (n, w) in [(1, 2), (2, 3)] {
            let dest = DestConfig::new(addr(n), ForwardMethod::Masq).with_weight(w);
            all.extend(
                intent
                    .apply(Command::AddDest {
                        service: key(),
                        dest,
                    })
                    .unwrap(),
            );
        }
        plane_changes(&mut plane, &intent, &all).unwrap();
        (intent, plane)
    }

    fn set(intent: &mut Table, plane: &mut Table, n: u8, health: Health) -> Vec<Change> {
        let c = intent
            .apply(Command::SetHealth {
                service: key(),
                dest: addr(n),
                health,
            })
            .unwrap();
        plane_changes(plane, intent, &c).unwrap()
    }

    fn weights(plane: &Table) -> Vec<(SocketAddr, u32)> {
        plane
            .service(&key())
            .unwrap()
            .dests()
            .iter()
            .map(|d| (d.addr(), d.weight()))
            .collect()
    }

    #[test]
    fn checked_dests_start_down_and_reach_the_plane_quiesced_until_they_pass() {
        let policy = HealthPolicy {
            check: Some(crate::CheckSpec::new(crate::CheckKind::Tcp)),
            ..HealthPolicy::default()
        };
        let (mut intent, mut plane) = tables(policy);
        assert_eq!(weights(&plane), [(addr(2), 0), (addr(1), 0)]);
        let c = set(&mut intent, &mut plane, 1, Health::Up);
        assert_eq!(
            c,
            [Change::DestEdited {
                service: key(),
                dest: DestConfig::new(addr(1), ForwardMethod::Masq).with_weight(2)
            }]
        );
        // The operator's weights are untouched in the intent table.
        let w: Vec<u32> = intent
            .service(&key())
            .unwrap()
            .dests()
            .iter()
            .map(|d| d.weight())
            .collect();
        assert_eq!(w, [3, 2]);
        assert_eq!(intent.config().services[0].dests[0].weight, 3);
        // The same verdict again changes nothing anywhere.
        assert!(set(&mut intent, &mut plane, 1, Health::Up).is_empty());
    }

    #[test]
    fn removal_on_failure_takes_the_dest_out_and_puts_it_back_at_the_head() {
        let policy = HealthPolicy {
            on_failure: OnFailure::Remove,
            ..HealthPolicy::default()
        };
        let (mut intent, mut plane) = tables(policy);
        let c = set(&mut intent, &mut plane, 1, Health::Down);
        assert_eq!(
            c,
            [Change::DestRemoved {
                service: key(),
                dest: addr(1)
            }]
        );
        assert_eq!(weights(&plane), [(addr(2), 3)]);
        set(&mut intent, &mut plane, 1, Health::Up);
        assert_eq!(weights(&plane), [(addr(1), 2), (addr(2), 3)]);
    }

    #[test]
    fn the_fallback_serves_alone_while_no_dest_is_up_or_the_quorum_is_lost() {
        let policy = HealthPolicy {
            fallback: Some("127.0.0.1:80".parse().unwrap()),
            quorum: 4,
            hysteresis: 1,
            ..HealthPolicy::default()
        };
        let (mut intent, mut plane) = tables(policy);
        let sorry: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(
            weights(&plane),
            [(addr(2), 3), (addr(1), 2)],
            "weight up 5: quorum holds"
        );
        // Down to 3 = quorum - hysteresis: it still holds.
        set(&mut intent, &mut plane, 1, Health::Down);
        assert_eq!(weights(&plane), [(addr(2), 3), (addr(1), 0)]);
        // Down to 0: lost; the fallback takes the new connections, alone.
        set(&mut intent, &mut plane, 2, Health::Down);
        assert_eq!(weights(&plane), [(sorry, 1), (addr(2), 0), (addr(1), 0)]);
        // 2 up: below quorum + hysteresis, still lost.
        set(&mut intent, &mut plane, 1, Health::Up);
        assert_eq!(weights(&plane)[0], (sorry, 1));
        assert_eq!(weights(&plane)[2], (addr(1), 0));
        // 5 up: back; the fallback leaves.
        set(&mut intent, &mut plane, 2, Health::Up);
        assert_eq!(weights(&plane), [(addr(2), 3), (addr(1), 2)]);
        assert!(intent.service(&key()).unwrap().quorum_up());
    }

    #[test]
    fn a_service_removed_and_added_again_starts_afresh_in_the_plane() {
        let (mut intent, mut plane) = tables(HealthPolicy::default());
        let c = intent
            .apply(Command::batch(vec![
                Command::DelService { service: key() },
                Command::AddService(ServiceConfig::new(key())),
            ]))
            .unwrap();
        let p = plane_changes(&mut plane, &intent, &c).unwrap();
        assert_eq!(
            p,
            [
                Change::ServiceRemoved { service: key() },
                Change::ServiceAdded(ServiceConfig::new(key()))
            ]
        );
    }
}
