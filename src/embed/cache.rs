//! The vectors a model's provider returned, kept per record under
//! `.pipe/cache/embeddings/` as they arrive, so that an interrupted,
//! killed or failed build resumes with only the texts not yet embedded.
//!
//! One append-only file per model: a header (magic, dimensions), then
//! fixed-size entries `key (32 bytes) | vector (dimensions × f32 LE) |
//! checksum (16 bytes)`. The key is [`key`] of everything that decides the
//! vector; the checksum is blake3 of key and vector, so a damaged entry is
//! detected (on opening and again on reading) and embedded again, never
//! used. Fixed-size entries mean a damaged one costs only itself, and a torn
//! last entry (a kill in the middle of a write) is cut off on opening.
//! After a successful build the file is rewritten with only the entries the
//! output uses once the others are a fifth of it ([`VectorCache::compact`]),
//! so removed records' vectors go.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What identifies a vector: blake3 of what determines it.
pub type Key = [u8; 32];

const MAGIC: &[u8; 8] = b"PIPEVEC1";
const HEADER: u64 = 16;
const CHECKSUM: usize = 16;

/// The key of the vector of `text` under `options` (provider kind, the
/// provider's model name and every option that changes vectors; see
/// [`crate::embed::config::EmbedConfig::vector_options`]).
pub fn key(options: &BTreeMap<String, String>, text: &str) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(b"pipe-embedding-key-1\0");
    for (k, v) in options {
        for part in [k.as_bytes(), v.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    h.update(&[0xff]);
    h.update(&(text.len() as u64).to_le_bytes());
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

/// The directory of the embeddings caches of a project.
pub fn dir(root: &Path) -> PathBuf {
    root.join(crate::state::STATE_DIR)
        .join("cache")
        .join("embeddings")
}

/// One model's vector cache, open for lookups and appends.
pub struct VectorCache {
    path: PathBuf,
    dims: usize,
    file: File,
    state: Mutex<State>,
    /// Entries found damaged when opening (they are not in the index).
    pub damaged: usize,
}

struct State {
    /// Key → offset of its entry.
    index: HashMap<Key, u64>,
    /// End of the last whole entry.
    end: u64,
}

impl VectorCache {
    fn entry_len(dims: usize) -> usize {
        32 + 4 * dims + CHECKSUM
    }

    /// Open (or create) the cache at `path` for vectors of `dims` floats.
    /// A file of another format or dimension count is started afresh.
    pub fn open(path: &Path, dims: usize) -> io::Result<VectorCache> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut header = [0u8; HEADER as usize];
        let len = file.metadata()?.len();
        let fresh = len < HEADER
            || file.read_exact_at(&mut header, 0).is_err()
            || &header[..8] != MAGIC
            || u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize != dims;
        if fresh {
            file.set_len(0)?;
            let mut h = [0u8; HEADER as usize];
            h[..8].copy_from_slice(MAGIC);
            h[8..12].copy_from_slice(&(dims as u32).to_le_bytes());
            file.write_all_at(&h, 0)?;
        }
        let entry = Self::entry_len(dims) as u64;
        let whole = if fresh { 0 } else { (len - HEADER) / entry };
        let end = HEADER + whole * entry;
        // A torn last entry (killed while writing) is cut off.
        if !fresh && len != end {
            file.set_len(end)?;
        }
        let mut index = HashMap::with_capacity(whole as usize);
        let mut damaged = 0;
        let mut reader = io::BufReader::with_capacity(1 << 20, &mut file);
        io::Seek::seek(&mut reader, io::SeekFrom::Start(HEADER))?;
        let mut buf = vec![0u8; entry as usize];
        for i in 0..whole {
            reader.read_exact(&mut buf)?;
            if checksum_ok(&buf) {
                let mut k = [0u8; 32];
                k.copy_from_slice(&buf[..32]);
                index.insert(k, HEADER + i * entry);
            } else {
                damaged += 1;
            }
        }
        drop(reader);
        Ok(VectorCache {
            path: path.to_path_buf(),
            dims,
            file,
            state: Mutex::new(State { index, end }),
            damaged,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether a (checked) vector for `key` is cached.
    pub fn contains(&self, key: &Key) -> bool {
        self.lock().index.contains_key(key)
    }

    /// Entries held (live or not).
    pub fn len(&self) -> usize {
        self.lock().index.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Store vectors as they arrive: one write, so that a kill leaves at
    /// most one torn entry. Safe to call from several threads.
    pub fn append(&self, entries: &[(Key, &[f32])]) -> io::Result<()> {
        let entry = Self::entry_len(self.dims);
        let mut buf = Vec::with_capacity(entries.len() * entry);
        for (k, v) in entries {
            if v.len() != self.dims {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a vector of {} floats in a cache of {}", v.len(), self.dims),
                ));
            }
            let start = buf.len();
            buf.extend_from_slice(k);
            for x in *v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            let sum = blake3::hash(&buf[start..]);
            buf.extend_from_slice(&sum.as_bytes()[..CHECKSUM]);
        }
        let mut st = self.lock();
        self.file.write_all_at(&buf, st.end)?;
        let base = st.end;
        for (i, (k, _)) in entries.iter().enumerate() {
            st.index.insert(*k, base + (i * entry) as u64);
        }
        st.end += buf.len() as u64;
        Ok(())
    }

    /// The vector of `key`, checked again: `Ok(None)` if it is not cached or
    /// its entry is damaged now (it is then forgotten).
    pub fn get(&self, key: &Key) -> io::Result<Option<Vec<f32>>> {
        let Some(offset) = self.lock().index.get(key).copied() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; Self::entry_len(self.dims)];
        self.file.read_exact_at(&mut buf, offset)?;
        if !checksum_ok(&buf) || &buf[..32] != key {
            self.lock().index.remove(key);
            return Ok(None);
        }
        Ok(Some(
            buf[32..32 + 4 * self.dims]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// Rewrite the cache with only the entries of `keep` (in that order),
    /// through a temporary file renamed into place. Skipped while what would
    /// go is less than a fifth of the file.
    pub fn compact(&self, keep: &[Key]) -> io::Result<()> {
        let (live, total) = {
            let st = self.lock();
            let live = keep
                .iter()
                .filter(|k| st.index.contains_key(*k))
                .collect::<std::collections::HashSet<_>>()
                .len();
            let total = ((st.end - HEADER) / Self::entry_len(self.dims) as u64) as usize;
            (live, total)
        };
        // Entries no record uses any more are dropped once they are a fifth
        // of the file: rewriting a whole cache to drop the one vector an edit
        // replaced would cost more than the edit (and a stale entry is
        // never used: keys are content hashes).
        if total.saturating_sub(live) * 5 < total.max(1) {
            return Ok(());
        }
        let mut tmp = crate::artifact::temp_beside(&self.path)?;
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            let mut h = [0u8; HEADER as usize];
            h[..8].copy_from_slice(MAGIC);
            h[8..12].copy_from_slice(&(self.dims as u32).to_le_bytes());
            w.write_all(&h)?;
            let mut buf = vec![0u8; Self::entry_len(self.dims)];
            let mut seen = std::collections::HashSet::new();
            for k in keep {
                let Some(offset) = self.lock().index.get(k).copied() else {
                    continue;
                };
                if !seen.insert(*k) {
                    continue;
                }
                self.file.read_exact_at(&mut buf, offset)?;
                if checksum_ok(&buf) {
                    w.write_all(&buf)?;
                }
            }
            w.flush()?;
        }
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

fn checksum_ok(entry: &[u8]) -> bool {
    let (body, sum) = entry.split_at(entry.len() - CHECKSUM);
    &blake3::hash(body).as_bytes()[..CHECKSUM] == sum
}

/// Which key each record had at the last successful build of a model:
/// what `pipe explain`, `pipe status` and `pipe build -n` compare with to
/// say how many records are new, changed and removed.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RecordKeys {
    /// (record id, key), sorted by id.
    pub records: Vec<(String, Key)>,
    /// What the keys were made from, when the records have a digest of
    /// their own (movies.json's entries): the next build takes a record's
    /// key from here, without making its text again, when its digest and
    /// the maker are unchanged.
    pub sources: Option<KeySources>,
}

/// The record digests behind [`RecordKeys::records`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct KeySources {
    /// blake3 over everything else a key is made of (the vector options,
    /// the template and prefix, pipe's version): keys are only taken
    /// when it is this build's.
    pub maker: Key,
    /// Each record's digest, in the order of `records`.
    pub digests: Vec<Key>,
}

impl RecordKeys {
    /// Read what was saved (nothing if absent or unreadable).
    pub fn load(path: &Path) -> RecordKeys {
        std::fs::read(path)
            .ok()
            .and_then(|b| postcard::from_bytes(&b).ok())
            .unwrap_or_default()
    }

    /// Save atomically.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let bytes = postcard::to_allocvec(self).map_err(io::Error::other)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        crate::artifact::write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_vectors_survive_reopening_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vectors");
        let opts = BTreeMap::from([("provider".to_string(), "command".to_string())]);
        let (a, b, c) = (key(&opts, "a"), key(&opts, "b"), key(&opts, "c"));
        {
            let cache = VectorCache::open(&path, 3).unwrap();
            cache
                .append(&[(a, &[1.0, 2.0, 3.0]), (b, &[4.0, 5.0, 6.0])])
                .unwrap();
            cache.append(&[(c, &[7.0, 8.0, 9.0])]).unwrap();
        }
        let cache = VectorCache::open(&path, 3).unwrap();
        assert_eq!(cache.get(&b).unwrap(), Some(vec![4.0, 5.0, 6.0]));
        assert_eq!(cache.len(), 3);
        drop(cache);

        // Damage b's vector, and tear the last entry.
        let mut bytes = std::fs::read(&path).unwrap();
        let entry = VectorCache::entry_len(3);
        bytes[HEADER as usize + entry + 40] ^= 0xff;
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&path, &bytes).unwrap();
        let cache = VectorCache::open(&path, 3).unwrap();
        assert_eq!(cache.damaged, 1);
        assert!(cache.contains(&a) && !cache.contains(&b) && !cache.contains(&c));
        cache.append(&[(c, &[7.0, 8.0, 9.0])]).unwrap();
        cache.compact(&[c]).unwrap();
        drop(cache);
        let cache = VectorCache::open(&path, 3).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&c).unwrap(), Some(vec![7.0, 8.0, 9.0]));
        // Other dimensions: started afresh.
        drop(cache);
        assert!(VectorCache::open(&path, 4).unwrap().is_empty());
    }

    #[test]
    fn keys_depend_on_every_option_and_the_text() {
        let mut o = BTreeMap::from([("provider".to_string(), "ollama".to_string())]);
        let k1 = key(&o, "text");
        assert_ne!(k1, key(&o, "text "));
        o.insert("prefix".into(), "x".into());
        assert_ne!(k1, key(&o, "text"));
    }
}
