//! Records of any shape (issue 11), through the real binary: the record-file
//! errors a build must report (each leaving every output as it was), and
//! incremental embedding of records with the command provider
//! (scripts/embed-bow.py, which logs every text it is sent).

mod common;
use common::{embeddings, python, tree, Project, Run, REPO};
use std::path::Path;

fn bow_model(id: &str, dims: u32) -> String {
    format!(
        "id = \"{id}\"\nname = \"Bag of words {id}\"\ndimensions = {dims}\nembeddings = \"data/unused-{id}.db\"\n\n[embed]\nprovider = \"command\"\ncommand = [\"{py}\", \"scripts/embed-bow.py\", \"--dimensions\", \"{dims}\"]\nbatch = 20\n",
        py = python().display()
    )
}

/// A records project: `records` is the input file's name under data/.
fn project(records: &str, id: &str, columns: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.toml",
        &format!(
            "[inputs]\nfilms = \"data/{records}\"\n\n[targets.films-db]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"{id}\"\ncolumns = {{ {columns} }}\ntext = \"{{{{ title }}}}: {{{{ plot }}}}\"\njson = \"public/films/{{id}}.json\"\n"
        ),
    );
    std::fs::create_dir_all(p.path("scripts")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("scripts/embed-bow.py"),
        p.path("scripts/embed-bow.py"),
    )
    .unwrap();
    p.write("models.d/bow.toml", &bow_model("bow", 16));
    p
}

/// `pipe ARGS` with the embedding script's log.
fn pipe(p: &Project, args: &[&str]) -> Run {
    common::pipe_with(p.dir.path(), args, &[("EMBED_BOW_LOG", p.path("sent.log"))])
}

/// The targets these tests build: all (the records' embeddings, JSON
/// files and database).
fn targets(_: &Project) -> Vec<&'static str> {
    Vec::new()
}

fn build(p: &Project) -> Run {
    let mut args = vec!["build", "--json"];
    args.extend(targets(p));
    let run = pipe(p, &args);
    assert_eq!(run.code, 0, "build failed\n{}\n{}", run.stdout, run.stderr);
    run
}

/// Lines the script has logged: one per text it was sent.
fn sent(p: &Project) -> Vec<String> {
    std::fs::read_to_string(p.path("sent.log"))
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

const GOOD_JSONL: &str = "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"a heist in Paris\",\"year\":1999}\n{\"film\":\"f2\",\"title\":\"Beta\",\"plot\":\"a storm at sea\",\"year\":2001}\n";
const GOOD_CSV: &str =
    "film,title,plot,year\nf1,Alpha,a heist in Paris,1999\nf2,Beta,\"a storm, at sea\",2001\n";
const GOOD_JSON: &str = "[{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"a heist in Paris\",\"year\":1999},{\"film\":\"f2\",\"title\":\"Beta\",\"plot\":\"a storm at sea\",\"year\":2001}]";

const COLUMNS: &str = "title = \"text\", year = \"integer?\"";

struct Case {
    name: &'static str,
    /// The records file under data/ (its extension gives the format).
    file: &'static str,
    good: &'static str,
    /// The id rule and text template of the manifest.
    id: &'static str,
    text: Option<&'static str>,
    bad: &'static str,
    /// What stderr must contain.
    expect: &'static [&'static str],
    /// The declared columns.
    columns: &'static str,
    /// Whether the target writes JSON files. Not where the error is in
    /// the text template: a template is a target's and the JSON files do
    /// not use it, so they rightly follow the edited records while the
    /// embeddings fail. A record that does not fit a column, or whose id
    /// cannot be a file name, fails every target over the records.
    json: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "JSON Lines: a line that is not JSON",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"}\n{\"film\":\"f2\",\"title\":\"Beta\" \"plot\":\"y\"}\n",
        expect: &["data/films.jsonl:2: invalid JSON at column 29: expected `,` or `}`; each line must be one complete JSON object"],
        json: true,
    },
    Case {
        name: "JSON Lines: a line that is not an object",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"}\n[1, 2]\n",
        expect: &["data/films.jsonl:2: the line holds an array, not a JSON object"],
        json: true,
    },
    Case {
        name: "JSON: a syntax error in an element",
        file: "films.json",
        good: GOOD_JSON,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "[{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"},\n {\"film\":\"f2\",\"title\":\"Beta\",,}]",
        expect: &["data/films.json: element [1]: invalid JSON at line 2 column 30: key must be a string"],
        json: true,
    },
    Case {
        name: "JSON: neither an array nor an object",
        file: "films.json",
        good: GOOD_JSON,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "42",
        expect: &["data/films.json: the file holds a number; a JSON records file is an array of objects"],
        json: true,
    },
    Case {
        name: "CSV: a row with too many values",
        file: "films.csv",
        good: GOOD_CSV,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "film,title,plot\nf1,Alpha,x\nf2,Beta,a storm, at sea\n",
        expect: &["data/films.csv:3: the row has 4 values but the header row names 3 fields; quote values that contain commas"],
        json: true,
    },
    Case {
        name: "CSV: a header row that names a field twice",
        file: "films.csv",
        good: GOOD_CSV,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "film,title,title\nf1,Alpha,x\n",
        expect: &["data/films.csv:1: the header row names field `title` twice; field names must be unique"],
        json: true,
    },
    Case {
        name: "a missing id field",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"}\n{\"flim\":\"f2\",\"title\":\"Beta\",\"plot\":\"y\"}\n",
        expect: &["data/films.jsonl:2: no id field `film` (did you mean `flim`?); the record has: flim, title, plot"],
        json: true,
    },
    Case {
        name: "duplicate ids",
        file: "films.csv",
        good: GOOD_CSV,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "film,title,plot\nf1,Alpha,x\nf2,Beta,y\nf1,Gamma,z\n",
        expect: &["data/films.csv:4: record \"f1\": duplicate id \"f1\": line 2 has it too; ids must be unique"],
        json: true,
    },
    Case {
        name: "an empty id",
        file: "films.json",
        good: GOOD_JSON,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "[{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"},{\"film\":\"\",\"title\":\"Beta\",\"plot\":\"y\"}]",
        expect: &["data/films.json: element [1]: the id (field `film`) is empty; every record needs an id"],
        json: true,
    },
    Case {
        name: "an id that is not a string or an integer",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":1.5,\"title\":\"Alpha\",\"plot\":\"x\"}\n",
        expect: &["data/films.jsonl:1: the id field `film` holds a number, not a string or an integer"],
        json: true,
    },
    Case {
        name: "an id that cannot be a file name",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"}\n{\"film\":\"../f2\",\"title\":\"Beta\",\"plot\":\"y\"}\n",
        expect: &["data/films.jsonl:2: record \"../f2\": the id cannot be used as a file name: it contains a path separator"],
        json: true,
    },
    Case {
        name: "ids that are one file on macOS and Windows",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":\"F1\",\"title\":\"Alpha\",\"plot\":\"x\"}\n{\"film\":\"f1\",\"title\":\"Beta\",\"plot\":\"y\"}\n",
        expect: &["data/films.jsonl:2: record \"f1\": its file would be the file of record \"F1\" (line 1): they differ only in letter case"],
        json: true,
    },
    Case {
        name: "an unknown field in the text template",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: Some("{{ title }}: {{ plto }}"),
        bad: "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"x\"}\n",
        expect: &["data/films.jsonl:1: record \"f1\": pipeline.toml:9:25: the text template failed: undefined value (`plto`)"],
        json: false,
    },
    Case {
        name: "a field the id template uses is missing",
        file: "films.csv",
        good: GOOD_CSV,
        id: "{{ film }}-{{ year }}",
        columns: COLUMNS,
        text: None,
        bad: "film,title,plot\nf1,Alpha,x\n",
        expect: &["data/films.csv:2: the id template failed: undefined value (`year`)"],
        json: true,
    },
    Case {
        name: "a value that does not fit its column",
        file: "films.jsonl",
        good: GOOD_JSONL,
        id: "film",
        columns: COLUMNS,
        text: None,
        bad: "{\"film\":\"f1\",\"title\":\"Alpha\",\"plot\":\"a heist in Paris\",\"year\":1999}\n{\"film\":\"f2\",\"title\":\"Beta\",\"plot\":\"a storm at sea\",\"year\":\"nineteen\"}\n",
        expect: &["data/films.jsonl:2: record \"f2\": field `year` is \"nineteen\", which does not fit column `year` (integer): expected an integer (or a string holding one); correct the record, or declare the column in pipeline.toml with a type that fits (\"text\" holds strings, numbers and booleans)"],
        json: true,
    },
    Case {
        name: "a missing value for a column that is not nullable",
        file: "films.csv",
        good: GOOD_CSV,
        id: "film",
        columns: "title = \"text\", year = \"integer\"",
        text: None,
        bad: "film,title,plot,year\nf1,Alpha,a heist in Paris,1999\nf2,Beta,\"a storm, at sea\",\n",
        expect: &["data/films.csv:3: record \"f2\": field `year` is empty, and column `year` is integer; give the record a value, or declare the column as \"integer?\" to allow NULL"],
        json: true,
    },
];

#[test]
fn record_file_errors_name_file_record_and_id_and_change_nothing() {
    let mut failures = Vec::new();
    for case in CASES {
        let p = project(case.file, case.id, case.columns);
        if !case.json {
            let manifest = p
                .read("pipeline.toml")
                .replace("json = \"public/films/{id}.json\"\n", "");
            p.write("pipeline.toml", &manifest);
        }
        // A second records target over the same records (the single
        // layout, without JSON files): its database must not change either.
        let manifest = p.read("pipeline.toml");
        p.write(
            "pipeline.toml",
            &format!(
                "{manifest}\n[targets.films-single]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"{}\"\ncolumns = {{ {} }}\nlayout = \"single\"\npath = \"public/films-single.db\"\ntext = \"{{{{ title }}}}: {{{{ plot }}}}\"\n",
                case.id.replace('"', "\\\""),
                case.columns
            ),
        );
        p.write(&format!("data/{}", case.file), case.good);
        if let Some(text) = case.text {
            // A template that works on the good file: the field is there.
            let manifest = p.read("pipeline.toml").replace(
                "text = \"{{ title }}: {{ plot }}\"",
                &format!("text = \"{text}\""),
            );
            p.write("pipeline.toml", &manifest);
            let good = case
                .good
                .replace("\"plot\"", "\"plto\"")
                .replace(",plot,", ",plto,");
            p.write(&format!("data/{}", case.file), &good);
        }
        let first = build(&p);
        assert!(
            first.built().iter().any(|t| t == "films-single"),
            "{}: {}",
            case.name,
            first.stdout
        );
        let public = || {
            let dir = p.path("public");
            dir.exists().then(|| tree(&dir))
        };
        let before = public();
        let embeddings_before =
            blake3::hash(&std::fs::read(p.path("data/films-db-bow.embeddings.db")).unwrap());
        p.write(&format!("data/{}", case.file), case.bad);
        let mut args = vec!["build"];
        args.extend(targets(&p));
        let run = pipe(&p, &args);
        assert_ne!(
            run.code, 0,
            "{}: the build should fail\n{}",
            case.name, run.stderr
        );
        for e in case.expect {
            if !run.stderr.contains(e) {
                failures.push(format!(
                    "{}: stderr lacks {e:?}:\n{}",
                    case.name, run.stderr
                ));
            }
        }
        assert!(public() == before, "{}: the JSON files changed", case.name);
        assert_eq!(
            blake3::hash(&std::fs::read(p.path("data/films-db-bow.embeddings.db")).unwrap()),
            embeddings_before,
            "{}: the embeddings file changed",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_format_gives_the_same_embeddings_and_json() {
    let mut results = Vec::new();
    for (file, text) in [
        ("films.jsonl", GOOD_JSONL),
        ("films.json", GOOD_JSON),
        ("films.csv", GOOD_CSV),
    ] {
        let p = project(file, "film", "title = \"text\"");
        p.write(
            &format!("data/{file}"),
            &text.replace("a storm, at sea", "a storm at sea"),
        );
        build(&p);
        let vectors = embeddings(&p.path("data/films-db-bow.embeddings.db"));
        assert_eq!(
            vectors
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>(),
            ["f1", "f2"]
        );
        let doc: serde_json::Value = serde_json::from_str(&p.read("public/films/f2.json")).unwrap();
        assert_eq!(doc["title"], "Beta", "{file}");
        results.push(vectors);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn editing_one_record_sends_one_text_and_rewrites_one_file() {
    let p = project("films.jsonl", "film", "title = \"text\"");
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            format!("{{\"film\":\"f{i}\",\"title\":\"Film {i}\",\"plot\":\"plot number {i}\"}}")
        })
        .collect();
    p.write("data/films.jsonl", &(lines.join("\n") + "\n"));
    let first = build(&p);
    assert_eq!(sent(&p).len(), 40);
    assert_eq!(
        first.built(),
        ["films-db-embeddings@bow", "films-db-json", "films-db@bow"],
        "{}",
        first.stdout
    );
    p.settle();
    let before = tree(&p.path("public/films"));

    lines[7] = "{\"film\":\"f7\",\"title\":\"Film 7\",\"plot\":\"an edited plot\"}".into();
    p.write("data/films.jsonl", &(lines.join("\n") + "\n"));
    let run = build(&p);
    let log = sent(&p);
    assert_eq!(log.len(), 41, "exactly one more text: {log:?}");
    assert!(log[40].contains("Film 7: an edited plot"), "{log:?}");
    let after = tree(&p.path("public/films"));
    let changed: Vec<_> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert_eq!(changed, [Path::new("f7.json")]);
    let stats = &run.report()["results"];
    let json = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "films-db-json")
        .unwrap();
    assert_eq!(json["stats"]["written"], "1", "{}", run.stdout);

    // A removed record: its file goes, nothing is embedded.
    lines.remove(3);
    p.write("data/films.jsonl", &(lines.join("\n") + "\n"));
    build(&p);
    assert_eq!(sent(&p).len(), 41);
    assert!(!p.path("public/films/f3.json").exists());
    assert_eq!(
        embeddings(&p.path("data/films-db-bow.embeddings.db")).len(),
        39
    );

    // Nothing changed: nothing runs.
    let run = build(&p);
    assert!(run.built().is_empty(), "{}", run.stdout);
}

#[test]
fn adding_a_model_file_builds_only_that_models_targets() {
    let p = project("films.jsonl", "film", "title = \"text\"");
    p.write("data/films.jsonl", GOOD_JSONL);
    build(&p);
    assert_eq!(sent(&p).len(), 2);
    p.write("models.d/bow2.toml", &bow_model("bow2", 8));
    let run = build(&p);
    assert_eq!(
        run.built(),
        ["films-db-embeddings@bow2", "films-db@bow2"],
        "{}",
        run.stdout
    );
    assert_eq!(sent(&p).len(), 4);
    assert_eq!(
        embeddings(&p.path("data/films-db-bow2.embeddings.db"))[0]
            .1
            .len(),
        8
    );
}

#[test]
fn explain_counts_the_records_a_build_would_send() {
    let p = project("films.csv", "film", "title = \"text\"");
    p.write("data/films.csv", GOOD_CSV);
    build(&p);
    p.write(
        "data/films.csv",
        &format!("{GOOD_CSV}f3,Gamma,a new film,2020\n"),
    );
    let run = pipe(&p, &["explain", "films-db-embeddings@bow"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("3 records: 1 new, 0 changed, 0 removed; 1 texts to embed"),
        "{}",
        run.stdout
    );
}

#[test]
fn single_layout_with_a_text_per_model() {
    let p = project("films.jsonl", "film", "title = \"text\"");
    p.write("data/films.jsonl", GOOD_JSONL);
    p.write("models.d/bow2.toml", &bow_model("bow2", 8));
    let manifest = p
        .read("pipeline.toml")
        .replace(
            "text = \"{{ title }}: {{ plot }}\"",
            "layout = \"single\"\ntext = { default = \"{{ title }}\", bow2 = \"{{ plot }} (#{{ _n }})\" }",
        );
    p.write("pipeline.toml", &manifest);
    let run = build(&p);
    assert_eq!(
        run.built(),
        [
            "films-db",
            "films-db-embeddings@bow",
            "films-db-embeddings@bow2",
            "films-db-json"
        ],
        "{}",
        run.stdout
    );
    let log = sent(&p);
    let mut texts: Vec<&str> = log.iter().map(|l| l.split_once('\t').unwrap().1).collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "'Alpha'",
            "'Beta'",
            "'a heist in Paris (#1)'",
            "'a storm at sea (#2)'"
        ],
        "{log:?}"
    );
    assert!(p.path("public/data/films-db.db").is_file());
    assert_eq!(
        embeddings(&p.path("data/films-db-bow2.embeddings.db"))[1]
            .1
            .len(),
        8
    );
}

/// The emoji example's shape: two records targets (one database per model,
/// and the single layout) over the same records, with the same models and
/// texts (one model with a text of its own). Each distinct text is sent
/// once per model, not once per target, and an edit sends one per model.
#[test]
fn two_targets_over_the_same_records_embed_each_text_once() {
    let p = project("films.jsonl", "film", "title = \"text\"");
    p.write("models.d/bow2.toml", &bow_model("bow2", 8));
    let text = "text = { default = \"{{ title }}: {{ plot }}\", bow2 = \"{{ plot }}\" }";
    let manifest = p
        .read("pipeline.toml")
        .replace("text = \"{{ title }}: {{ plot }}\"", text);
    p.write(
        "pipeline.toml",
        &format!(
            "{manifest}\n[targets.films-all]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"film\"\ncolumns = {{ title = \"text\" }}\nlayout = \"single\"\npath = \"public/films-all.db\"\n{text}\n"
        ),
    );
    let mut lines: Vec<String> = (0..10)
        .map(|i| format!("{{\"film\":\"f{i}\",\"title\":\"Film {i}\",\"plot\":\"plot {i}\"}}"))
        .collect();
    p.write("data/films.jsonl", &(lines.join("\n") + "\n"));
    let run = build(&p);
    let log = sent(&p);
    // 10 records, 2 models: 20 texts, each once.
    assert_eq!(log.len(), 20, "{log:?}\n{}", run.stdout);
    let mut distinct = log.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "{log:?}");
    // Both targets' databases hold every record's vector of each model.
    for db in [
        "public/data/bow/films-db.db",
        "public/data/bow2/films-db.db",
        "public/films-all.db",
    ] {
        let conn = rusqlite::Connection::open(p.path(db)).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM record_models", [], |r| r.get(0))
            .unwrap();
        let models = if db.ends_with("films-all.db") { 2 } else { 1 };
        assert_eq!(n, 10 * models, "{db}");
    }

    lines[4] = "{\"film\":\"f4\",\"title\":\"Film 4\",\"plot\":\"an edited plot\"}".into();
    p.write("data/films.jsonl", &(lines.join("\n") + "\n"));
    build(&p);
    let log = sent(&p);
    assert_eq!(log.len(), 22, "one text per model: {log:?}");
}
