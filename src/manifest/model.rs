//! An embedding model, as declared by one drop-in file in `models.d/`.

use serde::Serialize;
use std::path::PathBuf;

/// The distance metric of a model's vector table (`distance_metric=` of vec0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance, sqlite-vec's default and the original pipeline's.
    L2,
    /// Cosine distance (similarity = 1 − distance).
    Cosine,
    /// Manhattan distance.
    L1,
}

impl Metric {
    /// The name sqlite-vec uses in `distance_metric=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::L1 => "l1",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a model's vectors are quantized in its vector table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// `int8[N]`, from sqlite-vec's `vec_quantize_int8(v, 'unit')`: each
    /// component of [-1, 1] mapped to one of 256 steps (a quarter of the bytes).
    Int8,
    /// `bit[N]`, from `vec_quantize_binary(v)`: the sign of each component
    /// (a 32nd of the bytes); KNN uses the hamming distance.
    Bit,
}

impl Quantization {
    /// The name used in model files and in the `config` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::Int8 => "int8",
            Quantization::Bit => "bit",
        }
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quantization settings of a model (`quantization`, `rescore`,
/// `oversample` of its models.d file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Quantized {
    /// What the vector table stores.
    pub kind: Quantization,
    /// Whether the float vectors are kept too (table `vec_movies_float`), so
    /// that candidates found on the quantized column are re-ranked by their
    /// exact distance.
    pub rescore: bool,
    /// With `rescore`: candidates fetched per neighbour asked for (k × this).
    pub oversample: u32,
}

/// The default of `oversample` for int8: recall@10 of 1.000 against the
/// float original at 100,000 movies for 64, 384 and 768 dimensions
/// (bench/KNN.md).
pub const DEFAULT_OVERSAMPLE_INT8: u32 = 8;

/// The default of `oversample` for bit: the sign of each component keeps
/// far less than int8. At 100,000 generated movies, 8 candidates per
/// neighbour found 0.92 (768 dimensions), 0.86 (384) and 0.47 (64) of the
/// float neighbours (bench/KNN.md); for 64 dimensions 32 found 0.72, 64
/// found 0.85 and 128 0.92 (README, "Quantization"). 32 is a fourfold
/// larger candidate list at a fraction of the float scan's cost.
pub const DEFAULT_OVERSAMPLE_BIT: u32 = 32;

/// Below this many dimensions, bit vectors are too short to rank by: at
/// 100,000 movies a 64-dimension model rescored from 32 candidates per
/// neighbour finds 0.72 of the float neighbours, and 0.92 takes 128 (a
/// query slower than the float search itself). Such a model gets a note.
pub const BIT_MIN_DIMENSIONS: u32 = 256;

/// The default of `oversample` for a quantization.
pub fn default_oversample(kind: Quantization) -> u32 {
    match kind {
        Quantization::Int8 => DEFAULT_OVERSAMPLE_INT8,
        Quantization::Bit => DEFAULT_OVERSAMPLE_BIT,
    }
}

/// The largest `oversample`: k × oversample must stay a sane vec0 `k`.
pub const MAX_OVERSAMPLE: i64 = 256;

/// One embedding model: validated, with paths relative to the project root.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Model {
    /// Short identifier used in target names (`movies-db@potion`) and paths.
    pub id: String,
    /// Display name (`Potion Base 2M`).
    pub name: String,
    /// Vector length; every embedding must have exactly this many float32s.
    pub dimensions: u32,
    /// Distance metric of the vector table.
    pub metric: Metric,
    /// The model's embeddings database, relative to the project root.
    pub embeddings: PathBuf,
    /// User-facing description.
    pub description: String,
    /// Whether this is the default model (exactly one is, after resolution).
    pub default: bool,
    /// Quantization of the vector table; `None` stores float32 vectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantized>,
    /// The name under which Ollama knows this model (`nomic-embed-text`):
    /// the front end embeds search queries through Ollama with it, read
    /// from the database's `config` (`embedding_model_ollama`). The model
    /// file's `ollama-model`, else its `[embed]` model when the provider is
    /// ollama; `None` writes no such row, as the reference does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ollama_model: Option<String>,
    /// How pipe makes the embeddings file (`[embed]`); `None`: the file is
    /// an input made elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed: Option<crate::embed::config::EmbedConfig>,
    /// The models.d file this model was declared in, relative to the root.
    #[serde(skip)]
    pub file: PathBuf,
}

impl Model {
    /// The `config` rows that say which model made a file, as the
    /// reference writes them, for every file pipe writes for a model (its
    /// embeddings file and its database). `embedding_model_ollama` only for
    /// a model Ollama knows: the front end embeds search queries through
    /// Ollama with that name.
    pub fn identity_config(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("embedding_model_id", self.id.clone()),
            ("embedding_model_name", self.name.clone()),
            ("embedding_model_dimensions", self.dimensions.to_string()),
        ];
        if let Some(o) = &self.ollama_model {
            rows.push(("embedding_model_ollama", o.clone()));
        }
        rows
    }

    /// The `config` rows of a database that say how its vectors are stored,
    /// which `pipe search` reads to write its query: none for float32 (an
    /// absent `embedding_quantization` is float, so a float model's config
    /// and bytes are what they were before quantization existed).
    pub fn quantization_config(&self) -> Vec<(&'static str, String)> {
        match &self.quantization {
            None => Vec::new(),
            Some(q) => vec![
                ("embedding_quantization", q.kind.to_string()),
                ("embedding_rescore", q.rescore.to_string()),
                ("embedding_oversample", q.oversample.to_string()),
            ],
        }
    }
}

use super::diagnostic::{ManifestError, SourceFile};
use super::paths::project_path;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// The largest vector sqlite-vec's vec0 accepts.
pub const MAX_DIMENSIONS: i64 = 8192;

/// One `models.d/*.toml` file as written by the user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Spanned<String>,
    name: Spanned<String>,
    dimensions: Spanned<i64>,
    #[serde(default)]
    metric: Option<Spanned<String>>,
    #[serde(default)]
    embeddings: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default: Option<Spanned<bool>>,
    #[serde(default)]
    quantization: Option<Spanned<String>>,
    #[serde(default)]
    rescore: Option<Spanned<bool>>,
    #[serde(default)]
    oversample: Option<Spanned<i64>>,
    #[serde(default, rename = "ollama-model")]
    ollama_model: Option<Spanned<String>>,
    #[serde(default)]
    embed: Option<Spanned<crate::embed::config::RawEmbed>>,
}

/// The models of a project, with the source of each file for diagnostics.
#[derive(Debug, Default)]
pub struct LoadedModels {
    /// Valid models, sorted by id.
    pub models: Vec<Model>,
    /// Notes for the user that are not errors (which default was chosen).
    pub notes: Vec<String>,
}

/// Whether `id` can be used in a target name and a path.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 64
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Read every `*.toml` file of `dir` (project-relative), in file-name order.
pub fn load_models(root: &Path, dir: &Path, errors: &mut Vec<ManifestError>) -> LoadedModels {
    let abs = root.join(dir);
    let entries = match std::fs::read_dir(&abs) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(
                ManifestError::file(dir, format!("cannot read the models directory: {e}"))
                    .help("create it and add one `<id>.toml` file per model, or set `models` in [settings] of pipeline.toml"),
            );
            return LoadedModels::default();
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && !n.starts_with('.'))
        .collect();
    files.sort();

    // (model, source file, span of id, span of `default`)
    let mut parsed: Vec<Checked> = Vec::new();
    let mut notes = Vec::new();
    for name in files {
        let rel = dir.join(&name);
        let src = match SourceFile::read(&root.join(&rel), rel.display().to_string()) {
            Ok(src) => src,
            Err(crate::manifest::diagnostic::ReadError::Io(e)) => {
                errors.push(ManifestError::file(&rel, format!("cannot read: {e}")));
                continue;
            }
            Err(crate::manifest::diagnostic::ReadError::Invalid(e)) => {
                errors.push(*e);
                continue;
            }
        };
        let raw: RawModel = match toml::from_str(&src.text) {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(ManifestError::from_toml(&src, &e));
                continue;
            }
        };
        if let Some(model) = check_model(raw, &src, &rel, errors) {
            if let Some(note) = short_bit_note(&model.0) {
                notes.push(note);
            }
            parsed.push(model);
        }
    }

    // Duplicate ids: name both places.
    let mut seen: std::collections::BTreeMap<String, (String, std::ops::Range<usize>)> =
        Default::default();
    let mut unique = Vec::new();
    for (model, src, id_span, default_span) in parsed {
        if let Some((other, _)) = seen.get(&model.id) {
            errors.push(
                ManifestError::at(&src, id_span, format!("duplicate model id `{}`", model.id))
                    .label("also declared in another file")
                    .help(format!("`{}` already declares this id; model ids must be unique (rename one, or remove one of the files)", other)),
            );
            continue;
        }
        seen.insert(model.id.clone(), (src.name.clone(), id_span.clone()));
        unique.push((model, src, default_span));
    }

    // Exactly one default.
    let defaults: Vec<usize> = unique
        .iter()
        .enumerate()
        .filter(|(_, (m, _, _))| m.default)
        .map(|(i, _)| i)
        .collect();
    if defaults.len() > 1 {
        let names: Vec<String> = defaults.iter().map(|&i| unique[i].1.name.clone()).collect();
        for &i in &defaults[1..] {
            let (m, src, span) = &unique[i];
            errors.push(
                ManifestError::at(
                    src,
                    span.clone().unwrap_or(0..0),
                    format!(
                        "model `{}` is marked default, but so is another model",
                        m.id
                    ),
                )
                .help(format!(
                    "exactly one model may set `default = true`; these files all do: {}",
                    names.join(", ")
                )),
            );
        }
    }
    // The default model's database is the one published for the site
    // (`publish-default`), whose search sends float vectors: an int8 or bit
    // table refuses them, so the default must store floats.
    for &i in &defaults {
        let (m, src, span) = &unique[i];
        if let Some(q) = &m.quantization {
            errors.push(
                ManifestError::at(
                    src,
                    span.clone().unwrap_or(0..0),
                    format!(
                        "model `{}` is quantized ({}), so it cannot be the default",
                        m.id, q.kind
                    ),
                )
                .label("a quantized model")
                .help(QUANTIZED_DEFAULT_HELP),
            );
        }
    }
    let mut models: Vec<Model> = unique.into_iter().map(|(m, _, _)| m).collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    if defaults.is_empty() && !models.is_empty() {
        match models.iter().position(|m| m.quantization.is_none()) {
            Some(first) => {
                models[first].default = true;
                notes.push(format!(
                    "no model in {} sets `default = true`; using `{}` (the first by id{}) as the default. Add `default = true` to one model file to choose.",
                    dir.display(),
                    models[first].id,
                    if first > 0 { " that stores float vectors" } else { "" }
                ));
            }
            None => errors.push(
                ManifestError::file(
                    &models[0].file,
                    format!(
                        "every model in {} is quantized, so none can be the default",
                        dir.display()
                    ),
                )
                .help(QUANTIZED_DEFAULT_HELP),
            ),
        }
    }
    LoadedModels { models, notes }
}

/// What to tell about a bit model whose vectors are too short to rank by.
fn short_bit_note(model: &Model) -> Option<String> {
    let q = model.quantization.filter(|q| q.kind == Quantization::Bit)?;
    if model.dimensions >= BIT_MIN_DIMENSIONS {
        return None;
    }
    let how = if q.rescore {
        format!(
            "rescoring {} candidates per neighbour found 0.72 of the float neighbours of a 64-dimension model at 100,000 movies (0.92 takes oversample = 128, slower than the float search)",
            q.oversample
        )
    } else {
        "without rescoring, a 64-dimension model found 0.21 of the float neighbours at 100,000 movies".to_string()
    };
    Some(format!(
        "{}: quantization = \"bit\" keeps {} bits per vector of model {}; {how}. Below {BIT_MIN_DIMENSIONS} dimensions use quantization = \"int8\" (recall 1.0 rescored), or the float model",
        model.file.display(),
        model.dimensions,
        model.id
    ))
}

const QUANTIZED_DEFAULT_HELP: &str = "the default model's database is published for the site (`publish-default`, e.g. public/data/movies.db), whose search sends float vectors, which an int8 or bit table refuses; set `default = true` in a model file without `quantization` (the float model this one quantizes)";

type Checked = (
    Model,
    SourceFile,
    std::ops::Range<usize>,
    Option<std::ops::Range<usize>>,
);

fn check_model(
    raw: RawModel,
    src: &SourceFile,
    rel: &Path,
    errors: &mut Vec<ManifestError>,
) -> Option<Checked> {
    let before = errors.len();
    let id = raw.id.get_ref().clone();
    if !valid_id(&id) {
        errors.push(
            ManifestError::at(src, raw.id.span(), format!("invalid model id `{id}`"))
                .help("use lower-case letters, digits, `-`, `_` or `.`, starting with a letter or digit (at most 64 characters): it becomes part of target names and paths"),
        );
    }
    if raw.name.get_ref().trim().is_empty() {
        errors.push(
            ManifestError::at(src, raw.name.span(), "the model name is empty")
                .help("give the model a display name, e.g. name = \"Potion Base 2M\""),
        );
    }
    let dims = *raw.dimensions.get_ref();
    if !(1..=MAX_DIMENSIONS).contains(&dims) {
        errors.push(
            ManifestError::at(src, raw.dimensions.span(), format!("dimensions must be between 1 and {MAX_DIMENSIONS}, not {dims}"))
                .help("set it to the length of the model's vectors (e.g. 768 for nomic-embed-text, 384 for bge-micro, 64 for potion)"),
        );
    }
    let metric = match &raw.metric {
        None => Metric::L2,
        Some(m) => match m.get_ref().as_str() {
            "l2" => Metric::L2,
            "cosine" => Metric::Cosine,
            "l1" => Metric::L1,
            other => {
                errors.push(
                    ManifestError::at(src, m.span(), format!("unknown metric `{other}`"))
                        .help("use one of: l2 (the default), cosine, l1"),
                );
                Metric::L2
            }
        },
    };
    let quantization = check_quantization(&raw, metric, dims, src, errors);
    let embeddings = match &raw.embeddings {
        None => Some(std::path::PathBuf::from(format!(
            "data/embeddings-{id}-movies.db"
        ))),
        Some(p) => match project_path(p.get_ref()) {
            Ok(path) => Some(path),
            Err(why) => {
                errors.push(
                    ManifestError::at(src, p.span(), format!("invalid embeddings path: {why}"))
                        .help("give a path relative to the project root, inside it"),
                );
                None
            }
        },
    };
    let embed = raw.embed.map(|e| {
        let span = e.span();
        crate::embed::config::check_embed(e.into_inner(), span, src, rel, errors)
    });
    if let Some(o) = &raw.ollama_model {
        if o.get_ref().trim().is_empty() {
            errors.push(
                ManifestError::at(src, o.span(), "`ollama-model` is empty")
                    .help("name the model as Ollama knows it (e.g. \"nomic-embed-text\"), or remove the key"),
            );
        }
    }
    if errors.len() > before {
        return None;
    }
    let embed = embed.flatten();
    let ollama_model = raw.ollama_model.map(|o| o.into_inner()).or_else(|| {
        embed
            .as_ref()
            .filter(|e| e.provider == crate::embed::config::ProviderKind::Ollama)
            .map(|e| e.model.clone())
    });
    let model = Model {
        id,
        name: raw.name.get_ref().clone(),
        dimensions: dims as u32,
        metric,
        embeddings: embeddings?,
        description: raw.description.unwrap_or_default(),
        default: raw.default.as_ref().is_some_and(|d| *d.get_ref()),
        file: rel.to_path_buf(),
        quantization,
        ollama_model,
        embed,
    };
    let default_span = raw.default.as_ref().map(|d| d.span());
    Some((model, src.clone(), raw.id.span(), default_span))
}

/// The quantization keys of a model file, checked together (each error at
/// the key it is about).
fn check_quantization(
    raw: &RawModel,
    metric: Metric,
    dims: i64,
    src: &SourceFile,
    errors: &mut Vec<ManifestError>,
) -> Option<Quantized> {
    let kind = match &raw.quantization {
        None => None,
        Some(q) => {
            match q.get_ref().as_str() {
                "int8" => Some(Quantization::Int8),
                "bit" => Some(Quantization::Bit),
                other => {
                    errors.push(
                    ManifestError::at(src, q.span(), format!("unknown quantization `{other}`"))
                        .help("use int8 or bit, or leave `quantization` out to store float32 vectors"),
                );
                    return None;
                }
            }
        }
    };
    let Some(kind) = kind else {
        // rescore/oversample only mean something for a quantized table.
        if let Some(r) = &raw.rescore {
            errors.push(
                ManifestError::at(src, r.span(), "`rescore` without `quantization`")
                    .help("rescoring re-ranks the candidates of a quantized table; add quantization = \"int8\" or \"bit\", or remove `rescore`"),
            );
        }
        if let Some(o) = &raw.oversample {
            errors.push(
                ManifestError::at(src, o.span(), "`oversample` without `quantization`")
                    .help("oversample sets how many candidates rescoring re-ranks; add quantization and rescore = true, or remove `oversample`"),
            );
        }
        return None;
    };
    let rescore = raw.rescore.as_ref().is_some_and(|r| *r.get_ref());
    if kind == Quantization::Bit {
        // vec0 rejects `distance_metric` on a bit column (it is always
        // hamming); l2 is accepted as the metric of rescoring.
        if let Some(m) = raw.metric.as_ref().filter(|_| metric != Metric::L2) {
            errors.push(
                ManifestError::at(src, m.span(), format!("metric `{metric}` does not apply to quantization = \"bit\""))
                    .help("sqlite-vec compares bit vectors by hamming distance only; use quantization = \"int8\" for a cosine or l1 table, or remove `metric` (rescored results then use l2)"),
            );
        }
        if dims > 0 && dims % 8 != 0 {
            errors.push(
                ManifestError::at(src, raw.dimensions.span(), format!("quantization = \"bit\" needs dimensions divisible by 8, not {dims}"))
                    .help("sqlite-vec packs bit vectors 8 to a byte; use int8, or no quantization, for this model"),
            );
        }
    }
    let oversample = match &raw.oversample {
        None => default_oversample(kind),
        Some(o) => {
            let v = *o.get_ref();
            if !rescore {
                errors.push(
                    ManifestError::at(src, o.span(), "`oversample` without `rescore = true`")
                        .help("oversample sets how many candidates rescoring re-ranks; add rescore = true, or remove `oversample`"),
                );
            }
            if !(1..=MAX_OVERSAMPLE).contains(&v) {
                errors.push(
                    ManifestError::at(src, o.span(), format!("oversample must be between 1 and {MAX_OVERSAMPLE}, not {v}"))
                        .help(format!("it multiplies k for the candidates of rescoring; the default ({} for {kind}) suits most models", default_oversample(kind))),
                );
            }
            v.clamp(1, MAX_OVERSAMPLE) as u32
        }
    };
    Some(Quantized {
        kind,
        rescore,
        oversample,
    })
}
