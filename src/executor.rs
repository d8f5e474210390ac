//! Decides what is out of date and builds it, independent targets in
//! parallel.
//!
//! A target is up to date when its fingerprint (configuration + input
//! content hashes) matches its last successful build and every output it
//! wrote is still there with the recorded content. Otherwise the reasons are
//! collected ([`Reason`]) — that is what `--explain` and `pipe explain` show.

use crate::fingerprint::{fingerprint, HashCache, InputHashes};
use crate::graph::{Graph, Target, TargetSpec};
use crate::lockfile::{self, LockFile};
use crate::manifest::Manifest;
use crate::stage::{BuildSettings, ProgressSink, StageContext, StageError, StageOutput, Warning};
use crate::stages;
use crate::state::{record_outputs, OutputCheck, StateDir, TargetRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How a build is run.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Target names (empty: all). Bare per-model names select every model.
    pub targets: Vec<String>,
    /// Parallel jobs (0: one per core).
    pub jobs: usize,
    /// Keep building unrelated targets after a failure.
    pub keep_going: bool,
    /// Say what would be built, build nothing.
    pub dry_run: bool,
    /// Fail if the build would change pipe.lock.
    pub locked: bool,
    /// Warnings that lose data are errors.
    pub strict: bool,
    /// The original's `-m MODEL`: once its `movies-db` target is built (or
    /// up to date), that model's database is also published at the path
    /// the default model's is (`publish-default`), as the original's
    /// `-m potion` left potion's at `public/data/movies.db`. The published
    /// file stays an output of the default model's target (and pipe.lock
    /// records the default's), so the next build of that target publishes
    /// the default's again.
    pub publish_model: Option<String>,
}

/// Why a target must be rebuilt.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// No successful build recorded.
    NeverBuilt,
    /// A configuration value changed (option, model field, stage version).
    Config {
        /// The key (`model.dimensions`).
        key: String,
        /// Value at the last build (None: absent).
        old: Option<String>,
        /// Value now.
        new: Option<String>,
    },
    /// An input's content changed.
    Input {
        /// The input file.
        path: PathBuf,
        /// Hash at the last build (None: absent or missing).
        old: Option<String>,
        /// Hash now (None: missing).
        new: Option<String>,
    },
    /// An output was deleted.
    OutputMissing {
        /// The file.
        path: PathBuf,
    },
    /// An output was edited.
    OutputModified {
        /// The file.
        path: PathBuf,
    },
    /// The output holds another model's database, published there by
    /// `pipe build -m MODEL`: this target publishes its own again.
    PublishedOther {
        /// The published file.
        path: PathBuf,
        /// The model whose database it holds.
        model: String,
    },
    /// A dependency would be rebuilt (dry runs only).
    Dependency {
        /// The dependency's name.
        target: String,
    },
    /// What an embeddings target would send its provider (status, explain
    /// and dry runs): records new, changed and removed since its last build.
    Records {
        /// Records now.
        records: usize,
        /// New records.
        new: usize,
        /// Records whose text or options changed.
        changed: usize,
        /// Records removed.
        removed: usize,
        /// Texts not in the vector cache: what a build sends.
        to_send: usize,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |h: &Option<String>| match h {
            Some(h) => h.chars().take(12).collect::<String>(),
            None => "missing".to_string(),
        };
        match self {
            Reason::NeverBuilt => write!(f, "never built"),
            Reason::Config { key, old, new } => write!(
                f,
                "{key} changed: {} → {}",
                old.as_deref()
                    .map_or("(unset)".to_string(), |v| format!("{v:?}")),
                new.as_deref()
                    .map_or("(unset)".to_string(), |v| format!("{v:?}"))
            ),
            Reason::Input { path, old, new } => write!(
                f,
                "input {} changed: {} → {}",
                path.display(),
                short(old),
                short(new)
            ),
            Reason::OutputMissing { path } => write!(f, "output {} was deleted", path.display()),
            Reason::OutputModified { path } => write!(f, "output {} was modified", path.display()),
            Reason::PublishedOther { path, model } => write!(
                f,
                "output {} holds model {model}'s database (`pipe build -m {model}` published it); \
                 this target publishes its own model's again",
                path.display()
            ),
            Reason::Dependency { target } => write!(f, "dependency {target} is out of date"),
            Reason::Records {
                records,
                new,
                changed,
                removed,
                to_send,
            } => write!(
                f,
                "{records} records: {new} new, {changed} changed, {removed} removed; {to_send} texts to embed"
            ),
        }
    }
}

/// What happened to a target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to do.
    UpToDate,
    /// Built.
    Built {
        /// Files (re)written.
        written: usize,
        /// Files deleted.
        deleted: usize,
    },
    /// Installed from the remote cache instead of being built.
    Downloaded {
        /// Files (re)written.
        written: usize,
        /// Files deleted.
        deleted: usize,
        /// Bytes downloaded.
        bytes: u64,
    },
    /// Would be built (dry run).
    WouldBuild,
    /// Failed.
    Failed {
        /// The error.
        error: String,
    },
    /// Not built because a dependency failed.
    Skipped {
        /// The dependency that failed.
        because: String,
    },
    /// Not built: the build stopped (after another failure without
    /// --keep-going, or on Ctrl-C, which also stops a running target).
    NotRun,
}

/// The result of one target.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    /// Target name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Why it was (or would be) rebuilt.
    pub reasons: Vec<Reason>,
    /// Warnings the stage reported (their full text).
    pub warnings: Vec<String>,
    /// The same warnings, structured: what front ends group and show once
    /// per build ([`crate::warning::group`]).
    #[serde(skip)]
    pub details: Vec<Warning>,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// What the stage reports about its work (movies, vectors, files
    /// rendered, whether a cached part was reused, …); empty unless built.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, String>,
    /// `--locked`: the target's inputs or configuration differ from
    /// pipe.lock (the build would change it); reported in
    /// [`BuildReport::lock_mismatch`].
    #[serde(skip)]
    pub lock_mismatch: bool,
}

impl TargetResult {
    /// A result with nothing done yet.
    fn new(name: &str, outcome: Outcome) -> Self {
        TargetResult {
            name: name.to_string(),
            outcome,
            reasons: vec![],
            warnings: vec![],
            details: vec![],
            millis: 0,
            stats: BTreeMap::new(),
            lock_mismatch: false,
        }
    }
}

/// What a build did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    /// Every selected target, in graph order (dependencies first).
    pub results: Vec<TargetResult>,
    /// `--locked` found a difference with pipe.lock (the lines that differ).
    pub lock_mismatch: Vec<String>,
    /// Whether pipe.lock was rewritten.
    pub lock_written: bool,
    /// `-m MODEL` published that model's database here (the path of the
    /// default's, `publish-default`): (target, path).
    pub published: Option<(String, PathBuf)>,
    /// Input files that had to be read (not answered from the stat cache).
    pub inputs_hashed: usize,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// What the remote cache did, when one is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::remote::RemoteSummary>,
}

impl BuildReport {
    /// Whether every target succeeded (or was up to date) and the lock matched.
    pub fn success(&self) -> bool {
        self.lock_mismatch.is_empty()
            && self.results.iter().all(|r| {
                matches!(
                    r.outcome,
                    Outcome::UpToDate
                        | Outcome::Built { .. }
                        | Outcome::Downloaded { .. }
                        | Outcome::WouldBuild
                )
            })
    }

    /// The warnings of the targets this build ran (built or failed), with
    /// their target names, for [`crate::warning::group`]. Up-to-date
    /// targets keep theirs in their records (`--strict` fails on them).
    pub fn warnings(&self) -> Vec<(&str, &Warning)> {
        self.results
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Built { .. } | Outcome::Downloaded { .. } | Outcome::Failed { .. }
                )
            })
            .flat_map(|r| r.details.iter().map(move |w| (r.name.as_str(), w)))
            .collect()
    }

    /// How many targets were built (locally or from the remote cache).
    pub fn built(&self) -> usize {
        self.results
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Built { .. } | Outcome::Downloaded { .. }
                )
            })
            .count()
    }
}

/// What the executor tells the front end (progress bars, watch, server).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum BuildEvent {
    /// The build starts with `total` selected targets.
    Started {
        /// Number of selected targets.
        total: usize,
    },
    /// A target starts building.
    TargetStarted {
        /// Target name.
        name: String,
        /// Why.
        reasons: Vec<Reason>,
    },
    /// Progress inside a target.
    Progress {
        /// Target name.
        name: String,
        /// Units done.
        current: u64,
        /// Units in all.
        total: u64,
        /// What is being done.
        message: String,
    },
    /// A warning from a target.
    Warning {
        /// Target name.
        name: String,
        /// The warning.
        message: String,
    },
    /// A target is done (whatever the outcome).
    TargetFinished {
        /// The result.
        result: TargetResult,
        /// Targets finished so far.
        done: usize,
        /// Targets selected.
        total: usize,
    },
}

/// Receives build events. Must be cheap: it is called from worker threads.
pub trait Observer: Send + Sync {
    /// One event.
    fn event(&self, event: &BuildEvent);
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {
    fn event(&self, _: &BuildEvent) {}
}

struct TargetSink<'a> {
    name: &'a str,
    observer: &'a dyn Observer,
    warnings: Mutex<Vec<Warning>>,
    /// Tells the scheduler that the target waits (see
    /// [`ProgressSink::waiting`]).
    on_wait: &'a (dyn Fn(bool) + Sync),
}

impl ProgressSink for TargetSink<'_> {
    fn progress(&self, current: u64, total: u64, message: &str) {
        self.observer.event(&BuildEvent::Progress {
            name: self.name.to_string(),
            current,
            total,
            message: message.to_string(),
        });
    }
    fn warn(&self, warning: &Warning) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(warning.clone());
        }
        self.observer.event(&BuildEvent::Warning {
            name: self.name.to_string(),
            message: warning.detail.clone(),
        });
    }
    fn waiting(&self, waiting: bool) {
        (self.on_wait)(waiting);
    }
}

/// A target's state now, compared with its last build.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Staleness {
    /// Target name.
    pub name: String,
    /// Empty: up to date.
    pub reasons: Vec<Reason>,
    /// Inputs that are missing and not optional (the build would fail).
    pub missing_inputs: Vec<PathBuf>,
    /// The error of the last build, if it failed.
    pub last_error: Option<String>,
    /// Fingerprint now (hex).
    pub fingerprint: String,
}

impl Staleness {
    /// `missing-input`, `up-to-date`, `failed` (the last build failed and
    /// it is still out of date) or `stale`: the words of `pipe status` and
    /// the admin API.
    pub fn state(&self) -> &'static str {
        if !self.missing_inputs.is_empty() {
            "missing-input"
        } else if self.reasons.is_empty() {
            "up-to-date"
        } else if self.last_error.is_some() {
            "failed"
        } else {
            "stale"
        }
    }
}

/// Shared, per-build context.
pub struct Executor<'a> {
    manifest: &'a Manifest,
    graph: &'a Graph,
    state: StateDir,
    cache: Mutex<HashCache>,
    cancelled: Arc<AtomicBool>,
    /// Set when the first stage of this build starts (and `.pipe/` says a
    /// build is writing).
    building: AtomicBool,
    remote: Option<Arc<crate::remote::RemoteCache>>,
    /// Every target's inputs, as path bytes ([`Executor::seed_hashes`]).
    read_by_targets: std::collections::HashSet<Vec<u8>>,
}

struct Assessed {
    inputs: InputHashes,
    config: BTreeMap<String, String>,
    fingerprint: blake3::Hash,
    record: Option<TargetRecord>,
    checks: Vec<OutputCheck>,
    reasons: Vec<Reason>,
    missing: Vec<PathBuf>,
}

/// What a target's thread reports when it ends.
enum Finished {
    /// A target ran (or was not run): its result, and its record if built.
    Target(usize, Box<(TargetResult, Option<TargetRecord>)>),
    /// A head start ended (it reports nothing of its own).
    HeadStart,
    /// A running target started (`true`) or stopped waiting: while it
    /// waits, its job is lent to another target or head start.
    Waiting(bool),
}

/// Whether a target not ready to run can take its head start.
enum HeadStart {
    /// Now, on these inputs.
    Ready(Vec<PathBuf>),
    /// Not before a dependency that makes one of its inputs is built.
    NotYet,
    /// Not in this build.
    Never,
}

impl<'a> Executor<'a> {
    /// An executor for a loaded manifest and its graph.
    pub fn new(manifest: &'a Manifest, graph: &'a Graph, cancelled: Arc<AtomicBool>) -> Self {
        let state = StateDir::new(&manifest.root);
        let cache = Mutex::new(state.load_hash_cache());
        Executor {
            manifest,
            graph,
            state,
            cache,
            cancelled,
            building: AtomicBool::new(false),
            remote: None,
            read_by_targets: graph
                .targets
                .iter()
                .flat_map(|t| &t.inputs)
                .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                .collect(),
        }
    }

    /// Share targets through a remote cache: a stale target whose
    /// fingerprint the cache has is installed from it, and what is built
    /// locally is uploaded (see [`crate::remote`]).
    pub fn with_remote(mut self, remote: Option<crate::remote::RemoteCache>) -> Self {
        self.remote = remote.map(crate::remote::RemoteCache::into_shared);
        self
    }

    /// Every directory a build writes files in (absolute): the targets'
    /// and the project root (pipe.lock).
    fn output_dirs(&self) -> std::collections::BTreeSet<PathBuf> {
        let root = &self.manifest.root;
        // The project root: pipe.lock is written there.
        let mut dirs = std::collections::BTreeSet::from([root.clone()]);
        for t in &self.graph.targets {
            for o in &t.outputs {
                let dir = match o {
                    crate::graph::Output::File(p) => p.parent().unwrap_or(Path::new("")),
                    crate::graph::Output::Dir { dir, .. } => dir.as_path(),
                };
                dirs.insert(root.join(dir));
            }
        }
        dirs
    }

    /// The modification times of the output directories now (a directory's
    /// changes when a file is created or removed in it), for
    /// [`StateDir::save_dir_stamps`].
    fn dir_stamps(&self) -> BTreeMap<PathBuf, (i64, i64)> {
        use std::os::unix::fs::MetadataExt;
        self.output_dirs()
            .into_iter()
            .filter_map(|d| {
                let m = std::fs::metadata(&d).ok()?;
                Some((d, (m.mtime(), m.mtime_nsec())))
            })
            .collect()
    }

    /// Remove pipe's leftover temporaries (`.pipe-tmp-*`, what a killed
    /// build leaves) from every directory the targets write and from
    /// `.pipe/`; nothing else. The caller holds the project lock.
    pub fn remove_temporaries(&self, dry_run: bool) -> std::io::Result<Vec<PathBuf>> {
        self.remove_temporaries_in(&self.output_dirs(), dry_run)
    }

    fn remove_temporaries_in(
        &self,
        dirs: &std::collections::BTreeSet<PathBuf>,
        dry_run: bool,
    ) -> std::io::Result<Vec<PathBuf>> {
        let root = &self.manifest.root;
        let removed =
            crate::artifact::remove_temporaries(dirs, &[self.state.path().to_path_buf()], dry_run)?;
        Ok(removed
            .into_iter()
            .map(|p| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or(p))
            .collect())
    }

    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    fn hash_inputs(&self, target: &Target) -> std::io::Result<(InputHashes, Vec<PathBuf>)> {
        let mut hashes = InputHashes::new();
        let mut missing = Vec::new();
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| std::io::Error::other("hash cache poisoned"))?;
        for input in &target.inputs {
            let h = cache.hash(&self.manifest.root, input)?;
            if h.is_none() && !target.optional_inputs.contains(input) {
                missing.push(input.clone());
            }
            hashes.insert(input.clone(), h);
        }
        Ok((hashes, missing))
    }

    fn assess(&self, target: &Target) -> std::io::Result<Assessed> {
        let (inputs, missing) = self.hash_inputs(target)?;
        let config = target.config();
        let fp = fingerprint(&config, &inputs);
        let mut record = self.state.load(&target.name);
        let mut reasons = Vec::new();
        let mut checks = Vec::new();
        match &mut record {
            None => reasons.push(Reason::NeverBuilt),
            Some(rec) => {
                let stale = rec.fingerprint != *fp.as_bytes();
                if stale {
                    reasons.extend(config_diff(&rec.config, &config));
                    for (path, new) in &inputs {
                        let new = new.map(|h| h.to_hex().to_string());
                        let old = rec.inputs.get(path).filter(|h| !h.is_empty()).cloned();
                        if old != new {
                            reasons.push(Reason::Input {
                                path: path.clone(),
                                old,
                                new,
                            });
                        }
                    }
                    for path in rec.inputs.keys().filter(|p| !inputs.contains_key(*p)) {
                        reasons.push(Reason::Input {
                            path: path.clone(),
                            old: rec.inputs.get(path).cloned(),
                            new: None,
                        });
                    }
                    if reasons.is_empty() {
                        reasons.push(Reason::Config {
                            key: "fingerprint".into(),
                            old: Some(hex(&rec.fingerprint)),
                            new: Some(fp.to_hex().to_string()),
                        });
                    }
                }
                checks = if stale {
                    rec.check_outputs_for_rebuild(&self.manifest.root)
                } else {
                    rec.check_outputs(&self.manifest.root)
                };
                let published = if checks.is_empty() {
                    BTreeMap::new()
                } else {
                    self.state.published()
                };
                for c in &checks {
                    match c {
                        OutputCheck::Missing(p) => {
                            reasons.push(Reason::OutputMissing { path: p.clone() })
                        }
                        OutputCheck::Modified(p) => match published.get(p) {
                            Some(model) => reasons.push(Reason::PublishedOther {
                                path: p.clone(),
                                model: model.clone(),
                            }),
                            None => reasons.push(Reason::OutputModified { path: p.clone() }),
                        },
                        OutputCheck::Intact | OutputCheck::Unverified(_) => {}
                    }
                }
            }
        }
        Ok(Assessed {
            inputs,
            config,
            fingerprint: fp,
            record,
            checks,
            reasons,
            missing,
        })
    }

    /// For an embeddings target: how many records a build would embed
    /// (reads movies.json and the vector cache; sends nothing). `None` for
    /// other targets, or when that cannot be known now (the error shows
    /// when the target is built).
    fn pending_records(&self, t: &crate::graph::Target) -> Option<Reason> {
        let TargetSpec::Embeddings(spec) = &t.spec else {
            return None;
        };
        let c = stages::embeddings::pending(&self.manifest.root, spec).ok()?;
        Some(Reason::Records {
            records: c.records,
            new: c.new,
            changed: c.changed,
            removed: c.removed,
            to_send: c.to_send,
        })
    }

    /// Give the hash cache the hashes of the outputs just recorded that
    /// other targets read (an embeddings file, a command's output): a
    /// dependent target's fingerprint then does not read the file again.
    fn seed_hashes(&self, outputs: &[crate::state::OutputRecord]) {
        if self.read_by_targets.is_empty() {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        for o in outputs {
            if self
                .read_by_targets
                .contains(o.path.as_os_str().as_encoded_bytes())
            {
                cache.seed(&o.path, o.stat, o.hash, o.recorded_ns);
            }
        }
    }

    /// Mark, once per build, that this build writes: a build killed from
    /// here on leaves the mark, and the next one sweeps its temporaries.
    fn start_writing(&self) -> std::io::Result<()> {
        if !self.building.swap(true, Ordering::SeqCst) {
            self.state.start_build()?;
        }
        Ok(())
    }

    /// Whether `target`, whose dependencies `deps` (those in this build)
    /// are not all done, can take its head start now
    /// ([`stages::head_start_inputs`]): when no dependency still to be
    /// built makes one of its inputs and none has failed. Only a target
    /// built before takes one: its head start is then an edit's patch of a
    /// cached part, where a first build's would add a whole part's memory
    /// to the dependency's (a first embedding, say).
    fn head_start_readiness(
        &self,
        target: &Target,
        deps: &[usize],
        done: &BTreeMap<usize, Outcome>,
    ) -> HeadStart {
        let Some(inputs) = stages::head_start_inputs(&target.spec) else {
            return HeadStart::Never;
        };
        for d in deps {
            match done.get(d) {
                Some(Outcome::UpToDate | Outcome::Built { .. } | Outcome::Downloaded { .. }) => {}
                Some(_) => return HeadStart::Never,
                None => {
                    let makes = |input: &PathBuf| {
                        self.graph.targets[*d].outputs.iter().any(|o| match o {
                            crate::graph::Output::File(p) => p == input,
                            crate::graph::Output::Dir { dir, .. } => input.starts_with(dir),
                        })
                    };
                    if inputs.iter().any(makes) {
                        return HeadStart::NotYet;
                    }
                }
            }
        }
        if self.state.load(&target.name).is_none() {
            return HeadStart::Never;
        }
        HeadStart::Ready(inputs)
    }

    /// Run `target`'s head start on `inputs` (hashed through the build's
    /// hash cache, as its own run will hash them). Silent: the target's run
    /// reports what it finds, errors included.
    fn head_start(&self, target: &Target, inputs: Vec<PathBuf>, settings: &BuildSettings) {
        if self.start_writing().is_err() {
            return;
        }
        let mut hashes = InputHashes::new();
        {
            let Ok(mut cache) = self.cache.lock() else {
                return;
            };
            for input in inputs {
                match cache.hash(&self.manifest.root, &input) {
                    Ok(h) => hashes.insert(input, h),
                    Err(_) => return,
                };
            }
        }
        let previous = crate::stage::PreviousOutputs::default();
        let ctx = StageContext {
            root: &self.manifest.root,
            target: &target.name,
            previous: &previous,
            inputs: &hashes,
            progress: &crate::stage::NoProgress,
            settings,
            cancelled: &self.cancelled,
            shared_vectors: None,
            shared_parts: self
                .remote
                .as_deref()
                .map(|r| r as &dyn crate::stage::SharedParts),
        };
        stages::head_start(&ctx, &target.spec);
    }

    /// Whether each target is up to date, and why not; builds nothing.
    /// `targets` must be in dependency order (as [`Graph::select`] returns
    /// them): a target whose dependency is stale is stale too.
    pub fn status(&self, targets: &[usize]) -> std::io::Result<Vec<Staleness>> {
        let mut stale = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for &i in targets {
            let t = &self.graph.targets[i];
            let a = self.assess(t)?;
            let mut reasons = a.reasons;
            for &d in &t.deps {
                if stale.contains(&d) {
                    reasons.push(Reason::Dependency {
                        target: self.graph.targets[d].name.clone(),
                    });
                }
            }
            if !reasons.is_empty() || !a.missing.is_empty() {
                stale.insert(i);
                reasons.extend(self.pending_records(t));
            }
            out.push(Staleness {
                name: t.name.clone(),
                reasons,
                missing_inputs: a.missing,
                last_error: self.state.failure(&t.name),
                fingerprint: a.fingerprint.to_hex().to_string(),
            });
        }
        self.save_cache();
        Ok(out)
    }

    fn save_cache(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            let _ = cache.save(&self.state.hash_cache_path());
        }
    }

    /// Build the selected targets.
    pub fn build(
        &self,
        opts: &BuildOptions,
        observer: &dyn Observer,
    ) -> Result<BuildReport, BuildError> {
        let start = Instant::now();
        let order = self
            .graph
            .select(&opts.targets)
            .map_err(BuildError::UnknownTarget)?;
        if let Some(why) = opts
            .publish_model
            .as_deref()
            .and_then(|m| publish_refusal(self.manifest, self.graph, m))
        {
            return Err(BuildError::QuantizedPublish(why));
        }
        let old_lock = LockFile::load(&self.manifest.root).map_err(BuildError::Io)?;
        if opts.locked && old_lock.is_none() {
            return Err(BuildError::NoLock);
        }
        let settings = BuildSettings {
            strict: opts.strict || opts.locked,
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        };
        let jobs = match opts.jobs {
            0 => match self.manifest.pipeline.settings.jobs {
                0 => std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                j => j,
            },
            j => j,
        };

        // A build that was killed while it wrote left temporaries (and a
        // mark that it did not finish), and someone may have left files in
        // an output directory since the last build (its modification time
        // changed): remove pipe's temporaries before building anything.
        // Comparing the directories' times costs a few stats, where reading
        // 30,000 names of public/movies on every no-op would double it.
        let mut unfinished = false;
        if !opts.dry_run {
            let killed = self.state.unfinished_build();
            let before = self.state.load_dir_stamps();
            let now = self.dir_stamps();
            let changed: std::collections::BTreeSet<PathBuf> = now
                .iter()
                .filter(|(d, stamp)| killed || before.get(*d) != Some(stamp))
                .map(|(d, _)| d.clone())
                .collect();
            unfinished = killed || before != now;
            if killed || !changed.is_empty() {
                self.remove_temporaries_in(&changed, false)
                    .map_err(BuildError::Io)?;
            }
        }

        observer.event(&BuildEvent::Started { total: order.len() });
        let total = order.len();
        let mut done: BTreeMap<usize, Outcome> = BTreeMap::new();
        let mut records: BTreeMap<usize, TargetRecord> = BTreeMap::new();
        let mut results = Vec::new();
        let mut running = 0usize;
        // Running targets that wait for another's turn (their jobs are lent).
        let mut waiting_targets = 0usize;
        let mut stop = false;
        let (tx, rx) = mpsc::channel::<Finished>();
        // Targets whose head start was started, or that have none to take.
        let mut head_starts: std::collections::BTreeSet<usize> = Default::default();
        // Set at the first failure without --keep-going: a target whose
        // thread was started but has not begun is then not run.
        let stopping = AtomicBool::new(false);

        // Each running target has a thread of its own (at most `jobs`), and
        // stages spread their data-parallel work over rayon's global pool.
        // Targets must not run *on* pool threads: a stage waiting for work
        // another target shares (the catalog part, the loaded movies.json)
        // blocks its thread, and a pool thread blocked inside a parallel
        // loop may have picked up the very target it waits for.
        let spawn_error: std::sync::Mutex<Option<std::io::Error>> = Default::default();
        // A target's dependencies that this build builds.
        let deps_in_build = |target: &Target| -> Vec<usize> {
            target
                .deps
                .iter()
                .copied()
                .filter(|d| order.contains(d))
                .collect()
        };
        std::thread::scope(|scope| {
            let mut pending: Vec<usize> = order.clone();
            loop {
                let cancelled = self.cancelled.load(Ordering::Relaxed);
                // Start (or settle) everything whose dependencies are done,
                // up to `jobs` running at once.
                let mut i = 0;
                let mut waiting = Vec::new();
                while i < pending.len() {
                    let t = pending[i];
                    let target = &self.graph.targets[t];
                    let deps_in_build = deps_in_build(target);
                    if !deps_in_build.iter().all(|d| done.contains_key(d)) {
                        // Not ready: a spare job may still take its head
                        // start, once every ready target has one.
                        if !head_starts.contains(&t) {
                            waiting.push(t);
                        }
                        i += 1;
                        continue;
                    }
                    let must_settle = stop
                        || cancelled
                        || deps_in_build.iter().any(|d| {
                            matches!(
                                done[d],
                                Outcome::Failed { .. } | Outcome::Skipped { .. } | Outcome::NotRun
                            )
                        });
                    if running.saturating_sub(waiting_targets) >= jobs && !must_settle {
                        i += 1;
                        continue;
                    }
                    pending.remove(i);
                    // Say what really happened upstream: a dependency that
                    // failed (or was skipped for a failure further up) skips
                    // this one; one that was stopped stops this one too.
                    let failed = deps_in_build.iter().find_map(|d| match &done[d] {
                        Outcome::Failed { .. } => Some(self.graph.targets[*d].name.clone()),
                        Outcome::Skipped { because } => Some(because.clone()),
                        _ => None,
                    });
                    let dep_stopped = deps_in_build
                        .iter()
                        .any(|d| matches!(done[d], Outcome::NotRun));
                    let settled = if let Some(because) = failed {
                        Some(Outcome::Skipped { because })
                    } else if stop || cancelled || dep_stopped {
                        Some(Outcome::NotRun)
                    } else {
                        None
                    };
                    if let Some(outcome) = settled {
                        let result = TargetResult::new(&target.name, outcome.clone());
                        done.insert(t, outcome);
                        observer.event(&BuildEvent::TargetFinished {
                            result: result.clone(),
                            done: done.len(),
                            total,
                        });
                        results.push(result);
                        continue;
                    }
                    let dep_would_build: Vec<String> = deps_in_build
                        .iter()
                        .filter(|d| matches!(done[d], Outcome::WouldBuild))
                        .map(|&d| self.graph.targets[d].name.clone())
                        .collect();
                    let tx = tx.clone();
                    let settings = &settings;
                    let old_lock = old_lock.as_ref();
                    let stopping = &stopping;
                    let spawned = std::thread::Builder::new()
                        .name(format!("pipe-target-{t}"))
                        .spawn_scoped(scope, move || {
                            if stopping.load(Ordering::SeqCst)
                                || self.cancelled.load(Ordering::SeqCst)
                            {
                                let result = TargetResult::new(&target.name, Outcome::NotRun);
                                let _ = tx.send(Finished::Target(t, Box::new((result, None))));
                                return;
                            }
                            let waits = tx.clone();
                            let on_wait = move |w: bool| {
                                let _ = waits.send(Finished::Waiting(w));
                            };
                            let (result, record) = self.run_target(
                                target,
                                opts,
                                settings,
                                old_lock,
                                dep_would_build,
                                observer,
                                &on_wait,
                            );
                            if matches!(result.outcome, Outcome::Failed { .. }) && !opts.keep_going
                            {
                                stopping.store(true, Ordering::SeqCst);
                            }
                            let _ = tx.send(Finished::Target(t, Box::new((result, record))));
                        });
                    match spawned {
                        Ok(_) => running += 1,
                        Err(e) => {
                            // Out of threads: stop starting targets, and
                            // report it once the running ones finish.
                            stop = true;
                            let outcome = Outcome::NotRun;
                            done.insert(t, outcome.clone());
                            results.push(TargetResult::new(&target.name, outcome));
                            if let Ok(mut slot) = spawn_error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                }
                // Spare jobs: head starts of targets still waiting on their
                // dependencies (see [`Executor::head_start_readiness`]).
                for t in waiting {
                    if running.saturating_sub(waiting_targets) >= jobs
                        || stop
                        || cancelled
                        || opts.dry_run
                    {
                        break;
                    }
                    let target = &self.graph.targets[t];
                    let deps_in_build = deps_in_build(target);
                    match self.head_start_readiness(target, &deps_in_build, &done) {
                        HeadStart::Ready(inputs) => {
                            head_starts.insert(t);
                            let tx = tx.clone();
                            let settings = &settings;
                            let spawned = std::thread::Builder::new()
                                .name(format!("pipe-head-start-{t}"))
                                .spawn_scoped(scope, move || {
                                    self.head_start(target, inputs, settings);
                                    let _ = tx.send(Finished::HeadStart);
                                });
                            if spawned.is_ok() {
                                running += 1;
                            }
                        }
                        HeadStart::Never => {
                            head_starts.insert(t);
                        }
                        HeadStart::NotYet => {}
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok(finished) = rx.recv() else {
                    break;
                };
                let (t, ended) = match finished {
                    Finished::Target(t, ended) => (t, ended),
                    Finished::HeadStart => {
                        running -= 1;
                        continue;
                    }
                    Finished::Waiting(w) => {
                        // A target that stops waiting takes its job back
                        // (over `jobs` for as long as the lent one runs).
                        if w {
                            waiting_targets += 1;
                        } else {
                            waiting_targets = waiting_targets.saturating_sub(1);
                        }
                        continue;
                    }
                };
                running -= 1;
                let (result, record) = *ended;
                if matches!(result.outcome, Outcome::Failed { .. }) && !opts.keep_going {
                    stop = true;
                }
                if let Some(r) = record {
                    records.insert(t, r);
                }
                done.insert(t, result.outcome.clone());
                observer.event(&BuildEvent::TargetFinished {
                    result: result.clone(),
                    done: done.len(),
                    total,
                });
                results.push(result);
            }
        });
        self.save_cache();
        if let Some(e) = spawn_error.into_inner().ok().flatten() {
            return Err(BuildError::Io(e));
        }
        // Every stage has ended (its temporaries renamed or removed): a build
        // that did work also sweeps what earlier ones left, and says it
        // finished.
        let worked = results.iter().any(|r| {
            matches!(
                r.outcome,
                Outcome::Built { .. } | Outcome::Downloaded { .. } | Outcome::Failed { .. }
            )
        });
        if worked && !opts.dry_run {
            // Uploads stream from temporaries of their own: let them end
            // before the sweep.
            if let Some(remote) = &self.remote {
                remote.finish_uploads();
            }
            self.remove_temporaries(false).map_err(BuildError::Io)?;
        }

        // Graph order, whatever the order of completion: reports and
        // --json output are stable.
        results.sort_by_key(|r| {
            order
                .iter()
                .position(|&t| self.graph.targets[t].name == r.name)
        });

        // pipe.lock: every target of the graph that has a record.
        let mut lock_mismatch: Vec<String> = results
            .iter()
            .filter(|r| r.lock_mismatch)
            .map(|r| match &r.outcome {
                Outcome::Failed { error } => format!("{}: {error}", r.name),
                _ => r.name.clone(),
            })
            .collect();
        let mut lock_written = false;
        if !opts.dry_run {
            let mut new_lock = old_lock.clone().unwrap_or(LockFile {
                version: 1,
                targets: BTreeMap::new(),
            });
            new_lock.version = 1;
            new_lock
                .targets
                .retain(|name, _| self.graph.get(name).is_some());
            for &t in &order {
                let target = &self.graph.targets[t];
                let record = records.remove(&t).or_else(|| self.state.load(&target.name));
                if let Some(record) = record {
                    if matches!(
                        done.get(&t),
                        Some(
                            Outcome::UpToDate | Outcome::Built { .. } | Outcome::Downloaded { .. }
                        )
                    ) {
                        new_lock
                            .targets
                            .insert(target.name.clone(), lockfile::entry(target, &record));
                    }
                }
            }
            if old_lock.as_ref() != Some(&new_lock) {
                if opts.locked {
                    lock_mismatch.extend(lockfile::diff(
                        old_lock.as_ref().unwrap_or(&LockFile::default()),
                        &new_lock,
                    ));
                    if lock_mismatch.is_empty() {
                        lock_mismatch.push("pipe.lock would change".into());
                    }
                } else if results
                    .iter()
                    .all(|r| !matches!(r.outcome, Outcome::NotRun))
                    || old_lock.is_none()
                {
                    new_lock.save(&self.manifest.root).map_err(BuildError::Io)?;
                    lock_written = true;
                }
            }
        }
        let published = match &opts.publish_model {
            Some(model) if !opts.dry_run => self.publish(model, &done).map_err(BuildError::Io)?,
            _ => None,
        };
        // Last, once pipe.lock (beside pipeline.toml) and the published
        // copy are written too: the directories as this build leaves them,
        // and that it finished.
        if unfinished || worked || lock_written || published.is_some() {
            self.state
                .save_dir_stamps(&self.dir_stamps())
                .map_err(BuildError::Io)?;
        }
        if unfinished || self.building.load(Ordering::SeqCst) {
            self.state.finish_build().map_err(BuildError::Io)?;
        }
        let inputs_hashed = self.cache.lock().map(|c| c.files_hashed()).unwrap_or(0);
        Ok(BuildReport {
            results,
            lock_mismatch,
            lock_written,
            published,
            inputs_hashed,
            millis: start.elapsed().as_millis() as u64,
            remote: self.remote.as_ref().map(|r| r.summary()),
        })
    }

    /// `-m MODEL`: publish `model`'s database at the default's published
    /// path, if its target succeeded and the model is not the default.
    /// Remembered in `.pipe/` so that the default's target says why it
    /// rebuilds ([`Reason::PublishedOther`]).
    fn publish(
        &self,
        model: &str,
        done: &BTreeMap<usize, Outcome>,
    ) -> std::io::Result<Option<(String, PathBuf)>> {
        let root = &self.manifest.root;
        for (&t, outcome) in done {
            let target = &self.graph.targets[t];
            let TargetSpec::MoviesDb(spec) = &target.spec else {
                continue;
            };
            if spec.model.id != model
                || spec.publish.is_some()
                || !matches!(
                    outcome,
                    Outcome::UpToDate | Outcome::Built { .. } | Outcome::Downloaded { .. }
                )
            {
                continue;
            }
            // The default model's target of the same movies-db declaration.
            let Some(dest) = self.graph.targets.iter().find_map(|o| match &o.spec {
                TargetSpec::MoviesDb(d) if o.base == target.base => d.publish.clone(),
                _ => None,
            }) else {
                continue;
            };
            let src = root.join(&spec.db_path);
            let same_file = |a: &Path, b: &Path| {
                use std::os::unix::fs::MetadataExt;
                match (std::fs::metadata(a), std::fs::metadata(b)) {
                    (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                    _ => false,
                }
            };
            if !same_file(&src, &root.join(&dest)) {
                crate::artifact::link_or_copy_atomic(&src, &root.join(&dest))?;
            }
            self.state.save_published(&dest, Some(model))?;
            return Ok(Some((target.name.clone(), dest)));
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_target(
        &self,
        target: &Target,
        opts: &BuildOptions,
        settings: &BuildSettings,
        old_lock: Option<&LockFile>,
        dep_would_build: Vec<String>,
        observer: &dyn Observer,
        on_wait: &(dyn Fn(bool) + Sync),
    ) -> (TargetResult, Option<TargetRecord>) {
        let start = Instant::now();
        let mut result = TargetResult::new(&target.name, Outcome::UpToDate);
        let fail = |mut result: TargetResult, error: String| {
            let _ = self.state.save_failure(&target.name, &error);
            result.outcome = Outcome::Failed { error };
            result.millis = start.elapsed().as_millis() as u64;
            (result, None)
        };
        let mut assessed = match self.assess(target) {
            Ok(a) => a,
            Err(e) => return fail(result, format!("cannot read the inputs: {e}")),
        };
        result.reasons = std::mem::take(&mut assessed.reasons);
        if opts.dry_run {
            result.reasons.extend(
                dep_would_build
                    .into_iter()
                    .map(|target| Reason::Dependency { target }),
            );
            if !result.reasons.is_empty() {
                if let Some(r) = self.pending_records(target) {
                    result.stats.insert("pending".into(), r.to_string());
                    result.reasons.push(r);
                }
            }
            result.outcome = if result.reasons.is_empty() {
                Outcome::UpToDate
            } else {
                Outcome::WouldBuild
            };
            return (result, None);
        }
        if result.reasons.is_empty() {
            // Racy outputs may have been verified and refreshed: keep that.
            if let Some(rec) = assessed.record.as_ref().filter(|r| r.refreshed()) {
                let _ = self.state.save(&target.name, rec);
            }
            result.millis = start.elapsed().as_millis() as u64;
            if let Some(rec) = &assessed.record {
                // What the outputs in place were built with: --strict fails
                // on a data-losing warning whether or not it rebuilds.
                result.details = rec.warnings.clone();
                result.warnings = rec.warnings.iter().map(|w| w.detail.clone()).collect();
                if settings.strict {
                    if let Some(w) = rec.warnings.iter().find(|w| w.strict) {
                        let flag = if opts.locked { "--locked" } else { "--strict" };
                        result.outcome = Outcome::Failed {
                            error: format!(
                                "{flag}: the outputs in place were built with a warning that loses data: {}. Fix: {}; then run `pipe build`",
                                w.detail, w.fix
                            ),
                        };
                        return (result, None);
                    }
                }
            }
            return (result, assessed.record);
        }
        if !assessed.missing.is_empty() {
            let list: Vec<String> = assessed
                .missing
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return fail(
                result,
                format!(
                    "missing input: {} (declared in pipeline.toml; create it or fix the path)",
                    list.join(", ")
                ),
            );
        }
        if opts.locked {
            if let Some(entry) = old_lock.and_then(|l| l.targets.get(&target.name)) {
                if entry.fingerprint != assessed.fingerprint.to_hex().as_str() {
                    let why: Vec<String> = result.reasons.iter().map(|r| r.to_string()).collect();
                    result.lock_mismatch = true;
                    return fail(result, format!("--locked: the inputs or configuration differ from pipe.lock ({}); run `pipe build` and commit pipe.lock", why.join("; ")));
                }
            }
        }
        if let Err(e) = self.start_writing() {
            return fail(
                result,
                format!("cannot write the build state in .pipe/: {e}"),
            );
        }
        observer.event(&BuildEvent::TargetStarted {
            name: target.name.clone(),
            reasons: result.reasons.clone(),
        });
        let previous = assessed
            .record
            .as_ref()
            .map(|r| r.previous_outputs(&self.manifest.root, &assessed.checks))
            .unwrap_or_default();
        // Another machine may have built this very fingerprint.
        let installed = match &self.remote {
            Some(remote) => {
                match remote.fetch(
                    target,
                    &assessed.fingerprint,
                    &self.manifest.root,
                    &previous,
                ) {
                    Ok(i) => i,
                    Err(e) => return fail(result, e),
                }
            }
            None => None,
        };
        let sink = TargetSink {
            name: &target.name,
            observer,
            warnings: Mutex::new(Vec::new()),
            on_wait,
        };
        let ctx = StageContext {
            root: &self.manifest.root,
            target: &target.name,
            previous: &previous,
            inputs: &assessed.inputs,
            progress: &sink,
            settings,
            cancelled: &self.cancelled,
            shared_vectors: self
                .remote
                .as_deref()
                .map(|r| r as &dyn crate::embed::share::SharedVectors),
            shared_parts: self
                .remote
                .as_deref()
                .map(|r| r as &dyn crate::stage::SharedParts),
        };
        let downloaded = installed.as_ref().map(|i| i.bytes);
        let output: Result<StageOutput, StageError> = match installed {
            Some(i) => {
                for w in &i.output.warnings {
                    sink.warn(w);
                }
                Ok(i.output)
            }
            None => match &target.spec {
                TargetSpec::MovieJson(spec) => stages::movie_json::run(&ctx, spec),
                TargetSpec::MoviesDb(spec) => stages::movies_db::run(&ctx, spec),
                TargetSpec::Command(spec) => stages::command::run(&ctx, spec),
                TargetSpec::Embeddings(spec) => stages::embeddings::run(&ctx, spec),
                TargetSpec::RecordsDb(spec) => stages::records_db::run(&ctx, spec),
                TargetSpec::RecordsJson(spec) => stages::records_json::run(&ctx, spec),
            },
        };
        result.details = sink.warnings.into_inner().unwrap_or_default();
        result.warnings = result.details.iter().map(|w| w.detail.clone()).collect();
        let output = match output {
            Ok(o) => o,
            Err(e) if self.cancelled.load(Ordering::SeqCst) => {
                // Stopped (Ctrl-C), not failed: nothing to remember. What
                // the stage kept (the embeddings stage's vectors) is said.
                let said = e.to_string();
                if said != StageError::cancelled().to_string() {
                    result.stats.insert("stopped".into(), said);
                }
                result.outcome = Outcome::NotRun;
                result.millis = start.elapsed().as_millis() as u64;
                return (result, None);
            }
            Err(e) => {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message.push_str(&format!(": {s}"));
                    source = s.source();
                }
                return fail(result, message);
            }
        };
        let unwritten = output.untouched_are_unwritten.then_some(&previous);
        let outputs = match record_outputs(
            &self.manifest.root,
            &output.files,
            assessed.record.as_ref(),
            unwritten,
        ) {
            Ok(o) => o,
            Err(e) => return fail(result, format!("cannot record the outputs: {e}")),
        };
        self.seed_hashes(&outputs);
        let record = TargetRecord {
            version: crate::state::RECORD_VERSION,
            fingerprint: *assessed.fingerprint.as_bytes(),
            config: assessed.config,
            inputs: assessed
                .inputs
                .iter()
                .map(|(p, h)| {
                    (
                        p.clone(),
                        h.map(|h| h.to_hex().to_string()).unwrap_or_default(),
                    )
                })
                .collect(),
            outputs,
            millis: start.elapsed().as_millis() as u64,
            warnings: result.details.clone(),
            refreshed: false,
            files_read: 0,
        };
        if let Err(e) = self.state.save(&target.name, &record) {
            return fail(
                result,
                format!("cannot save the build state in .pipe/: {e}"),
            );
        }
        if let TargetSpec::MoviesDb(crate::stages::movies_db::MoviesDbSpec {
            publish: Some(p),
            ..
        }) = &target.spec
        {
            // Its own model's database is the published one again.
            let _ = self.state.save_published(p, None);
        }
        result.outcome = match downloaded {
            Some(bytes) => Outcome::Downloaded {
                written: output.written,
                deleted: output.deleted,
                bytes,
            },
            None => {
                if let Some(remote) = &self.remote {
                    remote.store(target, &assessed.fingerprint, &self.manifest.root, &output);
                }
                Outcome::Built {
                    written: output.written,
                    deleted: output.deleted,
                }
            }
        };
        result.stats = output.stats;
        result.millis = start.elapsed().as_millis() as u64;
        (result, Some(record))
    }

    /// Remove every file pipe built (as recorded in `.pipe/`) and forget the
    /// records. Returns the removed paths. Files pipe did not write are never
    /// touched.
    pub fn clean(&self, targets: &[usize], dry_run: bool) -> std::io::Result<Vec<PathBuf>> {
        let names: Vec<String> = if targets.len() == self.graph.targets.len() {
            self.state.recorded_targets()
        } else {
            targets
                .iter()
                .map(|&i| self.graph.targets[i].name.clone())
                .collect()
        };
        // Temporaries first, so that emptied output directories go too.
        let mut removed = self.remove_temporaries(dry_run)?;
        removed.extend(self.remove_outputs(&names, dry_run)?);
        if !dry_run {
            let _ = self.state.finish_build();
        }
        Ok(removed)
    }

    /// Remove the outputs of targets that no longer exist in the graph (a
    /// model file was removed), and forget them.
    pub fn prune(&self, names: &[String]) -> std::io::Result<Vec<PathBuf>> {
        let orphans: Vec<String> = names
            .iter()
            .filter(|n| self.graph.get(n).is_none())
            .cloned()
            .collect();
        self.remove_outputs(&orphans, false)
    }

    fn remove_outputs(&self, names: &[String], dry_run: bool) -> std::io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for name in names {
            let Some(record) = self.state.load(name) else {
                continue;
            };
            for o in &record.outputs {
                let abs = self.manifest.root.join(&o.path);
                if abs.exists() {
                    if !dry_run {
                        std::fs::remove_file(&abs)?;
                        remove_empty_parents(&self.manifest.root, &abs);
                    }
                    removed.push(o.path.clone());
                }
                // The older copy kept for the next build to free just
                // before it writes (see `stages::recycle`) goes with it.
                if !dry_run {
                    crate::stages::recycle::release(&self.manifest.root, &o.path);
                }
            }
            if !dry_run {
                self.state.remove(name);
            }
        }
        Ok(removed)
    }
}

fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    blake3::Hash::from_bytes(*bytes).to_hex().to_string()
}

fn config_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Reason> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| Reason::Config {
            key: k.clone(),
            old: old.get(k).cloned(),
            new: new.get(k).cloned(),
        })
        .collect()
}

/// A build that could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A target name on the command line does not exist.
    #[error(transparent)]
    UnknownTarget(crate::graph::UnknownTarget),
    /// `--locked` without a pipe.lock.
    #[error("--locked: there is no pipe.lock; run `pipe build` once and commit pipe.lock")]
    NoLock,
    /// I/O on pipe's own files.
    #[error("{0}")]
    Io(std::io::Error),
    /// `-m MODEL` (or the admin page's model choice) names a quantized
    /// model, whose database the site's float queries cannot search.
    #[error("{0}")]
    QuantizedPublish(String),
}

/// Why `model`'s database cannot be published where the default's is
/// (`pipe build -m MODEL`, the admin page's model choice): a quantized
/// model, refused as a quantized default is, since the site's search
/// sends float vectors that an int8 or bit table refuses. `None`: it can.
pub fn publish_refusal(manifest: &Manifest, graph: &Graph, model: &str) -> Option<String> {
    let m = manifest.models.iter().find(|m| m.id == model)?;
    let q = m.quantization.as_ref()?;
    let dest = graph
        .targets
        .iter()
        .find_map(|t| match &t.spec {
            TargetSpec::MoviesDb(d) => d.publish.clone(),
            _ => None,
        })
        .map_or_else(
            || "the default's path".to_string(),
            |p| p.display().to_string(),
        );
    let float = manifest
        .models
        .iter()
        .find(|f| f.quantization.is_none() && f.embeddings == m.embeddings)
        .map_or_else(
            || "a model without `quantization`".to_string(),
            |f| format!("`-m {}` (the float model it quantizes)", f.id),
        );
    Some(format!(
        "model {model} is quantized ({}), so its database cannot be published at {dest}: the site's \
         search sends float vectors, which an int8 or bit table refuses (a quantized model cannot \
         be the default for the same reason). Use {float}, or build its own database without \
         publishing it: pipe build movies-db@{model}",
        q.kind
    ))
}
