//! Movie ids become file names (`public/movies/<movieId>.json`), so an id
//! from movies.json must never be able to name a file outside the output
//! directory or one the file system cannot hold.

/// The longest file name (in bytes) common file systems accept.
pub const MAX_FILE_NAME: usize = 255;

/// The placeholder in a file template that is replaced by the movie id.
pub const ID_PLACEHOLDER: &str = "{movieId}";

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
    } else {
        None
    }
}

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
        assert_eq!(file_name("{movieId}.json", "tt1").unwrap(), "tt1.json");
        assert_eq!(
            file_name("{movieId}.json", "archive-Père69").unwrap(),
            "archive-Père69.json"
        );
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("{movieId}.json").is_ok());
        assert!(check_template("movie.json").is_err());
        assert!(check_template("../{movieId}.json").is_err());
        assert!(check_template("sub/{movieId}.json").is_err());
    }
}
