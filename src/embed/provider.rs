//! The contract between the embeddings stage and a backend that turns texts
//! into vectors.

use std::time::Duration;

/// A backend that embeds texts: an HTTP service (Ollama, an OpenAI-compatible
/// server, any REST API), a local process, or a model run in process.
///
/// A provider only speaks its protocol for one batch. Batching, parallelism,
/// retries and validation (count, dimensions, finite values) are done once,
/// for every provider, in [`crate::embed::batch`].
pub trait Provider: Send + Sync {
    /// How messages name this provider, without secrets:
    /// `ollama model "nomic-embed-text" at http://127.0.0.1:11434`.
    fn describe(&self) -> String;

    /// The largest number of texts one call of [`Provider::embed_batch`]
    /// accepts (the model file's `batch`, capped by the protocol's limit).
    fn max_batch(&self) -> usize;

    /// How many batches may be in flight at once (1 for a provider that is
    /// itself one sequential process or that already uses every core).
    fn max_parallel(&self) -> usize {
        1
    }

    /// Embed one batch: one vector per text, in the order of `texts`.
    /// A provider whose protocol answers out of order (by index or id) puts
    /// the vectors back in order before returning.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ProviderError>;
}

/// Whether a failed batch is worth sending again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// 429, 5xx, a timeout, a refused or reset connection: try again after
    /// a backoff (or after `retry_after` when the server said so).
    Transient {
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Anything else (401, 400, a malformed answer, a process that exited):
    /// sending the same batch again would fail the same way.
    Permanent,
}

/// A failed batch: what went wrong, said so a person can act on it (the
/// provider, the URL without credentials, the HTTP status, the start of the
/// body), and whether to retry.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// Retry or not.
    pub kind: ProviderErrorKind,
    /// The message; never contains an API key or other secret.
    pub message: String,
}

impl ProviderError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ProviderError {
            kind: ProviderErrorKind::Transient { retry_after },
            message: message.into(),
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(message: impl Into<String>) -> Self {
        ProviderError {
            kind: ProviderErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// Whether the batch may be sent again.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Transient { .. })
    }
}
