//! `pipe.lock`: committed, sorted, human-readable. For every target it
//! records the fingerprint and the hashes of its inputs and outputs, so that
//! `pipe build --locked` can prove in CI that the committed artifacts are
//! exactly what the inputs produce.

use crate::graph::{Output, Target};
use crate::state::TargetRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// File name, at the project root.
pub const LOCK_NAME: &str = "pipe.lock";

const HEADER: &str = "# pipe.lock: the hashes of every target's inputs and outputs, written by\n\
# `pipe build`. Commit it; `pipe build --locked` fails if a build would change it.\n\n";

/// The whole lock file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    /// Format version.
    pub version: u32,
    /// One entry per target, by name.
    #[serde(default)]
    pub targets: BTreeMap<String, LockEntry>,
}

/// One target's line in the lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockEntry {
    /// The fingerprint it was built with (blake3 hex).
    pub fingerprint: String,
    /// Input path → content hash (or `missing`).
    pub inputs: BTreeMap<String, String>,
    /// Output path → content hash. A directory of per-record files is one
    /// line: a digest over every (name, hash) and the file count.
    pub outputs: BTreeMap<String, String>,
}

impl LockFile {
    /// Read the lock at `root`; `Ok(None)` if there is none.
    pub fn load(root: &Path) -> io::Result<Option<LockFile>> {
        let path = root.join(LOCK_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| io::Error::other(format!("{}: {}", path.display(), e.message()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The text of the file, deterministic for the same content.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Write atomically.
    pub fn save(&self, root: &Path) -> io::Result<()> {
        crate::artifact::write_atomic(&root.join(LOCK_NAME), self.render().as_bytes())
    }
}

/// The lock entry of a built target.
pub fn entry(target: &Target, record: &TargetRecord) -> LockEntry {
    let inputs = record
        .inputs
        .iter()
        .map(|(p, h)| {
            (
                p.display().to_string(),
                if h.is_empty() {
                    "missing".to_string()
                } else {
                    h.clone()
                },
            )
        })
        .collect();
    let mut outputs = BTreeMap::new();
    for declared in &target.outputs {
        match declared {
            Output::File(path) => {
                let hash = record
                    .outputs
                    .iter()
                    .find(|o| &o.path == path)
                    .map(|o| blake3::Hash::from_bytes(o.hash).to_hex().to_string())
                    .unwrap_or_else(|| "missing".into());
                outputs.insert(path.display().to_string(), hash);
            }
            Output::Dir { dir, .. } => {
                let mut digest = blake3::Hasher::new();
                let mut count = 0usize;
                // Byte prefix with a separator: cheaper than Path::starts_with
                // over every file of a per-movie directory.
                let prefix = format!("{}/", dir.display());
                for o in record.outputs.iter().filter(|o| {
                    o.path
                        .as_os_str()
                        .as_encoded_bytes()
                        .starts_with(prefix.as_bytes())
                }) {
                    digest
                        .update(o.path.to_string_lossy().as_bytes())
                        .update(b"\0")
                        .update(&o.hash);
                    count += 1;
                }
                outputs.insert(
                    declared.display(),
                    format!("{} ({count} files)", digest.finalize().to_hex()),
                );
            }
        }
    }
    LockEntry {
        fingerprint: blake3::Hash::from_bytes(record.fingerprint)
            .to_hex()
            .to_string(),
        inputs,
        outputs,
    }
}

/// Lines that differ between two locks, for the `--locked` error.
pub fn diff(old: &LockFile, new: &LockFile) -> Vec<String> {
    let mut out = Vec::new();
    for (name, n) in &new.targets {
        match old.targets.get(name) {
            None => out.push(format!("{name}: not in pipe.lock")),
            Some(o) => {
                for (k, v) in &n.inputs {
                    if o.inputs.get(k) != Some(v) {
                        out.push(format!(
                            "{name}: input {k} is {v}, pipe.lock has {}",
                            o.inputs.get(k).map_or("nothing", String::as_str)
                        ));
                    }
                }
                for (k, v) in &n.outputs {
                    if o.outputs.get(k) != Some(v) {
                        out.push(format!(
                            "{name}: output {k} is {v}, pipe.lock has {}",
                            o.outputs.get(k).map_or("nothing", String::as_str)
                        ));
                    }
                }
                if out.is_empty() && o.fingerprint != n.fingerprint {
                    out.push(format!(
                        "{name}: configuration changed (fingerprint {} → {})",
                        &o.fingerprint[..12.min(o.fingerprint.len())],
                        &n.fingerprint[..12]
                    ));
                }
            }
        }
    }
    for name in old.targets.keys() {
        if !new.targets.contains_key(name) {
            out.push(format!("{name}: in pipe.lock but no longer a target"));
        }
    }
    out
}
