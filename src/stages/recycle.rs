//! Warm memory for the next build's large files: the database a build
//! replaces is kept (moved under `.pipe/cache/recycle/`, one slot per
//! output) until the next build of the same file is about to write, which
//! deletes it first and so writes into the memory it just freed.
//!
//! Why: writing a file puts every byte in a page of the page cache, and
//! pages the kernel has had free for a while are slow to touch again on
//! virtual machines that hand free memory back to the host (free page
//! reporting, balloons: Firecracker, most cloud VMs). Measured on a 2-core
//! Firecracker VM, writing 300 MB into a new file took 0.62 s when the
//! memory had been free for seconds and 0.09 s when a file of that size
//! was deleted just before. A one-title edit at 100,000 movies writes
//! 670 MB of databases. The price is disk space: one older copy of each
//! database.
//!
//! Nothing is ever written into a kept file: it is only deleted. A kept file
//! that another program still has open is simply not freed by the deletion
//! (its pages stay that program's), and a file that cannot be moved there
//! (another file system, or one that cannot swap two files) is not kept;
//! neither changes any result.

use std::path::{Path, PathBuf};

/// Files smaller than this are not kept: they cost little to write anew.
const KEEP_BYTES: u64 = 8 << 20;

/// The directory of the kept files, under the project's state directory.
fn dir(root: &Path) -> PathBuf {
    root.join(crate::state::STATE_DIR)
        .join("cache")
        .join("recycle")
}

/// Where the old file of the output `rel` (project-relative) is kept: a
/// name derived from the path, so each output has one slot.
fn slot(root: &Path, rel: &Path) -> PathBuf {
    let hash = blake3::hash(rel.as_os_str().as_encoded_bytes()).to_hex();
    dir(root).join(format!("{}.old", &hash[..32]))
}

/// Keep the file that the new file of `rel` (project-relative) replaced
/// in its slot. Only a file still named can be kept (where the file system
/// swaps files, see [`crate::artifact::TempPath::replace`]); any other is
/// let go.
pub(crate) fn keep_replaced(root: &Path, rel: &Path, old: crate::artifact::Replaced) {
    match old {
        crate::artifact::Replaced::Named(file) => keep_unused(root, rel, file),
        other => other.release(),
    }
}

/// Keep the file `tmp` of `rel` (an old one, or a new one whose bytes
/// turned out equal to the file in place) instead of deleting it.
pub(crate) fn keep_unused(root: &Path, rel: &Path, tmp: crate::artifact::TempPath) {
    let large = std::fs::metadata(tmp.path()).is_ok_and(|m| m.len() >= KEEP_BYTES);
    if large {
        let _ = std::fs::create_dir_all(dir(root));
        let _ = tmp.persist(&slot(root, rel));
    }
    // A small one is deleted as it is dropped.
}

/// Delete the kept file of `rel`, just before a new one is written: the
/// pages it frees are the ones the new file then takes.
pub(crate) fn release(root: &Path, rel: &Path) {
    let _ = std::fs::remove_file(slot(root, rel));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(path: &Path, byte: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![byte; KEEP_BYTES as usize]).unwrap();
    }

    #[test]
    fn a_replaced_file_is_kept_until_released_and_never_written() {
        let root = tempfile::tempdir().unwrap();
        let rel = Path::new("public/a.db");
        let dest = root.path().join(rel);
        let kept = slot(root.path(), rel);
        let replace = |byte: u8| {
            let tmp = crate::artifact::temp_path_beside(&dest).unwrap();
            big(tmp.path(), byte);
            if let Some(old) = tmp.replace(&dest).unwrap() {
                keep_replaced(root.path(), rel, old);
            }
        };
        replace(1);
        assert!(!kept.exists(), "nothing was replaced");
        replace(2);
        assert_eq!(std::fs::read(&kept).unwrap()[0], 1);
        assert_eq!(std::fs::read(&dest).unwrap()[0], 2);
        // Keeping again replaces the slot's file; releasing deletes it.
        replace(3);
        assert_eq!(std::fs::read(&kept).unwrap()[0], 2);
        release(root.path(), rel);
        assert!(!kept.exists());
        assert_eq!(std::fs::read(&dest).unwrap()[0], 3);
        // The file the slot held is deleted on a background thread.
        let temporaries = || -> Vec<_> {
            [dir(root.path()), dest.parent().unwrap().to_path_buf()]
                .iter()
                .flat_map(|d| std::fs::read_dir(d).unwrap())
                .map(|e| e.unwrap().file_name())
                .filter(|n| {
                    n.to_string_lossy()
                        .starts_with(crate::artifact::TEMP_PREFIX)
                })
                .collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !temporaries().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            temporaries().is_empty(),
            "no temporary is left: {:?}",
            temporaries()
        );
    }

    #[test]
    fn small_or_missing_files_are_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let rel = Path::new("small.db");
        let dest = root.path().join(rel);
        std::fs::write(&dest, b"tiny").unwrap();
        let tmp = crate::artifact::temp_path_beside(&dest).unwrap();
        std::fs::write(tmp.path(), b"new").unwrap();
        let old = tmp.replace(&dest).unwrap().unwrap();
        keep_replaced(root.path(), rel, old);
        assert!(!slot(root.path(), rel).exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
        release(root.path(), rel);
    }

    #[test]
    fn an_unused_temporary_is_kept_in_the_slot() {
        let root = tempfile::tempdir().unwrap();
        let rel = Path::new("out/b.db");
        let dest = root.path().join(rel);
        let tmp = crate::artifact::temp_path_beside(&dest).unwrap();
        big(tmp.path(), 3);
        let tmp_path = tmp.path().to_path_buf();
        keep_unused(root.path(), rel, tmp);
        assert!(!tmp_path.exists());
        assert_eq!(std::fs::read(slot(root.path(), rel)).unwrap()[0], 3);
    }
}
