//! The `pipe` command line: a thin layer over the `pipe` library.

mod cli;
mod report;

use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, ColorChoice, Command};
use pipe::executor::{BuildOptions, Executor, Outcome};
use pipe::graph::Graph;
use pipe::manifest::{Manifest, ManifestErrors};
use report::{Reporter, Verbosity};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Write a line to stdout; `?` ends the command quietly if the reader has
/// gone (`pipe status | head -1`), instead of print!'s panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Write a line to stderr, ignoring errors (eprintln! panics when stderr is
/// a closed pipe).
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Write to stdout, mapping a closed pipe to [`Failure::Closed`].
fn write_out(args: std::fmt::Arguments) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).map_err(Failure::stdout)
}

/// Exit codes (documented in `pipe --help`).
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const LOCKED: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

/// Whether to colour: `--color`, else NO_COLOR (set and not empty: never),
/// else whether the stream is a terminal.
fn use_color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// `--color` as given on the command line, before clap parses it (clap's
/// own help and errors are coloured by it too).
fn color_arg() -> ColorChoice {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut choice = ColorChoice::Auto;
    for (i, a) in args.iter().enumerate() {
        let value = match a.strip_prefix("--color") {
            Some(rest) if rest.starts_with('=') => Some(rest[1..].to_string()),
            Some("") => args.get(i + 1).cloned(),
            _ => None,
        };
        match value.as_deref() {
            Some("always") => choice = ColorChoice::Always,
            Some("never") => choice = ColorChoice::Never,
            Some("auto") => choice = ColorChoice::Auto,
            _ => {}
        }
        if a == "--" {
            break;
        }
    }
    choice
}

/// The command line, with help text adjusted per subcommand: the global
/// `-v`/`--manifest` say what they do where they apply, and are hidden
/// where they do nothing.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    // What -v adds, per command; commands not listed print nothing more.
    let verbose: &[(&str, &str)] = &[
        (
            "build",
            "Print more: why targets rebuild, progress inside targets, command output",
        ),
        (
            "watch",
            "Print each rebuild's targets, reasons and progress",
        ),
        ("clean", "List every file removed"),
        (
            "status",
            "List every missing or edited output (not only a count)",
        ),
        (
            "explain",
            "List every missing or edited output (not only a count)",
        ),
    ];
    let no_manifest = ["inspect", "completions", "man", "init"];
    let no_verbose = [
        "inspect",
        "completions",
        "man",
        "graph",
        "models",
        "search",
        "compare",
        "sample",
        "serve",
        "init",
    ];
    let global = |id: &str| cmd.get_arguments().find(|a| a.get_id() == id).cloned();
    let (Some(v), Some(m), Some(q)) = (global("verbose"), global("manifest"), global("quiet"))
    else {
        return cmd;
    };
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        // A subcommand's own copy of a global flag takes the place of the
        // propagated one, with this command's help (or hidden).
        let (v, m, q) = (v.clone(), m.clone(), q.clone());
        cmd = cmd.mut_subcommand(&name, |mut sub| {
            if let Some((_, help)) = verbose.iter().find(|(n, _)| *n == name) {
                sub = sub.arg(v.help(*help));
            } else if no_verbose.contains(&name.as_str()) {
                sub = sub.arg(v.hide(true));
            }
            if no_manifest.contains(&name.as_str()) {
                sub = sub.arg(m.hide(true));
            }
            if matches!(name.as_str(), "completions" | "man") {
                sub = sub.arg(q.hide(true));
            }
            sub
        });
    }
    cmd
}

fn main() -> ExitCode {
    let clap_color = match color_arg() {
        ColorChoice::Auto => clap::ColorChoice::Auto,
        ColorChoice::Always => clap::ColorChoice::Always,
        ColorChoice::Never => clap::ColorChoice::Never,
    };
    let matches = command().color(clap_color).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let terminal = std::io::stderr().is_terminal();
    let color = use_color(cli.color, terminal);
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new()
            .color(color)
            .unicode(terminal || color)
            .terminal_links(false);
        // Not a terminal: never wrap, so that `file:line:col: message` stays
        // on one line for grep and editors.
        let opts = if terminal {
            opts
        } else {
            opts.wrap_lines(false).width(10_000)
        };
        // Without colour miette would pick its own theme from the terminal.
        let opts = if color {
            opts
        } else {
            opts.graphical_theme(if terminal {
                miette::GraphicalTheme::unicode_nocolor()
            } else {
                miette::GraphicalTheme::none()
            })
        };
        Box::new(opts.build())
    }));
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    {
        let cancelled = cancelled.clone();
        let _ = ctrlc::set_handler(move || {
            if cancelled.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: give up at once (outputs are still safe:
                // everything is written to temporary files first).
                std::process::exit(exit::INTERRUPTED as i32);
            }
            errln!("interrupted: stopping (Ctrl-C again to quit at once)");
        });
    }
    let code = match run(&cli, verbosity, color, &cancelled) {
        Ok(code) => code,
        Err(Failure::Manifest(errors)) => {
            errln!("{}", errors.render());
            exit::USAGE
        }
        Err(Failure::Usage(message)) => {
            errln!("error: {message}");
            exit::USAGE
        }
        Err(Failure::Runtime(message)) => {
            errln!("error: {message}");
            exit::FAILED
        }
        Err(Failure::Locked(message)) => {
            errln!("error: {message}");
            exit::LOCKED
        }
        // The reader of stdout is gone (`| head`): nothing left to say to
        // anyone, and not an error (as ripgrep and cargo do).
        Err(Failure::Closed) => exit::OK,
    };
    if cancelled.load(Ordering::SeqCst) && code != exit::OK {
        return ExitCode::from(exit::INTERRUPTED);
    }
    ExitCode::from(code)
}

enum Failure {
    Manifest(ManifestErrors),
    Usage(String),
    Runtime(String),
    /// `--locked`: the build would change pipe.lock (exit 3).
    Locked(String),
    /// stdout is a closed pipe: stop quietly.
    Closed,
}

impl Failure {
    fn stdout(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Runtime(format!("cannot write to standard output: {e}"))
        }
    }
}

impl From<ManifestErrors> for Failure {
    fn from(e: ManifestErrors) -> Self {
        Failure::Manifest(e)
    }
}

/// pipeline.toml: `--manifest`, or found in the current directory or a parent.
fn manifest_path(cli: &Cli) -> Result<PathBuf, Failure> {
    match &cli.manifest {
        Some(p) => Ok(p.clone()),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Failure::Runtime(format!("cannot read the current directory: {e}")))?;
            Ok(Manifest::discover(&cwd)?)
        }
    }
}

fn load(cli: &Cli, verbosity: Verbosity) -> Result<(Manifest, Graph), Failure> {
    let manifest = Manifest::load(&manifest_path(cli)?)?;
    if verbosity > Verbosity::Quiet {
        for note in &manifest.notes {
            errln!("note: {note}");
        }
        for warning in &manifest.warnings {
            errln!("warning: {warning}");
        }
    }
    let graph = Graph::build(&manifest)?;
    Ok((manifest, graph))
}

/// The version of the `--json` output formats (every one carries it as
/// `formatVersion`); raised when a field is renamed or removed.
const JSON_FORMAT_VERSION: u32 = 1;

/// `{"formatVersion": 1, ...body}`.
#[derive(serde::Serialize)]
struct Versioned<T> {
    #[serde(rename = "formatVersion")]
    format_version: u32,
    #[serde(flatten)]
    body: T,
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(&Versioned {
        format_version: JSON_FORMAT_VERSION,
        body: value,
    })
    .map_err(|e| Failure::Runtime(e.to_string()))?;
    outln!("{text}")
}

fn run(
    cli: &Cli,
    verbosity: Verbosity,
    color: bool,
    cancelled: &Arc<AtomicBool>,
) -> Result<u8, Failure> {
    match &cli.command {
        Command::Build(args) => build(cli, args, verbosity, color, cancelled),
        Command::Status(args) => status(cli, args, verbosity),
        Command::Explain(args) => explain(cli, args, verbosity),
        Command::Graph(args) => {
            let (_, graph) = load(cli, verbosity)?;
            write_out(format_args!(
                "{}",
                match args.format {
                    cli::GraphFormat::Dot => graph.to_dot(),
                    cli::GraphFormat::Mermaid => graph.to_mermaid(),
                }
            ))?;
            Ok(exit::OK)
        }
        Command::Models(args) => models(cli, args, verbosity),
        Command::Clean(args) => clean(cli, args, verbosity),
        Command::Watch(args) => watch(cli, args, verbosity, color, cancelled),
        Command::Inspect(args) => inspect(args),
        Command::Sample(args) => sample(cli, args, verbosity),
        Command::Serve(args) => serve(cli, args, verbosity, cancelled),
        Command::Search(args) => search(cli, args, verbosity),
        Command::Compare(args) => compare(cli, args, verbosity),
        Command::Init(args) => init(args, verbosity),
        Command::Completions(args) => {
            let mut buf = Vec::new();
            clap_complete::generate(args.shell, &mut command(), "pipe", &mut buf);
            write_out(format_args!("{}", String::from_utf8_lossy(&buf)))?;
            Ok(exit::OK)
        }
        Command::Man(args) => man(args, verbosity),
    }
}

/// Targets selected by `build`'s arguments, including the original's `-m`
/// and `--skip-json`.
fn build_selection(
    manifest: &Manifest,
    graph: &Graph,
    args: &cli::BuildArgs,
) -> Result<Vec<String>, Failure> {
    let names: Vec<String> = args.targets.iter().chain(&args.target).cloned().collect();
    if args.skip_json {
        if let Some(json) = graph.movie_json_named(&names) {
            return Err(Failure::Usage(format!(
                "--skip-json leaves out the JSON files, but {json} (a movie-json target) is named too; drop --skip-json or the target"
            )));
        }
    }
    if (args.model.is_none() && !args.skip_json) || !names.is_empty() {
        if let Some(id) = &args.model {
            // Still refuse an unknown model, as the original did.
            graph
                .select_original(&manifest.models, Some(id), false)
                .map_err(|e| Failure::Usage(e.to_string()))?;
        }
        return Ok(names);
    }
    graph
        .select_original(&manifest.models, args.model.as_deref(), args.skip_json)
        .map_err(|e| Failure::Usage(e.to_string()))
}

fn build(
    cli: &Cli,
    args: &cli::BuildArgs,
    verbosity: Verbosity,
    color: bool,
    cancelled: &Arc<AtomicBool>,
) -> Result<u8, Failure> {
    let (manifest, graph) = load(cli, verbosity)?;
    let targets = build_selection(&manifest, &graph, args)?;
    let remote = match pipe::remote::resolve(&manifest.pipeline.cache, &args.remote.flags()) {
        Some(options) if !args.dry_run => {
            Some(pipe::remote::RemoteCache::new(options).map_err(Failure::Usage)?)
        }
        _ => None,
    };
    let executor = Executor::new(&manifest, &graph, cancelled.clone()).with_remote(remote);
    let _lock = executor
        .state()
        .lock(|holder| {
            if verbosity > Verbosity::Quiet {
                errln!("waiting: {holder} is building this project");
            }
        })
        .map_err(|e| Failure::Runtime(format!("cannot take the project lock in .pipe/: {e}")))?;
    let opts = BuildOptions {
        targets,
        jobs: args.jobs.unwrap_or(0),
        keep_going: args.keep_going,
        dry_run: args.dry_run,
        locked: args.locked,
        strict: args.strict,
        publish_model: args.model.clone(),
    };
    let reporter = Reporter::new(verbosity, args.explain || args.dry_run, color);
    let report = executor.build(&opts, &reporter).map_err(|e| match e {
        pipe::executor::BuildError::UnknownTarget(u) => Failure::Usage(u.to_string()),
        e @ pipe::executor::BuildError::NoLock => Failure::Locked(e.to_string()),
        pipe::executor::BuildError::QuantizedPublish(why) => Failure::Usage(why),
        other => Failure::Runtime(other.to_string()),
    });
    reporter.finish();
    let report = report?;
    report::print_warnings(report.warnings(), verbosity);
    if let (Some((target, path)), true) = (&report.published, verbosity > Verbosity::Quiet) {
        errln!(
            "published {target}'s database at {} (as the original's -m did; a plain `pipe build` publishes the default model's again)",
            path.display()
        );
    }
    if args.json {
        // The build is done: a closed stdout must not hide its exit code.
        match print_json(&report) {
            Ok(()) | Err(Failure::Closed) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(summary) = &report.remote {
        report::print_remote(summary, verbosity);
    }
    if !report.lock_mismatch.is_empty() {
        errln!("error: --locked: this build would change pipe.lock:");
        for line in &report.lock_mismatch {
            errln!("  {line}");
        }
        errln!("run `pipe build` without --locked and commit pipe.lock, or find what made the outputs differ");
        return Ok(exit::LOCKED);
    }
    let failed = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .count();
    let stopped = report
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::NotRun)
        .count();
    if verbosity > Verbosity::Quiet {
        let built = report.built();
        let secs = report.millis as f64 / 1000.0;
        if args.dry_run {
            let would = report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::WouldBuild)
                .count();
            errln!(
                "dry run: {would} of {} targets would be built",
                report.results.len()
            );
        } else if failed > 0 {
            errln!("{failed} target(s) failed, {built} built ({secs:.2}s)");
        } else if stopped > 0 {
            errln!(
                "stopped: {built} of {} targets built, {stopped} not built ({secs:.2}s)",
                report.results.len()
            );
        } else if built == 0 {
            errln!(
                "nothing to do: {} targets up to date ({secs:.3}s)",
                report.results.len()
            );
        } else {
            errln!(
                "built {built} of {} targets in {secs:.2}s",
                report.results.len()
            );
        }
    }
    Ok(if report.success() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn status(cli: &Cli, args: &cli::StatusArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let (manifest, graph) = load(cli, verbosity)?;
    let selected = graph
        .select(&args.targets)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let executor = Executor::new(&manifest, &graph, Arc::new(AtomicBool::new(false)));
    let states = executor
        .status(&selected)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    if args.json {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            state: &'static str,
            #[serde(flatten)]
            target: &'a pipe::executor::Staleness,
        }
        let targets: Vec<Row> = states
            .iter()
            .map(|s| Row {
                state: s.state(),
                target: s,
            })
            .collect();
        print_json(&serde_json::json!({ "targets": targets }))?;
        return Ok(exit::OK);
    }
    let all = args.all || verbosity == Verbosity::Verbose;
    let width = states.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &states {
        outln!("{:width$}  {}", s.name, s.state().replace('-', " "))?;
        for line in report::path_lines("missing", &s.missing_inputs, all) {
            outln!("{:width$}    {line}", "")?;
        }
        for r in report::reason_lines(&s.reasons, all) {
            outln!("{:width$}    {r}", "")?;
        }
        if let Some(e) = &s.last_error {
            outln!(
                "{:width$}    last error: {}",
                "",
                e.lines().next().unwrap_or_default()
            )?;
        }
    }
    Ok(exit::OK)
}

fn explain(cli: &Cli, args: &cli::ExplainArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let (manifest, graph) = load(cli, verbosity)?;
    let selected = graph
        .select(std::slice::from_ref(&args.target))
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let names: Vec<usize> = selected
        .into_iter()
        .filter(|&i| graph.targets[i].name == args.target || graph.targets[i].base == args.target)
        .collect();
    let executor = Executor::new(&manifest, &graph, Arc::new(AtomicBool::new(false)));
    let states = executor
        .status(&names)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let all = args.all || verbosity == Verbosity::Verbose;
    // The cache of pipeline.toml or PIPE_REMOTE_CACHE, asked about each target.
    let remote = pipe::remote::resolve(&manifest.pipeline.cache, &Default::default())
        .and_then(|o| pipe::remote::RemoteCache::new(o).ok());
    for s in states {
        if s.reasons.is_empty() {
            outln!(
                "{}: up to date (fingerprint {})",
                s.name,
                &s.fingerprint[..16]
            )?;
        } else {
            outln!("{}: would rebuild because", s.name)?;
            for r in report::reason_lines(&s.reasons, all) {
                outln!("  {r}")?;
            }
        }
        for line in report::path_lines("missing input", &s.missing_inputs, all) {
            outln!("  {line}")?;
        }
        if let Some(line) = remote.as_ref().and_then(|r| remote_entry_line(r, &s)) {
            outln!("  {line}")?;
        }
    }
    Ok(exit::OK)
}

/// For `pipe explain`: whether the remote cache has the target's current
/// fingerprint.
fn remote_entry_line(
    remote: &pipe::remote::RemoteCache,
    s: &pipe::executor::Staleness,
) -> Option<String> {
    let fingerprint = blake3::Hash::from_hex(&s.fingerprint).ok()?;
    Some(match remote.has_entry(&fingerprint) {
        Ok(true) => format!(
            "remote cache {}: has this fingerprint (a build downloads it)",
            remote.url()
        ),
        Ok(false) => format!(
            "remote cache {}: no entry for this fingerprint",
            remote.url()
        ),
        Err(e) => format!("remote cache: cannot be asked ({e})"),
    })
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelRow<'a> {
    id: &'a str,
    name: &'a str,
    dimensions: u32,
    metric: &'a str,
    default: bool,
    description: &'a str,
    embeddings: String,
    embeddings_present: bool,
    file: String,
}

fn models(cli: &Cli, args: &cli::ModelsArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let (manifest, _) = load(cli, verbosity)?;
    let rows: Vec<ModelRow> = manifest
        .models
        .iter()
        .map(|m| ModelRow {
            id: &m.id,
            name: &m.name,
            dimensions: m.dimensions,
            metric: m.metric.as_str(),
            default: m.default,
            description: &m.description,
            embeddings: m.embeddings.display().to_string(),
            embeddings_present: manifest.root.join(&m.embeddings).is_file(),
            file: m.file.display().to_string(),
        })
        .collect();
    if args.json {
        let undeclared: Vec<serde_json::Value> = pipe::manifest::detect::undeclared(&manifest)
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path,
                    "vectors": f.vectors,
                    "dimensions": f.dimensions,
                    "configModel": f.config_model,
                    "configDimensions": f.config_dimensions,
                    "suggestedId": f.suggested_id(),
                    "modelFile": f.model_file_lines(),
                })
            })
            .collect();
        print_json(&serde_json::json!({ "models": rows, "undeclared": undeclared }))?;
        return Ok(exit::OK);
    }
    outln!(
        "{:<12} {:<20} {:>5}  {:<7} {:<8} embeddings",
        "ID",
        "NAME",
        "DIMS",
        "METRIC",
        "DEFAULT"
    )?;
    for r in rows {
        outln!(
            "{:<12} {:<20} {:>5}  {:<7} {:<8} {}{}",
            r.id,
            r.name,
            r.dimensions,
            r.metric,
            if r.default { "yes" } else { "" },
            r.embeddings,
            if r.embeddings_present {
                ""
            } else {
                " (missing)"
            }
        )?;
    }
    print_detected(&manifest, verbosity)?;
    Ok(exit::OK)
}

/// `pipe models`: embeddings files no model file declares (with the model
/// file to add), and embeddings files whose config disagrees with theirs.
fn print_detected(manifest: &Manifest, verbosity: Verbosity) -> Result<(), Failure> {
    use pipe::manifest::detect;
    let found = detect::undeclared(manifest);
    if !found.is_empty() {
        outln!("\nembeddings files that no model file declares:")?;
        for f in &found {
            let dims = f
                .dimensions
                .map_or("? dims".to_string(), |d| format!("{d} dims"));
            outln!("  {}  {dims}, {} vectors", f.path.display(), f.vectors)?;
            outln!(
                "    add {}/{}.toml:",
                manifest.pipeline.settings.models.display(),
                f.suggested_id()
            )?;
            for line in f.model_file_lines().lines() {
                outln!("      {line}")?;
            }
        }
    }
    if verbosity == Verbosity::Quiet {
        return Ok(());
    }
    for m in &manifest.models {
        let abs = manifest.root.join(&m.embeddings);
        if !abs.is_file() {
            continue;
        }
        let sharing: Vec<&str> = manifest
            .models
            .iter()
            .filter(|o| o.embeddings == m.embeddings)
            .map(|o| o.id.as_str())
            .collect();
        if let Some(msg) = detect::read(&abs, &m.embeddings)
            .ok()
            .and_then(|f| detect::config_mismatch(m, &f, &sharing))
        {
            errln!("warning: {msg}");
        }
    }
    Ok(())
}

fn clean(cli: &Cli, args: &cli::CleanArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let (manifest, graph) = load(cli, verbosity)?;
    let selected = graph
        .select(&args.targets)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let executor = Executor::new(&manifest, &graph, Arc::new(AtomicBool::new(false)));
    let _lock = executor
        .state()
        .lock(|holder| errln!("waiting: {holder} is building this project"))
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let removed = executor
        .clean(&selected, args.dry_run)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    if verbosity > Verbosity::Quiet {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        if verbosity == Verbosity::Verbose || args.dry_run {
            for p in &removed {
                outln!("{verb} {}", p.display())?;
            }
        }
        errln!("{verb} {} files", removed.len());
    }
    Ok(exit::OK)
}

fn inspect(args: &cli::InspectArgs) -> Result<u8, Failure> {
    if !args.path.is_file() {
        return Err(Failure::Usage(format!(
            "{} does not exist or is not a file",
            args.path.display()
        )));
    }
    let conn = pipe::sqlite::open_read_only(&args.path)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", args.path.display())))?;
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT key, COALESCE(value, '') FROM config ORDER BY key")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(|e| {
            Failure::Runtime(format!(
                "{} has no readable config table (was it built by pipe?): {e}",
                args.path.display()
            ))
        })?;
    if args.json {
        // The keys are the database's own (the front end reads them), not
        // field names of ours.
        let map: serde_json::Map<String, serde_json::Value> = rows
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        print_json(&serde_json::json!({
            "database": args.path.display().to_string(),
            "config": map,
        }))?;
    } else {
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            outln!("{k:width$}  {v}")?;
        }
    }
    Ok(exit::OK)
}

fn sample(cli: &Cli, args: &cli::SampleArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    use pipe::sample::{SampleModel, SampleSpec};
    // Where to write, and which models: the project's unless told otherwise.
    let project = match &cli.manifest {
        Some(p) => Some(p.clone()),
        None => {
            let start = match &args.dir {
                Some(d) => d.clone(),
                None => std::env::current_dir().map_err(|e| Failure::Runtime(e.to_string()))?,
            };
            Manifest::discover(&start).ok()
        }
    };
    let manifest = match &project {
        Some(p) => Some(Manifest::load(p)?),
        None => None,
    };
    let dir = match (&args.dir, &manifest) {
        (Some(d), _) => d.clone(),
        (None, Some(m)) => m.root.clone(),
        (None, None) => std::env::current_dir().map_err(|e| Failure::Runtime(e.to_string()))?,
    };
    let models: Vec<SampleModel> = if !args.models.is_empty() {
        args.models
            .iter()
            .map(|s| {
                let (id, dims) = s.split_once(':').ok_or_else(|| {
                    Failure::Usage(format!(
                        "--model {s}: expected ID:DIMENSIONS, e.g. potion:64"
                    ))
                })?;
                let dims = dims.parse().map_err(|_| {
                    Failure::Usage(format!("--model {s}: dimensions must be a number"))
                })?;
                Ok(SampleModel::new(id, dims))
            })
            .collect::<Result<_, Failure>>()?
    } else if let Some(m) = &manifest {
        m.models
            .iter()
            .map(|m| SampleModel::new(&m.id, m.dimensions))
            .collect()
    } else {
        SampleModel::defaults()
    };
    if let Some(m) = manifest
        .as_ref()
        .filter(|m| args.models.is_empty() && m.root == dir)
    {
        // The generator writes data/embeddings-<id>-movies.db; say so if a
        // model file points elsewhere.
        for model in &m.models {
            let conventional = PathBuf::from(format!("data/embeddings-{}-movies.db", model.id));
            if model.embeddings != conventional {
                errln!(
                    "note: {} reads {}, but the sample is written to {}",
                    model.id,
                    model.embeddings.display(),
                    conventional.display()
                );
            }
        }
    }
    let spec = SampleSpec {
        movies: args.movies,
        seed: args.seed,
        collections: args.collections,
        models,
    };
    let report =
        pipe::sample::generate(&spec, &dir).map_err(|e| Failure::Runtime(e.to_string()))?;
    if verbosity > Verbosity::Quiet {
        for f in &report.files {
            errln!("wrote {}", f.display());
        }
        let vectors: Vec<String> = report
            .vectors
            .iter()
            .map(|(m, n)| format!("{m}: {n}"))
            .collect();
        errln!(
            "{} movies, vectors per model: {}",
            report.movies,
            vectors.join(", ")
        );
    }
    Ok(exit::OK)
}

fn watch(
    cli: &Cli,
    args: &cli::WatchArgs,
    verbosity: Verbosity,
    color: bool,
    cancelled: &Arc<AtomicBool>,
) -> Result<u8, Failure> {
    use pipe::watch::{WatchMessage, WatchOptions};
    let path = manifest_path(cli)?;
    let opts = WatchOptions {
        targets: args.targets.clone(),
        debounce: std::time::Duration::from_millis(args.debounce),
        jobs: args.jobs.unwrap_or(0),
        strict: args.strict,
        prune: args.prune,
        remote: args.remote.flags(),
    };
    // Progress bars would fight with the one-line-per-rebuild log: build
    // details only with -v.
    let reporter = Reporter::new(
        if verbosity == Verbosity::Verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Quiet
        },
        false,
        color,
    );
    // Whether stdout was closed (`pipe watch | head -3`): then watching is
    // pointless, so stop as Ctrl-C would, and exit quietly.
    let closed = AtomicBool::new(false);
    let mut print = |m: WatchMessage| {
        let mut out = std::io::stdout().lock();
        let line = match m {
            WatchMessage::Watching { files, dirs } => format!("watch: watching {files} files in {dirs} directories; Ctrl-C to stop"),
            WatchMessage::Rebuilt { changed, built, failed, millis } => {
                let what = if changed.is_empty() { "start".to_string() } else { format!("changed {}", changed.join(", ")) };
                let mut line = if built.is_empty() && failed.is_empty() {
                    format!("watch: {what}: nothing to rebuild ({millis} ms)")
                } else if built.is_empty() {
                    format!("watch: {what}: rebuilt nothing ({millis} ms)")
                } else {
                    format!("watch: {what}: rebuilt {} in {:.2}s", built.join(", "), millis as f64 / 1000.0)
                };
                for (name, error) in failed {
                    line.push_str(&format!("\nwatch: {name} FAILED: {error}\nwatch: the last good outputs are in place; fix the input and save to rebuild"));
                }
                line
            }
            WatchMessage::Removed { targets, pruned } => format!(
                "watch: removed {}{}",
                targets.join(", "),
                if pruned { " (outputs deleted)" } else { " (outputs left in place; --prune deletes them)" }
            ),
            WatchMessage::Invalid(diagnostic) => format!("{diagnostic}\nwatch: the manifest is invalid; the last good outputs are in place. Fix it and save to rebuild"),
            // In the log, after the rebuild's line (as a build shows them).
            WatchMessage::Warnings(warnings) => {
                let text = report::warnings_text(warnings.iter().map(|(t, w)| (t.as_str(), w)).collect(), verbosity);
                if text.is_empty() {
                    return;
                }
                text.trim_end().to_string()
            }
            WatchMessage::Error(e) => format!("watch: error: {e}"),
            WatchMessage::Stopped => "watch: stopped".to_string(),
        };
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                closed.store(true, Ordering::SeqCst);
                cancelled.store(true, Ordering::SeqCst);
            }
        }
    };
    pipe::watch::watch(&path, &opts, cancelled, &reporter, &mut print).map_err(Failure::Runtime)?;
    reporter.finish();
    if closed.load(Ordering::SeqCst) {
        return Err(Failure::Closed);
    }
    // Watching ends only on Ctrl-C: exit 130, as an interrupted build does.
    Ok(exit::INTERRUPTED)
}

fn serve(
    cli: &Cli,
    args: &cli::ServeArgs,
    verbosity: Verbosity,
    cancelled: &Arc<AtomicBool>,
) -> Result<u8, Failure> {
    let path = manifest_path(cli)?;
    // Fail at once on a broken manifest; afterwards every request reads it
    // again and reports problems on the page.
    load(cli, verbosity)?;
    let bind = args
        .bind
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let opts = pipe::server::ServeOptions {
        manifest: path,
        bind,
        port: args.port,
        jobs: args.jobs.unwrap_or(0),
        strict: args.strict,
        remote: args.remote.flags(),
    };
    pipe::server::serve(&opts, cancelled.clone(), |addr| {
        if !pipe::server::is_local(addr.ip()) {
            errln!(
                "warning: listening on {addr}, not only on this machine: anyone who can reach it can start builds"
            );
        }
        // Tests and scripts wait for this line to learn the port.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    })
    .map_err(Failure::Runtime)?;
    if verbosity > Verbosity::Quiet {
        errln!("serve: stopped");
    }
    // Serving ends only on Ctrl-C: exit 130, as an interrupted build does.
    Ok(if cancelled.load(Ordering::SeqCst) {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}

impl From<pipe::search::SearchError> for Failure {
    fn from(e: pipe::search::SearchError) -> Self {
        match e {
            pipe::search::SearchError::Usage(m) => Failure::Usage(m),
            pipe::search::SearchError::Database(m) => Failure::Runtime(m),
        }
    }
}

impl From<pipe::embed::query::QueryError> for Failure {
    fn from(e: pipe::embed::query::QueryError) -> Self {
        match e {
            pipe::embed::query::QueryError::Usage(m) => Failure::Usage(m),
            pipe::embed::query::QueryError::Provider(m) => Failure::Runtime(m),
        }
    }
}

fn search(cli: &Cli, args: &cli::SearchArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    use pipe::search::{Database, SearchError};
    if !args.models.is_empty() {
        return search_models(cli, args, verbosity);
    }
    // The manifest's model, when the database was found through it: to say
    // when the database is stale against models.d.
    let (db, declared) = match &args.db {
        // A records database holds several models: --model picks one
        // (default: its primary); a movies.db holds one, checked below.
        Some(path) => (Database::open_model(path, args.model.as_deref())?, None),
        None => {
            let (manifest, graph) = load(cli, verbosity)?;
            // Without --model: the manifest's default model.
            let model = match &args.model {
                Some(m) => m.clone(),
                None => manifest
                    .default_model()
                    .map(|m| m.id.clone())
                    .ok_or_else(|| {
                        Failure::Usage(
                            "say which database: --model MODEL, --models A,B or --db PATH".into(),
                        )
                    })?,
            };
            open_model_db(&manifest, &graph, &model, verbosity)?
        }
    };
    if let (Some(_), Some(model)) = (&args.db, &args.model) {
        if &db.info.model != model {
            return Err(SearchError::Usage(format!(
                "{} holds model {}'s vectors, not {model}'s",
                db.path.display(),
                db.info.model
            ))
            .into());
        }
    }
    // --text needs the model's provider: with --db, the manifest's model of
    // the database's config.
    let declared = match (declared, &args.text) {
        (None, Some(_)) => Some(text_model(cli, verbosity, &db)?),
        (declared, _) => declared,
    };
    let report = search_db(args, &db, declared.as_ref(), verbosity)?;
    print_report(args.json, &report, pipe::search::render)
}

/// A report as JSON (`--json`), or in its human form.
fn print_report<T: serde::Serialize>(
    json: bool,
    report: &T,
    render: impl Fn(&T) -> String,
) -> Result<u8, Failure> {
    if json {
        print_json(report)?;
    } else {
        write_out(format_args!("{}", render(report)))?;
    }
    Ok(exit::OK)
}

/// The database of the manifest's model `id`, and the model with its
/// project root; a note (unless quiet) when the database is stale against
/// the model's models.d file.
fn open_model_db(
    manifest: &Manifest,
    graph: &pipe::graph::Graph,
    id: &str,
    verbosity: Verbosity,
) -> Result<(pipe::search::Database, Option<DeclaredModel>), Failure> {
    let path = pipe::search::locate(manifest, graph, id)?;
    let db = pipe::search::Database::open_model(&path, Some(id))?;
    let declared = manifest.model(id).cloned();
    if let Some(model) = &declared {
        note_stale(model, &db, verbosity);
    }
    Ok((db, declared.map(|m| (m, manifest.root.clone()))))
}

/// A manifest's model and its project root (where its paths start).
type DeclaredModel = (pipe::manifest::Model, std::path::PathBuf);

/// Say (unless quiet) when `db` is stale against `model`'s models.d file.
fn note_stale(model: &pipe::manifest::Model, db: &pipe::search::Database, verbosity: Verbosity) {
    if let (Some(note), true) = (
        pipe::search::stale_note(model, &db.info),
        verbosity > Verbosity::Quiet,
    ) {
        errln!("note: {note}");
    }
}

/// The search `args` ask of `db` (`model`: the manifest's model of it, whose
/// provider embeds `--text`).
fn search_db(
    args: &cli::SearchArgs,
    db: &pipe::search::Database,
    model: Option<&DeclaredModel>,
    verbosity: Verbosity,
) -> Result<pipe::search::SearchReport, Failure> {
    let vector = query_vector(args, model, verbosity)?;
    Ok(pipe::search::search(
        db,
        args.like.as_deref(),
        vector.as_ref().map(|(v, q)| (v.as_slice(), q.clone())),
        args.k,
        args.min_score,
    )?)
}

/// The manifest's model of a database given by `--db`, for `--text`: its
/// `[embed]` says how to embed the query.
fn text_model(
    cli: &Cli,
    verbosity: Verbosity,
    db: &pipe::search::Database,
) -> Result<DeclaredModel, Failure> {
    let (manifest, _) = load(cli, verbosity)?;
    let Some(model) = manifest.model(&db.info.model).cloned() else {
        return Err(Failure::Usage(format!(
            "{} holds model {}'s vectors, but {} declares no model {}: --text embeds the \
             query with the provider of the model's models.d file; add it, or search with \
             --like or --vector",
            db.path.display(),
            db.info.model,
            manifest.root.join(pipe::manifest::MANIFEST_NAME).display(),
            db.info.model
        )));
    };
    note_stale(&model, db, verbosity);
    Ok((model, manifest.root))
}

/// The query vector of `--vector FILE` or `--text TEXT` (`model`: the
/// model, with its project root, whose provider embeds a text); `None` for
/// `--like`.
fn query_vector(
    args: &cli::SearchArgs,
    model: Option<&DeclaredModel>,
    verbosity: Verbosity,
) -> Result<Option<(Vec<f32>, pipe::search::Query)>, Failure> {
    use pipe::search::Query;
    if let Some(file) = &args.vector {
        let v = pipe::search::read_vector_file(file)?;
        let file = file.display().to_string();
        return Ok(Some((v, Query::Vector { file })));
    }
    let Some(text) = &args.text else {
        return Ok(None);
    };
    let Some((model, root)) = model else {
        return Err(Failure::Usage(
            "--text needs the model's models.d file: search with --model MODEL".into(),
        ));
    };
    let q = pipe::embed::query::embed_query(model, root, text)?;
    if let (Some(note), true) = (&q.note, verbosity > Verbosity::Quiet) {
        errln!("note: {note}");
    }
    Ok(Some((
        q.vector,
        Query::Text {
            text: text.clone(),
            sent: q.sent,
            provider: q.provider,
        },
    )))
}

/// `pipe search --models a,b`: each model's search, fused.
fn search_models(cli: &Cli, args: &cli::SearchArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let (manifest, graph) = load(cli, verbosity)?;
    pipe::search::check_k(args.k)?;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = args.models.iter().find(|m| !seen.insert(m.as_str())) {
        return Err(Failure::Usage(format!(
            "--models names {twice} twice: name each model once"
        )));
    }
    let mut reports = Vec::with_capacity(args.models.len());
    for id in &args.models {
        let (db, declared) = open_model_db(&manifest, &graph, id, verbosity)?;
        reports.push(search_db(args, &db, declared.as_ref(), verbosity)?);
    }
    let report = pipe::fused_search::fuse(reports, args.k, args.min_score);
    print_report(args.json, &report, pipe::fused_search::render)
}

fn compare(cli: &Cli, args: &cli::CompareArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let (manifest, graph) = load(cli, verbosity)?;
    let ids: Vec<String> = if args.models.is_empty() {
        manifest.models.iter().map(|m| m.id.clone()).collect()
    } else {
        args.models.clone()
    };
    let mut dbs = Vec::with_capacity(ids.len());
    for id in &ids {
        dbs.push(open_model_db(&manifest, &graph, id, verbosity)?.0);
    }
    let opts = pipe::compare::CompareOptions {
        k: args.k,
        sample: args.sample,
        seed: args.seed,
    };
    let report = pipe::compare::compare(&dbs, &opts)?;
    print_report(args.json, &report, pipe::compare::render)
}

fn init(args: &cli::InitArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    use pipe::init::{InitModel, InitSpec};
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().map_err(|e| Failure::Runtime(e.to_string()))?,
    };
    if let Some(records) = &args.records {
        return init_records(args, &dir, records, verbosity);
    }
    let models = if args.models.is_empty() {
        InitModel::shipped()
    } else {
        args.models
            .iter()
            .map(|m| InitModel::parse(m))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Usage(e.to_string()))?
    };
    let spec = InitSpec {
        dir: dir.clone(),
        models,
        sample: args.sample.then_some(args.movies),
    };
    let report = pipe::init::init(&spec).map_err(init_failure)?;
    init_done(args, &dir, &report.files, verbosity, |cd| {
        if report.sample.is_some() {
            format!("{cd}pipe build")
        } else {
            format!("put your records in data/movies.json and data/collections.json and each model's vectors in data/embeddings-<model>-movies.db (or run `{cd}pipe sample`), then `pipe build`")
        }
    })
}

/// How a failed `pipe init` exits: a usage error when the command asked
/// for what cannot be (or is there already).
fn init_failure(e: pipe::init::InitError) -> Failure {
    use pipe::init::InitError;
    match e {
        InitError::Usage(_) | InitError::Exists { .. } => Failure::Usage(e.to_string()),
        other => Failure::Runtime(other.to_string()),
    }
}

/// After `pipe init` wrote `files` in `dir`: the project must load as
/// written (a defect here is ours: say so); then, unless quiet, the files
/// and the next step, which `next` says given the `cd DIR && ` to run it
/// from (empty in the current directory).
fn init_done(
    args: &cli::InitArgs,
    dir: &std::path::Path,
    files: &[std::path::PathBuf],
    verbosity: Verbosity,
    next: impl FnOnce(&str) -> String,
) -> Result<u8, Failure> {
    Manifest::load(&dir.join("pipeline.toml"))?;
    if verbosity > Verbosity::Quiet {
        for f in files {
            errln!("wrote {}", f.display());
        }
        let cd = match &args.dir {
            Some(d) => format!("cd {} && ", d.display()),
            None => String::new(),
        };
        errln!("next: {}", next(&cd));
    }
    Ok(exit::OK)
}

/// `pipe init --records FILE`.
fn init_records(
    args: &cli::InitArgs,
    dir: &std::path::Path,
    records: &std::path::Path,
    verbosity: Verbosity,
) -> Result<u8, Failure> {
    use pipe::init::records::{init_records, RecordsInitSpec};
    let spec = RecordsInitSpec {
        dir: dir.to_path_buf(),
        records: records.to_path_buf(),
        model2vec: args.model2vec.clone(),
    };
    let report = init_records(&spec).map_err(init_failure)?;
    init_done(args, dir, &report.files, verbosity, |cd| {
        if args.model2vec.is_some() {
            format!("check the columns and text in pipeline.toml, then {cd}pipe build && pipe search --text \"...\"")
        } else {
            format!("put a model2vec model where models.d says (and its dimensions there), check the columns and text in pipeline.toml, then {cd}pipe build")
        }
    })
}

fn man(args: &cli::ManArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    let cmd = command();
    let render = |cmd: clap::Command| -> Result<Vec<u8>, Failure> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| Failure::Runtime(format!("cannot render the man page: {e}")))?;
        Ok(buf)
    };
    let Some(dir) = &args.dir else {
        let page = render(cmd)?;
        write_out(format_args!("{}", String::from_utf8_lossy(&page)))?;
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    let mut pages = vec![("pipe.1".to_string(), render(cmd.clone())?)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("pipe-{}", sub.get_name());
        let page = render(sub.clone().name(name.clone()).display_name(name.clone()))?;
        pages.push((format!("{name}.1"), page));
    }
    for (file, page) in pages {
        let path = dir.join(&file);
        pipe::artifact::write_atomic(&path, &page)
            .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
        if verbosity > Verbosity::Quiet {
            errln!("wrote {}", path.display());
        }
    }
    Ok(exit::OK)
}
