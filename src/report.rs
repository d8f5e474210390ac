//! Showing a build as it runs: progress bars on a terminal, plain
//! `[current/total] message` lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipe::executor::{BuildEvent, Observer, Outcome, Reason, TargetResult};
use pipe::progress::Units;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// How much to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// One line per target.
    Normal,
    /// Plus reasons and progress inside targets.
    Verbose,
}

/// Missing or edited outputs of one target beyond this many are summarised
/// (a count and a few examples) unless `-v` asks for every one.
const SUMMARY_LIMIT: usize = 5;
/// Examples shown in a summary.
const SUMMARY_EXAMPLES: usize = 3;

/// The reasons of one target as lines: every reason, except that deleted and
/// edited outputs beyond [`SUMMARY_LIMIT`] become one line each with a count
/// and a few examples (after `rm -rf public/movies` a target has one reason
/// per file). `all` lists every one.
pub fn reason_lines(reasons: &[Reason], all: bool) -> Vec<String> {
    let deleted: Vec<&Reason> = reasons
        .iter()
        .filter(|r| matches!(r, Reason::OutputMissing { .. }))
        .collect();
    let edited: Vec<&Reason> = reasons
        .iter()
        .filter(|r| matches!(r, Reason::OutputModified { .. }))
        .collect();
    let mut lines = Vec::new();
    for r in reasons {
        let group = match r {
            Reason::OutputMissing { .. } => &deleted,
            Reason::OutputModified { .. } => &edited,
            _ => {
                lines.push(r.to_string());
                continue;
            }
        };
        if all || group.len() <= SUMMARY_LIMIT {
            lines.push(r.to_string());
        } else if std::ptr::eq(group[0], r) {
            let paths: Vec<String> = group[..SUMMARY_EXAMPLES]
                .iter()
                .filter_map(|r| match r {
                    Reason::OutputMissing { path } | Reason::OutputModified { path } => {
                        Some(path.display().to_string())
                    }
                    _ => None,
                })
                .collect();
            let what = if matches!(r, Reason::OutputMissing { .. }) {
                "deleted"
            } else {
                "modified"
            };
            lines.push(format!(
                "{} outputs were {what}, e.g. {}, … (-v lists every one)",
                group.len(),
                paths.join(", ")
            ));
        }
    }
    lines
}

/// A list of paths as lines: every one, or with more than [`SUMMARY_LIMIT`]
/// (and not `all`) a count and a few examples.
pub fn path_lines(what: &str, paths: &[std::path::PathBuf], all: bool) -> Vec<String> {
    if all || paths.len() <= SUMMARY_LIMIT {
        return paths
            .iter()
            .map(|p| format!("{what}: {}", p.display()))
            .collect();
    }
    let examples: Vec<String> = paths[..SUMMARY_EXAMPLES]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    vec![format!(
        "{what}: {} files, e.g. {}, … (-v lists every one)",
        paths.len(),
        examples.join(", ")
    )]
}

/// Prints build events to stderr.
pub struct Reporter {
    verbosity: Verbosity,
    explain: bool,
    bars: Option<Bars>,
    plain: Mutex<PlainState>,
    /// Errors printed so far, and the target that had each first: an input
    /// that several targets read (a bad movies.json) fails them all with one
    /// error, printed once.
    errors: Mutex<HashMap<String, String>>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    per_target: Mutex<HashMap<String, ProgressBar>>,
    units: Mutex<Units>,
    color: bool,
}

#[derive(Default)]
struct PlainState {
    last_progress: HashMap<String, std::time::Instant>,
}

impl Reporter {
    /// A reporter that draws bars when stderr is a terminal, coloured if
    /// `color`.
    pub fn new(verbosity: Verbosity, explain: bool, color: bool) -> Self {
        let bars = (verbosity > Verbosity::Quiet && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(1));
            overall.set_style(
                ProgressStyle::with_template(if color {
                    "{prefix:>8.cyan.bold} [{bar:30}] {msg} {elapsed}"
                } else {
                    "{prefix:>8} [{bar:30}] {msg} {elapsed}"
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix("Building");
            Bars {
                multi,
                overall,
                per_target: Mutex::new(HashMap::new()),
                units: Mutex::new(Units::default()),
                color,
            }
        });
        Reporter {
            verbosity,
            explain,
            bars,
            plain: Mutex::new(PlainState::default()),
            errors: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: &str) {
        // A closed stderr must not end the build: errors are ignored.
        let print = || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{text}");
        };
        match &self.bars {
            Some(b) => b.multi.suspend(print),
            None => print(),
        }
    }

    /// Move the overall bar to the units done so far.
    fn update_units(&self, b: &Bars, f: impl FnOnce(&mut Units)) {
        let mut units = b.units.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut units);
        let (done, total) = units.position();
        // An empty bar until some target says how much work it has.
        b.overall.set_length(total.max(1));
        b.overall.set_position(done);
        b.overall.set_message(units.summary());
    }

    fn reasons(&self, name: &str, reasons: &[Reason]) {
        for r in reason_lines(reasons, self.verbosity == Verbosity::Verbose) {
            self.line(&format!("  {name}: {r}"));
        }
    }

    /// Remove the bars.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            if let Ok(mut map) = b.per_target.lock() {
                for (_, bar) in map.drain() {
                    bar.finish_and_clear();
                }
            }
            b.overall.finish_and_clear();
        }
    }
}

/// The warnings of a build, each kind once with the targets that share it
/// and the fix (with `-v`, every target's full text); empty when quiet.
pub fn warnings_text(
    warnings: Vec<(&str, &pipe::warning::Warning)>,
    verbosity: Verbosity,
) -> String {
    if verbosity == Verbosity::Quiet || warnings.is_empty() {
        return String::new();
    }
    let groups = pipe::warning::group(warnings);
    pipe::warning::render(&groups, verbosity == Verbosity::Verbose)
}

/// [`warnings_text`] on stderr.
pub fn print_warnings(warnings: Vec<(&str, &pipe::warning::Warning)>, verbosity: Verbosity) {
    let text = warnings_text(warnings, verbosity);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}

/// One line describing a finished target (the library's wording, which
/// the admin page shows too), a failure marked as an error.
pub fn describe(result: &TargetResult) -> String {
    let line = pipe::progress::describe(result);
    match result.outcome {
        Outcome::Failed { .. } => format!("error: {line}"),
        _ => line,
    }
}

impl Observer for Reporter {
    fn event(&self, event: &BuildEvent) {
        match event {
            BuildEvent::Started { total } => {
                if let Some(b) = &self.bars {
                    self.update_units(b, |u| u.start(*total));
                    b.overall.enable_steady_tick(Duration::from_millis(100));
                }
            }
            BuildEvent::TargetStarted { name, reasons } => {
                if let Some(b) = &self.bars {
                    let bar = b.multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(if b.color {
                            "{prefix:>24.green} {spinner} {wide_msg}"
                        } else {
                            "{prefix:>24} {spinner} {wide_msg}"
                        })
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(name.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    if let Ok(mut map) = b.per_target.lock() {
                        map.insert(name.clone(), bar);
                    }
                }
                if self.explain || self.verbosity == Verbosity::Verbose {
                    self.reasons(name, reasons);
                }
            }
            BuildEvent::Progress {
                name,
                current,
                total,
                message,
            } => {
                if let Some(b) = &self.bars {
                    if *total > 0 {
                        self.update_units(b, |u| u.progress(name, *current, *total));
                    }
                    if let Some(bar) = b.per_target.lock().ok().and_then(|m| m.get(name).cloned()) {
                        bar.set_message(if *total > 0 {
                            format!("[{current}/{total}] {message}")
                        } else {
                            message.clone()
                        });
                    }
                } else if self.verbosity == Verbosity::Verbose {
                    // Plain output: at most a few lines a second per target.
                    let mut st = self.plain.lock().unwrap_or_else(|e| e.into_inner());
                    let now = std::time::Instant::now();
                    let due = st
                        .last_progress
                        .get(name)
                        .is_none_or(|t| now.duration_since(*t) > Duration::from_millis(500));
                    if due || current == total {
                        st.last_progress.insert(name.clone(), now);
                        drop(st);
                        self.line(&format!("[{current}/{total}] {name}: {message}"));
                    }
                }
            }
            // Shown once per build, grouped, when it ends (print_warnings).
            BuildEvent::Warning { .. } => {}
            BuildEvent::TargetFinished {
                result,
                done,
                total,
            } => {
                if let Some(b) = &self.bars {
                    if let Some(bar) = b
                        .per_target
                        .lock()
                        .ok()
                        .and_then(|mut m| m.remove(&result.name))
                    {
                        bar.finish_and_clear();
                    }
                    self.update_units(b, |u| u.finished(&result.name));
                }
                if self.explain && result.outcome == Outcome::WouldBuild {
                    self.reasons(&result.name, &result.reasons);
                }
                let failed = matches!(result.outcome, Outcome::Failed { .. });
                let quiet_skip = matches!(result.outcome, Outcome::UpToDate)
                    && self.verbosity < Verbosity::Verbose
                    && !self.explain;
                let seen = match &result.outcome {
                    Outcome::Failed { error } => {
                        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
                        match errors.get(error) {
                            Some(first) => Some(first.clone()),
                            None => {
                                errors.insert(error.clone(), result.name.clone());
                                None
                            }
                        }
                    }
                    _ => None,
                };
                if let Some(first) = seen {
                    self.line(&format!(
                        "[{done}/{total}] error: {} failed: the same error as {first} (above)",
                        result.name
                    ));
                } else if failed || (self.verbosity > Verbosity::Quiet && !quiet_skip) {
                    self.line(&format!("[{done}/{total}] {}", describe(result)));
                }
            }
        }
    }
}

/// What the remote cache did: its problems as warnings (always, unless
/// quiet), and a line of figures when it was used.
pub fn print_remote(summary: &pipe::remote::RemoteSummary, verbosity: Verbosity) {
    if verbosity == Verbosity::Quiet {
        return;
    }
    // Write errors are ignored: stderr may be a closed pipe.
    let mut err = std::io::stderr().lock();
    for p in &summary.problems {
        let _ = writeln!(err, "warning: {p}");
    }
    let mb = |b: u64| b as f64 / 1e6;
    if summary.downloaded > 0 || summary.uploaded > 0 {
        let _ = writeln!(
            err,
            "remote cache {}: {} target(s) downloaded ({:.1} MB), {} uploaded ({:.1} MB)",
            summary.url,
            summary.downloaded,
            mb(summary.downloaded_bytes),
            summary.uploaded,
            mb(summary.uploaded_bytes)
        );
    }
    if summary.parts_downloaded > 0 {
        let _ = writeln!(
            err,
            "remote cache {}: {} database part(s) taken instead of built",
            summary.url, summary.parts_downloaded
        );
    }
    if summary.vectors_downloaded > 0 || summary.vectors_uploaded > 0 {
        let _ = writeln!(
            err,
            "remote cache {}: {} vector(s) taken instead of embedded, {} uploaded",
            summary.url, summary.vectors_downloaded, summary.vectors_uploaded
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn many_deleted_outputs_are_summarised() {
        let mut reasons = vec![Reason::NeverBuilt];
        for i in 0..1000 {
            reasons.push(Reason::OutputMissing {
                path: PathBuf::from(format!("public/movies/m{i}.json")),
            });
        }
        reasons.push(Reason::OutputModified {
            path: PathBuf::from("public/data/movies.db"),
        });
        let lines = reason_lines(&reasons, false);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].starts_with("1000 outputs were deleted, e.g. public/movies/m0.json"));
        assert_eq!(reason_lines(&reasons, true).len(), 1002);
    }
}
