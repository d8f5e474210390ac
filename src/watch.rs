//! Watch mode: rebuild what changed while you work.
//!
//! The watcher follows the *inputs* of the selected targets (from the graph),
//! the models directory and pipeline.toml itself. It never reacts to a
//! target's outputs, `.pipe/` or pipe's temporary files, so a build can never
//! trigger itself. Bursts of events (an editor's save-rename-chmod, a script
//! writing many files) are debounced into one rebuild; a change that arrives
//! during a rebuild triggers exactly one more rebuild after it. Every rebuild
//! goes through the same [`Executor`] (and project lock) as `pipe build`, so
//! only targets whose fingerprints changed are rebuilt.

use crate::artifact::TEMP_PREFIX;
use crate::executor::{BuildOptions, Executor, Observer, Outcome};
use crate::graph::Graph;
use crate::manifest::{Manifest, ManifestErrors};
use crate::state::STATE_DIR;
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How `pipe watch` runs.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Targets to keep built (empty: all).
    pub targets: Vec<String>,
    /// Quiet period: a rebuild starts once no event arrived for this long.
    pub debounce: Duration,
    /// Parallel jobs (0: one per core).
    pub jobs: usize,
    /// Treat data-losing warnings as errors.
    pub strict: bool,
    /// Remove the outputs of targets that disappeared (a model file removed).
    pub prune: bool,
    /// The remote cache flags; with pipeline.toml's `[cache]` and the
    /// environment they decide whether rebuilds share through one.
    pub remote: crate::remote::RemoteFlags,
}

/// What watch mode reports to its front end, one line each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchMessage {
    /// Watching started or the watch set changed.
    Watching {
        /// Files followed.
        files: usize,
        /// Directories registered with the OS.
        dirs: usize,
    },
    /// A rebuild finished.
    Rebuilt {
        /// Project-relative paths that changed.
        changed: Vec<String>,
        /// Targets built.
        built: Vec<String>,
        /// Targets that failed, with their errors.
        failed: Vec<(String, String)>,
        /// Wall time.
        millis: u128,
    },
    /// Targets that no longer exist (a model file was removed).
    Removed {
        /// Their names.
        targets: Vec<String>,
        /// Whether their outputs were deleted (`--prune`).
        pruned: bool,
    },
    /// pipeline.toml or a model file is invalid; the last good outputs stay.
    Invalid(String),
    /// The warnings of a rebuild's targets (target, warning), as a build
    /// shows them: each kind once, grouped.
    Warnings(Vec<(String, crate::warning::Warning)>),
    /// Something went wrong that is not a target failure.
    Error(String),
    /// Watching stopped (Ctrl-C).
    Stopped,
}

/// The files and directories that matter, recomputed on every reload.
struct WatchSet {
    /// Absolute paths of files whose change triggers a rebuild.
    files: BTreeSet<PathBuf>,
    /// Absolute paths of directories in which any `*.toml` matters (models.d).
    model_dirs: BTreeSet<PathBuf>,
    /// Absolute paths never to react to: outputs of every target.
    outputs: BTreeSet<PathBuf>,
    /// Directories of directory outputs (per-movie JSON).
    output_dirs: BTreeSet<PathBuf>,
    /// Directories registered with the watcher.
    dirs: BTreeSet<PathBuf>,
}

impl WatchSet {
    fn new(
        root: &Path,
        manifest_path: &Path,
        loaded: Option<(&Manifest, &Graph, &[usize])>,
    ) -> WatchSet {
        let mut files = BTreeSet::from([manifest_path.to_path_buf()]);
        let mut model_dirs = BTreeSet::new();
        let mut outputs = BTreeSet::new();
        let mut output_dirs = BTreeSet::new();
        match loaded {
            Some((manifest, graph, selected)) => {
                model_dirs.insert(root.join(&manifest.pipeline.settings.models));
                for t in &graph.targets {
                    for o in &t.outputs {
                        match o {
                            crate::graph::Output::File(p) => {
                                outputs.insert(root.join(p));
                            }
                            crate::graph::Output::Dir { dir, .. } => {
                                output_dirs.insert(root.join(dir));
                            }
                        }
                    }
                }
                for &i in selected {
                    for input in &graph.targets[i].inputs {
                        let abs = root.join(input);
                        if !outputs.contains(&abs) {
                            files.insert(abs);
                        }
                    }
                }
            }
            None => {
                model_dirs.insert(root.join("models.d"));
            }
        }
        let mut dirs: BTreeSet<PathBuf> = files
            .iter()
            .map(|f| existing_ancestor(f.parent().unwrap_or(root), root))
            .collect();
        dirs.extend(model_dirs.iter().map(|d| existing_ancestor(d, root)));
        WatchSet {
            files,
            model_dirs,
            outputs,
            output_dirs,
            dirs,
        }
    }

    /// Whether an event on `path` should trigger a rebuild.
    fn matters(&self, path: &Path) -> bool {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with(TEMP_PREFIX)
            || self.outputs.contains(path)
            || self.output_dirs.iter().any(|d| path.starts_with(d))
        {
            return false;
        }
        if path.components().any(|c| c.as_os_str() == STATE_DIR) {
            return false;
        }
        if self.files.contains(path) {
            return true;
        }
        // A model file added, edited or removed; or a watched directory
        // itself created/removed (then its files may have appeared).
        self.model_dirs.iter().any(|d| {
            path.parent() == Some(d.as_path()) && name.ends_with(".toml") && !name.starts_with('.')
        }) || self.model_dirs.contains(path)
            || self.files.iter().any(|f| f.starts_with(path) && f != path)
    }
}

fn existing_ancestor(dir: &Path, root: &Path) -> PathBuf {
    let mut d = dir;
    loop {
        if d.is_dir() {
            return d.to_path_buf();
        }
        match d.parent() {
            Some(p) if p.starts_with(root) => d = p,
            _ => return root.to_path_buf(),
        }
    }
}

/// A loaded project, or why it could not be loaded.
type Loaded = Result<(Manifest, Graph, Vec<usize>), String>;

fn load(manifest_path: &Path, targets: &[String]) -> Loaded {
    let render = |e: ManifestErrors| e.render();
    let manifest = Manifest::load(manifest_path).map_err(render)?;
    let graph = Graph::build(&manifest).map_err(render)?;
    let selected = graph.select(targets).map_err(|e| e.to_string())?;
    Ok((manifest, graph, selected))
}

/// Watch and rebuild until `cancelled` is set. `report` receives one message
/// per rebuild or state change; `observer` receives the build events.
pub fn watch(
    manifest_path: &Path,
    opts: &WatchOptions,
    cancelled: &Arc<AtomicBool>,
    observer: &dyn Observer,
    report: &mut dyn FnMut(WatchMessage),
) -> Result<(), String> {
    let manifest_path = std::path::absolute(manifest_path).map_err(|e| e.to_string())?;
    let root = manifest_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;

    let mut loaded = load(&manifest_path, &opts.targets);
    let mut watching: BTreeSet<PathBuf> = BTreeSet::new();
    let mut known_targets: BTreeSet<String> = BTreeSet::new();
    let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut first = true;

    loop {
        // (Re)register directories for the current watch set.
        let set = WatchSet::new(
            &root,
            &manifest_path,
            loaded.as_ref().ok().map(|(m, g, s)| (m, g, s.as_slice())),
        );
        for d in watching.difference(&set.dirs) {
            let _ = watcher.unwatch(d);
        }
        for d in set.dirs.difference(&watching) {
            if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
                report(WatchMessage::Error(format!(
                    "cannot watch {}: {e}",
                    d.display()
                )));
            }
        }
        if watching != set.dirs || first {
            report(WatchMessage::Watching {
                files: set.files.len(),
                dirs: set.dirs.len(),
            });
        }
        watching = set.dirs.clone();

        match &loaded {
            Err(diagnostic) => report(WatchMessage::Invalid(diagnostic.clone())),
            Ok((manifest, graph, selected)) => {
                let names: BTreeSet<String> = selected
                    .iter()
                    .map(|&i| graph.targets[i].name.clone())
                    .collect();
                let gone: Vec<String> = known_targets.difference(&names).cloned().collect();
                if !gone.is_empty() && !first {
                    let mut pruned = false;
                    if opts.prune {
                        let executor = Executor::new(manifest, graph, cancelled.clone());
                        match executor.state().lock(|_| {}) {
                            Ok(_lock) => {
                                pruned = executor.prune(&gone).is_ok();
                            }
                            Err(e) => report(WatchMessage::Error(format!(
                                "cannot take the project lock: {e}"
                            ))),
                        }
                    }
                    report(WatchMessage::Removed {
                        targets: gone,
                        pruned,
                    });
                }
                known_targets = names;
                let start = Instant::now();
                // A cache per rebuild: one that failed is tried again on
                // the next change, and pipeline.toml's `[cache]` may change.
                let remote = match crate::remote::resolve(&manifest.pipeline.cache, &opts.remote) {
                    Some(o) => match crate::remote::RemoteCache::new(o) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            report(WatchMessage::Error(e));
                            None
                        }
                    },
                    None => None,
                };
                let executor =
                    Executor::new(manifest, graph, cancelled.clone()).with_remote(remote);
                let build = BuildOptions {
                    targets: opts.targets.clone(),
                    jobs: opts.jobs,
                    keep_going: true,
                    strict: opts.strict,
                    ..BuildOptions::default()
                };
                let result = executor
                    .state()
                    .lock(|_| {})
                    .map_err(|e| format!("cannot take the project lock: {e}"))
                    .and_then(|_lock| executor.build(&build, observer).map_err(|e| e.to_string()));
                match result {
                    Ok(r) => {
                        let built: Vec<String> = r
                            .results
                            .iter()
                            .filter(|x| {
                                matches!(
                                    x.outcome,
                                    Outcome::Built { .. } | Outcome::Downloaded { .. }
                                )
                            })
                            .map(|x| x.name.clone())
                            .collect();
                        let failed: Vec<(String, String)> = r
                            .results
                            .iter()
                            .filter_map(|x| match &x.outcome {
                                Outcome::Failed { error } => Some((x.name.clone(), error.clone())),
                                _ => None,
                            })
                            .collect();
                        report(WatchMessage::Rebuilt {
                            changed: changed
                                .iter()
                                .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
                                .collect(),
                            built,
                            failed,
                            millis: start.elapsed().as_millis(),
                        });
                        let mut warnings: Vec<(String, crate::warning::Warning)> = r
                            .warnings()
                            .into_iter()
                            .map(|(t, w)| (t.to_string(), w.clone()))
                            .collect();
                        if let Some(summary) = &r.remote {
                            warnings.extend(
                                summary.problems.iter().map(|p| {
                                    (summary.url.clone(), crate::remote::problem_warning(p))
                                }),
                            );
                        }
                        if !warnings.is_empty() {
                            report(WatchMessage::Warnings(warnings));
                        }
                    }
                    Err(e) => report(WatchMessage::Error(e)),
                }
            }
        }
        first = false;
        changed.clear();
        if cancelled.load(Ordering::SeqCst) {
            break;
        }

        // Wait for a change that matters, then for a quiet period. Events that
        // arrived during the build are already queued: they lead to exactly
        // one more rebuild.
        let mut reload = false;
        let mut last_event: Option<Instant> = None;
        loop {
            if cancelled.load(Ordering::SeqCst) {
                report(WatchMessage::Stopped);
                return Ok(());
            }
            let timeout = match last_event {
                Some(t) => opts.debounce.saturating_sub(t.elapsed()),
                None => Duration::from_millis(100),
            };
            match rx.recv_timeout(timeout.max(Duration::from_millis(1))) {
                Ok(path) => {
                    if set.matters(&path) {
                        reload |= path == manifest_path
                            || set.model_dirs.iter().any(|d| path.starts_with(d));
                        changed.insert(path);
                        last_event = Some(Instant::now());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if last_event.is_some_and(|t| t.elapsed() >= opts.debounce) {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the file watcher stopped".into())
                }
            }
        }
        if reload || loaded.is_err() {
            loaded = load(&manifest_path, &opts.targets);
        }
    }
    report(WatchMessage::Stopped);
    Ok(())
}
