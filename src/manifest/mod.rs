//! `pipeline.toml` and `models.d/*.toml`: parsing and validation.

pub mod model;
