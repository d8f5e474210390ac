//! `pipe serve` through the real binary on an ephemeral port, against a copy
//! of this repository's project: the API's status codes, the security
//! rules, the event stream of a real build, and that builds from the page
//! and from a terminal share one lock and one state.

mod common;
use common::server::Server;
use common::{sample_project as sample, Project};
use serde_json::Value;
use std::time::Duration;

/// The sample plus a command target that takes a while.
fn sample_with_slow_target() -> Project {
    let p = sample();
    let mut manifest = p.read("pipeline.toml");
    manifest.push_str(
        "\n[targets.slow]\nkind = \"command\"\ncommand = \"sleep 2 && echo done > {out}\"\nouts = [\"public/slow.txt\"]\n",
    );
    p.write("pipeline.toml", &manifest);
    p
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

fn target<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no target {name} in {status}"))
}

#[test]
fn serves_the_page_models_and_status() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);

    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(page.body.contains("id=\"generate\""));
    assert!(page
        .header("content-security-policy")
        .unwrap_or("")
        .contains("frame-ancestors 'none'"));
    assert_eq!(s.get("/app.js").status, 200);
    assert_eq!(s.get("/style.css").status, 200);
    assert_eq!(s.get("/nope").status, 404);

    let models = s.get("/api/models");
    assert_eq!(models.status, 200);
    let models = models.json();
    let list = models["models"].as_array().expect("models");
    let ids: Vec<&str> = list.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["bge-micro", "nomic", "potion"]);
    let potion = &list[2];
    assert_eq!(potion["dimensions"], 64);
    assert_eq!(potion["embeddingsPresent"], true);
    assert!(potion["vectors"].as_u64().unwrap_or(0) > 300, "{potion}");

    let status = s.get("/api/status");
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["building"], false);
    assert_eq!(status["targets"].as_array().map(|t| t.len()), Some(4));
    let db = target(&status, "movies-db@potion");
    assert_eq!(db["state"], "never-built");
    assert_eq!(db["reasons"][0], "never built");

    // The manifest is read again for every request: a new model file and a
    // missing embeddings file show up without a restart.
    p.write(
        "models.d/mini.toml",
        "id = \"mini\"\nname = \"Mini\"\ndimensions = 32\ndescription = \"Tiny\"\n",
    );
    let models = s.get("/api/models").json();
    let mini = models["models"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"] == "mini"))
        .unwrap_or_else(|| panic!("mini not listed: {models}"));
    assert_eq!(mini["embeddingsPresent"], false);
    assert_eq!(mini["vectors"], Value::Null);
    assert!(target(&s.get("/api/status").json(), "movies-db@mini")["state"] == "never-built");
}

#[test]
fn bad_requests_are_400_with_the_choices() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);

    let r = s.post("/api/build", r#"{"embeddingModel": "potio"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    let body = r.json();
    assert_eq!(names(&body["models"]), ["bge-micro", "nomic", "potion"]);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("did you mean `potion`"),
        "{body}"
    );

    let r = s.post("/api/build", r#"{"targets": ["movies-db@potato"]}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        names(&r.json()["targets"]),
        [
            "movie-json",
            "movies-db@bge-micro",
            "movies-db@nomic",
            "movies-db@potion"
        ]
    );

    let r = s.post("/api/build", "{not json");
    assert_eq!(r.status, 400, "{}", r.body);

    // Nothing was started by any of them.
    let status = s.get("/api/status").json();
    assert_eq!(status["last"], Value::Null);
    assert!(!p.path("public").exists());
}

/// A manifest with several problems: each is its own entry of
/// `diagnostics` (with its file:line:col), not one report nesting them.
#[test]
fn each_manifest_problem_is_its_own_diagnostic() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    p.write(
        "models.d/potion.toml",
        "id = \"potion\"\nname = \"P\"\ndimensions = 0\nmetric = \"manhattan\"\n",
    );
    let r = s.get("/api/models");
    assert_eq!(r.status, 500, "{}", r.body);
    let body = r.json();
    let each = body["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(each.len(), 2, "{body}");
    assert!(
        each[0].as_str().unwrap().contains("models.d/potion.toml:3"),
        "{body}"
    );
    assert!(
        each[1].as_str().unwrap().contains("models.d/potion.toml:4"),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("2 problems"),
        "{body}"
    );
}

#[test]
fn foreign_host_and_origin_are_403() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    let port = s.port;

    // DNS rebinding: our address under another name, or another port.
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "localhost".to_string(),
    ] {
        let r = s.request("GET", "/api/status", &[("Host", &host)], None);
        assert_eq!(r.status, 403, "Host {host}: {}", r.body);
        let r = s.request("GET", "/", &[("Host", &host)], None);
        assert_eq!(r.status, 403, "Host {host}");
    }
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let r = s.request("GET", "/api/status", &[("Host", &host)], None);
        assert_eq!(r.status, 200, "Host {host}: {}", r.body);
    }

    // CSRF: another site's page posting to us.
    let start = r#"{"embeddingModel": "potion", "skipJsonGeneration": true}"#;
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = s.request("POST", "/api/build", &[("Origin", origin)], Some(start));
        assert_eq!(r.status, 403, "Origin {origin}: {}", r.body);
    }
    let r = s.request(
        "POST",
        "/api/build",
        &[("Sec-Fetch-Site", "cross-site")],
        Some(start),
    );
    assert_eq!(r.status, 403);
    assert_eq!(s.get("/api/status").json()["last"], Value::Null);
    assert!(
        !p.path("public").exists(),
        "a refused request built something"
    );

    // Our own origin passes the guard (and reaches validation).
    let ours = format!("http://localhost:{port}");
    let r = s.request(
        "POST",
        "/api/build",
        &[("Origin", &ours)],
        Some(r#"{"embeddingModel": "potato"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn events_follow_a_page_build_and_the_terminal_sees_its_result() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    let mut events = s.events();

    let r = s.post(
        "/api/build",
        r#"{"embeddingModel": "potion", "skipJsonGeneration": true}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let started = r.json();
    assert_eq!(names(&started["targets"]), ["movies-db@potion"]);
    let id = started["id"].clone();

    let seq = events.until_done();
    let statuses: Vec<&str> = seq.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses.first(), Some(&"starting"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"completed"), "{seq:#?}");
    assert!(statuses[1..statuses.len() - 1]
        .iter()
        .all(|s| *s == "in_progress"));
    assert!(
        statuses.len() >= 4,
        "expected progress in between: {statuses:?}"
    );
    for e in &seq {
        assert_eq!(e["type"], "build");
        assert_eq!(e["id"], id);
        assert!(e["current"].as_u64() <= e["total"].as_u64().or(Some(0)).map(|t| t.max(1)));
    }
    assert!(seq.iter().any(|e| e["status"] == "in_progress"
        && e["target"] == "movies-db@potion"
        && e["targetTotal"].as_u64().unwrap_or(0) > 0));
    // The overall progress counts work units, as the command line's does
    // (the one target's rows, not 0 or 1 of 1 target).
    let units: Vec<(u64, u64)> = seq
        .iter()
        .filter(|e| e["status"] == "in_progress")
        .map(|e| {
            let c = e["unitsCurrent"].as_u64().expect("unitsCurrent");
            let t = e["unitsTotal"].as_u64().expect("unitsTotal");
            assert!(c <= t, "{e}");
            (c, t)
        })
        .collect();
    assert!(
        units.iter().any(|&(c, t)| t > 1 && c < t),
        "no progress inside the target in work units: {units:?}"
    );
    let done = seq.last().expect("completed");
    assert_eq!(
        (done["current"].as_u64(), done["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(done["unitsTotal"].as_u64() > Some(1), "{done}");
    assert_eq!(done["unitsCurrent"], done["unitsTotal"], "{done}");
    let results = done["results"].as_array().expect("results");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["name"], "movies-db@potion");
    assert_eq!(results[0]["status"], "built");
    assert!(p.path("public/data/potion/movies.db").is_file());
    assert!(
        !p.path("public/movies").exists(),
        "skipJsonGeneration built the JSON files"
    );

    // The page's view.
    let status = s.get("/api/status").json();
    assert_eq!(status["building"], false);
    assert_eq!(status["last"]["status"], "completed");
    assert_eq!(target(&status, "movies-db@potion")["state"], "up-to-date");
    assert_eq!(target(&status, "movie-json")["state"], "never-built");

    // The terminal's view: the same state in .pipe/.
    let run = p.pipe(&["status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("movies-db@potion"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.ends_with("up to date"), "{}", run.stdout);
    assert!(p.build(&["movies-db@potion"]).built().is_empty());

    // And the other way: a terminal build shows on the page.
    p.build(&["movie-json"]);
    assert_eq!(
        target(&s.get("/api/status").json(), "movie-json")["state"],
        "up-to-date"
    );

    // A build with nothing to do completes too, and says so.
    let r = s.post("/api/build", r#"{"targets": ["movies-db@potion"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    let seq = events.until_done();
    let done = seq.last().expect("done");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["results"][0]["status"], "up-to-date");
}

#[test]
fn a_second_build_is_409_while_one_runs() {
    let p = sample_with_slow_target();
    let s = Server::start(p.dir.path(), &[]);
    let r = s.post("/api/build", r#"{"targets": ["slow"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);

    let r = s.post("/api/build", r#"{"embeddingModel": "potion"}"#);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(names(&r.json()["build"]["targets"]), ["slow"]);
    let status = s.get("/api/status").json();
    assert_eq!(status["building"], true, "{status}");

    let status = s.wait_idle(Duration::from_secs(60));
    assert_eq!(status["last"]["status"], "completed", "{status}");
    assert_eq!(target(&status, "slow")["state"], "up-to-date");
    assert_eq!(p.read("public/slow.txt").trim(), "done");

    // Once it is over, the next build is accepted.
    let r = s.post("/api/build", r#"{"targets": ["slow"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    s.wait_idle(Duration::from_secs(60));
}

#[test]
fn page_and_terminal_builds_never_run_at_once() {
    let p = sample_with_slow_target();
    let s = Server::start(p.dir.path(), &[]);
    let r = s.post("/api/build", r#"{"targets": ["slow"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    // Give the page's build time to take the project lock.
    std::thread::sleep(Duration::from_millis(500));
    // The terminal waits for the lock, then finds the page's result.
    let run = p.build(&["slow"]);
    assert!(run.stderr.contains("waiting:"), "{}", run.stderr);
    assert!(run.built().is_empty(), "{}", run.stdout);
    assert_eq!(run.with_status("up-to-date"), ["slow"]);
}

#[test]
fn a_failed_build_reports_the_error() {
    let p = sample();
    let mut manifest = p.read("pipeline.toml");
    manifest.push_str(
        "\n[targets.broken]\nkind = \"command\"\ncommand = \"echo 'no such tool' >&2; exit 3; touch {out}\"\nouts = [\"public/broken.txt\"]\n",
    );
    p.write("pipeline.toml", &manifest);
    let s = Server::start(p.dir.path(), &[]);
    let mut events = s.events();
    let r = s.post("/api/build", r#"{"targets": ["broken"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    let seq = events.until_done();
    let done = seq.last().expect("done");
    assert_eq!(done["status"], "error", "{done}");
    assert_eq!(done["results"][0]["status"], "failed");
    let status = s.get("/api/status").json();
    let broken = target(&status, "broken");
    assert_eq!(broken["state"], "failed");
    assert!(
        broken["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("no such tool"),
        "{broken}"
    );
}

#[test]
fn ctrl_c_stops_cleanly_with_a_stream_open() {
    let p = sample();
    let mut s = Server::start(p.dir.path(), &[]);
    let mut events = s.events();
    let status = s.interrupt(Duration::from_secs(10));
    let status = status.expect("pipe serve did not stop on SIGINT");
    // Ctrl-C ends serving with 130, as the README says.
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(events.next().is_none(), "the stream should end");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err(),
        "still listening"
    );
}

#[test]
fn binding_beyond_loopback_needs_the_flag_and_warns() {
    use std::io::{BufRead, BufReader, Read};
    let p = sample();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipe"))
        .current_dir(p.dir.path())
        .args(["serve", "--port", "0", "--bind", "0.0.0.0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert!(line.starts_with("listening on http://0.0.0.0:"), "{line}");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = child.wait();
    assert!(
        stderr.contains("warning: listening on 0.0.0.0:")
            && stderr.contains("anyone who can reach it"),
        "{stderr}"
    );
}

/// The status line of a raw request `head` (sent as is), and how long the
/// answer took; `None` when the server closed the connection without one.
fn raw_status(port: u16, head: &str, wait: Duration) -> (Option<String>, Duration) {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let start = std::time::Instant::now();
    stream.write_all(head.as_bytes()).expect("send");
    let mut line = String::new();
    let got = BufReader::new(&stream).read_line(&mut line);
    let took = start.elapsed();
    match got {
        Ok(0) => (None, took),
        Ok(_) => (Some(line.trim().to_string()), took),
        // A reset is a close too; a timeout is not (the caller asserts on it).
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => (None, took),
        Err(e) => panic!("no answer within {wait:?}: {e}"),
    }
}

#[test]
fn duplicate_host_or_origin_is_400_and_only_application_json_is_json() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    let port = s.port;
    let host = format!("127.0.0.1:{port}");
    let ours = format!("http://localhost:{port}");
    let potato = r#"{"embeddingModel": "potato"}"#;

    // Two Host headers, even both ours: which one would a proxy believe?
    let r = s.request(
        "GET",
        "/api/status",
        &[("Host", &host), ("Host", &host)],
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap_or("").contains("Host"),
        "{}",
        r.body
    );
    // Our origin first, another site's second: refused, not the first taken.
    let r = s.request(
        "POST",
        "/api/build",
        &[("Origin", &ours), ("Origin", "http://evil.example")],
        Some(r#"{"embeddingModel": "potion", "skipJsonGeneration": true}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // RFC 6454: scheme and host compare without case; the port is explicit.
    let upper = format!("HTTP://LOCALHOST:{port}");
    let r = s.request("POST", "/api/build", &[("Origin", &upper)], Some(potato));
    assert_eq!(r.status, 400, "{upper} is our origin: {}", r.body);
    assert!(r.json()["models"].is_array(), "{}", r.body);
    for foreign in [
        "http://localhost".to_string(), // port 80
        format!("https://localhost:{port}"),
        format!("http://localhost:{port}/"),
        format!("http://localhost:{port} http://evil.example"),
    ] {
        let r = s.request("POST", "/api/build", &[("Origin", &foreign)], Some(potato));
        assert_eq!(r.status, 403, "Origin {foreign}: {}", r.body);
    }

    // Only application/json (parameters allowed) is the body's type.
    for other in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        let r = s.request(
            "POST",
            "/api/build",
            &[("Content-Type", other)],
            Some(r#"{"embeddingModel": "potion", "skipJsonGeneration": true}"#),
        );
        assert_eq!(r.status, 415, "{other}: {}", r.body);
        assert!(r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("application/json"));
    }
    let r = s.request(
        "POST",
        "/api/build",
        &[("Content-Type", "application/json; charset=utf-8")],
        Some(potato),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["models"].is_array(), "{}", r.body);

    assert_eq!(s.get("/api/status").json()["last"], Value::Null);
    assert!(
        !p.path("public").exists(),
        "a refused request built something"
    );
}

#[test]
fn a_false_content_length_or_an_endless_head_does_not_hold_a_connection() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    let port = s.port;
    let wait = Duration::from_secs(30);
    let slow_body = std::thread::spawn(move || {
        raw_status(
            port,
            &format!(
                "POST /api/build HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"targets\": []"
            ),
            wait,
        )
    });
    let slow_head = std::thread::spawn(move || {
        raw_status(
            port,
            &format!("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"),
            wait,
        )
    });
    // Meanwhile the server answers others.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.get("/api/status").status, 200);

    let (line, took) = slow_body.join().expect("thread");
    let line = line.expect("an answer to the short body");
    assert!(line.contains(" 408 "), "{line}");
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let (line, took) = slow_head.join().expect("thread");
    // hyper closes the connection (with or without a 408 line).
    assert!(
        line.as_ref().is_none_or(|l| l.contains(" 408 ")),
        "{line:?}"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "{took:?}"
    );
    // Nothing was started by the half-sent build.
    assert_eq!(s.get("/api/status").json()["last"], Value::Null);
}

#[test]
fn event_streams_are_capped_and_a_closed_one_frees_its_slot() {
    let p = sample();
    let s = Server::start(p.dir.path(), &[]);
    let port = s.port;
    let stream_head = format!(
        "GET /api/progress HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    );
    let mut open: Vec<_> = (0..32).map(|_| s.events()).collect();
    let (line, _) = raw_status(port, &stream_head, Duration::from_secs(10));
    let line = line.expect("an answer");
    assert!(line.contains(" 503 "), "{line}");
    let r = s.request("GET", "/api/progress", &[], None);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.json()["error"]
        .as_str()
        .unwrap_or("")
        .contains("32 event streams"));

    // A page closed: its slot is free again (the server sees the close).
    drop(open.pop());
    let start = std::time::Instant::now();
    loop {
        let (line, _) = raw_status(port, &stream_head, Duration::from_secs(10));
        if line.as_deref().is_some_and(|l| l.contains(" 200 ")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the slot was never freed: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Streams outlive the deadline on request heads: after it, they still
    // follow a build.
    std::thread::sleep(Duration::from_secs(6));
    let r = s.post("/api/build", r#"{"targets": ["movies-db@potion"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    let first = open[0].next().expect("an event");
    assert_eq!(first["status"], "starting", "{first}");
    s.wait_idle(Duration::from_secs(60));
}

#[test]
fn models_count_the_vectors_the_database_will_hold_and_show_quantization() {
    let p = sample();
    // A vector for a movie that is not in movies.json: a row of the file,
    // not a vector of the database.
    let v: Vec<f32> = (0..64).map(|i| i as f32 / 100.0).collect();
    common::add_vector(&p, "data/embeddings-potion-movies.db", "tt0000000gone", &v);
    let emb = rusqlite::Connection::open(p.path("data/embeddings-potion-movies.db")).unwrap();
    let rows: u64 = emb
        .query_row("SELECT count(*) FROM embeddings", [], |r| r.get(0))
        .unwrap();
    drop(emb);
    p.write(
        "models.d/potion-int8.toml",
        "id = \"potion-int8\"\nname = \"Potion int8\"\ndimensions = 64\n\
         embeddings = \"data/embeddings-potion-movies.db\"\nquantization = \"int8\"\nrescore = true\n",
    );
    let s = Server::start(p.dir.path(), &[]);
    let models = s.get("/api/models").json();
    let model = |id: &str| -> Value {
        models["models"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {models}"))
    };
    let potion = model("potion");
    assert_eq!(potion["embeddingsRows"], rows, "{potion}");
    let vectors = potion["vectors"].as_u64().expect("vectors");
    assert!(vectors < rows, "{potion}");
    assert_eq!(potion.get("quantization"), None, "{potion}");
    let int8 = model("potion-int8");
    assert_eq!(int8["quantization"]["kind"], "int8", "{int8}");
    assert_eq!(int8["quantization"]["rescore"], true, "{int8}");
    assert_eq!(int8["quantization"]["oversample"], 8, "{int8}");

    // What the database holds once built is what the page said.
    p.build(&["movies-db@potion"]);
    let with = common::stock_sqlite(
        &p.path("public/data/potion/movies.db"),
        "SELECT value FROM config WHERE key = 'movies_with_vector';",
    );
    assert_eq!(with.trim(), vectors.to_string());

    // Built, then an input changed: stale, not "never built".
    let status = s.get("/api/status").json();
    assert_eq!(target(&status, "movies-db@potion")["state"], "up-to-date");
    assert_eq!(
        target(&status, "movies-db@potion-int8")["state"],
        "never-built"
    );
    let emb = rusqlite::Connection::open(p.path("data/embeddings-potion-movies.db")).unwrap();
    emb.execute(
        "DELETE FROM embeddings WHERE movie_id = 'tt0000000gone'",
        [],
    )
    .unwrap();
    drop(emb);
    let status = s.get("/api/status").json();
    let db = target(&status, "movies-db@potion");
    assert_eq!(db["state"], "stale", "{db}");
    assert_ne!(db["reasons"][0], "never built", "{db}");
}
