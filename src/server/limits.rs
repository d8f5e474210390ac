//! What one client may hold of the server: time to send a request, and
//! event streams.
//!
//! The page is used by one person's browser, whose requests arrive in
//! milliseconds; anything slower is a broken or hostile client, and must not
//! keep a connection (and its task) forever:
//!
//! - a request head must arrive within [`HEADER_READ_TIMEOUT`] (hyper closes
//!   the connection otherwise, also an idle keep-alive one);
//! - its body within [`BODY_READ_TIMEOUT`]: a `Content-Length` larger than
//!   what is sent gets `408 Request Timeout` and the connection is closed
//!   ([`read_body`]); a body larger than [`MAX_BODY_BYTES`] gets 413;
//! - at most [`MAX_EVENT_STREAMS`] `/api/progress` streams are open at once;
//!   one more is `503 Service Unavailable` with `Retry-After`
//!   ([`StreamSlots`]). Closing a page frees its stream.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Time for a request head (request line and headers) to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Time for a request body to arrive, from the end of its head.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request body (`POST /api/build` takes a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Event streams open at once: a browser opens one per tab (and holds at
/// most six connections per host), so this is many tabs, not a limit a
/// person meets.
pub const MAX_EVENT_STREAMS: usize = 32;

/// Middleware: read the whole body within [`BODY_READ_TIMEOUT`] before the
/// handler runs, so that no handler ever waits on a client.
pub async fn read_body(req: Request<Body>, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        );
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => refuse(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        ),
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s (is Content-Length right?)",
                BODY_READ_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// An error answer after which the connection is closed: what is left of
/// the body on the wire cannot be told from a next request.
fn refuse(status: StatusCode, message: String) -> Response {
    let mut r = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The count of open event streams, shared by the server.
#[derive(Clone, Debug, Default)]
pub struct StreamSlots {
    open: Arc<AtomicUsize>,
}

/// One open event stream; dropping it (the stream ended, or the client went
/// away) frees its slot.
#[derive(Debug)]
pub struct StreamSlot {
    open: Arc<AtomicUsize>,
}

impl StreamSlots {
    /// A slot, unless [`MAX_EVENT_STREAMS`] are taken.
    pub fn take(&self) -> Option<StreamSlot> {
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_EVENT_STREAMS).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot {
                open: self.open.clone(),
            })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer to one stream too many.
pub fn too_many_streams() -> Response {
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "error": format!(
                "{MAX_EVENT_STREAMS} event streams are open already; close a tab of this page and retry"
            )
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_freed_on_drop() {
        let slots = StreamSlots::default();
        let held: Vec<StreamSlot> = (0..MAX_EVENT_STREAMS)
            .map(|_| slots.take().expect("a slot"))
            .collect();
        assert!(slots.take().is_none());
        assert_eq!(slots.open.load(Ordering::SeqCst), MAX_EVENT_STREAMS);
        drop(held);
        assert_eq!(slots.open.load(Ordering::SeqCst), 0);
        assert!(slots.take().is_some());
    }
}
