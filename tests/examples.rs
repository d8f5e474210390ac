//! The projects of `examples/` build as they are, through the real binary,
//! and are searched by text: examples/emoji (1914 emoji records of the npm
//! package unicode-emoji-json, two model2vec models on the test model
//! `.ci/deps` unpacks, a database per model and one with a table per model).

mod common;
use common::{json, model2vec_dir, pipe_in, Project, REPO};
use serde_json::Value;
use std::path::Path;

/// The records of examples/emoji.
const RECORDS: usize = 1914;

/// A copy of examples/emoji as committed (its manifest, models.d and
/// data), with the test model where .ci/deps links it.
fn emoji() -> Project {
    let example = Path::new(REPO).join("examples/emoji");
    let p = Project::new();
    std::fs::copy(example.join("pipeline.toml"), p.path("pipeline.toml")).unwrap();
    p.copy_dir(&example.join("models.d"), "models.d");
    for f in ["data-by-emoji.json", "LICENSE", "NOTICE"] {
        p.write(&format!("data/{f}"), "");
        std::fs::copy(example.join("data").join(f), p.path(&format!("data/{f}"))).unwrap();
    }
    p.copy_dir(&model2vec_dir(), "models/static");
    p
}

fn count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{}: {sql}: {e}", db.display()))
}

fn search(p: &Project, args: &[&str]) -> Value {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    let run = p.pipe(&all);
    assert_eq!(run.code, 0, "pipe {all:?}\n{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// examples/emoji builds with only its manifest and models.d: every record
/// embedded by both models, a database per model and one with a table per
/// model, a JSON file per record; `--text` finds the emoji a text
/// describes in both layouts and fused over both models; a second build
/// does nothing, and an edited record is the only text embedded again.
#[test]
fn the_emoji_example_builds_and_is_searched_by_text() {
    let p = emoji();
    let run = p.build(&[]);
    let built = run.built();
    for target in [
        "emoji-all",
        "emoji-all-embeddings@static",
        "emoji-all-embeddings@static-group",
        "emoji-db-json",
        "emoji-db@static",
        "emoji-db@static-group",
    ] {
        assert!(
            built.iter().any(|b| b == target),
            "{target} not in {built:?}"
        );
    }
    // The two targets embed the same texts: one embeddings target per
    // model serves both (the first by name), so each text is sent once.
    assert!(
        !built.iter().any(|b| b.starts_with("emoji-db-embeddings@")),
        "{built:?}"
    );
    // Both layouts.
    for model in ["static", "static-group"] {
        let db = p.path(&format!("public/{model}/emoji.db"));
        assert_eq!(count(&db, "SELECT count(*) FROM records"), RECORDS as i64);
        // vec0's own table of ids (plain SQLite: no sqlite-vec loaded here).
        assert_eq!(
            count(&db, "SELECT count(*) FROM vec_records_rowids"),
            RECORDS as i64
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM record_models"),
            RECORDS as i64
        );
    }
    let single = p.path("public/emoji.db");
    assert_eq!(
        count(&single, "SELECT count(*) FROM records"),
        RECORDS as i64
    );
    assert_eq!(
        count(&single, "SELECT count(*) FROM record_models"),
        2 * RECORDS as i64
    );
    assert_eq!(
        count(
            &single,
            "SELECT count(*) FROM models WHERE model = 'static' AND is_primary = 1"
        ),
        1
    );
    let json = std::fs::read_dir(p.path("public/emoji")).unwrap().count();
    assert_eq!(json, RECORDS);
    let record: Value = serde_json::from_str(&p.read("public/emoji/black_cat.json")).unwrap();
    assert_eq!(record["name"], "black cat", "{record}");

    // Search by text: each model, each layout, and fused.
    let v = search(&p, &["-m", "static", "--text", "a black cat", "-k", "5"]);
    assert_eq!(v["query"]["kind"], "text");
    assert!(ids(&v).contains(&"black_cat".to_string()), "{:?}", ids(&v));
    let v = search(
        &p,
        &[
            "--db",
            "public/emoji.db",
            "-m",
            "static-group",
            "--text",
            "a black cat",
            "-k",
            "5",
        ],
    );
    assert_eq!(v["model"], "static-group");
    assert!(ids(&v).contains(&"black_cat".to_string()), "{:?}", ids(&v));
    let fused = search(
        &p,
        &[
            "--models",
            "static,static-group",
            "--text",
            "rain and clouds",
            "-k",
            "5",
        ],
    );
    let results = fused["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(
        results
            .iter()
            .any(|r| r["id"].as_str().unwrap().contains("rain")),
        "{fused:#}"
    );
    for r in results {
        let ranked = ["static", "static-group"]
            .iter()
            .filter(|m| r["ranks"][**m].is_u64())
            .count();
        assert!(ranked >= 1, "{r}");
    }

    // A second build does nothing; an edit re-embeds one text per model.
    p.settle();
    let run = p.build(&[]);
    assert!(run.built().is_empty(), "{:?}", run.built());
    let path = p.path("data/data-by-emoji.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"name\": \"black cat\"", "\"name\": \"black kitten\"", 1);
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
    let run = p.build(&[]);
    let report = run.report();
    for r in report["results"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        if name.contains("-embeddings@") {
            assert_eq!(r["status"], "built", "{name}");
            assert_eq!(r["stats"]["texts_sent"], "1", "{name}: {r}");
        }
    }
    let record: Value = serde_json::from_str(&p.read("public/emoji/black_cat.json")).unwrap();
    assert_eq!(record["name"], "black kitten");
}

/// `pipe init --records FILE --model2vec DIR` writes a project that builds
/// at once and is searched by text with its default model: the id field,
/// columns with their types, full-text fields and the text proposed from
/// the first record; the records file and the model copied in.
#[test]
fn init_records_makes_a_project_that_builds_and_is_searched() {
    let outside = Project::new();
    outside.write(
        "products.jsonl",
        "{\"sku\": \"p1\", \"title\": \"warm wool winter jacket\", \"category\": \"clothing\", \"price\": 89.5, \"stock\": 3}\n\
         {\"sku\": \"p2\", \"title\": \"stainless steel kettle\", \"category\": \"kitchen\", \"price\": 25, \"stock\": 10}\n\
         {\"sku\": \"p3\", \"title\": \"leather hiking boots\", \"category\": \"outdoor\", \"price\": 120.0, \"stock\": 0}\n",
    );
    let p = Project::new();
    let records = outside.path("products.jsonl");
    let model = model2vec_dir();
    let run = p.pipe(&[
        "init",
        "shop",
        "--records",
        records.to_str().unwrap(),
        "--model2vec",
        model.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let toml = p.read("shop/pipeline.toml");
    for want in [
        "kind = \"records-db\"",
        "id = \"sku\"",
        "columns = { title = \"text?\", category = \"text?\", price = \"real?\", stock = \"integer?\" }",
        "fts = [\"title\", \"category\"]",
        "text = \"{{ title }}. {{ category }}\"",
    ] {
        assert!(toml.contains(want), "{want}\n{toml}");
    }
    let model_file = p.read("shop/models.d/tokenlearn-static-model.toml");
    assert!(model_file.contains("dimensions = 64"), "{model_file}");
    assert!(p.path("shop/data/products.jsonl").is_file());
    // It writes nothing over an existing project.
    let again = p.pipe(&["init", "shop", "--records", records.to_str().unwrap()]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already has"), "{}", again.stderr);

    // Build and search in the new project's directory.
    let shop = p.path("shop");
    let build = pipe_in(&shop, &["build"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    let out = pipe_in(
        &shop,
        &[
            "search",
            "--text",
            "a coat for the cold",
            "-k",
            "1",
            "--json",
        ],
    );
    let v = json(&out);
    assert_eq!(ids(&v), ["p1"], "{v:#}");
}
