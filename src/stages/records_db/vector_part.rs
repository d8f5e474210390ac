//! A vector part: one model's vector table of a records database — a
//! function of the model's embeddings file, its dimensions, metric and
//! quantization, the table's name and the ordered list of record ids
//! (nothing else of the records), so editing a record's fields (not its
//! text) reuses every model's part, and a model whose embeddings did not
//! change keeps its part when another model's did. Obtained, built and
//! described by the stages' shared [`vector_part`](crate::stages::vector_part).

use super::records_part::RecordsPart;
use super::{CACHE, PART_FORMAT};
use crate::manifest::model::Model;
use crate::records::RecordsDbSpec;
use crate::stage::StageContext;
use crate::stages::part_cache::Origin;
use crate::stages::vector_part::{self as shared, IdList, PartSpec};
pub(crate) use crate::stages::vector_part::{VectorError, VectorPart};
use crate::vectors::{ItemSource, VectorTable};
use std::path::Path;

/// How messages about `model`'s stored vectors name them.
pub(crate) fn source<'a>(model: &'a Model, file: &'a Path) -> ItemSource<'a> {
    ItemSource {
        file,
        item: "record",
        model: &model.id,
        model_file: &model.file,
    }
}

/// The vector part of `model` (stored as `table`) over `records`' ids:
/// from the cache, else built. `emb_hash` is `None` when the embeddings
/// file is missing (an empty table).
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &RecordsDbSpec,
    model: &Model,
    table: &VectorTable,
    records: &RecordsPart,
    emb_hash: Option<&str>,
) -> Result<(VectorPart, Origin), VectorError> {
    let part = PartSpec {
        cache: CACHE,
        format: PART_FORMAT,
        prefix: format!("vectors.{}.{}.{}.", spec.name, spec.layout, model.id),
        table,
        src: source(model, spec.embeddings_of(model)),
        emb_hash,
        naming: &[("table", &table.table), ("key", &table.key)],
        ids_hash: ("record-ids", &records.ids_hash),
        float_table_field: false,
        id_list: IdList::Json,
    };
    shared::obtain(ctx, &part, |shown| {
        shared::read_ids(
            &records.path,
            shown,
            "SELECT id FROM records ORDER BY rowid",
            "read the record ids",
        )
    })
}
