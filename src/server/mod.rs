//! `pipe serve`: the admin page and its small JSON API.
//!
//! One page (plain HTML, CSS and JavaScript compiled into the binary) lists
//! the models and every target's state, and starts builds; a JSON API does
//! the same for scripts:
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page (`/app.js`, `/style.css`) |
//! | `GET /api/models` | the models of models.d: storage, and how many movies will have a vector |
//! | `GET /api/status` | every target's state, the running build, the last result |
//! | `POST /api/build` | start a build: `{"targets": [...]}` or the original's `{"embeddingModel", "skipJsonGeneration"}`, as `application/json` |
//! | `GET /api/progress` | Server-Sent Events following builds |
//!
//! Builds go through the same [`Executor`](crate::executor::Executor),
//! project lock and `.pipe/` state as `pipe build`, on a blocking thread; an
//! [`Observer`](crate::executor::Observer) forwards its events to a
//! broadcast channel that feeds the event streams. The manifest is read
//! again for every request, so edits to models.d show up without a restart.
//!
//! The page can start builds, so only this machine may use it: requests
//! whose `Host` is not a loopback name with our port are refused (DNS
//! rebinding), and so are state-changing requests from another site's page
//! (CSRF); see `security.rs`.
//!
//! A slow or lying client cannot hold the server: a request head must
//! arrive within 5 s and its body within 5 s more (a false `Content-Length`
//! gets 408), and at most 32 event streams are open at once (503 beyond);
//! see `limits.rs` (`HEADER_READ_TIMEOUT`, `BODY_READ_TIMEOUT`,
//! `MAX_EVENT_STREAMS`).

mod api;
mod build;
mod limits;
mod security;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How `pipe serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The project's pipeline.toml (read again for every request).
    pub manifest: PathBuf,
    /// Address to listen on (loopback unless the user asked otherwise).
    pub bind: IpAddr,
    /// Port (0: any free port).
    pub port: u16,
    /// Parallel jobs for builds (0: one per core).
    pub jobs: usize,
    /// Treat data-losing warnings as errors in builds.
    pub strict: bool,
    /// The remote cache flags for builds (with pipeline.toml's `[cache]`
    /// and the environment).
    pub remote: crate::remote::RemoteFlags,
}

/// Serve until `cancelled` is set (Ctrl-C). `on_listening` is called once
/// the socket is bound, with the actual address (the port may have been 0).
///
/// A build in flight when `cancelled` is set is stopped by the executor
/// itself (it watches the same flag), so shutting down never leaves a
/// half-written output.
pub fn serve(
    opts: &ServeOptions,
    cancelled: Arc<AtomicBool>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // A handful of requests from one browser: two workers are plenty;
        // builds run on blocking threads and use rayon for their own work.
        .worker_threads(2)
        .thread_name("pipe-serve")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server runtime: {e}"))?;
    let result = runtime.block_on(run(opts, cancelled, on_listening));
    // A build thread waiting for the project lock (held by a terminal build)
    // cannot be interrupted; do not wait for it forever.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

async fn run(
    opts: &ServeOptions,
    cancelled: Arc<AtomicBool>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind((opts.bind, opts.port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}",
                SocketAddr::new(opts.bind, opts.port)
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let app = Arc::new(api::App::new(opts, cancelled.clone(), shutdown_rx));
    on_listening(addr);

    let router = api::router(app, security::Allowed::for_addr(addr));
    // Each connection holds a receiver; the sender's `closed()` resolves
    // when every connection is over (graceful shutdown).
    let (conns_tx, conns_rx) = tokio::sync::watch::channel(());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: wait, do not spin.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let mut shutdown = shutdown_rx_for(&shutdown_tx);
                let held = conns_rx.clone();
                tokio::spawn(async move {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    // A client that never finishes its request head (one
                    // header line a minute) is disconnected; hyper answers
                    // nothing and closes. Bodies have their own deadline
                    // (limits::read_body).
                    builder
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(limits::HEADER_READ_TIMEOUT);
                    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    let mut draining = false;
                    loop {
                        tokio::select! {
                            _ = conn.as_mut() => break,
                            r = shutdown.changed(), if !draining => {
                                draining = true;
                                if r.is_ok() {
                                    conn.as_mut().graceful_shutdown();
                                }
                            }
                        }
                    }
                    drop(held);
                });
            }
            () = wait_for(&cancelled) => break,
        }
    }
    // Stop listening, end the event streams (which would otherwise keep
    // graceful shutdown waiting forever) and let requests in flight finish.
    drop(listener);
    let _ = shutdown_tx.send(true);
    drop(conns_rx);
    // Give open connections a moment to finish, then stop regardless.
    let _ = tokio::time::timeout(Duration::from_secs(3), conns_tx.closed()).await;
    Ok(())
}

/// A receiver of the shutdown flag that has not seen its current value.
fn shutdown_rx_for(tx: &tokio::sync::watch::Sender<bool>) -> tokio::sync::watch::Receiver<bool> {
    let mut rx = tx.subscribe();
    rx.mark_unchanged();
    rx
}

/// Resolves once `cancelled` is set. The Ctrl-C handler of main sets this
/// flag (the same one the executor watches); polling it keeps a single
/// signal handler.
async fn wait_for(cancelled: &AtomicBool) {
    while !cancelled.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether binding to `ip` exposes the page beyond this machine.
pub fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
}
