//! A client for the Bazel HTTP remote cache protocol: `GET`, `PUT` and
//! `HEAD` on `<base>/ac/<key>` (action cache: what a target produced) and
//! `<base>/cas/<sha256>` (content-addressed blobs). bazel-remote serves it,
//! and so does any WebDAV-capable static server (nginx with `dav_methods
//! PUT`), which is also how a read-only mirror works.
//!
//! Credentials come from the environment only (`PIPE_REMOTE_CACHE_TOKEN`
//! for a bearer token, `PIPE_REMOTE_CACHE_USER`/`PIPE_REMOTE_CACHE_PASSWORD`
//! or the URL's userinfo for basic auth); messages show the URL without
//! userinfo. Every request has bounded timeouts and is tried once: a cache
//! that misbehaves is switched off for the build (see [`super::RemoteCache`])
//! rather than retried into a storm.

use base64::Engine;
use std::io::Read;
use std::time::Duration;

/// Connect timeout: a cache on the same network answers well within it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed between two reads or writes of a transfer: a stalled server.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Which of the protocol's two stores a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `/ac/`: action results, keyed by a target's fingerprint.
    ActionCache,
    /// `/cas/`: blobs, keyed by the sha256 of their bytes.
    Cas,
}

impl Store {
    fn segment(self) -> &'static str {
        match self {
            Store::ActionCache => "ac",
            Store::Cas => "cas",
        }
    }
}

/// A request that did not get a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or timed out.
    #[error("{url}: {message}")]
    Unreachable {
        /// The URL, without credentials.
        url: String,
        /// What happened.
        message: String,
    },
    /// The server answered with an error status (401, 403, 5xx, …).
    #[error("{url}: HTTP {status}{body}")]
    Status {
        /// The URL, without credentials.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body, prefixed with ": ", or empty.
        body: String,
    },
}

/// The base URL of a cache, and how to authenticate to it.
pub struct Client {
    agent: ureq::Agent,
    /// The base URL with no userinfo and no trailing slash.
    base: String,
    /// The `Authorization` header value, if any. Never printed.
    authorization: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The parts of a cache URL: what to show and what to send.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `scheme://host[:port][/prefix]`, no userinfo, no trailing slash.
    pub base: String,
    /// `user:password` from the URL, if it had one.
    pub userinfo: Option<String>,
}

/// Split a cache URL into what may be shown and its credentials; `Err`
/// says what is wrong with it.
pub fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "a remote cache URL starts with http:// or https://".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "a remote cache URL starts with http:// or https://, not {scheme}://"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err("the remote cache URL has no host".to_string());
    }
    if path.contains(['?', '#']) {
        return Err("the remote cache URL may not have a query or fragment".to_string());
    }
    let path = path.trim_end_matches('/');
    Ok(ParsedUrl {
        base: format!("{scheme}://{host}{path}"),
        userinfo,
    })
}

impl Client {
    /// A client for the cache at `url`, with credentials from the URL or
    /// the environment (`PIPE_REMOTE_CACHE_TOKEN`, else
    /// `PIPE_REMOTE_CACHE_USER` and `PIPE_REMOTE_CACHE_PASSWORD`).
    pub fn new(url: &str) -> Result<Client, String> {
        let parsed = parse_url(url)?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let basic = |user_pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        let authorization = if let Some(token) = env("PIPE_REMOTE_CACHE_TOKEN") {
            Some(format!("Bearer {token}"))
        } else if let Some(user) = env("PIPE_REMOTE_CACHE_USER") {
            let password = env("PIPE_REMOTE_CACHE_PASSWORD").unwrap_or_default();
            Some(basic(&format!("{user}:{password}")))
        } else {
            parsed.userinfo.as_deref().map(basic)
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(IO_TIMEOUT))
            .timeout_per_write(Some(IO_TIMEOUT))
            .max_redirects(0)
            .user_agent(concat!("pipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            agent,
            base: parsed.base,
            authorization,
        })
    }

    /// The cache's URL as shown to users (no credentials).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, store: Store, key: &str) -> String {
        format!("{}/{}/{key}", self.base, store.segment())
    }

    fn unreachable(&self, url: &str, e: ureq::Error) -> ClientError {
        let message = match e {
            ureq::Error::Timeout(_) => "timed out".to_string(),
            ureq::Error::Io(e) => e.to_string(),
            other => other.to_string(),
        };
        ClientError::Unreachable {
            url: url.to_string(),
            message,
        }
    }

    fn status_error(url: &str, status: u16, body: &mut ureq::Body) -> ClientError {
        let mut start = Vec::new();
        let _ = body.as_reader().take(200).read_to_end(&mut start);
        let text = String::from_utf8_lossy(&start).trim().replace('\n', " ");
        ClientError::Status {
            url: url.to_string(),
            status,
            body: if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            },
        }
    }

    /// `GET`: the blob, `None` on 404, an error otherwise. At most `limit`
    /// bytes are read (a larger answer is an error, not a truncated blob).
    pub fn get(&self, store: Store, key: &str, limit: u64) -> Result<Option<Vec<u8>>, ClientError> {
        let url = self.url(store, key);
        let mut req = self.agent.get(&url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| self.unreachable(&url, e))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(Self::status_error(&url, status, resp.body_mut()));
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| self.unreachable(&url, e))?;
        Ok(Some(bytes))
    }

    /// `GET` streamed into `out` (a file: a database blob may be larger
    /// than memory): the bytes written, `None` on 404. At most `limit`
    /// bytes are read. A failure to write `out` is `Err(Ok(io::Error))`;
    /// the server's failures are `Err(Err(ClientError))`.
    pub fn get_into(
        &self,
        store: Store,
        key: &str,
        limit: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>, Result<std::io::Error, ClientError>> {
        let url = self.url(store, key);
        let mut req = self.agent.get(&url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| Err(self.unreachable(&url, e)))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(Err(Self::status_error(&url, status, resp.body_mut())));
        }
        let mut body = resp.body_mut().with_config().limit(limit).reader();
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Err(ClientError::Unreachable {
                        url: url.clone(),
                        message: e.to_string(),
                    }))
                }
            };
            out.write_all(&buf[..n]).map_err(Ok)?;
            total += n as u64;
        }
        Ok(Some(total))
    }

    /// `HEAD`: whether the server has the blob.
    pub fn exists(&self, store: Store, key: &str) -> Result<bool, ClientError> {
        let url = self.url(store, key);
        let mut req = self.agent.head(&url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| self.unreachable(&url, e))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(Self::status_error(&url, s, resp.body_mut())),
        }
    }

    /// `PUT` a file's bytes, streamed from the file (its length is sent
    /// as `Content-Length`).
    pub fn put_file(
        &self,
        store: Store,
        key: &str,
        file: &std::fs::File,
    ) -> Result<(), ClientError> {
        self.put_body(store, key, file)
    }

    /// `PUT` a blob. Idempotent for content-addressed blobs, so concurrent
    /// writers of the same key are harmless.
    pub fn put(&self, store: Store, key: &str, bytes: &[u8]) -> Result<(), ClientError> {
        self.put_body(store, key, bytes)
    }

    /// `PUT` `body` (bytes, or a file streamed) as the blob of `key`.
    fn put_body(
        &self,
        store: Store,
        key: &str,
        body: impl ureq::AsSendBody,
    ) -> Result<(), ClientError> {
        let url = self.url(store, key);
        let mut req = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.send(body).map_err(|e| self.unreachable(&url, e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(Self::status_error(&url, s, resp.body_mut())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_trailing_slash() {
        let cases = [
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080", None),
            (
                "https://alice:s3cret@cache.example/pipe/",
                "https://cache.example/pipe",
                Some("alice:s3cret"),
            ),
            ("HTTP://host:1/a/b", "http://host:1/a/b", None),
        ];
        for (url, base, userinfo) in cases {
            let p = parse_url(url).unwrap();
            assert_eq!(p.base, base, "{url}");
            assert_eq!(p.userinfo.as_deref(), userinfo, "{url}");
        }
        for bad in ["ftp://x", "127.0.0.1:8080", "http://", "http://h/?q=1"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_authorization() {
        let c = Client::new("http://bob:hunter2@127.0.0.1:9/").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("Basic"),
            "{shown}"
        );
        // Requests (and so ureq's errors) use the base, without userinfo.
        assert_eq!(c.base(), "http://127.0.0.1:9");
    }
}
