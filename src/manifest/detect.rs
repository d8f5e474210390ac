//! Model detection: embeddings files in the data directory that no model
//! file declares (with what they hold and the model file to add), and
//! embeddings files whose own `config` disagrees with their model file.
//!
//! An embeddings file is the original's format: an `embeddings(movie_id,
//! embedding, created_at)` table of little-endian float32 blobs, and a
//! `config` table that may name the model (`embedding_model`) and the
//! dimensions (`embedding_dimensions`) it was made with.

use crate::manifest::{Manifest, Model};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What an embeddings file holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EmbeddingsFile {
    /// Project-relative path.
    pub path: PathBuf,
    /// Rows of its `embeddings` table.
    pub vectors: u64,
    /// The vector length, from the blob size (bytes / 4), when every
    /// vector has the same; `None` when empty or mixed.
    pub dimensions: Option<u32>,
    /// `config.embedding_model`, if set.
    pub config_model: Option<String>,
    /// `config.embedding_dimensions`, if set.
    pub config_dimensions: Option<String>,
}

impl EmbeddingsFile {
    /// The id a model file for it would have: from the conventional name
    /// `embeddings-<id>-movies.db`, else the file's `config`, else the
    /// file name.
    pub fn suggested_id(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(id) = name
            .strip_prefix("embeddings-")
            .and_then(|n| n.strip_suffix("-movies.db"))
            .filter(|id| crate::manifest::model::valid_id(id))
        {
            return id.to_string();
        }
        if let Some(id) = self
            .config_model
            .as_deref()
            .filter(|id| crate::manifest::model::valid_id(id))
        {
            return id.to_string();
        }
        let stem = name.strip_suffix(".db").unwrap_or(&name);
        let id: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        id.trim_matches('-').to_string()
    }

    /// The lines of a model file (`models.d/<id>.toml`) that declares it.
    pub fn model_file_lines(&self) -> String {
        let id = self.suggested_id();
        let dims = self.dimensions.map_or_else(
            || "0  # the length of its vectors".to_string(),
            |d| d.to_string(),
        );
        format!(
            "id = \"{id}\"\nname = \"{id}\"\ndimensions = {dims}\nembeddings = \"{}\"\n",
            self.path.display()
        )
    }
}

/// Read what an embeddings file holds (`abs`, shown as `rel`). `Err` when
/// it is not an embeddings database.
pub fn read(abs: &Path, rel: &Path) -> Result<EmbeddingsFile, String> {
    let conn = crate::sqlite::open_read_only(abs).map_err(|e| e.to_string())?;
    let sizes: Vec<(Option<i64>, u64)> = conn
        .prepare("SELECT length(embedding), count(*) FROM embeddings GROUP BY 1 ORDER BY 1")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| e.to_string())?;
    let vectors = sizes.iter().map(|(_, n)| n).sum();
    let dimensions = match sizes.as_slice() {
        [(Some(bytes), _)] if *bytes > 0 && bytes % 4 == 0 => u32::try_from(bytes / 4).ok(),
        _ => None,
    };
    let (config_model, config_dimensions) = config_of(&conn);
    Ok(EmbeddingsFile {
        path: rel.to_path_buf(),
        vectors,
        dimensions,
        config_model,
        config_dimensions,
    })
}

/// `config.embedding_model` and `config.embedding_dimensions` of an open
/// embeddings file (absent keys, or no `config` table: `None`).
pub fn config_of(conn: &rusqlite::Connection) -> (Option<String>, Option<String>) {
    let config = |key: &str| -> Option<String> {
        conn.query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
            r.get::<_, Option<String>>(0)
        })
        .ok()
        .flatten()
    };
    (config("embedding_model"), config("embedding_dimensions"))
}

/// Embeddings files (`*.db` with an `embeddings` table) in the data
/// directories (those of the declared embeddings files, and `data/`) that
/// no model file declares, sorted by path.
pub fn undeclared(manifest: &Manifest) -> Vec<EmbeddingsFile> {
    let declared: BTreeSet<&Path> = manifest
        .models
        .iter()
        .map(|m| m.embeddings.as_path())
        .collect();
    let mut dirs: BTreeSet<PathBuf> = manifest
        .models
        .iter()
        .map(|m| {
            m.embeddings
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
        .collect();
    dirs.insert(PathBuf::from("data"));
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(manifest.root.join(&dir)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".db") && !n.starts_with(crate::artifact::TEMP_PREFIX))
            .collect();
        names.sort();
        for name in names {
            let rel = dir.join(&name);
            if declared.contains(rel.as_path()) {
                continue;
            }
            if let Ok(file) = read(&manifest.root.join(&rel), &rel) {
                found.push(file);
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// When the file's own `config` names another model or other dimensions
/// than `model`'s file declares: a message naming both. `sharing` are the
/// ids of the models declared over the same file (a quantized variant
/// reads its float original's file, whose config names the original).
pub fn config_mismatch(model: &Model, file: &EmbeddingsFile, sharing: &[&str]) -> Option<String> {
    let other_model = file
        .config_model
        .as_deref()
        .filter(|m| *m != model.id && !sharing.contains(m));
    let other_dims = file
        .config_dimensions
        .as_deref()
        .filter(|d| d.trim() != model.dimensions.to_string());
    if other_model.is_none() && other_dims.is_none() {
        return None;
    }
    let theirs = match (
        file.config_model.as_deref(),
        file.config_dimensions.as_deref(),
    ) {
        (Some(m), Some(d)) => format!("model `{m}` with {d} dimensions"),
        (Some(m), None) => format!("model `{m}`"),
        (None, Some(d)) => format!("{d} dimensions"),
        (None, None) => String::new(),
    };
    Some(format!(
        "{}'s config says it was made by {theirs}, but {} declares model `{}` with {} dimensions over it; \
         fix `embeddings` or `dimensions` in {}, or regenerate the file",
        file.path.display(),
        model.file.display(),
        model.id,
        model.dimensions,
        model.file.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, model: Option<&str>, dims: Option<&str>) -> EmbeddingsFile {
        EmbeddingsFile {
            path: path.into(),
            vectors: 3,
            dimensions: Some(384),
            config_model: model.map(str::to_string),
            config_dimensions: dims.map(str::to_string),
        }
    }

    #[test]
    fn a_config_naming_another_model_or_dimensions_is_a_mismatch() {
        let model = Model {
            id: "potion".into(),
            name: "P".into(),
            dimensions: 64,
            metric: crate::manifest::Metric::L2,
            embeddings: "data/e.db".into(),
            description: String::new(),
            default: false,
            quantization: None,
            ollama_model: None,
            embed: None,
            file: "models.d/potion.toml".into(),
        };
        let same = file("data/e.db", Some("potion"), Some("64"));
        assert_eq!(config_mismatch(&model, &same, &[]), None);
        let other = file("data/e.db", Some("nomic"), Some("768"));
        let msg = config_mismatch(&model, &other, &[]).unwrap();
        assert!(msg.contains("model `nomic` with 768 dimensions"), "{msg}");
        assert!(
            msg.contains("models.d/potion.toml declares model `potion` with 64"),
            "{msg}"
        );
        // A variant over its original's file.
        let original = file("data/e.db", Some("orig"), Some("64"));
        assert_eq!(config_mismatch(&model, &original, &["orig"]), None);
        let dims = file("data/e.db", None, Some("32"));
        assert!(config_mismatch(&model, &dims, &["orig"])
            .unwrap()
            .contains("32 dimensions"));
    }

    #[test]
    fn suggests_an_id_and_the_model_file() {
        let f = file("data/embeddings-minilm-movies.db", Some("other"), None);
        assert_eq!(f.suggested_id(), "minilm");
        assert_eq!(
            f.model_file_lines(),
            "id = \"minilm\"\nname = \"minilm\"\ndimensions = 384\nembeddings = \"data/embeddings-minilm-movies.db\"\n"
        );
        assert_eq!(
            file("data/vectors.db", Some("e5"), None).suggested_id(),
            "e5"
        );
        assert_eq!(
            file("data/My Vectors.db", None, None).suggested_id(),
            "my-vectors"
        );
    }
}
