//! The REST core every HTTP provider is a configuration of, and the `rest`
//! provider: any HTTP embedding API described in the model file by the shape
//! of its request and where the vectors are in its answer.
//!
//! ```toml
//! [embed]
//! provider = "rest"
//! url = "https://api.cohere.com/v2/embed"
//! request = { model = "embed-v4.0", texts = "{{texts}}", input_type = "search_document", embedding_types = ["float"] }
//! response = "embeddings.float"
//! headers = { Authorization = "Bearer {{env.COHERE_API_KEY}}" }
//! ```
//!
//! * `request` is the JSON body; the string `"{{texts}}"` is replaced by the
//!   batch's texts (an array), or `"{{text}}"` by one text for APIs that
//!   embed one text per request (the batch is then 1).
//! * `response` is a path to the vectors: fields separated by dots, `[]`
//!   after a field for "each element of this array" — `data[].embedding`
//!   (OpenAI), `embeddings` (Ollama: an array of vectors), `embedding` (one
//!   vector). A vector is an array of numbers, or a base64 string of
//!   little-endian float32s.
//! * header values may contain `{{env.NAME}}`, filled from the environment
//!   when the provider is built; such a header is a secret (never shown, and
//!   refused over plain http to another host unless allowed).
//!
//! Ollama and OpenAI-compatible servers are this same core with a fixed
//! request and response (see `ollama.rs`, `openai.rs`), so batching, retries
//! and validation ([`crate::embed::batch`]) and HTTP ([`crate::embed::http`])
//! exist once.

use crate::embed::config::EmbedConfig;
use crate::embed::http::{key_from_env, HeaderValue, HttpClient, HttpTarget, Secret};
use crate::embed::provider::{Provider, ProviderError};
use crate::manifest::Model;
use base64::Engine as _;
use serde_json::Value;
use std::time::Duration;

/// Requests in flight when the model file does not say.
pub const DEFAULT_PARALLEL: usize = 2;
/// Seconds per request when the model file does not say.
pub const DEFAULT_TIMEOUT: u64 = 60;
/// Texts per request for `rest` when the model file does not say.
pub const DEFAULT_BATCH: usize = 32;

/// Where the texts go in the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    /// `"{{texts}}"`: the batch as an array.
    Texts,
    /// `"{{text}}"`: one text per request.
    Text,
}

/// The JSON body of a request, with the place of the texts.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestShape {
    body: Value,
    placeholder: Placeholder,
}

impl RequestShape {
    /// A request body with exactly one `"{{texts}}"` or `"{{text}}"` string.
    pub fn new(body: Value) -> Result<RequestShape, String> {
        let mut found = Vec::new();
        find_placeholders(&body, &mut found);
        match found.as_slice() {
            [one] => Ok(RequestShape {
                body,
                placeholder: *one,
            }),
            [] => Err(
                "`request` has no \"{{texts}}\" (or \"{{text}}\") where the texts go; \
                 write e.g. request = { input = \"{{texts}}\" }"
                    .to_string(),
            ),
            _ => Err(
                "`request` has more than one \"{{texts}}\"/\"{{text}}\"; the texts go in one place"
                    .to_string(),
            ),
        }
    }

    /// Whether the API takes one text per request.
    pub fn one_text_per_request(&self) -> bool {
        self.placeholder == Placeholder::Text
    }

    /// The body for `texts`.
    pub fn render(&self, texts: &[&str]) -> Value {
        let filling = match self.placeholder {
            Placeholder::Texts => Value::from(texts.to_vec()),
            Placeholder::Text => Value::from(texts.first().copied().unwrap_or_default()),
        };
        let mut body = self.body.clone();
        fill(&mut body, &filling);
        body
    }
}

fn placeholder_of(text: &str) -> Option<Placeholder> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    match inner {
        "texts" => Some(Placeholder::Texts),
        "text" => Some(Placeholder::Text),
        _ => None,
    }
}

fn find_placeholders(value: &Value, found: &mut Vec<Placeholder>) {
    match value {
        Value::String(s) => found.extend(placeholder_of(s)),
        Value::Array(items) => items.iter().for_each(|v| find_placeholders(v, found)),
        Value::Object(map) => map.values().for_each(|v| find_placeholders(v, found)),
        _ => {}
    }
}

fn fill(value: &mut Value, filling: &Value) {
    match value {
        Value::String(s) if placeholder_of(s).is_some() => *value = filling.clone(),
        Value::Array(items) => items.iter_mut().for_each(|v| fill(v, filling)),
        Value::Object(map) => map.values_mut().for_each(|v| fill(v, filling)),
        _ => {}
    }
}

/// One step of a response path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Each,
}

/// Where the vectors are in an answer, and (for APIs that number them) the
/// field of each element that says which text it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseShape {
    /// Steps up to and including the last `[]`: they lead to the elements.
    to_items: Vec<Step>,
    /// Fields from an element (or the root, without `[]`) to its vector.
    to_vector: Vec<String>,
    /// `index`: the element's position among the texts (OpenAI).
    index: Option<String>,
    each: bool,
}

impl ResponseShape {
    /// Parse a path like `data[].embedding`, `embeddings`, `result.vectors`.
    pub fn new(path: &str, index: Option<&str>) -> Result<ResponseShape, String> {
        let mut steps = Vec::new();
        let path = path.trim();
        if path.is_empty() {
            return Err("`response` is empty; write where the vectors are, e.g. \
                 \"data[].embedding\" or \"embeddings\""
                .to_string());
        }
        for part in path.split('.') {
            let (name, each) = match part.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (part, false),
            };
            if name.contains(['[', ']']) || (name.is_empty() && !(each && steps.is_empty())) {
                return Err(format!(
                    "`response = \"{path}\"`: `{part}` is not a field name (fields are \
                     separated by dots, `[]` after a field means each element of that array)"
                ));
            }
            if !name.is_empty() {
                steps.push(Step::Field(name.to_string()));
            }
            if each {
                steps.push(Step::Each);
            }
        }
        let last_each = steps.iter().rposition(|s| *s == Step::Each);
        let (to_items, to_vector) = match last_each {
            Some(at) => (steps[..=at].to_vec(), steps[at + 1..].to_vec()),
            None => (Vec::new(), steps),
        };
        let to_vector = to_vector
            .into_iter()
            .map(|s| match s {
                Step::Field(name) => Ok(name),
                Step::Each => Err(()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|()| "unreachable: no [] after the last []".to_string())?;
        Ok(ResponseShape {
            each: last_each.is_some(),
            to_items,
            to_vector,
            index: index.map(str::to_string),
        })
    }

    /// The vectors of an answer, in the order of the texts (by `index` when
    /// the shape has one). Their count and lengths are checked by the batch
    /// layer; this checks that they are vectors at all.
    pub fn extract(&self, answer: &Value) -> Result<Vec<Vec<f32>>, String> {
        if !self.each {
            let value = follow(answer, &self.to_vector)?;
            return match value {
                Value::Array(items)
                    if items.first().is_some_and(|v| v.is_array() || v.is_string()) =>
                {
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| vector(v).map_err(|e| format!("vector {i}: {e}")))
                        .collect()
                }
                Value::Array(items) if items.is_empty() => Ok(Vec::new()),
                single => Ok(vec![vector(single)?]),
            };
        }
        let mut items = vec![answer];
        let mut at = String::new();
        for step in &self.to_items {
            match step {
                Step::Field(name) => {
                    at = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    items = items
                        .into_iter()
                        .map(|v| v.get(name).ok_or_else(|| format!("no `{at}`")))
                        .collect::<Result<_, _>>()?;
                }
                Step::Each => {
                    let mut next = Vec::new();
                    for v in items {
                        match v {
                            Value::Array(elements) => next.extend(elements),
                            other => {
                                return Err(format!(
                                    "`{}` is {}, not an array",
                                    if at.is_empty() { "the answer" } else { &at },
                                    kind(other)
                                ))
                            }
                        }
                    }
                    at.push_str("[]");
                    items = next;
                }
            }
        }
        let mut vectors = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let v = vector(follow(item, &self.to_vector).map_err(|e| format!("element {i}: {e}"))?)
                .map_err(|e| format!("element {i}: {e}"))?;
            let position = match &self.index {
                None => i,
                Some(field) => item
                    .get(field)
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| format!("element {i} has no numeric `{field}`"))?,
            };
            vectors.push((position, v));
        }
        if self.index.is_some() {
            vectors.sort_by_key(|(position, _)| *position);
            for pair in vectors.windows(2) {
                if pair[0].0 == pair[1].0 {
                    return Err(format!("two vectors have index {}", pair[0].0));
                }
            }
            if let Some((position, _)) = vectors.last() {
                if *position >= vectors.len() {
                    return Err(format!(
                        "a vector has index {position} but there are {} vectors",
                        vectors.len()
                    ));
                }
            }
        }
        Ok(vectors.into_iter().map(|(_, v)| v).collect())
    }
}

impl ResponseShape {
    /// The vectors of an answer read straight from its bytes, for the shapes
    /// of OpenAI (`data[].embedding` by `index`) and Ollama (`embeddings`):
    /// no `Value` tree with a node per number. The same vectors as
    /// [`ResponseShape::extract`]; `None` for any other shape, or an answer
    /// that does not fit the shape exactly (then `extract` parses it and
    /// says what is wrong).
    pub fn extract_bytes(&self, bytes: &[u8]) -> Option<Vec<Vec<f32>>> {
        #[derive(serde::Deserialize)]
        struct Ollama {
            embeddings: Vec<Vector>,
        }
        #[derive(serde::Deserialize)]
        struct OpenAi {
            data: Vec<Item>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            index: usize,
            embedding: Vector,
        }
        let field = |s: &Step, name: &str| matches!(s, Step::Field(f) if f == name);
        let openai = self.each
            && self.to_items.len() == 2
            && field(&self.to_items[0], "data")
            && self.to_items[1] == Step::Each
            && self.to_vector == ["embedding"]
            && self.index.as_deref() == Some("index");
        let ollama = !self.each && self.to_vector == ["embeddings"] && self.index.is_none();
        if ollama {
            let answer: Ollama = serde_json::from_slice(bytes).ok()?;
            return Some(answer.embeddings.into_iter().map(|v| v.0).collect());
        }
        if !openai {
            return None;
        }
        let answer: OpenAi = serde_json::from_slice(bytes).ok()?;
        let mut items = answer.data;
        items.sort_by_key(|item| item.index);
        let in_place = items.iter().enumerate().all(|(i, item)| item.index == i);
        in_place.then(|| items.into_iter().map(|item| item.embedding.0).collect())
    }
}

/// One vector as [`vector`] reads it (an array of numbers, each read as a
/// JSON number to f64 and then f32; or base64 of little-endian float32s),
/// deserialised without a `Value`.
struct Vector(Vec<f32>);

impl<'de> serde::Deserialize<'de> for Vector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Vector, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Vector;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vector, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(x) = seq.next_element::<f64>()? {
                    v.push(x as f32);
                }
                Ok(Vector(v))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vector, E> {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(E::custom)?;
                if bytes.len() % 4 != 0 {
                    return Err(E::custom("not whole float32s"));
                }
                Ok(Vector(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ))
            }
        }
        d.deserialize_any(Visit)
    }
}

fn follow<'a>(mut value: &'a Value, fields: &[String]) -> Result<&'a Value, String> {
    for (n, field) in fields.iter().enumerate() {
        value = value
            .get(field)
            .ok_or_else(|| format!("no `{}`", fields[..=n].join(".")))?;
    }
    Ok(value)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One vector: an array of numbers, or base64 of little-endian float32s.
fn vector(value: &Value) -> Result<Vec<f32>, String> {
    match value {
        Value::Array(numbers) => numbers
            .iter()
            .enumerate()
            .map(|(i, n)| {
                n.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| format!("position {i} is {}, not a number", kind(n)))
            })
            .collect(),
        Value::String(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("not a vector: a string that is not base64 ({e})"))?;
            if bytes.len() % 4 != 0 {
                return Err(format!(
                    "a base64 vector of {} bytes, not a whole number of float32s",
                    bytes.len()
                ));
            }
            Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        }
        other => Err(format!("{}, not a vector", kind(other))),
    }
}

/// A provider that POSTs a JSON body and finds the vectors in the answer:
/// `rest` itself, and `ollama` and `openai` as fixed configurations of it.
#[derive(Debug)]
pub struct RestProvider {
    /// `ollama model "nomic-embed-text"`.
    label: String,
    http: HttpClient,
    request: RequestShape,
    response: ResponseShape,
    max_batch: usize,
    max_parallel: usize,
    dimensions_hint: Option<(usize, String)>,
}

/// Everything a [`RestProvider`] is made of.
pub struct RestSpec {
    /// `ollama`, `openai` or `rest`.
    pub kind: &'static str,
    /// The provider's model name, for messages.
    pub model: String,
    /// The endpoint.
    pub url: String,
    /// The request body.
    pub request: RequestShape,
    /// Where the vectors are.
    pub response: ResponseShape,
    /// Extra headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// Texts per request (already capped by the protocol's limit).
    pub batch: usize,
    /// Requests in flight.
    pub parallel: usize,
    /// Per request.
    pub timeout: Duration,
    /// `allow-insecure-key`.
    pub allow_insecure_key: bool,
    /// A protocol-specific hint for vectors of the wrong length: the model
    /// file's dimensions and what to set (openai: `send-dimensions`). The
    /// batch layer checks lengths for every provider; this only says more.
    pub dimensions_hint: Option<(usize, String)>,
}

impl RestProvider {
    /// Build the provider; fails on an unusable URL or a key that would go
    /// over plain http to another host.
    pub fn new(spec: RestSpec) -> Result<RestProvider, ProviderError> {
        let label = format!("{} model \"{}\"", spec.kind, spec.model);
        let max_batch = if spec.request.one_text_per_request() {
            1
        } else {
            spec.batch.max(1)
        };
        let http = HttpClient::new(HttpTarget {
            label: label.clone(),
            url: spec.url,
            headers: spec.headers,
            timeout: spec.timeout,
            allow_insecure_key: spec.allow_insecure_key,
        })?;
        Ok(RestProvider {
            label,
            http,
            request: spec.request,
            response: spec.response,
            max_batch,
            max_parallel: spec.parallel.max(1),
            dimensions_hint: spec.dimensions_hint,
        })
    }
}

impl Provider for RestProvider {
    fn describe(&self) -> String {
        format!("{} at {}", self.label, self.http.shown_url())
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn max_parallel(&self) -> usize {
        self.max_parallel
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let bytes = self.http.post(&self.request.render(texts))?;
        let vectors = match self.response.extract_bytes(&bytes) {
            Some(vectors) => vectors,
            None => self.extract_value(&bytes)?,
        };
        self.check_dimensions(&vectors)?;
        Ok(vectors)
    }
}

impl RestProvider {
    /// The vectors of an answer through a `Value` (any response shape), or
    /// what is wrong with it.
    fn extract_value(&self, bytes: &[u8]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let answer = self.http.parse_json(bytes)?;
        self.response.extract(&answer).map_err(|e| {
            let mut start = answer.to_string();
            if start.len() > 200 {
                let mut cut = 200;
                while !start.is_char_boundary(cut) {
                    cut -= 1;
                }
                start.truncate(cut);
                start.push('…');
            }
            ProviderError::permanent(format!("unexpected answer: {e}: {start}"))
        })
    }

    /// The protocol's hint for vectors of the wrong length.
    fn check_dimensions(&self, vectors: &[Vec<f32>]) -> Result<(), ProviderError> {
        if let Some((expected, hint)) = &self.dimensions_hint {
            if let Some((i, v)) = vectors
                .iter()
                .enumerate()
                .find(|(_, v)| v.len() != *expected)
            {
                return Err(ProviderError::permanent(format!(
                    "the provider returned a vector of {} dimensions for text {i} of the batch \
                     but the model file says `dimensions = {expected}`; {}",
                    v.len(),
                    hint.replace("{got}", &v.len().to_string())
                )));
            }
        }
        Ok(())
    }
}

/// The timeout, batch and parallelism of a model file, with defaults.
pub(crate) fn limits(
    config: &EmbedConfig,
    default_batch: usize,
    cap: usize,
) -> (usize, usize, Duration) {
    (
        config.batch.unwrap_or(default_batch).clamp(1, cap),
        config.parallel.unwrap_or(DEFAULT_PARALLEL).max(1),
        Duration::from_secs(config.timeout.unwrap_or(DEFAULT_TIMEOUT).max(1)),
    )
}

/// `Authorization: Bearer <key>` from the variable `api-key-env` names.
pub(crate) fn bearer(
    config: &EmbedConfig,
    model: &Model,
) -> Result<Option<(String, HeaderValue)>, ProviderError> {
    let Some(variable) = &config.api_key_env else {
        return Ok(None);
    };
    let what = format!("`api-key-env` in {}", model.file.display());
    let key = key_from_env(variable, &what)?;
    Ok(Some((
        "Authorization".to_string(),
        HeaderValue::Secret(Secret::new(format!("Bearer {}", key.expose()))),
    )))
}

/// A header value with its `{{env.NAME}}` placeholders filled in; secret
/// when it had any.
fn header_value(name: &str, template: &str, model: &Model) -> Result<HeaderValue, ProviderError> {
    let mut out = String::new();
    let mut rest = template;
    let mut secret = false;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            ProviderError::permanent(format!(
                "{}: headers.{name}: a `{{{{` without `}}}}`; write {{{{env.NAME}}}}",
                model.file.display()
            ))
        })?;
        let inner = after[..end].trim();
        let variable = inner.strip_prefix("env.").ok_or_else(|| {
            ProviderError::permanent(format!(
                "{}: headers.{name}: `{{{{{inner}}}}}` is not `{{{{env.NAME}}}}` (only \
                 environment variables can be filled into headers)",
                model.file.display()
            ))
        })?;
        let what = format!("headers.{name} in {}", model.file.display());
        out.push_str(key_from_env(variable.trim(), &what)?.expose());
        secret = true;
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(if secret {
        HeaderValue::Secret(Secret::new(out))
    } else {
        HeaderValue::Plain(out)
    })
}

/// The `rest` provider from a model file's `[embed]` table.
pub fn rest(config: &EmbedConfig, model: &Model) -> Result<RestProvider, ProviderError> {
    let file = model.file.display();
    let missing = |key: &str, example: &str| {
        ProviderError::permanent(format!(
            "{file}: [embed] provider = \"rest\" needs `{key}` (e.g. {key} = {example})"
        ))
    };
    let url = config
        .url
        .clone()
        .ok_or_else(|| missing("url", "\"https://api.example.com/v1/embed\""))?;
    let request = config
        .request
        .clone()
        .ok_or_else(|| missing("request", "{ input = \"{{texts}}\" }"))?;
    let request = RequestShape::new(request)
        .map_err(|e| ProviderError::permanent(format!("{file}: [embed] {e}")))?;
    let response = config
        .response
        .as_deref()
        .ok_or_else(|| missing("response", "\"data[].embedding\""))?;
    let response = ResponseShape::new(response, None)
        .map_err(|e| ProviderError::permanent(format!("{file}: [embed] {e}")))?;
    let mut headers = Vec::new();
    for (name, template) in &config.headers {
        headers.push((name.clone(), header_value(name, template, model)?));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    {
        headers.extend(bearer(config, model)?);
    }
    let (batch, parallel, timeout) = limits(config, DEFAULT_BATCH, usize::MAX);
    let name = match config.model_name() {
        "" => model.id.clone(),
        name => name.to_string(),
    };
    RestProvider::new(RestSpec {
        kind: "rest",
        model: name,
        url,
        request,
        response,
        headers,
        batch,
        parallel,
        timeout,
        allow_insecure_key: config.allow_insecure_key,
        dimensions_hint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_texts_go_where_the_placeholder_is() {
        let shape =
            RequestShape::new(json!({"model": "m", "texts": "{{ texts }}", "n": [1]})).unwrap();
        assert_eq!(
            shape.render(&["a", "b"]),
            json!({"model": "m", "texts": ["a", "b"], "n": [1]})
        );
        let one = RequestShape::new(json!({"inputs": {"text": "{{text}}"}})).unwrap();
        assert!(one.one_text_per_request());
        assert_eq!(one.render(&["a"]), json!({"inputs": {"text": "a"}}));
        for bad in [
            json!({"input": "texts"}),
            json!({"a": "{{texts}}", "b": "{{text}}"}),
        ] {
            assert!(RequestShape::new(bad).is_err());
        }
    }

    #[test]
    fn vectors_are_found_where_the_response_path_says() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(
            [1.0f32, -2.5]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let cases = [
            (
                "embeddings",
                json!({"embeddings": [[1, 2], [3, 4]]}),
                vec![vec![1.0, 2.0], vec![3.0, 4.0]],
            ),
            (
                "data[].embedding",
                json!({"data": [{"embedding": [1]}, {"embedding": [2]}]}),
                vec![vec![1.0], vec![2.0]],
            ),
            (
                "embedding",
                json!({"embedding": [0.5, 1]}),
                vec![vec![0.5, 1.0]],
            ),
            (
                "embeddings.float",
                json!({"embeddings": {"float": [[1]]}}),
                vec![vec![1.0]],
            ),
            ("[]", json!([[1], [2]]), vec![vec![1.0], vec![2.0]]),
            ("[].values", json!([{"values": [7]}]), vec![vec![7.0]]),
            (
                "data[].embedding",
                json!({"data": [{"embedding": b64}]}),
                vec![vec![1.0, -2.5]],
            ),
            ("embeddings", json!({"embeddings": []}), vec![]),
        ];
        for (path, answer, expected) in cases {
            let shape = ResponseShape::new(path, None).unwrap();
            assert_eq!(shape.extract(&answer).unwrap(), expected, "{path}");
        }
        for (path, answer, error) in [
            ("data[].embedding", json!({"object": "list"}), "no `data`"),
            (
                "data[].embedding",
                json!({"data": {"x": 1}}),
                "`data` is an object, not an array",
            ),
            (
                "embeddings",
                json!({"embeddings": [[1, "x"]]}),
                "vector 0: position 1 is a string",
            ),
            ("embedding", json!({"embedding": "!!"}), "not base64"),
            (
                "embedding",
                json!({"embedding": "AAA="}),
                "not a whole number of float32s",
            ),
        ] {
            let e = ResponseShape::new(path, None)
                .unwrap()
                .extract(&answer)
                .unwrap_err();
            assert!(e.contains(error), "{path}: {e}");
        }
        for bad in ["", "data[0].x", "a..b", "data[]x"] {
            assert!(ResponseShape::new(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_read_from_bytes_are_the_vectors_read_through_values() {
        let one = base64::engine::general_purpose::STANDARD.encode(
            [0.5f32, -1.25]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let openai = ResponseShape::new("data[].embedding", Some("index")).unwrap();
        let ollama = ResponseShape::new("embeddings", None).unwrap();
        let other = ResponseShape::new("result.vectors", None).unwrap();
        for (shape, answer, fast) in [
            (&openai, r#"{"data":[{"index":1,"embedding":[3,4.5e-3]},{"index":0,"embedding":[1.0000001,-2]}],"usage":{"total_tokens":3}}"#.to_string(), true),
            (&openai, format!(r#"{{"object":"list","data":[{{"index":0,"embedding":"{one}"}}]}}"#), true),
            (&openai, r#"{"data":[]}"#.to_string(), true),
            (&ollama, r#"{"model":"m","embeddings":[[0.1,0.2],[0.30000001192092896,1e-40]]}"#.to_string(), true),
            (&ollama, r#"{"embeddings":[]}"#.to_string(), true),
            // Not for the fast path: the general one decides.
            (&openai, r#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#.to_string(), false),
            (&openai, r#"{"data":[{"index":2,"embedding":[1]}]}"#.to_string(), false),
            (&openai, r#"{"data":[{"embedding":[1]}]}"#.to_string(), false),
            (&ollama, r#"{"embeddings":[0.1,0.2]}"#.to_string(), false),
            (&ollama, r#"{"embeddings":[[0.1,"x"]]}"#.to_string(), false),
            (&other, r#"{"result":{"vectors":[[1,2]]}}"#.to_string(), false),
        ] {
            let general = shape.extract(&serde_json::from_str(&answer).unwrap());
            match shape.extract_bytes(answer.as_bytes()) {
                Some(v) => {
                    assert!(fast, "{answer}");
                    let general = general.unwrap();
                    assert_eq!(v.len(), general.len(), "{answer}");
                    for (a, b) in v.iter().zip(&general) {
                        let same = a.len() == b.len()
                            && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{answer}: {a:?} != {b:?}");
                    }
                }
                None => assert!(!fast, "{answer} should be read from bytes"),
            }
        }
    }

    #[test]
    fn numbered_vectors_are_put_back_in_order() {
        let shape = ResponseShape::new("data[].embedding", Some("index")).unwrap();
        let answer = json!({"data": [
            {"index": 2, "embedding": [2]}, {"index": 0, "embedding": [0]}, {"index": 1, "embedding": [1]}
        ]});
        assert_eq!(
            shape.extract(&answer).unwrap(),
            vec![vec![0.0], vec![1.0], vec![2.0]]
        );
        for (answer, error) in [
            (
                json!({"data": [{"index": 0, "embedding": [0]}, {"index": 0, "embedding": [1]}]}),
                "two vectors have index 0",
            ),
            (
                json!({"data": [{"index": 5, "embedding": [0]}]}),
                "index 5 but there are 1",
            ),
            (json!({"data": [{"embedding": [0]}]}), "no numeric `index`"),
        ] {
            let e = shape.extract(&answer).unwrap_err();
            assert!(e.contains(error), "{e}");
        }
    }
}
