//! A vector part: one model's vector table of a records database — a
//! function of the model's embeddings file, its dimensions, metric and
//! quantization, the table's name and the ordered list of record ids
//! (nothing else of the records), so editing a record's fields (not its
//! text) reuses every model's part, and a model whose embeddings did not
//! change keeps its part when another model's did.

use super::records_part::{self, RecordsPart};
use super::{db_err_at, CACHE, PART_FORMAT};
use crate::artifact;
use crate::manifest::model::Model;
use crate::records::RecordsDbSpec;
use crate::sqlite;
use crate::stage::{StageContext, StageError};
use crate::stages::part_cache::{self as cache, Origin};
use crate::stages::vector_source;
use crate::vectors::{ItemSource, VectorTable};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A built vector part.
#[derive(Debug)]
pub(crate) struct VectorPart {
    /// The cache file holding the vector table (and its shadow tables).
    pub path: PathBuf,
    /// Records with a stored vector.
    pub with: usize,
    /// Records without one.
    pub without: usize,
    /// Ids of vectors of records not in the records file, sorted.
    pub unknown_ids: Vec<String>,
    /// blake3 of the embeddings file ("" when it is missing).
    pub emb_hash: String,
}

/// Why a vector part could not be had.
#[derive(Debug)]
pub(crate) struct VectorError {
    /// What went wrong.
    pub error: StageError,
    /// The records part could not be read (a damaged cache entry: build it
    /// again), as opposed to a problem with the embeddings.
    pub records_unreadable: bool,
}

impl From<StageError> for VectorError {
    fn from(error: StageError) -> Self {
        VectorError {
            error,
            records_unreadable: false,
        }
    }
}

/// Page size of a vector part: an internal file whose rows assembly copies
/// into the database's pages (see movies-db's vector part: vec0 walks a
/// chunk's overflow chain for every write, 16 times shorter with 64 KiB).
const VECTOR_PART_PAGE_SIZE: u32 = 65536;

/// How messages about `model`'s stored vectors name them.
pub(crate) fn source<'a>(model: &'a Model, file: &'a Path) -> ItemSource<'a> {
    ItemSource {
        file,
        item: "record",
        model: &model.id,
        model_file: &model.file,
    }
}

/// The vector part of `model` (stored as `table`) over `records`' ids:
/// from the cache, else built. `emb_hash` is `None` when the embeddings
/// file is missing (an empty table).
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
    model: &Model,
    table: &VectorTable,
    records: &RecordsPart,
    emb_hash: Option<&str>,
) -> Result<(VectorPart, Origin), VectorError> {
    let (sqlite_v, vec_v) = cache::versions()?;
    let dims = table.dimensions.to_string();
    let mut fields = vec![
        ("part", "vectors"),
        ("format", PART_FORMAT),
        ("sqlite", sqlite_v.as_str()),
        ("sqlite-vec", vec_v.as_str()),
        ("embeddings", emb_hash.unwrap_or("missing")),
        ("table", table.table.as_str()),
        ("key", table.key.as_str()),
        ("dimensions", dims.as_str()),
        ("metric", table.metric.as_str()),
        ("record-ids", records.ids_hash.as_str()),
    ];
    if let Some(q) = &table.quantization {
        fields.push(("quantization", q.kind.as_str()));
        fields.push(("rescore", if q.rescore { "true" } else { "false" }));
    }
    let key = cache::key(&fields);
    let dir = cache::dir(ctx.root, CACHE);
    let prefix = format!("vectors.{}.{}.{}.", spec.name, spec.layout, model.id);
    cache::obtain(ctx, &dir, &prefix, &key, from_cache, |path| {
        build(ctx, spec, model, table, records, emb_hash, &key, path)
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
        unknown_ids: serde_json::from_str(meta.get("unknown_ids")?).ok()?,
        emb_hash: meta.get("embeddings_blake3")?.clone(),
    })
}

/// Check the embeddings and write the vector part to `path` (atomically).
#[allow(clippy::too_many_arguments)]
fn build(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
    model: &Model,
    table: &VectorTable,
    records: &RecordsPart,
    emb_hash: Option<&str>,
    key: &str,
    path: &Path,
) -> Result<VectorPart, VectorError> {
    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let ids = records_part::ids(records, shown).map_err(|error| VectorError {
        error,
        records_unreadable: true,
    })?;
    let emb_file = spec.embeddings_of(model);
    let src = source(model, emb_file);
    let embeddings = match emb_hash {
        Some(_) => Some(vector_source::open(&ctx.abs(emb_file), emb_file)?),
        None => None,
    };
    let mut part = VectorPart {
        path: path.to_path_buf(),
        with: 0,
        without: 0,
        unknown_ids: Vec::new(),
        emb_hash: emb_hash.unwrap_or_default().to_string(),
    };
    // Every stored vector's size is checked before anything is built.
    if let Some(conn) = &embeddings {
        let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
        part.unknown_ids = vector_source::scan(conn, table, &src, &known)?;
    }
    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    {
        let conn = sqlite::open(tmp.path()).map_err(e("open"))?;
        conn.execute_batch(&format!(
            "PRAGMA page_size = {VECTOR_PART_PAGE_SIZE}; PRAGMA journal_mode = OFF; \
             PRAGMA synchronous = OFF; PRAGMA cache_size = -16384;"
        ))
        .map_err(e("configure"))?;
        conn.execute_batch(&table.create_sql())
            .map_err(e("create the vector table"))?;
        conn.execute_batch("BEGIN").map_err(e("begin"))?;
        match &embeddings {
            None => part.without = ids.len(),
            Some(emb) => {
                let filled = vector_source::fill(ctx, &conn, table, &src, emb, &ids, shown)?;
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
                (
                    "unknown_ids",
                    serde_json::to_string(&part.unknown_ids).unwrap_or_default(),
                ),
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
