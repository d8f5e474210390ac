//! A vector part: one model's vector table in the part cache of a database
//! stage (movies-db's `vec_movies`, a records database's table of one
//! model) — a function of the model's embeddings file, the table (name,
//! dimensions, metric, quantization) and the ordered list of item ids
//! (nothing else of the items), so editing an item's other fields reuses
//! every model's part. Both database stages obtain theirs here; what
//! differs between them is said by a [`PartSpec`].
//!
//! A quantized model's table holds `INT8[N]` or `BIT[N]` vectors, quantized
//! by sqlite-vec itself while inserting, so they are exactly what a query
//! quantized the same way compares against; with `rescore` the float
//! vectors are kept beside them.
//!
//! Vectors are streamed from the embeddings database one item at a time
//! (never all in memory) and every one is checked before it is stored
//! ([`vector_source`]). A cached part was checked when it was built (its
//! key covers the embeddings file's content), so a hit reads no vector; the
//! counts are kept in the part's description table.

use crate::artifact;
use crate::sqlite;
use crate::stage::{StageContext, StageError, Warning};
use crate::stages::part_cache::{self as cache, db_err_at, Origin};
use crate::stages::vector_source;
use crate::vectors::{ItemSource, VectorTable};
use std::path::{Path, PathBuf};

/// A built vector part.
#[derive(Debug)]
pub(crate) struct VectorPart {
    /// The cache file holding the vector table (and its shadow tables).
    pub path: PathBuf,
    /// Items with a stored vector.
    pub with: usize,
    /// Items without one.
    pub without: usize,
    /// Ids of the vectors of items that are not in the input (not
    /// stored), sorted.
    pub unknown_ids: Vec<String>,
    /// blake3 of the embeddings file ("" when it is missing).
    pub emb_hash: String,
}

/// Why a vector part could not be had.
#[derive(Debug)]
pub(crate) struct VectorError {
    /// What went wrong.
    pub error: StageError,
    /// The item ids could not be read from the stage's other part (a
    /// damaged cache entry: build it again), as opposed to a problem with
    /// the embeddings.
    pub ids_unreadable: bool,
}

impl From<StageError> for VectorError {
    fn from(error: StageError) -> Self {
        VectorError {
            error,
            ids_unreadable: false,
        }
    }
}

/// How a stage's parts keep the ids of unknown vectors in their
/// description table (each as it always did, so cached parts stay
/// readable).
#[derive(Clone, Copy, Debug)]
pub(crate) enum IdList {
    /// Newline-separated (ids have no control characters), with their
    /// count beside: movies-db.
    Lines,
    /// A JSON array: records-db.
    Json,
}

/// Page size of a vector part (an internal file). vec0 writes each vector
/// into its chunk's blob, and SQLite walks the blob's overflow chain from
/// the start for every write, so the walk is 16 times shorter with 64 KiB
/// pages than with 4 KiB ones. The page size of a part never shows:
/// assembly copies rows into the pages of the database.
const VECTOR_PART_PAGE_SIZE: u32 = 65536;

/// What one stage's vector part of one model is.
#[derive(Debug)]
pub(crate) struct PartSpec<'a> {
    /// The stage's cache directory under `.pipe/cache/`.
    pub cache: &'a str,
    /// The stage's part format (part of the key).
    pub format: &'a str,
    /// The file-name prefix of this part kind (one entry of it is kept).
    pub prefix: String,
    /// The table the vectors go into.
    pub table: &'a VectorTable,
    /// The embeddings file and how messages name its vectors.
    pub src: ItemSource<'a>,
    /// blake3 of the embeddings file; `None` when it is missing (an empty
    /// table).
    pub emb_hash: Option<&'a str>,
    /// Key fields naming the table, after the embeddings' hash (records-db
    /// names its table and key column; movies-db's are fixed by its format).
    pub naming: &'a [(&'a str, &'a str)],
    /// The key field of the item ids' hash and that hash: the ordered ids
    /// are all the part depends on of the items.
    pub ids_hash: (&'a str, &'a str),
    /// Whether a rescoring part's key says its float table has rowids
    /// (movies-db's was WITHOUT ROWID once; records-db's never was).
    pub float_table_field: bool,
    /// How the description table keeps the unknown ids.
    pub id_list: IdList,
}

impl PartSpec<'_> {
    /// The part's cache key: everything its content depends on; and its
    /// base: the same without the embeddings' content (a previous part
    /// with this base can be patched where vectors changed).
    fn key(&self) -> Result<(String, String), StageError> {
        let (sqlite_v, vec_v) = cache::versions()?;
        let table = self.table;
        let dims = table.dimensions.to_string();
        let mut fields = vec![
            ("part", "vectors"),
            ("format", self.format),
            ("sqlite", sqlite_v.as_str()),
            ("sqlite-vec", vec_v.as_str()),
            ("embeddings", self.emb_hash.unwrap_or("missing")),
        ];
        fields.extend_from_slice(self.naming);
        fields.extend([
            ("dimensions", dims.as_str()),
            ("metric", table.metric.as_str()),
            self.ids_hash,
        ]);
        // Only a quantized part has these fields: the keys (and so the
        // cache files) of float parts stay what they were. `oversample` is
        // left out: it is a query setting, written to the database at
        // assembly, not a stored row.
        if let Some(q) = &table.quantization {
            fields.push(("quantization", q.kind.as_str()));
            fields.push(("rescore", if q.rescore { "true" } else { "false" }));
            if q.rescore && self.float_table_field {
                fields.push(("float-table", "rowid"));
            }
        }
        let key = cache::key(&fields);
        fields.retain(|(name, _)| *name != "embeddings");
        Ok((key, cache::key(&fields)))
    }
}

/// The vector part `spec` says: from the cache, else another machine's,
/// else built (and cached) over the ids `ids` reads (given the part's
/// project-relative path for messages), which are asked for only then.
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &PartSpec,
    ids: impl FnOnce(&Path) -> Result<Vec<String>, StageError>,
) -> Result<(VectorPart, Origin), VectorError> {
    let (key, base) = spec.key()?;
    let dir = cache::dir(ctx.root, spec.cache);
    let id_list = spec.id_list;
    let mut patched = false;
    let (part, origin) = cache::obtain(
        ctx,
        &dir,
        &spec.prefix,
        &key,
        |path, key| from_cache(path, key, id_list),
        |path| {
            let (part, p) = build(ctx, spec, ids, &key, &base, path)?;
            patched = p;
            Ok::<_, VectorError>(part)
        },
    )?;
    Ok((part, if patched { Origin::Patched } else { origin }))
}

/// A cached vector part, if `path` holds a readable one with this key.
fn from_cache(path: &Path, key: &str, id_list: IdList) -> Option<VectorPart> {
    let meta = cache::read_meta(path)?;
    if meta.get("key").map(String::as_str) != Some(key) {
        return None;
    }
    let ids = meta.get("unknown_ids")?;
    Some(VectorPart {
        path: path.to_path_buf(),
        with: meta.get("with")?.parse().ok()?,
        without: meta.get("without")?.parse().ok()?,
        unknown_ids: match id_list {
            IdList::Lines => ids
                .split('\n')
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect(),
            IdList::Json => serde_json::from_str(ids).ok()?,
        },
        emb_hash: meta.get("embeddings_blake3")?.clone(),
    })
}

/// The ids in the first column of `sql`'s rows, read from the part at
/// `path` (`shown` in messages, which say it was reading `what`).
pub(crate) fn read_ids(
    path: &Path,
    shown: &Path,
    sql: &str,
    what: &str,
) -> Result<Vec<String>, StageError> {
    let e = |err: rusqlite::Error| db_err_at(shown, what, err);
    let conn = sqlite::open_read_only(path).map_err(e)?;
    let mut stmt = conn.prepare(sql).map_err(e)?;
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
    spec: &PartSpec,
    ids: impl FnOnce(&Path) -> Result<Vec<String>, StageError>,
    key: &str,
    base: &str,
    path: &Path,
) -> Result<(VectorPart, bool), VectorError> {
    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let ids = ids(shown).map_err(|error| VectorError {
        error,
        ids_unreadable: true,
    })?;
    let (table, src) = (spec.table, &spec.src);
    let embeddings = match spec.emb_hash {
        Some(_) => Some(vector_source::open(&ctx.abs(src.file), src.file)?),
        None => None,
    };
    let mut part = VectorPart {
        path: path.to_path_buf(),
        with: 0,
        without: 0,
        unknown_ids: Vec::new(),
        emb_hash: spec.emb_hash.unwrap_or_default().to_string(),
    };
    // Every stored vector's size is checked before anything is built, and
    // vectors of items not in the input are counted; when there is a
    // previous part to patch, every vector's digest is taken in the same
    // pass.
    if let Some(emb) = &embeddings {
        let previous = patchable(spec, path, key, base, ids.len());
        let scanned = vector_source::scan(ctx, emb, table, src, &ids, previous.is_some())?;
        part.unknown_ids = scanned.unknown;
        if let (Some(old), Some(now)) = (previous, scanned.digests) {
            let patched =
                patch_previous(ctx, spec, &ids, emb, &old, now, key, base, path, &mut part)?;
            if patched {
                return Ok((part, true));
            }
        }
    }

    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    let mut digests = Vec::new();
    {
        let conn = sqlite::open(tmp.path()).map_err(e("open"))?;
        // Scratch until renamed into the cache: no journal, no fsync.
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
                let filled = vector_source::fill(ctx, &conn, table, src, emb, &ids, shown)?;
                part.with = filled.with;
                part.without = filled.without;
                digests = filled.digests;
            }
        }
        conn.execute_batch("COMMIT; ANALYZE;")
            .map_err(e("analyze"))?;
        cache::write_meta(&conn, &meta(spec, key, base, &part)).map_err(e("describe the part"))?;
        conn.close()
            .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    }
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    save_digests(path, key, &digests);
    Ok((part, false))
}

/// The description table of a vector part.
fn meta(spec: &PartSpec, key: &str, base: &str, part: &VectorPart) -> Vec<(&'static str, String)> {
    let unknown_ids = match spec.id_list {
        IdList::Lines => part.unknown_ids.join("\n"),
        IdList::Json => serde_json::to_string(&part.unknown_ids).unwrap_or_default(),
    };
    let mut meta = vec![
        ("key", key.to_string()),
        ("base", base.to_string()),
        ("with", part.with.to_string()),
        ("without", part.without.to_string()),
    ];
    if let IdList::Lines = spec.id_list {
        meta.push(("unknown", part.unknown_ids.len().to_string()));
    }
    meta.push(("unknown_ids", unknown_ids));
    meta.push(("embeddings_blake3", part.emb_hash.clone()));
    meta
}

/// Keep the digests of a part's vectors beside it, for the next build to
/// patch it. Best effort: without them the next build fills a new part.
fn save_digests(path: &Path, key: &str, digests: &[vector_source::RowDigest]) {
    if vector_source::save_digests(path, key, digests).is_err() {
        let _ = std::fs::remove_file(path.with_extension("rows"));
    }
}

/// A previous build's part to patch ([`patchable`]).
struct Previous {
    /// Its cache file.
    path: PathBuf,
    /// The digests of its vectors, in item order.
    digests: Vec<vector_source::RowDigest>,
}

/// The previous build's part that the part of `key` at `path` could be
/// patched from (the same table and `n` item ids, other embeddings: the
/// same `base`).
fn patchable(spec: &PartSpec, path: &Path, key: &str, base: &str, n: usize) -> Option<Previous> {
    if !spec.table.updatable() {
        return None;
    }
    let old = cache::previous(path.parent()?, &spec.prefix, key)?;
    let old_meta = cache::read_meta(&old)?;
    if old_meta.get("base").map(String::as_str) != Some(base) {
        return None;
    }
    let digests = vector_source::load_digests(&old, old_meta.get("key")?, n)?;
    Some(Previous { path: old, digests })
}

/// Make the part of `key` at `path` from the previous build's part `old`
/// by replacing the vectors whose digest differs from the embeddings'
/// digests `now`, if patching can do it (`true`; `part`'s counts are then
/// set). Its rows are then those a fill
/// would have written, and the assembly copies rows, so the database's
/// bytes are a clean build's (`tests/db_cache.rs` compares them). A
/// one-item edit with a provider changes one vector of the embeddings file,
/// and refilling every vector was most of the database's share of it.
#[allow(clippy::too_many_arguments)]
fn patch_previous(
    ctx: &StageContext,
    spec: &PartSpec,
    ids: &[String],
    emb: &rusqlite::Connection,
    old: &Previous,
    now: Vec<vector_source::RowDigest>,
    key: &str,
    base: &str,
    path: &Path,
    part: &mut VectorPart,
) -> Result<bool, VectorError> {
    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    if std::fs::copy(&old.path, tmp.path()).is_err() {
        return Ok(false);
    }
    let conn = sqlite::open(tmp.path()).map_err(e("open"))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16384; \
         DROP TABLE {}; BEGIN;",
        cache::META_TABLE
    ))
    .map_err(e("open"))?;
    let patched = vector_source::patch(
        ctx,
        &conn,
        spec.table,
        &spec.src,
        emb,
        ids,
        &old.digests,
        now,
        shown,
    )?;
    let Some((filled, _replaced)) = patched else {
        return Ok(false);
    };
    part.with = filled.with;
    part.without = filled.without;
    // Only vectors changed: the statistics (of ids and chunks) stand.
    conn.execute_batch("COMMIT;").map_err(e("commit"))?;
    cache::write_meta(&conn, &meta(spec, key, base, part)).map_err(e("describe the part"))?;
    conn.close()
        .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    save_digests(path, key, &filled.digests);
    Ok(true)
}

/// The warning (of `kind`, with `fix`) about `ids`, `src`'s vectors for
/// items that are not in `input` and are left out.
pub(crate) fn unknown_vectors<S: AsRef<str>>(
    src: &ItemSource,
    input: &Path,
    kind: &str,
    ids: &[S],
    fix: &str,
) -> Warning {
    let (item, input, file) = (src.item, input.display(), src.file.display());
    Warning::new(
        kind,
        format!(
            "embeddings files hold vectors for {item}s that are not in {input}; they are left out"
        ),
        format!("{} ({})", src.model, ids.len()),
        format!(
            "{file} has {} vectors for {item}s that are not in {input}: {}",
            ids.len(),
            crate::warning::some_ids(ids)
        ),
        fix,
    )
}

/// The warning about `without` of the `total` items that have no vector in
/// `src` (so semantic search cannot find them).
pub(crate) fn without_vector(src: &ItemSource, without: usize, total: usize) -> Warning {
    let item = src.item;
    Warning::new(
        &format!("{item}s-without-vector"),
        format!("{item}s without a vector: semantic search cannot find them"),
        format!("{} ({without} of {total})", src.model),
        format!(
            "{without} of {total} {item}s have no vector in {} (model {}); they cannot be found by \
             semantic search until their embeddings are generated",
            src.file.display(),
            src.model
        ),
        format!("generate the embeddings of these {item}s"),
    )
}
