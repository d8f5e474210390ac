//! The catalog part: every table of a movies.db except `vec_movies` and
//! `config` — identical for every model, a function of movies.json,
//! collections.json and the timestamp only.
//!
//! It is built once per process (the three `movies-db@<model>` targets of a
//! build share it through [`obtain`]) and once per content (it is cached as
//! a SQLite file keyed by the inputs' hashes, so the next process reuses it).
//!
//! When movies.json changed only in movies' own fields (a title, a rating,
//! a source: not the names that the shared tables count, and not which
//! movies there are or their order), the previous part is patched instead
//! of built again: the changed movies' rows are updated in place, then the
//! steps that depend on history are redone the same way a full build ends
//! (the title index rebuilt from its rows, every FTS index optimized,
//! ANALYZE). Every table then holds the same rows under the same rowids as
//! a full build's, and since the part is laid out with `VACUUM INTO` (which
//! writes a function of the rows, not of their history), its bytes, and the
//! published databases', are the same too (`tests/db_cache.rs` checks this).

use super::schema::{INDEXES, SCHEMA};
use super::{db_err_at, MoviesDbSpec, Origin, PROGRESS_EVERY};
use crate::artifact;
use crate::movies::catalog::{load_collections, text, Collection, MovieRow, SourceView};
use crate::movies::entries::{self, Digest, MovieEntries};
use crate::movies::js;
use crate::movies::language;
use crate::movies::people::{add_people, normalise_country, Registry, Tally};
use crate::movies::time::iso_from_epoch;
use crate::sqlite;
use crate::stage::{StageContext, StageError};
use crate::stages::part_cache as cache;
use rayon::prelude::*;
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A built catalog part, as the assembly and the vector part need it.
#[derive(Debug)]
pub(crate) struct CatalogPart {
    /// The cache file holding the tables.
    pub path: PathBuf,
    /// Movies kept (rows of `movies`).
    pub movies: usize,
    /// blake3 over the kept movie ids in insertion order: the vector part
    /// depends on exactly this list.
    pub ids_hash: String,
    /// The timestamp stored in `created_at` and `config.built_at`.
    pub built_at: String,
    /// Ids of the movies in movies.json that are not kept (every source
    /// quality-marked): their vectors are not for movies that are gone.
    pub dropped_ids: HashSet<String>,
}

/// One catalog per (project, key) per process; the mutex makes the first
/// target build it while the others wait, then reuse it.
type Slot = Arc<Mutex<Option<Arc<CatalogPart>>>>;

fn slot(root: &Path, key: &str) -> Slot {
    static SLOTS: OnceLock<Mutex<HashMap<(PathBuf, String), Slot>>> = OnceLock::new();
    let slots = SLOTS.get_or_init(Default::default);
    let mut map = match slots.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    // A project keeps only its newest catalog in memory too.
    map.retain(|(r, k), _| r != root || k == key);
    map.entry((root.to_path_buf(), key.to_string()))
        .or_default()
        .clone()
}

/// The cache key of the catalog: the inputs' content and everything else
/// that the tables' bytes depend on. No parsing needed.
fn catalog_key(ctx: &StageContext, spec: &MoviesDbSpec) -> Result<String, StageError> {
    let hash = |rel: &Path| -> Result<String, StageError> {
        match ctx.input_hash(rel) {
            Ok(Some(h)) => Ok(h.to_hex().to_string()),
            // Missing: the loader reports it with its usual message.
            Ok(None) => Ok(String::from("missing")),
            Err(e) => Err(StageError::io(rel, "read", e)),
        }
    };
    let (sqlite_v, vec_v) = cache::versions()?;
    let sde = ctx
        .settings
        .source_date_epoch
        .map_or_else(|| "none".to_string(), |s| s.to_string());
    Ok(cache::key(&[
        ("part", "catalog"),
        ("format", super::PART_FORMAT),
        ("sqlite", sqlite_v),
        ("sqlite-vec", vec_v),
        ("movies", &hash(&spec.movies)?),
        ("collections", &hash(&spec.collections)?),
        ("source-date-epoch", &sde),
    ]))
}

const PREFIX: &str = "catalog.";

/// The catalog part for this build: shared with the other targets of this
/// process, else read from the cache, else built (and cached).
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
) -> Result<(Arc<CatalogPart>, Origin), StageError> {
    let key = catalog_key(ctx, spec)?;
    let slot = slot(ctx.root, &key);
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(part) = guard.as_ref() {
        if part.path.is_file() {
            return Ok((part.clone(), Origin::Shared));
        }
    }
    let dir = cache::dir(ctx.root, super::CACHE);
    let path = dir.join(cache::file_name(PREFIX, &key));
    if let Some(part) = from_cache(&path, &key) {
        let part = Arc::new(part);
        *guard = Some(part.clone());
        return Ok((part, Origin::Cached));
    }
    let (part, origin) = build(ctx, spec, &key, &path)?;
    let part = Arc::new(part);
    cache::prune(&dir, PREFIX, &key);
    *guard = Some(part.clone());
    Ok((part, origin))
}

/// Whether another target of this process (or a head start) is making
/// the catalog part of this build now: [`obtain`] would wait for it.
pub(crate) fn being_made(ctx: &StageContext, spec: &MoviesDbSpec) -> Result<bool, StageError> {
    let key = catalog_key(ctx, spec)?;
    let slot = slot(ctx.root, &key);
    let busy = matches!(slot.try_lock(), Err(std::sync::TryLockError::WouldBlock));
    Ok(busy)
}

/// Forget a catalog part that proved unusable (a damaged cache file), so
/// the next [`obtain`] builds it again. Only the part still in the slot is
/// forgotten: another target may already have replaced it with a new one.
pub(crate) fn forget(ctx: &StageContext, part: &Arc<CatalogPart>) {
    let Some(key) = part
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(PREFIX))
        .and_then(|n| n.strip_suffix(".db"))
    else {
        return;
    };
    let slot = slot(ctx.root, key);
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let current = guard.as_ref().is_none_or(|p| Arc::ptr_eq(p, part));
    if current {
        // Removing the file (targets still reading it keep their open
        // handle) makes the next obtain build the part again.
        cache::discard(&part.path);
        *guard = None;
    }
}

/// A cached catalog part, if `path` holds a readable one with this key.
fn from_cache(path: &Path, key: &str) -> Option<CatalogPart> {
    let meta = cache::read_sidecar(path)?;
    if meta.get("key").map(String::as_str) != Some(key) {
        return None;
    }
    Some(CatalogPart {
        path: path.to_path_buf(),
        movies: meta.get("movies")?.parse().ok()?,
        ids_hash: meta.get("ids_blake3")?.clone(),
        built_at: meta.get("built_at")?.clone(),
        dropped_ids: meta
            .get("dropped_ids")?
            .split('\n')
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// What a part must share with a new one for the new one to be made by
/// patching it: the format and the versions of what writes the bytes.
fn patch_base() -> Result<String, StageError> {
    let (sqlite_v, vec_v) = cache::versions()?;
    Ok(cache::key(&[
        ("part", "catalog-patch-base"),
        ("format", super::PART_FORMAT),
        ("sqlite", sqlite_v),
        ("sqlite-vec", vec_v),
    ]))
}

/// Per kept movie, in order: the digest of its entry and of the fields the
/// shared tables are made of. Kept beside a part (`<part>.rows`) so that
/// the next build can tell which rows an edit touched.
type Rows = Vec<(Digest, Digest)>;

fn rows_path(db: &Path) -> PathBuf {
    db.with_extension("rows")
}

/// A previous part that the new one can be patched from, with its
/// description and rows.
struct Previous {
    path: PathBuf,
    meta: BTreeMap<String, String>,
    rows: Rows,
}

/// The newest other complete part in the cache directory, if any.
fn previous_part(dir: &Path, key: &str) -> Option<Previous> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(k) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(".db"))
        else {
            continue;
        };
        if k == key || k.len() != 64 {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
        if best.as_ref().is_none_or(|(t, _)| modified > *t) {
            best = Some((modified, entry.path()));
        }
    }
    let (_, path) = best?;
    let meta = cache::read_sidecar(&path)?;
    let rows = postcard::from_bytes(&std::fs::read(rows_path(&path)).ok()?).ok()?;
    Some(Previous { path, meta, rows })
}

/// Parse the inputs and write the catalog part to `path` (atomically):
/// patched from the previous part when only movies' own rows changed,
/// else built in full.
fn build(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    key: &str,
    path: &Path,
) -> Result<(CatalogPart, Origin), StageError> {
    let movies = entries::load(ctx, &spec.movies)?;
    let collections = load_collections(&ctx.abs(&spec.collections), &spec.collections)?;
    let collections_hash = ctx
        .input_hash(&spec.collections)
        .map_err(|e| StageError::io(&spec.collections, "read", e))?
        .map_or_else(|| "missing".to_string(), |h| h.to_hex().to_string());
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let built_at = match ctx.settings.source_date_epoch {
        Some(secs) => iso_from_epoch(secs),
        None => movies.input_timestamp(),
    };
    let ids_hash = movies.ids_hash();
    let rows: Rows = movies
        .movies
        .iter()
        .map(|m| (m.digest, m.summary.shared))
        .collect();
    let base = patch_base()?;

    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;

    // Patchable: the same movies in the same order, the same collections,
    // and every changed movie keeps the fields the shared tables count.
    let patch = previous_part(&cache::dir(ctx.root, super::CACHE), key).and_then(|prev| {
        let same = prev.meta.get("patch_base") == Some(&base)
            && prev.meta.get("ids_blake3") == Some(&ids_hash)
            && prev.meta.get("collections") == Some(&collections_hash)
            && prev.rows.len() == rows.len();
        if !same {
            return None;
        }
        let changed: Vec<usize> = (0..rows.len())
            .filter(|&i| prev.rows[i].0 != rows[i].0)
            .collect();
        changed
            .iter()
            .all(|&i| prev.rows[i].1 == rows[i].1)
            .then_some((prev, changed))
    });
    // The working database: the previous part patched, or filled from
    // scratch. Either way it ends the same way (`finish`) and is then laid
    // out canonically by `VACUUM INTO` the cache file, so the assembly can
    // copy the part's bytes as they are.
    let work = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    let mut patched = None;
    if let Some((prev, changed)) = patch {
        let made = (|| -> Result<(), StageError> {
            // The previous part is patched where it is, not copied (68 MB
            // at 100,000 movies): it is pruned after this build anyway.
            // Its description goes first, so that from here on no entry
            // claims its key (a kill leaves a miss, built in full next
            // time, never a patched file under the old key); then it is
            // moved to the working name, swept if the build is killed.
            cache::forget_entry(&prev.path)
                .map_err(|err| StageError::io(shown, "retire the previous part", err))?;
            std::fs::rename(&prev.path, work.path())
                .map_err(|err| StageError::io(shown, "move the previous part to", err))?;
            let conn = sqlite::open(work.path()).map_err(e("open"))?;
            let old_built_at = prev.meta.get("built_at").map(String::as_str);
            patch_rows(
                ctx,
                &conn,
                &movies,
                spec,
                &changed,
                &built_at,
                old_built_at,
                shown,
            )?;
            finish(&conn, PATCHED_TABLES_ANALYZE, shown)?;
            // `VACUUM INTO` writes the source's schema cookie plus one: the
            // previous part's file carries its build's cookie plus one, so
            // the cookie is set back to what a full build has (the schema
            // did not change; only the cookie moved).
            let version: i64 = prev
                .meta
                .get("schema_version")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    StageError::new(format!(
                        "{}: the previous catalog part does not record its schema version",
                        shown.display()
                    ))
                })?;
            conn.execute_batch(&format!("PRAGMA schema_version = {version}"))
                .map_err(e("set the schema version"))?;
            lay_out(conn, tmp.path(), shown)
        })();
        match made {
            Ok(()) => patched = Some((changed.len(), prev.meta.get("schema_version").cloned())),
            Err(err) if ctx.is_cancelled() => return Err(err),
            // A previous part that cannot be patched (damaged on disk) is
            // only a lost shortcut: it is dropped and the part built in full.
            Err(_) => {
                cache::discard(&prev.path);
                let _ = std::fs::remove_file(work.path());
                let _ = std::fs::remove_file(tmp.path());
            }
        }
    }
    let schema_version = match &patched {
        Some((_, Some(version))) => version.clone(),
        _ => {
            let conn = sqlite::open(work.path()).map_err(e("open"))?;
            fill(ctx, &conn, &movies, spec, &collections, &built_at, shown)?;
            finish(&conn, "ANALYZE;", shown)?;
            let version: i64 = conn
                .query_row("PRAGMA schema_version", [], |r| r.get(0))
                .map_err(e("read the schema version"))?;
            lay_out(conn, tmp.path(), shown)?;
            version.to_string()
        }
    };
    drop(work);
    let patched = patched.map(|(n, _)| n);
    // The rows first, then the part, then its description: a description
    // always names a complete part with its rows.
    let rows_bytes = postcard::to_allocvec(&rows).map_err(|err| {
        StageError::new(format!("{}: cannot encode rows: {err}", shown.display()))
    })?;
    artifact::write_atomic(&rows_path(path), &rows_bytes)
        .map_err(|err| StageError::io(shown, "write the rows of", err))?;
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    let meta: BTreeMap<String, String> = [
        ("key", key.to_string()),
        ("movies", movies.movies.len().to_string()),
        ("ids_blake3", ids_hash.clone()),
        ("built_at", built_at.clone()),
        ("collections", collections_hash),
        ("patch_base", base),
        ("schema_version", schema_version),
        ("dropped_ids", movies.dropped_ids.join("\n")),
        (
            "patched_movies",
            patched.map_or_else(|| "none".to_string(), |n| n.to_string()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    cache::write_sidecar(path, &meta)
        .map_err(|err| StageError::io(shown, "describe the part in", err))?;
    Ok((
        CatalogPart {
            path: path.to_path_buf(),
            movies: movies.movies.len(),
            ids_hash,
            built_at,
            dropped_ids: movies.dropped_ids.iter().cloned().collect(),
        },
        if patched.is_some() {
            Origin::Patched
        } else {
            Origin::Built
        },
    ))
}

/// Write the working database `conn` laid out canonically to `dest`
/// (`VACUUM INTO`: the bytes are a function of the rows), and close it.
fn lay_out(conn: Connection, dest: &Path, shown: &Path) -> Result<(), StageError> {
    let target = dest.to_str().ok_or_else(|| {
        StageError::new(format!("{}: the path is not valid UTF-8", dest.display()))
    })?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|err| db_err_at(shown, "lay out (VACUUM INTO)", err))?;
    conn.close()
        .map_err(|(_, err)| db_err_at(shown, "close", err))
}

/// Bind a JSON value the way the reference's driver did: every number as a
/// double (column affinity then stores integral values of INTEGER columns
/// as integers), strings as text.
fn sql_value(v: Option<&Value>) -> Sql {
    match v {
        None | Some(Value::Null) => Sql::Null,
        Some(Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        Some(Value::Number(n)) => n.as_f64().map_or(Sql::Null, Sql::Real),
        Some(Value::String(s)) => Sql::Text(s.clone()),
        Some(other) => Sql::Text(other.to_string()),
    }
}

/// A truthy string field, or NULL (`m.Genre || null`).
fn truthy_text(v: &Option<Value>) -> Option<&str> {
    text(v).filter(|s| !s.is_empty())
}

/// The `movies.language` value: the first archive.org source language wins;
/// otherwise the last source language found; otherwise OMDB's Language.
fn movie_language(m: &MovieRow) -> Option<String> {
    let mut lang = None;
    for s in &m.sources {
        if let Some(l) = s.language.as_ref().filter(|l| js::truthy(l)) {
            lang = language::normalize(l);
            if s.kind_str() == Some("archive.org") {
                break;
            }
        }
    }
    if lang.is_none() {
        if let Some(l) = m.metadata.as_ref().and_then(|md| truthy_text(&md.Language)) {
            lang = language::normalize_str(l);
        }
    }
    lang
}

/// The values of a movie's `movies` row, in the column order of
/// [`MOVIE_COLUMNS`].
fn movie_values(m: &MovieRow) -> [Sql; 12] {
    let md = m.metadata.as_ref();
    let imdb_rating = md
        .and_then(|md| md.imdbRating.as_ref())
        .and_then(Value::as_f64)
        .map_or(Sql::Null, Sql::Real);
    let first = m.sources.first();
    let channel = match first {
        Some(s) if s.kind_str() == Some("youtube") => {
            sql_value(js::or(s.channel_name.as_ref(), None))
        }
        _ => Sql::Null,
    };
    let opt_text = |t: Option<&str>| t.map_or(Sql::Null, |t| Sql::Text(t.to_string()));
    [
        Sql::Text(m.movie_id.clone()),
        Sql::Text(m.title_first().to_string()),
        m.year_num().map_or(Sql::Null, Sql::Integer),
        imdb_rating,
        sql_value(md.and_then(|md| md.imdbVotes.as_ref())),
        movie_language(m).map_or(Sql::Null, Sql::Text),
        opt_text(md.and_then(|md| truthy_text(&md.Genre))),
        opt_text(md.and_then(|md| truthy_text(&md.Country))),
        sql_value(first.and_then(|s| js::or(s.kind.as_ref(), None))),
        channel,
        Sql::Integer(i64::from(js::truthy_opt(m.verified.as_ref()))),
        sql_value(m.last_updated.as_ref()),
    ]
}

/// The columns of `movies`, in the order of [`movie_values`].
const MOVIE_COLUMNS: [&str; 12] = [
    "movieId",
    "title",
    "year",
    "imdbRating",
    "imdbVotes",
    "language",
    "genre",
    "country",
    "primarySourceType",
    "primaryChannelName",
    "verified",
    "lastUpdated",
];

/// Kept movies `range` parsed (in parallel) as lean records, with their
/// quality-marked sources dropped.
fn parse_rows(
    movies: &MovieEntries,
    range: std::ops::Range<usize>,
    shown: &Path,
) -> Result<Vec<MovieRow>, StageError> {
    range
        .into_par_iter()
        .map(|i| {
            let mut m: MovieRow = movies.parse(i, shown)?;
            m.sources.retain(SourceView::is_clean);
            Ok(m)
        })
        .collect()
}

/// Update the rows of the `changed` movies (indices into the kept movies;
/// their rowids are index + 1 in `movies` and `fts_movies`), and the
/// stored timestamp if it moved. Only what a movie's own fields make:
/// the caller checked that the shared tables stay as they are.
#[allow(clippy::too_many_arguments)]
fn patch_rows(
    ctx: &StageContext,
    conn: &Connection,
    movies: &MovieEntries,
    spec: &MoviesDbSpec,
    changed: &[usize],
    built_at: &str,
    old_built_at: Option<&str>,
    shown: &Path,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    configure(conn, shown)?;
    conn.execute_batch("BEGIN").map_err(e("begin"))?;
    {
        let set: Vec<String> = MOVIE_COLUMNS
            .iter()
            .enumerate()
            .map(|(k, c)| format!("{c} = ?{}", k + 1))
            .collect();
        let mut update = conn
            .prepare(&format!(
                "UPDATE movies SET {} WHERE rowid = ?13",
                set.join(", ")
            ))
            .map_err(e("prepare"))?;
        let mut update_fts = conn
            .prepare("UPDATE fts_movies SET movieId = ?1, title = ?2 WHERE rowid = ?3")
            .map_err(e("prepare"))?;
        for chunk in changed.chunks(PROGRESS_EVERY) {
            if ctx.is_cancelled() {
                return Err(StageError::cancelled());
            }
            for &i in chunk {
                let mut m: MovieRow = movies.parse(i, &spec.movies)?;
                m.sources.retain(SourceView::is_clean);
                let rowid = i as i64 + 1;
                let values = movie_values(&m);
                let n = update
                    .execute(params_from_iter(
                        values.iter().chain(std::iter::once(&Sql::Integer(rowid))),
                    ))
                    .map_err(e("update a movie"))?;
                let n_fts = update_fts
                    .execute(params![m.movie_id, m.title_joined(), rowid])
                    .map_err(e("update a title"))?;
                if n != 1 || n_fts != 1 {
                    return Err(StageError::new(format!(
                        "{}: the previous catalog part has no row {rowid} for movie {:?}",
                        shown.display(),
                        m.movie_id
                    )));
                }
            }
        }
    }
    if old_built_at != Some(built_at) {
        conn.execute("UPDATE genres SET created_at = ?1", [built_at])
            .map_err(e("update genres"))?;
        conn.execute("UPDATE countries SET created_at = ?1", [built_at])
            .map_err(e("update countries"))?;
    }
    conn.execute_batch("COMMIT").map_err(e("commit"))?;
    Ok(())
}

/// Settings of the connection that writes a part. The part is scratch
/// until renamed into the cache: no journal and no fsync (a failed build
/// deletes it).
fn configure(conn: &Connection, shown: &Path) -> Result<(), StageError> {
    conn.execute_batch(&format!(
        "PRAGMA page_size = {}; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -16384; PRAGMA foreign_keys = OFF;",
        super::PAGE_SIZE
    ))
    .map_err(|err| db_err_at(shown, "configure", err))
}

/// ANALYZE of the tables whose rows a patch changes: `movies` and the
/// title index's shadow tables. (`genres` and `countries` may get a new
/// `created_at`, which no index covers: their statistics stay.)
const PATCHED_TABLES_ANALYZE: &str = "ANALYZE movies; ANALYZE fts_movies_data; \
     ANALYZE fts_movies_idx; ANALYZE fts_movies_content; ANALYZE fts_movies_docsize; \
     ANALYZE fts_movies_config;";

/// The last steps of every part, full or patched, done the same way so
/// that both leave the same rows: the title index rebuilt from its rows
/// (an FTS5 index records its write history; `rebuild` starts it afresh),
/// every FTS index merged into one segment, and the statistics.
///
/// ANALYZE visits tables in the order of the connection's in-memory schema
/// hash, which depends on how the connection came by its schema (created
/// it, or read it from a file laid out by VACUUM): its rows are put in
/// (table, index) order afterwards, the samples of an index keeping their
/// order, so the stored rows do not depend on that.
///
/// `analyze` is the ANALYZE statement(s): the whole part after a full
/// build; after a patch, only the tables a patch changes (the rows of the
/// others, and so their statistics, are those of the previous part).
fn finish(conn: &Connection, analyze: &str, shown: &Path) -> Result<(), StageError> {
    conn.execute_batch(&format!(
        "INSERT INTO fts_movies(fts_movies) VALUES('rebuild');
         INSERT INTO fts_movies(fts_movies) VALUES('optimize');
         INSERT INTO fts_actors(fts_actors) VALUES('optimize');
         INSERT INTO fts_directors(fts_directors) VALUES('optimize');
         INSERT INTO fts_writers(fts_writers) VALUES('optimize');
         {analyze}
         {}",
        cache::SORT_STATISTICS
    ))
    .map_err(|err| db_err_at(shown, "optimize and analyze", err))
}

/// Create and fill the catalog tables.
fn fill(
    ctx: &StageContext,
    conn: &Connection,
    catalog: &MovieEntries,
    spec: &MoviesDbSpec,
    collections: &[Collection],
    built_at: &str,
    shown: &Path,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    configure(conn, shown)?;
    conn.execute_batch(SCHEMA).map_err(e("create the schema"))?;
    conn.execute_batch("BEGIN").map_err(e("begin"))?;

    let total = catalog.movies.len() as u64;
    let mut actors = Registry::default();
    let mut directors = Registry::default();
    let mut writers = Registry::default();
    let mut genres = Tally::default();
    let mut countries = Tally::default();
    let mut people = Vec::new();
    {
        let mut ins_fts = conn
            .prepare_cached("INSERT INTO fts_movies (movieId, title) VALUES (?1, ?2)")
            .map_err(e("prepare"))?;
        let mut ins_ma = conn
            .prepare_cached("INSERT INTO movie_actors (movieId, actorId) VALUES (?1, ?2)")
            .map_err(e("prepare"))?;
        let mut ins_md = conn
            .prepare_cached("INSERT INTO movie_directors (movieId, directorId) VALUES (?1, ?2)")
            .map_err(e("prepare"))?;
        let mut ins_mw = conn
            .prepare_cached("INSERT INTO movie_writers (movieId, writerId) VALUES (?1, ?2)")
            .map_err(e("prepare"))?;

        let insert = format!(
            "INSERT INTO movies ({}) VALUES ({})",
            MOVIE_COLUMNS.join(", "),
            (1..=MOVIE_COLUMNS.len())
                .map(|k| format!("?{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut ins_movie = conn.prepare_cached(&insert).map_err(e("prepare"))?;
        // Rows are parsed a batch at a time on every core while this
        // thread inserts them; only one batch of parsed rows is held.
        for start in (0..catalog.movies.len()).step_by(PROGRESS_EVERY) {
            if ctx.is_cancelled() {
                return Err(StageError::cancelled());
            }
            ctx.progress
                .progress(start as u64, total, "inserting movies");
            let end = (start + PROGRESS_EVERY).min(catalog.movies.len());
            for m in parse_rows(catalog, start..end, &spec.movies)? {
                let md = m.metadata.as_ref();
                ins_movie
                    .execute(params_from_iter(movie_values(&m).iter()))
                    .map_err(e("insert a movie"))?;
                ins_fts
                    .execute(params![m.movie_id, m.title_joined()])
                    .map_err(e("insert a title"))?;

                add_people(&mut actors, md.and_then(|md| text(&md.Actors)), &mut people);
                for &p in &people {
                    ins_ma
                        .execute(params![m.movie_id, actors.ids[p as usize]])
                        .map_err(e("insert an actor link"))?;
                }
                add_people(
                    &mut directors,
                    md.and_then(|md| text(&md.Director)),
                    &mut people,
                );
                for &p in &people {
                    ins_md
                        .execute(params![m.movie_id, directors.ids[p as usize]])
                        .map_err(e("insert a director link"))?;
                }
                add_people(
                    &mut writers,
                    md.and_then(|md| text(&md.Writer)),
                    &mut people,
                );
                for &p in &people {
                    ins_mw
                        .execute(params![m.movie_id, writers.ids[p as usize]])
                        .map_err(e("insert a writer link"))?;
                }
                genres.add(md.and_then(|md| text(&md.Genre)), |g| g);
                countries.add(md.and_then(|md| text(&md.Country)), normalise_country);
            }
        }
    }

    // Name tables with their final counts and explicit ids.
    for (table, reg) in [
        ("actors", &actors),
        ("directors", &directors),
        ("writers", &writers),
    ] {
        let mut stmt = conn
            .prepare(&format!(
                "INSERT INTO {table} (id, name, movie_count) VALUES (?1, ?2, ?3)"
            ))
            .map_err(e("prepare"))?;
        for i in 0..reg.names.len() {
            stmt.execute(params![reg.ids[i], reg.names[i], reg.counts[i]])
                .map_err(e("insert a person"))?;
        }
    }
    for (table, tally) in [("genres", &genres), ("countries", &countries)] {
        let mut stmt = conn
            .prepare(&format!(
                "INSERT INTO {table} (id, name, movie_count, created_at) VALUES (?1, ?2, ?3, ?4)"
            ))
            .map_err(e("prepare"))?;
        for i in 0..tally.names.len() {
            stmt.execute(params![
                i as i64 + 1,
                tally.names[i],
                tally.counts[i],
                built_at
            ])
            .map_err(e("insert a name"))?;
        }
    }

    // Collections, with only the movies that made it into the database.
    let valid: HashSet<&str> = catalog
        .movies
        .iter()
        .map(|m| m.summary.movie_id.as_str())
        .collect();
    {
        let mut ins_c = conn
            .prepare("INSERT INTO collections (id, name, description, createdAt, updatedAt) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(e("prepare"))?;
        let mut ins_cm = conn
            .prepare("INSERT INTO collection_movies (collectionId, movieId, addedAt) VALUES (?1, ?2, ?3)")
            .map_err(e("prepare"))?;
        for c in collections {
            let description = c.description.as_deref().filter(|d| !d.is_empty());
            ins_c
                .execute(params![
                    c.id,
                    c.name,
                    description,
                    c.created_at,
                    c.updated_at
                ])
                .map_err(e("insert a collection"))?;
            let mut once = HashSet::new();
            for id in &c.movie_ids {
                if once.insert(id.as_str()) && valid.contains(id.as_str()) {
                    ins_cm
                        .execute(params![c.id, id, c.updated_at])
                        .map_err(e("insert a collection movie"))?;
                }
            }
        }
    }

    // People search: rows in name order, ids stored as the reference's
    // driver bound them (doubles, kept as REAL by the untyped FTS column).
    for (table, col, reg) in [
        ("fts_actors", "actorId", &actors),
        ("fts_directors", "directorId", &directors),
        ("fts_writers", "writerId", &writers),
    ] {
        let mut stmt = conn
            .prepare(&format!(
                "INSERT INTO {table} ({col}, name) VALUES (?1, ?2)"
            ))
            .map_err(e("prepare"))?;
        for i in reg.by_name() {
            stmt.execute(params![reg.ids[i as usize] as f64, reg.names[i as usize]])
                .map_err(e("insert a searchable name"))?;
        }
    }

    // sqlite_sequence as the reference left it (its ignored inserts used up
    // sequence numbers, so it ends above the largest id).
    for (table, seq) in [
        ("actors", actors.seq),
        ("directors", directors.seq),
        ("writers", writers.seq),
        ("genres", genres.names.len() as i64),
        ("countries", countries.names.len() as i64),
    ] {
        conn.execute(
            "UPDATE sqlite_sequence SET seq = ?1 WHERE name = ?2",
            params![seq, table],
        )
        .map_err(e("set sqlite_sequence"))?;
    }

    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    ctx.progress.progress(total, total, "indexing");
    conn.execute_batch(INDEXES).map_err(e("create indexes"))?;
    conn.execute_batch("COMMIT").map_err(e("commit"))?;
    Ok(())
}
