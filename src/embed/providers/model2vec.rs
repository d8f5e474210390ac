//! The built-in model2vec provider: a static embedding model (potion-base-2M
//! and the like: a token embedding table and a tokenizer) run in process
//! through the model2vec-rs crate, loaded from a local directory only (the
//! crate's hub downloads are compiled out).

use crate::embed::config::EmbedConfig;
use crate::embed::{Provider, ProviderError};
use model2vec_rs::model::StaticModel;
use std::path::{Path, PathBuf};

/// Texts per call when the model file sets no `batch`: large enough that
/// the tokenizer's threads stay busy, small enough that progress and the
/// cache advance often.
pub const DEFAULT_BATCH: usize = 2048;

/// The tokens kept per text when `max-length` is not set (model2vec's own
/// default).
pub const DEFAULT_MAX_LENGTH: usize = 512;

/// The files of a model2vec model directory.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// A loaded model2vec model.
pub struct Model2Vec {
    model: StaticModel,
    dir: PathBuf,
    batch: usize,
    max_length: usize,
}

impl Model2Vec {
    /// Load the model of `config.path` (project-relative, under `root`).
    pub fn new(config: &EmbedConfig, root: &Path) -> Result<Model2Vec, ProviderError> {
        let rel = config.path.clone().unwrap_or_default();
        let dir = root.join(&rel);
        for f in MODEL_FILES {
            if !dir.join(f).is_file() {
                return Err(ProviderError::permanent(format!(
                    "model2vec model directory {} has no {f}: it must hold {} (pipe never downloads models; \
                     put the model there or fix `path` in [embed])",
                    rel.display(),
                    MODEL_FILES.join(", ")
                )));
            }
        }
        let model =
            StaticModel::from_pretrained(&dir, None, config.normalize, None).map_err(|e| {
                ProviderError::permanent(format!(
                    "cannot load the model2vec model in {}: {e:#}",
                    rel.display()
                ))
            })?;
        Ok(Model2Vec {
            model,
            dir: rel,
            batch: config.batch.unwrap_or(DEFAULT_BATCH),
            max_length: config.max_length.unwrap_or(DEFAULT_MAX_LENGTH),
        })
    }

    /// The length of the model's vectors.
    pub fn dimensions(&self) -> usize {
        self.model.dim()
    }
}

impl Provider for Model2Vec {
    fn describe(&self) -> String {
        format!("model2vec model in {}", self.dir.display())
    }

    fn max_batch(&self) -> usize {
        self.batch
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        Ok(self
            .model
            .encode_with_args(&owned, Some(self.max_length), owned.len().max(1)))
    }
}
