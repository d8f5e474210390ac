//! The part cache of the database stages (`movies-db`, `records-db`):
//! SQLite files under `.pipe/cache/<stage>/`, each named by a blake3 key
//! over everything its content depends on, so a file with the right name is
//! the right content. A database is assembled from parts (rows shared by
//! every model's database; one vector table per model), so an edit rebuilds
//! only the parts it touches.
//!
//! Only the newest entry of each part kind (movies-db's catalog; the vectors
//! of one model) is kept: older ones are deleted after a successful build, so
//! the cache never grows beyond one entry per part kind.
//! Every entry is written to a temporary file and renamed into place; an
//! entry that cannot be opened or read is treated as missing.

use crate::stage::StageError;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Name of the small table in a vector part that describes it; it is never
/// copied into a published database. (The catalog part, whose bytes go whole
/// into every database, is described by a JSON file beside it instead.)
pub(crate) const META_TABLE: &str = "pipe_part";

/// An SQLite error while writing `path` (project-relative for messages): a
/// part, or a database the stages assemble from parts.
pub(crate) fn db_err_at(path: &Path, what: &str, e: rusqlite::Error) -> StageError {
    StageError::with_source(format!("{}: cannot {what}: {e}", path.display()), e)
}

/// The warning that a damaged cache entry of `subject` (a model, a
/// target) was rebuilt: nothing lost, but worth knowing.
pub(crate) fn damaged(subject: &str, error: &StageError) -> crate::stage::Warning {
    crate::stage::Warning::new(
        "cache-damaged",
        "a cached part of the database could not be read and was built again",
        subject,
        format!("{error}; the cached parts were discarded and built again"),
        "nothing to do; if it happens again, check the disk under .pipe/cache/ (deleting it is always safe)",
    )
}

/// The cache directory of a stage (`movies-db`) in a project.
pub(crate) fn dir(root: &Path, stage: &str) -> PathBuf {
    root.join(crate::state::STATE_DIR).join("cache").join(stage)
}

/// Where a part came from, reported in the stage's stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Built by this target.
    Built,
    /// Made by this target by patching the previous build's part
    /// (movies-db's catalog).
    Patched,
    /// Built by another target of this process.
    Shared,
    /// Read from the cache of an earlier build.
    Cached,
    /// Taken from the remote cache (another machine built it).
    Downloaded,
}

impl Origin {
    /// Made by this target (so not a cache entry that may be damaged).
    pub(crate) fn is_new(self) -> bool {
        matches!(self, Origin::Built | Origin::Patched)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Built => "built",
            Origin::Patched => "patched",
            Origin::Shared => "shared",
            Origin::Cached => "cached",
            Origin::Downloaded => "downloaded",
        }
    }
}

/// After ANALYZE: its rows put in (table, index) order, the samples of an
/// index keeping their order. ANALYZE visits tables in the order of the
/// connection's in-memory schema hash, which depends on how the connection
/// came by its schema (created it, or read it from a file laid out by
/// VACUUM), so without this the stored rows would depend on that.
pub(crate) const SORT_STATISTICS: &str = "BEGIN;
         CREATE TEMP TABLE stat1 AS SELECT tbl, idx, stat FROM main.sqlite_stat1
           ORDER BY tbl, idx;
         DELETE FROM main.sqlite_stat1;
         INSERT INTO main.sqlite_stat1 (tbl, idx, stat) SELECT tbl, idx, stat FROM temp.stat1
           ORDER BY rowid;
         CREATE TEMP TABLE stat4 AS SELECT * FROM main.sqlite_stat4 ORDER BY tbl, idx, rowid;
         DELETE FROM main.sqlite_stat4;
         INSERT INTO main.sqlite_stat4 SELECT * FROM temp.stat4 ORDER BY rowid;
         DROP TABLE temp.stat1;
         DROP TABLE temp.stat4;
         COMMIT;";

/// A key over labelled fields: each field is length-prefixed, so no two
/// different field lists hash alike.
pub(crate) fn key(fields: &[(&str, &str)]) -> String {
    let mut h = blake3::Hasher::new();
    let parts = fields.iter().flat_map(|(name, value)| [name, value]);
    crate::fingerprint::update_parts(&mut h, parts.map(|p| p.as_bytes()));
    h.finalize().to_hex().to_string()
}

/// The SQLite and sqlite-vec versions, part of every key (they write the
/// bytes of every part).
pub(crate) fn versions() -> Result<&'static (String, String), StageError> {
    crate::sqlite::versions()
        .map_err(|e| StageError::with_source(format!("cannot query the SQLite versions: {e}"), e))
}

/// A part of the cache directory `dir`: the cached file of `key` if `read`
/// accepts it, else another machine's (the remote cache), else made by
/// `build` at the path given (and offered to other machines). Older entries
/// of `prefix` are pruned once a new one is in place.
pub(crate) fn obtain<P, E>(
    ctx: &crate::stage::StageContext,
    dir: &Path,
    prefix: &str,
    key: &str,
    read: impl Fn(&Path, &str) -> Option<P>,
    build: impl FnOnce(&Path) -> Result<P, E>,
) -> Result<(P, Origin), E> {
    let path = dir.join(file_name(prefix, key));
    if let Some(part) = read(&path, key) {
        return Ok((part, Origin::Cached));
    }
    if fetch_shared(ctx, key, &path) {
        if let Some(part) = read(&path, key) {
            prune(dir, prefix, key);
            return Ok((part, Origin::Downloaded));
        }
        discard(&path);
    }
    let part = build(&path)?;
    offer_shared(ctx, key, &path);
    prune(dir, prefix, key);
    Ok((part, Origin::Built))
}

/// The newest other entry `<prefix><key>.db` of `dir` than `key`'s: the
/// previous build's part, which a build may patch rather than build anew.
pub(crate) fn previous(dir: &Path, prefix: &str, key: &str) -> Option<PathBuf> {
    let mine = file_name(prefix, key);
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(prefix)?;
            let hex = rest.strip_suffix(".db")?;
            (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && name != mine)
                .then_some(())?;
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, e.path()))
        })
        .max()
        .map(|(_, path)| path)
}

/// The part of `key` from another machine (the remote cache), installed at
/// `path`, if the context shares parts and the cache has it.
fn fetch_shared(ctx: &crate::stage::StageContext, key: &str, path: &Path) -> bool {
    ctx.shared_parts.is_some_and(|s| s.fetch_part(key, path))
}

/// Offer the part just built at `path` to other machines.
fn offer_shared(ctx: &crate::stage::StageContext, key: &str, path: &Path) {
    if let Some(s) = ctx.shared_parts {
        s.offer_part(key, path);
    }
}

/// Read the description table of a part; `None` if the file is missing,
/// unreadable or not a part (all of which are cache misses).
pub(crate) fn read_meta(path: &Path) -> Option<BTreeMap<String, String>> {
    if !path.is_file() {
        return None;
    }
    let conn = crate::sqlite::open_read_only(path).ok()?;
    let mut stmt = conn
        .prepare(&format!("SELECT key, value FROM {META_TABLE}"))
        .ok()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .ok()?;
    rows.collect::<Result<BTreeMap<_, _>, _>>().ok()
}

/// Write the description table of a part.
pub(crate) fn write_meta(conn: &Connection, meta: &[(&str, String)]) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    ))?;
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO {META_TABLE} (key, value) VALUES (?1, ?2)"
    ))?;
    for (k, v) in meta {
        stmt.execute([k, v.as_str()])?;
    }
    Ok(())
}

/// File name of a part: `<prefix><key>.db`.
pub(crate) fn file_name(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}.db")
}

/// Temporary files of this part kind older than this are leftovers of a
/// killed build (a live build renames its temporary within seconds).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Delete every entry named `<prefix><other key>.db` (or `.json` and
/// `.rows`, a catalog's description and rows) in `dir` except those of `keep_key`, and stale
/// temporary files of the same kind. Best effort: a file that cannot be
/// removed is only disk space.
pub(crate) fn prune(dir: &Path, prefix: &str, keep_key: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let temp = format!("{}{prefix}", crate::artifact::TEMP_PREFIX);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&temp) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
            continue;
        }
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        // Only exact `<prefix><64 hex>.<ext>` (the part, its description,
        // its rows): a prefix of another model's name (`vectors.bge.` vs
        // `vectors.bge.micro.`) never matches.
        let (Some(k), Some(ext)) = (rest.get(..64), rest.get(64..)) else {
            continue;
        };
        if matches!(ext, ".db" | ".json" | ".rows")
            && k.bytes().all(|b| b.is_ascii_hexdigit())
            && k != keep_key
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The description file of a catalog part: `<name>.json` beside it.
fn sidecar(db: &Path) -> PathBuf {
    db.with_extension("json")
}

/// Read the description of a catalog part; `None` if it or the part is
/// missing or unreadable (a cache miss).
pub(crate) fn read_sidecar(db: &Path) -> Option<BTreeMap<String, String>> {
    if !db.is_file() {
        return None;
    }
    let bytes = std::fs::read(sidecar(db)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Write the description of a catalog part, after the part itself: a
/// description therefore always names a complete part.
pub(crate) fn write_sidecar(db: &Path, meta: &BTreeMap<String, String>) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    crate::artifact::write_atomic(&sidecar(db), &bytes)
}

/// A `file:` URI opening `path` read-only, for ATTACH: a part that
/// vanished is then an error, never a new empty file at the cache path.
pub(crate) fn read_only_uri(path: &Path) -> Option<String> {
    let p = path.to_str()?;
    let mut uri = String::from("file:");
    for c in p.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            _ => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    Some(uri)
}

/// Make the entry at `path` a miss, keeping its file: its description and
/// its rows are removed (the file is then no entry of any key).
pub(crate) fn forget_entry(path: &Path) -> std::io::Result<()> {
    for p in [sidecar(path), path.with_extension("rows")] {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Remove one cache entry (after it proved unusable), its description and
/// its rows. Best effort.
pub(crate) fn discard(path: &Path) {
    let _ = forget_entry(path);
    let _ = std::fs::remove_file(path);
}

/// Begin a database at `dest` (a temporary path; `shown`, project-relative,
/// in messages) from the part at `base`, named `what` ("the catalog
/// part"): its bytes, laid out canonically already, are the start of the
/// database (a kernel-side copy where the file system has one). Opened to
/// append the rest: no journal and no fsync while it is a temporary (a
/// failed build deletes it); rollback (DELETE) journal mode is what a
/// non-WAL file reports, as the browser needs. `items` is the progress
/// total.
pub(crate) fn start_database(
    ctx: &crate::stage::StageContext,
    base: &Path,
    what: &str,
    dest: &Path,
    shown: &Path,
    items: usize,
) -> Result<Connection, StageError> {
    // The previous build's database of this output is freed just before
    // the new one is written into the memory it held.
    super::recycle::release(ctx.root, shown);
    std::fs::copy(base, dest)
        .map_err(|err| StageError::io(shown, &format!("copy {what} to"), err))?;
    if ctx.is_cancelled() {
        return Err(StageError::cancelled());
    }
    ctx.progress
        .progress(0, items as u64, "writing the database");
    let e = |what: &'static str| move |err: rusqlite::Error| db_err_at(shown, what, err);
    let conn = crate::sqlite::open(dest).map_err(e("open the new database"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8192; \
         PRAGMA foreign_keys = OFF;",
    )
    .map_err(e("configure"))?;
    Ok(conn)
}

/// Attach the part at `part` read-only to `conn` as `vec` (`what`: how
/// errors name the attaching, for `shown`).
pub(crate) fn attach_part(
    conn: &Connection,
    part: &Path,
    shown: &Path,
    what: &'static str,
) -> Result<(), StageError> {
    let file = read_only_uri(part).ok_or_else(|| {
        StageError::new(format!("{}: the path is not valid UTF-8", part.display()))
    })?;
    conn.execute("ATTACH DATABASE ?1 AS vec", [file.as_str()])
        .map_err(|err| db_err_at(shown, what, err))?;
    Ok(())
}

/// Copy every stored table of the attached part `part` into `main`, in the
/// part's schema order, then its `sqlite_sequence` and statistics rows
/// (`sqlite_stat1`, and `sqlite_stat4`: the bundled SQLite keeps samples).
/// Shadow tables of virtual tables were given initial rows by `CREATE
/// VIRTUAL TABLE` and are emptied first (the part's rows replace them).
pub(crate) fn copy_part(conn: &Connection, part: &str) -> rusqlite::Result<()> {
    let tables: Vec<String> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT name FROM {part}.sqlite_schema WHERE type = 'table' AND rootpage > 0 \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != '{}' ORDER BY rowid",
            META_TABLE
        ))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for t in tables.iter().map(|t| t.replace('"', "\"\"")) {
        conn.execute_batch(&format!(
            "DELETE FROM main.\"{t}\"; INSERT INTO main.\"{t}\" SELECT * FROM {part}.\"{t}\";"
        ))?;
    }
    // The part's sequence values (the catalog's are the reference's, above
    // the largest ids) replace those the copy left.
    conn.execute_batch(&format!(
        "DELETE FROM main.sqlite_sequence WHERE name IN (SELECT name FROM {part}.sqlite_sequence); \
         INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM {part}.sqlite_sequence ORDER BY rowid; \
         INSERT INTO main.sqlite_stat1 (tbl, idx, stat) SELECT tbl, idx, stat FROM {part}.sqlite_stat1 \
           WHERE tbl != '{meta}' ORDER BY rowid; \
         INSERT INTO main.sqlite_stat4 SELECT * FROM {part}.sqlite_stat4 WHERE tbl != '{meta}' ORDER BY rowid;",
        meta = META_TABLE
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_fields() {
        assert_ne!(key(&[("a", "bc")]), key(&[("ab", "c")]));
        assert_eq!(key(&[("a", "b")]), key(&[("a", "b")]));
    }

    #[test]
    fn prune_keeps_other_kinds_and_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let k1 = "a".repeat(64);
        let k2 = "b".repeat(64);
        for n in [
            file_name("vectors.bge.", &k1),
            file_name("vectors.bge.", &k2),
            file_name("vectors.bge.micro.", &k1),
            file_name("catalog.", &k1),
            format!("catalog.{k1}.json"),
            format!("catalog.{k2}.json"),
            format!("catalog.{k2}.rows"),
        ] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        prune(d.path(), "vectors.bge.", &k2);
        prune(d.path(), "catalog.", &k1);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                file_name("catalog.", &k1),
                format!("catalog.{k1}.json"),
                file_name("vectors.bge.", &k2),
                file_name("vectors.bge.micro.", &k1),
            ]
        );
    }
}
