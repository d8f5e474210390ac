//! The vector part: the `vec_movies` table of one model — a function of the
//! model's embeddings file, its dimensions and metric (and quantization,
//! when it has one), and the ordered list of kept movie ids (nothing else of
//! movies.json), cached like the catalog. Obtained, built and described by
//! the stages' shared [`vector_part`](crate::stages::vector_part); with
//! `rescore` the float vectors are kept beside it in `vec_movies_float`.

use super::catalog_part::CatalogPart;
use super::{MoviesDbSpec, Origin};
use crate::manifest::model::Model;
use crate::stage::StageContext;
use crate::stages::vector_part::{self as shared, IdList, PartSpec};
pub(crate) use crate::stages::vector_part::{VectorError, VectorPart};
use crate::vectors::{ItemSource, VectorTable};

/// The vector part of `spec.model` over `catalog`'s movies: from the cache,
/// else built (and cached). `emb_hash` is `None` when the embeddings file
/// is missing (an empty table).
pub(crate) fn obtain(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    catalog: &CatalogPart,
    emb_hash: Option<&str>,
) -> Result<(VectorPart, Origin), VectorError> {
    let model = &spec.model;
    let table = table(model);
    let part = part_spec(model, &table, &catalog.ids_hash, emb_hash);
    // The kept movie ids in insertion order (the rowid order of `movies`).
    let shown = catalog.path.strip_prefix(ctx.root).unwrap_or(&catalog.path);
    shared::obtain(ctx, &part, |_| {
        shared::read_ids(
            &catalog.path,
            shown,
            "SELECT movieId FROM movies ORDER BY rowid",
            "read the movie ids",
        )
    })
}

/// The vector part of `spec.model` over the kept movies that `ids` lists
/// (in catalog order, whose hash is `ids_hash`; asked for only if the part
/// is built), taken from a loaded movies.json while the catalog part is
/// still being made.
pub(crate) fn obtain_for_ids(
    ctx: &StageContext,
    spec: &MoviesDbSpec,
    ids_hash: &str,
    ids: impl FnOnce() -> Vec<String>,
    emb_hash: Option<&str>,
) -> Result<(VectorPart, Origin), VectorError> {
    let model = &spec.model;
    let table = table(model);
    let part = part_spec(model, &table, ids_hash, emb_hash);
    shared::obtain(ctx, &part, |_| Ok(ids()))
}

fn part_spec<'a>(
    model: &'a Model,
    table: &'a VectorTable,
    ids_hash: &'a str,
    emb_hash: Option<&'a str>,
) -> PartSpec<'a> {
    PartSpec {
        cache: super::CACHE,
        format: super::PART_FORMAT,
        prefix: format!("vectors.{}.", model.id),
        table,
        src: source(model),
        emb_hash,
        naming: &[],
        ids_hash: ("movie-ids", ids_hash),
        float_table_field: true,
        id_list: IdList::Lines,
    }
}

/// The vector table of a movies.db: `vec_movies(movieId, embedding)`, and
/// `vec_movies_float` when the model rescores.
pub(crate) fn table(model: &Model) -> VectorTable {
    VectorTable::of_model("vec_movies", "movieId", model)
}

/// How messages about `model`'s stored vectors name them.
pub(crate) fn source(model: &Model) -> ItemSource<'_> {
    ItemSource {
        file: &model.embeddings,
        item: "movie",
        model: &model.id,
        model_file: &model.file,
    }
}
