//! Movie ids are checked once, when movies.json is loaded, for every target
//! and before anything is written: an id that cannot be a file name, or two
//! ids that one file system would store as one file, fail the whole build.

mod common;
use common::{sample_project, Project};

/// movies.json with one more movie (under entry key `key`) at the start.
fn add_movie(p: &Project, key: &str, id: &str) {
    let text = p.read("data/movies.json");
    let (key, id) = (
        serde_json::to_string(key).unwrap(),
        serde_json::to_string(id).unwrap(),
    );
    let entry = format!(
        "\n  {key}: {{\"movieId\": {id}, \"title\": \"Added\", \"sources\": [{{\"type\": \"youtube\", \
         \"url\": \"https://www.youtube.com/watch?v=abc\", \"id\": \"abc\", \"title\": \"Added\", \
         \"addedAt\": \"2024-01-01T00:00:00.000Z\"}}]}},"
    );
    let at = text.find('{').unwrap() + 1;
    let mut edited = text.clone();
    edited.insert_str(at, &entry);
    p.write("data/movies.json", &edited);
}

struct Case {
    name: &'static str,
    /// (entry key, movie id) of the movies added.
    add: Vec<(&'static str, String)>,
    expect: &'static [&'static str],
}

#[test]
fn bad_ids_fail_every_target_before_anything_is_written() {
    let cases = [
        Case {
            name: "a 5,000-character id",
            add: vec![("long", "x".repeat(5000))],
            expect: &["data/movies.json: entry \"long\"", "longer than 250 bytes", "Fix the movieId"],
        },
        Case {
            name: "a reserved device name",
            add: vec![("con", "CON".into())],
            expect: &["entry \"con\"", "Windows reserves this name", "Fix the movieId"],
        },
        Case {
            name: "an id differing only in letter case",
            add: vec![("TT0001083", "TT0001083".into())],
            expect: &[
                "data/movies.json: entries \"TT0001083\" and \"tt0001083\" have movie ids \"TT0001083\" and \"tt0001083\"",
                "letter case",
                "Fix the movieId of one of them",
            ],
        },
        Case {
            name: "an NFD spelling of an NFC id",
            add: vec![
                ("nfc", "archive-\u{14c}kami70".into()),
                ("nfd", "archive-O\u{304}kami70".into()),
            ],
            expect: &["entries \"nfd\" and \"nfc\"", "NFC and NFD"],
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let p = sample_project();
        for (key, id) in &case.add {
            add_movie(&p, key, id);
        }
        // movies-db alone (which writes no file named after an id) fails too.
        let db = p.pipe(&["build", "--target", "movies-db@potion"]);
        let all = p.pipe(&["build", "--keep-going"]);
        for (what, run) in [("movies-db@potion", &db), ("every target", &all)] {
            if run.code != 1 {
                failures.push(format!(
                    "{} ({what}): exit {}\n{}",
                    case.name, run.code, run.stderr
                ));
            }
            for want in case.expect {
                if !run.stderr.contains(want) {
                    failures.push(format!(
                        "{} ({what}): stderr lacks {want:?}:\n{}",
                        case.name, run.stderr
                    ));
                }
            }
        }
        if p.path("public").exists() {
            failures.push(format!("{}: something was written to public/", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
