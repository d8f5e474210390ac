//! movies.json as a list of entries, each kept as its text with a blake3
//! digest of that text: what lets the movie stages work incrementally.
//!
//! Loading is shared and remembered:
//! * once per process: the `movie-json` target and the `movies-db` targets
//!   of a build ask for the same file at the same time, and the second asks
//!   get the first one's result ([`load`]);
//! * across builds: what checking an entry finds (its id, whether it is
//!   kept, the fields related-movie scoring and the name tables use) is a
//!   function of the entry's text alone, so it is remembered in
//!   `.pipe/cache/movies/` under the text's digest, and an entry whose
//!   text did not change is not parsed again. The file is still read and
//!   scanned whole: the syntax, key order and id rules are checked on every
//!   build, with the same errors as a full parse.

use crate::movies::catalog::{
    check_entry, describe_error, js_key_order, read_error, text, MovieRow, RawTopVisitor,
};
use crate::movies::ids;
use crate::stage::{StageContext, StageError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A blake3 digest of an entry's text, as raw bytes.
pub type Digest = [u8; 32];

/// Bump when [`Summary`] or what it is computed from changes: remembered
/// summaries of another format are ignored.
const MEMO_FORMAT: &str = "movie-entries-1";

/// What checking one entry found: a function of the entry's text only.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// `movieId`.
    pub movie_id: String,
    /// Sources dropped for their quality marks.
    pub dropped_sources: u32,
    /// Whether a source is left (a movie without one is not kept).
    pub kept: bool,
    /// `metadata.Genre` if a string (related scoring).
    pub genre: Option<String>,
    /// `metadata.Director` if a string (related scoring).
    pub director: Option<String>,
    /// `metadata.Actors` if a string (related scoring).
    pub actors: Option<String>,
    /// The year when truthy (related scoring).
    pub year: Option<i64>,
    /// Whether the movie has metadata (related scoring).
    pub has_meta: bool,
    /// `lastUpdated` if a string (the input timestamp).
    pub last_updated: Option<String>,
    /// blake3 over everything of the entry that the database's shared
    /// tables (names, counts, junctions) are made of: Actors, Director,
    /// Writer, Genre and Country. An edit that keeps it changes only the
    /// movie's own rows.
    pub shared: Digest,
}

impl Summary {
    fn of(m: &MovieRow, dropped: usize) -> Summary {
        let md = m.metadata.as_ref();
        let field = |f: fn(&crate::movies::catalog::MetadataRow) -> &Option<serde_json::Value>| {
            md.and_then(|md| text(f(md))).map(str::to_string)
        };
        let mut shared = blake3::Hasher::new();
        hash_fields(
            &mut shared,
            [
                md.and_then(|md| text(&md.Actors)),
                md.and_then(|md| text(&md.Director)),
                md.and_then(|md| text(&md.Writer)),
                md.and_then(|md| text(&md.Genre)),
                md.and_then(|md| text(&md.Country)),
            ],
        );
        Summary {
            movie_id: m.movie_id.clone(),
            dropped_sources: dropped as u32,
            kept: !m.sources.is_empty(),
            genre: field(|md| &md.Genre),
            director: field(|md| &md.Director),
            actors: field(|md| &md.Actors),
            year: m.year_num(),
            has_meta: m.has_metadata(),
            last_updated: text(&m.last_updated).map(str::to_string),
            shared: *shared.finalize().as_bytes(),
        }
    }
}

/// Feed optional text fields to `h` so that no two field lists hash alike:
/// absent and present are told apart, and each text is length-prefixed.
pub fn hash_fields<'a>(h: &mut blake3::Hasher, fields: impl IntoIterator<Item = Option<&'a str>>) {
    for v in fields {
        match v {
            None => {
                h.update(&[0]);
            }
            Some(s) => {
                h.update(&[1]);
                crate::fingerprint::update_parts(h, [s.as_bytes()]);
            }
        }
    }
}

/// One kept movie.
#[derive(Debug)]
pub struct Entry {
    /// Where its JSON object is in the file.
    pub span: Range<usize>,
    /// blake3 of that text.
    pub digest: Digest,
    /// What checking it found.
    pub summary: Summary,
}

/// How much of a file must have been parsed again for its whole text to
/// stay in memory after loading: an edit that touched fewer entries than
/// `1 / KEEP_TEXT_WHEN` of them (one title of 100,000) needs only those
/// entries' texts again, read back by span, and the text (most of a
/// build's memory) is dropped at once.
const KEEP_TEXT_WHEN: usize = 8;

/// How much of a file must have been parsed again for the remembered
/// summaries to be written anew: an edit of a few entries leaves the memo
/// as it is (17 MB at 100,000 movies, 140 ms to write on every edit), and
/// the next load parses those few again, microseconds each, until more
/// than `1 / REMEMBER_WHEN` of the entries are not remembered.
pub(crate) const REMEMBER_WHEN: usize = 100;

/// movies.json, loaded: the text and its kept movies.
#[derive(Debug)]
pub struct MovieEntries {
    /// The whole file, while worth keeping (see [`KEEP_TEXT_WHEN`]).
    text: Option<Vec<u8>>,
    /// The file as opened for loading: an entry whose text is not kept is
    /// read back from it (the same file even if it was replaced since) and
    /// checked against its digest.
    file: Option<std::fs::File>,
    /// The file as messages name it.
    shown: PathBuf,
    /// Kept movies (with at least one clean source), in the order the
    /// reference enumerates them (see [`js_key_order`]).
    pub movies: Vec<Entry>,
    /// Movies dropped because no source was left, in the same order (the
    /// embeddings stage embeds them too, as the original's generators did).
    pub dropped: Vec<Entry>,
    /// `_schema.lastUpdated`, if present.
    pub schema_last_updated: Option<String>,
    /// Movie entries in the file, before filtering.
    pub entries: usize,
    /// Sources dropped for their quality marks.
    pub dropped_sources: usize,
    /// Movies dropped because no source was left.
    pub dropped_movies: usize,
    /// Their ids, in file order: vectors for them are not for movies that
    /// are gone (they come back when a source is clean again).
    pub dropped_ids: Vec<String>,
    /// Entries parsed by this load (the others were remembered).
    pub parsed: usize,
}

impl MovieEntries {
    /// The JSON text of kept movie `i` (as in the file, all sources included).
    pub fn text_of(&self, i: usize) -> Result<Cow<'_, [u8]>, StageError> {
        self.entry_text(&self.movies[i])
    }

    /// The JSON text of an entry of [`MovieEntries::movies`] or
    /// [`MovieEntries::dropped`]: from the text in memory, else read back
    /// from the file and checked against the entry's digest (a file
    /// changed in place since it was loaded is an error, not other bytes).
    pub fn entry_text(&self, e: &Entry) -> Result<Cow<'_, [u8]>, StageError> {
        if let Some(text) = &self.text {
            return Ok(Cow::Borrowed(&text[e.span.clone()]));
        }
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0; e.span.len()];
        let read = match &self.file {
            Some(f) => f.read_exact_at(&mut bytes, e.span.start as u64),
            None => Err(std::io::Error::other("the file is not open")),
        };
        read.map_err(|err| StageError::io(&self.shown, "read back an entry of", err))?;
        if blake3::hash(&bytes).as_bytes() != &e.digest {
            return Err(StageError::new(format!(
                "{} changed while this build was running (movie {:?}); run the build again",
                self.shown.display(),
                e.summary.movie_id
            )));
        }
        Ok(Cow::Owned(bytes))
    }

    /// Parse kept movie `i` as `T`, with the file named in the error.
    /// Loading already parsed and validated it, so this fails only if `T`
    /// accepts less than the loading record did.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
        shown: &Path,
    ) -> Result<T, StageError> {
        serde_json::from_slice(&self.text_of(i)?).map_err(|e| {
            StageError::with_source(
                format!(
                    "{}: movie {:?}: {e}. Fix that entry",
                    shown.display(),
                    self.movies[i].summary.movie_id
                ),
                e,
            )
        })
    }

    /// The timestamp for stored times when SOURCE_DATE_EPOCH is not set:
    /// `_schema.lastUpdated`, else the latest movie `lastUpdated`, else the epoch.
    pub fn input_timestamp(&self) -> String {
        if let Some(t) = &self.schema_last_updated {
            return t.clone();
        }
        self.movies
            .iter()
            .filter_map(|m| m.summary.last_updated.as_deref())
            .max()
            .map(str::to_string)
            .unwrap_or_else(|| crate::movies::time::iso_from_epoch(0))
    }

    /// blake3 over the kept movie ids in order (what the vector parts of the
    /// databases depend on).
    pub fn ids_hash(&self) -> String {
        let mut ids = blake3::Hasher::new();
        for m in &self.movies {
            ids.update(m.summary.movie_id.as_bytes());
            ids.update(&[0]);
        }
        ids.finalize().to_hex().to_string()
    }
}

/// Load movies.json (project-relative `rel`) for a stage: shared with the
/// other targets of this process that load the same content, and checked
/// incrementally against what earlier builds remembered.
///
/// The text read is hashed and compared with the hash the executor
/// fingerprinted the target with: a file that changed in between is an
/// error (the build would otherwise record outputs of one content under the
/// fingerprint of another).
pub fn load(ctx: &StageContext, rel: &Path) -> Result<Arc<MovieEntries>, StageError> {
    let abs = ctx.abs(rel);
    let expected = ctx
        .input_hash(rel)
        .map_err(|e| StageError::io(rel, "read", e))?;
    let slot = slot(&abs);
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some((hash, loaded)) = guard.as_ref() {
        if Some(*hash) == expected {
            if let Some(loaded) = loaded.upgrade() {
                return Ok(loaded);
            }
        }
    }
    let memo = memo_path(ctx.root, rel);
    let (hash, loaded) = load_file(&abs, rel, Some(&memo))?;
    if expected.is_some_and(|e| e != hash) {
        return Err(StageError::new(format!(
            "{} changed while this build was running; run the build again",
            rel.display()
        )));
    }
    let loaded = Arc::new(loaded);
    *guard = Some((hash, Arc::downgrade(&loaded)));
    Ok(loaded)
}

/// movies.json (project-relative `rel`) as another target of this process
/// holds it loaded now, if one does and it has the content this target was
/// fingerprinted with; never loads it.
pub fn loaded(ctx: &StageContext, rel: &Path) -> Option<Arc<MovieEntries>> {
    let expected = ctx.input_hash(rel).ok().flatten()?;
    let slot = slot(&ctx.abs(rel));
    let guard = match slot.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    match guard.as_ref() {
        Some((hash, loaded)) if *hash == expected => loaded.upgrade(),
        _ => None,
    }
}

/// One slot per file per process: the first target loads while the others
/// wait, then they share the result for as long as one of them holds it.
type Slot = Arc<Mutex<Option<(blake3::Hash, Weak<MovieEntries>)>>>;

fn slot(abs: &Path) -> Slot {
    static SLOTS: OnceLock<Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    let slots = SLOTS.get_or_init(Default::default);
    let mut map = match slots.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(abs.to_path_buf()).or_default().clone()
}

/// Where the summaries of the entries of `rel` are remembered.
fn memo_path(root: &Path, rel: &Path) -> PathBuf {
    let name = blake3::hash(rel.to_string_lossy().as_bytes()).to_hex();
    root.join(crate::state::STATE_DIR)
        .join("cache")
        .join("movies")
        .join(format!("{}.bin", &name[..32]))
}

/// The remembered summaries of one file's entries.
#[derive(Serialize, Deserialize)]
struct Memo {
    /// [`MEMO_FORMAT`] and the pipe version that wrote it.
    format: String,
    entries: Vec<(Digest, Summary)>,
}

fn memo_format() -> String {
    format!("{MEMO_FORMAT} {}", env!("CARGO_PKG_VERSION"))
}

fn read_memo(path: &Path) -> HashMap<Digest, Summary> {
    let Ok(bytes) = std::fs::read(path) else {
        return HashMap::new();
    };
    match postcard::from_bytes::<Memo>(&bytes) {
        Ok(m) if m.format == memo_format() => m.entries.into_iter().collect(),
        _ => HashMap::new(),
    }
}

/// Remember the summaries of this load's entries (only those: the memo
/// never grows beyond one file's worth). Best effort: a memo that cannot
/// be written only means parsing again next time.
fn write_memo(path: &Path, entries: Vec<(Digest, Summary)>) {
    let memo = Memo {
        format: memo_format(),
        entries,
    };
    if let Ok(bytes) = postcard::to_allocvec(&memo) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = crate::artifact::write_atomic(path, &bytes);
    }
}

/// Open and read a file, keeping it open (entries are read back from it).
fn read_keeping_open(abs: &Path) -> std::io::Result<(std::fs::File, Vec<u8>)> {
    use std::io::Read;
    let mut file = std::fs::File::open(abs)?;
    let mut text = Vec::new();
    if let Ok(m) = file.metadata() {
        text.reserve_exact(m.len() as usize);
    }
    file.read_to_end(&mut text)?;
    Ok((file, text))
}

/// Read, scan and check movies.json at `abs` (`shown` in messages), with
/// the entry summaries remembered at `memo` (if given). Returns the file's
/// blake3 and the loaded entries.
///
/// Duplicate keys, hostile or repeated movie ids and invalid fields are
/// errors naming the entry; quality-marked sources are dropped, and so are
/// movies left without a source.
pub fn load_file(
    abs: &Path,
    shown: &Path,
    memo: Option<&Path>,
) -> Result<(blake3::Hash, MovieEntries), StageError> {
    load_file_with(abs, shown, memo, true)
}

/// [`load_file`] with the summaries builds remembered for project-relative
/// `rel` under `root`, which are only read: for readers that must write
/// nothing in `.pipe/` (the admin page's model list), and need not parse
/// again what the last build checked.
pub fn load_file_read_only(
    root: &Path,
    rel: &Path,
) -> Result<(blake3::Hash, MovieEntries), StageError> {
    let memo = memo_path(root, rel);
    load_file_with(&root.join(rel), rel, Some(&memo), false)
}

fn load_file_with(
    abs: &Path,
    shown: &Path,
    memo: Option<&Path>,
    write: bool,
) -> Result<(blake3::Hash, MovieEntries), StageError> {
    use rayon::prelude::*;
    let (file, text) = read_keeping_open(abs).map_err(|e| read_error(e, shown, "movie"))?;
    // The scan is sequential; the file's hash and the remembered summaries
    // are had meanwhile on another core.
    let ((parsed, raw, current, schema), (file_hash, mut remembered)) = rayon::join(
        || {
            let current = RefCell::new(None);
            let collected = RefCell::new(Vec::new());
            let schema = RefCell::new(None);
            let mut de = serde_json::Deserializer::from_slice(&text);
            let parsed = serde::Deserializer::deserialize_map(
                &mut de,
                RawTopVisitor {
                    current: &current,
                    entries: &collected,
                    schema: &schema,
                },
            )
            .and_then(|()| de.end());
            (
                parsed,
                collected.into_inner(),
                current.into_inner(),
                schema.into_inner(),
            )
        },
        || {
            let remembered = memo.map(read_memo).unwrap_or_default();
            (blake3::hash(&text), remembered)
        },
    );
    let digests: Vec<Digest> = raw
        .par_iter()
        .map(|(_, r)| *blake3::hash(r.get().as_bytes()).as_bytes())
        .collect();
    // Taken out of the map, not cloned: each is used once (an entry text
    // that occurs twice is parsed for its second occurrence).
    let known: Vec<Option<Summary>> = digests.iter().map(|d| remembered.remove(d)).collect();
    drop(remembered);
    // Every entry is checked (in parallel) before any error is reported,
    // and errors are reported in file order, as a single streaming parse
    // would; an entry remembered from an earlier build was checked then.
    let checked: Vec<Result<(Digest, Summary, bool), StageError>> = raw
        .par_iter()
        .zip(digests)
        .zip(known)
        .map(|(((key, r), digest), known)| {
            if let Some(s) = known {
                return Ok((digest, s, false));
            }
            let c = check_entry(&text, key, r.get(), shown)?;
            match c {
                Ok((m, dropped)) => Ok((digest, Summary::of(&m, dropped), true)),
                Err((movie_id, why)) => Err(StageError::new(format!(
                    "{}: movie {movie_id:?}: {why}. Fix that entry",
                    shown.display(),
                ))),
            }
        })
        .collect();
    // A syntax error stops the scan: an invalid entry before it is reported
    // first (it comes first in the file), then the syntax error.
    let first_bad = checked.iter().position(Result::is_err);
    if let Err(e) = parsed {
        if let Some(i) = first_bad {
            if let Some(Err(err)) = checked.into_iter().nth(i) {
                return Err(err);
            }
        }
        let (line, column) = (e.line(), e.column());
        return Err(describe_error(
            e,
            line,
            column,
            current.as_deref(),
            shown,
            "movie",
        ));
    }
    let base = text.as_ptr() as usize;
    type Checked = (Range<usize>, Result<(Digest, Summary, bool), StageError>);
    let mut entries: Vec<(String, Checked)> = raw
        .into_iter()
        .zip(checked)
        .map(|((key, r), c)| {
            let start = r.get().as_ptr() as usize - base;
            (key, (start..start + r.get().len(), c))
        })
        .collect();
    js_key_order(&mut entries);
    let total = entries.len();
    // Ids become file names: besides repeated ids, two that a common file
    // system would store as one file are refused (collision key → (id,
    // entry key)).
    let mut files: HashMap<String, (&str, &str)> = HashMap::with_capacity(total);
    for (key, (_, c)) in &entries {
        let (_, s, _) = match c {
            Ok(c) => c,
            Err(e) => return Err(StageError::new(e.message.clone())),
        };
        if let Some(why) = ids::id_problem(&s.movie_id) {
            return Err(StageError::new(format!(
                "{}: entry {key:?}: {}",
                shown.display(),
                ids::hostile_message(&s.movie_id, why)
            )));
        }
        let Some((other_id, other_key)) =
            files.insert(ids::collision_key(&s.movie_id), (&s.movie_id, key))
        else {
            continue;
        };
        if other_id == s.movie_id {
            return Err(StageError::new(format!(
                "{}: entries {other_key:?} and {key:?} both have movieId {:?}; movie ids must be \
                 unique. Merge the two entries or give one its correct id",
                shown.display(),
                s.movie_id
            )));
        }
        return Err(StageError::new(format!(
            "{}: entries {other_key:?} and {key:?} have movie ids {other_id:?} and {:?}: {}. \
             Fix the movieId of one of them (ids must differ by more than letter case or \
             Unicode normalization)",
            shown.display(),
            s.movie_id,
            ids::collision_reason(other_id, &s.movie_id)
        )));
    }
    drop(files);
    let parsed_now = entries
        .iter()
        .filter(|(_, (_, c))| matches!(c, Ok((_, _, true))))
        .count();
    let remember =
        write && memo.is_some_and(|path| parsed_now * REMEMBER_WHEN > total || !path.is_file());
    let mut dropped_sources = 0;
    let mut movies = Vec::with_capacity(total);
    let mut dropped = Vec::new();
    let mut dropped_ids = Vec::new();
    let mut memo_entries = Vec::with_capacity(total);
    for (_, (span, c)) in entries {
        // Every entry was checked above; an error cannot remain here.
        let Ok((digest, summary, _)) = c else {
            continue;
        };
        dropped_sources += summary.dropped_sources as usize;
        if remember {
            memo_entries.push((digest, summary.clone()));
        }
        let entry = Entry {
            span,
            digest,
            summary,
        };
        if entry.summary.kept {
            movies.push(entry);
        } else {
            dropped_ids.push(entry.summary.movie_id.clone());
            dropped.push(entry);
        }
    }
    if let Some(path) = memo.filter(|_| remember) {
        write_memo(path, memo_entries);
    }
    let schema_last_updated = schema;
    let keep_text = memo.is_none() || parsed_now * KEEP_TEXT_WHEN >= total;
    Ok((
        file_hash,
        MovieEntries {
            text: keep_text.then_some(text),
            file: Some(file),
            shown: shown.to_path_buf(),
            dropped_movies: total - movies.len(),
            dropped_ids,
            entries: total,
            dropped_sources,
            movies,
            dropped,
            schema_last_updated,
            parsed: parsed_now,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"{"type":"youtube","url":"u","id":"i","title":"t","addedAt":"a"}"#;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("movies.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn remembers_checked_entries_and_parses_only_changed_ones() {
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("memo.bin");
        let shown = Path::new("data/movies.json");
        let movie = |id: &str, title: &str, genre: &str| {
            format!(
                r#""{id}":{{"movieId":"{id}","title":"{title}","sources":[{SRC}],"metadata":{{"Genre":"{genre}"}}}}"#
            )
        };
        let one = format!(
            "{{\"_schema\":{{\"lastUpdated\":\"2026\"}},{},{},{}}}",
            movie("a", "A", "Drama"),
            movie("b", "B", "Comedy"),
            movie("c", "C", "Drama")
        );
        let p = write(d.path(), &one);
        let (_, first) = load_file(&p, shown, Some(&memo)).unwrap();
        assert_eq!(first.parsed, 3);
        assert_eq!(first.movies.len(), 3);
        assert_eq!(first.schema_last_updated.as_deref(), Some("2026"));
        assert_eq!(first.movies[2].summary.genre.as_deref(), Some("Drama"));

        let (_, again) = load_file(&p, shown, Some(&memo)).unwrap();
        assert_eq!(again.parsed, 0);
        assert_eq!(again.movies[1].summary, first.movies[1].summary);

        let two = one.replace(r#""title":"B""#, r#""title":"B2""#);
        let p = write(d.path(), &two);
        let (_, edited) = load_file(&p, shown, Some(&memo)).unwrap();
        assert_eq!(edited.parsed, 1);
        assert_ne!(edited.movies[1].digest, first.movies[1].digest);
        assert_eq!(edited.movies[0].digest, first.movies[0].digest);
        // Only the title changed: the shared tables' digest did not.
        assert_eq!(
            edited.movies[1].summary.shared,
            first.movies[1].summary.shared
        );
        assert!(std::str::from_utf8(&edited.text_of(1).unwrap())
            .unwrap()
            .contains("B2"));
    }

    #[test]
    fn a_few_changed_entries_leave_the_memo_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("memo.bin");
        let shown = Path::new("data/movies.json");
        let n = 2 * REMEMBER_WHEN;
        let text = |titles: &dyn Fn(usize) -> String| {
            let entries: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        r#""m{i}":{{"movieId":"m{i}","title":"{}","sources":[{SRC}]}}"#,
                        titles(i)
                    )
                })
                .collect();
            format!("{{{}}}", entries.join(","))
        };
        let p = write(d.path(), &text(&|i| format!("T{i}")));
        assert_eq!(load_file(&p, shown, Some(&memo)).unwrap().1.parsed, n);
        let remembered = std::fs::read(&memo).unwrap();
        // Two of 200 entries: not worth 17 MB of memo at 100,000 movies;
        // they are parsed again next time, and the memo is as it was.
        let p = write(
            d.path(),
            &text(&|i| format!("T{i}{}", if i < 2 { "x" } else { "" })),
        );
        for _ in 0..2 {
            let (_, loaded) = load_file(&p, shown, Some(&memo)).unwrap();
            assert_eq!(loaded.parsed, 2);
            assert_eq!(loaded.movies[1].summary.movie_id, "m1");
            assert_eq!(std::fs::read(&memo).unwrap(), remembered);
        }
        // Three: more than 1 in REMEMBER_WHEN, so the memo is written anew.
        let p = write(
            d.path(),
            &text(&|i| format!("T{i}{}", if i < 3 { "y" } else { "" })),
        );
        assert_eq!(load_file(&p, shown, Some(&memo)).unwrap().1.parsed, 3);
        assert_ne!(std::fs::read(&memo).unwrap(), remembered);
        assert_eq!(load_file(&p, shown, Some(&memo)).unwrap().1.parsed, 0);
    }

    #[test]
    fn a_small_edit_drops_the_text_and_reads_entries_back_checked() {
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("memo.bin");
        let shown = Path::new("data/movies.json");
        let movies: Vec<String> = (0..20)
            .map(|i| format!(r#""m{i}":{{"movieId":"m{i}","title":"T{i}","sources":[{SRC}]}}"#))
            .collect();
        let text = format!("{{{}}}", movies.join(","));
        let p = write(d.path(), &text);
        // Everything parsed: the text is kept.
        let (_, first) = load_file(&p, shown, Some(&memo)).unwrap();
        assert!(first.text.is_some());
        // One entry of 20 parsed again: dropped, and read back by span.
        let edited = text.replace(r#""title":"T7""#, r#""title":"T7b""#);
        let p = write(d.path(), &edited);
        let (_, again) = load_file(&p, shown, Some(&memo)).unwrap();
        assert_eq!(again.parsed, 1);
        assert!(again.text.is_none());
        assert!(std::str::from_utf8(&again.text_of(7).unwrap())
            .unwrap()
            .contains("T7b"));
        let m: serde_json::Value = again.parse(3, shown).unwrap();
        assert_eq!(m["title"], "T3");
        // The same file changed in place (same length) after loading: an
        // error, not another movie's bytes.
        std::fs::write(&p, edited.replace("T3", "X3")).unwrap();
        let e = again.text_of(3).unwrap_err().message;
        assert!(e.contains("changed while this build was running"), "{e}");
        // Replaced by a new file: the loaded one is still read.
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "{}").unwrap();
        assert!(again.text_of(4).is_ok());
    }

    #[test]
    fn a_read_only_load_uses_the_memo_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let rel = Path::new("data/movies.json");
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(
            d.path().join(rel),
            format!(r#"{{"a":{{"movieId":"a","title":"A","sources":[{SRC}]}}}}"#),
        )
        .unwrap();
        let memo = memo_path(d.path(), rel);
        // No memo yet: everything parsed, and none written.
        let (_, first) = load_file_read_only(d.path(), rel).unwrap();
        assert_eq!(first.parsed, 1);
        assert!(!memo.exists());
        // After a build remembered the entries: nothing parsed again.
        load_file(&d.path().join(rel), rel, Some(&memo)).unwrap();
        let (_, again) = load_file_read_only(d.path(), rel).unwrap();
        assert_eq!(again.parsed, 0);
        assert_eq!(again.movies[0].summary.movie_id, "a");
    }

    #[test]
    fn a_remembered_entry_is_still_checked_for_ids() {
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("memo.bin");
        let shown = Path::new("data/movies.json");
        let a = format!(r#""a":{{"movieId":"x","title":"A","sources":[{SRC}]}}"#);
        let p = write(d.path(), &format!("{{{a}}}"));
        load_file(&p, shown, Some(&memo)).unwrap();
        // The same entry text twice under two keys: both remembered, but
        // the repeated movieId is still an error.
        let b = a.replacen("\"a\"", "\"b\"", 1);
        let p = write(d.path(), &format!("{{{a},{b}}}"));
        let e = load_file(&p, shown, Some(&memo)).unwrap_err().message;
        assert!(e.contains("both have movieId \"x\""), "{e}");
        // A syntax error after a remembered entry is reported with its place.
        let p = write(d.path(), &format!("{{{a},\n \"b\": }}"));
        let e = load_file(&p, shown, Some(&memo)).unwrap_err().message;
        assert!(e.contains("line 2"), "{e}");
    }

    fn load(text: &str) -> Result<MovieEntries, StageError> {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), text);
        load_file(&p, Path::new("data/movies.json"), None).map(|(_, m)| m)
    }

    #[test]
    fn filters_sources_and_movies() {
        let text = format!(
            r#"{{"_schema":{{"lastUpdated":"2026"}},
              "a":{{"movieId":"a","title":"A","sources":[{SRC},{{"type":"youtube","qualityMarks":["trailer"]}}]}},
              "b":{{"movieId":"b","title":"B","sources":[{{"type":"youtube","qualityMarks":["x"]}}]}}}}"#
        );
        let c = load(&text).unwrap();
        assert_eq!(c.movies.len(), 1);
        assert_eq!(c.movies[0].summary.dropped_sources, 1);
        assert_eq!(c.dropped_movies, 1);
        assert_eq!(c.dropped_sources, 2);
        assert_eq!(c.input_timestamp(), "2026");
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
        let invalid = format!(r#"{{"a":{{"movieId":"a","title":7,"sources":[{SRC}]}}}}"#);
        let e = load(&invalid).unwrap_err().message;
        assert!(e.contains("movie \"a\": title must be"), "{e}");
    }

    #[test]
    fn ids_that_name_one_file_are_refused_at_load() {
        let entry = |key: &str, id: &str| {
            format!(r#""{key}":{{"movieId":"{id}","title":"A","sources":[{SRC}]}}"#)
        };
        // Letter case, on a dropped entry too: it comes back with a source.
        let dropped = r#""b":{"movieId":"youtube-Ab","title":"B","sources":[]}"#;
        let text = format!("{{{},{dropped}}}", entry("a", "youtube-aB"));
        let e = load(&text).unwrap_err().message;
        assert!(
            e.contains("data/movies.json: entries \"a\" and \"b\""),
            "{e}"
        );
        assert!(
            e.contains("letter case") && e.contains("Fix the movieId"),
            "{e}"
        );
        // NFC and NFD spellings.
        let text = format!(
            "{{{},{}}}",
            entry("a", "archive-P\u{e8}re69"),
            entry("b", "archive-Pe\u{300}re69")
        );
        let e = load(&text).unwrap_err().message;
        assert!(e.contains("NFC"), "{e}");
        // A reserved name and a 5,000-character id.
        let e = load(&format!("{{{}}}", entry("a", "NUL")))
            .unwrap_err()
            .message;
        assert!(e.contains("entry \"a\"") && e.contains("reserves"), "{e}");
        let long = "x".repeat(5000);
        let e = load(&format!("{{{}}}", entry("a", &long)))
            .unwrap_err()
            .message;
        assert!(e.contains("longer than 250 bytes"), "{e}");
        // Distinct ids are fine.
        let ok = format!(
            "{{{},{}}}",
            entry("a", "youtube-aB"),
            entry("b", "youtube-aC")
        );
        assert_eq!(load(&ok).unwrap().movies.len(), 2);
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
    fn an_unreadable_memo_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("memo.bin");
        std::fs::write(&memo, b"not a memo").unwrap();
        let p = write(
            d.path(),
            &format!(r#"{{"a":{{"movieId":"a","title":"A","sources":[{SRC}]}}}}"#),
        );
        let (_, loaded) = load_file(&p, Path::new("m.json"), Some(&memo)).unwrap();
        assert_eq!(loaded.parsed, 1);
        let (_, loaded) = load_file(&p, Path::new("m.json"), Some(&memo)).unwrap();
        assert_eq!(loaded.parsed, 0);
    }
}
