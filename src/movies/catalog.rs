//! Loading movies.json and collections.json into typed records, validated
//! up front so that a bad record stops the build before any output is
//! touched, with a message naming the file, the record and the fix.
//!
//! Fields that the outputs copy verbatim are kept as [`serde_json::Value`]
//! (`Option<Value>`: `None` is JavaScript's `undefined`, i.e. the field was
//! absent, which the reference leaves out of its JSON, while `null` is kept).

use crate::movies::ids;
use crate::movies::js;
use crate::stage::StageError;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

/// Deserialize a field that is present (even as `null`) into `Some`, so that
/// `null` and "absent" stay distinguishable.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One source of a movie (an archive.org item or a YouTube video).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Source {
    /// 'archive.org' or 'youtube'.
    #[serde(rename = "type", default, deserialize_with = "present")]
    pub kind: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub url: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub quality: Option<Value>,
    /// Non-empty marks (trailer, low quality, …) exclude the source.
    #[serde(default, deserialize_with = "present")]
    pub quality_marks: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub label: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub file_size: Option<Value>,
    /// Legacy name of `fileSize`.
    #[serde(default, deserialize_with = "present")]
    pub size: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub added_at: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub thumbnail: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub duration: Option<Value>,
    /// A string or an array of strings.
    #[serde(default, deserialize_with = "present")]
    pub language: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub year: Option<Value>,
    /// Legacy name of `year`.
    #[serde(default, deserialize_with = "present")]
    pub release_year: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub collection: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub downloads: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub channel_name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub channel_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub region_restriction: Option<Value>,
}

/// The fields of a source that filtering and the database use, whichever
/// record type (full or lean) holds them.
pub trait SourceView {
    /// `type`.
    fn kind(&self) -> Option<&Value>;
    /// `qualityMarks`.
    fn quality_marks(&self) -> Option<&Value>;
    /// `language`.
    fn language(&self) -> Option<&Value>;
    /// `channelName`.
    fn channel_name(&self) -> Option<&Value>;

    /// The source type as a string, if it is one.
    fn kind_str(&self) -> Option<&str> {
        self.kind().and_then(Value::as_str)
    }

    /// Whether the source is kept: it carries no quality marks (absent,
    /// null or empty), as the reference's `!s.qualityMarks ||
    /// s.qualityMarks.length === 0`.
    fn is_clean(&self) -> bool {
        match self.quality_marks() {
            None => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(v) => !js::truthy(v),
        }
    }
}

impl SourceView for Source {
    fn kind(&self) -> Option<&Value> {
        self.kind.as_ref()
    }
    fn quality_marks(&self) -> Option<&Value> {
        self.quality_marks.as_ref()
    }
    fn language(&self) -> Option<&Value> {
        self.language.as_ref()
    }
    fn channel_name(&self) -> Option<&Value> {
        self.channel_name.as_ref()
    }
}

/// The part of a source the database needs: parsing only this skips (and
/// never allocates) urls, descriptions, thumbnails and the like.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRow {
    /// `type`.
    #[serde(rename = "type", default, deserialize_with = "present")]
    pub kind: Option<Value>,
    /// `qualityMarks`.
    #[serde(default, deserialize_with = "present")]
    pub quality_marks: Option<Value>,
    /// `language`.
    #[serde(default, deserialize_with = "present")]
    pub language: Option<Value>,
    /// `channelName`.
    #[serde(default, deserialize_with = "present")]
    pub channel_name: Option<Value>,
}

impl SourceView for SourceRow {
    fn kind(&self) -> Option<&Value> {
        self.kind.as_ref()
    }
    fn quality_marks(&self) -> Option<&Value> {
        self.quality_marks.as_ref()
    }
    fn language(&self) -> Option<&Value> {
        self.language.as_ref()
    }
    fn channel_name(&self) -> Option<&Value> {
        self.channel_name.as_ref()
    }
}

/// The OMDB metadata of a movie (capitalised field names as OMDB has them).
#[derive(Debug, Clone, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Metadata {
    #[serde(default, deserialize_with = "present")]
    pub Rated: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Runtime: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Genre: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Director: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Writer: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Actors: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Plot: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Language: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Country: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Awards: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub imdbRating: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub imdbVotes: Option<Value>,
}

/// The metadata fields that scoring and the database use.
#[allow(non_snake_case, missing_docs)]
pub trait MetadataView {
    fn Genre(&self) -> &Option<Value>;
    fn Director(&self) -> &Option<Value>;
    fn Writer(&self) -> &Option<Value>;
    fn Actors(&self) -> &Option<Value>;
    fn Language(&self) -> &Option<Value>;
    fn Country(&self) -> &Option<Value>;
    fn imdbRating(&self) -> &Option<Value>;
    fn imdbVotes(&self) -> &Option<Value>;
}

macro_rules! metadata_view {
    ($t:ty) => {
        impl MetadataView for $t {
            fn Genre(&self) -> &Option<Value> {
                &self.Genre
            }
            fn Director(&self) -> &Option<Value> {
                &self.Director
            }
            fn Writer(&self) -> &Option<Value> {
                &self.Writer
            }
            fn Actors(&self) -> &Option<Value> {
                &self.Actors
            }
            fn Language(&self) -> &Option<Value> {
                &self.Language
            }
            fn Country(&self) -> &Option<Value> {
                &self.Country
            }
            fn imdbRating(&self) -> &Option<Value> {
                &self.imdbRating
            }
            fn imdbVotes(&self) -> &Option<Value> {
                &self.imdbVotes
            }
        }
    };
}

metadata_view!(Metadata);
metadata_view!(MetadataRow);

/// The metadata the database needs (no Plot, Awards, Rated, Runtime).
#[derive(Debug, Clone, Deserialize)]
#[allow(non_snake_case, missing_docs)]
pub struct MetadataRow {
    #[serde(default, deserialize_with = "present")]
    pub Genre: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Director: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Writer: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Actors: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Language: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub Country: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub imdbRating: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub imdbVotes: Option<Value>,
}

/// The text of an optional string field (`None` for absent, null or
/// another type; validation has already rejected other types where the
/// text matters).
pub fn text(v: &Option<Value>) -> Option<&str> {
    v.as_ref().and_then(Value::as_str)
}

/// One movie of movies.json, with every field the JSON documents copy.
pub type Movie = MovieOf<Source, Metadata>;

/// One movie with only what the database needs.
pub type MovieRow = MovieOf<SourceRow, MetadataRow>;

/// One movie of movies.json, generic over how much of its sources and
/// metadata is kept (see [`Movie`] and [`MovieRow`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MovieOf<S, M> {
    /// The movie's id ('tt0012345', 'archive-…', 'youtube-…'); also its file name.
    pub movie_id: String,
    /// A string, or an array of strings (the first is the display title).
    pub title: Value,
    /// Release year: a whole number or null (absent is `None`).
    #[serde(default, deserialize_with = "present")]
    pub year: Option<Value>,
    /// Sources; after loading, only those without quality marks.
    pub sources: Vec<S>,
    /// OMDB metadata, if any (`null` counts as none, as in the reference).
    #[serde(default = "none")]
    pub metadata: Option<M>,
    /// Whether a person verified the match (JavaScript truthiness).
    #[serde(default, deserialize_with = "present")]
    pub verified: Option<Value>,
    /// When the entry last changed (ISO-8601 string).
    #[serde(default, deserialize_with = "present")]
    pub last_updated: Option<Value>,
}

/// Serde default for a generic `Option` (derive would require `M: Default`).
fn none<M>() -> Option<M> {
    None
}

impl<S: SourceView, M: MetadataView> MovieOf<S, M> {
    /// The year as an integer when it is a non-zero number (the reference
    /// tests `year` for truthiness before using it).
    pub fn year_num(&self) -> Option<i64> {
        match &self.year {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .filter(|y| *y != 0),
            _ => None,
        }
    }

    /// The display title: the string, or the first element of an array.
    pub fn title_first(&self) -> &str {
        match &self.title {
            Value::String(s) => s,
            Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or(""),
            _ => "",
        }
    }

    /// The searchable title: the string, or every element joined by spaces.
    pub fn title_joined(&self) -> String {
        match &self.title {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .map(|v| v.as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        }
    }

    /// Whether the movie has OMDB metadata (`is_curated`).
    pub fn has_metadata(&self) -> bool {
        self.metadata.is_some()
    }

    /// Check the fields whose type the derivations depend on.
    fn validate(&self) -> Result<(), String> {
        match &self.title {
            Value::String(_) => {}
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => {}
            _ => return Err("title must be a string or a non-empty array of strings".into()),
        }
        match &self.year {
            None | Some(Value::Null) => {}
            Some(Value::Number(n))
                if n.as_i64().is_some() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => {}
            Some(v) => return Err(format!("year must be a whole number or null, found {v}")),
        }
        for (i, s) in self.sources.iter().enumerate() {
            if !matches!(s.kind(), Some(Value::String(_))) {
                return Err(format!(
                    "sources[{i}].type must be a string ('archive.org' or 'youtube')"
                ));
            }
            match s.language() {
                None | Some(Value::Null | Value::String(_)) => {}
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
                Some(v) => {
                    return Err(format!(
                        "sources[{i}].language must be a string or an array of strings, found {v}"
                    ))
                }
            }
        }
        if let Some(m) = &self.metadata {
            for (name, v) in [
                ("Genre", m.Genre()),
                ("Director", m.Director()),
                ("Writer", m.Writer()),
                ("Actors", m.Actors()),
                ("Language", m.Language()),
                ("Country", m.Country()),
            ] {
                if !matches!(v, None | Some(Value::Null | Value::String(_))) {
                    return Err(format!(
                        "metadata.{name} must be a string (comma-separated) or null"
                    ));
                }
            }
            if !matches!(
                m.imdbVotes(),
                None | Some(Value::Null | Value::Number(_) | Value::String(_))
            ) {
                return Err("metadata.imdbVotes must be a number or null".into());
            }
        }
        if !matches!(
            self.last_updated,
            None | Some(Value::Null | Value::String(_))
        ) {
            return Err("lastUpdated must be an ISO-8601 string".into());
        }
        Ok(())
    }
}

/// One collection of collections.json.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    /// Collection id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description (null and "" are stored as NULL).
    #[serde(default)]
    pub description: Option<String>,
    /// The movies it lists, in order (may repeat, may name unknown movies).
    pub movie_ids: Vec<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change; also the `addedAt` of its movies in the database.
    pub updated_at: String,
}

/// The movies of movies.json that the outputs use.
#[derive(Debug)]
pub struct Catalog<S = Source, M = Metadata> {
    /// Kept movies (with at least one clean source), in the order the
    /// reference enumerates them (see [`js_key_order`]).
    pub movies: Vec<MovieOf<S, M>>,
    /// `_schema.lastUpdated`, if present.
    pub schema_last_updated: Option<String>,
    /// Movie entries in the file, before filtering.
    pub entries: usize,
    /// Sources dropped for their quality marks.
    pub dropped_sources: usize,
    /// Movies dropped because no source was left.
    pub dropped_movies: usize,
}

impl<S, M> Catalog<S, M> {
    /// The timestamp for stored times when SOURCE_DATE_EPOCH is not set:
    /// `_schema.lastUpdated`, else the latest movie `lastUpdated`, else the epoch.
    pub fn input_timestamp(&self) -> String {
        if let Some(t) = &self.schema_last_updated {
            return t.clone();
        }
        self.movies
            .iter()
            .filter_map(|m| text(&m.last_updated))
            .max()
            .map(str::to_string)
            .unwrap_or_else(|| crate::movies::time::iso_from_epoch(0))
    }
}

/// The top level of movies.json or collections.json: entries keyed by id,
/// plus `_`-prefixed bookkeeping entries.
struct TopLevel<T> {
    entries: Vec<(String, T)>,
    schema_last_updated: Option<String>,
}

struct TopLevelVisitor<'a, T> {
    /// The key being read, so an error can name the record it is in.
    current: &'a RefCell<Option<String>>,
    marker: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> Visitor<'de> for TopLevelVisitor<'_, T> {
    type Value = TopLevel<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object keyed by id")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut entries = Vec::new();
        let mut schema_last_updated = None;
        while let Some(key) = map.next_key::<String>()? {
            *self.current.borrow_mut() = Some(key.clone());
            if seen.contains(&key) {
                // JSON.parse would silently keep the last one; a duplicate
                // key is almost always a merge accident, so say so.
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            if key.starts_with('_') {
                if key == "_schema" {
                    let v: Value = map.next_value()?;
                    schema_last_updated = v
                        .get("lastUpdated")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            } else {
                entries.push((key.clone(), map.next_value::<T>()?));
            }
            seen.insert(key);
        }
        *self.current.borrow_mut() = None;
        Ok(TopLevel {
            entries,
            schema_last_updated,
        })
    }
}

/// Whether `key` is an array index for JavaScript (a canonical decimal
/// below 2^32 − 1): such keys come first in `Object.values`.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty()
        || (key.len() > 1 && key.starts_with('0'))
        || !key.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    key.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

/// Reorder entries as JavaScript's `Object.values` enumerates them (the
/// reference iterates that order): array-index keys ascending, then the
/// other keys in file order. For real ids ('tt…', 'archive-…') this is
/// simply file order.
pub fn js_key_order<T>(entries: &mut [(String, T)]) {
    if entries.iter().any(|(k, _)| array_index(k).is_some()) {
        entries.sort_by_key(|(k, _)| match array_index(k) {
            Some(n) => (0u8, n),
            None => (1u8, 0),
        });
    }
}

/// Read and parse a top-level keyed JSON file.
fn parse_top<T: DeserializeOwned>(
    abs: &Path,
    shown: &Path,
    what: &str,
) -> Result<TopLevel<T>, StageError> {
    // A buffered reader instead of reading the whole file: with four
    // targets parsing at once, four copies of a 40 MB file add up.
    let file = std::fs::File::open(abs).map_err(|e| read_error(e, shown, what))?;
    let current = RefCell::new(None);
    let reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = de
        .deserialize_map(TopLevelVisitor::<T> {
            current: &current,
            marker: PhantomData,
        })
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        let (line, column) = (e.line(), e.column());
        describe_error(e, line, column, current.borrow().as_deref(), shown, what)
    })
}

/// The message for an input file that cannot be read.
pub(crate) fn read_error(e: std::io::Error, shown: &Path, what: &str) -> StageError {
    let fix = if e.kind() == std::io::ErrorKind::NotFound {
        format!(" (the {what} file is an input of this target; create it or fix its path in pipeline.toml)")
    } else {
        String::new()
    };
    StageError::with_source(format!("cannot read {}: {e}{fix}", shown.display()), e)
}

/// The message for a JSON error found at `line`/`column` (given separately:
/// errors in a movie parsed on its own are relative to the movie's text),
/// naming the entry being read if any.
pub(crate) fn describe_error(
    e: serde_json::Error,
    line: usize,
    column: usize,
    entry: Option<&str>,
    shown: &Path,
    what: &str,
) -> StageError {
    // serde_json appends the position itself; it is given once, up front.
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let what_went_wrong = full.strip_suffix(&suffix).unwrap_or(&full);
    let place = match entry {
        Some(key) => format!(" in entry {key:?}"),
        None => String::new(),
    };
    let msg = if e.is_syntax() || e.is_eof() {
        format!(
            "{}: malformed JSON at line {line} column {column}{place}: {what_went_wrong}. Fix the JSON syntax there \
             (a missing comma or quote is the usual cause)",
            shown.display(),
        )
    } else {
        format!(
            "{}: invalid {what}{place} (line {line} column {column}): {what_went_wrong}. Fix that record",
            shown.display(),
        )
    };
    StageError::with_source(msg, e)
}

/// Load movies.json: parse, validate every entry, reject hostile or
/// duplicate movie ids, drop sources with quality marks and movies left
/// without a source. `abs` is read; `shown` (project-relative) is used in messages.
pub fn load_movies(abs: &Path, shown: &Path) -> Result<Catalog, StageError> {
    load_movies_as(abs, shown)
}

/// [`load_movies`] keeping only what the database needs.
pub fn load_movie_rows(
    abs: &Path,
    shown: &Path,
) -> Result<Catalog<SourceRow, MetadataRow>, StageError> {
    load_movies_as(abs, shown)
}

/// [`load_movies`] into any record type.
pub fn load_movies_as<S, M>(abs: &Path, shown: &Path) -> Result<Catalog<S, M>, StageError>
where
    S: SourceView + DeserializeOwned,
    M: MetadataView + DeserializeOwned,
{
    let mut top: TopLevel<MovieOf<S, M>> = parse_top(abs, shown, "movie")?;
    js_key_order(&mut top.entries);
    let entries = top.entries.len();
    let mut ids: HashMap<&str, &str> = HashMap::with_capacity(entries);
    for (key, movie) in &top.entries {
        if let Some(why) = ids::id_problem(&movie.movie_id) {
            return Err(StageError::new(format!(
                "{}: entry {key:?}: {}",
                shown.display(),
                ids::hostile_message(&movie.movie_id, why)
            )));
        }
        if let Some(other) = ids.insert(&movie.movie_id, key) {
            return Err(StageError::new(format!(
                "{}: entries {other:?} and {key:?} both have movieId {:?}; movie ids must be \
                 unique. Merge the two entries or give one its correct id",
                shown.display(),
                movie.movie_id
            )));
        }
        movie.validate().map_err(|why| {
            StageError::new(format!(
                "{}: movie {:?}: {why}. Fix that entry",
                shown.display(),
                movie.movie_id
            ))
        })?;
    }
    drop(ids);
    let mut dropped_sources = 0;
    let mut movies = Vec::with_capacity(entries);
    for (_, mut movie) in top.entries {
        let before = movie.sources.len();
        movie.sources.retain(S::is_clean);
        // Vec growth during parsing leaves up to twice the needed capacity;
        // at 100k movies that slack is tens of MB.
        movie.sources.shrink_to_fit();
        dropped_sources += before - movie.sources.len();
        if !movie.sources.is_empty() {
            movies.push(movie);
        }
    }
    Ok(Catalog {
        dropped_movies: entries - movies.len(),
        movies,
        schema_last_updated: top.schema_last_updated,
        entries,
        dropped_sources,
    })
}

/// The top level of movies.json with each entry left as text.
pub(crate) struct RawTopVisitor<'a, 'de> {
    /// The key being read, so an error can name the record it is in.
    pub current: &'a RefCell<Option<String>>,
    /// Entries read so far: kept outside the visitor so that, when a syntax
    /// error stops the parse, the entries before it can still be checked.
    pub entries: &'a RefCell<Vec<(String, &'de serde_json::value::RawValue)>>,
    /// `_schema.lastUpdated`, if present.
    pub schema: &'a RefCell<Option<String>>,
}

impl<'de> Visitor<'de> for RawTopVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object keyed by id")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            *self.current.borrow_mut() = Some(key.clone());
            if seen.contains(&key) {
                // As in [`TopLevelVisitor`]: a duplicate is a merge accident.
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let raw: &'de serde_json::value::RawValue = map.next_value()?;
            if key == "_schema" {
                let v: Value = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                *self.schema.borrow_mut() = v
                    .get("lastUpdated")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            } else if !key.starts_with('_') {
                self.entries.borrow_mut().push((key.clone(), raw));
            }
            seen.insert(key);
        }
        *self.current.borrow_mut() = None;
        Ok(())
    }
}

/// What checking an entry found: the lean record with its quality-marked
/// sources dropped (and how many were), or the movie id and why the entry
/// is invalid.
pub(crate) type EntryCheck = Result<(MovieRow, usize), (String, String)>;

/// Parse, validate and filter one entry held as text; JSON errors give the
/// position in the whole file.
pub(crate) fn check_entry(
    text: &[u8],
    key: &str,
    raw: &str,
    shown: &Path,
) -> Result<EntryCheck, StageError> {
    match serde_json::from_str::<MovieRow>(raw) {
        Ok(mut m) => {
            if let Err(why) = m.validate() {
                return Ok(Err((m.movie_id, why)));
            }
            let before = m.sources.len();
            m.sources.retain(SourceRow::is_clean);
            let dropped = before - m.sources.len();
            Ok(Ok((m, dropped)))
        }
        Err(e) => {
            // Where the entry starts: its line, and the bytes before it on
            // that line (serde_json counts columns in bytes from 1).
            let offset = raw.as_ptr() as usize - text.as_ptr() as usize;
            let before = &text[..offset];
            let base_line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let base_col = offset
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
            let line = base_line + e.line() - 1;
            let column = if e.line() == 1 {
                base_col + e.column()
            } else {
                e.column()
            };
            Err(describe_error(e, line, column, Some(key), shown, "movie"))
        }
    }
}

/// Load collections.json: every non-`_` entry must be a collection.
pub fn load_collections(abs: &Path, shown: &Path) -> Result<Vec<Collection>, StageError> {
    let mut top: TopLevel<Collection> = parse_top(abs, shown, "collection")?;
    js_key_order(&mut top.entries);
    let mut ids = HashSet::new();
    for (key, c) in &top.entries {
        if !ids.insert(c.id.as_str()) {
            return Err(StageError::new(format!(
                "{}: entry {key:?} repeats collection id {:?}; collection ids must be unique",
                shown.display(),
                c.id
            )));
        }
    }
    Ok(top.entries.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Catalog, StageError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("movies.json");
        std::fs::write(&p, text).unwrap();
        load_movies(&p, Path::new("data/movies.json"))
    }

    const SRC: &str = r#"{"type":"youtube","url":"u","id":"i","title":"t","addedAt":"a"}"#;

    #[test]
    fn filters_sources_and_movies() {
        let text = format!(
            r#"{{"_schema":{{"lastUpdated":"2026"}},
              "a":{{"movieId":"a","title":"A","sources":[{SRC},{{"type":"youtube","qualityMarks":["trailer"]}}]}},
              "b":{{"movieId":"b","title":"B","sources":[{{"type":"youtube","qualityMarks":["x"]}}]}}}}"#
        );
        let c = load(&text).unwrap();
        assert_eq!(c.movies.len(), 1);
        assert_eq!(c.movies[0].sources.len(), 1);
        assert_eq!(c.dropped_movies, 1);
        assert_eq!(c.dropped_sources, 2);
        assert_eq!(c.schema_last_updated.as_deref(), Some("2026"));
    }

    #[test]
    fn rejects_duplicates_and_hostile_ids() {
        let dup_key = format!(
            r#"{{"a":{{"movieId":"a","title":"A","sources":[{SRC}]}},"a":{{"movieId":"a","title":"A","sources":[]}}}}"#
        );
        let e = load(&dup_key).unwrap_err().message;
        assert!(e.contains("duplicate key \"a\""), "{e}");
        let dup_id = format!(
            r#"{{"a":{{"movieId":"x","title":"A","sources":[{SRC}]}},"b":{{"movieId":"x","title":"B","sources":[{SRC}]}}}}"#
        );
        let e = load(&dup_id).unwrap_err().message;
        assert!(e.contains("both have movieId \"x\""), "{e}");
        let hostile = format!(r#"{{"a":{{"movieId":"../../x","title":"A","sources":[{SRC}]}}}}"#);
        let e = load(&hostile).unwrap_err().message;
        assert!(e.contains("\"../../x\""), "{e}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = load("{\n \"a\": {\"movieId\": \"a\",\n }")
            .unwrap_err()
            .message;
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("data/movies.json"), "{e}");
    }

    #[test]
    fn javascript_key_order() {
        let mut v = vec![
            ("b".to_string(), 1),
            ("10".to_string(), 2),
            ("2".to_string(), 3),
            ("01".to_string(), 4),
        ];
        js_key_order(&mut v);
        let keys: Vec<_> = v.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["2", "10", "b", "01"]);
    }
}
