//! A stage run outside the executor: what its [`StageContext`] borrows.

use pipe::stage::{BuildSettings, PreviousOutputs, ProgressSink, StageContext};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a stage run borrows: default settings, no previous outputs, no
/// input hashes (the stages hash their inputs themselves, as without an
/// executor), never cancelled, nothing shared between machines.
pub struct StageEnv {
    /// The target's name in messages (`test` unless set).
    pub target: &'static str,
    pub settings: BuildSettings,
    pub previous: PreviousOutputs,
    pub inputs: pipe::fingerprint::InputHashes,
    pub cancelled: Arc<AtomicBool>,
}

impl StageEnv {
    /// A first run of target `test`, not strict, without SOURCE_DATE_EPOCH.
    pub fn new() -> Self {
        StageEnv {
            target: "test",
            settings: BuildSettings {
                strict: false,
                source_date_epoch: None,
            },
            previous: PreviousOutputs::default(),
            inputs: Default::default(),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same, naming the target `target`.
    pub fn named(target: &'static str) -> Self {
        StageEnv {
            target,
            ..StageEnv::new()
        }
    }

    /// The context of a run in the project at `root`, reporting to `progress`.
    pub fn ctx<'a>(&'a self, root: &'a Path, progress: &'a dyn ProgressSink) -> StageContext<'a> {
        StageContext {
            root,
            target: self.target,
            previous: &self.previous,
            inputs: &self.inputs,
            progress,
            settings: &self.settings,
            cancelled: &self.cancelled,
            shared_vectors: None,
            shared_parts: None,
        }
    }
}
