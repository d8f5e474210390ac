use super::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

fn small(movies: usize, seed: u64) -> SampleSpec {
    SampleSpec {
        movies,
        seed,
        collections: 4,
        models: vec![SampleModel::new("potion", 64), SampleModel::new("tiny", 8)],
    }
}

fn read_vectors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let conn = crate::sqlite::open_read_only(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT movie_id, embedding FROM embeddings ORDER BY rowid")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let blob: Vec<u8> = r.get(1)?;
            let v = blob
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((r.get(0)?, v))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = generate(&small(3000, 42), a.path()).unwrap();
    let rb = generate(&small(3000, 42), b.path()).unwrap();
    assert_eq!(ra.vectors, rb.vectors);
    assert_eq!(ra.files.len(), 4);
    for (fa, fb) in ra.files.iter().zip(&rb.files) {
        assert_eq!(fa.strip_prefix(a.path()), fb.strip_prefix(b.path()));
        assert!(
            std::fs::read(fa).unwrap() == std::fs::read(fb).unwrap(),
            "{fa:?} differs"
        );
    }
    // No temporary files left behind.
    let names: BTreeSet<String> = std::fs::read_dir(a.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "movies.json",
        "collections.json",
        "embeddings-potion-movies.db",
        "embeddings-tiny-movies.db",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, expected);
}

#[test]
fn different_seed_gives_different_data() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = generate(&small(200, 1), a.path()).unwrap();
    let rb = generate(&small(200, 2), b.path()).unwrap();
    for (fa, fb) in ra.files.iter().zip(&rb.files) {
        assert!(
            std::fs::read(fa).unwrap() != std::fs::read(fb).unwrap(),
            "{fa:?} same"
        );
    }
}

#[test]
fn movies_json_has_the_real_shape() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&small(4000, 7), dir.path()).unwrap();
    assert_eq!(report.movies, 4000);
    let text = std::fs::read_to_string(dir.path().join("data/movies.json")).unwrap();
    assert!(text.starts_with("{\n  \"_schema\": {\n    \"version\""));
    let doc: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert!(doc["_schema"]["lastUpdated"].is_string());
    let movies: Vec<&Value> = doc
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(movies.len(), 4000, "movie ids are unique");

    let count = |f: &dyn Fn(&Value) -> bool| movies.iter().filter(|m| f(m)).count();
    let pct = |n: usize| n * 100 / movies.len();
    for (k, m) in doc.iter().filter(|(k, _)| !k.starts_with('_')) {
        assert_eq!(m["movieId"].as_str(), Some(k.as_str()));
        assert!(m["sources"].as_array().is_some_and(|s| !s.is_empty()));
        assert!(m["lastUpdated"].is_string());
    }
    let unmarked = |s: &Value| s.get("qualityMarks").is_none();
    let filtered = count(&|m| !m["sources"].as_array().unwrap().iter().any(unmarked));
    assert!((3..=7).contains(&pct(filtered)), "filtered {filtered}");
    let partly = count(&|m| {
        let s = m["sources"].as_array().unwrap();
        s.iter().any(unmarked) && !s.iter().all(unmarked)
    });
    assert!(partly > 0);
    assert!(count(&|m| m["movieId"].as_str().unwrap().starts_with("tt")) > 2000);
    assert!(count(&|m| m["movieId"].as_str().unwrap().starts_with("archive-")) > 400);
    assert!(count(&|m| m["movieId"].as_str().unwrap().starts_with("youtube-")) > 200);
    let no_meta = count(&|m| m.get("metadata").is_none());
    assert!((15..=40).contains(&pct(no_meta)), "no metadata {no_meta}");
    assert!(count(&|m| m.get("year").is_none()) > 40);
    assert!(count(&|m| !m["title"].as_str().unwrap().is_ascii()) > 100);
    assert!(count(&|m| m.get("ai").is_some()) > 0);
    assert!(count(&|m| m.get("verified").is_some()) > 0);

    let sources: Vec<&Value> = movies
        .iter()
        .flat_map(|m| m["sources"].as_array().unwrap())
        .collect();
    let has = |key: &str| sources.iter().any(|s| s.get(key).is_some());
    for key in [
        "size",
        "fileSize",
        "releaseYear",
        "year",
        "regionRestriction",
        "qualityMarks",
        "label",
        "downloads",
        "channelName",
        "quality",
    ] {
        assert!(has(key), "no source has {key}");
    }
    assert!(sources.iter().any(|s| s["language"].is_string()));
    assert!(sources.iter().any(|s| s["language"].is_array()));

    let metas: Vec<&Value> = movies.iter().filter_map(|m| m.get("metadata")).collect();
    assert!(metas.iter().any(|m| m["Rated"] == "N/A"));
    assert!(metas.iter().any(|m| m["Director"] == "N/A"));
    assert!(metas
        .iter()
        .all(|m| m["imdbVotes"].is_u64() || m.get("imdbVotes").is_none()));
    assert!(metas.iter().any(|m| m["imdbRating"].is_f64()));
    assert!(metas.iter().any(|m| m.get("imdbRating").is_none()));
    assert!(metas
        .iter()
        .any(|m| m["Genre"].as_str().is_some_and(|g| g.contains(", "))));
    // Directors recur, so director matches happen downstream.
    let mut directors: HashMap<&str, usize> = HashMap::new();
    for m in &metas {
        *directors
            .entry(m["Director"].as_str().unwrap())
            .or_default() += 1;
    }
    assert!(directors.values().any(|&n| n >= 5));
    assert!(directors.len() > 200);
}

#[test]
fn collections_list_existing_movies() {
    let dir = tempfile::tempdir().unwrap();
    generate(&small(1000, 3), dir.path()).unwrap();
    let movies: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/movies.json")).unwrap())
            .unwrap();
    let doc: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/collections.json")).unwrap())
            .unwrap();
    assert!(doc.contains_key("_schema"));
    assert_eq!(doc.len(), 5);
    for (id, c) in doc.iter().filter(|(k, _)| !k.starts_with('_')) {
        assert_eq!(c["id"].as_str(), Some(id.as_str()));
        let ids = c["movieIds"].as_array().unwrap();
        assert!((20..=60).contains(&ids.len()), "{id}: {}", ids.len());
        let unique: BTreeSet<&str> = ids.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(unique.len(), ids.len());
        assert!(unique.iter().all(|m| movies.contains_key(*m)));
    }
}

#[test]
fn embeddings_db_has_the_real_schema_and_clean_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&small(3000, 5), dir.path()).unwrap();
    let path = dir.path().join("data/embeddings-potion-movies.db");
    let conn = crate::sqlite::open_read_only(&path).unwrap();
    let schema: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        schema,
        [
            "CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT)",
            "CREATE TABLE embeddings (movie_id TEXT PRIMARY KEY, embedding BLOB NOT NULL, created_at TEXT NOT NULL)",
        ]
    );
    let dims: String = conn
        .query_row(
            "SELECT value FROM config WHERE key = 'embedding_dimensions'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dims, "64");
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM embeddings WHERE length(embedding) != 256 OR created_at NOT LIKE '2025-12-__T__:__:__.___Z'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);

    let vectors = read_vectors(&path);
    assert_eq!(vectors.len(), report.vectors["potion"]);
    for (id, v) in &vectors {
        assert!(v.iter().all(|x| x.is_finite()), "{id}");
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{id}: {norm}");
    }
    // Some movies have no vector; a few vectors have no movie.
    let movies: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/movies.json")).unwrap())
            .unwrap();
    let with_vec: BTreeSet<&str> = vectors.iter().map(|(id, _)| id.as_str()).collect();
    let missing = movies
        .keys()
        .filter(|k| !k.starts_with('_') && !with_vec.contains(k.as_str()))
        .count();
    assert!((40..=200).contains(&missing), "{missing}");
    assert!(with_vec.iter().any(|id| !movies.contains_key(*id)));
    // The other model covers nearly the same movies, with other vectors.
    let tiny = read_vectors(&dir.path().join("data/embeddings-tiny-movies.db"));
    assert!(tiny.iter().all(|(_, v)| v.len() == 8));
    assert!(tiny.len().abs_diff(vectors.len()) < 60);
}

#[test]
fn nearest_neighbours_share_genre_or_director() {
    let dir = tempfile::tempdir().unwrap();
    generate(&small(2000, 11), dir.path()).unwrap();
    let movies: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/movies.json")).unwrap())
            .unwrap();
    // Genres and director as the JSON states them (movies with metadata).
    type Facts = (BTreeSet<String>, String);
    let facts = |id: &str| -> Option<Facts> {
        let m = movies.get(id)?.get("metadata")?;
        let genres = m["Genre"].as_str()?;
        let director = m["Director"].as_str()?;
        if genres == "N/A" || director == "N/A" {
            return None;
        }
        let genres = genres.split(", ").map(String::from).collect();
        let director = director.split(", ").next()?.to_string();
        Some((genres, director))
    };
    let related = |a: &Facts, b: &Facts| a.1 == b.1 || !a.0.is_disjoint(&b.0);
    let vectors: Vec<(String, Vec<f32>, Facts)> =
        read_vectors(&dir.path().join("data/embeddings-potion-movies.db"))
            .into_iter()
            .filter_map(|(id, v)| facts(&id).map(|f| (id, v, f)))
            .collect();
    assert!(vectors.len() > 1000);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();

    let (mut hits, mut chance) = (0, 0);
    let probes = 300;
    for i in (0..vectors.len())
        .step_by(vectors.len() / probes)
        .take(probes)
    {
        let (_, vi, fi) = &vectors[i];
        let nearest = (0..vectors.len())
            .filter(|&j| j != i)
            .max_by(|&a, &b| dot(vi, &vectors[a].1).total_cmp(&dot(vi, &vectors[b].1)))
            .unwrap();
        hits += usize::from(related(fi, &vectors[nearest].2));
        // Baseline: an arbitrary other movie.
        let other = (i * 7919 + 13) % vectors.len();
        chance += usize::from(related(fi, &vectors[other].2));
    }
    eprintln!("nearest related {hits}/{probes}, arbitrary {chance}/{probes}");
    assert!(hits * 100 >= probes * 85, "nearest related {hits}/{probes}");
    assert!(
        hits >= chance * 3 / 2 + 30,
        "nearest {hits} vs chance {chance}"
    );
}

#[test]
fn rejects_bad_models() {
    let dir = tempfile::tempdir().unwrap();
    for models in [
        vec![SampleModel::new("../x", 4)],
        vec![SampleModel::new("", 4)],
        vec![SampleModel::new("a", 0)],
        vec![SampleModel::new("a", 4), SampleModel::new("a", 8)],
    ] {
        let spec = SampleSpec {
            models,
            ..SampleSpec::new(10, 0)
        };
        assert!(matches!(
            generate(&spec, dir.path()),
            Err(SampleError::InvalidSpec(_))
        ));
    }
}

#[test]
fn tiny_and_empty_samples_work() {
    for n in [0, 1, 5] {
        let dir = tempfile::tempdir().unwrap();
        let report = generate(&small(n, 9), dir.path()).unwrap();
        assert_eq!(report.movies, n);
        let doc: serde_json::Map<String, Value> =
            serde_json::from_slice(&std::fs::read(dir.path().join("data/movies.json")).unwrap())
                .unwrap();
        assert_eq!(doc.len(), n + 1);
    }
}

#[test]
fn many_collections_keep_distinct_ids() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SampleSpec {
        collections: 40,
        ..small(300, 4)
    };
    generate(&spec, dir.path()).unwrap();
    let doc: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/collections.json")).unwrap())
            .unwrap();
    // Themes repeat with 40 collections; none may overwrite another.
    assert_eq!(doc.len(), 41);
}
