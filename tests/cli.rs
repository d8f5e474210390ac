//! Command-line conventions through the real binary: closed pipes, one
//! diagnostic printed once, summaries of many missing files, exit codes,
//! `init`, completions and the man page, `--color`/NO_COLOR, the `--json`
//! formats, what a stopped build says.

mod common;

use common::{command_project, sample_project, Project, Run};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("pipe")
}

/// Run pipe in `dir` with stdout (or stderr) a pipe whose reading end is
/// already closed, as `pipe status | head -0` would leave it.
fn with_closed(dir: &Path, args: &[&str], close_stderr: bool) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir).args(args).stdin(Stdio::null());
    if close_stderr {
        cmd.stderr(writer).stdout(Stdio::null());
    } else {
        cmd.stdout(writer).stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipe {args:?} did not end with a closed output");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let p = sample_project();
    p.build(&[]);
    // (arguments): each prints to stdout.
    let table: &[&[&str]] = &[
        &["status"],
        &["status", "--json"],
        &["clean", "-n"],
        &["explain", "movie-json"],
        &["graph"],
        &["graph", "--format", "mermaid"],
        &["models"],
        &["models", "--json"],
        &["inspect", "public/data/movies.db"],
        &["search", "--model", "potion", "--like", "tt0001083"],
        &["compare", "--sample", "5"],
        &["build", "--json"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
        &["watch"],
    ];
    for args in table {
        let (code, stderr) = with_closed(p.dir.path(), args, false);
        assert!(
            code == 0 || code == 141,
            "pipe {args:?}: exit {code}\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "pipe {args:?}: {stderr}"
        );
    }
}

#[test]
fn a_closed_stderr_does_not_end_a_build() {
    let p = sample_project();
    let (code, _) = with_closed(p.dir.path(), &["build"], true);
    assert_eq!(code, 0);
    assert!(p.path("public/data/movies.db").is_file());
}

#[test]
fn a_single_diagnostic_is_printed_once() {
    // (setup, arguments, the message).
    type Setup = fn(&Project);
    let table: &[(Setup, &[&str], &str)] = &[
        (|_| {}, &["status"], "could not find pipeline.toml"),
        (|_| {}, &["build", "--manifest", "nope.toml"], "nope.toml"),
        (
            |p| {
                common::write_models(p);
                p.write("pipeline.toml", "[inputs]\nmovies = \"m.json\"\n");
                p.write(
                    "models.d/potion.toml",
                    "id = \"potion\"\nname = \"P\"\ndimensions = 0\n",
                );
            },
            &["build"],
            "dimensions must be between 1 and 8192",
        ),
    ];
    for (setup, args, message) in table {
        let p = Project::new();
        setup(&p);
        let run = p.pipe(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(
            run.stderr.matches(message).count(),
            1,
            "{args:?}: printed more than once:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.lines().any(|l| l.trim() == "Error:"),
            "{args:?}: a bare Error: line:\n{}",
            run.stderr
        );
    }
}

/// A bad movies.json fails every target that reads it with the same
/// error: it is printed once, and the other targets point at it.
#[test]
fn an_input_error_shared_by_targets_is_printed_once() {
    let p = sample_project();
    p.write("data/movies.json", "{\"a\": ");
    let run = p.pipe(&["build", "-j", "1", "--keep-going"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("malformed JSON at line 1").count(),
        1,
        "printed more than once:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("failed: the same error as movie-json (above)"),
        "{}",
        run.stderr
    );
}

#[test]
fn many_missing_files_are_summarised_per_target() {
    let p = sample_project();
    p.build(&[]);
    let files = std::fs::read_dir(p.path("public/movies")).unwrap().count();
    assert!(files > 100);
    std::fs::remove_dir_all(p.path("public/movies")).unwrap();
    // (arguments, whether every file is listed).
    let table: &[(&[&str], bool)] = &[
        (&["status"], false),
        (&["explain", "movie-json"], false),
        (&["build", "-n", "--explain"], false),
        (&["status", "-v"], true),
        (&["status", "--all"], true),
        (&["explain", "movie-json", "--all"], true),
        (&["build", "-n", "--explain", "-v"], true),
    ];
    for (args, all) in table {
        let run = p.pipe(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let text = format!("{}{}", run.stdout, run.stderr);
        let lines = text.lines().filter(|l| l.contains("was deleted")).count();
        if *all {
            assert_eq!(lines, files, "{args:?}");
        } else {
            assert_eq!(lines, 0, "{args:?}:\n{text}");
            assert!(
                text.contains(&format!(
                    "{files} outputs were deleted, e.g. public/movies/"
                )),
                "{args:?}:\n{text}"
            );
            assert!(text.lines().count() < 30, "{args:?}:\n{text}");
        }
    }
}

#[test]
fn locked_exits_3_whenever_pipe_lock_would_change() {
    // (what is done after a build, the targets).
    type Change = fn(&Project);
    let table: &[(&str, Change)] = &[
        ("pipe.lock missing", |p| {
            std::fs::remove_file(p.path("pipe.lock")).unwrap()
        }),
        ("an input changed", |p| {
            p.write("data/movies.txt", "alien\nbrazil\ncasablanca\n");
        }),
        ("a model added", |p| {
            p.write(
                "models.d/minilm.toml",
                "id = \"minilm\"\nname = \"MiniLM\"\ndimensions = 384\n",
            );
        }),
        ("a model option changed", |p| {
            p.write(
                "models.d/potion.toml",
                "id = \"potion\"\nname = \"Potion Base 2M\"\ndimensions = 32\ndescription = \"Smallest\"\n",
            );
        }),
    ];
    for (what, change) in table {
        let p = command_project();
        p.build(&[]);
        assert_eq!(p.pipe(&["build", "--locked"]).code, 0, "{what}: unchanged");
        change(&p);
        let run = p.pipe(&["build", "--locked"]);
        assert_eq!(run.code, 3, "{what}: {}", run.stderr);
        assert!(run.stderr.contains("pipe.lock"), "{what}: {}", run.stderr);
    }
}

fn interrupt_after(child: &mut std::process::Child, wait: Duration) -> i32 {
    std::thread::sleep(wait);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stopped_dependency_is_reported_as_stopped_not_failed() {
    // Without --keep-going the build stops at `a`'s failure: `b` is not
    // run, and `c` (which needs b) must say the build stopped.
    let p = Project::new();
    p.write(
        "pipeline.toml",
        r#"
[targets.a]
kind = "command"
command = "test -n {out} && exit 1"
outs = ["out/a"]

[targets.b]
kind = "command"
command = "echo b > {out}"
outs = ["out/b"]

[targets.c]
kind = "command"
command = "cat out/b > {out}"
deps = ["out/b"]
outs = ["out/c"]
"#,
    );
    common::write_models(&p);
    let run = p.pipe(&["build", "-j", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("a failed"), "{}", run.stderr);
    assert!(!run.stderr.contains("b failed"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not built: c (the build stopped)"),
        "{}",
        run.stderr
    );

    // Ctrl-C while `slow` runs: slow and what depends on it were stopped.
    p.write(
        "pipeline.toml",
        r#"
[targets.slow]
kind = "command"
command = "sleep 30; echo > {out}"
outs = ["out/slow"]

[targets.after]
kind = "command"
command = "cat out/slow > {out}"
deps = ["out/slow"]
outs = ["out/after"]
"#,
    );
    let mut child = Command::new(bin())
        .current_dir(p.dir.path())
        .args(["build", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = interrupt_after(&mut child, Duration::from_millis(800));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 130, "{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in report["results"].as_array().unwrap() {
        assert_eq!(r["status"], "not-run", "{r}");
    }
    // Nothing is remembered as a failure.
    let status = p.pipe(&["status", "--json"]).stdout;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    for t in status["targets"].as_array().unwrap() {
        assert_eq!(t["lastError"], serde_json::Value::Null, "{t}");
        assert_ne!(t["state"], "failed", "{t}");
    }
}

#[test]
fn init_writes_a_project_that_builds_and_never_overwrites() {
    let p = Project::new();
    let run = p.pipe(&[
        "init", "movies", "--model", "potion", "--model", "tiny:8", "--sample", "--movies", "40",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = p.path("movies");
    let toml = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    assert!(
        toml.lines().filter(|l| l.starts_with('#')).count() > 5,
        "commented"
    );
    assert!(dir.join("models.d/potion.toml").is_file());
    assert!(dir.join("models.d/tiny.toml").is_file());
    let build = common::pipe_in(&dir, &["build", "--json"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert!(dir.join("public/data/potion/movies.db").is_file());
    assert!(dir.join("public/data/tiny/movies.db").is_file());
    // potion, named first, is the default: published for the front end.
    assert!(dir.join("public/data/movies.db").is_file());

    // A second init changes nothing and says why.
    let before = common::tree(&dir);
    let again = p.pipe(&["init", "movies", "--model", "nomic", "--sample"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("pipeline.toml"), "{}", again.stderr);
    assert_eq!(common::tree(&dir), before);

    // Without sample data: the files load; the build names what is missing.
    let bare = Project::new();
    assert_eq!(bare.pipe(&["init"]).code, 0);
    let models = bare.pipe(&["models", "--json"]);
    assert_eq!(models.code, 0, "{}", models.stderr);
    let models: serde_json::Value = serde_json::from_str(&models.stdout).unwrap();
    assert_eq!(models["models"].as_array().unwrap().len(), 3);
    let build = bare.pipe(&["build"]);
    assert_eq!(build.code, 1);
    assert!(
        build.stderr.contains("data/movies.json"),
        "{}",
        build.stderr
    );

    // Unknown models are refused before anything is written.
    let bad = Project::new();
    let run = bad.pipe(&["init", "--model", "gpt"]);
    assert_eq!(run.code, 2);
    assert!(!bad.path("pipeline.toml").exists());
}

#[test]
fn completions_man_pages_and_examples() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = p.pipe(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("explain"), "{shell}");
        assert!(run.stdout.contains("embedding-model"), "{shell}");
    }
    let man = p.pipe(&["man"]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH pipe"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    let run = p.pipe(&["man", "--dir", "man1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(p.read("man1/pipe-build.1").contains("embedding\\-model"));

    let help = p.pipe(&["--help"]).stdout;
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    for c in &commands {
        let run = p.pipe(&[c, "--help"]);
        assert!(
            run.stdout.contains("Examples:"),
            "pipe {c} --help:\n{}",
            run.stdout
        );
    }
    // -v's build-specific help only where it applies.
    let build = p.pipe(&["build", "--help"]).stdout;
    assert!(build.contains("why targets rebuild"), "{build}");
    let inspect = p.pipe(&["inspect", "--help"]).stdout;
    assert!(!inspect.contains("why targets rebuild"), "{inspect}");
    assert!(!inspect.contains("--manifest"), "{inspect}");
    assert!(!inspect.contains("--verbose"), "{inspect}");
}

/// Run a shell command on a terminal (util-linux `script`), returning what
/// the terminal showed.
fn on_terminal(dir: &Path, shell: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .current_dir(dir)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs a command on a terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let p = Project::new();
    common::write_models(&p);
    p.write("pipeline.toml", "[inputs]\nmovies = \"m.json\"\n");
    p.write(
        "models.d/potion.toml",
        "id = \"potion\"\nname = \"P\"\ndimensions = 0\n",
    );
    let esc = |s: &str| s.contains('\u{1b}');
    let pipe = bin().display().to_string();
    // (command line, environment, coloured?).
    let table: &[(&str, &str, bool)] = &[
        ("build", "", true),
        ("build", "NO_COLOR=1", false),
        ("build --color never", "", false),
        ("build --color always", "NO_COLOR=1", true),
        ("build --color=never", "", false),
    ];
    for (args, env, coloured) in table {
        let shown = on_terminal(p.dir.path(), &format!("env {env} {pipe} {args}"));
        assert!(shown.contains("dimensions must be"), "{args}: {shown}");
        assert_eq!(
            esc(&shown),
            *coloured,
            "{env} pipe {args} on a terminal:\n{shown}"
        );
    }
    // Into a pipe: colour only when asked.
    let run = p.pipe(&["build", "--color", "always"]);
    assert!(esc(&run.stderr), "{}", run.stderr);
    let run = p.pipe(&["build"]);
    assert!(!esc(&run.stderr), "{}", run.stderr);
}

/// Every object key in a JSON value (not the values of free-form maps).
fn keys(v: &serde_json::Value, skip: &[&str], out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                if !skip.contains(&k.as_str()) {
                    keys(v, skip, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, skip, out)),
        _ => {}
    }
}

fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn json_output_is_one_versioned_camel_case_format() {
    let p = sample_project();
    let build = json(&p.pipe(&["build", "--json"]));
    // (arguments): every --json output.
    let table: &[&[&str]] = &[
        &["build", "--json"],
        &["build", "--json", "-n"],
        &["status", "--json"],
        &["models", "--json"],
        &["inspect", "public/data/movies.db", "--json"],
        &[
            "search",
            "--model",
            "potion",
            "--like",
            "tt0001083",
            "--json",
        ],
        &["compare", "--sample", "5", "--json"],
    ];
    for args in table {
        let v = json(&p.pipe(args));
        assert!(v.is_object(), "{args:?}: {v}");
        assert_eq!(v["formatVersion"], 1, "{args:?}");
        let mut all = Vec::new();
        // `stats` and `config` are maps of the stages' and the databases'
        // own keys.
        keys(&v, &["stats", "config"], &mut all);
        for k in all {
            assert!(
                !k.contains('_') && !k.contains('-'),
                "{args:?}: key {k:?} is not camelCase"
            );
        }
    }
    // status --json says the state, in graph order like the build report.
    let status = json(&p.pipe(&["status", "--json"]));
    let targets = status["targets"].as_array().unwrap();
    assert!(
        targets.iter().all(|t| t["state"] == "up-to-date"),
        "{status}"
    );
    let names = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&build, "results"), names(&status, "targets"));
    assert_eq!(names(&status, "targets")[0], "movie-json");
}
