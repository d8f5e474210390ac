//! The `movies-db` stage: one SQLite database per embedding model, with the
//! reference schema (movies, names, junctions, FTS5 tables, config) and a
//! sqlite-vec `vec_movies` table for the model's vectors.
//!
//! Reproducible by construction: fixed page size, no clock (timestamps from
//! SOURCE_DATE_EPOCH or the inputs), a deterministic insertion order, and a
//! final `VACUUM INTO` that lays the file out canonically. The database is
//! built in a temporary file beside the destination and renamed into place
//! only when complete, so a failure leaves the previous database intact.
//!
//! Vectors are streamed from the model's embeddings database one movie at a
//! time (never all in memory), and every one is checked before it is stored.

use crate::artifact;
use crate::manifest::model::Model;
use crate::movies::catalog::{
    load_collections, load_movie_rows, text, Catalog, Collection, MetadataRow, MovieRow, SourceRow,
    SourceView,
};
use crate::movies::js;
use crate::movies::language;
use crate::movies::people::{add_people, normalise_country, Registry, Tally};
use crate::movies::time::iso_from_epoch;
use crate::sqlite;
use crate::stage::{OutputFile, StageContext, StageError, StageOutput};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a `movies-db@<model>` target declares.
#[derive(Clone, Debug, PartialEq)]
pub struct MoviesDbSpec {
    /// movies.json, relative to the project root.
    pub movies: PathBuf,
    /// collections.json, relative to the project root.
    pub collections: PathBuf,
    /// The embedding model (its `embeddings` path is the vectors' source).
    pub model: Model,
    /// The database to build, e.g. `public/data/potion/movies.db`.
    pub db_path: PathBuf,
    /// For the default model: an identical copy at this path
    /// (`public/data/movies.db`), also an output of the target.
    pub publish: Option<PathBuf>,
}

/// How often (in movies) progress is reported and cancellation checked.
const PROGRESS_EVERY: usize = 1000;

/// Page size of every database we write; fixed so bytes never depend on
/// the SQLite default of the machine.
const PAGE_SIZE: u32 = 4096;

/// The reference schema. Indexes are created after the rows are loaded
/// (faster; `VACUUM INTO` lays them out the same either way).
const SCHEMA: &str = "
CREATE TABLE movies (
  movieId TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  year INTEGER,
  imdbRating REAL,
  imdbVotes INTEGER,
  language TEXT,
  genre TEXT,
  country TEXT,
  primarySourceType TEXT,
  primaryChannelName TEXT,
  verified INTEGER DEFAULT 0,
  lastUpdated TEXT
);
CREATE TABLE genres (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE countries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE collections (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  createdAt TEXT NOT NULL,
  updatedAt TEXT NOT NULL
);
CREATE TABLE collection_movies (
  collectionId TEXT NOT NULL,
  movieId TEXT NOT NULL,
  addedAt TEXT NOT NULL,
  PRIMARY KEY (collectionId, movieId),
  FOREIGN KEY (collectionId) REFERENCES collections(id) ON DELETE CASCADE,
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE
);
CREATE TABLE actors (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0
);
CREATE TABLE directors (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0
);
CREATE TABLE writers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0
);
CREATE TABLE movie_actors (
  movieId TEXT NOT NULL,
  actorId INTEGER NOT NULL,
  character TEXT,
  PRIMARY KEY (movieId, actorId),
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE,
  FOREIGN KEY (actorId) REFERENCES actors (id) ON DELETE CASCADE
);
CREATE TABLE movie_directors (
  movieId TEXT NOT NULL,
  directorId INTEGER NOT NULL,
  PRIMARY KEY (movieId, directorId),
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE,
  FOREIGN KEY (directorId) REFERENCES directors (id) ON DELETE CASCADE
);
CREATE TABLE movie_writers (
  movieId TEXT NOT NULL,
  writerId INTEGER NOT NULL,
  PRIMARY KEY (movieId, writerId),
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE,
  FOREIGN KEY (writerId) REFERENCES writers (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE fts_movies USING fts5(movieId UNINDEXED, title, tokenize='unicode61');
CREATE VIRTUAL TABLE fts_actors USING fts5(actorId UNINDEXED, name, tokenize='unicode61');
CREATE VIRTUAL TABLE fts_directors USING fts5(directorId UNINDEXED, name, tokenize='unicode61');
CREATE VIRTUAL TABLE fts_writers USING fts5(writerId UNINDEXED, name, tokenize='unicode61');
CREATE TABLE config (
  key TEXT PRIMARY KEY,
  value TEXT
);
";

/// The reference's indexes.
const INDEXES: &str = "
CREATE INDEX idx_movies_year ON movies(year);
CREATE INDEX idx_movies_rating ON movies(imdbRating);
CREATE INDEX idx_movies_votes ON movies(imdbVotes);
CREATE INDEX idx_movies_title ON movies(title);
CREATE INDEX idx_movies_source_type ON movies(primarySourceType);
CREATE INDEX idx_movies_channel ON movies(primaryChannelName);
CREATE INDEX idx_genres_name ON genres(name);
CREATE INDEX idx_genres_count ON genres(movie_count DESC);
CREATE INDEX idx_countries_name ON countries(name);
CREATE INDEX idx_countries_count ON countries(movie_count DESC);
CREATE INDEX idx_collection_movies_collectionId ON collection_movies(collectionId);
CREATE INDEX idx_collection_movies_movieId ON collection_movies(movieId);
CREATE INDEX idx_actors_name ON actors(name);
CREATE INDEX idx_actors_count ON actors(movie_count DESC);
CREATE INDEX idx_directors_name ON directors(name);
CREATE INDEX idx_directors_count ON directors(movie_count DESC);
CREATE INDEX idx_writers_name ON writers(name);
CREATE INDEX idx_writers_count ON writers(movie_count DESC);
CREATE INDEX idx_movie_actors_movieId ON movie_actors(movieId);
CREATE INDEX idx_movie_actors_actorId ON movie_actors(actorId);
CREATE INDEX idx_movie_directors_movieId ON movie_directors(movieId);
CREATE INDEX idx_movie_directors_directorId ON movie_directors(directorId);
CREATE INDEX idx_movie_writers_movieId ON movie_writers(movieId);
CREATE INDEX idx_movie_writers_writerId ON movie_writers(writerId);
";

/// Counts reported in config and stats.
#[derive(Debug, Default)]
struct VectorCounts {
    with: usize,
    without: usize,
    unknown: usize,
}

/// Build the database of one model.
pub fn run(ctx: &StageContext, spec: &MoviesDbSpec) -> Result<StageOutput, StageError> {
    let catalog = load_movie_rows(&ctx.abs(&spec.movies), &spec.movies)?;
    let collections = load_collections(&ctx.abs(&spec.collections), &spec.collections)?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let built_at = match ctx.settings.source_date_epoch {
        Some(secs) => iso_from_epoch(secs),
        None => catalog.input_timestamp(),
    };
    let mut out = StageOutput::default();
    let warn = |out: &mut StageOutput, msg: String| {
        ctx.progress.warn(&msg);
        out.warnings.push(msg);
    };

    // The embeddings: opened, not loaded (read one vector at a time).
    let model = &spec.model;
    let emb_abs = ctx.abs(&model.embeddings);
    let embeddings = if emb_abs.exists() {
        Some(open_embeddings(&emb_abs, &model.embeddings)?)
    } else {
        let msg =
            format!(
            "embeddings file {} of model {} not found: {}'s vector table will be empty. Produce \
             it with the model's embedding generator (declared in {}){}",
            model.embeddings.display(),
            model.id,
            spec.db_path.display(),
            model.file.display(),
            if ctx.settings.strict { "" } else { ", or run with --strict to make this an error" }
        );
        if ctx.settings.strict {
            return Err(StageError::new(msg));
        }
        warn(&mut out, msg);
        None
    };
    let have_embeddings = embeddings.is_some();
    let emb_hash = match &embeddings {
        Some(_) => hash_file(&emb_abs).map_err(|e| StageError::io(&model.embeddings, "read", e))?,
        None => String::new(),
    };

    // Every stored vector size is checked before anything is built, and
    // vectors of movies not in movies.json are counted.
    let known: HashSet<&str> = catalog.movies.iter().map(|m| m.movie_id.as_str()).collect();
    let mut counts = VectorCounts::default();
    if let Some(conn) = &embeddings {
        counts.unknown = scan_embeddings(conn, model, &known)?;
    }
    if counts.unknown > 0 {
        warn(
            &mut out,
            format!(
                "{} has {} vectors for movies that are not in {} (deleted or filtered movies); \
                 they are left out. Regenerate the embeddings to drop them",
                model.embeddings.display(),
                counts.unknown,
                spec.movies.display()
            ),
        );
    }

    let dest = ctx.abs(&spec.db_path);
    let work = artifact::temp_path_beside(&dest)
        .map_err(|e| StageError::io(&spec.db_path, "create a temporary file beside", e))?;
    let final_tmp = artifact::temp_path_beside(&dest)
        .map_err(|e| StageError::io(&spec.db_path, "create a temporary file beside", e))?;
    {
        let conn =
            sqlite::open(work.path()).map_err(|e| db_err(spec, "open the working database", e))?;
        let input = BuildInput {
            catalog: &catalog,
            collections: &collections,
            embeddings: embeddings.as_ref(),
            built_at: &built_at,
            emb_hash: &emb_hash,
        };
        build(ctx, spec, &conn, &input, &mut counts)?;
        ctx.progress.progress(
            catalog.movies.len() as u64,
            catalog.movies.len() as u64,
            "writing the database",
        );
        let target = final_tmp.path().to_str().ok_or_else(|| {
            StageError::new(format!(
                "{}: the path is not valid UTF-8",
                spec.db_path.display()
            ))
        })?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(|e| db_err(spec, "VACUUM INTO", e))?;
        conn.close().map_err(|(_, e)| db_err(spec, "close", e))?;
    }
    drop(work);
    drop(embeddings);

    let hash =
        blake3_file(final_tmp.path()).map_err(|e| StageError::io(&spec.db_path, "read back", e))?;
    if ctx.previous.is_unchanged(&spec.db_path, &hash) {
        drop(final_tmp); // same bytes as the file in place: leave it untouched
    } else {
        final_tmp
            .persist(&dest)
            .map_err(|e| StageError::io(&spec.db_path, "rename into place", e))?;
        out.written += 1;
    }
    out.files.push(OutputFile {
        path: spec.db_path.clone(),
        hash,
    });
    if let Some(publish) = &spec.publish {
        if !ctx.previous.is_unchanged(publish, &hash) {
            artifact::copy_atomic(&dest, &ctx.abs(publish))
                .map_err(|e| StageError::io(publish, "publish to", e))?;
            out.written += 1;
        }
        out.files.push(OutputFile {
            path: publish.clone(),
            hash,
        });
    }
    // A previously owned file no longer produced (publish turned off, path
    // changed) is removed, as the stage contract asks.
    for old in ctx.previous.files.keys() {
        if out.files.iter().any(|f| &f.path == old) {
            continue;
        }
        match std::fs::remove_file(ctx.abs(old)) {
            Ok(()) => out.deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StageError::io(old, "delete stale", e)),
        }
    }

    if counts.without > 0 && have_embeddings {
        warn(
            &mut out,
            format!(
                "{} of {} movies have no vector in {} (model {}); they cannot be found by \
                 semantic search until their embeddings are generated",
                counts.without,
                catalog.movies.len(),
                model.embeddings.display(),
                model.id
            ),
        );
    }
    let s = &mut out.stats;
    s.insert("movies".into(), catalog.movies.len().to_string());
    s.insert("vectors".into(), counts.with.to_string());
    s.insert("movies_without_vector".into(), counts.without.to_string());
    s.insert(
        "vectors_for_unknown_movies".into(),
        counts.unknown.to_string(),
    );
    s.insert("built_at".into(), built_at);
    Ok(out)
}

/// Everything [`build`] reads.
struct BuildInput<'a> {
    catalog: &'a Catalog<SourceRow, MetadataRow>,
    collections: &'a [Collection],
    embeddings: Option<&'a Connection>,
    built_at: &'a str,
    emb_hash: &'a str,
}

fn db_err(spec: &MoviesDbSpec, what: &str, e: rusqlite::Error) -> StageError {
    StageError::with_source(format!("{}: cannot {what}: {e}", spec.db_path.display()), e)
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

/// The error for a vector of the wrong size.
fn wrong_size(model: &Model, movie_id: &str, found: i64) -> StageError {
    let expected = u64::from(model.dimensions) * 4;
    let hint = if found > 0 && found % 4 == 0 {
        format!(" ({} dimensions)", found / 4)
    } else {
        String::new()
    };
    StageError::new(format!(
        "{}: the vector of movie {movie_id:?} has {found} bytes{hint}, but model {} has {} \
         dimensions ({expected} bytes of float32). The usual cause is the embeddings file of \
         another model at this path; point `embeddings` of model {} at its own file or regenerate it",
        model.embeddings.display(),
        model.id,
        model.dimensions,
        model.id
    ))
}

/// Check the size of every stored vector and count those of unknown movies.
fn scan_embeddings(
    conn: &Connection,
    model: &Model,
    known: &HashSet<&str>,
) -> Result<usize, StageError> {
    let shown = model.embeddings.display();
    let sql_err =
        |e: rusqlite::Error| StageError::with_source(format!("cannot read {shown}: {e}"), e);
    let mut stmt = conn
        .prepare("SELECT movie_id, typeof(embedding), length(embedding) FROM embeddings")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let expected = i64::from(model.dimensions) * 4;
    let mut unknown = 0;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let id = match row.get_ref(0).map_err(sql_err)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => format!("{other:?}"),
        };
        let kind: String = row.get(1).map_err(sql_err)?;
        if kind != "blob" {
            return Err(StageError::new(format!(
                "{shown}: the vector of movie {id:?} is stored as {kind}, not as a blob of float32; \
                 regenerate the embeddings of model {}",
                model.id
            )));
        }
        let len: i64 = row.get(2).map_err(sql_err)?;
        if len != expected {
            return Err(wrong_size(model, &id, len));
        }
        if !known.contains(id.as_str()) {
            unknown += 1;
        }
    }
    Ok(unknown)
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

/// Fill the working database.
fn build(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    conn: &Connection,
    input: &BuildInput,
    counts: &mut VectorCounts,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err(spec, what, err);
    let model = &spec.model;
    // The working file is scratch: no journal and no fsync (a failed build
    // deletes it); the final file is written by VACUUM INTO, in rollback
    // (DELETE) journal mode as the browser needs.
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -16384; PRAGMA foreign_keys = OFF;"
    ))
    .map_err(e("configure"))?;
    conn.execute_batch(SCHEMA).map_err(e("create the schema"))?;
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE vec_movies USING vec0(movieId TEXT PRIMARY KEY, embedding FLOAT[{}] distance_metric={})",
        model.dimensions, model.metric
    ))
    .map_err(e("create the vector table"))?;
    conn.execute_batch("BEGIN").map_err(e("begin"))?;

    let movies = &input.catalog.movies;
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
        let mut ins_vec = conn
            .prepare_cached("INSERT INTO vec_movies (movieId, embedding) VALUES (?1, ?2)")
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
        let mut get_vec = match input.embeddings {
            Some(c) => Some(
                c.prepare("SELECT embedding FROM embeddings WHERE movie_id = ?1")
                    .map_err(|err| {
                        StageError::with_source(
                            format!("cannot read {}: {err}", model.embeddings.display()),
                            err,
                        )
                    })?,
            ),
            None => None,
        };

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

            if let Some(stmt) = get_vec.as_mut() {
                let mut rows = stmt.query([&m.movie_id]).map_err(|err| {
                    StageError::with_source(
                        format!("cannot read {}: {err}", model.embeddings.display()),
                        err,
                    )
                })?;
                let row = rows.next().map_err(|err| {
                    StageError::with_source(
                        format!("cannot read {}: {err}", model.embeddings.display()),
                        err,
                    )
                })?;
                match row {
                    Some(row) => {
                        let blob = match row.get_ref(0) {
                            Ok(ValueRef::Blob(b)) => b,
                            _ => return Err(wrong_size(model, &m.movie_id, -1)),
                        };
                        check_vector(model, &m.movie_id, blob)?;
                        ins_vec
                            .execute(params![m.movie_id, blob])
                            .map_err(e("insert a vector"))?;
                        counts.with += 1;
                    }
                    None => counts.without += 1,
                }
            } else {
                counts.without += 1;
            }

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
                input.built_at
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
        for c in input.collections {
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

    let config: [(&str, String); 10] = [
        ("embedding_model_id", model.id.clone()),
        ("embedding_model_name", model.name.clone()),
        ("embedding_model_dimensions", model.dimensions.to_string()),
        ("embedding_model_metric", model.metric.to_string()),
        ("embeddings_blake3", input.emb_hash.to_string()),
        ("movies_with_vector", counts.with.to_string()),
        ("movies_without_vector", counts.without.to_string()),
        ("vectors_for_unknown_movies", counts.unknown.to_string()),
        ("pipe_version", env!("CARGO_PKG_VERSION").to_string()),
        ("built_at", input.built_at.to_string()),
    ];
    {
        let mut stmt = conn
            .prepare("INSERT INTO config (key, value) VALUES (?1, ?2)")
            .map_err(e("prepare"))?;
        for (k, v) in &config {
            stmt.execute(params![k, v]).map_err(e("insert config"))?;
        }
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
    .map_err(e("optimize"))?;
    Ok(())
}

/// Reject a vector of the wrong size or with NaN/Inf components.
fn check_vector(model: &Model, movie_id: &str, blob: &[u8]) -> Result<(), StageError> {
    if blob.len() as u64 != u64::from(model.dimensions) * 4 {
        return Err(wrong_size(model, movie_id, blob.len() as i64));
    }
    if let Some(pos) = blob
        .chunks_exact(4)
        .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    {
        return Err(StageError::new(format!(
            "{}: the vector of movie {movie_id:?} has a NaN or infinite component (index {pos}); \
             regenerate this movie's embedding for model {}",
            model.embeddings.display(),
            model.id
        )));
    }
    Ok(())
}

/// blake3 of a file, streamed.
fn blake3_file(path: &Path) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut hasher)?;
    Ok(hasher.finalize())
}

/// blake3 of a file as hex.
fn hash_file(path: &Path) -> std::io::Result<String> {
    blake3_file(path).map(|h| h.to_hex().to_string())
}
