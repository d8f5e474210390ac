//! Warnings through the real binary: shown once per build and grouped,
//! told apart by what they mean, remembered for `--strict`, and printed by
//! `pipe watch` as by `pipe build`.

mod common;
use common::watch::Watch;
use common::{add_vector, sample_project};

/// The `warning:` lines of a run's stderr.
fn warning_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect()
}

#[test]
fn each_warning_once_per_build_with_the_models_on_one_line_and_the_fix() {
    let p = sample_project();
    let run = p.pipe(&["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = warning_lines(&run.stderr);
    let without: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("movies without a vector"))
        .collect();
    assert_eq!(without.len(), 1, "{}", run.stderr);
    for model in ["bge-micro (", "nomic (", "potion ("] {
        assert!(without[0].contains(model), "{}", without[0]);
    }
    // One line per kind, each followed by its fix; no per-target detail.
    assert_eq!(
        run.stderr.matches("\n  fix: ").count(),
        lines.len(),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("movies-db@nomic: "), "{}", run.stderr);
    // The warnings come after the targets' lines, before the summary.
    let last_target = run.stderr.rfind("] built ").unwrap();
    let first_warning = run.stderr.find("warning:").unwrap();
    let summary = run.stderr.find("built 4 of 4 targets").unwrap();
    assert!(last_target < first_warning && first_warning < summary);

    // -v: every target's full text too.
    std::fs::remove_dir_all(p.path("public/data")).unwrap();
    let verbose = p.pipe(&["build", "-v"]);
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    assert!(
        verbose.stderr.contains(
            "  movies-db@nomic: 19 of 374 movies have no vector in data/embeddings-nomic-movies.db"
        ),
        "{}",
        verbose.stderr
    );
}

#[test]
fn vectors_of_dropped_movies_are_told_apart_from_vectors_of_removed_ones() {
    let p = sample_project();
    add_vector(
        &p,
        "data/embeddings-potion-movies.db",
        "tt9999999",
        &[0.1; 64],
    );
    let run = p.pipe(&["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = warning_lines(&run.stderr);
    let removed: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("vectors for movies that are not in data/movies.json"))
        .collect();
    // Only potion's file has a vector of a movie that is gone: 1, not the
    // 24 of movies that are in the file but dropped.
    assert_eq!(removed.len(), 1, "{}", run.stderr);
    assert!(removed[0].ends_with(": potion (1)"), "{}", removed[0]);
    let dropped = lines
        .iter()
        .find(|l| l.contains("left out because every source is quality-marked"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(dropped.contains("potion (24)"), "{dropped}");
    // Regenerating is suggested for the removed movie only.
    let fixes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("  fix: "))
        .collect();
    assert_eq!(
        fixes
            .iter()
            .filter(|f| f.contains("regenerate these"))
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(fixes.iter().any(|f| f.contains("nothing to regenerate")));
    let verbose = p.pipe(&["build", "-v", "--target", "movies-db@potion"]);
    assert!(
        !verbose.stderr.contains("tt9999999"),
        "up to date: nothing shown"
    );
    std::fs::remove_file(p.path("public/data/potion/movies.db")).unwrap();
    let verbose = p.pipe(&["build", "-v", "--target", "movies-db@potion"]);
    assert!(
        verbose
            .stderr
            .contains("vectors for movies that are not in data/movies.json: tt9999999"),
        "{}",
        verbose.stderr
    );
}

#[test]
fn strict_fails_on_a_warning_the_outputs_were_built_with_even_when_up_to_date() {
    let p = sample_project();
    std::fs::remove_file(p.path("data/embeddings-potion-movies.db")).unwrap();
    let first = p.pipe(&["build"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains(
            "warning: embeddings file not found, so the model's vector table is empty: potion"
        ),
        "{}",
        first.stderr
    );
    // Nothing to rebuild, but the database in place lost its vectors.
    for flags in [&["--strict"][..], &["--locked"][..]] {
        let mut args = vec!["build", "--json"];
        args.extend_from_slice(flags);
        let run = p.pipe(&args);
        assert_ne!(run.code, 0, "{flags:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("the outputs in place were built with a warning that loses data")
                && run.stderr.contains("data/embeddings-potion-movies.db"),
            "{flags:?}: {}",
            run.stderr
        );
        assert!(run.built().is_empty(), "{flags:?}: nothing was rebuilt");
    }
    // Without --strict the build passes, and a warning that does not lose
    // data (movies without a vector) never fails --strict.
    assert_eq!(p.pipe(&["build"]).code, 0);
    p.build(&["--strict", "--target", "movies-db@nomic"]);
}

#[test]
fn watch_prints_the_warnings_a_build_prints() {
    let p = sample_project();
    p.write(
        "models.d/minilm.toml",
        "id = \"minilm\"\nname = \"MiniLM\"\ndimensions = 384\n",
    );
    let mut w = Watch::start(&p, &[]);
    w.saw(|l| l.starts_with("  fix: produce the embeddings file"));
    let seen = &w.seen;
    assert!(seen.iter().any(|l| l.starts_with("watch: start: rebuilt")));
    assert!(seen
        .iter()
        .any(|l| l.starts_with("warning: embeddings file not found")
            && l.contains("minilm (data/embeddings-minilm-movies.db)")));
}

#[test]
fn collection_entries_naming_unknown_movies_are_a_warning() {
    let p = sample_project();
    let text = p.read("data/collections.json");
    p.write(
        "data/collections.json",
        &text.replacen(
            "\"movieIds\": [",
            "\"movieIds\": [\n      \"tt9999998\",",
            1,
        ),
    );
    let run = p.pipe(&["build", "-v", "--target", "movie-json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: collections name movies that are not in data/movies.json; they are left out of those collections: data/collections.json (1)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("tt9999998 in adventure-classics"),
        "{}",
        run.stderr
    );
}
