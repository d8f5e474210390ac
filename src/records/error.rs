//! A problem in a records file, named by file, record and id.

use super::Position;
use std::path::{Path, PathBuf};

/// A problem in a records file: which file, which record (when one is to
/// blame), its id (once known), what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct RecordError {
    /// The records file (project-relative).
    pub file: PathBuf,
    /// The record, when the problem is in one.
    pub position: Option<Position>,
    /// The record's id, when it is known.
    pub id: Option<String>,
    /// What is wrong (and what to do).
    pub message: String,
}

impl RecordError {
    /// A problem with the whole file (it cannot be read, its header is bad).
    pub fn file(file: &Path, message: impl Into<String>) -> RecordError {
        RecordError {
            file: file.to_path_buf(),
            position: None,
            id: None,
            message: message.into(),
        }
    }

    /// A problem in the record at `position`.
    pub fn at(file: &Path, position: Position, message: impl Into<String>) -> RecordError {
        RecordError {
            file: file.to_path_buf(),
            position: Some(position),
            id: None,
            message: message.into(),
        }
    }

    /// The same problem, in `file` ([`crate::records::column_value`] knows
    /// the record, not its file).
    pub fn in_file(mut self, file: &Path) -> RecordError {
        self.file = file.to_path_buf();
        self
    }

    /// The same problem, naming the record's id.
    pub fn with_id(mut self, id: impl Into<String>) -> RecordError {
        self.id = Some(id.into());
        self
    }

    /// `data/films.jsonl:4: record "m2": …` (a line, as editors and grep
    /// read it), `data/films.json: element [3], record "m2": …` otherwise.
    fn render(&self) -> String {
        let file = self.file.display();
        let id = self
            .id
            .as_ref()
            .map(|id| format!("record {id:?}: "))
            .unwrap_or_default();
        if self.file.as_os_str().is_empty() {
            return match &self.position {
                None => self.message.clone(),
                Some(p) => format!("{p}: {id}{}", self.message),
            };
        }
        match &self.position {
            None => format!("{file}: {}", self.message),
            Some(Position::Line(n)) => format!("{file}:{n}: {id}{}", self.message),
            Some(Position::Key(k)) if self.id.as_deref() == Some(k.as_str()) => {
                format!("{file}: {id}{}", self.message)
            }
            Some(p) => format!("{file}: {p}: {id}{}", self.message),
        }
    }
}

impl From<RecordError> for crate::stage::StageError {
    fn from(e: RecordError) -> Self {
        crate::stage::StageError::new(e.to_string())
    }
}
