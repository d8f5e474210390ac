//! Packing a target's outputs into few blobs, and installing them back.
//!
//! A target may own 30,000 small files (the per-movie JSON): one request
//! per file would make the cache slower than building. Small files go into
//! one gzip-compressed pack per target; large files (the databases) are
//! blobs of their own, uncompressed, so that two targets or two builds that
//! produce the same database share one blob, and no time is spent
//! compressing vectors that do not compress.
//!
//! Installing checks every file's blake3 against the action-cache entry
//! before anything is renamed into place, writes each changed file to a
//! temporary beside it, and renames them all at the end: a corrupt or
//! truncated blob changes nothing.

use crate::artifact;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Files at least this large are blobs of their own.
pub const OWN_BLOB_BYTES: u64 = 1 << 20;

/// Magic line at the start of an (uncompressed) pack.
const PACK_MAGIC: &[u8] = b"pipe-pack-1\n";

/// One file of a pack being written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedFile {
    /// Project-relative path, `/`-separated.
    pub path: String,
    /// Its bytes' blake3.
    pub blake3: [u8; 32],
    /// Its length.
    pub size: u64,
}

/// Pack `files` (project-relative, read under `root`) into one gzip stream
/// written to `out`, in the order given. Deterministic for the same files
/// and flate2 version.
pub fn pack_into(root: &Path, files: &[PackedFile], out: &mut dyn Write) -> io::Result<()> {
    let mut gz = GzEncoder::new(out, flate2::Compression::fast());
    gz.write_all(PACK_MAGIC)?;
    for f in files {
        let bytes = std::fs::read(root.join(&f.path))?;
        if bytes.len() as u64 != f.size || blake3::hash(&bytes).as_bytes() != &f.blake3 {
            return Err(io::Error::other(format!(
                "{} changed while it was being packed",
                f.path
            )));
        }
        gz.write_all(&(f.path.len() as u32).to_le_bytes())?;
        gz.write_all(f.path.as_bytes())?;
        gz.write_all(&f.size.to_le_bytes())?;
        gz.write_all(&f.blake3)?;
        gz.write_all(&bytes)?;
    }
    gz.finish()?;
    Ok(())
}

/// A writer that counts and hashes (sha256 for the cache's keys, blake3
/// for pipe's own) what passes through it, so that a blob is checked while
/// it streams to or from disk, never held in memory.
pub struct Hashing<W> {
    inner: W,
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    len: u64,
}

impl<W: Write> Hashing<W> {
    /// Hash what is written to `inner`.
    pub fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            sha256: sha2::Digest::new(),
            blake3: blake3::Hasher::new(),
            len: 0,
        }
    }

    /// The writer back, with the sha256 (hex), blake3 and length of
    /// everything written.
    pub fn finish(self) -> (W, String, blake3::Hash, u64) {
        let sha = sha2::Digest::finalize(self.sha256);
        let hex = sha.iter().map(|b| format!("{b:02x}")).collect();
        (self.inner, hex, self.blake3.finalize(), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.sha256, &buf[..n]);
        self.blake3.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file checked and waiting beside its destination.
pub struct Staged {
    /// Project-relative destination.
    pub path: PathBuf,
    /// The temporary holding its bytes (removed when dropped).
    pub temp: tempfile::TempPath,
}

/// Why a download cannot be installed (a cache miss to report).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Corrupt(pub String);

/// Read a pack and stage every file of `expected` that `needs_write` asks
/// for: each is checked (path, size, blake3) and written to a temporary
/// beside its destination. Nothing is renamed; drop the result to undo.
pub fn unpack(
    root: &Path,
    blob: impl Read,
    expected: &[PackedFile],
    needs_write: &dyn Fn(&PackedFile) -> bool,
) -> Result<Vec<Staged>, Corrupt> {
    let bad = |what: String| Corrupt(format!("the pack {what}"));
    let mut gz = GzDecoder::new(blob);
    let mut magic = [0u8; PACK_MAGIC.len()];
    gz.read_exact(&mut magic)
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    if magic != PACK_MAGIC {
        return Err(bad("is not a pipe pack".into()));
    }
    let mut staged = Vec::new();
    for want in expected {
        let mut len = [0u8; 4];
        gz.read_exact(&mut len)
            .map_err(|e| bad(format!("ends early: {e}")))?;
        let len = u32::from_le_bytes(len) as usize;
        if len > 4096 {
            return Err(bad("names a path longer than 4096 bytes".into()));
        }
        let mut path = vec![0u8; len];
        let mut size = [0u8; 8];
        let mut digest = [0u8; 32];
        gz.read_exact(&mut path)
            .and_then(|_| gz.read_exact(&mut size))
            .and_then(|_| gz.read_exact(&mut digest))
            .map_err(|e| bad(format!("ends early: {e}")))?;
        let size = u64::from_le_bytes(size);
        if path != want.path.as_bytes() || size != want.size || digest != want.blake3 {
            return Err(bad(format!(
                "does not hold {} as the cache entry lists it",
                want.path
            )));
        }
        let mut content = (&mut gz).take(size);
        if needs_write(want) {
            let dest = root.join(&want.path);
            // One temporary file per member, created once and written
            // through a buffer: the per-movie JSON set is 30,000 of them.
            let file = artifact::temp_beside(&dest)
                .map_err(|e| Corrupt(format!("cannot write beside {}: {e}", dest.display())))?;
            let mut out = io::BufWriter::with_capacity(64 << 10, file);
            let digest = copy_hashing(&mut content, &mut out)
                .map_err(|e| bad(format!("ends early in {}: {e}", want.path)))?;
            let file = out
                .into_inner()
                .map_err(|e| Corrupt(format!("cannot write beside {}: {e}", dest.display())))?;
            check(want, digest)?;
            staged.push(Staged {
                path: PathBuf::from(&want.path),
                temp: file.into_temp_path(),
            });
        } else {
            let digest = copy_hashing(&mut content, &mut io::sink())
                .map_err(|e| bad(format!("ends early in {}: {e}", want.path)))?;
            check(want, digest)?;
        }
    }
    let mut rest = [0u8; 1];
    if gz
        .read(&mut rest)
        .map_err(|e| bad(format!("cannot be read: {e}")))?
        != 0
    {
        return Err(bad("holds more than the cache entry lists".into()));
    }
    Ok(staged)
}

/// Stage a copy of `staged` (a file already checked against `want`'s
/// content) for `want`: two outputs with the same bytes share one blob.
pub fn stage_copy(root: &Path, want: &PackedFile, staged: &Path) -> Result<Staged, Corrupt> {
    let dest = root.join(&want.path);
    let cannot = |e: io::Error| Corrupt(format!("cannot write beside {}: {e}", dest.display()));
    let temp = artifact::temp_beside(&dest)
        .map_err(cannot)?
        .into_temp_path();
    std::fs::copy(staged, &temp).map_err(cannot)?;
    Ok(Staged {
        path: PathBuf::from(&want.path),
        temp,
    })
}

/// Check a downloaded file blob against the file the entry lists.
pub fn check_file(want: &PackedFile, size: u64, digest: blake3::Hash) -> Result<(), Corrupt> {
    if size != want.size {
        return Err(Corrupt(format!(
            "the blob of {} has {size} bytes, the cache entry says {}",
            want.path, want.size
        )));
    }
    check(want, digest)
}

fn check(want: &PackedFile, got: blake3::Hash) -> Result<(), Corrupt> {
    if got.as_bytes() != &want.blake3 {
        return Err(Corrupt(format!(
            "{} does not have the content the cache entry lists (blake3 {} ≠ {})",
            want.path,
            got.to_hex(),
            blake3::Hash::from_bytes(want.blake3).to_hex()
        )));
    }
    Ok(())
}

fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(root: &Path, path: &str, bytes: &[u8]) -> PackedFile {
        let abs = root.join(path);
        std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
        std::fs::write(&abs, bytes).unwrap();
        PackedFile {
            path: path.into(),
            blake3: *blake3::hash(bytes).as_bytes(),
            size: bytes.len() as u64,
        }
    }

    fn packed(root: &Path, files: &[PackedFile]) -> Vec<u8> {
        let mut out = Vec::new();
        pack_into(root, files, &mut out).unwrap();
        out
    }

    #[test]
    fn a_pack_round_trips_and_stages_only_what_is_asked_for() {
        let a = tempfile::tempdir().unwrap();
        let files = vec![
            file(a.path(), "public/movies/a.json", b"{\"a\": 1}"),
            file(a.path(), "public/movies/b.json", b""),
        ];
        let blob = packed(a.path(), &files);
        let b = tempfile::tempdir().unwrap();
        let staged = unpack(b.path(), &blob[..], &files, &|f| f.path.ends_with("a.json")).unwrap();
        assert_eq!(staged.len(), 1);
        assert_eq!(std::fs::read(&staged[0].temp).unwrap(), b"{\"a\": 1}");
        // Nothing is in place until the caller renames it.
        assert!(!b.path().join("public/movies/a.json").exists());
    }

    #[test]
    fn a_damaged_or_truncated_pack_is_refused_and_leaves_no_temporary() {
        let a = tempfile::tempdir().unwrap();
        let files = vec![file(a.path(), "out/x.json", b"0123456789abcdef")];
        let blob = packed(a.path(), &files);
        let b = tempfile::tempdir().unwrap();
        let truncated = &blob[..blob.len() - 9];
        assert!(unpack(b.path(), truncated, &files, &|_| true).is_err());
        let mut other = files.clone();
        other[0].blake3[0] ^= 1;
        assert!(unpack(b.path(), &blob[..], &other, &|_| true).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(b.path().join("out"))
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
