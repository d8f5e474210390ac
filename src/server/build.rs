//! Builds started from the page: one at a time, on a blocking thread, with
//! their events forwarded to the event streams.

use super::api::App;
use crate::executor::{BuildEvent, BuildOptions, Executor, Observer, Outcome, TargetResult};
use crate::graph::Graph;
use crate::manifest::Manifest;
use crate::progress::{describe, Units};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message of the event stream (`data: {...}`), in the original's shape
/// (`type`, `status`, `current`, `total`, `message`) plus what pipe knows
/// more: the build id, the target, progress inside it, warnings, results.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    /// Always `"build"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `starting`, `in_progress`, `completed` or `error`.
    pub status: &'static str,
    /// Which build (counts up from 1 in this server).
    pub id: u64,
    /// Targets finished.
    pub current: usize,
    /// Targets selected (0 until the executor has expanded the selection).
    pub total: usize,
    /// Work units (files, rows, texts) done over every target, as the
    /// command line's overall progress counts them ([`Units`]).
    pub units_current: u64,
    /// Work units in all, over the targets that reported theirs so far.
    pub units_total: u64,
    /// One line for people.
    pub message: String,
    /// The target this event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What happened to `target`: `started`, `running` (progress inside
    /// it), `warning` or `finished`; the page keeps one line per target
    /// from `started` to `finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_state: Option<&'static str>,
    /// Progress inside `target`: units done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_current: Option<u64>,
    /// Progress inside `target`: units in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_total: Option<u64>,
    /// A warning that loses data (a missing vector, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The targets asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Every target's result (`completed` and `error`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TargetResult>,
    /// What went wrong (`error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProgressEvent {
    /// An event with only the common fields.
    pub fn new(status: &'static str, id: u64, message: String) -> ProgressEvent {
        ProgressEvent {
            kind: "build",
            status,
            id,
            current: 0,
            total: 0,
            units_current: 0,
            units_total: 0,
            message,
            target: None,
            target_state: None,
            target_current: None,
            target_total: None,
            warning: None,
            targets: Vec::new(),
            results: Vec::new(),
            error: None,
        }
    }
}

/// The build in flight.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    /// Build id.
    pub id: u64,
    /// Targets asked for (empty: all).
    pub targets: Vec<String>,
    /// Targets building right now.
    pub building: BTreeSet<String>,
    /// Targets finished.
    pub current: usize,
    /// Targets selected.
    pub total: usize,
    /// Work units done and in all ([`ProgressEvent::units_current`]).
    pub units_current: u64,
    /// Work units in all.
    pub units_total: u64,
    /// The last progress message.
    pub message: String,
}

/// Forwards the executor's events to the event streams, and keeps
/// [`Running`] up to date for `GET /api/status`.
struct Forward {
    app: Arc<App>,
    id: u64,
    /// When each target last sent a progress event: stages report progress
    /// per chunk of movies, far more often than a page can show.
    last_progress: Mutex<HashMap<String, Instant>>,
    /// The build's progress in work units, summed over its targets.
    units: Mutex<Units>,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl Observer for Forward {
    fn event(&self, event: &BuildEvent) {
        let mut out = ProgressEvent::new("in_progress", self.id, String::new());
        {
            let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                BuildEvent::Started { total } => units.start(*total),
                BuildEvent::Progress {
                    name,
                    current,
                    total,
                    ..
                } => units.progress(name, *current, *total),
                BuildEvent::TargetFinished { result, .. } => units.finished(&result.name),
                _ => {}
            }
            (out.units_current, out.units_total) = units.position();
        }
        let (units_current, units_total) = (out.units_current, out.units_total);
        self.app.update(|r| {
            r.units_current = units_current;
            r.units_total = units_total;
        });
        match event {
            BuildEvent::Started { total } => {
                out.message = format!("building: {total} target(s) selected");
                self.app.update(|r| r.total = *total);
            }
            BuildEvent::TargetStarted { name, reasons } => {
                let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                out.message = format!("building {name} ({})", why.join("; "));
                out.target = Some(name.clone());
                out.target_state = Some("started");
                self.app.update(|r| {
                    r.building.insert(name.clone());
                });
            }
            BuildEvent::Progress {
                name,
                current,
                total,
                message,
            } => {
                let now = Instant::now();
                if let Ok(mut last) = self.last_progress.lock() {
                    let due = last
                        .get(name)
                        .is_none_or(|t| now.duration_since(*t) >= PROGRESS_EVERY);
                    if !due && current < total {
                        return;
                    }
                    last.insert(name.clone(), now);
                }
                out.message = format!("{name}: {message} ({current}/{total})");
                out.target = Some(name.clone());
                out.target_state = Some("running");
                out.target_current = Some(*current);
                out.target_total = Some(*total);
            }
            BuildEvent::Warning { name, message } => {
                out.message = format!("{name}: warning: {message}");
                out.target = Some(name.clone());
                out.target_state = Some("warning");
                out.warning = Some(message.clone());
            }
            BuildEvent::TargetFinished {
                result,
                done,
                total,
            } => {
                out.message = describe(result);
                out.target = Some(result.name.clone());
                out.target_state = Some("finished");
                self.app.update(|r| {
                    r.building.remove(&result.name);
                    r.current = *done;
                    r.total = *total;
                });
            }
        }
        self.app.emit_progress(out);
    }
}

/// Run a build to the end and publish its result. Called on a blocking
/// thread: it takes the project lock (waiting for a terminal build) and
/// builds with the same executor as `pipe build`.
pub fn run(
    app: Arc<App>,
    id: u64,
    manifest: Manifest,
    graph: Graph,
    targets: Vec<String>,
    publish_model: Option<String>,
) -> ProgressEvent {
    let remote = match crate::remote::resolve(&manifest.pipeline.cache, &app.remote) {
        Some(o) => match crate::remote::RemoteCache::new(o) {
            Ok(r) => Some(r),
            Err(e) => return failure(id, e, Vec::new()),
        },
        None => None,
    };
    let executor = Executor::new(&manifest, &graph, app.cancelled.clone()).with_remote(remote);
    let lock = executor.state().lock(|holder| {
        let message = format!("waiting: {holder} is building this project");
        app.update(|r| r.message = message.clone());
        app.emit_progress(ProgressEvent::new("in_progress", id, message));
    });
    let _lock = match lock {
        Ok(l) => l,
        Err(e) => {
            return failure(
                id,
                format!("cannot take the project lock in .pipe/: {e}"),
                Vec::new(),
            )
        }
    };
    let observer = Forward {
        app: app.clone(),
        id,
        last_progress: Mutex::new(HashMap::new()),
        units: Mutex::new(Units::default()),
    };
    let opts = BuildOptions {
        targets,
        jobs: app.jobs,
        strict: app.strict,
        publish_model,
        ..BuildOptions::default()
    };
    let report = match executor.build(&opts, &observer) {
        Ok(r) => r,
        Err(e) => return failure(id, e.to_string(), Vec::new()),
    };
    let total = report.results.len();
    let (units_current, units_total) = observer
        .units
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .position();
    let built = report.built();
    let failed: Vec<&TargetResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .collect();
    let secs = report.millis as f64 / 1000.0;
    if !report.success() {
        let first = failed
            .first()
            .map(|r| describe(r))
            .unwrap_or_else(|| "the build stopped".to_string());
        let mut e = failure(
            id,
            format!("{} target(s) failed, {built} built: {first}", failed.len()),
            report.results.clone(),
        );
        e.current = total;
        e.total = total;
        (e.units_current, e.units_total) = (units_current, units_total);
        return e;
    }
    let mut message = if built == 0 {
        format!("nothing to do: {total} target(s) up to date ({secs:.3}s)")
    } else {
        format!("built {built} of {total} target(s) in {secs:.2}s")
    };
    if let Some(summary) = &report.remote {
        for problem in &summary.problems {
            message.push_str(&format!("; warning: {problem}"));
        }
    }
    let mut done = ProgressEvent::new("completed", id, message);
    done.current = total;
    done.total = total;
    (done.units_current, done.units_total) = (units_current, units_total);
    done.results = report.results;
    done
}

/// An `error` event.
pub fn failure(id: u64, error: String, results: Vec<TargetResult>) -> ProgressEvent {
    let mut e = ProgressEvent::new("error", id, error.clone());
    e.error = Some(error);
    e.results = results;
    e
}
