//! `relatedMovies`: for each movie, the 12 other movies that share the most
//! with it, scored exactly as the reference does:
//!
//! * +10 per shared genre, +15 for the same director, +5 per shared actor
//!   (genres and actors split on commas, trimmed, lower-cased; the director
//!   string is only lower-cased, as a whole). Repeated entries count
//!   repeatedly, as they did in the reference's lists.
//! * only movies met through one of those are candidates; then
//!   +2 × (5 − |Δyear|) when both years are known and within 5, and +1 if
//!   the candidate has metadata.
//! * ties keep first-met order: genres first, then director, then actors,
//!   each posting list in catalogue order.
//!
//! At 100,000 movies a popular genre lists tens of thousands of movies, so
//! the hot loop uses interned integer keys, posting lists of movie indices
//! and a dense per-thread score array (no hashing of strings per candidate),
//! and an insertion-based selection of the top 12.

use crate::movies::catalog::{text, Movie};
use crate::movies::js;
use std::collections::HashMap;

/// How many related movies each movie lists.
pub const TOP: usize = 12;

/// Posting lists for genres, directors and actors, over movie indices.
pub struct RelatedIndex {
    /// Per movie: interned genre keys (with repeats, in order).
    genres: Vec<Vec<u32>>,
    /// Per movie: interned director key.
    director: Vec<Option<u32>>,
    /// Per movie: interned actor keys (with repeats, in order).
    actors: Vec<Vec<u32>>,
    /// Per movie: year when truthy.
    year: Vec<Option<i64>>,
    /// Per movie: has metadata.
    has_meta: Vec<bool>,
    genre_posts: Vec<Vec<u32>>,
    director_posts: Vec<Vec<u32>>,
    actor_posts: Vec<Vec<u32>>,
}

/// Per-thread working memory for [`RelatedIndex::top`], reused across movies.
pub struct Scratch {
    score: Vec<i32>,
    touched: Vec<u32>,
    /// The best candidates so far: (score, movie), best first.
    ranked: Vec<(i32, u32)>,
}

impl Scratch {
    /// Working memory for a catalogue of `n` movies.
    pub fn new(n: usize) -> Self {
        Scratch {
            score: vec![0; n],
            touched: Vec::new(),
            ranked: Vec::with_capacity(TOP + 1),
        }
    }
}

thread_local! {
    /// One scratch per thread, reused across calls and runs.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new(0));
}

impl Scratch {
    /// Run `f` with this thread's scratch, sized for `n` movies. Scores are
    /// all zero between calls of [`RelatedIndex::top`], so reuse is safe.
    pub fn with<R>(n: usize, f: impl FnOnce(&mut Scratch) -> R) -> R {
        SCRATCH.with(|cell| {
            let mut s = cell.borrow_mut();
            if s.score.len() < n {
                s.score.resize(n, 0);
            }
            f(&mut s)
        })
    }
}

/// Interns lower-cased keys into dense integers.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, key: String, posts: &mut Vec<Vec<u32>>) -> u32 {
        let next = self.ids.len() as u32;
        let id = *self.ids.entry(key).or_insert(next);
        if id == next {
            posts.push(Vec::new());
        }
        id
    }
}

/// `s.split(',').map(x => x.trim().toLowerCase()).filter(Boolean)`.
fn split_lower(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',')
        .map(|p| js::trim(p).to_lowercase())
        .filter(|p| !p.is_empty())
}

impl RelatedIndex {
    /// Build the posting lists for `movies` (in catalogue order).
    pub fn build(movies: &[Movie]) -> Self {
        let n = movies.len();
        let mut idx = RelatedIndex {
            genres: Vec::with_capacity(n),
            director: Vec::with_capacity(n),
            actors: Vec::with_capacity(n),
            year: Vec::with_capacity(n),
            has_meta: Vec::with_capacity(n),
            genre_posts: Vec::new(),
            director_posts: Vec::new(),
            actor_posts: Vec::new(),
        };
        let (mut gi, mut di, mut ai) = (
            Interner::default(),
            Interner::default(),
            Interner::default(),
        );
        for (i, m) in movies.iter().enumerate() {
            let i = i as u32;
            let meta = m.metadata.as_ref();
            let genres: Vec<u32> = meta
                .and_then(|m| text(&m.Genre))
                .map(|g| {
                    split_lower(g)
                        .map(|k| gi.id(k, &mut idx.genre_posts))
                        .collect()
                })
                .unwrap_or_default();
            for &g in &genres {
                idx.genre_posts[g as usize].push(i);
            }
            let actors: Vec<u32> = meta
                .and_then(|m| text(&m.Actors))
                .map(|a| {
                    split_lower(a)
                        .map(|k| ai.id(k, &mut idx.actor_posts))
                        .collect()
                })
                .unwrap_or_default();
            for &a in &actors {
                idx.actor_posts[a as usize].push(i);
            }
            let director = meta
                .and_then(|m| text(&m.Director))
                .filter(|d| !d.is_empty())
                .map(|d| di.id(d.to_lowercase(), &mut idx.director_posts));
            if let Some(d) = director {
                idx.director_posts[d as usize].push(i);
            }
            idx.genres.push(genres);
            idx.actors.push(actors);
            idx.director.push(director);
            idx.year.push(m.year_num());
            idx.has_meta.push(m.has_metadata());
        }
        idx
    }

    /// Number of movies indexed.
    pub fn len(&self) -> usize {
        self.year.len()
    }

    /// Whether no movie is indexed.
    pub fn is_empty(&self) -> bool {
        self.year.is_empty()
    }

    /// Indices of the (up to) 12 movies related to movie `me`, best first.
    pub fn top(&self, me: usize, s: &mut Scratch) -> Vec<u32> {
        let me32 = me as u32;
        // Every increment is positive, so a zero score means "not met yet":
        // that is how first-met order is recorded without a hash map.
        let add = |posts: &[u32], points: i32, s: &mut Scratch| {
            for &c in posts {
                if c == me32 {
                    continue;
                }
                let slot = &mut s.score[c as usize];
                if *slot == 0 {
                    s.touched.push(c);
                }
                *slot += points;
            }
        };
        for &g in &self.genres[me] {
            add(&self.genre_posts[g as usize], 10, s);
        }
        if let Some(d) = self.director[me] {
            add(&self.director_posts[d as usize], 15, s);
        }
        for &a in &self.actors[me] {
            add(&self.actor_posts[a as usize], 5, s);
        }

        // Final scores in first-met order; keep a stable top 12 by
        // insertion: a later candidate only enters with a strictly higher
        // score than the current 12th, which is exactly what a stable sort
        // by score followed by slice(0, 12) keeps. Most candidates are
        // rejected by one comparison.
        let my_year = self.year[me];
        s.ranked.clear();
        for &c in &s.touched {
            let ci = c as usize;
            let mut score = s.score[ci];
            s.score[ci] = 0;
            if let (Some(a), Some(b)) = (my_year, self.year[ci]) {
                let diff = (a - b).abs();
                if diff <= 5 {
                    score += ((5 - diff) * 2) as i32;
                }
            }
            if self.has_meta[ci] {
                score += 1;
            }
            if s.ranked.len() == TOP && score <= s.ranked[TOP - 1].0 {
                continue;
            }
            let at = s.ranked.partition_point(|r| r.0 >= score);
            if s.ranked.len() == TOP {
                s.ranked.pop();
            }
            s.ranked.insert(at, (score, c));
        }
        s.touched.clear();
        s.ranked.iter().map(|r| r.1).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn movie(id: &str, year: Option<i64>, genre: &str, director: &str, actors: &str) -> Movie {
        serde_json::from_value(json!({
            "movieId": id, "title": id, "year": year, "sources": [],
            "metadata": {"Genre": genre, "Director": director, "Actors": actors}
        }))
        .unwrap()
    }

    /// The reference algorithm, written plainly with string maps.
    fn naive(movies: &[Movie], me: usize) -> Vec<u32> {
        let idx = RelatedIndex::build(movies);
        let mut order: Vec<u32> = Vec::new();
        let mut score: HashMap<u32, i32> = HashMap::new();
        let mut bump = |c: u32, p: i32| {
            if c as usize == me {
                return;
            }
            if !score.contains_key(&c) {
                order.push(c);
            }
            *score.entry(c).or_default() += p;
        };
        for g in &idx.genres[me] {
            for (c, gs) in idx.genres.iter().enumerate() {
                for h in gs {
                    if h == g {
                        bump(c as u32, 10);
                    }
                }
            }
        }
        if let Some(d) = idx.director[me] {
            for (c, e) in idx.director.iter().enumerate() {
                if *e == Some(d) {
                    bump(c as u32, 15);
                }
            }
        }
        for a in &idx.actors[me] {
            for (c, acts) in idx.actors.iter().enumerate() {
                for b in acts {
                    if b == a {
                        bump(c as u32, 5);
                    }
                }
            }
        }
        let mut fin: Vec<(u32, i32)> = order
            .iter()
            .map(|&c| {
                let mut s = score[&c];
                if let (Some(a), Some(b)) = (idx.year[me], idx.year[c as usize]) {
                    if (a - b).abs() <= 5 {
                        s += ((5 - (a - b).abs()) * 2) as i32;
                    }
                }
                if idx.has_meta[c as usize] {
                    s += 1;
                }
                (c, s)
            })
            .collect();
        fin.sort_by_key(|r| std::cmp::Reverse(r.1)); // stable, like V8
        fin.into_iter().take(TOP).map(|r| r.0).collect()
    }

    #[test]
    fn matches_plain_algorithm_including_ties() {
        let genres = [
            "Drama",
            "Comedy",
            "Drama, Comedy",
            "Horror, drama",
            "Drama, Drama",
            "N/A",
        ];
        let directors = ["A", "B", "a", "", "N/A"];
        let actors = ["X, Y", "y", "Z, X", "", "X,X"];
        let movies: Vec<Movie> = (0..60)
            .map(|i| {
                movie(
                    &format!("m{i}"),
                    if i % 7 == 0 {
                        None
                    } else {
                        Some(1950 + (i % 9))
                    },
                    genres[i as usize % genres.len()],
                    directors[i as usize % directors.len()],
                    actors[i as usize % actors.len()],
                )
            })
            .collect();
        let idx = RelatedIndex::build(&movies);
        let mut s = Scratch::new(movies.len());
        for me in 0..movies.len() {
            assert_eq!(idx.top(me, &mut s), naive(&movies, me), "movie {me}");
        }
    }
}
