//! The vector part: the `vec_movies` table of one model — a function of the
//! model's embeddings file, its dimensions and metric (and quantization,
//! when it has one), and the ordered list of kept movie ids (nothing else of
//! movies.json), cached like the catalog.
//!
//! A quantized model's `vec_movies` holds `INT8[N]` or `BIT[N]` vectors,
//! quantized by sqlite-vec itself while inserting (`vec_quantize_int8(v,
//! 'unit')`, `vec_quantize_binary(v)`), so they are exactly what a query
//! quantized the same way compares against; with `rescore` the float
//! vectors are kept beside them in `vec_movies_float`.
//!
//! Vectors are streamed from the embeddings database one movie at a time
//! (never all in memory) and every one is checked before it is stored. A
//! cached part was checked when it was built (its key covers the embeddings
//! file's content), so a hit reads no vector; the counts are kept in the
//! part's description table.

use super::catalog_part::CatalogPart;
use super::{db_err_at, MoviesDbSpec, Origin};
use crate::artifact;
use crate::manifest::model::Model;
use crate::sqlite;
use crate::stage::{StageContext, StageError};
use crate::stages::part_cache as cache;
use crate::stages::vector_source;
use crate::vectors::{ItemSource, VectorTable};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A built vector part.
#[derive(Debug)]
pub(crate) struct VectorPart {
    /// The cache file holding `vec_movies` (and its shadow tables).
    pub path: PathBuf,
    /// Movies with a stored vector.
    pub with: usize,
    /// Kept movies without one.
    pub without: usize,
    /// Vectors of movies that are not kept (not stored).
    pub unknown: usize,
    /// Their movie ids, sorted.
    pub unknown_ids: Vec<String>,
    /// blake3 of the embeddings file ("" when it is missing).
    pub emb_hash: String,
}

/// Page size of the vector part (an internal file; see [`build`]).
const VECTOR_PART_PAGE_SIZE: u32 = 65536;

/// Why a vector part could not be had.
#[derive(Debug)]
pub(crate) struct VectorError {
    /// What went wrong.
    pub error: StageError,
    /// The catalog part could not be read (a damaged cache entry: build it
    /// again), as opposed to a problem with the embeddings.
    pub catalog_unreadable: bool,
}

impl From<StageError> for VectorError {
    fn from(error: StageError) -> Self {
        VectorError {
            error,
            catalog_unreadable: false,
        }
    }
}

fn prefix(model: &Model) -> String {
    format!("vectors.{}.", model.id)
}

/// The vector part of `spec.model` over `catalog`'s movies: from the cache,
/// else built (and cached). `emb_hash` is `None` when the embeddings file
/// is missing (an empty table).
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    catalog: &CatalogPart,
    emb_hash: Option<&str>,
) -> Result<(VectorPart, Origin), VectorError> {
    let model = &spec.model;
    let (sqlite_v, vec_v) = cache::versions()?;
    let dims = model.dimensions.to_string();
    let mut fields = vec![
        ("part", "vectors"),
        ("format", super::PART_FORMAT),
        ("sqlite", sqlite_v),
        ("sqlite-vec", vec_v),
        ("embeddings", emb_hash.unwrap_or("missing")),
        ("dimensions", dims.as_str()),
        ("metric", model.metric.as_str()),
        ("movie-ids", &catalog.ids_hash),
    ];
    // Only a quantized part has these fields: the keys (and so the cache
    // files) of float parts stay what they were. `oversample` is left out:
    // it is a query setting, written to `config` at assembly, not a stored row.
    if let Some(q) = &model.quantization {
        fields.push(("quantization", q.kind.as_str()));
        fields.push(("rescore", if q.rescore { "true" } else { "false" }));
        if q.rescore {
            // The float table has rowids (it was WITHOUT ROWID).
            fields.push(("float-table", "rowid"));
        }
    }
    let key = cache::key(&fields);
    // The same part but for the embeddings' content: a previous part with
    // this base can be patched where vectors changed.
    let base = {
        let mut f = fields.clone();
        f.retain(|(name, _)| *name != "embeddings");
        cache::key(&f)
    };
    let dir = cache::dir(ctx.root, super::CACHE);
    let prefix = prefix(model);
    let mut origin = None;
    let (part, got) = cache::obtain(ctx, &dir, &prefix, &key, from_cache, |path| {
        let (part, patched) = build(ctx, spec, catalog, emb_hash, &key, &base, path)?;
        origin = patched.then_some(Origin::Patched);
        Ok::<_, VectorError>(part)
    })?;
    Ok((part, origin.unwrap_or(got)))
}

/// A cached vector part, if `path` holds a readable one with this key.
fn from_cache(path: &Path, key: &str) -> Option<VectorPart> {
    let meta = cache::read_meta(path)?;
    if meta.get("key").map(String::as_str) != Some(key) {
        return None;
    }
    Some(VectorPart {
        path: path.to_path_buf(),
        with: meta.get("with")?.parse().ok()?,
        without: meta.get("without")?.parse().ok()?,
        unknown: meta.get("unknown")?.parse().ok()?,
        unknown_ids: meta
            .get("unknown_ids")?
            .split('\n')
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect(),
        emb_hash: meta.get("embeddings_blake3")?.clone(),
    })
}

/// The vector table of a movies.db: `vec_movies(movieId, embedding)`, and
/// `vec_movies_float` when the model rescores.
pub(crate) fn table(model: &Model) -> VectorTable {
    VectorTable::of_model("vec_movies", "movieId", model)
}

/// How messages about `model`'s stored vectors name them.
fn source(model: &Model) -> ItemSource<'_> {
    ItemSource {
        file: &model.embeddings,
        item: "movie",
        model: &model.id,
        model_file: &model.file,
    }
}

/// The kept movie ids in insertion order (the rowid order of `movies`).
fn movie_ids(catalog: &CatalogPart, root: &Path) -> Result<Vec<String>, StageError> {
    let shown = catalog.path.strip_prefix(root).unwrap_or(&catalog.path);
    let e = |err: rusqlite::Error| db_err_at(shown, "read the movie ids", err);
    let conn = sqlite::open_read_only(&catalog.path).map_err(e)?;
    let mut stmt = conn
        .prepare("SELECT movieId FROM movies ORDER BY rowid")
        .map_err(e)?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(e)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    Ok(ids)
}

/// Check the embeddings and write the vector part to `path` (atomically):
/// patched from the previous build's part where only vectors changed
/// (`true`), else filled anew.
fn build(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    catalog: &CatalogPart,
    emb_hash: Option<&str>,
    key: &str,
    base: &str,
    path: &Path,
) -> Result<(VectorPart, bool), VectorError> {
    let model = &spec.model;
    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let ids = movie_ids(catalog, ctx.root).map_err(|error| VectorError {
        error,
        catalog_unreadable: true,
    })?;
    let embeddings = match emb_hash {
        Some(_) => Some(vector_source::open(
            &ctx.abs(&model.embeddings),
            &model.embeddings,
        )?),
        None => None,
    };

    // Every stored vector size is checked before anything is built, and
    // vectors of movies not in movies.json are counted.
    let mut part = VectorPart {
        path: path.to_path_buf(),
        with: 0,
        without: 0,
        unknown: 0,
        unknown_ids: Vec::new(),
        emb_hash: emb_hash.unwrap_or_default().to_string(),
    };
    if let Some(conn) = &embeddings {
        let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
        part.unknown_ids = vector_source::scan(conn, &table(model), &source(model), &known)?;
        part.unknown = part.unknown_ids.len();
    }

    if let Some(emb) = &embeddings {
        if let Some(patched) = patch_previous(ctx, model, &ids, emb, key, base, path, &mut part)? {
            return Ok((patched, true));
        }
    }

    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    let mut digests = Vec::new();
    {
        let conn = sqlite::open(tmp.path()).map_err(e("open"))?;
        // Scratch until renamed into the cache: no journal, no fsync.
        // Large pages: vec0 writes each vector into its chunk's blob, and
        // SQLite walks the blob's overflow chain from the start for every
        // write, so the walk is 16 times shorter with 64 KiB pages. The
        // page size of a part never shows: assembly copies rows into the
        // 4 KiB pages of the database.
        conn.execute_batch(&format!(
            "PRAGMA page_size = {VECTOR_PART_PAGE_SIZE}; PRAGMA journal_mode = OFF; \
             PRAGMA synchronous = OFF; PRAGMA cache_size = -16384;"
        ))
        .map_err(e("configure"))?;
        let table = table(model);
        let src = source(model);
        conn.execute_batch(&table.create_sql())
            .map_err(e("create the vector table"))?;
        conn.execute_batch("BEGIN").map_err(e("begin"))?;
        match &embeddings {
            None => part.without = ids.len(),
            Some(emb) => {
                let filled = vector_source::fill(ctx, &conn, &table, &src, emb, &ids, shown)?;
                part.with = filled.with;
                part.without = filled.without;
                digests = filled.digests;
            }
        }
        conn.execute_batch("COMMIT; ANALYZE;")
            .map_err(e("analyze"))?;
        cache::write_meta(&conn, &meta(key, base, &part)).map_err(e("describe the part"))?;
        conn.close()
            .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    }
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    save_digests(path, key, &digests);
    Ok((part, false))
}

/// The description table of a vector part.
fn meta(key: &str, base: &str, part: &VectorPart) -> Vec<(&'static str, String)> {
    vec![
        ("key", key.to_string()),
        ("base", base.to_string()),
        ("with", part.with.to_string()),
        ("without", part.without.to_string()),
        ("unknown", part.unknown.to_string()),
        // Newline-separated (ids have no control characters): the
        // warning tells movies that are gone from dropped ones.
        ("unknown_ids", part.unknown_ids.join("\n")),
        ("embeddings_blake3", part.emb_hash.clone()),
    ]
}

/// Keep the digests of a part beside it, for the next build to patch it.
/// Best effort: without them the next build fills a new part.
fn save_digests(path: &Path, key: &str, digests: &[vector_source::RowDigest]) {
    if vector_source::save_digests(path, key, digests).is_err() {
        let _ = std::fs::remove_file(path.with_extension("rows"));
    }
}

/// The part of `key` made from the previous build's part (same model,
/// table and movie ids; other embeddings) by replacing the vectors that
/// changed, if there is one to patch and patching can do it: its rows are
/// then those a fill would have written (the assembly copies rows, so the
/// database's bytes are the same; `tests/db_cache.rs` compares them with a
/// clean build's). A one-movie edit of a model with a provider changes one
/// vector of the embeddings file; refilling every vector cost most of the
/// database's share of the edit.
#[allow(clippy::too_many_arguments)]
fn patch_previous(
    ctx: &StageContext,
    model: &Model,
    ids: &[String],
    emb: &rusqlite::Connection,
    key: &str,
    base: &str,
    path: &Path,
    part: &mut VectorPart,
) -> Result<Option<VectorPart>, VectorError> {
    let table = table(model);
    if !table.updatable() {
        return Ok(None);
    }
    let Some(dir) = path.parent() else {
        return Ok(None);
    };
    let Some(old) = cache::previous(dir, &prefix(model), key) else {
        return Ok(None);
    };
    let Some(old_meta) = cache::read_meta(&old) else {
        return Ok(None);
    };
    if old_meta.get("base").map(String::as_str) != Some(base) {
        return Ok(None);
    }
    let Some(old_key) = old_meta.get("key") else {
        return Ok(None);
    };
    let Some(digests) = vector_source::load_digests(&old, old_key, ids.len()) else {
        return Ok(None);
    };
    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    if std::fs::copy(&old, tmp.path()).is_err() {
        return Ok(None);
    }
    let conn = sqlite::open(tmp.path()).map_err(e("open"))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16384; \
         DROP TABLE {}; BEGIN;",
        cache::META_TABLE
    ))
    .map_err(e("open"))?;
    let src = source(model);
    let Some((filled, _replaced)) =
        vector_source::patch(ctx, &conn, &table, &src, emb, ids, &digests, shown)?
    else {
        return Ok(None);
    };
    part.with = filled.with;
    part.without = filled.without;
    // Only vectors changed: the statistics (of ids and chunks) stand.
    conn.execute_batch("COMMIT;").map_err(e("commit"))?;
    cache::write_meta(&conn, &meta(key, base, part)).map_err(e("describe the part"))?;
    conn.close()
        .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    save_digests(path, key, &filled.digests);
    Ok(Some(VectorPart {
        path: path.to_path_buf(),
        with: part.with,
        without: part.without,
        unknown: part.unknown,
        unknown_ids: std::mem::take(&mut part.unknown_ids),
        emb_hash: part.emb_hash.clone(),
    }))
}
