//! Content hashes and target fingerprints.
//!
//! A content hash is blake3 of a file's bytes. Hashes are cached by the
//! file's stat (size, mtime, inode, ctime) so that a no-op build stats files
//! instead of reading them. The racy case — a file changed within the
//! timestamp's granularity of when its stat was recorded, so that a later
//! change can leave the stat identical — is handled as git does: an entry
//! whose mtime is not safely older than the moment it was recorded is not
//! trusted, and the file is hashed again.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A stat entry is trusted only if the file's mtime is at least this much
/// older than when the entry was recorded. Generous enough for file systems
/// with coarse timestamps; the cost of being generous is one extra hash of
/// files written in the last second before a build.
pub const RACY_WINDOW_NS: i64 = 1_000_000_000;

/// Hash a file's content.
///
/// Read in blocks rather than memory-mapped: this hashes files other
/// programs write (the user's inputs), and a mapped file truncated while it
/// is read kills the reader (SIGBUS). A whole-file mapping would also count
/// the file towards the process's resident memory. pipe's own temporaries,
/// which nobody else writes, are hashed by [`hash_own_file`], a mapped
/// window at a time (copying them into a buffer costs system time).
pub fn hash_file(path: &Path) -> io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    // Not `io::copy`: its 8 KiB buffer is too small for blake3's widest
    // SIMD (AVX-512 hashes 16 KiB at once); the wide reader hashes the
    // databases about a quarter faster.
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize())
}

/// Hash a file pipe itself just wrote (a temporary, before it is renamed
/// into place), whose pages are still in the page cache.
///
/// Read through memory mappings of [`OWN_FILE_WINDOW`] at a time instead of
/// `read`: copying 670 MB of databases into a buffer cost a one-title edit
/// at 100,000 movies about 0.3 s of system time, mapping the cached pages
/// almost none. A window at a time keeps the resident memory it adds small
/// (a whole-file mapping would count the file towards it, see
/// [`hash_file`]). Only for pipe's own temporaries: a mapped file truncated
/// by another process while it is read kills the reader (SIGBUS), and
/// nobody else writes these.
pub fn hash_own_file(path: &Path) -> io::Result<blake3::Hash> {
    use rustix::mm::{MapFlags, ProtFlags};
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    if len < OWN_FILE_WINDOW as u64 {
        hasher.update_reader(&file)?;
        return Ok(hasher.finalize());
    }
    let mut offset = 0u64;
    while offset < len {
        let window = (len - offset).min(OWN_FILE_WINDOW as u64) as usize;
        // SAFETY: a private read-only mapping of `window` bytes of an open
        // file, inside its length (read just now; nobody else writes pipe's
        // temporaries), at a page-aligned offset (a multiple of the window);
        // the slice lives only until the unmapping below.
        unsafe {
            let ptr = rustix::mm::mmap(
                std::ptr::null_mut(),
                window,
                ProtFlags::READ,
                MapFlags::PRIVATE,
                &file,
                offset,
            )?;
            hasher.update(std::slice::from_raw_parts(ptr.cast::<u8>(), window));
            rustix::mm::munmap(ptr, window)?;
        }
        offset += window as u64;
    }
    Ok(hasher.finalize())
}

/// How much of a file [`hash_own_file`] maps at once: large enough that
/// mapping costs nothing next to hashing, small next to the build's memory.
pub const OWN_FILE_WINDOW: usize = 16 << 20;

/// The parts of a file's stat that change when its content may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status change time, ns since the epoch (catches `touch -m` back-dating).
    pub ctime_ns: i64,
    /// Inode (an editor that saves by rename gets a new one).
    pub ino: u64,
}

impl FileStat {
    /// Stat of a file's metadata.
    pub fn of(meta: &Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }

    /// Stat a path; `None` if it does not exist.
    pub fn read(path: &Path) -> io::Result<Option<FileStat>> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(FileStat::of(&m))),
            Ok(_) => Err(io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stat many files of one directory, resolving each name relative to an
    /// open descriptor of the directory (one path lookup per file instead of
    /// one per path component: a no-op build stats every output).
    /// `None` for a file that does not exist or is not a regular file.
    pub fn read_in_dir(dir: &Path, names: &[&std::ffi::OsStr]) -> Vec<Option<FileStat>> {
        use rustix::fs::{AtFlags, FileType, Mode, OFlags};
        let Ok(fd) = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return vec![None; names.len()];
        };
        names
            .iter()
            .map(|name| {
                let st = rustix::fs::statat(&fd, *name, AtFlags::empty()).ok()?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return None;
                }
                Some(FileStat {
                    size: st.st_size as u64,
                    mtime_ns: (st.st_mtime as i64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(st.st_mtime_nsec as i64),
                    ctime_ns: (st.st_ctime as i64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(st.st_ctime_nsec as i64),
                    ino: st.st_ino as u64,
                })
            })
            .collect()
    }

    /// Whether a record of this stat taken at `recorded_ns` can be trusted.
    pub fn settled(&self, recorded_ns: i64) -> bool {
        recorded_ns.saturating_sub(self.mtime_ns.max(self.ctime_ns)) >= RACY_WINDOW_NS
    }
}

/// Now, in ns since the epoch (for racy-entry bookkeeping only; never
/// written into an artifact).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A cached hash with the stat it was taken at.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedHash {
    /// The file's stat when hashed.
    pub stat: FileStat,
    /// The content hash.
    pub hash: [u8; 32],
    /// When the entry was recorded (ns since the epoch).
    pub recorded_ns: i64,
}

/// Content hashes of input files, keyed by project-relative path.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HashCache {
    entries: HashMap<PathBuf, CachedHash>,
    #[serde(skip)]
    dirty: bool,
    #[serde(skip)]
    hashed: usize,
    /// Entries hashed by this process: trusted for the rest of the run even
    /// while racy (a change after we read the file is a change after the
    /// build started, which the next build sees).
    #[serde(skip)]
    fresh: std::collections::HashSet<PathBuf>,
}

impl HashCache {
    /// Load from `path`; a missing or unreadable cache is an empty one (it is
    /// only a cache).
    pub fn load(path: &Path) -> HashCache {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default()
    }

    /// Write to `path` atomically if anything changed.
    pub fn save(&mut self, path: &Path) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = postcard::to_allocvec(self).map_err(io::Error::other)?;
        crate::artifact::write_atomic(path, &bytes)?;
        self.dirty = false;
        Ok(())
    }

    /// How many files had to be read (not answered from the cache) so far.
    pub fn files_hashed(&self) -> usize {
        self.hashed
    }

    /// Take `hash` as the content of `rel` at `stat`, as if this process
    /// had hashed it: a stage wrote the file and reported the hash of what
    /// it wrote, and the targets that read it next in this build need not
    /// read it again.
    pub fn seed(&mut self, rel: &Path, stat: FileStat, hash: [u8; 32], recorded_ns: i64) {
        self.entries.insert(
            rel.to_path_buf(),
            CachedHash {
                stat,
                hash,
                recorded_ns,
            },
        );
        self.fresh.insert(rel.to_path_buf());
        self.dirty = true;
    }

    /// The content hash of `rel` under `root`, or `None` if it does not exist.
    pub fn hash(&mut self, root: &Path, rel: &Path) -> io::Result<Option<blake3::Hash>> {
        let abs = root.join(rel);
        let Some(stat) = FileStat::read(&abs)? else {
            if self.entries.remove(rel).is_some() {
                self.dirty = true;
            }
            return Ok(None);
        };
        if let Some(entry) = self.entries.get_mut(rel) {
            if entry.stat == stat && (stat.settled(entry.recorded_ns) || self.fresh.contains(rel)) {
                return Ok(Some(blake3::Hash::from_bytes(entry.hash)));
            }
        }
        let recorded_ns = now_ns();
        let hash = hash_file(&abs)?;
        self.hashed += 1;
        // Stat again: if the file changed while we read it, do not cache.
        if FileStat::read(&abs)? == Some(stat) {
            self.entries.insert(
                rel.to_path_buf(),
                CachedHash {
                    stat,
                    hash: *hash.as_bytes(),
                    recorded_ns,
                },
            );
            self.fresh.insert(rel.to_path_buf());
            self.dirty = true;
        }
        Ok(Some(hash))
    }
}

/// Feed `parts` to `hasher`, each after its length (eight bytes, little
/// endian), so that no two different lists of parts feed the same bytes
/// (`["ab", "c"]` and `["a", "bc"]`). What every key over several labelled
/// values is made with (cache keys, part keys, the embeddings stage's
/// fingerprints).
pub fn update_parts<'a>(hasher: &mut blake3::Hasher, parts: impl IntoIterator<Item = &'a [u8]>) {
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
}

/// The inputs of a target as hashed for one build: path → content hash
/// (`None`: the file does not exist, allowed for optional inputs).
pub type InputHashes = BTreeMap<PathBuf, Option<blake3::Hash>>;

/// A target's fingerprint: blake3 over its resolved configuration (kind,
/// stage version, options, model fields) and its inputs' content hashes.
pub fn fingerprint(config: &BTreeMap<String, String>, inputs: &InputHashes) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"pipe-fingerprint-v1\0");
    for (k, v) in config {
        h.update(k.as_bytes())
            .update(b"\0")
            .update(v.as_bytes())
            .update(b"\0");
    }
    h.update(b"\x01inputs\0");
    for (path, hash) in inputs {
        h.update(path.to_string_lossy().as_bytes()).update(b"\0");
        match hash {
            Some(hash) => h.update(hash.as_bytes()),
            None => h.update(b"missing"),
        };
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_hash_as_read_files_do() {
        let d = tempfile::tempdir().unwrap();
        // Below one window, exactly two, and two and a bit (a last window
        // that ends inside a page).
        for len in [1000, 2 * OWN_FILE_WINDOW, 2 * OWN_FILE_WINDOW + 4097] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let p = d.path().join(format!("f{len}"));
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(
                hash_own_file(&p).unwrap(),
                blake3::hash(&bytes),
                "{len} bytes"
            );
            assert_eq!(hash_file(&p).unwrap(), blake3::hash(&bytes), "{len} bytes");
        }
        assert!(hash_own_file(&d.path().join("missing")).is_err());
    }

    #[test]
    fn parts_are_fed_after_their_length() {
        let fed = |parts: &[&str]| {
            let mut h = blake3::Hasher::new();
            update_parts(&mut h, parts.iter().map(|p| p.as_bytes()));
            h.finalize()
        };
        assert_ne!(fed(&["ab", "c"]), fed(&["a", "bc"]));
        assert_ne!(fed(&["a", ""]), fed(&["a"]));
        let mut by_hand = blake3::Hasher::new();
        by_hand.update(&2u64.to_le_bytes()).update(b"ab");
        by_hand.update(&1u64.to_le_bytes()).update(b"c");
        assert_eq!(fed(&["ab", "c"]), by_hand.finalize());
    }

    #[test]
    fn cache_rehashes_when_content_changes_with_same_size() {
        let dir = tempfile::tempdir().unwrap();
        let rel = Path::new("f.txt");
        std::fs::write(dir.path().join(rel), b"aaaa").unwrap();
        let mut cache = HashCache::default();
        let first = cache.hash(dir.path(), rel).unwrap().unwrap();
        // Same size, same second: the racy case. Must still be noticed.
        std::fs::write(dir.path().join(rel), b"bbbb").unwrap();
        let second = cache.hash(dir.path(), rel).unwrap().unwrap();
        assert_ne!(first, second);
        assert_eq!(second, blake3::hash(b"bbbb"));
    }

    #[test]
    fn settled_entries_are_trusted_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let rel = Path::new("f.txt");
        std::fs::write(dir.path().join(rel), b"aaaa").unwrap();
        let mut cache = HashCache::default();
        cache.hash(dir.path(), rel).unwrap();
        // Pretend the entry was recorded long after the write.
        for e in cache.entries.values_mut() {
            e.recorded_ns += 10 * RACY_WINDOW_NS;
        }
        let before = cache.files_hashed();
        cache.hash(dir.path(), rel).unwrap();
        assert_eq!(cache.files_hashed(), before);
    }

    #[test]
    fn stat_in_dir_agrees_with_stat_by_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"12345").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let names = [
            std::ffi::OsStr::new("a"),
            std::ffi::OsStr::new("nope"),
            std::ffi::OsStr::new("sub"),
        ];
        let stats = FileStat::read_in_dir(dir.path(), &names);
        assert_eq!(stats[0], FileStat::read(&dir.path().join("a")).unwrap());
        assert_eq!(stats[1], None);
        assert_eq!(stats[2], None);
    }

    #[test]
    fn missing_file_hashes_to_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = HashCache::default();
        assert!(cache.hash(dir.path(), Path::new("nope")).unwrap().is_none());
    }

    #[test]
    fn fingerprint_depends_on_config_and_inputs() {
        let mut config = BTreeMap::new();
        config.insert("kind".to_string(), "x".to_string());
        let mut inputs = InputHashes::new();
        inputs.insert(PathBuf::from("a"), Some(blake3::hash(b"1")));
        let a = fingerprint(&config, &inputs);
        inputs.insert(PathBuf::from("a"), Some(blake3::hash(b"2")));
        let b = fingerprint(&config, &inputs);
        config.insert("kind".to_string(), "y".to_string());
        let c = fingerprint(&config, &inputs);
        assert!(a != b && b != c && a != c);
    }
}
