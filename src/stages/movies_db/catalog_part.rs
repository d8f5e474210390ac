//! The catalog part: every table of a movies.db except `vec_movies` and
//! `config` — identical for every model, a function of movies.json,
//! collections.json and the timestamp only.
//!
//! It is built once per process (the three `movies-db@<model>` targets of a
//! build share it through [`obtain`]) and once per content (it is cached as
//! a SQLite file keyed by the inputs' hashes, so the next process reuses it).

use super::cache;
use super::schema::{INDEXES, SCHEMA};
use super::{db_err_at, MoviesDbSpec, Origin, PROGRESS_EVERY};
use crate::artifact;
use crate::movies::catalog::{
    load_collections, load_movie_rows, text, Catalog, Collection, MetadataRow, MovieRow, SourceRow,
    SourceView,
};
use crate::movies::js;
use crate::movies::language;
use crate::movies::people::{add_people, normalise_country, Registry, Tally};
use crate::movies::time::iso_from_epoch;
use crate::sqlite;
use crate::stage::{StageContext, StageError};
use rusqlite::types::Value as Sql;
use rusqlite::{params, Connection};
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
        ("format", cache::PART_FORMAT),
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
    let dir = cache::dir(ctx.root);
    let path = dir.join(cache::file_name(PREFIX, &key));
    if let Some(part) = from_cache(&path, &key) {
        let part = Arc::new(part);
        *guard = Some(part.clone());
        return Ok((part, Origin::Cached));
    }
    let part = Arc::new(build(ctx, spec, &key, &path)?);
    cache::prune(&dir, PREFIX, &key);
    *guard = Some(part.clone());
    Ok((part, Origin::Built))
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
    })
}

/// Parse the inputs and write the catalog part to `path` (atomically).
fn build(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    key: &str,
    path: &Path,
) -> Result<CatalogPart, StageError> {
    let catalog = load_movie_rows(&ctx.abs(&spec.movies), &spec.movies)?;
    let collections = load_collections(&ctx.abs(&spec.collections), &spec.collections)?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let built_at = match ctx.settings.source_date_epoch {
        Some(secs) => iso_from_epoch(secs),
        None => catalog.input_timestamp(),
    };
    let mut ids = blake3::Hasher::new();
    for m in &catalog.movies {
        ids.update(m.movie_id.as_bytes());
        ids.update(&[0]);
    }
    let ids_hash = ids.finalize().to_hex().to_string();

    let shown = path.strip_prefix(ctx.root).unwrap_or(path);
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let tmp = artifact::temp_path_beside(path)
        .map_err(|err| StageError::io(shown, "create a temporary file beside", err))?;
    {
        let conn = sqlite::open(tmp.path()).map_err(e("open"))?;
        fill(ctx, &conn, &catalog, &collections, &built_at, shown)?;
        conn.close()
            .map_err(|(_, err)| db_err_at(shown, "close", err))?;
    }
    tmp.persist(path)
        .map_err(|err| StageError::io(shown, "rename into place", err))?;
    let meta: BTreeMap<String, String> = [
        ("key", key.to_string()),
        ("movies", catalog.movies.len().to_string()),
        ("ids_blake3", ids_hash.clone()),
        ("built_at", built_at.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    cache::write_sidecar(path, &meta)
        .map_err(|err| StageError::io(shown, "describe the part in", err))?;
    Ok(CatalogPart {
        path: path.to_path_buf(),
        movies: catalog.movies.len(),
        ids_hash,
        built_at,
    })
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

/// Create and fill the catalog tables.
fn fill(
    ctx: &StageContext,
    conn: &Connection,
    catalog: &Catalog<SourceRow, MetadataRow>,
    collections: &[Collection],
    built_at: &str,
    shown: &Path,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    // The part is scratch until renamed into the cache: no journal and no
    // fsync (a failed build deletes it).
    conn.execute_batch(&format!(
        "PRAGMA page_size = {}; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -16384; PRAGMA foreign_keys = OFF;",
        super::PAGE_SIZE
    ))
    .map_err(e("configure"))?;
    conn.execute_batch(SCHEMA).map_err(e("create the schema"))?;
    conn.execute_batch("BEGIN").map_err(e("begin"))?;

    let movies = &catalog.movies;
    let total = movies.len() as u64;
    let mut actors = Registry::default();
    let mut directors = Registry::default();
    let mut writers = Registry::default();
    let mut genres = Tally::default();
    let mut countries = Tally::default();
    let mut people = Vec::new();
    {
        let mut ins_movie = conn
            .prepare_cached(
                "INSERT INTO movies (movieId, title, year, imdbRating, imdbVotes, language, genre, country, \
                 primarySourceType, primaryChannelName, verified, lastUpdated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(e("prepare"))?;
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

        for (i, m) in movies.iter().enumerate() {
            if i % PROGRESS_EVERY == 0 {
                if ctx.is_cancelled() {
                    return Err(StageError::cancelled());
                }
                ctx.progress.progress(i as u64, total, "inserting movies");
            }
            let md = m.metadata.as_ref();
            let imdb_rating = md
                .and_then(|md| md.imdbRating.as_ref())
                .and_then(Value::as_f64);
            let first = m.sources.first();
            let channel = match first {
                Some(s) if s.kind_str() == Some("youtube") => {
                    sql_value(js::or(s.channel_name.as_ref(), None))
                }
                _ => Sql::Null,
            };
            ins_movie
                .execute(params![
                    m.movie_id,
                    m.title_first(),
                    m.year_num(),
                    imdb_rating,
                    sql_value(md.and_then(|md| md.imdbVotes.as_ref())),
                    movie_language(m),
                    md.and_then(|md| truthy_text(&md.Genre)),
                    md.and_then(|md| truthy_text(&md.Country)),
                    sql_value(first.and_then(|s| js::or(s.kind.as_ref(), None))),
                    channel,
                    i64::from(js::truthy_opt(m.verified.as_ref())),
                    sql_value(m.last_updated.as_ref()),
                ])
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
    let valid: HashSet<&str> = movies.iter().map(|m| m.movie_id.as_str()).collect();
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
    conn.execute_batch(
        "INSERT INTO fts_movies(fts_movies) VALUES('optimize');
         INSERT INTO fts_actors(fts_actors) VALUES('optimize');
         INSERT INTO fts_directors(fts_directors) VALUES('optimize');
         INSERT INTO fts_writers(fts_writers) VALUES('optimize');
         ANALYZE;",
    )
    .map_err(e("optimize and analyze"))?;
    Ok(())
}
