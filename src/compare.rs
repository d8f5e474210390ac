//! `pipe compare`: how much the models agree, and what each one costs.
//!
//! For a deterministic sample of movies that have a vector in every selected
//! model's database, each model's `k` nearest neighbours are found with the
//! front end's KNN query ([`crate::search::Database::knn`]); two models agree
//! on a movie as much as their neighbour lists overlap. Per model, the
//! database size, the bytes of its vectors and the latency of that query are
//! reported, so that a smaller model's savings can be weighed against how
//! differently it ranks.

use crate::manifest::Quantization;
use crate::search::{check_k, Database, SearchError};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Neighbours per query.
    pub k: usize,
    /// Movies in the sample (fewer if fewer have a vector in every model).
    pub sample: usize,
    /// Seed of the sample: same seed and data, same sample.
    pub seed: u64,
}

/// Cost and shape of one model's database.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStats {
    /// Model id.
    pub model: String,
    /// The database.
    pub database: String,
    /// Metric of its vector table.
    pub metric: String,
    /// Dimensions.
    pub dimensions: usize,
    /// Rows of the vector table.
    pub vectors: usize,
    /// `int8` or `bit` for a quantized table (absent for float32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<&'static str>,
    /// With rescoring: candidates fetched per neighbour (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversample: Option<usize>,
    /// Bytes of the stored vectors: rows × bytes per vector of the vec0
    /// table (float32: dims × 4, int8: dims, bit: dims / 8), plus
    /// rows × dims × 4 for the float vectors a rescored table keeps.
    pub vector_bytes: u64,
    /// Size of the database file.
    pub db_bytes: u64,
    /// Median KNN query latency over the sample, in milliseconds.
    pub latency_median_ms: f64,
    /// 95th percentile KNN query latency over the sample, in milliseconds.
    pub latency_p95_ms: f64,
}

/// The answer of `pipe compare`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareReport {
    /// Neighbours per query.
    pub k: usize,
    /// The seed of the sample.
    pub seed: u64,
    /// Movies with a vector in every selected model.
    pub common: usize,
    /// The sampled movie ids, in sample order.
    pub sample: Vec<String>,
    /// Models, in the order given.
    pub models: Vec<ModelStats>,
    /// `overlap[i][j]`: mean overlap@k of model i's and model j's neighbour
    /// lists over the sample, in [0, 1]; the diagonal is 1.
    pub overlap: Vec<Vec<f64>>,
    /// Each quantized model against its float original (a float32 model of
    /// the comparison built from the same embeddings), if there is one.
    pub recall: Vec<Recall>,
}

/// How well a quantized model finds what its float original finds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recall {
    /// The quantized model.
    pub model: String,
    /// Its float original.
    pub original: String,
    /// Mean recall@k over the sample: the share of the original's k
    /// neighbours the quantized model also returns.
    pub recall: f64,
    /// Database bytes saved (the original's size − this one's; negative
    /// when rescoring's float vectors make it larger).
    pub db_bytes_saved: i64,
    /// Bytes of the column KNN scans saved (original's float vectors −
    /// the quantized ones): what a query reads.
    pub scanned_bytes_saved: i64,
}

/// A deterministic sample of `n` ids: ordered by a keyed hash of the seed and
/// the id, so that it depends only on the seed and the set of ids (not on
/// their order, the platform or the Rust version).
pub fn sample_ids(ids: &[String], n: usize, seed: u64) -> Vec<String> {
    let mut keyed: Vec<([u8; 32], &String)> = ids
        .iter()
        .map(|id| {
            let mut h = blake3::Hasher::new();
            h.update(&seed.to_le_bytes());
            h.update(id.as_bytes());
            (*h.finalize().as_bytes(), id)
        })
        .collect();
    keyed.sort();
    keyed
        .into_iter()
        .take(n)
        .map(|(_, id)| id.clone())
        .collect()
}

/// |a ∩ b| / the longer list's length: the share of neighbours two models
/// agree on. Lists are k long unless a database has fewer than k other
/// vectors; two empty lists agree fully.
pub fn overlap(a: &[String], b: &[String]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let set: HashSet<&String> = a.iter().collect();
    b.iter().filter(|x| set.contains(x)).count() as f64 / longest as f64
}

/// |found ∩ truth| / |truth|: the share of the true neighbours found; an
/// empty truth is fully found.
pub fn recall(found: &[String], truth: &[String]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let set: HashSet<&String> = found.iter().collect();
    truth.iter().filter(|x| set.contains(x)).count() as f64 / truth.len() as f64
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Compare opened databases (one per model).
pub fn compare(dbs: &[Database], opts: &CompareOptions) -> Result<CompareReport, SearchError> {
    check_k(opts.k)?;
    if opts.sample == 0 {
        return Err(SearchError::Usage(
            "--sample 0: the sample needs at least one movie".into(),
        ));
    }
    if dbs.is_empty() {
        return Err(SearchError::Usage("no models to compare".into()));
    }
    // Movies every model can answer for.
    let mut common: Option<BTreeSet<String>> = None;
    for db in dbs {
        let ids: BTreeSet<String> = db.ids_with_vector()?.into_iter().collect();
        common = Some(match common {
            None => ids,
            Some(c) => c.intersection(&ids).cloned().collect(),
        });
    }
    let common: Vec<String> = common.unwrap_or_default().into_iter().collect();
    if common.is_empty() {
        return Err(SearchError::Usage(format!(
            "no movie has a vector in every selected model ({}); nothing to compare",
            dbs.iter()
                .map(|d| d.info.model.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let sample = sample_ids(&common, opts.sample, opts.seed);

    let mut lists: Vec<Vec<Vec<String>>> = Vec::with_capacity(dbs.len());
    let mut models = Vec::with_capacity(dbs.len());
    for db in dbs {
        // The query vectors are read before timing: only the KNN query is
        // measured, as the front end runs it.
        let mut queries = Vec::with_capacity(sample.len());
        for id in &sample {
            let (_, v) = db.vector_of(id)?;
            queries.push(v);
        }
        // One untimed query first: the first one pays for reading the
        // table's pages from disk and preparing the statement.
        if let Some(q) = queries.first() {
            db.knn(q, opts.k, Some(&sample[0]))?;
        }
        let mut millis = Vec::with_capacity(sample.len());
        let mut model_lists = Vec::with_capacity(sample.len());
        for (id, q) in sample.iter().zip(&queries) {
            let start = Instant::now();
            let found = db.knn(q, opts.k, Some(id))?;
            millis.push(start.elapsed().as_secs_f64() * 1000.0);
            model_lists.push(found.into_iter().map(|n| n.movie.movie_id).collect());
        }
        millis.sort_by(f64::total_cmp);
        let vectors = db.ids_with_vector()?.len();
        models.push(ModelStats {
            model: db.info.model.clone(),
            database: db.path.display().to_string(),
            metric: db.info.table.distance_name().to_string(),
            dimensions: db.info.table.dimensions as usize,
            vectors,
            quantization: db.info.table.kind().map(Quantization::as_str),
            oversample: db.info.table.oversample().map(|n| n as usize),
            vector_bytes: vectors as u64 * db.info.table.stored_bytes_per_vector(),
            db_bytes: db.file_size()?,
            latency_median_ms: quantile(&millis, 0.5),
            latency_p95_ms: quantile(&millis, 0.95),
        });
        lists.push(model_lists);
    }

    let n = dbs.len();
    let mut matrix = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            let sum: f64 = (0..sample.len())
                .map(|s| overlap(&lists[i][s], &lists[j][s]))
                .sum();
            matrix[i][j] = sum / sample.len() as f64;
        }
    }
    let mut recalls = Vec::new();
    for (i, db) in dbs.iter().enumerate() {
        if db.info.table.kind().is_none() {
            continue;
        }
        let Some(j) = original_of(dbs, i) else {
            continue;
        };
        let sum: f64 = (0..sample.len())
            .map(|s| recall(&lists[i][s], &lists[j][s]))
            .sum();
        let scanned =
            |m: &ModelStats, d: &Database| m.vectors as u64 * d.info.table.bytes_per_vector();
        recalls.push(Recall {
            model: db.info.model.clone(),
            original: dbs[j].info.model.clone(),
            recall: sum / sample.len() as f64,
            db_bytes_saved: models[j].db_bytes as i64 - models[i].db_bytes as i64,
            scanned_bytes_saved: scanned(&models[j], &dbs[j]) as i64
                - scanned(&models[i], db) as i64,
        });
    }
    Ok(CompareReport {
        k: opts.k,
        seed: opts.seed,
        common: common.len(),
        sample,
        models,
        overlap: matrix,
        recall: recalls,
    })
}

/// The float original of quantized `dbs[i]`: the first float32 database of
/// the comparison built from the same embeddings file (same blake3), with
/// the same dimensions and metric.
fn original_of(dbs: &[Database], i: usize) -> Option<usize> {
    let q = &dbs[i].info;
    let emb = q.embeddings_blake3.as_deref().filter(|h| !h.is_empty())?;
    dbs.iter().position(|d| {
        d.info.table.kind().is_none()
            && d.info.embeddings_blake3.as_deref() == Some(emb)
            && d.info.table.dimensions == q.table.dimensions
            && d.info.table.metric == q.table.metric
    })
}

/// `1.2 MB`, `640 KB`, `512 B` (powers of 1024).
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The human form of a [`CompareReport`]: the cost of each model, then the
/// overlap matrix.
pub fn render(report: &CompareReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} movies sampled (seed {}) of {} with a vector in every model; k = {}\n",
        report.sample.len(),
        report.seed,
        report.common,
        report.k
    );
    let w = report
        .models
        .iter()
        .map(|m| m.model.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "{:<w$}  {:<7}  {:>5}  {:>7}  {:>12}  {:>10}  {:>8}  {:>8}",
        "MODEL", "METRIC", "DIMS", "VECTORS", "VECTOR BYTES", "DB SIZE", "P50 MS", "P95 MS"
    );
    for m in &report.models {
        let _ = writeln!(
            out,
            "{:<w$}  {:<7}  {:>5}  {:>7}  {:>12}  {:>10}  {:>8.3}  {:>8.3}",
            m.model,
            m.metric,
            m.dimensions,
            m.vectors,
            human_bytes(m.vector_bytes),
            human_bytes(m.db_bytes),
            m.latency_median_ms,
            m.latency_p95_ms
        );
    }
    let _ = writeln!(
        out,
        "\nmean overlap@{} of the neighbour lists (1 = same neighbours, 0 = none shared)",
        report.k
    );
    let cw = w.max(6);
    let _ = write!(out, "{:<w$}", "");
    for m in &report.models {
        let _ = write!(out, "  {:>cw$}", m.model);
    }
    out.push('\n');
    for (i, m) in report.models.iter().enumerate() {
        let _ = write!(out, "{:<w$}", m.model);
        for v in &report.overlap[i] {
            let _ = write!(out, "  {v:>cw$.3}");
        }
        out.push('\n');
    }
    if !report.recall.is_empty() {
        let _ = writeln!(
            out,
            "\nquantized models against their float original (same embeddings)"
        );
        let _ = writeln!(
            out,
            "{:<w$}  {:<w$}  {:>9}  {:>12}  {:>13}",
            "MODEL",
            "ORIGINAL",
            format!("RECALL@{}", report.k),
            "DB SAVED",
            "SCANNED SAVED"
        );
        for r in &report.recall {
            let _ = writeln!(
                out,
                "{:<w$}  {:<w$}  {:>9.3}  {:>12}  {:>13}",
                r.model,
                r.original,
                r.recall,
                signed_bytes(r.db_bytes_saved),
                signed_bytes(r.scanned_bytes_saved)
            );
        }
    }
    out
}

/// [`human_bytes`] with a sign for negative values.
fn signed_bytes(b: i64) -> String {
    if b < 0 {
        format!("-{}", human_bytes(b.unsigned_abs()))
    } else {
        human_bytes(b as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_sample_depends_on_the_seed_and_the_set_only() {
        let a = ids(&["a", "b", "c", "d", "e", "f"]);
        let mut b = a.clone();
        b.reverse();
        assert_eq!(sample_ids(&a, 3, 7), sample_ids(&b, 3, 7));
        assert_eq!(sample_ids(&a, 10, 7).len(), 6);
        assert_ne!(sample_ids(&a, 6, 7), sample_ids(&a, 6, 8));
    }

    #[test]
    fn overlap_is_the_shared_share() {
        assert_eq!(overlap(&ids(&["a", "b"]), &ids(&["b", "a"])), 1.0);
        assert_eq!(overlap(&ids(&["a", "b"]), &ids(&["b", "c"])), 0.5);
        assert_eq!(overlap(&ids(&[]), &ids(&[])), 1.0);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 10.0);
        assert_eq!(quantile(&v, 0.95), 19.0);
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
    }
}
