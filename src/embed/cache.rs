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

use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    let parts = options
        .iter()
        .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]);
    crate::fingerprint::update_parts(&mut h, parts);
    h.update(&[0xff]);
    crate::fingerprint::update_parts(&mut h, [text.as_bytes()]);
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
    /// Lookups (every record's, in parallel, when a build plans) share it;
    /// appends and forgetting a damaged entry take it alone.
    state: RwLock<State>,
    /// Entries found damaged when opening (they are not in the index).
    pub damaged: usize,
}

struct State {
    /// Key → offset of its entry.
    index: Index,
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
        // Every entry's checksum, a block of entries at a time (the block
        // read while the last one is checked, on every core).
        let mut index = Vec::with_capacity(whole as usize);
        let mut damaged = 0;
        let per_block = (OPEN_BLOCK / entry).max(1);
        let mut reader = io::BufReader::with_capacity(1 << 20, &mut file);
        io::Seek::seek(&mut reader, io::SeekFrom::Start(HEADER))?;
        let mut first = 0;
        let mut block = Vec::new();
        while first < whole {
            let n = per_block.min(whole - first);
            block.resize((n * entry) as usize, 0);
            reader.read_exact(&mut block)?;
            let keys: Vec<Option<Key>> = block
                .par_chunks_exact(entry as usize)
                .map(|e| {
                    checksum_ok(e).then(|| {
                        let mut k = [0u8; 32];
                        k.copy_from_slice(&e[..32]);
                        k
                    })
                })
                .collect();
            for (i, k) in keys.into_iter().enumerate() {
                match k {
                    Some(k) => index.push((k, HEADER + (first + i as u64) * entry)),
                    None => damaged += 1,
                }
            }
            first += n;
        }
        drop(reader);
        Ok(VectorCache {
            path: path.to_path_buf(),
            dims,
            file,
            state: RwLock::new(State {
                index: Index::new(index),
                end,
            }),
            damaged,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        match self.state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        match self.state.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether a (checked) vector for `key` is cached.
    pub fn contains(&self, key: &Key) -> bool {
        self.read().index.contains_key(key)
    }

    /// Entries held (live or not).
    pub fn len(&self) -> usize {
        self.read().index.len()
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
        let mut st = self.write();
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
        let Some(offset) = self.read().index.get(key) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; Self::entry_len(self.dims)];
        self.file.read_exact_at(&mut buf, offset)?;
        if !checksum_ok(&buf) || &buf[..32] != key {
            self.write().index.remove(key);
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
        let entry = Self::entry_len(self.dims) as u64;
        // The entries `keep` uses, each once (a key several records share
        // is one entry), in the order of `keep`: one lookup per record
        // under one read lock, one bit per entry of the file to tell them
        // apart.
        let (live, total) = {
            let st = self.read();
            let total = ((st.end - HEADER) / entry) as usize;
            let mut seen = vec![0u64; total.div_ceil(64)];
            let mut live = Vec::new();
            for k in keep {
                let Some(offset) = st.index.get(k) else {
                    continue;
                };
                let n = ((offset - HEADER) / entry) as usize;
                let (word, bit) = (n / 64, 1u64 << (n % 64));
                if let Some(w) = seen.get_mut(word).filter(|w| **w & bit == 0) {
                    *w |= bit;
                    live.push(offset);
                }
            }
            (live, total)
        };
        // Entries no record uses any more are dropped once they are a fifth
        // of the file: rewriting a whole cache to drop the one vector an edit
        // replaced would cost more than the edit (and a stale entry is
        // never used: keys are content hashes).
        if total.saturating_sub(live.len()) * 5 < total.max(1) {
            return Ok(());
        }
        let mut tmp = crate::artifact::temp_beside(&self.path)?;
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            let mut h = [0u8; HEADER as usize];
            h[..8].copy_from_slice(MAGIC);
            h[8..12].copy_from_slice(&(self.dims as u32).to_le_bytes());
            w.write_all(&h)?;
            let mut buf = vec![0u8; entry as usize];
            for offset in live {
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

/// Which entry of the file holds each key: 40 bytes a key. A hash map
/// of a million 32-byte keys takes about twice that (its table is a power
/// of two, at most 7/8 full); this is the entries of the file sorted by key
/// (binary search), and a map of those appended since, merged into the
/// sorted ones whenever it grows past a quarter of them.
struct Index {
    /// (key, offset), sorted by key, each key once; offset `u64::MAX`:
    /// removed.
    sorted: Vec<(Key, u64)>,
    /// Appended since the last merge (these win over `sorted`).
    recent: HashMap<Key, u64>,
    /// Keys held.
    len: usize,
}

/// Fewer appended keys than this are never merged.
const MERGE_AT_LEAST: usize = 1 << 16;

impl Index {
    /// The index of a file's entries, in file order (a later entry of a
    /// key wins, as it would have overwritten the earlier one).
    fn new(mut entries: Vec<(Key, u64)>) -> Index {
        entries.par_sort_unstable_by(|a, b| cmp_keys(&a.0, &b.0).then(b.1.cmp(&a.1)));
        entries.dedup_by(|later, first| later.0 == first.0);
        Index {
            len: entries.len(),
            sorted: entries,
            recent: HashMap::new(),
        }
    }

    fn position(&self, key: &Key) -> Option<usize> {
        self.sorted.binary_search_by(|e| cmp_keys(&e.0, key)).ok()
    }

    fn get(&self, key: &Key) -> Option<u64> {
        if let Some(o) = self.recent.get(key) {
            return Some(*o);
        }
        self.position(key)
            .map(|i| self.sorted[i].1)
            .filter(|o| *o != u64::MAX)
    }

    fn contains_key(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, key: Key, offset: u64) {
        if !self.contains_key(&key) {
            self.len += 1;
        }
        // A key of `sorted` appended again: its old entry is forgotten.
        if let Some(i) = self.position(&key) {
            self.sorted[i].1 = u64::MAX;
        }
        self.recent.insert(key, offset);
        if self.recent.len() >= MERGE_AT_LEAST.max(self.sorted.len() / 4) {
            self.merge();
        }
    }

    fn remove(&mut self, key: &Key) {
        let in_recent = self.recent.remove(key).is_some();
        let in_sorted = match self.position(key) {
            Some(i) if self.sorted[i].1 != u64::MAX => {
                self.sorted[i].1 = u64::MAX;
                true
            }
            _ => false,
        };
        if in_recent || in_sorted {
            self.len -= 1;
        }
    }

    /// Move the appended keys into `sorted` (and drop removed ones), in
    /// place: `sorted` grows by the appended keys and the two sorted runs
    /// are merged from the back, so no second copy of the index is made.
    fn merge(&mut self) {
        let mut recent: Vec<(Key, u64)> = self.recent.drain().collect();
        self.recent = HashMap::new();
        recent.sort_unstable_by(|a, b| cmp_keys(&a.0, &b.0));
        self.sorted.retain(|e| e.1 != u64::MAX);
        let old = self.sorted.len();
        self.sorted.resize(old + recent.len(), ([0; 32], u64::MAX));
        // Keys of `recent` are not live in `sorted` (insert forgot them).
        let (mut i, mut k) = (old, old + recent.len());
        while let Some(&last) = recent.last() {
            k -= 1;
            if i > 0 && cmp_keys(&self.sorted[i - 1].0, &last.0) == Ordering::Greater {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = last;
                recent.pop();
            }
        }
    }
}

/// Bytes of the cache file read at once while opening it.
const OPEN_BLOCK: u64 = 4 << 20;

/// The order of two keys' bytes, compared as four big-endian words: a
/// comparison of `[u8; 32]` calls `memcmp`, which was most of the time of
/// a lookup (a build looks up every record's key).
fn cmp_keys(a: &Key, b: &Key) -> Ordering {
    fn word(k: &Key, i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&k[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    }
    (0..4)
        .map(|i| word(a, i).cmp(&word(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
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

    /// Visit what was saved, in order, without keeping it: one read of the
    /// file and nothing per record (a million records' ids and keys as a
    /// `Vec` would be ~100 MB). Nothing is visited if it is absent or
    /// unreadable; a damaged tail stops the visit.
    pub fn each(path: &Path, f: impl FnMut(&str, &Key)) {
        if let Ok(bytes) = std::fs::read(path) {
            RecordKeys::each_in(&bytes, f);
        }
    }

    /// [`RecordKeys::each`] over the bytes of a saved file.
    pub fn each_in(bytes: &[u8], mut f: impl FnMut(&str, &Key)) {
        // postcard's layout of `RecordKeys`: the length (a varint), then
        // each (id, key).
        let Ok((n, mut rest)) = postcard::take_from_bytes::<usize>(bytes) else {
            return;
        };
        for _ in 0..n {
            match postcard::take_from_bytes::<(&str, Key)>(rest) {
                Ok(((id, key), tail)) => {
                    f(id, &key);
                    rest = tail;
                }
                Err(_) => return,
            }
        }
    }

    /// The saved file's bytes, for [`RecordKeys::remembered`].
    pub fn read(path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    /// Each record's (source digest, key) by id, borrowed from the bytes of
    /// a saved file, when it has digests and `maker` made its keys; else
    /// nothing (every text is made again).
    pub fn remembered<'a>(bytes: &'a [u8], maker: &Key) -> HashMap<&'a str, (Key, Key)> {
        let Ok((n, mut rest)) = postcard::take_from_bytes::<usize>(bytes) else {
            return HashMap::new();
        };
        let mut records = Vec::with_capacity(n.min(bytes.len() / 33));
        for _ in 0..n {
            match postcard::take_from_bytes::<(&str, Key)>(rest) {
                Ok((record, tail)) => {
                    records.push(record);
                    rest = tail;
                }
                Err(_) => return HashMap::new(),
            }
        }
        match postcard::take_from_bytes::<Option<KeySources>>(rest) {
            Ok((Some(s), _)) if s.maker == *maker && s.digests.len() == records.len() => records
                .into_iter()
                .zip(s.digests)
                .map(|((id, key), digest)| (id, (digest, key)))
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// Save `records` (sorted by id) atomically, in the layout of
    /// [`RecordKeys::save`], without making a `RecordKeys` of them, with
    /// `sources` ([`KeySources`]: the maker and each record's digest) when
    /// the records have them. The blake3 of the bytes saved.
    pub fn save_each<'a>(
        path: &Path,
        records: impl ExactSizeIterator<Item = (&'a str, &'a Key)>,
        sources: Option<(&Key, &[Key])>,
    ) -> io::Result<blake3::Hash> {
        let mut bytes = postcard::to_stdvec(&records.len()).map_err(io::Error::other)?;
        for (id, key) in records {
            bytes = postcard::to_extend(&(id, key), bytes).map_err(io::Error::other)?;
        }
        // `Option<KeySources>`'s layout.
        bytes = postcard::to_extend(&sources, bytes).map_err(io::Error::other)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        crate::artifact::write_atomic(path, &bytes)?;
        Ok(blake3::hash(&bytes))
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
    fn compaction_counts_a_key_records_share_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vectors");
        let opts = BTreeMap::new();
        let keys: Vec<Key> = (0..10).map(|i| key(&opts, &i.to_string())).collect();
        let cache = VectorCache::open(&path, 2).unwrap();
        for k in &keys {
            cache.append(&[(*k, &[1.0, 2.0])]).unwrap();
        }
        // Ten records, three texts: seven of ten entries are stale, though
        // as many records as entries keep one.
        let mut keep = vec![keys[0]; 8];
        keep.extend([keys[1], keys[2]]);
        cache.compact(&keep).unwrap();
        drop(cache);
        let cache = VectorCache::open(&path, 2).unwrap();
        assert_eq!(cache.len(), 3);
        assert!(keys[..3].iter().all(|k| cache.contains(k)));
        // One stale entry of six: below a fifth, kept.
        for k in &keys[3..6] {
            cache.append(&[(*k, &[3.0, 4.0])]).unwrap();
        }
        cache.compact(&keys[..5]).unwrap();
        drop(cache);
        assert_eq!(VectorCache::open(&path, 2).unwrap().len(), 6);
    }

    #[test]
    fn keys_compare_in_the_order_of_their_bytes() {
        // Keys that differ in each word, and in the first and last byte
        // of one, so a word read in the wrong byte order would show.
        let mut keys: Vec<Key> = (0..2000u32)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect();
        let mut k = [7u8; 32];
        for at in [0, 7, 8, 15, 16, 24, 31] {
            k[at] = 8;
            keys.push(k);
            k[at] = 6;
            keys.push(k);
        }
        for a in &keys[1990..] {
            for b in &keys {
                assert_eq!(cmp_keys(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
        let mut by_bytes = keys.clone();
        by_bytes.sort();
        keys.sort_by(cmp_keys);
        assert_eq!(keys, by_bytes);
    }

    #[test]
    fn the_index_finds_every_key_across_merges() {
        let k = |i: u32| *blake3::hash(&i.to_le_bytes()).as_bytes();
        let first: Vec<(Key, u64)> = (0..1000).map(|i| (k(i), u64::from(i))).collect();
        let mut index = Index::new(first);
        // Appends past a merge, a key appended again, a removed key.
        for i in 1000..(MERGE_AT_LEAST as u32 + 3000) {
            index.insert(k(i), u64::from(i));
        }
        index.insert(k(5), 7);
        index.remove(&k(6));
        index.remove(&k(2000));
        index.remove(&k(u32::MAX)); // not held: nothing changes
        assert_eq!(index.len(), MERGE_AT_LEAST + 3000 - 2);
        for i in 0..(MERGE_AT_LEAST as u32 + 3000) {
            let want = match i {
                5 => Some(7),
                6 | 2000 => None,
                i => Some(u64::from(i)),
            };
            assert_eq!(index.get(&k(i)), want, "{i}");
        }
        index.merge();
        assert_eq!(index.get(&k(5)), Some(7));
        assert_eq!(index.get(&k(6)), None);
        assert!(!index.contains_key(&k(u32::MAX)));
        // 40 bytes a key once opened (a hash map of them: 47 at best, 7/8
        // full, ~80 at a million keys, whose table is 2^21 buckets).
        let opened = Index::new((0..100_000).map(|i| (k(i), u64::from(i))).collect());
        let bytes = opened.sorted.capacity() * std::mem::size_of::<(Key, u64)>()
            + opened.recent.capacity() * (std::mem::size_of::<(Key, u64)>() + 1);
        assert!(bytes <= 40 * 100_000, "{bytes}");
        // A file with a key twice: the later entry wins.
        let index = Index::new(vec![(k(1), 10), (k(2), 20), (k(1), 30)]);
        assert_eq!((index.get(&k(1)), index.len()), (Some(30), 2));
    }

    #[test]
    fn record_keys_are_visited_and_saved_in_the_layout_of_the_struct() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.records");
        let records = vec![("a".to_string(), [1u8; 32]), ("bé".to_string(), [2u8; 32])];
        let (maker, digests) = ([7u8; 32], vec![[8u8; 32], [9u8; 32]]);
        RecordKeys {
            records: records.clone(),
            sources: Some(KeySources {
                maker,
                digests: digests.clone(),
            }),
        }
        .save(&old)
        .unwrap();
        let mut seen = Vec::new();
        RecordKeys::each(&old, |id, k| seen.push((id.to_string(), *k)));
        assert_eq!(seen, records);
        let new = dir.path().join("new.records");
        let saved_hash = RecordKeys::save_each(
            &new,
            records.iter().map(|(id, k)| (id.as_str(), k)),
            Some((&maker, &digests)),
        )
        .unwrap();
        assert_eq!(std::fs::read(&new).unwrap(), std::fs::read(&old).unwrap());
        assert_eq!(saved_hash, blake3::hash(&std::fs::read(&new).unwrap()));
        assert_eq!(RecordKeys::load(&new).records, records);
        // The digests are remembered only for the maker that made the keys.
        let bytes = std::fs::read(&new).unwrap();
        let remembered = RecordKeys::remembered(&bytes, &maker);
        assert_eq!(remembered.get("bé"), Some(&([9u8; 32], [2u8; 32])));
        assert!(RecordKeys::remembered(&bytes, &[0u8; 32]).is_empty());
        RecordKeys::each(&dir.path().join("absent"), |_, _| panic!("nothing"));
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
