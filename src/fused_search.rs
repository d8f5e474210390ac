//! `pipe search --models a,b`: one search per model, each model's `k`
//! nearest fused into one ranking by reciprocal rank fusion
//! ([`crate::fusion`], k = [`RRF_K`]), with each result's rank in every
//! model shown beside the fused one.
//!
//! Only ranks are fused, so models whose scores cannot be compared (a cosine
//! similarity, an l2 distance, a bit table's hamming distance) fuse as well
//! as any. `--min-score` applies to each model's own score before fusing.

use crate::fusion::{reciprocal_rank_fusion, RRF_K};
use crate::search::{results_table, Column, Movie, SearchReport};
use serde::Serialize;
use std::collections::BTreeMap;

/// One result of a fused search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FusedNeighbour {
    /// The record, as the first model that found it shows it.
    #[serde(flatten)]
    pub movie: Movie,
    /// Σ 1 / (60 + rank) over the models that rank it.
    pub score: f64,
    /// Its rank (1-based) in each model's `k` nearest; `null` where a model
    /// does not rank it.
    pub ranks: BTreeMap<String, Option<usize>>,
    /// Each model's own score for it, where the model ranks it.
    pub scores: BTreeMap<String, f64>,
}

/// The answer of `pipe search --models`, printed as a table or as JSON.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FusedReport {
    /// How the rankings were fused: `reciprocal-rank`.
    pub fusion: &'static str,
    /// The `k` of reciprocal rank fusion (60).
    pub rrf_k: f64,
    /// Results asked for (and neighbours asked of each model).
    pub k: usize,
    /// `--min-score`, if given (applied to each model's own score).
    pub min_score: Option<f64>,
    /// Each model's own search, in the order the models were given.
    pub models: Vec<SearchReport>,
    /// The fused ranking, best first, at most `k`.
    pub results: Vec<FusedNeighbour>,
}

/// Fuse the searches of several models (one report per model, all with the
/// same `k`) into the `k` best by reciprocal rank fusion.
pub fn fuse(reports: Vec<SearchReport>, k: usize, min_score: Option<f64>) -> FusedReport {
    let rankings: Vec<Vec<&str>> = reports
        .iter()
        .map(|r| {
            r.results
                .iter()
                .map(|n| n.movie.movie_id.as_str())
                .collect()
        })
        .collect();
    let fused = reciprocal_rank_fusion(&rankings, RRF_K);
    let results = fused
        .into_iter()
        .take(k)
        .map(|f| {
            let mut movie = None;
            let mut ranks = BTreeMap::new();
            let mut scores = BTreeMap::new();
            for (report, rank) in reports.iter().zip(&f.ranks) {
                ranks.insert(report.model.clone(), *rank);
                if let Some(r) = rank {
                    let n = &report.results[r - 1];
                    scores.insert(report.model.clone(), n.score);
                    movie.get_or_insert_with(|| n.movie.clone());
                }
            }
            FusedNeighbour {
                // Every fused item came from some ranking.
                movie: movie.unwrap_or_else(|| Movie {
                    movie_id: f.item.to_string(),
                    title: String::new(),
                    year: None,
                    title_column: None,
                }),
                score: f.score,
                ranks,
                scores,
            }
        })
        .collect();
    FusedReport {
        fusion: "reciprocal-rank",
        rrf_k: RRF_K,
        k,
        min_score,
        models: reports,
        results,
    }
}

/// The human form of a [`FusedReport`]: what was fused, then a table with
/// the fused score and each model's rank.
pub fn render(report: &FusedReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let what = match report.models.first() {
        Some(m) => m.query.nearest_to(),
        None => "nothing".to_string(),
    };
    let _ = writeln!(
        out,
        "{} nearest to {what}, fused over {} models by reciprocal rank fusion \
         (score = sum of 1/({} + rank))",
        report.k,
        report.models.len(),
        report.rrf_k
    );
    for m in &report.models {
        let storage = m
            .quantization
            .map(|q| format!(", {q} vectors"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}: {} dims, metric {}{storage}; its score: {}; {} results",
            m.model,
            m.dimensions,
            m.metric,
            m.score_name(),
            m.results.len()
        );
    }
    if let Some(t) = report.min_score {
        let _ = writeln!(out, "only each model's results with --min-score {t}");
    }
    let _ = writeln!(
        out,
        "rank columns: the result's rank among each model's {} nearest (- = not among them)",
        report.k
    );
    let movies: Vec<&Movie> = report.results.iter().map(|n| &n.movie).collect();
    let mut columns = vec![Column {
        heading: "RRF".to_string(),
        width: 7,
        cells: report
            .results
            .iter()
            .map(|n| format!("{:.5}", n.score))
            .collect(),
    }];
    columns.extend(report.models.iter().map(|m| {
        Column {
            heading: m.model.clone(),
            width: m.model.chars().count().max(4),
            cells: report
                .results
                .iter()
                .map(|n| match n.ranks.get(&m.model).copied().flatten() {
                    Some(r) => r.to_string(),
                    None => "-".to_string(),
                })
                .collect(),
        }
    }));
    results_table(&mut out, &movies, &columns);
    out
}
