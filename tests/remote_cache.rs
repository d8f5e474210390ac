//! The remote cache against a real server: Debian's nginx with WebDAV PUT,
//! started on 127.0.0.1 by the tests. Two copies of the sample project in
//! two directories stand for two machines.

mod common;

use common::nginx::Nginx;
use common::{sample_project, tree, Project};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn outputs(p: &Project) -> BTreeMap<PathBuf, Vec<u8>> {
    tree(&p.path("public"))
}

/// Each target's fingerprint and output hashes from `pipe status --json`'s
/// view of .pipe: what must be equal between the two machines.
fn fingerprints(p: &Project) -> BTreeMap<String, String> {
    let run = p.pipe(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("status JSON");
    let list = v.get("targets").cloned().unwrap_or(v);
    list.as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_string(),
                t["fingerprint"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn statuses(run: &common::Run) -> BTreeMap<String, String> {
    run.report()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn all(run: &common::Run, status: &str) -> bool {
    let s = statuses(run);
    !s.is_empty() && s.values().all(|v| v == status)
}

fn edit_first_title(p: &Project) {
    let text = p.read("data/movies.json");
    let i = text.find("\"title\": \"").expect("a title") + "\"title\": \"".len();
    let edited = format!("{}Edited {}", &text[..i], &text[i..]);
    p.write("data/movies.json", &edited);
}

#[test]
fn a_second_machine_installs_every_target_from_the_cache_and_builds_only_what_it_changes() {
    let server = Nginx::start(None);
    let url = server.url();
    let first = sample_project();
    let run = first.build(&["--remote-cache", &url]);
    assert!(all(&run, "built"), "{}", run.stdout);
    assert_eq!(run.report()["remote"]["uploaded"], 4, "{}", run.stdout);
    assert!(!server.blobs().is_empty());

    let second = sample_project();
    let run = second.build(&["--remote-cache", &url]);
    assert!(all(&run, "downloaded"), "{}", run.stdout);
    assert!(run.stderr.contains("downloaded"), "{}", run.stderr);
    assert_eq!(outputs(&first), outputs(&second), "outputs differ");
    // The published copy shares its database's blob, and the JSON files
    // travel compressed: fewer bytes than the outputs hold.
    let downloaded = run.report()["remote"]["downloadedBytes"]
        .as_u64()
        .unwrap_or(0);
    let on_disk: usize = outputs(&second).values().map(Vec::len).sum();
    assert!(
        downloaded > 0 && (downloaded as usize) < on_disk * 3 / 4,
        "{downloaded} of {on_disk}"
    );
    assert_eq!(first.read("pipe.lock"), second.read("pipe.lock"));
    assert_eq!(fingerprints(&first), fingerprints(&second));
    // Transfers stream through temporaries: none is left behind.
    for p in [&first, &second] {
        let left: Vec<_> = tree(&p.path("."))
            .into_keys()
            .filter(|f| f.to_string_lossy().contains(".pipe-tmp-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // Recorded as if built: nothing to do next, and --locked agrees.
    let again = second.pipe(&["build", "--locked"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);

    // An edit on the second machine: built there, and its bytes are those
    // of a clean build of the same edit without any cache.
    edit_first_title(&second);
    let run = second.build(&["--remote-cache", &url]);
    let s = statuses(&run);
    assert!(s.values().all(|v| v == "built"), "{s:?}");
    let clean = sample_project();
    edit_first_title(&clean);
    clean.build(&["--no-remote-cache"]);
    assert_eq!(outputs(&second), outputs(&clean));
    assert_eq!(second.read("pipe.lock"), clean.read("pipe.lock"));

    // ...and the first machine now gets that edit from the cache.
    edit_first_title(&first);
    let run = first.build(&["--remote-cache", &url]);
    assert!(all(&run, "downloaded"), "{}", run.stdout);
    assert_eq!(outputs(&first), outputs(&clean));
}

/// Damage the server's copy of every blob in one way; the second machine
/// must report it, build locally, and install nothing bad.
fn damaged_blobs_are_misses(damage: fn(&std::path::Path), what: &str) {
    let server = Nginx::start(None);
    let url = server.url();
    let first = sample_project();
    first.build(&["--remote-cache", &url]);
    for blob in server.blobs() {
        damage(&blob);
    }
    let second = sample_project();
    let run = second.build(&["--remote-cache", &url, "--remote-cache-read-only"]);
    assert!(all(&run, "built"), "{what}: {}", run.stdout);
    assert!(
        run.stderr.contains("unusable") && run.stderr.contains("built locally"),
        "{what}: {}",
        run.stderr
    );
    assert_eq!(outputs(&first), outputs(&second), "{what}");
    let leftovers: Vec<_> = tree(second.dir.path())
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".pipe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
}

#[test]
fn a_corrupt_blob_is_a_reported_miss() {
    damaged_blobs_are_misses(
        |p| {
            let mut b = std::fs::read(p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x55;
            std::fs::write(p, b).unwrap();
        },
        "corrupt",
    );
}

#[test]
fn a_truncated_blob_is_a_reported_miss() {
    damaged_blobs_are_misses(
        |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        },
        "truncated",
    );
}

#[test]
fn a_deleted_blob_is_a_reported_miss() {
    damaged_blobs_are_misses(|p| std::fs::remove_file(p).unwrap(), "deleted");
}

#[test]
fn a_server_that_is_down_is_one_warning_and_a_local_build_or_an_error_when_required() {
    let mut server = Nginx::start(None);
    let url = server.url();
    server.stop();
    let p = sample_project();
    let run = p.build(&["--remote-cache", &url]);
    assert!(all(&run, "built"), "{}", run.stdout);
    assert_eq!(
        run.stderr.matches("cannot be used").count(),
        1,
        "{}",
        run.stderr
    );

    let q = sample_project();
    let run = q.pipe(&["build", "--remote-cache", &url, "--remote-cache-required"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot be used"), "{}", run.stderr);
    assert!(!q.path("public/data/movies.db").exists());
}

#[test]
fn a_server_stopped_mid_build_leaves_a_good_local_build() {
    // The first target's upload reaches the server, later ones do not.
    let mut server = Nginx::start(None);
    let url = server.url();
    let p = sample_project();
    let run = p.build(&["--remote-cache", &url, "-j", "1", "--target", "movie-json"]);
    assert!(all(&run, "built"));
    server.stop();
    let run = p.build(&["--remote-cache", &url, "-j", "1"]);
    let s = statuses(&run);
    assert!(
        s.iter().all(|(n, v)| if n == "movie-json" {
            v == "up-to-date"
        } else {
            v == "built"
        }),
        "{s:?}"
    );
    let clean = sample_project();
    clean.build(&[]);
    assert_eq!(outputs(&p), outputs(&clean));
}

#[test]
fn credentials_come_from_the_environment_and_are_never_shown_or_stored() {
    let token = "tok-8f3a9c";
    let server = Nginx::start(Some(token));
    let url = server.url();
    let p = sample_project();
    // Without the token: 401, one warning, a local build.
    let run = p.build(&["--remote-cache", &url]);
    assert!(all(&run, "built"), "{}", run.stdout);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(server.blobs().is_empty());

    // With it: uploads.
    let q = sample_project();
    let out = assert_cmd::Command::cargo_bin("pipe")
        .unwrap()
        .current_dir(q.dir.path())
        .env("PIPE_REMOTE_CACHE", &url)
        .env("PIPE_REMOTE_CACHE_TOKEN", token)
        .args(["build", "--json", "-v"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!server.blobs().is_empty());
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!shown.contains(token), "{shown}");
    for (path, bytes) in tree(q.dir.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(token),
            "{} holds the token",
            path.display()
        );
    }

    // Basic auth in the URL is sent but never shown.
    let r = sample_project();
    let with_userinfo = url.replace("http://", "http://alice:pw-77c1@");
    let run = r.build(&["--remote-cache", &with_userinfo]);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(!run.stderr.contains("pw-77c1") && !run.stdout.contains("pw-77c1"));
}

#[test]
fn read_only_mode_downloads_but_uploads_nothing() {
    let server = Nginx::start(None);
    let url = server.url();
    let p = sample_project();
    let out = assert_cmd::Command::cargo_bin("pipe")
        .unwrap()
        .current_dir(p.dir.path())
        .env("PIPE_REMOTE_CACHE_READ_ONLY", "1")
        .args(["build", "--json", "--remote-cache", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(server.blobs().is_empty());
    assert!(
        server.requests().iter().all(|r| !r.starts_with("PUT")),
        "{:?}",
        server.requests()
    );
    let q = sample_project();
    q.build(&["--remote-cache", &url, "--remote-cache-read-only"]);
    assert!(server.requests().iter().all(|r| !r.starts_with("PUT")));
    // Something to download: a trusted build uploads, read-only ones use it.
    q.pipe(&["clean"]);
    q.build(&["--remote-cache", &url]);
    let r = sample_project();
    let run = r.build(&["--remote-cache", &url, "--remote-cache-read-only"]);
    assert!(all(&run, "downloaded"), "{}", run.stdout);
}

#[test]
fn the_cache_is_configured_in_pipeline_toml_without_credentials() {
    let server = Nginx::start(None);
    let p = sample_project();
    let manifest = format!(
        "{}\n[cache]\nremote = \"{}\"\n",
        p.read("pipeline.toml"),
        server.url()
    );
    p.write("pipeline.toml", &manifest);
    let explain = p.pipe(&["explain", "movie-json"]);
    assert!(
        explain.stdout.contains("no entry for this fingerprint"),
        "{}",
        explain.stdout
    );
    let run = p.build(&[]);
    assert_eq!(run.report()["remote"]["uploaded"], 4, "{}", run.stdout);
    // A fresh copy: explain says the build would download it.
    let fresh = sample_project();
    fresh.write("pipeline.toml", &manifest);
    let explain = fresh.pipe(&["explain", "movie-json"]);
    assert!(
        explain
            .stdout
            .contains("has this fingerprint (a build downloads it)"),
        "{}",
        explain.stdout
    );
    // upload = false: only a trusted build (PIPE_REMOTE_CACHE_UPLOAD=1) uploads.
    let no_upload = manifest.replace("[cache]\n", "[cache]\nupload = false\n");
    let u = sample_project();
    u.write("pipeline.toml", &no_upload);
    u.write(
        "data/collections.json",
        &u.read("data/collections.json")
            .replace("\"name\"", "\"name\" "),
    );
    let run = u.build(&[]);
    assert_eq!(run.report()["remote"]["uploaded"], 0, "{}", run.stdout);
    u.pipe(&["clean"]);
    let out = assert_cmd::Command::cargo_bin("pipe")
        .unwrap()
        .current_dir(u.dir.path())
        .env("PIPE_REMOTE_CACHE_UPLOAD", "1")
        .args(["build", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["remote"]["uploaded"], 4, "{v}");
    // --no-remote-cache wins.
    let q = sample_project();
    q.write("pipeline.toml", &manifest);
    let run = q.build(&["--no-remote-cache"]);
    assert!(all(&run, "built"));

    let bad = format!(
        "{}\n[cache]\nremote = \"http://u:secret@127.0.0.1:1/x\"\n",
        sample_project().read("pipeline.toml")
    );
    q.write("pipeline.toml", &bad);
    let run = q.pipe(&["build"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("pipeline.toml:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("PIPE_REMOTE_CACHE_TOKEN"),
        "{}",
        run.stderr
    );
}

/// A project whose one model is embedded through Ollama's protocol by a
/// counting server: the embeddings target is shared like any other.
fn embedding_project(ollama: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.toml",
        "[inputs]\nmovies = \"data/movies.json\"\ncollections = \"data/collections.json\"\n\n\
         [targets.embeddings]\nkind = \"embeddings\"\n\n\
         [targets.movies-db]\nkind = \"movies-db\"\npath = \"public/data/{model}/movies.db\"\n",
    );
    p.write(
        "models.d/beta.toml",
        &format!(
            "id = \"beta\"\nname = \"Beta\"\ndimensions = 8\nembeddings = \"data/embeddings-beta-movies.db\"\n\n\
             [embed]\nprovider = \"ollama\"\nmodel = \"beta-embed\"\nurl = \"{ollama}\"\nbatch = 64\n"
        ),
    );
    for file in ["movies.json", "collections.json"] {
        p.write(
            &format!("data/{file}"),
            &std::fs::read_to_string(std::path::Path::new(common::REPO).join("data").join(file))
                .expect("sample data"),
        );
    }
    p
}

#[test]
fn a_second_machine_sends_no_text_that_the_first_embedded() {
    let server = Nginx::start(None);
    let url = server.url();
    let ollama = common::embed_server::EmbedServer::start(8);
    let first = embedding_project(&ollama.url);
    let run = first.build(&["--remote-cache", &url]);
    assert!(all(&run, "built"), "{}", run.stdout);
    let sent = ollama.texts();
    assert!(sent > 300, "{sent}");

    let second = embedding_project(&ollama.url);
    let run = second.build(&["--remote-cache", &url]);
    assert!(all(&run, "downloaded"), "{}", run.stdout);
    assert_eq!(ollama.texts(), sent, "the second machine sent texts");
    assert_eq!(
        std::fs::read(first.path("data/embeddings-beta-movies.db")).unwrap(),
        std::fs::read(second.path("data/embeddings-beta-movies.db")).unwrap()
    );
    assert_eq!(outputs(&first), outputs(&second));
}

/// The embeddings file of the beta model.
fn beta_vectors(p: &Project) -> Vec<u8> {
    std::fs::read(p.path("data/embeddings-beta-movies.db")).expect("embeddings file")
}

fn stat(run: &common::Run, target: &str, key: &str) -> String {
    run.report()["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["name"] == target)
        .and_then(|r| r["stats"][key].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn a_second_machine_with_an_edit_sends_only_the_edited_text() {
    let server = Nginx::start(None);
    let url = server.url();
    let ollama = common::embed_server::EmbedServer::start(8);
    let first = embedding_project(&ollama.url);
    let run = first.build(&["--remote-cache", &url]);
    let records: usize = stat(&run, "embeddings@beta", "records")
        .parse()
        .unwrap_or(0);
    let sent = ollama.texts();
    assert_eq!(sent, records, "the first machine embeds every movie");

    // The edit changes movies.json, so no target entry fits: the vectors
    // of every other movie come from the cache, one text is sent.
    let second = embedding_project(&ollama.url);
    edit_first_title(&second);
    let run = second.build(&["--remote-cache", &url]);
    assert_eq!(ollama.texts(), sent + 1, "{}", run.stderr);
    assert_eq!(stat(&run, "embeddings@beta", "texts_sent"), "1");
    let shared: usize = stat(&run, "embeddings@beta", "shared").parse().unwrap_or(0);
    assert_eq!(shared + 1, records, "{}", run.stderr);
    assert_eq!(run.report()["remote"]["vectorsDownloaded"], shared as u64);
    assert_eq!(run.report()["remote"]["vectorsUploaded"], 1);

    // The same bytes as a machine that embedded everything itself.
    let clean = embedding_project(&ollama.url);
    edit_first_title(&clean);
    clean.build(&["--no-remote-cache"]);
    assert_eq!(beta_vectors(&second), beta_vectors(&clean));
    assert_eq!(outputs(&second), outputs(&clean));

    // A third machine with a second edit on top: the first edit's vector
    // was uploaded by the second machine, so again one text.
    let third = embedding_project(&ollama.url);
    edit_first_title(&third);
    edit_first_title(&third);
    let before = ollama.texts();
    let run = third.build(&["--remote-cache", &url, "--remote-cache-read-only"]);
    assert_eq!(ollama.texts(), before + 1, "{}", run.stderr);
    assert_eq!(run.report()["remote"]["vectorsUploaded"], 0, "read-only");
}

#[test]
fn a_damaged_vector_shard_is_reported_and_its_texts_are_embedded() {
    let server = Nginx::start(None);
    let url = server.url();
    let ollama = common::embed_server::EmbedServer::start(8);
    let first = embedding_project(&ollama.url);
    first.build(&["--remote-cache", &url]);
    let sent = ollama.texts();
    // Flip a byte in the middle of every action-cache entry: target entries
    // and vector shards alike are now unusable.
    for entry in std::fs::read_dir(server.store().join("ac")).expect("ac dir") {
        let path = entry.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&path, bytes).expect("write");
    }
    let second = embedding_project(&ollama.url);
    edit_first_title(&second);
    let run = second.build(&["--remote-cache", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("remote vector shard") && run.stderr.contains("unusable"),
        "{}",
        run.stderr
    );
    assert_eq!(ollama.texts(), sent * 2, "every text embedded again");
    let clean = embedding_project(&ollama.url);
    edit_first_title(&clean);
    clean.build(&["--no-remote-cache"]);
    assert_eq!(beta_vectors(&second), beta_vectors(&clean));
}

#[test]
fn watch_and_serve_install_from_the_remote_cache_too() {
    use std::io::BufRead;
    let server = Nginx::start(None);
    let url = server.url();
    let first = sample_project();
    first.build(&["--remote-cache", &url]);

    // `pipe watch`'s first build downloads every target.
    let second = sample_project();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipe"))
        .args(["watch", "--debounce", "300", "--remote-cache", &url])
        .current_dir(second.dir.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pipe watch");
    let stdout = child.stdout.take().expect("stdout");
    let mut start = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if line.starts_with("watch: start:") {
            start = line;
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(start.contains("rebuilt"), "{start}");
    assert_eq!(outputs(&first), outputs(&second));
    let after_watch = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /pipe/cas/"))
        .count();
    assert!(after_watch > 0, "watch downloaded nothing");

    // A build started from the admin page does too.
    let third = sample_project();
    let page = common::server::Server::start(third.dir.path(), &["--remote-cache", &url]);
    let mut events = page.events();
    let r = page.post("/api/build", "{}");
    assert_eq!(r.status, 202, "{}", r.body);
    let done = events.until_done();
    let last = done.last().expect("an event");
    assert_eq!(last["status"], "completed", "{last}");
    let statuses: Vec<&str> = last["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| *s == "downloaded"),
        "{statuses:?}"
    );
    assert_eq!(outputs(&first), outputs(&third));
}

#[test]
fn an_edited_title_takes_the_unchanged_vector_parts_from_the_cache() {
    let server = Nginx::start(None);
    let url = server.url();
    let first = sample_project();
    let run = first.build(&["--remote-cache", &url]);
    let models: Vec<String> = statuses(&run)
        .into_keys()
        .filter(|n| n.starts_with("movies-db@"))
        .collect();
    assert_eq!(models.len(), 3, "{models:?}");

    // A title edit changes the catalog, not the vectors: the databases are
    // built, each from the vector part the first machine built.
    let second = sample_project();
    edit_first_title(&second);
    let run = second.build(&["--remote-cache", &url]);
    for m in &models {
        assert_eq!(
            stat(&run, m, "vector_part"),
            "downloaded",
            "{m}: {}",
            run.stdout
        );
        // Built once, by whichever model's target came first.
        let catalog = stat(&run, m, "catalog_part");
        assert!(catalog == "built" || catalog == "shared", "{m}: {catalog}");
    }
    assert_eq!(run.report()["remote"]["partsDownloaded"], 3);
    assert!(
        run.stderr.contains("3 database part(s) taken"),
        "{}",
        run.stderr
    );
    let clean = sample_project();
    edit_first_title(&clean);
    clean.build(&["--no-remote-cache"]);
    assert_eq!(outputs(&second), outputs(&clean));
    assert_eq!(second.read("pipe.lock"), clean.read("pipe.lock"));

    // A damaged part blob is a reported miss: the part is built.
    for blob in server.blobs() {
        let mut bytes = std::fs::read(&blob).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&blob, bytes).expect("write");
    }
    let third = sample_project();
    edit_first_title(&third);
    let run = third.build(&["--remote-cache", &url]);
    for m in &models {
        assert_eq!(stat(&run, m, "vector_part"), "built", "{m}");
    }
    assert!(run.stderr.contains("remote cache part"), "{}", run.stderr);
    assert_eq!(outputs(&third), outputs(&clean));
}
