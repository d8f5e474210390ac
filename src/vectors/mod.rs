//! Vector tables: the one domain-free description of how a set of vectors
//! is stored in sqlite-vec, used by every stage that writes one (movies-db's
//! `vec_movies`, the records databases' tables) and by everything that
//! queries one (`pipe search`, `pipe compare`).
//!
//! A [`VectorTable`] is a table name, a key column, dimensions, a metric and
//! an optional quantization (int8 or bit, with or without rescoring from the
//! float vectors kept in a second table). From it come the vec0 DDL, the
//! insert statements (quantizing through sqlite-vec itself, so the stored
//! bytes are exactly what a query quantized the same way compares against),
//! the KNN queries with and without rescoring, the bytes a vector takes and
//! the inverse of quantization. `check` validates vectors before they are
//! stored or searched for; [`ScoreKind`] turns a distance into the score
//! users see.
//!
//! Nothing here knows what the vectors are of: callers name their items
//! ("movie", "record") for messages and join their own tables for display.

mod check;
mod score;
mod table;

pub use crate::manifest::model::{Metric, Quantization, Quantized};
pub use check::{ItemSource, VectorProblem};
pub use score::ScoreKind;
pub use table::{Display, VectorTable, VEC0_K_MAX};

/// float32 little-endian bytes, as vec0 stores and `MATCH` takes them.
pub fn to_le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`to_le_bytes`] (a trailing partial float is ignored;
/// callers check the length first).
pub fn from_le_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
