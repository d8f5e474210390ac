//! `pipeline.toml`: the inputs, settings and target declarations of a
//! project, checked against the models.

use super::diagnostic::{ManifestError, SourceFile};
use super::paths::project_path;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    inputs: BTreeMap<String, Spanned<super::records::RawInput>>,
    #[serde(default)]
    targets: BTreeMap<String, Spanned<RawTarget>>,
    #[serde(default)]
    cache: Option<RawCache>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCache {
    #[serde(default)]
    remote: Option<Spanned<String>>,
    #[serde(default)]
    upload: Option<bool>,
}

/// The `[cache]` table: a remote cache shared between machines.
#[derive(Clone, Debug, Default)]
pub struct CacheSettings {
    /// The remote cache's base URL (no credentials: those come from the
    /// environment).
    pub remote: Option<String>,
    /// Whether builds upload what they build (default true).
    pub upload: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSettings {
    #[serde(default)]
    models: Option<Spanned<String>>,
    #[serde(default)]
    output_root: Option<Spanned<String>>,
    #[serde(default)]
    jobs: Option<Spanned<i64>>,
}

/// Every key any target kind accepts; which ones a kind allows is checked
/// after parsing, so that the error can say "`command` is not an option of
/// a movie-json target" at the right place.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    kind: Spanned<String>,
    #[serde(default)]
    per_model: Option<Spanned<bool>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    movies: Option<Spanned<String>>,
    #[serde(default)]
    collections: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    publish_default: Option<Spanned<String>>,
    #[serde(default)]
    command: Option<Spanned<String>>,
    #[serde(default)]
    inputs: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    deps: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    outs: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    env: Option<BTreeMap<String, Spanned<String>>>,
    // records-db (src/manifest/records.rs)
    #[serde(default)]
    records: Option<Spanned<String>>,
    #[serde(default)]
    id: Option<Spanned<String>>,
    #[serde(default)]
    columns: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    #[serde(default)]
    fts: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    layout: Option<Spanned<String>>,
    #[serde(default)]
    text: Option<Spanned<super::records::RawText>>,
    #[serde(default)]
    models: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    embeddings: Option<Spanned<String>>,
    #[serde(default)]
    json: Option<Spanned<String>>,
}

/// A named input file of the pipeline.
#[derive(Clone, Debug)]
pub struct InputDecl {
    /// Project-relative path.
    pub path: PathBuf,
    /// Where it is declared in pipeline.toml.
    pub span: Range<usize>,
    /// The records format it declares (`{ path = "…", format = "csv" }`),
    /// with where; `None`: from the extension.
    pub format: Option<(String, Range<usize>)>,
}

/// Global settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The models directory (project-relative), `models.d` by default.
    pub models: PathBuf,
    /// Where built-in stages put their outputs unless a target sets `path`.
    pub output_root: PathBuf,
    /// Parallel jobs; 0 means one per core.
    pub jobs: usize,
}

/// A path template with its place in pipeline.toml.
#[derive(Clone, Debug)]
pub struct Template {
    /// The text, with `{model}`-style placeholders.
    pub text: String,
    /// Where it is written.
    pub span: Range<usize>,
}

impl Template {
    /// The template a manifest value is, where it is written.
    pub fn of(value: &Spanned<String>) -> Template {
        Template {
            text: value.get_ref().clone(),
            span: value.span(),
        }
    }
}

/// What a declared target does.
#[derive(Clone, Debug)]
pub enum KindDecl {
    /// One JSON file per movie.
    MovieJson {
        /// Input name of movies.json.
        movies: String,
        /// Input name of collections.json.
        collections: String,
        /// Output path template containing `{movieId}` in its file name.
        path: Template,
    },
    /// One movies.db per model.
    MoviesDb {
        /// Input name of movies.json.
        movies: String,
        /// Input name of collections.json.
        collections: String,
        /// Output path template containing `{model}`.
        path: Template,
        /// Where the default model's database is also published.
        publish_default: Option<PathBuf>,
    },
    /// One embeddings file per model that has an `[embed]` table.
    Embeddings {
        /// Input name of movies.json.
        movies: String,
    },
    /// A records database: records of any shape, a table per model or a
    /// database per model.
    RecordsDb(Box<super::records::RecordsDecl>),
    /// A user's shell command with declared inputs and outputs.
    Command {
        /// The command line, run with `sh -c` in the project root.
        command: Template,
        /// Named inputs it reads.
        inputs: Vec<String>,
        /// Further files it reads (templates).
        deps: Vec<Template>,
        /// Files it writes (templates), through `{out}`, `{out1}`, ….
        outs: Vec<Template>,
        /// Extra environment variables (values are templates).
        env: BTreeMap<String, String>,
    },
}

/// One `[targets.NAME]` table.
#[derive(Clone, Debug)]
pub struct TargetDecl {
    /// The table's name (`movies-db`).
    pub name: String,
    /// One target per model (`movies-db@potion`, …).
    pub per_model: bool,
    /// What it does.
    pub kind: KindDecl,
    /// Optional description shown by `pipe graph` and `pipe status`.
    pub description: Option<String>,
    /// Where the table is in pipeline.toml (its `kind` key).
    pub span: Range<usize>,
}

/// pipeline.toml, parsed and checked on its own (models are checked in
/// [`super::Manifest`]).
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Global settings.
    pub settings: Settings,
    /// Named inputs.
    pub inputs: BTreeMap<String, InputDecl>,
    /// Targets in name order.
    pub targets: Vec<TargetDecl>,
    /// The `[cache]` table.
    pub cache: CacheSettings,
}

const MOVIE_KEYS: &[&str] = &["movies", "collections", "path"];
const DB_KEYS: &[&str] = &["movies", "collections", "path", "publish-default"];
const COMMAND_KEYS: &[&str] = &["command", "inputs", "deps", "outs", "env"];
const EMBEDDINGS_KEYS: &[&str] = &["movies"];

/// The placeholders a template may use, by where it is used.
pub const MODEL_PLACEHOLDERS: &[&str] = &["model", "dimensions", "metric"];

/// Parse and check pipeline.toml.
pub fn parse(src: &SourceFile, errors: &mut Vec<ManifestError>) -> Option<Pipeline> {
    let raw: RawPipeline = match toml::from_str(&src.text) {
        Ok(raw) => raw,
        Err(e) => {
            errors.push(ManifestError::from_toml(src, &e));
            return None;
        }
    };

    let path_of = |s: &Spanned<String>, errors: &mut Vec<ManifestError>, what: &str| {
        match project_path(s.get_ref()) {
            Ok(p) => Some(p),
            Err(why) => {
                errors.push(
                ManifestError::at(src, s.span(), format!("invalid {what} path: {why}"))
                    .help("paths in pipeline.toml are relative to the directory that holds it, and must stay inside it"),
            );
                None
            }
        }
    };

    let models = raw
        .settings
        .models
        .as_ref()
        .and_then(|m| path_of(m, errors, "models directory"))
        .unwrap_or_else(|| PathBuf::from("models.d"));
    let output_root = raw
        .settings
        .output_root
        .as_ref()
        .and_then(|m| path_of(m, errors, "output-root"))
        .unwrap_or_else(|| PathBuf::from("public"));
    let jobs = match &raw.settings.jobs {
        None => 0,
        Some(j) if (0..=1024).contains(j.get_ref()) => *j.get_ref() as usize,
        Some(j) => {
            errors.push(
                ManifestError::at(
                    src,
                    j.span(),
                    format!("jobs must be between 0 and 1024, not {}", j.get_ref()),
                )
                .help("0 means one job per core"),
            );
            0
        }
    };

    let mut inputs = BTreeMap::new();
    // Inputs declared with a bad path: already reported, so a target that
    // names one is not reported again as naming an unknown input.
    let mut broken = std::collections::BTreeSet::new();
    for (name, entry) in &raw.inputs {
        let (path, format) = match entry.get_ref() {
            super::records::RawInput::Path(p) => (Spanned::new(entry.span(), p.clone()), None),
            super::records::RawInput::Table(t) => (t.path.clone(), t.format.clone()),
        };
        let format = format.and_then(|f| match crate::records::Format::parse(f.get_ref()) {
            Some(_) => Some((f.get_ref().clone(), f.span())),
            None => {
                errors.push(
                    ManifestError::at(
                        src,
                        f.span(),
                        format!("unknown records format `{}`", f.get_ref()),
                    )
                    .help("use json, jsonl or csv"),
                );
                None
            }
        });
        match path_of(&path, errors, "input") {
            Some(p) => {
                inputs.insert(
                    name.clone(),
                    InputDecl {
                        path: p,
                        span: path.span(),
                        format,
                    },
                );
            }
            None => {
                broken.insert(name.clone());
            }
        }
    }

    let mut cache = CacheSettings {
        remote: None,
        upload: true,
    };
    if let Some(c) = &raw.cache {
        cache.upload = c.upload.unwrap_or(true);
        if let Some(url) = &c.remote {
            match crate::remote::client::parse_url(url.get_ref()) {
                Ok(p) if p.userinfo.is_some() => errors.push(
                    ManifestError::at(src, url.span(), "the remote cache URL holds credentials")
                        .help("pipeline.toml is committed: set PIPE_REMOTE_CACHE_TOKEN, or PIPE_REMOTE_CACHE_USER and PIPE_REMOTE_CACHE_PASSWORD, in the environment instead"),
                ),
                Ok(_) => cache.remote = Some(url.get_ref().clone()),
                Err(why) => errors.push(
                    ManifestError::at(src, url.span(), format!("invalid remote cache URL: {why}"))
                        .help("e.g. remote = \"http://127.0.0.1:8080/pipe\" (a Bazel HTTP cache: bazel-remote, or nginx with WebDAV PUT)"),
                ),
            }
        }
    }

    let mut targets = Vec::new();
    for (name, table) in raw.targets {
        let span = table.span();
        let raw_target = table.into_inner();
        if let Some(t) = check_target(
            src,
            name,
            span,
            raw_target,
            (&inputs, &broken),
            &output_root,
            errors,
        ) {
            targets.push(t);
        }
    }
    Some(Pipeline {
        settings: Settings {
            models,
            output_root,
            jobs,
        },
        inputs,
        targets,
        cache,
    })
}

fn check_target(
    src: &SourceFile,
    name: String,
    table_span: Range<usize>,
    raw: RawTarget,
    (inputs, broken): (
        &BTreeMap<String, InputDecl>,
        &std::collections::BTreeSet<String>,
    ),
    output_root: &std::path::Path,
    errors: &mut Vec<ManifestError>,
) -> Option<TargetDecl> {
    let before = errors.len();
    let kind_span = raw.kind.span();
    if !crate::manifest::model::valid_id(&name) {
        errors.push(
            ManifestError::at(src, table_span.clone(), format!("invalid target name `{name}`"))
                .help("use lower-case letters, digits, `-`, `_` or `.` (no `@`: pipe adds `@model` to per-model targets)"),
        );
    }
    let allowed: &[&str] = match raw.kind.get_ref().as_str() {
        "movie-json" => MOVIE_KEYS,
        "movies-db" => DB_KEYS,
        "command" => COMMAND_KEYS,
        "embeddings" => EMBEDDINGS_KEYS,
        "records-db" => super::records::RECORDS_DB_KEYS,
        other => {
            errors.push(
                ManifestError::at(src, kind_span, format!("unknown target kind `{other}`"))
                    .help("use one of: movie-json, movies-db, records-db, embeddings, command"),
            );
            return None;
        }
    };
    let kind = raw.kind.get_ref().clone();
    // Keys that are present but belong to another kind.
    let whole = || Some(table_span.clone());
    let first = |v: &Option<Vec<Spanned<String>>>| {
        v.as_ref()
            .and_then(|v| v.first().map(|s| s.span()).or_else(whole))
    };
    let present: [(&str, Option<Range<usize>>); 18] = [
        ("movies", raw.movies.as_ref().map(|s| s.span())),
        ("collections", raw.collections.as_ref().map(|s| s.span())),
        ("path", raw.path.as_ref().map(|s| s.span())),
        (
            "publish-default",
            raw.publish_default.as_ref().map(|s| s.span()),
        ),
        ("command", raw.command.as_ref().map(|s| s.span())),
        (
            "inputs",
            raw.inputs
                .as_ref()
                .and_then(|v| v.first().map(|s| s.span()).or_else(whole)),
        ),
        (
            "deps",
            raw.deps
                .as_ref()
                .and_then(|v| v.first().map(|s| s.span()).or_else(whole)),
        ),
        (
            "outs",
            raw.outs
                .as_ref()
                .and_then(|v| v.first().map(|s| s.span()).or_else(whole)),
        ),
        (
            "env",
            raw.env
                .as_ref()
                .and_then(|m| m.values().next().map(|s| s.span()).or_else(whole)),
        ),
        ("records", raw.records.as_ref().map(|s| s.span())),
        ("id", raw.id.as_ref().map(|s| s.span())),
        ("columns", raw.columns.as_ref().map(|s| s.span())),
        ("fts", first(&raw.fts)),
        ("layout", raw.layout.as_ref().map(|s| s.span())),
        ("text", raw.text.as_ref().map(|s| s.span())),
        ("models", first(&raw.models)),
        ("embeddings", raw.embeddings.as_ref().map(|s| s.span())),
        ("json", raw.json.as_ref().map(|s| s.span())),
    ];
    for (key, span) in present {
        if let Some(span) = span.filter(|_| !allowed.contains(&key)) {
            errors.push(
                ManifestError::at(
                    src,
                    span,
                    format!("`{key}` is not an option of a {kind} target"),
                )
                .help(format!("a {kind} target takes: {}", allowed.join(", "))),
            );
        }
    }

    let errors_from_broken = std::cell::Cell::new(false);
    let input_ref =
        |s: &Option<Spanned<String>>, default: &str, errors: &mut Vec<ManifestError>| -> String {
            let (name, span) = match s {
                Some(s) => (s.get_ref().clone(), s.span()),
                None => (default.to_string(), kind_span.clone()),
            };
            if !inputs.contains_key(&name) && !broken.contains(&name) {
                errors.push(unknown_input(src, span, &name, inputs));
            }
            if broken.contains(&name) {
                // Reported at the input's path; the target is left out.
                errors_from_broken.set(true);
            }
            name
        };

    if kind == "records-db" {
        if let Some(p) = &raw.per_model {
            errors.push(
                ManifestError::at(src, p.span(), "`per-model` is not an option of a records-db target")
                    .help("a records-db target sets `layout`: \"per-model\" (one database per model, the default) or \"single\" (one database, a table per model)"),
            );
        }
    }
    let always_per_model = kind == "movies-db" || kind == "embeddings";
    let per_model = raw
        .per_model
        .as_ref()
        .map_or(always_per_model, |p| *p.get_ref());
    if always_per_model && !per_model {
        if let Some(p) = &raw.per_model {
            errors.push(
                ManifestError::at(src, p.span(), format!("a {kind} target is always per-model"))
                    .help(if kind == "embeddings" {
                        "remove `per-model = false`: there is one embeddings target per model that has an [embed] table"
                    } else {
                        "remove `per-model = false`: the database holds one model's vectors"
                    }),
            );
        }
    }
    if kind == "movie-json" && per_model {
        if let Some(p) = &raw.per_model {
            errors.push(
                ManifestError::at(src, p.span(), "a movie-json target cannot be per-model")
                    .help("the JSON files do not depend on a model; remove `per-model`"),
            );
        }
    }

    let template = |s: &Option<Spanned<String>>, default: String| match s {
        Some(s) => Template::of(s),
        None => Template {
            text: default,
            span: kind_span.clone(),
        },
    };

    let root = output_root.display().to_string();
    let decl = match kind.as_str() {
        "movie-json" => {
            let path = template(&raw.path, format!("{root}/movies/{{movieId}}.json"));
            check_template(src, &path, &["movieId"], errors);
            let file = path.text.rsplit('/').next().unwrap_or_default();
            if !file.contains("{movieId}") || path.text.matches("{movieId}").count() != 1 {
                errors.push(
                    ManifestError::at(
                        src,
                        path.span.clone(),
                        "the path of a movie-json target needs `{movieId}` once, in its file name",
                    )
                    .help("e.g. path = \"public/movies/{movieId}.json\""),
                );
            }
            KindDecl::MovieJson {
                movies: input_ref(&raw.movies, "movies", errors),
                collections: input_ref(&raw.collections, "collections", errors),
                path,
            }
        }
        "movies-db" => {
            let path = template(&raw.path, format!("{root}/data/{{model}}/movies.db"));
            check_template(src, &path, MODEL_PLACEHOLDERS, errors);
            if !path.text.contains("{model}") {
                errors.push(ManifestError::at(src, path.span.clone(), "the path of a movies-db target needs `{model}`").help("each model gets its own database, e.g. path = \"public/data/{model}/movies.db\""));
            }
            let publish_default =
                raw.publish_default
                    .as_ref()
                    .and_then(|p| match project_path(p.get_ref()) {
                        Ok(path) => Some(path),
                        Err(why) => {
                            errors.push(ManifestError::at(
                                src,
                                p.span(),
                                format!("invalid publish-default path: {why}"),
                            ));
                            None
                        }
                    });
            KindDecl::MoviesDb {
                movies: input_ref(&raw.movies, "movies", errors),
                collections: input_ref(&raw.collections, "collections", errors),
                path,
                publish_default,
            }
        }
        "embeddings" => KindDecl::Embeddings {
            movies: input_ref(&raw.movies, "movies", errors),
        },
        "records-db" => {
            let records = raw
                .records
                .is_some()
                .then(|| input_ref(&raw.records, "", errors));
            let keys = super::records::RawRecordsDb {
                id: raw.id,
                columns: raw.columns,
                fts: raw.fts,
                layout: raw.layout,
                path: raw.path,
                text: raw.text,
                models: raw.models,
                embeddings: raw.embeddings,
                json: raw.json,
            };
            let table = super::records::Table {
                src,
                name: &name,
                kind_span: kind_span.clone(),
                inputs,
                output_root,
            };
            let decl = super::records::check(&table, keys, records, errors)?;
            KindDecl::RecordsDb(Box::new(decl))
        }
        _ => {
            let Some(command) = raw.command.as_ref() else {
                errors.push(
                    ManifestError::at(src, kind_span.clone(), "a command target needs `command`")
                        .help("e.g. command = \"python scripts/embed.py --out {out}\""),
                );
                return None;
            };
            let allowed_ph: Vec<&str> = if per_model {
                MODEL_PLACEHOLDERS.to_vec()
            } else {
                vec![]
            };
            let command = Template::of(command);
            let mut outs = Vec::new();
            for o in raw.outs.iter().flatten() {
                let t = Template::of(o);
                check_template(src, &t, &allowed_ph, errors);
                outs.push(t);
            }
            let mut deps = Vec::new();
            for d in raw.deps.iter().flatten() {
                let t = Template::of(d);
                check_template(src, &t, &allowed_ph, errors);
                deps.push(t);
            }
            let mut cmd_ph = allowed_ph.clone();
            let out_names: Vec<String> = (0..outs.len()).map(|i| format!("out{i}")).collect();
            cmd_ph.extend(out_names.iter().map(String::as_str));
            if !outs.is_empty() {
                cmd_ph.push("out");
            }
            check_template(src, &command, &cmd_ph, errors);
            if !outs.is_empty() && !command.text.contains("{out") {
                errors.push(
                    ManifestError::at(src, command.span.clone(), "the command must write its outputs through `{out}` (or `{out0}`, `{out1}`, …)")
                        .help("pipe replaces `{out}` with a temporary path beside the output and renames it into place when the command succeeds, so a failed or killed command never damages the last good output"),
                );
            }
            let mut env = BTreeMap::new();
            for (k, v) in raw.env.iter().flatten() {
                let t = Template::of(v);
                check_template(src, &t, &cmd_ph, errors);
                env.insert(k.clone(), t.text);
            }
            let mut named = Vec::new();
            for i in raw.inputs.iter().flatten() {
                if broken.contains(i.get_ref()) {
                    errors_from_broken.set(true);
                } else if !inputs.contains_key(i.get_ref()) {
                    errors.push(unknown_input(src, i.span(), i.get_ref(), inputs));
                }
                named.push(i.get_ref().clone());
            }
            KindDecl::Command {
                command,
                inputs: named,
                deps,
                outs,
                env,
            }
        }
    };
    if errors.len() > before || errors_from_broken.get() {
        return None;
    }
    Some(TargetDecl {
        name,
        per_model,
        kind: decl,
        description: raw.description,
        span: kind_span,
    })
}

fn unknown_input(
    src: &SourceFile,
    span: Range<usize>,
    name: &str,
    inputs: &BTreeMap<String, InputDecl>,
) -> ManifestError {
    let known: Vec<&str> = inputs.keys().map(String::as_str).collect();
    let mut help = if known.is_empty() {
        "declare it in [inputs], e.g. movies = \"data/movies.json\"".to_string()
    } else {
        format!(
            "declare it in [inputs]; declared inputs: {}",
            known.join(", ")
        )
    };
    if let Some(close) = crate::suggest::closest(name, known.iter().copied()) {
        help = format!("did you mean `{close}`? {help}");
    }
    ManifestError::at(src, span, format!("unknown input `{name}`")).help(help)
}

/// Check that a template's `{placeholders}` are among `allowed`.
pub(super) fn check_template(
    src: &SourceFile,
    t: &Template,
    allowed: &[&str],
    errors: &mut Vec<ManifestError>,
) {
    for ph in placeholders(&t.text) {
        if !allowed.contains(&ph) {
            let help = if MODEL_PLACEHOLDERS.contains(&ph) {
                "model placeholders need `per-model = true` on the target".to_string()
            } else if allowed.is_empty() {
                "this text takes no placeholders".to_string()
            } else {
                format!(
                    "placeholders here: {}",
                    allowed
                        .iter()
                        .map(|a| format!("{{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            errors.push(
                ManifestError::at(
                    src,
                    t.span.clone(),
                    format!("unknown placeholder `{{{ph}}}`"),
                )
                .help(help),
            );
        }
    }
}

/// The `{name}` placeholders of a template, in order.
///
/// ```
/// use pipe::manifest::pipeline::{placeholders, substitute};
/// let t = "public/data/{model}/movies-{dimensions}.db";
/// assert_eq!(placeholders(t), ["model", "dimensions"]);
/// assert_eq!(substitute(t, &[("model", "potion"), ("dimensions", "64")]), "public/data/potion/movies-64.db");
/// ```
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// Replace `{name}` placeholders with values.
pub fn substitute(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}
