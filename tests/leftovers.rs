//! What a killed or failed build leaves: pipe's own temporaries are swept
//! by the next build and by `pipe clean` (and nothing else is), and a
//! movie-json build that fails midway changes none of the JSON files. And
//! what a good build leaves: one older copy of each database it replaced,
//! in `.pipe/cache/recycle/`, never written into, gone with `pipe clean`.

mod common;
use common::{sample_project, tree, Project, REPO};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every `.pipe-tmp-*` file under the project, relative.
fn temporaries(p: &Project) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &path, out);
            } else if e.file_name().to_string_lossy().starts_with(".pipe-tmp-") {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(p.dir.path(), p.dir.path(), &mut out);
    out.sort();
    out
}

const PLANTED: &[&str] = &[
    "public/movies/.pipe-tmp-tt0001083.json.AbC123",
    "public/data/potion/.pipe-tmp-movies.db.XyZ789",
    "public/data/.pipe-tmp-movies.db.Q1",
    ".pipe/cache/movies-db/.pipe-tmp-vectors.potion.db.K2",
    ".pipe/targets/.pipe-tmp-movie-json.bin.Z9",
];

/// Files that look alike but are not pipe's temporaries, or are not in a
/// directory pipe writes.
const DECOYS: &[&str] = &[
    "public/movies/notes.pipe-tmp",
    "public/movies/pipe-tmp-x.json",
    "public/movies/keep.txt",
    "data/.pipe-tmp-mine",
];

fn plant(p: &Project) {
    for f in PLANTED.iter().chain(DECOYS) {
        p.write(f, "left over");
    }
}

#[test]
fn the_next_build_and_clean_remove_pipes_temporaries_and_nothing_else() {
    let p = sample_project();
    p.build(&[]);
    plant(&p);
    // The next build sweeps them, even one with nothing to rebuild (the
    // output directories changed since the last build).
    let noop = p.build(&[]);
    assert!(noop.built().is_empty());
    assert_eq!(temporaries(&p), [PathBuf::from("data/.pipe-tmp-mine")]);
    for f in DECOYS {
        assert_eq!(p.read(f), "left over", "{f}");
    }
    // So does a build that rebuilds.
    plant(&p);
    let collections = p.read("data/collections.json");
    p.write("data/collections.json", &format!("{collections}\n"));
    let run = p.build(&[]);
    assert!(!run.built().is_empty());
    assert_eq!(temporaries(&p), [PathBuf::from("data/.pipe-tmp-mine")]);
    for f in DECOYS {
        assert_eq!(p.read(f), "left over", "{f}");
    }

    // pipe clean -n lists them, pipe clean removes them with the outputs.
    plant(&p);
    let dry = p.pipe(&["clean", "-n"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    for f in PLANTED {
        assert!(
            dry.stdout.contains(&format!("would remove {f}")),
            "{f}: {}",
            dry.stdout
        );
    }
    assert!(!dry.stdout.contains("keep.txt") && !dry.stdout.contains("notes.pipe-tmp"));
    assert_eq!(temporaries(&p).len(), PLANTED.len() + 1);
    let clean = p.pipe(&["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert_eq!(temporaries(&p), [PathBuf::from("data/.pipe-tmp-mine")]);
    for f in DECOYS {
        assert_eq!(p.read(f), "left over", "{f}");
    }
    assert!(
        !p.path("public/data/potion").exists(),
        "emptied directories go too"
    );
}

#[test]
fn a_build_killed_midway_leaves_temporaries_that_the_next_build_removes() {
    let p = sample_project();
    let sample = p.pipe(&["sample", "--movies", "4000", "--seed", "7"]);
    assert_eq!(sample.code, 0, "{}", sample.stderr);
    let mut left = Vec::new();
    for _attempt in 0..5 {
        let _ = std::fs::remove_dir_all(p.path("public"));
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("pipe"))
            .args(["build", "-q"])
            .current_dir(p.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if !temporaries(&p).is_empty() {
                child.kill().unwrap(); // SIGKILL: nothing of pipe's runs
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        child.wait().unwrap();
        left = temporaries(&p);
        if !left.is_empty() {
            break;
        }
    }
    assert!(!left.is_empty(), "no kill caught a temporary in 5 attempts");
    assert!(
        p.path(".pipe/building").exists(),
        "the killed build says it did not finish"
    );

    let run = p.pipe(&["build", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        temporaries(&p),
        Vec::<PathBuf>::new(),
        "left by the kill: {left:?}"
    );
    assert!(!p.path(".pipe/building").exists());
    assert!(p.build(&[]).built().is_empty());
}

/// The id of the movie rendered last: the last entry of movies.json that
/// has a JSON file.
fn last_rendered(p: &Project, text: &str) -> String {
    text.match_indices("\"movieId\": \"")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .filter(|id| p.path(&format!("public/movies/{id}.json")).exists())
        .last()
        .unwrap()
}

#[test]
fn a_movie_json_build_that_fails_midway_changes_no_json_file() {
    let p = sample_project();
    p.build(&["--target", "movie-json"]);
    let before = tree(&p.path("public/movies"));

    // Every title changes (every document must be rewritten); the document
    // rendered last becomes larger than the process may write, so the
    // build fails with a real I/O error after the others were written.
    let text = p.read("data/movies.json");
    let last = last_rendered(&p, &text);
    let mut edited = text.replace("\n    \"title\": \"", "\n    \"title\": \"Edited ");
    let at = edited.find(&format!("\"movieId\": \"{last}\"")).unwrap();
    let plot = at + edited[at..].find("\"Plot\": \"").unwrap() + "\"Plot\": \"".len();
    edited.insert_str(plot, &"x".repeat(3 << 20));
    p.write("data/movies.json", &edited);

    let pipe = assert_cmd::cargo::cargo_bin("pipe");
    // 2048 blocks of 512 bytes: 1 MiB per file; SIGXFSZ ignored, so a
    // write beyond it fails with EFBIG instead of killing the process.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 2048; trap '' XFSZ; exec '{}' build --target movie-json -j 1",
            pipe.display()
        ))
        .current_dir(p.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("public/movies/{last}.json")) && stderr.contains("too large"),
        "{stderr}"
    );
    assert_eq!(
        tree(&p.path("public/movies")),
        before,
        "no JSON file changed"
    );
    assert!(
        temporaries(&p).is_empty(),
        "a failed build removes its temporaries"
    );

    // Without the limit it builds, and every document changed.
    let run = p.build(&["--target", "movie-json"]);
    assert_eq!(run.report()["results"][0]["written"], before.len() as u64);
}

/// The kept databases (`.pipe/cache/recycle/*.old`): blake3 → inode.
fn kept(p: &Project) -> BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(p.path(".pipe/cache/recycle")) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".old"))
        .map(|e| {
            let hash = blake3::hash(&std::fs::read(e.path()).unwrap())
                .to_hex()
                .to_string();
            (hash, e.metadata().unwrap().ino())
        })
        .collect()
}

/// The databases a build published: path → (blake3, inode).
fn databases(p: &Project) -> BTreeMap<String, (String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for model in ["bge-micro", "nomic", "potion"] {
        let rel = format!("public/data/{model}/movies.db");
        let bytes = std::fs::read(p.path(&rel)).unwrap();
        let ino = std::fs::metadata(p.path(&rel)).unwrap().ino();
        out.insert(rel, (blake3::hash(&bytes).to_hex().to_string(), ino));
    }
    out
}

#[test]
fn an_edit_keeps_the_databases_it_replaced_and_never_writes_into_them() {
    // Large enough that every database is kept (8 MB and up).
    let p = Project::new();
    std::fs::copy(
        Path::new(REPO).join("pipeline.toml"),
        p.path("pipeline.toml"),
    )
    .unwrap();
    p.copy_dir(&Path::new(REPO).join("models.d"), "models.d");
    let made = p.pipe(&[
        "sample", "--movies", "12000", "--seed", "1", "--dir", ".", "-q",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    p.build(&[]);
    assert!(kept(&p).is_empty(), "a first build replaces nothing");

    let original = p.read("data/movies.json");
    let edited = original.replacen("\"title\": \"", "\"title\": \"X ", 1);
    assert_ne!(edited, original);
    let mut before = databases(&p);
    for text in [&edited, &original, &edited] {
        p.write("data/movies.json", text);
        p.build(&[]);
        let after = databases(&p);
        // Each replaced database is kept as it was (the same file, its
        // bytes untouched), and none is a file that is published now.
        let kept = kept(&p);
        assert_eq!(kept.len(), 3, "{kept:?}");
        for (rel, (hash, ino)) in &before {
            assert_eq!(kept.get(hash), Some(ino), "{rel} was kept as it was");
            assert_ne!(after[rel].0, *hash, "{rel} changed");
        }
        assert!(temporaries(&p).is_empty(), "{:?}", temporaries(&p));
        before = after;
    }

    // What the kept files held changed nothing: the same bytes as a clean
    // build of the same data.
    let clean = Project::new();
    clean.copy_dir(&p.path("data"), "data");
    clean.copy_dir(&p.path("models.d"), "models.d");
    clean.write("pipeline.toml", &p.read("pipeline.toml"));
    clean.build(&[]);
    for (rel, (hash, _)) in databases(&clean) {
        assert_eq!(before[&rel].0, hash, "{rel} equals a clean build's");
    }

    let cleaned = p.pipe(&["clean"]);
    assert_eq!(cleaned.code, 0, "{}", cleaned.stderr);
    assert!(kept(&p).is_empty(), "pipe clean removes the kept databases");
}
