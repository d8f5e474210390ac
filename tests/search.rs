//! `pipe search` and `pipe compare` on the bundled sample, through the real
//! binary, checked against a brute-force search over the embeddings input
//! that shares nothing with pipe or sqlite-vec.

mod common;
use common::{json, Project};
use std::collections::HashSet;
use std::path::Path;

/// A copy of this repository's project (pipeline.toml, models.d, data/),
/// with `potion` switched to `metric` when given.
fn sample(potion_metric: Option<&str>) -> Project {
    let p = common::sample_project();
    if let Some(metric) = potion_metric {
        let text = p
            .read("models.d/potion.toml")
            .replace("metric = \"l2\"", &format!("metric = \"{metric}\""));
        assert!(text.contains(metric));
        p.write("models.d/potion.toml", &text);
    }
    p
}

/// Ids of the built database's `movies` table (plain SQL, no sqlite-vec).
fn movie_ids(db: &Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT movieId FROM movies").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    ids
}

/// The model's vectors from its embeddings input, for movies in the database.
fn vectors(p: &Project, model: &str) -> Vec<(String, Vec<f32>)> {
    let kept = movie_ids(&p.path(&format!("public/data/{model}/movies.db")));
    common::embeddings(&p.path(&format!("data/embeddings-{model}-movies.db")))
        .into_iter()
        .filter(|(id, _)| kept.contains(id))
        .collect()
}

/// The k nearest to `query_id` by brute force, leaving it out: (id, distance).
fn brute_force(
    all: &[(String, Vec<f32>)],
    query_id: &str,
    metric: &str,
    k: usize,
) -> Vec<(String, f64)> {
    let query = &all.iter().find(|(id, _)| id == query_id).unwrap().1;
    let mut d: Vec<(String, f64)> = all
        .iter()
        .filter(|(id, _)| id != query_id)
        .map(|(id, v)| (id.clone(), common::distance(metric, query, v)))
        .collect();
    d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    d.truncate(k);
    d
}

/// Results of a `--json` search: (movieId, distance, score).
fn results(v: &serde_json::Value) -> Vec<(String, f64, f64)> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["movieId"].as_str().unwrap().to_string(),
                r["distance"].as_f64().unwrap(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// `--like` gives exactly the brute-force neighbours, in order, for both
/// kinds of score; `--min-score` filters in the metric's direction.
fn like_matches_brute_force(metric: &str) {
    let p = sample(Some(metric));
    p.build(&["--target", "movies-db@potion"]);
    let all = vectors(&p, "potion");
    for query in [&all[3].0, &all[42].0, &all[all.len() - 1].0] {
        let out = json(&p.pipe(&[
            "search", "--model", "potion", "--like", query, "-k", "10", "--json",
        ]));
        assert_eq!(out["metric"], metric);
        assert_eq!(out["query"]["movieId"], query.as_str());
        let found = results(&out);
        let expected = brute_force(&all, query, metric, 10);
        let found_ids: Vec<&str> = found.iter().map(|r| r.0.as_str()).collect();
        let expected_ids: Vec<&str> = expected.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(found_ids, expected_ids, "neighbours of {query}");
        assert!(
            !found_ids.contains(&query.as_str()),
            "the query is excluded"
        );
        for ((_, d, score), (_, want)) in found.iter().zip(&expected) {
            assert!((d - want).abs() < 1e-4, "{d} vs {want}");
            let want_score = if metric == "cosine" { 1.0 - d } else { *d };
            assert!((score - want_score).abs() < 1e-9);
        }

        // --min-score at the 5th score keeps the first five (scores are
        // distinct for random vectors).
        let threshold = found[4].2;
        let filtered = results(&json(&p.pipe(&[
            "search",
            "--model",
            "potion",
            "--like",
            query,
            "--min-score",
            &threshold.to_string(),
            "--json",
        ])));
        assert_eq!(filtered, found[..5].to_vec(), "--min-score {threshold}");
    }

    // The human table says what the score is.
    let table = p.pipe(&["search", "--model", "potion", "--like", &all[3].0]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let word = if metric == "cosine" {
        "similarity"
    } else {
        "distance"
    };
    assert!(table.stdout.contains(word), "{}", table.stdout);
    assert!(
        table.stdout.contains("TITLE") && table.stdout.lines().count() >= 14,
        "{}",
        table.stdout
    );
}

#[test]
fn like_returns_the_brute_force_neighbours_for_l2() {
    like_matches_brute_force("l2");
}

#[test]
fn like_returns_the_brute_force_neighbours_for_cosine() {
    like_matches_brute_force("cosine");
}

#[test]
fn errors_name_the_culprit() {
    let p = sample(None);

    // Not built yet: say how to build it.
    let run = p.pipe(&["search", "--model", "potion", "--like", "tt0001083"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("run `pipe build --target movies-db@potion`"),
        "{}",
        run.stderr
    );

    p.build(&["--target", "movies-db@potion"]);
    let all = vectors(&p, "potion");
    let id = all[0].0.clone();

    // A vector of the wrong length, as JSON and as raw float32.
    p.write("short.json", "[0.1, 0.2, 0.3]");
    let run = p.pipe(&["search", "--model", "potion", "--vector", "short.json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("found 3 numbers, expected 64 for model potion"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("short.json"), "{}", run.stderr);
    let raw: Vec<u8> = [0.5f32; 65].iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(p.path("long.f32"), raw).unwrap();
    let run = p.pipe(&["search", "--model", "potion", "--vector", "long.f32"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("found 65"), "{}", run.stderr);

    // A right-length raw vector: the movie's own vector finds it first.
    let raw: Vec<u8> = all[0].1.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(p.path("own.f32"), raw).unwrap();
    let out = json(&p.pipe(&[
        "search", "--model", "potion", "--vector", "own.f32", "-k", "3", "--json",
    ]));
    let found = results(&out);
    assert_eq!(found[0].0, id);
    assert!(found[0].1.abs() < 1e-6);
    assert_eq!(found.len(), 3);

    // An unknown movie id, close to a real one.
    let typo = format!("{id}x");
    let run = p.pipe(&["search", "--model", "potion", "--like", &typo]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(&format!("unknown movie id `{typo}`")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&id), "suggests {id}: {}", run.stderr);

    // A movie of the database without a vector.
    let with: HashSet<&str> = all.iter().map(|(i, _)| i.as_str()).collect();
    let without = movie_ids(&p.path("public/data/potion/movies.db"))
        .into_iter()
        .find(|i| !with.contains(i.as_str()))
        .expect("the sample has movies without a vector");
    let run = p.pipe(&["search", "--model", "potion", "--like", &without]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(&without) && run.stderr.contains("has no vector"),
        "{}",
        run.stderr
    );

    // An unknown model.
    let run = p.pipe(&["search", "--model", "potio", "--like", &id]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean `potion`"),
        "{}",
        run.stderr
    );
}

#[test]
fn db_searches_any_database_pipe_built_without_a_manifest() {
    let p = sample(None);
    p.build(&["--target", "movies-db@potion"]);
    let all = vectors(&p, "potion");
    let elsewhere = tempfile::tempdir().unwrap();
    let db = elsewhere.path().join("copy.db");
    std::fs::copy(p.path("public/data/potion/movies.db"), &db).unwrap();
    let db = db.to_string_lossy().into_owned();
    let run = assert_cmd::Command::cargo_bin("pipe")
        .unwrap()
        .current_dir(elsewhere.path())
        .args(["search", "--db", &db, "--like", &all[5].0, "--json"])
        .output()
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&run.stderr));
    });
    assert_eq!(out["model"], "potion");
    assert_eq!(out["dimensions"], 64);
    let expected: Vec<String> = brute_force(&all, &all[5].0, "l2", 10)
        .into_iter()
        .map(|r| r.0)
        .collect();
    let found: Vec<String> = results(&out).into_iter().map(|r| r.0).collect();
    assert_eq!(found, expected);

    let run = p.pipe(&["search", "--db", &db, "--model", "nomic", "--like", "x"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("holds model potion's vectors"),
        "{}",
        run.stderr
    );
}

#[test]
fn compare_reports_overlap_sizes_and_latency() {
    let p = sample(None);
    p.build(&["--skip-json"]);
    let out = json(&p.pipe(&[
        "compare", "-k", "5", "--sample", "30", "--seed", "7", "--json",
    ]));
    let models: Vec<&str> = out["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["bge-micro", "nomic", "potion"]);
    assert_eq!(out["sample"].as_array().unwrap().len(), 30);
    for m in out["models"].as_array().unwrap() {
        assert!(m["dbBytes"].as_u64().unwrap() > 0);
        let vectors = m["vectors"].as_u64().unwrap();
        assert!(vectors > 0);
        assert_eq!(
            m["vectorBytes"].as_u64().unwrap(),
            vectors * m["dimensions"].as_u64().unwrap() * 4
        );
        let p50 = m["latencyMedianMs"].as_f64().unwrap();
        let p95 = m["latencyP95Ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p95 >= p50, "{m}");
    }
    let matrix = out["overlap"].as_array().unwrap();
    assert_eq!(matrix.len(), 3);
    for (i, row) in matrix.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 3);
        for (j, v) in row.iter().enumerate() {
            let v = v.as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "overlap[{i}][{j}] = {v}");
            assert_eq!(v, matrix[j][i].as_f64().unwrap(), "symmetric");
            if i == j {
                assert_eq!(v, 1.0, "a model agrees with itself");
            }
        }
    }

    // Same seed, same sample; the table names every model.
    let again = json(&p.pipe(&[
        "compare", "-k", "5", "--sample", "30", "--seed", "7", "--json",
    ]));
    assert_eq!(again["sample"], out["sample"]);
    assert_eq!(again["overlap"], out["overlap"]);
    let table = p.pipe(&["compare", "--models", "potion,nomic", "--sample", "10"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("overlap@10") && table.stdout.contains("potion"),
        "{}",
        table.stdout
    );

    let run = p.pipe(&["compare", "--models", "potion,nomc"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean `nomic`"),
        "{}",
        run.stderr
    );
}

#[test]
fn like_returns_the_brute_force_neighbours_for_l1() {
    like_matches_brute_force("l1");
}

#[test]
fn a_stale_database_is_searched_as_built_with_a_note() {
    let p = sample(None);
    p.build(&["--target", "movies-db@potion"]);
    let all = vectors(&p, "potion");
    let text = p
        .read("models.d/potion.toml")
        .replace("metric = \"l2\"", "metric = \"cosine\"");
    p.write("models.d/potion.toml", &text);
    let run = p.pipe(&["search", "--model", "potion", "--like", &all[1].0, "--json"]);
    let out = json(&run);
    assert_eq!(out["metric"], "l2", "the database's metric, not models.d's");
    assert!(
        run.stderr.contains("built with 64 dims, metric l2")
            && run.stderr.contains("now declares 64 dims, metric cosine"),
        "{}",
        run.stderr
    );
}
