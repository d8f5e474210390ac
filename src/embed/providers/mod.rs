//! One module per embedding backend, and [`build_provider`], which makes
//! the one a model file's `[embed]` table names.
//!
//! The HTTP providers (`ollama`, `openai`, `rest`) are configurations of one
//! REST core ([`rest::RestProvider`]) over one HTTP layer
//! ([`crate::embed::http`]).

pub mod command;
pub mod model2vec;
pub mod ollama;
pub mod openai;
pub mod rest;

use crate::embed::config::{EmbedConfig, ProviderKind};
use crate::embed::{Provider, ProviderError};
use crate::manifest::Model;
use std::path::Path;

/// The provider `config` names, for `model`, in the project at `root`.
/// Secrets (API keys, headers from the environment) are read here, from the
/// environment, and live only inside the provider.
pub fn build_provider(
    config: &EmbedConfig,
    model: &Model,
    root: &Path,
) -> Result<Box<dyn Provider>, ProviderError> {
    match config.provider {
        ProviderKind::Model2Vec => Ok(Box::new(model2vec::Model2Vec::new(config, root)?)),
        ProviderKind::Command => Ok(Box::new(command::CommandProvider::new(config, root)?)),
        ProviderKind::Ollama => Ok(Box::new(ollama::ollama(config, model)?)),
        ProviderKind::OpenAi => Ok(Box::new(openai::openai(config, model)?)),
        ProviderKind::Rest => Ok(Box::new(rest::rest(config, model)?)),
    }
}
