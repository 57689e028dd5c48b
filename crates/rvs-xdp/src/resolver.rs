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
//! dests. The kernel is driven through iproute2's `ip` in batch mode (one process per round,
//! whatever the number of dests); `ip -j` gives JSON, which is parsed here. The host crate
//! planned in the layout issue moves this onto rtnetlink.

use rvs_bpf_abi as abi;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
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

/// A neighbour entry's identity: the address on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighKey {
    /// The next hop's address.
    pub addr: IpAddr,
    /// The interface it is reached by.
    pub dev: String,
}

/// What the kernel's neighbour table says of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Neighbour {
    /// The link-layer address, when the entry has one.
    pub lladdr: Option<[u8; 6]>,
    /// The NUD states (`REACHABLE`, `STALE`, `FAILED`, ...).
    pub states: Vec<String>,
    /// Whether it is a managed entry.
    pub managed: bool,
}

impl Neighbour {
    /// Whether the kernel would use its MAC (the FIB helper's `NUD_VALID`).
    #[must_use]
    pub fn usable(&self) -> bool {
        self.lladdr.is_some()
            && self.states.iter().any(|s| {
                matches!(
                    s.as_str(),
                    "REACHABLE" | "STALE" | "DELAY" | "PROBE" | "PERMANENT" | "NOARP"
                )
            })
    }

    /// Whether it is fixed by hand (the kernel never probes it, and neither does rvs).
    fn fixed(&self) -> bool {
        self.states.iter().any(|s| s == "PERMANENT" || s == "NOARP")
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for m in &mut mac {
        *m = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    (parts.next().is_none() && mac != [0; 6]).then_some(mac)
}

/// The objects of the JSON arrays `ip -j` prints (one or several, concatenated; `-batch`
/// prints one per command that answered).
fn json_objects(json: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    serde_json::Deserializer::from_str(json)
        .into_iter::<serde_json::Value>()
        .filter_map(|array| match array {
            Ok(serde_json::Value::Array(items)) => Some(items),
            _ => None,
        })
        .flatten()
}

/// Parses what `ip -j neigh show` prints.
#[must_use]
pub fn parse_neighbours(json: &str) -> HashMap<NeighKey, Neighbour> {
    json_objects(json)
        .filter_map(|e| {
            let addr = e["dst"].as_str()?.parse::<IpAddr>().ok()?;
            let dev = e["dev"].as_str()?.to_owned();
            let states = e["state"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let n = Neighbour {
                lladdr: e["lladdr"].as_str().and_then(parse_mac),
                states,
                managed: e.get("managed").is_some(),
            };
            Some((NeighKey { addr, dev }, n))
        })
        .collect()
}

/// Parses what `ip -j route get` prints (one array per address asked): each address's next
/// hop, the gateway if the route has one, else the address itself.
#[must_use]
pub fn parse_routes(json: &str) -> HashMap<IpAddr, NeighKey> {
    json_objects(json)
        .filter_map(|r| {
            let dst = r["dst"].as_str()?.parse::<IpAddr>().ok()?;
            let dev = r["dev"].as_str()?.to_owned();
            let hop = r["gateway"]
                .as_str()
                .and_then(|g| g.parse::<IpAddr>().ok())
                .unwrap_or(dst);
            Some((dst, NeighKey { addr: hop, dev }))
        })
        .collect()
}

/// What one round does, worked out from what the kernel said, without I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `ip -batch` lines.
    pub commands: Vec<String>,
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
        // Batch lines take no options: ip tells the family from the address.
        let NeighKey { addr, dev } = key;
        match table.get(*key) {
            None => {
                p.commands
                    .push(format!("neigh add {addr} dev {dev} managed"));
                p.created.push((*key).clone());
            }
            Some(n) if n.fixed() => {}
            Some(n) if !n.usable() && !n.managed => {
                // Failed or incomplete, and nobody keeps it: rvs does from now on.
                p.commands
                    .push(format!("neigh replace {addr} dev {dev} nud none managed"));
                p.created.push((*key).clone());
            }
            Some(n) if n.states.iter().any(|s| s == "FAILED") && ours.contains(*key) => {
                // Its MAC went away (the probes failed): resolve it afresh now rather than
                // at the kernel's next managed round, seconds later.
                p.commands.push(format!("neigh del {addr} dev {dev}"));
                p.commands
                    .push(format!("neigh add {addr} dev {dev} managed"));
            }
            Some(n) if due.contains(*key) && n.usable() => {
                // Confirm its MAC afresh: delete and add it again, which resolves it at once
                // by broadcast (the kernel's own confirmation would wait for its reachable
                // time to run out, and then its first-probe delay). The program keeps the
                // next hop it found meanwhile (bpf/xdp/hop.h, NH_GRACE).
                p.commands.push(format!("neigh del {addr} dev {dev}"));
                p.commands
                    .push(format!("neigh add {addr} dev {dev} managed"));
                p.created.push((*key).clone());
            }
            Some(_) => {}
        }
    }
    for key in ours {
        if !needed.contains(key) {
            p.commands
                .push(format!("neigh del {} dev {}", key.addr, key.dev));
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

/// Runs `ip` with these arguments and `input` on its standard input; its standard output.
fn ip(args: &[&str], input: &str) -> Result<String, String> {
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run ip {}: {e}", args.join(" ")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A batch that ip stops reading early shows in its exit status.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("run ip {}: {e}", args.join(" ")))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The resolver: its handle to the dest map and what it remembers between rounds.
pub struct Resolver {
    dest_map: Array<MapData, abi::Dest>,
    wanted: Wanted,
    wake: Receiver<()>,
    routes: HashMap<IpAddr, (NeighKey, Instant)>,
    ours: HashSet<NeighKey>,
    /// When each next hop was last resolved afresh.
    verified: HashMap<NeighKey, Instant>,
}

impl Resolver {
    /// Opens the dest map by id.
    ///
    /// # Errors
    /// When the kernel refuses the id.
    pub(crate) fn open(dests_id: u32, wanted: Wanted, wake: Receiver<()>) -> Result<Self, String> {
        let map = MapData::from_id(dests_id)
            .and_then(aya::maps::Map::from_map_data)
            .map_err(|e| format!("open map {dests_id}: {e}"))?;
        Ok(Self {
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
    /// When `ip` cannot run or the dest map cannot be written.
    pub fn round(&mut self) -> Result<bool, String> {
        let wanted = self
            .wanted
            .lock()
            .map_err(|_| "the plane's dest list is poisoned".to_owned())?
            .clone();
        let now = Instant::now();
        self.routes
            .retain(|a, (_, at)| wanted.values().any(|w| w == a) && now - *at < ROUTE_TTL);
        let missing: Vec<String> = wanted
            .values()
            .filter(|a| !self.routes.contains_key(a))
            .map(|a| format!("route get {a}\n"))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let out = ip(&["-j", "-force", "-batch", "-"], &missing.concat())?;
            for (addr, key) in parse_routes(&out) {
                self.routes.insert(addr, (key, now));
            }
        }
        let routes: HashMap<IpAddr, NeighKey> = self
            .routes
            .iter()
            .map(|(a, (k, _))| (*a, k.clone()))
            .collect();
        let table = parse_neighbours(&ip(&["-j", "neigh", "show"], "")?);
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
        if !p.commands.is_empty() {
            let batch: String = p.commands.iter().map(|c| format!("{c}\n")).collect();
            ip(&["-force", "-batch", "-"], &batch)?;
        }
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
        Ok(p.unresolved)
    }

    /// Deletes the managed entries rvs added.
    fn release_all(&mut self) {
        let batch: String = self
            .ours
            .drain()
            .map(|k| format!("neigh del {} dev {}\n", k.addr, k.dev))
            .collect();
        if !batch.is_empty() {
            let _ = ip(&["-force", "-batch", "-"], &batch);
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

    fn key(a: &str, dev: &str) -> NeighKey {
        NeighKey {
            addr: a.parse().unwrap(),
            dev: dev.to_owned(),
        }
    }

    #[test]
    fn ip_json_parses_into_neighbours_and_next_hops() {
        let n = parse_neighbours(
            r#"[{"dst":"198.18.1.2","dev":"va","lladdr":"02:00:00:00:00:66","managed":null,"state":["REACHABLE"]},{"dst":"198.18.1.3","dev":"va","managed":null,"state":["FAILED"]},{"dst":"2001:db8::11","dev":"eth0","lladdr":"02:00:00:00:01:11","router":null,"state":["STALE"]}]"#,
        );
        let a = &n[&key("198.18.1.2", "va")];
        assert_eq!(a.lladdr, Some([2, 0, 0, 0, 0, 0x66]));
        assert!(a.usable() && a.managed);
        let b = &n[&key("198.18.1.3", "va")];
        assert!(!b.usable() && b.managed);
        let c = &n[&key("2001:db8::11", "eth0")];
        assert!(c.usable() && !c.managed);
        let r = parse_routes(concat!(
            r#"[{"dst":"198.18.1.2","dev":"va","prefsrc":"198.18.1.1","flags":[],"uid":0,"cache":[]}]"#,
            "\n",
            r#"[{"dst":"198.18.5.5","gateway":"198.18.1.2","dev":"va","prefsrc":"198.18.1.1","flags":[],"uid":0,"cache":[]}]"#,
        ));
        assert_eq!(r[&"198.18.1.2".parse().unwrap()], key("198.18.1.2", "va"));
        assert_eq!(r[&"198.18.5.5".parse().unwrap()], key("198.18.1.2", "va"));
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
            p.commands,
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
            reverified.commands[..2],
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
            p.commands,
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
