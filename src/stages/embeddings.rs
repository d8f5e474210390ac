//! The `embeddings` stage: one model's embeddings file, made by the
//! provider its model file names (`[embed]`), re-embedding only what changed.
//!
//! The records are every movie of movies.json (as in the original's
//! generators: movies whose sources are all quality-marked too), or the
//! records of a `records-db` target ([`crate::records`]) with its text
//! template, read a chunk at a time. A record's text
//! ([`crate::embed::text`]) and the model's vector-changing options make its
//! key ([`crate::embed::cache::key`]); only keys not in the model's vector
//! cache are sent to the provider, and the vectors are stored in the cache
//! as each batch arrives, so an interrupted build resumes with the rest.
//! The output is the original's format: `embeddings(movie_id TEXT PRIMARY
//! KEY, embedding BLOB NOT NULL, created_at TEXT NOT NULL)` with
//! `idx_embeddings_created_at`, and `config` naming the model; rows in
//! movie-id order, `created_at` from SOURCE_DATE_EPOCH or the movie's
//! `lastUpdated` (else the file's timestamp), written to a temporary file
//! renamed into place: the same inputs give the same bytes.

use crate::artifact;
use crate::embed::batch::{embed_all, BatchPlan};
use crate::embed::cache::{self, Key, RecordKeys, VectorCache};
use crate::embed::config::TextTemplate;
use crate::embed::config::{EmbedConfig, ProviderKind};
use crate::embed::text::TextMaker;
use crate::manifest::Model;
use crate::movies::entries::MovieEntries;
use crate::stage::Warning;
use crate::stage::{StageContext, StageError, StageOutput};
use crate::stages::file_set;
use rayon::prelude::*;
use rusqlite::params;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an `embeddings@<model>` target declares.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingsSpec {
    /// Where the records come from.
    pub source: Source,
    /// The model; its `embed` is set and its `embeddings` is the output.
    pub model: Model,
}

/// Where an embeddings target's records and their texts come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Every movie of movies.json (relative to the project root), as text
    /// the model's template (or the original's markdown) makes.
    Movies(PathBuf),
    /// The records of records-db target `target`, as text its template
    /// makes for this model.
    Records {
        /// The declared records target (`films-db`): it names the cache.
        target: String,
        /// How to read the records.
        records: crate::records::RecordsSpec,
        /// The text template.
        text: TextTemplate,
    },
}

impl Source {
    /// The file the records are read from (project-relative).
    pub fn input(&self) -> &Path {
        match self {
            Source::Movies(p) => p,
            Source::Records { records, .. } => &records.input,
        }
    }
}

impl EmbeddingsSpec {
    /// The model's `[embed]` table.
    pub fn embed(&self) -> Result<&EmbedConfig, StageError> {
        self.model.embed.as_ref().ok_or_else(|| {
            StageError::new(format!(
                "model {} has no [embed] table in {}",
                self.model.id,
                self.model.file.display()
            ))
        })
    }

    /// The files besides movies.json that decide the vectors: a model2vec
    /// model's files, and the files a command's arguments name (its script).
    pub fn extra_inputs(&self, root: &Path) -> Vec<PathBuf> {
        let Some(embed) = &self.model.embed else {
            return Vec::new();
        };
        match embed.provider {
            ProviderKind::Model2Vec => embed
                .path
                .iter()
                .flat_map(|dir| {
                    crate::embed::providers::model2vec::MODEL_FILES
                        .iter()
                        .map(move |f| dir.join(f))
                })
                .collect(),
            ProviderKind::Command => embed
                .command
                .iter()
                .skip(1)
                .filter_map(|a| crate::manifest::paths::project_path(a).ok())
                .filter(|p| root.join(p).is_file())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Where a target's vector cache and record keys live: per model for
/// movies.json, per records target and model otherwise (each output keeps
/// only the vectors it uses, so two outputs cannot share one cache).
fn cache_paths(root: &Path, spec: &EmbeddingsSpec) -> (PathBuf, PathBuf) {
    let dir = cache::dir(root);
    let stem = match &spec.source {
        Source::Movies(_) => spec.model.id.clone(),
        Source::Records { target, .. } => format!("{target}@{}", spec.model.id),
    };
    (
        dir.join(format!("{stem}.vectors")),
        dir.join(format!("{stem}.records")),
    )
}

/// Where the stamp of the output the record keys describe is kept
/// (`<stem>.stamp` beside the `.records` file).
fn stamp_path(records_path: &Path) -> PathBuf {
    records_path.with_extension("stamp")
}

/// Bump when [`write_file`] writes other bytes for the same rows: a file
/// written otherwise is never patched ([`patch_file`]).
const FILE_WRITER: &str = "embeddings-file-1";

/// What wrote an embeddings file: [`FILE_WRITER`], SQLite's version and
/// pipe's.
fn writer_fingerprint() -> Key {
    let mut h = blake3::Hasher::new();
    let parts = [FILE_WRITER, rusqlite::version(), env!("CARGO_PKG_VERSION")];
    crate::fingerprint::update_parts(&mut h, parts.map(str::as_bytes));
    *h.finalize().as_bytes()
}

/// Which output the saved record keys describe: saved after them, so a
/// build killed in between leaves a stamp that matches neither.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct FileStamp {
    /// blake3 of the embeddings file.
    file: Key,
    /// blake3 of the `.records` file saved with it.
    keys: Key,
    /// [`writer_fingerprint`] of what wrote it.
    writer: Key,
}

/// The options a record's key is made of: the provider's vector-changing
/// options, the dimensions, and the content of the files that decide the
/// vectors (a model2vec model, a command's script).
fn key_options(
    spec: &EmbeddingsSpec,
    embed: &EmbedConfig,
    extra: &[(PathBuf, Option<blake3::Hash>)],
) -> BTreeMap<String, String> {
    let mut o = embed.vector_options();
    o.insert("dimensions".into(), spec.model.dimensions.to_string());
    for (path, hash) in extra {
        o.insert(
            format!("file:{}", path.display()),
            hash.map(|h| h.to_hex().to_string()).unwrap_or_default(),
        );
    }
    o
}

/// One record of the output: what is kept of every record until the file
/// is written, so kept small (~100 bytes at a 10-byte id): the id without
/// spare capacity, and `created_at` shared (every record of a records
/// input, and every movie without its own `lastUpdated`, has the same one).
struct Record {
    id: Box<str>,
    key: Key,
    created_at: Arc<str>,
}

/// A record's id, `created_at` and text (or its key, when the last build's
/// is still good), before its key is known.
struct Text {
    id: String,
    created_at: Arc<str>,
    made: Made,
    /// The digest of the record's source, when it has one (a movies.json
    /// entry): remembered so the next build can take the key unmade.
    source: Option<Key>,
}

/// What became of a record's text.
enum Made {
    /// The text, made now.
    Text(String),
    /// The key the last build made from the same source with the same
    /// maker; its vector is cached.
    Known(Key),
}

/// blake3 over everything a record's key is made of besides the record
/// itself: a remembered key is taken only when this is unchanged (pipe's
/// version is in it, for the default text is pipe's code).
fn maker_fingerprint(options: &BTreeMap<String, String>, embed: &EmbedConfig) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(b"pipe-key-maker-1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    let template = embed.template.as_ref().map(|t| t.source.as_str());
    let parts = options
        .iter()
        .flat_map(|(k, v)| [k.as_str(), v.as_str()])
        .chain([template.unwrap_or("\u{0}default"), embed.prefix.as_str()]);
    crate::fingerprint::update_parts(&mut h, parts.map(str::as_bytes));
    *h.finalize().as_bytes()
}

/// Records whose texts are made (in parallel) and handed on together:
/// bounds what is held to one chunk of texts.
const CHUNK: usize = 2048;

/// What the records are read from: movies.json loaded, or a records file
/// streamed when the texts are made.
enum Loaded<'a> {
    Movies(&'a MovieEntries),
    Records,
}

/// Every record's text, a chunk at a time, to `each`. `known(id, digest)`
/// is the key of a movie whose entry has the digest it had at the last
/// build, if that key's vector is cached: its text is not made again.
fn texts(
    root: &Path,
    spec: &EmbeddingsSpec,
    embed: &EmbedConfig,
    loaded: &Loaded,
    settings_epoch: Option<i64>,
    known: &(dyn Fn(&str, &Key) -> Option<Key> + Sync),
    each: &mut dyn FnMut(Vec<Text>),
) -> Result<(), StageError> {
    match (&spec.source, loaded) {
        (Source::Movies(movies), Loaded::Movies(entries)) => {
            let maker =
                TextMaker::new(embed.template.as_ref(), &embed.prefix).map_err(StageError::new)?;
            let fallback_time: Arc<str> = match settings_epoch {
                Some(e) => crate::movies::time::iso_from_epoch(e),
                None => entries.input_timestamp(),
            }
            .into();
            let all: Vec<&crate::movies::entries::Entry> = entries
                .movies
                .iter()
                .chain(entries.dropped.iter())
                .collect();
            for chunk in all.chunks(CHUNK) {
                let made = chunk
                    .par_iter()
                    .map(|e| {
                        let created_at = match settings_epoch {
                            Some(_) => fallback_time.clone(),
                            None => e
                                .summary
                                .last_updated
                                .as_deref()
                                .map(Arc::from)
                                .unwrap_or_else(|| fallback_time.clone()),
                        };
                        if let Some(key) = known(&e.summary.movie_id, &e.digest) {
                            return Ok(Text {
                                id: e.summary.movie_id.clone(),
                                created_at,
                                made: Made::Known(key),
                                source: Some(e.digest),
                            });
                        }
                        let movie: serde_json::Value =
                            serde_json::from_slice(&entries.entry_text(e)?).map_err(|err| {
                                StageError::new(format!(
                                    "{}: movie {:?}: {err}",
                                    movies.display(),
                                    e.summary.movie_id
                                ))
                            })?;
                        let text = maker.text(&movie).map_err(|err| {
                            StageError::new(format!("{err} (movie {:?})", e.summary.movie_id))
                        })?;
                        Ok(Text {
                            id: e.summary.movie_id.clone(),
                            created_at,
                            made: Made::Text(text),
                            source: Some(e.digest),
                        })
                    })
                    .collect::<Result<Vec<_>, StageError>>()?;
                each(made);
            }
            Ok(())
        }
        (Source::Records { records, text, .. }, _) => {
            let maker = TextMaker::for_records(text, &embed.prefix).map_err(StageError::new)?;
            // Records carry no time of their own.
            let created_at: Arc<str> =
                crate::movies::time::iso_from_epoch(settings_epoch.unwrap_or(0)).into();
            let file = &records.input;
            let mut reader = crate::records::read(root, records)?;
            let mut ordinal = 0u64;
            loop {
                let mut chunk = Vec::with_capacity(CHUNK);
                for r in reader.by_ref().take(CHUNK) {
                    ordinal += 1;
                    chunk.push((r?, ordinal));
                }
                if chunk.is_empty() {
                    return Ok(());
                }
                let made = chunk
                    .into_par_iter()
                    .map(|(r, n)| {
                        let fields =
                            crate::records::id::position_context(&r.fields, &r.position, n);
                        let text =
                            maker
                                .text(&serde_json::Value::Object(fields))
                                .map_err(|err| {
                                    crate::records::RecordError::at(file, r.position.clone(), err)
                                        .with_id(r.id.clone())
                                })?;
                        Ok(Text {
                            id: r.id,
                            created_at: created_at.clone(),
                            made: Made::Text(text),
                            source: None,
                        })
                    })
                    .collect::<Result<Vec<_>, StageError>>()?;
                each(made);
            }
        }
        (Source::Movies(_), Loaded::Records) => Err(StageError::new(
            "movies.json was not loaded for its embeddings target",
        )),
    }
}

/// Every record's key and, for keys not cached, its text.
struct Planned {
    /// Sorted by id.
    records: Vec<Record>,
    /// Unique keys to embed, with their texts (without spare capacity),
    /// in key order.
    missing: Vec<(Key, Box<str>)>,
    counts: Counts,
    /// The space of the keys ([`crate::embed::share::space`]).
    space: String,
    /// What made the keys ([`maker_fingerprint`]), and each record's source
    /// digest in the order of `records` (empty unless every record has one:
    /// movies.json's entries do, a records file's records do not).
    maker: Key,
    sources: Vec<Key>,
    /// When the records (ids) are those of the last build's keys file: that
    /// file's hash and the positions whose key changed.
    patch: Option<FilePatch>,
}

/// What [`patch_file`] needs from the plan.
struct FilePatch {
    /// blake3 of the last build's `.records` file.
    keys: Key,
    /// Positions in `records` whose key differs from the last build's.
    changed_at: Vec<usize>,
}

/// How many records are new, changed, unchanged and removed since the last
/// successful build, and how many texts a build sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Records now.
    pub records: usize,
    /// Records whose id the last build did not have.
    pub new: usize,
    /// Records whose text or options changed.
    pub changed: usize,
    /// Records of the last build that are gone.
    pub removed: usize,
    /// Texts whose vectors are not cached: what the build sends.
    pub to_send: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records: {} new, {} changed, {} removed; {} texts to embed",
            self.records, self.new, self.changed, self.removed, self.to_send
        )
    }
}

/// Compute every record's text and key and compare with the cache and the
/// last build. `hash` gives the content hash of a project-relative file.
/// Without `keep_texts` (explain, status) the texts to send are counted,
/// not kept: their place in `missing` holds an empty string.
fn plan(
    root: &Path,
    spec: &EmbeddingsSpec,
    loaded: &Loaded,
    keep_texts: bool,
    settings_epoch: Option<i64>,
    cache: &VectorCache,
    hash: &dyn Fn(&Path) -> Option<blake3::Hash>,
) -> Result<Planned, StageError> {
    let embed = spec.embed()?;
    let extra: Vec<(PathBuf, Option<blake3::Hash>)> = spec
        .extra_inputs(root)
        .into_iter()
        .map(|p| {
            let h = hash(&p);
            (p, h)
        })
        .collect();
    let options = key_options(spec, embed, &extra);
    let maker = maker_fingerprint(&options, embed);
    let (_, records_path) = cache_paths(root, spec);
    // The last build's keys by id with the digests they were made from, if
    // the same maker made them (only movies.json's entries have digests).
    let last = match &spec.source {
        Source::Movies(_) => RecordKeys::read(&records_path),
        Source::Records { .. } => None,
    };
    let remembered = last
        .as_deref()
        .map(|bytes| RecordKeys::remembered(bytes, &maker))
        .unwrap_or_default();
    let known = |id: &str, digest: &Key| -> Option<Key> {
        let (was, key) = remembered.get(id)?;
        (was == digest && cache.contains(key)).then_some(*key)
    };
    let mut records: Vec<Record> = Vec::new();
    let mut sources: Vec<Key> = Vec::new();
    let mut every_source = true;
    // Keys to send, made unique below.
    let mut missing = Vec::new();
    texts(
        root,
        spec,
        embed,
        loaded,
        settings_epoch,
        &known,
        &mut |chunk| {
            let made: Vec<(Record, Option<Box<str>>, Option<Key>)> = chunk
                .into_par_iter()
                .map(|t| {
                    let (key, text) = match t.made {
                        Made::Known(key) => (key, None),
                        Made::Text(text) => {
                            let key = cache::key(&options, &text);
                            // Only texts to send are kept: at 100k movies all
                            // texts would be ~70 MB for an edit that sends one.
                            let text = if cache.contains(&key) {
                                None
                            } else if keep_texts {
                                Some(text.into_boxed_str())
                            } else {
                                Some(Box::from(""))
                            };
                            (key, text)
                        }
                    };
                    let record = Record {
                        id: t.id.into_boxed_str(),
                        key,
                        created_at: t.created_at,
                    };
                    (record, text, t.source)
                })
                .collect();
            for (r, text, source) in made {
                if let Some(text) = text {
                    missing.push((r.key, text));
                }
                match source {
                    Some(d) if every_source => sources.push(d),
                    _ => every_source = false,
                }
                records.push(r);
            }
        },
    )?;
    // Unique, in key order: sorted in place rather than through a set of
    // the keys seen (~50 MB at a million texts, most of them first seen).
    missing.sort_unstable_by_key(|m: &(Key, Box<str>)| m.0);
    missing.dedup_by(|a, b| a.0 == b.0);
    drop(remembered);
    drop(last);
    if every_source && sources.len() == records.len() && !records.is_empty() {
        let mut both: Vec<(Record, Key)> = records.into_iter().zip(sources).collect();
        both.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        (records, sources) = both.into_iter().unzip();
    } else {
        sources = Vec::new();
        records.sort_by(|a, b| a.id.cmp(&b.id));
    }
    let mut counts = Counts {
        records: records.len(),
        to_send: missing.len(),
        ..Counts::default()
    };
    // What the last build had, sorted by id as `records` is: one merge,
    // nothing held per record but the positions whose key changed.
    let mut next = 0;
    let mut changed_at = Vec::new();
    let keys_bytes = RecordKeys::read(&records_path).unwrap_or_default();
    RecordKeys::each_in(&keys_bytes, |id, key| {
        while records.get(next).is_some_and(|r| &*r.id < id) {
            counts.new += 1;
            next += 1;
        }
        match records.get(next) {
            Some(r) if &*r.id == id => {
                if r.key != *key {
                    counts.changed += 1;
                    changed_at.push(next);
                }
                next += 1;
            }
            _ => counts.removed += 1,
        }
    });
    counts.new += records.len() - next;
    // The same records as the last build's output: it may be patched.
    let patch =
        (counts.new == 0 && counts.removed == 0 && !keys_bytes.is_empty()).then(|| FilePatch {
            keys: *blake3::hash(&keys_bytes).as_bytes(),
            changed_at,
        });
    Ok(Planned {
        records,
        missing,
        counts,
        space: crate::embed::share::space(&options),
        maker,
        sources,
        patch,
    })
}

/// What a build of `spec` would do now: for `pipe explain`, `pipe status`
/// and `pipe build -n`. Reads the records and the cache; sends nothing.
pub fn pending(root: &Path, spec: &EmbeddingsSpec) -> Result<Counts, StageError> {
    let entries = match &spec.source {
        Source::Movies(movies) => {
            Some(crate::movies::entries::load_file(&root.join(movies), movies, None)?.1)
        }
        Source::Records { .. } => None,
    };
    let loaded = match &entries {
        Some(e) => Loaded::Movies(e),
        None => Loaded::Records,
    };
    let (vectors_path, _) = cache_paths(root, spec);
    let cache = if vectors_path.is_file() {
        VectorCache::open(&vectors_path, spec.model.dimensions as usize)
            .map_err(|e| StageError::io(&vectors_path, "read", e))?
    } else {
        // Never create the cache just to look.
        let tmp = tempfile::tempdir()
            .map_err(|e| StageError::io(root, "use a temporary directory in", e))?;
        VectorCache::open(&tmp.path().join("empty"), spec.model.dimensions as usize)
            .map_err(|e| StageError::io(&vectors_path, "read", e))?
    };
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok());
    let hash = |p: &Path| crate::fingerprint::hash_file(&root.join(p)).ok();
    Ok(plan(root, spec, &loaded, false, epoch, &cache, &hash)?.counts)
}

/// How often progress is reported while embedding.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Build the embeddings file of one model.
pub fn run(ctx: &StageContext, spec: &EmbeddingsSpec) -> Result<StageOutput, StageError> {
    let embed = spec.embed()?;
    let model = &spec.model;
    let dims = model.dimensions as usize;
    let _turn = in_process_turn(ctx, embed);
    // A stage that runs has, nearly always, texts to send (an unchanged
    // input does not run it), and a model2vec model takes a tenth of a
    // second or more to load: it loads on a thread of its own while
    // movies.json is read and the keys are planned. Only model2vec: it is
    // in process and has no side effects (a command's process is started
    // only when there are texts for it).
    let mut preloaded = matches!(embed.provider, ProviderKind::Model2Vec).then(|| {
        let (embed, model, root) = (embed.clone(), model.clone(), ctx.root.to_path_buf());
        std::thread::spawn(move || crate::embed::providers::build_provider(&embed, &model, &root))
    });
    let entries = match &spec.source {
        Source::Movies(movies) => Some(crate::movies::entries::load(ctx, movies)?),
        Source::Records { .. } => None,
    };
    let (vectors_path, records_path) = cache_paths(ctx.root, spec);
    let cache = VectorCache::open(&vectors_path, dims)
        .map_err(|e| StageError::io(&vectors_path, "open the vector cache", e))?;
    let mut out = StageOutput::default();
    if cache.damaged > 0 {
        let msg = Warning::new(
            "vector-cache-damaged",
            "damaged entries of the vector cache were discarded",
            format!("{} ({})", model.id, cache.damaged),
            format!(
                "{} damaged entries in the vector cache {} were discarded; their texts are embedded again",
                cache.damaged,
                vectors_path.display()
            ),
            "nothing to do: the texts were embedded again (a disk or a killed build damaged the cache)",
        );
        ctx.warn(&mut out, msg);
    }
    let hash = |p: &Path| ctx.input_hash(p).ok().flatten();
    let loaded = match &entries {
        Some(e) => Loaded::Movies(e),
        None => Loaded::Records,
    };
    let mut planned = plan(
        ctx.root,
        spec,
        &loaded,
        true,
        ctx.settings.source_date_epoch,
        &cache,
        &hash,
    )?;
    drop(entries);
    let total = planned.records.len();
    let shared = match ctx.shared_vectors {
        Some(share) if !planned.missing.is_empty() => {
            take_shared(ctx, share, &cache, &vectors_path, dims, &mut planned)?
        }
        _ => 0,
    };
    let to_send = planned.missing.len();
    let mut stats = crate::embed::batch::BatchStats::default();
    if to_send > 0 {
        if ctx.is_cancelled() {
            return Err(StageError::cancelled());
        }
        ctx.progress.progress(
            (total - to_send) as u64,
            total as u64,
            &format!("starting the provider for {to_send} texts"),
        );
        let provider = match preloaded.take() {
            Some(loading) => loading.join().map_err(|_| {
                StageError::new(format!("{}: loading the model failed", ctx.target))
            })?,
            None => crate::embed::providers::build_provider(embed, model, ctx.root),
        }
        .map_err(|e| StageError::new(format!("{}: {e}", ctx.target)))?;
        let plan = BatchPlan {
            batch: embed.batch.unwrap_or(provider.max_batch()).max(1),
            parallel: embed.parallel.unwrap_or(provider.max_parallel()).max(1),
            dimensions: dims,
            retry: embed.retry_policy(),
        };
        let texts: Vec<&str> = planned.missing.iter().map(|(_, t)| &**t).collect();
        let done = AtomicUsize::new(0);
        let started = Instant::now();
        let last_report = Mutex::new(Instant::now() - PROGRESS_EVERY);
        let already = total - to_send;
        let on_batch = |first: usize, vectors: Vec<Vec<f32>>| -> Result<(), String> {
            let pairs: Vec<(Key, &[f32])> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (planned.missing[first + i].0, v.as_slice()))
                .collect();
            cache
                .append(&pairs)
                .map_err(|e| format!("cannot store vectors in {}: {e}", vectors_path.display()))?;
            let n = done.fetch_add(vectors.len(), Ordering::Relaxed) + vectors.len();
            let mut last = match last_report.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if last.elapsed() >= PROGRESS_EVERY || n == to_send {
                *last = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let rate = n as f64 / secs;
                let eta = if rate > 0.0 {
                    (to_send - n) as f64 / rate
                } else {
                    0.0
                };
                ctx.progress.progress(
                    (already + n) as u64,
                    total as u64,
                    &format!("embedded {n}/{to_send} texts, {rate:.0} texts/s, ETA {eta:.0} s"),
                );
            }
            Ok(())
        };
        stats = match embed_all(provider.as_ref(), &texts, &plan, ctx.cancelled, &on_batch) {
            Ok(s) => s,
            Err(e) => {
                let kept = done.load(Ordering::Relaxed);
                if ctx.is_cancelled() {
                    return Err(StageError::new(format!(
                        "cancelled after embedding {kept} of {to_send} texts; they are kept in \
                         the cache and the next build sends only the other {}",
                        to_send - kept
                    )));
                }
                return Err(StageError::new(format!(
                    "{}: {e}\n{kept} of {to_send} texts were embedded and are kept in the cache: \
                     the next build sends only the other {}",
                    ctx.target,
                    to_send - kept
                )));
            }
        };
    }
    // The texts are sent: not held while the file is written.
    planned.missing = Vec::new();
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }

    // The file, from the cache, in id order.
    let dest_rel = &model.embeddings;
    let dest = ctx.abs(dest_rel);
    let tmp = artifact::temp_path_beside(&dest)
        .map_err(|e| StageError::io(dest_rel, "create a temporary file beside", e))?;
    let patched = match &planned.patch {
        Some(p) => patch_file(
            ctx,
            spec,
            embed,
            &planned.records,
            p,
            &records_path,
            &cache,
            tmp.path(),
        )?,
        None => false,
    };
    if !patched {
        write_file(ctx, spec, embed, &planned.records, &cache, tmp.path())?;
    }
    let (file_hash, unchanged) = file_set::place(ctx, tmp, dest_rel, &mut out)?;
    out.untouched_are_unwritten = unchanged;
    out.stats.insert(
        "file".into(),
        if patched { "patched" } else { "written" }.into(),
    );

    let keys: Vec<Key> = planned.records.iter().map(|r| r.key).collect();
    if let Some(share) = ctx.shared_vectors {
        share.offer(&planned.space, dims, &keys, &|k| {
            cache.get(k).ok().flatten()
        });
    }

    // Only what the output uses stays cached; the record keys are what the
    // next explain compares with. Both best effort: losing them costs
    // embedding again, never a wrong vector.
    if let Err(e) = cache.compact(&keys) {
        let msg = Warning::new(
            "vector-cache-unsaved",
            "the vector cache could not be compacted",
            model.id.clone(),
            format!(
                "cannot compact the vector cache {}: {e}",
                vectors_path.display()
            ),
            "check the disk space and permissions of .pipe/cache/embeddings/",
        );
        ctx.warn(&mut out, msg);
    }
    let saved = planned.records.iter().map(|r| (&*r.id, &r.key));
    let sources = (!planned.sources.is_empty()).then_some((&planned.maker, &planned.sources[..]));
    let _ = std::fs::remove_file(stamp_path(&records_path));
    let saved = RecordKeys::save_each(&records_path, saved, sources).and_then(|keys| {
        let stamp = FileStamp {
            file: *file_hash.as_bytes(),
            keys: *keys.as_bytes(),
            writer: writer_fingerprint(),
        };
        let bytes = postcard::to_allocvec(&stamp).map_err(std::io::Error::other)?;
        artifact::write_atomic(&stamp_path(&records_path), &bytes)
    });
    if let Err(e) = saved {
        let msg = Warning::new(
            "vector-cache-unsaved",
            "the record keys of the vector cache could not be saved",
            model.id.clone(),
            format!("cannot save {}: {e}", records_path.display()),
            "check the disk space and permissions of .pipe/cache/embeddings/ (explain will count every record as new)",
        );
        ctx.warn(&mut out, msg);
    }

    let c = planned.counts;
    let s = &mut out.stats;
    s.insert("records".into(), c.records.to_string());
    s.insert("new".into(), c.new.to_string());
    s.insert("changed".into(), c.changed.to_string());
    s.insert("removed".into(), c.removed.to_string());
    s.insert("texts_sent".into(), stats.texts.to_string());
    s.insert("requests".into(), stats.requests.to_string());
    s.insert("retries".into(), stats.retries.to_string());
    s.insert(
        "reused".into(),
        (c.records - (to_send + shared).min(c.records)).to_string(),
    );
    if ctx.shared_vectors.is_some() {
        s.insert("shared".into(), shared.to_string());
    }
    s.insert("provider".into(), embed.provider.to_string());
    Ok(out)
}

/// Embeddings targets whose provider runs in this process (model2vec)
/// take turns: each already uses every core (texts are made and encoded in
/// parallel), so two at once only split the cores while holding two plans
/// and two models (at a million records, ~400 MB each). HTTP and command
/// providers wait on the network or another process, and run side by side.
static IN_PROCESS: Mutex<()> = Mutex::new(());

/// This target's turn at [`IN_PROCESS`], if its provider needs one: held
/// until the stage ends.
fn in_process_turn(
    ctx: &StageContext,
    embed: &EmbedConfig,
) -> Option<std::sync::MutexGuard<'static, ()>> {
    if !matches!(embed.provider, ProviderKind::Model2Vec) {
        return None;
    }
    match IN_PROCESS.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => {
            ctx.progress
                .progress(0, 1, "waiting for another model2vec target to finish");
            // Its job is lent meanwhile (a head start may take it).
            ctx.progress.waiting(true);
            let turn = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
            ctx.progress.waiting(false);
            Some(turn)
        }
    }
}

/// Take the vectors of `planned.missing` that other machines embedded (the
/// remote cache) into the local cache, and drop them from what is sent.
/// How many were taken.
fn take_shared(
    ctx: &StageContext,
    share: &dyn crate::embed::share::SharedVectors,
    cache: &VectorCache,
    vectors_path: &Path,
    dims: usize,
    planned: &mut Planned,
) -> Result<usize, StageError> {
    let total = planned.records.len() as u64;
    let wanted = planned.missing.len();
    ctx.progress.progress(
        total - wanted as u64,
        total,
        &format!("asking the remote cache for {wanted} vectors"),
    );
    let keys: Vec<Key> = planned.missing.iter().map(|(k, _)| *k).collect();
    let got = share.fetch(&planned.space, dims, &keys);
    if got.is_empty() {
        return Ok(0);
    }
    // Checked again here: nothing reaches the cache unchecked.
    let got: Vec<(Key, Vec<f32>)> = got
        .into_iter()
        .filter(|(_, v)| v.len() == dims && v.iter().all(|x| x.is_finite()))
        .collect();
    let pairs: Vec<(Key, &[f32])> = got.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    cache
        .append(&pairs)
        .map_err(|e| StageError::io(vectors_path, "store vectors in", e))?;
    let taken: HashSet<Key> = got.iter().map(|(k, _)| *k).collect();
    planned.missing.retain(|(k, _)| !taken.contains(k));
    planned.counts.to_send = planned.missing.len();
    Ok(taken.len())
}

/// Make the embeddings database at `path` (a temporary file) from the last
/// build's output by replacing, in place, the vectors whose key changed,
/// when that gives the bytes [`write_file`] would write (`true`; else
/// `path` is left empty for it). It does when the file on disk is the one
/// the last build's record keys describe (its stamp), written by this
/// writer, and holds the same ids in the same order with the same
/// `created_at` and `config`: an `UPDATE` of a blob of the same length
/// rewrites the row in place, and only the header's change counter (bytes
/// 24–27) and version-valid-for number (92–95) then differ from a fresh
/// file, so they are put back (tests/embeddings.rs compares patched files
/// with clean builds'). A one-movie edit then rewrites one row, not all.
#[allow(clippy::too_many_arguments)]
fn patch_file(
    ctx: &StageContext,
    spec: &EmbeddingsSpec,
    embed: &EmbedConfig,
    records: &[Record],
    plan: &FilePatch,
    records_path: &Path,
    cache: &VectorCache,
    path: &Path,
) -> Result<bool, StageError> {
    use std::os::unix::fs::FileExt;
    let model = &spec.model;
    let shown = &model.embeddings;
    let dest = ctx.abs(shown);
    let Some(stamp) = std::fs::read(stamp_path(records_path))
        .ok()
        .and_then(|b| postcard::from_bytes::<FileStamp>(&b).ok())
    else {
        return Ok(false);
    };
    if stamp.keys != plan.keys || stamp.writer != writer_fingerprint() {
        return Ok(false);
    }
    match crate::fingerprint::hash_file(&dest) {
        Ok(h) if *h.as_bytes() == stamp.file => {}
        _ => return Ok(false),
    }
    let give_up = |path: &Path| -> Result<bool, StageError> {
        std::fs::File::create(path)
            .map_err(|e| StageError::io(shown, "empty the temporary file of", e))?;
        Ok(false)
    };
    if std::fs::copy(&dest, path).is_err() {
        return give_up(path);
    }
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|f| f.read_exact_at(&mut header, 0));
    if read.is_err() {
        return give_up(path);
    }
    let e = |what: &'static str| {
        move |err: rusqlite::Error| {
            StageError::with_source(format!("{}: cannot {what}: {err}", shown.display()), err)
        }
    };
    let same = {
        let conn = crate::sqlite::open(path).map_err(e("open"))?;
        conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .map_err(e("configure"))?;
        let same = same_rows(&conn, spec, embed, records).map_err(e("read"))?;
        if same {
            conn.execute_batch("BEGIN").map_err(e("begin"))?;
            {
                let mut update = conn
                    .prepare("UPDATE embeddings SET embedding = ?2 WHERE movie_id = ?1")
                    .map_err(e("prepare"))?;
                let mut blob = Vec::with_capacity(model.dimensions as usize * 4);
                for &i in &plan.changed_at {
                    let r = &records[i];
                    vector_blob(cache, r, shown, &mut blob)?;
                    update
                        .execute(params![&*r.id, blob])
                        .map_err(e("replace a vector"))?;
                }
            }
            conn.execute_batch("COMMIT").map_err(e("commit"))?;
        }
        conn.close().map_err(|(_, err)| {
            StageError::with_source(format!("{}: cannot close: {err}", shown.display()), err)
        })?;
        same
    };
    if !same {
        return give_up(path);
    }
    let put_back = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.write_all_at(&header[24..28], 24)?;
            f.write_all_at(&header[92..96], 92)
        });
    if put_back.is_err() {
        return give_up(path);
    }
    Ok(true)
}

/// Whether the embeddings file open in `conn` holds `records`' ids in
/// order, each with its `created_at` and a vector of the model's size, and
/// the `config` this build writes.
fn same_rows(
    conn: &rusqlite::Connection,
    spec: &EmbeddingsSpec,
    embed: &EmbedConfig,
    records: &[Record],
) -> rusqlite::Result<bool> {
    let want: Vec<(String, String)> = config_rows(spec, embed)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let have: Vec<(String, String)> = conn
        .prepare("SELECT key, ifnull(value, '') FROM config ORDER BY rowid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if have != want {
        return Ok(false);
    }
    let size = i64::from(spec.model.dimensions) * 4;
    let mut stmt = conn
        .prepare("SELECT movie_id, created_at, length(embedding) FROM embeddings ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    let mut expected = records.iter();
    while let Some(row) = rows.next()? {
        let Some(r) = expected.next() else {
            return Ok(false);
        };
        let same = matches!(row.get_ref(0)?, rusqlite::types::ValueRef::Text(t) if t == r.id.as_bytes())
            && matches!(row.get_ref(1)?, rusqlite::types::ValueRef::Text(t) if t == r.created_at.as_bytes())
            && row.get::<_, i64>(2)? == size;
        if !same {
            return Ok(false);
        }
    }
    Ok(expected.next().is_none())
}

/// The `config` rows of a model's embeddings file.
fn config_rows(spec: &EmbeddingsSpec, embed: &EmbedConfig) -> Vec<(&'static str, String)> {
    let mut config = spec.model.identity_config();
    config.push(("embedding_provider", embed.provider.to_string()));
    if !embed.model.is_empty() {
        config.push(("embedding_provider_model", embed.model.clone()));
    }
    config
}

/// The cached vector of `r` as a float32 blob, into `blob`.
fn vector_blob(
    cache: &VectorCache,
    r: &Record,
    shown: &Path,
    blob: &mut Vec<u8>,
) -> Result<(), StageError> {
    let v = cache
        .get(&r.key)
        .map_err(|err| StageError::io(shown, "read the vector cache for", err))?
        .ok_or_else(|| {
            StageError::new(format!(
                "the cached vector of record {:?} was damaged while this build ran; run the build again",
                r.id
            ))
        })?;
    blob.clear();
    for x in &v {
        blob.extend_from_slice(&x.to_le_bytes());
    }
    Ok(())
}

/// Write the embeddings database to `path` (a temporary file).
fn write_file(
    ctx: &StageContext,
    spec: &EmbeddingsSpec,
    embed: &EmbedConfig,
    records: &[Record],
    cache: &VectorCache,
    path: &Path,
) -> Result<(), StageError> {
    let model = &spec.model;
    let shown = &model.embeddings;
    let e = |what: &'static str| {
        move |err: rusqlite::Error| {
            StageError::with_source(format!("{}: cannot {what}: {err}", shown.display()), err)
        }
    };
    let conn = crate::sqlite::open(path).map_err(e("create"))?;
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;",
    )
    .map_err(e("configure"))?;
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE embeddings (movie_id TEXT PRIMARY KEY, embedding BLOB NOT NULL, created_at TEXT NOT NULL);
         CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT);",
    )
    .map_err(e("create the tables"))?;
    {
        let mut insert = conn
            .prepare("INSERT INTO embeddings (movie_id, embedding, created_at) VALUES (?1, ?2, ?3)")
            .map_err(e("prepare"))?;
        let mut blob = Vec::with_capacity(model.dimensions as usize * 4);
        for (i, r) in records.iter().enumerate() {
            if i % 1000 == 0 && ctx.is_cancelled() {
                return Err(StageError::cancelled());
            }
            vector_blob(cache, r, shown, &mut blob)?;
            insert
                .execute(params![&*r.id, blob, &*r.created_at])
                .map_err(e("insert a vector"))?;
        }
    }
    let config = config_rows(spec, embed);
    {
        let mut stmt = conn
            .prepare("INSERT INTO config (key, value) VALUES (?1, ?2)")
            .map_err(e("prepare"))?;
        for (k, v) in &config {
            stmt.execute(params![k, v]).map_err(e("insert config"))?;
        }
    }
    conn.execute_batch("CREATE INDEX idx_embeddings_created_at ON embeddings(created_at); COMMIT;")
        .map_err(e("index"))?;
    conn.close().map_err(|(_, err)| {
        StageError::with_source(format!("{}: cannot close: {err}", shown.display()), err)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// What every record costs until the file is written: 64 bytes (it
    /// was 80, with a `created_at` string of its own) besides its id.
    #[test]
    fn a_planned_record_is_small() {
        assert!(std::mem::size_of::<super::Record>() <= 64);
    }
}
