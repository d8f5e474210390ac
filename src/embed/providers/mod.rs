//! One module per embedding backend, and [`build_provider`], which picks one
//! from a model file's `[embed]` table.
//!
//! The HTTP providers (`ollama`, `openai`, `rest`) are configurations of one
//! REST core ([`rest::RestProvider`]) over one HTTP layer
//! ([`crate::embed::http`]).

pub mod ollama;
pub mod openai;
pub mod rest;

use super::config::{EmbedConfig, ProviderKind};
use super::provider::{Provider, ProviderError};
use crate::manifest::Model;
use std::path::Path;

/// The provider a model file's `[embed]` table describes. Secrets (API
/// keys, headers from the environment) are read here, from the environment,
/// and live only inside the provider.
pub fn build_provider(
    config: &EmbedConfig,
    model: &Model,
    root: &Path,
) -> Result<Box<dyn Provider>, ProviderError> {
    let _ = root; // model2vec's `path` is relative to it
    match config.provider {
        ProviderKind::Ollama => Ok(Box::new(ollama::ollama(config, model)?)),
        ProviderKind::OpenAi => Ok(Box::new(openai::openai(config, model)?)),
        ProviderKind::Rest => Ok(Box::new(rest::rest(config, model)?)),
        ProviderKind::Model2Vec | ProviderKind::Command => Err(ProviderError::permanent(format!(
            "{}: the {} provider is not built in this branch (embed-stage adds it)",
            model.file.display(),
            config.provider
        ))),
    }
}
