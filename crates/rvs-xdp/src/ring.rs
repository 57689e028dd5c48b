//! A service's lookup ring: 256 slots, each naming a dest (index + 1; 0 = none).
//!
//! For rr and wrr the ring is the scheduler's own sequence for one cycle, worked out by the core
//! ([`sequence`]), and the program takes its slots in turn. For sh and dh it is the core's
//! answer for each of the kernel's 256 buckets ([`buckets`]), and the program computes the
//! kernel's bucket of the flow. For the scanning schedulers it lists the dests in the kernel's
//! order.

/// Slots per ring.
pub const SIZE: usize = rvs_bpf_abi::RING_SIZE as usize;

/// A copy of `service` in a table of its own, without persistence, for asking the core
/// scheduler what it would pick. `None` if the copy cannot be built.
fn simulation(service: &rvs_core::Service) -> Option<rvs_core::Table> {
    use rvs_core::{Command, Table};
    let mut config = service.config().clone();
    config.persistence = None;
    let key = config.key;
    let mut table = Table::new();
    let mut commands = vec![Command::AddService(config)];
    commands.extend(service.dests().iter().rev().map(|d| Command::AddDest {
        service: key,
        dest: d.config,
    }));
    table.apply(Command::batch(commands)).ok()?;
    Some(table)
}

/// The core's pick for one new connection from `flow` on the simulated service, released
/// again so the simulation's counts stay as they were.
fn pick(sim: &mut rvs_core::Service, flow: &rvs_core::Flow) -> Option<std::net::SocketAddr> {
    let t = sim
        .schedule(flow, true, rvs_core::Timestamp::ZERO, &mut NoRandom)
        .ok()?;
    let dest = t.dest;
    sim.release(t);
    Some(dest)
}

/// The core scheduler's picks for one cycle of `service` (at most [`SIZE`]): what rr and wrr
/// would answer for consecutive new connections, simulated on a copy without persistence.
#[must_use]
pub fn sequence(service: &rvs_core::Service) -> Vec<std::net::SocketAddr> {
    let key = service.config().key;
    let Some(mut table) = simulation(service) else {
        return Vec::new();
    };
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
    let flow = flow_with_key(0, std::net::Ipv4Addr::UNSPECIFIED);
    (0..cycle.min(SIZE))
        .filter_map(|_| pick(sim, &flow))
        .collect()
}

/// The inverse of the kernel's `GOLDEN_RATIO_32` modulo 2^32.
const GOLDEN_RATIO_32_INVERSE: u32 = {
    // Newton's iteration for the inverse of an odd number: each step doubles the good bits.
    let g: u32 = 0x61C8_8647;
    let mut x = g;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u32.wrapping_sub(g.wrapping_mul(x)));
        i += 1;
    }
    x
};

/// A 32-bit hash key whose kernel `hash_32(key, 8)` is `bucket`.
#[must_use]
pub const fn key_of_bucket(bucket: u8) -> u32 {
    ((bucket as u32) << 24).wrapping_mul(GOLDEN_RATIO_32_INVERSE)
}

/// A flow whose client address folds to `client_key` (port 0) towards `local`.
fn flow_with_key(client_key: u32, local: std::net::Ipv4Addr) -> rvs_core::Flow {
    rvs_core::Flow {
        client: std::net::SocketAddr::from((std::net::Ipv4Addr::from(client_key), 0)),
        local: std::net::SocketAddr::from((local, 0)),
    }
}

/// sh's and dh's answers by bucket, worked out by the core's own scheduler: entry `b` is the
/// dest a new flow gets when the kernel's `hash_32(key, 8)` of its key (sh: the client's
/// address, plus its port with `sh-port`; dh: the destination address) is `b`, after the
/// availability check and any `sh-fallback` rehashing (which depends on the bucket alone), or
/// `None` where the kernel finds no dest.
#[must_use]
pub fn buckets(service: &rvs_core::Service) -> Vec<Option<std::net::SocketAddr>> {
    let key = service.config().key;
    let Some(mut table) = simulation(service) else {
        return vec![None; SIZE];
    };
    let Some(sim) = table.service_mut(&key) else {
        return vec![None; SIZE];
    };
    let dh = service.config().scheduler == rvs_core::SchedulerKind::Dh;
    (0..=u8::MAX)
        .map(|b| {
            let k = key_of_bucket(b);
            let flow = if dh {
                flow_with_key(0, std::net::Ipv4Addr::from(k))
            } else {
                flow_with_key(k, std::net::Ipv4Addr::UNSPECIFIED)
            };
            pick(sim, &flow)
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
    fn keys_of_buckets_hash_back_to_their_bucket() {
        for b in 0..=u8::MAX {
            let k = key_of_bucket(b);
            assert_eq!(k.wrapping_mul(0x61C8_8647) >> 24, u32::from(b));
        }
    }

    fn service_with(scheduler: SchedulerKind, flags: u32, weights: &[u32]) -> Table {
        let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
        let mut config = ServiceConfig::new(key).with_scheduler(scheduler);
        config.sched_flags = rvs_core::SchedFlags(flags);
        let mut t = Table::new();
        t.apply(Command::AddService(config)).unwrap();
        for (i, w) in weights.iter().enumerate() {
            let addr = std::net::SocketAddr::from(([198, 18, 1, 2 + i as u8], 80));
            let d = DestConfig::new(addr, ForwardMethod::Route).with_weight(*w);
            t.apply(Command::AddDest {
                service: key,
                dest: d,
            })
            .unwrap();
        }
        t
    }

    #[test]
    fn sh_buckets_answer_as_the_core_does_for_any_client() {
        for flags in [
            0,
            rvs_core::SchedFlags::SCHED1,
            rvs_core::SchedFlags::SCHED2,
        ] {
            let mut t = service_with(SchedulerKind::Sh, flags, &[3, 0, 1, 2]);
            let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
            let table = buckets(t.service(&key).unwrap());
            let sim = t.service_mut(&key).unwrap();
            for i in 0..2000u32 {
                let client = std::net::Ipv4Addr::from(0xC612_0000 + i * 7919);
                let port = (i * 31 % 60000) as u16 + 1024;
                let flow = rvs_core::Flow {
                    client: std::net::SocketAddr::from((client, port)),
                    local: "198.18.0.1:80".parse().unwrap(),
                };
                let hash_key = if flags == rvs_core::SchedFlags::SCHED2 {
                    u32::from(client).wrapping_add(u32::from(port))
                } else {
                    u32::from(client)
                };
                let bucket = (hash_key.wrapping_mul(0x61C8_8647) >> 24) as usize;
                assert_eq!(
                    table[bucket],
                    pick(sim, &flow),
                    "flags {flags:#x}, {flow:?}"
                );
            }
            // The quiesced dest is never an answer; without fallback its buckets have none.
            assert!(!table.contains(&Some("198.18.1.3:80".parse().unwrap())));
            assert_eq!(table.contains(&None), flags != rvs_core::SchedFlags::SCHED1);
        }
    }

    #[test]
    fn dh_buckets_follow_the_destination_address() {
        let t = service_with(SchedulerKind::Dh, 0, &[1, 1, 1]);
        let key = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
        let table = buckets(t.service(&key).unwrap());
        // dh's table takes each dest once in turn, in the kernel's list order (newest first).
        assert_eq!(table[0], Some("198.18.1.4:80".parse().unwrap()));
        assert_eq!(table[1], Some("198.18.1.3:80".parse().unwrap()));
        assert_eq!(table[2], Some("198.18.1.2:80".parse().unwrap()));
        assert_eq!(table[3], table[0]);
    }

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
        // The kernel's mark after adding weights 2, 3, 4 one by one has cw = 1 (it carries over
        // every dest change), so the cycle starts with the cw = 1 pass.
        assert_eq!(seq, [1, 2, 3, 1, 1, 2, 1, 2, 3]);
    }
}
