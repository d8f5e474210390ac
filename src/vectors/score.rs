//! What the number shown beside a neighbour means, which depends on the
//! metric.

use super::Metric;
use serde::Serialize;

/// What kind of number a result's `score` is, which depends on the metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreKind {
    /// Cosine similarity, 1 − cosine distance: higher is closer;
    /// `--min-score S` keeps similarity ≥ S.
    Similarity,
    /// The metric's distance (l2, l1): lower is closer; `--min-score S` keeps
    /// distance ≤ S.
    Distance,
}

impl ScoreKind {
    /// The score kind used for a metric.
    pub fn for_metric(metric: Metric) -> ScoreKind {
        match metric {
            Metric::Cosine => ScoreKind::Similarity,
            Metric::L2 | Metric::L1 => ScoreKind::Distance,
        }
    }

    /// The score of a vec0 distance.
    pub fn score(self, distance: f64) -> f64 {
        match self {
            ScoreKind::Similarity => 1.0 - distance,
            ScoreKind::Distance => distance,
        }
    }

    /// Whether a score passes `--min-score threshold`.
    pub fn passes(self, score: f64, threshold: f64) -> bool {
        match self {
            ScoreKind::Similarity => score >= threshold,
            ScoreKind::Distance => score <= threshold,
        }
    }

    /// A word for headers and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreKind::Similarity => "similarity",
            ScoreKind::Distance => "distance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_filter_in_the_metrics_direction() {
        assert!(ScoreKind::Similarity.passes(0.8, 0.7));
        assert!(!ScoreKind::Similarity.passes(0.6, 0.7));
        assert!(ScoreKind::Distance.passes(0.6, 0.7));
        assert!(!ScoreKind::Distance.passes(0.8, 0.7));
        assert!((ScoreKind::Similarity.score(0.25) - 0.75).abs() < 1e-12);
    }
}
