//! The real movie pipeline (pipeline.toml, models.d and the bundled sample
//! data of this repository) through the real binary.

mod common;
use common::{sample_project as sample, stock_sqlite, tree, Project};
use std::path::Path;

use common::REPO;

const ALL: &[&str] = &[
    "movie-json",
    "movies-db@bge-micro",
    "movies-db@nomic",
    "movies-db@potion",
];

fn movies(p: &Project) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(&p.read("data/movies.json")).unwrap()
}

fn save_movies(p: &Project, m: &serde_json::Map<String, serde_json::Value>) {
    p.write(
        "data/movies.json",
        &serde_json::to_string_pretty(m).unwrap(),
    );
}

/// A movie id that is kept (has a source without quality marks).
fn kept_id(p: &Project) -> String {
    let built = tree(&p.path("public/movies"));
    let name = built.keys().next().unwrap().to_string_lossy().into_owned();
    name.trim_end_matches(".json").to_string()
}

#[test]
fn the_sample_builds_then_nothing_to_do() {
    let p = sample();
    let first = p.build(&[]);
    assert_eq!(first.built(), ALL);
    assert!(
        p.path("public/data/movies.db").is_file(),
        "default model published"
    );
    assert_eq!(
        std::fs::read(p.path("public/data/movies.db")).unwrap(),
        std::fs::read(p.path("public/data/nomic/movies.db")).unwrap()
    );
    let second = p.pipe(&["build"]);
    assert_eq!(second.code, 0);
    assert!(
        second
            .stderr
            .contains("nothing to do: 4 targets up to date"),
        "{}",
        second.stderr
    );
    let inspect = p.pipe(&["inspect", "public/data/potion/movies.db"]);
    assert!(
        inspect.stdout.contains("embedding_model_dimensions  64"),
        "{}",
        inspect.stdout
    );
}

#[test]
fn a_model_edit_rebuilds_only_that_models_database() {
    let p = sample();
    p.build(&[]);
    let text = p
        .read("models.d/potion.toml")
        .replace("Smallest/fastest", "Tiny");
    p.write("models.d/potion.toml", &text);
    assert_eq!(p.build(&[]).built(), ["movies-db@potion"]);
    assert!(p
        .pipe(&["status"])
        .stdout
        .lines()
        .all(|l| !l.contains("stale")));
}

#[test]
fn targets_and_the_original_flags_select_what_they_say() {
    let p = sample();
    assert_eq!(
        p.build(&["--target", "movies-db@potion"]).built(),
        ["movies-db@potion"]
    );
    assert!(!p.path("public/movies").exists());
    assert!(!p.path("public/data/nomic").exists());
    assert_eq!(
        p.build(&["-m", "bge-micro", "--skip-json"]).built(),
        ["movies-db@bge-micro"]
    );
    assert_eq!(
        p.build(&["--embedding-model", "nomic"]).built(),
        ["movie-json", "movies-db@nomic"]
    );
    assert!(p.build(&["--skip-json"]).built().is_empty());
}

#[test]
fn two_clean_builds_in_two_directories_are_identical() {
    let a = sample();
    let b = sample();
    a.build(&[]);
    b.build(&["-j", "1"]);
    let ta = tree(&a.path("public"));
    let tb = tree(&b.path("public"));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(bytes == &tb[path], "{} differs", path.display());
    }
    assert_eq!(a.read("pipe.lock"), b.read("pipe.lock"));
}

#[test]
fn the_committed_lock_matches_what_the_sample_produces() {
    let p = sample();
    std::fs::copy(Path::new(REPO).join("pipe.lock"), p.path("pipe.lock"))
        .expect("pipe.lock is committed");
    let run = p.pipe(&["build", "--locked"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn one_changed_movie_rewrites_only_the_json_files_whose_content_changed() {
    let p = sample();
    p.build(&[]);
    let before = tree(&p.path("public/movies"));
    let id = kept_id(&p);
    let mut m = movies(&p);
    let title = m[&id]["title"].as_str().unwrap().to_string();
    m[&id]["title"] = serde_json::Value::String(format!("{title} (Director's Cut)"));
    save_movies(&p, &m);
    let run = p.build(&[]);
    let after = tree(&p.path("public/movies"));
    let changed = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .count();
    let json = run.report()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "movie-json")
        .cloned()
        .unwrap();
    assert_eq!(
        json["written"], changed,
        "written must equal the files whose bytes changed"
    );
    assert!(changed >= 1);
}

#[test]
fn a_stock_sqlite3_with_sqlite_vec_opens_the_database_and_finds_neighbours() {
    let p = sample();
    p.build(&[]);
    let db = p.path("public/data/potion/movies.db");
    assert_eq!(stock_sqlite(&db, "PRAGMA journal_mode;").trim(), "delete");
    assert_eq!(stock_sqlite(&db, "PRAGMA integrity_check;").trim(), "ok");
    assert_eq!(
        stock_sqlite(
            &db,
            "SELECT value FROM config WHERE key = 'embedding_model_id';"
        )
        .trim(),
        "potion"
    );

    // Brute force over the embeddings input, independently of pipe and sqlite-vec.
    let kept: std::collections::HashSet<String> = tree(&p.path("public/movies"))
        .keys()
        .map(|k| k.to_string_lossy().trim_end_matches(".json").to_string())
        .collect();
    let mut vectors: Vec<(String, Vec<f32>)> =
        common::embeddings(&p.path("data/embeddings-potion-movies.db"))
            .into_iter()
            .filter(|(id, _)| kept.contains(id))
            .collect();
    vectors.sort_by(|a, b| a.0.cmp(&b.0));
    let (query_id, query) = vectors[7].clone();
    let mut expected: Vec<(f32, String)> = vectors
        .iter()
        .map(|(id, v)| {
            (
                v.iter()
                    .zip(&query)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt(),
                id.clone(),
            )
        })
        .collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let expected: Vec<String> = expected.into_iter().take(5).map(|(_, id)| id).collect();

    let json: Vec<String> = query.iter().map(|x| format!("{x:?}")).collect();
    let sql = format!(
        "SELECT v.movieId FROM vec_movies v JOIN movies m ON v.movieId = m.movieId WHERE v.embedding MATCH '[{}]' AND k = 5 ORDER BY v.distance;",
        json.join(",")
    );
    let found: Vec<String> = stock_sqlite(&db, &sql)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(found, expected);
    assert_eq!(found[0], query_id);
}

/// Build once, break an input, build again: the error must contain `expect`,
/// the exit code is 1, and every output is byte-identical to before.
fn fails_and_keeps_outputs(p: &Project, break_input: impl FnOnce(&Project), expect: &[&str]) {
    let before = tree(&p.path("public"));
    break_input(p);
    let run = p.pipe(&["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for e in expect {
        assert!(
            run.stderr.contains(e),
            "stderr lacks {e:?}:\n{}",
            run.stderr
        );
    }
    let after = tree(&p.path("public"));
    assert!(before == after, "outputs changed after a failed build");
}

#[test]
fn wrong_dimension_embeddings_fail_clearly_and_keep_outputs() {
    let p = sample();
    p.build(&[]);
    fails_and_keeps_outputs(
        &p,
        |p| {
            std::fs::copy(
                p.path("data/embeddings-potion-movies.db"),
                p.path("data/embeddings-bge-micro-movies.db"),
            )
            .unwrap();
        },
        &[
            "movies-db@bge-micro failed",
            "bge-micro",
            "256 bytes",
            "1536",
        ],
    );
}

#[test]
fn a_nan_vector_fails_clearly_and_keeps_outputs() {
    let p = sample();
    p.build(&[]);
    let id = kept_id(&p);
    fails_and_keeps_outputs(
        &p,
        |p| {
            let c = rusqlite::Connection::open(p.path("data/embeddings-potion-movies.db")).unwrap();
            let mut blob = vec![0u8; 64 * 4];
            blob[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
            let n = c
                .execute(
                    "UPDATE embeddings SET embedding = ?1 WHERE movie_id = ?2",
                    rusqlite::params![blob, id],
                )
                .unwrap();
            assert_eq!(n, 1);
        },
        &["movies-db@potion failed", &id, "NaN"],
    );
}

#[test]
fn a_hostile_movie_id_fails_clearly_and_keeps_outputs() {
    let p = sample();
    p.build(&[]);
    fails_and_keeps_outputs(
        &p,
        |p| {
            let mut m = movies(p);
            let id = kept_id(p);
            let mut movie = m[&id].clone();
            movie["movieId"] = "../../x".into();
            m.insert("../../x".into(), movie);
            save_movies(p, &m);
        },
        &["../../x"],
    );
    assert!(!p.path("x.json").exists() && !p.dir.path().parent().unwrap().join("x.json").exists());
}

#[test]
fn a_duplicate_movie_id_fails_clearly_and_keeps_outputs() {
    let p = sample();
    p.build(&[]);
    fails_and_keeps_outputs(
        &p,
        |p| {
            let mut m = movies(p);
            let id = kept_id(p);
            let mut movie = m[&id].clone();
            movie["title"] = "Another".into();
            m.insert("another-key".into(), movie);
            save_movies(p, &m);
        },
        &["movie ids must be unique", "another-key"],
    );
}

#[test]
fn malformed_movies_json_fails_with_line_and_column_and_keeps_outputs() {
    let p = sample();
    p.build(&[]);
    fails_and_keeps_outputs(
        &p,
        |p| {
            let text = p.read("data/movies.json");
            p.write(
                "data/movies.json",
                &text.replacen("\"title\":", "\"title\"", 1),
            );
        },
        &["data/movies.json", "line"],
    );
}

#[test]
fn a_missing_embeddings_file_warns_by_default_and_fails_with_strict() {
    let p = sample();
    std::fs::remove_file(p.path("data/embeddings-potion-movies.db")).unwrap();
    let run = p.pipe(&["build", "--strict", "movies-db@potion"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("embeddings-potion-movies.db"),
        "{}",
        run.stderr
    );
    let run = p.pipe(&["build", "movies-db@potion"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: embeddings file not found, so the model's vector table is empty: potion ("
        ),
        "{}",
        run.stderr
    );
    let c = rusqlite::Connection::open(p.path("public/data/potion/movies.db")).unwrap();
    let movies: i64 = c
        .query_row("SELECT count(*) FROM movies", [], |r| r.get(0))
        .unwrap();
    assert!(movies > 300);
    // The empty vector table is there (sqlite-vec's shadow table has no rows).
    let vectors: i64 = c
        .query_row("SELECT count(*) FROM vec_movies_rowids", [], |r| r.get(0))
        .unwrap();
    assert_eq!(vectors, 0);
}

#[test]
fn source_date_epoch_is_part_of_the_fingerprint() {
    let p = sample();
    p.build(&[]);
    let out = assert_cmd::Command::cargo_bin("pipe")
        .unwrap()
        .current_dir(p.dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut built: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "built")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    built.sort();
    assert_eq!(
        built,
        ["movies-db@bge-micro", "movies-db@nomic", "movies-db@potion"]
    );
    let c = rusqlite::Connection::open(p.path("public/data/potion/movies.db")).unwrap();
    let at: String = c
        .query_row("SELECT value FROM config WHERE key = 'built_at'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(at, "2023-11-14T22:13:20.000Z");
}

/// Edits of movies.json or collections.json, each with how the JSON stage
/// is expected to get its related lists (reused when no movie's scoring
/// fields changed, scored again otherwise) and whether only a few documents
/// are rendered. Whatever the path, the files must be those a clean build
/// of the edited inputs writes.
type Edit = fn(&mut serde_json::Map<String, serde_json::Value>, &mut serde_json::Value);

#[test]
fn incremental_json_equals_a_clean_build_for_every_kind_of_edit() {
    fn first_with_metadata(m: &serde_json::Map<String, serde_json::Value>) -> String {
        m.iter()
            .find(|(k, v)| !k.starts_with('_') && v["metadata"]["Genre"].is_string())
            .map(|(k, _)| k.clone())
            .unwrap()
    }
    let cases: &[(&str, Edit, &str, bool)] = &[
        (
            "title",
            |m, _| {
                let id = first_with_metadata(m);
                m[&id]["title"] = "A New Title".into();
            },
            "reused",
            true,
        ),
        (
            "genre",
            |m, _| {
                let id = first_with_metadata(m);
                m[&id]["metadata"]["Genre"] = "Documentary, Western".into();
            },
            "scored",
            false,
        ),
        (
            "year",
            |m, _| {
                let id = first_with_metadata(m);
                m[&id]["year"] = 1999.into();
            },
            "scored",
            false,
        ),
        (
            "movie removed",
            |m, _| {
                let id = first_with_metadata(m);
                m.remove(&id);
            },
            "scored",
            false,
        ),
        (
            "collection renamed",
            |_, c| {
                let (_, first) = c
                    .as_object_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|(k, _)| !k.starts_with('_'))
                    .unwrap();
                first["name"] = "Renamed".into();
            },
            "reused",
            false,
        ),
    ];
    for (name, edit, related, few) in cases {
        let p = sample();
        p.build(&["--target", "movie-json"]);
        let mut m = movies(&p);
        let mut c: serde_json::Value =
            serde_json::from_str(&p.read("data/collections.json")).unwrap();
        edit(&mut m, &mut c);
        save_movies(&p, &m);
        p.write(
            "data/collections.json",
            &serde_json::to_string_pretty(&c).unwrap(),
        );
        let run = p.build(&["--target", "movie-json"]);
        let result = run.report()["results"][0].clone();
        assert_eq!(result["stats"]["related"], *related, "{name}: {result}");
        let rendered: usize = result["stats"]["rendered"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if *few {
            assert!(rendered <= 2, "{name}: {result}");
        }

        let clean = Project::new();
        clean.copy_dir(&p.path("data"), "data");
        clean.copy_dir(&p.path("models.d"), "models.d");
        clean.write("pipeline.toml", &p.read("pipeline.toml"));
        clean.build(&["--target", "movie-json"]);
        assert!(
            tree(&p.path("public/movies")) == tree(&clean.path("public/movies")),
            "{name}: the files differ from a clean build's"
        );
    }
}
