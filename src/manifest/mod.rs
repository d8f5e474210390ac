//! `pipeline.toml` and `models.d/*.toml`: finding, parsing and validating the
//! user's declaration of the pipeline.
//!
//! Every problem is reported with the file, line and column and what to do,
//! and all problems are reported at once.

pub mod detect;
pub mod diagnostic;
pub mod model;
pub mod paths;
pub mod pipeline;
pub mod records;

pub use diagnostic::{ManifestError, ManifestErrors, SourceFile};
pub use model::{Metric, Model, Quantization, Quantized};
pub use pipeline::{KindDecl, Pipeline, TargetDecl};

use std::path::{Path, PathBuf};

/// The file name pipe looks for.
pub const MANIFEST_NAME: &str = "pipeline.toml";

/// A loaded, validated project declaration.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Absolute path of the project root (the directory of pipeline.toml).
    pub root: PathBuf,
    /// pipeline.toml's text, for diagnostics found later (graph checks).
    pub source: SourceFile,
    /// The parsed pipeline.
    pub pipeline: Pipeline,
    /// Models, sorted by id; exactly one has `default`.
    pub models: Vec<Model>,
    /// Remarks for the user that are not errors.
    pub notes: Vec<String>,
    /// Problems that are not errors (a pipeline with no targets).
    pub warnings: Vec<String>,
}

impl Manifest {
    /// Find pipeline.toml like cargo finds Cargo.toml: in `start`, then in
    /// each parent directory.
    pub fn discover(start: &Path) -> Result<PathBuf, ManifestErrors> {
        let mut dir = Some(start);
        while let Some(d) = dir {
            let candidate = d.join(MANIFEST_NAME);
            if candidate.is_file() {
                return Ok(candidate);
            }
            dir = d.parent();
        }
        Err(ManifestError::file(
            start,
            format!("could not find {MANIFEST_NAME} in this directory or any parent"),
        )
        .help("run pipe inside a project, or pass --manifest PATH")
        .into())
    }

    /// Load and validate the manifest at `path` and the models it names.
    pub fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let source = SourceFile::read(&path, MANIFEST_NAME).map_err(|e| match e {
            diagnostic::ReadError::Io(e) => {
                ManifestError::file(&path, format!("cannot read the manifest: {e}"))
                    .help("check the path given with --manifest")
            }
            diagnostic::ReadError::Invalid(e) => *e,
        })?;
        let mut errors = Vec::new();
        let pipeline = pipeline::parse(&source, &mut errors);
        let (models, notes) = match &pipeline {
            Some(p) => {
                let loaded = model::load_models(&root, &p.settings.models, &mut errors);
                (loaded.models, loaded.notes)
            }
            None => (Vec::new(), Vec::new()),
        };
        match pipeline {
            Some(pipeline) if errors.is_empty() => {
                if models.is_empty() && pipeline.targets.iter().any(|t| t.per_model) {
                    return Err(ManifestError::file(
                        &pipeline.settings.models,
                        "no models: the directory has no *.toml model file",
                    )
                    .help("add one file per model, e.g. models.d/potion.toml with id, name, dimensions")
                    .into());
                }
                let mut warnings = Vec::new();
                if pipeline.targets.is_empty() {
                    warnings.push(format!(
                        "{MANIFEST_NAME} declares no targets, so there is nothing to build; \
                         add a [targets.NAME] table with a kind (movie-json, movies-db or command)"
                    ));
                }
                Ok(Manifest {
                    root,
                    source,
                    pipeline,
                    models,
                    notes,
                    warnings,
                })
            }
            _ => Err(ManifestErrors { errors }),
        }
    }

    /// The default model.
    pub fn default_model(&self) -> Option<&Model> {
        self.models.iter().find(|m| m.default)
    }

    /// A model by id.
    pub fn model(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.id == id)
    }
}
