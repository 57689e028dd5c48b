//! Round robin (ip_vs_rr.c): the next available dest after the last pick, cyclically.

use crate::dest::Dest;

/// The position of the last pick; `None` is the list head.
#[derive(Debug, Clone, Default)]
pub struct Rr {
    cursor: Option<usize>,
}

impl Rr {
    /// A dest was linked at the head: every position moves one down.
    pub fn dest_added(&mut self) {
        self.cursor = self.cursor.map(|c| c + 1);
    }

    /// The dest at `index` was unlinked. If it was the last pick, the cursor moves to the entry
    /// before it (`ip_vs_rr_del_dest`), so the next pick is the dest that followed it.
    pub fn dest_removed(&mut self, index: usize) {
        self.cursor = match self.cursor {
            Some(c) if c == index => index.checked_sub(1),
            Some(c) if c > index => Some(c - 1),
            other => other,
        };
    }

    /// Scans from after the cursor to the end, then from the head up to and including the
    /// cursor; the first dest with weight above 0 that is not overloaded wins.
    pub fn schedule(&mut self, dests: &[Dest]) -> Option<usize> {
        let start = self.cursor.map_or(0, |c| c + 1);
        let wrapped = self.cursor.map_or(0..0, |c| 0..(c + 1).min(dests.len()));
        let hit = (start..dests.len())
            .chain(wrapped)
            .find(|&i| dests[i].available());
        if hit.is_some() {
            self.cursor = hit;
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testing::dests;

    fn picks(rr: &mut Rr, d: &[Dest], n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| rr.schedule(d)).collect()
    }

    #[test]
    fn rr_cycles_in_list_order_skipping_quiesced_dests() {
        let d = dests(&[1, 0, 5, 1]);
        let mut rr = Rr::default();
        assert_eq!(picks(&mut rr, &d, 6), [0, 2, 3, 0, 2, 3].map(Some));
    }

    #[test]
    fn rr_returns_none_when_every_dest_is_unavailable() {
        let mut d = dests(&[0, 1]);
        d[1].overloaded = true;
        assert_eq!(Rr::default().schedule(&d), None);
    }

    #[test]
    fn rr_after_removing_the_last_pick_continues_with_its_successor() {
        let mut d = dests(&[1, 1, 1]);
        let mut rr = Rr::default();
        assert_eq!(picks(&mut rr, &d, 2), [Some(0), Some(1)]);
        d.remove(1);
        rr.dest_removed(1);
        assert_eq!(
            rr.schedule(&d),
            Some(1),
            "the old third dest follows the removed one"
        );
    }

    #[test]
    fn rr_keeps_its_place_when_a_dest_is_added_at_the_head() {
        let mut d = dests(&[1, 1]);
        let mut rr = Rr::default();
        assert_eq!(rr.schedule(&d), Some(0));
        d.insert(0, dests(&[1]).remove(0));
        rr.dest_added();
        assert_eq!(rr.schedule(&d), Some(2));
        assert_eq!(rr.schedule(&d), Some(0), "then wraps to the new head");
    }
}
