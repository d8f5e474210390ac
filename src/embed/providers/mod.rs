//! One module per embedding backend, and [`build_provider`], which makes
//! the one a model file's `[embed]` table names.

pub mod command;
pub mod model2vec;

use crate::embed::config::{EmbedConfig, ProviderKind};
use crate::embed::{Provider, ProviderError};
use crate::manifest::Model;
use std::path::Path;

/// The provider `config` names, for `model`, in the project at `root`.
pub fn build_provider(
    config: &EmbedConfig,
    model: &Model,
    root: &Path,
) -> Result<Box<dyn Provider>, ProviderError> {
    let _ = model;
    match config.provider {
        ProviderKind::Model2Vec => Ok(Box::new(model2vec::Model2Vec::new(config, root)?)),
        ProviderKind::Command => Ok(Box::new(command::CommandProvider::new(config, root)?)),
        ProviderKind::Ollama | ProviderKind::OpenAi | ProviderKind::Rest => {
            Err(ProviderError::permanent(format!(
                "the {} provider is not built into this pipe",
                config.provider
            )))
        }
    }
}
