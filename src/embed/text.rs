//! The text a movie is embedded as.
//!
//! By default exactly what the original's `movieToMarkdown`
//! (`server/utils/movieEmbeddings.ts`) makes of a movie: a title line, the
//! genres, director, actors, language and country, rating and votes when
//! present, and the plot with its fallbacks, with JavaScript's truthiness
//! and string conversions. A model may set its own minijinja template over
//! the movie's fields instead; its errors point into the model file.

use crate::embed::config::TextTemplate;
use crate::movies::js::{trim, truthy};
use serde_json::Value;
use std::ops::Range;

/// The template's name inside its minijinja environment.
const NAME: &str = "text";

/// How a model turns a movie (or a record) into the text it embeds.
pub struct TextMaker {
    env: Option<(minijinja::Environment<'static>, TextTemplate)>,
    prefix: String,
    /// A records template: an undefined field is an error (a typo would
    /// otherwise embed every record without it), and there is no `movie`.
    records: bool,
}

impl TextMaker {
    /// A maker for a model's template (or the default text) and prefix.
    pub fn new(template: Option<&TextTemplate>, prefix: &str) -> Result<TextMaker, String> {
        let env = match template {
            None => None,
            Some(t) => {
                let env = environment(t).map_err(|(range, message)| {
                    format!(
                        "{}: invalid text template: {message}",
                        t.position(range.start)
                    )
                })?;
                Some((env, t.clone()))
            }
        };
        Ok(TextMaker {
            env,
            prefix: prefix.to_string(),
            records: false,
        })
    }

    /// A maker for a records target's template: over the record's fields
    /// (and `_line`, `_index`, `_key`, `_n`), strict about undefined ones.
    pub fn for_records(template: &TextTemplate, prefix: &str) -> Result<TextMaker, String> {
        let mut maker = TextMaker::new(Some(template), prefix)?;
        if let Some((env, _)) = &mut maker.env {
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        }
        maker.records = true;
        Ok(maker)
    }

    /// The text of `movie` (one entry of movies.json), with the prefix.
    pub fn text(&self, movie: &Value) -> Result<String, String> {
        let body = match &self.env {
            None => movie_to_markdown(movie),
            Some((env, t)) => {
                let tmpl = env.get_template(NAME).map_err(|e| e.to_string())?;
                let mut ctx = match movie {
                    Value::Object(o) => o.clone(),
                    _ => serde_json::Map::new(),
                };
                if !self.records {
                    ctx.insert("movie".into(), movie.clone());
                }
                tmpl.render(minijinja::Value::from_serialize(&ctx))
                    .map_err(|e| {
                        let at = e
                            .range()
                            .map(|r| t.position(r.start))
                            .unwrap_or_else(|| t.position(0));
                        // Name the expression that failed (`Titel`).
                        let what = match e.range().and_then(|r| t.source.get(r)) {
                            Some(x) if self.records && !x.trim().is_empty() => {
                                format!(" (`{}`)", x.trim())
                            }
                            _ => String::new(),
                        };
                        format!("{at}: the text template failed: {}{what}", describe(&e))
                    })?
            }
        };
        if self.prefix.is_empty() {
            Ok(body)
        } else {
            Ok(format!("{}{body}", self.prefix))
        }
    }
}

/// Check that a template compiles: `Err((byte range in the template, message))`.
pub fn check_template(t: &TextTemplate) -> Result<(), (Range<usize>, String)> {
    environment(t).map(|_| ())
}

fn environment(
    t: &TextTemplate,
) -> Result<minijinja::Environment<'static>, (Range<usize>, String)> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    // Texts are not HTML: nothing is escaped.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(true);
    // A trial render over an empty movie finds what compiling does not
    // (an unknown filter, a test or function that does not exist).
    let checked = env
        .add_template_owned(NAME, t.source.clone())
        .and_then(|()| {
            env.get_template(NAME)?
                .render(minijinja::Value::from_serialize(serde_json::Map::new()))
                .map(|_| ())
        });
    match checked {
        Ok(()) => Ok(env),
        Err(e) => {
            let range = e.range().unwrap_or_else(|| {
                // Only a line is known: its first byte.
                let line = e.line().unwrap_or(1);
                let start = t
                    .source
                    .split_inclusive('\n')
                    .take(line.saturating_sub(1))
                    .map(str::len)
                    .sum::<usize>();
                start..start
            });
            Err((range, describe(&e)))
        }
    }
}

/// The error's own words, without minijinja's position suffix (we give
/// the position in the model file instead).
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// JavaScript's `String(v)` for a JSON value (`${v}` in a template literal).
fn js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => js_join(a, js_string),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// How JavaScript turns an array into a string (`toString` and
/// `toLocaleString` alike): each element by `element`, null and undefined
/// as empty, joined by commas.
fn js_join(a: &[Value], element: fn(&Value) -> String) -> String {
    a.iter()
        .map(|x| {
            if x.is_null() {
                String::new()
            } else {
                element(x)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn js_number(n: &serde_json::Number) -> String {
    let mut out = Vec::new();
    crate::movies::js::write_number(&mut out, n.as_f64().unwrap_or(f64::NAN));
    String::from_utf8(out).unwrap_or_default()
}

/// `v.toLocaleString()` in an en-US locale (what Node prints by default):
/// numbers with thousands separators and at most three decimals.
fn js_locale_string(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() {
                return js_number(n);
            }
            let rounded = format!("{:.3}", f.abs());
            let (int, frac) = rounded.split_once('.').unwrap_or((&rounded, ""));
            let frac = frac.trim_end_matches('0');
            let mut grouped = String::new();
            for (i, c) in int.chars().enumerate() {
                if i > 0 && (int.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            let sign = if f < 0.0 && (int != "0" || !frac.is_empty()) {
                "-"
            } else {
                ""
            };
            if frac.is_empty() {
                format!("{sign}{grouped}")
            } else {
                format!("{sign}{grouped}.{frac}")
            }
        }
        Value::Array(a) => js_join(a, js_locale_string),
        other => js_string(other),
    }
}

/// `a || b || … || fallback` over optional fields, as a string.
fn first_truthy(options: &[Option<Value>], fallback: &str) -> String {
    options
        .iter()
        .flatten()
        .find(|v| truthy(v))
        .map(js_string)
        .unwrap_or_else(|| fallback.to_string())
}

/// The original's `movieToMarkdown(movie)`.
pub fn movie_to_markdown(movie: &Value) -> String {
    let field = |v: &Value, k: &str| v.get(k).cloned();
    // `movie.metadata || {}`, `movie.ai || {}`
    let metadata = movie
        .get("metadata")
        .filter(|m| truthy(m))
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let ai = movie
        .get("ai")
        .filter(|m| truthy(m))
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    // `x?.toString()`: undefined for null and undefined, the string otherwise
    // (so a year of 0 gives the truthy "0").
    let to_string = |v: Option<Value>| match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(Value::String(js_string(&v))),
    };

    let title = first_truthy(
        &[
            field(&metadata, "Title"),
            field(&ai, "title"),
            field(movie, "title"),
        ],
        "Unknown Title",
    );
    let year = first_truthy(
        &[
            field(&metadata, "Year"),
            to_string(field(&ai, "year")),
            to_string(field(movie, "year")),
        ],
        "Unknown Year",
    );
    let meta = |k: &str, fallback: &str| first_truthy(&[field(&metadata, k)], fallback);
    let genre = meta("Genre", "Unknown Genre");
    let director = meta("Director", "Unknown Director");
    let actors = meta("Actors", "Unknown Actors");
    let language = meta("Language", "Unknown Language");
    let country = meta("Country", "Unknown Country");

    let mut plot = field(&metadata, "Plot");
    if !plot.as_ref().is_some_and(truthy) {
        if let Some(Value::Array(sources)) = movie.get("sources") {
            if let Some(d) = sources
                .iter()
                .filter_map(|s| s.get("description"))
                .find(|d| truthy(d))
            {
                plot = Some(d.clone());
            }
        }
    }
    let plot = match plot.filter(truthy) {
        Some(p) => js_string(&p),
        None => "No plot description available.".to_string(),
    };

    let mut lines = vec![
        format!("# {title} ({year})"),
        String::new(),
        format!("**Genres:** {genre}"),
        format!("**Director:** {director}"),
        format!("**Actors:** {actors}"),
        format!("**Language:** {language}"),
        format!("**Country:** {country}"),
    ];
    // `!== undefined`: a null rating is written ("null/10"), as the original does.
    if let Some(rating) = metadata.get("imdbRating") {
        lines.push(format!("**Rating:** {}/10", js_string(rating)));
    }
    if let Some(votes) = metadata.get("imdbVotes") {
        // The original would throw on `null.toLocaleString()` and skip the
        // movie; pipe writes "null" instead of leaving it without a vector.
        lines.push(format!("**Votes:** {}", js_locale_string(votes)));
    }
    lines.push(String::new());
    lines.push("**Plot:**".into());
    lines.push(plot);
    trim(&lines.join("\n")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_movie_matches_the_original_layout() {
        let m = json!({
            "movieId": "tt1", "title": "Nosferatu", "year": 1922,
            "sources": [{"description": "a vampire"}],
            "metadata": {"Title": "Nosferatu", "Year": "1922", "Genre": "Horror",
                "Director": "F. W. Murnau", "Actors": "Max Schreck", "Language": "German",
                "Country": "Germany", "imdbRating": "7.9", "imdbVotes": 123456, "Plot": "Count Orlok."}
        });
        assert_eq!(
            movie_to_markdown(&m),
            "# Nosferatu (1922)\n\n**Genres:** Horror\n**Director:** F. W. Murnau\n**Actors:** Max Schreck\n**Language:** German\n**Country:** Germany\n**Rating:** 7.9/10\n**Votes:** 123,456\n\n**Plot:**\nCount Orlok."
        );
    }

    #[test]
    fn fallbacks_follow_javascript() {
        // No metadata: title array joined by commas, year from the number,
        // plot from the first source with a description.
        let m = json!({
            "movieId": "x", "title": ["A", "B"], "year": 0, "ai": {"year": 0},
            "sources": [{"description": ""}, {"description": "found"}],
            "metadata": null
        });
        assert_eq!(
            movie_to_markdown(&m),
            "# A,B (0)\n\n**Genres:** Unknown Genre\n**Director:** Unknown Director\n**Actors:** Unknown Actors\n**Language:** Unknown Language\n**Country:** Unknown Country\n\n**Plot:**\nfound"
        );
        let m = json!({"movieId": "y", "title": "", "sources": [], "metadata": {"imdbRating": null, "imdbVotes": "1,234", "Plot": ""}});
        assert_eq!(
            movie_to_markdown(&m),
            "# Unknown Title (Unknown Year)\n\n**Genres:** Unknown Genre\n**Director:** Unknown Director\n**Actors:** Unknown Actors\n**Language:** Unknown Language\n**Country:** Unknown Country\n**Rating:** null/10\n**Votes:** 1,234\n\n**Plot:**\nNo plot description available."
        );
    }

    #[test]
    fn locale_numbers() {
        for (v, want) in [
            (json!(0), "0"),
            (json!(999), "999"),
            (json!(1000), "1,000"),
            (json!(1234567), "1,234,567"),
            (json!(1234.5678), "1,234.568"),
            (json!(-1234), "-1,234"),
        ] {
            assert_eq!(js_locale_string(&v), want);
        }
    }

    fn tmpl(source: &str) -> TextTemplate {
        TextTemplate {
            source: source.into(),
            file: "models.d/m.toml".into(),
            line: 7,
            column: 12,
        }
    }

    #[test]
    fn templates_render_fields_and_report_positions() {
        let t = tmpl("{{ title }} / {{ metadata.Genre }}{% if missing %}!{% endif %}");
        let maker = TextMaker::new(Some(&t), "doc: ").unwrap();
        let m = json!({"title": "T", "metadata": {"Genre": "Drama"}});
        assert_eq!(maker.text(&m).unwrap(), "doc: T / Drama");

        let bad = tmpl("line one\n{{ title | nosuchfilter }}");
        let err = TextMaker::new(Some(&bad), "").err().unwrap();
        assert!(err.starts_with("models.d/m.toml:8:"), "{err}");
        let bad = tmpl("{% if %}");
        let (range, msg) = check_template(&bad).unwrap_err();
        assert!(range.start <= 8, "{range:?} {msg}");
    }

    #[test]
    fn records_templates_are_strict_but_allow_optional_fields() {
        let t = tmpl(
            "{{ Title }}{% if Plot is defined %}: {{ Plot }}{% endif %} {{ Year | default('?') }}",
        );
        let maker = TextMaker::for_records(&t, "").unwrap();
        assert_eq!(
            maker
                .text(&json!({"Title": "A", "Plot": "p", "Year": 1}))
                .unwrap(),
            "A: p 1"
        );
        assert_eq!(maker.text(&json!({"Title": "B"})).unwrap(), "B ?");
        let err = maker.text(&json!({"Titel": "C"})).unwrap_err();
        assert!(
            err.starts_with("models.d/m.toml:7:15: the text template failed: undefined value"),
            "{err}"
        );
        assert!(err.ends_with("(`Title`)"), "{err}");
        // No `movie` alias in a records template.
        let t = tmpl("{{ movie.Title }}");
        assert!(TextMaker::for_records(&t, "")
            .unwrap()
            .text(&json!({"Title": "A"}))
            .is_err());
    }
}
