//! The routes: the page, `/api/models`, `/api/status`, `/api/build` and the
//! `/api/progress` event stream.

use super::build::{self, ProgressEvent, Running};
use super::limits::{self, StreamSlot, StreamSlots};
use super::security::{self, Allowed};
use super::ServeOptions;
use crate::executor::{Executor, Reason, Staleness};
use crate::graph::{Graph, OriginalSelectionError, TargetSpec};
use crate::manifest::{Manifest, ManifestErrors};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// How often the event stream sends a comment, so that proxies and browsers
/// keep an idle stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the server shares between requests.
pub struct App {
    manifest: PathBuf,
    /// Jobs for builds (0: one per core).
    pub jobs: usize,
    /// `--strict` for builds.
    pub strict: bool,
    /// The remote cache flags for builds.
    pub remote: crate::remote::RemoteFlags,
    /// Set by Ctrl-C; the executor stops on it.
    pub cancelled: Arc<AtomicBool>,
    events: broadcast::Sender<Arc<str>>,
    shutdown: watch::Receiver<bool>,
    builds: Mutex<Builds>,
    /// Open `/api/progress` streams (capped).
    streams: StreamSlots,
    /// The kept movies, for vector counts.
    kept: KeptIds,
}

/// The build in flight and the last result.
#[derive(Default)]
struct Builds {
    next_id: u64,
    running: Option<Running>,
    /// The latest event of the running build, sent first to a stream that
    /// connects mid-build (a reloaded page).
    latest: Option<Arc<str>>,
    /// The final event of the last build (stays on the page after a reload).
    last: Option<ProgressEvent>,
}

impl App {
    /// State for a server bound to `addr`.
    pub fn new(
        opts: &ServeOptions,
        cancelled: Arc<AtomicBool>,
        shutdown: watch::Receiver<bool>,
    ) -> App {
        let (events, _) = broadcast::channel(256);
        App {
            manifest: opts.manifest.clone(),
            jobs: opts.jobs,
            strict: opts.strict,
            remote: opts.remote.clone(),
            cancelled,
            events,
            shutdown,
            builds: Mutex::new(Builds::default()),
            streams: StreamSlots::default(),
            kept: KeptIds::default(),
        }
    }

    fn builds(&self) -> MutexGuard<'_, Builds> {
        // A panic while holding this lock cannot leave it inconsistent in a
        // way that matters more than serving the page.
        self.builds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the running build's summary (no-op between builds).
    pub fn update(&self, f: impl FnOnce(&mut Running)) {
        if let Some(r) = self.builds().running.as_mut() {
            f(r);
        }
    }

    /// Send an event of the running build to every stream, with the
    /// build's target counts filled in.
    pub fn emit_progress(&self, mut event: ProgressEvent) {
        let mut builds = self.builds();
        if let Some(r) = builds.running.as_mut() {
            if !event.message.is_empty() {
                r.message = event.message.clone();
            }
            event.current = r.current;
            event.total = r.total;
        }
        let Ok(text) = serde_json::to_string(&event) else {
            return;
        };
        let text: Arc<str> = text.into();
        builds.latest = Some(text.clone());
        // Sent under the lock so that a stream subscribing meanwhile gets
        // either this event as its snapshot or from the channel, in order.
        let _ = self.events.send(text);
    }

    /// The build is over: record its result, allow the next one, tell the
    /// streams. In this order, so that a client that sees `completed` and
    /// starts another build at once is not refused.
    fn finish(&self, event: ProgressEvent) {
        let text: Option<Arc<str>> = serde_json::to_string(&event).ok().map(Into::into);
        let mut builds = self.builds();
        builds.running = None;
        builds.latest = None;
        builds.last = Some(event);
        if let Some(text) = text {
            let _ = self.events.send(text);
        }
    }
}

/// All routes, behind the security guard.
pub fn router(app: Arc<App>, allowed: Allowed) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/models", get(models))
        .route("/api/status", get(status))
        .route("/api/build", post(start_build))
        .route("/api/progress", get(progress))
        .fallback(not_found)
        // Inside the guard: a refused request's body is never waited for.
        .layer(axum::middleware::from_fn(limits::read_body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(allowed),
            security::guard,
        ))
        .with_state(app)
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page".into(), None)
}

/// `{"error": message, ...extra}` with a status code.
fn error(code: StatusCode, message: String, extra: Option<(&str, Value)>) -> Response {
    let mut body = json!({ "error": message });
    if let (Some((key, value)), Some(map)) = (extra, body.as_object_mut()) {
        map.insert(key.to_string(), value);
    }
    (code, Json(body)).into_response()
}

/// The manifest, read again from disk, rendered without colour if invalid.
fn load(manifest: &Path) -> Result<(Manifest, Graph), Vec<String>> {
    // Each problem its own report (with its file:line:col and snippet), as
    // the command line prints them, not one report that nests the others.
    let render = |e: ManifestErrors| -> Vec<String> {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        e.errors
            .into_iter()
            .map(|one| {
                let mut out = String::new();
                match handler.render_report(&mut out, &one) {
                    Ok(()) => out,
                    Err(_) => one.to_string(),
                }
            })
            .collect()
    };
    let manifest = Manifest::load(manifest).map_err(render)?;
    let graph = Graph::build(&manifest).map_err(render)?;
    Ok((manifest, graph))
}

/// An error answer, boxed: a `Response` is large and travels in `Result`s.
type Refusal = Box<Response>;

/// Run blocking work (file reads, hashing, SQLite) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
            None,
        )))
    })
}

fn manifest_error(diagnostics: Vec<String>) -> Refusal {
    let message = match diagnostics.len() {
        1 => "pipeline.toml or a model file is invalid".to_string(),
        n => format!("pipeline.toml or the model files have {n} problems"),
    };
    // `diagnostics`: one entry per problem; `diagnostic`: all of them as
    // one text, as the first version of this answer had it.
    let body = json!({
        "error": message,
        "diagnostic": diagnostics.join("\n"),
        "diagnostics": diagnostics,
    });
    Box::new((StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response())
}

/// One model, as `GET /api/models` shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    id: String,
    name: String,
    dimensions: u32,
    metric: String,
    description: String,
    default: bool,
    /// How the vector table stores vectors (absent: float32).
    #[serde(skip_serializing_if = "Option::is_none")]
    quantization: Option<QuantizationInfo>,
    embeddings: String,
    embeddings_present: bool,
    /// Movies that will have a vector in the model's database: kept movies
    /// of movies.json with a row in the embeddings file (None: a file is
    /// missing or unreadable).
    vectors: Option<u64>,
    /// Rows of the embeddings file, vectors of dropped or unknown movies
    /// included (None: missing or unreadable).
    embeddings_rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embeddings_error: Option<String>,
    /// The `[embed]` provider that makes the embeddings file
    /// (`embeddings@<id>`), if any: a build of this model runs it first.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
}

/// A quantized model's storage, as `GET /api/models` shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuantizationInfo {
    /// `int8` or `bit`.
    kind: &'static str,
    /// Whether the float vectors are kept to re-rank candidates.
    rescore: bool,
    /// With `rescore`: candidates fetched per neighbour.
    #[serde(skip_serializing_if = "Option::is_none")]
    oversample: Option<u32>,
}

/// The kept movie ids of a movies.json, remembered while the file's size
/// and modification time stay the same (the page asks after every build).
#[derive(Default)]
pub(crate) struct KeptIds {
    memo: Mutex<Option<KeptMemo>>,
}

/// The file (absolute path, size, modification time) and its kept ids.
type KeptMemo = (
    PathBuf,
    u64,
    Option<std::time::SystemTime>,
    Arc<HashSet<String>>,
);

impl KeptIds {
    /// The ids of the movies movie-json and movies-db keep from `rel`.
    fn get(&self, root: &Path, rel: &Path) -> Result<Arc<HashSet<String>>, String> {
        let abs = root.join(rel);
        let meta = std::fs::metadata(&abs).map_err(|e| format!("{}: {e}", rel.display()))?;
        let (len, mtime) = (meta.len(), meta.modified().ok());
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, l, m, ids)) = memo.as_ref() {
            if *p == abs && *l == len && *m == mtime {
                return Ok(ids.clone());
            }
        }
        // What the last build remembered of each entry is read, not
        // parsed again; a read-only request writes nothing in .pipe/.
        let (_, loaded) = crate::movies::entries::load_file_read_only(root, rel)
            .map_err(|e| e.message.clone())?;
        let ids: Arc<HashSet<String>> = Arc::new(
            loaded
                .movies
                .iter()
                .map(|m| m.summary.movie_id.clone())
                .collect(),
        );
        *memo = Some((abs, len, mtime, ids.clone()));
        Ok(ids)
    }
}

async fn models(State(app): State<Arc<App>>) -> Response {
    let path = app.manifest.clone();
    let worker = app.clone();
    let result = blocking(move || {
        let (manifest, graph) = load(&path).map_err(manifest_error)?;
        let models: Vec<ModelInfo> = manifest
            .models
            .iter()
            .map(|m| {
                let file = manifest.root.join(&m.embeddings);
                let present = file.is_file();
                // The movies.json this model's database is built from.
                let movies = graph.targets.iter().find_map(|t| match &t.spec {
                    TargetSpec::MoviesDb(spec) if spec.model.id == m.id => {
                        Some(spec.movies.clone())
                    }
                    _ => None,
                });
                let (mut vectors, mut rows, mut embeddings_error) = (None, None, None);
                if present {
                    let kept = movies.map(|rel| worker.kept.get(&manifest.root, &rel));
                    match count_vectors(&file, kept.as_ref().and_then(|k| k.as_ref().ok())) {
                        Ok((n, with)) => {
                            rows = Some(n);
                            vectors = with;
                            if let Some(Err(e)) = kept {
                                embeddings_error = Some(format!("cannot read the movies: {e}"));
                            }
                        }
                        Err(e) => embeddings_error = Some(e),
                    }
                }
                ModelInfo {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    dimensions: m.dimensions,
                    metric: m.metric.as_str().to_string(),
                    description: m.description.clone(),
                    default: m.default,
                    quantization: m.quantization.map(|q| QuantizationInfo {
                        kind: q.kind.as_str(),
                        rescore: q.rescore,
                        oversample: q.rescore.then_some(q.oversample),
                    }),
                    embeddings: m.embeddings.display().to_string(),
                    embeddings_present: present,
                    vectors,
                    embeddings_rows: rows,
                    embeddings_error,
                    provider: m.embed.as_ref().map(|e| e.provider.to_string()),
                }
            })
            .collect();
        Ok(models)
    })
    .await;
    match result {
        Ok(models) => Json(json!({ "models": models })).into_response(),
        Err(r) => *r,
    }
}

/// Rows of an embeddings database's `embeddings` table, and of those the
/// movies in `kept` (what the model's database will hold vectors for),
/// opened read-only (the path comes from models.d, never from a request).
fn count_vectors(
    file: &Path,
    kept: Option<&Arc<HashSet<String>>>,
) -> Result<(u64, Option<u64>), String> {
    let conn = crate::sqlite::open_read_only(file).map_err(|e| e.to_string())?;
    let not_embeddings = |e: rusqlite::Error| format!("not an embeddings database: {e}");
    let Some(kept) = kept else {
        let rows = conn
            .query_row("SELECT count(*) FROM embeddings", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(not_embeddings)?;
        return Ok((rows.max(0) as u64, None));
    };
    let mut stmt = conn
        .prepare("SELECT movie_id FROM embeddings")
        .map_err(not_embeddings)?;
    let mut q = stmt.query([]).map_err(not_embeddings)?;
    let (mut rows, mut with) = (0u64, 0u64);
    while let Some(row) = q.next().map_err(not_embeddings)? {
        rows += 1;
        if let Ok(rusqlite::types::ValueRef::Text(id)) = row.get_ref(0) {
            if std::str::from_utf8(id).is_ok_and(|id| kept.contains(id)) {
                with += 1;
            }
        }
    }
    Ok((rows, Some(with)))
}

/// One target, as `GET /api/status` shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetInfo {
    name: String,
    kind: &'static str,
    model: Option<String>,
    description: String,
    /// `up-to-date`, `stale` (built, but inputs changed), `never-built`,
    /// `missing-input`, `failed` or `building`.
    state: &'static str,
    reasons: Vec<String>,
    missing_inputs: Vec<String>,
    last_error: Option<String>,
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let path = app.manifest.clone();
    let cancelled = app.cancelled.clone();
    let result = blocking(move || {
        let (manifest, graph) = load(&path).map_err(manifest_error)?;
        let all = graph.select(&[]).map_err(|e| {
            Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
                None,
            ))
        })?;
        // Read-only, like `pipe status`: no lock, so the page stays
        // responsive while a build (ours or a terminal's) runs.
        let executor = Executor::new(&manifest, &graph, cancelled);
        let states = executor.status(&all).map_err(|e| {
            Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the build state: {e}"),
                None,
            ))
        })?;
        let targets: Vec<(Staleness, &'static str, Option<String>, String)> = states
            .into_iter()
            .zip(&all)
            .map(|(s, &i)| {
                let t = &graph.targets[i];
                (
                    s,
                    t.spec.kind(),
                    t.model.as_ref().map(|m| m.id.clone()),
                    t.description.clone().unwrap_or_default(),
                )
            })
            .collect();
        Ok((manifest.root.display().to_string(), targets))
    })
    .await;
    let (root, states) = match result {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let builds = app.builds();
    let targets: Vec<TargetInfo> = states
        .into_iter()
        .map(|(s, kind, model, description)| {
            let building = builds
                .running
                .as_ref()
                .is_some_and(|r| r.building.contains(&s.name));
            let state = if building {
                "building"
            } else if !s.missing_inputs.is_empty() {
                "missing-input"
            } else if s.reasons.is_empty() {
                "up-to-date"
            } else if s.last_error.is_some() {
                "failed"
            } else if s.reasons.contains(&Reason::NeverBuilt) {
                "never-built"
            } else {
                "stale"
            };
            TargetInfo {
                name: s.name,
                kind,
                model,
                description,
                state,
                reasons: s.reasons.iter().map(|r| r.to_string()).collect(),
                missing_inputs: s
                    .missing_inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                last_error: s.last_error,
            }
        })
        .collect();
    Json(json!({
        "root": root,
        "building": builds.running.is_some(),
        "build": builds.running,
        "last": builds.last,
        "targets": targets,
    }))
    .into_response()
}

/// `POST /api/build`: either targets, or the original's model + skip flag.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BuildRequest {
    /// Target names (`movies-db@potion`, or a bare `movies-db` for every model).
    #[serde(default)]
    targets: Vec<String>,
    /// The original's `embeddingModel`: this model's targets (+ movie-json).
    embedding_model: Option<String>,
    /// The original's `skipJsonGeneration`: leave out movie-json.
    #[serde(default)]
    skip_json_generation: bool,
}

/// Why a request names nothing we can build.
enum Invalid {
    Model(String, Vec<String>),
    Target(String, Vec<String>),
    Empty,
}

/// The targets a request selects, as `pipe build -m MODEL [--skip-json]`
/// would (the same rules as the command line: [`Graph::select_original`]).
fn selection(
    manifest: &Manifest,
    graph: &Graph,
    req: &BuildRequest,
) -> Result<Vec<String>, Invalid> {
    if !req.targets.is_empty() {
        return match graph.select(&req.targets) {
            Ok(_) => Ok(req.targets.clone()),
            Err(e) => Err(Invalid::Target(
                e.to_string(),
                graph.targets.iter().map(|t| t.name.clone()).collect(),
            )),
        };
    }
    if req.embedding_model.is_none() && !req.skip_json_generation {
        return Ok(Vec::new()); // everything
    }
    // The model choice publishes that model's database, as `-m` does.
    if let Some(why) = req
        .embedding_model
        .as_deref()
        .and_then(|m| crate::executor::publish_refusal(manifest, graph, m))
    {
        return Err(Invalid::Model(
            why,
            manifest.models.iter().map(|m| m.id.clone()).collect(),
        ));
    }
    graph
        .select_original(
            &manifest.models,
            req.embedding_model.as_deref(),
            req.skip_json_generation,
        )
        .map_err(|e| match e {
            OriginalSelectionError::UnknownModel { ref models, .. } => {
                Invalid::Model(e.to_string(), models.clone())
            }
            OriginalSelectionError::Empty => Invalid::Empty,
        })
}

async fn start_build(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<BuildRequest>, JsonRejection>,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !content_type.as_deref().is_some_and(security::is_json) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body must be sent as Content-Type: application/json, not {}",
                content_type.map_or("none".to_string(), |c| format!("{c:?}"))
            ),
            None,
        );
    }
    let req = match body {
        Ok(Json(r)) => r,
        Err(e) => {
            return error(
                e.status(),
                format!(
                    "{}; send {{\"targets\": [...]}} or {{\"embeddingModel\": \"potion\", \"skipJsonGeneration\": true}} as application/json",
                    e.body_text()
                ),
                None,
            )
        }
    };
    let path = app.manifest.clone();
    let loaded = blocking(move || load(&path).map_err(manifest_error)).await;
    let (manifest, graph) = match loaded {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let targets = match selection(&manifest, &graph, &req) {
        Ok(t) => t,
        Err(Invalid::Model(message, ids)) => {
            return error(
                StatusCode::BAD_REQUEST,
                message,
                Some(("models", json!(ids))),
            )
        }
        Err(Invalid::Target(message, names)) => {
            return error(
                StatusCode::BAD_REQUEST,
                message,
                Some(("targets", json!(names))),
            )
        }
        Err(Invalid::Empty) => {
            return error(
                StatusCode::BAD_REQUEST,
                "this selection has no targets".into(),
                None,
            )
        }
    };
    // Check and claim under one lock: two requests at once cannot both start.
    let id = {
        let mut builds = app.builds();
        if let Some(r) = &builds.running {
            let running = json!(r);
            drop(builds);
            return error(
                StatusCode::CONFLICT,
                "a build is already running; wait for it to finish".into(),
                Some(("build", running)),
            );
        }
        builds.next_id += 1;
        let id = builds.next_id;
        builds.running = Some(Running {
            id,
            targets: targets.clone(),
            ..Running::default()
        });
        id
    };
    let what = if targets.is_empty() {
        "every target".to_string()
    } else {
        targets.join(", ")
    };
    let mut starting = ProgressEvent::new("starting", id, format!("starting: {what}"));
    starting.targets = targets.clone();
    app.emit_progress(starting);

    let worker = app.clone();
    let job_targets = targets.clone();
    // The page's model choice publishes that model's database as the
    // original did (`pipe build -m MODEL`).
    let publish = req
        .embedding_model
        .clone()
        .filter(|_| req.targets.is_empty());
    let handle = tokio::task::spawn_blocking(move || {
        build::run(worker, id, manifest, graph, job_targets, publish)
    });
    let finisher = app.clone();
    tokio::spawn(async move {
        let event = match handle.await {
            Ok(event) => event,
            // A panic in a stage must not leave the page "building" forever.
            Err(e) => build::failure(id, format!("the build crashed: {e}"), Vec::new()),
        };
        finisher.finish(event);
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "started", "id": id, "targets": targets })),
    )
        .into_response()
}

async fn progress(State(app): State<Arc<App>>) -> Response {
    let Some(slot) = app.streams.take() else {
        return limits::too_many_streams();
    };
    // Subscribe and read the snapshot under the lock that emitting takes,
    // so that no event falls between the two.
    let (rx, snapshot) = {
        let builds = app.builds();
        (app.events.subscribe(), builds.latest.clone())
    };
    let shutdown = app.shutdown.clone();
    // The slot lives in the stream's state: it is freed when the stream
    // ends or is dropped (the client went away).
    let stream = futures_util::stream::unfold(
        (rx, shutdown, snapshot, slot),
        |(mut rx, mut shutdown, mut snapshot, slot): (_, _, _, StreamSlot)| async move {
            if let Some(s) = snapshot.take() {
                return Some((
                    Ok::<_, Infallible>(Event::default().data(&*s)),
                    (rx, shutdown, None, slot),
                ));
            }
            loop {
                if *shutdown.borrow() {
                    return None;
                }
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(s) => return Some((Ok(Event::default().data(&*s)), (rx, shutdown, None, slot))),
                        // A slow reader missed some progress; the next
                        // event says where the build is.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    r = shutdown.changed() => if r.is_err() { return None },
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}
