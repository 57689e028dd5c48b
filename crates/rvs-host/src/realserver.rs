//! The real-server side, as the seeds set it up by hand: the VIPs on `lo`, ARP kept quiet
//! about them (arp_ignore=1, arp_announce=2), and for tunnel mode reverse-path filtering off
//! and rvs's tc program that strips the outer header ([`crate::decap`]). Everything done is
//! undone, in reverse order, when the [`RealServer`] is dropped.

use crate::address::Vips;
use crate::decap::Decap;
use crate::netlink::Netlink;
use crate::sysctl::Sysctls;
use crate::{host_error, HostError};
use std::net::IpAddr;

/// How the director reaches this real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct routing: frames for the VIP arrive with the real server's MAC.
    Dr,
    /// IP-in-IP tunnelling.
    Tun,
}

/// A prepared real server; dropping it undoes the preparation (the program first, then the
/// VIPs, then the sysctls) and then says so in the log.
pub struct RealServer {
    prepared: Option<Prepared>,
}

/// What was done, in the order it is undone (fields drop in declaration order).
struct Prepared {
    _decap: Option<Decap>,
    _vips: Vips,
    _sysctls: Sysctls,
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
    ) -> Result<Self, HostError> {
        if vips.is_empty() {
            return Err(host_error(
                "prepare a real server",
                "give at least one --vip",
            ));
        }
        if gue_port.is_some() && mode != Mode::Tun {
            return Err(host_error(
                "prepare a real server",
                "--gue-port is for --mode tun",
            ));
        }
        if mode == Mode::Tun && interface.is_none() {
            return Err(host_error(
                "prepare tunnel mode",
                "give the --interface the tunnelled packets arrive on",
            ));
        }
        let mut sysctls = Sysctls::new();
        let mut devs = vec!["all"];
        devs.extend(interface);
        for dev in devs {
            sysctls.set(&format!("net/ipv4/conf/{dev}/arp_ignore"), "1")?;
            sysctls.set(&format!("net/ipv4/conf/{dev}/arp_announce"), "2")?;
            if mode == Mode::Tun {
                sysctls.set(&format!("net/ipv4/conf/{dev}/rp_filter"), "0")?;
            }
        }
        let mut added = Vips::new(Netlink::open()?);
        for vip in vips {
            // IPv6 VIPs skip duplicate address detection (their neighbour solicitations would
            // meet the director's copy) and need no ARP-like sysctl: Linux answers neighbour
            // solicitations only for addresses on the asking interface, never for lo's.
            let prefix = if vip.is_ipv4() { 32 } else { 128 };
            added.add("lo", *vip, prefix)?;
        }
        let decap = match mode {
            Mode::Tun => Some(Decap::attach(
                interface.unwrap_or_default(),
                vips,
                gue_port,
            )?),
            Mode::Dr => None,
        };
        Ok(Self {
            prepared: Some(Prepared {
                _decap: decap,
                _vips: added,
                _sysctls: sysctls,
            }),
        })
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        drop(self.prepared.take());
        tracing::info!("real server settings undone");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(vips: &[IpAddr], mode: Mode, interface: Option<&str>, gue: Option<u16>) -> String {
        match RealServer::prepare(vips, mode, interface, gue) {
            Ok(_) => panic!("prepared"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn impossible_set_ups_are_refused_before_anything_is_touched() {
        let vip: IpAddr = "198.18.0.10".parse().unwrap();
        assert_eq!(
            refused(&[], Mode::Dr, None, None),
            "prepare a real server: give at least one --vip"
        );
        assert_eq!(
            refused(&[vip], Mode::Dr, None, Some(6080)),
            "prepare a real server: --gue-port is for --mode tun"
        );
        assert_eq!(
            refused(&[vip], Mode::Tun, None, None),
            "prepare tunnel mode: give the --interface the tunnelled packets arrive on"
        );
    }
}
