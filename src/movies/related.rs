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
//! Scoring every genre-sharing candidate is quadratic: at 30,000 movies a
//! drama meets 7,000 others, 10⁸ score updates in all. Instead, movies are
//! grouped by *genre class* (their exact multiset of genres) and, within a
//! class, by year. Against a given movie every member of a class earns the
//! same genre points, and every member of a (class, year) bucket the same
//! year points, so a bucket's best possible score is known before it is
//! opened. Buckets are visited best first and skipped once they cannot beat
//! the current 12th (ties broken by first-met position, which within a
//! bucket is catalogue order). Director and actor matches are few; they are
//! scored exactly from posting lists first and skipped in the class scan.

use std::collections::HashMap;

/// How many related movies each movie lists.
pub const TOP: usize = 12;

/// "No such id" in the compact per-movie tables.
const NONE: u32 = u32::MAX;

/// Flattened lists: `items[starts[i]..starts[i + 1]]` is list `i` (one
/// allocation instead of one per movie).
#[derive(Default)]
struct Lists {
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl Lists {
    fn new() -> Self {
        Lists {
            starts: vec![0],
            items: Vec::new(),
        }
    }
    fn push(&mut self, list: impl IntoIterator<Item = u32>) {
        self.items.extend(list);
        self.starts.push(self.items.len() as u32);
    }
    fn get(&self, i: usize) -> &[u32] {
        &self.items[self.starts[i] as usize..self.starts[i + 1] as usize]
    }
}

/// The movies of one genre class, ordered by (year, catalogue index), with
/// the range of each year.
struct Class {
    /// Members sorted by (year rank, index); members without a year last.
    members: Vec<u32>,
    /// Distinct year ranks present, ascending, with where each starts in
    /// `members` (the next entry, or `none_start`, is where it ends).
    years: Vec<(u32, u32)>,
    /// Where the members without a year start.
    none_start: u32,
}

impl Class {
    /// Members with year rank `rank`, in catalogue order.
    fn year_range(&self, rank: u32) -> &[u32] {
        match self.years.binary_search_by_key(&rank, |y| y.0) {
            Ok(k) => {
                let end = self.years.get(k + 1).map_or(self.none_start, |next| next.1);
                &self.members[self.years[k].1 as usize..end as usize]
            }
            Err(_) => &[],
        }
    }
}

/// What scoring needs of one movie, as given to [`IndexBuilder::push`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RelatedKeys<'a> {
    /// `metadata.Genre` if a string.
    pub genre: Option<&'a str>,
    /// `metadata.Director` if a string.
    pub director: Option<&'a str>,
    /// `metadata.Actors` if a string.
    pub actors: Option<&'a str>,
    /// The year when truthy.
    pub year: Option<i64>,
    /// Whether the movie has metadata.
    pub has_meta: bool,
}

/// Collects movies (in catalogue order) into a [`RelatedIndex`], interning
/// genre, director and actor names into small integers as it goes.
#[derive(Default)]
pub struct IndexBuilder {
    genre_ids: HashMap<String, u32>,
    director_ids: HashMap<String, u32>,
    actor_ids: HashMap<String, u32>,
    genres: Lists,
    actors: Lists,
    director: Vec<u32>,
    year: Vec<Option<i64>>,
    has_meta: Vec<bool>,
}

fn intern(ids: &mut HashMap<String, u32>, key: &str) -> u32 {
    if let Some(&id) = ids.get(key) {
        return id;
    }
    let id = ids.len() as u32;
    ids.insert(key.to_string(), id);
    id
}

/// `s.split(',').map(x => x.trim().toLowerCase()).filter(Boolean)`.
pub fn split_lower(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',')
        .map(|p| crate::movies::js::trim(p).to_lowercase())
        .filter(|p| !p.is_empty())
}

impl IndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        IndexBuilder {
            genres: Lists::new(),
            actors: Lists::new(),
            ..IndexBuilder::default()
        }
    }

    /// Add the next movie in catalogue order.
    pub fn push(&mut self, k: RelatedKeys) {
        let genres: Vec<u32> = k
            .genre
            .map(|g| {
                split_lower(g)
                    .map(|x| intern(&mut self.genre_ids, &x))
                    .collect()
            })
            .unwrap_or_default();
        self.genres.push(genres);
        let actors: Vec<u32> = k
            .actors
            .map(|a| {
                split_lower(a)
                    .map(|x| intern(&mut self.actor_ids, &x))
                    .collect()
            })
            .unwrap_or_default();
        self.actors.push(actors);
        let director = k
            .director
            .filter(|d| !d.is_empty())
            .map_or(NONE, |d| intern(&mut self.director_ids, &d.to_lowercase()));
        self.director.push(director);
        self.year.push(k.year);
        self.has_meta.push(k.has_meta);
    }

    /// Build the posting lists and genre classes.
    pub fn finish(self) -> RelatedIndex {
        let n = self.year.len();
        let mut director_posts = vec![Vec::new(); self.director_ids.len()];
        let mut actor_posts = vec![Vec::new(); self.actor_ids.len()];
        for i in 0..n {
            if self.director[i] != NONE {
                director_posts[self.director[i] as usize].push(i as u32);
            }
            // Once per occurrence: a repeated actor counts repeatedly.
            for &a in self.actors.get(i) {
                actor_posts[a as usize].push(i as u32);
            }
        }

        // Year ranks: dense integers in year order, so a class can look a
        // year up without hashing and nearby years are rank ± something.
        let mut distinct: Vec<i64> = self.year.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let rank_of = |y: Option<i64>| -> u32 {
            y.map_or(NONE, |y| {
                distinct.binary_search(&y).map_or(NONE, |r| r as u32)
            })
        };
        let year_rank: Vec<u32> = self.year.iter().map(|&y| rank_of(y)).collect();

        // Genre classes: movies with the same sorted multiset of genres.
        let mut class_ids: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut class_genres = Lists::new();
        let mut class_of = vec![NONE; n];
        let mut members: Vec<Vec<u32>> = Vec::new();
        for (i, class) in class_of.iter_mut().enumerate() {
            let mut key = self.genres.get(i).to_vec();
            if key.is_empty() {
                continue;
            }
            key.sort_unstable();
            let next = class_ids.len() as u32;
            let id = *class_ids.entry(key.clone()).or_insert(next);
            if id == next {
                class_genres.push(key);
                members.push(Vec::new());
            }
            members[id as usize].push(i as u32);
            *class = id;
        }
        drop(class_ids);
        let mut genre_classes: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.genre_ids.len()];
        for (k, _) in members.iter().enumerate() {
            let gs = class_genres.get(k);
            let mut j = 0;
            while j < gs.len() {
                let run = gs[j..].iter().take_while(|&&g| g == gs[j]).count();
                genre_classes[gs[j] as usize].push((k as u32, run as u32));
                j += run;
            }
        }
        let classes: Vec<Class> = members
            .into_iter()
            .map(|mut m| {
                // Stable: catalogue order is kept within a year.
                m.sort_by_key(|&i| year_rank[i as usize]);
                let mut years = Vec::new();
                let mut none_start = m.len() as u32;
                for (p, &i) in m.iter().enumerate() {
                    let r = year_rank[i as usize];
                    if r == NONE {
                        none_start = p as u32;
                        break;
                    }
                    if years.last().is_none_or(|&(last, _)| last != r) {
                        years.push((r, p as u32));
                    }
                }
                Class {
                    members: m,
                    years,
                    none_start,
                }
            })
            .collect();

        RelatedIndex {
            genres: self.genres,
            actors: self.actors,
            director: self.director,
            year: self.year,
            distinct_years: distinct,
            has_meta: self.has_meta,
            class_of,
            classes,
            genre_classes,
            director_posts,
            actor_posts,
        }
    }
}

/// Posting lists and genre classes over movie indices (catalogue order).
pub struct RelatedIndex {
    /// Per movie: interned genre keys (with repeats, in order).
    genres: Lists,
    /// Per movie: interned actor keys (with repeats, in order).
    actors: Lists,
    /// Per movie: interned director key, or `NONE`.
    director: Vec<u32>,
    /// Per movie: year when truthy.
    year: Vec<Option<i64>>,
    /// Distinct years, ascending.
    distinct_years: Vec<i64>,
    /// Per movie: has metadata.
    has_meta: Vec<bool>,
    /// Per movie: its genre class, or `NONE` without genres.
    class_of: Vec<u32>,
    classes: Vec<Class>,
    /// Per genre: the classes containing it, with how many times.
    genre_classes: Vec<Vec<(u32, u32)>>,
    director_posts: Vec<Vec<u32>>,
    actor_posts: Vec<Vec<u32>>,
}

/// Per-thread working memory for [`RelatedIndex::top`], reused across
/// movies; every array is back to zero between calls.
#[derive(Default)]
pub struct Scratch {
    /// Director and actor points per movie (0: not met that way).
    score: Vec<i32>,
    /// Movies met through the director or an actor, in first-met order,
    /// with their first-met key (see [`key`]).
    touched: Vec<(u32, u64)>,
    /// Genre points per class against the current movie.
    class_points: Vec<i32>,
    /// Index (in the current movie's genre list) of the first genre each
    /// touched class contains.
    class_first: Vec<u32>,
    /// Classes sharing a genre with the current movie.
    class_touched: Vec<u32>,
    /// The best candidates so far: (score, first-met key, movie), best first.
    ranked: Vec<(i32, u64, u32)>,
}

thread_local! {
    /// One scratch per thread, reused across calls and runs.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl Scratch {
    /// Working memory for an index.
    pub fn new(index: &RelatedIndex) -> Self {
        let mut s = Scratch::default();
        s.fit(index);
        s
    }

    fn fit(&mut self, index: &RelatedIndex) {
        if self.score.len() < index.len() {
            self.score.resize(index.len(), 0);
        }
        if self.class_points.len() < index.classes.len() {
            self.class_points.resize(index.classes.len(), 0);
            self.class_first.resize(index.classes.len(), 0);
        }
    }

    /// Run `f` with this thread's scratch, sized for `index`.
    pub fn with<R>(index: &RelatedIndex, f: impl FnOnce(&mut Scratch) -> R) -> R {
        SCRATCH.with(|cell| {
            let mut s = cell.borrow_mut();
            s.fit(index);
            f(&mut s)
        })
    }

    /// Offer a candidate to the top 12 (better: higher score, then earlier
    /// first-met key).
    #[inline]
    fn offer(&mut self, score: i32, key: u64, c: u32) {
        let r = &mut self.ranked;
        if r.len() == TOP {
            let last = r[TOP - 1];
            if score < last.0 || (score == last.0 && key > last.1) {
                return;
            }
            r.pop();
        }
        let at = r.partition_point(|x| x.0 > score || (x.0 == score && x.1 < key));
        r.insert(at, (score, key, c));
    }

    /// Whether a candidate with at most `bound` points and key at least
    /// `key` can still enter the top 12.
    #[inline]
    fn can_enter(&self, bound: i32, key: u64) -> bool {
        match self.ranked.get(TOP - 1) {
            Some(last) => bound > last.0 || (bound == last.0 && key < last.1),
            None => true,
        }
    }
}

/// First-met position as one sortable integer: the phase (0 genres, 1
/// director, 2 actors), the index of the genre or actor in the current
/// movie's list through which the candidate was first met, and the
/// candidate's catalogue index.
#[inline]
fn key(phase: u64, list_index: u32, c: u32) -> u64 {
    (phase << 62) | ((list_index as u64 & 0x3fff_ffff) << 32) | c as u64
}

impl RelatedIndex {
    /// Build the index of `keys` (in catalogue order).
    pub fn build<'a>(keys: impl IntoIterator<Item = RelatedKeys<'a>>) -> Self {
        let mut b = IndexBuilder::new();
        for k in keys {
            b.push(k);
        }
        b.finish()
    }

    /// Number of movies indexed.
    pub fn len(&self) -> usize {
        self.year.len()
    }

    /// Whether no movie is indexed.
    pub fn is_empty(&self) -> bool {
        self.year.is_empty()
    }

    /// Year points of candidate `c` against year `mine`.
    #[inline]
    fn year_points(mine: Option<i64>, theirs: Option<i64>) -> i32 {
        match (mine, theirs) {
            (Some(a), Some(b)) => {
                let diff = a.abs_diff(b);
                if diff <= 5 {
                    ((5 - diff) * 2) as i32
                } else {
                    0
                }
            }
            _ => 0,
        }
    }

    /// Indices of the (up to) 12 movies related to movie `me`, best first.
    pub fn top(&self, me: usize, s: &mut Scratch) -> Vec<u32> {
        s.fit(self);
        let me32 = me as u32;
        let my_year = self.year[me];
        s.ranked.clear();

        // Genre points of every class sharing a genre with me.
        for (i, &g) in self.genres.get(me).iter().enumerate() {
            for &(k, times) in &self.genre_classes[g as usize] {
                let ku = k as usize;
                if s.class_points[ku] == 0 {
                    s.class_touched.push(k);
                    s.class_first[ku] = i as u32;
                }
                s.class_points[ku] += 10 * times as i32;
            }
        }

        // Director and actor matches: few, scored exactly. A zero score
        // means "not met yet" (every increment is positive).
        let d = self.director[me];
        if d != NONE {
            for &c in &self.director_posts[d as usize] {
                if c != me32 {
                    if s.score[c as usize] == 0 {
                        s.touched.push((c, key(1, 0, c)));
                    }
                    s.score[c as usize] += 15;
                }
            }
        }
        for (i, &a) in self.actors.get(me).iter().enumerate() {
            for &c in &self.actor_posts[a as usize] {
                if c != me32 {
                    if s.score[c as usize] == 0 {
                        s.touched.push((c, key(2, i as u32, c)));
                    }
                    s.score[c as usize] += 5;
                }
            }
        }
        for t in 0..s.touched.len() {
            let (c, mut k) = s.touched[t];
            let ci = c as usize;
            let class = self.class_of[ci];
            let genre = if class == NONE {
                0
            } else {
                s.class_points[class as usize]
            };
            if genre > 0 {
                k = key(0, s.class_first[class as usize], c);
            }
            let mut score = genre + s.score[ci] + Self::year_points(my_year, self.year[ci]);
            if self.has_meta[ci] {
                score += 1;
            }
            s.offer(score, k, c);
        }

        // Movies met through genres only: visit classes by genre points,
        // best first, and within a class the years nearest mine first.
        let mut classes = std::mem::take(&mut s.class_touched);
        classes.sort_unstable_by_key(|&k| std::cmp::Reverse(s.class_points[k as usize]));
        // Ranks of the years within 5 of mine, with their year points.
        let mut near: Vec<(u32, i32)> = Vec::with_capacity(11);
        if let Some(y) = my_year {
            let lo = self
                .distinct_years
                .partition_point(|&x| x < y.saturating_sub(5));
            for (r, &x) in self.distinct_years.iter().enumerate().skip(lo) {
                let points = Self::year_points(Some(y), Some(x));
                if x > y && points == 0 {
                    break;
                }
                // Five years apart earns nothing: those are in the rest.
                if points > 0 {
                    near.push((r as u32, points));
                }
            }
            near.sort_by_key(|&(_, p)| std::cmp::Reverse(p));
        }
        for &k in &classes {
            let ku = k as usize;
            let genre = s.class_points[ku];
            if !s.can_enter(genre + 11, 0) {
                break; // classes are in descending points: none can
            }
            let first = s.class_first[ku];
            let class = &self.classes[ku];
            for &(rank, points) in &near {
                let base = genre + points;
                if !s.can_enter(base + 1, 0) {
                    break; // `near` is in descending points
                }
                for &c in class.year_range(rank) {
                    let kc = key(0, first, c);
                    if !s.can_enter(base + 1, kc) {
                        break; // catalogue order: later ones have later keys
                    }
                    if c == me32 || s.score[c as usize] != 0 {
                        continue;
                    }
                    s.offer(base + i32::from(self.has_meta[c as usize]), kc, c);
                }
            }
            // Everyone else in the class gets no year points.
            if !s.can_enter(genre + 1, 0) {
                continue;
            }
            for &c in &class.members {
                let ci = c as usize;
                if c == me32 || s.score[ci] != 0 {
                    continue;
                }
                if Self::year_points(my_year, self.year[ci]) > 0 {
                    continue; // a near year: already offered
                }
                s.offer(genre + i32::from(self.has_meta[ci]), key(0, first, c), c);
            }
        }

        // Leave the scratch all zero for the next call.
        for &k in &classes {
            s.class_points[k as usize] = 0;
        }
        classes.clear();
        s.class_touched = classes;
        for &(c, _) in &s.touched {
            s.score[c as usize] = 0;
        }
        s.touched.clear();
        s.ranked.iter().map(|r| r.2).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct M {
        genre: String,
        director: String,
        actors: String,
        year: Option<i64>,
        meta: bool,
    }

    fn keys(ms: &[M]) -> impl Iterator<Item = RelatedKeys<'_>> {
        ms.iter().map(|m| RelatedKeys {
            genre: m.meta.then_some(m.genre.as_str()),
            director: m.meta.then_some(m.director.as_str()),
            actors: m.meta.then_some(m.actors.as_str()),
            year: m.year,
            has_meta: m.meta,
        })
    }

    /// The reference algorithm, written plainly with strings and a stable sort.
    fn naive(ms: &[M], me: usize) -> Vec<u32> {
        let split = |m: &M, s: &str| -> Vec<String> {
            if m.meta {
                split_lower(s).collect()
            } else {
                Vec::new()
            }
        };
        let dir = |m: &M| (m.meta && !m.director.is_empty()).then(|| m.director.to_lowercase());
        let mut order: Vec<u32> = Vec::new();
        let mut score: HashMap<u32, i32> = HashMap::new();
        let mut bump = |c: usize, p: i32| {
            if c == me {
                return;
            }
            if !score.contains_key(&(c as u32)) {
                order.push(c as u32);
            }
            *score.entry(c as u32).or_default() += p;
        };
        for g in split(&ms[me], &ms[me].genre) {
            for (c, m) in ms.iter().enumerate() {
                for h in split(m, &m.genre) {
                    if h == g {
                        bump(c, 10);
                    }
                }
            }
        }
        if let Some(d) = dir(&ms[me]) {
            for (c, m) in ms.iter().enumerate() {
                if dir(m).as_ref() == Some(&d) {
                    bump(c, 15);
                }
            }
        }
        for a in split(&ms[me], &ms[me].actors) {
            for (c, m) in ms.iter().enumerate() {
                for b in split(m, &m.actors) {
                    if b == a {
                        bump(c, 5);
                    }
                }
            }
        }
        let mut fin: Vec<(u32, i32)> = order
            .iter()
            .map(|&c| {
                let m = &ms[c as usize];
                let mut s = score[&c] + RelatedIndex::year_points(ms[me].year, m.year);
                if m.meta {
                    s += 1;
                }
                (c, s)
            })
            .collect();
        fin.sort_by_key(|r| std::cmp::Reverse(r.1)); // stable, like V8
        fin.into_iter().take(TOP).map(|r| r.0).collect()
    }

    fn check(ms: &[M]) {
        let idx = RelatedIndex::build(keys(ms));
        let mut s = Scratch::new(&idx);
        for me in 0..ms.len() {
            assert_eq!(idx.top(me, &mut s), naive(ms, me), "movie {me}");
        }
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
        let ms: Vec<M> = (0..60)
            .map(|i: usize| M {
                genre: genres[i % genres.len()].into(),
                director: directors[i % directors.len()].into(),
                actors: actors[i % actors.len()].into(),
                year: if i.is_multiple_of(7) {
                    None
                } else {
                    Some(1950 + (i as i64 % 9))
                },
                meta: i % 11 != 3,
            })
            .collect();
        check(&ms);
    }

    #[test]
    fn pruned_search_matches_plain_algorithm_on_many_movies() {
        // Enough movies that pruning kicks in, with many exact ties.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let g = ["drama", "comedy", "horror", "war", "noir", "Drama "];
        let ms: Vec<M> = (0..700)
            .map(|_| {
                let ng = 1 + next(3) as usize;
                let genre: Vec<&str> = (0..ng).map(|_| g[next(6) as usize]).collect();
                let actors: Vec<String> = (0..next(4)).map(|_| format!("a{}", next(300))).collect();
                M {
                    genre: genre.join(", "),
                    director: format!("d{}", next(200)),
                    actors: actors.join(","),
                    year: (next(10) != 0).then(|| 1940 + next(30) as i64),
                    meta: next(8) != 0,
                }
            })
            .collect();
        check(&ms);
    }
}
