//! The movie records: `data/movies.json`, written as it is generated.
//!
//! Each movie comes from its own keyed random stream, so the file is streamed
//! to disk one entry at a time; only a compact [`Plan`] per movie (what the
//! vectors and collections need) stays in memory.

use super::names::{self, GENRES};
use super::rng::Rng;
use super::time::{self, DAY, Y2024, Y2026};
use super::{tag, SampleError};
use serde::ser::{SerializeMap, Serializer as _};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;

/// How many distinct people fill each role. Sized so that, as in the real
/// catalogue, a 30,000-movie sample has a few thousand directors, writers and
/// actors, and many of them are credited on several movies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pools {
    /// Number of directors.
    pub directors: u64,
    /// Number of writers.
    pub writers: u64,
    /// Number of actors.
    pub actors: u64,
}

impl Pools {
    fn for_movies(n: usize) -> Self {
        let n = n as u64;
        Pools {
            directors: (n / 8).max(8),
            writers: (n / 6).max(8),
            actors: (n / 4).max(16),
        }
    }

    /// Director number `d`'s name.
    pub(crate) fn director(&self, d: u64) -> String {
        names::person(d)
    }

    /// Writers start a third of the way into the directors, so some
    /// directors write their own films (and are credited as both).
    fn writer(&self, w: u64) -> String {
        names::person(self.directors / 3 + w)
    }

    /// Actors start halfway into the directors: some directors act.
    fn actor(&self, a: u64) -> String {
        names::person(self.directors / 2 + a)
    }
}

/// What the rest of the generator needs to know about one movie.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The movieId.
    pub id: String,
    /// Indexes into [`GENRES`], first the main one. Every movie has them,
    /// even without OMDB metadata: they shape its vector either way.
    pub genres: Vec<u8>,
    /// The (main) director, an index into the director pool.
    pub director: u64,
    /// Release year, when the movie has one.
    pub year: Option<i64>,
    /// Whether the embedding generators produced a vector for it.
    pub vector: bool,
}

/// Everything generated about the movies that later steps need.
pub(crate) struct World {
    /// The movies, in movies.json order.
    pub plans: Vec<Plan>,
    /// Movies that were embedded once and later removed from movies.json:
    /// real embeddings databases carry such stale rows.
    pub orphans: Vec<Plan>,
    /// People pools.
    pub pools: Pools,
}

/// A director's habits: main genre and the year their career starts.
/// Derived from the director's own stream, so all their films agree.
fn director_traits(seed: u64, d: u64) -> (u8, i64) {
    let mut rng = Rng::keyed(&[seed, tag::DIRECTOR, d]);
    let genre = rng.weighted(&names::genre_weights()) as u8;
    // Careers cluster in the 1930s–1960s, where most public-domain films are.
    let decade = rng.weighted(&[6, 10, 14, 16, 16, 14, 10, 7, 5, 4, 3]) as i64;
    (genre, names::FIRST_YEAR + decade * 10 + rng.range(0, 9))
}

/// One of the few actors director `d` keeps casting.
fn troupe_actor(seed: u64, pools: &Pools, d: u64, k: u64) -> u64 {
    Rng::keyed(&[seed, tag::TROUPE, d, k]).skewed(pools.actors)
}

/// The hidden attributes of movie `i`: genres, director, year.
fn plan_core(rng: &mut Rng, seed: u64, pools: &Pools) -> (Vec<u8>, u64, Option<i64>) {
    let director = rng.skewed(pools.directors);
    let (main, career) = director_traits(seed, director);
    let weights = names::genre_weights();
    let first = if rng.chance(650) {
        main
    } else {
        rng.weighted(&weights) as u8
    };
    let mut genres = vec![first];
    let count = 1 + rng.weighted(&[40, 40, 20]);
    let mut attempts = 0;
    while genres.len() < count && attempts < 10 {
        attempts += 1;
        let g = rng.weighted(&weights) as u8;
        if !genres.contains(&g) {
            genres.push(g);
        }
    }
    let year = if rng.chance(40) {
        None
    } else {
        // Drawn within the career *and* the sample's range, rather than
        // clamped, so recent years do not pile up on the last one.
        Some(career + rng.range(0, 20.min(names::LAST_YEAR - career)))
    };
    (genres, director, year)
}

/// A YouTube video id (11 characters), unique within the sample.
fn youtube_id(rng: &mut Rng, used: &mut HashSet<String>) -> String {
    loop {
        let id: String = (0..11)
            .map(|_| char::from(names::YT_ALPHABET[rng.below(64) as usize]))
            .collect();
        // The set only answers membership; it never decides output order.
        if used.insert(id.clone()) {
            return id;
        }
    }
}

fn title(rng: &mut Rng) -> String {
    let mut noun = || *rng.pick(&names::TITLE_NOUNS);
    let (n1, n2) = (noun(), noun());
    let adj = *rng.pick(&names::ADJECTIVES);
    match rng.weighted(&[14, 16, 14, 10, 5, 4, 4, 5, 4, 2]) {
        0 => n1.to_string(),
        1 => format!("The {adj} {n1}"),
        2 => format!("{adj} {n1}"),
        3 => format!("{n1} of the {n2}"),
        4 => format!("The {n1}'s {n2}"),
        5 => format!("{n1} & {n2}"),
        6 => format!("{adj} {n1} {}", rng.pick(&["2", "II", "Returns"])),
        7 => format!("{} {n1}", rng.pick(&["Le", "La", "Die", "El", "Il"])),
        8 => format!("{n1}: The {adj} {n2}"),
        _ => format!("The \"{n1}\" Affair"),
    }
}

/// An archive.org identifier: the title's letters and digits plus a number.
/// An underscore separates them when the title ends in a digit, so that
/// "Moon 2" + 3 and "Moon" + 23 cannot both become `Moon23`.
fn archive_ident(title: &str, n: u64) -> String {
    let mut s: String = title.chars().filter(|c| c.is_alphanumeric()).collect();
    if s.ends_with(|c: char| c.is_ascii_digit()) {
        s.push('_');
    }
    s.push_str(&n.to_string());
    s
}

/// Join the names of a list of people, OMDB style.
fn join(names: &[String]) -> String {
    names.join(", ")
}

fn pick_distinct(rng: &mut Rng, n: usize, mut draw: impl FnMut(&mut Rng) -> u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n * 3 {
        if out.len() == n {
            break;
        }
        let x = draw(rng);
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn weighted_names(rng: &mut Rng, table: &[(&str, u32)], max: usize) -> String {
    let weights: Vec<u32> = table.iter().map(|&(_, w)| w).collect();
    let n = 1 + rng.weighted(&[75, 20, 5][..max.min(3)]);
    let idx = pick_distinct(rng, n, |r| r.weighted(&weights) as u64);
    idx.iter()
        .map(|&i| table[i as usize].0)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `imdbRating` as JSON: a whole rating is written `7`, not `7.0`, the way
/// JavaScript's JSON.stringify writes the real file.
fn rating(tenths: i64) -> Value {
    if tenths % 10 == 0 {
        json!(tenths / 10)
    } else {
        json!(tenths as f64 / 10.0)
    }
}

/// `imdbVotes`: spread over six orders of magnitude, integers only.
fn votes(rng: &mut Rng) -> i64 {
    let magnitude = rng.weighted(&[5, 20, 30, 25, 15, 5]) as u32;
    let lo = 10i64.pow(magnitude);
    rng.range(lo, lo * 10 - 1)
}

fn metadata(rng: &mut Rng, seed: u64, pools: &Pools, plan: &Plan, runtime: i64, id: &str) -> Value {
    let mut m = Map::new();
    let na = |rng: &mut Rng, per_mille: u64, value: String| -> Value {
        if rng.chance(per_mille) {
            json!("N/A")
        } else {
            json!(value)
        }
    };
    let extra = rng.chance(200);
    m.insert("Rated".into(), json!(rng.pick(&names::RATED)));
    if extra {
        let released = match plan.year {
            Some(y) => time::omdb_date(y, rng.range(1, 12) as u32, rng.range(1, 28) as u32),
            None => "N/A".into(),
        };
        m.insert("Released".into(), json!(released));
    }
    let runtime_text = format!("{runtime} min");
    m.insert("Runtime".into(), na(rng, 30, runtime_text));
    let genre = join(
        &plan
            .genres
            .iter()
            .map(|&g| GENRES[g as usize].0.to_string())
            .collect::<Vec<_>>(),
    );
    m.insert("Genre".into(), na(rng, 15, genre));

    let mut directors = vec![pools.director(plan.director)];
    if rng.chance(60) {
        directors.push(pools.director(rng.skewed(pools.directors)));
    }
    m.insert("Director".into(), na(rng, 20, join(&directors)));

    let n_writers = 1 + rng.weighted(&[50, 35, 15]);
    let mut writers: Vec<String> = pick_distinct(rng, n_writers, |r| r.skewed(pools.writers))
        .into_iter()
        .map(|w| pools.writer(w))
        .collect();
    if rng.chance(150) {
        // Auteurs: the director wrote it too.
        writers.insert(0, pools.director(plan.director));
    }
    if rng.chance(150) {
        // OMDB annotates writers with their part.
        let roles = ["(screenplay)", "(novel)", "(story)", "(play)"];
        for w in &mut writers {
            w.push(' ');
            let role = *rng.pick(&roles);
            w.push_str(role);
        }
    }
    m.insert("Writer".into(), na(rng, 50, join(&writers)));

    let n_actors = 2 + rng.below(3) as usize;
    let actors: Vec<String> = pick_distinct(rng, n_actors, |r| {
        if r.chance(400) {
            troupe_actor(seed, pools, plan.director, r.below(6))
        } else {
            r.skewed(pools.actors)
        }
    })
    .into_iter()
    .map(|a| pools.actor(a))
    .collect();
    m.insert("Actors".into(), na(rng, 30, join(&actors)));

    let plot = format!(
        "A {} story of {} and {}.",
        rng.pick(&names::ADJECTIVES).to_lowercase(),
        rng.pick(&names::PLOT_NOUNS),
        rng.pick(&names::PLOT_NOUNS)
    );
    m.insert("Plot".into(), na(rng, 50, plot));
    let language = weighted_names(rng, &names::LANGUAGES, 3);
    m.insert("Language".into(), na(rng, 50, language));
    let country = weighted_names(rng, &names::COUNTRIES, 2);
    m.insert("Country".into(), na(rng, 30, country));
    m.insert("Awards".into(), json!(rng.pick(&names::AWARDS)));
    if extra {
        m.insert(
            "Poster".into(),
            json!(format!("https://m.media-amazon.com/images/M/{id}.jpg")),
        );
    }
    // Centred near 6, like real IMDb ratings of old films.
    let tenths = (rng.range(10, 95) + rng.range(10, 95) + rng.range(30, 80)) / 3;
    if !rng.chance(30) {
        m.insert("imdbRating".into(), rating(tenths));
    }
    if !rng.chance(30) {
        m.insert("imdbVotes".into(), json!(votes(rng)));
    }
    if extra && id.starts_with("tt") {
        m.insert("imdbID".into(), json!(id));
    }
    Value::Object(m)
}

/// What a source needs to know about its movie.
struct SourceCtx<'a> {
    title: &'a str,
    year: Option<i64>,
    runtime: i64,
    added_at: i64,
}

fn archive_source(rng: &mut Rng, ctx: &SourceCtx, ident: &str) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("type".into(), json!("archive.org"));
    s.insert(
        "url".into(),
        json!(format!("https://archive.org/details/{ident}")),
    );
    s.insert("id".into(), json!(ident));
    let title = match ctx.year {
        Some(y) if rng.chance(300) => format!("{} ({y})", ctx.title),
        _ => ctx.title.to_string(),
    };
    s.insert("title".into(), json!(title));
    let description = match ctx.year {
        Some(y) => format!("{}, a film from {y}.", ctx.title),
        None => format!("{}, a public domain feature film.", ctx.title),
    };
    s.insert("description".into(), json!(description));
    s.insert("addedAt".into(), json!(time::iso(ctx.added_at)));
    let collection = match ctx.year {
        Some(y) if y < 1930 && rng.chance(600) => "silent_films",
        _ => *rng.pick(&[
            "feature_films",
            "feature_films",
            "feature_films",
            "film_noir",
            "classic_tv",
        ]),
    };
    s.insert("collection".into(), json!(collection));
    s.insert("downloads".into(), json!(votes(rng)));
    s.insert(
        "thumbnail".into(),
        json!(format!("https://archive.org/services/img/{ident}")),
    );
    if rng.chance(500) {
        s.insert(
            "duration".into(),
            json!(ctx.runtime * 60 + rng.range(-90, 90)),
        );
    }
    s
}

fn youtube_source(rng: &mut Rng, ctx: &SourceCtx, vid: &str) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("type".into(), json!("youtube"));
    s.insert(
        "url".into(),
        json!(format!("https://www.youtube.com/watch?v={vid}")),
    );
    s.insert("id".into(), json!(vid));
    // Uploaders decorate titles; the AI title cleaner exists because of this.
    let title = match (rng.weighted(&[50, 25, 15, 10]), ctx.year) {
        (1, Some(y)) => format!("{} ({y}) | Full Movie", ctx.title),
        (2, _) => format!("{} - Full Movie [HD]", ctx.title),
        (3, _) => format!("{} | Classic {}", ctx.title.to_uppercase(), "Film"),
        _ => ctx.title.to_string(),
    };
    s.insert("title".into(), json!(title));
    if rng.chance(450) {
        s.insert(
            "description".into(),
            json!(format!(
                "Watch {} free. Public domain.\nSubscribe for more classics!",
                ctx.title
            )),
        );
    }
    s.insert("addedAt".into(), json!(time::iso(ctx.added_at)));
    let channel = rng.below(names::CHANNELS.len() as u64);
    s.insert(
        "channelName".into(),
        json!(names::CHANNELS[channel as usize]),
    );
    let mut crng = Rng::keyed(&[tag::CHANNEL, channel]);
    let channel_id: String = (0..22)
        .map(|_| char::from(names::YT_ALPHABET[crng.below(64) as usize]))
        .collect();
    s.insert("channelId".into(), json!(format!("UC{channel_id}")));
    s.insert(
        "duration".into(),
        json!(ctx.runtime * 60 + rng.range(-300, 120)),
    );
    if rng.chance(600) {
        s.insert(
            "thumbnail".into(),
            json!(format!("https://i.ytimg.com/vi/{vid}/hqdefault.jpg")),
        );
    }
    if rng.chance(200) {
        let n = 1 + rng.below(3) as usize;
        let regions: Vec<&str> = pick_distinct(rng, n, |r| r.below(names::REGIONS.len() as u64))
            .into_iter()
            .map(|i| names::REGIONS[i as usize])
            .collect();
        let kind = if rng.chance(750) {
            "blocked"
        } else {
            "allowed"
        };
        s.insert("regionRestriction".into(), json!({ kind: regions }));
    }
    s
}

/// Fields both kinds of source may carry, in the order the real file has them.
fn common_fields(rng: &mut Rng, s: &mut Map<String, Value>, year: Option<i64>, marked: bool) {
    if rng.chance(350) {
        s.insert("quality".into(), json!(rng.pick(&names::QUALITIES)));
    }
    if rng.chance(400) {
        let lang = if rng.chance(850) {
            json!(names::LANGUAGE_CODES[rng.weighted(&[60, 8, 6, 6, 5, 5, 4, 3, 2, 1])])
        } else {
            json!(["en", *rng.pick(&names::LANGUAGE_CODES[1..])])
        };
        s.insert("language".into(), lang);
    }
    if let Some(y) = year {
        if rng.chance(300) {
            // Sources occasionally disagree with the movie by a year.
            let y = if rng.chance(100) { y + 1 } else { y };
            // `releaseYear` is the legacy spelling of `year`.
            let key = if rng.chance(600) {
                "releaseYear"
            } else {
                "year"
            };
            s.insert(key.into(), json!(y));
        }
    }
    if rng.chance(250) {
        let size = rng.range(40_000_000, 2_400_000_000);
        // `size` is the legacy spelling of `fileSize`.
        let key = if rng.chance(400) { "size" } else { "fileSize" };
        s.insert(key.into(), json!(size));
    }
    if marked {
        let n = 1 + rng.weighted(&[85, 15]);
        let marks: Vec<&str> =
            pick_distinct(rng, n, |r| r.below(names::QUALITY_MARKS.len() as u64))
                .into_iter()
                .map(|i| names::QUALITY_MARKS[i as usize])
                .collect();
        s.insert("qualityMarks".into(), json!(marks));
    }
    if rng.chance(50) {
        s.insert("label".into(), json!(rng.pick(&names::LABELS)));
    }
}

/// Movie number `i`: its JSON entry and its plan.
fn movie(seed: u64, i: u64, pools: &Pools, youtube_ids: &mut HashSet<String>) -> (Plan, Value) {
    let mut rng = Rng::keyed(&[seed, tag::MOVIE, i]);
    let (genres, director, year) = plan_core(&mut rng, seed, pools);
    let title = title(&mut rng);
    let runtime = rng.range(55, 150) + if rng.chance(50) { 60 } else { 0 };

    // Ids: mostly IMDb ids (matched through OMDB), otherwise temporary ids
    // named after the first source. IMDb ids increase with gaps, so they are
    // unique without bookkeeping.
    let kind = rng.weighted(&[65, 22, 13]);
    let primary_vid = (kind == 2).then(|| youtube_id(&mut rng, youtube_ids));
    let primary_ident = archive_ident(&title, i);
    let id = match kind {
        0 => format!("tt{:07}", 1_000 + i * 97 + rng.below(97)),
        1 => format!("archive-{primary_ident}"),
        _ => format!("youtube-{}", primary_vid.as_deref().unwrap_or_default()),
    };

    let n_sources = 1 + rng.weighted(&[50, 30, 15, 5]);
    // ~5% of movies have every source quality-marked (dropped downstream);
    // ~12% of the others have one bad source among good ones.
    let all_marked = rng.chance(50);
    let one_marked = (!all_marked && n_sources > 1 && rng.chance(120))
        .then(|| rng.below(n_sources as u64) as usize);

    let first_added = Y2024 + rng.range(0, 600) * DAY + rng.range(0, DAY - 1);
    let mut last_added = first_added;
    let mut sources = Vec::with_capacity(n_sources);
    for k in 0..n_sources {
        let added_at = if k == 0 {
            first_added
        } else {
            first_added + rng.range(0, 100) * DAY + rng.range(0, DAY - 1)
        };
        last_added = last_added.max(added_at);
        let ctx = SourceCtx {
            title: &title,
            year,
            runtime,
            added_at,
        };
        let is_youtube = match (k, kind) {
            (0, 1) => false,
            (0, 2) => true,
            _ => rng.chance(350),
        };
        let mut s = if is_youtube {
            let vid = match (k, &primary_vid) {
                (0, Some(v)) => v.clone(),
                _ => youtube_id(&mut rng, youtube_ids),
            };
            youtube_source(&mut rng, &ctx, &vid)
        } else if k == 0 {
            archive_source(&mut rng, &ctx, &primary_ident)
        } else {
            let ident = format!("{}_{k}", archive_ident(&title, i));
            archive_source(&mut rng, &ctx, &ident)
        };
        let marked = all_marked || one_marked == Some(k);
        common_fields(&mut rng, &mut s, year, marked);
        sources.push(Value::Object(s));
    }

    let kept = !all_marked;
    // Filtered movies were often embedded before an admin marked them.
    let vector = if kept {
        !rng.chance(30)
    } else {
        !rng.chance(100)
    };
    let plan = Plan {
        id: id.clone(),
        genres,
        director,
        year,
        vector,
    };

    let mut m = Map::new();
    m.insert("movieId".into(), json!(id));
    m.insert("title".into(), json!(title));
    if let Some(y) = year {
        m.insert("year".into(), json!(y));
    }
    m.insert("sources".into(), Value::Array(sources));
    let updated = (last_added + rng.range(0, 60) * DAY).min(Y2026 - 1);
    m.insert("lastUpdated".into(), json!(time::iso(updated)));
    let has_metadata = if kind == 0 {
        !rng.chance(20)
    } else {
        rng.chance(300)
    };
    if has_metadata {
        let meta = metadata(&mut rng, seed, pools, &plan, runtime, &id);
        m.insert("metadata".into(), meta);
    }
    if rng.chance(280) {
        m.insert("verified".into(), json!(rng.chance(550)));
    }
    if kind != 0 && !has_metadata && rng.chance(400) {
        let mut ai = Map::new();
        ai.insert("title".into(), json!(title));
        if let Some(y) = year {
            ai.insert("year".into(), json!(y));
        }
        m.insert("ai".into(), Value::Object(ai));
    }
    (plan, Value::Object(m))
}

/// Stale embeddings for movies no longer in movies.json (one per 2,000).
fn orphans(seed: u64, n: usize, pools: &Pools) -> Vec<Plan> {
    (0..(n / 2000) as u64)
        .map(|j| {
            let mut rng = Rng::keyed(&[seed, tag::ORPHAN, j]);
            let (genres, director, year) = plan_core(&mut rng, seed, pools);
            Plan {
                // Movie ids never contain "-withdrawn-", so these cannot
                // collide with a movie in the file.
                id: format!("archive-withdrawn-{j}"),
                genres,
                director,
                year,
                vector: true,
            }
        })
        .collect()
}

/// Generate `n` movies and stream them to `dest` as pretty-printed JSON
/// (two spaces, no trailing newline: what `JSON.stringify(db, null, 2)`
/// writes, which is how the real file is produced).
pub(crate) fn write_movies(seed: u64, n: usize, dest: &Path) -> Result<World, SampleError> {
    let io_err = |source| SampleError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let json_err = |source| SampleError::Json {
        path: dest.to_path_buf(),
        source,
    };
    let pools = Pools::for_movies(n);
    let mut file = crate::artifact::temp_beside(dest).map_err(io_err)?;
    let mut plans = Vec::with_capacity(n);
    {
        let out = BufWriter::with_capacity(1 << 20, file.as_file_mut());
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"  ");
        let mut ser = serde_json::Serializer::with_formatter(out, formatter);
        let mut map = ser.serialize_map(None).map_err(json_err)?;
        let schema = json!({
            "version": "1.0.0",
            "description": format!("Sample movie database generated by pipe (seed {seed})"),
            "lastUpdated": time::iso(Y2026),
        });
        map.serialize_entry("_schema", &schema).map_err(json_err)?;
        let mut youtube_ids = HashSet::new();
        for i in 0..n as u64 {
            let (plan, value) = movie(seed, i, &pools, &mut youtube_ids);
            map.serialize_entry(&plan.id, &value).map_err(json_err)?;
            plans.push(plan);
        }
        map.end().map_err(json_err)?;
        ser.into_inner().flush().map_err(io_err)?;
    }
    file.persist(dest).map_err(|e| io_err(e.error))?;
    let orphans = orphans(seed, n, &pools);
    Ok(World {
        plans,
        orphans,
        pools,
    })
}
