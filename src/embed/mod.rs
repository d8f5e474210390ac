//! Making embeddings: the provider trait every embedding backend implements,
//! and the shared machinery around it (batching, parallel requests, retries
//! with backoff, response validation) so that each provider module only
//! speaks its own protocol.
//!
//! * [`provider`]: the [`Provider`] trait and [`ProviderError`].
//! * [`batch`]: splits texts into batches, keeps requests in flight up to a
//!   limit, retries what is worth retrying and validates every vector before
//!   handing it on.
//! * [`providers`]: one module per backend (ollama, openai, rest, command,
//!   model2vec).

pub mod batch;
pub mod provider;
pub mod providers;

pub use provider::{Provider, ProviderError, ProviderErrorKind};
