//! Only this machine may use the admin page: it can start builds.
//!
//! - **DNS rebinding**: a page on `evil.example` whose name is re-pointed to
//!   127.0.0.1 reaches us with `Host: evil.example:PORT`. Every request must
//!   name us by a loopback name (`localhost`, `127.0.0.1`, `[::1]`) — or the
//!   address given to `--bind` — *with our port*; anything else is 403.
//! - **CSRF**: another site's page can make the browser POST to us. Browsers
//!   send `Origin` on such requests, so a state-changing request whose
//!   `Origin` is not one of ours (including `null`) is 403, and so is one
//!   that the browser marks `Sec-Fetch-Site: cross-site`/`same-site`. A
//!   request without `Origin` (curl, scripts) is allowed: a browser always
//!   sends it on a cross-origin POST, and `/api/build` only accepts
//!   `application/json`, which a plain HTML form cannot send.
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
    /// Lower-case `http://host:port` values accepted in `Origin`.
    pub origins: Vec<String>,
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
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Allowed { hosts, origins }
    }

    /// Why this request must be refused, if it must.
    pub fn refuse(&self, method: &Method, headers: &HeaderMap) -> Option<String> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.trim().to_ascii_lowercase());
        match host {
            None => return Some("missing Host header".into()),
            Some(h) if !self.hosts.contains(&h) => {
                return Some(format!(
                    "Host {h:?} is not this server; use http://{}/",
                    self.hosts.get(1).map_or("127.0.0.1", |s| s.as_str())
                ))
            }
            Some(_) => {}
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin
                .to_str()
                .map(|o| o.trim().to_ascii_lowercase())
                .unwrap_or_default();
            if !self.origins.contains(&origin) {
                return Some(format!(
                    "requests from another site are refused (Origin {origin:?})"
                ));
            }
        }
        if let Some(site) = headers.get("sec-fetch-site") {
            let site = site.to_str().unwrap_or_default();
            if site != "same-origin" && site != "none" {
                return Some(format!(
                    "requests from another site are refused (Sec-Fetch-Site {site:?})"
                ));
            }
        }
        None
    }
}

/// Middleware: refuse foreign requests with 403, add protective headers.
pub async fn guard(
    State(allowed): State<Arc<Allowed>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if let Some(why) = allowed.refuse(req.method(), req.headers()) {
        let body = serde_json::json!({ "error": why });
        return with_headers((StatusCode::FORBIDDEN, axum::Json(body)).into_response());
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
}
