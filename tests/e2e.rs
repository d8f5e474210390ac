//! The admin page in a real headless browser: `pipe serve --port 0` on a
//! copy of this repository's project, then `node e2e/admin.test.mjs`
//! (playwright-core driving Debian's chromium) against it.
//!
//! Needs what `.ci/deps` installs: `chromium` (apt) and `npm ci --prefix
//! e2e`. Set `PIPE_SKIP_E2E=1` to skip it knowingly on a machine without a
//! browser; it never skips silently.

mod common;
use common::server::Server;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::REPO;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    if !chromium().exists() {
        return Some(format!("{} is not installed", chromium().display()));
    }
    if !Path::new(REPO)
        .join("e2e/node_modules/playwright-core")
        .is_dir()
    {
        return Some("e2e/node_modules is missing (npm ci --prefix e2e)".into());
    }
    None
}

#[test]
fn admin_page_builds_one_model_in_a_real_browser() {
    if std::env::var_os("PIPE_SKIP_E2E").is_some() {
        eprintln!("PIPE_SKIP_E2E is set: skipping the browser test");
        return;
    }
    if let Some(why) = missing_tools() {
        panic!("{why}: run .ci/deps to install the browser test's tools (or set PIPE_SKIP_E2E=1)");
    }
    let p = common::sample_project();
    // A quantized model (the page shows its storage), and a vector for a
    // movie that is not in movies.json: potion's build warns, and the
    // file has a row more than the database will have vectors.
    p.write(
        "models.d/potion-int8.toml",
        "id = \"potion-int8\"\nname = \"Potion Base 2M, int8\"\ndimensions = 64\n\
         embeddings = \"data/embeddings-potion-movies.db\"\nquantization = \"int8\"\n\
         rescore = true\ndescription = \"int8 vectors, re-ranked by the float ones\"\n",
    );
    let v: Vec<f32> = (0..64).map(|i| i as f32 / 100.0).collect();
    common::add_vector(&p, "data/embeddings-potion-movies.db", "tt0000000gone", &v);
    let server = Server::start(p.dir.path(), &[]);

    // target/e2e/admin.png, wherever the target directory is.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(REPO).join("target"));
    let screenshot = target_dir.join("e2e/admin.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut node = Command::new("node")
        .current_dir(REPO)
        .arg("e2e/admin.test.mjs")
        .arg(&server.url)
        .arg(&screenshot)
        .env("CHROMIUM_PATH", chromium())
        .spawn()
        .expect("run node");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = node.try_wait().expect("wait for node") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = node.kill();
            panic!("the browser test took more than 3 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "e2e/admin.test.mjs failed ({status})");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );

    // What the browser did, seen from the terminal.
    let run = p.pipe(&["status"]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("movies-db@potion") && l.ends_with("up to date")),
        "{}",
        run.stdout
    );
    assert!(
        !p.path("public/movies").exists(),
        "skip-JSON built the JSON files"
    );
}
