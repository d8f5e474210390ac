//! The contract between the executor and a stage: what a stage is given
//! ([`StageContext`]) and what it reports back ([`StageOutput`]).
//!
//! Stages never decide *whether* to run (the executor does, from
//! fingerprints); they decide *what to write*: a stage may skip rewriting an
//! output whose bytes would not change, which is how one edited movie
//! rewrites only the JSON files whose content changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A blake3 digest, shown as lowercase hex.
pub type Hash = blake3::Hash;

pub use crate::warning::Warning;

/// What the previous successful build of a target wrote, as the executor
/// recorded it (project-relative path → record).
#[derive(Clone, Debug, Default)]
pub struct PreviousOutputs {
    /// Every output file of the last successful build of this target.
    pub files: BTreeMap<PathBuf, PreviousFile>,
}

/// One output file as recorded after the last successful build.
#[derive(Clone, Debug)]
pub struct PreviousFile {
    /// Content hash of the file as written.
    pub hash: Hash,
    /// Whether the file on disk still has the stat recorded after writing
    /// (size, mtime, inode): if so its bytes are still `hash` and it need not
    /// be read or rewritten when the new content hashes the same.
    pub intact: bool,
    /// A file with the recorded stat, but recorded too soon after it was
    /// written for the stat to prove its bytes (see
    /// [`crate::fingerprint::FileStat::settled`]), and not read yet because
    /// its target is rebuilt anyway: the file to read (absolute) if the new
    /// content hashes as `hash`.
    pub unverified: Option<PathBuf>,
}

impl PreviousFile {
    /// Whether the file still holds exactly `hash`: known from its stat, or,
    /// for an unverified file, read now.
    pub fn holds(&self, hash: &Hash) -> bool {
        &self.hash == hash
            && (self.intact
                || self
                    .unverified
                    .as_ref()
                    .is_some_and(|p| crate::fingerprint::hash_file(p).is_ok_and(|h| &h == hash)))
    }
}

impl PreviousOutputs {
    /// True when `path` (project-relative) was written by the last build with
    /// exactly `hash` as content and has not been touched since.
    pub fn is_unchanged(&self, path: &Path, hash: &Hash) -> bool {
        self.files.get(path).is_some_and(|f| f.holds(hash))
    }
}

/// Receives progress from a running stage.
pub trait ProgressSink: Send + Sync {
    /// `current` of `total` units done; `message` says what is being done.
    fn progress(&self, current: u64, total: u64, message: &str);
    /// A warning the user should see (missing embeddings, vectors for unknown
    /// movies, …). Also recorded in the stage's output.
    fn warn(&self, warning: &Warning);
    /// The stage starts (`true`) or stops (`false`) waiting for something
    /// that is not its own work (another target's turn at a model): the
    /// executor may meanwhile give its job to another target.
    fn waiting(&self, _waiting: bool) {}
}

/// A progress sink that discards everything (for tests and library use).
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn progress(&self, _current: u64, _total: u64, _message: &str) {}
    fn warn(&self, _warning: &Warning) {}
}

/// Settings of the whole build that stages may need.
#[derive(Clone, Debug)]
pub struct BuildSettings {
    /// `--strict` (and `--locked`): warnings that would lose data are errors
    /// (e.g. a missing embeddings file).
    pub strict: bool,
    /// SOURCE_DATE_EPOCH if set: the timestamp for every stored time that is
    /// not taken from the inputs.
    pub source_date_epoch: Option<i64>,
}

/// Everything a stage is given to do its work.
pub struct StageContext<'a> {
    /// Absolute path of the project root; every path below is relative to it.
    pub root: &'a Path,
    /// The target's name (`movies-db@potion`), for messages.
    pub target: &'a str,
    /// What this target wrote last time.
    pub previous: &'a PreviousOutputs,
    /// The content hashes of the target's inputs, as the executor took them
    /// for its fingerprint (`None`: the file does not exist). Stages that
    /// key caches by input content use these instead of hashing again.
    pub inputs: &'a crate::fingerprint::InputHashes,
    /// Where to report progress and warnings.
    pub progress: &'a dyn ProgressSink,
    /// Build-wide settings.
    pub settings: &'a BuildSettings,
    /// Set when the build is being cancelled (Ctrl-C, a failed sibling
    /// without --keep-going): long stages should check it and stop early.
    pub cancelled: &'a Arc<AtomicBool>,
    /// Vectors shared between machines (the remote cache), when one is
    /// used: asked before a text is sent to a provider.
    pub shared_vectors: Option<&'a dyn crate::embed::share::SharedVectors>,
    /// Files shared between machines by key (the remote cache): the
    /// database stages' cached parts.
    pub shared_parts: Option<&'a dyn SharedParts>,
}

/// A store of files other machines made, by a key over everything their
/// content depends on (the database stages' part cache keys).
pub trait SharedParts: Send + Sync {
    /// Install the file of `key` at `dest` (checked against the digests
    /// the store lists, written to a temporary and renamed); whether it was.
    /// Never fails: a miss or a problem (reported by the store) is `false`.
    fn fetch_part(&self, key: &str, dest: &Path) -> bool;

    /// Offer the file at `path`, just made, under `key`. May return before
    /// the upload is done; never fails the build.
    fn offer_part(&self, key: &str, path: &Path);
}

impl StageContext<'_> {
    /// Report `warning` to the progress sink now and keep it in `out`.
    pub fn warn(&self, out: &mut StageOutput, warning: Warning) {
        self.progress.warn(&warning);
        out.warnings.push(warning);
    }

    /// Absolute path of a project-relative path.
    pub fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// The content hash of a project-relative input: the executor's, or read
    /// from the file if the path is not one of the target's declared inputs.
    /// `None` if the file does not exist.
    pub fn input_hash(&self, rel: &Path) -> std::io::Result<Option<Hash>> {
        match self.inputs.get(rel) {
            Some(known) => Ok(*known),
            None => match crate::fingerprint::hash_file(&self.abs(rel)) {
                Ok(h) => Ok(Some(h)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Whether the build is being cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// One file a stage owns after a successful run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    /// Project-relative path.
    pub path: PathBuf,
    /// blake3 of the file's full content.
    pub hash: Hash,
}

/// What a stage reports after a successful run.
#[derive(Clone, Debug, Default)]
pub struct StageOutput {
    /// Every file the target now owns (written this run or left unchanged).
    /// Files it owned before and no longer lists must already be deleted by
    /// the stage.
    pub files: Vec<OutputFile>,
    /// How many of `files` were actually (re)written this run.
    pub written: usize,
    /// How many previously owned files were deleted this run.
    pub deleted: usize,
    /// Warnings emitted during the run (also sent to the progress sink).
    pub warnings: Vec<Warning>,
    /// Human-readable summary figures (`movies = 285`, `vectors = 280`, …).
    pub stats: BTreeMap<String, String>,
    /// The stage promises that a file it lists with the hash the previous
    /// build recorded, and that [`PreviousOutputs`] called intact, was not
    /// written this run. The executor then keeps the file's recorded stat
    /// instead of taking it again (30,000 stat calls for the movie JSON).
    /// A stage that may rewrite identical bytes (a user command) must leave
    /// this false, or the recorded stat would no longer match the file.
    pub untouched_are_unwritten: bool,
}

/// A stage failure: a message a person can act on (it names the file, the
/// record and the fix), and optionally the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    /// What went wrong, where, and what to do about it.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StageError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        StageError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and an underlying cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StageError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, action: &str, source: std::io::Error) -> Self {
        StageError::with_source(
            format!("cannot {action} {}: {source}", path.display()),
            source,
        )
    }

    /// Cancellation requested by the executor.
    pub fn cancelled() -> Self {
        StageError::new("cancelled")
    }
}
