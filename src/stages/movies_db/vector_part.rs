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

use super::cache;
use super::catalog_part::CatalogPart;
use super::{db_err_at, MoviesDbSpec, Origin, PROGRESS_EVERY};
use crate::artifact;
use crate::manifest::model::Model;
use crate::sqlite;
use crate::stage::{StageContext, StageError};
use crate::vectors::{ItemSource, VectorProblem, VectorTable};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
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
        ("format", cache::PART_FORMAT),
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
    let dir = cache::dir(ctx.root);
    let prefix = prefix(model);
    let name = cache::file_name(&prefix, &key);
    let path = dir.join(&name);
    if let Some(part) = from_cache(&path, &key) {
        return Ok((part, Origin::Cached));
    }
    let part = build(ctx, spec, catalog, emb_hash, &key, &path)?;
    cache::prune(&dir, &prefix, &key);
    Ok((part, Origin::Built))
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
        Some(_) => Some(open_embeddings(
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
        part.unknown_ids = scan_embeddings(conn, model, &known)?;
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
        let read_err = |err: rusqlite::Error| {
            StageError::with_source(
                format!("cannot read {}: {err}", model.embeddings.display()),
                err,
            )
        };
        match &embeddings {
            None => part.without = ids.len(),
            Some(emb) => {
                let mut get_vec = emb
                    .prepare("SELECT embedding FROM embeddings WHERE movie_id = ?1")
                    .map_err(read_err)?;
                let mut ins_vec = conn.prepare(&table.insert_sql()).map_err(e("prepare"))?;
                let mut ins_float = match table.insert_float_sql() {
                    Some(sql) => Some(conn.prepare(&sql).map_err(e("prepare"))?),
                    None => None,
                };
                let total = ids.len() as u64;
                for (i, id) in ids.iter().enumerate() {
                    if i % PROGRESS_EVERY == 0 {
                        if ctx.is_cancelled() {
                            return Err(StageError::cancelled().into());
                        }
                        ctx.progress.progress(i as u64, total, "inserting vectors");
                    }
                    let mut rows = get_vec.query([id]).map_err(read_err)?;
                    match rows.next().map_err(read_err)? {
                        Some(row) => {
                            let blob = match row.get_ref(0) {
                                Ok(ValueRef::Blob(b)) => b,
                                _ => return Err(problem(table.wrong_size(&src, id, -1))),
                            };
                            table.check_stored(&src, id, blob).map_err(problem)?;
                            ins_vec
                                .execute(params![id, blob])
                                .map_err(e("insert a vector"))?;
                            if let Some(ins) = ins_float.as_mut() {
                                ins.execute(params![id, blob])
                                    .map_err(e("insert a float vector"))?;
                            }
                            part.with += 1;
                        }
                        None => part.without += 1,
                    }
                }
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

/// Open an embeddings database read-only and check it has the expected table.
fn open_embeddings(abs: &Path, shown: &Path) -> Result<Connection, StageError> {
    let conn = sqlite::open_read_only(abs).map_err(|e| {
        StageError::with_source(
            format!("cannot open embeddings database {}: {e}", shown.display()),
            e,
        )
    })?;
    let has_table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| {
            StageError::with_source(
                format!("{} is not a readable SQLite database: {e}", shown.display()),
                e,
            )
        })?;
    if has_table.is_none() {
        return Err(StageError::new(format!(
            "{} has no table 'embeddings(movie_id, embedding, created_at)'; is it really an \
             embeddings database? Regenerate it with the model's embedding generator",
            shown.display()
        )));
    }
    Ok(conn)
}

/// Check the size of every stored vector; the ids of those of unknown
/// movies, sorted.
fn scan_embeddings(
    conn: &Connection,
    model: &Model,
    known: &HashSet<&str>,
) -> Result<Vec<String>, StageError> {
    let shown = model.embeddings.display();
    let sql_err =
        |e: rusqlite::Error| StageError::with_source(format!("cannot read {shown}: {e}"), e);
    let mut stmt = conn
        .prepare("SELECT movie_id, typeof(embedding), length(embedding) FROM embeddings")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let expected = i64::from(model.dimensions) * 4;
    let (table, src) = (table(model), source(model));
    let mut unknown = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let id = match row.get_ref(0).map_err(sql_err)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => format!("{other:?}"),
        };
        let kind: String = row.get(1).map_err(sql_err)?;
        if kind != "blob" {
            return Err(StageError::new(table.not_blob(&src, &id, &kind).0));
        }
        let len: i64 = row.get(2).map_err(sql_err)?;
        if len != expected {
            return Err(StageError::new(table.wrong_size(&src, &id, len).0));
        }
        if !known.contains(id.as_str()) {
            unknown.push(id);
        }
    }
    unknown.sort();
    Ok(unknown)
}

/// A vector that cannot be stored stops the build.
fn problem(p: VectorProblem) -> VectorError {
    StageError::new(p.0).into()
}
