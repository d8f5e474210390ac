//! The part cache of the `movies-db` stage: where the parts come from must
//! never show in the bytes, a one-movie edit reuses the vector part, the
//! three model targets of a process build the catalog once, and a damaged
//! or stale cache is only a miss.

mod common;

use common::stage::StageEnv;
use pipe::manifest::model::{Metric, Model};
use pipe::stage::{NoProgress, StageOutput};
use pipe::stages::movies_db::{self, MoviesDbSpec};
use std::path::{Path, PathBuf};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity/input");

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_tree(Path::new(FIXTURE), dir.path());
    dir
}

/// Three models over the one fixture embeddings file (64-d vectors): the
/// vector parts differ by metric, so each model has its own.
fn model(id: &str, metric: Metric) -> Model {
    Model {
        id: id.into(),
        name: format!("Model {id}"),
        dimensions: 64,
        metric,
        embeddings: "data/embeddings-potion-movies.db".into(),
        description: "test".into(),
        default: id == "potion",
        file: format!("models.d/{id}.toml").into(),
        quantization: None,
        ollama_model: None,
        embed: None,
    }
}

/// One model per metric over the fixture's embeddings file.
fn three_models() -> [Model; 3] {
    [
        model("potion", Metric::L2),
        model("cos", Metric::Cosine),
        model("man", Metric::L1),
    ]
}

/// Build each of `models` in the project `clean` (from scratch: its vector
/// parts are built) and check its database is byte for byte `root`'s.
fn equals_a_clean_build(root: &Path, clean: &Path, models: impl IntoIterator<Item = Model>) {
    for m in models {
        let out = build(clean, m.clone());
        assert_eq!(out.stats["vector_part"], "built", "{}", m.id);
        assert_eq!(db_bytes(clean, &m.id), db_bytes(root, &m.id), "{}", m.id);
    }
}

fn spec(model: Model) -> MoviesDbSpec {
    MoviesDbSpec {
        movies: "data/movies.json".into(),
        collections: "public/data/collections.json".into(),
        db_path: format!("public/data/{}/movies.db", model.id).into(),
        publish: None,
        model,
    }
}

fn build(root: &Path, model: Model) -> StageOutput {
    let env = StageEnv::new();
    movies_db::run(&env.ctx(root, &NoProgress), &spec(model)).unwrap()
}

fn db_bytes(root: &Path, id: &str) -> Vec<u8> {
    std::fs::read(root.join(format!("public/data/{id}/movies.db"))).unwrap()
}

fn cache_dir(root: &Path) -> PathBuf {
    root.join(".pipe/cache/movies-db")
}

fn cache_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache_dir(root))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn edit_title(root: &Path) {
    let path = root.join("data/movies.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"title\": \"River\"", "\"title\": \"Riverbank\"", 1),
    )
    .unwrap();
}

#[test]
fn bytes_do_not_depend_on_where_the_parts_came_from() {
    let dir = project();
    let root = dir.path();
    let potion = || model("potion", Metric::L2);

    let first = build(root, potion());
    assert_eq!(first.stats["vector_part"], "built");
    let fresh = db_bytes(root, "potion");

    // Output deleted, cache kept: both parts reused.
    std::fs::remove_dir_all(root.join("public/data/potion")).unwrap();
    let second = build(root, potion());
    assert_ne!(second.stats["catalog_part"], "built");
    assert_eq!(second.stats["vector_part"], "cached");
    assert_eq!(db_bytes(root, "potion"), fresh);

    // Cache deleted: both parts built again.
    std::fs::remove_dir_all(cache_dir(root)).unwrap();
    let third = build(root, potion());
    assert_eq!(third.stats["catalog_part"], "built");
    assert_eq!(third.stats["vector_part"], "built");
    assert_eq!(db_bytes(root, "potion"), fresh);

    // Another directory, its own cache: the same bytes.
    let other = project();
    build(other.path(), potion());
    assert_eq!(db_bytes(other.path(), "potion"), fresh);
}

#[test]
fn a_title_edit_reuses_the_vector_parts_and_equals_a_clean_build() {
    let dir = project();
    let root = dir.path();
    let models = three_models;
    for m in models() {
        build(root, m);
    }
    // One catalog (and its description and rows), one vector part per
    // model (and its digests).
    let before = cache_files(root);
    assert_eq!(before.len(), 9, "{before:?}");

    edit_title(root);
    for m in models() {
        let out = build(root, m.clone());
        assert_eq!(out.stats["vector_part"], "cached", "{}", m.id);
        assert_ne!(out.stats["catalog_part"], "cached", "{}", m.id);
    }
    // Only the newest entry of each kind is kept: a new catalog, the same
    // vector parts.
    let after = cache_files(root);
    assert_eq!(after.len(), 9, "{after:?}");
    assert_eq!(
        after
            .iter()
            .filter(|n| n.starts_with("vectors.") && n.ends_with(".db"))
            .count(),
        3
    );
    assert_eq!(
        before
            .iter()
            .filter(|n| n.starts_with("vectors."))
            .collect::<Vec<_>>(),
        after
            .iter()
            .filter(|n| n.starts_with("vectors."))
            .collect::<Vec<_>>()
    );
    assert_ne!(
        before.iter().find(|n| n.starts_with("catalog.")),
        after.iter().find(|n| n.starts_with("catalog."))
    );

    // Byte for byte what a clean build of the edited inputs writes.
    let clean = project();
    edit_title(clean.path());
    equals_a_clean_build(root, clean.path(), models());
    let conn = pipe::sqlite::open_read_only(&root.join("public/data/cos/movies.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM movies WHERE title = 'Riverbank'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn model_targets_of_one_process_build_the_catalog_once() {
    let dir = project();
    let root = dir.path();
    let outs: Vec<StageOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = [
            model("potion", Metric::L2),
            model("cos", Metric::Cosine),
            model("man", Metric::L1),
        ]
        .into_iter()
        .map(|m| s.spawn(move || build(root, m)))
        .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let built = outs
        .iter()
        .filter(|o| o.stats["catalog_part"] == "built")
        .count();
    assert_eq!(built, 1);
    assert!(outs.iter().all(|o| o.stats["vector_part"] == "built"));
}

#[test]
fn damaged_cache_entries_are_misses() {
    let dir = project();
    let root = dir.path();
    let potion = || model("potion", Metric::L2);
    build(root, potion());
    let good = db_bytes(root, "potion");
    // Garbage over every entry: the catalog known to this process is found
    // unusable at assembly and built again; the vector part fails to open.
    for name in cache_files(root) {
        std::fs::write(cache_dir(root).join(name), b"not a database").unwrap();
    }
    let out = build(root, potion());
    assert_eq!(out.stats["vector_part"], "built");
    assert_eq!(db_bytes(root, "potion"), good);
    // Truncated entries.
    for name in cache_files(root) {
        let p = cache_dir(root).join(name);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    }
    build(root, potion());
    assert_eq!(db_bytes(root, "potion"), good);
    assert_eq!(cache_files(root).len(), 5);

    // A damaged previous part when the inputs changed: patching it fails,
    // so it is dropped and the part built in full.
    for name in cache_files(root) {
        if name.starts_with("catalog.") && name.ends_with(".db") {
            std::fs::write(cache_dir(root).join(name), b"not a database").unwrap();
        }
    }
    edit_title(root);
    let out = build(root, potion());
    assert_eq!(out.stats["catalog_part"], "built");
    let clean = project();
    edit_title(clean.path());
    build(clean.path(), potion());
    assert_eq!(db_bytes(root, "potion"), db_bytes(clean.path(), "potion"));
}

/// Replace the first `from` in the project file `rel` with `to`.
fn replace(root: &Path, rel: &str, from: &str, to: &str) {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{rel} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

const MOVIES: &str = "data/movies.json";

/// Edits of one movie (or of the collections), and how the catalog part
/// of the next build is made: patched from the previous one when only the
/// movies' own rows change, built again when a shared table (names,
/// counts, junctions, collections) or the list of movies changes.
/// A replacement in one project file: (file, text, new text).
type Change = (&'static str, &'static str, &'static str);

/// (what is edited, the changes, how the catalog part is made).
type EditCase = (&'static str, &'static [Change], &'static str);

const EDITS: &[EditCase] = &[
    (
        "title",
        &[(MOVIES, r#""title": "River""#, r#""title": "Riverbank""#)],
        "patched",
    ),
    (
        "rating and language",
        &[
            (MOVIES, r#""imdbRating": 2.4"#, r#""imdbRating": 9.1"#),
            (
                MOVIES,
                r#""Language": "Japanese, French""#,
                r#""Language": "French""#,
            ),
        ],
        "patched",
    ),
    (
        "input timestamp",
        &[(
            MOVIES,
            r#""lastUpdated": "2026-01-01T00:00:00.000Z""#,
            r#""lastUpdated": "2026-02-01T00:00:00.000Z""#,
        )],
        "patched",
    ),
    (
        "actor added",
        &[(
            MOVIES,
            r#""Actors": "Mary Mifune, Sophia Davis""#,
            r#""Actors": "Mary Mifune, Sophia Davis, Ann New""#,
        )],
        "built",
    ),
    (
        "genre removed",
        &[(
            MOVIES,
            r#""Genre": "Film-Noir, Family""#,
            r#""Genre": "Film-Noir""#,
        )],
        "built",
    ),
    (
        "movie id",
        &[(
            MOVIES,
            r#""movieId": "youtube-1X""#,
            r#""movieId": "youtube-1Y""#,
        )],
        "built",
    ),
    (
        "collection",
        &[(
            "public/data/collections.json",
            r#""name": "Collection 0""#,
            r#""name": "Collection Zero""#,
        )],
        "built",
    ),
];

#[test]
fn an_edit_patches_the_catalog_when_it_can_and_equals_a_clean_build() {
    let models = || [model("potion", Metric::L2), model("cos", Metric::Cosine)];
    for (name, changes, expected) in EDITS {
        let dir = project();
        let root = dir.path();
        for m in models() {
            build(root, m);
        }
        for (rel, from, to) in *changes {
            replace(root, rel, from, to);
        }
        let clean = project();
        for (rel, from, to) in *changes {
            replace(clean.path(), rel, from, to);
        }
        for m in models() {
            let out = build(root, m.clone());
            // The vectors depend only on the list of movie ids.
            if *name != "movie id" {
                assert_eq!(out.stats["vector_part"], "cached", "{name}: {}", m.id);
            }
            build(clean.path(), m.clone());
            assert_eq!(
                db_bytes(root, &m.id),
                db_bytes(clean.path(), &m.id),
                "{name}: {}",
                m.id
            );
        }
        let sidecar = std::fs::read_to_string(
            cache_dir(root).join(
                cache_files(root)
                    .into_iter()
                    .find(|n| n.starts_with("catalog.") && n.ends_with(".json"))
                    .unwrap(),
            ),
        )
        .unwrap();
        let made = if sidecar.contains(r#""patched_movies": "none""#) {
            "built"
        } else {
            "patched"
        };
        assert_eq!(made, *expected, "{name}: {sidecar}");
    }
}

#[test]
fn patches_build_on_patches() {
    let dir = project();
    let root = dir.path();
    let potion = || model("potion", Metric::L2);
    build(root, potion());
    let steps = [
        (r#""title": "River""#, r#""title": "Riverbank""#),
        (r#""imdbRating": 2.4"#, r#""imdbRating": 3.5"#),
        (r#""title": "Riverbank""#, r#""title": "River""#),
    ];
    let clean = project();
    for (from, to) in steps {
        replace(root, MOVIES, from, to);
        assert_eq!(build(root, potion()).stats["catalog_part"], "patched");
        replace(clean.path(), MOVIES, from, to);
    }
    std::fs::remove_dir_all(cache_dir(clean.path())).ok();
    assert_eq!(build(clean.path(), potion()).stats["catalog_part"], "built");
    assert_eq!(db_bytes(root, "potion"), db_bytes(clean.path(), "potion"));
}

#[test]
fn assembled_statistics_equal_a_full_analyze() {
    let dir = project();
    let root = dir.path();
    build(root, model("potion", Metric::L2));
    let db = root.join("public/data/potion/movies.db");
    let copy = root.join("analyzed.db");
    std::fs::copy(&db, &copy).unwrap();
    let stats = |path: &Path, analyze: bool| {
        let conn = pipe::sqlite::open(path).unwrap();
        if analyze {
            conn.execute_batch("ANALYZE").unwrap();
        }
        let mut all = Vec::new();
        for sql in [
            "SELECT tbl, idx, stat FROM sqlite_stat1",
            "SELECT tbl, idx, neq || ' ' || nlt || ' ' || ndlt, hex(sample) FROM sqlite_stat4",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok((0..r.as_ref().column_count())
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            all.push(rows);
        }
        let free: i64 = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        (all, free, check)
    };
    let (ours, free, check) = stats(&db, false);
    let (full, _, _) = stats(&copy, true);
    assert!(!ours[0].is_empty() && !ours[1].is_empty());
    assert_eq!(ours, full);
    assert_eq!(free, 0, "no free pages, as after VACUUM");
    assert_eq!(check, "ok");
}

/// Replace the stored vector of `movie_id` in the project's embeddings file
/// (every float scaled, so its digest changes), or delete it with `None`.
fn set_vector(root: &Path, movie_id: &str, scale: Option<f32>) {
    let conn = rusqlite::Connection::open(root.join("data/embeddings-potion-movies.db")).unwrap();
    match scale {
        Some(s) => {
            let blob: Vec<u8> = conn
                .query_row(
                    "SELECT embedding FROM embeddings WHERE movie_id = ?1",
                    [movie_id],
                    |r| r.get(0),
                )
                .unwrap();
            let scaled: Vec<u8> = blob
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * s).to_le_bytes())
                .collect();
            conn.execute(
                "UPDATE embeddings SET embedding = ?2 WHERE movie_id = ?1",
                rusqlite::params![movie_id, scaled],
            )
            .unwrap();
        }
        None => {
            conn.execute("DELETE FROM embeddings WHERE movie_id = ?1", [movie_id])
                .unwrap();
        }
    }
}

/// The `n`th movie id (by id) of the fixture that has a vector.
fn movie_with_a_vector(root: &Path, n: usize) -> String {
    let conn = rusqlite::Connection::open(root.join("data/embeddings-potion-movies.db")).unwrap();
    conn.query_row(
        "SELECT movie_id FROM embeddings ORDER BY movie_id LIMIT 1 OFFSET ?1",
        [n],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_changed_vector_patches_the_vector_part_and_equals_a_clean_build() {
    let dir = project();
    let root = dir.path();
    let models = three_models;
    for m in models() {
        build(root, m);
    }
    let id = movie_with_a_vector(root, 3);
    let clean = project();
    // Two changes in a row: the second patches a patched part.
    for scale in [0.5, 3.0] {
        set_vector(root, &id, Some(scale));
        set_vector(clean.path(), &id, Some(scale));
        for m in models() {
            let out = build(root, m.clone());
            assert_eq!(out.stats["vector_part"], "patched", "{}", m.id);
            assert_ne!(out.stats["catalog_part"], "built", "{}", m.id);
        }
    }
    equals_a_clean_build(root, clean.path(), models());
    // The patched vector is the one searched.
    let conn = pipe::sqlite::open_read_only(&root.join("public/data/potion/movies.db")).unwrap();
    let stored: Vec<u8> = conn
        .query_row(
            "SELECT embedding FROM vec_movies WHERE movieId = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let file = rusqlite::Connection::open(root.join("data/embeddings-potion-movies.db")).unwrap();
    let now: Vec<u8> = file
        .query_row(
            "SELECT embedding FROM embeddings WHERE movie_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, now);
}

#[test]
fn a_vector_gone_or_a_damaged_digest_file_builds_the_vector_part_in_full() {
    let dir = project();
    let root = dir.path();
    let potion = || model("potion", Metric::L2);
    build(root, potion());
    let id = movie_with_a_vector(root, 3);
    let clean = project();

    // A movie lost its vector: rows would move, so the part is built anew.
    set_vector(root, &id, None);
    set_vector(clean.path(), &id, None);
    assert_eq!(build(root, potion()).stats["vector_part"], "built");

    // The digests beside the part do not match it: built, not patched.
    for name in cache_files(root) {
        if name.starts_with("vectors.") && name.ends_with(".rows") {
            std::fs::write(cache_dir(root).join(name), b"short").unwrap();
        }
    }
    let other = movie_with_a_vector(root, 5);
    set_vector(root, &other, Some(2.0));
    set_vector(clean.path(), &other, Some(2.0));
    assert_eq!(build(root, potion()).stats["vector_part"], "built");
    assert_eq!(build(clean.path(), potion()).stats["vector_part"], "built");
    assert_eq!(db_bytes(root, "potion"), db_bytes(clean.path(), "potion"));
}
