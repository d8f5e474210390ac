//! The records part: the `records` table (declared columns, rows in id
//! order) and its `records_fts` index, the same for every model's database
//! of a target, cached under `.pipe/cache/records-db/` by a key over the
//! records file's content and everything else its bytes depend on.
//!
//! Records are streamed from their file into a temporary table keyed by id
//! (so a million records never sit in memory), copied into `records` in id
//! order, indexed, analyzed and laid out by `VACUUM INTO`: the part's bytes
//! are a function of its rows, and are copied whole into each database.

use super::{db_err_at, CACHE, PAGE_SIZE, PART_FORMAT};
use crate::artifact;
use crate::records::{self, column_value, RecordsDbSpec};
use crate::sqlite;
use crate::stage::{StageContext, StageError};
use crate::stages::part_cache::{self as cache, Origin};
use rusqlite::{params_from_iter, Connection};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A built records part.
#[derive(Clone, Debug)]
pub(crate) struct RecordsPart {
    /// The cache file.
    pub path: PathBuf,
    /// Rows of `records`.
    pub records: usize,
    /// blake3 over the ids in id order: what the vector parts depend on.
    pub ids_hash: String,
}

/// How often (in records) cancellation is checked and progress reported.
const PROGRESS_EVERY: usize = 1000;

/// `name` double-quoted for SQL.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The records part of `spec`: from the cache, else built (and cached).
/// Targets of one process that need the same part build it once: the
/// others wait, then find it in the cache.
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
) -> Result<(RecordsPart, Origin), StageError> {
    let input = &spec.records.input;
    let input_hash = ctx
        .input_hash(input)
        .map_err(|e| StageError::io(input, "read", e))?
        .ok_or_else(|| {
            StageError::new(format!(
                "the records file {} of target {} does not exist; create it or fix the \
                 target's `records` input in pipeline.toml",
                input.display(),
                spec.name
            ))
        })?
        .to_hex()
        .to_string();
    let (sqlite_v, vec_v) = cache::versions()?;
    let columns: Vec<String> = spec
        .columns
        .iter()
        .map(|c| format!("{}:{}:{}", c.name, c.ty, c.nullable))
        .collect();
    let columns = serde_json::to_string(&columns).unwrap_or_default();
    let fts = serde_json::to_string(&spec.fts).unwrap_or_default();
    let id_rule = format!("{:?}", spec.records.id);
    let key = cache::key(&[
        ("part", "records"),
        ("format", PART_FORMAT),
        ("sqlite", sqlite_v),
        ("sqlite-vec", vec_v),
        ("records", &input_hash),
        ("records-format", spec.records.format.as_str()),
        ("id", &id_rule),
        ("columns", &columns),
        ("fts", &fts),
    ]);
    let dir = cache::dir(ctx.root, CACHE);
    let prefix = format!("records.{}.", spec.name);
    let path = dir.join(cache::file_name(&prefix, &key));
    let slot = slot(&path);
    let mut built_here = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(part) = from_cache(&path, &key) {
        let origin = if *built_here {
            Origin::Shared
        } else {
            Origin::Cached
        };
        return Ok((part, origin));
    }
    let part = build(ctx, spec, &key, &path)?;
    *built_here = true;
    cache::prune(&dir, &prefix, &key);
    Ok((part, Origin::Built))
}

/// One lock per part path in this process, holding whether this process
/// built the part (so the other targets report it as shared).
fn slot(path: &Path) -> Arc<Mutex<bool>> {
    static SLOTS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<bool>>>>> = OnceLock::new();
    let mut map = SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

/// A cached part, if `path` holds one with this key (its description is
/// written after it, so a description names a complete part).
fn from_cache(path: &Path, key: &str) -> Option<RecordsPart> {
    let meta = cache::read_sidecar(path)?;
    if meta.get("key").map(String::as_str) != Some(key) {
        return None;
    }
    Some(RecordsPart {
        path: path.to_path_buf(),
        records: meta.get("records")?.parse().ok()?,
        ids_hash: meta.get("ids_blake3")?.clone(),
    })
}

/// Forget a cached part that proved unreadable.
pub(crate) fn forget(part: &RecordsPart) {
    cache::discard(&part.path);
}

/// The statement creating `records` (`id` and the declared columns).
fn create_sql(spec: &RecordsDbSpec, table: &str) -> String {
    let mut sql = format!("CREATE TABLE {table} (id TEXT PRIMARY KEY");
    for c in &spec.columns {
        sql.push_str(&format!(", {} {}", quoted(&c.name), c.ty.sql()));
    }
    sql.push(')');
    sql
}

/// Read the records and write the part to `path` (atomically).
fn build(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
    key: &str,
    path: &Path,
) -> Result<RecordsPart, StageError> {
    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    if let Some(c) = spec
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("id"))
    {
        return Err(StageError::new(format!(
            "target {}: a declared column is named {:?}, but `id` is the records table's key \
             column; rename the column in `columns`",
            spec.name, c.name
        )));
    }
    if let Some(f) = spec
        .fts
        .iter()
        .find(|f| !spec.columns.iter().any(|c| &c.name == *f))
    {
        return Err(StageError::new(format!(
            "target {}: `fts` names {f:?}, which is not a declared column; add it to `columns`",
            spec.name
        )));
    }
    let work = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    let conn = sqlite::open(work.path()).map_err(e("open"))?;
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -16384; PRAGMA temp_store = FILE;"
    ))
    .map_err(e("configure"))?;
    conn.execute_batch(&format!(
        "{}; {};",
        create_sql(spec, "main.records"),
        create_sql(spec, "temp.staging")
    ))
    .map_err(e("create the records table"))?;
    stage_records(ctx, spec, &conn, shown)?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    conn.execute_batch(
        "INSERT INTO main.records SELECT * FROM temp.staging ORDER BY id; DROP TABLE temp.staging;",
    )
    .map_err(e("sort the records"))?;
    if !spec.fts.is_empty() {
        let columns: Vec<String> = spec.fts.iter().map(|f| quoted(f)).collect();
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE records_fts USING fts5({}, content='records', content_rowid='rowid');
             INSERT INTO records_fts(records_fts) VALUES('rebuild');
             INSERT INTO records_fts(records_fts) VALUES('optimize');",
            columns.join(", ")
        ))
        .map_err(e("index the records (FTS5)"))?;
    }
    conn.execute_batch(&format!("ANALYZE; {}", cache::SORT_STATISTICS))
        .map_err(e("analyze"))?;
    let (records, ids_hash) = ids_digest(&conn).map_err(e("read the ids"))?;
    // Laid out canonically: the part's bytes are a function of its rows.
    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    let target = tmp.path().to_str().ok_or_else(|| {
        StageError::new(format!("{}: the path is not valid UTF-8", shown.display()))
    })?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(e("lay out (VACUUM INTO)"))?;
    conn.close()
        .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    drop(work);
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    let meta = BTreeMap::from([
        ("key".to_string(), key.to_string()),
        ("records".to_string(), records.to_string()),
        ("ids_blake3".to_string(), ids_hash.clone()),
    ]);
    cache::write_sidecar(path, &meta)
        .map_err(|err| StageError::io(shown, "describe the part", err))?;
    Ok(RecordsPart {
        path: path.to_path_buf(),
        records,
        ids_hash,
    })
}

/// Stream the records into `temp.staging` (in file order).
fn stage_records(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
    conn: &Connection,
    shown: &Path,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let placeholders: Vec<String> = (1..=spec.columns.len() + 1)
        .map(|i| format!("?{i}"))
        .collect();
    conn.execute_batch("BEGIN").map_err(e("begin"))?;
    let mut insert = conn
        .prepare(&format!(
            "INSERT INTO temp.staging VALUES ({})",
            placeholders.join(", ")
        ))
        .map_err(e("prepare"))?;
    let reader =
        records::read(ctx.root, &spec.records).map_err(|r| StageError::new(r.to_string()))?;
    let mut values = Vec::with_capacity(spec.columns.len() + 1);
    for (i, record) in reader.enumerate() {
        if i % PROGRESS_EVERY == 0 {
            if ctx.is_cancelled() {
                return Err(StageError::cancelled());
            }
            ctx.progress.progress(i as u64, 0, "reading records");
        }
        let record = record.map_err(|r| StageError::new(r.to_string()))?;
        values.clear();
        values.push(rusqlite::types::Value::Text(record.id.clone()));
        for c in &spec.columns {
            let value = column_value(&record, c)
                .map_err(|r| StageError::new(r.in_file(&spec.records.input).to_string()))?;
            values.push(value);
        }
        insert
            .execute(params_from_iter(values.iter()))
            .map_err(e("insert a record"))?;
    }
    drop(insert);
    conn.execute_batch("COMMIT").map_err(e("commit"))
}

/// The number of records and a blake3 over their ids in id order (each
/// length-prefixed).
fn ids_digest(conn: &Connection) -> rusqlite::Result<(usize, String)> {
    let mut stmt = conn.prepare("SELECT id FROM records ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    let mut h = blake3::Hasher::new();
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        crate::fingerprint::update_parts(&mut h, [id.as_bytes()]);
        n += 1;
    }
    Ok((n, h.finalize().to_hex().to_string()))
}
