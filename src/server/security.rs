//! Only this machine may use the admin page: it can start builds.
//!
//! - **DNS rebinding**: a page on `evil.example` whose name is re-pointed to
//!   127.0.0.1 reaches us with `Host: evil.example:PORT`. Every request must
//!   name us by a loopback name (`localhost`, `127.0.0.1`, `[::1]`) — or the
//!   address given to `--bind` — *with our port*; anything else is 403.
//! - **CSRF**: another site's page can make the browser POST to us. Browsers
//!   send `Origin` on such requests, so a state-changing request whose
//!   `Origin` is not one of ours (including `null`) is 403, and so is one
//!   that the browser marks `Sec-Fetch-Site: cross-site`/`same-site`.
//!   Origins are compared as RFC 6454 says: scheme and host without regard
//!   to case, the port made explicit (`http://localhost` is port 80). A
//!   request without `Origin` (curl, scripts) is allowed: a browser always
//!   sends it on a cross-origin POST, and `/api/build` only accepts
//!   `application/json`, which a plain HTML form cannot send.
//! - **Ambiguity**: a request with two `Host` or two `Origin` headers is 400
//!   (which one would a proxy, or we, believe?), whatever the values.
//!
//! Every response also forbids framing (clickjacking of the Generate button)
//! and loading scripts from anywhere but us.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The `Host` and `Origin` values that name this server.
#[derive(Clone, Debug)]
pub struct Allowed {
    /// Lower-case `host:port` values accepted in `Host`.
    pub hosts: Vec<String>,
    /// Lower-case host names (`localhost`, `127.0.0.1`, `[::1]`, …) an
    /// `Origin` may name, with [`Allowed::port`].
    pub names: Vec<String>,
    /// The port we listen on.
    pub port: u16,
}

/// Why a request is refused: its status code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// 400 (an ambiguous request) or 403 (not ours).
    pub status: StatusCode,
    /// What was wrong, and what to do.
    pub message: String,
}

impl Refused {
    fn bad(message: String) -> Refused {
        Refused {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
    fn forbidden(message: String) -> Refused {
        Refused {
            status: StatusCode::FORBIDDEN,
            message,
        }
    }
}

/// A serialized origin (RFC 6454, section 6.1), as its three parts: scheme
/// and host lower-cased, the port explicit.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// Parse an `Origin` value; `None` for `null`, a list of origins, or
/// anything that is not `scheme://host[:port]` (a path is not allowed).
fn parse_origin(value: &str) -> Option<Origin> {
    let (scheme, rest) = value.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '\t']) {
        return None;
    }
    // `[::1]:8080`, `[::1]`, `host:8080`, `host`.
    let (host, port) = if rest.starts_with('[') {
        let end = rest.find(']')?;
        let (host, after) = rest.split_at(end + 1);
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        // The default port of the scheme, which a serialized origin omits.
        None => match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        },
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some(Origin {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

impl Allowed {
    /// What names `addr` (the bound address, with the real port).
    pub fn for_addr(addr: SocketAddr) -> Allowed {
        let port = addr.port();
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "[::1]".to_string(),
        ];
        // `--bind 192.168.1.5`: the user chose to be reached by that address.
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            names.push(match addr.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        let mut hosts: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
        if port == 80 {
            // Clients leave the default port out of `Host`.
            hosts.extend(names.iter().cloned());
        }
        Allowed { hosts, names, port }
    }

    /// Whether `origin` (an `Origin` header's value) is this server: scheme
    /// `http`, one of our names, our port (RFC 6454 comparison).
    pub fn is_our_origin(&self, origin: &str) -> bool {
        parse_origin(origin.trim()).is_some_and(|o| {
            o.scheme == "http" && o.port == self.port && self.names.contains(&o.host)
        })
    }

    /// Why this request must be refused, if it must.
    pub fn refuse(&self, method: &Method, headers: &HeaderMap) -> Option<Refused> {
        for (name, shown) in [(header::HOST, "Host"), (header::ORIGIN, "Origin")] {
            let n = headers.get_all(&name).iter().count();
            if n > 1 {
                return Some(Refused::bad(format!(
                    "{n} {shown} headers in one request; send exactly one"
                )));
            }
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.trim().to_ascii_lowercase());
        match host {
            None => return Some(Refused::forbidden("missing Host header".into())),
            Some(h) if !self.hosts.contains(&h) => {
                return Some(Refused::forbidden(format!(
                    "Host {h:?} is not this server; use http://{}/",
                    self.hosts.get(1).map_or("127.0.0.1", |s| s.as_str())
                )))
            }
            Some(_) => {}
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self.is_our_origin(&origin) {
                return Some(Refused::forbidden(format!(
                    "requests from another site are refused (Origin {origin:?})"
                )));
            }
        }
        if let Some(site) = headers.get("sec-fetch-site") {
            let site = site.to_str().unwrap_or_default();
            if site != "same-origin" && site != "none" {
                return Some(Refused::forbidden(format!(
                    "requests from another site are refused (Sec-Fetch-Site {site:?})"
                )));
            }
        }
        None
    }
}

/// Whether a `Content-Type` value is `application/json`, with or without
/// parameters (`; charset=utf-8`). Other JSON types
/// (`application/json-patch+json`, `application/merge-patch+json`, …) are
/// not: they mean something else than the body `/api/build` takes.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default();
    essence.trim().eq_ignore_ascii_case("application/json")
}

/// Middleware: refuse foreign requests with 403, add protective headers.
pub async fn guard(
    State(allowed): State<Arc<Allowed>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if let Some(why) = allowed.refuse(req.method(), req.headers()) {
        let body = serde_json::json!({ "error": why.message });
        return with_headers((why.status, axum::Json(body)).into_response());
    }
    with_headers(next.run(req).await)
}

fn with_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn host_must_be_loopback_with_our_port() {
        let a = Allowed::for_addr("127.0.0.1:4100".parse().expect("addr"));
        for ok in [
            "127.0.0.1:4100",
            "localhost:4100",
            "LOCALHOST:4100",
            "[::1]:4100",
        ] {
            let h = HeaderMap::from_iter([(header::HOST, HeaderValue::from_static(ok))]);
            assert_eq!(a.refuse(&Method::GET, &h), None, "{ok}");
        }
        for bad in [
            "evil.example:4100",
            "127.0.0.1:4101",
            "127.0.0.1",
            "localhost.evil:4100",
        ] {
            let h = HeaderMap::from_iter([(header::HOST, HeaderValue::from_static(bad))]);
            assert!(a.refuse(&Method::GET, &h).is_some(), "{bad}");
        }
        assert!(a.refuse(&Method::GET, &HeaderMap::new()).is_some());
    }

    #[test]
    fn foreign_origin_is_refused_on_post_only() {
        let a = Allowed::for_addr("127.0.0.1:4100".parse().expect("addr"));
        let foreign = headers(&[
            ("host", "127.0.0.1:4100"),
            ("origin", "http://evil.example"),
        ]);
        assert!(a.refuse(&Method::POST, &foreign).is_some());
        assert_eq!(a.refuse(&Method::GET, &foreign), None);
        let null = headers(&[("host", "127.0.0.1:4100"), ("origin", "null")]);
        assert!(a.refuse(&Method::POST, &null).is_some());
        let other_port = headers(&[
            ("host", "127.0.0.1:4100"),
            ("origin", "http://127.0.0.1:9999"),
        ]);
        assert!(a.refuse(&Method::POST, &other_port).is_some());
        let ours = headers(&[
            ("host", "127.0.0.1:4100"),
            ("origin", "http://localhost:4100"),
        ]);
        assert_eq!(a.refuse(&Method::POST, &ours), None);
        let curl = headers(&[("host", "127.0.0.1:4100")]);
        assert_eq!(a.refuse(&Method::POST, &curl), None);
        let cross = headers(&[("host", "127.0.0.1:4100"), ("sec-fetch-site", "cross-site")]);
        assert!(a.refuse(&Method::POST, &cross).is_some());
    }

    #[test]
    fn bind_address_is_allowed_when_chosen() {
        let a = Allowed::for_addr("192.168.1.5:4100".parse().expect("addr"));
        assert!(a.hosts.contains(&"192.168.1.5:4100".to_string()));
        let any = Allowed::for_addr("0.0.0.0:4100".parse().expect("addr"));
        assert!(!any.hosts.iter().any(|h| h.starts_with("0.0.0.0")));
    }

    #[test]
    fn origins_compare_as_rfc_6454_says() {
        let a = Allowed::for_addr("127.0.0.1:4100".parse().expect("addr"));
        for ok in [
            "http://localhost:4100",
            "HTTP://LOCALHOST:4100",
            "http://127.0.0.1:4100",
            "http://[::1]:4100",
            " http://localhost:4100 ",
        ] {
            assert!(a.is_our_origin(ok), "{ok}");
        }
        for bad in [
            "null",
            "",
            "https://localhost:4100",
            "http://localhost",
            "http://localhost:4100/",
            "http://localhost:4100/path",
            "http://localhost:04100x",
            "http://user@localhost:4100",
            "http://localhost:4100 http://evil.example",
            "http://evil.example:4100",
            "http://localhost.evil:4100",
            "localhost:4100",
        ] {
            assert!(!a.is_our_origin(bad), "{bad}");
        }
        // The default port is implied when the origin leaves it out.
        let eighty = Allowed::for_addr("127.0.0.1:80".parse().expect("addr"));
        assert!(eighty.is_our_origin("http://localhost"));
        assert!(eighty.is_our_origin("http://localhost:80"));
        assert!(!eighty.is_our_origin("https://localhost"));
    }

    #[test]
    fn duplicate_host_or_origin_is_400() {
        let a = Allowed::for_addr("127.0.0.1:4100".parse().expect("addr"));
        let mut h = headers(&[("host", "127.0.0.1:4100")]);
        h.append(header::HOST, HeaderValue::from_static("127.0.0.1:4100"));
        let why = a.refuse(&Method::GET, &h).expect("refused");
        assert_eq!(why.status, StatusCode::BAD_REQUEST);
        let mut h = headers(&[
            ("host", "127.0.0.1:4100"),
            ("origin", "http://localhost:4100"),
        ]);
        h.append(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        let why = a.refuse(&Method::POST, &h).expect("refused");
        assert_eq!(why.status, StatusCode::BAD_REQUEST);
        // Even on GET, and even when both say the same.
        let mut h = headers(&[
            ("host", "127.0.0.1:4100"),
            ("origin", "http://localhost:4100"),
        ]);
        h.append(
            header::ORIGIN,
            HeaderValue::from_static("http://localhost:4100"),
        );
        assert!(a.refuse(&Method::GET, &h).is_some());
    }

    #[test]
    fn only_application_json_is_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/jsonx",
            "text/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
