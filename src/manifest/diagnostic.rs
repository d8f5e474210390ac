//! Errors in the user's files that point at the exact place: file, line,
//! column, a label on the offending text, and what to do about it.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// The text of a user's file, shared by every diagnostic about it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path as shown to the user (relative to the project root when possible).
    pub name: String,
    /// Full text.
    pub text: Arc<String>,
}

impl SourceFile {
    /// A source file named `name` with content `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: Arc::new(text.into()),
        }
    }

    /// 1-based (line, column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }
}

/// One problem in a manifest or model file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
pub struct ManifestError {
    /// `file:line:col`, also in the message so that plain output (and
    /// grep) shows where, whatever the renderer does.
    pub location: String,
    /// What is wrong.
    pub message: String,
    #[source_code]
    source_code: Option<NamedSource<Arc<String>>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    /// What to do about it.
    #[help]
    pub help: Option<String>,
}

impl ManifestError {
    /// An error at `span` of `file`.
    pub fn at(file: &SourceFile, span: Range<usize>, message: impl Into<String>) -> Self {
        let (line, col) = file.line_col(span.start);
        let message = message.into();
        ManifestError {
            location: format!("{}:{line}:{col}", file.name),
            label: "here".into(),
            source_code: Some(
                NamedSource::new(file.name.clone(), file.text.clone()).with_language("toml"),
            ),
            span: Some(SourceSpan::from(span.start..span.end.max(span.start))),
            message,
            help: None,
        }
    }

    /// An error about a whole file (or a file that could not be read).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        ManifestError {
            location: path.display().to_string(),
            message: message.into(),
            source_code: None,
            span: None,
            label: String::new(),
            help: None,
        }
    }

    /// Add what to do about it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Replace the label shown under the offending text.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// A TOML syntax or schema error reported by the toml crate.
    pub fn from_toml(file: &SourceFile, err: &toml::de::Error) -> Self {
        let message = err.message().trim().to_string();
        let help = toml_help(&message);
        let mut e = match err.span() {
            Some(span) => ManifestError::at(file, span, message),
            None => ManifestError::file(Path::new(&file.name), message),
        };
        e.help = help;
        e
    }
}

fn toml_help(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("remove the key or fix its spelling; pipe rejects keys it does not know so that typos are never silently ignored".into())
    } else if message.starts_with("missing field") {
        Some("add the key; see the README for the format".into())
    } else {
        None
    }
}

/// Every problem found in the manifest and model files (all of them are
/// reported at once, like a compiler, not just the first).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{}", summary(.errors))]
pub struct ManifestErrors {
    /// The individual problems.
    #[related]
    pub errors: Vec<ManifestError>,
}

fn summary(errors: &[ManifestError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!("{} problems in the pipeline's files", many.len()),
    }
}

impl ManifestErrors {
    /// Every problem once, each with its file, line and column (rendered by
    /// the installed miette handler), and with several a count at the end,
    /// as a compiler does. Rendering the list as one report would print a
    /// single problem twice, the second time under a bare `Error:`.
    pub fn render(self) -> String {
        let n = self.errors.len();
        let mut text: Vec<String> = self
            .errors
            .into_iter()
            .map(|e| format!("{:?}", miette::Report::new(e)))
            .collect();
        if n > 1 {
            text.push(format!("error: {n} problems in the pipeline's files"));
        }
        text.join("\n")
    }
}

impl From<ManifestError> for ManifestErrors {
    fn from(e: ManifestError) -> Self {
        ManifestErrors { errors: vec![e] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based() {
        let f = SourceFile::new("a.toml", "x = 1\ny = 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(10), (2, 5));
    }
}
