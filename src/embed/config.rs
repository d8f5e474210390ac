//! A model file's `[embed]` table: which provider embeds the model's texts,
//! and how.
//!
//! (The struct both embeddings branches agree on, with the keys of
//! EMBED-API.md; the parsing from the model file, with diagnostics, is wired
//! by the embeddings stage.)

use std::collections::BTreeMap;
use std::path::PathBuf;

/// How one model's texts are embedded (`[embed]` in its models.d file).
///
/// Holds no secret: an API key is named by `api_key_env` and header values
/// keep their `{{env.NAME}}` placeholders; the values are read from the
/// environment only when the provider is built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbedConfig {
    /// `provider`: ollama | openai | rest | command | model2vec.
    pub provider: String,
    /// `model`: the provider's own model name (empty for model2vec).
    pub model: String,
    /// `url`: the base URL (ollama, openai) or the endpoint (rest).
    pub url: Option<String>,
    /// `batch`: texts per request.
    pub batch: Option<usize>,
    /// `parallel`: requests in flight.
    pub parallel: Option<usize>,
    /// `timeout`: seconds per request.
    pub timeout: Option<u64>,
    /// `api-key-env`: the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// `allow-insecure-key`: allow a key over plain http to a non-loopback host.
    pub allow_insecure_key: bool,
    /// `send-dimensions`: openai: send the model's `dimensions`.
    pub send_dimensions: bool,
    /// `encoding-format`: openai: "float" (default) or "base64".
    pub encoding_format: Option<String>,
    /// `prefix`: prepended to every text.
    pub prefix: String,
    /// `template`: a minijinja template over the record's fields.
    pub template: Option<String>,
    /// `path`: model2vec: the local model directory.
    pub path: Option<PathBuf>,
    /// `command`: the argv of a JSON-lines process.
    pub command: Vec<String>,
    /// `request`: rest: the JSON body, with `"{{texts}}"` (or `"{{text}}"`)
    /// where the texts go.
    pub request: Option<serde_json::Value>,
    /// `response`: rest: where the vectors are in the answer
    /// (`data[].embedding`, `embeddings`, `embeddings.float`).
    pub response: Option<String>,
    /// `headers`: rest: extra request headers; values may contain
    /// `{{env.NAME}}`.
    pub headers: BTreeMap<String, String>,
}
