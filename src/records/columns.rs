//! Declared columns: which fields of a record become columns of the
//! records table, with their SQLite type, and each record's value there.

use super::{Record, RecordError};
use rusqlite::types::Value as Sql;
use serde_json::Value;

/// The SQLite type of a declared column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `TEXT`: strings; numbers and booleans as their JSON text.
    Text,
    /// `INTEGER`: integers, or strings that are one (CSV).
    Integer,
    /// `REAL`: finite numbers, or strings that are one (CSV).
    Real,
}

impl ColumnType {
    /// The name used in pipeline.toml (`"text"`, `"integer"`, `"real"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
        }
    }

    /// The SQL type name (`TEXT`, `INTEGER`, `REAL`).
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
        }
    }

    /// A type by its pipeline.toml name.
    pub fn parse(name: &str) -> Option<ColumnType> {
        Some(match name {
            "text" => ColumnType::Text,
            "integer" => ColumnType::Integer,
            "real" => ColumnType::Real,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A declared column: a field of the records, its type, and whether a
/// record may lack it (a missing field, JSON null or an empty CSV cell is
/// then NULL).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Column {
    /// The field's name, which is also the column's.
    pub name: String,
    /// Its SQLite type.
    pub ty: ColumnType,
    /// Whether NULL is allowed (`"real?"` in pipeline.toml).
    pub nullable: bool,
}

/// A declared column's SQLite value for a record; the error names the
/// record and the field.
pub fn column_value(record: &Record, column: &Column) -> Result<Sql, RecordError> {
    let value = record.fields.get(&column.name);
    let empty = match value {
        None | Some(Value::Null) => true,
        // An empty CSV cell (or JSON "") is no value for a number.
        Some(Value::String(s)) => s.is_empty() && column.ty != ColumnType::Text,
        _ => false,
    };
    if empty {
        if column.nullable {
            return Ok(Sql::Null);
        }
        let what = match value {
            None => "is missing",
            Some(Value::Null) => "is null",
            _ => "is empty",
        };
        return Err(wrong(
            record,
            column,
            format!(
                "field `{}` {what}, and column `{}` is {}; give the record a value, or declare the column as \"{}?\" to allow NULL",
                column.name, column.name, column.ty, column.ty
            ),
        ));
    }
    let Some(value) = value else {
        return Ok(Sql::Null);
    };
    let fits = match (column.ty, value) {
        (ColumnType::Text, Value::String(s)) => Some(Sql::Text(s.clone())),
        (ColumnType::Text, Value::Number(n)) => Some(Sql::Text(n.to_string())),
        (ColumnType::Text, Value::Bool(b)) => Some(Sql::Text(b.to_string())),
        (ColumnType::Integer, Value::Number(n)) => n.as_i64().map(Sql::Integer),
        (ColumnType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Sql::Integer),
        (ColumnType::Integer, Value::Bool(b)) => Some(Sql::Integer(i64::from(*b))),
        (ColumnType::Real, Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(Sql::Real),
        (ColumnType::Real, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Sql::Real),
        _ => None,
    };
    fits.ok_or_else(|| {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            Value::Array(_) | Value::Object(_) => super::id::describe(value).to_string(),
            other => other.to_string(),
        };
        let expected = match column.ty {
            ColumnType::Text => "a string, number or boolean",
            ColumnType::Integer => "an integer (or a string holding one)",
            ColumnType::Real => "a finite number (or a string holding one)",
        };
        wrong(
            record,
            column,
            format!(
                "field `{}` is {shown}, which does not fit column `{}` ({}): expected {expected}; \
                 correct the record, or declare the column in pipeline.toml with a type that \
                 fits (\"text\" holds strings, numbers and booleans)",
                column.name, column.name, column.ty
            ),
        )
    })
}

/// Whether a record's field fits a declared column: [`column_value`]
/// without the value (what every reader of the records checks).
pub fn check_value(record: &Record, column: &Column) -> Result<(), RecordError> {
    // Any string fits a text column (column_value would only copy it).
    if column.ty == ColumnType::Text
        && matches!(record.fields.get(&column.name), Some(Value::String(_)))
    {
        return Ok(());
    }
    column_value(record, column).map(|_| ())
}

fn wrong(record: &Record, _column: &Column, message: String) -> RecordError {
    RecordError {
        file: std::path::PathBuf::new(),
        position: Some(record.position.clone()),
        id: Some(record.id.clone()),
        message,
    }
}
