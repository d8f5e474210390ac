//! Movie ids become file names (`public/movies/<movieId>.json`), so an id
//! from movies.json must never be able to name a file outside the output
//! directory or one the file system cannot hold.

pub use crate::ids::{collision_key, collision_reason, id_problem, MAX_FILE_NAME, MAX_ID};

/// The placeholder in a file template that is replaced by the movie id.
pub const ID_PLACEHOLDER: &str = "{movieId}";

/// Check a file template such as `{movieId}.json`: it must contain the
/// placeholder and produce a single file name (no directories).
pub fn check_template(template: &str) -> Result<(), String> {
    if !template.contains(ID_PLACEHOLDER) {
        return Err(format!(
            "file template {template:?} does not contain {ID_PLACEHOLDER}, so every movie would \
             write the same file; use e.g. \"{ID_PLACEHOLDER}.json\""
        ));
    }
    let probe = template.replace(ID_PLACEHOLDER, "x");
    if probe.contains('/')
        || probe.contains('\\')
        || probe.contains("..")
        || probe.chars().any(char::is_control)
    {
        return Err(format!(
            "file template {template:?} must be a plain file name (no '/', '\\', '..' or control \
             characters); put directories in out_dir instead"
        ));
    }
    Ok(())
}

/// The file name of movie `id` under `template`, or a message naming the id
/// and the fix when the id is unusable as a file name.
pub fn file_name(template: &str, id: &str) -> Result<String, String> {
    if let Some(why) = id_problem(id) {
        return Err(hostile_message(id, why));
    }
    let name = template.replace(ID_PLACEHOLDER, id);
    if name.len() > MAX_FILE_NAME {
        return Err(hostile_message(
            id,
            "its file name would be longer than 255 bytes",
        ));
    }
    Ok(name)
}

/// The error text for an unusable movie id.
pub fn hostile_message(id: &str, why: &str) -> String {
    format!(
        "movie id {id:?} cannot be used as a file name: {why}. Fix the movieId of this entry in \
         movies.json (ids look like 'tt0012345', 'archive-…' or 'youtube-…')"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_are_rejected() {
        for id in [
            "", "../../x", "a/b", "a\\b", ".", "..", "a..b", "a\0b", "a\nb",
        ] {
            assert!(file_name("{movieId}.json", id).is_err(), "{id:?}");
        }
        assert!(file_name("{movieId}.json", &"a".repeat(250)).is_ok());
        assert!(file_name("{movieId}.json", &"a".repeat(251)).is_err());
        assert!(id_problem(&"a".repeat(5000)).is_some());
        for id in ["CON", "nul", "Com1", "lpt9.x", "aux ", "PRN.json"] {
            assert!(id_problem(id).is_some(), "{id:?}");
        }
        for id in ["CONS", "tt0000001", "console", "COM10", "xnul"] {
            assert!(id_problem(id).is_none(), "{id:?}");
        }
        assert_eq!(file_name("{movieId}.json", "tt1").unwrap(), "tt1.json");
        assert_eq!(
            file_name("{movieId}.json", "archive-Père69").unwrap(),
            "archive-Père69.json"
        );
    }

    #[test]
    fn collisions_on_common_file_systems() {
        let nfc = "archive-P\u{e8}re69";
        let nfd = "archive-Pe\u{300}re69";
        assert_ne!(nfc, nfd);
        assert_eq!(collision_key(nfc), collision_key(nfd));
        assert!(collision_reason(nfc, nfd).contains("NFC"));
        assert_eq!(collision_key("youtube-aB"), collision_key("youtube-Ab"));
        assert!(collision_reason("youtube-aB", "youtube-Ab").contains("letter case"));
        assert_ne!(collision_key("tt1"), collision_key("tt2"));
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("{movieId}.json").is_ok());
        assert!(check_template("movie.json").is_err());
        assert!(check_template("../{movieId}.json").is_err());
        assert!(check_template("sub/{movieId}.json").is_err());
    }
}
