//! `data/collections.json`: themed lists of movies, like the curated
//! collections of the real site.

use super::movies::{Plan, World};
use super::names::{self, GENRES};
use super::rng::Rng;
use super::time::{self, DAY, Y2024, Y2026};
use super::{tag, SampleError};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::path::Path;

/// What a collection is about; decides which movies it lists.
enum Theme {
    Genre(u8),
    Era(i64, i64),
    Director(u64),
}

impl Theme {
    fn matches(&self, p: &Plan) -> bool {
        match *self {
            Theme::Genre(g) => p.genres.contains(&g),
            Theme::Era(lo, hi) => p.year.is_some_and(|y| (lo..=hi).contains(&y)),
            Theme::Director(d) => p.director == d,
        }
    }
}

/// Lower-case words joined by hyphens; non-ASCII letters are kept.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn collection(seed: u64, c: u64, world: &World, used_ids: &mut HashSet<String>) -> Value {
    let mut rng = Rng::keyed(&[seed, tag::COLLECTION, c]);
    let plans = &world.plans;
    let (theme, name, tags) = match c % 3 {
        0 => {
            let g = rng.weighted(&names::genre_weights()) as u8;
            let genre = GENRES[g as usize].0;
            let name = match rng.below(3) {
                0 => format!("{genre} Classics"),
                1 => format!("Best of {genre}"),
                _ => format!("Essential {genre}"),
            };
            (Theme::Genre(g), name, vec![genre.to_lowercase()])
        }
        1 => {
            let decade = names::FIRST_YEAR + rng.below(6) as i64 * 10;
            let name = if decade < 1930 {
                "The Silent Era".to_string()
            } else {
                format!("Films of the {decade}s")
            };
            let era = if decade < 1930 {
                (names::FIRST_YEAR, 1929)
            } else {
                (decade, decade + 9)
            };
            (Theme::Era(era.0, era.1), name, vec!["decade".into()])
        }
        _ => {
            // A director who has films in the sample (if any).
            let d = if plans.is_empty() {
                0
            } else {
                plans[rng.below(plans.len() as u64) as usize].director
            };
            let name = format!("The {} Collection", world.pools.director(d));
            (Theme::Director(d), name, vec!["director".into()])
        }
    };

    // Matching movies first (in a random order, as curators add them), then
    // other movies to reach the target size when the theme is too narrow.
    // Filtered movies are not excluded: real collections keep listing movies
    // whose sources were later marked.
    let target = rng.range(20, 60) as usize;
    let mut matching: Vec<usize> = (0..plans.len())
        .filter(|&i| theme.matches(&plans[i]))
        .collect();
    let mut chosen = Vec::with_capacity(target);
    while chosen.len() < target && !matching.is_empty() {
        let k = rng.below(matching.len() as u64) as usize;
        chosen.push(matching.swap_remove(k));
    }
    let mut taken: HashSet<usize> = chosen.iter().copied().collect();
    let mut attempts = 0;
    while chosen.len() < target.min(plans.len()) && attempts < target * 50 {
        attempts += 1;
        let i = rng.below(plans.len() as u64) as usize;
        if taken.insert(i) {
            chosen.push(i);
        }
    }
    let movie_ids: Vec<&str> = chosen.iter().map(|&i| plans[i].id.as_str()).collect();

    let mut id = slug(&name);
    if !used_ids.insert(id.clone()) {
        id = format!("{id}-{c}");
        used_ids.insert(id.clone());
    }
    let created = Y2024 + rng.range(0, 500) * DAY + rng.range(0, DAY - 1);
    let updated = (created + rng.range(0, 200) * DAY).min(Y2026 - 1);
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(name));
    m.insert(
        "description".into(),
        json!(format!("{name}: {} hand-picked films.", movie_ids.len())),
    );
    m.insert("movieIds".into(), json!(movie_ids));
    m.insert("tags".into(), json!(tags));
    m.insert("enabled".into(), json!(true));
    m.insert("createdAt".into(), json!(time::iso(created)));
    m.insert("updatedAt".into(), json!(time::iso(updated)));
    Value::Object(m)
}

/// Write `count` collections to `dest`, pretty-printed like movies.json.
pub(crate) fn write_collections(
    seed: u64,
    count: usize,
    world: &World,
    dest: &Path,
) -> Result<(), SampleError> {
    let mut doc = Map::new();
    doc.insert(
        "_schema".into(),
        json!({ "version": "1.0.0", "lastUpdated": time::iso(Y2026) }),
    );
    let mut used = HashSet::new();
    for c in 0..count as u64 {
        let value = collection(seed, c, world, &mut used);
        let id = value["id"].as_str().unwrap_or_default().to_string();
        doc.insert(id, value);
    }
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    serde::Serialize::serialize(&Value::Object(doc), &mut ser).map_err(|source| {
        SampleError::Json {
            path: dest.to_path_buf(),
            source,
        }
    })?;
    crate::artifact::write_atomic(dest, &bytes).map_err(|source| SampleError::Io {
        path: dest.to_path_buf(),
        source,
    })
}
