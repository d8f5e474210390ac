//! The `movies-db` stage: one SQLite database per embedding model, with the
//! reference schema (movies, names, junctions, FTS5 tables, config) and a
//! sqlite-vec `vec_movies` table for the model's vectors.
//!
//! A database is assembled from two parts, each built once and cached under
//! `.pipe/cache/movies-db/` (see `movies_db/cache.rs`):
//! * the catalog part (`movies_db/catalog_part.rs`): every table but `vec_movies` and
//!   `config`, the same for every model, built once per process for all the
//!   model targets of a build;
//! * the vector part (`movies_db/vector_part.rs`): `vec_movies` (float32, or int8/bit
//!   for a quantized model, with `vec_movies_float` when it rescores), per
//!   model, a function of the embeddings file and the ordered list of kept
//!   movie ids, so an edit to a movie's fields reuses it.
//!
//! Assembly is a fixed sequence (a copy of the catalog part's bytes, which
//! `VACUUM INTO` laid out canonically when the part was made, then the
//! vector part's tables, `config` and statistics appended), so the bytes are
//! the same whether a part came from the cache or was just built.
//! Reproducible by construction: fixed page size, no clock (timestamps from
//! SOURCE_DATE_EPOCH or the inputs), deterministic insertion orders, and
//! `VACUUM INTO` laying the shared tables out as a function of their rows. The database is
//! built in a temporary file beside the destination and renamed into place
//! only when complete, so a failure leaves the previous database intact.

mod catalog_part;
mod schema;
mod vector_part;

use crate::artifact;
use crate::manifest::model::Model;
use crate::sqlite;
use crate::stage::{OutputFile, StageContext, StageError, StageOutput, Warning};
use crate::stages::file_set;
use crate::stages::part_cache::{self as cache, db_err_at, Origin};
use crate::stages::vector_part as shared;
use catalog_part::CatalogPart;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use vector_part::VectorPart;

/// What a `movies-db@<model>` target declares.
#[derive(Clone, Debug, PartialEq)]
pub struct MoviesDbSpec {
    /// movies.json, relative to the project root.
    pub movies: PathBuf,
    /// collections.json, relative to the project root.
    pub collections: PathBuf,
    /// The embedding model (its `embeddings` path is the vectors' source).
    pub model: Model,
    /// The database to build, e.g. `public/data/potion/movies.db`.
    pub db_path: PathBuf,
    /// For the default model: an identical copy at this path
    /// (`public/data/movies.db`), also an output of the target.
    pub publish: Option<PathBuf>,
}

/// Bump when the content or layout of a part changes: old entries then
/// stop matching and are rebuilt (and pruned).
const PART_FORMAT: &str = "movies-db-parts-5";

/// The stage's directory in the part cache (`.pipe/cache/movies-db/`).
const CACHE: &str = "movies-db";

/// How often (in movies) progress is reported and cancellation checked.
const PROGRESS_EVERY: usize = 1000;

/// Page size of every database we write; fixed so bytes never depend on
/// the SQLite default of the machine.
const PAGE_SIZE: u32 = 4096;

/// Build the database of one model.
pub fn run(ctx: &StageContext, spec: &MoviesDbSpec) -> Result<StageOutput, StageError> {
    // A database (or its published copy) whose bytes equal the intact file
    // in place is never rewritten.
    let mut out = StageOutput {
        untouched_are_unwritten: true,
        ..StageOutput::default()
    };

    // The embeddings: hashed here, opened only if the vector part is built.
    let model = &spec.model;
    let emb_hash = match ctx.input_hash(&model.embeddings) {
        Ok(h) => h.map(|h| h.to_hex().to_string()),
        Err(e) => return Err(StageError::io(&model.embeddings, "read", e)),
    };
    if emb_hash.is_none() {
        let detail = format!(
            "embeddings file {} of model {} not found: {}'s vector table will be empty",
            model.embeddings.display(),
            model.id,
            spec.db_path.display(),
        );
        let fix = format!(
            "produce the embeddings file with the model's embedding generator, or fix `embeddings` in its model file ({})",
            model.file.display(),
        );
        if ctx.settings.strict {
            return Err(StageError::new(format!("{detail}. Fix: {fix}")));
        }
        ctx.warn(
            &mut out,
            Warning::new(
                "embeddings-missing",
                "embeddings file not found, so the model's vector table is empty",
                format!("{} ({})", model.id, model.embeddings.display()),
                detail,
                fix,
            )
            .losing_data(),
        );
    }

    if emb_hash.is_some() {
        if let Some(w) = embeddings_config_mismatch(ctx, model) {
            ctx.warn(&mut out, w);
        }
    }

    let dest = ctx.abs(&spec.db_path);
    // A cache entry that cannot be assembled from (damaged on disk) is
    // discarded and the parts built again, once.
    let mut attempt = 0;
    let (catalog, vectors, origins, final_tmp) = loop {
        attempt += 1;
        let early = match attempt {
            1 => vectors_while_the_catalog_is_made(ctx, spec, emb_hash.as_deref())?,
            _ => None,
        };
        let (catalog, cat_origin) = catalog_part::obtain(ctx, spec)?;
        if ctx.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let early = early.filter(|(_, _, ids_hash)| *ids_hash == catalog.ids_hash);
        let obtained = match early {
            Some((vectors, origin, _)) => Ok((vectors, origin)),
            None => vector_part::obtain(ctx, spec, &catalog, emb_hash.as_deref()),
        };
        let (vectors, vec_origin) = match obtained {
            Ok(v) => v,
            Err(v) if v.ids_unreadable && attempt == 1 && !cat_origin.is_new() => {
                catalog_part::forget(ctx, &catalog);
                ctx.warn(&mut out, cache::damaged(&model.id, &v.error));
                continue;
            }
            Err(v) => return Err(v.error),
        };
        if ctx.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let final_tmp = artifact::temp_path_beside(&dest)
            .map_err(|e| StageError::io(&spec.db_path, "create a temporary file beside", e))?;
        match assemble(ctx, spec, &catalog, &vectors, final_tmp.path()) {
            Ok(()) => break (catalog, vectors, (cat_origin, vec_origin), final_tmp),
            // Cancellation is no sign of a damaged part: only other errors
            // discard cached ones.
            Err(e)
                if attempt == 1
                    && !ctx.is_cancelled()
                    && (!cat_origin.is_new() || !vec_origin.is_new()) =>
            {
                if !cat_origin.is_new() {
                    catalog_part::forget(ctx, &catalog);
                }
                if !vec_origin.is_new() {
                    cache::discard(&vectors.path);
                }
                ctx.warn(&mut out, cache::damaged(&model.id, &e));
            }
            Err(e) => return Err(e),
        }
    };

    let (hash, db_unchanged) = file_set::place_recycling(ctx, final_tmp, &spec.db_path, &mut out)?;
    if let Some(publish) = &spec.publish {
        if !ctx.previous.is_unchanged(publish, &hash) {
            artifact::link_or_copy_atomic(&dest, &ctx.abs(publish))
                .map_err(|e| StageError::io(publish, "publish to", e))?;
            out.written += 1;
            // Linking changes the database's ctime even when its bytes were
            // left alone: its stat must be taken again.
            if db_unchanged {
                out.untouched_are_unwritten = false;
            }
        }
        out.files.push(OutputFile {
            path: publish.clone(),
            hash,
        });
    }
    // A previously owned file no longer produced (publish turned off, path
    // changed) is removed, as the stage contract asks.
    out.deleted += file_set::remove_leftovers(ctx, &out.files)?;

    for w in vector_warnings(spec, &catalog, &vectors, emb_hash.is_some()) {
        ctx.warn(&mut out, w);
    }
    let s = &mut out.stats;
    s.insert("movies".into(), catalog.movies.to_string());
    s.insert("vectors".into(), vectors.with.to_string());
    s.insert("movies_without_vector".into(), vectors.without.to_string());
    s.insert(
        "vectors_for_unknown_movies".into(),
        vectors.unknown_ids.len().to_string(),
    );
    s.insert("built_at".into(), catalog.built_at.clone());
    s.insert("catalog_part".into(), origins.0.as_str().into());
    s.insert("vector_part".into(), origins.1.as_str().into());
    Ok(out)
}

/// While another thread makes the catalog part (a head start, or another
/// model's target), the vector part is made meanwhile from the movie ids
/// of the movies.json that thread loaded: the catalog's ids are those, in
/// that order. With the ids' hash, which the caller checks against the
/// catalog's. `None` when the catalog is not being made or movies.json is
/// not loaded (the vector part then waits for the catalog).
fn vectors_while_the_catalog_is_made(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    emb_hash: Option<&str>,
) -> Result<Option<(VectorPart, Origin, String)>, StageError> {
    if !catalog_part::being_made(ctx, spec)? {
        return Ok(None);
    }
    let Some(movies) = crate::movies::entries::loaded(ctx, &spec.movies) else {
        return Ok(None);
    };
    let ids_hash = movies.ids_hash();
    let ids = move || {
        movies
            .movies
            .iter()
            .map(|m| m.summary.movie_id.clone())
            .collect()
    };
    let (vectors, origin) =
        vector_part::obtain_for_ids(ctx, spec, &ids_hash, ids, emb_hash).map_err(|v| v.error)?;
    Ok(Some((vectors, origin, ids_hash)))
}

/// Make the catalog part before the embeddings file is ready (see
/// [`crate::stages::head_start`]): the target's run then takes it from the
/// process slot (`catalog_part: shared` in its stats) instead of building
/// it after the embeddings stage. An edit's catalog patch and its
/// embeddings then run side by side.
pub fn head_start(ctx: &StageContext, spec: &MoviesDbSpec) {
    let _ = catalog_part::obtain(ctx, spec);
}

/// The embeddings file's own `config` names another model or other
/// dimensions than the model file: probably the wrong file.
fn embeddings_config_mismatch(ctx: &StageContext, model: &Model) -> Option<Warning> {
    use crate::manifest::detect;
    let conn = sqlite::open_read_only(&ctx.abs(&model.embeddings)).ok()?;
    let (config_model, config_dimensions) = detect::config_of(&conn);
    let file = detect::EmbeddingsFile {
        path: model.embeddings.clone(),
        vectors: 0,
        dimensions: None,
        config_model,
        config_dimensions,
    };
    // A quantized variant reads its float original's file (whose config
    // names the original): only its dimensions must agree.
    let sharing: Vec<&str> = file
        .config_model
        .as_deref()
        .filter(|_| model.quantization.is_some())
        .into_iter()
        .collect();
    let detail = detect::config_mismatch(model, &file, &sharing)?;
    Some(Warning::new(
        "embeddings-config-mismatch",
        "an embeddings file's config names another model or other dimensions than its model file",
        format!("{} ({})", model.id, model.embeddings.display()),
        detail,
        "point the model file's `embeddings` at the right file, or regenerate the embeddings",
    ))
}

/// The warnings about what the vectors and the kept movies do not share:
/// vectors of movies that are gone from movies.json (regenerate the
/// embeddings), of movies that are in it but dropped (every source
/// quality-marked: nothing to regenerate), and kept movies without one.
fn vector_warnings(
    spec: &MoviesDbSpec,
    catalog: &CatalogPart,
    vectors: &VectorPart,
    embeddings_present: bool,
) -> Vec<Warning> {
    let model = &spec.model;
    let movies = spec.movies.display();
    let embeddings = model.embeddings.display();
    let (dropped, gone): (Vec<&str>, Vec<&str>) = vectors
        .unknown_ids
        .iter()
        .map(String::as_str)
        .partition(|id| catalog.dropped_ids.contains(*id));
    let src = vector_part::source(model);
    let mut out = Vec::new();
    if !gone.is_empty() {
        out.push(shared::unknown_vectors(
            &src,
            &spec.movies,
            "vectors-for-removed-movies",
            &gone,
            "regenerate these models' embeddings to drop the vectors of removed movies (or restore the movies)",
        ));
    }
    if !dropped.is_empty() {
        out.push(Warning::new(
            "vectors-for-dropped-movies",
            format!(
                "vectors for movies of {movies} that are left out because every source is quality-marked"
            ),
            format!("{} ({})", model.id, dropped.len()),
            format!(
                "{embeddings} has {} vectors for movies in {movies} whose sources are all quality-marked, so they are not published: {}",
                dropped.len(),
                crate::warning::some_ids(&dropped)
            ),
            "nothing to regenerate: a movie and its vector are published again once one of its sources is clean",
        ));
    }
    if vectors.without > 0 && embeddings_present {
        out.push(shared::without_vector(
            &src,
            vectors.without,
            catalog.movies,
        ));
    }
    out
}

/// Write the database of `spec.model` to `dest` (a temporary path) from the
/// two parts, in a fixed order that makes the bytes independent of where
/// the parts came from.
///
/// The catalog part's file (laid out by `VACUUM INTO` when it was made,
/// with its statistics) is copied as it is. The vector part is then
/// appended: `vec_movies` is created and its shadow tables are copied with
/// SQLite's transfer optimisation (b-tree cells copied, not re-encoded, in
/// key order), so the file stays compact with no free pages. Statistics are
/// each part's own ANALYZE results (ANALYZE works per table, so the union
/// is what ANALYZE of the whole file writes) plus those of `config`.
fn assemble(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    catalog: &CatalogPart,
    vectors: &VectorPart,
    dest: &Path,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err(spec, what, err);
    let model = &spec.model;
    let conn = cache::start_database(
        ctx,
        &catalog.path,
        "the catalog part",
        dest,
        &spec.db_path,
        catalog.movies,
    )?;
    cache::attach_part(
        &conn,
        &vectors.path,
        &spec.db_path,
        "attach the vector part",
    )?;
    conn.execute_batch("BEGIN").map_err(e("begin"))?;
    conn.execute_batch(&vector_part::table(model).create_sql())
        .map_err(e("create the vector table"))?;
    conn.execute_batch(schema::CONFIG)
        .map_err(e("create the config table"))?;
    cache::copy_part(&conn, "vec").map_err(e("copy the vector part"))?;
    write_config(&conn, model, catalog, vectors).map_err(e("insert config"))?;
    conn.execute_batch("ANALYZE main.config;")
        .map_err(e("analyze"))?;
    conn.execute_batch("COMMIT").map_err(e("commit"))?;
    conn.execute_batch("DETACH DATABASE vec;")
        .map_err(e("detach the vector part"))?;
    conn.close()
        .map_err(|(_, err)| db_err(spec, "close", err))?;
    Ok(())
}

/// The `config` rows of a model's database.
fn write_config(
    conn: &Connection,
    model: &Model,
    catalog: &CatalogPart,
    vectors: &VectorPart,
) -> rusqlite::Result<()> {
    let mut config = model.identity_config();
    config.extend([
        ("embedding_model_metric", model.metric.to_string()),
        ("embeddings_blake3", vectors.emb_hash.clone()),
        ("movies_with_vector", vectors.with.to_string()),
        ("movies_without_vector", vectors.without.to_string()),
        (
            "vectors_for_unknown_movies",
            vectors.unknown_ids.len().to_string(),
        ),
        ("pipe_version", env!("CARGO_PKG_VERSION").to_string()),
        ("built_at", catalog.built_at.clone()),
    ]);
    config.extend(model.quantization_config());
    let mut stmt = conn.prepare("INSERT INTO config (key, value) VALUES (?1, ?2)")?;
    for (k, v) in &config {
        stmt.execute(params![k, v])?;
    }
    Ok(())
}

fn db_err(spec: &MoviesDbSpec, what: &str, e: rusqlite::Error) -> StageError {
    db_err_at(&spec.db_path, what, e)
}
