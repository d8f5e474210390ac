//! Loading movies.json and collections.json into typed records, validated
//! up front so that a bad record stops the build before any output is
//! touched, with a message naming the file, the record and the fix.
//!
//! Fields that the outputs copy verbatim are kept as [`serde_json::Value`]
//! (`Option<Value>`: `None` is JavaScript's `undefined`, i.e. the field was
//! absent, which the reference leaves out of its JSON, while `null` is kept).

use crate::movies::js;
use crate::stage::StageError;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashSet;
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

/// [`SourceView`] for a struct with the four fields of the same names.
macro_rules! source_view {
    ($t:ty) => {
        impl SourceView for $t {
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
    };
}

source_view!(Source);

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

source_view!(SourceRow);

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

/// The top level of collections.json: entries keyed by id (`_`-prefixed
/// bookkeeping entries are skipped).
struct TopLevel<T> {
    entries: Vec<(String, T)>,
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
        while let Some(key) = map.next_key::<String>()? {
            *self.current.borrow_mut() = Some(key.clone());
            if seen.contains(&key) {
                // JSON.parse would silently keep the last one; a duplicate
                // key is almost always a merge accident, so say so.
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            if key.starts_with('_') {
                map.next_value::<IgnoredAny>()?;
            } else {
                entries.push((key.clone(), map.next_value::<T>()?));
            }
            seen.insert(key);
        }
        *self.current.borrow_mut() = None;
        Ok(TopLevel { entries })
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

/// Read and parse collections.json (a top-level keyed JSON file).
fn parse_top<T: DeserializeOwned>(
    abs: &Path,
    shown: &Path,
    what: &str,
) -> Result<TopLevel<T>, StageError> {
    // A buffered reader: there is no need to hold the whole text.
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
