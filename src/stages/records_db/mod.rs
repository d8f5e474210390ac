//! The `records-db` stage: a SQLite database of any records (products,
//! help articles, a film catalogue) with a sqlite-vec table per model, in
//! one of two layouts:
//!
//! * per model (`films-db@potion`, `{model}` in the path): one database per
//!   model, its vectors in `vec_records`;
//! * single (`films-db`): one database with a vector table per model,
//!   `<model>_embeddings` (`-` in the model id becomes `_`), each with its
//!   own dimensions, metric and quantization.
//!
//! Both have `records(id, <declared columns>)` (rows in id order, a rowid
//! table so FTS5 can index it), `records_fts` over the declared `fts`
//! columns, the `models` registry (which table holds which model, which
//! model is primary: what `pipe search` reads), `record_models` (which
//! models have a vector for each record) and `config` (provenance, the
//! same keys in both layouts: see `write_config`).
//!
//! Metrics are sqlite-vec's: `l2`, `cosine`, `l1`. An inner-product
//! (dot-product) model, as seed 004 has, is `cosine` on unit vectors: for
//! |a| = |b| = 1, a·b = 1 − cosine distance, so the ranking and the scores
//! (`pipe search` shows similarity = 1 − cosine distance) are the inner
//! product's.
//!
//! Incremental as movies-db is: the database is assembled from parts cached
//! under `.pipe/cache/records-db/` (see `stages::part_cache`): the
//! records part (the records table and its index, shared by every model's
//! database of the target) and one vector part per model, a function of its
//! embeddings file and the ordered list of ids only. An edit of a record's
//! fields rebuilds the records part and reuses every vector part; a model
//! whose embeddings changed rebuilds its own part only. Assembly is a fixed
//! sequence over the parts' bytes, so the result does not depend on where
//! the parts came from; no clock is read (`built_at` only from
//! SOURCE_DATE_EPOCH). The database is written to a temporary file and
//! renamed into place.

mod records_part;
mod vector_part;

pub use crate::records::{Layout, RecordsDbSpec};

use crate::artifact;
use crate::manifest::model::Model;
use crate::stage::{StageContext, StageError, StageOutput, Warning};
use crate::stages::file_set;
use crate::stages::part_cache::{self as cache, db_err_at, Origin};
use crate::stages::vector_part as shared;
use crate::vectors::VectorTable;
use records_part::RecordsPart;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::Path;
use vector_part::VectorPart;

/// Bump when the content or layout of a part changes: old entries then
/// stop matching and are rebuilt (and pruned).
const PART_FORMAT: &str = "records-db-parts-1";

/// The stage's directory in the part cache (`.pipe/cache/records-db/`).
const CACHE: &str = "records-db";

/// Page size of every database written; fixed so bytes never depend on the
/// SQLite default of the machine.
const PAGE_SIZE: u32 = 4096;

/// The key column of `records` and of every vector table.
pub const KEY: &str = "id";

/// The records table.
pub const RECORDS_TABLE: &str = "records";

/// The vector table of the per-model layout.
pub const PER_MODEL_TABLE: &str = "vec_records";

/// The name of `model_id`'s vector table in a database of `layout`.
pub fn vector_table_name(layout: Layout, model_id: &str) -> String {
    match layout {
        Layout::PerModel => PER_MODEL_TABLE.to_string(),
        Layout::Single => format!("{}_embeddings", model_id.replace('-', "_")),
    }
}

/// `model`'s vector table in a database of `layout`.
pub fn vector_table(layout: Layout, model: &Model) -> VectorTable {
    VectorTable::of_model(&vector_table_name(layout, &model.id), KEY, model)
}

/// One model's part of a database.
struct ModelPart<'a> {
    model: &'a Model,
    table: VectorTable,
    part: VectorPart,
    origin: Origin,
}

/// Build one database of a records target.
pub fn run(ctx: &StageContext, spec: &RecordsDbSpec) -> Result<StageOutput, StageError> {
    let mut out = StageOutput {
        untouched_are_unwritten: true,
        ..StageOutput::default()
    };
    let mut models: Vec<&Model> = spec.models.iter().collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    check_models(spec, &models)?;

    // Embeddings: hashed first, so a missing file is known before any work.
    let mut hashes = Vec::with_capacity(models.len());
    for model in &models {
        let file = spec.embeddings_of(model);
        let hash = ctx
            .input_hash(file)
            .map_err(|e| StageError::io(file, "read", e))?
            .map(|h| h.to_hex().to_string());
        if hash.is_none() {
            let w = embeddings_missing(spec, model, file);
            if ctx.settings.strict {
                return Err(StageError::new(format!("{}. Fix: {}", w.detail, w.fix)));
            }
            ctx.warn(&mut out, w);
        }
        hashes.push(hash);
    }

    let dest = ctx.abs(&spec.path);
    // A cache entry that cannot be assembled from (damaged on disk) is
    // discarded and the parts built again, once.
    let mut attempt = 0;
    let (records, records_origin, parts, tmp) = loop {
        attempt += 1;
        let (records, records_origin) = records_part::obtain(ctx, spec)?;
        let mut parts = Vec::with_capacity(models.len());
        let mut damaged = None;
        for (model, hash) in models.iter().zip(&hashes) {
            if ctx.is_cancelled() {
                return Err(StageError::cancelled());
            }
            let table = vector_table(spec.layout, model);
            let (part, origin) =
                match vector_part::obtain(ctx, spec, model, &table, &records, hash.as_deref()) {
                    Ok(v) => v,
                    Err(v) if v.ids_unreadable && attempt == 1 && !records_origin.is_new() => {
                        records_part::forget(&records);
                        damaged = Some(v.error);
                        break;
                    }
                    Err(v) => return Err(v.error),
                };
            parts.push(ModelPart {
                model,
                table,
                part,
                origin,
            });
        }
        if let Some(e) = damaged {
            let w = cache::damaged(ctx.target, &e);
            ctx.warn(&mut out, w);
            continue;
        }
        let tmp = artifact::temp_path_beside(&dest)
            .map_err(|e| StageError::io(&spec.path, "create a temporary file beside", e))?;
        match assemble(ctx, spec, &records, &parts, tmp.path()) {
            Ok(()) => break (records, records_origin, parts, tmp),
            Err(e)
                if attempt == 1
                    && !ctx.is_cancelled()
                    && (!records_origin.is_new() || parts.iter().any(|p| !p.origin.is_new())) =>
            {
                if !records_origin.is_new() {
                    records_part::forget(&records);
                }
                for p in parts.iter().filter(|p| !p.origin.is_new()) {
                    cache::discard(&p.part.path);
                }
                let w = cache::damaged(ctx.target, &e);
                ctx.warn(&mut out, w);
            }
            Err(e) => return Err(e),
        }
    };

    file_set::place_recycling(ctx, tmp, &spec.path, &mut out)?;
    out.deleted += file_set::remove_leftovers(ctx, &out.files)?;

    for p in &parts {
        for w in vector_warnings(spec, &records, p, hashes_present(&hashes, &models, p.model)) {
            ctx.warn(&mut out, w);
        }
    }
    let s = &mut out.stats;
    s.insert("records".into(), records.records.to_string());
    s.insert("records_part".into(), records_origin.as_str().into());
    for p in &parts {
        let id = &p.model.id;
        s.insert(format!("vectors.{id}"), p.part.with.to_string());
        s.insert(format!("vector_part.{id}"), p.origin.as_str().into());
    }
    Ok(out)
}

/// Whether `model`'s embeddings file exists.
fn hashes_present(hashes: &[Option<String>], models: &[&Model], model: &Model) -> bool {
    models
        .iter()
        .position(|m| m.id == model.id)
        .and_then(|i| hashes.get(i))
        .is_some_and(Option::is_some)
}

/// A database needs a model, and in the single layout two models must not
/// name the same vector table.
fn check_models(spec: &RecordsDbSpec, models: &[&Model]) -> Result<(), StageError> {
    if models.is_empty() {
        return Err(StageError::new(format!(
            "target {}: no models to build vectors for; add a models.d file or fix the target's `models`",
            spec.name
        )));
    }
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for m in models {
        let name = vector_table_name(spec.layout, &m.id);
        if spec.layout == Layout::Single {
            if let Some(other) = seen.insert(name.clone(), &m.id) {
                return Err(StageError::new(format!(
                    "target {}: models {other} and {} would share the vector table {name} \
                     (`-` becomes `_`); rename one of them",
                    spec.name, m.id
                )));
            }
        }
    }
    Ok(())
}

/// The warning (or, with --strict, the error) for a missing embeddings file.
fn embeddings_missing(spec: &RecordsDbSpec, model: &Model, file: &Path) -> Warning {
    Warning::new(
        "embeddings-missing",
        "embeddings file not found, so the model's vector table is empty",
        format!("{} ({})", model.id, file.display()),
        format!(
            "embeddings file {} of model {} not found: {}'s vector table for it will be empty",
            file.display(),
            model.id,
            spec.path.display()
        ),
        format!(
            "give the model an [embed] table so pipe makes its embeddings, or fix `embeddings` in its model file ({})",
            model.file.display()
        ),
    )
    .losing_data()
}

/// What the vectors and the records do not share: vectors of records that
/// are not in the records file, and records without a vector.
fn vector_warnings(
    spec: &RecordsDbSpec,
    records: &RecordsPart,
    p: &ModelPart,
    embeddings_present: bool,
) -> Vec<Warning> {
    let src = vector_part::source(p.model, spec.embeddings_of(p.model));
    let mut out = Vec::new();
    if !p.part.unknown_ids.is_empty() {
        out.push(shared::unknown_vectors(
            &src,
            &spec.records.input,
            "vectors-for-unknown-records",
            &p.part.unknown_ids,
            "regenerate the model's embeddings to drop the vectors of removed records (or restore the records)",
        ));
    }
    if p.part.without > 0 && embeddings_present {
        out.push(shared::without_vector(
            &src,
            p.part.without,
            records.records,
        ));
    }
    out
}

/// The registry, provenance and coverage tables.
const SCHEMA: &str = "CREATE TABLE models (model TEXT PRIMARY KEY, name TEXT, dimensions INTEGER, \
     metric TEXT, quantization TEXT, oversample INTEGER, vector_table TEXT, float_table TEXT, \
     is_primary INTEGER);
     CREATE TABLE record_models (id TEXT NOT NULL, model TEXT NOT NULL, PRIMARY KEY (id, model)) WITHOUT ROWID;
     CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT);";

/// Write the database to `dest` (a temporary path) from the parts, in a
/// fixed order that makes the bytes independent of where they came from:
/// the records part's bytes (laid out by `VACUUM INTO`), then each model's
/// vector table copied from its part (SQLite's transfer optimisation, in
/// model id order), then `models`, `record_models`, `config` and their
/// statistics.
fn assemble(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
    records: &RecordsPart,
    parts: &[ModelPart],
    dest: &Path,
) -> Result<(), StageError> {
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(&spec.path, what, err);
    let conn = cache::start_database(
        ctx,
        &records.path,
        "the records part",
        dest,
        &spec.path,
        records.records,
    )?;
    // One part attached at a time: SQLite attaches at most 10 databases.
    for p in parts {
        if ctx.is_cancelled() {
            return Err(StageError::cancelled());
        }
        cache::attach_part(&conn, &p.part.path, &spec.path, "attach a vector part")?;
        conn.execute_batch("BEGIN").map_err(e("begin"))?;
        conn.execute_batch(&p.table.create_sql())
            .map_err(e("create a vector table"))?;
        cache::copy_part(&conn, "vec").map_err(e("copy a vector part"))?;
        conn.execute_batch("COMMIT; DETACH DATABASE vec;")
            .map_err(e("detach a vector part"))?;
    }
    conn.execute_batch("BEGIN").map_err(e("begin"))?;
    conn.execute_batch(SCHEMA)
        .map_err(e("create the models tables"))?;
    write_models(&conn, spec, parts).map_err(e("insert models"))?;
    write_config(ctx, &conn, spec, records, parts).map_err(e("insert config"))?;
    conn.execute_batch(
        "ANALYZE main.models; ANALYZE main.record_models; ANALYZE main.config; COMMIT;",
    )
    .map_err(e("analyze"))?;
    conn.close()
        .map_err(|(_, err)| db_err_at(&spec.path, "close", err))?;
    Ok(())
}

/// The `models` registry and `record_models`.
fn write_models(
    conn: &Connection,
    spec: &RecordsDbSpec,
    parts: &[ModelPart],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "INSERT INTO models (model, name, dimensions, metric, quantization, oversample, \
         vector_table, float_table, is_primary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for p in parts {
        let t = &p.table;
        stmt.execute(params![
            p.model.id,
            p.model.name,
            t.dimensions,
            t.metric.as_str(),
            t.kind().map(|k| k.as_str()),
            t.quantization.map(|q| q.oversample),
            t.table,
            t.rescores().then_some(t.float_table.as_str()),
            p.model.id == spec.primary,
        ])?;
    }
    // Sorted, whatever the order of the tables: (id, model) is the key.
    let selects: Vec<String> = parts
        .iter()
        .map(|p| {
            format!(
                "SELECT {KEY} AS id, '{}' AS model FROM {}",
                p.model.id.replace('\'', "''"),
                records_part::quoted(&p.table.table)
            )
        })
        .collect();
    conn.execute_batch(&format!(
        "INSERT INTO record_models (id, model) SELECT id, model FROM ({}) ORDER BY id, model;",
        selects.join(" UNION ALL ")
    ))
}

/// The `config` rows, the same in both layouts:
///
/// * the database's own, unprefixed: `layout`, `models` (the model ids,
///   comma-separated, in table order), `primary_model`, `records`,
///   `pipe_version` and, only from SOURCE_DATE_EPOCH, `built_at`;
/// * each model's provenance, the keys movies-db writes
///   (`embedding_model_id`, `embeddings_blake3`, `records_with_vector`, …)
///   prefixed `<model>.`;
/// * in the per-model layout, whose database has one model, that model's
///   keys unprefixed too, as a movies.db has them, so that what reads a
///   movies.db's provenance reads a per-model records database alike.
fn write_config(
    ctx: &StageContext,
    conn: &Connection,
    spec: &RecordsDbSpec,
    records: &RecordsPart,
    parts: &[ModelPart],
) -> rusqlite::Result<()> {
    let mut config: Vec<(String, String)> = Vec::new();
    for p in parts {
        let model = p.model;
        let mut rows = model.identity_config();
        rows.extend([
            ("embedding_model_metric", model.metric.to_string()),
            ("embeddings_blake3", p.part.emb_hash.clone()),
            ("records_with_vector", p.part.with.to_string()),
            ("records_without_vector", p.part.without.to_string()),
            (
                "vectors_for_unknown_records",
                p.part.unknown_ids.len().to_string(),
            ),
        ]);
        rows.extend(model.quantization_config());
        if spec.layout == Layout::PerModel {
            config.extend(rows.iter().map(|(k, v)| (k.to_string(), v.clone())));
        }
        config.extend(
            rows.into_iter()
                .map(|(k, v)| (format!("{}.{k}", model.id), v)),
        );
    }
    let ids: Vec<&str> = parts.iter().map(|p| p.model.id.as_str()).collect();
    config.push(("layout".into(), spec.layout.to_string()));
    config.push(("models".into(), ids.join(",")));
    config.push(("records".into(), records.records.to_string()));
    config.push(("primary_model".into(), spec.primary.clone()));
    config.push(("pipe_version".into(), env!("CARGO_PKG_VERSION").to_string()));
    if let Some(secs) = ctx.settings.source_date_epoch {
        config.push(("built_at".into(), crate::movies::time::iso_from_epoch(secs)));
    }
    config.sort();
    let mut stmt = conn.prepare("INSERT INTO config (key, value) VALUES (?1, ?2)")?;
    for (k, v) in &config {
        stmt.execute(params![k, v])?;
    }
    Ok(())
}
