//! What each matcher id stands for, kept small: a million-name list costs 8 bytes per
//! entry here (where its text ends in the arena, and its line), besides its text.
//!
//! Ids are given in load order: catalog endpoints and rules first (an [`Entry`] each),
//! then each list's entries, consecutively, so a list entry's list is found from the
//! first id of each list, and its text starts where the previous entry's ends. Measured
//! with `bench/memory.sh` (1,000,000 names): 16 → 8 bytes per entry, RSS 8 MB less.

use crate::policy::Entry;

/// Matcher id → [`Entry`], and the text of every list entry.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    /// Ids `0..fixed.len()`: endpoints and rules.
    fixed: Vec<Entry>,
    /// The first id of list `l`, ascending.
    first: Vec<u32>,
    /// Where the text of list entry `k` (id `fixed.len() + k`) ends in `arena`.
    ends: Vec<u32>,
    /// Its 1-based line in its file.
    lines: Vec<u32>,
    /// The text of every list entry as written, back to back.
    arena: String,
}

impl Entries {
    /// The number of ids.
    pub(crate) fn len(&self) -> usize {
        self.fixed.len() + self.ends.len()
    }

    /// The next id.
    pub(crate) fn next_id(&self) -> u32 {
        // A policy never holds 4 billion patterns: list files that large do not fit in
        // memory as text, let alone as rules.
        u32::try_from(self.len()).unwrap_or(u32::MAX)
    }

    /// Adds an endpoint or a rule; every one comes before the first list entry.
    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert!(self.ends.is_empty() && !matches!(entry, Entry::List { .. }));
        self.fixed.push(entry);
    }

    /// The entries pushed from now on belong to list `list` (lists come in order; a
    /// list that failed to load is started again by the next, and a list never started,
    /// such as a URL list not downloaded yet, holds no entry).
    pub(crate) fn start_list(&mut self, list: u32, expected_bytes: usize) {
        let next = self.next_id();
        self.first.truncate(list as usize);
        self.first.resize(list as usize, next);
        self.first.push(next);
        self.arena.reserve(expected_bytes);
        self.ends.reserve(expected_bytes / 24);
        self.lines.reserve(expected_bytes / 24);
    }

    /// Adds an entry of the current list, written as `text` on line `line`.
    pub(crate) fn push_list(&mut self, text: &str, line: usize) -> Result<(), &'static str> {
        let line = u32::try_from(line).map_err(|_| "more than 4 billion lines")?;
        let end =
            u32::try_from(self.arena.len() + text.len()).map_err(|_| "list text over 4 GiB")?;
        self.arena.push_str(text);
        self.ends.push(end);
        self.lines.push(line);
        Ok(())
    }

    /// Returns the excess of what was reserved.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.fixed.shrink_to_fit();
        self.first.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.lines.shrink_to_fit();
        self.arena.shrink_to_fit();
    }

    /// What id `id` stands for.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<Entry> {
        let id = id as usize;
        if let Some(&e) = self.fixed.get(id) {
            return Some(e);
        }
        let k = id - self.fixed.len();
        let end = *self.ends.get(k)?;
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        // The last list whose first id is at most `id`.
        let list = self
            .first
            .partition_point(|&f| f as usize <= id)
            .checked_sub(1)?;
        Some(Entry::List {
            list: list as u32,
            start,
            end,
            line: self.lines[k],
        })
    }

    /// [`Entries::get`] for an id the matcher reported (every such id has an entry).
    pub(crate) fn at(&self, id: u32) -> Entry {
        self.get(id).expect("every matcher id has an entry")
    }

    /// The text of a list entry as written; `""` for the others.
    pub(crate) fn text(&self, entry: Entry) -> &str {
        match entry {
            Entry::List { start, end, .. } => &self.arena[start as usize..end as usize],
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries_find_their_list_text_and_line() {
        let mut e = Entries::default();
        e.push(Entry::Endpoint(0));
        e.push(Entry::Rule(0));
        e.start_list(0, 0);
        e.push_list("a.example", 3).unwrap();
        e.push_list("||b.example^", 4).unwrap();
        // List 1 is never started (a URL list not downloaded yet): it holds nothing.
        e.start_list(2, 0);
        e.push_list("c.example", 1).unwrap();
        e.shrink_to_fit();
        assert_eq!(e.len(), 5);
        assert_eq!(e.get(0), Some(Entry::Endpoint(0)));
        assert_eq!(e.get(1), Some(Entry::Rule(0)));
        let got: Vec<_> = (2..5)
            .map(|id| {
                let entry = e.at(id);
                let Entry::List { list, line, .. } = entry else {
                    panic!("{entry:?}")
                };
                (list, line, e.text(entry))
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, 3, "a.example"),
                (0, 4, "||b.example^"),
                (2, 1, "c.example")
            ]
        );
        assert_eq!(e.get(5), None);
        assert_eq!(e.text(Entry::Rule(0)), "");
    }
}
