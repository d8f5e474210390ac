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
    assert_eq!(db["state"], "stale");
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
    assert!(target(&s.get("/api/status").json(), "movies-db@mini")["state"] == "stale");
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
    let done = seq.last().expect("completed");
    assert_eq!(
        (done["current"].as_u64(), done["total"].as_u64()),
        (Some(1), Some(1))
    );
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
    assert_eq!(target(&status, "movie-json")["state"], "stale");

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
