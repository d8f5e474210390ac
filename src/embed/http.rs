//! The one HTTP layer every HTTP provider (ollama, openai, rest) goes
//! through: a ureq agent with bounded timeouts, JSON POST, and the mapping of
//! what went wrong to a [`ProviderError`] that says whether to retry.
//!
//! * 429, 408, 5xx, timeouts, refused or reset connections are transient
//!   (with the server's `Retry-After`, in seconds or as an HTTP date); any
//!   other status is permanent.
//! * Messages say the status and the start of the body (or how the
//!   connection failed); the batch layer puts the provider, model and URL
//!   (without userinfo or query, where keys hide) in front. They never hold a
//!   secret: every secret this client holds is scrubbed from them, even when
//!   a server echoes it back.
//! * Secrets (API keys, headers filled from the environment, URL userinfo)
//!   are [`Secret`]s, whose `Debug` prints nothing of them, and are refused
//!   over plain http to a host other than loopback unless the model file
//!   says `allow-insecure-key = true`.

use super::provider::ProviderError;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use ureq::http::Uri;

/// How much of an error body a message quotes.
const BODY_START: usize = 200;

/// The largest answer read (a batch of 2048 vectors of 3072 floats as JSON
/// is about 130 MB); beyond that the server is not sending embeddings.
const MAX_BODY: u64 = 1 << 30;

/// The longest a connection may take to open, whatever the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A value that must never be printed, logged or stored: an API key, a
/// header filled from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A header value: literal (from the model file, shown in Debug) or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Written in the model file as is.
    Plain(String),
    /// Read from the environment: never shown.
    Secret(Secret),
}

impl HeaderValue {
    fn as_str(&self) -> &str {
        match self {
            HeaderValue::Plain(value) => value,
            HeaderValue::Secret(secret) => secret.expose(),
        }
    }
}

/// Read an API key from the environment variable a model file names.
/// `what` says where the name came from, for the message when it is unset
/// (`` `api-key-env` in models.d/openai.toml ``).
pub fn key_from_env(variable: &str, what: &str) -> Result<Secret, ProviderError> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
        Ok(_) => Err(ProviderError::permanent(format!(
            "the environment variable {variable} (named by {what}) is empty; set it to the API key"
        ))),
        Err(_) => Err(ProviderError::permanent(format!(
            "the environment variable {variable} (named by {what}) is not set; set it to the \
             API key (keys are read from the environment only, never from files)"
        ))),
    }
}

/// What the client is for: the words that start its messages.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    /// `ollama model "nomic-embed-text"`.
    pub label: String,
    /// The URL the requests are sent to.
    pub url: String,
    /// Extra headers (besides `Content-Type`).
    pub headers: Vec<(String, HeaderValue)>,
    /// The whole request's budget (connect, send, wait, read).
    pub timeout: Duration,
    /// `allow-insecure-key`: send secrets over plain http to any host.
    pub allow_insecure_key: bool,
}

/// A JSON-over-HTTP client for one endpoint.
pub struct HttpClient {
    agent: ureq::Agent,
    label: String,
    /// The request URL, userinfo removed (it became a header).
    url: String,
    /// The URL as messages show it: no userinfo, no query.
    shown_url: String,
    headers: Vec<(String, HeaderValue)>,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("label", &self.label)
            .field("url", &self.shown_url)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpClient {
    /// A client for `target`: checks the URL, and refuses secrets over plain
    /// http to a non-loopback host unless allowed.
    pub fn new(target: HttpTarget) -> Result<HttpClient, ProviderError> {
        let HttpTarget {
            label,
            url,
            mut headers,
            timeout,
            allow_insecure_key,
        } = target;
        let parsed = parse_url(&url).map_err(|why| {
            ProviderError::permanent(format!(
                "{label}: the URL {} is not usable: {why}",
                shown(&url)
            ))
        })?;
        if let Some(userinfo) = &parsed.userinfo {
            if !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            {
                use base64::Engine as _;
                let basic = base64::engine::general_purpose::STANDARD.encode(userinfo);
                headers.push((
                    "Authorization".to_string(),
                    HeaderValue::Secret(Secret::new(format!("Basic {basic}"))),
                ));
            }
        }
        let has_secret = parsed.userinfo.is_some()
            || headers
                .iter()
                .any(|(_, value)| matches!(value, HeaderValue::Secret(_)));
        if has_secret
            && parsed.scheme == "http"
            && !is_loopback(&parsed.host)
            && !allow_insecure_key
        {
            return Err(ProviderError::permanent(format!(
                "{label}: refusing to send an API key over plain http to {} (anyone on the \
                 way could read it); use https, or set `allow-insecure-key = true` in the \
                 model file's [embed] table if this network is trusted",
                parsed.shown
            )));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
            .user_agent(concat!("pipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(HttpClient {
            agent,
            label,
            url: parsed.without_userinfo,
            shown_url: parsed.shown,
            headers,
            timeout,
        })
    }

    /// The URL as messages show it (no userinfo, no query).
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// POST `body` as JSON and return the parsed JSON answer of a 2xx
    /// response; anything else is a [`ProviderError`] saying whether to retry.
    /// Its message says what happened (status and body start, or the
    /// connection's failure) without the provider and URL, which the batch
    /// layer puts in front of every message (`Provider::describe`).
    pub fn post_json(&self, body: &serde_json::Value) -> Result<serde_json::Value, ProviderError> {
        let bytes = self.post(body)?;
        self.parse_json(&bytes)
    }

    /// An answer's bytes as JSON, or an error that shows their start.
    pub fn parse_json(&self, bytes: &[u8]) -> Result<serde_json::Value, ProviderError> {
        serde_json::from_slice(bytes).map_err(|e| {
            ProviderError::permanent(self.scrub(&format!(
                "the answer is not JSON ({e}): {}",
                body_start(bytes)
            )))
        })
    }

    /// POST `body` as JSON and return the raw bytes of a 2xx answer.
    pub fn post(&self, body: &serde_json::Value) -> Result<Vec<u8>, ProviderError> {
        let payload = serde_json::to_vec(body)
            .map_err(|e| ProviderError::permanent(format!("cannot encode the request: {e}")))?;
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = request
            .send(&payload[..])
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            return Ok(bytes);
        }
        let code = status.as_u16();
        let message = self.scrub(&format!(
            "HTTP {code}{}: {}",
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
            body_start(&bytes)
        ));
        Err(if code == 429 || code == 408 || status.is_server_error() {
            ProviderError::transient(message, retry_after)
        } else {
            ProviderError::permanent(message)
        })
    }

    /// A failure before a status arrived (or while reading the body).
    fn transport_error(&self, error: &ureq::Error) -> ProviderError {
        use std::io::ErrorKind as Io;
        let (transient, what) = match error {
            ureq::Error::Timeout(_) => (
                true,
                format!("no complete answer within {} s", self.timeout.as_secs_f64()),
            ),
            ureq::Error::Io(e) => match e.kind() {
                Io::ConnectionRefused => (
                    true,
                    "connection refused (is the server running?)".to_string(),
                ),
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof
                | Io::TimedOut
                | Io::Interrupted
                | Io::NotConnected
                | Io::AddrNotAvailable
                | Io::HostUnreachable
                | Io::NetworkUnreachable
                | Io::NetworkDown => (true, format!("connection failed: {e}")),
                _ => (false, format!("I/O error: {e}")),
            },
            ureq::Error::HostNotFound => (true, "host not found".to_string()),
            ureq::Error::ConnectionFailed => (true, "connection failed".to_string()),
            ureq::Error::Protocol(e) => (true, format!("broken HTTP answer: {e}")),
            ureq::Error::BodyExceedsLimit(limit) => {
                (false, format!("the answer is larger than {limit} bytes"))
            }
            other => (false, other.to_string()),
        };
        let message = self.scrub(&what);
        if transient {
            ProviderError::transient(message, None)
        } else {
            ProviderError::permanent(message)
        }
    }

    /// Remove every secret this client holds from a message (a server may
    /// echo a key back in its error body).
    fn scrub(&self, message: &str) -> String {
        let mut message = message.to_string();
        for (_, value) in &self.headers {
            if let HeaderValue::Secret(secret) = value {
                message = scrub_secret(&message, secret.expose());
            }
        }
        message
    }
}

/// Replace `secret` in `message`, and its parts (a `Bearer sk-…` header's
/// key alone is what a server echoes).
fn scrub_secret(message: &str, secret: &str) -> String {
    let mut message = message.replace(secret, "***");
    for part in secret.split_whitespace() {
        if part.len() >= 8 {
            message = message.replace(part, "***");
        }
    }
    message
}

/// The start of a body for a message: at most [`BODY_START`] characters,
/// on one line.
fn body_start(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut start: String = text
        .chars()
        .take(BODY_START)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > BODY_START {
        start.push('…');
    }
    start
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in
/// the past means now; anything unparseable is ignored (plain backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(1e9)));
        }
        return None;
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A URL taken apart for the checks and the messages.
#[derive(Debug)]
struct ParsedUrl {
    scheme: String,
    host: String,
    userinfo: Option<String>,
    without_userinfo: String,
    shown: String,
}

fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{e}; write it like https://host:port/path"))?;
    let scheme = uri
        .scheme_str()
        .ok_or("it has no scheme; write http:// or https:// before the host")?
        .to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("the scheme {scheme}:// is not http:// or https://"));
    }
    let authority = uri.authority().ok_or("it has no host")?;
    let host = authority.host().to_string();
    if host.is_empty() {
        return Err("it has no host".to_string());
    }
    let userinfo = authority
        .as_str()
        .rsplit_once('@')
        .map(|(info, _)| info.to_string());
    let host_port = match authority.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    let path = uri.path();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let hidden_query = if uri.query().is_some() { "?…" } else { "" };
    Ok(ParsedUrl {
        without_userinfo: format!("{scheme}://{host_port}{path}{query}"),
        shown: format!("{scheme}://{host_port}{path}{hidden_query}"),
        scheme,
        host,
        userinfo,
    })
}

/// A URL for a message when it could not even be parsed: drop what looks
/// like userinfo or a query.
fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Whether a host is this machine: `localhost` (and `*.localhost`, RFC
/// 6761), 127.0.0.0/8 and ::1.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, key: Option<&str>, allow: bool) -> HttpTarget {
        HttpTarget {
            label: "openai model \"m\"".to_string(),
            url: url.to_string(),
            headers: key
                .map(|k| {
                    vec![(
                        "Authorization".to_string(),
                        HeaderValue::Secret(Secret::new(format!("Bearer {k}"))),
                    )]
                })
                .unwrap_or_default(),
            timeout: Duration::from_secs(5),
            allow_insecure_key: allow,
        }
    }

    #[test]
    fn keys_over_plain_http_go_only_to_loopback_unless_allowed() {
        let key = "sk-test-0123456789";
        for (url, key_given, allow, ok) in [
            ("http://127.0.0.1:1/v1", true, false, true),
            ("http://127.8.9.10/v1", true, false, true),
            ("http://localhost:8080/v1", true, false, true),
            ("http://api.localhost/v1", true, false, true),
            ("http://[::1]:8080/v1", true, false, true),
            ("https://api.openai.com/v1", true, false, true),
            ("http://api.example.com/v1", false, false, true),
            ("http://api.example.com/v1", true, false, false),
            ("http://10.0.0.5:11434/v1", true, false, false),
            ("http://[2001:db8::1]/v1", true, false, false),
            ("http://user:pw@api.example.com/v1", false, false, false),
            ("http://api.example.com/v1", true, true, true),
        ] {
            let result = HttpClient::new(target(url, key_given.then_some(key), allow));
            assert_eq!(result.is_ok(), ok, "{url} key {key_given} allow {allow}");
            if let Err(e) = result {
                assert!(e
                    .message
                    .contains("refusing to send an API key over plain http"));
                assert!(e.message.contains("allow-insecure-key = true"));
                assert!(!e.message.contains(key), "{}", e.message);
                assert!(!e.message.contains("pw"), "{}", e.message);
                assert!(!e.is_transient());
            }
        }
    }

    #[test]
    fn debug_output_and_messages_never_show_a_secret() {
        let key = "sk-secret-abcdefghijkl";
        let client = HttpClient::new(target(
            "https://bob:hunter2hunter2@api.example.com/v1/embeddings?key=qwertyuiop",
            Some(key),
            false,
        ))
        .unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains(key), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("qwertyuiop"), "{debug}");
        assert!(
            debug.contains("https://api.example.com/v1/embeddings?…"),
            "{debug}"
        );
        assert_eq!(format!("{:?}", Secret::new(key)), "Secret(***)");
        let echoed = client.scrub(&format!("Incorrect API key provided: {key}."));
        assert_eq!(echoed, "Incorrect API key provided: ***.");
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = httpdate::parse_http_date("Tue, 01 Dec 2026 20:00:00 GMT").unwrap();
        for (value, expected) in [
            ("7", Some(Duration::from_secs(7))),
            (" 0 ", Some(Duration::ZERO)),
            ("1.5", Some(Duration::from_millis(1500))),
            (
                "Tue, 01 Dec 2026 20:00:30 GMT",
                Some(Duration::from_secs(30)),
            ),
            ("Tue, 01 Dec 2026 19:59:00 GMT", Some(Duration::ZERO)),
            ("-3", None),
            ("soon", None),
        ] {
            assert_eq!(parse_retry_after(value, now), expected, "{value}");
        }
    }

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        for (url, error) in [
            ("127.0.0.1:11434", "scheme"),
            ("ftp://host/x", "is not http:// or https://"),
            ("http://", "not usable"),
        ] {
            let e = HttpClient::new(target(url, None, false)).unwrap_err();
            assert!(e.message.contains(error), "{url}: {}", e.message);
        }
        assert_eq!(shown("http://a:b@h/x?key=1"), "http://h/x");
        assert_eq!(body_start(b"  \n"), "(empty body)");
        assert_eq!(body_start("é".repeat(300).as_bytes()).chars().count(), 201);
    }
}
