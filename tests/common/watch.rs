//! `pipe watch` through the real binary, read line by line.

use super::Project;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a line may take to come.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `pipe watch`, read line by line.
pub struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Watch {
    /// `pipe watch` in `p` with `extra` flags, once it said it started.
    pub fn start(p: &Project, extra: &[&str]) -> Watch {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("pipe"))
            .args(["watch", "--debounce", "300"])
            .args(extra)
            .current_dir(p.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut w = Watch {
            child,
            lines,
            seen: Vec::new(),
        };
        w.expect(|l| l.starts_with("watch: start:"));
        w
    }

    /// The first line matching `pred`, seen already or waited for.
    pub fn saw(&mut self, pred: impl Fn(&str) -> bool) -> String {
        match self.seen.iter().find(|l| pred(l)) {
            Some(line) => line.clone(),
            None => self.expect(pred),
        }
    }

    /// Wait for a line matching `pred`; return it.
    pub fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no expected line within {WAIT:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Assert that no line matching `pred` arrives within `quiet`.
    pub fn expect_none(&mut self, quiet: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + quiet;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    assert!(
                        !pred(&line),
                        "unexpected line {line:?}; saw:\n{}",
                        self.seen.join("\n")
                    );
                    self.seen.push(line);
                }
                Err(_) => return,
            }
        }
    }

    /// Stop it with SIGINT: its exit code and every line it printed.
    pub fn interrupt(mut self) -> (i32, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let deadline = Instant::now() + WAIT;
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "pipe watch did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (code, std::mem::take(&mut self.seen))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
