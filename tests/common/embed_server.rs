//! A real embeddings server on 127.0.0.1 for the provider tests: it speaks
//! Ollama's `POST /api/embed`, OpenAI's `POST /v1/embeddings` (batch inputs,
//! `encoding_format` float or base64, `dimensions`, `usage`) and a
//! Cohere-like `POST /v2/embed` for the rest provider, answers deterministic
//! vectors computed from each text ([`vector`]), counts every request and
//! text it was sent, and misbehaves on cue ([`Fault`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One misbehaviour, applied to one request (faults queue up in order).
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429 with this `Retry-After` value (seconds or an HTTP date).
    RateLimited(&'static str),
    /// 429 without `Retry-After`.
    RateLimitedNoHint,
    /// 500 with a body.
    ServerError,
    /// Any status with this body.
    Status(u16, &'static str),
    /// Answer correctly, after this long (longer than the client's timeout
    /// makes a timeout).
    Slow(Duration),
    /// Vectors one longer than the server's dimensions.
    WrongDimensions,
    /// One vector fewer than texts.
    FewerVectors,
    /// A NaN in the last vector: the literal `NaN` in JSON (as Python's
    /// json.dumps writes it), real NaN bits in base64.
    Nan,
    /// A number too large for a float32 (becomes infinity).
    Huge,
    /// OpenAI: the `data` elements in reverse order (indexes still right).
    OutOfOrder,
}

/// What the server has been sent, and its behaviour.
#[derive(Default)]
struct Shared {
    dimensions: AtomicUsize,
    faults: Mutex<VecDeque<Fault>>,
    requests: AtomicUsize,
    texts: AtomicUsize,
    /// Every text, in arrival order.
    seen: Mutex<Vec<String>>,
    /// The `Authorization` header of every request.
    authorizations: Mutex<Vec<Option<String>>>,
    /// Every request body.
    bodies: Mutex<Vec<Value>>,
    /// The key the server wants (`Bearer KEY`), if any.
    required_key: Mutex<Option<String>>,
    /// Requests numbered this or later (0-based) wait for `release`.
    hold_from: Mutex<Option<usize>>,
    released: AtomicBool,
    /// Requests waiting in a hold.
    held: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn new(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running server; stopped when dropped.
pub struct EmbedServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The vector the server answers for `text`: deterministic, from the text's
/// BLAKE3 hash, components in [-1, 1].
pub fn vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut reader = blake3::Hasher::new().update(text.as_bytes()).finalize_xof();
    let mut bytes = vec![0u8; dimensions * 2];
    reader.fill(&mut bytes);
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(u16::from_le_bytes([b[0], b[1]])) / 32767.5 - 1.0)
        .collect()
}

impl EmbedServer {
    /// Start a server whose model has `dimensions` dimensions.
    pub fn start(dimensions: usize) -> EmbedServer {
        let shared = Arc::new(Shared::default());
        shared.dimensions.store(dimensions, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/api/embed", post(ollama))
            .route("/v1/embeddings", post(openai))
            .route("/v2/embed", post(cohere))
            .with_state(shared.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    result = axum::serve(listener, app) => result.expect("serve"),
                    _ = stopped => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        EmbedServer {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Queue faults for the next requests, in order.
    pub fn fail_next(&self, faults: &[Fault]) -> &Self {
        self.shared
            .faults
            .lock()
            .unwrap()
            .extend(faults.iter().cloned());
        self
    }

    /// Answer 401 unless `Authorization: Bearer KEY`; the 401 body echoes
    /// the key it got, as OpenAI's does, to prove clients scrub it.
    pub fn require_key(&self, key: &str) -> &Self {
        *self.shared.required_key.lock().unwrap() = Some(format!("Bearer {key}"));
        self
    }

    /// Make request number `n` (0-based) and every later one wait until
    /// [`EmbedServer::release`].
    pub fn hold_from(&self, n: usize) {
        *self.shared.hold_from.lock().unwrap() = Some(n);
    }

    /// Let held requests (and later ones) through.
    pub fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
    }

    /// How many requests are waiting in a hold.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Wait until `n` requests are held (panics after `timeout`).
    pub fn wait_held(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.held() < n {
            assert!(
                start.elapsed() < timeout,
                "no request held after {timeout:?} ({} requests, {} texts)",
                self.requests(),
                self.texts()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Requests received (faulty ones included).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Texts received (those of faulty requests included).
    pub fn texts(&self) -> usize {
        self.shared.texts.load(Ordering::SeqCst)
    }

    /// Every text received, in order.
    pub fn seen(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The `Authorization` header of every request.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.shared.authorizations.lock().unwrap().clone()
    }

    /// Every request body.
    pub fn bodies(&self) -> Vec<Value> {
        self.shared.bodies.lock().unwrap().clone()
    }

    /// Forget what was counted (the faults stay queued).
    pub fn reset_counts(&self) {
        self.shared.requests.store(0, Ordering::SeqCst);
        self.shared.texts.store(0, Ordering::SeqCst);
        self.shared.seen.lock().unwrap().clear();
        self.shared.authorizations.lock().unwrap().clear();
        self.shared.bodies.lock().unwrap().clear();
    }

    /// The most requests that were being answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }

    /// The model's dimensions.
    pub fn dimensions(&self) -> usize {
        self.shared.dimensions.load(Ordering::SeqCst)
    }
}

impl Drop for EmbedServer {
    fn drop(&mut self) {
        self.release();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Answer = (StatusCode, HeaderMap, String);

fn answer(status: u16, body: String) -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    (StatusCode::from_u16(status).expect("status"), headers, body)
}

/// What every endpoint does first: count, check the key, hold, pick the
/// fault. `Err` is the answer to send instead of vectors.
async fn receive(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
    input: &str,
) -> Result<(Value, Vec<String>, Option<Fault>), Answer> {
    let number = shared.requests.fetch_add(1, Ordering::SeqCst);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared
        .authorizations
        .lock()
        .unwrap()
        .push(authorization.clone());
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Err(answer(400, json!({"error": e.to_string()}).to_string())),
    };
    shared.bodies.lock().unwrap().push(request.clone());
    let texts: Vec<String> = match &request[input] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect(),
        other => {
            return Err(answer(
                400,
                json!({"error": format!("`{input}` must be a string or an array of strings, got {other}")}).to_string(),
            ))
        }
    };
    shared.texts.fetch_add(texts.len(), Ordering::SeqCst);
    shared.seen.lock().unwrap().extend(texts.iter().cloned());

    let hold = *shared.hold_from.lock().unwrap();
    if hold.is_some_and(|from| number >= from) {
        shared.held.fetch_add(1, Ordering::SeqCst);
        while !shared.released.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shared.held.fetch_sub(1, Ordering::SeqCst);
    }

    let required = shared.required_key.lock().unwrap().clone();
    if let Some(required) = required {
        if authorization.as_deref() != Some(required.as_str()) {
            let got = authorization.unwrap_or_default();
            return Err(answer(
                401,
                json!({"error": {"message": format!("Incorrect API key provided: {got}"), "type": "invalid_request_error"}}).to_string(),
            ));
        }
    }
    let fault = shared.faults.lock().unwrap().pop_front();
    match &fault {
        Some(Fault::RateLimited(after)) => {
            let (status, mut headers, body) = answer(
                429,
                json!({"error": {"message": "Rate limit reached", "type": "requests"}}).to_string(),
            );
            headers.insert("retry-after", after.parse().unwrap());
            return Err((status, headers, body));
        }
        Some(Fault::RateLimitedNoHint) => {
            return Err(answer(429, "slow down".to_string()));
        }
        Some(Fault::ServerError) => {
            return Err(answer(
                500,
                json!({"error": "the model runner crashed (out of memory)"}).to_string(),
            ))
        }
        Some(Fault::Status(status, body)) => return Err(answer(*status, body.to_string())),
        Some(Fault::Slow(wait)) => tokio::time::sleep(*wait).await,
        _ => {}
    }
    Ok((request, texts, fault))
}

/// The vectors for `texts`, bent by the fault.
fn vectors_for(texts: &[String], dimensions: usize, fault: &Option<Fault>) -> Vec<Vec<f32>> {
    let width = match fault {
        Some(Fault::WrongDimensions) => dimensions + 1,
        _ => dimensions,
    };
    let mut vectors: Vec<Vec<f32>> = texts.iter().map(|t| vector(t, width)).collect();
    if matches!(fault, Some(Fault::FewerVectors)) {
        vectors.pop();
    }
    vectors
}

/// JSON of vectors, with the NaN/Huge fault written into the text.
fn vectors_json(vectors: &[Vec<f32>], fault: &Option<Fault>) -> Vec<String> {
    let last = vectors.len().saturating_sub(1);
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut items: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
            if i == last && !items.is_empty() {
                match fault {
                    Some(Fault::Nan) => items[0] = "NaN".to_string(),
                    Some(Fault::Huge) => items[0] = "1e39".to_string(),
                    _ => {}
                }
            }
            format!("[{}]", items.join(","))
        })
        .collect()
}

async fn ollama(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Answer {
    let _in_flight = InFlight::new(&shared);
    let (request, texts, fault) = match receive(&shared, &headers, &body, "input").await {
        Ok(received) => received,
        Err(answer) => return answer,
    };
    let dimensions = shared.dimensions.load(Ordering::SeqCst);
    let vectors = vectors_for(&texts, dimensions, &fault);
    let model = request["model"].as_str().unwrap_or_default();
    let body = format!(
        "{{\"model\":{},\"embeddings\":[{}],\"total_duration\":14143917,\"load_duration\":1019500,\"prompt_eval_count\":{}}}",
        Value::from(model),
        vectors_json(&vectors, &fault).join(","),
        texts.len() * 8
    );
    answer(200, body)
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Answer {
    let _in_flight = InFlight::new(&shared);
    let (request, texts, fault) = match receive(&shared, &headers, &body, "input").await {
        Ok(received) => received,
        Err(answer) => return answer,
    };
    let mut dimensions = shared.dimensions.load(Ordering::SeqCst);
    if let Some(asked) = request["dimensions"].as_u64() {
        dimensions = asked as usize; // matryoshka: the first n of a longer vector
    }
    let base64 = match request["encoding_format"].as_str() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return answer(
                400,
                json!({"error": {"message": format!("invalid encoding_format {other}")}})
                    .to_string(),
            )
        }
    };
    let mut vectors = vectors_for(&texts, dimensions, &fault);
    let encoded: Vec<String> = if base64 {
        if let (Some(Fault::Nan), Some(last)) = (&fault, vectors.last_mut()) {
            last[0] = f32::NAN;
        }
        vectors
            .iter()
            .map(|v| {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)).to_string()
            })
            .collect()
    } else {
        vectors_json(&vectors, &fault)
    };
    let mut data: Vec<String> = encoded
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{{\"object\":\"embedding\",\"index\":{i},\"embedding\":{e}}}"))
        .collect();
    if matches!(fault, Some(Fault::OutOfOrder)) {
        data.reverse();
    }
    let tokens = texts
        .iter()
        .map(|t| t.split_whitespace().count())
        .sum::<usize>();
    let body = format!(
        "{{\"object\":\"list\",\"data\":[{}],\"model\":{},\"usage\":{{\"prompt_tokens\":{tokens},\"total_tokens\":{tokens}}}}}",
        data.join(","),
        Value::from(request["model"].as_str().unwrap_or_default())
    );
    answer(200, body)
}

/// Cohere's v2 shape: `{"texts": [...]}` in, `{"embeddings": {"float": [...]}}` out.
async fn cohere(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Answer {
    let _in_flight = InFlight::new(&shared);
    let (_, texts, fault) = match receive(&shared, &headers, &body, "texts").await {
        Ok(received) => received,
        Err(answer) => return answer,
    };
    let dimensions = shared.dimensions.load(Ordering::SeqCst);
    let vectors = vectors_for(&texts, dimensions, &fault);
    let body = format!(
        "{{\"id\":\"x\",\"embeddings\":{{\"float\":[{}]}},\"texts\":{},\"meta\":{{\"billed_units\":{{\"input_tokens\":{}}}}}}}",
        vectors_json(&vectors, &fault).join(","),
        Value::from(texts.clone()),
        texts.len()
    );
    answer(200, body)
}
