//! The `records-json` stage (`X-json` of a records target): one JSON file
//! per record, its fields as read (in file order, pretty-printed), written
//! only when its bytes change ([`super::file_set`]).
//!
//! Here ids become file names: the records spec says so
//! ([`RecordsSpec::file_names`]), so every reader of the records checks
//! them as movie ids are checked ([`crate::ids`]), and the template's
//! file names are checked for length here.

use super::file_set;
use crate::records::{RecordError, RecordsSpec};
use crate::stage::{OutputFile, StageContext, StageError, StageOutput};
use rayon::prelude::*;
use std::path::PathBuf;

/// What an `X-json` target declares.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordsJsonSpec {
    /// The records target's name (`films-db`).
    pub name: String,
    /// Where the records come from.
    pub records: RecordsSpec,
    /// Directory of the files, relative to the project root.
    pub out_dir: PathBuf,
    /// File name of each record, with `{id}` (`{id}.json`).
    pub file_template: String,
}

/// The placeholder of the file name.
const ID: &str = crate::manifest::records::ID_PLACEHOLDER;

/// Records rendered per batch handed to the writer.
const BATCH: usize = 1024;

/// A record's document: its fields, pretty-printed, with a final newline.
pub fn document(record: &crate::records::Record) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&record.fields).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Write the file of every record whose bytes changed; delete the files of
/// records that are gone.
pub fn run(ctx: &StageContext, spec: &RecordsJsonSpec) -> Result<StageOutput, StageError> {
    let file = &spec.records.input;
    let out_abs = ctx.abs(&spec.out_dir);
    std::fs::create_dir_all(&out_abs)
        .map_err(|e| StageError::io(&spec.out_dir, "create directory", e))?;
    let previous = file_set::Previous::of(ctx);
    let mut reader = crate::records::read(ctx.root, &spec.records)?;
    let mut files: Vec<OutputFile> = Vec::new();
    let staged = file_set::stage(
        ctx,
        |p: &PathBuf| p.clone(),
        |send| {
            loop {
                if ctx.is_cancelled() {
                    return Err(StageError::cancelled());
                }
                let mut batch = Vec::with_capacity(BATCH);
                for r in reader.by_ref().take(BATCH) {
                    let r = r?;
                    let name = file_name(file, spec, &r)?;
                    batch.push((spec.out_dir.join(name), r));
                }
                if batch.is_empty() {
                    return Ok(());
                }
                let done: Vec<(PathBuf, blake3::Hash, Option<Vec<u8>>)> = batch
                    .into_par_iter()
                    .map(|(path, r)| {
                        let bytes = document(&r);
                        let hash = blake3::hash(&bytes);
                        // Unchanged bytes: leave the file (and its mtime) alone.
                        let write = !previous.is_unchanged(&path, &hash);
                        (path, hash, write.then_some(bytes))
                    })
                    .collect();
                let mut changed = Vec::new();
                for (path, hash, bytes) in done {
                    if let Some(bytes) = bytes {
                        changed.push((path.clone(), bytes));
                    }
                    files.push(OutputFile { path, hash });
                }
                if !send(changed) {
                    return Ok(()); // the writer failed; its error is reported instead
                }
                ctx.progress
                    .progress(files.len() as u64, 0, "writing record JSON");
            }
        },
    )?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    let written = file_set::commit(ctx, staged, |p: &PathBuf| p.clone())?;
    let mut out = StageOutput {
        written,
        untouched_are_unwritten: true,
        ..StageOutput::default()
    };
    out.deleted = file_set::remove_leftovers(ctx, &files)?;
    out.stats.insert("records".into(), files.len().to_string());
    out.stats.insert("written".into(), written.to_string());
    out.stats.insert("deleted".into(), out.deleted.to_string());
    out.files = files;
    Ok(out)
}

/// The file name of a record, or why its id cannot be one.
fn file_name(
    file: &std::path::Path,
    spec: &RecordsJsonSpec,
    r: &crate::records::Record,
) -> Result<String, RecordError> {
    let bad = |why: &str| {
        // Ids were checked as file names when read; the template adds to them.
        RecordError::at(
            file,
            r.position.clone(),
            format!(
                "the id cannot be used as a file name ({}): {why}; fix the record's id",
                spec.out_dir.join(&spec.file_template).display()
            ),
        )
        .with_id(r.id.clone())
    };
    let name = spec.file_template.replace(ID, &r.id);
    if name.len() > crate::ids::MAX_FILE_NAME {
        return Err(bad("its file name would be longer than 255 bytes"));
    }
    Ok(name)
}
