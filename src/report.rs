//! Showing a build as it runs: progress bars on a terminal, plain
//! `[current/total] message` lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipe::executor::{BuildEvent, Observer, Outcome, TargetResult};
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

/// Prints build events to stderr.
pub struct Reporter {
    verbosity: Verbosity,
    explain: bool,
    bars: Option<Bars>,
    plain: Mutex<PlainState>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    per_target: Mutex<HashMap<String, ProgressBar>>,
}

#[derive(Default)]
struct PlainState {
    last_progress: HashMap<String, std::time::Instant>,
}

impl Reporter {
    /// A reporter that draws bars when stderr is a terminal.
    pub fn new(verbosity: Verbosity, explain: bool) -> Self {
        let bars = (verbosity > Verbosity::Quiet && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8.cyan.bold} [{bar:30}] {pos}/{len} targets {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix("Building");
            Bars {
                multi,
                overall,
                per_target: Mutex::new(HashMap::new()),
            }
        });
        Reporter {
            verbosity,
            explain,
            bars,
            plain: Mutex::new(PlainState::default()),
        }
    }

    fn line(&self, text: &str) {
        match &self.bars {
            Some(b) => b.multi.suspend(|| eprintln!("{text}")),
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
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

/// One line describing a finished target.
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
        Outcome::WouldBuild => format!("would build {}", result.name),
        Outcome::Failed { error } => format!("error: {} failed: {error}", result.name),
        Outcome::Skipped { because } => {
            format!("skipped {}: its dependency {because} failed", result.name)
        }
        Outcome::NotRun => format!("not built: {} (the build stopped)", result.name),
    }
}

impl Observer for Reporter {
    fn event(&self, event: &BuildEvent) {
        match event {
            BuildEvent::Started { total } => {
                if let Some(b) = &self.bars {
                    b.overall.set_length(*total as u64);
                    b.overall.enable_steady_tick(Duration::from_millis(100));
                }
            }
            BuildEvent::TargetStarted { name, reasons } => {
                if let Some(b) = &self.bars {
                    let bar = b.multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>24.green} {spinner} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(name.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    if let Ok(mut map) = b.per_target.lock() {
                        map.insert(name.clone(), bar);
                    }
                }
                if self.explain || self.verbosity == Verbosity::Verbose {
                    for r in reasons {
                        self.line(&format!("  {name}: {r}"));
                    }
                }
            }
            BuildEvent::Progress {
                name,
                current,
                total,
                message,
            } => {
                if let Some(b) = &self.bars {
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
            BuildEvent::Warning { name, message } => {
                if self.verbosity > Verbosity::Quiet {
                    self.line(&format!("warning: {name}: {message}"));
                }
            }
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
                    b.overall.set_position(*done as u64);
                }
                if self.explain && result.outcome == Outcome::WouldBuild {
                    for r in &result.reasons {
                        self.line(&format!("  {}: {r}", result.name));
                    }
                }
                let failed = matches!(result.outcome, Outcome::Failed { .. });
                let quiet_skip = matches!(result.outcome, Outcome::UpToDate)
                    && self.verbosity < Verbosity::Verbose
                    && !self.explain;
                if failed || (self.verbosity > Verbosity::Quiet && !quiet_skip) {
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
    for p in &summary.problems {
        eprintln!("warning: {p}");
    }
    let mb = |b: u64| b as f64 / 1e6;
    if summary.downloaded > 0 || summary.uploaded > 0 {
        eprintln!(
            "remote cache {}: {} target(s) downloaded ({:.1} MB), {} uploaded ({:.1} MB)",
            summary.url,
            summary.downloaded,
            mb(summary.downloaded_bytes),
            summary.uploaded,
            mb(summary.uploaded_bytes)
        );
    }
}
