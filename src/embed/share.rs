//! Vectors shared between machines, by record key: the embeddings stage
//! asks for the keys its local cache lacks before it sends a text to a
//! provider, and offers what it has afterwards. The remote cache
//! ([`crate::remote`]) is the one implementation; the stage only knows
//! this trait.
//!
//! A *space* is everything a key is made of besides the text (the provider,
//! its model name, every vector-changing option): keys of one space are
//! stored together, so a machine fetches only vectors it can use.

use super::cache::Key;

/// A store of vectors that other machines embedded.
pub trait SharedVectors: Send + Sync {
    /// Vectors for as many of `keys` (in `space`, of `dims` dimensions) as
    /// the store has, each checked (length, finite values) before it is
    /// returned. Never fails: what cannot be had is simply not returned
    /// (the store reports its own problems).
    fn fetch(&self, space: &str, dims: usize, keys: &[Key]) -> Vec<(Key, Vec<f32>)>;

    /// Offer the vectors of a build (`all`: every record key of the output,
    /// `get` reads one from the local cache) so that the store keeps what it
    /// lacks. May return before the upload is done; never fails the build.
    fn offer(&self, space: &str, dims: usize, all: &[Key], get: &dyn Fn(&Key) -> Option<Vec<f32>>);
}

/// The space of a set of key options (see [`super::cache::key`]).
pub fn space(options: &std::collections::BTreeMap<String, String>) -> String {
    // The key of the empty text under these options names the space: it is
    // a function of the options alone, computed the same way the keys are.
    let k = super::cache::key(options, "");
    k.iter().map(|b| format!("{b:02x}")).collect()
}
