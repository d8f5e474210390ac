//! The original's `-m MODEL` publishes that model's database at
//! `public/data/movies.db` (where the site loads it), from the command line
//! and from the admin page; a plain build publishes the default's again, and
//! pipe.lock (which records the default's) keeps `--locked` passing.

mod common;
use common::server::Server;
use common::{sample_project, Project};
use std::time::Duration;

/// The model whose vectors a database holds (its `config` row).
fn model_of(p: &Project, db: &str) -> String {
    let conn = rusqlite::Connection::open_with_flags(
        p.path(db),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT value FROM config WHERE key = 'embedding_model_id'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn bytes(p: &Project, rel: &str) -> Vec<u8> {
    std::fs::read(p.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn build_m_publishes_that_models_database_until_a_plain_build() {
    let p = sample_project();
    std::fs::copy(
        std::path::Path::new(common::REPO).join("pipe.lock"),
        p.path("pipe.lock"),
    )
    .unwrap();
    p.build(&[]);
    assert_eq!(model_of(&p, "public/data/movies.db"), "nomic");
    let lock = bytes(&p, "pipe.lock");

    let run = p.build(&["-m", "potion", "--skip-json"]);
    assert!(
        run.stderr
            .contains("published movies-db@potion's database at public/data/movies.db"),
        "{}",
        run.stderr
    );
    assert_eq!(model_of(&p, "public/data/movies.db"), "potion");
    assert_eq!(
        bytes(&p, "public/data/movies.db"),
        bytes(&p, "public/data/potion/movies.db")
    );
    assert_eq!(
        bytes(&p, "pipe.lock"),
        lock,
        "pipe.lock records the default's"
    );
    // Again: potion is up to date, and still published.
    p.build(&["-m", "potion"]);
    assert_eq!(model_of(&p, "public/data/movies.db"), "potion");

    // Status says why the default's target would run.
    let status = p.pipe(&["status"]);
    assert!(
        status
            .stdout
            .contains("output public/data/movies.db holds model potion's database"),
        "{}",
        status.stdout
    );

    // --locked passes (it publishes the default's again, as pipe.lock says).
    let locked = p.pipe(&["build", "--locked", "--json"]);
    assert_eq!(locked.code, 0, "{}", locked.stderr);
    assert_eq!(locked.built(), ["movies-db@nomic"]);
    assert_eq!(model_of(&p, "public/data/movies.db"), "nomic");
    assert_eq!(
        bytes(&p, "public/data/movies.db"),
        bytes(&p, "public/data/nomic/movies.db")
    );
    assert_eq!(bytes(&p, "pipe.lock"), lock);

    // A plain build after -m publishes the default's again.
    p.build(&["-m", "bge-micro"]);
    assert_eq!(model_of(&p, "public/data/movies.db"), "bge-micro");
    let plain = p.build(&[]);
    assert_eq!(plain.built(), ["movies-db@nomic"]);
    assert_eq!(model_of(&p, "public/data/movies.db"), "nomic");
    assert!(p.build(&[]).built().is_empty());
    // -m with the default model changes nothing.
    assert!(p.build(&["-m", "nomic"]).built().is_empty());
    assert_eq!(model_of(&p, "public/data/movies.db"), "nomic");
}

#[test]
fn the_admin_pages_model_choice_publishes_that_models_database() {
    let p = sample_project();
    p.build(&[]);
    let s = Server::start(p.dir.path(), &[]);
    let r = s.post(
        "/api/build",
        r#"{"embeddingModel": "potion", "skipJsonGeneration": true}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    s.wait_idle(Duration::from_secs(120));
    assert_eq!(model_of(&p, "public/data/movies.db"), "potion");
    // Naming targets is not the original's model choice: nothing published.
    let r = s.post("/api/build", r#"{"targets": ["movies-db@bge-micro"]}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    s.wait_idle(Duration::from_secs(120));
    assert_eq!(model_of(&p, "public/data/movies.db"), "potion");
    let r = s.post("/api/build", "{}");
    assert_eq!(r.status, 202, "{}", r.body);
    s.wait_idle(Duration::from_secs(120));
    assert_eq!(model_of(&p, "public/data/movies.db"), "nomic");
}

/// A quantized model's database is never published where the site loads
/// the default's (its float queries fail on an int8 or bit table): `-m`
/// and the admin page's model choice refuse it as a quantized default is
/// refused, naming the float model, and publish nothing.
#[test]
fn a_quantized_model_is_not_published() {
    let p = sample_project();
    p.write(
        "models.d/potion-int8.toml",
        "id = \"potion-int8\"\nname = \"Potion, int8\"\ndimensions = 64\n\
         embeddings = \"data/embeddings-potion-movies.db\"\nquantization = \"int8\"\n",
    );
    p.build(&[]);
    let published = bytes(&p, "public/data/movies.db");
    let run = p.pipe(&["build", "-m", "potion-int8", "--skip-json"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("model potion-int8 is quantized (int8)")
            && run.stderr.contains("public/data/movies.db")
            && run
                .stderr
                .contains("`-m potion` (the float model it quantizes)"),
        "{}",
        run.stderr
    );
    assert_eq!(bytes(&p, "public/data/movies.db"), published);
    assert_eq!(model_of(&p, "public/data/movies.db"), "nomic");

    let s = Server::start(p.dir.path(), &[]);
    let r = s.post(
        "/api/build",
        r#"{"embeddingModel": "potion-int8", "skipJsonGeneration": true}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("is quantized (int8)"), "{}", r.body);
    assert_eq!(bytes(&p, "public/data/movies.db"), published);
}
