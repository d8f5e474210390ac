//! Integer ids of the name tables (actors, directors, writers, genres,
//! countries), assigned exactly as the reference's SQLite assigned them, so
//! that ids in our database equal ids in theirs.
//!
//! The reference ran `INSERT OR IGNORE` into `AUTOINCREMENT` tables once per
//! (movie, name) occurrence; SQLite consumes a sequence number even when the
//! insert is ignored, so a name's id is the number of insert attempts made
//! up to and including its first occurrence, and `sqlite_sequence` ends at
//! the total number of attempts. Computing that here lets the database be
//! filled with explicit ids in one ordered pass.

use std::collections::HashMap;

/// One name table being filled.
#[derive(Debug, Default)]
pub struct Registry {
    /// Distinct names in first-occurrence order.
    pub names: Vec<String>,
    /// The database id of each name (same index as `names`).
    pub ids: Vec<i64>,
    /// `movie_count` of each name.
    pub counts: Vec<i64>,
    /// Final value of the table's `sqlite_sequence` row.
    pub seq: i64,
    index: HashMap<String, u32>,
}

impl Registry {
    /// Record one insert attempt of `name`; returns its index in `names`.
    pub fn attempt(&mut self, name: &str) -> u32 {
        self.seq += 1;
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.push(self.seq);
        self.counts.push(0);
        self.index.insert(name.to_string(), i);
        i
    }

    /// Indices of `names` in byte order of the name: the order in which the
    /// reference read them back (`SELECT id, name FROM actors` is answered
    /// from the covering index on `name`) to fill the FTS table.
    pub fn by_name(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        order
    }
}

/// The people of one movie for one table: distinct name indices in
/// first-occurrence order (the junction tables' `INSERT OR IGNORE` kept only
/// the first of a repeated name). Also counts the movie for each name.
pub fn add_people(reg: &mut Registry, field: Option<&str>, out: &mut Vec<u32>) {
    out.clear();
    let Some(field) = field.filter(|f| !f.is_empty() && *f != "N/A") else {
        return;
    };
    for name in field
        .split(',')
        .map(crate::movies::js::trim)
        .filter(|n| !n.is_empty())
    {
        let i = reg.attempt(name);
        if !out.contains(&i) {
            out.push(i);
            reg.counts[i as usize] += 1;
        }
    }
}

/// Names counted per movie occurrence (genres, countries): every non-empty,
/// non-'N/A' entry counts, repeats included, as in the reference; ids follow
/// first occurrence with no gaps (its inserts were of distinct names).
#[derive(Debug, Default)]
pub struct Tally {
    /// Distinct names in first-occurrence order; id = position + 1.
    pub names: Vec<String>,
    /// Occurrences of each name.
    pub counts: Vec<i64>,
    index: HashMap<String, usize>,
}

impl Tally {
    /// Count the names of one comma-separated field, mapped by `normalise`.
    pub fn add(&mut self, field: Option<&str>, normalise: impl Fn(&str) -> &str) {
        let Some(field) = field.filter(|f| !f.is_empty()) else {
            return;
        };
        for raw in field.split(',').map(crate::movies::js::trim) {
            if raw.is_empty() || raw == "N/A" {
                continue;
            }
            let name = normalise(raw);
            match self.index.get(name) {
                Some(&i) => self.counts[i] += 1,
                None => {
                    self.index.insert(name.to_string(), self.names.len());
                    self.names.push(name.to_string());
                    self.counts.push(1);
                }
            }
        }
    }
}

/// The reference's country normalisation.
pub fn normalise_country(c: &str) -> &str {
    match c {
        "USA" => "United States",
        "UK" => "United Kingdom",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_skip_ignored_attempts() {
        let mut r = Registry::default();
        let mut v = Vec::new();
        add_people(&mut r, Some("A, B"), &mut v);
        add_people(&mut r, Some("B, C, C"), &mut v);
        assert_eq!(v, [1, 2]);
        add_people(&mut r, Some("N/A"), &mut v);
        assert!(v.is_empty());
        assert_eq!(r.names, ["A", "B", "C"]);
        assert_eq!(r.ids, [1, 2, 4]);
        assert_eq!(r.counts, [1, 2, 1]);
        assert_eq!(r.seq, 5);
    }

    #[test]
    fn tally_counts_repeats_and_normalises() {
        let mut t = Tally::default();
        t.add(Some("USA, UK, N/A, "), normalise_country);
        t.add(Some("United States"), normalise_country);
        assert_eq!(t.names, ["United States", "United Kingdom"]);
        assert_eq!(t.counts, [2, 1]);
    }
}
