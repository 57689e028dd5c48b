//! A service's lookup ring: 256 slots, each naming a dest, filled from the dests and weights.
//!
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
