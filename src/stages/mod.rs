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
//! for movie-json and records-json alike; `recycle` keeps a replaced
//! database's memory warm for the next build that writes it.

pub mod command;
pub mod embeddings;
pub mod file_set;
pub mod movie_json;
pub mod movies_db;
pub(crate) mod part_cache;
pub mod records_db;
pub mod records_json;
pub(crate) mod recycle;
pub(crate) mod vector_part;
pub(crate) mod vector_source;

use crate::graph::TargetSpec;
use crate::stage::StageContext;
use std::path::PathBuf;

/// The inputs of a target's head start, if its stage has one: work that
/// only these inputs decide, so it can be done while the target's
/// dependencies are still being built (the movies-db stage's catalog part
/// needs movies.json and collections.json, not the embeddings file its
/// embeddings target is writing).
pub fn head_start_inputs(spec: &TargetSpec) -> Option<Vec<PathBuf>> {
    match spec {
        TargetSpec::MoviesDb(s) => Some(vec![s.movies.clone(), s.collections.clone()]),
        _ => None,
    }
}

/// Do a target's head start (see [`head_start_inputs`]) with a context
/// holding only those inputs. What it makes is kept where the target's own
/// run finds it (a process slot and the part cache); an error is left for
/// that run to report, with its usual message.
pub fn head_start(ctx: &StageContext, spec: &TargetSpec) {
    if let TargetSpec::MoviesDb(s) = spec {
        movies_db::head_start(ctx, s);
    }
}
