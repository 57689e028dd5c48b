//! The real-server side, as the seeds set it up by hand: the VIPs on `lo`, ARP kept quiet
//! about them (arp_ignore=1, arp_announce=2), and for tunnel mode reverse-path filtering off and,
//! because this kernel has no ipip module, rvs's tc-BPF program that strips the outer header.
//! Everything done is undone, in reverse order, when the [`RealServer`] is dropped.
//!
//! Addresses are changed with iproute2's `ip`, which every LVS real server has, rather than a
//! netlink library: one command each way, and an operator can read what was done in the log.

use aya::programs::{SchedClassifier, TcAttachType};
use aya::Ebpf;
use rvs_bpf_abi as abi;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

/// The compiled tc decapsulation program (empty without clang).
pub static DECAP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rvs_tc_decap.o"));

/// How the director reaches this real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct routing: frames for the VIP arrive with the real server's MAC.
    Dr,
    /// IP-in-IP tunnelling.
    Tun,
}

/// Why the real server could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct RealServerError {
    /// What was being done.
    pub what: String,
    /// Why it failed.
    pub why: String,
}

fn err(what: impl Into<String>, why: impl std::fmt::Display) -> RealServerError {
    RealServerError {
        what: what.into(),
        why: why.to_string(),
    }
}

enum Undo {
    Sysctl(PathBuf, String),
    Vip(String),
}

/// A prepared real server; dropping it undoes the preparation.
pub struct RealServer {
    undo: Vec<Undo>,
    _decap: Option<Ebpf>,
}

fn set_sysctl(undo: &mut Vec<Undo>, path: PathBuf, value: &str) -> Result<(), RealServerError> {
    let old =
        std::fs::read_to_string(&path).map_err(|e| err(format!("read {}", path.display()), e))?;
    std::fs::write(&path, value).map_err(|e| err(format!("write {}", path.display()), e))?;
    tracing::info!(sysctl = %path.display(), old = old.trim(), new = value, "set");
    undo.push(Undo::Sysctl(path, old.trim().to_owned()));
    Ok(())
}

impl RealServer {
    /// Prepares this host as a real server for `vips`; in tunnel mode, GUE is taken on
    /// `gue_port` when one is given.
    ///
    /// # Errors
    /// The first step that failed; what was done before it is undone.
    pub fn prepare(
        vips: &[IpAddr],
        mode: Mode,
        interface: Option<&str>,
        gue_port: Option<u16>,
    ) -> Result<Self, RealServerError> {
        let mut rs = Self {
            undo: Vec::new(),
            _decap: None,
        };
        rs.steps(vips, mode, interface, gue_port)?;
        Ok(rs)
    }

    fn steps(
        &mut self,
        vips: &[IpAddr],
        mode: Mode,
        interface: Option<&str>,
        gue_port: Option<u16>,
    ) -> Result<(), RealServerError> {
        if vips.is_empty() {
            return Err(err("prepare a real server", "give at least one --vip"));
        }
        if gue_port.is_some() && mode != Mode::Tun {
            return Err(err("prepare a real server", "--gue-port is for --mode tun"));
        }
        if mode == Mode::Tun && interface.is_none() {
            return Err(err(
                "prepare tunnel mode",
                "give the --interface the tunnelled packets arrive on",
            ));
        }
        let conf =
            |dev: &str, key: &str| PathBuf::from(format!("/proc/sys/net/ipv4/conf/{dev}/{key}"));
        let mut devs = vec!["all".to_owned()];
        devs.extend(interface.map(str::to_owned));
        for dev in &devs {
            set_sysctl(&mut self.undo, conf(dev, "arp_ignore"), "1")?;
            set_sysctl(&mut self.undo, conf(dev, "arp_announce"), "2")?;
            if mode == Mode::Tun {
                set_sysctl(&mut self.undo, conf(dev, "rp_filter"), "0")?;
            }
        }
        for vip in vips {
            // IPv6 VIPs skip duplicate address detection (their neighbour solicitations would
            // meet the director's copy) and need no ARP-like sysctl: Linux answers neighbour
            // solicitations only for addresses on the asking interface, never for lo's.
            let prefix = match vip {
                IpAddr::V4(_) => format!("{vip}/32"),
                IpAddr::V6(_) => format!("{vip}/128"),
            };
            let mut args = vec!["addr", "add", prefix.as_str(), "dev", "lo"];
            if vip.is_ipv6() {
                args.push("nodad");
            }
            let out = Command::new("ip")
                .args(&args)
                .output()
                .map_err(|e| err("run ip (iproute2)", e))?;
            if out.status.success() {
                tracing::info!(%vip, "VIP added to lo");
                self.undo.push(Undo::Vip(prefix));
            } else if ["File exists", "already assigned"]
                .iter()
                .any(|m| String::from_utf8_lossy(&out.stderr).contains(m))
            {
                tracing::info!(%vip, "VIP already on lo; left as it is");
            } else {
                return Err(err(
                    format!("add {prefix} to lo"),
                    String::from_utf8_lossy(&out.stderr).trim(),
                ));
            }
        }
        if mode == Mode::Tun {
            let iface = interface.unwrap_or("eth0");
            if DECAP_OBJECT.is_empty() {
                return Err(err(
                    "load the tunnel decapsulation program",
                    crate::object().err().unwrap_or_default(),
                ));
            }
            let mut ebpf = Ebpf::load(DECAP_OBJECT).map_err(|e| err("load rvs_tc_decap", e))?;
            {
                let map = ebpf
                    .map_mut(abi::maps::VIPS)
                    .ok_or_else(|| err("find map rvs_vips", "missing"))?;
                let mut set: aya::maps::HashMap<_, abi::VipKey, u8> =
                    aya::maps::HashMap::try_from(map).map_err(|e| err("open rvs_vips", e))?;
                for vip in vips {
                    let (addr, af) = crate::addr::to_map(*vip);
                    let key = abi::VipKey {
                        addr,
                        af,
                        pad: [0; 3],
                    };
                    set.insert(key, 1, 0)
                        .map_err(|e| err("write rvs_vips", e))?;
                }
            }
            if let Some(port) = gue_port {
                let map = ebpf
                    .map_mut(abi::maps::DECAP_CONFIG)
                    .ok_or_else(|| err("find map rvs_decap_config", "missing"))?;
                let mut config: aya::maps::Array<_, abi::DecapConfig> =
                    aya::maps::Array::try_from(map).map_err(|e| err("open rvs_decap_config", e))?;
                let value = abi::DecapConfig {
                    gue_port: port.to_be(),
                    pad: 0,
                };
                config
                    .set(0, value, 0)
                    .map_err(|e| err("write rvs_decap_config", e))?;
            }
            let prog: &mut SchedClassifier = ebpf
                .program_mut("rvs_tc_decap")
                .ok_or_else(|| err("find rvs_tc_decap", "missing"))?
                .try_into()
                .map_err(|e| err("find rvs_tc_decap", e))?;
            prog.load().map_err(|e| err("load rvs_tc_decap", e))?;
            prog.attach(iface, TcAttachType::Ingress)
                .map_err(|e| err(format!("attach rvs_tc_decap to {iface} ingress"), e))?;
            tracing::info!(
                interface = iface,
                ?gue_port,
                "tunnel decapsulation attached"
            );
            self._decap = Some(ebpf);
        }
        Ok(())
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self._decap = None;
        for step in self.undo.drain(..).rev() {
            match step {
                Undo::Sysctl(path, old) => {
                    let _ = std::fs::write(&path, &old);
                }
                Undo::Vip(prefix) => {
                    let _ = Command::new("ip")
                        .args(["addr", "del", &prefix, "dev", "lo"])
                        .status();
                }
            }
        }
        tracing::info!("real server settings undone");
    }
}
