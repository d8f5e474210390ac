//! A JSON records file: an array of objects, or an object whose members
//! are the records keyed by id (members whose key starts with `_` are not
//! records: movies.json keeps `_schema` there).
//!
//! The document is walked by a serde visitor over the reader on a thread of
//! its own, handing each record over a small bounded channel, so only a
//! few records are in memory at a time, never a `Value` of the whole file.

use super::{Position, RawRecord, RecordError};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// How many records may wait between the parsing thread and the reader.
const QUEUE: usize = 256;

/// The records of a JSON file, in document order.
pub struct JsonRecords {
    received: Receiver<Result<RawRecord, RecordError>>,
}

impl JsonRecords {
    /// Start walking `reader` (named `file` in errors).
    pub fn new<R: Read + Send + 'static>(
        file: PathBuf,
        reader: R,
    ) -> Result<JsonRecords, RecordError> {
        let (send, received) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("pipe-records-json".into())
            .spawn(move || walk(&file, reader, &send))
            .map_err(|e| RecordError::file(Path::new(""), format!("cannot start a thread: {e}")))?;
        Ok(JsonRecords { received })
    }
}

impl Iterator for JsonRecords {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Ends when the thread is done (its sender dropped).
        self.received.recv().ok()
    }
}

/// Where the walk is, for an error serde_json reports mid-record.
#[derive(Default)]
struct Walk {
    /// Elements (array) handed over so far.
    index: u64,
    /// The key of the member being read (object).
    key: Option<String>,
    /// The reader went away: stop quietly.
    stopped: bool,
}

fn walk<R: Read>(file: &Path, reader: R, send: &SyncSender<Result<RawRecord, RecordError>>) {
    let mut state = Walk::default();
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = (Document {
        file,
        send,
        state: &mut state,
    })
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = result {
        if state.stopped {
            return;
        }
        let message = format!(
            "invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            super::jsonl::strip_position(&e)
        );
        let err = if e.is_data() || e.is_syntax() || e.is_eof() {
            match (&state.key, e.line()) {
                (_, 0) => RecordError::file(file, message),
                (Some(k), _) => RecordError::at(file, Position::Key(k.clone()), message),
                (None, _) if state.index > 0 || e.is_syntax() => {
                    RecordError::at(file, Position::Index(state.index), message)
                }
                _ => RecordError::file(file, message),
            }
        } else {
            RecordError::file(file, format!("cannot read the records file: {e}"))
        };
        // A custom error we raised ourselves is already a whole message.
        let err = match e.classify() {
            serde_json::error::Category::Data if e.to_string().starts_with(SHAPE) => {
                RecordError::file(
                    file,
                    super::jsonl::strip_position(&e)[SHAPE.len()..].to_string(),
                )
            }
            _ => err,
        };
        let _ = send.send(Err(err));
    }
}

/// Marks the errors our visitor raises about the file's shape.
const SHAPE: &str = "\u{1}";

struct Document<'a> {
    file: &'a Path,
    send: &'a SyncSender<Result<RawRecord, RecordError>>,
    state: &'a mut Walk,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records or an object of records keyed by id")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let at = Position::Index(self.state.index);
            let Some(value) = seq.next_element::<Value>()? else {
                return Ok(());
            };
            let item = match value {
                Value::Object(fields) => Ok((at, fields)),
                other => Err(not_an_object(self.file, at, &other)),
            };
            self.state.index += 1;
            let failed = item.is_err();
            if self.send.send(item).is_err() || failed {
                self.state.stopped = true;
                return Err(serde::de::Error::custom("stopped"));
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key.starts_with('_') {
                self.state.key = Some(key);
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.state.key = Some(key.clone());
            let value = map.next_value::<Value>()?;
            let at = Position::Key(key);
            let item = match value {
                Value::Object(fields) => Ok((at, fields)),
                other => Err(not_an_object(self.file, at, &other)),
            };
            let failed = item.is_err();
            if self.send.send(item).is_err() || failed {
                self.state.stopped = true;
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(shape("a string")))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(shape("a boolean")))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(shape("a number")))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(shape("a number")))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(shape("a number")))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(shape("null")))
    }
}

fn shape(what: &str) -> String {
    format!(
        "{SHAPE}the file holds {what}; a JSON records file is an array of objects [{{…}}, …] or an object of objects keyed by id {{\"id\": {{…}}, …}}"
    )
}

fn not_an_object(file: &Path, at: Position, v: &Value) -> RecordError {
    RecordError::at(
        file,
        at,
        format!(
            "the record is {}, not a JSON object {{\"field\": value, …}}",
            super::id::describe(v)
        ),
    )
}
