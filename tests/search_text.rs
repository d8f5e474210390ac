//! `pipe search --text` and `pipe search --models` through the real binary:
//! the query is embedded by the model's own provider (model2vec with a real
//! model, checked against the model2vec Python package; an Ollama-protocol
//! server on 127.0.0.1 that records what it is sent), the neighbours are
//! those of a brute force over the embeddings file, and several models'
//! rankings are fused by reciprocal rank fusion recomputed here.

mod common;
use common::embed_server::{vector, EmbedServer, Fault};
use common::{
    model2vec_dir, python, write_titled_movies, Project, Run, EMBED_PIPELINE,
    PAIRED_TITLES as TITLES,
};
use serde_json::Value;
use std::path::Path;

/// A project whose movies are [`TITLES`], with these model files.
fn project(models: &[(&str, String)]) -> Project {
    let p = Project::new();
    p.write("pipeline.toml", EMBED_PIPELINE);
    write_titled_movies(&p, TITLES);
    for (id, text) in models {
        p.write(&format!("models.d/{id}.toml"), text);
    }
    p
}

/// A model2vec model on the test model (copied into the project).
fn static_model(p: &Project, id: &str, metric: &str, extra: &str) -> String {
    if !p.path("models/static").is_dir() {
        common::copy_tree(&model2vec_dir(), &p.path("models/static"));
    }
    format!(
        "id = \"{id}\"\nname = \"Static {id}\"\ndimensions = 64\nmetric = \"{metric}\"\n\
         embeddings = \"data/embeddings-{id}-movies.db\"\n\n[embed]\nprovider = \"model2vec\"\n\
         path = \"models/static\"\ntemplate = \"{{{{ title }}}}\"\n{extra}"
    )
}

/// A model embedded through an Ollama-protocol server.
fn ollama_model(id: &str, url: &str, dims: usize, extra: &str) -> String {
    format!(
        "id = \"{id}\"\nname = \"Served {id}\"\ndimensions = {dims}\nmetric = \"l2\"\n\
         embeddings = \"data/embeddings-{id}-movies.db\"\n\n[embed]\nprovider = \"ollama\"\n\
         model = \"{id}-embed\"\nurl = \"{url}\"\ntemplate = \"{{{{ title }}}}\"\n{extra}"
    )
}

fn search(p: &Project, args: &[&str]) -> Value {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    let run = p.pipe(&all);
    assert_eq!(
        run.code, 0,
        "pipe {all:?} failed\n{}\n{}",
        run.stdout, run.stderr
    );
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The `k` nearest records of the model's embeddings file to `query`, by
/// brute force: (id, distance).
fn brute_force(
    p: &Project,
    model: &str,
    metric: &str,
    query: &[f32],
    k: usize,
) -> Vec<(String, f64)> {
    let all = common::embeddings(&p.path(&format!("data/embeddings-{model}-movies.db")));
    assert_eq!(all.len(), TITLES.len());
    let mut d: Vec<(String, f64)> = all
        .iter()
        .map(|(id, v)| (id.clone(), common::distance(metric, query, v)))
        .collect();
    d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    d.truncate(k);
    d
}

/// (movieId, distance) of a `--json` search's results.
fn results(v: &Value) -> Vec<(String, f64)> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["movieId"].as_str().unwrap().to_string(),
                r["distance"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn assert_same(got: &[(String, f64)], want: &[(String, f64)], tolerance: f64) {
    let ids = |v: &[(String, f64)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "got {got:?}\nwant {want:?}");
    for ((id, g), (_, w)) in got.iter().zip(want) {
        assert!(
            (g - w).abs() < tolerance,
            "{id}: distance {g}, brute force {w}"
        );
    }
}

/// The query through the model2vec Python package (L2-normalised or not).
fn reference_vector(model_dir: &Path, text: &str, normalize: bool) -> Vec<f32> {
    let script = "import json, sys\nfrom model2vec import StaticModel\nm = StaticModel.from_pretrained(sys.argv[1])\nprint(json.dumps(m.encode([sys.argv[2]], normalize=sys.argv[3] == 'yes').tolist()[0]))\n";
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(model_dir)
        .arg(text)
        .arg(if normalize { "yes" } else { "no" })
        .output()
        .expect("python with model2vec: run .ci/deps");
    assert!(
        out.status.success(),
        "model2vec (Python) failed: run .ci/deps\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `--text` with the model2vec provider: the query vector is the one the
/// model2vec Python package makes of the text, the neighbours are the brute
/// force's over the embeddings file (cosine and l2), `-k` and `--min-score`
/// hold, and the nearest records are the ones that mean the same.
#[test]
fn text_is_embedded_by_model2vec_and_searched() {
    let p = project(&[]);
    let cos = static_model(&p, "cos", "cosine", "");
    let euclid = static_model(&p, "euclid", "l2", "normalize = false\n");
    p.write("models.d/cos.toml", &cos);
    p.write("models.d/euclid.toml", &euclid);
    p.build(&[]);
    let text = "a kitten sleeping on a couch";
    for (model, metric, normalize) in [("cos", "cosine", true), ("euclid", "l2", false)] {
        let query = reference_vector(&p.path("models/static"), text, normalize);
        let v = search(&p, &["-m", model, "--text", text, "-k", "4"]);
        assert_eq!(v["query"]["kind"], "text");
        assert_eq!(v["query"]["text"], text);
        assert_eq!(
            v["query"]["sent"], text,
            "no query prefix: the text as given"
        );
        assert!(v["query"]["provider"]
            .as_str()
            .unwrap()
            .contains("model2vec"));
        let got = results(&v);
        assert_same(&got, &brute_force(&p, model, metric, &query, 4), 1e-4);
        let top: Vec<&str> = got[..2].iter().map(|(id, _)| id.as_str()).collect();
        let mut top_sorted = top.clone();
        top_sorted.sort();
        assert_eq!(top_sorted, ["tt0000001", "tt0000002"], "{model}: {got:?}");
    }
    // --min-score keeps similarity >= S (cosine).
    let all = results(&search(&p, &["-m", "cos", "--text", text, "-k", "10"]));
    let threshold = 1.0 - all[2].1 - 1e-9;
    let kept = results(&search(
        &p,
        &[
            "-m",
            "cos",
            "--text",
            text,
            "-k",
            "10",
            "--min-score",
            &threshold.to_string(),
        ],
    ));
    assert_eq!(kept, all[..3].to_vec());
    // The table says what was searched for.
    let run = p.pipe(&["search", "-m", "cos", "--text", text, "-k", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("2 nearest to \"a kitten sleeping on a couch\""),
        "{}",
        run.stdout
    );
    // --db finds the model in the manifest to embed the query.
    let db = p.path("public/data/cos/movies.db");
    let v = search(
        &p,
        &["--db", db.to_str().unwrap(), "--text", text, "-k", "4"],
    );
    let query = reference_vector(&p.path("models/static"), text, true);
    assert_same(
        &results(&v),
        &brute_force(&p, "cos", "cosine", &query, 4),
        1e-4,
    );
}

/// `--text` through an HTTP provider: the server is sent the query after the
/// model's `query-prefix` (never the document prefix), the query vector is
/// the server's for that text, a transient failure is retried, and a
/// permanent one is an error naming the provider.
#[test]
fn text_goes_through_an_http_provider_with_the_query_prefix() {
    const DIMS: usize = 8;
    let server = EmbedServer::start(DIMS);
    let p = project(&[(
        "served",
        ollama_model(
            "served",
            &server.url,
            DIMS,
            "prefix = \"search_document: \"\nquery-prefix = \"search_query: \"\n",
        ),
    )]);
    p.build(&[]);
    assert!(server
        .seen()
        .iter()
        .all(|t| t.starts_with("search_document: ")));
    server.reset_counts();
    let text = "a heist in Paris";
    let v = search(&p, &["-m", "served", "--text", text, "-k", "3"]);
    assert_eq!(server.seen(), ["search_query: a heist in Paris"]);
    assert_eq!(v["query"]["sent"], "search_query: a heist in Paris");
    let query = vector("search_query: a heist in Paris", DIMS);
    assert_same(
        &results(&v),
        &brute_force(&p, "served", "l2", &query, 3),
        1e-5,
    );

    // A 500 is retried; the answer is the same.
    server.fail_next(&[Fault::ServerError]);
    let again = search(&p, &["-m", "served", "--text", text, "-k", "3"]);
    assert_eq!(results(&again), results(&v));

    // A vector of the wrong length is refused, not searched.
    server.fail_next(&[Fault::WrongDimensions]);
    let run = p.pipe(&["search", "-m", "served", "--text", text]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("model served"), "{}", run.stderr);
    assert!(
        run.stderr.contains("a vector of 9 dimensions"),
        "{}",
        run.stderr
    );

    // A 400 is not retried and names the provider.
    server.reset_counts();
    server.fail_next(&[Fault::Status(400, "bad model")]);
    let run = p.pipe(&["search", "-m", "served", "--text", text]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("ollama"), "{}", run.stderr);
    assert!(run.stderr.contains("400"), "{}", run.stderr);
    assert_eq!(server.requests(), 1);
}

/// What `--text` cannot do is said, with the fix.
#[test]
fn text_errors_say_what_to_add() {
    let server = EmbedServer::start(8);
    let p = project(&[(
        "served",
        ollama_model("served", &server.url, 8, "prefix = \"search_document: \"\n"),
    )]);
    p.build(&[]);
    // A model with a document prefix and no query prefix: a note that names it.
    let run = p.pipe(&["search", "-m", "served", "--text", "heist"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("query-prefix = \"search_query: \""),
        "{}",
        run.stderr
    );
    assert_eq!(server.seen().last().unwrap(), "heist");
    // An empty query.
    let run = p.pipe(&["search", "-m", "served", "--text", "  "]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--text is empty"), "{}", run.stderr);
    // A model without [embed]: its vectors came from elsewhere.
    let embeddings = p.path("data/embeddings-served-movies.db");
    std::fs::copy(&embeddings, p.path("data/embeddings-plain-movies.db")).unwrap();
    p.write(
        "models.d/plain.toml",
        "id = \"plain\"\nname = \"Plain\"\ndimensions = 8\nembeddings = \"data/embeddings-plain-movies.db\"\n",
    );
    p.build(&[]);
    let run = p.pipe(&["search", "-m", "plain", "--text", "heist"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for want in [
        "model plain has no [embed] table in models.d/plain.toml",
        "provider = ",
        "--like",
    ] {
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
    }
    // --db of a model the manifest does not declare.
    let db = p.path("public/data/plain/movies.db");
    std::fs::remove_file(p.path("models.d/plain.toml")).unwrap();
    let run = p.pipe(&["search", "--db", db.to_str().unwrap(), "--text", "heist"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("declares no model plain"),
        "{}",
        run.stderr
    );
    // The same model twice.
    let run = p.pipe(&["search", "--models", "served,served", "--text", "heist"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("names served twice"), "{}", run.stderr);
}

/// The fused ranking, recomputed from each model's own results: Σ 1/(60 +
/// rank), higher first, ties by id.
fn expected_fusion(per_model: &[Vec<String>], k: usize) -> Vec<(String, f64)> {
    let mut ids: Vec<String> = per_model.iter().flatten().cloned().collect();
    ids.sort();
    ids.dedup();
    let mut scored: Vec<(String, f64)> = ids
        .into_iter()
        .map(|id| {
            let mut terms: Vec<f64> = per_model
                .iter()
                .filter_map(|list| list.iter().position(|x| *x == id))
                .map(|i| 1.0 / (60.0 + (i + 1) as f64))
                .collect();
            terms.sort_by(|a, b| a.total_cmp(b));
            (id, terms.iter().sum())
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// `--models a,b`: each model's part is its own `--model` search, the fused
/// order is reciprocal rank fusion of them, each result carries its rank in
/// every model (null where a model does not rank it), for --text and --like,
/// and the table shows a rank column per model.
#[test]
fn models_are_searched_and_fused_by_reciprocal_rank() {
    const DIMS: usize = 8;
    let server = EmbedServer::start(DIMS);
    let p = project(&[("served", ollama_model("served", &server.url, DIMS, ""))]);
    let stat = static_model(&p, "stat", "cosine", "");
    p.write("models.d/stat.toml", &stat);
    p.build(&[]);
    let k = 4;
    let ks = k.to_string();
    for query in [
        vec!["--text", "thieves rob a bank in Paris"],
        vec!["--like", "tt0000009"],
    ] {
        let mut args = vec!["--models", "stat,served", "-k", &ks];
        args.extend(&query);
        let fused = search(&p, &args);
        assert_eq!(fused["fusion"], "reciprocal-rank");
        assert_eq!(fused["rrfK"], 60.0);
        let mut per_model = Vec::new();
        for (i, model) in ["stat", "served"].iter().enumerate() {
            let mut single = vec!["-m", *model, "-k", &ks];
            single.extend(&query);
            let alone = search(&p, &single);
            let part = &fused["models"][i];
            assert_eq!(part["model"], *model);
            assert_eq!(results(part), results(&alone), "{model}");
            per_model.push(
                results(&alone)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect::<Vec<_>>(),
            );
        }
        let want = expected_fusion(&per_model, k);
        let got = fused["results"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, (id, score)) in got.iter().zip(&want) {
            assert_eq!(g["movieId"], id.as_str(), "{fused:#}");
            assert!((g["score"].as_f64().unwrap() - score).abs() < 1e-12);
            for (m, list) in ["stat", "served"].iter().zip(&per_model) {
                let rank = list.iter().position(|x| x == id).map(|i| i + 1);
                assert_eq!(
                    g["ranks"][*m].as_u64().map(|r| r as usize),
                    rank,
                    "{id} in {m}"
                );
            }
        }
        if query[0] == "--like" {
            assert!(got.iter().all(|g| g["movieId"] != "tt0000009"));
        }
    }
    let run: Run = p.pipe(&[
        "search",
        "--models",
        "stat,served",
        "--text",
        "a heist",
        "-k",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let header = run
        .stdout
        .lines()
        .find(|l| l.contains("RRF"))
        .unwrap_or_default();
    assert!(
        header.contains("stat") && header.contains("served"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("reciprocal rank fusion"),
        "{}",
        run.stdout
    );
}
