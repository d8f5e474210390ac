//! The per-movie JSON document (`public/movies/<movieId>.json`), with the
//! reference's fields, field order and omissions, written byte-for-byte as
//! JavaScript's `JSON.stringify(doc, null, 2)` writes it.

use crate::movies::catalog::{Collection, Metadata, Movie, Source, SourceView};
use crate::movies::js;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// Which collections list each movie: movie id → indices into the
/// collections, in collection order and repeated as often as the
/// collection lists the movie (as the reference did).
pub fn collections_by_movie(collections: &[Collection]) -> HashMap<&str, Vec<u32>> {
    let mut map: HashMap<&str, Vec<u32>> = HashMap::new();
    for (ci, c) in collections.iter().enumerate() {
        for id in &c.movie_ids {
            map.entry(id.as_str()).or_default().push(ci as u32);
        }
    }
    map
}

/// Everything one movie's document is made of.
pub struct MovieDoc<'a> {
    /// The movie.
    pub movie: &'a Movie,
    /// Ids of its related movies, best first.
    pub related: Vec<&'a str>,
    /// The collections that list it (possibly repeated).
    pub collections: Vec<&'a Collection>,
}

impl MovieDoc<'_> {
    /// The document's bytes: 2-space indent, no trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        js::stringify(self).unwrap_or_default()
    }
}

/// Write `key: value` unless the value is `undefined` (absent).
fn opt<M: SerializeMap>(map: &mut M, key: &str, v: Option<&Value>) -> Result<(), M::Error> {
    match v {
        Some(v) => map.serialize_entry(key, v),
        None => Ok(()),
    }
}

struct SourceDoc<'a>(&'a Source);

impl Serialize for SourceDoc<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut m = ser.serialize_map(None)?;
        opt(&mut m, "type", s.kind.as_ref())?;
        opt(&mut m, "url", s.url.as_ref())?;
        opt(&mut m, "id", s.id.as_ref())?;
        opt(&mut m, "title", s.title.as_ref())?;
        opt(&mut m, "description", s.description.as_ref())?;
        opt(&mut m, "quality", s.quality.as_ref())?;
        opt(&mut m, "qualityMarks", s.quality_marks.as_ref())?;
        opt(&mut m, "label", s.label.as_ref())?;
        opt(
            &mut m,
            "fileSize",
            js::or(s.file_size.as_ref(), s.size.as_ref()),
        )?;
        opt(&mut m, "addedAt", s.added_at.as_ref())?;
        opt(&mut m, "thumbnail", s.thumbnail.as_ref())?;
        opt(&mut m, "duration", s.duration.as_ref())?;
        opt(&mut m, "language", s.language.as_ref())?;
        opt(
            &mut m,
            "year",
            js::or(s.year.as_ref(), s.release_year.as_ref()),
        )?;
        match s.kind_str() {
            Some("youtube") => {
                opt(&mut m, "channelName", s.channel_name.as_ref())?;
                opt(&mut m, "channelId", s.channel_id.as_ref())?;
                opt(&mut m, "regionRestriction", s.region_restriction.as_ref())?;
            }
            Some("archive.org") => {
                opt(&mut m, "collection", s.collection.as_ref())?;
                opt(&mut m, "downloads", s.downloads.as_ref())?;
            }
            _ => {}
        }
        m.end()
    }
}

struct MetadataDoc<'a>(&'a Metadata);

impl Serialize for MetadataDoc<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let md = self.0;
        let mut m = ser.serialize_map(None)?;
        opt(&mut m, "Rated", md.Rated.as_ref())?;
        opt(&mut m, "Runtime", md.Runtime.as_ref())?;
        opt(&mut m, "imdbRating", md.imdbRating.as_ref())?;
        // `imdbVotes ?? null`: always present.
        m.serialize_entry("imdbVotes", md.imdbVotes.as_ref().unwrap_or(&Value::Null))?;
        opt(&mut m, "Genre", md.Genre.as_ref())?;
        opt(&mut m, "Plot", md.Plot.as_ref())?;
        opt(&mut m, "Director", md.Director.as_ref())?;
        opt(&mut m, "Writer", md.Writer.as_ref())?;
        opt(&mut m, "Actors", md.Actors.as_ref())?;
        opt(&mut m, "Language", md.Language.as_ref())?;
        opt(&mut m, "Country", md.Country.as_ref())?;
        opt(&mut m, "Awards", md.Awards.as_ref())?;
        m.end()
    }
}

struct Seq<'a, T>(&'a [T]);

impl<T: Serialize> Serialize for Seq<'_, T> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

struct CollectionRef<'a>(&'a Collection);

impl Serialize for CollectionRef<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(2))?;
        m.serialize_entry("id", &self.0.id)?;
        m.serialize_entry("name", &self.0.name)?;
        m.end()
    }
}

impl Serialize for MovieDoc<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mv = self.movie;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("movieId", &mv.movie_id)?;
        m.serialize_entry("title", &mv.title)?;
        opt(&mut m, "year", mv.year.as_ref())?;
        let sources: Vec<SourceDoc> = mv.sources.iter().map(SourceDoc).collect();
        m.serialize_entry("sources", &Seq(&sources))?;
        if let Some(md) = &mv.metadata {
            m.serialize_entry("metadata", &MetadataDoc(md))?;
        }
        m.serialize_entry("relatedMovies", &Seq(&self.related))?;
        let colls: Vec<CollectionRef> = self.collections.iter().map(|c| CollectionRef(c)).collect();
        m.serialize_entry("collections", &Seq(&colls))?;
        m.serialize_entry("is_curated", &mv.has_metadata())?;
        m.serialize_entry("verified", &js::truthy_opt(mv.verified.as_ref()))?;
        opt(&mut m, "lastUpdated", mv.last_updated.as_ref())?;
        m.end()
    }
}

/// A raw JSON field that may be absent: `null` stays `Some("null")`.
fn raw_present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// A source as text, field by field (see [`Source`] for the meaning).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSource<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "raw_present")]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    url: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    title: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    description: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    quality: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    quality_marks: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    label: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    file_size: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    size: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    added_at: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    thumbnail: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    duration: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    language: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    year: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    release_year: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    collection: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    downloads: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    channel_name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    channel_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    region_restriction: Option<&'a RawValue>,
}

/// The metadata as text (see [`Metadata`]).
#[derive(Deserialize)]
#[allow(non_snake_case)]
struct RawMetadata<'a> {
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Rated: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Runtime: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Genre: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Director: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Writer: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Plot: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Actors: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Language: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Country: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    Awards: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    imdbRating: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    imdbVotes: Option<&'a RawValue>,
}

/// A movie as text (see [`Movie`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMovie<'a> {
    #[serde(borrow)]
    movie_id: &'a RawValue,
    #[serde(borrow)]
    title: &'a RawValue,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    year: Option<&'a RawValue>,
    #[serde(borrow)]
    sources: Vec<RawSource<'a>>,
    /// `null` counts as none, as in [`Movie`].
    #[serde(default, borrow)]
    metadata: Option<RawMetadata<'a>>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    verified: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw_present")]
    last_updated: Option<&'a RawValue>,
}

/// JavaScript truthiness of a raw value (see [`js::truthy`]).
fn raw_truthy(v: &RawValue) -> bool {
    match v.get().as_bytes().first() {
        Some(b'n') | Some(b'f') => false,
        Some(b't') | Some(b'[') | Some(b'{') => true,
        Some(b'"') => v.get() != "\"\"",
        _ => serde_json::from_str::<Value>(v.get()).is_ok_and(|v| js::truthy(&v)),
    }
}

/// `a || b` over raw fields (see [`js::or`]).
fn raw_or<'a>(a: Option<&'a RawValue>, b: Option<&'a RawValue>) -> Option<&'a RawValue> {
    if a.is_some_and(raw_truthy) {
        a
    } else {
        b
    }
}

/// Whether a raw source is kept (see [`SourceView::is_clean`]).
fn raw_is_clean(s: &RawSource) -> bool {
    match s.quality_marks {
        None => true,
        Some(m) => match serde_json::from_str::<Value>(m.get()) {
            Ok(Value::Array(a)) => a.is_empty(),
            Ok(v) => !js::truthy(&v),
            Err(_) => true,
        },
    }
}

/// A raw string's text, unescaped when needed.
fn raw_str(v: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let t = v.get();
    if t.len() >= 2 && t.starts_with('"') && !t.contains('\\') {
        Some(std::borrow::Cow::Borrowed(&t[1..t.len() - 1]))
    } else {
        serde_json::from_str::<String>(t)
            .ok()
            .map(std::borrow::Cow::Owned)
    }
}

/// Writes the document with the layout of `JSON.stringify(doc, null, 2)`
/// straight from the movie's text: values JavaScript would print exactly as
/// they are written (strings without escapes, small integers, literals) are
/// copied; anything else goes through [`Value`] and [`js::stringify`].
struct Out {
    buf: Vec<u8>,
}

impl Out {
    fn indent(&mut self, level: usize) {
        self.buf.push(b'\n');
        self.buf.extend(std::iter::repeat_n(b' ', 2 * level));
    }

    /// `"key": ` at `level`, after a comma unless first.
    fn key(&mut self, first: &mut bool, level: usize, key: &str) {
        if !*first {
            self.buf.push(b',');
        }
        *first = false;
        self.indent(level);
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\": ");
    }

    fn string(&mut self, s: &str) {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, s);
    }

    /// A raw value nested at `level`.
    fn value(&mut self, v: &RawValue, level: usize) {
        let t = v.get();
        let b = t.as_bytes();
        let verbatim = match b.first() {
            Some(b'"') => !t.contains('\\'),
            Some(b't') | Some(b'f') | Some(b'n') => true,
            // An integer JavaScript holds exactly prints as written; "-0"
            // prints as "0".
            Some(_) => {
                let digits = b.strip_prefix(b"-").unwrap_or(b);
                !digits.is_empty()
                    && digits.len() <= 15
                    && digits.iter().all(u8::is_ascii_digit)
                    && t != "-0"
            }
            None => true,
        };
        if verbatim {
            self.buf.extend_from_slice(b);
            return;
        }
        let parsed = serde_json::from_str::<Value>(t)
            .ok()
            .and_then(|v| js::stringify(&v).ok())
            .unwrap_or_default();
        // Nested one level deeper: every line after the first is indented
        // by two spaces more (newlines inside strings are escaped, so every
        // newline is layout).
        for &c in &parsed {
            self.buf.push(c);
            if c == b'\n' {
                self.buf.extend(std::iter::repeat_n(b' ', 2 * level));
            }
        }
    }

    fn opt(&mut self, first: &mut bool, level: usize, key: &str, v: Option<&RawValue>) {
        if let Some(v) = v {
            self.key(first, level, key);
            self.value(v, level);
        }
    }
}

/// Render the document of a movie given as its JSON text (an entry of
/// movies.json), byte for byte what [`MovieDoc::to_bytes`] gives for the
/// same movie, without building a [`Movie`]. Sources with quality marks are
/// left out. `None` if the text is not a movie record.
pub fn render_raw(text: &[u8], related: &[&str], collections: &[&Collection]) -> Option<Vec<u8>> {
    let mv: RawMovie = serde_json::from_slice(text).ok()?;
    let mut o = Out {
        buf: Vec::with_capacity(text.len() + 512),
    };
    o.buf.push(b'{');
    let first = &mut true;
    o.key(first, 1, "movieId");
    o.value(mv.movie_id, 1);
    o.key(first, 1, "title");
    o.value(mv.title, 1);
    o.opt(first, 1, "year", mv.year);
    o.key(first, 1, "sources");
    let mut any = false;
    o.buf.push(b'[');
    for s in mv.sources.iter().filter(|s| raw_is_clean(s)) {
        if any {
            o.buf.push(b',');
        }
        any = true;
        o.indent(2);
        o.buf.push(b'{');
        let f = &mut true;
        o.opt(f, 3, "type", s.kind);
        o.opt(f, 3, "url", s.url);
        o.opt(f, 3, "id", s.id);
        o.opt(f, 3, "title", s.title);
        o.opt(f, 3, "description", s.description);
        o.opt(f, 3, "quality", s.quality);
        o.opt(f, 3, "qualityMarks", s.quality_marks);
        o.opt(f, 3, "label", s.label);
        o.opt(f, 3, "fileSize", raw_or(s.file_size, s.size));
        o.opt(f, 3, "addedAt", s.added_at);
        o.opt(f, 3, "thumbnail", s.thumbnail);
        o.opt(f, 3, "duration", s.duration);
        o.opt(f, 3, "language", s.language);
        o.opt(f, 3, "year", raw_or(s.year, s.release_year));
        match s.kind.and_then(raw_str).as_deref() {
            Some("youtube") => {
                o.opt(f, 3, "channelName", s.channel_name);
                o.opt(f, 3, "channelId", s.channel_id);
                o.opt(f, 3, "regionRestriction", s.region_restriction);
            }
            Some("archive.org") => {
                o.opt(f, 3, "collection", s.collection);
                o.opt(f, 3, "downloads", s.downloads);
            }
            _ => {}
        }
        if *f {
            o.buf.push(b'}');
        } else {
            o.indent(2);
            o.buf.push(b'}');
        }
    }
    if any {
        o.indent(1);
    }
    o.buf.push(b']');
    if let Some(md) = &mv.metadata {
        o.key(first, 1, "metadata");
        o.buf.push(b'{');
        let f = &mut true;
        o.opt(f, 2, "Rated", md.Rated);
        o.opt(f, 2, "Runtime", md.Runtime);
        o.opt(f, 2, "imdbRating", md.imdbRating);
        o.key(f, 2, "imdbVotes");
        match md.imdbVotes {
            Some(v) => o.value(v, 2),
            None => o.buf.extend_from_slice(b"null"),
        }
        o.opt(f, 2, "Genre", md.Genre);
        o.opt(f, 2, "Plot", md.Plot);
        o.opt(f, 2, "Director", md.Director);
        o.opt(f, 2, "Writer", md.Writer);
        o.opt(f, 2, "Actors", md.Actors);
        o.opt(f, 2, "Language", md.Language);
        o.opt(f, 2, "Country", md.Country);
        o.opt(f, 2, "Awards", md.Awards);
        o.indent(1);
        o.buf.push(b'}');
    }
    o.key(first, 1, "relatedMovies");
    o.buf.push(b'[');
    for (k, id) in related.iter().enumerate() {
        if k > 0 {
            o.buf.push(b',');
        }
        o.indent(2);
        o.string(id);
    }
    if !related.is_empty() {
        o.indent(1);
    }
    o.buf.push(b']');
    o.key(first, 1, "collections");
    o.buf.push(b'[');
    for (k, c) in collections.iter().enumerate() {
        if k > 0 {
            o.buf.push(b',');
        }
        o.indent(2);
        o.buf.push(b'{');
        let f = &mut true;
        o.key(f, 3, "id");
        o.string(&c.id);
        o.key(f, 3, "name");
        o.string(&c.name);
        o.indent(2);
        o.buf.push(b'}');
    }
    if !collections.is_empty() {
        o.indent(1);
    }
    o.buf.push(b']');
    o.key(first, 1, "is_curated");
    o.buf.extend_from_slice(if mv.metadata.is_some() {
        b"true"
    } else {
        b"false"
    });
    o.key(first, 1, "verified");
    let verified = mv.verified.is_some_and(raw_truthy);
    o.buf
        .extend_from_slice(if verified { b"true" } else { b"false" });
    o.opt(first, 1, "lastUpdated", mv.last_updated);
    o.indent(0);
    o.buf.push(b'}');
    Some(o.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn omits_undefined_keeps_null_and_applies_fallbacks() {
        let movie: Movie = serde_json::from_value(json!({
            "movieId": "tt1", "title": "T", "year": null,
            "sources": [{"type": "archive.org", "id": "x", "size": 5, "fileSize": 0,
                         "releaseYear": 1950, "description": null, "channelName": "ignored"}],
            "metadata": {"Genre": "Drama", "imdbRating": 7.0},
            "verified": "yes"
        }))
        .unwrap();
        let doc = MovieDoc {
            movie: &movie,
            related: vec![],
            collections: vec![],
        };
        let text = String::from_utf8(doc.to_bytes()).unwrap();
        let expected = r#"{
  "movieId": "tt1",
  "title": "T",
  "year": null,
  "sources": [
    {
      "type": "archive.org",
      "id": "x",
      "description": null,
      "fileSize": 5,
      "year": 1950
    }
  ],
  "metadata": {
    "imdbRating": 7,
    "imdbVotes": null,
    "Genre": "Drama"
  },
  "relatedMovies": [],
  "collections": [],
  "is_curated": true,
  "verified": true
}"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn raw_rendering_matches_typed_rendering() {
        let coll: Collection = serde_json::from_value(json!({
            "id": "c\"1", "name": "Noir \u{e9}", "movieIds": [], "createdAt": "a", "updatedAt": "b"
        }))
        .unwrap();
        let texts = [
            r#"{"movieId":"tt1","title":"T\u00e9\n","year":1950.0,"sources":[
                {"type":"archive.org","id":"x","size":5,"fileSize":0,"releaseYear":1950,
                 "description":null,"channelName":"ignored","downloads":-0,"language":["en","fr"],
                 "quality":{"b":1,"a":[1.5e2,{}]},"qualityMarks":[]},
                {"type":"youtube","qualityMarks":["trailer"]},
                {"type":"you\u0074ube","id":12345678901234567890,"duration":1e21,"regionRestriction":{},
                 "channelId":"c","label":"","year":0,"releaseYear":"1999"}],
               "metadata":{"Genre":"Drama","imdbRating":7.0,"imdbVotes":"1,234","Plot":"a\"b\\c/d\u0001"},
               "verified":0,"lastUpdated":"2026"}"#,
            r#"{"movieId":"archive-P\u00e8re","title":["A","B"],"sources":[{"type":"archive.org"}],
               "metadata":null,"verified":"yes","unknown":[1,2]}"#,
            r#"{"movieId":"y","title":"T","year":null,"sources":[{"type":"youtube","url":"u"}],
               "metadata":{},"verified":[],"lastUpdated":null}"#,
        ];
        for text in texts {
            let mut movie: Movie = serde_json::from_str(text).unwrap();
            movie.sources.retain(Source::is_clean);
            for (related, colls) in [(vec![], vec![]), (vec!["a", "b\"c"], vec![&coll, &coll])] {
                let typed = MovieDoc {
                    movie: &movie,
                    related: related.clone(),
                    collections: colls.clone(),
                }
                .to_bytes();
                let raw = render_raw(text.as_bytes(), &related, &colls).unwrap();
                assert_eq!(
                    String::from_utf8(raw).unwrap(),
                    String::from_utf8(typed).unwrap()
                );
            }
        }
    }
}
