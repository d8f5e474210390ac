//! The `embeddings` stage end to end, through the real binary: the command
//! provider with the repository's own scripts/embed-bow.py (which logs every
//! text it is sent), and the model2vec provider with a real model
//! (tokenlearn-static-model, unpacked by `.ci/deps`), checked against the
//! `model2vec` Python package.

mod common;
use common::{
    embeddings, model2vec_dir, python, stock_sqlite, write_titled_movies, Project, Run,
    EMBED_PIPELINE, PAIRED_TITLES, REPO,
};
use serde_json::Value;
use std::path::Path;

fn bow_model(id: &str, dims: u32, extra: &str) -> String {
    format!(
        "id = \"{id}\"\nname = \"Bag of words {id}\"\ndimensions = {dims}\nembeddings = \"data/embeddings-{id}-movies.db\"\n\n[embed]\nprovider = \"command\"\ncommand = [\"{py}\", \"scripts/embed-bow.py\", \"--dimensions\", \"{dims}\"]\nbatch = 20\n{extra}",
        py = python().display()
    )
}

/// The sample data with one command-provider model (and none other).
fn project(models: &[(&str, String)]) -> Project {
    let p = Project::new();
    p.write("pipeline.toml", EMBED_PIPELINE);
    for f in ["movies.json", "collections.json"] {
        std::fs::create_dir_all(p.path("data")).unwrap();
        std::fs::copy(Path::new(REPO).join("data").join(f), p.path("data").join(f)).unwrap();
    }
    std::fs::create_dir_all(p.path("scripts")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("scripts/embed-bow.py"),
        p.path("scripts/embed-bow.py"),
    )
    .unwrap();
    for (id, text) in models {
        p.write(&format!("models.d/{id}.toml"), text);
    }
    p
}

/// `pipe ARGS` with the script's log (and other EMBED_BOW_* settings) set.
fn pipe_env(p: &Project, args: &[&str], env: &[(&str, String)]) -> Run {
    let log = p.path("sent.log").into_os_string();
    let mut all = vec![("EMBED_BOW_LOG", log)];
    all.extend(env.iter().map(|(k, v)| (*k, v.into())));
    common::pipe_with(p.dir.path(), args, &all)
}

fn build(p: &Project) -> Run {
    let run = pipe_env(p, &["build", "--json"], &[]);
    assert_eq!(run.code, 0, "build failed\n{}\n{}", run.stdout, run.stderr);
    run
}

/// The stats of one target in a `--json` build report (None: not built).
fn stats(run: &Run, name: &str) -> Option<Value> {
    run.report()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name && r["status"] == "built")
        .map(|r| r["stats"].clone())
}

fn stat(run: &Run, name: &str, key: &str) -> usize {
    let s = stats(run, name).unwrap_or_else(|| panic!("{name} was not built: {}", run.stdout));
    s[key].as_str().unwrap().parse().unwrap()
}

/// Lines the script has logged: one per text it was sent.
fn sent(p: &Project) -> usize {
    std::fs::read_to_string(p.path("sent.log"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn edit_movies(p: &Project, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = p.path("data/movies.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn movie_ids(p: &Project) -> Vec<String> {
    let v: Value = serde_json::from_str(&p.read("data/movies.json")).unwrap();
    v.as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with('_'))
        .cloned()
        .collect()
}

#[test]
fn command_provider_embeds_only_what_changed() {
    let p = project(&[("bow", bow_model("bow", 64, ""))]);
    let ids = movie_ids(&p);
    let n = ids.len();

    // First build: every movie of movies.json (the dropped ones too).
    let first = build(&p);
    assert_eq!(stat(&first, "embeddings@bow", "texts_sent"), n);
    assert_eq!(sent(&p), n);
    let rows = embeddings(&p.path("data/embeddings-bow-movies.db"));
    assert_eq!(rows.len(), n);
    assert!(rows.iter().all(|(_, v)| v.len() == 64));
    let schema = stock_sqlite(
        &p.path("data/embeddings-bow-movies.db"),
        "SELECT sql FROM sqlite_master ORDER BY name; SELECT key || '=' || value FROM config ORDER BY key;",
    );
    for want in [
        "CREATE TABLE embeddings (movie_id TEXT PRIMARY KEY, embedding BLOB NOT NULL, created_at TEXT NOT NULL)",
        "CREATE INDEX idx_embeddings_created_at ON embeddings(created_at)",
        "embedding_model_id=bow",
        "embedding_model_name=Bag of words bow",
        "embedding_model_dimensions=64",
        "embedding_provider=command",
    ] {
        assert!(schema.contains(want), "{want} missing from\n{schema}");
    }

    // Nothing changed: nothing sent, nothing rebuilt.
    let again = build(&p);
    assert!(stats(&again, "embeddings@bow").is_none());
    assert_eq!(sent(&p), n);

    // One plot edited: exactly one text; explain says so first.
    let edited = ids[3].clone();
    edit_movies(&p, |m| {
        let movie = m.get_mut(&edited).unwrap();
        movie["metadata"] = serde_json::json!({"Plot": "A lighthouse keeper befriends a whale."});
    });
    let explain = pipe_env(&p, &["explain", "embeddings@bow"], &[]);
    assert!(
        explain
            .stdout
            .contains("0 new, 1 changed, 0 removed; 1 texts to embed"),
        "{}\n{}",
        explain.stdout,
        explain.stderr
    );
    let dry = pipe_env(&p, &["build", "-n"], &[]);
    assert!(
        format!("{}{}", dry.stdout, dry.stderr).contains("1 texts to embed"),
        "{}{}",
        dry.stdout,
        dry.stderr
    );
    let status = pipe_env(&p, &["status"], &[]);
    assert!(
        status.stdout.contains("1 texts to embed"),
        "{}",
        status.stdout
    );
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 1);
    assert_eq!(stat(&run, "embeddings@bow", "changed"), 1);
    assert_eq!(stat(&run, "embeddings@bow", "reused"), n - 1);
    assert_eq!(sent(&p), n + 1);

    // A movie added: one text.
    edit_movies(&p, |m| {
        let mut copy = m[&ids[0]].clone();
        copy["movieId"] = "tt9999999".into();
        copy["title"] = "A Completely New Film".into();
        m.insert("tt9999999".into(), copy);
    });
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 1);
    assert_eq!(stat(&run, "embeddings@bow", "new"), 1);
    assert_eq!(sent(&p), n + 2);

    // A movie removed: nothing sent, its vector gone.
    let removed = ids[5].clone();
    edit_movies(&p, |m| {
        m.remove(&removed);
    });
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 0);
    assert_eq!(stat(&run, "embeddings@bow", "removed"), 1);
    assert_eq!(sent(&p), n + 2);
    let rows = embeddings(&p.path("data/embeddings-bow-movies.db"));
    assert_eq!(rows.len(), n);
    assert!(!rows.iter().any(|(id, _)| *id == removed));
    assert!(rows.iter().any(|(id, _)| id == "tt9999999"));

    // The database built from the generated embeddings opens in the stock
    // sqlite3 shell with sqlite-vec, and a movie is its own nearest neighbour.
    let db = p.path("public/data/bow/movies.db");
    let probe = &ids[0];
    let out = stock_sqlite(
        &db,
        &format!(
            "SELECT movieId FROM vec_movies WHERE embedding MATCH \
             (SELECT embedding FROM vec_movies WHERE movieId = '{probe}') AND k = 3 ORDER BY distance;"
        ),
    );
    assert_eq!(out.lines().next(), Some(probe.as_str()), "{out}");
}

#[test]
fn builds_are_reproducible() {
    let a = project(&[("bow", bow_model("bow", 16, ""))]);
    let b = project(&[("bow", bow_model("bow", 16, ""))]);
    build(&a);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build(&b);
    let read = |p: &Project| std::fs::read(p.path("data/embeddings-bow-movies.db")).unwrap();
    assert_eq!(read(&a), read(&b));
    // Rebuilt from the cache alone (output deleted): the same bytes again.
    let before = read(&a);
    std::fs::remove_file(a.path("data/embeddings-bow-movies.db")).unwrap();
    let run = build(&a);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 0);
    assert_eq!(read(&a), before);
}

#[test]
fn an_option_change_reembeds_that_model_only() {
    let p = project(&[
        ("bow", bow_model("bow", 32, "")),
        ("other", bow_model("other", 16, "")),
    ]);
    let n = movie_ids(&p).len();
    build(&p);
    p.write(
        "models.d/other.toml",
        &bow_model("other", 16, "prefix = \"search_document: \"\n"),
    );
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@other", "texts_sent"), n);
    assert!(stats(&run, "embeddings@bow").is_none(), "{}", run.stdout);
    let log = p.read("sent.log");
    assert!(log.contains("'search_document: # "), "the prefix is sent");
}

#[test]
fn a_failing_provider_keeps_what_it_returned() {
    let p = project(&[("bow", bow_model("bow", 16, ""))]);
    let n = movie_ids(&p).len();
    let run = pipe_env(
        &p,
        &["build", "embeddings@bow"],
        &[("EMBED_BOW_EXIT_AFTER", "200".into())],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("200 of") && run.stderr.contains("kept in the cache"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("exiting after 200 texts"),
        "{}",
        run.stderr
    );
    assert!(!p.path("data/embeddings-bow-movies.db").exists());
    let before = sent(&p);
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), n - 200);
    assert_eq!(sent(&p) - before, n - 200);
}

#[test]
fn a_killed_build_resumes_with_the_rest() {
    let p = project(&[("bow", bow_model("bow", 16, ""))]);
    let n = movie_ids(&p).len();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipe"))
        .current_dir(p.dir.path())
        .args(["build", "embeddings@bow"])
        .env("EMBED_BOW_LOG", p.path("sent.log"))
        .env("EMBED_BOW_STALL_AFTER", "200")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sent(&p) < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the script never got 200 texts"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The 10th batch of 20 is answered; let pipe store it, then kill -9.
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!p.path("data/embeddings-bow-movies.db").exists());
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), n - 200);
    assert_eq!(sent(&p), n);
    assert_eq!(
        embeddings(&p.path("data/embeddings-bow-movies.db")).len(),
        n
    );
}

#[test]
fn a_damaged_cache_entry_is_embedded_again() {
    let p = project(&[("bow", bow_model("bow", 16, ""))]);
    let n = movie_ids(&p).len();
    build(&p);
    let good = std::fs::read(p.path("data/embeddings-bow-movies.db")).unwrap();
    let cache = p.path(".pipe/cache/embeddings/bow.vectors");
    let mut bytes = std::fs::read(&cache).unwrap();
    let entry = 32 + 16 * 4 + 16;
    bytes[16 + 7 * entry + 40] ^= 0x55;
    std::fs::write(&cache, &bytes).unwrap();
    std::fs::remove_file(p.path("data/embeddings-bow-movies.db")).unwrap();
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 1);
    assert_eq!(stat(&run, "embeddings@bow", "reused"), n - 1);
    assert!(run.stdout.contains("damaged"), "{}", run.stdout);
    // Embedded again, the vector is the one it was: same bytes as before.
    assert_eq!(
        std::fs::read(p.path("data/embeddings-bow-movies.db")).unwrap(),
        good
    );
}

/// Eight of the paired titles.
const TITLES: &[(&str, &str)] = PAIRED_TITLES.split_at(8).0;

#[test]
fn model2vec_vectors_match_the_reference_implementation() {
    let dir = model2vec_dir();
    let p = Project::new();
    p.write("pipeline.toml", EMBED_PIPELINE);
    write_titled_movies(&p, TITLES);
    common::copy_tree(&dir, &p.path("models/static"));
    p.write(
        "models.d/static.toml",
        "id = \"static\"\nname = \"Static\"\ndimensions = 64\nembeddings = \"data/embeddings-static-movies.db\"\n\n[embed]\nprovider = \"model2vec\"\npath = \"models/static\"\ntemplate = \"{{ title }}\"\n",
    );
    let run = p.build(&[]);
    assert_eq!(stat(&run, "embeddings@static", "texts_sent"), TITLES.len());
    let got = embeddings(&p.path("data/embeddings-static-movies.db"));

    // The same texts through the model2vec Python package.
    let script = "import json, sys\nfrom model2vec import StaticModel\nm = StaticModel.from_pretrained(sys.argv[1])\ntexts = json.loads(sys.stdin.read())\nprint(json.dumps(m.encode(texts).tolist()))\n";
    let texts: Vec<&str> = TITLES.iter().map(|(_, t)| *t).collect();
    let mut child = std::process::Command::new(python())
        .args(["-c", script])
        .arg(p.path("models/static"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python with model2vec: run .ci/deps");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&texts).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "model2vec (Python) failed: run .ci/deps"
    );
    let want: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    for ((id, v), w) in got.iter().zip(&want) {
        assert_eq!(v.len(), 64);
        let diff = v
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{id}: differs from model2vec by {diff}");
    }

    // Related texts are each other's nearest neighbours (cosine).
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (n(a) * n(b))
    };
    for (i, (id, v)) in got.iter().enumerate() {
        let nearest = (0..got.len())
            .filter(|&j| j != i)
            .max_by(|&a, &b| cos(v, &got[a].1).total_cmp(&cos(v, &got[b].1)))
            .unwrap();
        assert_eq!(
            nearest,
            i ^ 1,
            "{id}'s nearest neighbour is {}",
            got[nearest].0
        );
    }
}

/// The admin page's model choice runs the model's embeddings, then its
/// database, with the embedding progress (texts/s, ETA) in the event stream.
#[test]
fn the_admin_page_runs_embeddings_then_the_database() {
    let p = project(&[("bow", bow_model("bow", 16, ""))]);
    let s = common::server::Server::start(p.dir.path(), &[]);
    let models = s.get("/api/models").json();
    assert_eq!(models["models"][0]["provider"], "command", "{models}");
    let status = s.get("/api/status").json();
    assert!(
        status.to_string().contains("embeddings@bow"),
        "the page lists the embeddings target: {status}"
    );
    let mut events = s.events();
    let r = s.post(
        "/api/build",
        r#"{"embeddingModel": "bow", "skipJsonGeneration": true}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let seq = events.until_done();
    let done = seq.last().expect("completed");
    assert_eq!(done["status"], "completed", "{seq:#?}");
    let results: Vec<(String, String)> = done["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("embeddings@bow".to_string(), "built".to_string()),
            ("movies-db@bow".to_string(), "built".to_string())
        ]
    );
    assert!(
        seq.iter().any(|e| e["target"] == "embeddings@bow"
            && e["message"].as_str().unwrap_or("").contains("texts/s")),
        "no embedding progress in {seq:#?}"
    );
    assert!(p.path("public/data/bow/movies.db").is_file());
}

/// A `--json` stat of a target, as a string.
fn stat_str(run: &Run, name: &str, key: &str) -> String {
    let s = stats(run, name).unwrap_or_else(|| panic!("{name} was not built: {}", run.stdout));
    s[key].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_edit_makes_the_catalog_while_the_embeddings_are_made() {
    let models = || [("bow", bow_model("bow", 16, ""))];
    let p = project(&models());
    edit_movies(&p, |_| {});
    let build_jobs = |p: &Project, jobs: &str| {
        let run = pipe_env(p, &["build", "--json", "--jobs", jobs], &[]);
        assert_eq!(run.code, 0, "build failed\n{}\n{}", run.stdout, run.stderr);
        run
    };
    let first = build_jobs(&p, "2");
    // A first build has no head start: its catalog is built by the target.
    assert_eq!(stat_str(&first, "movies-db@bow", "catalog_part"), "built");
    let ids = movie_ids(&p);
    let db = "public/data/bow/movies.db";

    // With a spare job, movies-db makes its catalog part while the
    // embeddings target embeds the edited plot, and its vector part as
    // soon as the embeddings file is there.
    let id = ids[4].clone();
    edit_movies(&p, |m| {
        m.get_mut(&id).unwrap()["metadata"] =
            serde_json::json!({ "Plot": "A clockmaker's last commission." });
    });
    let run = build_jobs(&p, "2");
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 1);
    assert_eq!(stat_str(&run, "movies-db@bow", "catalog_part"), "shared");
    assert_eq!(stat_str(&run, "movies-db@bow", "vector_part"), "patched");
    let clean = project(&models());
    std::fs::copy(p.path("data/movies.json"), clean.path("data/movies.json")).unwrap();
    build_jobs(&clean, "1");
    assert_eq!(
        std::fs::read(p.path(db)).unwrap(),
        std::fs::read(clean.path(db)).unwrap(),
        "the database differs from a clean build's"
    );

    // Without one, the target makes its catalog itself, after the
    // embeddings.
    edit_movies(&p, |m| {
        m.get_mut(&id).unwrap()["metadata"] = serde_json::json!({ "Plot": "A second commission." });
    });
    let run = build_jobs(&p, "1");
    assert_eq!(stat_str(&run, "movies-db@bow", "catalog_part"), "patched");

    // A movies.json the head start cannot read fails the build once, with
    // the usual message, and leaves the database alone.
    let before = std::fs::read(p.path(db)).unwrap();
    let text = p.read("data/movies.json");
    p.write(
        "data/movies.json",
        &text.replacen("\"movieId\"", "\"movieId\": 1, \"x\"", 1),
    );
    let run = pipe_env(&p, &["build", "--jobs", "2"], &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr
            .matches("data/movies.json: invalid movie")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(p.path(db)).unwrap(), before);
}

#[test]
fn a_model2vec_target_waiting_for_its_turn_lends_its_job() {
    // Two in-process models take turns: the second waits for the first,
    // and lends its job meanwhile. With two jobs, both are taken by the
    // embeddings targets, so only the lent one can take the movies-db
    // targets' head start (their shared catalog part).
    let p = project(&[]);
    edit_movies(&p, |_| {});
    common::copy_tree(&model2vec_dir(), &p.path("models/static"));
    for (id, template) in [("m1", "{{ title }}"), ("m2", "{{ title }} {{ year }}")] {
        p.write(
            &format!("models.d/{id}.toml"),
            &format!("id = \"{id}\"\nname = \"{id}\"\ndimensions = 64\nembeddings = \"data/embeddings-{id}-movies.db\"\n\n[embed]\nprovider = \"model2vec\"\npath = \"models/static\"\ntemplate = \"{template}\"\n"),
        );
    }
    p.build(&["--jobs", "2"]);
    let id = movie_ids(&p)[2].clone();
    edit_movies(&p, |m| {
        m.get_mut(&id).unwrap()["title"] = serde_json::json!("A Title Edited Once");
    });
    let run = p.build(&["--jobs", "2"]);
    for m in ["m1", "m2"] {
        assert_eq!(stat(&run, &format!("embeddings@{m}"), "texts_sent"), 1);
        let db = format!("movies-db@{m}");
        assert_eq!(
            stat_str(&run, &db, "catalog_part"),
            "shared",
            "{}",
            run.stdout
        );
    }
}

#[test]
fn an_edit_patches_the_embeddings_file_in_place_and_equals_a_clean_build() {
    let models = || [("bow", bow_model("bow", 16, ""))];
    let p = project(&models());
    let first = build(&p);
    assert_eq!(stat_str(&first, "embeddings@bow", "file"), "written");
    let ids = movie_ids(&p);
    let read = |p: &Project| std::fs::read(p.path("data/embeddings-bow-movies.db")).unwrap();

    // One plot, then another: the file is patched (a patch of a patch),
    // and its bytes are a clean build's of the same inputs.
    for (n, plot) in [
        (3, "A lighthouse keeper befriends a whale."),
        (7, "Two rival chefs."),
    ] {
        let id = ids[n].clone();
        edit_movies(&p, |m| {
            m.get_mut(&id).unwrap()["metadata"] = serde_json::json!({ "Plot": plot });
        });
        let run = build(&p);
        assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 1);
        assert_eq!(stat_str(&run, "embeddings@bow", "file"), "patched");
    }
    let clean = project(&models());
    std::fs::copy(p.path("data/movies.json"), clean.path("data/movies.json")).unwrap();
    build(&clean);
    assert_eq!(
        read(&p),
        read(&clean),
        "patched bytes differ from a clean build's"
    );

    // A changed lastUpdated changes no text (no key) but a row's
    // created_at: written anew, and still a clean build's bytes.
    let id = ids[5].clone();
    for q in [&p, &clean] {
        edit_movies(q, |m| {
            m.get_mut(&id).unwrap()["lastUpdated"] = serde_json::json!("2031-02-03T04:05:06Z");
        });
    }
    let run = build(&p);
    assert_eq!(stat(&run, "embeddings@bow", "texts_sent"), 0);
    assert_eq!(stat_str(&run, "embeddings@bow", "file"), "written");
    build(&clean);
    assert_eq!(read(&p), read(&clean));

    // An output changed on disk behind pipe's back is not patched.
    let conn = rusqlite::Connection::open(p.path("data/embeddings-bow-movies.db")).unwrap();
    conn.execute(
        "UPDATE config SET value = 'x' WHERE key = 'embedding_model_name'",
        [],
    )
    .unwrap();
    drop(conn);
    let id = ids[9].clone();
    for q in [&p, &clean] {
        edit_movies(q, |m| {
            m.get_mut(&id).unwrap()["metadata"] = serde_json::json!({ "Plot": "A third plot." });
        });
    }
    let run = build(&p);
    assert_eq!(stat_str(&run, "embeddings@bow", "file"), "written");
    build(&clean);
    assert_eq!(read(&p), read(&clean));
}
