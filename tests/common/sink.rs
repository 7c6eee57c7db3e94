//! The outbound relay of the conversation tests: `tests/sink.py`, a real SMTP
//! server (aiosmtpd) on loopback that stores every accepted message as
//! `NNNNNN.eml` with its envelope in `NNNNNN.json`.
//!
//! Include it with `#[path = "common/sink.rs"] mod sink;`. It is
//! self-contained: it does not need the rest of the harness.
//!
//! Readiness is the `sink listening on …` line; arrivals are waited for by
//! polling the directory for a condition, never by a fixed sleep.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use mail_parser::{Address, HeaderValue, MessageParser};
use tempfile::TempDir;

/// How long the sink may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the directory is looked at while waiting for mail.
const POLL: Duration = Duration::from_millis(20);

/// The Python interpreter that has aiosmtpd: `MXDESK_PYTHON` (set by
/// `tests/run-all.sh`), else `target/pyenv/bin/python`, else `python3`.
/// Fails the test with the way to get aiosmtpd when none has it.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<Result<String, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let mut candidates = Vec::new();
        if let Some(p) = std::env::var("MXDESK_PYTHON")
            .ok()
            .filter(|p| !p.is_empty())
        {
            candidates.push(p);
        }
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
        if venv.exists() {
            candidates.push(venv.display().to_string());
        }
        candidates.push("python3".to_string());
        let mut tried = Vec::new();
        for candidate in candidates {
            let ok = Command::new(&candidate)
                .args(["-c", "import aiosmtpd"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
        Err(format!(
            "no Python with aiosmtpd (tried {tried:?}): run `bash tests/run-all.sh` \
             (it creates target/pyenv with aiosmtpd and sets MXDESK_PYTHON)"
        ))
    });
    match found {
        Ok(python) => python,
        Err(why) => panic!("{why}"),
    }
}

/// A port that was free a moment ago (for a relay that is down at first).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A running `tests/sink.py`.
pub struct Sink {
    child: Option<Child>,
    /// The sink runs until its stdin closes: dropping this ends it.
    stdin: Option<ChildStdin>,
    dir: TempDir,
    pub addr: SocketAddr,
}

impl Sink {
    /// A sink on an ephemeral port.
    pub fn start() -> Sink {
        Sink::spawn(None, false)
    }

    /// A sink on a given port (a relay that comes back).
    pub fn start_on(port: u16) -> Sink {
        Sink::spawn(Some(port), false)
    }

    /// A sink that answers every RCPT with `550 5.1.1`.
    pub fn start_rejecting() -> Sink {
        Sink::spawn(None, true)
    }

    fn spawn(port: Option<u16>, reject: bool) -> Sink {
        let dir = tempfile::Builder::new()
            .prefix("mxdesk-sink-")
            .tempdir()
            .expect("create sink dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sink.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .arg(dir.path())
            .arg(port.unwrap_or(0).to_string());
        if reject {
            command.arg("--reject-rcpt");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {}: {e}", python(), script.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut sink = Sink {
            child: Some(child),
            stdin,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("sink listening on ") {
                        sink.addr = addr.trim().parse().expect("sink address");
                        // Drain stderr so a chatty sink can never block on it.
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                        });
                        return sink;
                    }
                }
                Err(e) => {
                    if let Some(mut child) = sink.child.take() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    let mut err = String::new();
                    let _ = stderr.read_to_string(&mut err);
                    panic!("the SMTP sink did not start ({e:?}); stderr:\n{err}");
                }
            }
        }
    }

    /// `outbound.relay = "127.0.0.1:PORT"` for the server's extra TOML.
    pub fn relay_toml(&self) -> String {
        format!("outbound.relay = \"{}\"", self.addr)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every mail stored so far, in arrival order.
    pub fn mails(&self) -> Vec<SinkMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| SinkMail::load(p)).collect()
    }

    /// How many mails are stored.
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    }

    /// Waits until at least `n` mails are stored; returns all of them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SinkMail> {
        self.wait_until(timeout, &format!("{n} mails"), |mails| mails.len() >= n)
    }

    /// Waits until `done` holds for the stored mails; returns them. Fails
    /// the test with what did arrive when `timeout` passes first.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[SinkMail]) -> bool,
    ) -> Vec<SinkMail> {
        let deadline = Instant::now() + timeout;
        let mut seen = usize::MAX;
        let mut mails = Vec::new();
        loop {
            let count = self.count();
            if count != seen {
                seen = count;
                mails = self.mails();
                if done(&mails) {
                    return mails;
                }
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = mails.iter().map(SinkMail::summary).collect();
                panic!(
                    "sink: waited {timeout:?} for {what}; {} arrived:\n{}",
                    mails.len(),
                    summary.join("\n")
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One accepted message: its envelope and what mail-parser read in it.
#[derive(Debug, Clone)]
pub struct SinkMail {
    /// `NNNNNN`, the arrival number.
    pub name: String,
    pub raw: Vec<u8>,
    /// The envelope `MAIL FROM` address.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Top-level header fields as sent: (name, raw value without the
    /// trailing CRLF, still folded).
    pub headers: Vec<(String, String)>,
    pub subject: Option<String>,
    /// (display name, address) of each From/To/Cc/Reply-To mailbox.
    pub from: Vec<(Option<String>, String)>,
    pub to: Vec<(Option<String>, String)>,
    pub cc: Vec<(Option<String>, String)>,
    pub reply_to: Vec<(Option<String>, String)>,
    /// Message-IDs without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The first text/plain body (CRLF as LF), or "".
    pub text: String,
    pub html: Option<String>,
}

impl SinkMail {
    fn load(eml: &Path) -> SinkMail {
        let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("read {}: {e}", eml.display()));
        let envelope_path = eml.with_extension("json");
        let envelope: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&envelope_path)
                .unwrap_or_else(|e| panic!("read {}: {e}", envelope_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", envelope_path.display()));
        let name = eml
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let message = MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("sink mail {name} is not a parseable message"));
        let mailboxes = |address: Option<&Address<'_>>| -> Vec<(Option<String>, String)> {
            address
                .map(|a| {
                    a.iter()
                        .map(|addr| {
                            (
                                addr.name().map(str::to_string),
                                addr.address().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let ids = |value: &HeaderValue<'_>| -> Vec<String> {
            value
                .as_text_list()
                .map(|l| l.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        };
        SinkMail {
            mail_from: envelope["mail_from"].as_str().unwrap_or("").to_string(),
            rcpt_tos: envelope["rcpt_tos"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            headers: message
                .headers_raw()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.strip_suffix("\r\n").unwrap_or(v).to_string(),
                    )
                })
                .collect(),
            subject: message.subject().map(str::to_string),
            from: mailboxes(message.from()),
            to: mailboxes(message.to()),
            cc: mailboxes(message.cc()),
            reply_to: mailboxes(message.reply_to()),
            message_id: message.message_id().map(str::to_string),
            in_reply_to: ids(message.in_reply_to()),
            references: ids(message.references()),
            text: message
                .body_text(0)
                .map(|t| t.replace("\r\n", "\n"))
                .unwrap_or_default(),
            html: message.body_html(0).map(|h| h.into_owned()),
            raw,
            name,
        }
    }

    /// Every value of header `name` (case-insensitive), unfolded and trimmed.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.replace("\r\n", "").replace('\n', "").trim().to_string())
            .collect()
    }

    /// The first value of header `name`, unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// The raw header section (up to the first empty line).
    pub fn raw_header_section(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        let end = text.find("\r\n\r\n").unwrap_or(text.len());
        text[..end].to_string()
    }

    /// Whether the mail was sent to `address` (envelope).
    pub fn is_for(&self, address: &str) -> bool {
        self.rcpt_tos
            .iter()
            .any(|r| r.eq_ignore_ascii_case(address))
    }

    /// One line for failure messages.
    pub fn summary(&self) -> String {
        format!(
            "  {} from <{}> to {:?} subject {:?} auto-submitted {:?} text {:?}",
            self.name,
            self.mail_from,
            self.rcpt_tos,
            self.subject,
            self.header("Auto-Submitted"),
            self.text.chars().take(80).collect::<String>()
        )
    }
}
