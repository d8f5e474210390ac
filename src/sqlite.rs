//! Opening SQLite databases with the sqlite-vec extension available.
//!
//! Both SQLite (rusqlite's bundled build) and sqlite-vec are pinned exactly in
//! Cargo.toml: they write the bytes of every database pipe ships.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Once;

static REGISTER: Once = Once::new();

/// Make sqlite-vec available to every connection opened afterwards in this
/// process (sqlite3_auto_extension).
pub fn register_vec() {
    REGISTER.call_once(|| {
        type EntryPoint = unsafe extern "C" fn(
            *mut rusqlite::ffi::sqlite3,
            *mut *mut std::os::raw::c_char,
            *const rusqlite::ffi::sqlite3_api_routines,
        ) -> std::os::raw::c_int;
        // SAFETY: sqlite3_vec_init is a SQLite extension entry point with
        // exactly this signature; the sqlite-vec crate declares it without
        // arguments, so it is cast to the type sqlite3_auto_extension takes.
        unsafe {
            let init: EntryPoint = std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ());
            rusqlite::ffi::sqlite3_auto_extension(Some(init));
        }
    });
}

/// Open (or create) a database read-write, with sqlite-vec loaded.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    register_vec();
    Connection::open(path)
}

/// Open an existing database read-only, with sqlite-vec loaded.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    register_vec();
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The versions that write our bytes: (SQLite, sqlite-vec). Asked once per
/// process: every database target's fingerprint includes them.
pub fn versions() -> rusqlite::Result<&'static (String, String)> {
    static VERSIONS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    if let Some(v) = VERSIONS.get() {
        return Ok(v);
    }
    register_vec();
    let conn = Connection::open_in_memory()?;
    let vec: String = conn.query_row("SELECT vec_version()", [], |r| r.get(0))?;
    Ok(VERSIONS.get_or_init(|| (rusqlite::version().to_string(), vec)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pinned_versions() {
        let (sqlite, vec) = super::versions().unwrap();
        assert_eq!(vec, "v0.1.9");
        assert!(sqlite.starts_with("3."));
    }
}
