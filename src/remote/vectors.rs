//! Per-record vectors in the remote cache, so that a machine never sends a
//! text to a provider that another machine already embedded with the same
//! key (see [`crate::embed::share`]).
//!
//! The vectors of one space (provider, model, options) are spread over
//! [`SHARDS`] shards by the first bits of their keys; a shard is one
//! action-cache entry (`/ac/`, keyed by space, dimensions and shard number)
//! holding its keys and vectors, sorted by key, with a blake3 checksum. A
//! machine fetches the shards its missing keys fall in, takes the vectors it
//! needs, and after its build uploads each fetched shard that lacked a
//! vector it now has: the shard's old entries merged with the build's (so
//! machines on different branches do not erase each other's work), the old
//! ones kept up to the build's own count so a shard stays bounded.
//!
//! Shards are mutable entries: two machines writing one shard at once may
//! lose one's additions, which costs only embedding those texts again; a
//! reader checks every shard (format, dimensions, checksum, key order and
//! range, finite values) and ignores one that fails, reporting it.

use super::client::{ClientError, Store};
use super::RemoteCache;
use crate::embed::cache::Key;
use crate::embed::share::SharedVectors;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

/// Key bits that choose a shard.
const SHARD_BITS: u32 = 6;
/// How many shards a space has.
pub const SHARDS: usize = 1 << SHARD_BITS;
const MAGIC: &[u8; 8] = b"PIPESHD1";
const HEADER: usize = 16;
const CHECKSUM: usize = 32;
/// The largest shard read (a 1M-record, 4096-dimension space).
const MAX_SHARD_BYTES: u64 = 1 << 30;
/// Shards fetched or uploaded at once.
const PARALLEL: usize = 8;

/// The shard a key belongs to.
pub fn shard_of(key: &Key) -> usize {
    (key[0] >> (8 - SHARD_BITS)) as usize
}

/// The action-cache key of a shard.
fn shard_key(space: &str, dims: usize, shard: usize) -> String {
    super::sha256_hex(format!("pipe-vectors-1 {space} {dims} {shard}").as_bytes())
}

/// A shard's bytes: its entries sorted by key.
pub fn encode(dims: usize, entries: &BTreeMap<Key, Vec<f32>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + entries.len() * (32 + 4 * dims) + CHECKSUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(dims as u32).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (key, vector) in entries {
        out.extend_from_slice(key);
        for x in vector {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// The entries of shard `shard` of `dims`-dimension vectors, if `bytes` is
/// a sound one; else why not.
pub fn decode(bytes: &[u8], dims: usize, shard: usize) -> Result<Vec<(Key, Vec<f32>)>, String> {
    if bytes.len() < HEADER + CHECKSUM || &bytes[..8] != MAGIC {
        return Err("not a pipe vector shard".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
    if blake3::hash(body).as_bytes() != sum {
        return Err("checksum mismatch (damaged or truncated)".into());
    }
    let word = |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    let (found_dims, count) = (word(8) as usize, word(12) as usize);
    if found_dims != dims {
        return Err(format!("{found_dims} dimensions, not {dims}"));
    }
    let entry = 32 + 4 * dims;
    if body.len() != HEADER + count * entry {
        return Err(format!("{} bytes for {count} entries", bytes.len()));
    }
    let mut out = Vec::with_capacity(count);
    let mut last: Option<Key> = None;
    for chunk in body[HEADER..].chunks_exact(entry) {
        let mut key = [0u8; 32];
        key.copy_from_slice(&chunk[..32]);
        if shard_of(&key) != shard || last.is_some_and(|l| l >= key) {
            return Err("keys out of order or in the wrong shard".into());
        }
        last = Some(key);
        let vector: Vec<f32> = chunk[32..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if vector.iter().any(|x| !x.is_finite()) {
            return Err("a vector holds NaN or infinity".into());
        }
        out.push((key, vector));
    }
    Ok(out)
}

/// What a build learnt about one shard it fetched.
#[derive(Default)]
pub(super) struct FetchedShard {
    /// Every key the server's shard holds.
    keys: HashSet<Key>,
    /// Its entries the build did not ask for (kept to merge on upload).
    others: Vec<(Key, Vec<f32>)>,
}

/// A shard's entries: keys with their vectors.
type Entries = Vec<(Key, Vec<f32>)>;

/// Fetched shards by space, dimensions and shard number.
pub(super) type Fetched = HashMap<(String, usize, usize), FetchedShard>;

impl RemoteCache {
    /// GET one shard; `Ok(None)` if the server has none (or a bad one,
    /// reported: it is replaced on upload).
    fn get_shard(
        &self,
        space: &str,
        dims: usize,
        shard: usize,
    ) -> Result<Option<Entries>, ClientError> {
        let Some(bytes) = self.client.get(
            Store::ActionCache,
            &shard_key(space, dims, shard),
            MAX_SHARD_BYTES,
        )?
        else {
            return Ok(None);
        };
        if let Ok(mut s) = self.summary.lock() {
            s.downloaded_bytes += bytes.len() as u64;
        }
        match decode(&bytes, dims, shard) {
            Ok(entries) => Ok(Some(entries)),
            Err(why) => {
                self.problem(format!(
                    "remote vector shard {shard} of space {} is unusable ({why}); ignored",
                    &space[..12.min(space.len())]
                ));
                Ok(None)
            }
        }
    }
}

impl SharedVectors for RemoteCache {
    fn fetch(&self, space: &str, dims: usize, keys: &[Key]) -> Vec<(Key, Vec<f32>)> {
        if self.off.load(Ordering::SeqCst) || keys.is_empty() {
            return Vec::new();
        }
        let wanted: HashSet<Key> = keys.iter().copied().collect();
        let mut shards: Vec<usize> = wanted.iter().map(shard_of).collect();
        shards.sort_unstable();
        shards.dedup();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL.min(shards.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&shard) = shards.get(i) else { break };
                    if self.off.load(Ordering::SeqCst) {
                        break;
                    }
                    match self.get_shard(space, dims, shard) {
                        Ok(found) => {
                            if let Ok(mut r) = results.lock() {
                                r.push((shard, found.unwrap_or_default()));
                            }
                        }
                        Err(e) => {
                            self.switch_off(&e);
                            break;
                        }
                    }
                });
            }
        });
        let mut got = Vec::new();
        let mut fetched = match self.fetched.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        for (shard, entries) in results.into_inner().unwrap_or_default() {
            let state = fetched.entry((space.to_string(), dims, shard)).or_default();
            for (key, vector) in entries {
                state.keys.insert(key);
                if wanted.contains(&key) {
                    got.push((key, vector));
                } else {
                    state.others.push((key, vector));
                }
            }
        }
        got.sort_by_key(|e| e.0);
        if let Ok(mut s) = self.summary.lock() {
            s.vectors_downloaded += got.len() as u64;
        }
        got
    }

    fn offer(&self, space: &str, dims: usize, all: &[Key], get: &dyn Fn(&Key) -> Option<Vec<f32>>) {
        if !self.options.upload || self.off.load(Ordering::SeqCst) {
            return;
        }
        let mut fetched = match self.fetched.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        let mut by_shard: BTreeMap<usize, Vec<&Key>> = BTreeMap::new();
        for key in all {
            by_shard.entry(shard_of(key)).or_default().push(key);
        }
        let mut uploads: Vec<(usize, Vec<u8>, usize)> = Vec::new();
        for (shard, keys) in by_shard {
            // Only shards this build fetched: of the others it knows
            // nothing, and their keys were all in the local cache.
            let Some(state) = fetched.remove(&(space.to_string(), dims, shard)) else {
                continue;
            };
            if keys.iter().all(|k| state.keys.contains(*k)) {
                continue;
            }
            let mut entries: BTreeMap<Key, Vec<f32>> = BTreeMap::new();
            for key in &keys {
                match get(key) {
                    Some(v) if v.len() == dims => {
                        entries.insert(**key, v);
                    }
                    // A vector the local cache cannot give: upload nothing
                    // of this shard rather than a shard that lacks it.
                    _ => {
                        entries.clear();
                        break;
                    }
                }
            }
            if entries.is_empty() {
                continue;
            }
            let own = entries.len();
            let added = keys.iter().filter(|k| !state.keys.contains(**k)).count();
            for (key, vector) in state.others.into_iter().take(own) {
                entries.entry(key).or_insert(vector);
            }
            uploads.push((shard, encode(dims, &entries), added));
        }
        drop(fetched);
        if uploads.is_empty() {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let space = space.to_string();
        let spawned = std::thread::Builder::new()
            .name("pipe-upload-vectors".into())
            .spawn(move || {
                for (shard, bytes, added) in uploads {
                    if me.off.load(Ordering::SeqCst) {
                        return;
                    }
                    match me
                        .client
                        .put(Store::ActionCache, &shard_key(&space, dims, shard), &bytes)
                    {
                        Ok(()) => {
                            if let Ok(mut s) = me.summary.lock() {
                                s.uploaded_bytes += bytes.len() as u64;
                                s.vectors_uploaded += added as u64;
                            }
                        }
                        Err(e) => {
                            me.switch_off(&e);
                            return;
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut u) = self.uploads.lock() {
                    u.push(handle);
                }
            }
            Err(e) => self.problem(format!(
                "an upload of vectors to {} could not start: {e}",
                self.url()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, n: u8) -> Key {
        let mut k = [n; 32];
        k[0] = first;
        k
    }

    #[test]
    fn a_shard_round_trips_and_every_damage_is_caught() {
        let dims = 3;
        let mut entries = BTreeMap::new();
        entries.insert(key(4, 1), vec![1.0, 2.0, 3.0]);
        entries.insert(key(5, 2), vec![-1.0, 0.5, 0.0]);
        let shard = shard_of(&key(4, 1));
        assert_eq!(shard, shard_of(&key(5, 2)));
        let bytes = encode(dims, &entries);
        let back = decode(&bytes, dims, shard).expect("sound");
        assert_eq!(back, entries.clone().into_iter().collect::<Vec<_>>());

        assert!(decode(&bytes, 4, shard).is_err(), "other dimensions");
        assert!(decode(&bytes, dims, shard + 1).is_err(), "other shard");
        assert!(
            decode(&bytes[..bytes.len() - 1], dims, shard).is_err(),
            "truncated"
        );
        let mut flipped = bytes.clone();
        flipped[HEADER + 40] ^= 1;
        assert!(decode(&flipped, dims, shard).is_err(), "a flipped bit");
        let mut nan = BTreeMap::new();
        nan.insert(key(4, 1), vec![f32::NAN, 0.0, 0.0]);
        assert!(decode(&encode(dims, &nan), dims, shard).is_err(), "NaN");
    }
}
