//! Sharing built targets between machines through a remote cache that
//! speaks the Bazel HTTP cache protocol (bazel-remote, or nginx with WebDAV
//! `PUT`).
//!
//! A target's outputs are a function of its fingerprint (same inputs → same
//! bytes), so the fingerprint is the key: the action cache (`/ac/`) holds,
//! per fingerprint, a JSON entry that lists the files with their blake3 and
//! the blobs that hold them; the blobs (`/cas/`, by sha256) are a gzip pack
//! of the small files and one blob per large file ([`pack`]). A machine
//! whose target is stale asks for the entry before building; on a hit it
//! downloads, checks every byte against the entry and installs the files the
//! way a stage does (temporary file, rename), and the executor records the
//! target as if it had built it. After a local build, the outputs are
//! uploaded: blobs first, the entry last, so a reader never sees an entry
//! whose blobs are not there yet.
//!
//! A cache that is down, slow or refuses us (401/403/5xx) is reported once
//! and switched off for the rest of the build, which goes on locally; a
//! corrupt, truncated or missing blob is a miss that is reported, and the
//! target is built. `required` makes either an error. A failed upload never
//! fails a build.

pub mod client;
pub mod pack;
pub mod parts;
pub mod vectors;

use crate::artifact;
use crate::graph::Target;
use crate::stage::{OutputFile, PreviousOutputs, StageOutput};
use client::{Client, ClientError, Store};
use pack::PackedFile;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The format of action-cache entries; part of every key.
const ENTRY_FORMAT: &str = "pipe-ac-1";

/// The largest action-cache entry read (30,000 files list in ~5 MB).
const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// The largest blob read.
const MAX_BLOB_BYTES: u64 = 16 << 30;

/// How the cache is used in this build.
#[derive(Clone, Debug, Default)]
pub struct RemoteOptions {
    /// The cache's base URL (may carry credentials; never shown with them).
    pub url: String,
    /// Upload what is built locally (off for untrusted builds such as CI on
    /// pull requests).
    pub upload: bool,
    /// A cache that cannot be used is an error, not a warning.
    pub required: bool,
}

/// What the cache did in one build, for the report.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSummary {
    /// The cache's URL, without credentials.
    pub url: String,
    /// Whether uploads were on.
    pub upload: bool,
    /// Targets installed from the cache.
    pub downloaded: usize,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Targets uploaded.
    pub uploaded: usize,
    /// Bytes uploaded (blobs the server already had are not sent again).
    pub uploaded_bytes: u64,
    /// Per-record vectors taken from the cache instead of a provider.
    pub vectors_downloaded: u64,
    /// Vectors the cache lacked that this build uploaded.
    pub vectors_uploaded: u64,
    /// Database parts (the database stages' part cache) taken from the
    /// cache instead of built.
    pub parts_downloaded: u64,
    /// Database parts uploaded.
    pub parts_uploaded: u64,
    /// What went wrong (the cache switched off, an unusable entry, a failed
    /// upload): each is a warning to show.
    pub problems: Vec<String>,
}

/// A file listed by an action-cache entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct EntryFile {
    path: String,
    size: u64,
    blake3: String,
    /// Index into [`Entry::blobs`].
    blob: usize,
}

/// A blob listed by an action-cache entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct EntryBlob {
    sha256: String,
    size: u64,
    /// `pack` (gzip of several files) or `file` (one file's bytes).
    kind: String,
}

/// An action-cache entry: what a target's build produced.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    format: String,
    target: String,
    fingerprint: String,
    files: Vec<EntryFile>,
    blobs: Vec<EntryBlob>,
    #[serde(default)]
    warnings: Vec<crate::warning::Warning>,
    #[serde(default)]
    stats: BTreeMap<String, String>,
}

/// A connection to a remote cache for the length of a build.
pub struct RemoteCache {
    client: Client,
    options: RemoteOptions,
    /// Set after the first failure that says the cache is not usable.
    off: AtomicBool,
    summary: Mutex<RemoteSummary>,
    /// Uploads still running (see [`RemoteCache::store`]).
    uploads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The vector shards fetched so far ([`vectors`]).
    fetched: Mutex<vectors::Fetched>,
    /// This cache itself, once shared ([`RemoteCache::into_shared`]), for
    /// uploads that outlive the call that starts them.
    me: std::sync::Weak<RemoteCache>,
}

/// The target installed from the cache.
pub struct Installed {
    /// What a stage would have reported.
    pub output: StageOutput,
    /// Bytes downloaded.
    pub bytes: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The action-cache key of a fingerprint: Bazel's keys are sha256 hex.
fn entry_key(fingerprint: &blake3::Hash) -> String {
    sha256_hex(
        format!(
            "{ENTRY_FORMAT} {} {}",
            env!("CARGO_PKG_VERSION"),
            fingerprint.to_hex()
        )
        .as_bytes(),
    )
}

/// Whether `path` is a plain relative path inside the project that one of
/// the target's outputs covers (an entry from the server names only such).
fn owned_by(target: &Target, path: &str) -> bool {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain && target.outputs.iter().any(|o| o.covers(p))
}

impl RemoteCache {
    /// Connect (lazily: nothing is sent until the first target asks).
    pub fn new(options: RemoteOptions) -> Result<RemoteCache, String> {
        let client = Client::new(&options.url)?;
        let summary = RemoteSummary {
            url: client.base().to_string(),
            upload: options.upload,
            ..Default::default()
        };
        Ok(RemoteCache {
            client,
            options,
            off: AtomicBool::new(false),
            summary: Mutex::new(summary),
            uploads: Mutex::new(Vec::new()),
            fetched: Mutex::new(vectors::Fetched::new()),
            me: std::sync::Weak::new(),
        })
    }

    /// The cache, shared between the executor's threads and the stages.
    pub fn into_shared(mut self) -> std::sync::Arc<RemoteCache> {
        std::sync::Arc::new_cyclic(|me| {
            self.me = me.clone();
            self
        })
    }

    /// The cache's URL without credentials.
    pub fn url(&self) -> &str {
        self.client.base()
    }

    /// What happened, once every upload started so far has finished.
    pub fn summary(&self) -> RemoteSummary {
        self.finish_uploads();
        self.summary.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait for the uploads in flight.
    pub fn finish_uploads(&self) {
        let pending = self
            .uploads
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default();
        for handle in pending {
            let _ = handle.join();
        }
    }

    fn problem(&self, message: String) {
        if let Ok(mut s) = self.summary.lock() {
            s.problems.push(message);
        }
    }

    /// The cache failed as a whole: say so once, and stop using it.
    fn switch_off(&self, e: &ClientError) -> String {
        let message = format!(
            "remote cache {} cannot be used ({e}); {}",
            self.url(),
            if self.options.required {
                "--remote-cache-required makes this an error"
            } else {
                "building locally"
            }
        );
        if !self.off.swap(true, Ordering::SeqCst) {
            self.problem(message.clone());
        }
        message
    }

    /// Whether the cache has an entry for the target's fingerprint (for
    /// `pipe explain`). `Err` when the cache cannot be asked.
    pub fn has_entry(&self, fingerprint: &blake3::Hash) -> Result<bool, String> {
        self.client
            .exists(Store::ActionCache, &entry_key(fingerprint))
            .map_err(|e| e.to_string())
    }

    /// Install `target` from the cache if it has its fingerprint. `Ok(None)`
    /// is a miss (reported in the summary when the entry was there but
    /// unusable); `Err` means the cache is unusable and `required` is set.
    pub fn fetch(
        &self,
        target: &Target,
        fingerprint: &blake3::Hash,
        root: &Path,
        previous: &PreviousOutputs,
    ) -> Result<Option<Installed>, String> {
        if self.off.load(Ordering::SeqCst) {
            return if self.options.required {
                Err(format!("remote cache {} is not usable", self.url()))
            } else {
                Ok(None)
            };
        }
        let unusable = |e: ClientError| {
            let message = self.switch_off(&e);
            if self.options.required {
                Err(message)
            } else {
                Ok(None)
            }
        };
        let raw =
            match self
                .client
                .get(Store::ActionCache, &entry_key(fingerprint), MAX_ENTRY_BYTES)
            {
                Ok(Some(raw)) => raw,
                Ok(None) => return Ok(None),
                Err(e) => return unusable(e),
            };
        let miss = |why: String| {
            self.problem(format!(
                "remote cache entry for {} is unusable ({why}); built locally",
                target.name
            ));
            Ok(None)
        };
        let entry: Entry = match serde_json::from_slice(&raw) {
            Ok(e) => e,
            Err(e) => return miss(format!("not a pipe entry: {e}")),
        };
        if let Err(why) = validate(&entry, target, fingerprint) {
            return miss(why);
        }
        let files: Vec<PackedFile> = entry
            .files
            .iter()
            .map(|f| PackedFile {
                path: f.path.clone(),
                size: f.size,
                blake3: blake3::Hash::from_hex(&f.blake3)
                    .map(|h| *h.as_bytes())
                    .unwrap_or_default(),
            })
            .collect();
        // A file already on disk with the listed content is left alone.
        let needs_write = |f: &PackedFile| {
            !previous.is_unchanged(Path::new(&f.path), &blake3::Hash::from_bytes(f.blake3))
        };
        let mut bytes = 0u64;
        let mut staged = Vec::new();
        for (i, blob) in entry.blobs.iter().enumerate() {
            let members: Vec<PackedFile> = entry
                .files
                .iter()
                .zip(&files)
                .filter(|(e, _)| e.blob == i)
                .map(|(_, f)| f.clone())
                .collect();
            if !members.iter().any(&needs_write) {
                continue;
            }
            // Streamed to a temporary file and checked as it arrives: a
            // database blob may be larger than memory. A file blob lands
            // beside the first file it becomes; a pack in the state
            // directory, to be read back.
            let writing: Vec<&PackedFile> = members.iter().filter(|f| needs_write(f)).collect();
            let temp = match (blob.kind.as_str(), writing.first()) {
                ("file", Some(first)) => artifact::temp_beside(&root.join(&first.path)),
                _ => artifact::temp_beside(&transfer_path(root)),
            };
            let temp = match temp {
                Ok(t) => t,
                Err(e) => return miss(format!("cannot write the download: {e}")),
            };
            let mut sink = pack::Hashing::new(std::io::BufWriter::with_capacity(256 << 10, temp));
            match self
                .client
                .get_into(Store::Cas, &blob.sha256, MAX_BLOB_BYTES, &mut sink)
            {
                Ok(Some(_)) => {}
                Ok(None) => return miss(format!("blob {} is not on the server", blob.sha256)),
                Err(Err(e)) => return unusable(e),
                Err(Ok(e)) => return miss(format!("cannot write the download: {e}")),
            }
            let (writer, sha, digest, len) = sink.finish();
            let temp = match writer.into_inner() {
                Ok(t) => t,
                Err(e) => return miss(format!("cannot write the download: {}", e.error())),
            };
            bytes += len;
            if len != blob.size || sha != blob.sha256 {
                return miss(format!(
                    "blob {} is damaged or truncated ({len} bytes, {} expected)",
                    blob.sha256, blob.size
                ));
            }
            let result = match blob.kind.as_str() {
                // One blob may hold several files with the same bytes (a
                // database and its published copy).
                "file" => stage_file_blob(root, &writing, temp, len, digest),
                _ => {
                    let mut file = temp.into_file();
                    match std::io::Seek::rewind(&mut file) {
                        Ok(()) => pack::unpack(
                            root,
                            std::io::BufReader::with_capacity(256 << 10, file),
                            &members,
                            &needs_write,
                        ),
                        Err(e) => return miss(format!("cannot read the download back: {e}")),
                    }
                }
            };
            match result {
                Ok(s) => staged.extend(s),
                Err(e) => return miss(e.to_string()),
            }
        }
        // Everything checked: rename into place, then remove what the
        // previous build owned and this one does not.
        let mut written = 0;
        for s in staged {
            let dest = root.join(&s.path);
            if let Err(e) = s.temp.persist(&dest) {
                return Err(format!("cannot install {}: {}", dest.display(), e.error));
            }
            written += 1;
        }
        let listed: std::collections::HashSet<&str> =
            entry.files.iter().map(|f| f.path.as_str()).collect();
        let mut deleted = 0;
        for old in previous.files.keys() {
            if !old.to_str().is_some_and(|p| listed.contains(p)) {
                match std::fs::remove_file(root.join(old)) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot remove {}: {e}", old.display())),
                }
            }
        }
        if let Ok(mut s) = self.summary.lock() {
            s.downloaded += 1;
            s.downloaded_bytes += bytes;
        }
        let mut stats = entry.stats.clone();
        stats.insert("remote".into(), format!("downloaded {bytes} bytes"));
        Ok(Some(Installed {
            output: StageOutput {
                files: files
                    .iter()
                    .map(|f| OutputFile {
                        path: PathBuf::from(&f.path),
                        hash: blake3::Hash::from_bytes(f.blake3),
                    })
                    .collect(),
                written,
                deleted,
                warnings: entry.warnings.clone(),
                stats,
                untouched_are_unwritten: true,
            },
            bytes,
        }))
    }

    /// Upload a target built locally, on a thread of its own so that the
    /// targets that depend on it need not wait ([`RemoteCache::summary`]
    /// waits for it). Problems are reported, never raised: a failed upload
    /// does not fail a good build. pipe never writes into an output, so the
    /// files stay what the stage wrote while they are read (a later build
    /// that replaces one renames a new file over it).
    pub fn store(
        self: &std::sync::Arc<Self>,
        target: &Target,
        fingerprint: &blake3::Hash,
        root: &Path,
        output: &StageOutput,
    ) {
        if !self.options.upload || self.off.load(Ordering::SeqCst) {
            return;
        }
        let (me, target, fingerprint, root, output) = (
            self.clone(),
            target.clone(),
            *fingerprint,
            root.to_path_buf(),
            output.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("pipe-upload".into())
            .spawn(move || me.store_now(&target, &fingerprint, &root, &output));
        match spawned {
            Ok(handle) => {
                if let Ok(mut u) = self.uploads.lock() {
                    u.push(handle);
                }
            }
            Err(e) => self.problem(format!("an upload to {} could not start: {e}", self.url())),
        }
    }

    fn store_now(
        &self,
        target: &Target,
        fingerprint: &blake3::Hash,
        root: &Path,
        output: &StageOutput,
    ) {
        match self.upload(target, fingerprint, root, output) {
            Ok(bytes) => {
                if let Ok(mut s) = self.summary.lock() {
                    s.uploaded += 1;
                    s.uploaded_bytes += bytes;
                }
            }
            Err(Upload::Client(e)) => {
                self.switch_off(&e);
            }
            Err(Upload::Local(why)) => {
                self.problem(format!("{} was not uploaded: {why}", target.name));
            }
        }
    }

    fn upload(
        &self,
        target: &Target,
        fingerprint: &blake3::Hash,
        root: &Path,
        output: &StageOutput,
    ) -> Result<u64, Upload> {
        let mut files: Vec<&OutputFile> = output.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut entry = Entry {
            format: ENTRY_FORMAT.into(),
            target: target.name.clone(),
            fingerprint: fingerprint.to_hex().to_string(),
            files: Vec::new(),
            blobs: Vec::new(),
            warnings: output.warnings.clone(),
            stats: output.stats.clone(),
        };
        let mut small = Vec::new();
        let mut sent = 0u64;
        for f in files {
            let path = f
                .path
                .to_str()
                .ok_or_else(|| Upload::Local(format!("{} is not UTF-8", f.path.display())))?
                .to_string();
            let size = std::fs::metadata(root.join(&f.path))
                .map_err(|e| Upload::Local(format!("cannot read {path}: {e}")))?
                .len();
            let packed = PackedFile {
                path: path.clone(),
                blake3: *f.hash.as_bytes(),
                size,
            };
            if size >= pack::OWN_BLOB_BYTES {
                // Hashed streaming from the file, and sent streaming.
                let abs = root.join(&f.path);
                let (sha, digest) = hash_file(&abs)
                    .map_err(|e| Upload::Local(format!("cannot read {path}: {e}")))?;
                if digest != f.hash {
                    return Err(Upload::Local(format!("{path} changed after it was built")));
                }
                // Files with the same bytes (a database and its published
                // copy) share one blob, sent and fetched once.
                let blob = match entry.blobs.iter().position(|b| b.sha256 == sha) {
                    Some(i) => i,
                    None => {
                        sent += self.put_file_blob(&sha, &abs, size)?;
                        entry.blobs.push(EntryBlob {
                            sha256: sha,
                            size,
                            kind: "file".into(),
                        });
                        entry.blobs.len() - 1
                    }
                };
                entry.files.push(EntryFile {
                    path,
                    size,
                    blake3: f.hash.to_hex().to_string(),
                    blob,
                });
            } else {
                small.push(packed);
            }
        }
        if !small.is_empty() {
            // Packed into a temporary file in the state directory, not
            // memory: 30,000 JSON files, or a million records' files.
            let local = |e: std::io::Error| Upload::Local(format!("cannot pack the files: {e}"));
            let temp = artifact::temp_beside(&transfer_path(root)).map_err(local)?;
            let mut sink = pack::Hashing::new(std::io::BufWriter::with_capacity(256 << 10, temp));
            pack::pack_into(root, &small, &mut sink).map_err(local)?;
            let (writer, sha, _, len) = sink.finish();
            let temp = writer.into_inner().map_err(|e| local(e.into_error()))?;
            sent += self.put_file_blob(&sha, temp.path(), len)?;
            drop(temp);
            let index = entry.blobs.len();
            entry.blobs.push(EntryBlob {
                sha256: sha,
                size: len,
                kind: "pack".into(),
            });
            for f in small {
                entry.files.push(EntryFile {
                    blake3: blake3::Hash::from_bytes(f.blake3).to_hex().to_string(),
                    path: f.path,
                    size: f.size,
                    blob: index,
                });
            }
        }
        // Files in path order, so that an entry's bytes are a function of
        // what was built; the pack lists its members in the same order.
        entry.files.sort_by(|a, b| a.path.cmp(&b.path));
        let json = serde_json::to_vec(&entry).map_err(|e| Upload::Local(e.to_string()))?;
        self.client
            .put(Store::ActionCache, &entry_key(fingerprint), &json)
            .map_err(Upload::Client)?;
        Ok(sent + json.len() as u64)
    }

    /// PUT a file's bytes as a blob unless the server has it already; the
    /// bytes sent.
    fn put_file_blob(&self, sha: &str, path: &Path, size: u64) -> Result<u64, Upload> {
        if self
            .client
            .exists(Store::Cas, sha)
            .map_err(Upload::Client)?
        {
            return Ok(0);
        }
        let file = std::fs::File::open(path)
            .map_err(|e| Upload::Local(format!("cannot read {}: {e}", path.display())))?;
        self.client
            .put_file(Store::Cas, sha, &file)
            .map_err(Upload::Client)?;
        Ok(size)
    }
}

enum Upload {
    Client(ClientError),
    Local(String),
}

/// Where packs are staged on their way to or from the server: temporaries
/// in the state directory, named like every temporary of pipe's so that a
/// killed build's are removed by the next one.
fn transfer_path(root: &Path) -> PathBuf {
    root.join(crate::state::STATE_DIR).join("remote-transfer")
}

/// The sha256 (hex) and blake3 of a file, read once in blocks.
fn hash_file(path: &Path) -> std::io::Result<(String, blake3::Hash)> {
    let mut file = std::fs::File::open(path)?;
    let mut sink = pack::Hashing::new(std::io::sink());
    std::io::copy(&mut file, &mut sink)?;
    let (_, sha, digest, _) = sink.finish();
    Ok((sha, digest))
}

/// Stage a downloaded file blob (`temp`, `len` bytes with blake3 `digest`)
/// as the first of `writing` and copies of it as the others.
fn stage_file_blob(
    root: &Path,
    writing: &[&PackedFile],
    temp: tempfile::NamedTempFile,
    len: u64,
    digest: blake3::Hash,
) -> Result<Vec<pack::Staged>, pack::Corrupt> {
    let Some((first, rest)) = writing.split_first() else {
        return Ok(Vec::new());
    };
    pack::check_file(first, len, digest)?;
    let staged = pack::Staged {
        path: PathBuf::from(&first.path),
        temp: temp.into_temp_path(),
    };
    let mut all = Vec::with_capacity(writing.len());
    for f in rest {
        pack::check_file(f, len, digest)?;
        all.push(pack::stage_copy(root, f, &staged.temp)?);
    }
    all.insert(0, staged);
    Ok(all)
}

/// An entry is used only if it is for this target and fingerprint, names
/// only files the target owns, each once, and its blob indexes are sound.
fn validate(entry: &Entry, target: &Target, fingerprint: &blake3::Hash) -> Result<(), String> {
    if entry.format != ENTRY_FORMAT {
        return Err(format!("format {:?}, not {ENTRY_FORMAT}", entry.format));
    }
    if entry.target != target.name || entry.fingerprint != fingerprint.to_hex().as_str() {
        return Err(format!(
            "it is for {} {}, not this target's fingerprint",
            entry.target, entry.fingerprint
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &entry.files {
        if !owned_by(target, &f.path) {
            return Err(format!(
                "it names {:?}, which is not an output of {}",
                f.path, target.name
            ));
        }
        if !seen.insert(f.path.as_str()) {
            return Err(format!("it lists {} twice", f.path));
        }
        if f.blob >= entry.blobs.len() || blake3::Hash::from_hex(&f.blake3).is_err() {
            return Err(format!("its record of {} is malformed", f.path));
        }
    }
    for b in &entry.blobs {
        if b.sha256.len() != 64 || !b.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("blob name {:?} is not a sha256", b.sha256));
        }
    }
    // A pack's members are read in the entry's order: it must be the
    // path order the uploader wrote them in.
    if entry.files.windows(2).any(|w| w[0].path >= w[1].path) {
        return Err("its files are not in path order".into());
    }
    Ok(())
}

/// A problem of the remote cache (see [`RemoteSummary::problems`]) as a
/// warning, for fronts that show warnings rather than the summary.
pub fn problem_warning(problem: &str) -> crate::warning::Warning {
    crate::warning::Warning::new(
        "remote-cache",
        "the remote cache could not be fully used",
        "remote cache",
        problem,
        "nothing to do: what the cache could not give was built locally",
    )
}

/// The remote cache settings given on the command line.
#[derive(Clone, Debug, Default)]
pub struct RemoteFlags {
    /// `--remote-cache URL`.
    pub url: Option<String>,
    /// `--remote-cache-read-only`.
    pub read_only: bool,
    /// `--remote-cache-required`.
    pub required: bool,
    /// `--no-remote-cache`.
    pub disabled: bool,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Which cache to use, if any, and how: the command line first, then the
/// environment (`PIPE_REMOTE_CACHE`, `PIPE_REMOTE_CACHE_READ_ONLY`,
/// `PIPE_REMOTE_CACHE_REQUIRED`, and `PIPE_REMOTE_CACHE_UPLOAD` for the
/// trusted builds of a project whose `[cache]` says `upload = false`), then
/// pipeline.toml's `[cache]`.
pub fn resolve(
    settings: &crate::manifest::pipeline::CacheSettings,
    flags: &RemoteFlags,
) -> Option<RemoteOptions> {
    if flags.disabled {
        return None;
    }
    let url = flags
        .url
        .clone()
        .or_else(|| {
            std::env::var("PIPE_REMOTE_CACHE")
                .ok()
                .filter(|u| !u.trim().is_empty())
        })
        .or_else(|| settings.remote.clone())?;
    Some(RemoteOptions {
        url,
        upload: (settings.upload || env_flag("PIPE_REMOTE_CACHE_UPLOAD"))
            && !flags.read_only
            && !env_flag("PIPE_REMOTE_CACHE_READ_ONLY"),
        required: flags.required || env_flag("PIPE_REMOTE_CACHE_REQUIRED"),
    })
}
