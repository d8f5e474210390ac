//! The SQL of the reference schema, shared by the catalog part (which
//! fills it) and the assembly (which recreates it and copies the rows).

/// The reference schema of the catalog part (every table but `vec_movies`
/// and `config`). Indexes are created after the rows are loaded
/// (faster; `VACUUM INTO` lays them out the same either way).
pub(crate) const SCHEMA: &str = "
CREATE TABLE movies (
  movieId TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  year INTEGER,
  imdbRating REAL,
  imdbVotes INTEGER,
  language TEXT,
  genre TEXT,
  country TEXT,
  primarySourceType TEXT,
  primaryChannelName TEXT,
  verified INTEGER DEFAULT 0,
  lastUpdated TEXT
);
CREATE TABLE genres (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE countries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE collections (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  createdAt TEXT NOT NULL,
  updatedAt TEXT NOT NULL
);
CREATE TABLE collection_movies (
  collectionId TEXT NOT NULL,
  movieId TEXT NOT NULL,
  addedAt TEXT NOT NULL,
  PRIMARY KEY (collectionId, movieId),
  FOREIGN KEY (collectionId) REFERENCES collections(id) ON DELETE CASCADE,
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE
);
CREATE TABLE actors (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0
);
CREATE TABLE directors (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0
);
CREATE TABLE writers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  movie_count INTEGER DEFAULT 0
);
CREATE TABLE movie_actors (
  movieId TEXT NOT NULL,
  actorId INTEGER NOT NULL,
  character TEXT,
  PRIMARY KEY (movieId, actorId),
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE,
  FOREIGN KEY (actorId) REFERENCES actors (id) ON DELETE CASCADE
);
CREATE TABLE movie_directors (
  movieId TEXT NOT NULL,
  directorId INTEGER NOT NULL,
  PRIMARY KEY (movieId, directorId),
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE,
  FOREIGN KEY (directorId) REFERENCES directors (id) ON DELETE CASCADE
);
CREATE TABLE movie_writers (
  movieId TEXT NOT NULL,
  writerId INTEGER NOT NULL,
  PRIMARY KEY (movieId, writerId),
  FOREIGN KEY (movieId) REFERENCES movies (movieId) ON DELETE CASCADE,
  FOREIGN KEY (writerId) REFERENCES writers (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE fts_movies USING fts5(movieId UNINDEXED, title, tokenize='unicode61');
CREATE VIRTUAL TABLE fts_actors USING fts5(actorId UNINDEXED, name, tokenize='unicode61');
CREATE VIRTUAL TABLE fts_directors USING fts5(directorId UNINDEXED, name, tokenize='unicode61');
CREATE VIRTUAL TABLE fts_writers USING fts5(writerId UNINDEXED, name, tokenize='unicode61');
";

/// The reference's indexes.
pub(crate) const INDEXES: &str = "
CREATE INDEX idx_movies_year ON movies(year);
CREATE INDEX idx_movies_rating ON movies(imdbRating);
CREATE INDEX idx_movies_votes ON movies(imdbVotes);
CREATE INDEX idx_movies_title ON movies(title);
CREATE INDEX idx_movies_source_type ON movies(primarySourceType);
CREATE INDEX idx_movies_channel ON movies(primaryChannelName);
CREATE INDEX idx_genres_name ON genres(name);
CREATE INDEX idx_genres_count ON genres(movie_count DESC);
CREATE INDEX idx_countries_name ON countries(name);
CREATE INDEX idx_countries_count ON countries(movie_count DESC);
CREATE INDEX idx_collection_movies_collectionId ON collection_movies(collectionId);
CREATE INDEX idx_collection_movies_movieId ON collection_movies(movieId);
CREATE INDEX idx_actors_name ON actors(name);
CREATE INDEX idx_actors_count ON actors(movie_count DESC);
CREATE INDEX idx_directors_name ON directors(name);
CREATE INDEX idx_directors_count ON directors(movie_count DESC);
CREATE INDEX idx_writers_name ON writers(name);
CREATE INDEX idx_writers_count ON writers(movie_count DESC);
CREATE INDEX idx_movie_actors_movieId ON movie_actors(movieId);
CREATE INDEX idx_movie_actors_actorId ON movie_actors(actorId);
CREATE INDEX idx_movie_directors_movieId ON movie_directors(movieId);
CREATE INDEX idx_movie_directors_directorId ON movie_directors(directorId);
CREATE INDEX idx_movie_writers_movieId ON movie_writers(movieId);
CREATE INDEX idx_movie_writers_writerId ON movie_writers(writerId);
";

/// The `config` table of every database (filled at assembly: it names the model).
pub(crate) const CONFIG: &str = "
CREATE TABLE config (
  key TEXT PRIMARY KEY,
  value TEXT
);
";
