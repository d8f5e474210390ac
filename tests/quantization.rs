//! Quantized models (`quantization = "int8" | "bit"`, optionally with
//! `rescore`) on the bundled sample: their databases open in a stock sqlite3
//! with sqlite-vec from PyPI, `pipe search` answers on them, rescoring keeps
//! recall@10 ≥ 0.9 against the float original, and builds are reproducible.

mod common;
use common::{json, stock_sqlite, Project};

/// The quantized variants of potion added to the sample, as
/// (id, quantization, rescore).
const VARIANTS: &[(&str, &str, bool)] = &[
    ("potion-int8", "int8", true),
    ("potion-bit", "bit", true),
    ("potion-int8-only", "int8", false),
    ("potion-bit-only", "bit", false),
];

/// This repository's project plus one drop-in file per quantized variant,
/// each over potion's embeddings file.
fn sample() -> Project {
    let p = common::sample_project();
    for (id, q, rescore) in VARIANTS {
        p.write(
            &format!("models.d/{id}.toml"),
            &format!(
                "id = \"{id}\"\nname = \"Potion {q}\"\ndimensions = 64\nmetric = \"l2\"\n\
                 embeddings = \"data/embeddings-potion-movies.db\"\nquantization = \"{q}\"\n\
                 rescore = {rescore}\n"
            ),
        );
    }
    p
}

/// One movie's float vector from the embeddings input, as a JSON array.
fn vector_json(p: &Project, id: &str) -> String {
    let emb = rusqlite::Connection::open(p.path("data/embeddings-potion-movies.db")).unwrap();
    let blob: Vec<u8> = emb
        .query_row(
            "SELECT embedding FROM embeddings WHERE movie_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let v: Vec<String> = blob
        .chunks_exact(4)
        .map(|c| format!("{:?}", f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    format!("[{}]", v.join(","))
}

fn ids(results: &serde_json::Value) -> Vec<String> {
    results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["movieId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn quantized_databases_open_in_a_stock_sqlite3_and_search_finds_neighbours() {
    let p = sample();
    p.build(&[]);
    let float_db = p.path("public/data/potion/movies.db");
    let query = stock_sqlite(
        &float_db,
        "SELECT movieId FROM vec_movies ORDER BY movieId LIMIT 1 OFFSET 7;",
    )
    .trim()
    .to_string();
    let vector = vector_json(&p, &query);
    let float_like = json(&p.pipe(&[
        "search", "--model", "potion", "--like", &query, "-k", "10", "--json",
    ]));
    let truth = ids(&float_like);
    assert_eq!(truth.len(), 10);

    for (id, q, rescore) in VARIANTS {
        let db = p.path(&format!("public/data/{id}/movies.db"));
        assert_eq!(stock_sqlite(&db, "PRAGMA integrity_check;").trim(), "ok");
        let config = stock_sqlite(
            &db,
            "SELECT key || '=' || value FROM config WHERE key LIKE 'embedding_%' ORDER BY key;",
        );
        assert!(
            config.contains(&format!("embedding_quantization={q}")),
            "{config}"
        );
        assert!(
            config.contains(&format!("embedding_rescore={rescore}")),
            "{config}"
        );
        // Stored bytes per vector: int8 one per dimension, bit one per 8.
        let bytes = if *q == "int8" { 64 } else { 8 };
        assert_eq!(
            stock_sqlite(&db, "SELECT DISTINCT length(embedding) FROM vec_movies;").trim(),
            bytes.to_string()
        );
        assert_eq!(
            stock_sqlite(
                &db,
                "SELECT count(*) FROM sqlite_master WHERE name = 'vec_movies_float' AND sql NOT LIKE '%WITHOUT ROWID%';"
            )
            .trim(),
            if *rescore { "1" } else { "0" }
        );

        // The KNN query a front end writes, in stock sqlite3: the movie's
        // own vector finds the movie first.
        let quantize = if *q == "int8" {
            format!("vec_quantize_int8('{vector}', 'unit')")
        } else {
            format!("vec_quantize_binary('{vector}')")
        };
        let found = stock_sqlite(
            &db,
            &format!(
                "SELECT v.movieId FROM vec_movies v JOIN movies m ON v.movieId = m.movieId \
                 WHERE v.embedding MATCH {quantize} AND k = 5 ORDER BY v.distance;"
            ),
        );
        let found: Vec<&str> = found.lines().collect();
        assert_eq!(found.len(), 5, "{id}");
        assert!(found.contains(&query.as_str()), "{id}: {found:?}");

        // pipe search answers with k sensible neighbours.
        let like = json(&p.pipe(&[
            "search", "--model", id, "--like", &query, "-k", "10", "--json",
        ]));
        let got = ids(&like);
        assert_eq!(got.len(), 10, "{id}");
        assert!(!got.contains(&query), "{id}: the query movie is left out");
        let shared = got.iter().filter(|m| truth.contains(m)).count();
        // Rescored: nearly potion's list; int8 alone: close to it; bit
        // alone (hamming over 64 bits, many ties) still far above chance
        // (10 of ~350 movies share 0.3 with it on average).
        let least = match (*q, *rescore) {
            (_, true) => 9,
            ("int8", false) => 7,
            _ => 3,
        };
        assert!(
            shared >= least,
            "{id}: only {shared} of potion's 10 neighbours: {got:?} vs {truth:?}"
        );
        assert_eq!(like["quantization"], *q);
        if *rescore {
            // Rescored distances are the exact float distances.
            assert_eq!(like["distance"], "l2");
            // Bit keeps far less than int8: it takes more candidates.
            assert_eq!(like["oversample"], if *q == "bit" { 32 } else { 8 });
        } else if *q == "bit" {
            assert_eq!(like["distance"], "hamming");
        }
        let table = p.pipe(&["search", "--model", id, "--like", &query]);
        assert_eq!(table.code, 0, "{}", table.stderr);
        assert!(
            table.stdout.contains(&format!("{q} vectors")),
            "{}",
            table.stdout
        );
    }
}

#[test]
fn rescoring_keeps_recall_at_10_above_0_9_against_the_float_original() {
    let p = sample();
    p.build(&[]);
    let models = "potion,potion-int8,potion-bit,potion-int8-only,potion-bit-only";
    let report = json(&p.pipe(&[
        "compare", "--models", models, "-k", "10", "--sample", "100", "--json",
    ]));
    let recall = report["recall"].as_array().expect("recall");
    assert_eq!(recall.len(), 4, "{report}");
    for r in recall {
        assert_eq!(r["original"], "potion", "{r}");
        let model = r["model"].as_str().unwrap();
        let value = r["recall"].as_f64().unwrap();
        eprintln!("recall@10 of {model}: {value:.3}");
        if model == "potion-int8" || model == "potion-bit" {
            assert!(value >= 0.9, "{model}: recall@10 {value} < 0.9");
        }
        assert!(r["scannedBytesSaved"].as_i64().unwrap() > 0, "{r}");
    }
    let table = p.pipe(&["compare", "--models", models]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("RECALL@10"), "{}", table.stdout);
}

#[test]
fn quantized_builds_are_reproducible_and_leave_the_float_database_alone() {
    let a = sample();
    let b = sample();
    a.build(&[]);
    b.build(&[]);
    for (id, _, _) in VARIANTS {
        let rel = format!("public/data/{id}/movies.db");
        assert!(
            std::fs::read(a.path(&rel)).unwrap() == std::fs::read(b.path(&rel)).unwrap(),
            "{rel} differs between two clean builds"
        );
    }
    // The same project without the quantized models builds the same float
    // database: quantization adds nothing to it.
    let plain = common::sample_project();
    plain.build(&[]);
    let rel = "public/data/potion/movies.db";
    assert!(
        std::fs::read(a.path(rel)).unwrap() == std::fs::read(plain.path(rel)).unwrap(),
        "the float database changed"
    );
    // Nothing to do the second time; toggling rescore rebuilds that model only.
    let again = a.build(&[]);
    assert!(again.built().is_empty(), "{:?}", again.built());
    let file = "models.d/potion-int8.toml";
    let text = a.read(file).replace("rescore = true", "rescore = false");
    a.write(file, &text);
    let rebuilt = a.build(&[]);
    assert_eq!(rebuilt.built(), vec!["movies-db@potion-int8".to_string()]);
}

#[test]
fn int8_fails_clearly_on_a_component_outside_minus_one_to_one() {
    let p = sample();
    // Every vector scaled by 3: the largest components leave [-1, 1].
    let emb = rusqlite::Connection::open(p.path("data/embeddings-potion-movies.db")).unwrap();
    let rows: Vec<(String, Vec<u8>)> = emb
        .prepare("SELECT movie_id, embedding FROM embeddings")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, blob) in rows {
        let scaled: Vec<u8> = blob
            .chunks_exact(4)
            .flat_map(|c| (3.0 * f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
            .collect();
        emb.execute(
            "UPDATE embeddings SET embedding = ?1 WHERE movie_id = ?2",
            rusqlite::params![scaled, id],
        )
        .unwrap();
    }
    drop(emb);
    let run = p.pipe(&["build", "--target", "movies-db@potion-int8"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("outside [-1, 1]")
            && run.stderr.contains("of the vector of movie")
            && run.stderr.contains("quantization = \"int8\""),
        "{}",
        run.stderr
    );
    // The float and bit models of the same file build: only int8 needs the range.
    p.build(&[
        "--target",
        "movies-db@potion",
        "--target",
        "movies-db@potion-bit",
    ]);
}

/// A project of `movies` generated movies (`pipe sample`) with bge-micro
/// (384 dimensions) and nomic (768), each with rescored int8 and bit
/// variants.
fn generated_with_rescored_variants(movies: usize) -> Project {
    let p = common::sample_project();
    let run = p.pipe(&[
        "sample",
        "--movies",
        &movies.to_string(),
        "--seed",
        "1",
        "-q",
        "--model",
        "bge-micro:384",
        "--model",
        "nomic:768",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::remove_file(p.path("models.d/potion.toml")).unwrap();
    for (base, dims) in [("bge-micro", 384), ("nomic", 768)] {
        for q in ["int8", "bit"] {
            p.write(
                &format!("models.d/{base}-{q}.toml"),
                &format!(
                    "id = \"{base}-{q}\"\nname = \"{base} {q}\"\ndimensions = {dims}\n\
                     embeddings = \"data/embeddings-{base}-movies.db\"\nquantization = \"{q}\"\n\
                     rescore = true\n"
                ),
            );
        }
    }
    p
}

/// The float vectors of a rescored database used to be a WITHOUT ROWID
/// table: a 1.5 or 3 KB row spilled to overflow pages of its own, and the
/// database was 2.25 times the float one at 384 dimensions (1.46 at 768;
/// bit: 2.11 and 1.29). In a rowid table they take about a page per 4 KB
/// (1.30, 1.35; bit 1.16, 1.18 at 3,000 movies).
#[test]
fn rescored_databases_are_not_much_larger_than_the_float_one() {
    let p = generated_with_rescored_variants(2000);
    p.build(&["movies-db"]);
    let size = |id: &str| {
        std::fs::metadata(p.path(&format!("public/data/{id}/movies.db")))
            .unwrap()
            .len() as f64
    };
    for base in ["bge-micro", "nomic"] {
        let float = size(base);
        for q in ["int8", "bit"] {
            let id = format!("{base}-{q}");
            let ratio = size(&id) / float;
            eprintln!("{id}: {ratio:.2} × the float database");
            // int8 adds a quarter of the float vectors, bit a 32nd; a
            // 768-dimension row takes a whole 4 KiB page.
            let most = if q == "int8" { 1.4 } else { 1.25 };
            assert!(ratio <= most, "{id} is {ratio:.2} × {base}'s database");
        }
        // And the rescored search is the float model's.
        let report = json(&p.pipe(&[
            "compare",
            "--models",
            &format!("{base},{base}-int8,{base}-bit"),
            "--sample",
            "50",
            "--json",
        ]));
        for r in report["recall"].as_array().expect("recall") {
            assert!(r["recall"].as_f64().unwrap() >= 0.9, "{r}");
        }
    }
}

/// The default model's database is the site's, queried with float vectors:
/// with no `default = true`, a quantized model is never chosen.
#[test]
fn the_default_is_never_a_quantized_model() {
    let p = Project::new();
    p.write("pipeline.toml", "");
    p.write(
        "models.d/a-bit.toml",
        "id = \"a-bit\"\nname = \"A bit\"\ndimensions = 8\nquantization = \"bit\"\n",
    );
    p.write(
        "models.d/b.toml",
        "id = \"b\"\nname = \"B\"\ndimensions = 8\n",
    );
    let run = p.pipe(&["models", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let models: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let defaults: Vec<&str> = models["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter(|m| m["default"] == true)
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["b"], "{}", run.stdout);
    assert!(
        run.stderr
            .contains("using `b` (the first by id that stores float vectors)"),
        "{}",
        run.stderr
    );
}

/// 64 bits cannot rank 100,000 movies (recall@10 0.47 rescored from 8
/// candidates per neighbour, 0.72 from 32): a bit model below 256
/// dimensions is told to use int8; int8 and longer bit vectors are not.
#[test]
fn short_bit_vectors_get_a_note_with_the_fix() {
    let p = sample();
    p.write(
        "models.d/bge-bit.toml",
        "id = \"bge-bit\"\nname = \"BGE bit\"\ndimensions = 384\n\
         embeddings = \"data/embeddings-bge-micro-movies.db\"\nquantization = \"bit\"\nrescore = true\n",
    );
    let run = p.pipe(&["models"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let notes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("bits per vector"))
        .collect();
    assert_eq!(notes.len(), 2, "{}", run.stderr);
    assert!(
        notes.iter().any(|n| n
            .contains("models.d/potion-bit.toml: quantization = \"bit\" keeps 64 bits per vector")
            && n.contains("rescoring 32 candidates per neighbour")
            && n.contains("use quantization = \"int8\"")),
        "{}",
        run.stderr
    );
    assert!(
        notes.iter().any(|n| n.contains("models.d/potion-bit-only.toml") && n.contains("without rescoring")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("bge-bit.toml"), "{}", run.stderr);
}
