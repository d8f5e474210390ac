//! Paths in the user's files: always relative to the project root, never
//! escaping it.

use std::path::{Component, Path, PathBuf};

/// Normalise a path written in a manifest: relative, `.` removed, and no
/// `..` that would leave the project root. Returns why it is refused.
///
/// ```
/// use pipe::manifest::paths::project_path;
/// assert_eq!(project_path("./data/../data/movies.json").unwrap().to_str(), Some("data/movies.json"));
/// assert!(project_path("../outside.json").unwrap_err().contains("escapes the project root"));
/// assert!(project_path("/etc/passwd").is_err());
/// ```
pub fn project_path(text: &str) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err("the path is empty".into());
    }
    let path = Path::new(text);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!("`{text}` escapes the project root"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`{text}` is absolute; paths are relative to the project root"
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("`{text}` is the project root itself"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::project_path;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(
            project_path("./data/x.db").unwrap().to_str(),
            Some("data/x.db")
        );
        assert_eq!(project_path("a/../b").unwrap().to_str(), Some("b"));
        assert!(project_path("../x").is_err());
        assert!(project_path("a/../../x").is_err());
        assert!(project_path("/etc/passwd").is_err());
        assert!(project_path("").is_err());
        assert!(project_path(".").is_err());
    }
}
