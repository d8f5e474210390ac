//! The HTTP providers (ollama, openai, rest) against real servers on
//! 127.0.0.1 that speak each protocol exactly and misbehave on cue: batching,
//! retries, timeouts, validation, the messages of failures, and secrets.

mod common;
use common::embed_server::{vector, EmbedServer, Fault};
use pipe::embed::batch::{
    embed_all, BatchError, BatchErrorKind, BatchPlan, BatchStats, RetryPolicy,
};
use pipe::embed::config::{EmbedConfig, ProviderKind};
use pipe::embed::providers::build_provider;
use pipe::embed::Provider;
use pipe::manifest::{Metric, Model};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DIMS: usize = 8;

fn model(dimensions: u32) -> Model {
    Model {
        id: "test".to_string(),
        name: "Test".to_string(),
        dimensions,
        metric: Metric::L2,
        embeddings: PathBuf::from("data/embeddings-test-movies.db"),
        description: String::new(),
        default: true,
        quantization: None,
        ollama_model: None,
        embed: None,
        file: PathBuf::from("models.d/test.toml"),
    }
}

fn config(provider: &str, url: &str) -> EmbedConfig {
    EmbedConfig {
        provider: match provider {
            "ollama" => ProviderKind::Ollama,
            "openai" => ProviderKind::OpenAi,
            "rest" => ProviderKind::Rest,
            other => panic!("{other}"),
        },
        model: "test-embed".to_string(),
        url: Some(url.to_string()),
        batch: Some(4),
        parallel: Some(1),
        timeout: Some(5),
        api_key_env: None,
        allow_insecure_key: false,
        send_dimensions: false,
        encoding_format: None,
        prefix: String::new(),
        query_prefix: None,
        template: None,
        path: None,
        command: Vec::new(),
        request: None,
        response: None,
        headers: BTreeMap::new(),
        normalize: None,
        max_length: None,
        attempts: None,
        retry_delay: None,
        retry_max_delay: None,
    }
}

fn provider(config: &EmbedConfig, dimensions: u32) -> Box<dyn Provider> {
    build_provider(config, &model(dimensions), Path::new("."))
        .unwrap_or_else(|e| panic!("build_provider: {e}"))
}

/// The error of a provider that must not build.
fn build_error(config: &EmbedConfig, dimensions: u32) -> pipe::embed::ProviderError {
    match build_provider(config, &model(dimensions), Path::new(".")) {
        Ok(provider) => panic!("built {}", provider.describe()),
        Err(error) => error,
    }
}

fn plan(provider: &dyn Provider, dimensions: usize) -> BatchPlan {
    BatchPlan {
        batch: provider.max_batch(),
        parallel: provider.max_parallel(),
        dimensions,
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(3),
        },
    }
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("Movie {i} (199{}) — a plot about number {i}", i % 10))
        .collect()
}

/// Embed through the real provider; what reached on_batch, by text index.
fn embed(
    provider: &dyn Provider,
    texts: &[String],
    plan: &BatchPlan,
) -> (Result<BatchStats, BatchError>, BTreeMap<usize, Vec<f32>>) {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = Mutex::new(BTreeMap::new());
    let result = embed_all(
        provider,
        &refs,
        plan,
        &AtomicBool::new(false),
        &|first, vectors| {
            let mut got = got.lock().unwrap();
            for (i, v) in vectors.into_iter().enumerate() {
                got.insert(first + i, v);
            }
            Ok(())
        },
    );
    (result, got.into_inner().unwrap())
}

fn assert_exact(got: &BTreeMap<usize, Vec<f32>>, texts: &[String], dims: usize) {
    assert_eq!(got.len(), texts.len());
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(got[&i], vector(text, dims), "text {i}");
    }
}

#[test]
fn each_protocol_embeds_batches_and_every_vector_lands_in_place() {
    let server = EmbedServer::start(DIMS);
    let texts = texts(10);
    let mut rest = config("rest", &format!("{}/v2/embed", server.url));
    rest.request = Some(
        serde_json::json!({"model": "embed-v4.0", "texts": "{{texts}}", "embedding_types": ["float"]}),
    );
    rest.response = Some("embeddings.float".to_string());
    let mut base64 = config("openai", &format!("{}/v1", server.url));
    base64.encoding_format = Some("base64".to_string());
    let cases = [
        (
            "ollama",
            config("ollama", &server.url),
            "/api/embed",
            "input",
        ),
        (
            "openai float",
            config("openai", &server.url),
            "/v1/embeddings",
            "input",
        ),
        ("openai base64", base64, "/v1/embeddings", "input"),
        ("rest", rest, "/v2/embed", "texts"),
    ];
    for (name, config, path, input) in cases {
        server.reset_counts();
        let provider = provider(&config, DIMS as u32);
        assert!(
            provider
                .describe()
                .ends_with(&format!("at {}{path}", server.url)),
            "{name}: {}",
            provider.describe()
        );
        let (result, got) = embed(&*provider, &texts, &plan(&*provider, DIMS));
        let stats = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (stats.texts, stats.requests, stats.retries),
            (10, 3, 0),
            "{name}"
        );
        assert_eq!((server.requests(), server.texts()), (3, 10), "{name}");
        assert_eq!(server.seen(), texts, "{name}");
        assert_exact(&got, &texts, DIMS);
        let first = &server.bodies()[0];
        assert_eq!(
            first[input],
            serde_json::json!(texts[..4]),
            "{name}: batched input"
        );
        if name.starts_with("openai") {
            let format = if name.ends_with("base64") {
                "base64"
            } else {
                "float"
            };
            assert_eq!(first["encoding_format"], format, "{name}");
            assert_eq!(first["model"], "test-embed");
            assert!(
                first.get("dimensions").is_none(),
                "{name}: dimensions not sent unless asked"
            );
        }
        if name == "ollama" {
            assert_eq!(
                first,
                &serde_json::json!({"model": "test-embed", "input": texts[..4]})
            );
        }
    }
}

#[test]
fn openai_vectors_are_matched_by_index_and_dimensions_sent_when_asked() {
    let server = EmbedServer::start(16);
    let texts = texts(6);
    let mut config = config("openai", &server.url);
    config.batch = Some(3);
    server.fail_next(&[Fault::OutOfOrder, Fault::OutOfOrder]);
    let provider = provider(&config, 16);
    let (result, got) = embed(&*provider, &texts, &plan(&*provider, 16));
    result.unwrap();
    assert_exact(&got, &texts, 16);

    // A matryoshka model asked for fewer dimensions.
    config.send_dimensions = true;
    let provider = build_provider(&config, &model(8), Path::new(".")).unwrap();
    server.reset_counts();
    let (result, got) = embed(&*provider, &texts, &plan(&*provider, 8));
    result.unwrap();
    assert_eq!(server.bodies()[0]["dimensions"], 8);
    assert_exact(&got, &texts, 8);
}

#[test]
fn openai_caps_a_batch_at_2048_inputs() {
    let mut config = config("openai", "http://127.0.0.1:9");
    config.batch = Some(100_000);
    assert_eq!(provider(&config, 8).max_batch(), 2048);
    config.batch = None;
    assert_eq!(provider(&config, 8).max_batch(), 256);
}

#[test]
fn rate_limits_and_server_errors_are_retried_then_succeed() {
    let server = EmbedServer::start(DIMS);
    let texts = texts(8);
    let provider = provider(&config("ollama", &server.url), DIMS as u32);
    let cases: [(&[Fault], usize, Duration); 3] = [
        (&[Fault::RateLimited("1")], 1, Duration::from_millis(950)),
        (
            &[Fault::ServerError, Fault::RateLimitedNoHint],
            2,
            Duration::ZERO,
        ),
        (&[Fault::Status(503, "upstream busy")], 1, Duration::ZERO),
    ];
    for (faults, retries, at_least) in cases {
        server.reset_counts();
        server.fail_next(faults);
        let start = Instant::now();
        let (result, got) = embed(&*provider, &texts, &plan(&*provider, DIMS));
        let stats = result.unwrap_or_else(|e| panic!("{faults:?}: {e}"));
        assert_eq!(stats.retries, retries, "{faults:?}");
        assert_eq!(server.requests(), 2 + retries, "{faults:?}");
        assert!(
            start.elapsed() >= at_least,
            "{faults:?}: Retry-After honoured"
        );
        assert_exact(&got, &texts, DIMS);
    }
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let server = EmbedServer::start(DIMS);
    let when = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let when: &'static str = Box::leak(when.into_boxed_str());
    server.fail_next(&[Fault::RateLimited(when)]);
    let provider = provider(&config("openai", &server.url), DIMS as u32);
    let start = Instant::now();
    let (result, _) = embed(&*provider, &texts(2), &plan(&*provider, DIMS));
    assert_eq!(result.unwrap().retries, 1);
    // The date has a one-second resolution: at least one second passed.
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_slow_server_times_out_and_is_retried() {
    let server = EmbedServer::start(DIMS);
    let mut config = config("ollama", &server.url);
    config.timeout = Some(1);
    server.fail_next(&[Fault::Slow(Duration::from_secs(3))]);
    let provider = provider(&config, DIMS as u32);
    let texts = texts(3);
    let (result, got) = embed(&*provider, &texts, &plan(&*provider, DIMS));
    assert_eq!(result.unwrap().retries, 1);
    assert_exact(&got, &texts, DIMS);
}

#[test]
fn persistent_failures_stop_with_a_clear_message_and_keep_earlier_vectors() {
    let server = EmbedServer::start(DIMS);
    let texts = texts(10);
    let provider = provider(&config("ollama", &server.url), DIMS as u32);
    server.fail_next(&[
        Fault::Slow(Duration::ZERO),
        Fault::ServerError,
        Fault::ServerError,
        Fault::ServerError,
    ]);
    let (result, got) = embed(&*provider, &texts, &plan(&*provider, DIMS));
    let error = result.unwrap_err();
    assert_eq!(error.kind, BatchErrorKind::Provider);
    let url = format!("{}/api/embed", server.url);
    for part in [
        "ollama model \"test-embed\"",
        &url,
        "HTTP 500 Internal Server Error",
        "the model runner crashed (out of memory)",
        "gave up after 3 attempts",
        "4 of 10 texts embedded before it stopped (their vectors are kept)",
    ] {
        assert!(
            error.message.contains(part),
            "{part:?} not in: {}",
            error.message
        );
    }
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(server.requests(), 4, "the first batch, then three attempts");
}

#[test]
fn a_client_error_is_not_retried() {
    let server = EmbedServer::start(DIMS);
    server.fail_next(&[Fault::Status(
        400,
        "{\"error\":\"model \\\"test-embed\\\" not found, try pulling it first\"}",
    )]);
    let provider = provider(&config("ollama", &server.url), DIMS as u32);
    let (result, got) = embed(&*provider, &texts(3), &plan(&*provider, DIMS));
    let error = result.unwrap_err();
    assert!(
        error.message.contains("HTTP 400 Bad Request"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("try pulling it first"),
        "{}",
        error.message
    );
    assert_eq!(server.requests(), 1);
    assert!(got.is_empty());
}

#[test]
fn a_server_that_is_not_running_is_retried_then_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // bound, then closed: nothing listens there
    let url = format!("http://127.0.0.1:{port}");
    let provider = provider(&config("openai", &url), DIMS as u32);
    let (result, _) = embed(&*provider, &texts(2), &plan(&*provider, DIMS));
    let error = result.unwrap_err();
    assert_eq!(error.stats.requests, 3, "connection errors are retried");
    assert!(
        error.message.contains("connection refused"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains(&format!("{url}/v1/embeddings")),
        "{}",
        error.message
    );
}

#[test]
fn bad_answers_are_refused_and_nothing_of_them_is_handed_on() {
    let server = EmbedServer::start(DIMS);
    let texts = texts(8);
    let ollama = config("ollama", &server.url);
    let mut base64 = config("openai", &server.url);
    base64.encoding_format = Some("base64".to_string());
    let cases = [
        (&ollama, Fault::WrongDimensions, BatchErrorKind::Invalid,
         "returned a vector of 9 dimensions for text 4 but the model file says `dimensions = 8`; set `dimensions = 9`"),
        (&ollama, Fault::FewerVectors, BatchErrorKind::Invalid, "returned 3 vectors for 4 texts"),
        (&ollama, Fault::Huge, BatchErrorKind::Invalid, "a vector with inf at position 0 for text 7"),
        (&ollama, Fault::Nan, BatchErrorKind::Provider, "is not JSON"),
        (&base64, Fault::Nan, BatchErrorKind::Invalid, "a vector with NaN at position 0 for text 7"),
        (&base64, Fault::FewerVectors, BatchErrorKind::Invalid, "returned 3 vectors for 4 texts"),
        (&base64, Fault::WrongDimensions, BatchErrorKind::Provider,
         "returned a vector of 9 dimensions for text 0 of the batch but the model file says `dimensions = 8`; set `dimensions = 9` in the model file if that is the model's size, or `send-dimensions = true`"),
    ];
    for (config, fault, kind, message) in cases {
        server.reset_counts();
        server.fail_next(&[Fault::Slow(Duration::ZERO), fault.clone()]);
        let provider = provider(config, DIMS as u32);
        let (result, got) = embed(&*provider, &texts, &plan(&*provider, DIMS));
        let error = result.unwrap_err();
        assert_eq!(error.kind, kind, "{fault:?}: {}", error.message);
        assert!(
            error.message.contains(message),
            "{fault:?}: {}",
            error.message
        );
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 3],
            "{fault:?}"
        );
        assert_eq!(server.requests(), 2, "{fault:?}: not retried");
    }
}

#[test]
fn an_api_key_is_sent_but_never_shown() {
    let server = EmbedServer::start(DIMS);
    let key = "sk-proj-0123456789abcdefSECRET";
    std::env::set_var("PIPE_TEST_KEY_SHOWN", key);
    server.require_key(key);
    let mut config = config("openai", &server.url);
    config.api_key_env = Some("PIPE_TEST_KEY_SHOWN".to_string());
    let provider = pipe::embed::providers::openai::openai(&config, &model(DIMS as u32)).unwrap();
    let (result, _) = embed(&provider, &texts(2), &plan(&provider, DIMS));
    result.unwrap();
    assert_eq!(server.authorizations(), vec![Some(format!("Bearer {key}"))]);
    assert!(!format!("{provider:?}").contains("SECRET"));
    assert!(!provider.describe().contains("SECRET"));
    assert!(
        !format!("{config:?}").contains("SECRET"),
        "the config names the variable only"
    );

    // The server rejects a wrong key and echoes it: the message never has it.
    let wrong = "sk-proj-wrongwrongwrongSECRET";
    std::env::set_var("PIPE_TEST_KEY_WRONG", wrong);
    config.api_key_env = Some("PIPE_TEST_KEY_WRONG".to_string());
    let provider = build_provider(&config, &model(DIMS as u32), Path::new(".")).unwrap();
    let (result, _) = embed(&*provider, &texts(2), &plan(&*provider, DIMS));
    let error = result.unwrap_err();
    assert!(error.message.contains("HTTP 401"), "{}", error.message);
    assert!(
        error.message.contains("Incorrect API key provided: ***"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("SECRET"), "{}", error.message);
    assert!(!format!("{error:?}").contains("SECRET"));
    assert_eq!(error.stats.requests, 1, "401 is not retried");
}

#[test]
fn rest_headers_are_filled_from_the_environment_and_secret() {
    let server = EmbedServer::start(DIMS);
    let key = "co-0123456789SECRETKEY";
    std::env::set_var("PIPE_TEST_KEY_REST", key);
    server.require_key(key);
    let mut config = config("rest", &format!("{}/v2/embed", server.url));
    config.request = Some(serde_json::json!({"texts": "{{texts}}"}));
    config.response = Some("embeddings.float".to_string());
    config.headers.insert(
        "Authorization".to_string(),
        "Bearer {{env.PIPE_TEST_KEY_REST}}".to_string(),
    );
    config
        .headers
        .insert("X-Client-Name".to_string(), "pipe-tests".to_string());
    let provider = pipe::embed::providers::rest::rest(&config, &model(DIMS as u32)).unwrap();
    let texts = texts(5);
    let (result, got) = embed(&provider, &texts, &plan(&provider, DIMS));
    result.unwrap();
    assert_exact(&got, &texts, DIMS);
    let debug = format!("{provider:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(
        debug.contains("pipe-tests"),
        "plain headers may show: {debug}"
    );
}

#[test]
fn keys_over_plain_http_to_another_host_are_refused_before_connecting() {
    std::env::set_var("PIPE_TEST_KEY_REFUSED", "sk-refused-0123456789SECRET");
    // 192.0.2.0/24 is TEST-NET-1: nothing answers there, and the refusal
    // comes from building the provider, before any request exists.
    for provider in ["ollama", "openai"] {
        let mut config = config(provider, "http://192.0.2.7:8080");
        config.api_key_env = Some("PIPE_TEST_KEY_REFUSED".to_string());
        let error = build_error(&config, 8);
        assert!(
            error
                .message
                .contains("refusing to send an API key over plain http to http://192.0.2.7:8080"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("allow-insecure-key = true"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("SECRET"));
        config.allow_insecure_key = true;
        assert!(
            build_provider(&config, &model(8), Path::new(".")).is_ok(),
            "{provider}: allowed"
        );
        config.url = Some("https://192.0.2.7:8443".to_string());
        config.allow_insecure_key = false;
        assert!(
            build_provider(&config, &model(8), Path::new(".")).is_ok(),
            "{provider}: https"
        );
    }
    let mut rest = config("rest", "http://192.0.2.7/embed");
    rest.request = Some(serde_json::json!({"input": "{{texts}}"}));
    rest.response = Some("data[].embedding".to_string());
    rest.headers.insert(
        "X-Api-Key".to_string(),
        "{{env.PIPE_TEST_KEY_REFUSED}}".to_string(),
    );
    let error = build_error(&rest, 8);
    assert!(
        error.message.contains("refusing to send an API key"),
        "{}",
        error.message
    );
}

#[test]
fn a_missing_key_variable_is_named_with_the_model_file() {
    std::env::remove_var("PIPE_TEST_KEY_UNSET");
    let mut config = config("openai", "https://api.openai.com/v1");
    config.api_key_env = Some("PIPE_TEST_KEY_UNSET".to_string());
    let error = build_error(&config, 8);
    assert_eq!(
        error.message,
        "the environment variable PIPE_TEST_KEY_UNSET (named by `api-key-env` in models.d/test.toml) \
         is not set; set it to the API key (keys are read from the environment only, never from files)"
    );
}

#[test]
fn ollama_host_is_respected_with_and_without_a_scheme() {
    let server = EmbedServer::start(DIMS);
    let host_port = server.url.trim_start_matches("http://").to_string();
    let mut config = config("ollama", "unused");
    config.url = None;
    for value in [host_port.clone(), server.url.clone()] {
        // The only test that reads OLLAMA_HOST: every other sets `url`.
        std::env::set_var("OLLAMA_HOST", &value);
        server.reset_counts();
        let provider = provider(&config, DIMS as u32);
        let (result, _) = embed(&*provider, &texts(2), &plan(&*provider, DIMS));
        result.unwrap_or_else(|e| panic!("OLLAMA_HOST={value}: {e}"));
        assert_eq!(server.texts(), 2, "OLLAMA_HOST={value}");
    }
    std::env::remove_var("OLLAMA_HOST");
    assert!(provider(&config, 8)
        .describe()
        .ends_with("at http://127.0.0.1:11434/api/embed"));
}

#[test]
fn parallel_requests_are_in_flight_together() {
    let server = EmbedServer::start(DIMS);
    let mut config = config("openai", &server.url);
    config.batch = Some(1);
    config.parallel = Some(4);
    server.fail_next(&vec![Fault::Slow(Duration::from_millis(300)); 8]);
    let provider = provider(&config, DIMS as u32);
    let texts = texts(8);
    let (result, got) = embed(&*provider, &texts, &plan(&*provider, DIMS));
    result.unwrap();
    assert_exact(&got, &texts, DIMS);
    assert_eq!(server.most_in_flight(), 4);
}
