//! `data/embeddings-<model>-movies.db`: one vector per movie, with structure.
//!
//! A movie's vector is the normalised, weighted sum of unit "centroids" for
//! its genres, its director and its decade, plus a little noise. Movies that
//! share a genre or a director therefore end up close together, and a KNN
//! search over the sample returns neighbours a person would call related.
//! Every model has its own centroids, so the same movie gets related but
//! different vectors in each model, as with real embedding models.

use super::movies::{Plan, World};
use super::names::{self, GENRES};
use super::rng::{fnv1a, Rng};
use super::time::{self, DAY, EMBEDDED_AT};
use super::{tag, SampleError, SampleModel};
use std::path::Path;

/// Weight of the main genre; further genres weigh less.
const W_GENRE: f32 = 1.0;
const W_GENRE_MORE: f32 = 0.6;
const W_DIRECTOR: f32 = 0.8;
const W_DECADE: f32 = 0.45;
/// Length of the noise vector (relative to unit centroids).
const NOISE: f32 = 0.45;

/// Fill `out` with a random unit vector drawn from `rng`.
fn unit(rng: &mut Rng, out: &mut [f32]) {
    for x in out.iter_mut() {
        *x = rng.gauss();
    }
    normalise(out);
}

/// Scale to unit length. A zero vector (practically impossible) becomes the
/// first basis vector rather than NaNs.
fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
        if let Some(first) = v.first_mut() {
            *first = 1.0;
        }
    }
}

/// Everything fixed for one model: its stream key and the small centroid
/// tables (genres, decades). Director centroids are computed per movie from
/// their own keyed stream instead of stored, so memory stays constant
/// whatever the number of directors.
struct Space {
    key: u64,
    dims: usize,
    genres: Vec<f32>,
    decades: Vec<f32>,
}

impl Space {
    fn new(seed: u64, model: &SampleModel) -> Self {
        let key = seed ^ fnv1a(&model.id).rotate_left(17);
        let dims = model.dimensions as usize;
        let table = |kind: u64, n: usize| {
            let mut t = vec![0.0f32; n * dims];
            for (i, chunk) in t.chunks_mut(dims).enumerate() {
                unit(&mut Rng::keyed(&[key, kind, i as u64]), chunk);
            }
            t
        };
        Space {
            key,
            dims,
            genres: table(tag::GENRE_CENTROID, GENRES.len()),
            decades: table(tag::DECADE_CENTROID, names::DECADES),
        }
    }

    /// Movie `i`'s vector (orphans use indexes past the movies).
    fn vector(&self, plan: &Plan, i: u64, out: &mut [f32], scratch: &mut [f32]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        let add = |out: &mut [f32], c: &[f32], w: f32| {
            out.iter_mut().zip(c).for_each(|(o, c)| *o += w * c);
        };
        for (k, &g) in plan.genres.iter().enumerate() {
            let w = if k == 0 { W_GENRE } else { W_GENRE_MORE };
            let g = g as usize;
            add(out, &self.genres[g * self.dims..(g + 1) * self.dims], w);
        }
        unit(
            &mut Rng::keyed(&[self.key, tag::DIRECTOR_CENTROID, plan.director]),
            scratch,
        );
        add(out, scratch, W_DIRECTOR);
        if let Some(y) = plan.year {
            let d = (((y - names::FIRST_YEAR) / 10).max(0) as usize).min(names::DECADES - 1);
            add(
                out,
                &self.decades[d * self.dims..(d + 1) * self.dims],
                W_DECADE,
            );
        }
        let mut noise = Rng::keyed(&[self.key, tag::NOISE, i]);
        let sigma = NOISE / (self.dims as f32).sqrt();
        out.iter_mut().for_each(|x| *x += sigma * noise.gauss());
        normalise(out);
    }
}

/// Write one model's embeddings database to `dest` (atomically) and return
/// how many vectors it holds. Vectors are computed and inserted one at a time
/// inside a single transaction, so memory does not grow with the sample.
pub(crate) fn write_embeddings(
    seed: u64,
    model_index: usize,
    model: &SampleModel,
    world: &World,
    dest: &Path,
) -> Result<usize, SampleError> {
    let sql_err = |source| SampleError::Sqlite {
        path: dest.to_path_buf(),
        source,
    };
    let tmp = crate::artifact::temp_path_beside(dest).map_err(|source| SampleError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    let space = Space::new(seed, model);
    let mut conn = crate::sqlite::open(tmp.path()).map_err(sql_err)?;
    // A crash leaves only the temporary file, which is discarded anyway.
    conn.pragma_update(None, "synchronous", "OFF")
        .map_err(sql_err)?;
    let tx = conn.transaction().map_err(sql_err)?;
    tx.execute_batch(
        "CREATE TABLE embeddings (movie_id TEXT PRIMARY KEY, embedding BLOB NOT NULL, created_at TEXT NOT NULL);
         CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT);",
    )
    .map_err(sql_err)?;
    tx.execute(
        "INSERT INTO config (key, value) VALUES ('embedding_dimensions', ?1), ('embedding_model', ?2)",
        rusqlite::params![model.dimensions.to_string(), model.id],
    )
    .map_err(sql_err)?;

    let mut count = 0;
    {
        let mut insert = tx
            .prepare("INSERT INTO embeddings (movie_id, embedding, created_at) VALUES (?1, ?2, ?3)")
            .map_err(sql_err)?;
        let mut v = vec![0.0f32; space.dims];
        let mut scratch = vec![0.0f32; space.dims];
        let mut blob = Vec::with_capacity(space.dims * 4);
        // Generators ran one movie after another: timestamps advance by tens
        // of milliseconds per row from a model-specific start.
        let mut clock = Rng::keyed(&[space.key, tag::CLOCK]);
        let mut now = EMBEDDED_AT + model_index as i64 * DAY + 8 * 3_600_000;
        let n = world.plans.len();
        let orphans = world.orphans.len();
        let mut next_orphan = 0;
        for (i, plan) in world.plans.iter().enumerate() {
            // A few movies are missing from one model only (its generator
            // skipped or failed on them).
            let skipped = Rng::keyed(&[space.key, tag::DROP, i as u64]).chance(5);
            let mut rows = Vec::with_capacity(2);
            if plan.vector && !skipped {
                rows.push((plan, i as u64));
            }
            // Stale rows are spread through the table, where they were
            // inserted before their movies were removed.
            if next_orphan < orphans && (i + 1) * (orphans + 1) >= (next_orphan + 1) * n {
                rows.push((&world.orphans[next_orphan], (n + next_orphan) as u64));
                next_orphan += 1;
            }
            for (plan, index) in rows {
                space.vector(plan, index, &mut v, &mut scratch);
                blob.clear();
                v.iter()
                    .for_each(|x| blob.extend_from_slice(&x.to_le_bytes()));
                now += clock.range(15, 80);
                insert
                    .execute(rusqlite::params![plan.id, blob, time::iso(now)])
                    .map_err(sql_err)?;
                count += 1;
            }
        }
    }
    tx.commit().map_err(sql_err)?;
    conn.close().map_err(|(_, e)| sql_err(e))?;
    tmp.persist(dest).map_err(|source| SampleError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    Ok(count)
}
