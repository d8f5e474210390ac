//! A search query's vector: `pipe search --text` embeds the query with the
//! model's own provider (its models.d `[embed]` table), as its records were
//! embedded, so that the query lands in the same space as they do.
//!
//! A query differs from a record in one thing only: its prefix. Asymmetric
//! models are trained with one prefix before documents and another before
//! queries (nomic-embed-text: `search_document: ` / `search_query: `; E5:
//! `passage: ` / `query: `). `prefix` is the documents'; `query-prefix` the
//! queries' (none by default, which is right for symmetric models such as
//! model2vec's). The text template is not applied: it describes records, and a
//! query is already text.
//!
//! The query goes through the same batching layer as a build
//! ([`crate::embed::batch::embed_all`]): a transient failure is retried with
//! backoff (fewer times than a build, since a person is waiting) and the
//! vector is validated (the model's dimensions, finite numbers) before use.

use crate::embed::batch::{embed_all, BatchPlan, RetryPolicy};
use crate::embed::config::{document_prefix, EmbedConfig};
use crate::manifest::Model;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

/// Why a query could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The command line or the model file cannot give a query vector (an
    /// empty query, a model without `[embed]`): the user's to fix.
    #[error("{0}")]
    Usage(String),
    /// The provider failed or answered something invalid.
    #[error("{0}")]
    Provider(String),
}

/// A query embedded by a model's provider.
#[derive(Clone, Debug)]
pub struct QueryVector {
    /// The text sent to the provider: the query prefix, then the query.
    pub sent: String,
    /// The provider, as messages name it (no secrets).
    pub provider: String,
    /// The vector, validated: the model's dimensions, all finite.
    pub vector: Vec<f32>,
    /// A word for the user when the model embeds documents with a prefix
    /// but says nothing of queries.
    pub note: Option<String>,
}

/// The text a query is embedded as: `query-prefix` (if any), then the query.
pub fn query_text(embed: &EmbedConfig, query: &str) -> String {
    match &embed.query_prefix {
        Some(prefix) => format!("{prefix}{query}"),
        None => query.to_string(),
    }
}

/// How often a query is sent at most, and how long between tries: a person
/// is waiting, so about ten seconds at most, not a build's minute.
fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(5),
    }
}

/// Embed `query` for a search of `model`'s vectors, with the provider its
/// `[embed]` table names (`root`: the project, for model paths).
pub fn embed_query(model: &Model, root: &Path, query: &str) -> Result<QueryVector, QueryError> {
    let Some(embed) = &model.embed else {
        return Err(QueryError::Usage(format!(
            "model {id} has no [embed] table in {file}, so pipe cannot embed a query for it: \
             add one naming the provider that made its vectors (e.g. `[embed]` with \
             provider = \"model2vec\" and path = \"models/<dir>\", or provider = \"ollama\" and \
             model = \"nomic-embed-text\"), or search with --like ID or --vector FILE",
            id = model.id,
            file = model.file.display()
        )));
    };
    if query.trim().is_empty() {
        return Err(QueryError::Usage(
            "--text is empty: give the words to search for, e.g. --text \"a heist in Paris\""
                .into(),
        ));
    }
    let note = match (&embed.query_prefix, embed.prefix.is_empty()) {
        (None, false) => Some(format!(
            "model {id} embeds records with prefix {prefix:?} but {file} sets no query-prefix, \
             so the query is embedded without one; {hint}",
            id = model.id,
            prefix = embed.prefix,
            file = model.file.display(),
            hint = match document_prefix(&embed.prefix) {
                Some((_, q)) => format!("this model wants query-prefix = \"{q}\" in [embed]"),
                None => "set query-prefix in [embed] if the model wants one for queries \
                         (query-prefix = \"\" says it does not)"
                    .to_string(),
            }
        )),
        _ => None,
    };
    let provider = crate::embed::providers::build_provider(embed, model, root)
        .map_err(|e| QueryError::Provider(format!("model {}: {e}", model.id)))?;
    let sent = query_text(embed, query);
    let plan = BatchPlan {
        batch: 1,
        parallel: 1,
        dimensions: model.dimensions as usize,
        retry: retry_policy(),
    };
    let got: Mutex<Option<Vec<f32>>> = Mutex::new(None);
    embed_all(
        provider.as_ref(),
        &[sent.as_str()],
        &plan,
        &AtomicBool::new(false),
        &|_, mut vectors| {
            let mut slot = got.lock().unwrap_or_else(|p| p.into_inner());
            *slot = vectors.pop();
            Ok(())
        },
    )
    .map_err(|e| {
        QueryError::Provider(format!(
            "model {}: embedding the query failed: {}",
            model.id, e.message
        ))
    })?;
    let vector = got
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| {
            QueryError::Provider(format!(
                "model {}: {} returned no vector for the query",
                model.id,
                provider.describe()
            ))
        })?;
    Ok(QueryVector {
        sent,
        provider: provider.describe(),
        vector,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_gets_the_query_prefix_and_never_the_document_prefix() {
        let mut embed = EmbedConfig {
            prefix: "search_document: ".into(),
            ..EmbedConfig::default()
        };
        assert_eq!(query_text(&embed, "a heist in Paris"), "a heist in Paris");
        embed.query_prefix = Some("search_query: ".into());
        assert_eq!(
            query_text(&embed, "a heist in Paris"),
            "search_query: a heist in Paris"
        );
    }

    #[test]
    fn known_document_prefixes_name_their_query_prefix() {
        assert_eq!(
            document_prefix("search_document: "),
            Some(("search_document: ", "search_query: "))
        );
        assert_eq!(document_prefix("passage:"), Some(("passage: ", "query: ")));
        assert_eq!(document_prefix("search_query: "), None);
        assert_eq!(document_prefix(""), None);
    }
}
