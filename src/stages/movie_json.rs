//! The `movie-json` stage: one JSON document per kept movie.
//!
//! Unlike the reference (which deleted and rewrote every file on every run),
//! a file is only written when its bytes change, files of movies that
//! disappeared are deleted, and files pipe did not create are never touched.

use crate::artifact;
use crate::movies::catalog::{load_collections, load_movie_texts, text, Collection, MovieRow};
use crate::movies::ids;
use crate::movies::related::{IndexBuilder, RelatedIndex, RelatedKeys, Scratch};
use crate::movies::render::{collections_by_movie, render_raw, MovieDoc};
use crate::stage::{OutputFile, StageContext, StageError, StageOutput};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// What a `movie-json` target declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovieJsonSpec {
    /// movies.json, relative to the project root.
    pub movies: PathBuf,
    /// collections.json, relative to the project root.
    pub collections: PathBuf,
    /// Directory of the per-movie files, relative to the project root.
    pub out_dir: PathBuf,
    /// File name of each movie, e.g. `{movieId}.json`.
    pub file_template: String,
}

/// Movies rendered per batch handed to the writer (bounds memory: two
/// batches of rendered documents in flight at most, plus one being rendered).
const BATCH: usize = 1024;

/// What related scoring needs of a movie, taken while loading.
#[derive(Default)]
struct Keys {
    genre: Option<String>,
    director: Option<String>,
    actors: Option<String>,
    year: Option<i64>,
    has_meta: bool,
}

impl Keys {
    fn of(m: &MovieRow) -> Keys {
        let meta = m.metadata.as_ref();
        let field = |f: fn(&crate::movies::catalog::MetadataRow) -> &Option<serde_json::Value>| {
            meta.and_then(|md| text(f(md))).map(str::to_string)
        };
        Keys {
            genre: field(|md| &md.Genre),
            director: field(|md| &md.Director),
            actors: field(|md| &md.Actors),
            year: m.year_num(),
            has_meta: m.has_metadata(),
        }
    }
}

/// Render every kept movie, write the files whose bytes changed, delete the
/// files of movies that are gone.
pub fn run(ctx: &StageContext, spec: &MovieJsonSpec) -> Result<StageOutput, StageError> {
    ids::check_template(&spec.file_template)
        .map_err(|m| StageError::new(format!("target {}: {m}", ctx.target)))?;
    // Movies stay text until rendered: only their related-scoring keys are
    // parsed out up front.
    let mut catalog = load_movie_texts(&ctx.abs(&spec.movies), &spec.movies, Keys::of)?;
    let collections = load_collections(&ctx.abs(&spec.collections), &spec.collections)?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let mut builder = IndexBuilder::new();
    for m in &mut catalog.movies {
        let k = std::mem::take(&mut m.extra);
        builder.push(RelatedKeys {
            genre: k.genre.as_deref(),
            director: k.director.as_deref(),
            actors: k.actors.as_deref(),
            year: k.year,
            has_meta: k.has_meta,
        });
    }
    let index: RelatedIndex = builder.finish();
    let catalog = catalog;
    let movies = &catalog.movies;

    // Every name is checked before anything is written, so a bad id leaves
    // the previous output intact.
    let mut names = Vec::with_capacity(movies.len());
    let mut seen: HashMap<String, &str> = HashMap::with_capacity(movies.len());
    let mut warnings = Vec::new();
    for m in movies {
        let name = ids::file_name(&spec.file_template, &m.movie_id)
            .map_err(|msg| StageError::new(format!("{}: {msg}", spec.movies.display())))?;
        // YouTube ids are case-sensitive, so this is legitimate data, but on
        // case-insensitive file systems (macOS, Windows) the two files would
        // overwrite each other: worth a warning, not a failure.
        if let Some(other) = seen.insert(name.to_lowercase(), &m.movie_id) {
            let w = format!(
                "{}: movie ids {other:?} and {:?} differ only in letter case; their files \
                 collide on case-insensitive file systems",
                spec.movies.display(),
                m.movie_id
            );
            ctx.progress.warn(&w);
            warnings.push(w);
        }
        names.push(spec.out_dir.join(name));
    }
    drop(seen);

    let out_abs = ctx.abs(&spec.out_dir);
    std::fs::create_dir_all(&out_abs)
        .map_err(|e| StageError::io(&spec.out_dir, "create directory", e))?;

    let by_movie = collections_by_movie(&collections);
    // What `ctx.previous.is_unchanged` answers, keyed by the path's bytes:
    // comparing 30,000 paths component by component in its sorted map
    // cost more than hashing the documents. The executor records paths as
    // this stage reports them, so equal paths have equal bytes (a miss
    // would only mean a needless rewrite).
    let previous: HashMap<&std::ffi::OsStr, &crate::stage::PreviousFile> = ctx
        .previous
        .files
        .iter()
        .map(|(p, f)| (p.as_os_str(), f))
        .collect();
    let total = movies.len();
    ctx.progress
        .progress(0, total as u64, "rendering movie JSON");

    // Rendering runs on all cores; writing is done by one thread, because
    // creating and renaming files in one directory serialises on the
    // directory's lock in the kernel, and several writers only spin on it.
    let mut files: Vec<OutputFile> = Vec::with_capacity(total);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Vec<u8>)>>(2);
    let written = std::thread::scope(|scope| -> Result<usize, StageError> {
        let names = &names;
        let writer = scope.spawn(move || -> Result<usize, StageError> {
            let mut written = 0;
            for batch in rx {
                for (i, bytes) in batch {
                    let rel = &names[i];
                    artifact::write_atomic(&ctx.abs(rel), &bytes)
                        .map_err(|e| StageError::io(rel, "write", e))?;
                    written += 1;
                }
            }
            Ok(written)
        });
        let mut stop = None;
        for start in (0..total).step_by(BATCH) {
            if ctx.is_cancelled() {
                stop = Some(StageError::cancelled());
                break;
            }
            let end = (start + BATCH).min(total);
            let rendered: Vec<(blake3::Hash, Option<Vec<u8>>)> = match (start..end)
                .into_par_iter()
                .map(|i| -> Result<_, StageError> {
                    let related: Vec<&str> = Scratch::with(&index, |s| index.top(i, s))
                        .into_iter()
                        .map(|j| movies[j as usize].movie_id.as_str())
                        .collect();
                    let colls: Vec<&Collection> = by_movie
                        .get(movies[i].movie_id.as_str())
                        .map(|v| v.iter().map(|&c| &collections[c as usize]).collect())
                        .unwrap_or_default();
                    // Straight from the text when it can be (no parsed
                    // movie); through the typed record otherwise.
                    let bytes = match render_raw(catalog.text_of(i), &related, &colls) {
                        Some(bytes) => bytes,
                        None => MovieDoc {
                            movie: &catalog.movie(i, &spec.movies)?,
                            related,
                            collections: colls,
                        }
                        .to_bytes(),
                    };
                    let hash = blake3::hash(&bytes);
                    // Unchanged bytes: leave the file (and its mtime) alone.
                    let write = !previous
                        .get(names[i].as_os_str())
                        .is_some_and(|f| f.intact && f.hash == hash);
                    Ok((hash, write.then_some(bytes)))
                })
                .collect()
            {
                Ok(r) => r,
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            };
            let mut batch = Vec::new();
            for (k, (hash, bytes)) in rendered.into_iter().enumerate() {
                files.push(OutputFile {
                    path: names[start + k].clone(),
                    hash,
                });
                if let Some(bytes) = bytes {
                    batch.push((start + k, bytes));
                }
            }
            if !batch.is_empty() && tx.send(batch).is_err() {
                break; // the writer failed; its error is reported below
            }
            ctx.progress
                .progress(end as u64, total as u64, "rendering movie JSON");
        }
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| StageError::new("the movie JSON writer thread panicked"))??;
        match stop {
            Some(e) => Err(e),
            None => Ok(written),
        }
    })?;

    let mut out = StageOutput {
        files,
        written,
        warnings,
        ..StageOutput::default()
    };

    // Delete what this target made before and no longer makes; only paths
    // the executor recorded as ours, never anything else in out_dir.
    let now: HashSet<&Path> = out.files.iter().map(|f| f.path.as_path()).collect();
    for old in ctx.previous.files.keys() {
        if now.contains(old.as_path()) || !is_plain_relative(old) {
            continue;
        }
        match std::fs::remove_file(ctx.abs(old)) {
            Ok(()) => out.deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StageError::io(old, "delete stale", e)),
        }
    }

    ctx.progress
        .progress(total as u64, total as u64, "movie JSON done");
    out.stats.insert("movies".into(), total.to_string());
    out.stats
        .insert("entries".into(), catalog.entries.to_string());
    out.stats
        .insert("dropped_movies".into(), catalog.dropped_movies.to_string());
    out.stats.insert(
        "dropped_sources".into(),
        catalog.dropped_sources.to_string(),
    );
    out.stats.insert("written".into(), out.written.to_string());
    out.stats.insert("deleted".into(), out.deleted.to_string());
    Ok(out)
}

/// A relative path without `..`, root or prefix components: safe to join
/// to the project root.
fn is_plain_relative(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}
