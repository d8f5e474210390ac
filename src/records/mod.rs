//! Records: any set of documents (films, products, help articles) read from
//! a JSON, JSON Lines or CSV file, each with an id and its fields.
//!
//! [`read`] streams them in file order where the format allows it (JSON
//! Lines and CSV line by line, a JSON file element by element through a
//! serde visitor), so a million-record file never needs a million-record
//! heap; only the ids are remembered, to find duplicates. Every error names
//! the file, the record ([`Position`]) and, once known, its id.
//!
//! [`column_value`] turns a record's field into the SQLite value of a
//! declared [`Column`]. [`RecordsDbSpec`] is what a `records-db` target
//! declares once the graph has expanded it.

pub mod columns;
pub mod csv;
pub mod error;
pub mod id;
pub mod json;
pub mod jsonl;
pub mod target;

pub use columns::{column_value, Column, ColumnType};
pub use error::RecordError;
pub use id::IdRule;
pub use target::{Layout, RecordsDbSpec};

use std::path::{Path, PathBuf};

/// Where a record is in its file, for error messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// A line of a JSON Lines or CSV file (1-based; a CSV record that spans
    /// lines is named by its first).
    Line(u64),
    /// An element of a JSON array (0-based).
    Index(u64),
    /// A member of a JSON object keyed by id.
    Key(String),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Index(i) => write!(f, "element [{i}]"),
            Position::Key(k) => write!(f, "key {k:?}"),
        }
    }
}

/// One record: its id, where it is, and its fields in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The record's id (unique in its file, never empty).
    pub id: String,
    /// Where it is in its file.
    pub position: Position,
    /// Its fields, in file order. CSV values are strings.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The formats a records input can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON document: an array of objects, or an object whose members
    /// are the records keyed by id (members whose key starts with `_` are
    /// not records, as in movies.json).
    Json,
    /// One JSON object per line (`.jsonl`, `.ndjson`); blank lines are skipped.
    JsonLines,
    /// Comma-separated values with a header row naming the fields.
    Csv,
}

impl Format {
    /// The name used in pipeline.toml (`format = "jsonl"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::JsonLines => "jsonl",
            Format::Csv => "csv",
        }
    }

    /// A format by its pipeline.toml name.
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::JsonLines,
            "csv" => Format::Csv,
            _ => return None,
        })
    }

    /// The format a file's extension names (`.json`, `.jsonl`/`.ndjson`, `.csv`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Format::parse(&ext)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is needed to read records.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordsSpec {
    /// The records file, relative to the project root.
    pub input: PathBuf,
    /// Its format.
    pub format: Format,
    /// How each record's id is found.
    pub id: IdRule,
    /// The ids become file names (the records target writes a JSON file
    /// per record): each must be a safe file name, and no two may be one
    /// file on macOS or Windows. Checked by every reader of the records,
    /// so that no stage builds from ids another must refuse.
    pub file_names: bool,
    /// The columns every records-db target over this input declares (the
    /// graph gathers them). Checked by every reader of the records, as the
    /// ids are: a record whose value does not fit a column fails every
    /// target over the input (its embeddings, JSON files and databases)
    /// before any of them writes, not only the database that has the
    /// column.
    pub columns: Vec<Column>,
}

/// A record as a format reads it, before its id is found.
pub type RawRecord = (Position, serde_json::Map<String, serde_json::Value>);

/// What each format's reader yields.
type RawRecords = Box<dyn Iterator<Item = Result<RawRecord, RecordError>> + Send>;

/// The records of a file, in file order. Stops after the first error.
pub struct Records {
    inner: RawRecords,
    ids: id::IdCheck,
    /// The records file and the columns each record must fit.
    file: PathBuf,
    columns: Vec<Column>,
    failed: bool,
}

impl Iterator for Records {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self
            .inner
            .next()
            .map(|r| r.and_then(|(position, fields)| self.ids.check(position, fields)))
            .map(|r| {
                let record = r?;
                for c in &self.columns {
                    columns::check_value(&record, c).map_err(|e| e.in_file(&self.file))?;
                }
                Ok(record)
            });
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

/// Streams the records of `spec.input` (relative to `root`) in file order;
/// errors name the file, the position and the id.
pub fn read(root: &Path, spec: &RecordsSpec) -> Result<Records, RecordError> {
    let file = spec.input.clone();
    let ids = id::IdCheck::new(&file, &spec.id, spec.file_names)?;
    let path = root.join(&spec.input);
    let opened = std::fs::File::open(&path)
        .map_err(|e| RecordError::file(&file, format!("cannot read the records file: {e}")))?;
    let reader = std::io::BufReader::with_capacity(1 << 16, opened);
    let inner: RawRecords = match spec.format {
        Format::JsonLines => Box::new(jsonl::JsonLines::new(file.clone(), reader)),
        Format::Json => Box::new(json::JsonRecords::new(file.clone(), reader)?),
        Format::Csv => Box::new(csv::CsvRecords::new(file.clone(), reader)?),
    };
    Ok(Records {
        inner,
        ids,
        file,
        columns: spec.columns.clone(),
        failed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(name: &str, text: &str, id: IdRule) -> Result<Vec<Record>, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        let spec = RecordsSpec {
            input: PathBuf::from(name),
            format: Format::from_path(Path::new(name)).unwrap(),
            id,
            file_names: false,
            columns: Vec::new(),
        };
        read(dir.path(), &spec)
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_format_gives_the_same_records() {
        let id = || IdRule::Field("id".into());
        let jsonl = read_all(
            "r.jsonl",
            "{\"id\":\"a\",\"n\":\"1\"}\n\n{\"id\":\"b\",\"n\":\"2\"}\n",
            id(),
        )
        .unwrap();
        let array = read_all(
            "r.json",
            "[{\"id\":\"a\",\"n\":\"1\"},{\"id\":\"b\",\"n\":\"2\"}]",
            id(),
        )
        .unwrap();
        let object = read_all("r.json", "{\"_schema\":{\"v\":1},\"a\":{\"id\":\"a\",\"n\":\"1\"},\"b\":{\"id\":\"b\",\"n\":\"2\"}}", id()).unwrap();
        let csv = read_all("r.csv", "id,n\na,1\nb,2\n", id()).unwrap();
        for records in [&jsonl, &array, &object, &csv] {
            let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, ["a", "b"]);
            assert_eq!(records[1].fields["n"], "2");
        }
        assert_eq!(jsonl[1].position, Position::Line(3));
        assert_eq!(array[1].position, Position::Index(1));
        assert_eq!(object[1].position, Position::Key("b".into()));
        assert_eq!(csv[1].position, Position::Line(3));
    }

    #[test]
    fn templates_make_ids_from_fields_and_positions() {
        let t = IdRule::parse("{{ sku }}-{{ _line }}");
        let r = read_all("r.csv", "sku,name\nx,X\ny,Y\n", t).unwrap();
        assert_eq!(r[0].id, "x-2");
        assert_eq!(r[1].id, "y-3");
        let e = read_all("r.jsonl", "{\"sku\":1}\n", IdRule::parse("{{ skew }}")).unwrap_err();
        assert!(
            e.starts_with("r.jsonl:1: the id template failed: undefined value"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_file_the_record_and_the_id() {
        let id = || IdRule::Field("id".into());
        let e = read_all("r.jsonl", "{\"id\":\"a\"}\n{\"id\":\"a\"}\n", id()).unwrap_err();
        assert_eq!(
            e,
            "r.jsonl:2: record \"a\": duplicate id \"a\": line 1 has it too; ids must be unique"
        );
        let e = read_all("r.json", "[{\"id\":\"a\"},{\"id\":\"\"}]", id()).unwrap_err();
        assert_eq!(
            e,
            "r.json: element [1]: the id (field `id`) is empty; every record needs an id"
        );
        let e = read_all("r.json", "[{\"id\":\"a\"},{\"id\":\"b\",}]", id()).unwrap_err();
        assert!(
            e.starts_with("r.json: element [1]: invalid JSON at line 1 column"),
            "{e}"
        );
        let e = read_all("r.jsonl", "{\"id\":\"a\"}\n{\"id\": \"b\"\n", id()).unwrap_err();
        assert!(e.starts_with("r.jsonl:2: invalid JSON at column"), "{e}");
        let e = read_all("r.csv", "id,n\na,1\nb,2,3\n", id()).unwrap_err();
        assert_eq!(e, "r.csv:3: the row has 3 values but the header row names 2 fields; quote values that contain commas");
        let e = read_all("r.json", "\"x\"", id()).unwrap_err();
        assert!(e.starts_with("r.json: the file holds a string"), "{e}");
    }

    /// A generated records file that is never whole in memory: it makes
    /// each line when it is read, and counts the bytes handed out.
    struct Generated {
        format: Format,
        records: u64,
        next: u64,
        pending: Vec<u8>,
        read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl Generated {
        /// One record's text (about 100 bytes) in the file's format.
        fn line(format: Format, i: u64, last: bool) -> String {
            let plot = "a plot of some length, to make a record of about a hundred bytes";
            match format {
                Format::JsonLines => format!("{{\"id\":\"r{i}\",\"plot\":\"{plot}\"}}\n"),
                Format::Csv => format!("r{i},\"{plot}\"\n"),
                Format::Json => {
                    let end = if last { "]" } else { "," };
                    format!("{{\"id\":\"r{i}\",\"plot\":\"{plot}\"}}{end}\n")
                }
            }
        }
    }

    impl std::io::Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            while self.pending.is_empty() && self.next < self.records {
                self.pending =
                    Generated::line(self.format, self.next, self.next + 1 == self.records)
                        .into_bytes();
                self.next += 1;
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            self.read
                .fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
            Ok(n)
        }
    }

    #[test]
    fn readers_stream_a_generated_file_without_reading_ahead() {
        use std::sync::atomic::Ordering;
        // 100,000 records (7 to 9 MB of input) per format: after each record
        // the reader has read only a bounded distance past it.
        const RECORDS: u64 = 100_000;
        for format in [Format::JsonLines, Format::Csv, Format::Json] {
            let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let header = match format {
                Format::Csv => b"id,plot\n".to_vec(),
                Format::Json => b"[\n".to_vec(),
                Format::JsonLines => Vec::new(),
            };
            let source = Generated {
                format,
                records: RECORDS,
                next: 0,
                pending: header.clone(),
                read: read.clone(),
            };
            let reader = std::io::BufReader::with_capacity(1 << 16, source);
            let file = PathBuf::from("generated");
            let raw: RawRecords = match format {
                Format::JsonLines => Box::new(jsonl::JsonLines::new(file.clone(), reader)),
                Format::Csv => Box::new(csv::CsvRecords::new(file.clone(), reader).unwrap()),
                Format::Json => Box::new(json::JsonRecords::new(file.clone(), reader).unwrap()),
            };
            let mut records = Records {
                inner: raw,
                ids: id::IdCheck::new(&file, &IdRule::Field("id".into()), false).unwrap(),
                file: file.clone(),
                columns: Vec::new(),
                failed: false,
            };
            let mut consumed = header.len() as u64;
            let mut most_ahead = 0;
            for i in 0..RECORDS {
                let r = records.next().unwrap().unwrap();
                assert_eq!(r.id, format!("r{i}"));
                consumed += Generated::line(format, i, i + 1 == RECORDS).len() as u64;
                most_ahead = most_ahead.max(read.load(Ordering::SeqCst).saturating_sub(consumed));
            }
            assert!(records.next().is_none());
            // A read buffer, the parser's own buffering and (JSON) the
            // queue between its thread and the iterator: well under 1 MB
            // of the input.
            assert!(
                most_ahead < 1 << 20,
                "{format}: read {most_ahead} bytes ahead"
            );
            assert!(consumed > 7_000_000, "{consumed}");
        }
    }
}
