//! Which slots of a ring or Maglev table to write: those that differ from what the map holds.
//! A weight change on an mh service moves a few of its 4,093 slots; writing only those is a
//! few syscalls instead of thousands (katran returns the changed positions the same way).

/// The positions where `new` differs from `old` (every position when nothing was written).
#[must_use]
pub fn changed(old: Option<&[u32]>, new: &[u32]) -> Vec<usize> {
    match old {
        Some(old) if old.len() == new.len() => {
            (0..new.len()).filter(|&i| old[i] != new[i]).collect()
        }
        _ => (0..new.len()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::changed;

    #[test]
    fn only_the_slots_that_moved_are_written() {
        assert_eq!(changed(None, &[1, 2, 3]), [0, 1, 2]);
        assert_eq!(changed(Some(&[1, 2, 3]), &[1, 5, 3]), [1]);
        assert!(changed(Some(&[1, 2, 3]), &[1, 2, 3]).is_empty());
        assert_eq!(
            changed(Some(&[1, 2]), &[1, 2, 3]),
            [0, 1, 2],
            "a table of another size"
        );
    }
}
