//! `pipe init --records FILE`: a project for records of any shape. The
//! records file (JSON, JSON Lines or CSV) is read up to its first record to
//! propose the target: which field is the id, which fields become columns
//! (with their SQLite type), which are full-text indexed, and the text each
//! model embeds. A model2vec model given with `--model2vec DIR` is copied
//! into the project and its dimensions read from it, so the project builds
//! at once; without one, the model file says where to put one.
//!
//! What is proposed is only a start, and the files say so: a later record
//! may hold other fields, or a field with another type (columns are
//! declared nullable, and a value that does not fit is a build error
//! naming the record and field).

use super::{refuse_existing, write_new, InitError, InitReport};
use crate::embed::config::{EmbedConfig, ProviderKind};
use crate::records::{Format, IdRule, RecordsSpec};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// What `pipe init --records` creates.
#[derive(Clone, Debug)]
pub struct RecordsInitSpec {
    /// The project directory (created if missing).
    pub dir: PathBuf,
    /// The records file: inside `dir` it is used where it is, elsewhere it
    /// is copied into `dir/data/`.
    pub records: PathBuf,
    /// A model2vec model directory to copy into `dir/models/`.
    pub model2vec: Option<PathBuf>,
}

/// The fields that name an id, in the order they are preferred.
const ID_FIELDS: [&str; 7] = ["id", "_id", "uuid", "sku", "slug", "key", "name"];

/// The id rule for a first record: a field that looks like an id and holds
/// a string or an integer, else the JSON object's key, else the position.
fn id_rule(first: &Map<String, Value>, format: Format) -> (String, &'static str) {
    let usable = |k: &str| {
        matches!(
            first.get(k),
            Some(Value::String(_)) | Some(Value::Number(_))
        )
    };
    let named = ID_FIELDS.iter().find(|k| usable(k)).map(|k| k.to_string());
    let suffixed = || {
        first
            .keys()
            .find(|k| (k.ends_with("_id") || k.ends_with("Id")) && usable(k))
            .cloned()
    };
    match named.or_else(suffixed) {
        Some(field) => (field, "the field that holds each record's id"),
        None if format == Format::Json => (
            "{{ _key }}".into(),
            "no id field found: the key of each record in the JSON object",
        ),
        None => (
            "{{ _n }}".into(),
            "no id field found: the record's number in the file (ids shift when records are inserted; an id field is better)",
        ),
    }
}

/// The SQLite type of a first value, as pipeline.toml names it (nullable).
fn column_type(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(_) => Some("text?"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer?"),
        Value::Number(_) => Some("real?"),
        Value::Bool(_) => Some("integer?"),
        Value::Null => Some("text?"),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// `name` as a TOML key: bare when it can be, else quoted.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        toml_string(name)
    }
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.replace('"', "")))
}

/// Whether minijinja can name the field as `{{ field }}`.
fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first record of a records file (any id).
fn first_record(
    root: &Path,
    input: &Path,
    format: Format,
) -> Result<Map<String, Value>, InitError> {
    let spec = RecordsSpec {
        input: input.to_path_buf(),
        format,
        id: IdRule::Template("{{ _n }}".into()),
        file_names: false,
        columns: Vec::new(),
    };
    let mut records = crate::records::read(root, &spec)
        .map_err(|e| InitError::Usage(format!("--records: {e}")))?;
    match records.next() {
        Some(Ok(r)) => Ok(r.fields),
        Some(Err(e)) => Err(InitError::Usage(format!("--records: {e}"))),
        None => Err(InitError::Usage(format!(
            "--records {}: the file holds no record; pipe init reads the first one to propose the columns",
            input.display()
        ))),
    }
}

/// The pipeline.toml of a records project.
pub fn pipeline_toml(input: &Path, format: Format, first: &Map<String, Value>) -> String {
    let (id, id_note) = id_rule(first, format);
    let mut columns = Vec::new();
    let mut skipped = Vec::new();
    let mut texts = Vec::new();
    let mut others = Vec::new();
    for (name, value) in first {
        if *name == id {
            continue;
        }
        // CSV values are all strings: a number is recognised by its text.
        let ty = match value {
            Value::String(s) if format == Format::Csv && s.trim().parse::<i64>().is_ok() => {
                Some("integer?")
            }
            Value::String(s) if format == Format::Csv && s.trim().parse::<f64>().is_ok() => {
                Some("real?")
            }
            other => column_type(other),
        };
        match ty {
            Some(ty) => columns.push(format!("{} = \"{ty}\"", toml_key(name))),
            None => skipped.push(name.as_str()),
        }
        if identifier(name) {
            let words = matches!(value, Value::String(s) if s.trim().parse::<f64>().is_err());
            if ty == Some("text?") && words {
                texts.push(name.as_str());
            } else if ty.is_some() {
                others.push(name.as_str());
            }
        }
    }
    let fts: Vec<String> = texts.iter().map(|t| toml_string(t)).collect();
    // The text fields, else any field minijinja can name, else the id.
    let embedded = match (texts.is_empty(), others.is_empty()) {
        (false, _) => texts.clone(),
        (true, false) => others.clone(),
        (true, true) if identifier(&id) => vec![id.as_str()],
        (true, true) => Vec::new(),
    };
    let text = if embedded.is_empty() {
        "{{ _key }}".to_string()
    } else {
        embedded
            .iter()
            .map(|t| format!("{{{{ {t} }}}}"))
            .collect::<Vec<_>>()
            .join(". ")
    };
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            "# Not columns (arrays or objects; a text template can still use them): {}\n",
            skipped.join(", ")
        )
    };
    format!(
        r#"# pipe: an embedding database of records (written by `pipe init --records`).
#
# Proposed from the first record of {input}: check the columns and the
# text. `pipe build` embeds every record with each model of models.d and
# writes one database per model; `pipe search --text "..."` searches it.
# README.md of pipe ("Your own records") documents each key.

[settings]
models = "models.d"      # one drop-in file per embedding model

[inputs]
records = {path}        # .json, .jsonl or .csv (or {{ path = "...", format = "csv" }})

[targets.records-db]
kind = "records-db"
records = "records"
id = {id_value}  # {id_note}
# Columns of the `records` table: "text", "integer" or "real"; a trailing `?`
# lets a record lack the field (NULL).
columns = {{ {columns} }}
{skipped_note}fts = [{fts}]  # full-text indexed (FTS5) columns
layout = "per-model"     # one database per model; "single": one database, a table per model
path = "public/{{model}}/records.db"
# The text each model embeds: minijinja over the record's fields (a model
# may have its own: text = {{ default = "...", <model> = "..." }}).
text = {text_value}
"#,
        input = input.display(),
        path = toml_string(&input.display().to_string()),
        id_value = toml_string(&id),
        columns = columns.join(", "),
        fts = fts.join(", "),
        text_value = toml_string(&text),
    )
}

/// The model file of a model2vec model at `path` (project-relative).
pub fn model_toml(id: &str, path: &Path, dimensions: usize, found: bool) -> String {
    let where_ = if found {
        format!(
            "# The model2vec model copied into {} by `pipe init`.\n",
            path.display()
        )
    } else {
        format!(
            "# A model2vec model, run inside pipe (no server). Put one in {dir}\n\
             # (config.json, model.safetensors, tokenizer.json), e.g.\n\
             #   huggingface-cli download minishlab/potion-base-8M --local-dir {dir}\n\
             # pipe never downloads models. Set `dimensions` to the model's.\n",
            dir = path.display()
        )
    };
    format!(
        "{where_}id = {id:?}\nname = {id:?}\ndimensions = {dimensions}\nmetric = \"cosine\"\ndefault = true\n\n\
         [embed]\nprovider = \"model2vec\"\npath = {path}\n# query-prefix = \"\"   # put before `pipe search --text` queries, if the model wants one\n",
        path = toml_string(&path.display().to_string()),
    )
}

/// Create the records project. Writes nothing if a file it would write
/// exists.
pub fn init_records(spec: &RecordsInitSpec) -> Result<InitReport, InitError> {
    let format = Format::from_path(&spec.records).ok_or_else(|| {
        InitError::Usage(format!(
            "--records {}: name a .json, .jsonl (.ndjson) or .csv file",
            spec.records.display()
        ))
    })?;
    if !spec.records.is_file() {
        return Err(InitError::Usage(format!(
            "--records {}: no such file",
            spec.records.display()
        )));
    }
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    std::fs::create_dir_all(&spec.dir).map_err(|source| InitError::Io {
        path: spec.dir.clone(),
        source,
    })?;
    let dir = abs(&spec.dir);
    let records_abs = abs(&spec.records);
    // Inside the project: used in place. Elsewhere: copied into data/.
    let (input, copy_records) = match records_abs.strip_prefix(&dir) {
        Ok(rel) => (rel.to_path_buf(), false),
        Err(_) => {
            let name = records_abs.file_name().unwrap_or_default();
            (Path::new("data").join(name), true)
        }
    };
    let model_name = spec
        .model2vec
        .as_ref()
        .and_then(|m| abs(m).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "potion-base-8M".to_string());
    let model_rel = Path::new("models").join(&model_name);
    let model_id: String = {
        let lower = model_name.to_ascii_lowercase();
        let id: String = lower
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let id = id.trim_matches('-').to_string();
        if crate::manifest::model::valid_id(&id) {
            id
        } else {
            "m2v".to_string()
        }
    };
    let model_file = PathBuf::from(format!("models.d/{model_id}.toml"));
    let mut would_write = vec![PathBuf::from("pipeline.toml"), model_file.clone()];
    if copy_records {
        would_write.push(input.clone());
    }
    if spec.model2vec.is_some() {
        would_write.push(model_rel.clone());
    }
    refuse_existing(&dir, &spec.dir, &would_write)?;
    let first = first_record(
        records_abs.parent().unwrap_or(Path::new("/")),
        Path::new(records_abs.file_name().unwrap_or_default()),
        format,
    )?;
    let dimensions = match &spec.model2vec {
        Some(m) => copy_model(m, &dir, &model_rel)?,
        None => 256,
    };
    let mut written = Vec::new();
    if spec.model2vec.is_some() {
        written.push(model_rel.clone());
    }
    if copy_records {
        let dest = dir.join(&input);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|source| InitError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::copy(&records_abs, &dest).map_err(|source| InitError::Io {
            path: dest.clone(),
            source,
        })?;
        written.push(input.clone());
    }
    write_new(
        &dir.join("pipeline.toml"),
        &pipeline_toml(&input, format, &first),
    )?;
    written.push("pipeline.toml".into());
    write_new(
        &dir.join(&model_file),
        &model_toml(&model_id, &model_rel, dimensions, spec.model2vec.is_some()),
    )?;
    written.push(model_file);
    let ignore = dir.join(".gitignore");
    if ignore.symlink_metadata().is_err() {
        write_new(&ignore, "/.pipe/\n/public/\n")?;
        written.push(".gitignore".into());
    }
    Ok(InitReport {
        files: written,
        sample: None,
    })
}

/// Copy a model2vec model's files into `dir/rel` and load it for its
/// dimensions.
fn copy_model(from: &Path, dir: &Path, rel: &Path) -> Result<usize, InitError> {
    use crate::embed::providers::model2vec::{Model2Vec, MODEL_FILES};
    let dest = dir.join(rel);
    std::fs::create_dir_all(&dest).map_err(|source| InitError::Io {
        path: dest.clone(),
        source,
    })?;
    for f in MODEL_FILES {
        std::fs::copy(from.join(f), dest.join(f)).map_err(|source| InitError::Io {
            path: from.join(f),
            source,
        })?;
    }
    let config = EmbedConfig {
        provider: ProviderKind::Model2Vec,
        path: Some(rel.to_path_buf()),
        ..EmbedConfig::default()
    };
    let model =
        Model2Vec::new(&config, dir).map_err(|e| InitError::Usage(format!("--model2vec: {e}")))?;
    Ok(model.dimensions())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_id_is_an_id_field_or_the_key_or_the_position() {
        let r = record(r#"{"title": "a", "sku": 12}"#);
        assert_eq!(id_rule(&r, Format::JsonLines).0, "sku");
        let r = record(r#"{"title": "a", "product_id": "p1"}"#);
        assert_eq!(id_rule(&r, Format::Csv).0, "product_id");
        let r = record(r#"{"title": "a"}"#);
        assert_eq!(id_rule(&r, Format::Json).0, "{{ _key }}");
        assert_eq!(id_rule(&r, Format::JsonLines).0, "{{ _n }}");
    }

    #[test]
    fn columns_texts_and_keys_follow_the_first_record() {
        let r = record(
            r#"{"id": "a", "title": "T", "IMDB Rating": 7.5, "votes": 3, "tags": ["x"], "ok": true}"#,
        );
        let toml = pipeline_toml(Path::new("data/films.jsonl"), Format::JsonLines, &r);
        assert!(toml.contains(r#"columns = { title = "text?", "IMDB Rating" = "real?", votes = "integer?", ok = "integer?" }"#), "{toml}");
        assert!(toml.contains("fts = [\"title\"]"), "{toml}");
        assert!(toml.contains("text = \"{{ title }}\""), "{toml}");
        assert!(
            toml.contains(
                "Not columns (arrays or objects; a text template can still use them): tags"
            ),
            "{toml}"
        );
        assert!(toml.contains("id = \"id\""), "{toml}");
        let parsed: toml::Value = toml::from_str(&toml).unwrap();
        assert_eq!(
            parsed["targets"]["records-db"]["kind"].as_str(),
            Some("records-db")
        );
    }
}
