//! A model2vec static model with a Unigram tokenizer (the potion models,
//! tokenlearn-static-model), loaded in a fraction of the time model2vec-rs
//! takes and encoded to the same vectors, bit for bit.
//!
//! Why: `StaticModel::from_pretrained` builds the `tokenizers` crate's whole
//! `Tokenizer` (a trie with a hash map per node over every piece of the
//! vocabulary: 276k pieces for tokenlearn-static-model), serialises the
//! Unigram model back to JSON to read its `unk_id`, and then builds its own
//! double-array trie of the same pieces: about 4.5 s before the first text,
//! for a model that encodes 30,000 texts in about 3 s. Its trie and
//! encoder are private, so they cannot be reused or cached through its API.
//!
//! What this module does instead, keeping every step that decides a token
//! where it was:
//! * added tokens, the normalizer and the pre-tokenizer still run in the
//!   `tokenizers` crate, in a [`Tokenizer`] built from the same JSON with
//!   the Unigram vocabulary cut to its first pieces (the added tokens and
//!   `unk_id` must fall in them: checked, else the caller uses model2vec-rs);
//! * the Viterbi search is model2vec-rs's `FastUnigram` (same order of
//!   candidates, strict improvement, unknown runs fused and resolved the same
//!   way), over a byte trie in CSR form built in one pass over the sorted
//!   pieces;
//! * pooling is model2vec-rs's `pool_ids`: the first `max_length` ids, the
//!   unknown id skipped, rows through `mapping` scaled by `weights`, added in
//!   token order, the mean, then L2 normalisation when the model says so.
//!
//! `tests` compares every vector with model2vec-rs's on the real model.

use rayon::slice::ParallelSliceMut;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde_json::value::RawValue;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizer, Tokenizer};
use unicode_segmentation::UnicodeSegmentation;

/// `tokenizers`' `K_UNK_PENALTY`: an unknown character scores this much below
/// the lowest-scoring piece.
const UNK_PENALTY: f64 = 10.0;

/// The `model` of tokenizer.json, enough to tell its type.
#[derive(serde::Deserialize)]
struct ModelKind {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A Unigram `model` of tokenizer.json.
#[derive(serde::Deserialize)]
struct UnigramFile {
    unk_id: Option<u64>,
    vocab: Vec<(String, f64)>,
    #[serde(default)]
    byte_fallback: bool,
}

/// An entry of tokenizer.json's `added_tokens` (the rest is the crate's).
#[derive(serde::Deserialize)]
struct AddedFile {
    content: String,
    id: u64,
}

/// Marks an absent node, token or start.
const NONE: u32 = u32::MAX;

/// A byte trie of the vocabulary: node `n`'s edges are
/// `edge_bytes[first[n]..first[n + 1]]` (sorted) leading to
/// `edge_nodes[..]`; the root's children are also in a direct table.
struct Trie {
    first: Vec<u32>,
    edge_bytes: Vec<u8>,
    edge_nodes: Vec<u32>,
    token: Vec<u32>,
    root: [u32; 256],
}

impl Trie {
    /// Build from pieces sorted by bytes without duplicates (the empty piece
    /// left out).
    fn build(pieces: &[(&[u8], u32)]) -> Trie {
        let mut first = Vec::with_capacity(pieces.len() * 2);
        let mut edge_bytes = Vec::with_capacity(pieces.len() * 2);
        let mut edge_nodes = Vec::with_capacity(pieces.len() * 2);
        let mut token = Vec::with_capacity(pieces.len() * 2);
        // Breadth first: node ids in the order nodes are made, and each
        // node's edges appended when it is visited, so `first` ascends.
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize, pieces.len())]);
        token.push(NONE);
        while let Some((depth, mut lo, hi)) = queue.pop_front() {
            first.push(edge_bytes.len() as u32);
            let node = first.len() - 1;
            if lo < hi && pieces[lo].0.len() == depth {
                token[node] = pieces[lo].1;
                lo += 1;
            }
            while lo < hi {
                let byte = pieces[lo].0[depth];
                let mut end = lo + 1;
                while end < hi && pieces[end].0[depth] == byte {
                    end += 1;
                }
                edge_bytes.push(byte);
                edge_nodes.push(token.len() as u32);
                token.push(NONE);
                queue.push_back((depth + 1, lo, end));
                lo = end;
            }
        }
        first.push(edge_bytes.len() as u32);
        let mut root = [NONE; 256];
        for e in first[0]..first[1] {
            root[edge_bytes[e as usize] as usize] = edge_nodes[e as usize];
        }
        Trie {
            first,
            edge_bytes,
            edge_nodes,
            token,
            root,
        }
    }

    /// The child of `node` along `byte`, or `NONE`.
    #[inline(always)]
    fn child(&self, node: u32, byte: u8) -> u32 {
        if node == 0 {
            return self.root[byte as usize];
        }
        let (lo, hi) = (
            self.first[node as usize] as usize,
            self.first[node as usize + 1] as usize,
        );
        let bytes = &self.edge_bytes[lo..hi];
        let found = if bytes.len() <= 8 {
            bytes.iter().position(|&b| b == byte)
        } else {
            bytes.binary_search(&byte).ok()
        };
        match found {
            Some(i) => self.edge_nodes[lo + i],
            None => NONE,
        }
    }

    /// The token `key` spells, or `NONE`.
    fn get(&self, key: &[u8]) -> u32 {
        let mut node = 0;
        for &b in key {
            node = self.child(node, b);
            if node == NONE {
                return NONE;
            }
        }
        self.token[node as usize]
    }
}

/// The embedding table as stored.
enum Table {
    F32(Vec<f32>),
    I8(Vec<i8>),
}

/// The best path ending at a byte position of a pre-token.
#[derive(Clone, Copy)]
struct BestPath {
    score: f64,
    starts_at: u32,
    token_id: u32,
}

const UNSET: BestPath = BestPath {
    score: 0.0,
    starts_at: NONE,
    token_id: 0,
};

thread_local! {
    /// Scratch space of one thread's encodings: token ids and Viterbi paths.
    static SCRATCH: RefCell<(Vec<u32>, Vec<BestPath>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A loaded Unigram static model.
pub struct UnigramModel {
    /// Added tokens, normalizer and pre-tokenizer of tokenizer.json, with a
    /// stub of the vocabulary.
    pre: Tokenizer,
    /// The direct path for the common pipeline, when it applies.
    direct: Option<Direct>,
    trie: Trie,
    scores: Vec<f64>,
    unk_id: u32,
    unk_score: f64,
    byte_fallback: bool,
    byte_ids: [u32; 256],
    median_token_length: usize,
    table: Table,
    dim: usize,
    weights: Option<Vec<f32>>,
    mapping: Option<Vec<usize>>,
    normalize: bool,
}

/// Why a model is not loaded here.
pub enum Unsupported {
    /// Not a pipeline this module reproduces (not Unigram, no `unk_id`,
    /// added tokens outside the first pieces, another tensor type): load it
    /// with model2vec-rs.
    Other(String),
    /// The files are broken: the message says how.
    Invalid(String),
}

fn invalid(what: impl std::fmt::Display) -> Unsupported {
    Unsupported::Invalid(what.to_string())
}

fn other(what: impl std::fmt::Display) -> Unsupported {
    Unsupported::Other(what.to_string())
}

impl UnigramModel {
    /// Load the model in `dir` (config.json, model.safetensors,
    /// tokenizer.json); `normalize` overrides config.json's.
    pub fn load(dir: &Path, normalize: Option<bool>) -> Result<UnigramModel, Unsupported> {
        let read = |f: &str| {
            std::fs::read(dir.join(f)).map_err(|e| invalid(format!("cannot read {f}: {e}")))
        };
        let tokenizer_bytes = read("tokenizer.json")?;
        // The top level as raw JSON (borrowed, not parsed), then only the
        // model as typed values: a `Value` of 276k pieces costs several
        // times the parse.
        let top: BTreeMap<String, &RawValue> = serde_json::from_slice(&tokenizer_bytes)
            .map_err(|e| invalid(format!("tokenizer.json: {e}")))?;
        let model_json = top
            .get("model")
            .ok_or_else(|| invalid("tokenizer.json has no model"))?;
        let kind: ModelKind = serde_json::from_str(model_json.get())
            .map_err(|e| invalid(format!("tokenizer.json: model: {e}")))?;
        if kind.kind.as_deref() != Some("Unigram") {
            return Err(other("not a Unigram tokenizer"));
        }
        let model: UnigramFile = serde_json::from_str(model_json.get())
            .map_err(|e| invalid(format!("tokenizer.json: the Unigram model: {e}")))?;
        let unk_id = model
            .unk_id
            .ok_or_else(|| other("the Unigram model has no unk_id"))? as usize;
        let byte_fallback = model.byte_fallback;
        let (pieces, scores): (Vec<String>, Vec<f64>) = model.vocab.into_iter().unzip();
        if unk_id >= pieces.len() {
            return Err(invalid("tokenizer.json: unk_id is not in the vocabulary"));
        }

        // The id of each piece is its last position (as the crate's map
        // keeps it), and its score is that id's.
        let mut sorted: Vec<(&[u8], u32)> = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_bytes(), i as u32))
            .collect();
        sorted.par_sort_unstable();
        let mut unique: Vec<(&[u8], u32)> = Vec::with_capacity(sorted.len());
        for (p, id) in sorted {
            match unique.last_mut() {
                Some(last) if last.0 == p => last.1 = id,
                _ => unique.push((p, id)),
            }
        }
        // The crate's median is over its map's keys: the distinct pieces.
        let mut lens: Vec<usize> = unique.iter().map(|(p, _)| p.len()).collect();
        lens.sort_unstable();
        let median_token_length = lens.get(lens.len() / 2).copied().unwrap_or(1);
        let id_of = |s: &str| {
            unique
                .binary_search_by(|(p, _)| (*p).cmp(s.as_bytes()))
                .ok()
                .map(|i| unique[i].1)
        };

        // The stub vocabulary: the first pieces, up to unk_id and every
        // added token, whose ids must then be the same as with the whole.
        let mut keep = unk_id + 1;
        let added: Vec<AddedFile> = match top.get("added_tokens") {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| invalid(format!("tokenizer.json: added_tokens: {e}")))?,
            None => Vec::new(),
        };
        for AddedFile { content, id } in &added {
            match id_of(content) {
                Some(full) if u64::from(full) == *id => keep = keep.max(full as usize + 1),
                _ => {
                    return Err(other(format!(
                        "added token {content:?} is not the vocabulary's piece {id}"
                    )))
                }
            }
        }
        let light_model = serde_json::json!({
            "type": "Unigram",
            "unk_id": unk_id,
            "vocab": (0..keep).map(|i| (&pieces[i], scores[i])).collect::<Vec<_>>(),
            "byte_fallback": byte_fallback,
        });
        let mut light = String::from("{");
        for (i, (k, v)) in top.iter().enumerate() {
            if i > 0 {
                light.push(',');
            }
            light.push_str(&serde_json::to_string(k).unwrap_or_default());
            light.push(':');
            if k == "model" {
                light.push_str(&light_model.to_string());
            } else {
                light.push_str(v.get());
            }
        }
        light.push('}');
        let pre: Tokenizer =
            serde_json::from_str(&light).map_err(|e| invalid(format!("tokenizer.json: {e}")))?;
        for AddedFile { content, id } in &added {
            if pre.token_to_id(content).map(u64::from) != Some(*id) {
                return Err(other(format!("added token {content:?} changes id")));
            }
        }
        let direct = Direct::new(&pre, top.get("pre_tokenizer").copied(), &added);
        drop(top);
        drop(tokenizer_bytes);

        let min_score = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let mut byte_ids = [NONE; 256];
        for (byte, slot) in byte_ids.iter_mut().enumerate() {
            if let Some(id) = id_of(&format!("<0x{byte:02X}>")) {
                *slot = id;
            }
        }
        unique.retain(|(p, _)| !p.is_empty());
        let trie = Trie::build(&unique);
        drop(unique);
        let vocab_len = pieces.len();
        drop(pieces);

        // config.json and the tensors.
        let config: Value = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| invalid(format!("config.json: {e}")))?;
        let normalize = normalize.unwrap_or_else(|| {
            config
                .get("normalize")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        });
        let tensors_bytes = read("model.safetensors")?;
        let tensors = SafeTensors::deserialize(&tensors_bytes)
            .map_err(|e| invalid(format!("model.safetensors: {e}")))?;
        let tensor = tensors
            .tensor("embeddings")
            .or_else(|_| tensors.tensor("0"))
            .or_else(|_| tensors.tensor("embedding.weight"))
            .map_err(|_| invalid("model.safetensors has no embeddings tensor"))?;
        let [rows, dim]: [usize; 2] = tensor
            .shape()
            .try_into()
            .map_err(|_| invalid("the embeddings tensor is not 2-D"))?;
        if dim == 0 {
            return Err(invalid("the embeddings have 0 dimensions"));
        }
        let table = match tensor.dtype() {
            Dtype::F32 => Table::F32(f32s(tensor.data())),
            Dtype::I8 => Table::I8(tensor.data().iter().map(|&b| b as i8).collect()),
            other_type => return Err(other(format!("embeddings of type {other_type:?}"))),
        };
        let table_len = match &table {
            Table::F32(t) => t.len(),
            Table::I8(t) => t.len(),
        };
        if rows.checked_mul(dim) != Some(table_len) {
            return Err(invalid(
                "the embeddings tensor's size does not match its shape",
            ));
        }
        let weights = match tensors.tensor("weights") {
            Ok(t) => Some(match t.dtype() {
                Dtype::F32 => f32s(t.data()),
                Dtype::F64 => t
                    .data()
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                    .collect(),
                other_type => return Err(other(format!("weights of type {other_type:?}"))),
            }),
            Err(_) => None,
        };
        let mapping: Option<Vec<usize>> = match tensors.tensor("mapping") {
            Ok(t) => Some(match t.dtype() {
                Dtype::I64 => t
                    .data()
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
                    .collect(),
                Dtype::I32 => t
                    .data()
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as usize)
                    .collect(),
                other_type => return Err(other(format!("mapping of type {other_type:?}"))),
            }),
            Err(_) => None,
        };
        // Every token must have a row (model2vec-rs would panic on one
        // that has none).
        for id in 0..vocab_len.max(keep) {
            let row = mapping
                .as_ref()
                .and_then(|m| m.get(id))
                .copied()
                .unwrap_or(id);
            if row >= rows {
                return Err(invalid(format!(
                    "token {id} has no row in the embeddings ({rows} rows)"
                )));
            }
        }
        Ok(UnigramModel {
            pre,
            direct,
            trie,
            scores,
            unk_id: unk_id as u32,
            unk_score: min_score - UNK_PENALTY,
            byte_fallback,
            byte_ids,
            median_token_length,
            table,
            dim,
            weights,
            mapping,
            normalize,
        })
    }

    /// The length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The vector of `text`, its first `max_length` tokens.
    pub fn encode(&self, text: &str, max_length: usize) -> Result<Vec<f32>, String> {
        // Character-level truncation first, as model2vec-rs does.
        let text = text
            .char_indices()
            .nth(max_length.saturating_mul(self.median_token_length))
            .map_or(text, |(i, _)| &text[..i]);
        SCRATCH.with_borrow_mut(|(ids, best)| {
            ids.clear();
            self.encode_ids(text, ids, best)?;
            let mut out = vec![0.0f32; self.dim];
            self.pool(&ids[..max_length.min(ids.len())], &mut out);
            Ok(out)
        })
    }

    /// Token ids of `text`, as model2vec-rs's `FastUnigram::encode_ids`.
    fn encode_ids(
        &self,
        text: &str,
        out: &mut Vec<u32>,
        best: &mut Vec<BestPath>,
    ) -> Result<(), String> {
        if let Some(direct) = &self.direct {
            if let Some(()) = direct.pieces(text, |piece| self.viterbi(piece, best, out)) {
                return Ok(());
            }
        }
        let mut pretokenized = self
            .pre
            .get_added_vocabulary()
            .extract_and_normalize(self.pre.get_normalizer(), text);
        if let Some(pre_tokenizer) = self.pre.get_pre_tokenizer() {
            pre_tokenizer
                .pre_tokenize(&mut pretokenized)
                .map_err(|e| format!("tokenization failed: {e}"))?;
        }
        for (piece, _, tokens) in
            pretokenized.get_splits(OffsetReferential::Normalized, OffsetType::None)
        {
            match tokens {
                Some(tokens) => out.extend(tokens.iter().map(|t| t.id)),
                None => self.viterbi(piece, best, out),
            }
        }
        Ok(())
    }

    /// Append the ids of pre-token `text` to `out`.
    fn viterbi(&self, text: &str, best: &mut Vec<BestPath>, out: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        let size = bytes.len();
        if size == 0 {
            return;
        }
        best.clear();
        best.resize(size + 1, UNSET);
        best[0].starts_at = 0;
        let mut starts_at = 0;
        while starts_at < size {
            let score_till_here = best[starts_at].score;
            let char_len = utf8_len(bytes[starts_at]);
            let mut has_single_node = false;
            let (mut node, mut end) = (0u32, starts_at);
            while end < size {
                node = self.trie.child(node, bytes[end]);
                if node == NONE {
                    break;
                }
                end += 1;
                let id = self.trie.token[node as usize];
                if id != NONE {
                    relax(
                        &mut best[end],
                        self.scores[id as usize] + score_till_here,
                        starts_at,
                        id,
                    );
                    has_single_node |= end - starts_at == char_len;
                }
            }
            if !has_single_node {
                relax(
                    &mut best[(starts_at + char_len).min(size)],
                    self.unk_score + score_till_here,
                    starts_at,
                    self.unk_id,
                );
            }
            starts_at += char_len;
        }
        let mark = out.len();
        let mut ends_at = size;
        let mut unk_run_end = None;
        while ends_at > 0 {
            let path = best[ends_at];
            let starts_at = path.starts_at as usize;
            if path.token_id == self.unk_id {
                unk_run_end.get_or_insert(ends_at);
            } else {
                if let Some(run_end) = unk_run_end.take() {
                    self.push_unknown_rev(&text[ends_at..run_end], out);
                }
                out.push(path.token_id);
            }
            ends_at = starts_at;
        }
        if let Some(run_end) = unk_run_end {
            self.push_unknown_rev(&text[..run_end], out);
        }
        out[mark..].reverse();
    }

    /// A fused run of unknown pieces: its piece if it spells one, else its
    /// bytes under byte fallback, else the unknown id (pushed in reverse).
    fn push_unknown_rev(&self, run: &str, out: &mut Vec<u32>) {
        let id = self.trie.get(run.as_bytes());
        if id != NONE {
            out.push(id);
            return;
        }
        if self.byte_fallback && run.bytes().all(|b| self.byte_ids[b as usize] != NONE) {
            out.extend(run.bytes().rev().map(|b| self.byte_ids[b as usize]));
            return;
        }
        out.push(self.unk_id);
    }

    /// Mean of the rows of `ids` (the unknown id skipped), L2-normalised
    /// when the model says so: the same operations in the same order as
    /// model2vec-rs, so the same floats.
    fn pool(&self, ids: &[u32], sum: &mut [f32]) {
        let dim = self.dim;
        let mut count = 0usize;
        for &id in ids {
            if id == self.unk_id {
                continue;
            }
            let tok = id as usize;
            let row = self
                .mapping
                .as_ref()
                .and_then(|m| m.get(tok))
                .copied()
                .unwrap_or(tok);
            let scale = self
                .weights
                .as_ref()
                .and_then(|w| w.get(tok))
                .copied()
                .unwrap_or(1.0);
            match &self.table {
                Table::F32(t) => {
                    for (s, &v) in sum.iter_mut().zip(&t[row * dim..(row + 1) * dim]) {
                        *s += v * scale;
                    }
                }
                Table::I8(t) => {
                    for (s, &v) in sum.iter_mut().zip(&t[row * dim..(row + 1) * dim]) {
                        *s += f32::from(v) * scale;
                    }
                }
            }
            count += 1;
        }
        let denom = count.max(1) as f32;
        if self.normalize {
            let mut sq = 0.0f32;
            for x in sum.iter_mut() {
                *x /= denom;
                sq += *x * *x;
            }
            let norm = sq.sqrt().max(1e-12);
            for x in sum.iter_mut() {
                *x /= norm;
            }
        } else {
            for x in sum.iter_mut() {
                *x /= denom;
            }
        }
    }
}

/// The pipeline of tokenlearn-static-model and its kin, done without the
/// `tokenizers` crate's alignment bookkeeping (which allocates per
/// character): the Precompiled (SentencePiece) normalizer, then
/// `WhitespaceSplit` and `Metaspace` (`▁`, prepended always, split). Same
/// steps on the string alone, so the same pieces; a text that holds an
/// added token goes the crate's way.
struct Direct {
    normalizer: tokenizers::normalizers::Precompiled,
    /// What the normalizer makes of each ASCII character.
    ascii: Vec<Option<String>>,
    /// Added tokens' contents: a text containing one is not for this path.
    added: Vec<String>,
}

thread_local! {
    /// One thread's normalized text and current word.
    static DIRECT_SCRATCH: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
}

impl Direct {
    fn new(
        pre: &Tokenizer,
        pre_tokenizer: Option<&RawValue>,
        added: &[AddedFile],
    ) -> Option<Direct> {
        let Some(tokenizers::NormalizerWrapper::Precompiled(p)) = pre.get_normalizer() else {
            return None;
        };
        let expected = serde_json::json!({
            "type": "Sequence",
            "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true}
            ]
        });
        let actual: Value = serde_json::from_str(pre_tokenizer?.get()).ok()?;
        if actual != expected || added.iter().any(|a| a.content.is_empty()) {
            return None;
        }
        let ascii = (0u8..128)
            .map(|b| {
                let c = [b];
                let s = std::str::from_utf8(&c).ok()?;
                p.transform(s).map(str::to_string)
            })
            .collect();
        Some(Direct {
            normalizer: p.clone(),
            ascii,
            added: added.iter().map(|a| a.content.clone()).collect(),
        })
    }

    /// Call `f` with each pre-token of `text`, in order; `None` (and no
    /// call) when the text holds an added token.
    fn pieces(&self, text: &str, mut f: impl FnMut(&str)) -> Option<()> {
        if self.added.iter().any(|a| text.contains(a.as_str())) {
            return None;
        }
        DIRECT_SCRATCH.with_borrow_mut(|(normalized, word)| {
            normalized.clear();
            self.normalize(text, normalized);
            if self.added.iter().any(|a| normalized.contains(a.as_str())) {
                return None;
            }
            for w in normalized
                .split(char::is_whitespace)
                .filter(|w| !w.is_empty())
            {
                word.clear();
                if !w.starts_with('\u{2581}') {
                    word.push('\u{2581}');
                }
                word.push_str(w);
                // Split before every `▁` (MergedWithNext).
                let mut start = 0;
                for (i, _) in word.match_indices('\u{2581}').skip(1) {
                    f(&word[start..i]);
                    start = i;
                }
                f(&word[start..]);
            }
            Some(())
        })
    }

    /// The Precompiled normalizer's `normalize`, on the string only: per
    /// grapheme under 6 bytes its mapping if it has one, else per character.
    fn normalize(&self, text: &str, out: &mut String) {
        if text.is_ascii() {
            // ASCII graphemes are single characters, but CR LF.
            let bytes = text.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    self.grapheme(&text[i..i + 2], out);
                    i += 2;
                    continue;
                }
                match &self.ascii[bytes[i] as usize] {
                    Some(norm) => out.push_str(norm),
                    None => out.push(bytes[i] as char),
                }
                i += 1;
            }
            return;
        }
        for g in text.graphemes(true) {
            self.grapheme(g, out);
        }
    }

    /// One grapheme of [`Direct::normalize`].
    fn grapheme(&self, g: &str, out: &mut String) {
        let p = &self.normalizer;
        if g.len() < 6 {
            if let Some(norm) = p.transform(g) {
                out.push_str(norm);
                return;
            }
        }
        for (i, c) in g.char_indices() {
            match p.transform(&g[i..i + c.len_utf8()]) {
                Some(norm) => out.push_str(norm),
                None => out.push(c),
            }
        }
    }
}

/// Take `candidate` as the best path into `target` if `target` is unset or
/// `candidate` scores strictly higher.
#[inline(always)]
fn relax(target: &mut BestPath, candidate: f64, starts_at: usize, token_id: u32) {
    if target.starts_at == NONE || candidate > target.score {
        *target = BestPath {
            score: candidate,
            starts_at: starts_at as u32,
            token_id,
        };
    }
}

/// Length of the UTF-8 sequence that starts with `lead`.
#[inline(always)]
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0x80..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Little-endian float32s.
fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model2vec_rs::model::StaticModel;

    fn model_dir() -> std::path::PathBuf {
        let dir = std::env::var_os("PIPE_MODEL2VEC_MODEL")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/models/tokenlearn-static-model")
            });
        assert!(
            dir.join("tokenizer.json").is_file(),
            "the model2vec test model is missing at {}: run .ci/deps",
            dir.display()
        );
        dir
    }

    /// Texts of every kind the tokenizer treats apart: scripts, accents,
    /// whitespace and control characters, added tokens, unknown runs,
    /// texts longer than the truncation.
    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "# The Matrix (1999)\n\nGenres: Action, Sci-Fi\nDirector: Lana Wachowski\n\nA hacker learns the truth.",
            "The quick brown fox jumps over the lazy dog.",
            "It's 3:45 p.m. on 2026-10-05; the price is $1,299.99 (incl. 18% GST).",
            "Les élèves ont étudié l’histoire de la Révolution française.",
            "Größere Äpfel schmecken süßer als kleinere, sagt Jürgen.",
            "Москва — столица России.",
            "你好，世界！今天天气很好。日本語の文章",
            "مرحبا بالعالم",
            "",
            " ",
            "\t\n",
            "\u{0}\u{1}\u{7f}",
            "tab\tsep\u{b}vt CRLF\r\nline\rcr",
            "\u{a0}nbsp\u{3000}ideographic\u{2009}thin \u{200b}\u{feff}bom",
            "<unk> <pad> a<pad>b <s>x</s>",
            "▁ ▁▁x",
            "\u{1F600} emoji 👩‍👩‍👧‍👦 👍🏽 🇮🇳",
            "ﬁ ﬂ Ⅻ ① ㎏ e\u{301} ñ n\u{303} ＦＵＬＬＷＩＤＴＨ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "\u{10FFFF}\u{E000}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("word ".repeat(3000));
        texts.push("नम".repeat(2000));
        texts.push(texts[..18].join(" "));
        // Reproducible noise over a few Unicode blocks.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        const BLOCKS: [(u32, u32); 8] = [
            (0x20, 0x7e),
            (0xa0, 0x17f),
            (0x300, 0x36f),
            (0x400, 0x4ff),
            (0x2000, 0x206f),
            (0x3040, 0x30ff),
            (0x4e00, 0x4fff),
            (0x1f300, 0x1f6ff),
        ];
        for _ in 0..300 {
            let (lo, hi) = BLOCKS[next(8) as usize];
            let (lo2, hi2) = BLOCKS[next(8) as usize];
            let s: String = (0..next(80))
                .map(|i| {
                    let (l, h) = if i % 3 == 0 { (lo2, hi2) } else { (lo, hi) };
                    if next(100) < 15 {
                        ' '
                    } else {
                        char::from_u32(l + next(u64::from(h - l + 1)) as u32).unwrap_or(' ')
                    }
                })
                .collect();
            texts.push(s);
        }
        texts
    }

    #[test]
    fn vectors_are_model2vec_rs_vectors_bit_for_bit() {
        let dir = model_dir();
        let ours = match UnigramModel::load(&dir, None) {
            Ok(m) => m,
            Err(Unsupported::Other(e) | Unsupported::Invalid(e)) => panic!("not loaded: {e}"),
        };
        assert!(
            ours.direct.is_some(),
            "the direct path applies to this model"
        );
        let theirs = StaticModel::from_pretrained(&dir, None, None, None).unwrap();
        assert_eq!(ours.dim(), theirs.dim());
        let texts = corpus();
        for max_length in [512, 7] {
            let want = theirs.encode_with_args(&texts, Some(max_length), 64);
            for (text, want) in texts.iter().zip(&want) {
                let got = ours.encode(text, max_length).unwrap();
                let same = got
                    .iter()
                    .zip(want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{text:?} (max_length {max_length}): {got:?} != {want:?}"
                );
            }
        }
    }

    #[test]
    fn the_trie_finds_every_piece_and_nothing_else() {
        let words: Vec<&[u8]> = vec![b"a", b"ab", b"abc", b"b", b"x\xffy", b"zz"];
        let pieces: Vec<(&[u8], u32)> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (*w, i as u32))
            .collect();
        let trie = Trie::build(&pieces);
        for (w, id) in &pieces {
            assert_eq!(trie.get(w), *id);
        }
        for missing in [&b"abcd"[..], b"c", b"x", b"x\xff", b"z", b""] {
            assert_eq!(trie.get(missing), NONE, "{missing:?}");
        }
    }
}
