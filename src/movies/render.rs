//! The per-movie JSON document (`public/movies/<movieId>.json`), with the
//! reference's fields, field order and omissions, written byte-for-byte as
//! JavaScript's `JSON.stringify(doc, null, 2)` writes it.

use crate::movies::catalog::{Collection, Metadata, Movie, Source, SourceView};
use crate::movies::js;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
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
}
