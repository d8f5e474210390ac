//! Placeholder until the movie stages land (branch `movies`).

use crate::stage::{StageContext, StageError, StageOutput};
use std::path::PathBuf;

/// What a movie-json target reads and writes.
#[derive(Clone, Debug)]
pub struct MovieJsonSpec {
    /// movies.json (project-relative).
    pub movies: PathBuf,
    /// collections.json (project-relative).
    pub collections: PathBuf,
    /// Directory of the per-movie files (project-relative).
    pub out_dir: PathBuf,
    /// File name template with `{movieId}`.
    pub file_template: String,
}

/// Build the per-movie JSON files.
pub fn run(_ctx: &StageContext, _spec: &MovieJsonSpec) -> Result<StageOutput, StageError> {
    Err(StageError::new("movie-json is not available in this build"))
}
