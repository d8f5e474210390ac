//! Warnings from stages, in a form that can be remembered and grouped.
//!
//! A stage reports a [`Warning`] per problem it found (a missing embeddings
//! file, vectors for movies that are gone, …). Several targets often report
//! the same kind of problem (each model's database has movies without a
//! vector), so front ends show each kind once per build, with every target
//! that shares it on one line and the fix ([`group`], [`render`]); the
//! full text of each is there with `-v`. Warnings are kept with the
//! target's record in `.pipe/`, so `--strict` fails on one that a target
//! was built with even when the target is not rebuilt.

use serde::{Deserialize, Serialize};

/// One problem a stage found that did not stop it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The kind of problem, kebab-case (`embeddings-missing`): warnings of
    /// one kind from several targets are shown together.
    pub code: String,
    /// What the problem is, worded the same for every target that has it.
    pub summary: String,
    /// What this target's instance concerns, short (`potion (12)`).
    pub subject: String,
    /// The full text, with this target's files and figures.
    pub detail: String,
    /// What to do about it.
    pub fix: String,
    /// Whether the problem loses data, so that `--strict` (and `--locked`)
    /// makes it an error.
    pub strict: bool,
}

impl Warning {
    /// A warning that `--strict` does not turn into an error.
    pub fn new(
        code: &str,
        summary: impl Into<String>,
        subject: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Warning {
        Warning {
            code: code.to_string(),
            summary: summary.into(),
            subject: subject.into(),
            detail: detail.into(),
            fix: fix.into(),
            strict: false,
        }
    }

    /// The same warning, marked as one that loses data (`--strict` fails on it).
    pub fn losing_data(mut self) -> Warning {
        self.strict = true;
        self
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.detail)
    }
}

/// The warnings of one kind, from every target that reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group<'a> {
    /// The shared statement.
    pub summary: &'a str,
    /// The shared fix.
    pub fix: &'a str,
    /// Whether `--strict` fails on it.
    pub strict: bool,
    /// (target, warning), sorted by target name.
    pub members: Vec<(&'a str, &'a Warning)>,
}

/// Group `(target, warning)` pairs by kind: one group per (code, summary,
/// fix), in order of code, each with its targets sorted by name. The order
/// does not depend on the order targets finished in.
pub fn group<'a>(warnings: impl IntoIterator<Item = (&'a str, &'a Warning)>) -> Vec<Group<'a>> {
    let mut by_kind: std::collections::BTreeMap<(&str, &str, &str), Group<'a>> =
        std::collections::BTreeMap::new();
    for (target, w) in warnings {
        let g = by_kind
            .entry((w.code.as_str(), w.summary.as_str(), w.fix.as_str()))
            .or_insert_with(|| Group {
                summary: &w.summary,
                fix: &w.fix,
                strict: w.strict,
                members: Vec::new(),
            });
        g.strict |= w.strict;
        if !g.members.iter().any(|(t, m)| *t == target && *m == w) {
            g.members.push((target, w));
        }
    }
    let mut groups: Vec<Group> = by_kind.into_values().collect();
    for g in &mut groups {
        g.members
            .sort_by(|a, b| a.0.cmp(b.0).then(a.1.subject.cmp(&b.1.subject)));
    }
    groups
}

/// The groups as text, one `warning:` line per kind naming every subject,
/// then its fix; with `verbose`, each target's full text too.
pub fn render(groups: &[Group], verbose: bool) -> String {
    let mut out = String::new();
    for g in groups {
        let subjects: Vec<&str> = g.members.iter().map(|(_, w)| w.subject.as_str()).collect();
        out.push_str(&format!(
            "warning: {}: {}\n",
            g.summary,
            subjects.join(", ")
        ));
        if verbose {
            for (target, w) in &g.members {
                out.push_str(&format!("  {target}: {}\n", w.detail));
            }
        }
        out.push_str(&format!("  fix: {}\n", g.fix));
    }
    out
}

/// How many ids a warning names before it says how many more there are.
const IDS_SHOWN: usize = 5;

/// The first few of `ids`, comma-separated, and how many more there are:
/// what a warning about a set of records shows of it.
pub fn some_ids<S: AsRef<str>>(ids: &[S]) -> String {
    let mut s = ids
        .iter()
        .take(IDS_SHOWN)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > IDS_SHOWN {
        s.push_str(&format!(", … ({} more)", ids.len() - IDS_SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(code: &str, subject: &str) -> Warning {
        Warning::new(
            code,
            format!("{code} happened"),
            subject,
            format!("{subject}: all about {code}"),
            "do this",
        )
    }

    #[test]
    fn one_line_per_kind_with_every_subject_and_the_fix() {
        let a = w("movies-without-vector", "potion (3 of 10)");
        let b = w("movies-without-vector", "nomic (4 of 10)");
        let c = w("embeddings-missing", "bge (data/e.db)").losing_data();
        let groups = group([
            ("movies-db@potion", &a),
            ("movies-db@nomic", &b),
            ("movies-db@bge", &c),
            ("movies-db@potion", &a),
        ]);
        assert_eq!(groups.len(), 2);
        assert!(groups[0].strict && !groups[1].strict);
        let text = render(&groups, false);
        assert_eq!(
            text,
            "warning: embeddings-missing happened: bge (data/e.db)\n  fix: do this\n\
             warning: movies-without-vector happened: nomic (4 of 10), potion (3 of 10)\n  fix: do this\n"
        );
        let verbose = render(&groups, true);
        assert!(verbose
            .contains("  movies-db@nomic: nomic (4 of 10): all about movies-without-vector\n"));
        assert_eq!(verbose.matches("potion (3 of 10): all about").count(), 1);
    }
}
