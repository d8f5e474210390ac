//! How a `records-db` declaration expands (RECORDS.md): for a target `X`,
//! `X-embeddings@m` for each model it uses that has `[embed]`, then `X@m`
//! per model (layout per-model) or one `X` (layout single), and `X-json`
//! when it sets `json`. A target whose texts for a model another target
//! (earlier by name) already embeds reads that target's embeddings file
//! instead of having its own `X-embeddings@m`: each text is embedded once.

use super::{resolve, ExpandError, Output, Target, TargetSpec};
use crate::manifest::pipeline::KindDecl;
use crate::manifest::records::RecordsDecl;
use crate::manifest::{Manifest, Model, TargetDecl};
use crate::records::{Layout, RecordsDbSpec, RecordsSpec};
use crate::stages::embeddings::{EmbeddingsSpec, Source};
use crate::stages::records_json::RecordsJsonSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The targets of one records-db declaration.
pub(super) fn expand(
    manifest: &Manifest,
    decl: &TargetDecl,
    r: &RecordsDecl,
) -> Result<Vec<Target>, Vec<ExpandError>> {
    let mut errors = Vec::new();
    let models = used_models(manifest, r, &mut errors);
    for (id, span) in r.text.per_model.iter().map(|(k, (_, s))| (k, s)) {
        if !models.iter().any(|m| &m.id == id) {
            errors.push(unknown_model(manifest, id, span.clone(), "a text template"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Every reader of the records checks what any target over the same
    // records needs of them (ids that are file names, values that fit the
    // columns), so a record one target must refuse fails them all before
    // any writes.
    let mut columns: Vec<crate::records::Column> = Vec::new();
    let mut file_names = false;
    for o in manifest
        .pipeline
        .targets
        .iter()
        .filter_map(|t| match &t.kind {
            KindDecl::RecordsDb(o) if o.input == r.input && o.format == r.format => Some(o),
            _ => None,
        })
    {
        file_names |= o.json.is_some();
        for c in &o.columns {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    let records = RecordsSpec {
        input: r.input.clone(),
        format: r.format,
        id: r.id.clone(),
        file_names,
        columns,
    };
    let target = |name: String,
                  base: String,
                  model: Option<&Model>,
                  spec,
                  inputs: Vec<PathBuf>,
                  optional,
                  outputs| {
        let mut inputs = inputs;
        inputs.sort();
        inputs.dedup();
        Target {
            name,
            base,
            model: model.cloned(),
            spec,
            inputs,
            optional_inputs: optional,
            outputs,
            deps: Vec::new(),
            description: decl.description.clone(),
            span: decl.span.clone(),
        }
    };
    let mut out = Vec::new();

    // Each model's embeddings: made here for models with [embed], read
    // from the model file's `embeddings` otherwise.
    let mut embeddings = BTreeMap::new();
    for m in &models {
        let Some(embed) = &m.embed else {
            embeddings.insert(m.id.clone(), m.embeddings.clone());
            continue;
        };
        let path = resolve(
            &r.embeddings,
            &model_values(m)
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| vec![e])?;
        embeddings.insert(m.id.clone(), path.clone());
        let Some(text) = r.text.for_model(&m.id).or(embed.template.as_ref()).cloned() else {
            errors.push((
                decl.span.clone(),
                format!("records-db target `{}` has no text template for model `{}`", decl.name, m.id),
                format!("add text = \"{{{{ Title }}}}: {{{{ Plot }}}}\" (a minijinja template over the record's fields) to [targets.{}], or a template to the [embed] table of {}", decl.name, m.file.display()),
            ));
            continue;
        };
        if !r.embeddings_declared {
            if let Some(shared) = shared_embeddings(manifest, decl, r, m, &text) {
                // Another target embeds these very texts: read its file.
                embeddings.insert(m.id.clone(), shared);
                continue;
            }
        }
        let mut model = m.clone();
        // The spec's model writes its vectors here (an embeddings spec's
        // `model.embeddings` is its output).
        model.embeddings = path.clone();
        let spec = EmbeddingsSpec {
            source: Source::Records {
                target: decl.name.clone(),
                records: records.clone(),
                text,
            },
            model,
        };
        let mut inputs = vec![r.input.clone()];
        inputs.extend(spec.extra_inputs(&manifest.root));
        out.push(target(
            format!("{}-embeddings@{}", decl.name, m.id),
            format!("{}-embeddings", decl.name),
            Some(m),
            TargetSpec::Embeddings(spec),
            inputs,
            BTreeSet::new(),
            vec![Output::File(path)],
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let primary = models
        .iter()
        .find(|m| m.default)
        .or(models.first())
        .map(|m| m.id.clone())
        .unwrap_or_default();
    let db = |path: PathBuf, models: Vec<Model>| {
        let mut inputs = vec![r.input.clone()];
        let mut optional = BTreeSet::new();
        let mut files = BTreeMap::new();
        for m in &models {
            let e = embeddings
                .get(&m.id)
                .cloned()
                .unwrap_or_else(|| m.embeddings.clone());
            if m.embed.is_none() {
                optional.insert(e.clone());
            }
            inputs.push(e.clone());
            files.insert(m.id.clone(), e);
        }
        let spec = RecordsDbSpec {
            name: decl.name.clone(),
            records: records.clone(),
            columns: r.columns.clone(),
            fts: r.fts.clone(),
            layout: r.layout,
            path: path.clone(),
            models,
            primary: primary.clone(),
            embeddings: files,
        };
        (
            TargetSpec::RecordsDb(spec),
            inputs,
            optional,
            vec![Output::File(path)],
        )
    };
    match r.layout {
        Layout::PerModel => {
            for m in &models {
                let values = model_values(m);
                let values: Vec<(&str, &str)> =
                    values.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let path = resolve(&r.path, &values).map_err(|e| vec![e])?;
                let (spec, inputs, optional, outputs) = db(path, vec![m.clone()]);
                out.push(target(
                    format!("{}@{}", decl.name, m.id),
                    decl.name.clone(),
                    Some(m),
                    spec,
                    inputs,
                    optional,
                    outputs,
                ));
            }
        }
        Layout::Single => {
            let path = resolve(&r.path, &[]).map_err(|e| vec![e])?;
            let (spec, inputs, optional, outputs) = db(path, models.clone());
            out.push(target(
                decl.name.clone(),
                decl.name.clone(),
                None,
                spec,
                inputs,
                optional,
                outputs,
            ));
        }
    }

    if let Some(json) = &r.json {
        let full = resolve(json, &[]).map_err(|e| vec![e])?;
        let out_dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        let file_template = full
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = RecordsJsonSpec {
            name: decl.name.clone(),
            records: records.clone(),
            out_dir: out_dir.clone(),
            file_template: file_template.clone(),
        };
        out.push(target(
            format!("{}-json", decl.name),
            format!("{}-json", decl.name),
            None,
            TargetSpec::RecordsJson(spec),
            vec![r.input.clone()],
            BTreeSet::new(),
            vec![Output::Dir {
                dir: out_dir,
                pattern: file_template,
            }],
        ));
    }
    Ok(out)
}

/// The embeddings file of model `m` that an earlier records target (in
/// the manifest's order) already makes from the same texts: the same
/// records file read the same way (input, format, id rule) and the same
/// template for `m`. Its `X-embeddings@m` target then serves this target
/// too, so each text is embedded once however many targets hold it. The
/// earliest such target is the one that embeds (it shares nobody's).
fn shared_embeddings(
    manifest: &Manifest,
    decl: &TargetDecl,
    r: &RecordsDecl,
    m: &Model,
    text: &crate::embed::config::TextTemplate,
) -> Option<PathBuf> {
    let embed = m.embed.as_ref()?;
    for other in &manifest.pipeline.targets {
        if other.name == decl.name {
            return None;
        }
        let KindDecl::RecordsDb(o) = &other.kind else {
            continue;
        };
        let same_records = o.input == r.input && o.format == r.format && o.id == r.id;
        let uses_model = o
            .models
            .as_ref()
            .is_none_or(|list| list.iter().any(|(id, _)| *id == m.id));
        let same_text = o
            .text
            .for_model(&m.id)
            .or(embed.template.as_ref())
            .is_some_and(|t| t.source == text.source);
        if same_records && uses_model && same_text {
            let values = model_values(m);
            let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            return resolve(&o.embeddings, &values).ok();
        }
    }
    None
}

fn model_values(m: &Model) -> [(&'static str, String); 3] {
    [
        ("model", m.id.clone()),
        ("dimensions", m.dimensions.to_string()),
        ("metric", m.metric.as_str().to_string()),
    ]
}

/// The models a records target uses: those it names, or every model.
fn used_models(manifest: &Manifest, r: &RecordsDecl, errors: &mut Vec<ExpandError>) -> Vec<Model> {
    match &r.models {
        None => manifest.models.clone(),
        Some(list) => {
            let mut out: Vec<Model> = Vec::new();
            for (id, span) in list {
                match manifest.model(id) {
                    Some(m) if !out.iter().any(|o| o.id == m.id) => out.push(m.clone()),
                    Some(_) => errors.push((
                        span.clone(),
                        format!("model `{id}` is listed twice"),
                        "list each model once".into(),
                    )),
                    None => errors.push(unknown_model(manifest, id, span.clone(), "`models`")),
                }
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
            out
        }
    }
}

fn unknown_model(
    manifest: &Manifest,
    id: &str,
    span: std::ops::Range<usize>,
    where_: &str,
) -> ExpandError {
    let ids: Vec<&str> = manifest.models.iter().map(|m| m.id.as_str()).collect();
    let hint = crate::suggest::closest(id, ids.iter().copied())
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    (
        span,
        format!("unknown model `{id}` in {where_}"),
        format!(
            "{hint}models in {}: {}",
            manifest.pipeline.settings.models.display(),
            ids.join(", ")
        ),
    )
}
