//! Writing outputs safely: everything is written to a temporary file beside
//! its destination and renamed into place, so a failed or killed build never
//! leaves a half-written artifact and never damages the last good one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Prefix of every temporary file pipe creates next to an output; leftovers
/// of a killed build are recognisable (and removed by `pipe clean`).
pub const TEMP_PREFIX: &str = ".pipe-tmp-";

/// A temporary file in the same directory as `dest` (so the final rename is
/// atomic), removed on drop unless persisted.
pub fn temp_beside(dest: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = parent_dir(dest);
    fs::create_dir_all(dir)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{name}."))
        .tempfile_in(dir)
}

/// A temporary path (not yet created) beside `dest`, for tools that insist
/// on creating the file themselves (SQLite's `VACUUM INTO`, a user command).
/// The caller must remove it on failure; [`TempPath`] does so on drop.
pub fn temp_path_beside(dest: &Path) -> io::Result<TempPath> {
    let file = temp_beside(dest)?;
    let path = file.into_temp_path();
    let owned = path.to_path_buf();
    // Remove the placeholder so the tool can create the file itself; the
    // random name stays reserved in practice (same directory, our prefix).
    path.close()?;
    Ok(TempPath { path: owned, keep: false })
}

/// A path that is deleted on drop unless [`TempPath::persist`] moved it into place.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    /// The temporary path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Atomically rename the temporary file onto `dest`.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Write `bytes` to `dest` atomically (temporary file, fsync-free rename).
///
/// Durability against power loss is not a goal (a rebuild recreates any
/// output); atomicity against crashes and kills is.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = temp_beside(dest)?;
    file.write_all(bytes)?;
    file.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Copy `src` to `dest` atomically.
pub fn copy_atomic(src: &Path, dest: &Path) -> io::Result<()> {
    let tmp = temp_path_beside(dest)?;
    fs::copy(src, tmp.path())?;
    tmp.persist(dest)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.txt");
        write_atomic(&dest, b"one").unwrap();
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn dropped_temp_path_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("db.sqlite");
        let tmp = temp_path_beside(&dest).unwrap();
        fs::write(tmp.path(), b"partial").unwrap();
        let p = tmp.path().to_path_buf();
        drop(tmp);
        assert!(!p.exists());
        assert!(!dest.exists());
    }
}
