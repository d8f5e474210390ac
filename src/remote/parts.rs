//! The database stages' cached parts in the remote cache
//! ([`crate::stage::SharedParts`]): a machine whose movies-db or records-db
//! target is stale (an edited title) but whose vector part's key is
//! unchanged takes that part from the cache instead of rebuilding it from
//! the embeddings file.
//!
//! A part is a CAS blob (its bytes, by sha256) named by an action-cache
//! entry keyed by the part's key: a small JSON listing the key, the size,
//! the sha256 and the blake3. The blob streams into a temporary beside the
//! cache file and is checked against all three before it is renamed into
//! place; anything else is a reported miss, and the part is built.

use super::client::Store;
use super::{artifact, pack, RemoteCache};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::Ordering;

/// The format of part entries; part of every key.
const PART_FORMAT: &str = "pipe-part-1";
/// The largest part entry read.
const MAX_PART_ENTRY_BYTES: u64 = 64 << 10;

/// What the action cache holds for a part.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PartEntry {
    format: String,
    key: String,
    size: u64,
    sha256: String,
    blake3: String,
}

fn entry_key(key: &str) -> String {
    super::sha256_hex(format!("{PART_FORMAT} {} {key}", env!("CARGO_PKG_VERSION")).as_bytes())
}

impl RemoteCache {
    fn fetch_part_now(&self, key: &str, dest: &Path) -> Result<bool, String> {
        let raw = match self
            .client
            .get(Store::ActionCache, &entry_key(key), MAX_PART_ENTRY_BYTES)
        {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(false),
            Err(e) => {
                self.switch_off(&e);
                return Ok(false);
            }
        };
        let entry: PartEntry =
            serde_json::from_slice(&raw).map_err(|e| format!("not a pipe part entry: {e}"))?;
        if entry.format != PART_FORMAT || entry.key != key {
            return Err(format!("an entry for another part ({})", entry.format));
        }
        let temp = artifact::temp_beside(dest).map_err(|e| format!("cannot write: {e}"))?;
        let mut sink = pack::Hashing::new(std::io::BufWriter::with_capacity(256 << 10, temp));
        match self
            .client
            .get_into(Store::Cas, &entry.sha256, entry.size, &mut sink)
        {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("blob {} is not on the server", entry.sha256)),
            Err(Err(e)) => {
                self.switch_off(&e);
                return Ok(false);
            }
            Err(Ok(e)) => return Err(format!("cannot write: {e}")),
        }
        let (writer, sha, digest, len) = sink.finish();
        let temp = writer
            .into_inner()
            .map_err(|e| format!("cannot write: {}", e.error()))?;
        if len != entry.size || sha != entry.sha256 || digest.to_hex().as_str() != entry.blake3 {
            return Err(format!(
                "blob {} is damaged or truncated ({len} bytes, {} expected)",
                entry.sha256, entry.size
            ));
        }
        temp.persist(dest)
            .map_err(|e| format!("cannot install {}: {}", dest.display(), e.error))?;
        if let Ok(mut s) = self.summary.lock() {
            s.parts_downloaded += 1;
            s.downloaded_bytes += len;
        }
        Ok(true)
    }

    fn upload_part(&self, key: &str, mut file: std::fs::File) -> Result<u64, String> {
        use std::io::Seek;
        let mut sink = pack::Hashing::new(std::io::sink());
        std::io::copy(&mut file, &mut sink).map_err(|e| e.to_string())?;
        let (_, sha, digest, size) = sink.finish();
        file.rewind().map_err(|e| e.to_string())?;
        let mut sent = 0;
        let client_err = |e: super::client::ClientError| {
            self.switch_off(&e);
            String::new()
        };
        if !self.client.exists(Store::Cas, &sha).map_err(client_err)? {
            self.client
                .put_file(Store::Cas, &sha, &file)
                .map_err(client_err)?;
            sent += size;
        }
        let entry = PartEntry {
            format: PART_FORMAT.into(),
            key: key.into(),
            size,
            sha256: sha,
            blake3: digest.to_hex().to_string(),
        };
        let json = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
        self.client
            .put(Store::ActionCache, &entry_key(key), &json)
            .map_err(client_err)?;
        Ok(sent + json.len() as u64)
    }
}

impl crate::stage::SharedParts for RemoteCache {
    fn fetch_part(&self, key: &str, dest: &Path) -> bool {
        if self.off.load(Ordering::SeqCst) {
            return false;
        }
        match self.fetch_part_now(key, dest) {
            Ok(found) => found,
            Err(why) => {
                self.problem(format!(
                    "remote cache part {} is unusable ({why}); built locally",
                    &key[..16.min(key.len())]
                ));
                false
            }
        }
    }

    fn offer_part(&self, key: &str, path: &Path) {
        if !self.options.upload || self.off.load(Ordering::SeqCst) {
            return;
        }
        // Opened now: the upload reads this file even if a later build
        // replaces the cache entry.
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.problem(format!("a part was not uploaded: {e}"));
                return;
            }
        };
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let key = key.to_string();
        let spawned = std::thread::Builder::new()
            .name("pipe-upload-part".into())
            .spawn(move || match me.upload_part(&key, file) {
                Ok(bytes) => {
                    if let Ok(mut s) = me.summary.lock() {
                        s.parts_uploaded += 1;
                        s.uploaded_bytes += bytes;
                    }
                }
                // An empty message: the cache switched off and said so.
                Err(why) if why.is_empty() => {}
                Err(why) => me.problem(format!("a part was not uploaded: {why}")),
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut u) = self.uploads.lock() {
                    u.push(handle);
                }
            }
            Err(e) => self.problem(format!("an upload could not start: {e}")),
        }
    }
}
