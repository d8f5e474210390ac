//! The built-in model2vec provider: a static embedding model (potion-base-2M
//! and the like: a token embedding table and a tokenizer) run in process,
//! loaded from a local directory only (no hub downloads).
//!
//! A model with a Unigram tokenizer (the potion models) is loaded and
//! encoded by `unigram`, to the vectors model2vec-rs gives in a fraction
//! of its load time; any other is run through the model2vec-rs crate.

mod unigram;

use crate::embed::config::EmbedConfig;
use crate::embed::{Provider, ProviderError};
use model2vec_rs::model::StaticModel;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use unigram::{UnigramModel, Unsupported};

/// Texts per call when the model file sets no `batch`: large enough that
/// both cores stay busy, small enough that progress and the cache advance
/// often.
pub const DEFAULT_BATCH: usize = 2048;

/// The tokens kept per text when `max-length` is not set (model2vec's own
/// default).
pub const DEFAULT_MAX_LENGTH: usize = 512;

/// The files of a model2vec model directory.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// How a loaded model encodes.
enum Encoder {
    /// Unigram tokenizer: pipe's own loader and encoder.
    Unigram(Box<UnigramModel>),
    /// Anything else: model2vec-rs.
    Crate(StaticModel),
}

/// A loaded model2vec model.
pub struct Model2Vec {
    encoder: Encoder,
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
        let cannot = |e: &dyn std::fmt::Display| {
            ProviderError::permanent(format!(
                "cannot load the model2vec model in {}: {e:#}",
                rel.display()
            ))
        };
        let encoder = match UnigramModel::load(&dir, config.normalize) {
            Ok(m) => Encoder::Unigram(Box::new(m)),
            Err(Unsupported::Invalid(e)) => return Err(cannot(&e)),
            Err(Unsupported::Other(why)) => Encoder::Crate(
                StaticModel::from_pretrained(&dir, None, config.normalize, None)
                    .map_err(|e| cannot(&format!("{e:#} (and pipe's own loader: {why})")))?,
            ),
        };
        Ok(Model2Vec {
            encoder,
            dir: rel,
            batch: config.batch.unwrap_or(DEFAULT_BATCH),
            max_length: config.max_length.unwrap_or(DEFAULT_MAX_LENGTH),
        })
    }

    /// The length of the model's vectors.
    pub fn dimensions(&self) -> usize {
        match &self.encoder {
            Encoder::Unigram(m) => m.dim(),
            Encoder::Crate(m) => m.dim(),
        }
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
        match &self.encoder {
            // Every core, one text per task.
            Encoder::Unigram(m) => texts
                .par_iter()
                .map(|t| m.encode(t, self.max_length))
                .collect::<Result<Vec<_>, String>>()
                .map_err(ProviderError::permanent),
            Encoder::Crate(m) => {
                let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
                Ok(m.encode_with_args(&owned, Some(self.max_length), owned.len().max(1)))
            }
        }
    }
}
