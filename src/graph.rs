//! The manifest expanded into a DAG of targets.
//!
//! A declared target marked per-model fans out to one target per model
//! (`movies-db@nomic`, `movies-db@potion`, …). Edges come from paths, as in
//! DVC: a target depends on whichever target writes a file it reads.

use crate::manifest::pipeline::{substitute, KindDecl, Template};
use crate::manifest::{paths::project_path, Manifest, ManifestError, ManifestErrors, Model};
use crate::records::RecordsDbSpec;
use crate::stages::command::CommandSpec;
use crate::stages::embeddings::EmbeddingsSpec;
use crate::stages::movie_json::MovieJsonSpec;
use crate::stages::movies_db::MoviesDbSpec;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

mod records;

/// Bumped whenever a stage changes what it writes, so that targets built by
/// an older pipe are rebuilt.
pub fn stage_version(kind: &str) -> u32 {
    match kind {
        "movie-json" => 1,
        "movies-db" => 3,
        "embeddings" => 1,
        "records-db" => 2,
        "records-json" => 1,
        _ => 1,
    }
}

/// What a target writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// One file.
    File(PathBuf),
    /// Many files in one directory, named by a pattern (`{movieId}.json`).
    Dir {
        /// The directory.
        dir: PathBuf,
        /// File name pattern.
        pattern: String,
    },
}

impl Output {
    /// The path shown to users (`public/movies/{movieId}.json`).
    pub fn display(&self) -> String {
        match self {
            Output::File(p) => p.display().to_string(),
            Output::Dir { dir, pattern } => dir.join(pattern).display().to_string(),
        }
    }

    /// Whether `path` is (or lies inside) this output.
    pub fn covers(&self, path: &Path) -> bool {
        match self {
            Output::File(p) => p == path,
            Output::Dir { dir, .. } => path.starts_with(dir) && path != dir,
        }
    }
}

/// What a target does, fully resolved.
#[derive(Clone, Debug)]
pub enum TargetSpec {
    /// Per-movie JSON files.
    MovieJson(MovieJsonSpec),
    /// One model's movies.db.
    MoviesDb(MoviesDbSpec),
    /// A user's command.
    Command(CommandSpec),
    /// One model's embeddings file, made by its provider.
    Embeddings(EmbeddingsSpec),
    /// A records database (one model's, or every model's in one file).
    RecordsDb(RecordsDbSpec),
    /// One JSON file per record of a records target.
    RecordsJson(crate::stages::records_json::RecordsJsonSpec),
}

impl TargetSpec {
    /// The kind's name as written in pipeline.toml.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetSpec::MovieJson(_) => "movie-json",
            TargetSpec::MoviesDb(_) => "movies-db",
            TargetSpec::Command(_) => "command",
            TargetSpec::Embeddings(_) => "embeddings",
            TargetSpec::RecordsDb(_) => "records-db",
            TargetSpec::RecordsJson(_) => "records-json",
        }
    }
}

/// One node of the graph.
#[derive(Clone, Debug)]
pub struct Target {
    /// Full name (`movies-db@potion`).
    pub name: String,
    /// Declared name (`movies-db`).
    pub base: String,
    /// The model, for per-model targets.
    pub model: Option<Model>,
    /// What it does.
    pub spec: TargetSpec,
    /// Files it reads (project-relative), sorted.
    pub inputs: Vec<PathBuf>,
    /// Inputs that may be missing (a model's embeddings file: the build
    /// warns and goes on, as the original did).
    pub optional_inputs: BTreeSet<PathBuf>,
    /// What it writes.
    pub outputs: Vec<Output>,
    /// Targets it depends on (indices into [`Graph::targets`]).
    pub deps: Vec<usize>,
    /// Description from pipeline.toml.
    pub description: Option<String>,
    /// Where it is declared in pipeline.toml.
    pub span: Range<usize>,
}

impl Target {
    /// The resolved configuration that, besides input contents, decides the
    /// target's output: kind, stage version, options and the model's fields.
    /// Flattened to `key → value` so that `pipe explain` can show what changed.
    pub fn config(&self) -> BTreeMap<String, String> {
        let mut c = BTreeMap::new();
        let kind = self.spec.kind();
        c.insert("kind".into(), kind.into());
        c.insert("stage-version".into(), stage_version(kind).to_string());
        let p = |p: &Path| p.display().to_string();
        match &self.spec {
            TargetSpec::MovieJson(s) => {
                c.insert("movies".into(), p(&s.movies));
                c.insert("collections".into(), p(&s.collections));
                c.insert("path".into(), p(&s.out_dir.join(&s.file_template)));
            }
            TargetSpec::MoviesDb(s) => {
                c.insert("movies".into(), p(&s.movies));
                c.insert("collections".into(), p(&s.collections));
                c.insert("path".into(), p(&s.db_path));
                c.insert(
                    "publish".into(),
                    s.publish.as_deref().map(p).unwrap_or_default(),
                );
                database_config(&mut c);
            }
            TargetSpec::Command(s) => {
                c.insert("command".into(), s.command.clone());
                c.insert(
                    "outs".into(),
                    s.outs.iter().map(|o| p(o)).collect::<Vec<_>>().join(" "),
                );
                for (k, v) in &s.env {
                    c.insert(format!("env.{k}"), v.clone());
                }
            }
            TargetSpec::Embeddings(s) => {
                match &s.source {
                    // The key movies.json targets always had: their
                    // fingerprints (and pipe.lock) stay what they were.
                    crate::stages::embeddings::Source::Movies(movies) => {
                        c.insert("movies".into(), p(movies));
                    }
                    crate::stages::embeddings::Source::Records {
                        target,
                        records,
                        text,
                    } => {
                        c.insert("records".into(), p(&records.input));
                        c.insert("records.format".into(), records.format.to_string());
                        c.insert("records.id".into(), records.id.as_str().to_string());
                        c.insert("records.target".into(), target.clone());
                        c.insert("text".into(), text.source.clone());
                    }
                }
                c.insert("path".into(), p(&s.model.embeddings));
                if let Ok((sqlite, _)) = crate::sqlite::versions() {
                    c.insert("sqlite".into(), sqlite.clone());
                }
                c.insert(
                    "env.SOURCE_DATE_EPOCH".into(),
                    std::env::var("SOURCE_DATE_EPOCH").unwrap_or_default(),
                );
                // Every option that changes vectors (never a secret: an API
                // key is read from the environment at run time, and only
                // its variable's name is in the model file).
                if let Some(e) = &s.model.embed {
                    for (k, v) in e.vector_options() {
                        c.insert(format!("embed.{k}"), v);
                    }
                }
            }
            TargetSpec::RecordsDb(s) => records_db_config(s, &mut c),
            TargetSpec::RecordsJson(s) => {
                let r = &s.records;
                c.insert("records".into(), p(&r.input));
                c.insert("records.format".into(), r.format.to_string());
                c.insert("records.id".into(), r.id.as_str().to_string());
                c.insert("path".into(), p(&s.out_dir.join(&s.file_template)));
            }
        }
        if let Some(m) = &self.model {
            c.insert("model.id".into(), m.id.clone());
            c.insert("model.name".into(), m.name.clone());
            c.insert("model.dimensions".into(), m.dimensions.to_string());
            c.insert("model.metric".into(), m.metric.to_string());
            c.insert("model.embeddings".into(), p(&m.embeddings));
            c.insert("model.description".into(), m.description.clone());
            c.insert("model.default".into(), m.default.to_string());
            // Only quantized models have these entries, so that the
            // fingerprints of float models are what they were before.
            if let Some(q) = &m.quantization {
                c.insert("model.quantization".into(), q.kind.to_string());
                c.insert("model.rescore".into(), q.rescore.to_string());
                c.insert("model.oversample".into(), q.oversample.to_string());
                if q.rescore {
                    // The layout of the kept float vectors: databases of
                    // the WITHOUT ROWID table before it are rebuilt.
                    c.insert("model.float-table".into(), "rowid".into());
                }
            }
            // Written to `config` as `embedding_model_ollama`; absent for
            // models without one, whose fingerprints stay what they were.
            if let Some(o) = &m.ollama_model {
                c.insert("model.ollama-model".into(), o.clone());
            }
        }
        c
    }
}

/// Everything besides input contents that decides a records database's
/// bytes: how records are read, the columns, the layout, and each model's
/// fields (every model's for the single layout, whose target has none).
fn records_db_config(s: &RecordsDbSpec, c: &mut BTreeMap<String, String>) {
    let r = &s.records;
    c.insert("records".into(), r.input.display().to_string());
    c.insert("records.format".into(), r.format.to_string());
    c.insert("records.id".into(), r.id.as_str().to_string());
    let columns: Vec<String> = s
        .columns
        .iter()
        .map(|col| {
            format!(
                "{}:{}{}",
                col.name,
                col.ty,
                if col.nullable { "?" } else { "" }
            )
        })
        .collect();
    c.insert(
        "columns".into(),
        serde_json::to_string(&columns).unwrap_or_default(),
    );
    c.insert(
        "fts".into(),
        serde_json::to_string(&s.fts).unwrap_or_default(),
    );
    c.insert("layout".into(), s.layout.to_string());
    c.insert("path".into(), s.path.display().to_string());
    c.insert("primary".into(), s.primary.clone());
    for m in &s.models {
        let k = |key: &str| format!("models.{}.{key}", m.id);
        c.insert(k("embeddings"), s.embeddings_of(m).display().to_string());
        for (key, value) in model_config(m) {
            c.insert(k(&key), value);
        }
    }
    database_config(c);
}

/// What else decides a database's bytes: the SQLite and sqlite-vec that
/// write them, and SOURCE_DATE_EPOCH, whose timestamps the database stores
/// when it is set (a different value means different bytes).
fn database_config(c: &mut BTreeMap<String, String>) {
    if let Ok((sqlite, vec)) = crate::sqlite::versions() {
        c.insert("sqlite".into(), sqlite.clone());
        c.insert("sqlite-vec".into(), vec.clone());
    }
    c.insert(
        "env.SOURCE_DATE_EPOCH".into(),
        std::env::var("SOURCE_DATE_EPOCH").unwrap_or_default(),
    );
}

/// A model's fields that decide what is built from it (`model.` keys of
/// [`Target::config`]).
fn model_config(m: &Model) -> Vec<(String, String)> {
    let mut c = vec![
        ("name".to_string(), m.name.clone()),
        ("dimensions".to_string(), m.dimensions.to_string()),
        ("metric".to_string(), m.metric.to_string()),
        ("description".to_string(), m.description.clone()),
        ("default".to_string(), m.default.to_string()),
    ];
    if let Some(q) = &m.quantization {
        c.push(("quantization".into(), q.kind.to_string()));
        c.push(("rescore".into(), q.rescore.to_string()));
        c.push(("oversample".into(), q.oversample.to_string()));
    }
    if let Some(o) = &m.ollama_model {
        c.push(("ollama-model".into(), o.clone()));
    }
    c
}

/// The targets of a project and their dependencies.
#[derive(Clone, Debug)]
pub struct Graph {
    /// All targets, declared order then model order.
    pub targets: Vec<Target>,
    by_name: HashMap<String, usize>,
}

/// An unknown target name on the command line.
#[derive(Debug, thiserror::Error)]
#[error("unknown target `{name}`{}\navailable targets: {}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), .available.join(", "))]
pub struct UnknownTarget {
    /// The name given.
    pub name: String,
    /// The closest existing name.
    pub suggestion: Option<String>,
    /// Every name that exists (targets and their bare names).
    pub available: Vec<String>,
}

/// Why the original options (`-m MODEL`, `--skip-json`) select nothing.
#[derive(Debug, thiserror::Error)]
pub enum OriginalSelectionError {
    /// `-m` names a model that models.d does not declare.
    #[error("unknown embedding model `{model}`{}\navailable models: {}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), .models.join(", "))]
    UnknownModel {
        /// The id given.
        model: String,
        /// The closest declared id.
        suggestion: Option<String>,
        /// Every declared id.
        models: Vec<String>,
    },
    /// Nothing is left (e.g. --skip-json in a pipeline with only JSON targets).
    #[error("this selection has no targets")]
    Empty,
}

impl Graph {
    /// Expand the manifest's declarations into targets and check the result.
    pub fn build(manifest: &Manifest) -> Result<Graph, ManifestErrors> {
        let src = &manifest.source;
        let mut errors = Vec::new();
        let mut targets = Vec::new();
        for decl in &manifest.pipeline.targets {
            if let KindDecl::RecordsDb(r) = &decl.kind {
                match records::expand(manifest, decl, r) {
                    Ok(t) => targets.extend(t),
                    Err(e) => errors.extend(e.into_iter().map(|(span, message, help)| {
                        ManifestError::at(src, span, message).help(help)
                    })),
                }
                continue;
            }
            let models: Vec<Option<&Model>> = if decl.per_model {
                manifest.models.iter().map(Some).collect()
            } else {
                vec![None]
            };
            for model in models {
                // One embeddings target per model that says how to embed.
                if matches!(decl.kind, KindDecl::Embeddings { .. })
                    && model.is_none_or(|m| m.embed.is_none())
                {
                    continue;
                }
                match expand(manifest, decl, model) {
                    Ok(t) => targets.push(t),
                    Err((span, message, help)) => {
                        errors.push(ManifestError::at(src, span, message).help(help))
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ManifestErrors { errors });
        }
        // A records target's expansion (`X-json`, `X-embeddings@m`) may
        // take a name another table declares.
        let mut names: HashMap<&str, &Target> = HashMap::new();
        for t in &targets {
            if let Some(other) = names.insert(&t.name, t) {
                errors.push(
                    ManifestError::at(
                        src,
                        t.span.clone(),
                        format!("two targets are named `{}`", t.name),
                    )
                    .help(format!(
                        "`{}` expands to it, and so does `{}`: rename one of the tables",
                        t.base, other.base
                    )),
                );
            }
        }
        drop(names);
        if !errors.is_empty() {
            return Err(ManifestErrors { errors });
        }

        // Outputs that collide, or that would overwrite the project's own files.
        let mut owner: Vec<(&Output, usize)> = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            for o in &t.outputs {
                if let Some((_, j)) = owner.iter().find(|(other, _)| collides(o, other)) {
                    let other = &targets[*j];
                    errors.push(
                        ManifestError::at(src, t.span.clone(), format!("`{}` writes {}, which `{}` also writes", t.name, o.display(), other.name))
                            .help("give each target its own output path (per-model targets need `{model}` in their paths)"),
                    );
                }
                owner.push((o, i));
                let protected = [
                    Path::new("pipeline.toml"),
                    Path::new("pipe.lock"),
                    Path::new(".pipe"),
                    manifest.pipeline.settings.models.as_path(),
                ];
                if protected.iter().any(|p| {
                    o.covers(p)
                        || match o {
                            Output::File(f) => f.starts_with(p),
                            Output::Dir { dir, .. } => dir.starts_with(p) || p.starts_with(dir),
                        }
                }) {
                    errors.push(ManifestError::at(src, t.span.clone(), format!("`{}` would write {}, one of pipe's own files", t.name, o.display())).help("choose an output path outside pipeline.toml, pipe.lock, .pipe/ and the models directory"));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ManifestErrors { errors });
        }

        // Edges: who writes what I read. A target whose output is one of its
        // own inputs is its own error, not a "cycle" of one target.
        let all_deps: Vec<Vec<usize>> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut deps = BTreeSet::new();
                for input in &t.inputs {
                    for (o, j) in &owner {
                        if !o.covers(input) {
                            continue;
                        }
                        if *j == i {
                            let what = match o {
                                Output::File(_) => format!("its output {}", o.display()),
                                Output::Dir { dir, .. } => format!("in its output directory {}", dir.display()),
                            };
                            errors.push(
                                ManifestError::at(src, t.span.clone(), format!("`{}` reads {}, which is {what}: an output is declared over one of its inputs", t.name, input.display()))
                                    .help("a target cannot overwrite what it reads: give the output another path, or read another input"),
                            );
                        } else {
                            deps.insert(*j);
                        }
                    }
                }
                deps.into_iter().collect()
            })
            .collect();
        drop(owner);
        if !errors.is_empty() {
            return Err(ManifestErrors { errors });
        }
        for (t, deps) in targets.iter_mut().zip(all_deps) {
            t.deps = deps;
        }
        let by_name = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let graph = Graph { targets, by_name };
        if let Some(cycle) = graph.find_cycle() {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| graph.targets[i].name.as_str())
                .collect();
            let first = &graph.targets[cycle[0]];
            return Err(ManifestError::at(src, first.span.clone(), format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]))
                .help("a target cannot (indirectly) read what it writes; break the cycle by changing one target's deps or outs")
                .into());
        }
        Ok(graph)
    }

    /// A target by full name.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The targets named on the command line (a bare per-model name selects
    /// all its models), plus everything they depend on, in dependency order.
    /// No names selects everything.
    pub fn select(&self, names: &[String]) -> Result<Vec<usize>, UnknownTarget> {
        let mut roots = Vec::new();
        if names.is_empty() {
            roots.extend(0..self.targets.len());
        }
        for name in names {
            let matched: Vec<usize> = match self.get(name) {
                Some(i) => vec![i],
                None => self
                    .targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| &t.base == name)
                    .map(|(i, _)| i)
                    .collect(),
            };
            if matched.is_empty() {
                let available = self.names();
                return Err(UnknownTarget {
                    name: name.clone(),
                    suggestion: crate::suggest::closest(name, available.iter().map(String::as_str))
                        .map(str::to_string),
                    available,
                });
            }
            roots.extend(matched);
        }
        let mut selected = BTreeSet::new();
        let mut stack = roots;
        while let Some(i) = stack.pop() {
            if selected.insert(i) {
                stack.extend(&self.targets[i].deps);
            }
        }
        Ok(self.topological(&selected))
    }

    /// The targets the original generate-sqlite options select, as names for
    /// [`Graph::select`]: `-m MODEL` = that model's targets plus the targets
    /// that have no model (the JSON files); `--skip-json` leaves out the
    /// movie-json targets. Used by the command line and the admin page alike.
    pub fn select_original(
        &self,
        models: &[crate::manifest::Model],
        model: Option<&str>,
        skip_json: bool,
    ) -> Result<Vec<String>, OriginalSelectionError> {
        if let Some(id) = model {
            if !models.iter().any(|m| m.id == id) {
                let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
                return Err(OriginalSelectionError::UnknownModel {
                    suggestion: crate::suggest::closest(id, ids.iter().map(String::as_str))
                        .map(str::to_string),
                    model: id.to_string(),
                    models: ids,
                });
            }
        }
        let names: Vec<String> = self
            .targets
            .iter()
            .filter(|t| model.is_none_or(|id| t.model.as_ref().is_none_or(|m| m.id == id)))
            .filter(|t| !(skip_json && t.spec.kind() == "movie-json"))
            .map(|t| t.name.clone())
            .collect();
        // An empty list would mean "everything" to `select`.
        if names.is_empty() {
            return Err(OriginalSelectionError::Empty);
        }
        Ok(names)
    }

    /// The first of `names` that selects a movie-json target (for a
    /// selection that also says to leave the JSON files out).
    pub fn movie_json_named<'n>(&self, names: &'n [String]) -> Option<&'n str> {
        names.iter().map(String::as_str).find(|n| {
            self.targets
                .iter()
                .any(|t| (t.name == *n || t.base == *n) && t.spec.kind() == "movie-json")
        })
    }

    /// Every name a user can give: full names and bare per-model names.
    pub fn names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        names.extend(
            self.targets
                .iter()
                .filter(|t| t.model.is_some())
                .map(|t| t.base.clone()),
        );
        names.into_iter().collect()
    }

    /// `subset` in an order where dependencies come first (stable: declared order otherwise).
    pub fn topological(&self, subset: &BTreeSet<usize>) -> Vec<usize> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        fn visit(
            g: &Graph,
            i: usize,
            subset: &BTreeSet<usize>,
            done: &mut BTreeSet<usize>,
            order: &mut Vec<usize>,
        ) {
            if !done.insert(i) {
                return;
            }
            for &d in &g.targets[i].deps {
                if subset.contains(&d) {
                    visit(g, d, subset, done, order);
                }
            }
            order.push(i);
        }
        for &i in subset {
            visit(self, i, subset, &mut done, &mut order);
        }
        order
    }

    fn find_cycle(&self) -> Option<Vec<usize>> {
        // 0 = unvisited, 1 = on stack, 2 = done
        let mut color = vec![0u8; self.targets.len()];
        let mut stack = Vec::new();
        fn dfs(
            g: &Graph,
            i: usize,
            color: &mut [u8],
            stack: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            color[i] = 1;
            stack.push(i);
            for &d in &g.targets[i].deps {
                if color[d] == 1 {
                    let start = stack.iter().position(|&s| s == d).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.reverse();
                    return Some(cycle);
                }
                if color[d] == 0 {
                    if let Some(c) = dfs(g, d, color, stack) {
                        return Some(c);
                    }
                }
            }
            stack.pop();
            color[i] = 2;
            None
        }
        for i in 0..self.targets.len() {
            if color[i] == 0 {
                if let Some(c) = dfs(self, i, &mut color, &mut stack) {
                    return Some(c);
                }
            }
        }
        None
    }

    /// Graphviz dot.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph pipe {\n  rankdir=LR;\n  node [shape=box];\n");
        for t in &self.targets {
            s.push_str(&format!(
                "  \"{}\" [label=\"{}\\n({})\"];\n",
                t.name,
                t.name,
                t.spec.kind()
            ));
        }
        for t in &self.targets {
            for &d in &t.deps {
                s.push_str(&format!(
                    "  \"{}\" -> \"{}\";\n",
                    self.targets[d].name, t.name
                ));
            }
            for input in &t.inputs {
                if !t
                    .deps
                    .iter()
                    .any(|&d| self.targets[d].outputs.iter().any(|o| o.covers(input)))
                {
                    s.push_str(&format!(
                        "  \"{}\" [shape=note];\n  \"{}\" -> \"{}\";\n",
                        input.display(),
                        input.display(),
                        t.name
                    ));
                }
            }
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| name.replace(['@', '.', '-', '/'], "_");
        let mut s = String::from("flowchart LR\n");
        let mut files = BTreeSet::new();
        for t in &self.targets {
            s.push_str(&format!("  {}[\"{}\"]\n", id(&t.name), t.name));
        }
        for t in &self.targets {
            for &d in &t.deps {
                s.push_str(&format!(
                    "  {} --> {}\n",
                    id(&self.targets[d].name),
                    id(&t.name)
                ));
            }
            for input in &t.inputs {
                if !t
                    .deps
                    .iter()
                    .any(|&d| self.targets[d].outputs.iter().any(|o| o.covers(input)))
                {
                    let f = input.display().to_string();
                    if files.insert(f.clone()) {
                        s.push_str(&format!("  {}[(\"{}\")]\n", id(&format!("file_{f}")), f));
                    }
                    s.push_str(&format!(
                        "  {} --> {}\n",
                        id(&format!("file_{f}")),
                        id(&t.name)
                    ));
                }
            }
        }
        s
    }
}

fn collides(a: &Output, b: &Output) -> bool {
    match (a, b) {
        (Output::File(x), Output::File(y)) => x == y,
        (Output::Dir { dir: x, .. }, Output::Dir { dir: y, .. }) => {
            x.starts_with(y) || y.starts_with(x)
        }
        (Output::File(f), Output::Dir { dir, .. }) | (Output::Dir { dir, .. }, Output::File(f)) => {
            f.starts_with(dir) || dir.starts_with(f)
        }
    }
}

type ExpandError = (Range<usize>, String, String);

fn resolve(t: &Template, values: &[(&str, &str)]) -> Result<PathBuf, ExpandError> {
    let text = substitute(&t.text, values);
    project_path(&text).map_err(|why| {
        (
            t.span.clone(),
            format!("invalid path: {why}"),
            "paths are relative to the project root and must stay inside it".into(),
        )
    })
}

fn expand(
    manifest: &Manifest,
    decl: &crate::manifest::TargetDecl,
    model: Option<&Model>,
) -> Result<Target, ExpandError> {
    let dims = model.map(|m| m.dimensions.to_string()).unwrap_or_default();
    let values: Vec<(&str, &str)> = match model {
        Some(m) => vec![
            ("model", m.id.as_str()),
            ("dimensions", dims.as_str()),
            ("metric", m.metric.as_str()),
        ],
        None => vec![],
    };
    let input_path = |name: &str| {
        manifest
            .pipeline
            .inputs
            .get(name)
            .map(|i| i.path.clone())
            .unwrap_or_default()
    };
    let name = match model {
        Some(m) => format!("{}@{}", decl.name, m.id),
        None => decl.name.clone(),
    };
    let mut optional_inputs = BTreeSet::new();
    let (spec, mut inputs, outputs) = match &decl.kind {
        KindDecl::MovieJson {
            movies,
            collections,
            path,
        } => {
            let full = resolve(path, &[])?;
            let out_dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
            let file_template = full
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let spec = MovieJsonSpec {
                movies: input_path(movies),
                collections: input_path(collections),
                out_dir: out_dir.clone(),
                file_template: file_template.clone(),
            };
            let inputs = vec![spec.movies.clone(), spec.collections.clone()];
            (
                TargetSpec::MovieJson(spec),
                inputs,
                vec![Output::Dir {
                    dir: out_dir,
                    pattern: file_template,
                }],
            )
        }
        KindDecl::MoviesDb {
            movies,
            collections,
            path,
            publish_default,
        } => {
            let model = model.cloned().ok_or_else(|| {
                (
                    decl.span.clone(),
                    "a movies-db target needs a model".to_string(),
                    "add a model file to models.d".to_string(),
                )
            })?;
            let db_path = resolve(path, &values)?;
            let publish = if model.default {
                publish_default.clone()
            } else {
                None
            };
            let mut outputs = vec![Output::File(db_path.clone())];
            outputs.extend(publish.iter().cloned().map(Output::File));
            optional_inputs.insert(model.embeddings.clone());
            let inputs = vec![
                input_path(movies),
                input_path(collections),
                model.embeddings.clone(),
            ];
            let spec = MoviesDbSpec {
                movies: input_path(movies),
                collections: input_path(collections),
                model,
                db_path,
                publish,
            };
            (TargetSpec::MoviesDb(spec), inputs, outputs)
        }
        KindDecl::Embeddings { movies } => {
            let model = model.cloned().ok_or_else(|| {
                (
                    decl.span.clone(),
                    "an embeddings target needs a model".to_string(),
                    "add a model file with an [embed] table to models.d".to_string(),
                )
            })?;
            let spec = EmbeddingsSpec {
                source: crate::stages::embeddings::Source::Movies(input_path(movies)),
                model,
            };
            let mut inputs = vec![input_path(movies)];
            inputs.extend(spec.extra_inputs(&manifest.root));
            let outputs = vec![Output::File(spec.model.embeddings.clone())];
            (TargetSpec::Embeddings(spec), inputs, outputs)
        }
        KindDecl::RecordsDb(_) => {
            return Err((
                decl.span.clone(),
                "a records-db target expands to several targets".into(),
                "this is a bug in pipe".into(),
            ))
        }
        KindDecl::Command {
            command,
            inputs: named,
            deps,
            outs,
            env,
        } => {
            let mut inputs: Vec<PathBuf> = named.iter().map(|n| input_path(n)).collect();
            for d in deps {
                inputs.push(resolve(d, &values)?);
            }
            let outs: Vec<PathBuf> = outs
                .iter()
                .map(|o| resolve(o, &values))
                .collect::<Result<_, _>>()?;
            let env = env
                .iter()
                .map(|(k, v)| (k.clone(), substitute(v, &values)))
                .collect();
            let spec = CommandSpec {
                command: substitute(&command.text, &values),
                deps: inputs.clone(),
                outs: outs.clone(),
                env,
            };
            (
                TargetSpec::Command(spec),
                inputs,
                outs.into_iter().map(Output::File).collect(),
            )
        }
    };
    inputs.sort();
    inputs.dedup();
    Ok(Target {
        name,
        base: decl.name.clone(),
        model: model.cloned(),
        spec,
        inputs,
        optional_inputs,
        outputs,
        deps: Vec::new(),
        description: decl.description.clone(),
        span: decl.span.clone(),
    })
}
