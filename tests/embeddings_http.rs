//! The embeddings stage through the real binary against real HTTP servers on
//! 127.0.0.1 that count what they are sent: only new or changed records are
//! sent, removed ones leave the output, an option change re-sends one
//! model's texts, a killed build resumes with the rest, and an API key is
//! never written anywhere.

mod common;
use common::embed_server::{vector, EmbedServer, Fault};
use common::{Project, Run, EMBED_PIPELINE, REPO};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const DIMS: usize = 8;
/// The key the servers want; it must never be written anywhere.
const KEY: &str = "sk-e2e-0123456789-NEVER-WRITTEN";
const KEY_VAR: &str = "PIPE_E2E_OPENAI_KEY";

/// A project with two models: `alpha` through the OpenAI protocol (with a
/// key) on one server, `beta` through Ollama's on another.
struct Setup {
    project: Project,
    alpha: EmbedServer,
    beta: EmbedServer,
}

fn alpha_model(url: &str, batch: usize, prefix: &str) -> String {
    format!(
        "id = \"alpha\"\nname = \"Alpha\"\ndimensions = {DIMS}\nembeddings = \"data/embeddings-alpha-movies.db\"\ndefault = true\n\n\
         [embed]\nprovider = \"openai\"\nmodel = \"alpha-embed\"\nurl = \"{url}/v1\"\napi-key-env = \"{KEY_VAR}\"\n\
         batch = {batch}\nparallel = 1\nprefix = \"{prefix}\"\n"
    )
}

fn beta_model(url: &str) -> String {
    format!(
        "id = \"beta\"\nname = \"Beta\"\ndimensions = {DIMS}\nembeddings = \"data/embeddings-beta-movies.db\"\n\n\
         [embed]\nprovider = \"ollama\"\nmodel = \"beta-embed\"\nurl = \"{url}\"\nbatch = 64\n"
    )
}

fn setup(alpha_batch: usize) -> Setup {
    let alpha = EmbedServer::start(DIMS);
    alpha.require_key(KEY);
    let beta = EmbedServer::start(DIMS);
    let project = Project::new();
    project.write("pipeline.toml", EMBED_PIPELINE);
    project.write(
        "models.d/alpha.toml",
        &alpha_model(&alpha.url, alpha_batch, ""),
    );
    project.write("models.d/beta.toml", &beta_model(&beta.url));
    for file in ["movies.json", "collections.json"] {
        std::fs::create_dir_all(project.path("data")).expect("mkdir data");
        std::fs::copy(
            Path::new(REPO).join("data").join(file),
            project.path(&format!("data/{file}")),
        )
        .expect("copy data");
    }
    Setup {
        project,
        alpha,
        beta,
    }
}

fn pipe_command(p: &Project, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pipe"));
    command
        .current_dir(p.dir.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("OLLAMA_HOST")
        .env(KEY_VAR, KEY)
        .args(args);
    command
}

fn pipe(p: &Project, args: &[&str]) -> Run {
    let out = pipe_command(p, args).output().expect("run pipe");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn build(p: &Project) -> Run {
    let run = pipe(p, &["build", "--json"]);
    assert_eq!(
        run.code, 0,
        "build failed\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

fn movies(p: &Project) -> serde_json::Map<String, Value> {
    match serde_json::from_str(&p.read("data/movies.json")).expect("movies.json") {
        Value::Object(map) => map,
        _ => panic!("movies.json is not an object"),
    }
}

fn write_movies(p: &Project, movies: &serde_json::Map<String, Value>) {
    p.write(
        "data/movies.json",
        &serde_json::to_string_pretty(movies).expect("json"),
    );
}

fn movie_count(p: &Project) -> usize {
    movies(p).keys().filter(|k| !k.starts_with('_')).count()
}

/// `movie_id → vector` of an embeddings file.
fn stored(p: &Project, model: &str) -> Vec<(String, Vec<f32>)> {
    let db = rusqlite::Connection::open(p.path(&format!("data/embeddings-{model}-movies.db")))
        .expect("open embeddings file");
    let mut st = db
        .prepare("SELECT movie_id, embedding FROM embeddings ORDER BY movie_id")
        .expect("query");
    let rows = st
        .query_map([], |r| {
            let id: String = r.get(0)?;
            let blob: Vec<u8> = r.get(1)?;
            Ok((id, blob))
        })
        .expect("rows");
    rows.map(|r| {
        let (id, blob) = r.expect("row");
        let v = blob
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (id, v)
    })
    .collect()
}

/// The stored vectors are exactly the server's vectors of the texts it was
/// sent (so nothing unchecked or stale is in the file).
fn assert_vectors_from(p: &Project, model: &str, texts: &[String]) {
    let expected: BTreeSet<Vec<u32>> = texts
        .iter()
        .map(|t| vector(t, DIMS).iter().map(|x| x.to_bits()).collect())
        .collect();
    for (id, v) in stored(p, model) {
        let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
        assert!(
            expected.contains(&bits),
            "{model}: the vector of {id} is not one the server sent"
        );
    }
}

fn counts(s: &Setup) -> (usize, usize) {
    (s.alpha.texts(), s.beta.texts())
}

fn reset(s: &Setup) {
    s.alpha.reset_counts();
    s.beta.reset_counts();
}

#[test]
fn only_new_and_changed_records_are_sent_and_removed_ones_leave() {
    let s = setup(50);
    let p = &s.project;
    let n = movie_count(p);
    assert!(n >= 100, "the sample has {n} movies");

    // First build: every text, once, to each model's server.
    let first = build(p);
    assert_eq!(counts(&s), (n, n), "first build");
    assert_eq!(s.alpha.requests(), n.div_ceil(50));
    assert_eq!(stored(p, "alpha").len(), n);
    assert_eq!(stored(p, "beta").len(), n);
    let mut all_alpha = s.alpha.seen();
    assert_vectors_from(p, "alpha", &all_alpha);
    assert_vectors_from(p, "beta", &s.beta.seen());
    assert!(
        first.built().contains(&"embeddings@alpha".to_string()),
        "{:?}",
        first.built()
    );

    // Unchanged: nothing sent.
    reset(&s);
    p.settle();
    build(p);
    assert_eq!(counts(&s), (0, 0), "unchanged build");

    // One movie's plot edited: exactly that text, to each model.
    let mut m = movies(p);
    let id = m
        .keys()
        .find(|k| !k.starts_with('_'))
        .cloned()
        .expect("a movie");
    m[&id]["metadata"]["Plot"] = Value::from("A brand new plot about a lighthouse keeper.");
    write_movies(p, &m);
    reset(&s);
    build(p);
    assert_eq!(counts(&s), (1, 1), "one plot edited");
    assert!(s.alpha.seen()[0].contains("lighthouse keeper"));
    all_alpha.extend(s.alpha.seen());
    assert_vectors_from(p, "alpha", &all_alpha);
    let edited = stored(p, "alpha")
        .into_iter()
        .find(|(i, _)| *i == id)
        .expect("edited movie");
    assert_eq!(edited.1, vector(&s.alpha.seen()[0], DIMS), "the new vector");

    // A movie added: one text.
    let mut added = m[&id].clone();
    added["movieId"] = Value::from("tt9999999");
    added["title"] = Value::from("A Movie Added Later");
    added["metadata"]["imdbID"] = Value::from("tt9999999");
    m.insert("tt9999999".to_string(), added);
    write_movies(p, &m);
    reset(&s);
    build(p);
    assert_eq!(counts(&s), (1, 1), "one movie added");
    assert!(s.alpha.seen()[0].contains("A Movie Added Later"));
    assert_eq!(stored(p, "alpha").len(), n + 1);

    // A movie removed: nothing sent, and its vector is gone.
    m.shift_remove(&id);
    write_movies(p, &m);
    reset(&s);
    build(p);
    assert_eq!(counts(&s), (0, 0), "one movie removed");
    for model in ["alpha", "beta"] {
        let rows = stored(p, model);
        assert_eq!(rows.len(), n, "{model}");
        assert!(rows.iter().all(|(i, _)| *i != id), "{model}: {id} is gone");
    }

    // An option of alpha changed: every text of alpha again, none of beta.
    p.write(
        "models.d/alpha.toml",
        &alpha_model(&s.alpha.url, 50, "search_document: "),
    );
    reset(&s);
    build(p);
    assert_eq!(counts(&s), (n, 0), "alpha's prefix changed");
    assert!(s
        .alpha
        .seen()
        .iter()
        .all(|t| t.starts_with("search_document: ")));
    assert_vectors_from(p, "alpha", &s.alpha.seen());
}

#[test]
fn a_build_killed_halfway_resumes_with_only_the_rest() {
    let s = setup(10);
    let p = &s.project;
    let n = movie_count(p);
    // Let the first half of alpha's requests through, then hold the next.
    let half_requests = n.div_ceil(10) / 2;
    s.alpha.hold_from(half_requests);
    let mut child = pipe_command(p, &["build", "-q", "embeddings@alpha"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pipe");
    s.alpha.wait_held(1, Duration::from_secs(120));
    child.kill().expect("kill -9"); // SIGKILL: no cleanup of any kind
    child.wait().expect("wait");
    let answered = half_requests * 10;
    assert_eq!(
        s.alpha.texts(),
        answered + 10,
        "half answered, one batch held"
    );
    assert!(
        !p.path("data/embeddings-alpha-movies.db").exists(),
        "no output from a killed build"
    );

    s.alpha.release();
    s.alpha.hold_from(usize::MAX);
    reset(&s);
    build(p);
    assert_eq!(s.alpha.texts(), n - answered, "only the rest is sent");
    assert_eq!(stored(p, "alpha").len(), n);
}

#[test]
fn ctrl_c_keeps_the_vectors_obtained() {
    let s = setup(10);
    let p = &s.project;
    let n = movie_count(p);
    let half_requests = n.div_ceil(10) / 2;
    s.alpha.hold_from(half_requests);
    let mut child = pipe_command(p, &["build", "embeddings@alpha"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pipe");
    // Everything pipe says on stderr, line by line, to see the interrupt
    // acknowledged.
    let (lines, said) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    s.alpha.wait_held(1, Duration::from_secs(120));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("interrupted")) {
        seen.push(
            said.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no interrupt message: {seen:?}")),
        );
    }
    // The batch in flight is answered after the interrupt: it is kept too,
    // and nothing more is sent.
    s.alpha.release();
    let code = child.wait().expect("wait").code();
    reader.join().expect("stderr reader");
    seen.extend(said.try_iter());
    let stderr = seen.join("\n");
    assert_eq!(code, Some(130), "{stderr}");
    // The stop is told as one, with what was kept; nothing is "up to date".
    assert!(
        stderr
            .contains("not built: embeddings@alpha (the build stopped: cancelled after embedding")
            && stderr.contains("kept in the cache"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped: 0 of 1 targets built, 1 not built"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing to do"), "{stderr}");
    let obtained = half_requests * 10 + 10;
    assert_eq!(s.alpha.texts(), obtained, "{stderr}");
    assert!(!p.path("data/embeddings-alpha-movies.db").exists());

    s.alpha.hold_from(usize::MAX);
    reset(&s);
    build(p);
    assert_eq!(
        s.alpha.texts(),
        n - obtained,
        "only what Ctrl-C left out is sent"
    );
    assert_eq!(stored(p, "alpha").len(), n);
}

#[test]
fn an_api_key_is_never_written_anywhere() {
    let s = setup(100);
    let p = &s.project;
    let run = build(p);
    assert!(s
        .alpha
        .authorizations()
        .iter()
        .all(|a| a.as_deref() == Some(format!("Bearer {KEY}").as_str())));
    let mut places = vec![("--json".to_string(), run.stdout.into_bytes())];
    places.push(("stderr".to_string(), run.stderr.into_bytes()));
    let verbose = pipe(p, &["build", "-v", "--force"]);
    places.push(("-v stderr".to_string(), verbose.stderr.into_bytes()));
    places.push(("-v stdout".to_string(), verbose.stdout.into_bytes()));
    for (name, value) in [
        ("explain", pipe(p, &["explain", "embeddings@alpha"])),
        ("status", pipe(p, &["status", "--json"])),
    ] {
        places.push((format!("{name} stdout"), value.stdout.into_bytes()));
        places.push((format!("{name} stderr"), value.stderr.into_bytes()));
    }
    for (path, bytes) in common::tree(p.dir.path()) {
        places.push((path.display().to_string(), bytes));
    }
    // The config tables of the embeddings file and the database.
    for db in [
        "data/embeddings-alpha-movies.db",
        "public/data/alpha/movies.db",
    ] {
        let c = rusqlite::Connection::open(p.path(db)).expect(db);
        let mut st = c.prepare("SELECT * FROM config").expect("config table");
        let columns = st.column_count();
        let rows: Vec<String> = st
            .query_map([], |r| {
                Ok((0..columns)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join("|"))
            })
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect();
        assert!(!rows.is_empty(), "{db} has a config table");
        places.push((format!("{db} config"), rows.join("\n").into_bytes()));
    }
    let secret = KEY.as_bytes();
    for (name, bytes) in &places {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the API key is in {name}"
        );
    }
    assert!(
        places.iter().any(|(n, _)| n.starts_with(".pipe")),
        "the state was checked"
    );
    assert!(
        places.iter().any(|(n, _)| n == "pipe.lock"),
        "pipe.lock was checked"
    );
}

#[test]
fn a_failing_provider_fails_the_build_clearly_and_keeps_what_it_got() {
    let s = setup(50);
    let p = &s.project;
    let n = movie_count(p);
    // alpha's server wants another key: the request is refused with 401,
    // which is not retried, and the message never has the key.
    s.alpha.require_key("sk-some-other-key");
    let run = pipe(p, &["build", "embeddings@alpha"]);
    assert_ne!(run.code, 0);
    for part in [
        "openai model \"alpha-embed\"",
        &format!("{}/v1/embeddings", s.alpha.url),
        "HTTP 401 Unauthorized",
        "Incorrect API key provided: ***",
    ] {
        assert!(run.stderr.contains(part), "{part:?} not in: {}", run.stderr);
    }
    assert!(!run.stderr.contains(KEY), "{}", run.stderr);
    assert_eq!(s.alpha.requests(), 1, "a 401 is not retried");

    // The right key, but the server breaks after three batches and stays
    // broken through every retry: the build fails naming the status and the
    // body, and the 150 vectors it got are kept.
    s.alpha.require_key(KEY);
    let mut faults = vec![Fault::Slow(Duration::ZERO); 3];
    faults.extend(vec![Fault::ServerError; 5]);
    s.alpha.fail_next(&faults);
    reset(&s);
    let run = pipe(p, &["build", "embeddings@alpha"]);
    assert_ne!(run.code, 0);
    for part in [
        "HTTP 500 Internal Server Error",
        "the model runner crashed (out of memory)",
        "gave up after 5 attempts",
        &format!("150 of {n} texts"),
    ] {
        assert!(run.stderr.contains(part), "{part:?} not in: {}", run.stderr);
    }
    assert_eq!(s.alpha.requests(), 3 + 5);

    reset(&s);
    build(p);
    assert_eq!(s.alpha.texts(), n - 150, "only what was not obtained");
    assert_eq!(stored(p, "alpha").len(), n);

    // The retry policy is the model file's: two attempts, short waits.
    p.write(
        "models.d/alpha.toml",
        &format!(
            "{}attempts = 2\nretry-delay = 0.01\nretry-max-delay = 0.05\n",
            alpha_model(&s.alpha.url, 50, "")
        ),
    );
    for f in [
        ".pipe/cache/embeddings/alpha.vectors",
        "data/embeddings-alpha-movies.db",
    ] {
        std::fs::remove_file(p.path(f)).expect("rm");
    }
    s.alpha.fail_next(&vec![Fault::ServerError; 3]);
    reset(&s);
    let started = std::time::Instant::now();
    let run = pipe(p, &["build", "embeddings@alpha"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("gave up after 2 attempts"),
        "{}",
        run.stderr
    );
    assert_eq!(s.alpha.requests(), 2);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_rest_model_file_describes_another_api_end_to_end() {
    let s = setup(50);
    let p = &s.project;
    let n = movie_count(p);
    let rest = EmbedServer::start(DIMS);
    rest.require_key(KEY);
    p.write(
        "models.d/beta.toml",
        &format!(
            "id = \"beta\"\nname = \"Beta\"\ndimensions = {DIMS}\nembeddings = \"data/embeddings-beta-movies.db\"\n\n\
             [embed]\nprovider = \"rest\"\nmodel = \"embed-v4.0\"\nurl = \"{}/v2/embed\"\nbatch = 96\n\
             request = {{ model = \"embed-v4.0\", texts = \"{{{{texts}}}}\", input_type = \"search_document\", embedding_types = [\"float\"] }}\n\
             response = \"embeddings.float\"\n\
             headers = {{ Authorization = \"Bearer {{{{env.{KEY_VAR}}}}}\", X-Client = \"pipe-tests\" }}\n",
            rest.url
        ),
    );
    build(p);
    assert_eq!(rest.texts(), n);
    assert_eq!(rest.requests(), n.div_ceil(96));
    let body = &rest.bodies()[0];
    assert_eq!(body["model"], "embed-v4.0");
    assert_eq!(body["input_type"], "search_document");
    assert_eq!(body["embedding_types"], serde_json::json!(["float"]));
    assert_eq!(body["texts"].as_array().map(Vec::len), Some(96));
    assert_eq!(stored(p, "beta").len(), n);
    assert_vectors_from(p, "beta", &rest.seen());
    for (name, bytes) in common::tree(p.dir.path()) {
        let secret = KEY.as_bytes();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the key is in {}",
            name.display()
        );
    }
}
