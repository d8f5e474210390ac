//! Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): several
//! rankings of the same kind of items become one.
//!
//! An item's fused score is the sum, over the rankings it appears in, of
//! `1 / (k + rank)`, with ranks counted from 1. Only ranks are used, never
//! the rankings' own scores, which is what makes it fit rankings whose scores
//! cannot be compared: a cosine similarity, an l2 distance and a hamming
//! distance fuse the same way. `k` damps the weight of the very first ranks;
//! [`RRF_K`] = 60 is the paper's value and the usual default. An item
//! missing from a ranking gets nothing from it.
//!
//! The order is total and reproducible: higher fused score first; equal
//! scores (the same ranks in other rankings) by the item's own order. The
//! terms of a sum are added smallest first, so that two items with the same
//! ranks in a different order get bit-for-bit the same score.

/// The `k` of reciprocal rank fusion used by `pipe search --models`.
pub const RRF_K: f64 = 60.0;

/// One item of a fused ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused<T> {
    /// The item.
    pub item: T,
    /// Σ 1 / (k + rank) over the rankings that have it.
    pub score: f64,
    /// Its rank (1-based) in each input ranking, in the order of the
    /// rankings; `None` where a ranking does not have it.
    pub ranks: Vec<Option<usize>>,
}

/// Fuse `rankings` (each best first) with constant `k`. An item listed
/// twice in one ranking counts once, at its better rank. Every item of every
/// ranking is in the result; cut it to the length wanted.
pub fn reciprocal_rank_fusion<T: Ord + Clone>(rankings: &[Vec<T>], k: f64) -> Vec<Fused<T>> {
    let mut ranks: std::collections::BTreeMap<T, Vec<Option<usize>>> =
        std::collections::BTreeMap::new();
    for (list, ranking) in rankings.iter().enumerate() {
        for (i, item) in ranking.iter().enumerate() {
            let slot = &mut ranks
                .entry(item.clone())
                .or_insert_with(|| vec![None; rankings.len()])[list];
            if slot.is_none() {
                *slot = Some(i + 1);
            }
        }
    }
    let mut fused: Vec<Fused<T>> = ranks
        .into_iter()
        .map(|(item, ranks)| Fused {
            score: score(&ranks, k),
            item,
            ranks,
        })
        .collect();
    // The map gave the items in their order; a stable sort by score keeps
    // that order among equal scores.
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused
}

/// Σ 1 / (k + rank), the smallest terms (the largest ranks) first, so that
/// the sum depends only on the set of ranks, not on their order.
fn score(ranks: &[Option<usize>], k: f64) -> f64 {
    let mut present: Vec<usize> = ranks.iter().flatten().copied().collect();
    present.sort_unstable_by(|a, b| b.cmp(a));
    present.iter().map(|&r| 1.0 / (k + r as f64)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(fused: &[Fused<&'static str>]) -> Vec<&'static str> {
        fused.iter().map(|f| f.item).collect()
    }

    /// An item second in both rankings beats one first in a single ranking:
    /// 2/62 > 1/61. Equal scores fall back to the items' order.
    #[test]
    fn agreement_beats_a_single_first_place() {
        let fused = reciprocal_rank_fusion(&[vec!["x", "y", "z"], vec!["w", "y", "v"]], RRF_K);
        assert_eq!(order(&fused), ["y", "w", "x", "v", "z"]);
        assert_eq!(fused[0].ranks, [Some(2), Some(2)]);
        assert_eq!(fused[1].ranks, [None, Some(1)]);
        assert_eq!(fused[4].ranks, [Some(3), None]);
        assert!((fused[0].score - 2.0 / 62.0).abs() < 1e-15);
        assert!((fused[1].score - 1.0 / 61.0).abs() < 1e-15);
        assert_eq!(fused[1].score, fused[2].score);
    }

    /// A constructed case worked by hand (k = 60):
    /// c: 1/63 + 1/64 + 1/61 = 0.047891, a: 1/61 + 1/62 = 0.032522,
    /// b: 1/62 + 1/61 (the same: a tie, broken by the items' order),
    /// e: 1/62 + 1/63 = 0.032002, d: 1/64 = 0.015625.
    #[test]
    fn scores_and_order_of_a_constructed_case() {
        let fused = reciprocal_rank_fusion(
            &[
                vec!["a", "b", "c", "d"],
                vec!["b", "e", "e", "c"],
                vec!["c", "a", "e"],
            ],
            RRF_K,
        );
        // e is listed twice in the second ranking: it counts once, at 2.
        assert_eq!(order(&fused), ["c", "a", "b", "e", "d"]);
        let by = |item: &str| fused.iter().find(|f| f.item == item).unwrap().clone();
        assert_eq!(by("c").ranks, [Some(3), Some(4), Some(1)]);
        assert_eq!(by("e").ranks, [None, Some(2), Some(3)]);
        assert_eq!(by("d").ranks, [Some(4), None, None]);
        assert!((by("c").score - (1.0 / 63.0 + 1.0 / 64.0 + 1.0 / 61.0)).abs() < 1e-15);
        assert!((by("a").score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-15);
        assert_eq!(by("a").score.to_bits(), by("b").score.to_bits());
        assert!((by("e").score - 0.032002).abs() < 1e-6);
    }

    /// The same ranks in another order give exactly the same score, so the
    /// tie is broken by the items, not by rounding.
    #[test]
    fn equal_ranks_in_any_order_tie_exactly() {
        let fused = reciprocal_rank_fusion(
            &[
                vec!["q", "p", "r"],
                vec!["r", "q", "p"],
                vec!["p", "r", "q"],
            ],
            RRF_K,
        );
        // Each of p, q, r is ranked 1, 2 and 3, in three different orders.
        assert_eq!(fused[0].score.to_bits(), fused[1].score.to_bits());
        assert_eq!(fused[1].score.to_bits(), fused[2].score.to_bits());
        assert_eq!(order(&fused), ["p", "q", "r"]);
    }

    /// A small k lets first places dominate; a large one rewards agreement.
    #[test]
    fn k_weighs_first_places_against_agreement() {
        let rankings = [vec!["top", "a", "both"], vec!["b", "c", "both"]];
        let small = reciprocal_rank_fusion(&rankings, 0.0);
        assert_eq!(order(&small)[..3], ["b", "top", "both"]); // 1, 1, 1/3 + 1/3
        let large = reciprocal_rank_fusion(&rankings, RRF_K);
        assert_eq!(large[0].item, "both"); // 2/63 > 1/61
    }

    #[test]
    fn nothing_to_fuse_is_nothing() {
        assert!(reciprocal_rank_fusion::<u32>(&[], RRF_K).is_empty());
        assert!(reciprocal_rank_fusion::<u32>(&[vec![], vec![]], RRF_K).is_empty());
    }
}
