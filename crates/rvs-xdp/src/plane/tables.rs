//! What the program's tables say for a service: its pick mode, the core's answers behind
//! its ring or mh table, and each dest's forwarding fields.

use crate::ring;
use rvs_bpf_abi as abi;
use rvs_core::{ForwardMethod, SchedulerKind, Service, Tunnel, TunnelCsum, TunnelKind};
use std::net::SocketAddr;

/// The program's pick mode for a service's scheduler (and its flags).
pub(super) fn pick_mode(service: &Service) -> u16 {
    match service.config().scheduler {
        // `none` schedules nothing: an empty cycle.
        SchedulerKind::Rr | SchedulerKind::Wrr | SchedulerKind::None => abi::PICK_CURSOR,
        SchedulerKind::Fo => abi::PICK_FO,
        SchedulerKind::Twos => abi::PICK_TWOS,
        SchedulerKind::Lblc => abi::PICK_LBLC,
        SchedulerKind::Mh => abi::PICK_MH,
        SchedulerKind::Lblcr => abi::PICK_LBLCR,
        SchedulerKind::Sh if service.config().sched_flags.port() => abi::PICK_SRC_PORT,
        SchedulerKind::Sh => abi::PICK_SRC,
        SchedulerKind::Dh => abi::PICK_DST,
        SchedulerKind::Lc => abi::PICK_LC,
        SchedulerKind::Wlc => abi::PICK_WLC,
        SchedulerKind::Sed => abi::PICK_SED,
        SchedulerKind::Nq => abi::PICK_NQ,
        SchedulerKind::Ovf => abi::PICK_OVF,
    }
}

/// Whether a pick mode scans the dests listed in the ring (in the kernel's list order).
pub(super) const fn scans(pick: u16) -> bool {
    matches!(
        pick,
        abi::PICK_LC
            | abi::PICK_WLC
            | abi::PICK_SED
            | abi::PICK_NQ
            | abi::PICK_OVF
            | abi::PICK_FO
            | abi::PICK_TWOS
            | abi::PICK_LBLC
            | abi::PICK_LBLCR
    )
}

/// The core's answers the program's tables hold, by address: a cycle of picks (rr, wrr), the
/// dests in the kernel's list order (the scans), the mh table, or one answer per bucket (sh,
/// dh).
pub(super) fn answers(service: &Service, pick: u16) -> Vec<Option<SocketAddr>> {
    match pick {
        abi::PICK_CURSOR => ring::sequence(service).into_iter().map(Some).collect(),
        // The scans walk the dests in the kernel's list order.
        p if scans(p) => service
            .dests()
            .iter()
            .take(ring::SIZE)
            .map(|d| Some(d.addr()))
            .collect(),
        // The kernel's mh table, by dest address.
        abi::PICK_MH => rvs_core::sched::mh_table(service.dests())
            .into_iter()
            .map(|i| {
                i.and_then(|i| service.dests().get(i as usize))
                    .map(|d| d.addr())
            })
            .collect(),
        _ => ring::buckets(service),
    }
}

/// A dest's forwarding method, tunnel type, GUE port (network order) and tunnel flags as the
/// program's dest entry holds them.
pub(super) fn forwarding(forward: ForwardMethod) -> (u8, u8, u16, u8) {
    let method = match forward {
        ForwardMethod::Tunnel(_) => abi::FWD_TUNNEL,
        ForwardMethod::Masq => abi::FWD_MASQ,
        ForwardMethod::Route => abi::FWD_ROUTE,
    };
    let (tun_type, tun_port) = match forward {
        ForwardMethod::Tunnel(Tunnel {
            kind: TunnelKind::Gue { port },
            ..
        }) => (abi::TUN_GUE, port.to_be()),
        ForwardMethod::Tunnel(Tunnel {
            kind: TunnelKind::Gre,
            ..
        }) => (abi::TUN_GRE, 0),
        _ => (abi::TUN_IPIP, 0),
    };
    let tun_flags = match forward {
        ForwardMethod::Tunnel(Tunnel {
            csum: TunnelCsum::Csum,
            ..
        }) => abi::TUN_CSUM,
        _ => 0,
    };
    (method, tun_type, tun_port, tun_flags)
}
