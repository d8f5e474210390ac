//! The `records-db` stage: both layouts open in a stock `sqlite3` with
//! sqlite-vec and answer KNN queries as a brute force over the input vectors
//! does (l2, cosine and l1; float and int8), the bytes are reproducible, an
//! edit reuses the vector tables it does not touch, and `pipe search` /
//! `pipe compare` read records databases.

mod common;

use common::stage::StageEnv;
use pipe::manifest::model::{Metric, Model, Quantization, Quantized};
use pipe::records::{Column, ColumnType, Format, IdRule, Layout, RecordsDbSpec, RecordsSpec};
use pipe::stage::{NoProgress, StageOutput};
use pipe::stages::records_db;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const RECORDS: usize = 60;
const K: usize = 5;

/// A deterministic generator (xorshift), so the data needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// A unit vector (every component in [-1, 1], as int8 needs).
    fn unit(&mut self, dims: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dims).map(|_| self.next()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
}

fn model(id: &str, dims: u32, metric: Metric, q: Option<Quantization>) -> Model {
    Model {
        id: id.into(),
        name: format!("Model {id}"),
        dimensions: dims,
        metric,
        embeddings: format!("data/{id}.embeddings.db").into(),
        description: "test".into(),
        default: false,
        file: format!("models.d/{id}.toml").into(),
        quantization: q.map(|kind| Quantized {
            kind,
            rescore: false,
            oversample: 8,
        }),
        ollama_model: None,
        embed: None,
    }
}

/// Float and int8 tables for each metric, with different dimensions.
fn models() -> Vec<Model> {
    vec![
        model("f-l2", 8, Metric::L2, None),
        model("f-cos", 12, Metric::Cosine, None),
        model("f-l1", 6, Metric::L1, None),
        model("q-l2", 8, Metric::L2, Some(Quantization::Int8)),
        model("q-cos", 16, Metric::Cosine, Some(Quantization::Int8)),
        model("q-l1", 10, Metric::L1, Some(Quantization::Int8)),
    ]
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A project: `data/films.jsonl` and one embeddings file per model (the
/// original format: `embeddings(movie_id, embedding, created_at)`). Every
/// record but the last has a vector in every model.
fn project(models: &[Model]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    let mut text = String::new();
    // File order is not id order: the database sorts.
    for i in (0..RECORDS).rev() {
        let word = ["heist", "comet", "river"][i % 3];
        text.push_str(&format!(
            "{{\"sku\": \"r{i:03}\", \"Title\": \"The {word} number {i}\", \"Rating\": {}.5}}\n",
            i % 10
        ));
    }
    std::fs::write(root.join("data/films.jsonl"), text).unwrap();
    for (n, m) in models.iter().enumerate() {
        write_embeddings(root, m, n as u64, None);
    }
    dir
}

/// Write `m`'s embeddings file (seeded by `seed`); `changed` replaces one
/// record's vector.
fn write_embeddings(root: &Path, m: &Model, seed: u64, changed: Option<&str>) {
    let path = root.join(&m.embeddings);
    let _ = std::fs::remove_file(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE embeddings (movie_id TEXT PRIMARY KEY, embedding BLOB NOT NULL, created_at TEXT)",
    )
    .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((seed + 1) * 7919));
    for i in 0..RECORDS - 1 {
        let id = format!("r{i:03}");
        let mut v = rng.unit(m.dimensions as usize);
        if changed == Some(id.as_str()) {
            v.reverse();
        }
        conn.execute(
            "INSERT INTO embeddings VALUES (?1, ?2, '2024-01-01')",
            rusqlite::params![id, to_blob(&v)],
        )
        .unwrap();
    }
}

fn spec(models: &[Model], layout: Layout, path: &str) -> RecordsDbSpec {
    RecordsDbSpec {
        name: "films-db".into(),
        records: RecordsSpec {
            input: "data/films.jsonl".into(),
            format: Format::JsonLines,
            id: IdRule::Field("sku".into()),
            file_names: false,
            columns: Vec::new(),
        },
        columns: vec![
            Column {
                name: "Title".into(),
                ty: ColumnType::Text,
                nullable: false,
            },
            Column {
                name: "Rating".into(),
                ty: ColumnType::Real,
                nullable: true,
            },
        ],
        fts: vec!["Title".into()],
        layout,
        path: path.into(),
        models: models.to_vec(),
        primary: models[0].id.clone(),
        embeddings: BTreeMap::new(),
    }
}

fn run(root: &Path, spec: &RecordsDbSpec) -> StageOutput {
    try_run(root, spec).unwrap_or_else(|e| panic!("{e}"))
}

fn try_run(root: &Path, spec: &RecordsDbSpec) -> Result<StageOutput, String> {
    let env = StageEnv::named("films-db");
    records_db::run(&env.ctx(root, &NoProgress), spec).map_err(|e| e.to_string())
}

/// Per-model databases (`public/<model>/films.db`) and the single one
/// (`public/films.db`), built; their paths.
fn build_all(root: &Path, models: &[Model]) -> (Vec<PathBuf>, PathBuf) {
    let mut per_model = Vec::new();
    for m in models {
        let path = format!("public/{}/films.db", m.id);
        run(
            root,
            &spec(std::slice::from_ref(m), Layout::PerModel, &path),
        );
        per_model.push(root.join(path));
    }
    run(root, &spec(models, Layout::Single, "public/films.db"));
    (per_model, root.join("public/films.db"))
}

/// `trunc((x + 1) / (2/255) − 128)`, as sqlite-vec's `vec_quantize_int8(v,
/// 'unit')` defines it, computed here independently of pipe.
fn int8(v: &[f32]) -> Vec<f32> {
    let step = 2.0f32 / 255.0;
    v.iter()
        .map(|&x| (((x + 1.0) / step) - 128.0).trunc())
        .collect()
}

/// The k nearest (id, distance) by brute force over the input vectors (as
/// the table stores them: int8 tables compare quantized vectors).
fn brute_force(root: &Path, m: &Model, query: &[f32]) -> Vec<(String, f64)> {
    let quantized = m.quantization.is_some();
    let q = if quantized {
        int8(query)
    } else {
        query.to_vec()
    };
    let mut all: Vec<(String, f64)> = common::embeddings(&root.join(&m.embeddings))
        .into_iter()
        .map(|(id, v)| {
            let v = if quantized { int8(&v) } else { v };
            (id, common::distance(m.metric.as_str(), &q, &v))
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(K);
    all
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The KNN answer of the stock shell for `table` (id, distance).
fn stock_knn(db: &Path, table: &str, m: &Model, query: &[f32]) -> Vec<(String, f64)> {
    let blob = format!("X'{}'", hex(&to_blob(query)));
    let arg = if m.quantization.is_some() {
        format!("vec_quantize_int8({blob}, 'unit')")
    } else {
        blob
    };
    let out = common::stock_sqlite(
        db,
        &format!("SELECT id, distance FROM {table} WHERE embedding MATCH {arg} AND k = {K} ORDER BY distance;"),
    );
    out.lines()
        .map(|l| {
            let (id, d) = l.split_once('|').unwrap();
            (id.to_string(), d.parse().unwrap())
        })
        .collect()
}

/// Same neighbours as the brute force: the same distances in order (ties
/// may swap ids), and each id at its own brute-force distance.
fn assert_same(
    what: &str,
    got: &[(String, f64)],
    want: &[(String, f64)],
    all: &BTreeMap<String, f64>,
) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for ((id, d), (_, wd)) in got.iter().zip(want) {
        let tol = 1e-4 * wd.abs().max(1.0);
        assert!((d - wd).abs() < tol, "{what}: {got:?} vs {want:?}");
        assert!(
            (all[id] - d).abs() < tol,
            "{what}: {id} at {d}, brute force {}",
            all[id]
        );
    }
}

#[test]
fn both_layouts_answer_knn_as_a_brute_force_does_in_the_stock_shell() {
    let models = models();
    let dir = project(&models);
    let root = dir.path();
    let (per_model, single) = build_all(root, &models);
    let mut rng = Rng(42);
    for (m, db) in models.iter().zip(&per_model) {
        let query = rng.unit(m.dimensions as usize);
        let want = brute_force(root, m, &query);
        let all: BTreeMap<String, f64> = {
            let quantized = m.quantization.is_some();
            let q = if quantized {
                int8(&query)
            } else {
                query.clone()
            };
            common::embeddings(&root.join(&m.embeddings))
                .into_iter()
                .map(|(id, v)| {
                    let v = if quantized { int8(&v) } else { v };
                    (id, common::distance(m.metric.as_str(), &q, &v))
                })
                .collect()
        };
        let got = stock_knn(db, "vec_records", m, &query);
        assert_same(&format!("{} per-model", m.id), &got, &want, &all);
        let table = format!("{}_embeddings", m.id.replace('-', "_"));
        let got = stock_knn(&single, &table, m, &query);
        assert_same(&format!("{} single", m.id), &got, &want, &all);
    }

    // The registry, coverage and full-text tables, read by the stock shell.
    let registry = common::stock_sqlite(
        &single,
        "SELECT model, dimensions, metric, ifnull(quantization, '-'), vector_table, is_primary FROM models ORDER BY model;",
    );
    assert_eq!(
        registry,
        "f-cos|12|cosine|-|f_cos_embeddings|0\nf-l1|6|l1|-|f_l1_embeddings|0\n\
         f-l2|8|l2|-|f_l2_embeddings|1\nq-cos|16|cosine|int8|q_cos_embeddings|0\n\
         q-l1|10|l1|int8|q_l1_embeddings|0\nq-l2|8|l2|int8|q_l2_embeddings|0\n"
    );
    let coverage = common::stock_sqlite(
        &single,
        "SELECT count(*), count(DISTINCT id) FROM record_models; \
         SELECT count(*) FROM records WHERE id NOT IN (SELECT id FROM record_models);",
    );
    assert_eq!(
        coverage,
        format!("{}|{}\n1\n", 6 * (RECORDS - 1), RECORDS - 1)
    );
    let ordered = common::stock_sqlite(
        &single,
        "SELECT group_concat(id, ',') FROM (SELECT id FROM records ORDER BY rowid LIMIT 3);",
    );
    assert_eq!(ordered, "r000,r001,r002\n");
    let fts = common::stock_sqlite(
        &per_model[0],
        "SELECT count(*) FROM records_fts WHERE records_fts MATCH 'comet'; \
         SELECT r.id FROM records_fts f JOIN records r ON r.rowid = f.rowid WHERE records_fts MATCH 'number 7';",
    );
    assert_eq!(fts, format!("{}\nr007\n", RECORDS / 3));
    let config = common::stock_sqlite(
        &single,
        "SELECT value FROM config WHERE key = 'q-l2.embedding_quantization'; \
         SELECT value FROM config WHERE key = 'f-cos.embedding_model_dimensions';",
    );
    assert_eq!(config, "int8\n12\n");
    let rating = common::stock_sqlite(
        &single,
        "SELECT typeof(Rating), Rating FROM records WHERE id = 'r013';",
    );
    assert_eq!(rating, "real|3.5\n");
}

#[test]
fn bytes_are_the_same_in_two_directories_and_from_the_cache() {
    let models = models();
    let a = project(&models);
    let b = project(&models);
    let (pa, sa) = build_all(a.path(), &models);
    let (pb, sb) = build_all(b.path(), &models);
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
    let single = std::fs::read(&sa).unwrap();
    assert_eq!(single, std::fs::read(&sb).unwrap());
    // Built again from cached parts: the same bytes.
    std::fs::remove_dir_all(a.path().join("public")).unwrap();
    let again = run(a.path(), &spec(&models, Layout::Single, "public/films.db"));
    assert_ne!(again.stats["records_part"], "built");
    assert_eq!(std::fs::read(&sa).unwrap(), single);
}

#[test]
fn an_edit_rebuilds_only_the_parts_it_touches() {
    let models = models();
    let dir = project(&models);
    let root = dir.path();
    let single = spec(&models, Layout::Single, "public/films.db");
    let first = run(root, &single);
    assert_eq!(first.stats["records_part"], "built");
    for m in &models {
        assert_eq!(first.stats[&format!("vector_part.{}", m.id)], "built");
    }

    // A record's field (not its id): the records part is rebuilt, every
    // model's vector table is reused.
    let path = root.join("data/films.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("The comet number 7\"", "The comet number seven\""),
    )
    .unwrap();
    let second = run(root, &single);
    assert_eq!(second.stats["records_part"], "built");
    for m in &models {
        assert_eq!(
            second.stats[&format!("vector_part.{}", m.id)],
            "cached",
            "{}",
            m.id
        );
    }
    let title = common::stock_sqlite(
        &root.join("public/films.db"),
        "SELECT Title FROM records WHERE id = 'r007';",
    );
    assert_eq!(title, "The comet number seven\n");

    // One model's embedding of one record: only that model's table, and
    // that one patched in place (a float table: one vector replaced).
    write_embeddings(root, &models[1], 1, Some("r004"));
    let third = run(root, &single);
    assert_ne!(third.stats["records_part"], "built");
    for m in &models {
        let want = if m.id == models[1].id {
            "patched"
        } else {
            "cached"
        };
        assert_eq!(
            third.stats[&format!("vector_part.{}", m.id)],
            want,
            "{}",
            m.id
        );
    }

    // And the result is what a clean build of the same inputs writes.
    let clean = tempfile::tempdir().unwrap();
    common::copy_tree(&root.join("data"), &clean.path().join("data"));
    run(clean.path(), &single);
    assert_eq!(
        std::fs::read(root.join("public/films.db")).unwrap(),
        std::fs::read(clean.path().join("public/films.db")).unwrap()
    );
}

/// The ids of a `pipe search --json` answer.
fn result_ids(report: &serde_json::Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The neighbours of `like`'s vector by brute force (it left out).
fn brute_force_like(root: &Path, m: &Model, like: &str, k: usize) -> Vec<String> {
    let vectors = common::embeddings(&root.join(&m.embeddings));
    let query = vectors.iter().find(|(id, _)| id == like).unwrap().1.clone();
    let mut all: Vec<(String, f64)> = vectors
        .into_iter()
        .filter(|(id, _)| id != like)
        .map(|(id, v)| {
            let d = common::distance(m.metric.as_str(), &query, &v);
            (id, d)
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.into_iter().take(k).map(|(id, _)| id).collect()
}

#[test]
fn search_and_compare_read_records_databases() {
    let models = vec![
        model("f-l2", 8, Metric::L2, None),
        model("f-cos", 12, Metric::Cosine, None),
        model("q-l1", 10, Metric::L1, Some(Quantization::Int8)),
    ];
    let p = common::Project {
        dir: project(&models),
    };
    let root = p.dir.path().to_path_buf();
    let (per_model, _) = build_all(&root, &models);

    // The single database: the primary model unless -m says otherwise.
    let report = common::json(&p.pipe(&[
        "search",
        "--db",
        "public/films.db",
        "--like",
        "r005",
        "-k",
        "4",
        "--json",
    ]));
    assert_eq!(report["model"], "f-l2");
    assert_eq!(report["query"]["title"], "The river number 5");
    assert_eq!(
        result_ids(&report),
        brute_force_like(&root, &models[0], "r005", 4)
    );
    let first = &report["results"][0];
    assert!(
        first["title"].as_str().unwrap().starts_with("The "),
        "{first}"
    );
    // A record is {id, title}: no movie's names, no year.
    for r in report["results"].as_array().unwrap() {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["id", "title", "distance", "score"], "{r}");
    }
    assert_eq!(report["query"]["id"], "r005");
    assert!(report["query"].get("movieId").is_none(), "{report}");
    // The table: ID and the title column (the full-text one), no YEAR.
    let table = p.pipe(&[
        "search",
        "--db",
        "public/films.db",
        "--like",
        "r005",
        "-k",
        "2",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let header = table
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with('#'))
        .unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["#", "ID", "TITLE", "SCORE"], "{}", table.stdout);

    let report = common::json(&p.pipe(&[
        "search",
        "--db",
        "public/films.db",
        "-m",
        "f-cos",
        "--like",
        "r010",
        "-k",
        "3",
        "--json",
    ]));
    assert_eq!(report["model"], "f-cos");
    assert_eq!(report["score"], "similarity");
    assert_eq!(
        result_ids(&report),
        brute_force_like(&root, &models[1], "r010", 3)
    );

    // A vector from a file, with a score threshold, on a per-model database.
    let query: Vec<f32> = common::embeddings(&root.join(&models[1].embeddings))[7]
        .1
        .clone();
    p.write("q.json", &serde_json::to_string(&query).unwrap());
    let report = common::json(&p.pipe(&[
        "search",
        "--db",
        per_model[1].to_str().unwrap(),
        "--vector",
        "q.json",
        "-k",
        "10",
        "--min-score",
        "0.999",
        "--json",
    ]));
    assert_eq!(result_ids(&report), ["r007"]);

    // Bad input: an unknown model, an unknown record.
    let run = p.pipe(&[
        "search",
        "--db",
        "public/films.db",
        "-m",
        "f-l3",
        "--like",
        "r001",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("has no vectors of model `f-l3` (did you mean `f-l2`?)"),
        "{}",
        run.stderr
    );
    let run = p.pipe(&["search", "--db", "public/films.db", "--like", "r0055"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown record id `r0055`"),
        "{}",
        run.stderr
    );

    // compare over the tables of the single database.
    let dbs: Vec<pipe::search::Database> = models
        .iter()
        .map(|m| {
            pipe::search::Database::open_model(&root.join("public/films.db"), Some(&m.id)).unwrap()
        })
        .collect();
    let opts = pipe::compare::CompareOptions {
        k: 3,
        sample: 10,
        seed: 1,
    };
    let report = pipe::compare::compare(&dbs, &opts).unwrap();
    assert_eq!(report.common, RECORDS - 1);
    assert_eq!(report.sample.len(), 10);
    let stats: Vec<(String, usize, u64)> = report
        .models
        .iter()
        .map(|m| (m.model.clone(), m.vectors, m.vector_bytes))
        .collect();
    assert_eq!(
        stats,
        [
            ("f-l2".to_string(), RECORDS - 1, (RECORDS as u64 - 1) * 32),
            ("f-cos".to_string(), RECORDS - 1, (RECORDS as u64 - 1) * 48),
            ("q-l1".to_string(), RECORDS - 1, (RECORDS as u64 - 1) * 10),
        ]
    );
    for i in 0..3 {
        assert_eq!(report.overlap[i][i], 1.0);
    }
}

/// A project declaring the records target in pipeline.toml, its models in
/// models.d with `embeddings` files (the original format, made here).
fn manifest_project(layout: &str, path: &str) -> (common::Project, Vec<Model>) {
    let models = vec![
        model("f-l2", 8, Metric::L2, None),
        model("q-cos", 16, Metric::Cosine, Some(Quantization::Int8)),
    ];
    let p = common::Project {
        dir: project(&models),
    };
    p.write(
        "pipeline.toml",
        &format!(
            "[inputs]\nfilms = \"data/films.jsonl\"\n\n[targets.films-db]\nkind = \"records-db\"\n\
             records = \"films\"\nid = \"sku\"\ncolumns = {{ Title = \"text\", Rating = \"real?\" }}\n\
             fts = [\"Title\"]\nlayout = \"{layout}\"\npath = \"{path}\"\n"
        ),
    );
    p.write(
        "models.d/f-l2.toml",
        "id = \"f-l2\"\nname = \"Float l2\"\ndimensions = 8\nembeddings = \"data/f-l2.embeddings.db\"\ndefault = true\n",
    );
    p.write(
        "models.d/q-cos.toml",
        "id = \"q-cos\"\nname = \"Int8 cosine\"\ndimensions = 16\nmetric = \"cosine\"\nquantization = \"int8\"\nrescore = false\nembeddings = \"data/q-cos.embeddings.db\"\n",
    );
    (p, models)
}

/// The result of target `name` in a `--json` build report.
fn result<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn a_manifest_builds_searches_and_compares_records_databases() {
    for (layout, path, targets) in [
        ("single", "public/films.db", vec!["films-db"]),
        (
            "per-model",
            "public/{model}/films.db",
            vec!["films-db@f-l2", "films-db@q-cos"],
        ),
    ] {
        let (p, models) = manifest_project(layout, path);
        let run = p.build(&[]);
        assert_eq!(run.built(), targets, "{layout}: {}", run.stdout);

        // -m finds the model's database (or table) through the manifest.
        let report = common::json(&p.pipe(&[
            "search", "-m", "q-cos", "--like", "r020", "-k", "3", "--json",
        ]));
        assert_eq!(report["model"], "q-cos", "{layout}");
        assert_eq!(report["quantization"], "int8", "{layout}");
        assert_eq!(result_ids(&report).len(), 3, "{layout}");
        let report = common::json(&p.pipe(&[
            "search", "-m", "f-l2", "--like", "r020", "-k", "3", "--json",
        ]));
        assert_eq!(
            result_ids(&report),
            brute_force_like(p.dir.path(), &models[0], "r020", 3),
            "{layout}"
        );
        let report = common::json(&p.pipe(&["compare", "-k", "3", "--sample", "5", "--json"]));
        assert_eq!(report["common"], RECORDS - 1, "{layout}");
        assert_eq!(report["models"][1]["quantization"], "int8", "{layout}");

        // A record's title: the records part is rebuilt, the vector tables reused.
        p.settle();
        let file = p.path("data/films.jsonl");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(
            &file,
            text.replace("The heist number 9\"", "The heist number nine\""),
        )
        .unwrap();
        let run = p.build(&[]);
        let report = run.report();
        for t in &targets {
            let stats = &result(&report, t)["stats"];
            let records = stats["records_part"].as_str().unwrap();
            assert!(
                ["built", "shared"].contains(&records),
                "{layout} {t}: {stats}"
            );
            for m in &models {
                if t.contains('@') && !t.ends_with(&format!("@{}", m.id)) {
                    continue;
                }
                let part = &stats[format!("vector_part.{}", m.id)];
                assert_eq!(part, "cached", "{layout} {t}: {stats}");
            }
        }
        let built: Vec<_> = targets
            .iter()
            .filter(|t| result(&report, t)["stats"]["records_part"] == "built")
            .collect();
        assert_eq!(built.len(), 1, "{layout}: the records part is built once");
        let nothing = p.build(&[]);
        assert!(nothing.built().is_empty(), "{layout}: {}", nothing.stdout);
    }
}

#[test]
fn bad_input_and_damaged_parts_never_damage_the_database() {
    let models = models();
    let dir = project(&models);
    let root = dir.path();
    let single = spec(&models, Layout::Single, "public/films.db");
    run(root, &single);
    let good = std::fs::read(root.join("public/films.db")).unwrap();

    // A record whose declared real column holds text: an error naming the
    // file, the line and the record; the database in place is untouched.
    let file = root.join("data/films.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("\"Rating\": 3.5}", "\"Rating\": \"high\"}"),
    )
    .unwrap();
    let err = try_run(root, &single).unwrap_err();
    assert!(err.starts_with("data/films.jsonl:"), "{err}");
    assert!(err.contains("Rating"), "{err}");
    assert!(std::fs::read(root.join("public/films.db")).unwrap() == good);
    std::fs::write(&file, &text).unwrap();

    // A vector of the wrong size: the file, the record and the model.
    let m = &models[2];
    let conn = rusqlite::Connection::open(root.join(&m.embeddings)).unwrap();
    let saved: Vec<u8> = conn
        .query_row(
            "SELECT embedding FROM embeddings WHERE movie_id = 'r003'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE embeddings SET embedding = zeroblob(12) WHERE movie_id = 'r003'",
        [],
    )
    .unwrap();
    let err = try_run(root, &single).unwrap_err();
    assert!(
        err.contains("data/f-l1.embeddings.db: the vector of record \"r003\" has 12 bytes (3 dimensions), but model f-l1 has 6 dimensions"),
        "{err}"
    );
    assert!(std::fs::read(root.join("public/films.db")).unwrap() == good);
    conn.execute(
        "UPDATE embeddings SET embedding = ?1 WHERE movie_id = 'r003'",
        [&saved],
    )
    .unwrap();
    drop(conn);

    // A cached records part damaged on disk (its description intact): the
    // assembly fails, the part is built again, the bytes are the same.
    let cache = root.join(".pipe/cache/records-db");
    let part = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("records.") && name.ends_with(".db")
        })
        .unwrap();
    std::fs::write(&part, b"not a database").unwrap();
    std::fs::remove_file(root.join("public/films.db")).unwrap();
    let out = run(root, &single);
    assert!(
        out.warnings.iter().any(|w| w.code == "cache-damaged"),
        "{:?}",
        out.warnings
    );
    assert_eq!(out.stats["records_part"], "built");
    let clean = tempfile::tempdir().unwrap();
    common::copy_tree(&root.join("data"), &clean.path().join("data"));
    run(clean.path(), &single);
    let hash = |p: &Path| blake3::hash(&std::fs::read(p).unwrap());
    assert_eq!(
        hash(&root.join("public/films.db")),
        hash(&clean.path().join("public/films.db"))
    );
}

/// The `config` rows of both layouts: the same database-wide keys
/// unprefixed, each model's keys prefixed `<model>.` in both, and a
/// per-model database's one model's keys unprefixed too (as a movies.db).
#[test]
fn config_keys_are_the_same_in_both_layouts() {
    let models = vec![
        model("f-l2", 8, Metric::L2, None),
        model("q-cos", 16, Metric::Cosine, Some(Quantization::Int8)),
    ];
    let dir = project(&models);
    let (per_model, single) = build_all(dir.path(), &models);
    let config = |db: &Path| -> BTreeMap<String, String> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut st = conn.prepare("SELECT key, value FROM config").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let single = config(&single);
    let wide = |c: &BTreeMap<String, String>| -> Vec<String> {
        c.keys()
            .filter(|k| !k.contains('.') && !k.starts_with("embedding") && !k.contains("vector"))
            .cloned()
            .collect()
    };
    assert_eq!(
        wide(&single),
        [
            "layout",
            "models",
            "pipe_version",
            "primary_model",
            "records"
        ]
    );
    assert_eq!(single["layout"], "single");
    assert_eq!(single["models"], "f-l2,q-cos");
    // Only prefixed model keys in the single layout.
    assert!(single
        .keys()
        .all(|k| k.contains('.') || wide(&single).contains(k)));
    for (m, db) in models.iter().zip(&per_model) {
        let c = config(db);
        assert_eq!(wide(&c), wide(&single), "{}", db.display());
        assert_eq!(c["layout"], "per-model");
        assert_eq!(c["models"], m.id);
        let prefix = format!("{}.", m.id);
        let prefixed: BTreeMap<&str, &String> = c
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k, v)))
            .collect();
        // The same model keys as in the single database…
        let in_single: BTreeMap<&str, &String> = single
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k, v)))
            .collect();
        assert_eq!(prefixed, in_single, "{}", m.id);
        assert!(prefixed.contains_key("embedding_model_id"));
        // …and unprefixed, as movies-db writes them.
        for (k, v) in &prefixed {
            assert_eq!(c.get(*k), Some(*v), "{}: {k}", m.id);
        }
    }
}
