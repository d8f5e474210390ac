//! Every command-line flag, in one place.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    success (everything built or up to date)
  1    a target failed to build
  2    invalid command line, manifest or model file
  3    --locked: the build would change pipe.lock
  130  interrupted (Ctrl-C)";

/// pipe: build embedding databases declaratively, incrementally, in parallel
/// and reproducibly.
///
/// pipe reads pipeline.toml (found in the current directory or a parent) and
/// the model files in models.d/, expands them into targets such as
/// `movie-json` and `movies-db@potion`, and rebuilds only what changed.
#[derive(Debug, Parser)]
#[command(name = "pipe", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// Use this pipeline.toml instead of searching the current directory and its parents.
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest: Option<PathBuf>,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (what depends on the command: see its --help).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// When to colour diagnostics, progress bars and tables (`auto`: on a
    /// terminal, unless NO_COLOR is set).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour, even into a pipe or file.
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build targets that are out of date (all of them by default).
    #[command(after_help = BUILD_HELP)]
    Build(BuildArgs),
    /// Show whether each target is up to date, and why not.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Explain exactly what changed since a target was last built.
    #[command(after_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Print the target graph (Graphviz dot or Mermaid).
    #[command(after_help = GRAPH_HELP)]
    Graph(GraphArgs),
    /// List the models of models.d.
    #[command(after_help = MODELS_HELP)]
    Models(ModelsArgs),
    /// Watch the inputs and rebuild what changed, until Ctrl-C.
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Remove what pipe built (nothing else).
    #[command(after_help = CLEAN_HELP)]
    Clean(CleanArgs),
    /// Print where a database pipe built came from (its config table).
    #[command(after_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// Generate a deterministic sample data set (movies, collections, embeddings).
    #[command(after_help = SAMPLE_HELP)]
    Sample(SampleArgs),
    /// Serve the admin page: models, target states, and builds with live progress.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Find the nearest movies to a movie or a vector in a model's database.
    #[command(after_help = SEARCH_HELP)]
    Search(SearchArgs),
    /// Compare models: how much their neighbour lists agree, size and query latency.
    #[command(after_help = COMPARE_HELP)]
    Compare(CompareArgs),
    /// Start a project: a commented pipeline.toml and models.d (and sample data).
    #[command(after_help = INIT_HELP)]
    Init(InitArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the man page (or write one per command into a directory).
    #[command(after_help = MAN_HELP)]
    Man(ManArgs),
}

const STATUS_HELP: &str = "\
A target with many missing or edited outputs shows a count and a few of
them; -v lists every one.

Examples:
  pipe status
  pipe status movies-db        every model's database
  pipe status --json           {formatVersion, targets: [{name, state, reasons, ...}]}";

const EXPLAIN_HELP: &str = "\
Many missing or edited outputs are summarised (a count and a few
examples); -v lists every one.

Examples:
  pipe explain movies-db@potion
  pipe explain movie-json -v   every deleted file, one per line";

const GRAPH_HELP: &str = "\
Examples:
  pipe graph | dot -Tsvg > graph.svg
  pipe graph --format mermaid";

const MODELS_HELP: &str = "\
Examples:
  pipe models
  pipe models --json           {formatVersion, models: [{id, name, dimensions, ...}]}";

const WATCH_HELP: &str = "\
-v prints each rebuild's targets and progress as `pipe build -v` does.
Ctrl-C stops (exit 130).

Examples:
  pipe watch
  pipe watch movies-db@potion --debounce 500";

const CLEAN_HELP: &str = "\
-v lists every removed file.

Examples:
  pipe clean -n                what would be removed
  pipe clean movies-db@potion";

const INSPECT_HELP: &str = "\
Examples:
  pipe inspect public/data/movies.db
  pipe inspect public/data/potion/movies.db --json";

const SAMPLE_HELP: &str = "\
Examples:
  pipe sample                          the project's models, 300 movies
  pipe sample --movies 30000 --seed 1 --dir /tmp/big
  pipe sample --model potion:64 --model tiny:8";

const COMPARE_HELP: &str = "\
Examples:
  pipe compare
  pipe compare --models potion,nomic -k 5 --json";

const INIT_HELP: &str = "\
Models: nomic (768 dims), bge-micro (384), potion (64), or ID:DIMS for
another. pipe init never overwrites: it stops if pipeline.toml or a model
file it would write exists.

--records FILE starts a project for records of any shape (README: \"Your own
records\"): the id field, columns, full-text fields and embedded text are
proposed from the file's first record.

Examples:
  pipe init                        here, with the three shipped models
  pipe init movies --model potion --sample
  pipe init --model minilm:384
  pipe init shop --records products.jsonl --model2vec ~/models/potion-base-8M";

const COMPLETIONS_HELP: &str = "\
Examples:
  pipe completions bash > ~/.local/share/bash-completion/completions/pipe
  pipe completions zsh > ~/.zfunc/_pipe
  pipe completions fish > ~/.config/fish/completions/pipe.fish
  pipe completions powershell >> $PROFILE";

const MAN_HELP: &str = "\
Examples:
  pipe man | man -l -
  pipe man --dir ~/.local/share/man/man1   pipe.1 and pipe-<command>.1";

const SEARCH_HELP: &str = "\
Score:
  cosine databases: similarity = 1 - cosine distance (higher is closer);
    --min-score S keeps similarity >= S.
  l2 and l1 databases: the distance itself (lower is closer);
    --min-score S keeps distance <= S.
  --min-score filters the k nearest; it does not look further than k.

--text embeds the query with the model's provider (models.d [embed]), after
its query-prefix (nomic: query-prefix = \"search_query: \").

--models a,b searches each model for its k nearest and fuses the rankings by
reciprocal rank fusion: score = sum of 1 / (60 + rank) over the models that
rank a result; each model's rank is shown beside the fused one.

Examples:
  pipe search --model potion --like tt0001083
  pipe search --model nomic --like tt0001083 -k 5 --json
  pipe search --text \"a heist in Paris\"   (the default model)
  pipe search --models potion,nomic --text \"a heist in Paris\" -k 5
  pipe search --db public/data/movies.db --vector query.json
  pipe search --model potion --vector query.f32   (raw little-endian float32)";

const BUILD_HELP: &str = "\
Targets:
  A target is named after its table in pipeline.toml; per-model targets get
  `@model`: `movie-json`, `movies-db@potion`. A bare per-model name
  (`movies-db`) selects every model. Dependencies are built first.

The original command line (generate-sqlite), for people who migrate:
  pipe build -m potion               = pipe build movies-db@potion movie-json
  pipe build -m potion --skip-json   = pipe build movies-db@potion
  pipe build --skip-json             = every target except movie-json
  -m with an unknown model fails and lists the models.

-v prints why each target rebuilds and progress inside targets.

Examples:
  pipe build                          build everything that is out of date
  pipe build --target movies-db@potion
  pipe build --dry-run --explain      say what would be rebuilt and why
  pipe build --locked                 fail if the build would change pipe.lock (CI)";

/// `pipe build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Targets to build (default: all).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// A target to build (same as a positional TARGET; repeatable).
    #[arg(short, long = "target", value_name = "TARGET")]
    pub target: Vec<String>,

    /// Build this model's targets (and the JSON files unless --skip-json), as the original `-m`.
    #[arg(short = 'm', long = "embedding-model", value_name = "MODEL")]
    pub model: Option<String>,

    /// Leave out the movie-json targets, as the original `--skip-json`.
    #[arg(long)]
    pub skip_json: bool,

    /// Say what would be built; build nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Print why each target is rebuilt.
    #[arg(long)]
    pub explain: bool,

    /// Fail (exit 3) if the build would change pipe.lock; implies --strict.
    #[arg(long)]
    pub locked: bool,

    /// Treat data-losing warnings (e.g. a missing embeddings file) as errors.
    #[arg(long)]
    pub strict: bool,

    /// Parallel jobs (default: one per core, or `jobs` in pipeline.toml).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Keep building targets that do not depend on a failed one.
    #[arg(short = 'k', long)]
    pub keep_going: bool,

    /// Print the build report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The remote cache flags (see README, "Remote cache").
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Remote cache")]
pub struct RemoteArgs {
    /// Share built targets through this Bazel HTTP cache (bazel-remote, nginx with WebDAV); overrides PIPE_REMOTE_CACHE and [cache] remote.
    #[arg(long, value_name = "URL")]
    pub remote_cache: Option<String>,

    /// Download from the remote cache, upload nothing (untrusted builds; also PIPE_REMOTE_CACHE_READ_ONLY=1).
    #[arg(long)]
    pub remote_cache_read_only: bool,

    /// Fail when the remote cache cannot be used, instead of warning and building locally.
    #[arg(long)]
    pub remote_cache_required: bool,

    /// Use no remote cache, whatever pipeline.toml or the environment say.
    #[arg(long, conflicts_with_all = ["remote_cache", "remote_cache_read_only", "remote_cache_required"])]
    pub no_remote_cache: bool,
}

impl RemoteArgs {
    /// As the library takes them.
    pub fn flags(&self) -> pipe::remote::RemoteFlags {
        pipe::remote::RemoteFlags {
            url: self.remote_cache.clone(),
            read_only: self.remote_cache_read_only,
            required: self.remote_cache_required,
            disabled: self.no_remote_cache,
        }
    }
}

/// `pipe status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Targets to show (default: all).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// List every missing or edited file (as -v does), not a count and a few.
    #[arg(long)]
    pub all: bool,
}

/// `pipe explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The target.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// List every missing or edited file (as -v does), not a count and a few.
    #[arg(long)]
    pub all: bool,
}

/// Output format of `pipe graph`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// `pipe graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
}

/// `pipe models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pipe clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Targets to clean (default: all).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// List what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// `pipe inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A database pipe built.
    pub path: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pipe sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Number of movies.
    #[arg(long, default_value_t = 300)]
    pub movies: usize,
    /// Random seed (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of collections.
    #[arg(long, default_value_t = 3)]
    pub collections: usize,
    /// Project directory to write data/ into (default: the project root, or
    /// the current directory outside a project).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Models as id:dimensions (default: the models of models.d).
    #[arg(long = "model", value_name = "ID:DIMS")]
    pub models: Vec<String>,
}

/// `pipe watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Targets to keep built (default: all).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Quiet period in milliseconds: a burst of changes closer together than
    /// this becomes one rebuild.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub debounce: u64,
    /// Parallel jobs (default: one per core).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Treat data-losing warnings (a missing embeddings file) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Delete the outputs of targets that disappear (a model file removed);
    /// by default they are left alone.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

const SERVE_HELP: &str = "\
Ctrl-C stops the server (exit 130). The page and its API (GET /api/models, GET /api/status, POST /api/build,
GET /api/progress) answer only requests that name this machine
(Host localhost, 127.0.0.1 or [::1] with the port) and refuse state-changing
requests from other sites. Builds share the project lock and .pipe/ state
with `pipe build`.

Examples:
  pipe serve                     http://127.0.0.1:7878/
  pipe serve --port 0            any free port (printed on stdout)";

/// `pipe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port).
    #[arg(short, long, default_value_t = 7878)]
    pub port: u16,
    /// Listen on this address instead of 127.0.0.1. Anyone who can reach it
    /// can start builds: use only on a network you trust.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,
    /// Parallel jobs for builds (default: one per core).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Treat data-losing warnings (a missing embeddings file) as errors.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `pipe search`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("query").required(true).args(["like", "vector", "text"])))]
#[command(group(clap::ArgGroup::new("source").args(["model", "db", "models"]).multiple(true)))]
pub struct SearchArgs {
    /// The model whose database to search (found through pipeline.toml;
    /// default: the default model).
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Search this database (any movies.db pipe built) instead of the model's.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Search several models' databases and fuse their rankings
    /// (reciprocal rank fusion, k = 60), comma-separated.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',', conflicts_with_all = ["model", "db"])]
    pub models: Vec<String>,
    /// Search for this text, embedded by the model's provider (its
    /// models.d `[embed]`, with its `query-prefix`).
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// Movies like this one (it is left out of its own results).
    #[arg(long, value_name = "MOVIE_ID")]
    pub like: Option<String>,
    /// Movies near this vector: a JSON array of numbers, or raw little-endian
    /// float32 bytes (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub vector: Option<PathBuf>,
    /// Number of neighbours.
    #[arg(short, default_value_t = 10, value_name = "K")]
    pub k: usize,
    /// Keep only results at least this close: similarity >= S for cosine,
    /// distance <= S for l2 and l1.
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub min_score: Option<f64>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pipe compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Models to compare, comma-separated (default: every model).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Neighbours per query (overlap@k).
    #[arg(short, default_value_t = 10, value_name = "K")]
    pub k: usize,
    /// Movies in the sample.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub sample: usize,
    /// Seed of the sample (same seed and data, same sample).
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pipe init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory of the new project (created if needed; default: the current directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A model to declare: nomic, bge-micro, potion, or ID:DIMS (repeatable;
    /// default: the three shipped models).
    #[arg(short, long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// Also write sample data (data/movies.json, collections, embeddings),
    /// so that `pipe build` works at once.
    #[arg(long)]
    pub sample: bool,
    /// Movies in the sample data.
    #[arg(long, default_value_t = 300, value_name = "N", requires = "sample")]
    pub movies: usize,
    /// A records project instead of the movie pipeline: a records-db target
    /// proposed from this file's first record (.json, .jsonl or .csv;
    /// copied into data/ when it is not in the project).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["models", "sample"])]
    pub records: Option<PathBuf>,
    /// With --records: the model2vec model directory to embed with (copied
    /// into models/, its dimensions read from it).
    #[arg(long, value_name = "DIR", requires = "records")]
    pub model2vec: Option<PathBuf>,
}

/// `pipe completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `pipe man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write pipe.1 and pipe-<command>.1 into this directory instead of
    /// printing pipe.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
