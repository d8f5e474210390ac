//! Shared batching, parallel requests, retries with backoff and jitter, and
//! validation of every vector, for every provider.
//!
//! (Skeleton: filled in by the embeddings work.)
