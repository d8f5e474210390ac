//! What pipe remembers between builds, under `.pipe/` (gitignored): one
//! record per target (what it was built from and what it wrote), the input
//! hash cache, and the lock that keeps two pipe processes from building the
//! same project at once. Every file is written atomically.

use crate::fingerprint::{now_ns, FileStat, HashCache};
use crate::stage::{OutputFile, PreviousFile, PreviousOutputs};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the state directory at the project root.
pub const STATE_DIR: &str = ".pipe";
/// Format version of [`TargetRecord`]: a record of another version is
/// ignored (the target is rebuilt). 2: warnings are structured.
pub const RECORD_VERSION: u32 = 2;

/// One output file as recorded after a successful build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Project-relative path.
    pub path: PathBuf,
    /// Content hash.
    pub hash: [u8; 32],
    /// Stat right after it was written (or last verified).
    pub stat: FileStat,
    /// When the stat was taken (ns since the epoch), for the racy check.
    pub recorded_ns: i64,
}

/// What a target's last successful build was made from and wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRecord {
    /// Format version of this record.
    pub version: u32,
    /// The fingerprint it was built with.
    pub fingerprint: [u8; 32],
    /// The resolved configuration (for `pipe explain`).
    pub config: BTreeMap<String, String>,
    /// Input content hashes (hex; empty string: missing).
    pub inputs: BTreeMap<PathBuf, String>,
    /// Every output file.
    pub outputs: Vec<OutputRecord>,
    /// How long the build took, in milliseconds.
    pub millis: u64,
    /// Warnings the stage reported (kept so that `--strict` fails on them
    /// also when the target is not rebuilt).
    pub warnings: Vec<crate::warning::Warning>,
    /// Set in memory when racy output entries were re-verified.
    #[serde(skip)]
    pub refreshed: bool,
    /// How many files [`check_outputs`](Self::check_outputs) read (in
    /// memory only).
    #[serde(skip)]
    pub files_read: usize,
}

/// The state of one output file now, compared with its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputCheck {
    /// Present with the recorded content.
    Intact,
    /// Deleted since the build.
    Missing(PathBuf),
    /// Content changed since the build.
    Modified(PathBuf),
    /// With the recorded stat, recorded too soon after its last change for
    /// that to prove its content, and not read (see
    /// [`TargetRecord::check_outputs_for_rebuild`]).
    Unverified(PathBuf),
}

impl TargetRecord {
    /// Compare every recorded output with the file system, in parallel.
    /// Stats only, except for racy entries, which are hashed again (and
    /// refreshed in place when still intact, so they are settled next time).
    pub fn check_outputs(&mut self, root: &Path) -> Vec<OutputCheck> {
        self.check(root, true)
    }

    /// [`check_outputs`](Self::check_outputs) for a target that is rebuilt
    /// anyway: a racy entry whose file still has the recorded stat is not
    /// read but reported [`OutputCheck::Unverified`], and read only if the
    /// stage's new file hashes as the recorded one (see
    /// [`PreviousFile::holds`]). Every database an edit writes is racy at
    /// the next build (it was put in place moments before its record was
    /// taken), and reading them all again cost 0.3 s at 100,000 movies, on
    /// the critical path, to learn what the rebuild replaces anyway.
    pub fn check_outputs_for_rebuild(&mut self, root: &Path) -> Vec<OutputCheck> {
        self.check(root, false)
    }

    fn check(&mut self, root: &Path, read_racy: bool) -> Vec<OutputCheck> {
        let now = now_ns();
        // Outputs are sorted by path, so the files of one directory are
        // adjacent: stat_many stats them relative to their directory.
        let paths: Vec<&Path> = self.outputs.iter().map(|r| r.path.as_path()).collect();
        let stats = stat_many(root, &paths);
        // An entry is trusted when its file has the recorded stat, taken
        // safely after the file's last change; others are read again.
        let trusted = |rec: &OutputRecord, stat: &FileStat| {
            *stat == rec.stat && stat.settled(rec.recorded_ns)
        };
        let unread = |rec: &OutputRecord, stat: &FileStat| !read_racy && *stat == rec.stat;
        // Each file once: the published copy of the default model's
        // database is a hard link of it (one stat under two paths).
        let mut to_hash: std::collections::HashMap<FileStat, &Path> = Default::default();
        for (rec, stat) in self.outputs.iter().zip(&stats) {
            match stat {
                Some(stat) if !trusted(rec, stat) && !unread(rec, stat) => {
                    to_hash.entry(*stat).or_insert(rec.path.as_path());
                }
                _ => {}
            }
        }
        self.files_read += to_hash.len();
        let hashes: std::collections::HashMap<FileStat, Option<[u8; 32]>> = to_hash
            .into_par_iter()
            .map(|(stat, path)| {
                let hash = crate::fingerprint::hash_file(&root.join(path)).ok();
                (stat, hash.map(|h| *h.as_bytes()))
            })
            .collect();
        let checked: Vec<(OutputCheck, bool)> = self
            .outputs
            .par_iter_mut()
            .zip(stats)
            .map(|(rec, stat)| {
                let Some(stat) = stat else {
                    return (OutputCheck::Missing(rec.path.clone()), false);
                };
                if trusted(rec, &stat) {
                    return (OutputCheck::Intact, false);
                }
                if unread(rec, &stat) {
                    return (OutputCheck::Unverified(rec.path.clone()), false);
                }
                match hashes.get(&stat) {
                    Some(Some(h)) if h == &rec.hash => {
                        rec.stat = stat;
                        rec.recorded_ns = now;
                        (OutputCheck::Intact, true)
                    }
                    _ => (OutputCheck::Modified(rec.path.clone()), false),
                }
            })
            .collect();
        self.refreshed |= checked.iter().any(|(_, refreshed)| *refreshed);
        checked
            .into_iter()
            .map(|(check, _)| check)
            .filter(|c| *c != OutputCheck::Intact)
            .collect()
    }

    /// Whether [`check_outputs`](Self::check_outputs) re-verified racy
    /// entries, so that the record is worth saving again.
    pub fn refreshed(&self) -> bool {
        self.refreshed
    }

    /// What a stage needs to know about the previous outputs (under `root`).
    pub fn previous_outputs(&self, root: &Path, problems: &[OutputCheck]) -> PreviousOutputs {
        // Path → whether its file is unverified (else missing or modified).
        let problems: std::collections::HashMap<&Path, bool> = problems
            .iter()
            .filter_map(|p| match p {
                OutputCheck::Missing(p) | OutputCheck::Modified(p) => Some((p.as_path(), false)),
                OutputCheck::Unverified(p) => Some((p.as_path(), true)),
                OutputCheck::Intact => None,
            })
            .collect();
        PreviousOutputs {
            files: self
                .outputs
                .iter()
                .map(|o| {
                    (
                        o.path.clone(),
                        PreviousFile {
                            hash: blake3::Hash::from_bytes(o.hash),
                            intact: !problems.contains_key(o.path.as_path()),
                            unverified: (problems.get(o.path.as_path()) == Some(&true))
                                .then(|| root.join(&o.path)),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The bytes of a path up to its last `/` (its parent), without the cost of
/// `Path::parent`'s component parsing: called for every output of a no-op.
fn parent_bytes(path: &Path) -> &[u8] {
    let bytes = path.as_os_str().as_encoded_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => &bytes[..i],
        None => &[],
    }
}

/// Stat many project-relative paths, relative to their directories, in
/// parallel (chunks of files of one directory share one directory
/// descriptor). Same order as `paths`; `None` for a missing file.
pub fn stat_many(root: &Path, paths: &[&Path]) -> Vec<Option<FileStat>> {
    let mut chunks: Vec<&[&Path]> = Vec::new();
    let mut rest = paths;
    while !rest.is_empty() {
        let parent = parent_bytes(rest[0]);
        let n = rest
            .iter()
            .take_while(|p| parent_bytes(p) == parent)
            .count()
            .min(1024);
        let (head, tail) = rest.split_at(n);
        chunks.push(head);
        rest = tail;
    }
    chunks
        .into_par_iter()
        .flat_map_iter(|chunk| {
            let dir = root.join(chunk[0].parent().unwrap_or(Path::new("")));
            let names: Vec<&std::ffi::OsStr> = chunk
                .iter()
                .map(|p| p.file_name().unwrap_or_default())
                .collect();
            FileStat::read_in_dir(&dir, &names)
        })
        .collect()
}

/// Build the output records of a finished stage: stat every file it owns;
/// files it left untouched keep their previous record.
pub fn record_outputs(
    root: &Path,
    files: &[OutputFile],
    previous: Option<&TargetRecord>,
    unwritten: Option<&crate::stage::PreviousOutputs>,
) -> io::Result<Vec<OutputRecord>> {
    // Keyed by the paths' bytes: hashing or comparing a `Path` parses its
    // components, which over 100,000 files cost more than the rest of an
    // edit's bookkeeping. Paths are recorded as stages report them, so
    // equal paths have equal bytes.
    fn key(p: &Path) -> &[u8] {
        p.as_os_str().as_encoded_bytes()
    }
    let prev: std::collections::HashMap<&[u8], &OutputRecord> = previous
        .map(|r| r.outputs.iter().map(|o| (key(&o.path), o)).collect())
        .unwrap_or_default();
    let unchanged: std::collections::HashMap<&[u8], &PreviousFile> = unwritten
        .map(|u| u.files.iter().map(|(p, f)| (key(p), f)).collect())
        .unwrap_or_default();
    let now = now_ns();
    // Files the stage left alone keep their record (see
    // `StageOutput::untouched_are_unwritten`); only the others are stat'ed.
    let mut records: Vec<OutputRecord> = Vec::with_capacity(files.len());
    let mut fresh: Vec<&OutputFile> = Vec::new();
    for f in files {
        let k = key(&f.path);
        let kept = unchanged
            .get(k)
            .is_some_and(|u| u.intact && u.hash == f.hash);
        match prev.get(k) {
            Some(p) if kept => records.push((*p).clone()),
            _ => fresh.push(f),
        }
    }
    sort_by_path(&mut fresh, |f| &f.path);
    let paths: Vec<&Path> = fresh.iter().map(|f| f.path.as_path()).collect();
    let stats = stat_many(root, &paths);
    for (f, stat) in fresh.into_iter().zip(stats) {
        let stat = stat.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the stage reported {} but it does not exist",
                    f.path.display()
                ),
            )
        })?;
        if let Some(p) = prev.get(key(&f.path)) {
            if p.stat == stat && &p.hash == f.hash.as_bytes() {
                records.push((*p).clone());
                continue;
            }
        }
        records.push(OutputRecord {
            path: f.path.clone(),
            hash: *f.hash.as_bytes(),
            stat,
            recorded_ns: now,
        });
    }
    sort_by_path(&mut records, |r| &r.path);
    Ok(records)
}

/// Sort in `Path` order (component by component, what pipe.lock's digests
/// of a directory follow), parsing each path once: a key of its components,
/// each a kind byte and its bytes, separated by 0 (no component contains
/// it), compares as the components do.
fn sort_by_path<T>(items: &mut [T], path: impl Fn(&T) -> &Path) {
    use std::path::Component;
    if items.is_sorted_by(|a, b| path(a) <= path(b)) {
        return;
    }
    items.sort_by_cached_key(|item| {
        let mut key = Vec::new();
        for (i, c) in path(item).components().enumerate() {
            if i > 0 {
                key.push(0);
            }
            match c {
                Component::Prefix(p) => {
                    key.push(1);
                    key.extend_from_slice(p.as_os_str().as_encoded_bytes());
                }
                Component::RootDir => key.push(2),
                Component::CurDir => key.push(3),
                Component::ParentDir => key.push(4),
                Component::Normal(n) => {
                    key.push(5);
                    key.extend_from_slice(n.as_encoded_bytes());
                }
            }
        }
        key
    });
}

/// The `.pipe/` directory of a project.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory under `root` (created on first write).
    pub fn new(root: &Path) -> StateDir {
        StateDir {
            dir: root.join(STATE_DIR),
        }
    }

    /// Path of the state directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, target: &str) -> PathBuf {
        self.dir.join("targets").join(format!("{target}.bin"))
    }

    fn failure_path(&self, target: &str) -> PathBuf {
        self.dir.join("targets").join(format!("{target}.failed"))
    }

    /// The last successful build's record of `target`, if any (an unreadable
    /// or outdated record counts as none: the target is rebuilt).
    pub fn load(&self, target: &str) -> Option<TargetRecord> {
        let bytes = std::fs::read(self.record_path(target)).ok()?;
        let record: TargetRecord = postcard::from_bytes(&bytes).ok()?;
        (record.version == RECORD_VERSION).then_some(record)
    }

    /// Store `record` for `target` atomically, and forget any failure.
    pub fn save(&self, target: &str, record: &TargetRecord) -> io::Result<()> {
        let bytes = postcard::to_allocvec(record).map_err(io::Error::other)?;
        crate::artifact::write_atomic(&self.record_path(target), &bytes)?;
        let _ = std::fs::remove_file(self.failure_path(target));
        Ok(())
    }

    /// Remember that the last build of `target` failed, and why.
    pub fn save_failure(&self, target: &str, message: &str) -> io::Result<()> {
        crate::artifact::write_atomic(&self.failure_path(target), message.as_bytes())
    }

    /// The error of the last build of `target`, if it failed.
    pub fn failure(&self, target: &str) -> Option<String> {
        std::fs::read_to_string(self.failure_path(target)).ok()
    }

    /// Forget `target` (after `pipe clean`).
    pub fn remove(&self, target: &str) {
        let _ = std::fs::remove_file(self.record_path(target));
        let _ = std::fs::remove_file(self.failure_path(target));
    }

    /// Names of every target with a record (including ones no longer in the
    /// manifest).
    pub fn recorded_targets(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("targets"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".bin"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    fn building_path(&self) -> PathBuf {
        self.dir.join("building")
    }

    /// Say that a build is writing outputs (until [`finish_build`](Self::finish_build)):
    /// if the process is killed, the next build finds the mark and removes
    /// the temporaries it left.
    pub fn start_build(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(
            self.building_path(),
            format!("pipe (pid {})\n", std::process::id()),
        )
    }

    /// The build that wrote outputs has ended.
    pub fn finish_build(&self) -> io::Result<()> {
        match std::fs::remove_file(self.building_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether a build started writing and never ended (it was killed).
    pub fn unfinished_build(&self) -> bool {
        self.building_path().exists()
    }

    fn published_path(&self) -> PathBuf {
        self.dir.join("published.json")
    }

    /// Published files that hold another model's database than their
    /// target's (`pipe build -m MODEL`): path → model id.
    pub fn published(&self) -> BTreeMap<PathBuf, String> {
        std::fs::read(self.published_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Remember that `path` holds `model`'s database (`None`: its own
    /// target's again).
    pub fn save_published(&self, path: &Path, model: Option<&str>) -> io::Result<()> {
        let mut map = self.published();
        let changed = match model {
            Some(m) => map.insert(path.to_path_buf(), m.to_string()).as_deref() != Some(m),
            None => map.remove(path).is_some(),
        };
        if !changed {
            return Ok(());
        }
        if map.is_empty() {
            return match std::fs::remove_file(self.published_path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let bytes = serde_json::to_vec_pretty(&map).map_err(io::Error::other)?;
        crate::artifact::write_atomic(&self.published_path(), &bytes)
    }

    fn dir_stamps_path(&self) -> PathBuf {
        self.dir.join("dirs.json")
    }

    /// The modification times of the output directories as the last build
    /// left them (directory → (seconds, nanoseconds)).
    pub fn load_dir_stamps(&self) -> BTreeMap<PathBuf, (i64, i64)> {
        std::fs::read(self.dir_stamps_path())
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<(PathBuf, (i64, i64))>>(&b).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    }

    /// Remember the output directories' modification times.
    pub fn save_dir_stamps(&self, stamps: &BTreeMap<PathBuf, (i64, i64)>) -> io::Result<()> {
        if self.load_dir_stamps() == *stamps {
            return Ok(());
        }
        let list: Vec<(&PathBuf, &(i64, i64))> = stamps.iter().collect();
        let bytes = serde_json::to_vec(&list).map_err(io::Error::other)?;
        std::fs::create_dir_all(&self.dir)?;
        crate::artifact::write_atomic(&self.dir_stamps_path(), &bytes)
    }

    /// Path of the input hash cache.
    pub fn hash_cache_path(&self) -> PathBuf {
        self.dir.join("hashes.bin")
    }

    /// Load the input hash cache.
    pub fn load_hash_cache(&self) -> HashCache {
        HashCache::load(&self.hash_cache_path())
    }

    /// Take the project lock, waiting while another pipe holds it.
    /// `on_wait` is called once with the holder's description if we have to wait.
    pub fn lock(&self, on_wait: impl FnOnce(&str)) -> io::Result<ProjectLock> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                on_wait(if holder.is_empty() {
                    "another pipe process"
                } else {
                    holder
                });
                file.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "pipe (pid {})", std::process::id())?;
        file.flush()?;
        Ok(ProjectLock { _file: file })
    }
}

/// Held while a build runs; released on drop (or when the process dies).
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `paths` (all holding `bytes`) whose stats were taken at
    /// the moment of writing: racy, so checking reads the files again.
    fn racy_record(root: &Path, paths: &[&str], bytes: &[u8]) -> TargetRecord {
        let outputs = paths
            .iter()
            .map(|p| {
                let stat = FileStat::read(&root.join(p)).unwrap().unwrap();
                OutputRecord {
                    path: PathBuf::from(p),
                    hash: *blake3::hash(bytes).as_bytes(),
                    stat,
                    recorded_ns: stat.mtime_ns.max(stat.ctime_ns),
                }
            })
            .collect();
        TargetRecord {
            version: RECORD_VERSION,
            fingerprint: [0; 32],
            config: BTreeMap::new(),
            inputs: BTreeMap::new(),
            outputs,
            millis: 0,
            warnings: Vec::new(),
            refreshed: false,
            files_read: 0,
        }
    }

    #[test]
    fn a_racy_file_under_two_paths_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nomic")).unwrap();
        std::fs::write(dir.path().join("nomic/movies.db"), b"db").unwrap();
        std::fs::hard_link(
            dir.path().join("nomic/movies.db"),
            dir.path().join("movies.db"),
        )
        .unwrap();
        std::fs::write(dir.path().join("other.db"), b"db").unwrap();
        let mut rec = racy_record(
            dir.path(),
            &["movies.db", "nomic/movies.db", "other.db"],
            b"db",
        );
        assert!(rec.check_outputs(dir.path()).is_empty());
        assert!(rec.refreshed());
        // The hard link once, and the other file with the same bytes.
        assert_eq!(rec.files_read, 2);
    }

    #[test]
    fn a_rebuild_reads_a_racy_file_only_when_the_new_bytes_hash_alike() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.db"), b"db").unwrap();
        std::fs::write(dir.path().join("b.db"), b"db").unwrap();
        let mut rec = racy_record(dir.path(), &["a.db", "b.db"], b"db");
        // Same size and same stat tick as the record: only reading tells.
        std::fs::write(dir.path().join("b.db"), b"xy").unwrap();
        rec.outputs[1].stat = FileStat::read(&dir.path().join("b.db")).unwrap().unwrap();
        let problems = rec.check_outputs_for_rebuild(dir.path());
        assert_eq!(
            problems,
            vec![
                OutputCheck::Unverified(PathBuf::from("a.db")),
                OutputCheck::Unverified(PathBuf::from("b.db"))
            ]
        );
        assert_eq!(rec.files_read, 0);
        assert!(!rec.refreshed());
        let previous = rec.previous_outputs(dir.path(), &problems);
        let db = blake3::hash(b"db");
        assert!(previous.is_unchanged(Path::new("a.db"), &db));
        assert!(!previous.is_unchanged(Path::new("b.db"), &db));
        assert!(!previous.is_unchanged(Path::new("a.db"), &blake3::hash(b"xy")));
        // Checked for a build that may not rebuild, racy files are read.
        assert_eq!(
            rec.check_outputs(dir.path()),
            vec![OutputCheck::Modified(PathBuf::from("b.db"))]
        );
        assert_eq!(rec.files_read, 2);
    }

    #[test]
    fn a_racy_file_changed_under_two_paths_is_modified_under_both() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.db"), b"db").unwrap();
        std::fs::hard_link(dir.path().join("a.db"), dir.path().join("b.db")).unwrap();
        let mut rec = racy_record(dir.path(), &["a.db", "b.db"], b"db");
        std::fs::write(dir.path().join("a.db"), b"xy").unwrap();
        let problems = rec.check_outputs(dir.path());
        assert_eq!(
            problems,
            vec![
                OutputCheck::Modified(PathBuf::from("a.db")),
                OutputCheck::Modified(PathBuf::from("b.db"))
            ]
        );
    }
}
