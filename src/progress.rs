//! What the front ends (the command line's bars and lines, the admin
//! page's event stream) show of a running build: the overall progress in
//! work units, and one line per finished target.

use crate::executor::{Outcome, TargetResult};
use std::collections::HashMap;

/// The overall progress of a build in work units (files, rows, texts: what
/// each stage counts), summed over its targets, so that the overall bar
/// moves while a long target works rather than only when a target ends.
#[derive(Debug, Default)]
pub struct Units {
    /// Per running or finished target: (done, total) units.
    targets: HashMap<String, (u64, u64)>,
    /// Targets finished, and selected.
    finished: usize,
    selected: usize,
}

impl Units {
    /// A build of `selected` targets starts.
    pub fn start(&mut self, selected: usize) {
        *self = Units {
            selected,
            ..Units::default()
        };
    }

    /// A target reports `current` of `total` units.
    pub fn progress(&mut self, name: &str, current: u64, total: u64) {
        self.targets
            .insert(name.to_string(), (current.min(total), total));
    }

    /// A target is done: all its units count as done.
    pub fn finished(&mut self, name: &str) {
        self.finished += 1;
        if let Some(t) = self.targets.get_mut(name) {
            t.0 = t.1;
        }
    }

    /// (done, total) units over every target that reported any.
    pub fn position(&self) -> (u64, u64) {
        self.targets
            .values()
            .fold((0, 0), |(d, t), (cd, ct)| (d + cd, t + ct))
    }

    /// "1200/30000 units, 2/4 targets" (only the targets before any
    /// target reported units).
    pub fn summary(&self) -> String {
        let targets = format!("{}/{} targets", self.finished, self.selected);
        match self.position() {
            (_, 0) => targets,
            (done, total) => format!("{done}/{total} units, {targets}"),
        }
    }
}

/// One line describing a finished target, e.g. "built movie-json in 1.20s
/// (3 written)" or "movies-db@potion failed: …".
pub fn describe(result: &TargetResult) -> String {
    let secs = result.millis as f64 / 1000.0;
    match &result.outcome {
        Outcome::UpToDate => format!("{} is up to date", result.name),
        Outcome::Built { written, deleted } => {
            let mut s = format!("built {} in {secs:.2}s ({written} written", result.name);
            if *deleted > 0 {
                s.push_str(&format!(", {deleted} deleted"));
            }
            s.push(')');
            s
        }
        Outcome::Downloaded {
            written,
            deleted,
            bytes,
        } => {
            let mut s = format!(
                "downloaded {} from the remote cache in {secs:.2}s ({bytes} bytes, {written} written",
                result.name
            );
            if *deleted > 0 {
                s.push_str(&format!(", {deleted} deleted"));
            }
            s.push(')');
            s
        }
        Outcome::WouldBuild => match result.stats.get("pending") {
            Some(p) => format!("would build {} ({p})", result.name),
            None => format!("would build {}", result.name),
        },
        Outcome::Failed { error } => format!("{} failed: {error}", result.name),
        Outcome::Skipped { because } => {
            format!(
                "skipped {}: {because} failed, and {} depends on it",
                result.name, result.name
            )
        }
        Outcome::NotRun => match result.stats.get("stopped") {
            Some(kept) => format!("not built: {} (the build stopped: {kept})", result.name),
            None => format!("not built: {} (the build stopped)", result.name),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_sum_over_targets() {
        let mut u = Units::default();
        u.start(3);
        assert_eq!(u.summary(), "0/3 targets");
        u.progress("movie-json", 100, 1000);
        u.progress("movies-db@potion", 10, 400);
        assert_eq!(u.position(), (110, 1400));
        u.finished("movie-json");
        assert_eq!(u.position(), (1010, 1400));
        // A target with no units (up to date) still counts as finished.
        u.finished("movies-db@nomic");
        assert_eq!(u.summary(), "1010/1400 units, 2/3 targets");
        assert_eq!(u.position(), (1010, 1400));
    }
}
