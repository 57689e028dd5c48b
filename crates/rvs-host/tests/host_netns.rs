//! rvs-host against the kernel, in network namespaces the tests create (root; skipped with a
//! message otherwise). Each test's thread gets a namespace of its own (`unshare`), so the
//! netlink sockets, `/proc/sys/net` and the `ip` commands the tests run are all in it; a second
//! namespace, the peer at the far end of a veth, is a named one removed by a guard. The peer's
//! kernel is the judge: its neighbour table must take the announced MACs, and its answers
//! must resolve the entries rvs-host adds. Nothing is pre-resolved anywhere. (This kernel has
//! no dummy interfaces: a veth pair stands in for one.)

use rvs_host::address::Vips;
use rvs_host::announce::announce;
use rvs_host::neighbors::{KernelNeighbors, NeighKey, NeighOp, Neighbors};
use rvs_host::netlink::{Added, Netlink};
use rvs_host::sysctl::{self, Sysctls};
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("skipped: network namespaces need root");
    }
    root
}

/// Runs a command (in the thread's namespace), panicking with its stderr when it fails.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace of the calling thread's own, with `lo` up.
fn own_namespace() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a namespace");
    sh(&["ip", "link", "set", "lo", "up"]);
}

/// The peer: a named namespace at the far end of veth `va` (here, 198.18.0.1, 2001:db8::1) /
/// `vb` (there, 198.18.0.2, 2001:db8::2); removed when dropped.
struct Peer {
    name: String,
}

impl Peer {
    fn new(tag: &str) -> Self {
        let name = format!("rvs-host-{}-{tag}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        let peer = Self { name };
        sh(&[
            "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        sh(&["ip", "link", "set", "vb", "netns", &peer.name]);
        sh(&["ip", "addr", "add", "198.18.0.1/24", "dev", "va"]);
        sh(&["ip", "addr", "add", "2001:db8::1/64", "dev", "va", "nodad"]);
        sh(&["ip", "link", "set", "va", "up"]);
        peer.ip(&["addr", "add", "198.18.0.2/24", "dev", "vb"]);
        peer.ip(&["addr", "add", "2001:db8::2/64", "dev", "vb", "nodad"]);
        peer.ip(&["link", "set", "vb", "up"]);
        peer.ip(&["link", "set", "lo", "up"]);
        peer
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// The MAC of the peer's entry for `addr`, if it has one.
    fn neighbour_mac(&self, addr: &str) -> Option<String> {
        let out = self.ip(&["neigh", "show", addr, "dev", "vb"]);
        let words: Vec<&str> = out.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "lladdr")?;
        words.get(at + 1).map(|m| (*m).to_owned())
    }

    fn mac(&self) -> String {
        link_mac(&self.ip(&["link", "show", "vb"]))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn link_mac(ip_link: &str) -> String {
    let words: Vec<&str> = ip_link.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "link/ether")
        .expect("an Ethernet link");
    words[at + 1].to_owned()
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Polls `done` every 20 ms for at most `limit`.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn addresses_of(netlink: &Netlink, dev: &str) -> Vec<(IpAddr, u8)> {
    netlink.addresses(netlink.link_index(dev).unwrap()).unwrap()
}

#[test]
fn vips_are_added_once_and_removed_when_dropped_leaving_others_alone() {
    if !root() {
        return;
    }
    own_namespace();
    sh(&[
        "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    sh(&["ip", "link", "set", "d0", "up"]);
    sh(&["ip", "addr", "add", "198.18.0.20/32", "dev", "d0"]);
    let netlink = Netlink::open().unwrap();
    let v4: IpAddr = "198.18.0.10".parse().unwrap();
    let v6: IpAddr = "2001:db8::10".parse().unwrap();
    let theirs: IpAddr = "198.18.0.20".parse().unwrap();
    {
        let mut vips = Vips::new(netlink.clone());
        assert_eq!(vips.add("d0", v4, 32).unwrap(), Added::New);
        assert_eq!(vips.add("d0", v6, 128).unwrap(), Added::New);
        assert_eq!(vips.add("d0", theirs, 32).unwrap(), Added::Present);
        let on = addresses_of(&netlink, "d0");
        assert!(on.contains(&(v4, 32)) && on.contains(&(v6, 128)), "{on:?}");
        // Without duplicate address detection the IPv6 VIP is usable at once.
        let shown = sh(&["ip", "-6", "addr", "show", "dev", "d0"]);
        assert!(
            shown.contains("2001:db8::10/128") && !shown.contains("tentative"),
            "{shown}"
        );
        // A second holder finds them present and, dropped, leaves them.
        let mut again = Vips::new(netlink.clone());
        assert_eq!(again.add("d0", v4, 32).unwrap(), Added::Present);
        drop(again);
        assert!(addresses_of(&netlink, "d0").contains(&(v4, 32)));
        // Removing one by hand, then dropping the rest.
        assert!(vips.remove(v6).unwrap());
        assert!(!addresses_of(&netlink, "d0").contains(&(v6, 128)));
        assert!(
            !vips.remove(theirs).unwrap(),
            "someone else's address is not ours to remove"
        );
        let e = vips.add("d0", v4, 33).unwrap_err();
        assert!(e.to_string().contains("at most 32"), "{e}");
        let e = vips.add("nosuch0", v4, 32).unwrap_err();
        assert!(e.to_string().contains("nosuch0: no such interface"), "{e}");
    }
    let left = addresses_of(&netlink, "d0");
    assert_eq!(
        left,
        [(theirs, 32)],
        "only the address rvs did not add stays"
    );
}

#[test]
fn announcements_replace_the_vip_mac_in_the_peers_neighbour_table() {
    if !root() {
        return;
    }
    own_namespace();
    let peer = Peer::new("announce");
    let here = link_mac(&sh(&["ip", "link", "show", "va"]));
    // The peer knows the VIPs at an old MAC (another director had them), as after a failover.
    for vip in ["198.18.0.10", "2001:db8::10"] {
        peer.ip(&[
            "neigh",
            "add",
            vip,
            "dev",
            "vb",
            "lladdr",
            "02:00:00:00:00:99",
            "nud",
            "stale",
        ]);
        assert_eq!(
            peer.neighbour_mac(vip).as_deref(),
            Some("02:00:00:00:00:99")
        );
    }
    let netlink = Netlink::open().unwrap();
    for vip in ["198.18.0.10", "2001:db8::10"] {
        announce(&netlink, "va", vip.parse().unwrap(), 1).unwrap();
        assert!(
            within(Duration::from_secs(3), || peer
                .neighbour_mac(vip)
                .as_deref()
                == Some(here.as_str())),
            "the peer still has {:?} for {vip}, not {here}",
            peer.neighbour_mac(vip)
        );
    }
    let e = announce(&netlink, "nosuch0", "198.18.0.10".parse().unwrap(), 1).unwrap_err();
    assert!(e.to_string().contains("no such interface"), "{e}");
}

#[test]
fn next_hops_are_found_and_resolved_through_managed_entries() {
    if !root() {
        return;
    }
    own_namespace();
    let peer = Peer::new("resolve");
    sh(&["ip", "route", "add", "198.18.5.0/24", "via", "198.18.0.2"]);
    let kernel = KernelNeighbors::open().unwrap();
    let near: IpAddr = "198.18.0.2".parse().unwrap();
    let far: IpAddr = "198.18.5.5".parse().unwrap();
    let near6: IpAddr = "2001:db8::2".parse().unwrap();
    let hops = kernel.next_hops([near, far, near6]).unwrap();
    let key = |addr: IpAddr| NeighKey {
        addr,
        dev: "va".to_owned(),
    };
    assert_eq!(hops[&near], key(near));
    assert_eq!(
        hops[&far],
        key(near),
        "a routed address's next hop is its gateway"
    );
    assert_eq!(hops[&near6], key(near6));
    // A clean start: nothing is resolved.
    let table = kernel.table().unwrap();
    assert!(
        !table.contains_key(&key(near)) && !table.contains_key(&key(near6)),
        "{table:?}"
    );
    assert_eq!(kernel.mac(near), None);
    kernel
        .apply(&[
            NeighOp::AddManaged(key(near)),
            NeighOp::AddManaged(key(near6)),
        ])
        .unwrap();
    let theirs = peer.mac();
    for addr in [near, near6] {
        assert!(
            within(Duration::from_secs(3), || kernel
                .mac(addr)
                .map(mac_text)
                .as_deref()
                == Some(theirs.as_str())),
            "{addr} was not resolved to {theirs}: {:?}",
            kernel.table().unwrap().get(&key(addr))
        );
        let entry = &kernel.table().unwrap()[&key(addr)];
        assert!(entry.managed && entry.usable(), "{entry:?}");
    }
    kernel
        .apply(&[NeighOp::Delete(key(near)), NeighOp::Delete(key(near6))])
        .unwrap();
    let table = kernel.table().unwrap();
    assert!(
        !table.contains_key(&key(near)) && !table.contains_key(&key(near6)),
        "{table:?}"
    );
    // Deleting what is gone is no error; an interface that is gone is, named.
    kernel.apply(&[NeighOp::Delete(key(near))]).unwrap();
    let gone = NeighKey {
        addr: near,
        dev: "nosuch0".to_owned(),
    };
    let e = kernel.apply(&[NeighOp::AddManaged(gone)]).unwrap_err();
    assert!(e.to_string().contains("nosuch0"), "{e}");
}

#[test]
fn sysctls_are_put_back_when_dropped() {
    if !root() {
        return;
    }
    own_namespace();
    sh(&[
        "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    let key = "net/ipv4/conf/d0/arp_ignore";
    assert_eq!(sysctl::read(key).unwrap(), "0");
    {
        let mut set = Sysctls::new();
        set.set(key, "1").unwrap();
        set.set("net/ipv4/conf/d0/arp_announce", "2").unwrap();
        assert_eq!(sysctl::read(key).unwrap(), "1");
        assert_eq!(sysctl::read("net/ipv4/conf/d0/arp_announce").unwrap(), "2");
        let e = set
            .set("net/ipv4/conf/nosuch0/arp_ignore", "1")
            .unwrap_err();
        assert!(e.to_string().contains("nosuch0"), "{e}");
    }
    assert_eq!(sysctl::read(key).unwrap(), "0");
    assert_eq!(sysctl::read("net/ipv4/conf/d0/arp_announce").unwrap(), "0");
}
