//! "Did you mean …?" for unknown names.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
///
/// ```
/// let targets = ["movie-json", "movies-db@potion", "movies-db@nomic"];
/// assert_eq!(pipe::suggest::closest("movies-db@potin", targets), Some("movies-db@potion"));
/// assert_eq!(pipe::suggest::closest("completely-else", targets), None);
/// ```
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| {
            *d <= (name.len().max(c.len()) / 3).max(1) || c.starts_with(name) || name.starts_with(c)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_close_names() {
        let names = ["movies-db@potion", "movies-db@nomic", "movie-json"];
        assert_eq!(
            super::closest("movies-db@potin", names),
            Some("movies-db@potion")
        );
        assert_eq!(super::closest("zzz", names), None);
    }
}
