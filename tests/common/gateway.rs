//! Runs the real `garim` binary for end-to-end tests, and a small hyper client to talk to it.
//!
//! Why: the e2e tests must exercise what users run: the binary, its CLI, config parsing, its
//! stdout readiness line, its signals. [`GatewayBuilder::start`] writes a temp config, starts
//! `garim serve --config F --listen 127.0.0.1:0 --route P=U... --audit A`, waits (at most
//! 20 s) for the one stdout line `listening on ADDR`, and keeps stdout/stderr for checks.
//! Dropping a [`Gateway`] sends SIGTERM (through the `kill` command), then SIGKILL after 5 s.
//!
//! The client ([`request`], [`try_request`]) is hyper-util's legacy client over plain HTTP; it
//! reads the whole body frame by frame, keeps the wire bytes and a gzip-decoded copy, and
//! reports a body that broke off instead of panicking.
//!
//! Limits: Unix only (uses `kill`); the gateway runs with `RUST_LOG=debug` so that the
//! log-leak checks see as much as possible.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long any one client request may take before the test fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A whole response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Body bytes as received (possibly compressed).
    pub raw: Bytes,
    /// Body decoded if `content-encoding: gzip`, else the same as `raw`.
    pub body: Bytes,
    /// Number of body frames received.
    pub frames: usize,
    /// Set when the body broke off (connection closed, bad framing).
    pub body_error: Option<String>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics showing status and body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response {} is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn events(&self) -> Vec<super::SseEvent> {
        super::parse_sse(&self.body)
    }
}

/// Sends one request; Err when no response head came back (connect error, reset, timeout).
pub async fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Resp, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req
        .body(Full::new(body.into()))
        .map_err(|e| e.to_string())?;
    let fut = async move {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("request failed: {e:?}"))?;
        let (parts, mut body) = resp.into_parts();
        let mut raw = Vec::new();
        let mut frames = 0;
        let mut body_error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        frames += 1;
                        raw.extend_from_slice(&d);
                    }
                }
                Err(e) => {
                    body_error = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        let gz = parts
            .headers
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let decoded = if gz { gunzip(&raw).await } else { raw.clone() };
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            raw: raw.into(),
            body: decoded.into(),
            frames,
            body_error,
        })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no complete response within {REQUEST_TIMEOUT:?}")),
    }
}

/// Like [`try_request`], panicking on failure.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Resp {
    try_request(method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// POST a JSON value with `content-type: application/json`.
pub async fn post_json(url: &str, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap();
    request("POST", url, &[("content-type", "application/json")], bytes).await
}

pub async fn get(url: &str) -> Resp {
    request("GET", url, &[], Bytes::new()).await
}

/// Decompresses gzip; panics on invalid data (a test expecting gzip got garbage).
pub async fn gunzip(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut dec = async_compression::tokio::bufread::GzipDecoder::new(data);
    let mut out = Vec::new();
    dec.read_to_end(&mut out)
        .await
        .expect("body says gzip but does not decode");
    out
}

/// Builder for a gateway process.
pub struct GatewayBuilder {
    routes: Vec<(String, String)>,
    config: String,
    args: Vec<String>,
    listen: bool,
}

/// How a process ended.
#[derive(Debug)]
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// A running gateway.
pub struct Gateway {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub audit_path: PathBuf,
    pub config_path: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayBuilder {
    pub fn new() -> Self {
        GatewayBuilder {
            routes: Vec::new(),
            config: String::new(),
            args: Vec::new(),
            listen: true,
        }
    }

    /// `--route PREFIX=URL`
    pub fn route(mut self, prefix: &str, url: &str) -> Self {
        self.routes.push((prefix.to_string(), url.to_string()));
        self
    }

    /// TOML written to the config file (empty by default, which must be valid).
    pub fn config(mut self, toml: &str) -> Self {
        self.config = toml.to_string();
        self
    }

    /// Any extra CLI argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// Leave out `--listen 127.0.0.1:0` (the config must then give one).
    pub fn no_listen_flag(mut self) -> Self {
        self.listen = false;
        self
    }

    fn command(&self, dir: &TempDir) -> (Command, PathBuf, PathBuf) {
        let config_path = dir.path().join("garim.toml");
        std::fs::write(&config_path, &self.config).unwrap();
        let audit_path = dir.path().join("audit.jsonl");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_garim"));
        cmd.arg("serve").arg("--config").arg(&config_path);
        if self.listen {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        for (p, u) in &self.routes {
            cmd.arg("--route").arg(format!("{p}={u}"));
        }
        cmd.arg("--audit").arg(&audit_path);
        cmd.args(&self.args);
        cmd.current_dir(dir.path())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        (cmd, config_path, audit_path)
    }

    /// Starts the gateway and waits for its readiness line; panics (with its stderr) when it
    /// exits first or says nothing within 20 s.
    pub fn start(self) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let (mut cmd, config_path, audit_path) = self.command(&dir);
        let mut child = cmd.spawn().expect("spawn garim");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let out_pipe = child.stdout.take().unwrap();
        let so = stdout.clone();
        let t1 = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                so.lock().unwrap().push_str(&line);
                so.lock().unwrap().push('\n');
                if let Some(rest) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
            }
        });
        let err_pipe = child.stderr.take().unwrap();
        let se = stderr.clone();
        let t2 = std::thread::spawn(move || {
            let mut r = BufReader::new(err_pipe);
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => se
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        let mut gw = Gateway {
            child: Some(child),
            addr: "127.0.0.1:1".parse().unwrap(),
            dir,
            audit_path,
            config_path,
            stdout,
            stderr,
            readers: vec![t1, t2],
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => {
                gw.addr = a
                    .parse()
                    .unwrap_or_else(|e| panic!("readiness line has no address `{a}`: {e}"));
                gw
            }
            Err(e) => {
                let fin = gw.finish(Duration::from_secs(5));
                panic!(
                    "garim did not print `listening on ADDR` ({e}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
                    fin.status, fin.stdout, fin.stderr
                );
            }
        }
    }

    /// Runs the process and waits up to `timeout` for it to exit on its own (for bad-config
    /// tests). If it is still running then, it is terminated and `status` is None.
    pub fn run_to_exit(self, timeout: Duration) -> Finished {
        let dir = tempfile::tempdir().unwrap();
        let (mut cmd, _, _) = self.command(&dir);
        let mut child = cmd.spawn().expect("spawn garim");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut p) = child.stdout.take() {
            let _ = p.read_to_string(&mut stdout);
        }
        if let Some(mut p) = child.stderr.take() {
            let _ = p.read_to_string(&mut stderr);
        }
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Gateway {
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::new()
    }

    /// `http://ADDR{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        post_json(&self.url(path), body).await
    }

    /// POST JSON with extra headers (content-type is set to application/json).
    pub async fn post_json_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        request(
            "POST",
            &self.url(path),
            &h,
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// POST raw bytes with the given headers (nothing added).
    pub async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        request("POST", &self.url(path), headers, body).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        get(&self.url(path)).await
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("gateway already finished").id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// Stderr (logs) so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The audit file's lines so far (empty when there is no file yet).
    pub fn audit_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// SIGTERM, then waits (async, so in-process fixtures keep running) up to `timeout` for
    /// the exit; SIGKILL after that. Returns the exit and everything it printed.
    /// Sends SIGTERM and waits for the exit. Takes `&mut self` so the temp dir (audit file,
    /// config) outlives the process for the caller to inspect.
    pub async fn shutdown(&mut self, timeout: Duration) -> Finished {
        if let Some(c) = self.child.as_mut() {
            if c.try_wait().unwrap().is_none() {
                self.sigterm();
            }
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.finish(Duration::ZERO)
    }

    /// Waits (blocking) up to `grace` for an exit after SIGTERM, SIGKILLs, collects output.
    fn finish(&mut self, grace: Duration) -> Finished {
        let mut status = None;
        if let Some(mut c) = self.child.take() {
            status = c.try_wait().unwrap();
            if status.is_none() && !grace.is_zero() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline {
                    if let Some(s) = c.try_wait().unwrap() {
                        status = Some(s);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            if status.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for t in self.readers.drain(..) {
            let _ = t.join();
        }
        Finished {
            status,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.finish(Duration::from_secs(5));
        }
    }
}
