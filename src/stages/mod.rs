//! What each kind of target does.
//!
//! * [`movie_json`]: one JSON file per movie.
//! * [`movies_db`]: one SQLite database (with a sqlite-vec table) per model.

pub mod movie_json;
pub mod movies_db;
