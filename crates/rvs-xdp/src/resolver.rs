//! Keeps the next hop of every dest resolved, as IPVS's transmit path does by handing each
//! packet to the kernel's neighbour layer.
//!
//! The program consumes packets before the kernel sees them, so nothing else makes the kernel
//! resolve a real server's MAC: `bpf_fib_lookup` answers "no neighbour" until some other
//! traffic did, and on a director with forwarding off it answers nothing at all and the
//! program falls back to the MAC rvs-xdp wrote into the dest's entry. So a thread here, for
//! every dest that exists:
//! - finds its next hop (the real server itself, or the gateway towards it) and egress
//!   interface from the kernel's routing table;
//! - makes sure the kernel has a neighbour entry for it: where there is none, or only a failed
//!   one, it adds a *managed* entry (`NTF_EXT_MANAGED`, Linux 5.16+), which the kernel resolves
//!   at once and keeps resolved for as long as it exists; managed entries it added are deleted
//!   when no dest needs them any more;
//! - resolves each next hop afresh every [`REVERIFY`] (delete, add: one broadcast ARP request
//!   or neighbour solicitation), so a real server whose MAC changed is followed within that
//!   time, and at once when it announces itself (gratuitous ARP); the kernel's own NUD
//!   machine would take its reachable time (15-45 s) and a first-probe delay (5 s), and
//!   asking it to probe (`nud probe`) does nothing for an entry it holds valid;
//! - writes the MAC into the dest's map entry whenever it differs from what the entry has,
//!   and makes the program look its FIB next hop up again on the next packet.
//!
//! It runs every second, sooner while a dest is unresolved, and at once when the plane adds
//! dests. The kernel is read and changed over netlink, through rvs-host's
//! [`KernelNeighbors`]: one dump of each table per round, whatever the number of dests.

use rvs_bpf_abi as abi;
use rvs_host::neighbors::{KernelNeighbors, NeighKey, NeighOp, Neighbour};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aya::maps::{Array, MapData};

/// The dests whose next hops are kept resolved: map index to address. Shared with the plane,
/// which adds and removes entries as dests come and go.
pub type Wanted = Arc<Mutex<BTreeMap<u32, IpAddr>>>;

/// How often the resolver runs when every dest is resolved.
pub const PERIOD: Duration = Duration::from_secs(1);
/// How soon it runs again while some dest has no MAC yet.
const RETRY: Duration = Duration::from_millis(100);
/// How often a resolved next hop's MAC is confirmed afresh (one ARP request or neighbour
/// solicitation per real server in that time, as a health check's connect would cause).
pub const REVERIFY: Duration = Duration::from_secs(5);
/// How long a route lookup is trusted.
const ROUTE_TTL: Duration = Duration::from_secs(30);

/// What one round does, worked out from what the kernel said, without I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The neighbour table's changes, in order.
    pub commands: Vec<NeighOp>,
    /// Dest entries whose MAC changes.
    pub macs: Vec<(u32, [u8; 6])>,
    /// Managed entries this round adds (rvs deletes them once unneeded).
    pub created: Vec<NeighKey>,
    /// Managed entries of rvs's that no dest needs any more.
    pub released: Vec<NeighKey>,
    /// Whether some dest has no usable MAC yet.
    pub unresolved: bool,
}

/// The round's plan. `due` are the next hops whose MAC is to be confirmed afresh.
#[must_use]
pub fn plan(
    wanted: &BTreeMap<u32, IpAddr>,
    routes: &HashMap<IpAddr, NeighKey>,
    table: &HashMap<NeighKey, Neighbour>,
    ours: &HashSet<NeighKey>,
    macs: &HashMap<u32, [u8; 6]>,
    due: &HashSet<NeighKey>,
) -> Plan {
    let mut p = Plan::default();
    let needed: std::collections::BTreeSet<&NeighKey> =
        wanted.values().filter_map(|a| routes.get(a)).collect();
    for key in &needed {
        let k = || (*key).clone();
        match table.get(*key) {
            None => {
                p.commands.push(NeighOp::AddManaged(k()));
                p.created.push(k());
            }
            Some(n) if n.fixed() => {}
            Some(n) if !n.usable() && !n.managed => {
                // Failed or incomplete, and nobody keeps it: rvs does from now on.
                p.commands.push(NeighOp::ReplaceManaged(k()));
                p.created.push(k());
            }
            Some(n) if n.states.iter().any(|s| s == "FAILED") && ours.contains(*key) => {
                // Its MAC went away (the probes failed): resolve it afresh now rather than
                // at the kernel's next managed round, seconds later.
                p.commands.push(NeighOp::Delete(k()));
                p.commands.push(NeighOp::AddManaged(k()));
            }
            Some(n) if due.contains(*key) && n.usable() => {
                // Confirm its MAC afresh: delete and add it again, which resolves it at once
                // by broadcast (the kernel's own confirmation would wait for its reachable
                // time to run out, and then its first-probe delay). The program keeps the
                // next hop it found meanwhile (bpf/xdp/hop.h, NH_GRACE).
                p.commands.push(NeighOp::Delete(k()));
                p.commands.push(NeighOp::AddManaged(k()));
                p.created.push(k());
            }
            Some(_) => {}
        }
    }
    for key in ours {
        if !needed.contains(key) {
            p.commands.push(NeighOp::Delete(key.clone()));
            p.released.push(key.clone());
        }
    }
    for (id, addr) in wanted {
        let mac = routes
            .get(addr)
            .and_then(|k| table.get(k))
            .filter(|n| n.usable())
            .and_then(|n| n.lladdr);
        match mac {
            Some(mac) if macs.get(id) != Some(&mac) => p.macs.push((*id, mac)),
            Some(_) => {}
            None => p.unresolved = true,
        }
    }
    p
}

/// The resolver: its handle to the dest map and what it remembers between rounds.
pub struct Resolver {
    kernel: KernelNeighbors,
    dest_map: Array<MapData, abi::Dest>,
    wanted: Wanted,
    wake: Receiver<()>,
    routes: HashMap<IpAddr, (NeighKey, Instant)>,
    ours: HashSet<NeighKey>,
    /// When each next hop was last resolved afresh.
    verified: HashMap<NeighKey, Instant>,
}

impl Resolver {
    /// Opens the dest map by id, and a netlink connection in the calling thread's namespace.
    ///
    /// # Errors
    /// When the kernel refuses the id or the netlink socket.
    pub(crate) fn open(dests_id: u32, wanted: Wanted, wake: Receiver<()>) -> Result<Self, String> {
        let map = MapData::from_id(dests_id)
            .and_then(aya::maps::Map::from_map_data)
            .map_err(|e| format!("open map {dests_id}: {e}"))?;
        Ok(Self {
            kernel: KernelNeighbors::open().map_err(|e| e.to_string())?,
            dest_map: map.try_into().map_err(|e| format!("rvs_dests: {e}"))?,
            wanted,
            wake,
            routes: HashMap::new(),
            ours: HashSet::new(),
            verified: HashMap::new(),
        })
    }

    /// One round; returns whether some dest is still unresolved.
    ///
    /// # Errors
    /// When the kernel's tables cannot be read or changed, or the dest map written.
    pub fn round(&mut self) -> Result<bool, String> {
        let wanted = self
            .wanted
            .lock()
            .map_err(|_| "the plane's dest list is poisoned".to_owned())?
            .clone();
        let now = Instant::now();
        self.routes
            .retain(|a, (_, at)| wanted.values().any(|w| w == a) && now - *at < ROUTE_TTL);
        let missing: HashSet<IpAddr> = wanted
            .values()
            .filter(|a| !self.routes.contains_key(a))
            .copied()
            .collect();
        if !missing.is_empty() {
            let hops = self.kernel.next_hops(missing).map_err(|e| e.to_string())?;
            for (addr, key) in hops {
                self.routes.insert(addr, (key, now));
            }
        }
        let routes: HashMap<IpAddr, NeighKey> = self
            .routes
            .iter()
            .map(|(a, (k, _))| (*a, k.clone()))
            .collect();
        let table = self.kernel.table().map_err(|e| e.to_string())?;
        let mut macs = HashMap::new();
        for id in wanted.keys() {
            if let Ok(d) = self.dest_map.get(id, 0) {
                macs.insert(*id, d.mac);
            }
        }
        self.verified.retain(|k, _| routes.values().any(|r| r == k));
        let due: HashSet<NeighKey> = routes
            .values()
            .filter(|k| {
                let last = self.verified.entry((*k).clone()).or_insert(now);
                now.duration_since(*last) >= REVERIFY
            })
            .cloned()
            .collect();
        let p = plan(&wanted, &routes, &table, &self.ours, &macs, &due);
        for key in &due {
            self.verified.insert(key.clone(), now);
        }
        // Every change is tried; one refused (an interface gone meanwhile) fails the round
        // after the others were made.
        let applied = self.kernel.apply(&p.commands).map_err(|e| e.to_string());
        for key in p.created {
            tracing::debug!(next_hop = %key.addr, dev = %key.dev, "resolving a real server's next hop");
            self.ours.insert(key);
        }
        for key in &p.released {
            self.ours.remove(key);
        }
        for (id, mac) in &p.macs {
            let Ok(mut d) = self.dest_map.get(id, 0) else {
                continue;
            };
            d.mac = *mac;
            // The program looks its FIB next hop up again on the next packet.
            d.nh_mtu = 0;
            self.dest_map
                .set(*id, d, 0)
                .map_err(|e| format!("write rvs_dests: {e}"))?;
            tracing::info!(dest = *id, mac = ?mac, "next hop resolved");
        }
        applied?;
        Ok(p.unresolved)
    }

    /// Deletes the managed entries rvs added.
    fn release_all(&mut self) {
        let ops: Vec<NeighOp> = self.ours.drain().map(NeighOp::Delete).collect();
        if let Err(e) = self.kernel.apply(&ops) {
            tracing::warn!(error = %e, "could not remove a managed neighbour entry");
        }
    }

    /// Runs rounds on a thread of its own until `alive` turns false (then removes the managed
    /// entries it added).
    pub fn run(mut self, alive: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut wait = Duration::ZERO;
            // A failure is logged when it starts and when it ends, not every round.
            let mut failing = false;
            while alive.load(Ordering::Acquire) {
                match self.wake.recv_timeout(wait) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if !alive.load(Ordering::Acquire) {
                    break;
                }
                let round = self.round();
                match (&round, failing) {
                    (Err(e), false) => {
                        tracing::warn!(error = %e, "next-hop resolution fails; retrying every second");
                    }
                    (Ok(_), true) => tracing::info!("next-hop resolution works again"),
                    _ => {}
                }
                failing = round.is_err();
                wait = match round {
                    Ok(true) => RETRY,
                    Ok(false) | Err(_) => PERIOD,
                };
            }
            self.release_all();
        })
    }
}

/// The plane's side: the list it keeps and the bell it rings.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The dests to keep resolved.
    pub wanted: Wanted,
    /// Wakes the resolver at once.
    pub wake: Sender<()>,
}

impl Handle {
    /// A dest (map index `id`) exists at `addr`.
    pub fn want(&self, id: u32, addr: IpAddr) {
        if let Ok(mut w) = self.wanted.lock() {
            w.insert(id, addr);
        }
    }

    /// The dest at map index `id` is gone.
    pub fn forget(&self, id: u32) {
        if let Ok(mut w) = self.wanted.lock() {
            w.remove(&id);
        }
    }

    /// Asks for a round now.
    pub fn ring(&self) {
        let _ = self.wake.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(ops: &[NeighOp]) -> Vec<String> {
        ops.iter().map(ToString::to_string).collect()
    }

    fn key(a: &str, dev: &str) -> NeighKey {
        NeighKey {
            addr: a.parse().unwrap(),
            dev: dev.to_owned(),
        }
    }

    #[test]
    fn the_plan_adds_managed_entries_writes_macs_and_releases_its_own() {
        let wanted: BTreeMap<u32, IpAddr> = [
            (0, "198.18.1.2".parse().unwrap()),
            (1, "198.18.5.5".parse().unwrap()),
            (2, "2001:db8::11".parse().unwrap()),
            (3, "198.18.1.9".parse().unwrap()),
        ]
        .into();
        let routes: HashMap<IpAddr, NeighKey> = [
            ("198.18.1.2".parse().unwrap(), key("198.18.1.2", "eth1")),
            ("198.18.5.5".parse().unwrap(), key("198.18.1.2", "eth1")),
            ("2001:db8::11".parse().unwrap(), key("2001:db8::11", "eth0")),
            ("198.18.1.9".parse().unwrap(), key("198.18.1.9", "eth1")),
        ]
        .into();
        let reachable = Neighbour {
            lladdr: Some([2, 0, 0, 0, 0, 2]),
            states: vec!["REACHABLE".into()],
            managed: false,
        };
        let failed = Neighbour {
            lladdr: None,
            states: vec!["FAILED".into()],
            managed: false,
        };
        let table: HashMap<NeighKey, Neighbour> = [
            (key("198.18.1.2", "eth1"), reachable),
            (key("198.18.1.9", "eth1"), failed),
        ]
        .into();
        let ours: HashSet<NeighKey> = [key("198.18.1.77", "eth1")].into();
        let macs: HashMap<u32, [u8; 6]> = [(0, [2, 0, 0, 0, 0, 2])].into();
        let none = HashSet::new();
        let p = plan(&wanted, &routes, &table, &ours, &macs, &none);
        assert_eq!(
            lines(&p.commands),
            [
                "neigh replace 198.18.1.9 dev eth1 nud none managed",
                "neigh add 2001:db8::11 dev eth0 managed",
                "neigh del 198.18.1.77 dev eth1",
            ]
        );
        // Dest 0 already has its MAC; dest 1 shares its gateway's; 2 and 3 wait.
        assert_eq!(p.macs, [(1, [2, 0, 0, 0, 0, 2])]);
        assert!(p.unresolved);
        assert_eq!(p.released, [key("198.18.1.77", "eth1")]);
        let due: HashSet<NeighKey> = [key("198.18.1.2", "eth1")].into();
        let reverified = plan(&wanted, &routes, &table, &ours, &macs, &due);
        assert_eq!(
            lines(&reverified.commands)[..2],
            [
                "neigh del 198.18.1.2 dev eth1",
                "neigh add 198.18.1.2 dev eth1 managed"
            ]
        );
        assert!(reverified.created.contains(&key("198.18.1.2", "eth1")));
        // One of rvs's own that failed is resolved afresh at once.
        let gone: HashMap<NeighKey, Neighbour> = [(
            key("198.18.1.2", "eth1"),
            Neighbour {
                lladdr: None,
                states: vec!["FAILED".into()],
                managed: true,
            },
        )]
        .into();
        let mine: HashSet<NeighKey> = [key("198.18.1.2", "eth1")].into();
        let only: BTreeMap<u32, IpAddr> = [(0, "198.18.1.2".parse().unwrap())].into();
        let p = plan(&only, &routes, &gone, &mine, &macs, &none);
        assert_eq!(
            lines(&p.commands),
            [
                "neigh del 198.18.1.2 dev eth1",
                "neigh add 198.18.1.2 dev eth1 managed"
            ]
        );
        assert!(p.unresolved && p.macs.is_empty());
        // A permanent entry is the operator's: never probed, never replaced.
        let fixed: HashMap<NeighKey, Neighbour> = [(
            key("198.18.1.2", "eth1"),
            Neighbour {
                lladdr: Some([2, 0, 0, 0, 0, 9]),
                states: vec!["PERMANENT".into()],
                managed: false,
            },
        )]
        .into();
        let p = plan(&only, &routes, &fixed, &HashSet::new(), &macs, &due);
        assert!(p.commands.is_empty(), "{:?}", p.commands);
        assert_eq!(p.macs, [(0, [2, 0, 0, 0, 0, 9])]);
    }
}
