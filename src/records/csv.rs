//! CSV records: a header row names the fields, each following row is a
//! record whose values are strings. Read one row at a time.

use super::{Position, RawRecord, RecordError};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The records of a CSV file, one row at a time.
pub struct CsvRecords<R> {
    file: PathBuf,
    reader: csv::Reader<R>,
    headers: Vec<String>,
    row: csv::StringRecord,
}

impl<R: Read> CsvRecords<R> {
    /// Read the header row of `reader` (named `file` in errors).
    pub fn new(file: PathBuf, reader: R) -> Result<CsvRecords<R>, RecordError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let headers = reader
            .headers()
            .map_err(|e| csv_error(&file, &e))?
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(RecordError::at(
                &file,
                Position::Line(1),
                "the file has no header row; the first row of a CSV records file names the fields",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() {
                return Err(RecordError::at(
                    &file,
                    Position::Line(1),
                    format!(
                        "column {} of the header row has no name; every column needs a field name",
                        i + 1
                    ),
                ));
            }
            if !seen.insert(h.as_str()) {
                return Err(RecordError::at(
                    &file,
                    Position::Line(1),
                    format!("the header row names field `{h}` twice; field names must be unique"),
                ));
            }
        }
        Ok(CsvRecords {
            file,
            reader,
            headers,
            row: csv::StringRecord::new(),
        })
    }
}

impl<R: Read> Iterator for CsvRecords<R> {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_record(&mut self.row) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.row.position().map_or(0, |p| p.line());
                let fields: Map<String, Value> = self
                    .headers
                    .iter()
                    .zip(self.row.iter())
                    .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
                    .collect();
                Some(Ok((Position::Line(line), fields)))
            }
            Err(e) => Some(Err(csv_error(&self.file, &e))),
        }
    }
}

fn csv_error(file: &Path, e: &csv::Error) -> RecordError {
    let line = e.position().map(|p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "the row has {len} values but the header row names {expected_len} fields; quote values that contain commas"
        ),
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; save the file as UTF-8",
            err.field() + 1
        ),
        csv::ErrorKind::Io(io) => format!("cannot read the records file: {io}"),
        _ => format!("invalid CSV: {e}"),
    };
    match line {
        Some(n) => RecordError::at(file, Position::Line(n), message),
        None => RecordError::file(file, message),
    }
}
