//! `pipe watch` through the real binary: edit files, read the one line per
//! rebuild it prints, and check what was rebuilt.

mod common;
use common::watch::{Watch, WAIT};
use common::{command_project as project, COMMAND_PIPELINE as PIPELINE};
use std::time::{Duration, Instant};

fn rebuilt(line: &str) -> Vec<String> {
    let Some(list) = line.split(": rebuilt ").nth(1) else {
        return vec![];
    };
    let list = list.rsplit_once(" in ").map_or(list, |(l, _)| l);
    let mut names: Vec<String> = list.split(", ").map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn a_burst_of_writes_is_one_rebuild_and_the_build_never_triggers_itself() {
    let p = project();
    let mut w = Watch::start(&p, &[]);
    for i in 0..5 {
        p.write("data/movies.txt", &format!("alien\nbrazil\n{i}\n"));
    }
    let line = w.expect(|l| l.starts_with("watch: changed"));
    assert!(line.contains("changed data/movies.txt: rebuilt"), "{line}");
    assert_eq!(rebuilt(&line).len(), 7, "{line}");
    assert_eq!(p.read("public/movies.json"), "ALIEN\nBRAZIL\n4\n");
    // The rebuild wrote seven outputs: none of that may start another rebuild.
    w.expect_none(Duration::from_millis(1500), |l| {
        l.starts_with("watch: changed")
    });
}

#[test]
fn a_model_file_edit_rebuilds_only_that_model() {
    let p = project();
    let mut w = Watch::start(&p, &[]);
    p.write(
        "models.d/potion.toml",
        "id = \"potion\"\nname = \"Potion\"\ndimensions = 32\n",
    );
    let line = w.expect(|l| l.starts_with("watch: changed"));
    assert_eq!(rebuilt(&line), ["db@potion", "embed@potion"], "{line}");
    assert!(p.read("data/emb-potion.txt").starts_with("potion 32"));
}

#[test]
fn a_broken_manifest_is_reported_and_fixing_it_rebuilds() {
    let p = project();
    let mut w = Watch::start(&p, &[]);
    let before = p.read("public/movies.json");
    p.write("pipeline.toml", &format!("{PIPELINE}\n[targets.bad\n"));
    w.expect(|l| l.contains("pipeline.toml:") && l.contains("x "));
    w.expect(|l| l.contains("the manifest is invalid; the last good outputs are in place"));
    assert_eq!(p.read("public/movies.json"), before);
    // Fixed, with a change of configuration: the affected target rebuilds.
    p.write(
        "pipeline.toml",
        &PIPELINE.replace("tr a-z A-Z", "tr a-z A-Z | tr -d X"),
    );
    let line = w.expect(|l| l.starts_with("watch: changed pipeline.toml"));
    assert_eq!(rebuilt(&line), ["json"], "{line}");
}

#[test]
fn a_failing_target_is_reported_and_watch_keeps_running() {
    let p = project();
    let mut w = Watch::start(&p, &[]);
    p.write(
        "pipeline.toml",
        &PIPELINE.replace(
            "tr a-z A-Z < data/movies.txt > {out}",
            "grep -q brazil data/movies.txt && tr a-z A-Z < data/movies.txt > {out}",
        ),
    );
    w.expect(|l| l.starts_with("watch: changed pipeline.toml"));
    let before = p.read("public/movies.json");
    p.write("data/movies.txt", "alien\n");
    w.expect(|l| l.starts_with("watch: json FAILED"));
    assert_eq!(p.read("public/movies.json"), before);
    p.write("data/movies.txt", "alien\nbrazil\ncasablanca\n");
    let line = w.expect(|l| l.starts_with("watch: changed data/movies.txt"));
    assert!(rebuilt(&line).contains(&"json".to_string()), "{line}");
    assert_eq!(p.read("public/movies.json"), "ALIEN\nBRAZIL\nCASABLANCA\n");
}

#[test]
fn added_models_are_built_and_removed_ones_stop() {
    let p = project();
    let mut w = Watch::start(&p, &[]);
    p.write(
        "models.d/minilm.toml",
        "id = \"minilm\"\nname = \"MiniLM\"\ndimensions = 384\n",
    );
    let line = w.expect(|l| l.starts_with("watch: changed models.d/minilm.toml"));
    assert_eq!(rebuilt(&line), ["db@minilm", "embed@minilm"], "{line}");
    std::fs::remove_file(p.path("models.d/minilm.toml")).unwrap();
    let line = w.expect(|l| l.starts_with("watch: removed"));
    assert!(
        line.contains("db@minilm, embed@minilm (outputs left in place"),
        "{line}"
    );
    assert!(p.path("public/minilm.db").exists());
}

#[test]
fn prune_deletes_the_outputs_of_removed_models() {
    let p = project();
    p.write(
        "models.d/minilm.toml",
        "id = \"minilm\"\nname = \"MiniLM\"\ndimensions = 384\n",
    );
    let mut w = Watch::start(&p, &["--prune"]);
    assert!(p.path("public/minilm.db").exists());
    std::fs::remove_file(p.path("models.d/minilm.toml")).unwrap();
    let line = w.expect(|l| l.starts_with("watch: removed"));
    assert!(line.contains("(outputs deleted)"), "{line}");
    assert!(!p.path("public/minilm.db").exists());
    assert!(p.path("public/potion.db").exists());
}

#[test]
fn a_change_during_a_rebuild_leads_to_exactly_one_more_rebuild() {
    let p = project();
    let slow = PIPELINE.replace(
        "tr a-z A-Z < data/movies.txt > {out}",
        "touch started; sleep 1; tr a-z A-Z < data/movies.txt > {out}",
    );
    p.write("pipeline.toml", &slow);
    let mut w = Watch::start(&p, &["json"]);
    std::fs::remove_file(p.path("started")).unwrap();
    p.write("data/movies.txt", "one\n");
    let deadline = Instant::now() + WAIT;
    while !p.path("started").exists() {
        assert!(Instant::now() < deadline, "the rebuild never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    p.write("data/movies.txt", "two\n"); // during the rebuild
    w.expect(|l| l.starts_with("watch: changed data/movies.txt: rebuilt json"));
    w.expect(|l| l.starts_with("watch: changed data/movies.txt: rebuilt json"));
    assert_eq!(p.read("public/movies.json"), "TWO\n");
    w.expect_none(Duration::from_millis(2500), |l| {
        l.starts_with("watch: changed")
    });
}

#[test]
fn sigint_stops_cleanly_and_releases_the_lock() {
    let p = project();
    let w = Watch::start(&p, &[]);
    let (code, lines) = w.interrupt();
    // Ctrl-C ends watching with 130, as the README says.
    assert_eq!(code, 130, "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("watch: stopped"),
        "{lines:?}"
    );
    let run = p.pipe(&["build"]);
    assert_eq!(run.code, 0);
    assert!(!run.stderr.contains("waiting"), "{}", run.stderr);
    let temps = std::fs::read_dir(p.path("public"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pipe-tmp-"))
        .count();
    assert_eq!(temps, 0);
}

#[test]
fn sigint_during_a_rebuild_leaves_no_half_written_output() {
    let p = project();
    let slow = PIPELINE.replace(
        "tr a-z A-Z < data/movies.txt > {out}",
        "echo partial > {out}; touch started; sleep 5; tr a-z A-Z < data/movies.txt > {out}",
    );
    let mut w = Watch::start(&p, &["json"]);
    let before = p.read("public/movies.json");
    p.write("pipeline.toml", &slow);
    let deadline = Instant::now() + WAIT;
    while !p.path("started").exists() {
        assert!(Instant::now() < deadline, "the rebuild never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    w.seen.clear();
    let (code, lines) = w.interrupt();
    // Ctrl-C ends watching with 130, as the README says.
    assert_eq!(code, 130, "{lines:?}");
    assert_eq!(p.read("public/movies.json"), before);
}

#[test]
fn editing_pipeline_toml_reloads_the_graph() {
    let p = project();
    let mut w = Watch::start(&p, &[]);
    p.write("pipeline.toml", &format!("{PIPELINE}\n[targets.count]\nkind = \"command\"\ncommand = \"wc -c < data/movies.txt > {{out}}\"\ninputs = [\"movies\"]\nouts = [\"public/count.txt\"]\n"));
    let line = w.expect(|l| l.starts_with("watch: changed pipeline.toml"));
    assert_eq!(rebuilt(&line), ["count"], "{line}");
    // The new target's input is watched too.
    p.write("data/movies.txt", "x\n");
    let line = w.expect(|l| l.starts_with("watch: changed data/movies.txt"));
    assert!(rebuilt(&line).contains(&"count".to_string()), "{line}");
}
