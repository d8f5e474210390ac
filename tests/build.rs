//! The executor through the real binary: what runs, what is skipped, and
//! that outputs survive failures and kills.

mod common;
use common::{command_project as project, COMMAND_PIPELINE as PIPELINE};
use std::time::{Duration, Instant};

const ALL: &[&str] = &[
    "db@bge-micro",
    "db@nomic",
    "db@potion",
    "embed@bge-micro",
    "embed@nomic",
    "embed@potion",
    "json",
];

#[test]
fn first_build_builds_everything_second_does_nothing() {
    let p = project();
    assert_eq!(p.build(&[]).built(), ALL);
    let second = p.build(&[]);
    assert!(second.built().is_empty());
    assert_eq!(second.with_status("up-to-date"), ALL);
    assert!(p
        .pipe(&["build"])
        .stderr
        .contains("nothing to do: 7 targets up to date"));
}

#[test]
fn touching_without_changing_runs_nothing_and_settled_stats_read_nothing() {
    let p = project();
    p.build(&[]);
    // Files written less than a second before their stat was recorded are
    // re-hashed once (the racy case); after that the stat cache answers.
    p.settle();
    p.build(&[]);
    let noop = p.build(&[]);
    assert_eq!(noop.report()["inputsHashed"], 0);
    // Touch: new mtime, same bytes. Re-hashed once, nothing rebuilt.
    let f = std::fs::File::options()
        .append(true)
        .open(p.path("data/movies.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    let touched = p.build(&[]);
    assert!(touched.built().is_empty(), "{:?}", touched.built());
    assert_eq!(touched.report()["inputsHashed"], 1);
}

#[test]
fn same_size_change_within_the_same_second_is_noticed() {
    let p = project();
    p.build(&[]);
    // Same length, written immediately: the racy case for stat-based caches.
    p.write("data/movies.txt", "alieN\nbrazil\n");
    assert_eq!(p.build(&[]).built(), ALL);
}

#[test]
fn changing_a_model_file_rebuilds_only_that_models_targets() {
    let p = project();
    p.build(&[]);
    p.write("models.d/potion.toml", "id = \"potion\"\nname = \"Potion Base 2M\"\ndimensions = 128\ndescription = \"Smallest\"\n");
    assert_eq!(p.build(&[]).built(), ["db@potion", "embed@potion"]);
    assert!(p.read("data/emb-potion.txt").starts_with("potion 128"));
    // A description-only edit is a change of configuration too.
    p.write("models.d/nomic.toml", "id = \"nomic\"\nname = \"Nomic Embed Text\"\ndimensions = 768\ndescription = \"Still the best\"\ndefault = true\n");
    let run = p.pipe(&["explain", "embed@nomic"]);
    assert!(
        run.stdout
            .contains("model.description changed: \"Best quality\" → \"Still the best\""),
        "{}",
        run.stdout
    );
    assert_eq!(p.build(&[]).built(), ["db@nomic", "embed@nomic"]);
}

#[test]
fn adding_a_model_file_adds_its_targets_and_nothing_else_changes() {
    let p = project();
    p.build(&[]);
    p.write(
        "models.d/minilm.toml",
        "id = \"minilm\"\nname = \"MiniLM\"\ndimensions = 384\n",
    );
    assert_eq!(p.build(&[]).built(), ["db@minilm", "embed@minilm"]);
}

#[test]
fn deleting_or_editing_an_output_rebuilds_only_it() {
    let p = project();
    p.build(&[]);
    std::fs::remove_file(p.path("public/bge-micro.db")).unwrap();
    let run = p.pipe(&["status"]);
    assert!(
        run.stdout
            .contains("output public/bge-micro.db was deleted"),
        "{}",
        run.stdout
    );
    assert_eq!(p.build(&[]).built(), ["db@bge-micro"]);
    p.write("public/movies.json", "edited by hand\n");
    assert_eq!(p.build(&[]).built(), ["json"]);
    assert_eq!(p.read("public/movies.json"), "ALIEN\nBRAZIL\n");
}

#[test]
fn target_selects_it_and_its_dependencies_only() {
    let p = project();
    assert_eq!(
        p.build(&["--target", "db@potion"]).built(),
        ["db@potion", "embed@potion"]
    );
    assert!(!p.path("public/nomic.db").exists());
    // A bare per-model name selects every model.
    assert_eq!(
        p.build(&["embed"]).built(),
        ["embed@bge-micro", "embed@nomic"]
    );
}

#[test]
fn input_change_rebuilds_dependents_in_order() {
    let p = project();
    p.build(&[]);
    p.write("data/movies.txt", "alien\nbrazil\ncasablanca\n");
    let run = p.build(&[]);
    assert_eq!(run.built(), ALL);
    assert_eq!(p.read("public/potion.db").trim(), "4");
    // Dependencies finish before their dependents start.
    let order: Vec<String> = run.report()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    for m in ["nomic", "bge-micro", "potion"] {
        let e = order
            .iter()
            .position(|n| n == &format!("embed@{m}"))
            .unwrap();
        let d = order.iter().position(|n| n == &format!("db@{m}")).unwrap();
        assert!(e < d, "{order:?}");
    }
}

#[test]
fn dry_run_builds_nothing_and_explains() {
    let p = project();
    let run = p.pipe(&["build", "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.with_status("would-build").len(), 7);
    assert!(!p.path("public").exists());
    assert!(run.stderr.contains("never built"), "{}", run.stderr);
}

#[test]
fn failure_stops_dependents_and_keep_going_builds_unrelated_targets() {
    let p = project();
    p.write(
        "pipeline.toml",
        &PIPELINE.replace(
            "printf '%s %s\\n' {model} {dimensions} > {out}",
            "test {model} != potion || exit 7; printf '%s %s\\n' {model} {dimensions} > {out}",
        ),
    );
    let run = p.pipe(&["build", "--json", "-k", "-j", "1"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.with_status("failed"), ["embed@potion"]);
    assert_eq!(run.with_status("skipped"), ["db@potion"]);
    assert_eq!(
        run.built(),
        [
            "db@bge-micro",
            "db@nomic",
            "embed@bge-micro",
            "embed@nomic",
            "json"
        ]
    );
    assert!(
        run.stderr.contains("command exited with status 7"),
        "{}",
        run.stderr
    );
    let status = p.pipe(&["status"]);
    assert!(
        status
            .stdout
            .contains("last error: command exited with status 7"),
        "{}",
        status.stdout
    );
}

#[test]
fn without_keep_going_the_first_failure_stops_the_build() {
    let p = project();
    p.write(
        "pipeline.toml",
        &PIPELINE.replace("printf '%s %s\\n' {model} {dimensions} > {out}", "exit 7"),
    );
    let run = p.pipe(&["build", "--json", "-j", "1"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.with_status("failed"), ["embed@bge-micro"]);
    assert!(run.built().is_empty(), "{:?}", run.built());
    assert!(!run.with_status("not-run").is_empty());
}

#[test]
fn a_failing_command_leaves_the_old_output_intact() {
    let p = project();
    p.build(&[]);
    let before = p.read("public/movies.json");
    p.write(
        "pipeline.toml",
        &PIPELINE.replace(
            "tr a-z A-Z < data/movies.txt > {out}",
            "echo half-written > {out}; kill -9 $$",
        ),
    );
    let run = p.pipe(&["build", "json"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("was killed by a signal"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the previous outputs are untouched"),
        "{}",
        run.stderr
    );
    assert_eq!(p.read("public/movies.json"), before);
    let leftovers: Vec<_> = std::fs::read_dir(p.path("public"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pipe-tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn killing_pipe_midway_leaves_the_old_output_intact() {
    let p = project();
    p.build(&[]);
    let before = p.read("public/movies.json");
    p.write(
        "pipeline.toml",
        &PIPELINE.replace(
            "tr a-z A-Z < data/movies.txt > {out}",
            "echo half-written > {out}; touch started; sleep 3; echo done >> {out}",
        ),
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipe"))
        .args(["build", "json"])
        .current_dir(p.dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.path("started").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    assert_eq!(p.read("public/movies.json"), before);
    // The next build still works and replaces it properly.
    std::fs::remove_file(p.path("started")).unwrap();
    p.write("pipeline.toml", PIPELINE);
    let run = p.build(&["json"]);
    assert!(run.built().is_empty() || run.built() == ["json"]);
    assert_eq!(p.read("public/movies.json"), "ALIEN\nBRAZIL\n");
}

#[test]
fn locked_fails_when_the_build_would_change_the_lock() {
    let p = project();
    let run = p.pipe(&["build", "--locked"]);
    // Exit 3, as for any change --locked refuses (tests/cli.rs has the rest).
    assert_eq!(run.code, 3, "no pipe.lock yet: {}", run.stderr);
    assert!(
        run.stderr.contains("there is no pipe.lock"),
        "{}",
        run.stderr
    );
    p.build(&[]);
    let lock = p.read("pipe.lock");
    assert!(lock.contains("[targets.\"db@potion\".outputs]"), "{lock}");
    // Same inputs: --locked passes.
    assert_eq!(p.pipe(&["build", "--locked"]).code, 0);
    // Changed input: --locked refuses and leaves pipe.lock alone.
    p.write("data/movies.txt", "different\n");
    let run = p.pipe(&["build", "--locked"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("differ from pipe.lock"),
        "{}",
        run.stderr
    );
    assert_eq!(p.read("pipe.lock"), lock);
}

#[test]
fn clean_removes_what_pipe_built_and_nothing_else() {
    let p = project();
    p.write("public/keep-me.txt", "mine");
    p.build(&[]);
    let run = p.pipe(&["clean"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!p.path("public/potion.db").exists());
    assert!(!p.path("data/emb-potion.txt").exists());
    assert_eq!(p.read("public/keep-me.txt"), "mine");
    assert_eq!(p.read("data/movies.txt"), "alien\nbrazil\n");
    assert_eq!(p.build(&[]).built().len(), 7);
}

#[test]
fn a_second_pipe_waits_for_the_first() {
    let p = project();
    p.write(
        "pipeline.toml",
        &PIPELINE.replace(
            "tr a-z A-Z < data/movies.txt > {out}",
            "sleep 1; tr a-z A-Z < data/movies.txt > {out}",
        ),
    );
    let first = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipe"))
        .args(["build", "json"])
        .current_dir(p.dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = p.pipe(&["build", "json"]);
    let mut first = first;
    first.wait().unwrap();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("waiting: pipe (pid"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("nothing to do"), "{}", second.stderr);
}

#[test]
fn graph_and_models_and_help() {
    let p = project();
    let dot = p.pipe(&["graph"]).stdout;
    assert!(dot.contains("\"embed@potion\" -> \"db@potion\""), "{dot}");
    let mermaid = p.pipe(&["graph", "--format", "mermaid"]).stdout;
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    let models = p.pipe(&["models"]).stdout;
    assert!(
        models.contains("nomic") && models.contains("768") && models.contains("(missing)"),
        "{models}"
    );
    let help = p.pipe(&["--help"]).stdout;
    assert!(help.contains("Exit codes:"), "{help}");
    let build_help = p.pipe(&["build", "--help"]).stdout;
    assert!(
        build_help.contains("pipe build -m potion --skip-json   = pipe build movies-db@potion"),
        "{build_help}"
    );
}
