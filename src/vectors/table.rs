//! [`VectorTable`]: where and how one set of vectors is stored, and the SQL
//! that writes and searches it.

use super::{from_le_bytes, Metric, Quantization, Quantized, ScoreKind};
use serde::Serialize;

/// The largest `k` sqlite-vec's vec0 accepts in one KNN query.
pub const VEC0_K_MAX: usize = 4096;

/// One vec0 table of vectors: its name, key column, dimensions, metric and
/// quantization, and the table of float vectors a rescored quantized table
/// keeps beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VectorTable {
    /// The vec0 table (`vec_movies`, `vec_records`, `potion_embeddings`).
    pub table: String,
    /// Its key column, `TEXT PRIMARY KEY` (`movieId`, `id`).
    pub key: String,
    /// Vector length: every vector has exactly this many float32s.
    pub dimensions: u32,
    /// vec0's `distance_metric` (a bit table has none: hamming).
    pub metric: Metric,
    /// `None` stores float32 vectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantized>,
    /// The float vectors of a rescored quantized table: `<table>_float`.
    pub float_table: String,
}

/// The caller's own table, joined to the neighbours for display: KNN
/// results are rows `(key, columns…, distance)`.
#[derive(Clone, Copy, Debug)]
pub struct Display<'a> {
    /// The table (`movies`, `records`); joined as `m`.
    pub table: &'a str,
    /// Its column equal to the vector table's key.
    pub key: &'a str,
    /// SQL expressions over `m` returned after the key (`m.title`).
    pub columns: &'a [&'a str],
}

/// `name` as it can stand in SQL: as it is when it is a plain identifier
/// (so the schema text of existing tables is what it always was), else
/// double-quoted.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl VectorTable {
    /// A vector table named `table` keyed by `key`; rescored float vectors
    /// go to `<table>_float`.
    pub fn new(
        table: &str,
        key: &str,
        dimensions: u32,
        metric: Metric,
        quantization: Option<Quantized>,
    ) -> VectorTable {
        VectorTable {
            table: table.to_string(),
            key: key.to_string(),
            dimensions,
            metric,
            quantization,
            float_table: format!("{table}_float"),
        }
    }

    /// The vector table of `model`'s vectors, named `table`, keyed by `key`.
    pub fn of_model(table: &str, key: &str, model: &crate::manifest::model::Model) -> VectorTable {
        VectorTable::new(
            table,
            key,
            model.dimensions,
            model.metric,
            model.quantization,
        )
    }

    /// What the vec0 column stores: `None` for float32.
    pub fn kind(&self) -> Option<Quantization> {
        self.quantization.map(|q| q.kind)
    }

    /// Whether the float vectors are kept for rescoring.
    pub fn rescores(&self) -> bool {
        self.quantization.is_some_and(|q| q.rescore)
    }

    /// With rescoring, the candidates fetched per neighbour asked for.
    pub fn oversample(&self) -> Option<u32> {
        self.quantization
            .filter(|q| q.rescore)
            .map(|q| q.oversample)
    }

    /// The statements creating the vec0 table (and, for a rescored
    /// quantized table, its float table).
    ///
    /// A bit column takes no `distance_metric` (vec0 rejects one: bit vectors
    /// are compared by hamming distance). The float vectors of rescoring are a
    /// plain table, not a vec0 column: they are only read by id, for the exact
    /// distance of k × oversample candidates, and reading one vector of a vec0
    /// column walks its chunk's overflow chain (1024 vectors) from the start:
    /// rescoring from a second vec0 column was 3–12 times slower than from a
    /// table. The table has rowids: a WITHOUT ROWID table keeps its rows in an
    /// index b-tree, which holds at most about 1 KB of a row in place, so each
    /// 1.5 or 3 KB vector spilled to overflow pages of its own (the rescored
    /// database was 2.25 times the float one at 384 dimensions); a rowid
    /// table's leaf holds a 4 KB page's worth in place.
    pub fn create_sql(&self) -> String {
        let dims = self.dimensions;
        let metric = self.metric;
        let table = ident(&self.table);
        let key = ident(&self.key);
        match &self.quantization {
            None => format!(
                "CREATE VIRTUAL TABLE {table} USING vec0({key} TEXT PRIMARY KEY, embedding FLOAT[{dims}] distance_metric={metric})"
            ),
            Some(q) => {
                let column = match q.kind {
                    Quantization::Int8 => format!("INT8[{dims}] distance_metric={metric}"),
                    Quantization::Bit => format!("BIT[{dims}]"),
                };
                let mut sql = format!(
                    "CREATE VIRTUAL TABLE {table} USING vec0({key} TEXT PRIMARY KEY, embedding {column});"
                );
                if q.rescore {
                    sql.push_str(&format!(
                        "CREATE TABLE {} ({key} TEXT PRIMARY KEY, embedding BLOB NOT NULL);",
                        ident(&self.float_table)
                    ));
                }
                sql
            }
        }
    }

    /// The SQL expression turning the float32 blob `param` into what the
    /// vec0 column stores (sqlite-vec quantizes, so the bytes are its own).
    pub fn quantize_sql(&self, param: &str) -> String {
        match self.kind() {
            None => param.to_string(),
            Some(Quantization::Int8) => format!("vec_quantize_int8({param}, 'unit')"),
            Some(Quantization::Bit) => format!("vec_quantize_binary({param})"),
        }
    }

    /// `INSERT` of one vector (parameters: key, float32 blob), quantized on
    /// the way in.
    pub fn insert_sql(&self) -> String {
        format!(
            "INSERT INTO {} ({}, embedding) VALUES (?1, {})",
            ident(&self.table),
            ident(&self.key),
            self.quantize_sql("?2")
        )
    }

    /// `UPDATE` of one stored vector in place (parameters: key, float32
    /// blob); `None` unless [`Self::updatable`].
    pub fn update_sql(&self) -> Option<String> {
        self.updatable().then(|| {
            format!(
                "UPDATE {} SET embedding = ?2 WHERE {} = ?1",
                ident(&self.table),
                ident(&self.key)
            )
        })
    }

    /// Whether a stored vector can be replaced in place: a float table.
    /// sqlite-vec 0.1.9 refuses an `UPDATE` of an `INT8` or `BIT` column
    /// ("expected to be of type int8, but a float32 vector was provided",
    /// even from `vec_quantize_int8`), so quantized tables are rebuilt.
    pub fn updatable(&self) -> bool {
        self.quantization.is_none()
    }

    /// `INSERT` of one float vector kept for rescoring (parameters: key,
    /// float32 blob); `None` unless the table rescores.
    pub fn insert_float_sql(&self) -> Option<String> {
        self.rescores().then(|| {
            format!(
                "INSERT INTO {} ({}, embedding) VALUES (?1, ?2)",
                ident(&self.float_table),
                ident(&self.key)
            )
        })
    }

    /// The KNN query, as a front end writes it, joined to the caller's
    /// table: rows `(key, display columns…, distance)`, closest first.
    /// Parameters: the query vector as float32 bytes, then k; when the
    /// table rescores, then the number of candidates ([`Self::candidates`]).
    /// Rescoring ranks the candidates by the exact metric distance to
    /// their float vectors (ties by key, so the order is stable).
    pub fn knn_sql(&self, display: &Display) -> String {
        let q = self.quantize_sql("?1");
        let table = ident(&self.table);
        let key = ident(&self.key);
        let shown = ident(display.table);
        let shown_key = ident(display.key);
        let columns: String = display.columns.iter().map(|c| format!("{c}, ")).collect();
        if self.rescores() {
            format!(
                "SELECT c.{key}, {columns}vec_distance_{metric}(f.embedding, ?1) AS distance \
                 FROM (SELECT {key} FROM {table} WHERE embedding MATCH {q} AND k = ?3) c \
                 JOIN {float} f ON f.{key} = c.{key} \
                 JOIN {shown} m ON m.{shown_key} = c.{key} \
                 ORDER BY distance, c.{key} LIMIT ?2",
                metric = self.metric,
                float = ident(&self.float_table),
            )
        } else {
            format!(
                "SELECT v.{key}, {columns}v.distance FROM {table} v \
                 JOIN {shown} m ON v.{key} = m.{shown_key} \
                 WHERE v.embedding MATCH {q} AND k = ?2 ORDER BY v.distance"
            )
        }
    }

    /// Candidates a rescored query fetches for `k` neighbours: k ×
    /// oversample, within what vec0 answers.
    pub fn candidates(&self, k: usize) -> usize {
        let over = self.oversample().unwrap_or(1) as usize;
        k.saturating_mul(over).clamp(k, VEC0_K_MAX)
    }

    /// The query reading one stored vector by key (parameter: the key),
    /// and whether what it reads is quantized ([`Self::dequantize`] it): the
    /// float vector where there is one, else the quantized one.
    pub fn vector_sql(&self) -> (String, bool) {
        let (table, quantized) = match (self.kind(), self.rescores()) {
            (None, _) => (&self.table, false),
            (Some(_), true) => (&self.float_table, false),
            (Some(_), false) => (&self.table, true),
        };
        (
            format!(
                "SELECT embedding FROM {} WHERE {} = ?1",
                ident(table),
                ident(&self.key)
            ),
            quantized,
        )
    }

    /// The keys of every stored vector (unordered).
    pub fn keys_sql(&self) -> String {
        format!("SELECT {} FROM {}", ident(&self.key), ident(&self.table))
    }

    /// Bytes stored per vector in the vec0 column (float32: 4 per
    /// dimension; int8: 1; bit: 1/8).
    pub fn bytes_per_vector(&self) -> u64 {
        let d = u64::from(self.dimensions);
        match self.kind() {
            None => d * 4,
            Some(Quantization::Int8) => d,
            Some(Quantization::Bit) => d.div_ceil(8),
        }
    }

    /// Bytes stored per vector in all: the vec0 column plus, when the
    /// table rescores, the float vector kept beside it.
    pub fn stored_bytes_per_vector(&self) -> u64 {
        let floats = if self.rescores() {
            u64::from(self.dimensions) * 4
        } else {
            0
        };
        self.bytes_per_vector() + floats
    }

    /// The distance KNN results carry: the metric's, or `hamming` for a
    /// bit table searched without rescoring.
    pub fn distance_name(&self) -> &'static str {
        if self.kind() == Some(Quantization::Bit) && !self.rescores() {
            "hamming"
        } else {
            self.metric.as_str()
        }
    }

    /// What a result's score is for this table's metric.
    pub fn score_kind(&self) -> ScoreKind {
        ScoreKind::for_metric(self.metric)
    }

    /// The float vector a stored vector was made from, as near as the
    /// quantization keeps it, such that quantizing it again gives the same
    /// stored bytes (so that searching by a stored vector of a table without
    /// float vectors finds what the stored vector finds; see the tests).
    pub fn dequantize(&self, stored: &[u8]) -> Vec<f32> {
        match self.kind() {
            None => from_le_bytes(stored),
            // vec_quantize_int8(x, 'unit') stores trunc((x + 1) / step − 128)
            // with step = 2/255 (truncation toward zero): the middle of the
            // interval that truncates to q is q ± 0.5, away from zero.
            Some(Quantization::Int8) => stored
                .iter()
                .map(|&b| {
                    let q = f32::from(b as i8);
                    let t = if q >= 0.0 { q + 0.5 } else { q - 0.5 };
                    (t + 128.0) * (2.0 / 255.0) - 1.0
                })
                .collect(),
            // vec_quantize_binary sets bit i%8 (least significant first) of
            // byte i/8 when component i is positive.
            Some(Quantization::Bit) => (0..self.dimensions as usize)
                .map(|i| {
                    let set = stored.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1);
                    if set {
                        1.0
                    } else {
                        -1.0
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::to_le_bytes;
    use std::path::Path;

    fn quantized(kind: Quantization, rescore: bool) -> Option<Quantized> {
        Some(Quantized {
            kind,
            rescore,
            oversample: 8,
        })
    }

    /// The schema text of movies-db's `vec_movies` is part of its bytes.
    #[test]
    fn movies_ddl_is_what_it_always_was() {
        let t = VectorTable::new("vec_movies", "movieId", 3, Metric::L2, None);
        assert_eq!(
            t.create_sql(),
            "CREATE VIRTUAL TABLE vec_movies USING vec0(movieId TEXT PRIMARY KEY, embedding FLOAT[3] distance_metric=l2)"
        );
        let t = VectorTable::new(
            "vec_movies",
            "movieId",
            8,
            Metric::Cosine,
            quantized(Quantization::Bit, true),
        );
        assert_eq!(
            t.create_sql(),
            "CREATE VIRTUAL TABLE vec_movies USING vec0(movieId TEXT PRIMARY KEY, embedding BIT[8]);\
             CREATE TABLE vec_movies_float (movieId TEXT PRIMARY KEY, embedding BLOB NOT NULL);"
        );
    }

    /// A table named from a model id that is no plain identifier works
    /// through vec0 (create, insert, KNN with and without rescoring).
    #[test]
    fn quoted_names_work_in_vec0() {
        let conn = crate::sqlite::open(Path::new(":memory:")).unwrap();
        conn.execute_batch("CREATE TABLE items (id TEXT PRIMARY KEY, label TEXT)")
            .unwrap();
        for (i, q) in [None, quantized(Quantization::Int8, true)]
            .into_iter()
            .enumerate()
        {
            let t = VectorTable::new(&format!("2m.v{i}"), "id", 2, Metric::L1, q);
            conn.execute_batch(&t.create_sql()).unwrap();
            for (id, v) in [("a", [0.1f32, 0.2]), ("b", [0.9, -0.5])] {
                conn.execute("INSERT OR IGNORE INTO items VALUES (?1, ?1)", [id])
                    .unwrap();
                let blob = to_le_bytes(&v);
                conn.execute(&t.insert_sql(), rusqlite::params![id, blob])
                    .unwrap();
                if let Some(sql) = t.insert_float_sql() {
                    conn.execute(&sql, rusqlite::params![id, blob]).unwrap();
                }
            }
            let display = Display {
                table: "items",
                key: "id",
                columns: &["m.label"],
            };
            let mut stmt = conn.prepare(&t.knn_sql(&display)).unwrap();
            let query = to_le_bytes(&[0.8, -0.4]);
            let k = 2i64;
            let candidates = t.candidates(2) as i64;
            let params: Vec<&dyn rusqlite::ToSql> = if t.rescores() {
                vec![&query, &k, &candidates]
            } else {
                vec![&query, &k]
            };
            let ids: Vec<String> = stmt
                .query_map(params.as_slice(), |r| r.get(1))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(ids, ["b", "a"]);
        }
    }

    /// A query by a stored vector of a quantized table without float
    /// vectors uses the dequantized stored vector: quantizing it again with
    /// the linked sqlite-vec must give back every stored byte exactly.
    #[test]
    fn dequantized_vectors_quantize_back_to_the_stored_bytes() {
        let conn = crate::sqlite::open(Path::new(":memory:")).unwrap();
        let int8: Vec<u8> = (0..=255u8).collect();
        let t = VectorTable::new(
            "t",
            "id",
            int8.len() as u32,
            Metric::L2,
            quantized(Quantization::Int8, false),
        );
        let again: Vec<u8> = conn
            .query_row(
                &format!("SELECT {}", t.quantize_sql("?1")),
                [to_le_bytes(&t.dequantize(&int8))],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(again, int8);
        let bits: Vec<u8> = vec![0x00, 0xff, 0x5a, 0x81, 0x01, 0x80, 0x3c, 0xc3];
        let t = VectorTable::new(
            "t",
            "id",
            64,
            Metric::L2,
            quantized(Quantization::Bit, false),
        );
        let again: Vec<u8> = conn
            .query_row(
                &format!("SELECT {}", t.quantize_sql("?1")),
                [to_le_bytes(&t.dequantize(&bits))],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(again, bits);
    }

    #[test]
    fn bytes_per_vector_follow_the_storage() {
        let f = VectorTable::new("t", "id", 384, Metric::L2, None);
        let i = VectorTable::new(
            "t",
            "id",
            384,
            Metric::L2,
            quantized(Quantization::Int8, true),
        );
        let b = VectorTable::new(
            "t",
            "id",
            384,
            Metric::L2,
            quantized(Quantization::Bit, false),
        );
        assert_eq!(f.bytes_per_vector(), 1536);
        assert_eq!(i.bytes_per_vector(), 384);
        assert_eq!(i.stored_bytes_per_vector(), 384 + 1536);
        assert_eq!(b.bytes_per_vector(), 48);
        assert_eq!(b.distance_name(), "hamming");
    }
}
