//! A temporary pipe project driven through the real binary.
#![allow(dead_code)]

pub mod embed_server;
pub mod nginx;
pub mod server;
pub mod stage;
pub mod watch;

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// This repository's root (its pipeline.toml, models.d and sample data/).
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A project in a temporary directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What one run of `pipe` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Parsed `--json` build report.
    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Names of targets with the given status in a `--json` build report, sorted.
    pub fn with_status(&self, status: &str) -> Vec<String> {
        let mut names: Vec<String> = self.report()["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|r| r["status"] == status)
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    }

    /// Targets built by this run.
    pub fn built(&self) -> Vec<String> {
        self.with_status("built")
    }
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn copy_dir(&self, from: &Path, rel: &str) {
        copy_tree(from, &self.path(rel));
    }

    pub fn pipe(&self, args: &[&str]) -> Run {
        pipe_in(self.dir.path(), args)
    }

    /// `pipe build --json ARGS`, asserting success.
    pub fn build(&self, args: &[&str]) -> Run {
        let mut all = vec!["build", "--json"];
        all.extend_from_slice(args);
        let run = self.pipe(&all);
        assert_eq!(
            run.code, 0,
            "pipe {all:?} failed\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run
    }

    /// Let the racy-timestamp window pass so that stat entries are trusted
    /// (otherwise pipe re-hashes recently written files, which is correct but
    /// would hide whether a build read a file).
    pub fn settle(&self) {
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
}

/// `pipe ARGS` in `dir` (without SOURCE_DATE_EPOCH).
pub fn pipe_in(dir: &Path, args: &[&str]) -> Run {
    pipe_with(dir, args, &[] as &[(&str, &str)])
}

/// `pipe ARGS` in `dir` with these environment variables set (and
/// SOURCE_DATE_EPOCH unset).
pub fn pipe_with<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    dir: &Path,
    args: &[&str],
    env: &[(K, V)],
) -> Run {
    let mut cmd = Command::cargo_bin("pipe").expect("binary");
    cmd.current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pipe");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Three model files like the shipped ones (small dimensions for speed).
pub fn write_models(p: &Project) {
    p.write("models.d/nomic.toml", "id = \"nomic\"\nname = \"Nomic Embed Text\"\ndimensions = 768\ndescription = \"Best quality\"\ndefault = true\n");
    p.write(
        "models.d/bge-micro.toml",
        "id = \"bge-micro\"\nname = \"BGE Micro v2\"\ndimensions = 384\ndescription = \"Faster\"\n",
    );
    p.write(
        "models.d/potion.toml",
        "id = \"potion\"\nname = \"Potion Base 2M\"\ndimensions = 64\ndescription = \"Smallest\"\n",
    );
}

/// Copy a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// A copy of this repository's project: pipeline.toml, models.d, data/.
pub fn sample_project() -> Project {
    let p = Project::new();
    std::fs::copy(
        Path::new(REPO).join("pipeline.toml"),
        p.path("pipeline.toml"),
    )
    .expect("copy pipeline.toml");
    p.copy_dir(&Path::new(REPO).join("models.d"), "models.d");
    p.copy_dir(&Path::new(REPO).join("data"), "data");
    p
}

/// Every file under `dir`, relative path → bytes.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                walk(base, &e.path(), out);
            } else {
                let rel = e
                    .path()
                    .strip_prefix(base)
                    .expect("under base")
                    .to_path_buf();
                out.insert(rel, std::fs::read(e.path()).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The model2vec test model `.ci/deps` unpacks (PIPE_MODEL2VEC_MODEL
/// overrides).
pub fn model2vec_dir() -> PathBuf {
    let dir = std::env::var_os("PIPE_MODEL2VEC_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".deps/models/tokenlearn-static-model"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "the model2vec test model is missing at {}: run .ci/deps (it downloads tokenlearn-static-model 0.1.1 from PyPI)",
        dir.display()
    );
    dir
}

/// A manifest with an `embeddings` target (every model's vectors made by
/// its provider) and a `movies-db` target over them (bench/embeddings.py's
/// too).
pub const EMBED_PIPELINE: &str = include_str!("../fixtures/embeddings/pipeline.toml");

/// Short texts in pairs that mean the same thing, as (movie id, title).
pub const PAIRED_TITLES: &[(&str, &str)] = &[
    ("tt0000001", "a cat sleeps on the warm sofa"),
    ("tt0000002", "the kitten naps on a soft couch"),
    ("tt0000003", "stock markets crash as banks fail"),
    (
        "tt0000004",
        "financial crisis hits the banks and the economy",
    ),
    ("tt0000005", "astronauts travel to space in a rocket"),
    ("tt0000006", "a space rocket carries astronauts to the moon"),
    ("tt0000007", "a detective investigates a murder"),
    ("tt0000008", "police detective solves the murder case"),
    ("tt0000009", "thieves plan a daring heist in Paris"),
    ("tt0000010", "a gang robs a bank vault in France"),
];

/// Write movies.json with a movie (of 2000, one clean source) for each of
/// `titles`, and an empty collections.json.
pub fn write_titled_movies(p: &Project, titles: &[(&str, &str)]) {
    p.write("data/collections.json", "{}");
    let mut movies = serde_json::Map::new();
    for (id, title) in titles {
        movies.insert(
            id.to_string(),
            serde_json::json!({"movieId": id, "title": title, "year": 2000, "sources": [{"type": "archive", "id": id}]}),
        );
    }
    p.write(
        "data/movies.json",
        &serde_json::to_string_pretty(&serde_json::Value::Object(movies)).unwrap(),
    );
}

/// The distance of `metric` (`l2`, `l1`, `cosine`) between two vectors,
/// computed in f64 independently of pipe and sqlite-vec, for brute-force
/// searches to check pipe's against.
pub fn distance(metric: &str, a: &[f32], b: &[f32]) -> f64 {
    let pairs = || a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y)));
    match metric {
        "l2" => pairs().map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt(),
        "l1" => pairs().map(|(x, y)| (x - y).abs()).sum(),
        "cosine" => {
            let dot: f64 = pairs().map(|(x, y)| x * y).sum();
            let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            1.0 - dot / (norm(a) * norm(b))
        }
        other => panic!("metric {other}"),
    }
}

/// Add the vector `v` of `id` to the embeddings file `file` of `p`.
pub fn add_vector(p: &Project, file: &str, id: &str, v: &[f32]) {
    let conn = rusqlite::Connection::open(p.path(file)).unwrap();
    let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    conn.execute(
        "INSERT INTO embeddings (movie_id, embedding, created_at) VALUES (?1, ?2, '2026-01-01')",
        rusqlite::params![id, blob],
    )
    .unwrap();
}

/// The Python of the test tools: `PIPE_PYTHON`, else the virtual environment
/// `.ci/deps` makes (`.deps/venv`), else `python3` on the PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PIPE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(REPO).join(".deps/venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// The path of sqlite-vec's loadable extension from PyPI (`.ci/deps` installs it).
pub fn vec0_path() -> String {
    if let Ok(p) = std::env::var("PIPE_VEC0") {
        return p;
    }
    let out = std::process::Command::new(python())
        .args(["-c", "import sqlite_vec; print(sqlite_vec.loadable_path())"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "sqlite-vec for Python is missing: run .ci/deps (pip install sqlite-vec==0.1.9)"
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// Run SQL in a stock sqlite3 shell with sqlite-vec loaded; its output.
pub fn stock_sqlite(db: &Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg("-bail")
        .arg(db)
        .arg(format!(".load {}", vec0_path()))
        .arg(sql)
        .output()
        .expect("the sqlite3 shell is missing: run .ci/deps");
    assert!(
        out.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Assert a run succeeded and parse its stdout as JSON.
pub fn json(run: &Run) -> serde_json::Value {
    assert_eq!(
        run.code, 0,
        "failed\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr))
}

/// Every (movie id, vector) of an embeddings input file, by movie id,
/// decoded independently of pipe.
pub fn embeddings(path: &Path) -> Vec<(String, Vec<f32>)> {
    let conn = rusqlite::Connection::open(path).expect("open embeddings");
    let mut stmt = conn
        .prepare("SELECT movie_id, embedding FROM embeddings ORDER BY movie_id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            let blob: Vec<u8> = r.get(1)?;
            let v = blob
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((r.get::<_, String>(0)?, v))
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    rows
}

/// A pipeline shaped like the movie one, with commands: per-model
/// embeddings, a per-model database built from them, and a model-free step.
pub const COMMAND_PIPELINE: &str = r#"
[inputs]
movies = "data/movies.txt"

[targets.embed]
kind = "command"
per-model = true
command = "printf '%s %s\n' {model} {dimensions} > {out}; cat data/movies.txt >> {out}"
inputs = ["movies"]
outs = ["data/emb-{model}.txt"]

[targets.db]
kind = "command"
per-model = true
command = "wc -l < data/emb-{model}.txt > {out}"
deps = ["data/emb-{model}.txt"]
outs = ["public/{model}.db"]

[targets.json]
kind = "command"
command = "tr a-z A-Z < data/movies.txt > {out}"
inputs = ["movies"]
outs = ["public/movies.json"]
"#;

/// A project with [`COMMAND_PIPELINE`], three models and a tiny input.
pub fn command_project() -> Project {
    let p = Project::new();
    p.write("pipeline.toml", COMMAND_PIPELINE);
    write_models(&p);
    p.write("data/movies.txt", "alien\nbrazil\n");
    p
}
