//! A real nginx (Debian's nginx-light, which `.ci/deps` installs) serving
//! the Bazel HTTP cache protocol with WebDAV `PUT`, on 127.0.0.1, from a
//! temporary directory; stopped when dropped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    token: Option<String>,
}

fn binary() -> PathBuf {
    let p = std::env::var_os("PIPE_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    assert!(
        p.exists(),
        "nginx is missing at {}: run .ci/deps (it installs Debian's nginx-light)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Nginx {
    /// Start nginx; with `token`, every request must carry
    /// `Authorization: Bearer <token>` (else 401).
    pub fn start(token: Option<&str>) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("store")).expect("mkdir");
        let mut n = Nginx {
            dir,
            child: None,
            port: free_port(),
            token: token.map(str::to_string),
        };
        n.launch();
        n
    }

    fn launch(&mut self) {
        let d = self.dir.path().display().to_string();
        let auth = match &self.token {
            Some(t) => format!("if ($http_authorization != \"Bearer {t}\") {{ return 401; }}"),
            None => String::new(),
        };
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {d}/store;
    location / {{
      {auth}
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }}
  }}
}}
"#,
            port = self.port
        );
        let conf_path = self.dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let mut err = String::new();
                if let Some(mut e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("nginx exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/pipe", self.port)
    }

    /// Where nginx keeps the cache's files (`pipe/ac/…`, `pipe/cas/…`).
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store/pipe")
    }

    /// Every blob file under `store()/cas`.
    pub fn blobs(&self) -> Vec<PathBuf> {
        let dir = self.store().join("cas");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The request lines nginx logged, e.g. `PUT /pipe/cas/… HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
