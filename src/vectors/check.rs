//! Vector validation: every vector is checked before it is stored (and a
//! query vector before it is searched for), with messages that name the
//! file, the item and the fix.

use super::{Quantization, VectorTable};
use std::path::Path;

/// Where stored vectors come from, for messages: nothing here knows what
/// the items are, the caller says.
#[derive(Clone, Copy, Debug)]
pub struct ItemSource<'a> {
    /// The file the vectors are read from (project-relative).
    pub file: &'a Path,
    /// What one item is called in messages: `movie`, `record`.
    pub item: &'a str,
    /// The model the vectors belong to.
    pub model: &'a str,
    /// The models.d file declaring it (project-relative).
    pub model_file: &'a Path,
}

/// A vector that cannot be stored; its message names the file, the item,
/// the model and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VectorProblem(pub String);

impl VectorTable {
    /// A stored vector of `found` bytes (-1: not a blob at all) where
    /// `4 × dimensions` are expected.
    pub fn wrong_size(&self, src: &ItemSource, id: &str, found: i64) -> VectorProblem {
        let expected = u64::from(self.dimensions) * 4;
        let hint = if found > 0 && found % 4 == 0 {
            format!(" ({} dimensions)", found / 4)
        } else {
            String::new()
        };
        VectorProblem(format!(
            "{}: the vector of {} {id:?} has {found} bytes{hint}, but model {} has {} \
             dimensions ({expected} bytes of float32). The usual cause is the embeddings file of \
             another model at this path; point `embeddings` of model {} at its own file or regenerate it",
            src.file.display(),
            src.item,
            src.model,
            self.dimensions,
            src.model
        ))
    }

    /// A stored vector whose SQLite type (`kind`) is not a blob.
    pub fn not_blob(&self, src: &ItemSource, id: &str, kind: &str) -> VectorProblem {
        VectorProblem(format!(
            "{}: the vector of {} {id:?} is stored as {kind}, not as a blob of float32; \
             regenerate the embeddings of model {}",
            src.file.display(),
            src.item,
            src.model
        ))
    }

    /// Check a float32 blob before it is stored: its length, finite
    /// components, and for int8 that every component is in [-1, 1].
    pub fn check_stored(
        &self,
        src: &ItemSource,
        id: &str,
        blob: &[u8],
    ) -> Result<(), VectorProblem> {
        if blob.len() as u64 != u64::from(self.dimensions) * 4 {
            return Err(self.wrong_size(src, id, blob.len() as i64));
        }
        let mut floats = blob
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if let Some(pos) = floats.clone().position(|x| !x.is_finite()) {
            return Err(VectorProblem(format!(
                "{}: the vector of {} {id:?} has a NaN or infinite component (index {pos}); \
                 regenerate this {}'s embedding for model {}",
                src.file.display(),
                src.item,
                src.item,
                src.model
            )));
        }
        // vec_quantize_int8(v, 'unit') maps [-1, 1] onto the 256 steps;
        // outside it the value would wrap around, silently.
        if self.kind() == Some(Quantization::Int8) {
            if let Some((pos, x)) = floats
                .by_ref()
                .enumerate()
                .find(|(_, x)| !(-1.0..=1.0).contains(x))
            {
                return Err(VectorProblem(format!(
                    "{}: component {pos} of the vector of {} {id:?} is {x}, outside [-1, 1]: \
                     model {} has quantization = \"int8\", which maps [-1, 1] onto 256 steps \
                     (unit-normalised vectors are always inside). Normalise the embeddings, or use \
                     quantization = \"bit\" or none ({})",
                    src.file.display(),
                    src.item,
                    src.model,
                    src.model_file.display()
                )));
            }
        }
        Ok(())
    }

    /// Check a query vector (from `source`, e.g. a file) against the
    /// table: its length and finite components.
    pub fn check_query(
        &self,
        vector: &[f32],
        source: &str,
        model: &str,
    ) -> Result<(), VectorProblem> {
        if vector.len() != self.dimensions as usize {
            return Err(VectorProblem(format!(
                "{source}: wrong vector length: found {} numbers, expected {} for model {model}",
                vector.len(),
                self.dimensions,
            )));
        }
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(VectorProblem(format!(
                "{source}: component {i} of the vector is not a finite number"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::{to_le_bytes, Metric, Quantized};

    #[test]
    fn problems_name_the_item_and_the_fix() {
        let src = ItemSource {
            file: Path::new("data/e.db"),
            item: "record",
            model: "m",
            model_file: Path::new("models.d/m.toml"),
        };
        let int8 = Some(Quantized {
            kind: Quantization::Int8,
            rescore: false,
            oversample: 8,
        });
        let t = VectorTable::new("t", "id", 2, Metric::L2, int8);
        let err = t.check_stored(&src, "r1", &[0; 12]).unwrap_err().0;
        assert!(
            err.contains("record \"r1\" has 12 bytes (3 dimensions)"),
            "{err}"
        );
        let err = t
            .check_stored(&src, "r1", &to_le_bytes(&[0.0, f32::NAN]))
            .unwrap_err()
            .0;
        assert!(
            err.contains("index 1") && err.contains("this record's"),
            "{err}"
        );
        let err = t
            .check_stored(&src, "r1", &to_le_bytes(&[0.0, 1.5]))
            .unwrap_err()
            .0;
        assert!(
            err.contains("outside [-1, 1]") && err.contains("models.d/m.toml"),
            "{err}"
        );
        assert!(t
            .check_stored(&src, "r1", &to_le_bytes(&[0.5, -1.0]))
            .is_ok());
        assert!(t.check_query(&[1.0], "q", "m").is_err());
        assert!(t.check_query(&[1.0, f32::INFINITY], "q", "m").is_err());
    }
}
