//! The `command` stage: a user's shell command with declared inputs and
//! outputs, like a DVC stage.
//!
//! The command writes each output to a temporary path that pipe substitutes
//! for `{out}` (`{out0}`, `{out1}`, … when there are several); pipe renames
//! them into place only when the command exits successfully, so a failing or
//! killed command never damages the last good output.

use crate::artifact::{temp_path_beside, TempPath};
use crate::manifest::pipeline::substitute;
use crate::stage::{OutputFile, StageContext, StageError, StageOutput};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A resolved command target.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// The command line (model placeholders already substituted).
    pub command: String,
    /// Files it reads (project-relative).
    pub deps: Vec<PathBuf>,
    /// Files it writes (project-relative).
    pub outs: Vec<PathBuf>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
}

/// Run the command and move its outputs into place.
pub fn run(ctx: &StageContext, spec: &CommandSpec) -> Result<StageOutput, StageError> {
    let mut temps: Vec<TempPath> = Vec::new();
    for out in &spec.outs {
        let dest = ctx.abs(out);
        temps.push(
            temp_path_beside(&dest)
                .map_err(|e| StageError::io(&dest, "prepare a temporary file for", e))?,
        );
    }
    let names: Vec<String> = (0..temps.len()).map(|i| format!("out{i}")).collect();
    let paths: Vec<String> = temps
        .iter()
        .map(|t| t.path().display().to_string())
        .collect();
    let mut values: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(paths.iter().map(String::as_str))
        .collect();
    if let Some(first) = paths.first() {
        values.push(("out", first));
    }
    let command_line = substitute(&spec.command, &values);

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&command_line)
        .current_dir(ctx.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PIPE_TARGET", ctx.target);
    for (i, p) in paths.iter().enumerate() {
        cmd.env(format!("PIPE_OUT_{i}"), p);
    }
    if let Some(first) = paths.first() {
        cmd.env("PIPE_OUT", first);
    }
    for (k, v) in &spec.env {
        cmd.env(k, substitute(v, &values));
    }
    ctx.progress
        .progress(0, 1, &format!("running: {}", spec.command));
    let mut child = cmd.spawn().map_err(|e| {
        StageError::with_source(format!("cannot start `sh -c {}`", spec.command), e)
    })?;

    // Drain output on threads so a chatty command never blocks on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err_thread = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                if ctx.is_cancelled() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(StageError::cancelled());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(StageError::with_source("cannot wait for the command", e)),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let log = String::from_utf8_lossy(&[stdout, stderr].concat())
        .trim_end()
        .to_string();

    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        let mut message = format!("command {how}: {}", spec.command);
        if !log.is_empty() {
            message.push_str(&format!("\n--- its output ---\n{log}"));
        }
        message.push_str("\nthe previous outputs are untouched");
        return Err(StageError::new(message));
    }

    let mut output = StageOutput::default();
    for (temp, out) in temps.into_iter().zip(&spec.outs) {
        if !temp.path().exists() {
            return Err(StageError::new(format!(
                "the command succeeded but did not write {} (it must write to the path pipe puts in `{{out}}`)",
                out.display()
            )));
        }
        let hash = crate::fingerprint::hash_file(temp.path())
            .map_err(|e| StageError::io(temp.path(), "read", e))?;
        let dest = ctx.abs(out);
        temp.persist(&dest)
            .map_err(|e| StageError::io(&dest, "move into place", e))?;
        output.files.push(OutputFile {
            path: out.clone(),
            hash,
        });
        output.written += 1;
    }
    if !log.is_empty() {
        output.stats.insert("output".into(), log);
    }
    Ok(output)
}
