//! Any OpenAI-compatible embeddings endpoint: OpenAI itself, LM Studio,
//! vLLM, llama.cpp's server, text-embeddings-inference, Ollama's `/v1`.
//!
//! `POST …/v1/embeddings` with `{"model", "input": [texts], "encoding_format",
//! "dimensions"?}`, answered with `{"data": [{"index", "embedding"}, …],
//! "usage": …}`; vectors are put back in place by `index`, and a base64
//! `embedding` is decoded as little-endian float32s. The key, if any, comes
//! from the environment variable `api-key-env` names, as a bearer token.

use super::rest::{bearer, limits, RequestShape, ResponseShape, RestProvider, RestSpec};
use crate::embed::config::EmbedConfig;
use crate::embed::provider::ProviderError;
use crate::manifest::Model;
use serde_json::{json, Value};

/// OpenAI's own endpoint, when the model file has no `url`.
pub const DEFAULT_URL: &str = "https://api.openai.com/v1";
/// The most inputs OpenAI accepts in one request.
pub const MAX_BATCH: usize = 2048;
/// Texts per request unless the model file says.
pub const DEFAULT_BATCH: usize = 256;

/// The `openai` provider from a model file's `[embed]` table.
pub fn openai(config: &EmbedConfig, model: &Model) -> Result<RestProvider, ProviderError> {
    let file = model.file.display();
    if config.model_name().trim().is_empty() {
        return Err(ProviderError::permanent(format!(
            "{file}: [embed] provider = \"openai\" needs `model`, the server's name of the \
             model (e.g. model = \"text-embedding-3-small\")"
        )));
    }
    let format = config.encoding_format.as_deref().unwrap_or("float");
    if format != "float" && format != "base64" {
        return Err(ProviderError::permanent(format!(
            "{file}: [embed] encoding-format = \"{format}\" is not \"float\" or \"base64\""
        )));
    }
    let mut body = json!({
        "model": config.model_name(),
        "input": "{{texts}}",
        "encoding_format": format,
    });
    if config.send_dimensions {
        body["dimensions"] = Value::from(model.dimensions);
    }
    let request = RequestShape::new(body).map_err(ProviderError::permanent)?;
    let response =
        ResponseShape::new("data[].embedding", Some("index")).map_err(ProviderError::permanent)?;
    let (batch, parallel, timeout) = limits(config, DEFAULT_BATCH, MAX_BATCH);
    RestProvider::new(RestSpec {
        kind: "openai",
        model: config.model_name().to_string(),
        url: endpoint(config.url.as_deref().unwrap_or(DEFAULT_URL)),
        request,
        response,
        headers: bearer(config, model)?.into_iter().collect(),
        batch,
        parallel,
        timeout,
        allow_insecure_key: config.allow_insecure_key,
        dimensions_hint: Some((
            model.dimensions as usize,
            dimensions_hint(config.send_dimensions),
        )),
    })
}

/// What to set when the server's vectors are not the model file's length
/// (`{got}` is replaced by what it returned).
fn dimensions_hint(sent: bool) -> String {
    if sent {
        "the server ignored `dimensions` (send-dimensions = true): set `dimensions = {got}` \
         in the model file, or use a model that can shorten its vectors"
            .to_string()
    } else {
        "set `dimensions = {got}` in the model file if that is the model's size, or \
         `send-dimensions = true` in [embed] to ask a model that can shorten its vectors \
         (text-embedding-3-*, other matryoshka models) for fewer"
            .to_string()
    }
}

/// The embeddings endpoint of a base URL: a URL that already ends in
/// `/embeddings` is used as is, one ending in `/v1` (or any `/vN`) gets
/// `/embeddings`, any other gets `/v1/embeddings`.
pub fn endpoint(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/embeddings") {
        return base.to_string();
    }
    let last = base.rsplit('/').next().unwrap_or_default();
    let versioned =
        last.len() > 1 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit());
    if versioned {
        format!("{base}/embeddings")
    } else {
        format!("{base}/v1/embeddings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_follows_from_the_base_url() {
        for (base, url) in [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/embeddings",
            ),
            (
                "http://127.0.0.1:1234",
                "http://127.0.0.1:1234/v1/embeddings",
            ),
            (
                "http://127.0.0.1:1234/",
                "http://127.0.0.1:1234/v1/embeddings",
            ),
            (
                "http://127.0.0.1:11434/v1/",
                "http://127.0.0.1:11434/v1/embeddings",
            ),
            ("https://h/openai/v2", "https://h/openai/v2/embeddings"),
            ("https://h/x/embeddings", "https://h/x/embeddings"),
            ("https://h/vllm", "https://h/vllm/v1/embeddings"),
        ] {
            assert_eq!(endpoint(base), url, "{base}");
        }
    }
}
