//! The parts of pipeline.toml about records (issue 11): `[inputs]` entries
//! with a `format`, and `[targets.NAME] kind = "records-db"`.
//!
//! ```toml
//! [inputs]
//! films = "data/films.jsonl"                      # or { path = "…", format = "csv" }
//!
//! [targets.films-db]
//! kind = "records-db"
//! records = "films"                               # an input
//! id = "movie_id"                                 # a field, or a template "{{ sku }}-{{ _n }}"
//! columns = { Title = "text", Rating = "real?" }  # `?`: NULL allowed
//! fts = ["Title"]
//! layout = "per-model"                            # or "single"
//! path = "public/data/{model}/films.db"
//! text = "{{ Title }}: {{ Plot }}"                # or { default = "…", potion = "…" }
//! models = ["potion", "bow"]                      # default: every model
//! embeddings = "data/films-{model}.embeddings.db" # made for models with [embed]
//! json = "public/films/{id}.json"                 # optional: one file per record
//! ```

use super::diagnostic::{ManifestError, SourceFile};
use super::pipeline::{InputDecl, Template, MODEL_PLACEHOLDERS};
use crate::embed::config::TextTemplate;
use crate::records::{Column, ColumnType, Format, IdRule, Layout};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The keys a records-db target takes.
pub const RECORDS_DB_KEYS: &[&str] = &[
    "records",
    "id",
    "columns",
    "fts",
    "layout",
    "path",
    "text",
    "models",
    "embeddings",
    "json",
];

/// The placeholder of a per-record JSON path.
pub const ID_PLACEHOLDER: &str = "{id}";

/// An `[inputs]` entry: a path, or `{ path = "…", format = "…" }`.
#[derive(Debug)]
pub(super) enum RawInput {
    /// `name = "path"`.
    Path(String),
    /// `name = { path = "…", format = "…" }`.
    Table(RawInputTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInputTable {
    pub(super) path: Spanned<String>,
    #[serde(default)]
    pub(super) format: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawInput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path, or a table { path = \"…\", format = \"json|jsonl|csv\" }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawInput, E> {
                Ok(RawInput::Path(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawInput, A::Error> {
                RawInputTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawInput::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// `text = "…"`, or `text = { default = "…", <model> = "…" }`.
#[derive(Debug)]
pub(super) enum RawText {
    One(String),
    PerModel(BTreeMap<String, Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text template, or a table { default = \"…\", <model id> = \"…\" }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawText, E> {
                Ok(RawText::One(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawText, A::Error> {
                BTreeMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawText::PerModel)
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys of a records-db target as written.
pub(super) struct RawRecordsDb {
    pub(super) id: Option<Spanned<String>>,
    pub(super) columns: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    pub(super) fts: Option<Vec<Spanned<String>>>,
    pub(super) layout: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) text: Option<Spanned<RawText>>,
    pub(super) models: Option<Vec<Spanned<String>>>,
    pub(super) embeddings: Option<Spanned<String>>,
    pub(super) json: Option<Spanned<String>>,
}

/// A records target's embedding texts: one template for every model, and
/// templates for some models.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordsText {
    /// For every model without its own (`text = "…"` or `default = "…"`).
    pub default: Option<TextTemplate>,
    /// Per model id, with where the model id is written.
    pub per_model: BTreeMap<String, (TextTemplate, Range<usize>)>,
}

impl RecordsText {
    /// The template for `model`, if the target has one.
    pub fn for_model(&self, model: &str) -> Option<&TextTemplate> {
        self.per_model
            .get(model)
            .map(|(t, _)| t)
            .or(self.default.as_ref())
    }
}

/// A checked `kind = "records-db"` table.
#[derive(Clone, Debug)]
pub struct RecordsDecl {
    /// The input the records come from.
    pub records: String,
    /// Its path.
    pub input: PathBuf,
    /// Its format (declared, or from the extension).
    pub format: Format,
    /// How a record's id is found.
    pub id: IdRule,
    /// Declared columns, in manifest order.
    pub columns: Vec<Column>,
    /// Full-text indexed columns.
    pub fts: Vec<String>,
    /// One database per model, or one for all.
    pub layout: Layout,
    /// The database path (`{model}` for the per-model layout).
    pub path: Template,
    /// The embedding texts.
    pub text: RecordsText,
    /// The models it uses (`None`: every model), with where each is named.
    pub models: Option<Vec<(String, Range<usize>)>>,
    /// Where the embeddings of models with `[embed]` are made (`{model}`).
    pub embeddings: Template,
    /// Whether `embeddings` is written in pipeline.toml (not the default):
    /// only a target with the default path shares another target's
    /// embeddings of the same texts.
    pub embeddings_declared: bool,
    /// One JSON file per record (`{id}` in the file name), if set.
    pub json: Option<Template>,
    /// Where `kind` is written (errors about the whole table).
    pub span: Range<usize>,
}

/// Where a records-db table is and what it can refer to.
pub(super) struct Table<'a> {
    pub(super) src: &'a SourceFile,
    /// The table's name (`films-db`).
    pub(super) name: &'a str,
    /// Where its `kind` is written.
    pub(super) kind_span: Range<usize>,
    pub(super) inputs: &'a BTreeMap<String, InputDecl>,
    pub(super) output_root: &'a Path,
}

/// Check a records-db table whose `records` names input `records` (the
/// caller has reported an unknown one); problems go to `errors`.
pub(super) fn check(
    table: &Table,
    raw: RawRecordsDb,
    records: Option<String>,
    errors: &mut Vec<ManifestError>,
) -> Option<RecordsDecl> {
    let Table {
        src,
        name,
        kind_span,
        inputs,
        output_root,
    } = table;
    let (src, name, kind_span, inputs, output_root) =
        (*src, *name, kind_span.clone(), *inputs, *output_root);
    let at = |span: Range<usize>, message: String| ManifestError::at(src, span, message);
    let Some(records) = records else {
        errors.push(
            at(kind_span.clone(), "a records-db target needs `records`".into())
                .help("name an input that holds the records, e.g. records = \"films\" with films = \"data/films.jsonl\" in [inputs]"),
        );
        return None;
    };
    let (input, format) = match inputs.get(&records) {
        None => (PathBuf::new(), Format::Json),
        Some(decl) => {
            let format = match &decl.format {
                Some((f, _)) => Format::parse(f),
                None => Format::from_path(&decl.path),
            };
            match format {
                Some(f) => (decl.path.clone(), f),
                None => {
                    errors.push(
                        at(decl.span.clone(), format!("cannot tell the format of records input `{records}` from its extension"))
                            .help(format!("name the file .json, .jsonl or .csv, or write {records} = {{ path = \"{}\", format = \"jsonl\" }}", decl.path.display())),
                    );
                    (decl.path.clone(), Format::Json)
                }
            }
        }
    };

    let id = match &raw.id {
        None => {
            errors.push(
                at(kind_span.clone(), "a records-db target needs `id`".into())
                    .help("name the field that holds each record's id (id = \"sku\"), or give a template over the fields and the position (id = \"row-{{ _n }}\")"),
            );
            None
        }
        Some(s) if s.get_ref().trim().is_empty() => {
            errors.push(
                at(s.span(), "`id` is empty".into())
                    .help("name the field that holds each record's id"),
            );
            None
        }
        Some(s) => {
            let rule = IdRule::parse(s.get_ref());
            if let IdRule::Template(t) = &rule {
                if let Err(e) = crate::records::id::compile(t) {
                    errors.push(
                        at(s.span(), format!("invalid id template: {}", crate::records::id::template_error(&e, t)))
                            .help("a template over the record's fields and _line, _index, _key, _n, e.g. id = \"{{ sku }}-{{ _n }}\""),
                    );
                }
            }
            Some(rule)
        }
    };

    let mut columns = Vec::new();
    if let Some(table) = &raw.columns {
        let mut entries: Vec<(&Spanned<String>, &Spanned<String>)> =
            table.get_ref().iter().collect();
        // Manifest order: the order of the keys in the file.
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut seen: BTreeMap<String, ()> = BTreeMap::new();
        for (key, ty) in entries {
            let field = key.get_ref();
            let lower = field.to_ascii_lowercase();
            if field.is_empty() || field.chars().any(char::is_control) {
                errors.push(at(
                    key.span(),
                    "a column needs a name without control characters".into(),
                ));
                continue;
            }
            if lower == "id" || lower == "rowid" {
                errors.push(
                    at(key.span(), format!("`{field}` cannot be a declared column"))
                        .help("the records table has its own `id` column (from the target's `id`); declare the field under another name or leave it out"),
                );
                continue;
            }
            if seen.insert(lower, ()).is_some() {
                errors.push(
                    at(key.span(), format!("column `{field}` is declared twice (SQLite column names ignore letter case)"))
                        .help("give each column its own name"),
                );
                continue;
            }
            let text = ty.get_ref();
            let (base, nullable) = match text.strip_suffix('?') {
                Some(b) => (b, true),
                None => (text.as_str(), false),
            };
            match ColumnType::parse(base) {
                Some(t) => columns.push(Column {
                    name: field.clone(),
                    ty: t,
                    nullable,
                }),
                None => errors.push(
                    at(ty.span(), format!("unknown column type `{text}`"))
                        .help("use text, integer or real; add `?` (\"real?\") to allow NULL for records without the field"),
                ),
            }
        }
    }

    let mut fts = Vec::new();
    for f in raw.fts.iter().flatten() {
        match columns.iter().find(|c| &c.name == f.get_ref()) {
            Some(c) if c.ty == ColumnType::Text => fts.push(c.name.clone()),
            Some(c) => errors.push(
                at(
                    f.span(),
                    format!(
                        "column `{}` is {}, so it cannot be full-text indexed",
                        c.name, c.ty
                    ),
                )
                .help("fts lists text columns"),
            ),
            None => {
                let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                let hint = crate::suggest::closest(f.get_ref(), names.iter().copied())
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                errors.push(
                    at(
                        f.span(),
                        format!("`{}` in fts is not a declared column", f.get_ref()),
                    )
                    .help(format!(
                        "{hint}fts lists columns declared in `columns` with type text"
                    )),
                );
            }
        }
    }

    let layout = match &raw.layout {
        None => Layout::PerModel,
        Some(l) => Layout::parse(l.get_ref()).unwrap_or_else(|| {
            errors.push(
                at(l.span(), format!("unknown layout `{}`", l.get_ref()))
                    .help("use per-model (one database per model) or single (one database, a vector table per model)"),
            );
            Layout::PerModel
        }),
    };
    let template = |s: &Option<Spanned<String>>, default: String| match s {
        Some(s) => Template {
            text: s.get_ref().clone(),
            span: s.span(),
        },
        None => Template {
            text: default,
            span: kind_span.clone(),
        },
    };
    let root = output_root.display().to_string();
    let path = match layout {
        Layout::PerModel => template(&raw.path, format!("{root}/data/{{model}}/{name}.db")),
        Layout::Single => template(&raw.path, format!("{root}/data/{name}.db")),
    };
    match layout {
        Layout::PerModel => {
            super::pipeline::check_template(src, &path, MODEL_PLACEHOLDERS, errors);
            if !path.text.contains("{model}") {
                errors.push(
                    at(path.span.clone(), "the path of a per-model records-db target needs `{model}`".into())
                        .help("each model gets its own database, e.g. path = \"public/data/{model}/films.db\"; or set layout = \"single\" for one database with a table per model"),
                );
            }
        }
        Layout::Single => {
            if super::pipeline::placeholders(&path.text).contains(&"model") {
                errors.push(
                    at(path.span.clone(), "the path of a single-layout records-db target cannot have `{model}`".into())
                        .help("one database holds every model's table, e.g. path = \"public/data/films.db\""),
                );
            } else {
                super::pipeline::check_template(src, &path, &[], errors);
            }
        }
    }

    let input_dir = input.parent().map(Path::to_path_buf).unwrap_or_default();
    let embeddings_declared = raw.embeddings.is_some();
    let embeddings = template(
        &raw.embeddings,
        input_dir
            .join(format!("{name}-{{model}}.embeddings.db"))
            .display()
            .to_string(),
    );
    super::pipeline::check_template(src, &embeddings, MODEL_PLACEHOLDERS, errors);
    if !embeddings.text.contains("{model}") {
        errors.push(
            at(embeddings.span.clone(), "the embeddings path of a records-db target needs `{model}`".into())
                .help("each model with [embed] gets its own embeddings file, e.g. embeddings = \"data/films-{model}.embeddings.db\""),
        );
    }

    let json = raw.json.as_ref().map(|j| Template {
        text: j.get_ref().clone(),
        span: j.span(),
    });
    if let Some(j) = &json {
        super::pipeline::check_template(src, j, &["id"], errors);
        let file = j.text.rsplit('/').next().unwrap_or_default();
        if !file.contains(ID_PLACEHOLDER) || j.text.matches(ID_PLACEHOLDER).count() != 1 {
            errors.push(
                at(
                    j.span.clone(),
                    "the json path of a records-db target needs `{id}` once, in its file name"
                        .into(),
                )
                .help("e.g. json = \"public/films/{id}.json\""),
            );
        }
    }

    let mut text = RecordsText::default();
    let make = |s: &str, span: Range<usize>, errors: &mut Vec<ManifestError>| {
        let (start, source) = crate::embed::config::template_start(src, span, s);
        let (line, column) = src.line_col(start);
        let t = TextTemplate {
            source,
            file: PathBuf::from(&src.name),
            line,
            column,
        };
        match crate::embed::text::check_template(&t) {
            Ok(()) => Some(t),
            Err((range, message)) => {
                errors.push(
                    ManifestError::at(src, start + range.start..start + range.end, format!("invalid text template: {message}"))
                        .help("a minijinja template over the record's fields, e.g. text = \"{{ Title }}: {{ Plot }}\""),
                );
                None
            }
        }
    };
    match raw.text.as_ref().map(|t| (t.span(), t.get_ref())) {
        None => {}
        Some((span, RawText::One(s))) => text.default = make(s, span, errors),
        Some((_, RawText::PerModel(map))) => {
            for (model, t) in map {
                let made = make(t.get_ref(), t.span(), errors);
                match (model.as_str(), made) {
                    ("default", made) => text.default = made,
                    (_, Some(made)) => {
                        text.per_model.insert(model.clone(), (made, t.span()));
                    }
                    (_, None) => {}
                }
            }
        }
    }

    let models = raw.models.as_ref().map(|list| {
        list.iter()
            .map(|m| (m.get_ref().clone(), m.span()))
            .collect::<Vec<_>>()
    });
    if let Some(list) = &raw.models {
        if list.is_empty() {
            errors.push(
                at(kind_span.clone(), "`models` is empty".into())
                    .help("leave `models` out to use every model, or name at least one"),
            );
        }
    }

    Some(RecordsDecl {
        records,
        input,
        format,
        id: id?,
        columns,
        fts,
        layout,
        path,
        text,
        models,
        embeddings,
        embeddings_declared,
        json,
        span: kind_span,
    })
}
