//! Ids that become file names (`public/movies/<movieId>.json`,
//! `public/films/<id>.json`): an id read from a user's file must never be
//! able to name a file outside the output directory, or one a common file
//! system cannot hold or stores as another id's file. Domain-free: the
//! movies and the records use the same checks.

/// The longest file name (in bytes) common file systems accept.
pub const MAX_FILE_NAME: usize = 255;

/// The longest id (in bytes): its file name, `<id>.json`, must fit
/// in [`MAX_FILE_NAME`].
pub const MAX_ID: usize = MAX_FILE_NAME - ".json".len();

/// Names Windows reserves for devices, in any letter case and with any
/// extension (`con.json` cannot be created there either).
const RESERVED_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Why `id` cannot be used as (part of) a file name, or `None` if it can.
pub fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("it is empty")
    } else if id.contains('/') || id.contains('\\') {
        Some("it contains a path separator ('/' or '\\')")
    } else if id == "." || id == ".." || id.contains("..") {
        Some("it contains '..' (or is '.'), which could escape the output directory")
    } else if id.chars().any(char::is_control) {
        Some("it contains a control character (or NUL)")
    } else if id.len() > MAX_ID {
        Some("it is longer than 250 bytes, so its file name would be longer than 255 bytes")
    } else if is_reserved(id) {
        Some("Windows reserves this name for a device (CON, PRN, AUX, NUL, COM0-9, LPT0-9), in any letter case and with any extension")
    } else {
        None
    }
}

/// Whether a file named after `id` is a device name on Windows: the part
/// before the first `.`, without trailing spaces, in any letter case.
fn is_reserved(id: &str) -> bool {
    let stem = id.split('.').next().unwrap_or(id).trim_end_matches(' ');
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// The name two ids share when a common file system would store their
/// files as one: macOS compares names after Unicode normalization and, by
/// default, without letter case; Windows without letter case.
pub fn collision_key(id: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if id.is_ascii() {
        return id.to_ascii_lowercase();
    }
    id.nfc().collect::<String>().to_lowercase()
}

/// Why two different ids with the same [`collision_key`] collide.
pub fn collision_reason(a: &str, b: &str) -> &'static str {
    use unicode_normalization::UnicodeNormalization;
    if a.nfc().eq(b.nfc()) {
        "they are two Unicode spellings (NFC and NFD) of one name, which macOS stores as one file"
    } else {
        "they differ only in letter case, so their files are one file on case-insensitive file systems (macOS, Windows)"
    }
}
