//! Writing a set of files in one directory (one JSON file per movie or per
//! record), shared by the stages that do.
//!
//! A file is written only when its bytes change: unchanged files (and
//! their mtimes) are left alone. Changed files are written by one thread to
//! temporaries beside them while the caller renders the next batch on all
//! cores — creating and renaming files in one directory serialises on the
//! directory's lock in the kernel, so several writers only spin on it —
//! and are renamed into place together once all are written, so a failure
//! or a kill before that leaves every file as it was (the temporaries are
//! removed, or swept by the next build). Files the target wrote before and
//! no longer lists are deleted; nothing else in the directory is touched.
//!
//! One file made whole in a temporary beside its place (a database, an
//! embeddings file) is put in place the same way, by [`place`].

use crate::artifact;
use crate::stage::{OutputFile, PreviousFile, StageContext, StageError, StageOutput};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// What the last build wrote, for a quick "is this file unchanged?".
pub struct Previous<'a> {
    /// Keyed by the path's bytes: comparing 30,000 paths component by
    /// component in the executor's sorted map cost more than hashing the
    /// documents. The executor records paths as the stage reports them,
    /// so equal paths have equal bytes (a miss would only mean a needless
    /// rewrite).
    files: HashMap<&'a OsStr, &'a PreviousFile>,
}

impl<'a> Previous<'a> {
    /// The files `ctx`'s target wrote last time.
    pub fn of(ctx: &'a StageContext) -> Previous<'a> {
        Previous {
            files: ctx
                .previous
                .files
                .iter()
                .map(|(p, f)| (p.as_os_str(), f))
                .collect(),
        }
    }

    /// The record of `rel` (project-relative), if the last build wrote it.
    pub fn get(&self, rel: &Path) -> Option<&'a PreviousFile> {
        self.files.get(rel.as_os_str()).copied()
    }

    /// Whether `rel` holds exactly `hash`, as written by the last build.
    pub fn is_unchanged(&self, rel: &Path, hash: &blake3::Hash) -> bool {
        self.get(rel).is_some_and(|f| f.holds(hash))
    }
}

/// A changed file waiting in its temporary to be renamed into place.
pub type Staged<T> = Vec<(T, tempfile::TempPath)>;

/// Run `produce`, which hands batches of `(item, bytes)` to its argument
/// (`false` back: stop, the writer failed), while one thread writes each
/// to a temporary beside `path_of(item)` (project-relative). Returns the
/// staged temporaries; nothing is in place yet ([`commit`] does that).
pub fn stage<T, P, F>(ctx: &StageContext, path_of: P, produce: F) -> Result<Staged<T>, StageError>
where
    T: Send,
    P: Fn(&T) -> PathBuf + Sync,
    F: FnOnce(&mut dyn FnMut(Vec<(T, Vec<u8>)>) -> bool) -> Result<(), StageError>,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(T, Vec<u8>)>>(2);
    std::thread::scope(|scope| {
        let path_of = &path_of;
        let writer = scope.spawn(move || -> Result<Staged<T>, StageError> {
            let mut staged = Vec::new();
            for batch in rx {
                for (item, bytes) in batch {
                    let rel = path_of(&item);
                    let tmp = artifact::write_temp_beside(&ctx.abs(&rel), &bytes)
                        .map_err(|e| StageError::io(&rel, "write", e))?;
                    staged.push((item, tmp));
                }
            }
            Ok(staged)
        });
        let mut send = |batch: Vec<(T, Vec<u8>)>| batch.is_empty() || tx.send(batch).is_ok();
        let produced = produce(&mut send);
        drop(tx);
        let staged = writer
            .join()
            .map_err(|_| StageError::new("the file writer thread panicked"))??;
        produced.map(|()| staged)
    })
}

/// Rename every staged file into place, in one burst; how many.
pub fn commit<T>(
    ctx: &StageContext,
    staged: Staged<T>,
    path_of: impl Fn(&T) -> PathBuf,
) -> Result<usize, StageError> {
    let written = staged.len();
    for (item, tmp) in staged {
        let rel = path_of(&item);
        tmp.persist(ctx.abs(&rel))
            .map_err(|e| StageError::io(&rel, "rename into place", e.error))?;
    }
    Ok(written)
}

/// Put the file made at `tmp` in its place `rel` (project-relative), unless
/// the file there is intact with the same bytes: then it is left untouched
/// (its mtime too) and `tmp` is removed. The file is listed in `out`, and
/// counted written when it was. Its hash, and whether it was left alone.
pub fn place(
    ctx: &StageContext,
    tmp: artifact::TempPath,
    rel: &Path,
    out: &mut StageOutput,
) -> Result<(blake3::Hash, bool), StageError> {
    place_keeping(ctx, tmp, rel, out, false)
}

/// [`place`] for a database that the next build writes again (after an
/// edit): the file it replaces, or the unused new one, is kept for that
/// build to free just before it writes (see [`super::recycle`]).
pub(crate) fn place_recycling(
    ctx: &StageContext,
    tmp: artifact::TempPath,
    rel: &Path,
    out: &mut StageOutput,
) -> Result<(blake3::Hash, bool), StageError> {
    place_keeping(ctx, tmp, rel, out, true)
}

fn place_keeping(
    ctx: &StageContext,
    tmp: artifact::TempPath,
    rel: &Path,
    out: &mut StageOutput,
    recycle: bool,
) -> Result<(blake3::Hash, bool), StageError> {
    let hash = crate::fingerprint::hash_own_file(tmp.path())
        .map_err(|e| StageError::io(rel, "read back", e))?;
    let unchanged = ctx.previous.is_unchanged(rel, &hash);
    if unchanged {
        if recycle {
            super::recycle::keep_unused(ctx.root, rel, tmp);
        }
    } else {
        let old = tmp
            .replace(&ctx.abs(rel))
            .map_err(|e| StageError::io(rel, "rename into place", e))?;
        match old {
            Some(old) if recycle => super::recycle::keep_replaced(ctx.root, rel, old),
            Some(old) => old.release(),
            None => {}
        }
        out.written += 1;
    }
    out.files.push(OutputFile {
        path: rel.to_path_buf(),
        hash,
    });
    Ok((hash, unchanged))
}

/// Delete what the target wrote before and no longer lists in `now`: only
/// paths the executor recorded as the target's, never anything else in
/// the directory. How many were deleted.
pub fn remove_leftovers(ctx: &StageContext, now: &[OutputFile]) -> Result<usize, StageError> {
    let now: HashSet<&Path> = now.iter().map(|f| f.path.as_path()).collect();
    let mut deleted = 0;
    for old in ctx.previous.files.keys() {
        if now.contains(old.as_path()) || !is_plain_relative(old) {
            continue;
        }
        match std::fs::remove_file(ctx.abs(old)) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StageError::io(old, "delete stale", e)),
        }
    }
    Ok(deleted)
}

/// A relative path without `..`, root or prefix components: safe to join
/// to the project root.
fn is_plain_relative(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}
