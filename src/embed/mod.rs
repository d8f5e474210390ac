//! Making embeddings: the provider trait every embedding backend implements,
//! and the shared machinery around it (batching, parallel requests, retries
//! with backoff, response validation) so that each provider module only
//! speaks its own protocol.
//!
//! * [`provider`]: the [`Provider`] trait and [`ProviderError`].
//! * [`batch`]: splits texts into batches, keeps requests in flight up to a
//!   limit, retries what is worth retrying and validates every vector before
//!   handing it on.
//! * [`http`]: the one HTTP layer of the HTTP providers (timeouts, errors
//!   that say whether to retry, secrets kept out of messages).
//! * [`providers`]: one module per backend (ollama, openai, rest, command,
//!   model2vec).
//! * [`config`]: a model file's `[embed]` table.
//! * [`query`]: a search query embedded by its model's provider.
//! * [`text`]: the text a movie is embedded as.
//! * [`cache`]: the vectors obtained so far, per record, under `.pipe/`.
//! * [`share`]: vectors other machines embedded (the remote cache), asked
//!   for before a text is sent.

pub mod batch;
pub mod cache;
pub mod config;
pub mod http;
pub mod provider;
pub mod providers;
pub mod query;
pub mod share;
pub mod text;

pub use provider::{Provider, ProviderError, ProviderErrorKind};
