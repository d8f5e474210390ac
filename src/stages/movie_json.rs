//! The `movie-json` stage: one JSON document per kept movie.
//!
//! Unlike the reference (which deleted and rewrote every file on every run),
//! a file is only written when its bytes change, files of movies that
//! disappeared are deleted, and files pipe did not create are never touched.

use super::file_set;
use crate::artifact;
use crate::movies::catalog::{load_collections, Collection};
use crate::movies::entries::{self, Digest, MovieEntries};
use crate::movies::ids;
use crate::movies::related::{RelatedIndex, RelatedKeys, Scratch};
use crate::movies::render::{collections_by_movie, render_raw, MovieDoc};
use crate::stage::{OutputFile, StageContext, StageError, StageOutput};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

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

/// Bump when what a document is made of changes: a render state of
/// another format is ignored (everything is rendered again).
const STATE_FORMAT: &str = "movie-json-render-1";

/// What the last successful run rendered, kept in `.pipe/cache/movie-json/`
/// so that the next run renders only the documents whose ingredients
/// changed: the movie's entry, its related movies, the collections.
#[derive(Serialize, Deserialize)]
struct RenderState {
    /// [`STATE_FORMAT`] and the pipe version.
    format: String,
    /// blake3 of collections.json (every document lists its collections).
    collections: Option<[u8; 32]>,
    /// Kept movies in catalogue order.
    movies: Vec<Rendered>,
}

/// One document of [`RenderState`].
#[derive(Serialize, Deserialize)]
struct Rendered {
    movie_id: String,
    /// blake3 of the movie's entry text.
    entry: Digest,
    /// blake3 of what related scoring reads of the movie.
    keys: Digest,
    /// Its related movies, as indices into `movies`.
    related: Vec<u32>,
    /// blake3 of the document written.
    output: [u8; 32],
}

impl RenderState {
    fn path(ctx: &StageContext) -> PathBuf {
        let name = blake3::hash(ctx.target.as_bytes()).to_hex();
        ctx.root
            .join(crate::state::STATE_DIR)
            .join("cache")
            .join("movie-json")
            .join(format!("{}.bin", &name[..32]))
    }

    fn format() -> String {
        format!("{STATE_FORMAT} {}", env!("CARGO_PKG_VERSION"))
    }

    /// The state of the last run, if readable and of this format.
    fn read(ctx: &StageContext) -> Option<RenderState> {
        let bytes = std::fs::read(Self::path(ctx)).ok()?;
        let state: RenderState = postcard::from_bytes(&bytes).ok()?;
        (state.format == Self::format()).then_some(state)
    }

    /// Best effort: without it the next run renders everything again.
    /// Streamed to the file (at 100,000 movies the encoded state is 13 MB
    /// more at the build's peak).
    fn write(&self, ctx: &StageContext) {
        let path = Self::path(ctx);
        let Ok(file) = artifact::temp_beside(&path) else {
            return;
        };
        let mut out = std::io::BufWriter::new(file);
        if postcard::to_io(self, &mut out).is_err() {
            return;
        }
        if let Ok(file) = out.into_inner() {
            let _ = file.persist(&path);
        }
    }
}

/// The related-scoring keys of a movie.
fn keys_of(s: &entries::Summary) -> RelatedKeys<'_> {
    RelatedKeys {
        genre: s.genre.as_deref(),
        director: s.director.as_deref(),
        actors: s.actors.as_deref(),
        year: s.year,
        has_meta: s.has_meta,
    }
}

/// blake3 over a movie's related-scoring keys (absent and empty differ).
fn keys_digest(k: &RelatedKeys) -> Digest {
    let mut h = blake3::Hasher::new();
    entries::hash_fields(&mut h, [k.genre, k.director, k.actors]);
    match k.year {
        None => h.update(&[0]),
        Some(y) => h.update(&[1]).update(&y.to_le_bytes()),
    };
    h.update(&[u8::from(k.has_meta)]);
    *h.finalize().as_bytes()
}

/// Every movie's related movies (indices, best first): the last run's
/// lists when no movie's scoring keys changed and the movies are the same
/// ones in the same order, else scored again.
fn related_lists(
    movies: &MovieEntries,
    keys: &[Digest],
    previous: Option<&RenderState>,
) -> (Vec<Vec<u32>>, bool) {
    if let Some(prev) = previous {
        let same = prev.movies.len() == movies.movies.len()
            && prev
                .movies
                .iter()
                .zip(&movies.movies)
                .zip(keys)
                .all(|((p, m), k)| p.movie_id == m.summary.movie_id && &p.keys == k);
        if same {
            return (
                prev.movies.iter().map(|p| p.related.clone()).collect(),
                false,
            );
        }
    }
    let index = RelatedIndex::build(movies.movies.iter().map(|m| keys_of(&m.summary)));
    let lists = (0..movies.movies.len())
        .into_par_iter()
        .map(|i| Scratch::with(&index, |s| index.top(i, s)))
        .collect();
    (lists, true)
}

/// Render every kept movie whose document may have changed, write the
/// files whose bytes changed, delete the files of movies that are gone.
pub fn run(ctx: &StageContext, spec: &MovieJsonSpec) -> Result<StageOutput, StageError> {
    ids::check_template(&spec.file_template)
        .map_err(|m| StageError::new(format!("target {}: {m}", ctx.target)))?;
    let catalog = entries::load(ctx, &spec.movies)?;
    let collections = load_collections(&ctx.abs(&spec.collections), &spec.collections)?;
    let collections_hash = ctx
        .input_hash(&spec.collections)
        .map_err(|e| StageError::io(&spec.collections, "read", e))?
        .map(|h| *h.as_bytes());
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let movies = &catalog.movies;
    let mut warnings = Vec::new();
    if let Some(w) = unknown_collection_movies(&catalog, &collections, spec) {
        ctx.progress.warn(&w);
        warnings.push(w);
    }
    let previous_state = RenderState::read(ctx);
    let previous_missing = previous_state.is_none();
    // Every document lists its collections: other collections, every
    // document is rendered again (the related lists may still be reused).
    let same_collections = previous_state
        .as_ref()
        .is_some_and(|s| s.collections.is_some() && s.collections == collections_hash);
    let keys: Vec<Digest> = movies
        .par_iter()
        .map(|m| keys_digest(&keys_of(&m.summary)))
        .collect();
    let (related, rescored) = related_lists(&catalog, &keys, previous_state.as_ref());

    // Ids were checked when movies.json was loaded (for every target, so
    // that no database publishes an id that cannot be a file); the names
    // are checked against this target's template before anything is written.
    let mut names = Vec::with_capacity(movies.len());
    for m in movies {
        let id = &m.summary.movie_id;
        let name = ids::file_name(&spec.file_template, id)
            .map_err(|msg| StageError::new(format!("{}: {msg}", spec.movies.display())))?;
        names.push(spec.out_dir.join(name));
    }

    let out_abs = ctx.abs(&spec.out_dir);
    std::fs::create_dir_all(&out_abs)
        .map_err(|e| StageError::io(&spec.out_dir, "create directory", e))?;

    let by_movie = collections_by_movie(&collections);
    let previous = file_set::Previous::of(ctx);
    let previous_index: HashMap<&str, usize> = previous_state
        .as_ref()
        .map(|s| {
            s.movies
                .iter()
                .enumerate()
                .map(|(k, m)| (m.movie_id.as_str(), k))
                .collect()
        })
        .unwrap_or_default();
    let total = movies.len();
    ctx.progress
        .progress(0, total as u64, "rendering movie JSON");

    // A document can be left as it is when its movie's entry, its related
    // movies and the collections are those it was rendered from, and its
    // file is still the one written then.
    let reusable = |i: usize| -> Option<blake3::Hash> {
        let state = previous_state.as_ref().filter(|_| same_collections)?;
        let k = *previous_index.get(movies[i].summary.movie_id.as_str())?;
        let p = &state.movies[k];
        let same_related = p.related.len() == related[i].len()
            && p.related.iter().zip(&related[i]).all(|(&a, &b)| {
                state.movies.get(a as usize).map(|m| m.movie_id.as_str())
                    == Some(movies[b as usize].summary.movie_id.as_str())
            });
        let file = previous.get(&names[i])?;
        // Last, as it may read the file: one written moments before the
        // last build's record could not be proven by its stat then.
        (p.entry == movies[i].digest
            && same_related
            && file.hash.as_bytes() == &p.output
            && file.holds(&file.hash))
        .then_some(file.hash)
    };

    // Rendering runs on all cores, one thread writes the changed files to
    // temporaries, renamed into place together at the end (file_set).
    let mut files: Vec<OutputFile> = Vec::with_capacity(total);
    let mut rendered_count = 0;
    let staged = file_set::stage(
        ctx,
        |&i: &usize| names[i].clone(),
        |send| {
            for start in (0..total).step_by(BATCH) {
                if ctx.is_cancelled() {
                    return Err(StageError::cancelled());
                }
                let end = (start + BATCH).min(total);
                type Done = (blake3::Hash, Option<Vec<u8>>, bool);
                let done: Vec<Done> = match (start..end)
                    .into_par_iter()
                    .map(|i| -> Result<Done, StageError> {
                        if let Some(hash) = reusable(i) {
                            return Ok((hash, None, false));
                        }
                        let related: Vec<&str> = related[i]
                            .iter()
                            .map(|&j| movies[j as usize].summary.movie_id.as_str())
                            .collect();
                        let colls: Vec<&Collection> = by_movie
                            .get(movies[i].summary.movie_id.as_str())
                            .map(|v| v.iter().map(|&c| &collections[c as usize]).collect())
                            .unwrap_or_default();
                        // Straight from the text when it can be (no parsed
                        // movie); through the typed record otherwise.
                        let bytes = match render_raw(&catalog.text_of(i)?, &related, &colls) {
                            Some(bytes) => bytes,
                            None => {
                                let mut movie: crate::movies::catalog::Movie =
                                    catalog.parse(i, &spec.movies)?;
                                movie
                                    .sources
                                    .retain(crate::movies::catalog::SourceView::is_clean);
                                MovieDoc {
                                    movie: &movie,
                                    related,
                                    collections: colls,
                                }
                                .to_bytes()
                            }
                        };
                        let hash = blake3::hash(&bytes);
                        // Unchanged bytes: leave the file (and its mtime) alone.
                        let write = !previous.is_unchanged(&names[i], &hash);
                        Ok((hash, write.then_some(bytes), true))
                    })
                    .collect()
                {
                    Ok(r) => r,
                    Err(e) => return Err(e),
                };
                let mut batch = Vec::new();
                for (k, (hash, bytes, rendered)) in done.into_iter().enumerate() {
                    rendered_count += usize::from(rendered);
                    files.push(OutputFile {
                        path: names[start + k].clone(),
                        hash,
                    });
                    if let Some(bytes) = bytes {
                        batch.push((start + k, bytes));
                    }
                }
                if !send(batch) {
                    break; // the writer failed; its error is reported instead
                }
                ctx.progress
                    .progress(end as u64, total as u64, "rendering movie JSON");
            }
            Ok(())
        },
    )?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    // What decided reuse is not needed any more: freed before the new
    // state is made (both are 20 MB at 100,000 movies).
    drop(previous);
    drop(previous_index);
    drop(previous_state);
    let written = file_set::commit(ctx, staged, |&i: &usize| names[i].clone())?;

    // A state that differs from the last only in a few documents is left
    // as it is (13 MB at 100,000 movies, written on every edit): the next
    // run renders those few again and finds their files unchanged.
    let stale = rescored
        || previous_missing
        || !same_collections
        || rendered_count * crate::movies::entries::REMEMBER_WHEN > total;
    if stale {
        RenderState {
            format: RenderState::format(),
            collections: collections_hash,
            movies: movies
                .iter()
                .zip(keys)
                .zip(related)
                .zip(&files)
                .map(|(((m, keys), related), f)| Rendered {
                    movie_id: m.summary.movie_id.clone(),
                    entry: m.digest,
                    keys,
                    related,
                    output: *f.hash.as_bytes(),
                })
                .collect(),
        }
        .write(ctx);
    }

    let mut out = StageOutput {
        files,
        written,
        warnings,
        // A document whose bytes equal an intact file's is never rewritten.
        untouched_are_unwritten: true,
        ..StageOutput::default()
    };

    // Delete what this target made before and no longer makes.
    out.deleted = file_set::remove_leftovers(ctx, &out.files)?;

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
    out.stats
        .insert("rendered".into(), rendered_count.to_string());
    out.stats.insert(
        "related".into(),
        if rescored { "scored" } else { "reused" }.into(),
    );
    out.stats
        .insert("entries_parsed".into(), catalog.parsed.to_string());
    out.stats.insert("deleted".into(), out.deleted.to_string());
    Ok(out)
}

/// Collection entries that name movies movies.json does not have at all
/// (not even dropped ones): they are left out of the collection's movies.
fn unknown_collection_movies(
    catalog: &MovieEntries,
    collections: &[Collection],
    spec: &MovieJsonSpec,
) -> Option<crate::stage::Warning> {
    let known: HashSet<&str> = catalog
        .movies
        .iter()
        .map(|m| m.summary.movie_id.as_str())
        .chain(catalog.dropped_ids.iter().map(String::as_str))
        .collect();
    let unknown: Vec<(&str, &str)> = collections
        .iter()
        .flat_map(|c| {
            c.movie_ids
                .iter()
                .filter(|id| !known.contains(id.as_str()))
                .map(move |id| (c.id.as_str(), id.as_str()))
        })
        .collect();
    if unknown.is_empty() {
        return None;
    }
    let shown: Vec<String> = unknown
        .iter()
        .take(5)
        .map(|(c, id)| format!("{id} in {c}"))
        .collect();
    let more = if unknown.len() > 5 {
        format!(", … ({} more)", unknown.len() - 5)
    } else {
        String::new()
    };
    Some(crate::stage::Warning::new(
        "collection-unknown-movies",
        format!(
            "collections name movies that are not in {}; they are left out of those collections",
            spec.movies.display()
        ),
        format!("{} ({})", spec.collections.display(), unknown.len()),
        format!(
            "{} has {} entries naming movies that are not in {}: {}{more}",
            spec.collections.display(),
            unknown.len(),
            spec.movies.display(),
            shown.join(", ")
        ),
        format!(
            "remove these ids from their collections in {} (or restore the movies)",
            spec.collections.display()
        ),
    ))
}
