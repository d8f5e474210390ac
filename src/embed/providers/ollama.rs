//! Ollama: `POST /api/embed` with a batch of texts in `input`
//! (<https://github.com/ollama/ollama/blob/main/docs/api.md#generate-embeddings>),
//! answered with `{"embeddings": [[…], …]}` in the order of the texts.
//!
//! The base URL is the model file's `url`, else `OLLAMA_HOST` read the way
//! the `ollama` command reads it, else `http://127.0.0.1:11434`.

use super::rest::{bearer, limits, RequestShape, ResponseShape, RestProvider, RestSpec};
use crate::embed::config::EmbedConfig;
use crate::embed::provider::ProviderError;
use crate::manifest::Model;
use serde_json::json;

/// Where Ollama listens unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:11434";
/// Texts per request unless the model file says (Ollama has no limit of its
/// own; larger batches mostly wait longer for the first result).
pub const DEFAULT_BATCH: usize = 64;

/// The `ollama` provider from a model file's `[embed]` table.
pub fn ollama(config: &EmbedConfig, model: &Model) -> Result<RestProvider, ProviderError> {
    if config.model_name().trim().is_empty() {
        return Err(ProviderError::permanent(format!(
            "{}: [embed] provider = \"ollama\" needs `model`, Ollama's name of the model \
             (e.g. model = \"nomic-embed-text\"; `ollama list` shows them)",
            model.file.display()
        )));
    }
    let base = match &config.url {
        Some(url) => url.clone(),
        None => match std::env::var("OLLAMA_HOST") {
            Ok(host) if !host.trim().is_empty() => ollama_host(&host),
            _ => DEFAULT_URL.to_string(),
        },
    };
    let url = format!("{}/api/embed", base.trim_end_matches('/'));
    let (batch, parallel, timeout) = limits(config, DEFAULT_BATCH, usize::MAX);
    let request = RequestShape::new(json!({"model": config.model_name(), "input": "{{texts}}"}))
        .map_err(ProviderError::permanent)?;
    let response = ResponseShape::new("embeddings", None).map_err(ProviderError::permanent)?;
    RestProvider::new(RestSpec {
        kind: "ollama",
        model: config.model_name().to_string(),
        url,
        request,
        response,
        // Ollama itself takes no key; one behind an authenticating proxy
        // (or ollama.com) does.
        headers: bearer(config, model)?.into_iter().collect(),
        batch,
        parallel,
        timeout,
        allow_insecure_key: config.allow_insecure_key,
        dimensions_hint: None,
    })
}

/// The base URL an `OLLAMA_HOST` value means, as Ollama's `envconfig.Host`
/// reads it: quotes and spaces trimmed; no scheme means http with port
/// 11434; `http://` and `https://` without a port mean 80 and 443; an empty
/// or unspecified host (`:11434`, `0.0.0.0`) is this machine.
pub fn ollama_host(value: &str) -> String {
    let value = value.trim().trim_matches(['"', '\'']).trim();
    let (scheme, rest, default_port) = match value.split_once("://") {
        None if value == "ollama.com" => ("https", "ollama.com:443", "443"),
        None => ("http", value, "11434"),
        Some(("http", rest)) => ("http", rest, "80"),
        Some(("https", rest)) => ("https", rest, "443"),
        Some((scheme, rest)) => (scheme, rest, "11434"),
    };
    let (host_port, path) = match rest.split_once('/') {
        Some((host_port, path)) => (host_port, format!("/{path}")),
        None => (rest, String::new()),
    };
    let (host, port) = split_host_port(host_port).unwrap_or((host_port, default_port));
    let port = match port.parse::<u16>() {
        Ok(_) => port,
        Err(_) => default_port,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        other => other,
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{scheme}://{host}:{port}{}", path.trim_end_matches('/'))
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; None without a port.
fn split_host_port(host_port: &str) -> Option<(&str, &str)> {
    if let Some(rest) = host_port.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = host_port.rsplit_once(':')?;
    if host.contains(':') {
        return None; // a bare IPv6 address
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_host_is_read_as_ollama_reads_it() {
        for (value, url) in [
            ("127.0.0.1", "http://127.0.0.1:11434"),
            ("127.0.0.1:11435", "http://127.0.0.1:11435"),
            (":11436", "http://127.0.0.1:11436"),
            ("0.0.0.0", "http://127.0.0.1:11434"),
            ("0.0.0.0:8080", "http://127.0.0.1:8080"),
            ("gpu-box", "http://gpu-box:11434"),
            ("gpu-box:9000", "http://gpu-box:9000"),
            ("http://gpu-box", "http://gpu-box:80"),
            ("https://gpu-box", "https://gpu-box:443"),
            (
                "https://gpu-box:8443/ollama/",
                "https://gpu-box:8443/ollama",
            ),
            ("\"localhost:1234\"", "http://localhost:1234"),
            ("  example.com:abc ", "http://example.com:11434"),
            ("[::1]:9999", "http://[::1]:9999"),
            ("::1", "http://[::1]:11434"),
            ("ollama.com", "https://ollama.com:443"),
        ] {
            assert_eq!(ollama_host(value), url, "OLLAMA_HOST={value}");
        }
    }
}
