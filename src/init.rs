//! `pipe init`: a new project — a commented pipeline.toml, one model file
//! per chosen model in models.d, and optionally sample data — that builds
//! at once. It never overwrites: if any file it would write exists, it
//! writes nothing. [`records`]: the same for records of any shape
//! (`pipe init --records FILE`).

pub mod records;

use crate::manifest::model::valid_id;
use crate::sample::{SampleModel, SampleReport, SampleSpec};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A model to declare in models.d.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitModel {
    /// Model id (file name `models.d/<id>.toml`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Vector length.
    pub dimensions: u32,
    /// One line for the admin page and `pipe models`.
    pub description: String,
}

/// The models pipe knows by name: the three of movies-deluxe.
const KNOWN: [(&str, &str, u32, &str); 3] = [
    (
        "nomic",
        "Nomic Embed Text",
        768,
        "Best quality, 768 dimensions",
    ),
    (
        "bge-micro",
        "BGE Micro v2",
        384,
        "Faster, smaller, 384 dimensions",
    ),
    (
        "potion",
        "Potion Base 2M",
        64,
        "Smallest/fastest, 64 dimensions",
    ),
];

impl InitModel {
    /// `nomic`, `bge-micro`, `potion`, or `ID:DIMS` for any other model.
    pub fn parse(spec: &str) -> Result<InitModel, InitError> {
        let model = match spec.split_once(':') {
            Some((id, dims)) => {
                let dimensions: u32 = dims.trim().parse().map_err(|_| {
                    InitError::Usage(format!(
                        "--model {spec}: dimensions must be a whole number, e.g. {id}:384"
                    ))
                })?;
                InitModel {
                    id: id.to_string(),
                    name: id.to_string(),
                    dimensions,
                    description: format!("{dimensions} dimensions"),
                }
            }
            None => {
                let Some(&(id, name, dimensions, description)) = KNOWN.iter().find(|k| k.0 == spec)
                else {
                    let known: Vec<&str> = KNOWN.iter().map(|k| k.0).collect();
                    return Err(InitError::Usage(format!(
                        "--model {spec}: unknown model; use one of {} or ID:DIMENSIONS (e.g. {spec}:384)",
                        known.join(", ")
                    )));
                };
                InitModel {
                    id: id.into(),
                    name: name.into(),
                    dimensions,
                    description: description.into(),
                }
            }
        };
        if !valid_id(&model.id) {
            return Err(InitError::Usage(format!(
                "--model {spec}: the id must be lower-case letters, digits, '-', '_' or '.' (at most 64, starting with a letter or digit)"
            )));
        }
        if model.dimensions == 0 || model.dimensions > 8192 {
            return Err(InitError::Usage(format!(
                "--model {spec}: dimensions must be between 1 and 8192"
            )));
        }
        Ok(model)
    }

    /// The three models of movies-deluxe, nomic first (the default).
    pub fn shipped() -> Vec<InitModel> {
        KNOWN
            .iter()
            .map(|k| InitModel::parse(k.0))
            .collect::<Result<_, _>>()
            .unwrap_or_default()
    }
}

/// What to create.
#[derive(Clone, Debug)]
pub struct InitSpec {
    /// The project directory (created if missing).
    pub dir: PathBuf,
    /// Models, the first one the default. Never empty.
    pub models: Vec<InitModel>,
    /// Write sample data with this many movies.
    pub sample: Option<usize>,
}

/// What [`init`] wrote.
#[derive(Debug)]
pub struct InitReport {
    /// Files written, relative to the project directory.
    pub files: Vec<PathBuf>,
    /// The sample generator's report, with `--sample`.
    pub sample: Option<SampleReport>,
}

/// Why `pipe init` wrote nothing (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// A file it would write exists.
    #[error("{} already has {}: pipe init writes nothing over existing files (remove them, or pick another directory)", dir.display(), list(existing))]
    Exists {
        /// The project directory.
        dir: PathBuf,
        /// The files found.
        existing: Vec<PathBuf>,
    },
    /// Writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The sample generator failed.
    #[error(transparent)]
    Sample(#[from] crate::sample::SampleError),
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pipeline.toml of a new project: the movie pipeline, every key
/// commented.
pub const PIPELINE_TOML: &str = r#"# pipe: the movie pipeline (written by `pipe init`).
#
# Every path is relative to this file's directory. `pipe build` builds every
# target, `pipe status` says what is out of date, `pipe graph` shows how the
# targets connect. README.md of pipe documents each key.

[settings]
models = "models.d"      # one drop-in file per embedding model
output-root = "public"   # where built-in stages write unless a target sets `path`
jobs = 0                 # parallel jobs; 0 = one per core (`-j N` overrides)

[inputs]
# The records, in the movies-deluxe shape; `pipe sample` writes a sample.
movies = "data/movies.json"
collections = "data/collections.json"

# One pretty-printed JSON file per movie, as the front end loads them.
[targets.movie-json]
kind = "movie-json"
path = "public/movies/{movieId}.json"

# One SQLite database per model (a sqlite-vec vec0 table sized to the
# model, vectors read from the model's `embeddings` file); the default
# model's is also published where the front end loads it.
[targets.movies-db]
kind = "movies-db"
path = "public/data/{model}/movies.db"
publish-default = "public/data/movies.db"
"#;

/// The model file of `model`.
pub fn model_toml(model: &InitModel, default: bool) -> String {
    let mut s = format!(
        "# The {name} embedding model (written by `pipe init`).\n\
         id = {id:?}                 # used in target names (movies-db@{id}) and paths\n\
         name = {name:?}\n\
         dimensions = {dims}            # vector length; must match the embeddings file\n\
         metric = \"l2\"                # l2, cosine or l1\n\
         # vectors: embeddings(movie_id TEXT PRIMARY KEY, embedding BLOB, created_at TEXT),\n\
         # blobs of little-endian float32 x dimensions\n\
         embeddings = \"data/embeddings-{id}-movies.db\"\n\
         description = {desc:?}\n",
        name = model.name,
        id = model.id,
        dims = model.dimensions,
        desc = model.description,
    );
    if default {
        s.push_str("default = true               # its database is also published as public/data/movies.db\n");
    }
    s
}

/// Create the project. Checks every file first and writes nothing if one
/// exists; files are created with `create_new`, so a file appearing
/// meanwhile is not overwritten either.
pub fn init(spec: &InitSpec) -> Result<InitReport, InitError> {
    if spec.models.is_empty() {
        return Err(InitError::Usage("no model to declare".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &spec.models {
        if !seen.insert(m.id.as_str()) {
            return Err(InitError::Usage(format!("model {} is named twice", m.id)));
        }
    }
    let mut files: Vec<(PathBuf, String)> =
        vec![(PathBuf::from("pipeline.toml"), PIPELINE_TOML.into())];
    for (i, m) in spec.models.iter().enumerate() {
        files.push((
            PathBuf::from(format!("models.d/{}.toml", m.id)),
            model_toml(m, i == 0),
        ));
    }
    let mut would_write: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    if spec.sample.is_some() {
        would_write.push("data/movies.json".into());
        would_write.push("data/collections.json".into());
        for m in &spec.models {
            would_write.push(format!("data/embeddings-{}-movies.db", m.id).into());
        }
    }
    refuse_existing(&spec.dir, &spec.dir, &would_write)?;
    let mut written = Vec::new();
    for (rel, text) in &files {
        write_new(&spec.dir.join(rel), text)?;
        written.push(rel.clone());
    }
    // Pipe's state is per machine: keep it out of version control (an
    // existing .gitignore is the user's and left alone).
    let ignore = spec.dir.join(".gitignore");
    if ignore.symlink_metadata().is_err() {
        write_new(&ignore, "/.pipe/\n")?;
        written.push(".gitignore".into());
    }
    let sample = match spec.sample {
        Some(movies) => {
            let sample = SampleSpec {
                movies,
                seed: 42,
                collections: 3,
                models: spec
                    .models
                    .iter()
                    .map(|m| SampleModel::new(&m.id, m.dimensions))
                    .collect(),
            };
            let report = crate::sample::generate(&sample, &spec.dir)?;
            written.extend(
                report
                    .files
                    .iter()
                    .map(|f| f.strip_prefix(&spec.dir).unwrap_or(f).to_path_buf()),
            );
            Some(report)
        }
        None => None,
    };
    Ok(InitReport {
        files: written,
        sample,
    })
}

/// Refuse to write anything when one of `would_write` (relative to `dir`,
/// named `shown` in the error) is there already, even a dangling link.
fn refuse_existing(dir: &Path, shown: &Path, would_write: &[PathBuf]) -> Result<(), InitError> {
    let existing: Vec<PathBuf> = would_write
        .iter()
        .filter(|p| dir.join(p).symlink_metadata().is_ok())
        .cloned()
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(InitError::Exists {
            dir: shown.to_path_buf(),
            existing,
        })
    }
}

fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_custom_models() {
        assert_eq!(InitModel::parse("potion").unwrap().dimensions, 64);
        let m = InitModel::parse("minilm:384").unwrap();
        assert_eq!((m.id.as_str(), m.dimensions), ("minilm", 384));
        assert!(InitModel::parse("gpt").is_err());
        assert!(InitModel::parse("Big:12").is_err());
        assert!(InitModel::parse("x:0").is_err());
        assert!(InitModel::parse("x:lots").is_err());
        assert_eq!(InitModel::shipped().len(), 3);
    }
}
