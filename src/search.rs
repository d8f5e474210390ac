//! Nearest-neighbour search over a `movies.db` that pipe built.
//!
//! The search is the front end's own query, so that what `pipe search` shows
//! is what the site will show:
//!
//! ```sql
//! SELECT … FROM vec_movies v JOIN movies m ON v.movieId = m.movieId
//! WHERE v.embedding MATCH ? AND k = ? ORDER BY v.distance
//! ```
//!
//! The dimensions and metric are read from the database's `config` table,
//! never from the manifest: the vec0 table is what it was built with, even if
//! `models.d` changed since. That is also what makes `--db` work on any
//! database pipe built, without a rebuild.
//!
//! Where vectors are stored is described by a [`VectorTable`] (the module
//! [`crate::vectors`], shared with the stages that write them): float32, or a
//! quantized table (int8 or bit vectors, `embedding_quantization` in
//! `config`). A quantized query vector is quantized in SQL with the same
//! function the build used. With rescoring (`embedding_rescore`), the
//! quantized column only finds k × `embedding_oversample` candidates, which
//! are then ranked by their exact distance to the float vectors kept in
//! `vec_movies_float`.

use crate::graph::{Graph, TargetSpec};
use crate::manifest::{Manifest, Metric, Quantization, Quantized};
use crate::vectors::{from_le_bytes, Display, VectorTable};
pub use crate::vectors::{to_le_bytes, ScoreKind, VEC0_K_MAX};

/// The vec0 table of a movies.db and its key column.
const MOVIES_TABLE: &str = "vec_movies";
const MOVIES_KEY: &str = "movieId";

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why a search could not be made. Every message names the culprit and, when
/// there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The command line is wrong (unknown model, movie or a bad vector):
    /// the user's input, reported as a usage error.
    #[error("{0}")]
    Usage(String),
    /// The database is missing, unreadable or not one pipe built.
    #[error("{0}")]
    Database(String),
}

impl SearchError {
    fn db(path: &Path, what: &str, e: impl std::fmt::Display) -> SearchError {
        SearchError::Database(format!("{}: cannot {what}: {e}", path.display()))
    }
}

/// What a database says about its vectors (its `config` table).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbInfo {
    /// `embedding_model_id`.
    pub model: String,
    /// `embedding_model_name`.
    pub model_name: String,
    /// Where and how the vectors are stored: `embedding_model_dimensions`,
    /// `embedding_model_metric`, `embedding_quantization`,
    /// `embedding_rescore` and `embedding_oversample`.
    pub table: VectorTable,
    /// `embeddings_blake3`: which embeddings the vectors came from (a
    /// quantized model and its float original share it).
    pub embeddings_blake3: Option<String>,
}

/// One movie (or record) of a database, as shown in results.
#[derive(Clone, Debug, PartialEq)]
pub struct Movie {
    /// `movieId` (a record's `id`).
    pub movie_id: String,
    /// Title (a record's title column).
    pub title: String,
    /// Year, when known (never for a record).
    pub year: Option<i64>,
    /// For a record of a records database: the column shown as its title
    /// (its first full-text column, else its first column). `None` for a
    /// movie.
    pub title_column: Option<String>,
}

/// A movie is `{movieId, title, year}` (as the front end names them); a
/// record is `{id, title}`: its id, and its title column's value.
impl Serialize for Movie {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.title_column.is_some() {
            let mut m = s.serialize_struct("Record", 2)?;
            m.serialize_field("id", &self.movie_id)?;
            m.serialize_field("title", &self.title)?;
            return m.end();
        }
        let mut m = s.serialize_struct("Movie", 3)?;
        m.serialize_field("movieId", &self.movie_id)?;
        m.serialize_field("title", &self.title)?;
        m.serialize_field("year", &self.year)?;
        m.end()
    }
}

/// One result of a KNN query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Neighbour {
    /// The movie.
    #[serde(flatten)]
    pub movie: Movie,
    /// vec0's distance for the table's metric.
    pub distance: f64,
    /// What is shown and filtered on: see [`ScoreKind`].
    pub score: f64,
}

/// A database pipe built, opened read-only for searching.
pub struct Database {
    /// Where it is.
    pub path: PathBuf,
    /// Its config.
    pub info: DbInfo,
    /// What the vectors are of.
    items: Items,
    conn: Connection,
}

/// The table the vectors' keys are looked up in, for display: a movies.db's
/// `movies`, or a records database's `records`.
struct Items {
    /// The table.
    table: &'static str,
    /// Its key column.
    key: &'static str,
    /// What one item is called in messages.
    noun: &'static str,
    /// SQL over the table (as `m`) for a result's title and year.
    shown: [String; 2],
    /// A records database's title column (see [`Movie::title_column`]).
    title_column: Option<String>,
}

impl Items {
    fn movies() -> Items {
        Items {
            table: "movies",
            key: "movieId",
            noun: "movie",
            shown: ["m.title".into(), "m.year".into()],
            title_column: None,
        }
    }
}

/// A metric by its name in `config` or `models`.
fn parse_metric(text: &str) -> Option<Metric> {
    match text {
        "l2" => Some(Metric::L2),
        "cosine" => Some(Metric::Cosine),
        "l1" => Some(Metric::L1),
        _ => None,
    }
}

/// A quantization by its name in `config` or `models`.
fn parse_quantization(text: &str) -> Option<Quantization> {
    match text {
        "int8" => Some(Quantization::Int8),
        "bit" => Some(Quantization::Bit),
        _ => None,
    }
}

impl Database {
    /// Open a database and read its vector configuration (a records
    /// database's primary model).
    pub fn open(path: &Path) -> Result<Database, SearchError> {
        Database::open_model(path, None)
    }

    /// Open a database for `model`'s vectors: a movies.db (one model: the
    /// caller checks it is `model`), or a records database, whose `models`
    /// table says where each model's vectors are (`None`: the primary).
    pub fn open_model(path: &Path, model: Option<&str>) -> Result<Database, SearchError> {
        if !path.is_file() {
            return Err(SearchError::Database(format!(
                "{} does not exist or is not a file",
                path.display()
            )));
        }
        let conn =
            crate::sqlite::open_read_only(path).map_err(|e| SearchError::db(path, "open", e))?;
        let has_models: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'models'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| SearchError::db(path, "read the schema", e))?;
        if has_models > 0 {
            return Database::open_records(path, conn, model);
        }
        let not_pipe = |e: &dyn std::fmt::Display| {
            SearchError::Database(format!(
                "{} is not a database pipe built (no readable config table or vec_movies table): {e}",
                path.display()
            ))
        };
        let get = |key: &str| -> Result<String, SearchError> {
            conn.query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map_err(|e| not_pipe(&e))?
            .flatten()
            .ok_or_else(|| not_pipe(&format!("config has no `{key}`")))
        };
        let model = get("embedding_model_id")?;
        let model_name = get("embedding_model_name").unwrap_or_else(|_| model.clone());
        let dims_text = get("embedding_model_dimensions")?;
        let dimensions: u32 = dims_text
            .parse()
            .map_err(|_| not_pipe(&format!("embedding_model_dimensions is `{dims_text}`")))?;
        let metric_text = get("embedding_model_metric")?;
        let metric = parse_metric(&metric_text)
            .ok_or_else(|| not_pipe(&format!("unknown embedding_model_metric `{metric_text}`")))?;
        let optional = |key: &str| get(key).ok();
        let kind = match optional("embedding_quantization").as_deref() {
            None => None,
            Some(text) => Some(parse_quantization(text).ok_or_else(|| {
                not_pipe(&format!(
                    "unknown embedding_quantization `{text}` (this pipe knows int8 and bit)"
                ))
            })?),
        };
        let rescore = optional("embedding_rescore").as_deref() == Some("true");
        let oversample = if rescore {
            let text = optional("embedding_oversample").unwrap_or_default();
            text.parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| not_pipe(&format!("embedding_oversample is `{text}`")))?
        } else {
            1
        };
        let quantization = kind.map(|kind| Quantized {
            kind,
            rescore,
            oversample,
        });
        let table = VectorTable::new(MOVIES_TABLE, MOVIES_KEY, dimensions, metric, quantization);
        let embeddings_blake3 = optional("embeddings_blake3");
        let has_table: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                [&table.table],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| not_pipe(&e))?
            > 0;
        if !has_table {
            return Err(not_pipe(&format!("no `{}` table", table.table)));
        }
        Ok(Database {
            path: path.to_path_buf(),
            info: DbInfo {
                model,
                model_name,
                table,
                embeddings_blake3,
            },
            items: Items::movies(),
            conn,
        })
    }

    /// A records database: `model`'s row of its `models` registry (the
    /// primary's when `None`) says which table holds its vectors.
    fn open_records(
        path: &Path,
        conn: Connection,
        model: Option<&str>,
    ) -> Result<Database, SearchError> {
        let bad = |e: &dyn std::fmt::Display| {
            SearchError::Database(format!(
                "{} is a records database whose `models` table cannot be read: {e}",
                path.display()
            ))
        };
        type Row = (
            String,
            String,
            u32,
            String,
            Option<String>,
            Option<u32>,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = {
            let mut stmt = conn
                .prepare(
                    "SELECT model, name, dimensions, metric, quantization, oversample, vector_table, \
                     float_table FROM models ORDER BY is_primary DESC, model",
                )
                .map_err(|e| bad(&e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<Row>, _>>())
                .map_err(|e| bad(&e))?;
            rows
        };
        let row = match model {
            None => rows.first(),
            Some(m) => rows.iter().find(|r| r.0 == m),
        };
        let Some((id, name, dimensions, metric, quantization, oversample, table, float_table)) =
            row.cloned()
        else {
            let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let wanted = model.unwrap_or_default();
            let hint = crate::suggest::closest(wanted, ids.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(SearchError::Usage(format!(
                "{} has no vectors of model `{wanted}`{hint}; its models: {}",
                path.display(),
                ids.join(", ")
            )));
        };
        let metric =
            parse_metric(&metric).ok_or_else(|| bad(&format!("unknown metric `{metric}`")))?;
        let quantization = match quantization.as_deref() {
            None => None,
            Some(text) => Some(Quantized {
                kind: parse_quantization(text)
                    .ok_or_else(|| bad(&format!("unknown quantization `{text}`")))?,
                rescore: float_table.is_some(),
                oversample: oversample.filter(|n| *n >= 1).unwrap_or(1),
            }),
        };
        let mut vectors = VectorTable::new(&table, "id", dimensions, metric, quantization);
        if let Some(f) = float_table {
            vectors.float_table = f;
        }
        // Provenance: the per-model layout's keys, or the single layout's
        // `<model>.` ones.
        let config = |key: &str| -> Option<String> {
            conn.query_row(
                "SELECT value FROM config WHERE key IN (?1, ?2) ORDER BY length(key) DESC",
                [format!("{id}.{key}"), key.to_string()],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
        };
        let embeddings_blake3 = config("embeddings_blake3");
        let (title, title_column) = Database::records_title(&conn).map_err(|e| bad(&e))?;
        Ok(Database {
            path: path.to_path_buf(),
            info: DbInfo {
                model: id,
                model_name: name,
                table: vectors,
                embeddings_blake3,
            },
            items: Items {
                table: "records",
                key: "id",
                noun: "record",
                shown: [title, "NULL".into()],
                title_column: Some(title_column.unwrap_or_else(|| "title".into())),
            },
            conn,
        })
    }

    /// What a records database shows as a result's title: its first
    /// full-text indexed column, else its first declared column, as text
    /// (the SQL, and the column's name).
    fn records_title(conn: &Connection) -> rusqlite::Result<(String, Option<String>)> {
        let fts: Option<String> = conn
            .query_row(
                "SELECT name FROM pragma_table_info('records_fts') ORDER BY cid LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let column = match fts {
            Some(c) => Some(c),
            None => conn
                .query_row(
                    "SELECT name FROM pragma_table_info('records') WHERE name != 'id' ORDER BY cid LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?,
        };
        Ok(match column {
            Some(c) => (
                format!("ifnull(CAST(m.\"{}\" AS TEXT), '')", c.replace('"', "\"\"")),
                Some(c),
            ),
            None => ("''".into(), None),
        })
    }

    /// The kind of score of this database's results.
    pub fn score_kind(&self) -> ScoreKind {
        self.info.table.score_kind()
    }

    /// A movie of the `movies` table.
    pub fn movie(&self, movie_id: &str) -> Result<Option<Movie>, SearchError> {
        let i = &self.items;
        let sql = format!(
            "SELECT {key}, {}, {} FROM {table} m WHERE {key} = ?1",
            i.shown[0],
            i.shown[1],
            key = i.key,
            table = i.table
        );
        self.conn
            .query_row(&sql, [movie_id], |r| {
                Ok(Movie {
                    movie_id: r.get(0)?,
                    title: r.get(1)?,
                    year: r.get(2)?,
                    title_column: i.title_column.clone(),
                })
            })
            .optional()
            .map_err(|e| SearchError::db(&self.path, "read movies", e))
    }

    /// The stored vector of a movie, if it has one: the float vector, or,
    /// for a quantized table without float vectors, the quantized one
    /// turned back into floats ([`VectorTable::dequantize`]).
    pub fn vector(&self, movie_id: &str) -> Result<Option<Vec<f32>>, SearchError> {
        let (sql, quantized) = self.info.table.vector_sql();
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(&sql, [movie_id], |r| r.get(0))
            .optional()
            .map_err(|e| SearchError::db(&self.path, "read a vector", e))?;
        Ok(blob.map(|b| {
            if quantized {
                self.info.table.dequantize(&b)
            } else {
                from_le_bytes(&b)
            }
        }))
    }

    /// The vector of a movie given on the command line, or an error that says
    /// what is wrong: no such movie (with close ids), or no vector.
    pub fn vector_of(&self, movie_id: &str) -> Result<(Movie, Vec<f32>), SearchError> {
        let model = &self.info.model;
        let Some(movie) = self.movie(movie_id)? else {
            let close = self.close_ids(movie_id, 3)?;
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!(" (did you mean {}?)", close.join(", "))
            };
            return Err(SearchError::Usage(format!(
                "unknown {} id `{movie_id}`: it is not in model {model}'s database {}{hint}",
                self.items.noun,
                self.path.display()
            )));
        };
        match self.vector(movie_id)? {
            Some(v) => Ok((movie, v)),
            None => Err(SearchError::Usage(format!(
                "{} `{movie_id}` ({}) exists but has no vector in model {model}'s database {}: \
                 its embedding is missing from the model's embeddings file; regenerate the \
                 embeddings and rebuild, or search with --vector",
                self.items.noun,
                describe(&movie),
                self.path.display()
            ))),
        }
    }

    /// Up to `n` movie ids close to `id` (edit distance, or sharing a prefix),
    /// closest first, for "did you mean".
    pub fn close_ids(&self, id: &str, n: usize) -> Result<Vec<String>, SearchError> {
        let sql = format!("SELECT {} FROM {}", self.items.key, self.items.table);
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| SearchError::db(&self.path, "read movies", e))?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| SearchError::db(&self.path, "read movies", e))?;
        let wanted = id.to_lowercase();
        let mut close: Vec<(usize, String)> = Vec::new();
        for candidate in ids {
            let candidate = candidate.map_err(|e| SearchError::db(&self.path, "read movies", e))?;
            let lower = candidate.to_lowercase();
            let d = strsim::damerau_levenshtein(&wanted, &lower);
            let limit = (wanted.len().max(lower.len()) / 4).max(1);
            if d <= limit || (wanted.len() >= 4 && lower.starts_with(&wanted)) {
                close.push((d, candidate));
            }
        }
        close.sort();
        Ok(close.into_iter().take(n).map(|(_, c)| c).collect())
    }

    /// Ids of every movie with a vector, sorted.
    pub fn ids_with_vector(&self) -> Result<Vec<String>, SearchError> {
        let sql = self.info.table.keys_sql();
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| SearchError::db(&self.path, "read vectors", e))?;
        let mut ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| SearchError::db(&self.path, "read vectors", e))?;
        ids.sort();
        Ok(ids)
    }

    /// Check a query vector's length against the table's dimensions.
    pub fn check_vector(&self, vector: &[f32], source: &str) -> Result<(), SearchError> {
        self.info
            .table
            .check_query(vector, source, &self.info.model)
            .map_err(|p| SearchError::Usage(p.0))
    }

    /// The `k` nearest movies to `query`, closest first, leaving out
    /// `exclude` (the query movie: it is always its own nearest neighbour,
    /// which tells the user nothing). `k` + 1 are asked for so that leaving
    /// it out still gives `k`.
    pub fn knn(
        &self,
        query: &[f32],
        k: usize,
        exclude: Option<&str>,
    ) -> Result<Vec<Neighbour>, SearchError> {
        check_k(k)?;
        let ask = if exclude.is_some() { k + 1 } else { k };
        let score = self.score_kind();
        let columns = [self.items.shown[0].as_str(), self.items.shown[1].as_str()];
        let sql = self.info.table.knn_sql(&Display {
            table: self.items.table,
            key: self.items.key,
            columns: &columns,
        });
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| SearchError::db(&self.path, "prepare the KNN query", e))?;
        let blob = to_le_bytes(query);
        let rows = if self.info.table.rescores() {
            let candidates = self.info.table.candidates(ask);
            stmt.query(params![blob, ask as i64, candidates as i64])
        } else {
            stmt.query(params![blob, ask as i64])
        };
        let rows = rows
            .map_err(|e| SearchError::db(&self.path, "run the KNN query", e))?
            .mapped(|r| {
                let distance: f64 = r.get(3)?;
                Ok(Neighbour {
                    movie: Movie {
                        movie_id: r.get(0)?,
                        title: r.get(1)?,
                        year: r.get(2)?,
                        title_column: self.items.title_column.clone(),
                    },
                    distance,
                    score: score.score(distance),
                })
            });
        let mut out = Vec::with_capacity(k);
        for row in rows {
            let n = row.map_err(|e| SearchError::db(&self.path, "run the KNN query", e))?;
            if exclude == Some(n.movie.movie_id.as_str()) {
                continue;
            }
            out.push(n);
        }
        out.truncate(k);
        Ok(out)
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> Result<u64, SearchError> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| SearchError::db(&self.path, "stat", e))
    }
}

/// Reject a `k` vec0 cannot answer (one more is asked for when the query
/// movie is left out).
pub fn check_k(k: usize) -> Result<(), SearchError> {
    if k == 0 || k >= VEC0_K_MAX {
        return Err(SearchError::Usage(format!(
            "-k {k}: k must be between 1 and {} (sqlite-vec answers at most {VEC0_K_MAX} neighbours)",
            VEC0_K_MAX - 1
        )));
    }
    Ok(())
}

/// `Title (1999)`.
pub fn describe(movie: &Movie) -> String {
    match movie.year {
        Some(y) => format!("{} ({y})", movie.title),
        None => movie.title.clone(),
    }
}

/// Parse a query vector: a JSON array of numbers, or raw little-endian
/// float32 bytes. A file that is text starting with `[` is JSON (so that a
/// typo in JSON is reported as such, not read as floats); anything else is
/// raw floats.
pub fn parse_vector(bytes: &[u8], source: &str) -> Result<Vec<f32>, SearchError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            let values: Vec<serde_json::Value> = serde_json::from_str(trimmed).map_err(|e| {
                SearchError::Usage(format!(
                    "{source}: not a JSON array of numbers: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            return values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_f64().map(|x| x as f32).ok_or_else(|| {
                        SearchError::Usage(format!(
                            "{source}: element {i} of the JSON array is {v}, not a number"
                        ))
                    })
                })
                .collect();
        }
    }
    if !bytes.len().is_multiple_of(4) {
        return Err(SearchError::Usage(format!(
            "{source}: {} bytes is neither a JSON array nor a whole number of float32s \
             (raw vectors are little-endian float32, 4 bytes each)",
            bytes.len()
        )));
    }
    Ok(from_le_bytes(bytes))
}

/// Read a query vector from a file (`-` is standard input).
pub fn read_vector_file(path: &Path) -> Result<Vec<f32>, SearchError> {
    let shown = path.display().to_string();
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| SearchError::Usage(format!("cannot read standard input: {e}")))?;
        buf
    } else {
        std::fs::read(path).map_err(|e| SearchError::Usage(format!("cannot read {shown}: {e}")))?
    };
    parse_vector(&bytes, &shown)
}

/// The database of a model, found through the manifest and the graph (the
/// `movies-db@<model>` target's path), or an error that lists the models or
/// says how to build it.
pub fn locate(manifest: &Manifest, graph: &Graph, model: &str) -> Result<PathBuf, SearchError> {
    let ids: Vec<&str> = manifest.models.iter().map(|m| m.id.as_str()).collect();
    if manifest.model(model).is_none() {
        let hint = crate::suggest::closest(model, ids.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(SearchError::Usage(format!(
            "unknown embedding model `{model}`{hint}\navailable models: {}",
            ids.join(", ")
        )));
    }
    // A movies-db target's database first, else a records target's (one
    // per model, or the single database holding every model).
    let movies = graph.targets.iter().find_map(|t| match &t.spec {
        TargetSpec::MoviesDb(spec) if spec.model.id == model => Some((t, &spec.db_path)),
        _ => None,
    });
    let records = || {
        graph.targets.iter().find_map(|t| match &t.spec {
            TargetSpec::RecordsDb(spec) if spec.models.iter().any(|m| m.id == model) => {
                Some((t, &spec.path))
            }
            _ => None,
        })
    };
    let Some((target, db_path)) = movies.or_else(records) else {
        return Err(SearchError::Usage(format!(
            "no movies-db or records-db target builds a database for model {model} in {}; \
             add a `kind = \"movies-db\"` target, or pass --db PATH",
            manifest.root.join(crate::manifest::MANIFEST_NAME).display()
        )));
    };
    let path = manifest.root.join(db_path);
    if !path.is_file() {
        return Err(SearchError::Database(format!(
            "the database of model {model} has not been built yet ({} is missing): \
             run `pipe build --target {}`",
            db_path.display(),
            target.name
        )));
    }
    Ok(path)
}

/// A note when a model's database was built with other dimensions or another
/// metric than its models.d file now declares: the search still uses what the
/// database holds, but the user should know it is stale.
pub fn stale_note(model: &crate::manifest::Model, info: &DbInfo) -> Option<String> {
    // Quantization, as a model file says it and as config records it.
    let storage = |q: Option<&str>, rescore: bool| match q {
        None => String::new(),
        Some(q) if rescore => format!(", {q} rescored"),
        Some(q) => format!(", {q}"),
    };
    let declared_q = storage(
        model.quantization.map(|q| q.kind.as_str()),
        model.quantization.is_some_and(|q| q.rescore),
    );
    let t = &info.table;
    let built_q = storage(t.kind().map(Quantization::as_str), t.rescores());
    let declared = (model.dimensions, model.metric, &declared_q);
    let built = (t.dimensions, t.metric, &built_q);
    (declared != built).then(|| {
        format!(
            "model {}'s database was built with {} dims, metric {}{built_q}, but {} now declares \
             {} dims, metric {}{declared_q}; searching what was built (run `pipe build` to \
             rebuild it)",
            model.id,
            t.dimensions,
            t.metric,
            model.file.display(),
            model.dimensions,
            model.metric
        )
    })
}

/// What `pipe search` asked for.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Query {
    /// Movies like this one (left out of its own results).
    Movie {
        /// The movie.
        #[serde(flatten)]
        movie: Movie,
    },
    /// A vector read from a file.
    Vector {
        /// The file.
        file: String,
    },
    /// A text embedded by the model's provider (`--text`).
    Text {
        /// The text as given.
        text: String,
        /// What the provider was sent: the model's query prefix, then the text.
        sent: String,
        /// The provider, as messages name it.
        provider: String,
    },
}

impl Query {
    /// What the results are nearest to, as the tables' headers say it.
    pub fn nearest_to(&self) -> String {
        match self {
            Query::Movie { movie } => format!("{} {}", movie.movie_id, describe(movie)),
            Query::Vector { file } => format!("the vector in {file}"),
            Query::Text { text, .. } => format!("{text:?}"),
        }
    }

    /// Where a query vector came from, for messages about it.
    fn source(&self) -> String {
        match self {
            Query::Movie { movie } => format!("movie {}", movie.movie_id),
            Query::Vector { file } => file.clone(),
            Query::Text { provider, .. } => format!("the query's vector from {provider}"),
        }
    }
}

/// The answer of `pipe search`, printed as a table or as JSON.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchReport {
    /// The database searched.
    pub database: String,
    /// Model id (from the database's config).
    pub model: String,
    /// Metric of the vector table.
    pub metric: Metric,
    /// Dimensions of the vector table.
    pub dimensions: usize,
    /// What `score` means.
    pub score: ScoreKind,
    /// The distance results carry: the metric's, or `hamming` (a bit table
    /// without rescoring).
    pub distance: &'static str,
    /// `int8` or `bit` for a quantized table (absent for float32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<&'static str>,
    /// With rescoring: candidates fetched per neighbour (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversample: Option<usize>,
    /// What was searched for.
    pub query: Query,
    /// Neighbours asked for.
    pub k: usize,
    /// `--min-score`, if given.
    pub min_score: Option<f64>,
    /// The neighbours, closest first.
    pub results: Vec<Neighbour>,
}

/// Search `db` for the neighbours of a movie or of a vector (`query` says
/// where the vector came from: a file or a text): the whole of `pipe search`
/// but the printing.
pub fn search(
    db: &Database,
    like: Option<&str>,
    vector: Option<(&[f32], Query)>,
    k: usize,
    min_score: Option<f64>,
) -> Result<SearchReport, SearchError> {
    check_k(k)?;
    let (query, vec, exclude) = match (like, vector) {
        (Some(id), _) => {
            let (movie, v) = db.vector_of(id)?;
            (Query::Movie { movie }, v, Some(id))
        }
        (None, Some((v, query))) => {
            db.check_vector(v, &query.source())?;
            (query, v.to_vec(), None)
        }
        (None, None) => {
            return Err(SearchError::Usage(
                "say what to search for: --like MOVIE_ID, --vector FILE or --text TEXT".into(),
            ))
        }
    };
    let kind = db.score_kind();
    let mut results = db.knn(&vec, k, exclude)?;
    if let Some(t) = min_score {
        results.retain(|n| kind.passes(n.score, t));
    }
    Ok(SearchReport {
        database: db.path.display().to_string(),
        model: db.info.model.clone(),
        metric: db.info.table.metric,
        dimensions: db.info.table.dimensions as usize,
        score: kind,
        distance: db.info.table.distance_name(),
        quantization: db.info.table.kind().map(Quantization::as_str),
        oversample: db.info.table.oversample().map(|n| n as usize),
        query,
        k,
        min_score,
        results,
    })
}

impl SearchReport {
    /// What its scores are: `similarity`, or `<distance> distance`.
    pub fn score_name(&self) -> String {
        match self.score {
            ScoreKind::Similarity => "similarity".to_string(),
            ScoreKind::Distance => format!("{} distance", self.distance),
        }
    }
}

/// The human form of a [`SearchReport`]: a header that says what the score
/// is, then an aligned table.
pub fn render(report: &SearchReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let meaning = match report.score {
        ScoreKind::Similarity => "similarity = 1 − cosine distance, higher is closer",
        ScoreKind::Distance => "lower is closer",
    };
    let storage = match (report.quantization, report.oversample) {
        (None, _) => String::new(),
        (Some(q), None) => format!(", {q} vectors"),
        (Some(q), Some(n)) => format!(", {q} vectors rescored ({n}× candidates)"),
    };
    let _ = writeln!(
        out,
        "{} nearest to {}\nmodel {} ({} dims, metric {}{storage}); score: {} ({meaning})",
        report.k,
        report.query.nearest_to(),
        report.model,
        report.dimensions,
        report.metric,
        report.score_name(),
    );
    if let Some(t) = report.min_score {
        let op = match report.score {
            ScoreKind::Similarity => "≥",
            ScoreKind::Distance => "≤",
        };
        let _ = writeln!(out, "only scores {op} {t}");
    }
    let movies: Vec<&Movie> = report.results.iter().map(|n| &n.movie).collect();
    let score = Column {
        heading: "SCORE".to_string(),
        width: 8,
        cells: report
            .results
            .iter()
            .map(|n| format!("{:.4}", n.score))
            .collect(),
    };
    results_table(&mut out, &movies, &[score]);
    out
}

/// A right-aligned column of a results table, after its `#`, id, title and
/// year columns.
#[derive(Clone, Debug)]
pub struct Column {
    /// The heading.
    pub heading: String,
    /// The width it is padded to (a longer cell is not cut).
    pub width: usize,
    /// A cell for each row.
    pub cells: Vec<String>,
}

/// The table of search results after a blank line (or `no results`): a
/// row for each of `movies` (the rank, the id, the title cut to fit, the
/// year), then its cell of each of `columns`. Every search table, of one
/// model or fused, has this layout; a records database's has no year, and
/// names its columns ID and the title column's name.
pub fn results_table(out: &mut String, movies: &[&Movie], columns: &[Column]) {
    use std::fmt::Write;
    out.push('\n');
    if movies.is_empty() {
        out.push_str("no results\n");
        return;
    }
    let title_w = movies
        .iter()
        .map(|m| m.title.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 60);
    // A records database's results: ID and its title column, no year.
    let record_title = movies[0].title_column.as_deref();
    let (id_label, title_label) = match record_title {
        Some(c) => ("ID".to_string(), c.to_uppercase()),
        None => ("MOVIEID".to_string(), "TITLE".to_string()),
    };
    let title_w = title_w.max(title_label.chars().count());
    let id_w = movies
        .iter()
        .map(|m| m.movie_id.chars().count())
        .max()
        .unwrap_or(0)
        .max(id_label.len());
    let _ = write!(
        out,
        "{:>3}  {:<id_w$}  {:<title_w$}",
        "#", id_label, title_label
    );
    if record_title.is_none() {
        let _ = write!(out, "  {:>4}", "YEAR");
    }
    for c in columns {
        let _ = write!(out, "  {:>w$}", c.heading, w = c.width);
    }
    out.push('\n');
    for (i, m) in movies.iter().enumerate() {
        let _ = write!(
            out,
            "{:>3}  {:<id_w$}  {:<title_w$}",
            i + 1,
            m.movie_id,
            truncate(&m.title, title_w),
        );
        if record_title.is_none() {
            let year = m.year.map(|y| y.to_string()).unwrap_or_default();
            let _ = write!(out, "  {:>4}", year);
        }
        for c in columns {
            let cell = c.cells.get(i).map(String::as_str).unwrap_or_default();
            let _ = write!(out, "  {:>w$}", cell, w = c.width);
        }
        out.push('\n');
    }
}

/// Cut `s` to `width` characters, marking the cut with `…`.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse_from_json_and_raw_bytes() {
        assert_eq!(
            parse_vector(b" [1, 2.5, -3]\n", "f").unwrap(),
            [1.0, 2.5, -3.0]
        );
        let raw = to_le_bytes(&[0.25, -1.0]);
        assert_eq!(parse_vector(&raw, "f").unwrap(), [0.25, -1.0]);
        let err = parse_vector(b"[1, \"x\"]", "f").unwrap_err().to_string();
        assert!(err.contains("element 1"), "{err}");
        let err = parse_vector(b"[1, 2", "f").unwrap_err().to_string();
        assert!(err.contains("not a JSON array"), "{err}");
        let err = parse_vector(&[0, 0, 128], "f").unwrap_err().to_string();
        assert!(err.contains("3 bytes"), "{err}");
    }

    #[test]
    fn k_is_bounded_by_vec0() {
        assert!(check_k(0).is_err());
        assert!(check_k(1).is_ok());
        assert!(check_k(VEC0_K_MAX - 1).is_ok());
        assert!(check_k(VEC0_K_MAX).is_err());
    }
}
