//! The bucket-table hashing schedulers: dh and sh (ip_vs_dh.c, ip_vs_sh.c), and the kernel's
//! `hash_32`.
//!
//! Both keep 256 buckets (`CONFIG_IP_VS_{DH,SH}_TAB_BITS` = 8). dh fills them round robin with
//! each dest once; sh repeats each dest `weight` times (a weight-0 dest still takes one bucket,
//! as `++d_count >= weight` is then true at once). Tables are rebuilt lazily after dest changes.

use crate::config::SchedFlags;
use crate::dest::Dest;
use crate::protocol::addr_fold;
use crate::sched::Flow;

/// `GOLDEN_RATIO_32` from include/linux/hash.h.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;
/// Bits of the dh and sh tables.
const TAB_BITS: u32 = 8;
/// Buckets of the dh and sh tables.
const TAB_SIZE: usize = 1 << TAB_BITS;

/// The kernel's `hash_32(val, bits)`: multiply by the golden ratio, keep the top `bits` bits.
#[must_use]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// Builds a bucket table by walking the list round robin, `repeat(dest)` buckets per dest.
fn fill(dests: &[Dest], repeat: impl Fn(&Dest) -> u32) -> Vec<Option<u32>> {
    if dests.is_empty() {
        return vec![None; TAB_SIZE];
    }
    let mut table = Vec::with_capacity(TAB_SIZE);
    let (mut i, mut count) = (0usize, 0u32);
    while table.len() < TAB_SIZE {
        table.push(Some(u32::try_from(i).unwrap_or(u32::MAX)));
        count += 1;
        if count >= repeat(&dests[i]) {
            i = (i + 1) % dests.len();
            count = 0;
        }
    }
    table
}

/// Destination hashing: the packet's destination address picks a bucket; no fallback.
#[derive(Debug, Clone, Default)]
pub struct Dh {
    table: Vec<Option<u32>>,
    dirty: bool,
}

impl Dh {
    /// Dests changed: rebuild on the next pick.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The bucket's dest if it is available, else `None`.
    pub fn schedule(&mut self, dests: &[Dest], flow: &Flow) -> Option<usize> {
        if self.dirty || self.table.is_empty() {
            self.table = fill(dests, |_| 1);
            self.dirty = false;
        }
        let bucket = hash_32(addr_fold(&flow.local.ip()), TAB_BITS) as usize;
        let i = self.table[bucket]? as usize;
        dests[i].available().then_some(i)
    }
}

/// Source hashing: the client's address (and port, with `sh-port`) picks a bucket.
#[derive(Debug, Clone, Default)]
pub struct Sh {
    table: Vec<Option<u32>>,
    dirty: bool,
}

/// `ip_vs_sh_hashkey`: `(offset + hash_32(port + addr, 8)) & 255`.
fn sh_bucket(fold: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold), TAB_BITS)) as usize)
        & (TAB_SIZE - 1)
}

impl Sh {
    /// Dests changed: rebuild on the next pick.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The bucket's dest if available; with `sh-fallback`, the first available dest found by
    /// rehashing with offsets `ihash, ihash+1, ...` around the table.
    pub fn schedule(&mut self, dests: &[Dest], flow: &Flow, flags: SchedFlags) -> Option<usize> {
        if self.dirty || self.table.is_empty() {
            self.table = fill(dests, Dest::weight);
            self.dirty = false;
        }
        let fold = addr_fold(&flow.client.ip());
        let port = if flags.port() { flow.client.port() } else { 0 };
        let ihash = sh_bucket(fold, port, 0);
        super::lookup_with_fallback(&self.table, dests, ihash, flags.fallback(), |off| {
            sh_bucket(fold, port, off)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::dests;
    use std::net::SocketAddr;

    fn flow(client: &str, local: &str) -> Flow {
        Flow {
            client: client.parse().unwrap(),
            local: local.parse().unwrap(),
        }
    }

    #[test]
    fn hash_32_matches_the_kernel_formula() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(
            hash_32(0x0A00_0001, 8),
            (0x0A00_0001u32.wrapping_mul(0x61C8_8647)) >> 24
        );
    }

    #[test]
    fn sh_table_repeats_each_dest_by_weight() {
        let t = fill(&dests(&[2, 0, 1]), Dest::weight);
        assert_eq!(&t[..8], &[0, 0, 1, 2, 0, 0, 1, 2].map(Some));
    }

    #[test]
    fn dh_table_takes_each_dest_once_in_turn() {
        let t = fill(&dests(&[5, 1]), |_| 1);
        assert_eq!(&t[..4], &[0, 1, 0, 1].map(Some));
    }

    #[test]
    fn sh_sends_a_client_to_the_same_dest_every_time() {
        let d = dests(&[1, 1, 1, 1]);
        let mut sh = Sh::default();
        let f = flow("198.18.1.7:4000", "198.18.0.1:80");
        let first = sh.schedule(&d, &f, SchedFlags::default());
        for port in 1..50 {
            let f = Flow {
                client: SocketAddr::new(f.client.ip(), port),
                ..f
            };
            assert_eq!(sh.schedule(&d, &f, SchedFlags::default()), first);
        }
    }

    #[test]
    fn sh_without_fallback_fails_when_the_bucket_dest_is_quiesced() {
        let mut d = dests(&[1, 1]);
        let mut sh = Sh::default();
        let f = flow("198.18.1.7:4000", "198.18.0.1:80");
        let i = sh.schedule(&d, &f, SchedFlags::default()).unwrap();
        d[i].config.weight = 0;
        sh.mark_dirty();
        // Weight 0 still takes one bucket per round, so the client's bucket may move; find a
        // client whose bucket holds the quiesced dest.
        let client = (1..=255u8)
            .map(|b| flow(&format!("198.18.2.{b}:1"), "198.18.0.1:80"))
            .find(|f| {
                let fold = addr_fold(&f.client.ip());
                sh.schedule(&d, f, SchedFlags(SchedFlags::SCHED1)).is_some()
                    && sh.table[sh_bucket(fold, 0, 0)] == Some(u32::try_from(i).unwrap())
            })
            .unwrap();
        assert_eq!(sh.schedule(&d, &client, SchedFlags::default()), None);
        assert_eq!(
            sh.schedule(&d, &client, SchedFlags(SchedFlags::SCHED1)),
            Some(1 - i)
        );
    }

    #[test]
    fn dh_hashes_the_destination_address_not_the_client() {
        let d = dests(&[1, 1, 1]);
        let mut dh = Dh::default();
        let a = dh.schedule(&d, &flow("198.18.1.1:1", "198.18.0.1:80"));
        let b = dh.schedule(&d, &flow("198.18.9.9:9", "198.18.0.1:80"));
        assert_eq!(a, b);
        let bucket = hash_32(addr_fold(&"198.18.0.1".parse().unwrap()), 8) as usize;
        assert_eq!(a, Some(bucket % 3));
    }
}
