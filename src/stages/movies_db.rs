//! Placeholder until the movie stages land (branch `movies`).

use crate::manifest::Model;
use crate::stage::{StageContext, StageError, StageOutput};
use std::path::PathBuf;

/// What a movies-db target reads and writes.
#[derive(Clone, Debug)]
pub struct MoviesDbSpec {
    /// movies.json (project-relative).
    pub movies: PathBuf,
    /// collections.json (project-relative).
    pub collections: PathBuf,
    /// The model whose vectors go in the database.
    pub model: Model,
    /// The database (project-relative).
    pub db_path: PathBuf,
    /// Where the default model's database is also published.
    pub publish: Option<PathBuf>,
}

/// Build one model's database.
pub fn run(_ctx: &StageContext, _spec: &MoviesDbSpec) -> Result<StageOutput, StageError> {
    Err(StageError::new("movies-db is not available in this build"))
}
