//! The movie domain: the records of movies.json and collections.json, and
//! what the movie stages derive from them.
