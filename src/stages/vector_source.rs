//! Vectors in: an embeddings file in the original format
//! (`embeddings(movie_id, embedding, created_at)`, float32 blobs keyed by
//! the item's id), checked and copied into a [`VectorTable`] by every
//! database stage (movies-db's `vec_movies`, the records databases' tables).
//!
//! Vectors are streamed one item at a time (never all in memory), and every
//! one is checked ([`VectorTable::check_stored`]) before it is stored.

use crate::sqlite;
use crate::stage::{StageContext, StageError};
use crate::vectors::{ItemSource, VectorTable};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::Path;

/// How often (in items) progress is reported and cancellation checked.
const PROGRESS_EVERY: usize = 1000;

/// Open an embeddings database read-only and check it has the expected table.
pub(crate) fn open(abs: &Path, shown: &Path) -> Result<Connection, StageError> {
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

/// Check the type and size of every stored vector; the ids of those not in
/// `known`, sorted.
pub(crate) fn scan(
    conn: &Connection,
    table: &VectorTable,
    src: &ItemSource,
    known: &HashSet<&str>,
) -> Result<Vec<String>, StageError> {
    let shown = src.file.display();
    let sql_err =
        |e: rusqlite::Error| StageError::with_source(format!("cannot read {shown}: {e}"), e);
    let mut stmt = conn
        .prepare("SELECT movie_id, typeof(embedding), length(embedding) FROM embeddings")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let expected = i64::from(table.dimensions) * 4;
    let mut unknown = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let id = match row.get_ref(0).map_err(sql_err)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => format!("{other:?}"),
        };
        let kind: String = row.get(1).map_err(sql_err)?;
        if kind != "blob" {
            return Err(StageError::new(table.not_blob(src, &id, &kind).0));
        }
        let len: i64 = row.get(2).map_err(sql_err)?;
        if len != expected {
            return Err(StageError::new(table.wrong_size(src, &id, len).0));
        }
        if !known.contains(id.as_str()) {
            unknown.push(id);
        }
    }
    unknown.sort();
    Ok(unknown)
}

/// How many items [`fill`] found a vector for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Filled {
    /// Items with a stored vector.
    pub with: usize,
    /// Items without one.
    pub without: usize,
}

/// Insert the vector of each of `ids` (in that order) found in `emb` into
/// `table` of `out` (which exists; the caller holds the transaction),
/// checking each one. `shown` names `out` in messages.
pub(crate) fn fill(
    ctx: &StageContext,
    out: &Connection,
    table: &VectorTable,
    src: &ItemSource,
    emb: &Connection,
    ids: &[String],
    shown: &Path,
) -> Result<Filled, StageError> {
    let e = |what: &'static str| {
        move |err: rusqlite::Error| {
            StageError::with_source(format!("{}: cannot {what}: {err}", shown.display()), err)
        }
    };
    let read_err = |err: rusqlite::Error| {
        StageError::with_source(format!("cannot read {}: {err}", src.file.display()), err)
    };
    let mut get_vec = emb
        .prepare("SELECT embedding FROM embeddings WHERE movie_id = ?1")
        .map_err(read_err)?;
    let mut ins_vec = out.prepare(&table.insert_sql()).map_err(e("prepare"))?;
    let mut ins_float = match table.insert_float_sql() {
        Some(sql) => Some(out.prepare(&sql).map_err(e("prepare"))?),
        None => None,
    };
    let mut filled = Filled::default();
    let total = ids.len() as u64;
    for (i, id) in ids.iter().enumerate() {
        if i % PROGRESS_EVERY == 0 {
            if ctx.is_cancelled() {
                return Err(StageError::cancelled());
            }
            ctx.progress.progress(i as u64, total, "inserting vectors");
        }
        let mut rows = get_vec.query([id]).map_err(read_err)?;
        match rows.next().map_err(read_err)? {
            Some(row) => {
                let blob = match row.get_ref(0) {
                    Ok(ValueRef::Blob(b)) => b,
                    _ => return Err(StageError::new(table.wrong_size(src, id, -1).0)),
                };
                table
                    .check_stored(src, id, blob)
                    .map_err(|p| StageError::new(p.0))?;
                ins_vec
                    .execute(params![id, blob])
                    .map_err(e("insert a vector"))?;
                if let Some(ins) = ins_float.as_mut() {
                    ins.execute(params![id, blob])
                        .map_err(e("insert a float vector"))?;
                }
                filled.with += 1;
            }
            None => filled.without += 1,
        }
    }
    Ok(filled)
}
