//! JSON Lines: one JSON object per line, read one line at a time.

use super::{Position, RawRecord, RecordError};
use std::io::BufRead;
use std::path::PathBuf;

/// The records of a JSON Lines file, one line at a time: only the current
/// line is held. Blank lines are skipped; a line that is not one JSON
/// object is an error at that line.
pub struct JsonLines<R> {
    file: PathBuf,
    reader: R,
    line: u64,
    buffer: String,
}

impl<R: BufRead> JsonLines<R> {
    /// Records of `reader`, named `file` in errors.
    pub fn new(file: PathBuf, reader: R) -> JsonLines<R> {
        JsonLines {
            file,
            reader,
            line: 0,
            buffer: String::new(),
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            self.line += 1;
            let at = Position::Line(self.line);
            match self.reader.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Some(Err(RecordError::at(
                        &self.file,
                        at,
                        "the line is not valid UTF-8; save the file as UTF-8",
                    )))
                }
                Err(e) => {
                    return Some(Err(RecordError::at(
                        &self.file,
                        at,
                        format!("cannot read the records file: {e}"),
                    )))
                }
            }
            // Leading blanks stay, so that serde_json's column is the file's.
            let text = match self.line {
                1 => self.buffer.trim_start_matches('\u{feff}').trim_end(),
                _ => self.buffer.trim_end(),
            };
            if text.trim_start().is_empty() {
                continue;
            }
            return Some(match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(fields)) => Ok((at, fields)),
                Ok(other) => Err(RecordError::at(
                    &self.file,
                    at,
                    format!(
                        "the line holds {}, not a JSON object; each line of a JSON Lines file is one record {{\"field\": value, …}}",
                        super::id::describe(&other)
                    ),
                )),
                Err(e) => Err(RecordError::at(
                    &self.file,
                    at,
                    format!(
                        "invalid JSON at column {}: {}; each line must be one complete JSON object",
                        e.column(),
                        strip_position(&e)
                    ),
                )),
            });
        }
    }
}

/// serde_json's message without its own " at line 1 column 5" (we name the
/// line of the file instead).
pub(super) fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
