//! Maglev hashing (ip_vs_mh.c): a 4093-slot lookup table filled by each dest's permutation.
//!
//! Every director builds the same table because the hash keys are fixed constants. Each dest's
//! permutation starts at `offset = hsiphash(v, key1) % M` and steps by
//! `skip = hsiphash(v, key2) % (M - 1) + 1`, with `v = ntohl(addr_fold) + ntohs(port)`.
//! Population walks the dests round robin, each taking `turns = (last_weight / gcd) >> rshift`
//! slots per round. It uses `last_weight`, so quiescing a dest (weight 0) keeps its slots and
//! the table is not reshuffled; such a dest is simply unavailable at lookup.
//!
//! `hsiphash` on 64-bit kernels is SipHash-1-3 truncated to 32 bits (lib/siphash.c makes
//! HalfSipHash "actually be SipHash1-3" when `BITS_PER_LONG == 64`); we use the siphasher
//! crate's SipHasher13 for it. 32-bit kernels use real HalfSipHash and build different tables.

use crate::config::SchedFlags;
use crate::dest::Dest;
use crate::protocol::addr_fold;
use crate::sched::Flow;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// The table size for `CONFIG_IP_VS_MH_TAB_INDEX` = 12, the kernel's default: a prime.
pub const MH_TABLE_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2`.
const TAB_BITS: u32 = 6;
/// The fixed keys of `generate_hash_secret`: both words of each key are the same constant.
const KEY1: u64 = 2_654_435_761;
const KEY2: u64 = 2_654_446_892;

/// The kernel's `hsiphash(&v, 4, key)` on 64-bit: SipHash-1-3 of the 4 bytes, low 32 bits.
fn hsiphash(v: u32, key: u64) -> u32 {
    let mut h = SipHasher13::new_with_keys(key, key);
    h.write(&v.to_le_bytes());
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the kernel returns the low 32 bits"
    )]
    let out = h.finish() as u32;
    out
}

/// `ip_vs_mh_hashkey`: hash of `offset + port + folded address`.
fn hashkey(fold: u32, port: u16, key: u64, offset: u32) -> u32 {
    hsiphash(offset.wrapping_add(u32::from(port)).wrapping_add(fold), key)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `fls`: the 1-based position of the highest set bit, 0 for 0.
const fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// The lookup table; slots hold dest positions.
#[derive(Debug, Clone, Default)]
pub struct Mh {
    table: Vec<Option<u32>>,
    dirty: bool,
}

/// Fills the lookup table from the dests' permutations (`ip_vs_mh_permutate` +
/// `ip_vs_mh_populate`). With no positive `last_weight` the table is empty.
pub fn populate(dests: &[Dest]) -> Vec<Option<u32>> {
    let m = MH_TABLE_SIZE;
    let mut table = vec![None; m];
    let g = dests
        .iter()
        .map(|d| d.last_weight)
        .filter(|&w| w > 0)
        .fold(0, gcd);
    if g == 0 {
        return table;
    }
    let max = dests.iter().map(|d| d.last_weight).max().unwrap_or(0);
    let rshift = fls(max / g).saturating_sub(TAB_BITS);
    let mut setup: Vec<(usize, usize, u32)> = dests
        .iter()
        .map(|d| {
            let fold = addr_fold(&d.addr().ip());
            let port = d.addr().port();
            let offset = hashkey(fold, port, KEY1, 0) as usize % m;
            let skip = hashkey(fold, port, KEY2, 0) as usize % (m - 1) + 1;
            let lw = d.last_weight;
            let turns = match (lw / g) >> rshift {
                0 => u32::from(lw != 0),
                t => t,
            };
            (offset, skip, turns)
        })
        .collect();
    let mut taken = vec![false; m];
    let mut filled = 0;
    while filled < m {
        for (i, (perm, skip, turns)) in setup.iter_mut().enumerate() {
            for _ in 0..*turns {
                while taken[*perm] {
                    *perm += *skip;
                    if *perm >= m {
                        *perm -= m;
                    }
                }
                taken[*perm] = true;
                table[*perm] = Some(u32::try_from(i).unwrap_or(u32::MAX));
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
    table
}

impl Mh {
    /// Dests changed: rebuild on the next pick.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The slot's dest for the client's address (and port with `mh-port`); with `mh-fallback`,
    /// the first available dest found by rehashing with offsets `ihash, ihash+1, ...`.
    pub fn schedule(&mut self, dests: &[Dest], flow: &Flow, flags: SchedFlags) -> Option<usize> {
        if self.dirty || self.table.is_empty() {
            self.table = populate(dests);
            self.dirty = false;
        }
        let m = MH_TABLE_SIZE;
        let fold = addr_fold(&flow.client.ip());
        let port = if flags.port() { flow.client.port() } else { 0 };
        let ihash = hashkey(fold, port, KEY1, 0) as usize % m;
        super::lookup_with_fallback(&self.table, dests, ihash, flags.fallback(), |off| {
            hashkey(fold, port, KEY1, off) as usize % m
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::dests;

    fn slots(table: &[Option<u32>], i: u32) -> usize {
        table.iter().filter(|s| **s == Some(i)).count()
    }

    #[test]
    fn hsiphash_is_siphash_1_3_with_the_fixed_keys() {
        // From testdata/sched/traces.json ("hsiphash"), computed by testdata/sched/reference.py,
        // a port of lib/siphash.c's 64-bit hsiphash_1u32.
        assert_eq!(hsiphash(0, KEY1), 492_468_162);
        assert_eq!(hsiphash(0, KEY2), 4_169_286_463);
    }

    #[test]
    fn mh_fills_every_slot_in_proportion_to_weight() {
        let d = dests(&[1, 2, 1]);
        let t = populate(&d);
        assert!(t.iter().all(Option::is_some));
        let (a, b, c) = (slots(&t, 0), slots(&t, 1), slots(&t, 2));
        assert_eq!(a + b + c, MH_TABLE_SIZE);
        assert!((b as f64 / a as f64 - 2.0).abs() < 0.01, "{a} {b} {c}");
    }

    #[test]
    fn mh_quiescing_keeps_the_table_and_removal_moves_few_slots() {
        let mut d = dests(&[1, 1, 1, 1, 1]);
        let before = populate(&d);
        d[2].config.weight = 0; // last_weight stays 1
        assert_eq!(populate(&d), before);
        d.remove(2);
        let after = populate(&d);
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| {
                let renumber = |x: u32| if x > 2 { x - 1 } else { x };
                b.unwrap() != 2 && renumber(b.unwrap()) != a.unwrap()
            })
            .count();
        assert!(
            moved < MH_TABLE_SIZE / 20,
            "{moved} slots of surviving dests moved"
        );
    }
}
