//! What each kind of target does.

pub mod command;
pub mod movie_json;
pub mod movies_db;
