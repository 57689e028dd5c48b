//! Power of two choices (ip_vs_twos.c): two weighted random picks, keep the less loaded.

use crate::dest::Dest;
use rand_core::RngCore;

/// Draws two random weights in `0..=total`, walks the list subtracting weights until each
/// reaches 0 or below, and keeps the choice with the lower overhead per weight (the first on a
/// tie). Randomness comes from the caller, so a seed replays the same decisions.
pub fn twos(dests: &[Dest], rng: &mut dyn RngCore) -> Option<usize> {
    let mut total: i64 = 0;
    let mut choice1 = None;
    for (i, d) in dests.iter().enumerate() {
        if d.available() {
            total += i64::from(d.weight());
            choice1 = Some(i);
        }
    }
    let mut choice1 = choice1?;
    let total = total + 1;
    let mut r1 = i64::from(rng.next_u32()) % total;
    let mut r2 = i64::from(rng.next_u32()) % total;
    let (mut w1, mut w2, mut oh1, mut oh2) = (-1i64, -1i64, 0i64, 0i64);
    let mut choice2 = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        let w = i64::from(d.weight());
        r1 -= w;
        r2 -= w;
        if r1 <= 0 && w1 == -1 {
            choice1 = i;
            w1 = w;
            oh1 = d.overhead();
        }
        if r2 <= 0 && w2 == -1 {
            choice2 = Some(i);
            w2 = w;
            oh2 = d.overhead();
        }
        if w1 != -1 && w2 != -1 {
            break;
        }
    }
    match choice2 {
        Some(c2) if w2 * oh1 > w1 * oh2 => Some(c2),
        _ => Some(choice1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::{dests, load};

    /// Replays fixed "random" numbers.
    struct Fixed(Vec<u32>);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            self.0.remove(0)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(0);
        }
    }

    #[test]
    fn twos_keeps_the_less_loaded_of_its_two_picks() {
        let mut d = dests(&[1, 1, 1]);
        load(&mut d, &[(4, 0), (1, 0), (0, 0)]);
        // total+1 = 4; r1 = 0 -> dest 0, r2 = 2 -> dest 1 (0-1 = -1 at dest 0 for r1; 2-1-1 = 0).
        assert_eq!(twos(&d, &mut Fixed(vec![0, 2])), Some(1));
        assert_eq!(
            twos(&d, &mut Fixed(vec![3, 2])),
            Some(2),
            "r1 reaches 0 at the idle dest 2"
        );
        load(&mut d, &[(4, 0), (1, 0), (1, 0)]);
        assert_eq!(
            twos(&d, &mut Fixed(vec![2, 3])),
            Some(1),
            "a tie keeps the first choice"
        );
    }

    #[test]
    fn twos_never_picks_unavailable_dests() {
        let mut d = dests(&[0, 1, 1]);
        d[2].overloaded = true;
        for r in 0..10 {
            assert_eq!(twos(&d, &mut Fixed(vec![r, r + 1])), Some(1));
        }
        d[1].config.weight = 0;
        assert_eq!(twos(&d, &mut Fixed(vec![0, 0])), None);
    }
}
