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
    let dir = cache::dir(ctx.root, super::CACHE);
    let prefix = prefix(model);
    cache::obtain(ctx, &dir, &prefix, &key, from_cache, |path| {
        build(ctx, spec, catalog, emb_hash, &key, path)
    })
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

/// Check the embeddings and write the vector part to `path` (atomically).
fn build(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    catalog: &CatalogPart,
    emb_hash: Option<&str>,
    key: &str,
    path: &Path,
) -> Result<VectorPart, VectorError> {
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

    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
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
            }
        }
        conn.execute_batch("COMMIT; ANALYZE;")
            .map_err(e("analyze"))?;
        cache::write_meta(
            &conn,
            &[
                ("key", key.to_string()),
                ("with", part.with.to_string()),
                ("without", part.without.to_string()),
                ("unknown", part.unknown.to_string()),
                // Newline-separated (ids have no control characters): the
                // warning tells movies that are gone from dropped ones.
                ("unknown_ids", part.unknown_ids.join("\n")),
                ("embeddings_blake3", part.emb_hash.clone()),
            ],
        )
        .map_err(e("describe the part"))?;
        conn.close()
            .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    }
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    Ok(part)
}
