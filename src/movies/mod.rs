//! The movie domain: the records of movies.json and collections.json, and
//! what the movie stages derive from them.
//!
//! * [`catalog`]: loading and validating the inputs, quality-mark filtering.
//! * [`entries`]: movies.json as entries with digests, loaded once per
//!   process and checked incrementally across builds.
//! * [`related`]: the relatedMovies scoring.
//! * [`render`]: the per-movie JSON document.
//! * [`language`]: the language normaliser of `movies.language`.
//! * [`ids`]: movie ids as safe file names.
//! * [`js`]: the JavaScript semantics the reference outputs depend on.
//! * [`time`]: reproducible timestamps.

pub mod catalog;
pub mod entries;
pub mod ids;
pub mod js;
pub mod language;
pub mod people;
pub mod related;
pub mod render;
pub mod time;
