//! `pipe serve` on an ephemeral port, and a tiny HTTP/1.1 client over a raw
//! `TcpStream`: raw so that tests control every header (a forged `Host` or
//! `Origin` is the point of some of them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `pipe serve --port 0`.
pub struct Server {
    child: Child,
    /// Kept open: closing it would make the server's later writes fail.
    _stdout: BufReader<ChildStdout>,
    /// The port it bound.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Start `pipe serve --port 0 EXTRA…` in `dir` and wait for its
    /// `listening on` line.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("pipe"))
            .current_dir(dir)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pipe serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read stdout");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url:?}"));
        Server {
            child,
            _stdout: stdout,
            port,
            url,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A request with `Host: 127.0.0.1:PORT` unless `headers` sets one.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("Content-Type: application/json\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        stream.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {text:?}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], Some(body))
    }

    /// Subscribe to `/api/progress`; returns once the stream is open (the
    /// server has subscribed), so no later event can be missed.
    pub fn events(&self) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        write!(
            stream,
            "GET /api/progress HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut reader = BufReader::new(stream);
        let mut chunked = false;
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 200 "), "event stream: {status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            let l = line.trim().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if l.starts_with("transfer-encoding") && l.contains("chunked") {
                chunked = true;
            }
            if l.starts_with("content-type") {
                assert!(l.contains("text/event-stream"), "{l}");
            }
        }
        Events {
            reader,
            chunked,
            buf: String::new(),
            comments: 0,
        }
    }

    /// Poll `/api/status` until no build runs.
    pub fn wait_idle(&self, timeout: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.get("/api/status").json();
            if s["building"] == false {
                return s;
            }
            assert!(start.elapsed() < timeout, "the build did not finish: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ctrl-C, and wait (at most `timeout`) for the process to exit.
    pub fn interrupt(&mut self, timeout: Duration) -> Option<ExitStatus> {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A Server-Sent Events stream.
pub struct Events {
    reader: BufReader<TcpStream>,
    chunked: bool,
    buf: String,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
}

impl Events {
    /// The next `data:` event as JSON (None: the stream ended).
    pub fn next(&mut self) -> Option<serde_json::Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut data = String::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(
                    serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad event {data}: {e}")),
                );
            }
            if !self.read_more() {
                return None;
            }
        }
    }

    fn read_more(&mut self) -> bool {
        if self.chunked {
            let mut size = String::new();
            if self.reader.read_line(&mut size).unwrap_or(0) == 0 {
                return false;
            }
            let n = match usize::from_str_radix(size.trim(), 16) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(_) => return true, // the CRLF after a chunk
            };
            let mut chunk = vec![0; n];
            if self.reader.read_exact(&mut chunk).is_err() {
                return false;
            }
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
            true
        } else {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => false,
                Ok(_) => {
                    self.buf.push_str(&line);
                    true
                }
            }
        }
    }

    /// Events until a `completed` or `error` event (included).
    pub fn until_done(&mut self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Some(e) = self.next() {
            let done = e["status"] == "completed" || e["status"] == "error";
            out.push(e);
            if done {
                return out;
            }
        }
        panic!("the event stream ended before the build finished: {out:#?}");
    }
}
