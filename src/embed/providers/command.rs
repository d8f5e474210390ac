//! The command provider: a long-running local process that embeds texts it
//! reads as JSON lines on stdin (`{"id": "7", "text": "…"}`) and answers
//! with JSON lines on stdout (`{"id": "7", "embedding": [0.1, …]}`), in any
//! order. Any Python or Node model (sentence-transformers,
//! transformers.js) plugs in this way; the process is started once per
//! build, in the project root, and ended when the provider is dropped.

use crate::embed::config::EmbedConfig;
use crate::embed::{Provider, ProviderError};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Texts per batch when the model file sets no `batch`.
pub const DEFAULT_BATCH: usize = 64;

/// Seconds to wait for a batch's answers when the model file sets no
/// `timeout` (a model that loads slowly answers its first batch late).
pub const DEFAULT_TIMEOUT: u64 = 300;

/// How much of the process's stderr is kept for error messages.
const STDERR_TAIL: usize = 2000;

/// A command provider: the argv, and the running process (started on the
/// first batch, started again after it failed).
pub struct CommandProvider {
    argv: Vec<String>,
    root: PathBuf,
    batch: usize,
    timeout: Duration,
    process: Mutex<Option<Running>>,
    next_id: std::sync::atomic::AtomicU64,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Closing stdin is the request to exit; a process that does not
        // within a moment is killed.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CommandProvider {
    /// A provider running `config.command` in `root`.
    pub fn new(config: &EmbedConfig, root: &Path) -> Result<CommandProvider, ProviderError> {
        if config.command.is_empty() {
            return Err(ProviderError::permanent(
                "the command provider needs `command`",
            ));
        }
        Ok(CommandProvider {
            argv: config.command.clone(),
            root: root.to_path_buf(),
            batch: config.batch.unwrap_or(DEFAULT_BATCH),
            timeout: Duration::from_secs(config.timeout.unwrap_or(DEFAULT_TIMEOUT)),
            process: Mutex::new(None),
            next_id: Default::default(),
        })
    }

    fn spawn(&self) -> Result<Running, ProviderError> {
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ProviderError::permanent(format!("{}: cannot start it: {e}", self.describe()))
            })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| ProviderError::permanent("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ProviderError::permanent("no stdout"))?;
        let stderr_pipe = child.stderr.take();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = stderr_pipe {
            let keep = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = keep.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if s.len() > STDERR_TAIL * 2 {
                            let mut cut = s.len() - STDERR_TAIL;
                            while !s.is_char_boundary(cut) {
                                cut += 1;
                            }
                            s.replace_range(..cut, "");
                        }
                    }
                }
            });
        }
        Ok(Running {
            child,
            stdin,
            lines,
            stderr,
        })
    }

    fn failure(&self, run: &mut Running, what: &str) -> String {
        // Give stderr a moment to arrive: it usually says why.
        std::thread::sleep(Duration::from_millis(100));
        let status = match run.child.try_wait() {
            Ok(Some(s)) => format!(" (the process {s})"),
            _ => String::new(),
        };
        let tail = run
            .stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let tail: String = tail
            .chars()
            .rev()
            .take(STDERR_TAIL)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut msg = format!("{}: {what}{status}", self.describe());
        if !tail.is_empty() {
            msg.push_str(&format!("\n--- its stderr ---\n{tail}"));
        }
        msg
    }

    fn exchange(&self, run: &mut Running, texts: &[&str]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let first = self
            .next_id
            .fetch_add(texts.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut input = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let line = serde_json::json!({"id": (first + i as u64).to_string(), "text": t});
            input.extend_from_slice(line.to_string().as_bytes());
            input.push(b'\n');
        }
        if let Err(e) = run.stdin.write_all(&input).and_then(|()| run.stdin.flush()) {
            return Err(ProviderError::permanent(
                self.failure(run, &format!("cannot send it texts: {e}")),
            ));
        }
        let mut got: HashMap<u64, Vec<f32>> = HashMap::with_capacity(texts.len());
        let deadline = Instant::now() + self.timeout;
        while got.len() < texts.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match run.lines.recv_timeout(left) {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => {
                    return Err(ProviderError::permanent(
                        self.failure(run, &format!("cannot read its answer: {e}")),
                    ))
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ProviderError::transient(
                        format!(
                            "{}: no answer for {} of {} texts within {} s (set `timeout` in [embed] for a slower model)",
                            self.describe(),
                            texts.len() - got.len(),
                            texts.len(),
                            self.timeout.as_secs()
                        ),
                        None,
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ProviderError::permanent(self.failure(
                        run,
                        &format!(
                            "it closed its output with {} of {} texts unanswered",
                            texts.len() - got.len(),
                            texts.len()
                        ),
                    )))
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: &str| {
                let start: String = line.chars().take(200).collect();
                ProviderError::permanent(format!(
                    "{}: {why} in its answer line {start:?}; each line must be {{\"id\": \"<the id sent>\", \"embedding\": [numbers]}}",
                    self.describe()
                ))
            };
            let v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(&format!("invalid JSON ({e})")))?;
            let id = match v.get("id") {
                Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                _ => None,
            }
            .ok_or_else(|| bad("no id"))?;
            if id < first || id >= first + texts.len() as u64 {
                return Err(bad(&format!("an id that was not sent ({id})")));
            }
            let emb = v
                .get("embedding")
                .and_then(|e| e.as_array())
                .ok_or_else(|| bad("no embedding array"))?;
            let vector: Vec<f32> = emb
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a non-number in the embedding"))?;
            if got.insert(id, vector).is_some() {
                return Err(bad(&format!("a second answer for id {id}")));
            }
        }
        Ok((0..texts.len() as u64)
            .map(|i| got.remove(&(first + i)).unwrap_or_default())
            .collect())
    }
}

impl Provider for CommandProvider {
    fn describe(&self) -> String {
        format!("command provider `{}`", self.argv.join(" "))
    }

    fn max_batch(&self) -> usize {
        self.batch
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let mut guard = match self.process.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            *guard = Some(self.spawn()?);
        }
        let Some(run) = guard.as_mut() else {
            return Err(ProviderError::permanent("the process is not running"));
        };
        let result = self.exchange(run, texts);
        if result.is_err() {
            // Its state is unknown now: a retry starts it afresh.
            *guard = None;
        }
        result
    }
}
