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
use std::collections::HashMap;
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

/// What [`scan`] found.
pub(crate) struct Scanned {
    /// The ids of stored vectors that are not among the items, sorted.
    pub unknown: Vec<String>,
    /// When asked for: each item's [`RowDigest`], in the order of the ids
    /// ([`NO_VECTOR`] for those without one), for [`patch`].
    pub digests: Option<Vec<RowDigest>>,
}

/// Check the type and size of every stored vector and find those of ids
/// not among `ids`; with `digests`, also take every item's vector digest
/// in the same pass (reading each blob: without, only their sizes).
pub(crate) fn scan(
    ctx: &StageContext,
    conn: &Connection,
    table: &VectorTable,
    src: &ItemSource,
    ids: &[String],
    digests: bool,
) -> Result<Scanned, StageError> {
    let shown = src.file.display();
    let sql_err =
        |e: rusqlite::Error| StageError::with_source(format!("cannot read {shown}: {e}"), e);
    let sql = if digests {
        "SELECT movie_id, typeof(embedding), length(embedding), embedding FROM embeddings"
    } else {
        "SELECT movie_id, typeof(embedding), length(embedding) FROM embeddings"
    };
    let mut stmt = conn.prepare(sql).map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let position: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut now = digests.then(|| vec![NO_VECTOR; ids.len()]);
    let expected = i64::from(table.dimensions) * 4;
    let mut unknown = Vec::new();
    let mut n = 0usize;
    while let Some(row) = rows.next().map_err(sql_err)? {
        n += 1;
        if n.is_multiple_of(PROGRESS_EVERY * 10) && ctx.is_cancelled() {
            return Err(StageError::cancelled());
        }
        let id = match row.get_ref(0).map_err(sql_err)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t),
            other => std::borrow::Cow::Owned(format!("{other:?}")),
        };
        let kind = row.get_ref(1).map_err(sql_err)?;
        if kind.as_str().ok() != Some("blob") {
            let kind: String = row.get(1).map_err(sql_err)?;
            return Err(StageError::new(table.not_blob(src, &id, &kind).0));
        }
        let len: i64 = row.get(2).map_err(sql_err)?;
        if len != expected {
            return Err(StageError::new(table.wrong_size(src, &id, len).0));
        }
        match position.get(&*id) {
            Some(&i) => {
                if let (Some(now), Ok(ValueRef::Blob(blob))) = (now.as_mut(), row.get_ref(3)) {
                    now[i] = row_digest(blob);
                }
            }
            None => unknown.push(id.into_owned()),
        }
    }
    unknown.sort();
    Ok(Scanned {
        unknown,
        digests: now,
    })
}

/// What tells one item's stored vector from another: the first 16 bytes
/// of the blake3 of its float32 blob. A part keeps them, in item order, so
/// that the next build can replace only the vectors that changed
/// ([`patch`]).
pub(crate) type RowDigest = [u8; 16];

/// The digest of an item without a stored vector.
pub(crate) const NO_VECTOR: RowDigest = [0; 16];

fn row_digest(blob: &[u8]) -> RowDigest {
    let mut d = [0u8; 16];
    d.copy_from_slice(&blake3::hash(blob).as_bytes()[..16]);
    d
}

/// How many items [`fill`] found a vector for, and each one's digest.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filled {
    /// Items with a stored vector.
    pub with: usize,
    /// Items without one.
    pub without: usize,
    /// Each item's [`RowDigest`], in the order of the ids ([`NO_VECTOR`]
    /// for those without one).
    pub digests: Vec<RowDigest>,
}

/// Store the digests of the part of cache key `key` beside it
/// (`<part>.rows`: the key, then the digests), atomically.
pub(crate) fn save_digests(part: &Path, key: &str, digests: &[RowDigest]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(key.len() + digests.len() * 16);
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend(digests.iter().flatten());
    crate::artifact::write_atomic(&part.with_extension("rows"), &bytes)
}

/// The digests stored beside `part`, if they are those of the part of
/// `key` and there are exactly `n` of them.
pub(crate) fn load_digests(part: &Path, key: &str, n: usize) -> Option<Vec<RowDigest>> {
    let bytes = std::fs::read(part.with_extension("rows")).ok()?;
    let digests = bytes.strip_prefix(key.as_bytes())?;
    if digests.len() != n * 16 {
        return None;
    }
    Some(
        digests
            .chunks_exact(16)
            .map(|c| {
                let mut d = [0u8; 16];
                d.copy_from_slice(c);
                d
            })
            .collect(),
    )
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
    let mut filled = Filled {
        digests: Vec::with_capacity(ids.len()),
        ..Filled::default()
    };
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
                filled.digests.push(row_digest(blob));
            }
            None => {
                filled.without += 1;
                filled.digests.push(NO_VECTOR);
            }
        }
    }
    Ok(filled)
}

/// Bring `table` of `out` — a copy of a part [`fill`]ed with the same ids
/// from an earlier version of `emb`, whose digests are `old` — up to date
/// with `emb`, whose digests [`scan`] found to be `now`, replacing in place
/// only the vectors whose digest changed (a one-movie edit changes one).
/// The rows are then what [`fill`] would have written. `Ok(None)` when
/// that cannot be had in place (an item gained or lost its vector, or the
/// table is quantized: see [`VectorTable::updatable`]): the caller fills a
/// new part instead.
#[allow(clippy::too_many_arguments)]
pub(crate) fn patch(
    ctx: &StageContext,
    out: &Connection,
    table: &VectorTable,
    src: &ItemSource,
    emb: &Connection,
    ids: &[String],
    old: &[RowDigest],
    now: Vec<RowDigest>,
    shown: &Path,
) -> Result<Option<(Filled, usize)>, StageError> {
    let Some(update) = table.update_sql() else {
        return Ok(None);
    };
    if old.len() != ids.len() || now.len() != ids.len() {
        return Ok(None);
    }
    let read_err = |err: rusqlite::Error| {
        StageError::with_source(format!("cannot read {}: {err}", src.file.display()), err)
    };
    let mut get_vec = emb
        .prepare("SELECT embedding FROM embeddings WHERE movie_id = ?1")
        .map_err(read_err)?;
    let mut update = out.prepare(&update).map_err(|err| {
        StageError::with_source(format!("{}: cannot prepare: {err}", shown.display()), err)
    })?;
    // The digests came from the scan's one pass over the file (a lookup
    // per item cost four times as much); only changed vectors are read.
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let mut filled = Filled {
        with: 0,
        without: 0,
        digests: Vec::with_capacity(ids.len()),
    };
    let mut replaced = 0;
    for ((id, was), digest) in ids.iter().zip(old).zip(now) {
        if (digest == NO_VECTOR) != (*was == NO_VECTOR) {
            return Ok(None);
        }
        if digest == NO_VECTOR {
            filled.without += 1;
        } else {
            filled.with += 1;
        }
        filled.digests.push(digest);
        if digest == *was {
            continue;
        }
        let mut rows = get_vec.query([id]).map_err(read_err)?;
        let row = rows.next().map_err(read_err)?;
        let blob = match row.map(|r| r.get_ref(0)) {
            Some(Ok(ValueRef::Blob(b))) => b,
            _ => return Err(StageError::new(table.wrong_size(src, id, -1).0)),
        };
        table
            .check_stored(src, id, blob)
            .map_err(|p| StageError::new(p.0))?;
        update.execute(params![id, blob]).map_err(|err| {
            StageError::with_source(
                format!("{}: cannot replace a vector: {err}", shown.display()),
                err,
            )
        })?;
        replaced += 1;
    }
    Ok(Some((filled, replaced)))
}
