//! The `[embed]` table of a model file: which provider makes the model's
//! vectors, with which options, from which text.
//!
//! (This branch holds the struct only, identical to embed-stage's; the
//! parsing from the model file, with diagnostics at file:line:col, is
//! embed-stage's `check_embed`.)

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The kinds of embedding backend a model file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Ollama's `POST /api/embed`.
    Ollama,
    /// Any OpenAI-compatible `POST /v1/embeddings`.
    OpenAi,
    /// Any other HTTP API, described by request and response shapes.
    Rest,
    /// A long-running local process speaking JSON lines.
    Command,
    /// A static model2vec model run in process.
    Model2Vec,
}

impl ProviderKind {
    /// The name used in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Ollama => "ollama",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Rest => "rest",
            ProviderKind::Command => "command",
            ProviderKind::Model2Vec => "model2vec",
        }
    }

    /// The kind a model file's `provider = "…"` names.
    pub fn parse(s: &str) -> Option<ProviderKind> {
        Some(match s {
            "ollama" => ProviderKind::Ollama,
            "openai" => ProviderKind::OpenAi,
            "rest" => ProviderKind::Rest,
            "command" => ProviderKind::Command,
            "model2vec" => ProviderKind::Model2Vec,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model's text template (minijinja), with where it is written so that
/// errors point into the model file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextTemplate {
    /// The template source.
    pub source: String,
    /// The model file (project-relative).
    #[serde(skip)]
    pub file: PathBuf,
    /// Line (1-based) of the template's first character in the model file.
    #[serde(skip)]
    pub line: usize,
    /// Column (1-based) of the template's first character in the model file.
    #[serde(skip)]
    pub column: usize,
}

impl TextTemplate {
    /// `file:line:col` of byte `offset` of the template source.
    pub fn position(&self, offset: usize) -> String {
        let before = &self.source[..offset.min(self.source.len())];
        let newlines = before.matches('\n').count();
        let (line, column) = match before.rfind('\n') {
            None => (self.line, self.column + before.chars().count()),
            Some(i) => (self.line + newlines, before[i + 1..].chars().count() + 1),
        };
        format!("{}:{line}:{column}", self.file.display())
    }
}

/// The `[embed]` table of a model file, validated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmbedConfig {
    /// Which backend.
    pub provider: ProviderKind,
    /// The provider's own model name (`nomic-embed-text`); not needed by
    /// model2vec and command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Base URL of an HTTP provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Texts per request (`None`: the provider's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Requests in flight (`None`: the provider's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    /// Seconds per request (`None`: the provider's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The name (never the value) of the environment variable with the API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Allow sending a key over plain http to a non-loopback host.
    pub allow_insecure_key: bool,
    /// openai: send `dimensions` (matryoshka models).
    pub send_dimensions: bool,
    /// openai: `float` or `base64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Prepended to every text (`search_document: `).
    pub prefix: String,
    /// The text template; `None`: the original's `movieToMarkdown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TextTemplate>,
    /// model2vec: the local model directory (project-relative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// command: the argv of the long-running process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// rest: the JSON request body shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    /// rest: where the vectors are in the answer (`data[].embedding`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// rest: request headers (values may name environment variables; the
    /// values themselves are never stored).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// model2vec: L2-normalise the vectors (`None`: the model's config.json).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    /// model2vec: tokens per text before truncation (default 512).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

impl EmbedConfig {
    /// Every option that changes the vectors, as `key → value`, in a fixed
    /// order: what a record's cache key and the target's fingerprint are
    /// made of. Secrets are never among them (an API key's variable name
    /// does not change vectors, so it is not either).
    pub fn vector_options(&self) -> BTreeMap<String, String> {
        let mut o = BTreeMap::new();
        o.insert("provider".to_string(), self.provider.to_string());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                o.insert(k.to_string(), v);
            }
        };
        put("model", self.model.clone());
        put(
            "prefix",
            Some(self.prefix.clone()).filter(|p| !p.is_empty()),
        );
        put("template", self.template.as_ref().map(|t| t.source.clone()));
        put("path", self.path.as_ref().map(|p| p.display().to_string()));
        put(
            "command",
            (!self.command.is_empty())
                .then(|| serde_json::to_string(&self.command).unwrap_or_default()),
        );
        put("request", self.request.as_ref().map(|r| r.to_string()));
        put("response", self.response.clone());
        put(
            "send-dimensions",
            self.send_dimensions.then(|| "true".into()),
        );
        put("encoding-format", self.encoding_format.clone());
        put("normalize", self.normalize.map(|n| n.to_string()));
        put("max-length", self.max_length.map(|n| n.to_string()));
        o
    }

    /// The provider's model name, or `""`.
    pub fn model_name(&self) -> &str {
        self.model.as_deref().unwrap_or("")
    }
}
