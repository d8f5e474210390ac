//! Synthetic sample data in the exact shape of the real inputs: movie
//! records, collections and one embeddings database per model.
//!
//! The sample lets pipe be developed, tested and benchmarked at any scale
//! without the real (large, licensed) data. It is deterministic: the same
//! [`SampleSpec`] gives byte-identical files on any machine, because every
//! random choice comes from a self-contained PRNG keyed by the seed, no clock
//! is read and nothing is written in hash order.
//!
//! It is also realistic where it matters downstream: ids of all three kinds,
//! several sources per movie, quality-marked sources (and movies left with
//! none), legacy field spellings, `N/A` values, non-ASCII titles and names,
//! missing years, metadata and vectors; and vectors whose nearest neighbours
//! share genres and directors, so similarity search gives sensible answers.

mod collections;
mod movies;
mod names;
mod rng;
mod time;
mod vectors;

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Stream keys: each kind of random decision draws from its own stream.
mod tag {
    pub const MOVIE: u64 = 1;
    pub const DIRECTOR: u64 = 2;
    pub const TROUPE: u64 = 3;
    pub const ORPHAN: u64 = 4;
    pub const COLLECTION: u64 = 5;
    pub const CHANNEL: u64 = 6;
    pub const GENRE_CENTROID: u64 = 10;
    pub const DECADE_CENTROID: u64 = 11;
    pub const DIRECTOR_CENTROID: u64 = 12;
    pub const NOISE: u64 = 13;
    pub const DROP: u64 = 14;
    pub const CLOCK: u64 = 15;
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleSpec {
    /// Number of movies in movies.json (including the ~5% that the pipeline
    /// filters out because all their sources are quality-marked).
    pub movies: usize,
    /// Seed of every random choice; the same spec always gives the same bytes.
    pub seed: u64,
    /// Number of collections in collections.json.
    pub collections: usize,
    /// One embeddings database is written per model.
    pub models: Vec<SampleModel>,
}

impl SampleSpec {
    /// `movies` movies from `seed`, with 3 collections and the three models
    /// of the real project ([`SampleModel::defaults`]).
    pub fn new(movies: usize, seed: u64) -> Self {
        SampleSpec {
            movies,
            seed,
            collections: 3,
            models: SampleModel::defaults(),
        }
    }
}

/// An embedding model to generate vectors for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleModel {
    /// Model id, used in the file name `embeddings-<id>-movies.db`.
    pub id: String,
    /// Vector length (float32 values per vector).
    pub dimensions: u32,
}

impl SampleModel {
    /// A model with the given id and dimensions.
    pub fn new(id: impl Into<String>, dimensions: u32) -> Self {
        SampleModel {
            id: id.into(),
            dimensions,
        }
    }

    /// The models of the real project: nomic (768), bge-micro (384), potion (64).
    pub fn defaults() -> Vec<SampleModel> {
        vec![
            SampleModel::new("nomic", 768),
            SampleModel::new("bge-micro", 384),
            SampleModel::new("potion", 64),
        ]
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleReport {
    /// Movies in movies.json (kept and filtered alike).
    pub movies: usize,
    /// Rows in each model's embeddings database, by model id. Includes the
    /// few stale rows for movies no longer in movies.json.
    pub vectors: BTreeMap<String, usize>,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The spec cannot be generated (bad model id or dimensions).
    #[error("invalid sample spec: {0}")]
    InvalidSpec(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Serialising JSON failed (in practice: writing it failed).
    #[error("{}: {source}", path.display())]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// Writing an embeddings database failed.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The database concerned.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
}

/// sqlite-vec's limit on vector length.
const MAX_DIMENSIONS: u32 = 8192;

fn validate(spec: &SampleSpec) -> Result<(), SampleError> {
    let mut seen = std::collections::BTreeSet::new();
    for m in &spec.models {
        // The id becomes part of a file name: keep it to a safe alphabet.
        let safe = !m.id.is_empty()
            && m.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !m.id.starts_with('.');
        if !safe {
            return Err(SampleError::InvalidSpec(format!(
                "model id {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                m.id
            )));
        }
        if !seen.insert(m.id.as_str()) {
            return Err(SampleError::InvalidSpec(format!(
                "model id {:?} appears twice",
                m.id
            )));
        }
        if m.dimensions == 0 || m.dimensions > MAX_DIMENSIONS {
            return Err(SampleError::InvalidSpec(format!(
                "model {:?}: dimensions must be between 1 and {MAX_DIMENSIONS}, not {}",
                m.id, m.dimensions
            )));
        }
    }
    Ok(())
}

/// Writes `<dir>/data/movies.json`, `<dir>/data/collections.json` and
/// `<dir>/data/embeddings-<id>-movies.db` for each model.
///
/// Every file is written to a temporary file and renamed into place, so an
/// interrupted run never leaves a partial file. Movies are streamed to disk
/// as they are generated and each model's vectors are computed row by row,
/// so memory stays small (a few dozen bytes per movie) at any size. The
/// models' databases are written in parallel.
pub fn generate(spec: &SampleSpec, dir: &Path) -> Result<SampleReport, SampleError> {
    validate(spec)?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|source| SampleError::Io {
        path: data.clone(),
        source,
    })?;
    let movies_path = data.join("movies.json");
    let world = movies::write_movies(spec.seed, spec.movies, &movies_path)?;
    let collections_path = data.join("collections.json");
    collections::write_collections(spec.seed, spec.collections, &world, &collections_path)?;

    let databases: Vec<(String, PathBuf, usize)> = spec
        .models
        .par_iter()
        .enumerate()
        .map(|(k, model)| {
            let path = data.join(format!("embeddings-{}-movies.db", model.id));
            let n = vectors::write_embeddings(spec.seed, k, model, &world, &path)?;
            Ok((model.id.clone(), path, n))
        })
        .collect::<Result<_, SampleError>>()?;

    let mut files = vec![movies_path, collections_path];
    let mut vectors = BTreeMap::new();
    for (id, path, n) in databases {
        files.push(path);
        vectors.insert(id, n);
    }
    Ok(SampleReport {
        movies: spec.movies,
        vectors,
        files,
    })
}

#[cfg(test)]
mod tests;
