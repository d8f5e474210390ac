//! Parity with the reference pipeline (tests/fixtures/parity), plus the
//! properties the reference lacked: reproducible bytes, incremental JSON,
//! clear errors that leave previous outputs intact, and a working KNN table.
//!
//! The stages are called as library functions (the CLI is built elsewhere).

mod common;

use common::stage::StageEnv;
use pipe::manifest::model::{Metric, Model};
use pipe::stage::{
    NoProgress, PreviousFile, PreviousOutputs, ProgressSink, StageError, StageOutput,
};
use pipe::stages::movie_json::{self, MovieJsonSpec};
use pipe::stages::movies_db::{self, MoviesDbSpec};
use rusqlite::types::Value as Sql;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity");

/// A temporary project holding the fixture's inputs.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_tree(&Path::new(FIXTURE).join("input"), dir.path());
    dir
}

fn potion() -> Model {
    Model {
        id: "potion".into(),
        name: "Potion Base 2M".into(),
        dimensions: 64,
        metric: Metric::L2,
        embeddings: "data/embeddings-potion-movies.db".into(),
        description: "test".into(),
        default: true,
        file: "models.d/potion.toml".into(),
        quantization: None,
        ollama_model: None,
        embed: None,
    }
}

fn json_spec() -> MovieJsonSpec {
    MovieJsonSpec {
        movies: "data/movies.json".into(),
        collections: "public/data/collections.json".into(),
        out_dir: "public/movies".into(),
        file_template: "{movieId}.json".into(),
    }
}

fn db_spec(model: Model) -> MoviesDbSpec {
    MoviesDbSpec {
        movies: "data/movies.json".into(),
        collections: "public/data/collections.json".into(),
        model,
        db_path: "public/data/potion/movies.db".into(),
        publish: Some("public/data/movies.db".into()),
    }
}

/// Collects warnings.
#[derive(Default)]
struct Recorder {
    warnings: Mutex<Vec<String>>,
}

impl ProgressSink for Recorder {
    fn progress(&self, _: u64, _: u64, _: &str) {}
    fn warn(&self, warning: &pipe::warning::Warning) {
        self.warnings.lock().unwrap().push(warning.detail.clone());
    }
}

/// A run of the stages in a fresh context, or after a previous run.
struct Run(StageEnv);

impl std::ops::Deref for Run {
    type Target = StageEnv;
    fn deref(&self) -> &StageEnv {
        &self.0
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut StageEnv {
        &mut self.0
    }
}

impl Run {
    fn new() -> Self {
        Run(StageEnv::new())
    }

    fn after(out: &StageOutput) -> Self {
        let mut r = Run::new();
        r.previous = previous_of(out);
        r
    }

    fn json(&self, root: &Path) -> Result<StageOutput, StageError> {
        movie_json::run(&self.ctx(root, &NoProgress), &json_spec())
    }

    fn db(&self, root: &Path, model: Model) -> Result<StageOutput, StageError> {
        movies_db::run(&self.ctx(root, &NoProgress), &db_spec(model))
    }
}

fn previous_of(out: &StageOutput) -> PreviousOutputs {
    PreviousOutputs {
        files: out
            .files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    PreviousFile {
                        hash: f.hash,
                        intact: true,
                        unverified: None,
                    },
                )
            })
            .collect(),
    }
}

/// Every file under `dir`, relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<Sql>> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn parity_with_reference() {
    let dir = project();
    let root = dir.path();
    let run = Run::new();
    let json_out = run.json(root).unwrap();
    let db_out = run.db(root, potion()).unwrap();

    // JSON: same set of files; each parses equal (keys in the same order)
    // and is in fact byte-identical to what JSON.stringify wrote.
    let expected = tree(&Path::new(FIXTURE).join("expected/public/movies"));
    let ours = tree(&root.join("public/movies"));
    assert_eq!(expected.len(), 285);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (name, want) in &expected {
        let got = &ours[name];
        let a: serde_json::Value = serde_json::from_slice(want).unwrap();
        let b: serde_json::Value = serde_json::from_slice(got).unwrap();
        assert_eq!(a, b, "{}", name.display());
        let ka: Vec<_> = a.as_object().unwrap().keys().collect();
        let kb: Vec<_> = b.as_object().unwrap().keys().collect();
        assert_eq!(ka, kb, "key order of {}", name.display());
        assert_eq!(a["relatedMovies"], b["relatedMovies"], "{}", name.display());
        assert_eq!(
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(got),
            "bytes of {}",
            name.display()
        );
    }
    assert_eq!(json_out.files.len(), 285);
    assert_eq!(json_out.written, 285);

    // Database.
    let want =
        pipe::sqlite::open_read_only(&Path::new(FIXTURE).join("expected/public/data/movies.db"))
            .unwrap();
    let got = pipe::sqlite::open_read_only(&root.join("public/data/potion/movies.db")).unwrap();
    for sql in [
        "SELECT * FROM movies ORDER BY movieId",
        "SELECT id, name, movie_count FROM genres ORDER BY id",
        "SELECT id, name, movie_count FROM countries ORDER BY id",
        "SELECT * FROM collections ORDER BY id",
        "SELECT * FROM collection_movies ORDER BY collectionId, movieId",
        "SELECT * FROM actors ORDER BY id",
        "SELECT * FROM directors ORDER BY id",
        "SELECT * FROM writers ORDER BY id",
        "SELECT * FROM movie_actors ORDER BY movieId, actorId",
        "SELECT * FROM movie_directors ORDER BY movieId, directorId",
        "SELECT * FROM movie_writers ORDER BY movieId, writerId",
        "SELECT rowid, * FROM fts_movies ORDER BY rowid",
        "SELECT rowid, * FROM fts_actors ORDER BY rowid",
        "SELECT rowid, * FROM fts_directors ORDER BY rowid",
        "SELECT rowid, * FROM fts_writers ORDER BY rowid",
        "SELECT name, seq FROM sqlite_sequence ORDER BY name",
        "SELECT movieId, vec_to_json(embedding) FROM vec_movies ORDER BY movieId",
        "SELECT key, value FROM config WHERE key IN \
         ('embedding_model_id', 'embedding_model_name', 'embedding_model_dimensions') ORDER BY key",
        "SELECT type, name FROM sqlite_master WHERE type = 'index' ORDER BY name",
        "SELECT rowid, title FROM fts_movies WHERE fts_movies MATCH 'river' ORDER BY rowid",
    ] {
        let (a, b) = (rows(&want, sql), rows(&got, sql));
        assert!(!a.is_empty(), "{sql} returned nothing");
        assert_eq!(a, b, "{sql}");
    }
    // Timestamps come from the inputs (_schema.lastUpdated), not the clock.
    let created: Vec<Vec<Sql>> = rows(
        &got,
        "SELECT DISTINCT created_at FROM genres UNION SELECT created_at FROM countries",
    );
    assert_eq!(
        created,
        vec![vec![Sql::Text("2026-01-01T00:00:00.000Z".into())]]
    );
    let config: BTreeMap<String, String> = rows(&got, "SELECT key, value FROM config")
        .into_iter()
        .map(|r| match (&r[0], &r[1]) {
            (Sql::Text(k), Sql::Text(v)) => (k.clone(), v.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(config["embedding_model_metric"], "l2");
    assert_eq!(config["built_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(config["movies_with_vector"], "273");
    assert_eq!(config["movies_without_vector"], "12");
    assert_eq!(config["embeddings_blake3"].len(), 64);
    assert_eq!(config["pipe_version"], env!("CARGO_PKG_VERSION"));
    let journal: String = got
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    let page: i64 = got.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page, 4096);

    // The published copy is identical and also owned.
    assert_eq!(
        std::fs::read(root.join("public/data/potion/movies.db")).unwrap(),
        std::fs::read(root.join("public/data/movies.db")).unwrap()
    );
    assert_eq!(db_out.files.len(), 2);
    assert_eq!(db_out.files[0].hash, db_out.files[1].hash);
    // No temporary files left behind.
    let leftovers: Vec<_> = tree(&root.join("public"))
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".pipe-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn builds_are_reproducible() {
    let (a, b) = (project(), project());
    let mut run = Run::new();
    for dir in [&a, &b] {
        run.json(dir.path()).unwrap();
        run.db(dir.path(), potion()).unwrap();
        // A different clock-independent time must not matter either: only
        // SOURCE_DATE_EPOCH changes stored times.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(
        tree(&a.path().join("public")),
        tree(&b.path().join("public"))
    );

    run.settings.source_date_epoch = Some(1_700_000_000);
    run.db(a.path(), potion()).unwrap();
    let conn = pipe::sqlite::open_read_only(&a.path().join("public/data/movies.db")).unwrap();
    let built: String = conn
        .query_row("SELECT value FROM config WHERE key = 'built_at'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(built, "2023-11-14T22:13:20.000Z");
}

#[test]
fn incremental_json_rewrites_only_changed_files() {
    let dir = project();
    let root = dir.path();
    let first = Run::new().json(root).unwrap();
    let before = tree(&root.join("public/movies"));
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let mtimes: BTreeMap<PathBuf, _> = before
        .keys()
        .map(|k| (k.clone(), mtime(&root.join("public/movies").join(k))))
        .collect();

    // Nothing changed: nothing written.
    let again = Run::after(&first).json(root).unwrap();
    assert_eq!((again.written, again.deleted), (0, 0));

    // Change one title.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let path = root.join("data/movies.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"title\": \"Storm Père Moon\",\n    \"year\": 1915"));
    let edited = text.replacen(
        "\"title\": \"Storm Père Moon\",\n    \"year\": 1915",
        "\"title\": \"Storm Père Moon (restored)\",\n    \"year\": 1915",
        1,
    );
    std::fs::write(&path, edited).unwrap();
    let second = Run::after(&first).json(root).unwrap();
    let after = tree(&root.join("public/movies"));
    let changed: Vec<_> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    assert_eq!(changed, [Path::new("youtube-2b.json")]);
    assert_eq!(second.written, changed.len());
    for (k, t) in &mtimes {
        if !changed.contains(&k) {
            assert_eq!(
                *t,
                mtime(&root.join("public/movies").join(k)),
                "{} was touched",
                k.display()
            );
        }
    }

    // Removing a movie deletes its file, and only files pipe owns.
    let stray = root.join("public/movies/not-ours.json");
    std::fs::write(&stray, "{}").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    doc.shift_remove("youtube-1X").unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let third = Run::after(&second).json(root).unwrap();
    assert_eq!(third.deleted, 1);
    assert!(!root.join("public/movies/youtube-1X.json").exists());
    assert!(stray.exists());
    assert_eq!(third.files.len(), 284);
    // youtube-1X was related to others and listed in none: only files whose
    // bytes changed were written.
    let now = tree(&root.join("public/movies"));
    let rewritten = now
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v) && k.as_path() != Path::new("not-ours.json"))
        .count();
    assert_eq!(third.written, rewritten);
}

/// Write an embeddings database with the given rows.
fn write_embeddings(path: &Path, rows: &[(&str, Vec<u8>)]) {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE embeddings(movie_id TEXT PRIMARY KEY, embedding BLOB NOT NULL, created_at TEXT NOT NULL)",
    )
    .unwrap();
    for (id, blob) in rows {
        conn.execute(
            "INSERT INTO embeddings VALUES (?1, ?2, 'x')",
            rusqlite::params![id, blob],
        )
        .unwrap();
    }
}

fn floats(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

#[test]
fn bad_inputs_fail_clearly_and_leave_outputs_intact() {
    let dir = project();
    let root = dir.path();
    let run = Run::new();
    run.json(root).unwrap();
    run.db(root, potion()).unwrap();
    let good = tree(&root.join("public"));
    let movies = root.join("data/movies.json");
    let original = std::fs::read_to_string(&movies).unwrap();
    let emb = root.join("data/embeddings-potion-movies.db");
    let original_emb = std::fs::read(&emb).unwrap();

    let both = |expect: &[&str]| {
        for (which, r) in [("json", run.json(root)), ("db", run.db(root, potion()))] {
            let msg = r.expect_err(which).to_string();
            for e in expect {
                assert!(msg.contains(e), "{which}: {msg:?} lacks {e:?}");
            }
        }
        assert_eq!(tree(&root.join("public")), good);
    };

    // Hostile id.
    std::fs::write(
        &movies,
        original.replacen("\"movieId\": \"youtube-2b\"", "\"movieId\": \"../../x\"", 1),
    )
    .unwrap();
    both(&["\"../../x\"", "data/movies.json", "movieId"]);
    // Duplicate id (two entries with the same movieId).
    std::fs::write(
        &movies,
        original.replacen(
            "\"movieId\": \"youtube-2b\"",
            "\"movieId\": \"youtube-1X\"",
            1,
        ),
    )
    .unwrap();
    both(&["youtube-1X", "unique"]);
    // Duplicate key.
    std::fs::write(
        &movies,
        original.replacen("\"youtube-2b\": {", "\"youtube-1X\": {", 1),
    )
    .unwrap();
    both(&["duplicate key \"youtube-1X\""]);
    // Malformed JSON.
    std::fs::write(
        &movies,
        original.replacen("\"year\": 1951,", "\"year\": 1951", 1),
    )
    .unwrap();
    both(&["malformed JSON at line 11 column 5", "data/movies.json"]);
    std::fs::write(&movies, &original).unwrap();

    // Wrong dimensions (the 384-d file of another model).
    write_embeddings(&emb, &[("youtube-1X", floats(&[0.5; 384]))]);
    let msg = run.db(root, potion()).unwrap_err().to_string();
    for e in [
        "youtube-1X",
        "1536 bytes",
        "256 bytes",
        "potion",
        "another model",
    ] {
        assert!(msg.contains(e), "{msg:?} lacks {e:?}");
    }
    // NaN.
    let mut v = vec![0.1f32; 64];
    v[7] = f32::NAN;
    write_embeddings(&emb, &[("youtube-2b", floats(&v))]);
    let msg = run.db(root, potion()).unwrap_err().to_string();
    assert!(msg.contains("youtube-2b") && msg.contains("NaN"), "{msg}");
    assert_eq!(tree(&root.join("public")), good);

    // Missing embeddings: a warning by default, an error with --strict.
    std::fs::remove_file(&emb).unwrap();
    let rec = Recorder::default();
    let out = movies_db::run(&run.ctx(root, &rec), &db_spec(potion())).unwrap();
    assert!(rec.warnings.lock().unwrap()[0].contains("not found"));
    assert_eq!(out.warnings.len(), 1);
    let conn = pipe::sqlite::open_read_only(&root.join("public/data/movies.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM vec_movies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    drop(conn);
    let mut strict = Run::new();
    strict.settings.strict = true;
    assert!(strict
        .db(root, potion())
        .unwrap_err()
        .to_string()
        .contains("not found"));
    std::fs::write(&emb, original_emb).unwrap();
}

#[test]
fn unknown_vectors_are_counted_not_inserted() {
    let dir = project();
    let root = dir.path();
    let emb = root.join("data/embeddings-potion-movies.db");
    write_embeddings(
        &emb,
        &[
            ("youtube-1X", floats(&[0.25; 64])),
            ("no-such-movie", floats(&[0.5; 64])),
        ],
    );
    let rec = Recorder::default();
    let run = Run::new();
    let out = movies_db::run(&run.ctx(root, &rec), &db_spec(potion())).unwrap();
    assert_eq!(out.stats["vectors_for_unknown_movies"], "1");
    assert_eq!(out.stats["vectors"], "1");
    let warnings = rec.warnings.lock().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("1 vectors for movies that are not in")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("284 of 285 movies have no vector")),
        "{warnings:?}"
    );
}

#[test]
fn knn_matches_brute_force() {
    let dir = project();
    let root = dir.path();
    Run::new().db(root, potion()).unwrap();
    let conn = pipe::sqlite::open_read_only(&root.join("public/data/movies.db")).unwrap();
    let all: Vec<(String, Vec<f32>)> = {
        let mut stmt = conn
            .prepare("SELECT movieId, embedding FROM vec_movies")
            .unwrap();
        stmt.query_map([], |r| {
            let blob: Vec<u8> = r.get(1)?;
            Ok((
                r.get(0)?,
                blob.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert_eq!(all.len(), 273);
    for query in [&all[0].1, &all[100].1, &all[200].1] {
        let mut brute: Vec<(String, f64)> = all
            .iter()
            .map(|(id, v)| {
                let d: f64 = v
                    .iter()
                    .zip(query)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum();
                (id.clone(), d.sqrt())
            })
            .collect();
        brute.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut stmt = conn
            .prepare("SELECT movieId, distance FROM vec_movies WHERE embedding MATCH ? AND k = 5 ORDER BY distance")
            .unwrap();
        let got: Vec<(String, f64)> = stmt
            .query_map([floats(query)], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 5);
        for (g, b) in got.iter().zip(&brute) {
            assert_eq!(g.0, b.0);
            assert!((g.1 - b.1).abs() < 1e-4, "{g:?} vs {b:?}");
        }
    }
}

/// Timing of the whole job on a large project: `PIPE_BENCH_ROOT=<dir>
/// cargo test --release --test parity bench -- --ignored --nocapture`, where
/// the directory holds data/movies.json, public/data/collections.json and
/// data/embeddings-{nomic,bge,potion}-movies.db. All four targets run at
/// once, as the executor would run them on an idle machine.
#[test]
#[ignore]
fn bench() {
    let Ok(root) = std::env::var("PIPE_BENCH_ROOT") else {
        return;
    };
    let root = PathBuf::from(root);
    let run = Run::new();
    let models = [("nomic", 768), ("bge", 384), ("potion", 64)].map(|(id, dims)| Model {
        id: id.into(),
        name: id.into(),
        dimensions: dims,
        metric: Metric::L2,
        embeddings: format!("data/embeddings-{id}-movies.db").into(),
        description: String::new(),
        default: id == "nomic",
        file: PathBuf::new(),
        quantization: None,
        ollama_model: None,
        embed: None,
    });
    let only = std::env::var("PIPE_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only == name;
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            if !wanted("json") {
                return;
            }
            let t0 = std::time::Instant::now();
            let out = run.json(&root).unwrap();
            eprintln!(
                "movie-json: {:?} ({} files, {} written)",
                t0.elapsed(),
                out.files.len(),
                out.written
            );
        });
        let dbs: Vec<_> = models
            .iter()
            .filter(|m| wanted(&m.id))
            .map(|m| {
                let run = &run;
                let root = &root;
                s.spawn(move || {
                    let t0 = std::time::Instant::now();
                    let spec = MoviesDbSpec {
                        db_path: format!("public/data/{}/movies.db", m.id).into(),
                        publish: m.default.then(|| "public/data/movies.db".into()),
                        ..db_spec(m.clone())
                    };
                    movies_db::run(&run.ctx(root, &NoProgress), &spec).unwrap();
                    eprintln!("movies-db@{}: {:?}", m.id, t0.elapsed());
                })
            })
            .collect();
        t.join().unwrap();
        for d in dbs {
            d.join().unwrap();
        }
    });
    eprintln!("total: {:?}", start.elapsed());
}

/// `config.embedding_model_ollama`, for every shipped model, as the
/// reference writes it (select/movies-deluxe 4a6a980,
/// `config/embedding-models.ts`: `ollamaModel`, written only when set): the
/// front end embeds search queries through Ollama with it.
#[test]
fn embedding_model_ollama_is_written_as_the_reference_writes_it() {
    let manifest = pipe::manifest::Manifest::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.toml"),
    )
    .unwrap();
    let reference: BTreeMap<&str, Option<&str>> = [
        ("nomic", Some("nomic-embed-text")),
        ("bge-micro", Some("bge-m3")),
        ("potion", None),
    ]
    .into();
    let ids: Vec<&str> = manifest.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, reference.keys().copied().collect::<Vec<_>>());
    for model in &manifest.models {
        let want = reference[model.id.as_str()];
        assert_eq!(model.ollama_model.as_deref(), want, "{}", model.id);
        // The fixture's inputs with this model's config (its vectors are
        // potion's: only config is looked at).
        let dir = project();
        let m = Model {
            dimensions: 64,
            embeddings: "data/embeddings-potion-movies.db".into(),
            quantization: None,
            ..model.clone()
        };
        Run::new().db(dir.path(), m).unwrap();
        let got =
            pipe::sqlite::open_read_only(&dir.path().join("public/data/potion/movies.db")).unwrap();
        let value: Option<String> = got
            .query_row(
                "SELECT value FROM config WHERE key = 'embedding_model_ollama'",
                [],
                |r| r.get(0),
            )
            .ok();
        assert_eq!(value.as_deref(), want, "{}", model.id);
    }
}
