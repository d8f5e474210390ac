//! What a `records-db` target declares once the graph has expanded it:
//! the stage's input.

use super::{Column, RecordsSpec};
use crate::manifest::Model;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a records target lays out its databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One database per model (`{model}` in the path), like movies-db:
    /// target `X@model`.
    PerModel,
    /// One database with a vector table per model: target `X`.
    Single,
}

impl Layout {
    /// The name used in pipeline.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::PerModel => "per-model",
            Layout::Single => "single",
        }
    }

    /// A layout by its pipeline.toml name.
    pub fn parse(name: &str) -> Option<Layout> {
        match name {
            "per-model" => Some(Layout::PerModel),
            "single" => Some(Layout::Single),
            _ => None,
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One database of a records target (`films-db@potion` per model, or
/// `films-db` for the single layout).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordsDbSpec {
    /// The declared target's name (`films-db`).
    pub name: String,
    /// Where the records come from.
    pub records: RecordsSpec,
    /// Declared columns, in manifest order.
    pub columns: Vec<Column>,
    /// Columns that are full-text indexed (each one of `columns`, text).
    pub fts: Vec<String>,
    /// The layout.
    pub layout: Layout,
    /// The database, relative to the project root (`{model}` expanded).
    pub path: PathBuf,
    /// The models whose vectors it holds, by id: one for the per-model
    /// layout, every model the target uses for the single one.
    pub models: Vec<Model>,
    /// The default model's id (the one search uses unless told otherwise).
    pub primary: String,
    /// Per model id, the embeddings file (original format, key column
    /// `movie_id`) its vectors are read from: the one the records target's
    /// embeddings stage writes for a model with `[embed]`, the model file's
    /// `embeddings` otherwise.
    pub embeddings: BTreeMap<String, PathBuf>,
}

impl RecordsDbSpec {
    /// The embeddings file `model` is read from.
    pub fn embeddings_of<'a>(&'a self, model: &'a Model) -> &'a Path {
        self.embeddings
            .get(&model.id)
            .map(PathBuf::as_path)
            .unwrap_or(model.embeddings.as_path())
    }
}
