//! The `[embed]` table of a model file: which provider makes the model's
//! vectors, with which options, from which text.
//!
//! Parsed here (with diagnostics at file:line:col) into [`EmbedConfig`]; the
//! model file's other keys are parsed in [`crate::manifest::model`].

use crate::embed::batch::RetryPolicy;
use crate::manifest::diagnostic::{ManifestError, SourceFile};
use crate::manifest::paths::project_path;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// The kinds of embedding backend a model file can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Ollama's `POST /api/embed`.
    #[default]
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

    fn parse(s: &str) -> Option<ProviderKind> {
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

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::parse(s).ok_or_else(|| {
            format!("unknown provider `{s}`: use one of ollama, openai, rest, command, model2vec")
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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EmbedConfig {
    /// Which backend.
    pub provider: ProviderKind,
    /// The provider's own model name (`nomic-embed-text`); empty when not
    /// given (model2vec and command need none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
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
    /// Prepended to a search query (`search_query: `) by `pipe search
    /// --text`; `None`: queries get no prefix. Not a vector option: it
    /// changes no document's vector, so setting it re-embeds nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_prefix: Option<String>,
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
    /// How often a batch is sent at most, the first time included
    /// (`None`: [`RetryPolicy::default`]'s 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Seconds before the first retry, doubling with each (`None`: 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<f64>,
    /// The longest wait between two attempts, backoff and `Retry-After`
    /// alike, in seconds (`None`: 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_delay: Option<f64>,
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
        put("model", Some(self.model.clone()).filter(|m| !m.is_empty()));
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
        // A rest API is named by its endpoint (the model may be only in the
        // request body); for the others the URL is where, not what.
        put(
            "url",
            self.url
                .clone()
                .filter(|_| self.provider == ProviderKind::Rest),
        );
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
        &self.model
    }

    /// How a failed batch is retried: the defaults, with what the model
    /// file sets (`attempts`, `retry-delay`, `retry-max-delay`).
    pub fn retry_policy(&self) -> RetryPolicy {
        let default = RetryPolicy::default();
        let secs = |s: Option<f64>, d: Duration| s.map_or(d, Duration::from_secs_f64);
        RetryPolicy {
            attempts: self.attempts.unwrap_or(default.attempts),
            base_delay: secs(self.retry_delay, default.base_delay),
            max_delay: secs(self.retry_max_delay, default.max_delay),
        }
    }
}

/// The `[embed]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawEmbed {
    provider: Spanned<String>,
    #[serde(default)]
    model: Option<Spanned<String>>,
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    batch: Option<Spanned<i64>>,
    #[serde(default)]
    parallel: Option<Spanned<i64>>,
    #[serde(default)]
    timeout: Option<Spanned<i64>>,
    #[serde(default)]
    api_key_env: Option<Spanned<String>>,
    #[serde(default)]
    allow_insecure_key: Option<bool>,
    #[serde(default)]
    send_dimensions: Option<bool>,
    #[serde(default)]
    encoding_format: Option<Spanned<String>>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    query_prefix: Option<Spanned<String>>,
    #[serde(default)]
    template: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    command: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    request: Option<toml::Value>,
    #[serde(default)]
    response: Option<Spanned<String>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    normalize: Option<bool>,
    #[serde(default)]
    max_length: Option<Spanned<i64>>,
    #[serde(default)]
    attempts: Option<Spanned<i64>>,
    #[serde(default)]
    retry_delay: Option<Spanned<f64>>,
    #[serde(default)]
    retry_max_delay: Option<Spanned<f64>>,
}

/// Check a model file's `[embed]` table (`table_span`: where it is).
pub(crate) fn check_embed(
    raw: RawEmbed,
    table_span: std::ops::Range<usize>,
    src: &SourceFile,
    rel: &std::path::Path,
    errors: &mut Vec<ManifestError>,
) -> Option<EmbedConfig> {
    let before = errors.len();
    let provider = match ProviderKind::parse(raw.provider.get_ref()) {
        Some(p) => p,
        None => {
            errors.push(
                ManifestError::at(
                    src,
                    raw.provider.span(),
                    format!("unknown embedding provider `{}`", raw.provider.get_ref()),
                )
                .help("use one of: ollama, openai, rest, command, model2vec"),
            );
            return None;
        }
    };
    let count = |v: &Option<Spanned<i64>>, key: &str, max: i64, errors: &mut Vec<ManifestError>| {
        v.as_ref().and_then(|n| {
            let x = *n.get_ref();
            if (1..=max).contains(&x) {
                Some(x as usize)
            } else {
                errors.push(
                    ManifestError::at(
                        src,
                        n.span(),
                        format!("{key} must be between 1 and {max}, not {x}"),
                    )
                    .help(format!("leave `{key}` out for the provider's default")),
                );
                None
            }
        })
    };
    let batch = count(&raw.batch, "batch", 100_000, errors);
    let parallel = count(&raw.parallel, "parallel", 256, errors);
    let timeout = count(&raw.timeout, "timeout", 86_400, errors).map(|t| t as u64);
    let max_length = count(&raw.max_length, "max-length", 1_000_000, errors);
    let attempts = count(&raw.attempts, "attempts", 100, errors).map(|n| n as u32);
    let seconds = |v: &Option<Spanned<f64>>, key: &str, errors: &mut Vec<ManifestError>| {
        v.as_ref().and_then(|n| {
            let x = *n.get_ref();
            if (0.0..=3600.0).contains(&x) {
                Some(x)
            } else {
                errors.push(
                    ManifestError::at(
                        src,
                        n.span(),
                        format!("{key} must be between 0 and 3600 seconds, not {x}"),
                    )
                    .help(format!(
                        "leave `{key}` out for the default (retry-delay 0.5, retry-max-delay 30)"
                    )),
                );
                None
            }
        })
    };
    let retry_delay = seconds(&raw.retry_delay, "retry-delay", errors);
    let retry_max_delay = seconds(&raw.retry_max_delay, "retry-max-delay", errors);

    let needs_model = matches!(provider, ProviderKind::Ollama | ProviderKind::OpenAi);
    if needs_model && raw.model.is_none() {
        errors.push(
            ManifestError::at(
                src,
                raw.provider.span(),
                format!("a {provider} provider needs `model`"),
            )
            .help("name the provider's own model, e.g. model = \"nomic-embed-text\""),
        );
    }
    let model = raw
        .model
        .as_ref()
        .map(|m| m.get_ref().clone())
        .unwrap_or_default();
    if let Some(m) = &raw.model {
        if m.get_ref().trim().is_empty() {
            errors.push(
                ManifestError::at(src, m.span(), "`model` is empty")
                    .help("name the provider's own model, e.g. model = \"nomic-embed-text\""),
            );
        }
    }

    let path = match (&raw.path, provider) {
        (None, ProviderKind::Model2Vec) => {
            errors.push(
                ManifestError::at(src, raw.provider.span(), "a model2vec provider needs `path`")
                    .help("give the local model directory (config.json, model.safetensors, tokenizer.json), e.g. path = \"models/potion-base-2M\"; pipe never downloads models"),
            );
            None
        }
        (None, _) => None,
        (Some(p), ProviderKind::Model2Vec) => match project_path(p.get_ref()) {
            Ok(path) => Some(path),
            Err(why) => {
                errors.push(
                    ManifestError::at(src, p.span(), format!("invalid model path: {why}"))
                        .help("give the model directory relative to the project root, inside it"),
                );
                None
            }
        },
        (Some(p), _) => {
            errors.push(not_for(src, p.span(), "path", provider, "model2vec"));
            None
        }
    };
    let command = match (&raw.command, provider) {
        (None, ProviderKind::Command) => {
            errors.push(
                ManifestError::at(src, raw.provider.span(), "a command provider needs `command`")
                    .help("give the argv of a process that reads {\"id\",\"text\"} lines and writes {\"id\",\"embedding\"} lines, e.g. command = [\"python3\", \"scripts/embed.py\"]"),
            );
            Vec::new()
        }
        (None, _) => Vec::new(),
        (Some(c), ProviderKind::Command) => {
            if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() {
                errors.push(
                    ManifestError::at(src, c.span(), "`command` is empty")
                        .help("give the program and its arguments, e.g. command = [\"python3\", \"scripts/embed.py\"]"),
                );
            }
            c.get_ref().clone()
        }
        (Some(c), _) => {
            errors.push(not_for(src, c.span(), "command", provider, "command"));
            Vec::new()
        }
    };
    let encoding_format = raw
        .encoding_format
        .as_ref()
        .and_then(|e| match e.get_ref().as_str() {
            "float" | "base64" => Some(e.get_ref().clone()),
            other => {
                errors.push(
                    ManifestError::at(src, e.span(), format!("unknown encoding-format `{other}`"))
                        .help("use float or base64"),
                );
                None
            }
        });
    if let Some(u) = &raw.url {
        let ok = u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://");
        if !ok {
            errors.push(
                ManifestError::at(src, u.span(), format!("invalid url `{}`", u.get_ref()))
                    .help("give the provider's base URL, starting with http:// or https://"),
            );
        }
    }
    if let (Some(n), false) = (&raw.max_length, provider == ProviderKind::Model2Vec) {
        errors.push(not_for(src, n.span(), "max-length", provider, "model2vec"));
    }
    let template = raw.template.as_ref().and_then(|t| {
        let (start, source) = template_start(src, t.span(), t.get_ref());
        let (line, column) = src.line_col(start);
        let template = TextTemplate {
            source,
            file: rel.to_path_buf(),
            line,
            column,
        };
        match crate::embed::text::check_template(&template) {
            Ok(()) => Some(template),
            Err((range, message)) => {
                let at = (start + range.start).min(src.text.len());
                let end = (start + range.end).clamp(at, src.text.len());
                errors.push(
                    ManifestError::at(src, at..end.max(at), format!("invalid text template: {message}"))
                        .help("the template is minijinja (Jinja2) over the movie's fields, e.g. template = \"{{ title }} ({{ year }}): {{ metadata.Plot }}\""),
                );
                None
            }
        }
    });
    if let Some(q) = &raw.query_prefix {
        if let Some((document, query)) = document_prefix(q.get_ref()) {
            errors.push(
                ManifestError::at(
                    src,
                    q.span(),
                    format!("query-prefix `{}` is a document prefix", q.get_ref()),
                )
                .help(format!(
                    "documents get `{document}` (`prefix`), queries get `{query}`: set query-prefix = \"{query}\""
                )),
            );
        }
    }
    let request = raw.request.as_ref().map(toml_to_json);
    if errors.len() > before {
        return None;
    }
    let _ = table_span;
    Some(EmbedConfig {
        provider,
        model,
        url: raw.url.map(|u| u.into_inner()),
        batch,
        parallel,
        timeout,
        api_key_env: raw.api_key_env.map(|k| k.into_inner()),
        allow_insecure_key: raw.allow_insecure_key.unwrap_or(false),
        send_dimensions: raw.send_dimensions.unwrap_or(false),
        encoding_format,
        prefix: raw.prefix.unwrap_or_default(),
        query_prefix: raw.query_prefix.map(|q| q.into_inner()),
        template,
        path,
        command,
        request,
        response: raw.response.map(|r| r.into_inner()),
        headers: raw.headers.unwrap_or_default(),
        normalize: raw.normalize,
        max_length,
        attempts,
        retry_delay,
        retry_max_delay,
    })
}

/// The asymmetric models' document prefixes and the query prefix that goes
/// with each (nomic-embed-text, E5): `Some((document, query))` when `prefix`
/// starts with a document prefix.
pub fn document_prefix(prefix: &str) -> Option<(&'static str, &'static str)> {
    const PAIRS: &[(&str, &str)] = &[
        ("search_document: ", "search_query: "),
        ("passage: ", "query: "),
    ];
    PAIRS
        .iter()
        .find(|(document, _)| prefix.trim_start().starts_with(document.trim_end()))
        .map(|&(document, query)| (document, query))
}

fn not_for(
    src: &SourceFile,
    span: std::ops::Range<usize>,
    key: &str,
    provider: ProviderKind,
    only: &str,
) -> ManifestError {
    ManifestError::at(
        src,
        span,
        format!("`{key}` is not an option of the {provider} provider"),
    )
    .help(format!(
        "`{key}` applies to provider = \"{only}\" only; remove it"
    ))
}

/// Where the template's text starts in the file (after the opening quotes
/// and, for a multi-line string, the newline that follows them), and the
/// text itself.
pub(crate) fn template_start(
    src: &SourceFile,
    span: std::ops::Range<usize>,
    value: &str,
) -> (usize, String) {
    let raw = src.text.get(span.clone()).unwrap_or("");
    let mut start = span.start;
    if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        start += 3;
        let rest = &src.text[start.min(src.text.len())..];
        if rest.starts_with("\r\n") {
            start += 2;
        } else if rest.starts_with('\n') {
            start += 1;
        }
    } else if raw.starts_with('"') || raw.starts_with('\'') {
        start += 1;
    }
    (start, value.to_string())
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
