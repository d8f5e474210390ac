//! The language normaliser behind `movies.language`: a source or OMDB
//! language (name, code, comma-separated list or array) becomes a lowercase
//! ISO 639-1 code, or nothing.

use serde_json::Value;

/// Language names the reference pipeline recognises, with their codes.
const NAMES: &[(&str, &str)] = &[
    ("english", "en"),
    ("german", "de"),
    ("french", "fr"),
    ("spanish", "es"),
    ("italian", "it"),
    ("portuguese", "pt"),
    ("russian", "ru"),
    ("japanese", "ja"),
    ("chinese", "zh"),
    ("korean", "ko"),
    ("arabic", "ar"),
    ("hindi", "hi"),
    ("dutch", "nl"),
    ("polish", "pl"),
    ("swedish", "sv"),
    ("norwegian", "no"),
    ("danish", "da"),
    ("finnish", "fi"),
    ("czech", "cs"),
    ("hungarian", "hu"),
    ("turkish", "tr"),
    ("greek", "el"),
    ("hebrew", "he"),
    ("thai", "th"),
    ("vietnamese", "vi"),
];

/// Normalise one language string: the first comma-separated entry, trimmed
/// and lower-cased; a two-letter ASCII code is kept as is, a known name is
/// mapped, anything else (including 'N/A' and 'none') gives `None`.
pub fn normalize_str(language: &str) -> Option<String> {
    let first = language.split(',').next().unwrap_or("");
    let first = crate::movies::js::trim(first).to_lowercase();
    if first.is_empty() || first == "n/a" || first == "none" {
        return None;
    }
    if first.len() == 2 && first.bytes().all(|b| b.is_ascii_lowercase()) {
        return Some(first);
    }
    NAMES
        .iter()
        .find(|(name, _)| *name == first)
        .map(|(_, code)| (*code).to_string())
}

/// Normalise a language value as found in movies.json: a string, or an
/// array whose first element counts. Falsy values and other types give `None`.
pub fn normalize(language: &Value) -> Option<String> {
    match language {
        Value::String(s) => normalize_str(s),
        Value::Array(items) => match items.first() {
            Some(Value::String(s)) => normalize_str(s),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_like_the_reference() {
        assert_eq!(normalize(&json!("en")), Some("en".into()));
        assert_eq!(normalize(&json!(["en", "fr"])), Some("en".into()));
        assert_eq!(normalize(&json!("Japanese, French")), Some("ja".into()));
        assert_eq!(normalize(&json!(" FR ")), Some("fr".into()));
        assert_eq!(normalize(&json!("N/A, German")), None);
        assert_eq!(normalize(&json!("None")), None);
        assert_eq!(normalize(&json!("Klingon")), None);
        assert_eq!(normalize(&json!("é1")), None);
        assert_eq!(normalize(&json!([])), None);
        assert_eq!(normalize(&json!("")), None);
    }
}
