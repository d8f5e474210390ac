//! `pipe models` finds embeddings files that no model file declares, and
//! warns about an embeddings file whose config disagrees with its model file.

mod common;
use common::sample_project;

#[test]
fn undeclared_embeddings_files_are_listed_with_the_model_file_to_add() {
    let p = sample_project();
    std::fs::copy(
        p.path("data/embeddings-bge-micro-movies.db"),
        p.path("data/embeddings-minilm-movies.db"),
    )
    .unwrap();
    p.write("data/notes.db", "not a database");
    let vectors = common::embeddings(&p.path("data/embeddings-minilm-movies.db")).len();
    let run = p.pipe(&["models"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "  data/embeddings-minilm-movies.db  384 dims, {vectors} vectors\n    add models.d/minilm.toml:\n      id = \"minilm\"\n      name = \"minilm\"\n      dimensions = 384\n      embeddings = \"data/embeddings-minilm-movies.db\"\n"
        )),
        "{}",
        run.stdout
    );
    for declared in ["embeddings-nomic-movies.db  ", "notes.db"] {
        assert!(!run.stdout.contains(declared), "{declared}: {}", run.stdout);
    }
    // The same in --json, for scripts.
    let json = common::json(&p.pipe(&["models", "--json"]));
    let undeclared = json["undeclared"].as_array().expect("undeclared");
    assert_eq!(undeclared.len(), 1, "{json}");
    assert_eq!(undeclared[0]["path"], "data/embeddings-minilm-movies.db");
    assert_eq!(undeclared[0]["dimensions"], 384);
    assert_eq!(undeclared[0]["vectors"], vectors);
    assert_eq!(undeclared[0]["suggestedId"], "minilm");
    assert!(undeclared[0]["modelFile"]
        .as_str()
        .unwrap_or_default()
        .contains("dimensions = 384"));

    // Declared with those lines: no longer listed; but the file's own
    // config says bge-micro made it, which both commands say.
    p.write(
        "models.d/minilm.toml",
        "id = \"minilm\"\nname = \"minilm\"\ndimensions = 384\nembeddings = \"data/embeddings-minilm-movies.db\"\n",
    );
    let run = p.pipe(&["models"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("no model file declares"),
        "{}",
        run.stdout
    );
    let want = "data/embeddings-minilm-movies.db's config says it was made by model `bge-micro` with 384 dimensions, but models.d/minilm.toml declares model `minilm` with 384 dimensions";
    assert!(run.stderr.contains(want), "{}", run.stderr);
    let build = p.pipe(&["build", "-v", "--target", "movies-db@minilm"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert!(build.stderr.contains(want), "{}", build.stderr);
    // The shipped models agree with their files.
    assert_eq!(
        run.stderr.matches("config says").count(),
        1,
        "{}",
        run.stderr
    );
}
