//! The integration-test harness: the real `mxdesk` binary on port 0 in a
//! temporary directory, a small blocking SMTP client with STARTTLS through
//! rustls (trusting the development CA in `certs/`), and a hand-written
//! HTTP/1.1 client for the API. No mocks: every test talks to the real
//! process over real TCP.
//!
//! Readiness is never a fixed sleep: `start` reads the `smtp listening on …`
//! and `api listening on …` lines the server prints once its sockets are
//! bound, with a generous deadline that fails the test clearly.

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tempfile::TempDir;

/// How long the server may take to print its listening lines.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown may take before the test fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Socket read/write timeout: a server that stops answering fails the test
/// instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The admin token every test server is bootstrapped with.
pub const ADMIN_TOKEN: &str = "mxdesk-test-admin-token-3f9a1c";
/// The only mail domain of the test servers.
pub const DOMAIN: &str = "desk.test";
/// The SMTP host name; the dev certificate carries it as a SAN.
pub const HOSTNAME: &str = "mx.desk.test";
/// The `api.public_url` of servers on port 0 (the real port is not known
/// when the config is written); links in API responses start with it.
pub const PLACEHOLDER_PUBLIC_URL: &str = "http://api.desk.test:8080";

/// Path of a file in the repository's `certs/` directory.
pub fn cert_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("certs")
        .join(name)
}

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// Settings of a test server beyond the defaults.
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Extra TOML lines: `smtp.key = value` and `api.key = value` go into
    /// their tables, anything else stays at the top level.
    pub extra_toml: String,
    /// Bind the API on a port chosen now (instead of 0) so that
    /// `api.public_url` is the real address and every link in the API's
    /// answers works. Only for clients that follow links (python-gitlab).
    pub real_public_url: bool,
}

/// A running `mxdesk serve` in its own temporary directory.
pub struct TestServer {
    /// Kept for its lifetime: the data dir, config and log live in it.
    dir: TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// The first SMTP address the server reported.
    pub smtp_addr: SocketAddr,
    /// The API address the server reported.
    pub api_addr: SocketAddr,
    /// `http://<api_addr>`.
    pub api_url: String,
    /// The `api.public_url` the server was configured with.
    pub public_url: String,
    pub token: String,
}

impl TestServer {
    /// Starts a server with the default test configuration.
    pub fn start() -> TestServer {
        TestServer::start_opts(ServerOptions::default())
    }

    /// Starts a server with extra configuration lines (see
    /// [`ServerOptions::extra_toml`]), e.g. `"smtp.max_message_size = 2048"`.
    pub fn start_with(extra_toml: &str) -> TestServer {
        TestServer::start_opts(ServerOptions {
            extra_toml: extra_toml.to_string(),
            ..ServerOptions::default()
        })
    }

    pub fn start_opts(options: ServerOptions) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("mxdesk-test-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = dir.path().join("data");
        let (api_listen, public_url) = if options.real_public_url {
            let port = free_port();
            (
                format!("127.0.0.1:{port}"),
                format!("http://127.0.0.1:{port}"),
            )
        } else {
            (
                "127.0.0.1:0".to_string(),
                PLACEHOLDER_PUBLIC_URL.to_string(),
            )
        };
        let (mut top, mut smtp, mut api) = (String::new(), String::new(), String::new());
        for line in options.extra_toml.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("smtp.") {
                smtp.push_str(rest);
                smtp.push('\n');
            } else if let Some(rest) = line.strip_prefix("api.") {
                api.push_str(rest);
                api.push('\n');
            } else {
                top.push_str(line);
                top.push('\n');
            }
        }
        let config = format!(
            r#"data_dir = {data_dir:?}
domains = [{DOMAIN:?}]
{top}
[smtp]
listen = ["127.0.0.1:0"]
hostname = {HOSTNAME:?}
cert = {cert:?}
key = {key:?}
{smtp}
[api]
listen = {api_listen:?}
public_url = {public_url:?}
{api}"#,
            data_dir = data_dir.display().to_string(),
            cert = cert_path("server.pem").display().to_string(),
            key = cert_path("server.key").display().to_string(),
        );
        let config_path = dir.path().join("mxdesk.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log_path = dir.path().join("server.log");
        let mut server = TestServer {
            dir,
            config_path,
            log_path,
            child: None,
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_url: String::new(),
            public_url,
            token: ADMIN_TOKEN.to_string(),
        };
        server.spawn();
        server
    }

    /// Spawns the process and waits for its listening lines.
    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mxdesk"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env("MXDESK_BOOTSTRAP_TOKEN", &self.token)
            .env_remove("MXDESK_CONFIG")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn mxdesk");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        // Reads stdout to its end so the pipe never fills; lines go to the
        // channel while start-up is waiting for them.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let mut smtp = None;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => self.fail_start(&format!(
                    "no `api listening on` line within {START_TIMEOUT:?}; stdout so far: {seen:?}"
                )),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    self.fail_start(&format!(
                        "server exited during start-up ({status:?}); stdout: {seen:?}"
                    ))
                }
            };
            seen.push(line.clone());
            if let Some(addr) = line.strip_prefix("smtp listening on ") {
                // The first SMTP address is the one the tests use.
                if smtp.is_none() {
                    smtp = Some(addr.trim().parse::<SocketAddr>().unwrap_or_else(|e| {
                        self.fail_start(&format!("bad smtp address in {line:?}: {e}"))
                    }));
                }
            } else if let Some(url) = line.strip_prefix("api listening on http://") {
                let api: SocketAddr = url.trim().parse().unwrap_or_else(|e| {
                    self.fail_start(&format!("bad api address in {line:?}: {e}"))
                });
                let Some(smtp) = smtp else {
                    self.fail_start(&format!("api line before any smtp line: {seen:?}"));
                };
                self.smtp_addr = smtp;
                self.api_addr = api;
                self.api_url = format!("http://{api}");
                return;
            }
        }
    }

    fn fail_start(&mut self, why: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "mxdesk did not start: {why}\n--- server log ---\n{}",
            self.log_tail(60)
        );
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// The data directory (the same across restarts).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The last `lines` lines of the server's log (stderr).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILL: the process dies mid-whatever, like a power cut for the
    /// process (the kernel still has what was written).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL mxdesk");
            child.wait().expect("reap mxdesk");
        }
    }

    /// SIGTERM, then waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        self.wait_for_exit()
    }

    /// Sends SIGTERM (with `kill(1)`) and returns at once.
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        match wait_with_deadline(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mxdesk did not exit within {STOP_TIMEOUT:?}\n--- server log ---\n{}",
                    self.log_tail(40)
                );
            }
        }
    }

    /// Starts the server again on the same data directory (new ports). A
    /// server still running is killed with SIGKILL first.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    // -- API helpers --------------------------------------------------------

    /// An authenticated request to the API.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut all = vec![("PRIVATE-TOKEN", self.token.as_str())];
        all.extend_from_slice(headers);
        http_request(self.api_addr, method, path, &all, body)
    }

    /// `GET path` with the admin token.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// `GET path` expecting `200` and a JSON body.
    pub fn get_json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "GET {path}: {response}");
        response.json()
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> HttpResponse {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// Creates a project called `path`; returns its JSON.
    pub fn create_project(&self, path: &str) -> Value {
        let response = self.post_json(
            "/api/v4/projects",
            &serde_json::json!({ "name": path, "path": path }),
        );
        assert_eq!(response.status, 201, "create project {path}: {response}");
        let project = response.json();
        assert_eq!(project["path"], path, "{project}");
        project
    }

    /// Every issue of `project` (id or path), following the pages.
    pub fn all_issues(&self, project: &str) -> Vec<Value> {
        let mut issues = Vec::new();
        let mut page = 1;
        loop {
            let path = format!("/api/v4/projects/{project}/issues?per_page=100&page={page}");
            let response = self.get(&path);
            assert_eq!(response.status, 200, "GET {path}: {response}");
            let items = response.json();
            let items = items.as_array().expect("issue list is an array").clone();
            issues.extend(items);
            match response.header("x-next-page") {
                Some(next) if !next.is_empty() => {
                    page = next.parse().expect("X-Next-Page is a number");
                }
                _ => return issues,
            }
        }
    }

    /// One issue's JSON.
    pub fn issue(&self, project: &str, iid: u64) -> Value {
        self.get_json(&format!("/api/v4/projects/{project}/issues/{iid}"))
    }

    /// A new SMTP connection that has read the greeting.
    pub fn smtp(&self) -> SmtpClient {
        let (client, greeting) = SmtpClient::connect(self.smtp_addr);
        assert_eq!(greeting.code, 220, "greeting: {greeting}");
        client
    }

    /// A connection that said EHLO and upgraded with STARTTLS (then EHLO again).
    pub fn smtp_tls(&self) -> SmtpClient {
        let mut client = self.smtp();
        client.expect("EHLO client.example.org", 250);
        client.starttls();
        client.expect("EHLO client.example.org", 250);
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- mxdesk server log (last lines) ---\n{}",
                self.log_tail(40)
            );
        }
    }
}

/// Waits for `child` to exit, polling (the process has no other event to
/// wait on from std), up to `deadline`.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A port that was free a moment ago (for [`ServerOptions::real_public_url`]).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A whole HTTP response.
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self}"))
    }

    /// Asserts `status`, a JSON content type and a GitLab error body
    /// `{"message": ...}`; returns the message.
    pub fn assert_json_error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{self}");
        let content_type = self.header("content-type").unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "error content type {content_type:?}: {self}"
        );
        let body = self.json();
        let message = body
            .get("message")
            .unwrap_or_else(|| panic!("error body has no `message`: {self}"));
        assert!(!message.is_null(), "{self}");
        message.clone()
    }
}

impl std::fmt::Display for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self.text();
        let body: String = body.chars().take(2000).collect();
        write!(f, "HTTP {} {:?} {}", self.status, self.headers, body)
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: mxdesk-tests\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .expect("write request head");
    // A server refusing an oversized body may answer and close before it has
    // read it all: a failed body write is not the test's verdict, the
    // response is.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        // Keep what arrived before a reset; fail below if it is incomplete.
        if raw.is_empty() {
            panic!("{method} {path}: reading the response failed: {e}");
        }
    }
    parse_http_response(&raw).unwrap_or_else(|why| {
        panic!(
            "{method} {path}: malformed response ({why}): {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_http_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = get("content-length") {
        let length: usize = length.parse().map_err(|_| "bad content-length")?;
        if rest.len() < length {
            return Err(format!("body has {} of {length} bytes", rest.len()));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|e| e.to_string())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// ---------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// The enhanced status code (`5.1.1`) at the start of the last line.
    pub fn enhanced(&self) -> &str {
        self.lines
            .last()
            .and_then(|l| l.split(' ').next())
            .unwrap_or("")
    }

    /// Whether the reply is `code` with enhanced status `enhanced`.
    pub fn is(&self, code: u16, enhanced: &str) -> bool {
        self.code == code && self.enhanced() == enhanced
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i + 1 == self.lines.len() { ' ' } else { '-' };
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{}{sep}{line}", self.code)?;
        }
        Ok(())
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// Only while upgrading.
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// The rustls client configuration trusting only the development CA.
pub fn tls_client_config() -> Arc<rustls::ClientConfig> {
    tls_client_config_versions(rustls::DEFAULT_VERSIONS)
}

/// Like [`tls_client_config`], limited to the given protocol versions.
pub fn tls_client_config_versions(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca_path = cert_path("ca.pem");
    for cert in CertificateDer::pem_file_iter(&ca_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", ca_path.display()))
    {
        roots
            .add(cert.expect("CA certificate PEM"))
            .expect("add CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// A blocking, line-based SMTP client: the project's own test client.
pub struct SmtpClient {
    stream: Stream,
    /// Bytes read but not yet consumed as reply lines.
    buf: Vec<u8>,
}

impl SmtpClient {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> (SmtpClient, Reply) {
        let mut client = SmtpClient::try_connect(addr).unwrap_or_else(|e| panic!("{e}"));
        let greeting = client.reply();
        (client, greeting)
    }

    /// Connects without reading anything.
    pub fn try_connect(addr: SocketAddr) -> io::Result<SmtpClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(SmtpClient {
            stream: Stream::Plain(stream),
            buf: Vec::new(),
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Bytes received but not yet read as replies.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Sends bytes exactly as given.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one complete (possibly multi-line) reply.
    pub fn try_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            let bad = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("malformed reply line {line:?}"),
                )
            };
            if line.len() < 3 || !line.is_char_boundary(3) {
                return Err(bad());
            }
            let code: u16 = line[..3].parse().map_err(|_| bad())?;
            let sep = line.as_bytes().get(3).copied().unwrap_or(b' ');
            let text = line.get(4..).unwrap_or("").to_string();
            lines.push(text);
            match sep {
                b' ' => return Ok(Reply { code, lines }),
                b'-' => continue,
                _ => return Err(bad()),
            }
        }
    }

    /// Reads one reply; fails the test when there is none.
    pub fn reply(&mut self) -> Reply {
        self.try_reply()
            .unwrap_or_else(|e| panic!("reading an SMTP reply failed: {e}"))
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).take(pos).collect();
                return String::from_utf8(line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed (unparsed: {:?})",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command line (CRLF appended) and reads its reply.
    pub fn try_cmd(&mut self, line: &str) -> io::Result<Reply> {
        self.send_raw(format!("{line}\r\n").as_bytes())?;
        self.try_reply()
    }

    pub fn cmd(&mut self, line: &str) -> Reply {
        self.try_cmd(line)
            .unwrap_or_else(|e| panic!("SMTP command {line:?} failed: {e}"))
    }

    /// Sends `line` and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line:?} got {reply}");
        reply
    }

    /// STARTTLS: expects `220`, then the TLS handshake against the dev CA
    /// with server name `mx.desk.test`.
    pub fn starttls(&mut self) {
        let reply = self.cmd("STARTTLS");
        assert!(reply.is(220, "2.0.0"), "STARTTLS got {reply}");
        self.upgrade_tls().expect("TLS handshake");
    }

    /// The TLS handshake alone (after a `220` to STARTTLS). Nothing may have
    /// arrived in plaintext after the `220`.
    pub fn upgrade_tls(&mut self) -> io::Result<()> {
        self.upgrade_tls_with(tls_client_config())
    }

    /// [`SmtpClient::upgrade_tls`] with a given client configuration.
    pub fn upgrade_tls_with(&mut self, config: Arc<rustls::ClientConfig>) -> io::Result<()> {
        assert!(
            self.buf.is_empty(),
            "server sent plaintext after its 220 to STARTTLS: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let Stream::Plain(mut tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            panic!("STARTTLS on a connection that is not plaintext");
        };
        let name = ServerName::try_from(HOSTNAME).expect("server name");
        let mut conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        self.stream = Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
        Ok(())
    }

    /// The negotiated TLS protocol version, if any.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.stream {
            Stream::Tls(s) => s.conn.protocol_version(),
            _ => None,
        }
    }

    /// MAIL, RCPT for each recipient (each must get `250`), DATA, the
    /// message (dot-stuffed here) and the final dot. Returns the reply to the
    /// end of data.
    pub fn send_mail(&mut self, from: &str, rcpts: &[&str], data: &[u8]) -> Reply {
        self.try_send_mail(from, rcpts, data)
            .unwrap_or_else(|e| panic!("sending mail failed: {e}"))
    }

    /// [`SmtpClient::send_mail`] that reports refusals and I/O errors
    /// instead of failing the test.
    pub fn try_send_mail(&mut self, from: &str, rcpts: &[&str], data: &[u8]) -> io::Result<Reply> {
        let refused =
            |what: &str, reply: Reply| io::Error::other(format!("{what} refused: {reply}"));
        let reply = self.try_cmd(&format!("MAIL FROM:<{from}>"))?;
        if reply.code != 250 {
            return Err(refused("MAIL", reply));
        }
        for rcpt in rcpts {
            let reply = self.try_cmd(&format!("RCPT TO:<{rcpt}>"))?;
            if reply.code != 250 {
                let _ = self.try_cmd("RSET");
                return Err(refused("RCPT", reply));
            }
        }
        let reply = self.try_cmd("DATA")?;
        if reply.code != 354 {
            return Err(refused("DATA", reply));
        }
        self.send_raw(&dot_stuff(data))?;
        self.try_reply()
    }

    /// Reads until the server closes the connection; returns what arrived.
    /// An error other than EOF (e.g. a reset) also counts as closed.
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return rest,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    panic!(
                        "server did not close the connection within {IO_TIMEOUT:?}; got {:?}",
                        String::from_utf8_lossy(&rest)
                    )
                }
                Err(_) => return rest,
            }
        }
    }
}

/// Dot-stuffs `data` (RFC 5321 §4.5.2), makes sure it ends in CRLF, and
/// appends the end-of-data line.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut at_line_start = true;
    for &byte in data {
        if at_line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        at_line_start = byte == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A minimal valid message with `subject`, a unique Message-ID and `body`.
pub fn simple_message(subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Reporter <reporter@example.org>\r\n\
         To: acme@desk.test\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{message_id}>\r\n\
         Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {body}\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------
// Outside tools
// ---------------------------------------------------------------------------

/// The Python interpreter with python-gitlab: `MXDESK_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("MXDESK_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// swaks: `MXDESK_SWAKS`, else `swaks` on PATH.
pub fn swaks() -> String {
    std::env::var("MXDESK_SWAKS")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "swaks".to_string())
}

/// How to get the outside tools when one is missing.
pub const INSTALL_HINT: &str =
    "run `bash tests/run-all.sh` (it installs swaks, libnet-ssleay-perl \
     and a virtualenv with python-gitlab, and sets MXDESK_PYTHON / MXDESK_SWAKS), or install them \
     yourself: `apt-get install swaks libnet-ssleay-perl` and `pip install python-gitlab`";
