//! An embedding model, as declared by one drop-in file in `models.d/`.

use serde::Serialize;
use std::path::PathBuf;

/// The distance metric of a model's vector table (`distance_metric=` of vec0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance, sqlite-vec's default and the original pipeline's.
    L2,
    /// Cosine distance (similarity = 1 − distance).
    Cosine,
    /// Manhattan distance.
    L1,
}

impl Metric {
    /// The name sqlite-vec uses in `distance_metric=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::L1 => "l1",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One embedding model: validated, with paths relative to the project root.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Model {
    /// Short identifier used in target names (`movies-db@potion`) and paths.
    pub id: String,
    /// Display name (`Potion Base 2M`).
    pub name: String,
    /// Vector length; every embedding must have exactly this many float32s.
    pub dimensions: u32,
    /// Distance metric of the vector table.
    pub metric: Metric,
    /// The model's embeddings database, relative to the project root.
    pub embeddings: PathBuf,
    /// User-facing description.
    pub description: String,
    /// Whether this is the default model (exactly one is, after resolution).
    pub default: bool,
    /// The models.d file this model was declared in, relative to the root.
    #[serde(skip)]
    pub file: PathBuf,
}
