//! A service's lookup ring: 256 slots, each naming a dest.
//!
//! For rr and wrr the ring is the scheduler's own sequence for one cycle, worked out by the core
//! ([`sequence`]), and the program takes its slots in turn. For the other schedulers it is a
//! hash ring:
//! The fill is the kernel's source-hashing one (ip_vs_sh.c `ip_vs_sh_reassign`): walk the dests
//! round robin, each taking `weight` consecutive slots, so shares follow weights. Quiesced dests
//! (weight 0) take no slot here (unlike sh, where they take one and then fail), so new flows
//! never reach them while their open flows continue through the connection table.

/// Slots per ring.
pub const SIZE: usize = rvs_bpf_abi::RING_SIZE as usize;

/// The ring for dests given as (dest index, weight), in kernel list order. Slot values are
/// dest index + 1; 0 means no dest.
#[must_use]
pub fn fill(dests: &[(u32, u32)]) -> Vec<u32> {
    let live: Vec<(u32, u32)> = dests.iter().copied().filter(|&(_, w)| w > 0).collect();
    if live.is_empty() {
        return vec![0; SIZE];
    }
    let mut ring = Vec::with_capacity(SIZE);
    let (mut i, mut count) = (0usize, 0u32);
    while ring.len() < SIZE {
        let (id, w) = live[i];
        ring.push(id + 1);
        count += 1;
        if count >= w {
            i = (i + 1) % live.len();
            count = 0;
        }
    }
    ring
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_weights_and_quiesced_dests_get_none() {
        let r = fill(&[(0, 3), (1, 0), (2, 1)]);
        assert_eq!(&r[..8], &[1, 1, 1, 3, 1, 1, 1, 3]);
        assert_eq!(r.iter().filter(|&&s| s == 2).count(), 0);
        assert_eq!(fill(&[(5, 0)]), vec![0; SIZE]);
    }
}

/// The core scheduler's picks for one cycle of `service` (at most [`SIZE`]): what rr and wrr
/// would answer for consecutive new connections, simulated on a copy without persistence.
#[must_use]
pub fn sequence(service: &rvs_core::Service) -> Vec<std::net::SocketAddr> {
    use rvs_core::{Command, Flow, Table, Timestamp};
    let mut config = service.config().clone();
    config.persistence = None;
    let key = config.key;
    let mut table = Table::new();
    let mut commands = vec![Command::AddService(config)];
    commands.extend(service.dests().iter().rev().map(|d| Command::AddDest {
        service: key,
        dest: d.config,
    }));
    if table.apply(Command::batch(commands)).is_err() {
        return Vec::new();
    }
    let weights: Vec<u32> = service
        .dests()
        .iter()
        .map(rvs_core::Dest::weight)
        .filter(|&w| w > 0)
        .collect();
    let g = weights.iter().copied().fold(0, gcd);
    let cycle = match service.config().scheduler {
        rvs_core::SchedulerKind::Wrr if g > 0 => weights.iter().map(|w| (w / g) as usize).sum(),
        _ => weights.len(),
    };
    let Some(sim) = table.service_mut(&key) else {
        return Vec::new();
    };
    let mut rng = NoRandom;
    let flow = Flow {
        client: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        local: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    (0..cycle.min(SIZE))
        .filter_map(|_| {
            let t = sim.schedule(&flow, true, Timestamp::ZERO, &mut rng).ok()?;
            let dest = t.dest;
            sim.release(t);
            Some(dest)
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// rr and wrr draw no random numbers; this stands in for the generator `schedule` takes.
struct NoRandom;

impl rand_core::RngCore for NoRandom {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

#[cfg(test)]
mod sequence_tests {
    use super::*;
    use rvs_core::{
        Command, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey, Table,
    };

    #[test]
    fn wrr_sequence_is_the_kernel_cycle() {
        let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
        let mut t = Table::new();
        t.apply(Command::AddService(
            ServiceConfig::new(key).with_scheduler(SchedulerKind::Wrr),
        ))
        .unwrap();
        for (i, w) in [(3u8, 2u32), (2, 3), (1, 4)] {
            let d = DestConfig::new(
                std::net::SocketAddr::from(([198, 18, 1, i], 80)),
                ForwardMethod::Route,
            )
            .with_weight(w);
            t.apply(Command::AddDest {
                service: key,
                dest: d,
            })
            .unwrap();
        }
        let seq: Vec<u8> = sequence(t.service(&key).unwrap())
            .iter()
            .map(|a| match a.ip() {
                std::net::IpAddr::V4(v) => v.octets()[3],
                std::net::IpAddr::V6(_) => 0,
            })
            .collect();
        assert_eq!(seq, [1, 1, 2, 1, 2, 3, 1, 2, 3]);
    }
}
