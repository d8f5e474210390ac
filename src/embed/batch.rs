//! Shared batching, parallel requests, retries with backoff and jitter, and
//! validation of every vector, for every provider.
//!
//! A provider only knows how to embed one batch ([`Provider::embed_batch`]).
//! [`embed_all`] does the rest once for all of them: it cuts the texts into
//! batches no larger than the provider accepts, keeps up to `parallel`
//! batches in flight, sends a batch again after a transient failure (429,
//! 5xx, a timeout) with exponential backoff and jitter or after the server's
//! `Retry-After`, and checks every answer (one vector per text, the model's
//! dimensions, only finite numbers) before anything is handed on. Nothing
//! unchecked ever reaches the caller, so nothing unchecked is cached.

use super::provider::{Provider, ProviderError, ProviderErrorKind};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How to retry a failed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a batch is sent at most, the first time included
    /// (0 is taken as 1: every batch is sent at least once).
    pub attempts: u32,
    /// The backoff before the first retry; it doubles with every retry.
    pub base_delay: Duration,
    /// The longest wait between two attempts, for the backoff and for a
    /// server's `Retry-After` alike, so a build never hangs on one answer.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 0.5 s doubling up to 30 s: about a minute of trying
    /// before a build gives up on a server that is down.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry): the
    /// server's `Retry-After` when it sent one, otherwise exponential backoff
    /// with "equal jitter" (half the delay fixed, half random) so parallel
    /// requests that failed together do not all come back at the same
    /// instant. Both are capped by `max_delay`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let exponent = retry.saturating_sub(1).min(30);
        let backoff = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = backoff / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let random = if jitter_nanos == 0 {
            0
        } else {
            random_u64() % (jitter_nanos + 1)
        };
        half + Duration::from_nanos(random)
    }
}

/// A random number for jitter. `RandomState` is seeded randomly per process
/// and the clock differs per call: no dependency needed for a backoff.
fn random_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    RandomState::new().hash_one((nanos, std::thread::current().id()))
}

/// How to send one model's texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    /// Texts per request (capped by [`Provider::max_batch`]).
    pub batch: usize,
    /// Requests in flight (capped by [`Provider::max_parallel`]).
    pub parallel: usize,
    /// Every vector must have exactly this length (the model file's
    /// `dimensions`).
    pub dimensions: usize,
    /// How to retry a failed batch.
    pub retry: RetryPolicy,
}

/// What was sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Texts embedded and handed to `on_batch` (each text once, however many
    /// times its batch was sent).
    pub texts: usize,
    /// Calls of [`Provider::embed_batch`], retries included.
    pub requests: usize,
    /// Of those, how many were retries of a batch that failed transiently.
    pub retries: usize,
}

/// Why [`embed_all`] stopped before every text was embedded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchErrorKind {
    /// `cancelled` was set (Ctrl-C, a failing sibling target).
    Cancelled,
    /// The provider failed: a permanent error, or a transient one that
    /// outlasted the retry policy.
    Provider,
    /// The provider answered, but not with what was asked for (wrong count,
    /// wrong dimensions, NaN or infinity).
    Invalid,
    /// `on_batch` could not keep the vectors.
    Store,
}

/// A failed [`embed_all`]: the message names the provider, the failure and
/// how many texts were done (their vectors were handed to `on_batch`).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct BatchError {
    /// What kind of failure.
    pub kind: BatchErrorKind,
    /// Texts embedded and handed to `on_batch` before the run stopped.
    pub done: usize,
    /// The whole message, ready for the user; never contains a secret.
    pub message: String,
    /// What was sent before the run stopped.
    pub stats: BatchStats,
}

/// Embed `texts`; `on_batch(first_index, vectors)` is called (from any
/// thread, possibly concurrently) with each batch once its vectors are
/// validated (count == batch len, length == dimensions, all finite), so the
/// caller can store them as they arrive. Stops early, with an error, when
/// `cancelled` is set; vectors already handed to on_batch are kept by the
/// caller. The error message names the provider (describe()), the failure,
/// and how many texts were done.
pub fn embed_all(
    provider: &dyn Provider,
    texts: &[&str],
    plan: &BatchPlan,
    cancelled: &AtomicBool,
    on_batch: &(dyn Fn(usize, Vec<Vec<f32>>) -> Result<(), String> + Sync),
) -> Result<BatchStats, BatchError> {
    let batch_size = plan.batch.min(provider.max_batch()).max(1);
    let batches: Vec<(usize, &[&str])> = texts
        .chunks(batch_size)
        .enumerate()
        .map(|(i, chunk)| (i * batch_size, chunk))
        .collect();
    let workers = plan
        .parallel
        .min(provider.max_parallel())
        .min(batches.len())
        .max(1);

    let run = Run {
        provider,
        plan,
        cancelled,
        on_batch,
        batches: &batches,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        requests: AtomicUsize::new(0),
        retries: AtomicUsize::new(0),
        failure: Mutex::new(None),
        failed: AtomicBool::new(false),
    };
    if workers == 1 {
        run.work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| run.work());
            }
        });
    }

    let stats = BatchStats {
        texts: run.done.load(Ordering::SeqCst),
        requests: run.requests.load(Ordering::SeqCst),
        retries: run.retries.load(Ordering::SeqCst),
    };
    let failure = run
        .failure
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((kind, what)) = failure {
        return Err(batch_error(provider, kind, &what, stats, texts.len()));
    }
    if cancelled.load(Ordering::SeqCst) && stats.texts < texts.len() {
        return Err(batch_error(
            provider,
            BatchErrorKind::Cancelled,
            "interrupted",
            stats,
            texts.len(),
        ));
    }
    Ok(stats)
}

/// The error of a run that stopped: provider, failure, progress.
fn batch_error(
    provider: &dyn Provider,
    kind: BatchErrorKind,
    what: &str,
    stats: BatchStats,
    total: usize,
) -> BatchError {
    let kept = if stats.texts > 0 {
        " (their vectors are kept)"
    } else {
        ""
    };
    BatchError {
        kind,
        done: stats.texts,
        message: format!(
            "{}: {what}; {} of {total} texts embedded before it stopped{kept}",
            provider.describe(),
            stats.texts
        ),
        stats,
    }
}

/// The state the workers of one [`embed_all`] share.
struct Run<'a> {
    provider: &'a dyn Provider,
    plan: &'a BatchPlan,
    cancelled: &'a AtomicBool,
    on_batch: &'a (dyn Fn(usize, Vec<Vec<f32>>) -> Result<(), String> + Sync),
    /// Every batch: the index of its first text, and its texts.
    batches: &'a [(usize, &'a [&'a str])],
    /// The next batch to take.
    next: AtomicUsize,
    done: AtomicUsize,
    requests: AtomicUsize,
    retries: AtomicUsize,
    /// The first failure; later ones (often the same outage seen by another
    /// worker) are dropped.
    failure: Mutex<Option<(BatchErrorKind, String)>>,
    /// Set with `failure`: no worker takes a new batch after it.
    failed: AtomicBool,
}

impl Run<'_> {
    /// Take batches until there are none left, the run failed or was
    /// cancelled. A batch in flight when another fails is still finished and
    /// handed on: its vectors are valid and paid for.
    fn work(&self) {
        loop {
            if self.failed.load(Ordering::SeqCst) || self.cancelled.load(Ordering::SeqCst) {
                return;
            }
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(&(first, texts)) = self.batches.get(index) else {
                return;
            };
            match self.embed_one(first, texts) {
                Ok(Some(vectors)) => {
                    if let Err(e) = (self.on_batch)(first, vectors) {
                        self.fail(
                            BatchErrorKind::Store,
                            format!("storing vectors failed: {e}"),
                        );
                        return;
                    }
                    self.done.fetch_add(texts.len(), Ordering::SeqCst);
                }
                Ok(None) => return, // cancelled while waiting to retry
                Err((kind, what)) => {
                    self.fail(kind, what);
                    return;
                }
            }
        }
    }

    fn fail(&self, kind: BatchErrorKind, what: String) {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failure.is_none() {
            *failure = Some((kind, what));
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Send one batch, retrying transient failures, and validate the answer.
    /// `Ok(None)`: cancelled during a backoff.
    fn embed_one(
        &self,
        first: usize,
        texts: &[&str],
    ) -> Result<Option<Vec<Vec<f32>>>, (BatchErrorKind, String)> {
        let attempts = self.plan.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let error: ProviderError = match self.provider.embed_batch(texts) {
                Ok(vectors) => {
                    return validate(&vectors, texts.len(), self.plan.dimensions, first)
                        .map(|()| Some(vectors))
                        .map_err(|what| (BatchErrorKind::Invalid, what));
                }
                Err(error) => error,
            };
            let retry_after = match error.kind {
                ProviderErrorKind::Transient { retry_after } if attempt < attempts => retry_after,
                ProviderErrorKind::Transient { .. } => {
                    return Err((
                        BatchErrorKind::Provider,
                        format!("{error} (gave up after {attempts} attempts)"),
                    ));
                }
                ProviderErrorKind::Permanent => {
                    return Err((BatchErrorKind::Provider, error.message));
                }
            };
            let wait = self.plan.retry.delay(attempt, retry_after);
            if !self.sleep_unless_cancelled(wait) {
                return Ok(None);
            }
            self.retries.fetch_add(1, Ordering::SeqCst);
            attempt += 1;
        }
    }

    /// Wait, waking early when the run is cancelled or failed elsewhere
    /// (Ctrl-C must not wait out a 30 s Retry-After). False: stop.
    fn sleep_unless_cancelled(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            if self.cancelled.load(Ordering::SeqCst) || self.failed.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

/// Check one answer of a provider: one vector per text, each of exactly
/// `dimensions` numbers, all finite. `first` is the index of the batch's first
/// text, so a message can point at the text that got a bad vector.
pub fn validate(
    vectors: &[Vec<f32>],
    texts: usize,
    dimensions: usize,
    first: usize,
) -> Result<(), String> {
    if vectors.len() != texts {
        return Err(format!(
            "the provider returned {} vectors for {texts} texts (texts {first}..{}); \
             nothing of this batch was kept",
            vectors.len(),
            first + texts
        ));
    }
    for (i, vector) in vectors.iter().enumerate() {
        if vector.len() != dimensions {
            return Err(format!(
                "the provider returned a vector of {} dimensions for text {} but the model \
                 file says `dimensions = {dimensions}`; set `dimensions = {}` in the model file \
                 if the provider's model is the right one (or choose the model that has \
                 {dimensions} dimensions)",
                vector.len(),
                first + i,
                vector.len()
            ));
        }
        if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "the provider returned a vector with {} at position {position} for text {}; \
                 nothing of this batch was kept",
                vector[position],
                first + i
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// What the test provider does on one call.
    #[derive(Clone, Debug)]
    enum Cue {
        Answer,
        Transient(Option<Duration>),
        Permanent,
        WrongDimensions,
        FewerVectors,
        Nan,
        Slow(Duration),
    }

    /// A real provider that answers deterministic vectors, or fails on cue:
    /// `cues[n]` decides call number n (then `Answer` for the rest).
    struct Scripted {
        dimensions: usize,
        max_batch: usize,
        max_parallel: usize,
        cues: Mutex<Vec<Cue>>,
        calls: AtomicUsize,
        texts: AtomicUsize,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        /// Fail permanently on a batch that contains this text.
        poison: Option<&'static str>,
    }

    impl Scripted {
        fn new(dimensions: usize, max_batch: usize, cues: Vec<Cue>) -> Scripted {
            Scripted {
                dimensions,
                max_batch,
                max_parallel: 1,
                cues: Mutex::new(cues),
                calls: AtomicUsize::new(0),
                texts: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                poison: None,
            }
        }

        fn vector(&self, text: &str) -> Vec<f32> {
            let hash = blake3::hash(text.as_bytes());
            (0..self.dimensions)
                .map(|i| f32::from(hash.as_bytes()[i % 32]) / 255.0)
                .collect()
        }
    }

    impl Provider for Scripted {
        fn describe(&self) -> String {
            "scripted model \"test\"".to_string()
        }
        fn max_batch(&self) -> usize {
            self.max_batch
        }
        fn max_parallel(&self) -> usize {
            self.max_parallel
        }
        fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ProviderError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            self.texts.fetch_add(texts.len(), Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            let cue = self
                .cues
                .lock()
                .unwrap()
                .get(call)
                .cloned()
                .unwrap_or(Cue::Answer);
            let mut vectors: Vec<Vec<f32>> = texts.iter().map(|t| self.vector(t)).collect();
            let result = if self.poison.is_some_and(|p| texts.contains(&p)) {
                Err(ProviderError::permanent("HTTP 400: poisoned text"))
            } else {
                match cue {
                    Cue::Answer => Ok(vectors),
                    Cue::Slow(d) => {
                        std::thread::sleep(d);
                        Ok(vectors)
                    }
                    Cue::Transient(after) => Err(ProviderError::transient("HTTP 429", after)),
                    Cue::Permanent => Err(ProviderError::permanent("HTTP 401: bad key")),
                    Cue::WrongDimensions => {
                        vectors[0].push(0.5);
                        Ok(vectors)
                    }
                    Cue::FewerVectors => {
                        vectors.pop();
                        Ok(vectors)
                    }
                    Cue::Nan => {
                        vectors[texts.len() - 1][1] = f32::NAN;
                        Ok(vectors)
                    }
                }
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    fn plan(batch: usize, parallel: usize, dimensions: usize) -> BatchPlan {
        BatchPlan {
            batch,
            parallel,
            dimensions,
            retry: RetryPolicy {
                attempts: 4,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(20),
            },
        }
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("text number {i}")).collect()
    }

    /// Run embed_all and collect what reached on_batch, by text index.
    fn run(
        provider: &Scripted,
        texts: &[String],
        plan: &BatchPlan,
        cancelled: &AtomicBool,
    ) -> (Result<BatchStats, BatchError>, BTreeMap<usize, Vec<f32>>) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let got = Mutex::new(BTreeMap::new());
        let result = embed_all(provider, &refs, plan, cancelled, &|first, vectors| {
            let mut got = got.lock().unwrap();
            for (i, v) in vectors.into_iter().enumerate() {
                assert!(
                    got.insert(first + i, v).is_none(),
                    "text {} twice",
                    first + i
                );
            }
            Ok(())
        });
        (result, got.into_inner().unwrap())
    }

    #[test]
    fn batches_are_capped_by_the_provider_and_every_vector_arrives_in_place() {
        for (plan_batch, max_batch, texts_n, requests) in [
            (64, 10, 95, 10),
            (3, 10, 9, 3),
            (100, 100, 1, 1),
            (5, 5, 0, 0),
        ] {
            let provider = Scripted::new(4, max_batch, vec![]);
            let texts = texts(texts_n);
            let (result, got) = run(
                &provider,
                &texts,
                &plan(plan_batch, 1, 4),
                &AtomicBool::new(false),
            );
            let stats = result.unwrap();
            assert_eq!(
                stats,
                BatchStats {
                    texts: texts_n,
                    requests,
                    retries: 0
                }
            );
            assert_eq!(provider.calls.load(Ordering::SeqCst), requests);
            assert_eq!(got.len(), texts_n);
            for (i, text) in texts.iter().enumerate() {
                assert_eq!(got[&i], provider.vector(text), "text {i}");
            }
        }
    }

    #[test]
    fn requests_in_flight_are_bounded_by_plan_and_provider() {
        for (plan_parallel, provider_parallel, expect_most) in [(3, 8, 3), (8, 2, 2), (1, 8, 1)] {
            let slow = vec![Cue::Slow(Duration::from_millis(40)); 12];
            let mut provider = Scripted::new(2, 1, slow);
            provider.max_parallel = provider_parallel;
            let texts = texts(12);
            let (result, got) = run(
                &provider,
                &texts,
                &plan(1, plan_parallel, 2),
                &AtomicBool::new(false),
            );
            assert_eq!(result.unwrap().texts, 12);
            assert_eq!(got.len(), 12);
            assert_eq!(
                provider.most_in_flight.load(Ordering::SeqCst),
                expect_most,
                "plan {plan_parallel}, provider {provider_parallel}"
            );
        }
    }

    #[test]
    fn transient_failures_are_retried_then_succeed() {
        let cues = vec![
            Cue::Transient(None),
            Cue::Transient(Some(Duration::from_millis(5))),
        ];
        let provider = Scripted::new(3, 4, cues);
        let texts = texts(8);
        let (result, got) = run(&provider, &texts, &plan(4, 1, 3), &AtomicBool::new(false));
        assert_eq!(
            result.unwrap(),
            BatchStats {
                texts: 8,
                requests: 4,
                retries: 2
            }
        );
        assert_eq!(got.len(), 8);
        // The retried batch's texts were sent three times, the other's once.
        assert_eq!(provider.texts.load(Ordering::SeqCst), 4 * 3 + 4);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_max_delay() {
        let policy = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(
            policy.delay(1, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
        assert_eq!(policy.delay(1, Some(Duration::ZERO)), Duration::ZERO);

        // And a run really waits for it.
        let provider = Scripted::new(2, 4, vec![Cue::Transient(Some(Duration::from_millis(60)))]);
        let mut plan = plan(4, 1, 2);
        plan.retry.max_delay = Duration::from_secs(5);
        let start = Instant::now();
        let (result, _) = run(&provider, &texts(2), &plan, &AtomicBool::new(false));
        assert_eq!(result.unwrap().retries, 1);
        assert!(start.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            for (retry, full) in [
                (1, 100),
                (2, 200),
                (3, 400),
                (4, 800),
                (5, 1000),
                (30, 1000),
            ] {
                let d = policy.delay(retry, None);
                let full = Duration::from_millis(full);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
        // Not all the same: jitter spreads retries.
        let spread: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| policy.delay(4, None)).collect();
        assert!(spread.len() > 1);
    }

    #[test]
    fn transient_failures_give_up_after_the_attempts() {
        let provider = Scripted::new(2, 4, vec![Cue::Transient(None); 100]);
        let texts = texts(3);
        let (result, got) = run(&provider, &texts, &plan(4, 1, 2), &AtomicBool::new(false));
        let error = result.unwrap_err();
        assert_eq!(error.kind, BatchErrorKind::Provider);
        assert_eq!(provider.calls.load(Ordering::SeqCst), 4);
        assert_eq!(error.stats.retries, 3);
        assert_eq!(
            error.message,
            "scripted model \"test\": HTTP 429 (gave up after 4 attempts); \
             0 of 3 texts embedded before it stopped"
        );
        assert!(got.is_empty());
    }

    #[test]
    fn permanent_failures_are_not_retried_and_earlier_vectors_are_kept() {
        let cues = vec![Cue::Answer, Cue::Answer, Cue::Permanent];
        let provider = Scripted::new(2, 2, cues);
        let texts = texts(10);
        let (result, got) = run(&provider, &texts, &plan(2, 1, 2), &AtomicBool::new(false));
        let error = result.unwrap_err();
        assert_eq!(provider.calls.load(Ordering::SeqCst), 3);
        assert_eq!(error.done, 4);
        assert_eq!(
            error.message,
            "scripted model \"test\": HTTP 401: bad key; 4 of 10 texts embedded before it \
             stopped (their vectors are kept)"
        );
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_failure_in_parallel_keeps_the_other_batches_and_stops_new_ones() {
        let mut provider = Scripted::new(2, 1, vec![Cue::Slow(Duration::from_millis(20)); 100]);
        provider.max_parallel = 4;
        provider.poison = Some("text number 5");
        let texts = texts(40);
        let (result, got) = run(&provider, &texts, &plan(1, 4, 2), &AtomicBool::new(false));
        let error = result.unwrap_err();
        assert!(error.message.contains("poisoned text"), "{}", error.message);
        assert_eq!(error.done, got.len());
        assert!(!got.contains_key(&5));
        assert!(got.len() >= 5, "the batches before the failure: {got:?}");
        assert!(provider.calls.load(Ordering::SeqCst) < 40, "stopped early");
    }

    #[test]
    fn invalid_answers_are_never_handed_on() {
        let cases = [
            (
                Cue::WrongDimensions,
                "the provider returned a vector of 4 dimensions for text 2 but the model file \
                 says `dimensions = 3`; set `dimensions = 4` in the model file",
            ),
            (
                Cue::FewerVectors,
                "the provider returned 1 vectors for 2 texts (texts 2..4)",
            ),
            (
                Cue::Nan,
                "the provider returned a vector with NaN at position 1 for text 3",
            ),
        ];
        for (cue, message) in cases {
            let provider = Scripted::new(3, 2, vec![Cue::Answer, cue.clone()]);
            let texts = texts(6);
            let (result, got) = run(&provider, &texts, &plan(2, 1, 3), &AtomicBool::new(false));
            let error = result.unwrap_err();
            assert_eq!(error.kind, BatchErrorKind::Invalid, "{cue:?}");
            assert!(
                error.message.contains(message),
                "{cue:?}: {}",
                error.message
            );
            assert!(error.message.starts_with("scripted model \"test\": "));
            assert_eq!(
                got.keys().copied().collect::<Vec<_>>(),
                vec![0, 1],
                "{cue:?}"
            );
            assert_eq!(provider.calls.load(Ordering::SeqCst), 2, "not retried");
        }
    }

    #[test]
    fn infinity_is_refused_like_nan() {
        let vectors = vec![vec![1.0, f32::INFINITY]];
        let error = validate(&vectors, 1, 2, 7).unwrap_err();
        assert!(error.contains("inf at position 1 for text 7"), "{error}");
        assert!(validate(&[vec![1.0, -0.0]], 1, 2, 0).is_ok());
    }

    #[test]
    fn cancelling_stops_after_the_batch_in_flight() {
        let provider = Scripted::new(2, 2, vec![]);
        let texts = texts(10);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let cancelled = AtomicBool::new(false);
        let got = Mutex::new(Vec::new());
        let result = embed_all(&provider, &refs, &plan(2, 1, 2), &cancelled, &|first, _| {
            got.lock().unwrap().push(first);
            if first == 2 {
                cancelled.store(true, Ordering::SeqCst);
            }
            Ok(())
        });
        let error = result.unwrap_err();
        assert_eq!(error.kind, BatchErrorKind::Cancelled);
        assert_eq!(error.done, 4);
        assert!(
            error.message.contains("interrupted; 4 of 10 texts"),
            "{}",
            error.message
        );
        assert_eq!(*got.lock().unwrap(), vec![0, 2]);
    }

    #[test]
    fn cancelling_wakes_a_long_backoff() {
        let provider = Scripted::new(2, 2, vec![Cue::Transient(Some(Duration::from_secs(60)))]);
        let mut plan = plan(2, 1, 2);
        plan.retry.max_delay = Duration::from_secs(60);
        let cancelled = AtomicBool::new(false);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                cancelled.store(true, Ordering::SeqCst);
            });
            let (result, got) = run(&provider, &texts(2), &plan, &cancelled);
            assert_eq!(result.unwrap_err().kind, BatchErrorKind::Cancelled);
            assert!(got.is_empty());
        });
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_store_failure_stops_the_run() {
        let provider = Scripted::new(2, 2, vec![]);
        let texts = texts(6);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let result = embed_all(
            &provider,
            &refs,
            &plan(2, 1, 2),
            &AtomicBool::new(false),
            &|first, _| {
                if first == 2 {
                    Err("disk full".to_string())
                } else {
                    Ok(())
                }
            },
        );
        let error = result.unwrap_err();
        assert_eq!(error.kind, BatchErrorKind::Store);
        assert_eq!(error.done, 2);
        assert!(error.message.contains("storing vectors failed: disk full"));
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    }
}
