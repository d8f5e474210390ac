//! What each kind of target does.
//!
//! * [`movie_json`]: one JSON file per movie.
//! * [`movies_db`]: one SQLite database (with a sqlite-vec table) per model.
//! * [`command`]: a user's shell command with declared inputs and outputs.
//! * [`embeddings`]: one model's embeddings file, made by its provider.
//! * [`records_db`]: a database of any records, one vector table per model
//!   (one database per model, or one for all).
//! * [`records_json`]: one JSON file per record of a records target.
//!
//! [`file_set`] writes a directory of files, only those whose bytes change,
//! for movie-json and records-json alike.

pub mod command;
pub mod embeddings;
pub mod file_set;
pub mod movie_json;
pub mod movies_db;
pub(crate) mod part_cache;
pub mod records_db;
pub mod records_json;
pub(crate) mod vector_part;
pub(crate) mod vector_source;
