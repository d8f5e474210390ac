//! pipe: a declarative, incremental, parallel and reproducible build tool for
//! embedding databases.
//!
//! The modules follow the flow of data through a build:
//!
//! 1. [`manifest`]: `pipeline.toml` and `models.d/*.toml`, parsed and validated
//!    with diagnostics that point at the exact place in the user's file.
//! 2. [`graph`]: the manifest expanded into a DAG of [`graph::Target`]s
//!    (`movie-json`, `movies-db@potion`, …).
//! 3. [`fingerprint`] and [`state`]: what each target was built from, content
//!    hashes cached by file stat, the `.pipe/` state and `pipe.lock`.
//! 4. [`executor`]: decides what is stale and runs independent targets in
//!    parallel; a stale target another machine built is installed from the
//!    [`remote`] cache instead.
//! 5. [`stages`]: what each kind of target does (`movie-json`, `movies-db`,
//!    `embeddings`, `command`), over the domain model in [`movies`]; the
//!    embeddings stage sends texts to the providers of [`embed`]; records of
//!    any other shape are read by [`records`]. Stages
//!    report problems that did not stop them as [`warning`]s.
//! 6. [`artifact`]: every output is written to a temporary file and renamed
//!    into place.
//!
//! The command line (`src/main.rs`, `src/cli.rs`), [`watch`] mode and the
//! admin page ([`server`], `pipe serve`) are thin layers over this library;
//! [`progress`] is what both show of a running build.
//! [`sample`] generates synthetic inputs of any size for tests and benchmarks.
//! [`search`] and [`compare`] query the databases pipe built, with the front
//! end's KNN query; [`fused_search`] searches several models and fuses their
//! rankings ([`fusion`]).

pub mod artifact;
pub mod compare;
pub mod embed;
pub mod executor;
pub mod fingerprint;
pub mod fused_search;
pub mod fusion;
pub mod graph;
pub mod ids;
pub mod init;
pub mod lockfile;
pub mod manifest;
pub mod movies;
pub mod progress;
pub mod records;
pub mod remote;
pub mod sample;
pub mod search;
pub mod server;
pub mod sqlite;
pub mod stage;
pub mod stages;
pub mod state;
pub mod suggest;
pub mod vectors;
pub mod warning;
pub mod watch;
