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
    // tempfile creates files 0600; outputs are published files, readable
    // like any other (0644, as SQLite and most tools create them).
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{name}."))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
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
    Ok(TempPath {
        path: owned,
        keep: false,
    })
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

    /// Atomically rename the temporary file onto `dest`; the file it
    /// replaces is deleted (see [`TempPath::replace`]).
    pub fn persist(self, dest: &Path) -> io::Result<()> {
        if let Some(old) = self.replace(dest)? {
            old.release();
        }
        Ok(())
    }

    /// Atomically put the temporary file at `dest`, and hand back the file
    /// it replaced (if any) under the temporary's name, deleted on drop
    /// unless kept.
    ///
    /// Where the file system can, the two are swapped (`renameat2` with
    /// `RENAME_EXCHANGE`) rather than the new one renamed over the old:
    /// ext4 (`auto_da_alloc`) starts writing back every dirty page of a
    /// file renamed over another, in the renaming thread, which for a
    /// 350 MB database just written took 150–250 ms of the build's
    /// critical path. A rename onto a missing file (a first build) never
    /// did that; a swap is the same for a rebuild. Elsewhere (no swap, or
    /// another system) the file is renamed over the old one, whose handle
    /// is returned instead so that it is still freed off the critical path.
    pub fn replace(mut self, dest: &Path) -> io::Result<Option<Replaced>> {
        let replaces_file = fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_file());
        #[cfg(target_os = "linux")]
        if replaces_file {
            use rustix::fs::{renameat_with, RenameFlags, CWD};
            if renameat_with(CWD, &self.path, CWD, dest, RenameFlags::EXCHANGE).is_ok() {
                // `self.path` now names the old file.
                return Ok(Some(Replaced::Named(self)));
            }
        }
        let replaced = replaces_file
            .then(|| fs::File::open(dest).ok())
            .flatten()
            .filter(|f| f.metadata().is_ok_and(|m| m.len() >= RELEASE_LATER_BYTES));
        fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(replaced.map(Replaced::Open))
    }
}

/// The file a [`TempPath::replace`] replaced: still named (under the
/// temporary's name) when the two were swapped, else only an open handle.
#[derive(Debug)]
pub enum Replaced {
    /// Swapped out: the old file under the temporary's name.
    Named(TempPath),
    /// Renamed over: the last handle of the old file, if it was large.
    Open(fs::File),
}

impl Replaced {
    /// Let the old file go. A large file is let go on a background thread:
    /// freeing its blocks and cached pages happens when its last link and
    /// last open handle are gone, and for a 100 MB database that took
    /// 60–120 ms on ext4, all of it on the build's critical path.
    pub fn release(self) {
        // A name that is not the file's last (a database kept for the next
        // build, a published hard link) costs only an unlink: removed here,
        // so that no temporary name outlives the process.
        let large = match &self {
            Replaced::Named(t) => fs::metadata(t.path()).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.len() >= RELEASE_LATER_BYTES && m.nlink() == 1
            }),
            Replaced::Open(_) => true,
        };
        if large {
            // If no thread can be had, it is simply dropped here.
            let _ = std::thread::Builder::new()
                .name("pipe-release".into())
                .spawn(move || drop(self));
        }
    }
}

/// Replaced files at least this large are freed in the background (see
/// [`Replaced::release`]); smaller ones are not worth a thread.
const RELEASE_LATER_BYTES: u64 = 8 << 20;

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
    // Swapped into place, not renamed over the old file (see
    // [`TempPath::replace`]): a build's 9 MB record of its JSON files took
    // 300 ms to rename over the last one.
    let path = file.into_temp_path();
    let owned = TempPath {
        path: path.to_path_buf(),
        keep: false,
    };
    path.keep().map_err(|e| e.error)?;
    owned.persist(dest)
}

/// Write `bytes` to a new temporary file beside `dest`, closed, to be
/// renamed onto `dest` later ([`tempfile::TempPath::persist`]) or removed
/// when dropped. Lets a stage write many files first and rename them all at
/// the end, so that a failure or kill before that changes none of them.
pub fn write_temp_beside(dest: &Path, bytes: &[u8]) -> io::Result<tempfile::TempPath> {
    let mut file = temp_beside(dest)?;
    file.write_all(bytes)?;
    Ok(file.into_temp_path())
}

/// Make `dest` a second name of the file `src`, atomically (a hard link
/// made under a temporary name, then renamed into place), or a copy where
/// the file system cannot link (another device, no hard links).
///
/// This is how cargo puts its artifacts in `target/debug` too: no second
/// copy of a 100 MB database to write and keep. Both names stay correct
/// because pipe never writes into an output: a new build renames a new
/// file onto `src` and links `dest` to that one in turn.
pub fn link_or_copy_atomic(src: &Path, dest: &Path) -> io::Result<()> {
    let tmp = temp_path_beside(dest)?;
    if fs::hard_link(src, tmp.path()).is_err() {
        fs::copy(src, tmp.path())?;
    }
    tmp.persist(dest)
}

/// Remove pipe's own leftover temporaries (files named [`TEMP_PREFIX`]…,
/// which a killed build leaves) directly inside each of `dirs`, and, for
/// each of `trees`, anywhere below it. Nothing else is touched: not a file
/// of another name, not a directory. Only call it while holding the
/// project lock, so that no build of this project is writing them.
/// Returns the paths removed (or, with `dry_run`, that would be).
pub fn remove_temporaries(
    dirs: &std::collections::BTreeSet<PathBuf>,
    trees: &[PathBuf],
    dry_run: bool,
) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let sweep =
        |dir: &Path, recurse: bool, removed: &mut Vec<PathBuf>| -> io::Result<Vec<PathBuf>> {
            let mut subdirs = Vec::new();
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(subdirs),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    if recurse {
                        subdirs.push(entry.path());
                    }
                    continue;
                }
                if !entry
                    .file_name()
                    .as_encoded_bytes()
                    .starts_with(TEMP_PREFIX.as_bytes())
                {
                    continue;
                }
                let path = entry.path();
                if !dry_run {
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                }
                removed.push(path);
            }
            Ok(subdirs)
        };
    for dir in dirs {
        sweep(dir, false, &mut removed)?;
    }
    for tree in trees {
        let mut pending = vec![tree.clone()];
        while let Some(dir) = pending.pop() {
            pending.extend(sweep(&dir, true, &mut removed)?);
        }
    }
    removed.sort();
    removed.dedup();
    Ok(removed)
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
    fn link_or_copy_atomic_gives_the_same_bytes_under_a_second_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.db");
        let dest = dir.path().join("sub/b.db");
        fs::create_dir_all(dir.path().join("sub")).unwrap();
        fs::write(&src, b"one").unwrap();
        link_or_copy_atomic(&src, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        // A new file renamed onto the source, then linked again: the second
        // name follows; the old content is never written into.
        fs::write(dir.path().join("new"), b"two").unwrap();
        fs::rename(dir.path().join("new"), &src).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        link_or_copy_atomic(&src, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let left: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
    }

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
    fn remove_temporaries_removes_only_pipes_own() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let state = dir.path().join(".pipe/cache/x");
        fs::create_dir_all(&out).unwrap();
        fs::create_dir_all(&state).unwrap();
        for f in [
            "out/.pipe-tmp-a.json.X1",
            "out/a.json",
            "out/pipe-tmp-b",
            "out/x.pipe-tmp-c",
            ".pipe/cache/x/.pipe-tmp-p.db.Y",
            ".pipe/hashes.bin",
        ] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        fs::create_dir_all(out.join(".pipe-tmp-dir")).unwrap();
        let dirs = std::collections::BTreeSet::from([out.clone(), dir.path().join("missing")]);
        let trees = [dir.path().join(".pipe")];
        let would = remove_temporaries(&dirs, &trees, true).unwrap();
        assert_eq!(would.len(), 2);
        assert!(out.join(".pipe-tmp-a.json.X1").exists());
        let removed = remove_temporaries(&dirs, &trees, false).unwrap();
        assert_eq!(removed, would);
        assert!(!out.join(".pipe-tmp-a.json.X1").exists());
        assert!(!state.join(".pipe-tmp-p.db.Y").exists());
        for kept in [
            "out/a.json",
            "out/pipe-tmp-b",
            "out/x.pipe-tmp-c",
            ".pipe/hashes.bin",
            "out/.pipe-tmp-dir",
        ] {
            assert!(dir.path().join(kept).exists(), "{kept}");
        }
    }

    #[test]
    fn replace_hands_back_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.db");
        let put = |bytes: &[u8]| {
            let tmp = temp_path_beside(&dest).unwrap();
            fs::write(tmp.path(), bytes).unwrap();
            tmp.replace(&dest).unwrap()
        };
        assert!(put(b"one").is_none(), "nothing to replace");
        let old = put(b"two").expect("the old file");
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        if let Replaced::Named(old) = &old {
            assert_eq!(fs::read(old.path()).unwrap(), b"one");
        }
        old.release();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the output is left");
        // A directory in the way is an error, never swapped out of place.
        let tmp = temp_path_beside(&dir.path().join("sub")).unwrap();
        fs::write(tmp.path(), b"x").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(tmp.replace(&dir.path().join("sub")).is_err());
        assert!(dir.path().join("sub").is_dir());
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
