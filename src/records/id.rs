//! How a record's id is found (a field, or a template over the fields and
//! the record's position), and the checks every id passes: not empty, and
//! unique in its file.
//!
//! Ids that become file names are checked further where they do
//! ([`crate::ids`]), by the stage that writes the files.

use super::{Position, Record, RecordError};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How a record's id is found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdRule {
    /// The value of this field (a string, or an integer written in decimal).
    Field(String),
    /// A minijinja template over the record's fields and its position:
    /// `_line` (JSON Lines, CSV), `_index` (JSON array), `_key` (JSON
    /// object) and `_n` (1-based ordinal in the file), e.g.
    /// `"{{ sku }}-{{ _n }}"`. An undefined field is an error.
    Template(String),
}

impl IdRule {
    /// The rule as written in pipeline.toml: a template if it contains
    /// `{{`, else a field name.
    pub fn parse(text: &str) -> IdRule {
        if text.contains("{{") || text.contains("{%") {
            IdRule::Template(text.to_string())
        } else {
            IdRule::Field(text.to_string())
        }
    }

    /// As written in pipeline.toml (for fingerprints and messages).
    pub fn as_str(&self) -> &str {
        match self {
            IdRule::Field(f) | IdRule::Template(f) => f,
        }
    }
}

/// The template's name inside its minijinja environment.
const NAME: &str = "id";

/// A compiled id template (strict: an undefined field is an error).
pub fn compile(source: &str) -> Result<minijinja::Environment<'static>, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template_owned(NAME, source.to_string())?;
    Ok(env)
}

/// The fields a template sees besides the record's: its position.
pub fn position_context(
    fields: &Map<String, Value>,
    position: &Position,
    ordinal: u64,
) -> Map<String, Value> {
    let mut ctx = fields.clone();
    match position {
        Position::Line(n) => ctx.insert("_line".into(), Value::from(*n)),
        Position::Index(i) => ctx.insert("_index".into(), Value::from(*i)),
        Position::Key(k) => ctx.insert("_key".into(), Value::from(k.clone())),
    };
    ctx.insert("_n".into(), Value::from(ordinal));
    ctx
}

/// The id of each record, checked: not empty, and unique in the file.
pub(super) struct IdCheck {
    file: PathBuf,
    rule: Compiled,
    /// blake3 of each id seen (16 bytes, not the id: at a million records
    /// the ids themselves would be the largest thing held) → where it was.
    seen: HashMap<u128, Position>,
    /// With `file_names`: the ids by the name a common file system stores
    /// their files under.
    files: Option<HashMap<String, (String, Position)>>,
    ordinal: u64,
}

enum Compiled {
    Field(String),
    Template(minijinja::Environment<'static>),
}

impl IdCheck {
    pub(super) fn new(
        file: &Path,
        rule: &IdRule,
        file_names: bool,
    ) -> Result<IdCheck, RecordError> {
        let rule =
            match rule {
                IdRule::Field(f) => Compiled::Field(f.clone()),
                IdRule::Template(t) => Compiled::Template(compile(t).map_err(|e| {
                    RecordError::file(file, format!("invalid id template {t:?}: {e}"))
                })?),
            };
        Ok(IdCheck {
            file: file.to_path_buf(),
            rule,
            seen: HashMap::new(),
            files: file_names.then(HashMap::new),
            ordinal: 0,
        })
    }

    /// The record at `position` with `fields`, with its id, or why it has none.
    pub(super) fn check(
        &mut self,
        position: Position,
        fields: Map<String, Value>,
    ) -> Result<Record, RecordError> {
        self.ordinal += 1;
        let id = self.id_of(&position, &fields)?;
        let at = |message: String| RecordError::at(&self.file, position.clone(), message);
        if id.is_empty() {
            return Err(at(match &self.rule {
                Compiled::Field(f) => {
                    format!("the id (field `{f}`) is empty; every record needs an id")
                }
                Compiled::Template(_) => {
                    "the id template gives an empty id; every record needs an id".to_string()
                }
            }));
        }
        let digest = blake3::hash(id.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest.as_bytes()[..16]);
        let key = u128::from_le_bytes(first);
        if let Some(before) = self.seen.get(&key) {
            return Err(at(format!(
                "duplicate id {id:?}: {before} has it too; ids must be unique"
            ))
            .with_id(id));
        }
        if let Some(files) = &mut self.files {
            if let Some(why) = crate::ids::id_problem(&id) {
                return Err(at(format!(
                    "the id cannot be used as a file name: {why}; fix the record's id"
                ))
                .with_id(id));
            }
            let name = crate::ids::collision_key(&id);
            if let Some((other, before)) = files.get(&name) {
                return Err(at(format!(
                    "its file would be the file of record {other:?} ({before}): {}; change one of the ids",
                    crate::ids::collision_reason(other, &id)
                ))
                .with_id(id));
            }
            files.insert(name, (id.clone(), position.clone()));
        }
        self.seen.insert(key, position.clone());
        Ok(Record {
            id,
            position,
            fields,
        })
    }

    fn id_of(
        &self,
        position: &Position,
        fields: &Map<String, Value>,
    ) -> Result<String, RecordError> {
        let at = |message: String| RecordError::at(&self.file, position.clone(), message);
        match &self.rule {
            Compiled::Field(name) => match fields.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
                Some(other) => Err(at(format!(
                    "the id field `{name}` holds {}, not a string or an integer",
                    describe(other)
                ))),
                None => {
                    let mut known: Vec<&str> = fields.keys().map(String::as_str).collect();
                    known.truncate(12);
                    let hint = crate::suggest::closest(name, known.iter().copied())
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    Err(at(format!(
                        "no id field `{name}`{hint}; the record has: {}",
                        known.join(", ")
                    )))
                }
            },
            Compiled::Template(env) => {
                let tmpl = env
                    .get_template(NAME)
                    .map_err(|e| at(format!("invalid id template: {e}")))?;
                let ctx = position_context(fields, position, self.ordinal);
                tmpl.render(minijinja::Value::from_serialize(&ctx))
                    .map(|s| s.trim().to_string())
                    .map_err(|e| {
                        at(format!(
                            "the id template failed: {}",
                            template_error(&e, tmpl.source())
                        ))
                    })
            }
        }
    }
}

/// A template's error in its own words, naming the expression that failed
/// (`undefined value: titel`) instead of minijinja's own position.
pub fn template_error(e: &minijinja::Error, source: &str) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.range().and_then(|r| source.get(r)) {
        Some(text) if !text.trim().is_empty() => format!("{what} (`{}`)", text.trim()),
        _ => what,
    }
}

/// What kind of JSON value `v` is, for messages.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
