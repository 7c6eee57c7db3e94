//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the
//! stable-Rust corpus replay test (`tests/fuzz_corpus.rs`).
//!
//! Each function takes arbitrary bytes and must never panic for any input;
//! a panic (including a failed invariant assertion below) is a finding.
//! Besides "no panic", each entry point checks the properties the rest of
//! mxdesk relies on (PITFALLS.md): sanitised header text carries no CR/LF or
//! control characters, accepted addresses are plausible, every SMTP reply is
//! a well-formed `ddd` line ending in CRLF, and a session ends when the
//! client's stream ends.
//!
//! The SMTP target runs a real [`run_session`] over [`tokio::io::duplex`]
//! against a real [`Desk`] on a real [`Store`]. That state is created once per
//! process (see `Harness`) and survives from one input to the next, as a
//! real server's would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::address;
use crate::config::Config;
use crate::desk::Desk;
use crate::ingest::{parse_message, sanitize_header_text, trace_header, IngestLimits};
use crate::smtp::{run_session, SessionSettings, SmtpLimits};
use crate::store::{Store, WriteOp};

/// The mail domain the SMTP harness serves; project `acme` lives on it.
pub const DOMAIN: &str = "desk.test";
/// The project the SMTP harness creates, reachable as `acme@desk.test`.
pub const PROJECT_PATH: &str = "acme";
/// Message size limit of the SMTP harness (small, so the fuzzer reaches it).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Command and data timeouts of the SMTP harness. Sessions are ended by EOF,
/// never by these: seeing the idle-timeout reply is reported as a hang.
const SESSION_TIMEOUT: Duration = Duration::from_secs(5);
/// After this many bytes of SMTP input, the harness starts over on a fresh,
/// empty store so a long fuzzing run does not fill memory or disk.
const STORE_ROTATION_BYTES: u64 = 64 * 1024 * 1024;
/// Title and name cap used by ingest (GitLab's title limit).
const MAX_HEADER_CHARS: usize = 255;

/// Parses `data` as a whole message under the default ingest limits and
/// checks what ingest promises about the result; also runs the header-text
/// sanitiser and the address parser over `data` read as lossy UTF-8.
pub fn ingest_message(data: &[u8]) {
    if let Ok(parsed) = parse_message(data, IngestLimits::default()) {
        check_header_text("title", &parsed.title, MAX_HEADER_CHARS);
        assert!(!parsed.title.is_empty(), "empty title");
        if let Some(name) = &parsed.from_name {
            check_header_text("from_name", name, MAX_HEADER_CHARS);
            assert!(!name.is_empty(), "empty from_name kept");
        }
        if let Some(from) = &parsed.from_address {
            assert!(
                address::parse(from).is_some(),
                "from_address {from:?} does not parse as an address"
            );
        }
        if let Some(id) = &parsed.message_id {
            assert!(
                !id.is_empty()
                    && id.len() <= 998
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>'),
                "message_id {id:?} is not a clean id"
            );
        }
        assert!(!parsed.dedup_key.is_empty(), "empty dedup key");
        assert!(
            parsed.description.len() <= 1024 * 1024,
            "description longer than 1 MiB"
        );
        for attachment in &parsed.attachments {
            check_header_text("attachment name", &attachment.name, MAX_HEADER_CHARS);
            assert!(
                !attachment.name.is_empty() && !attachment.name.contains(['/', '\\']),
                "attachment name {:?}",
                attachment.name
            );
            check_header_text(
                "attachment content type",
                &attachment.content_type,
                MAX_HEADER_CHARS,
            );
        }
    }
    let text = String::from_utf8_lossy(data);
    header_text(&text);
    mail_address(&text);
}

/// Runs the address parser, the domain and project-path checks, the
/// header-text sanitiser and the `Received:` trace builder over `data`
/// read as lossy UTF-8.
pub fn address(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    mail_address(&text);
    header_text(&text);
    if address::is_valid_project_path(&text) {
        // As documented: lower-case letters, digits, `-`, `_`, `.`, starting
        // with a letter or digit (addresses are lower-cased before lookup).
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        assert!(
            text.bytes().next().is_some_and(allowed)
                && text
                    .bytes()
                    .all(|b| allowed(b) || matches!(b, b'-' | b'_' | b'.')),
            "project path {text:?} accepted with other characters"
        );
    }
    // Every peer-supplied value of the trace header is untrusted: none may
    // add a line to the header.
    let header = trace_header(
        &text,
        &text,
        &text,
        &text,
        data.len().is_multiple_of(2),
        "date",
    );
    assert_eq!(
        header.matches("\r\n").count(),
        3,
        "trace header lines injected: {header:?}"
    );
    assert_eq!(
        header.matches(['\r', '\n']).count(),
        6,
        "bare CR or LF in trace header: {header:?}"
    );
}

fn mail_address(text: &str) {
    if let Some(parsed) = address::parse(text) {
        assert!(
            !parsed.mailbox.is_empty() && !parsed.mailbox.contains('+'),
            "mailbox {:?}",
            parsed.mailbox
        );
        for part in std::iter::once(&parsed.mailbox).chain(parsed.tag.as_ref()) {
            assert!(
                !part.chars().any(|c| c.is_control() || c.is_whitespace()),
                "control or space in local part {part:?}"
            );
        }
        assert!(
            address::is_valid_domain(&parsed.domain) && !parsed.domain.ends_with('.'),
            "domain {:?} of {text:?} is not a valid host name",
            parsed.domain
        );
        assert!(
            !parsed.domain.bytes().any(|b| b.is_ascii_uppercase()),
            "domain {:?} not lower-cased",
            parsed.domain
        );
    }
    if address::is_valid_domain(text) {
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
            "domain {text:?} accepted with other characters"
        );
    }
}

fn header_text(text: &str) {
    check_header_text("sanitised text", &sanitize_header_text(text, 255), 255);
    let small = text.len() % 17;
    check_header_text("sanitised text", &sanitize_header_text(text, small), small);
}

/// What [`sanitize_header_text`] promises: no control characters, no white
/// space but single inner spaces, at most `max_chars` characters.
fn check_header_text(what: &str, text: &str, max_chars: usize) {
    assert!(
        text.chars().count() <= max_chars,
        "{what} longer than {max_chars} characters: {text:?}"
    );
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || (c.is_whitespace() && c != ' ')),
        "{what} has control characters or line breaks: {text:?}"
    );
    assert!(
        !text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  "),
        "{what} has untrimmed spaces: {text:?}"
    );
}

/// Feeds `data` as everything a client sends into one SMTP session with a
/// real [`Desk`] and [`Store`], then closes the client's write half. Server
/// output is read concurrently (so the pipe never fills up) and checked:
/// a `220` greeting, only well-formed reply lines, no idle timeout (the
/// session must end on EOF) and no `451` (nothing here may fail to store).
pub fn smtp_session(data: &[u8]) {
    smtp_transcript(data);
}

/// Like [`smtp_session`], and returns what the server wrote.
pub fn smtp_transcript(data: &[u8]) -> Vec<u8> {
    let harness = Harness::get();
    let desk = harness.desk(data.len());
    let settings = harness.settings.clone();
    let output = harness.runtime.block_on(async move {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 40000));
        let session = run_session(server, peer, desk, settings, CancellationToken::new());
        let write = async move {
            // The session may hang up first (QUIT, too many errors): then
            // the rest of the input cannot be written, which is fine.
            let _ = to_server.write_all(data).await;
            let _ = to_server.shutdown().await;
        };
        let read = async move {
            let mut output = Vec::new();
            let _ = from_server.read_to_end(&mut output).await;
            output
        };
        let ((), (), output) = tokio::join!(session, write, read);
        output
    });
    check_smtp_output(&output);
    output
}

fn check_smtp_output(output: &[u8]) {
    let shown = || String::from_utf8_lossy(&output[..output.len().min(4096)]).into_owned();
    assert!(
        output.starts_with(b"220 "),
        "no 220 greeting: {:?}",
        shown()
    );
    for line in output.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r\n").unwrap_or_else(|| {
            panic!(
                "reply line not ending in CRLF {:?} in {:?}",
                String::from_utf8_lossy(line),
                shown()
            )
        });
        let well_formed = line.len() >= 4
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
            && !line.contains(&b'\r');
        assert!(
            well_formed,
            "malformed reply line {:?} in {:?}",
            String::from_utf8_lossy(line),
            shown()
        );
        assert!(
            !line.starts_with(b"421 4.4.2"),
            "session waited for its idle timeout instead of ending on EOF: {:?}",
            shown()
        );
        assert!(
            !line.starts_with(b"451"),
            "temporary failure (a storage error or a panic in a blocking task): {:?}",
            shown()
        );
    }
}

/// Process-wide state of the SMTP target: one runtime, fixed settings, and
/// the current store generation.
struct Harness {
    runtime: tokio::runtime::Runtime,
    config: Arc<Config>,
    settings: Arc<SessionSettings>,
    current: Mutex<Generation>,
}

/// One store with project `acme`, replaced once enough input went through.
struct Generation {
    desk: Arc<Desk>,
    input_bytes: u64,
}

impl Harness {
    fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::new)
    }

    fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("ok: building the fuzzing runtime is setup, not input handling"); // ok: fuzz harness setup, not input
        let mut config = Config {
            domains: vec![DOMAIN.to_string()],
            ..Config::default()
        };
        config.smtp.hostname = format!("mx.{DOMAIN}");
        config.smtp.max_message_size = MAX_MESSAGE_SIZE;
        let config = Arc::new(config);
        let settings = Arc::new(SessionSettings {
            hostname: config.smtp.hostname.clone(),
            limits: SmtpLimits {
                max_message_size: MAX_MESSAGE_SIZE,
                max_recipients: config.smtp.max_recipients,
                command_timeout: SESSION_TIMEOUT,
                data_timeout: SESSION_TIMEOUT,
                max_bad_commands: config.smtp.max_bad_commands,
            },
            tls: None,
        });
        let desk = new_desk(&runtime, &config);
        Harness {
            runtime,
            config,
            settings,
            current: Mutex::new(Generation {
                desk,
                input_bytes: 0,
            }),
        }
    }

    /// The desk to use for an input of `len` bytes, starting a new store
    /// when the current one has taken enough input.
    fn desk(&self, len: usize) -> Arc<Desk> {
        // A panic in an earlier input (replay test) may have poisoned the
        // lock; the generation is still usable.
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.input_bytes += len as u64;
        if current.input_bytes > STORE_ROTATION_BYTES {
            *current = Generation {
                desk: new_desk(&self.runtime, &self.config),
                input_bytes: len as u64,
            };
        }
        current.desk.clone()
    }
}

/// Opens a fresh store in a new private directory, creates project `acme`,
/// and unlinks the files at once: the open database keeps working and its
/// space is given back when it is dropped or the process exits, so fuzzing
/// leaves nothing behind. Uses `/dev/shm` when present, where fsync is cheap.
fn new_desk(runtime: &tokio::runtime::Runtime, config: &Arc<Config>) -> Arc<Desk> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base.join(format!(
        "mxdesk-fuzz-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).expect("ok: creating the fuzzing store directory is setup"); // ok: fuzz harness setup, not input
    let path = dir.join("mxdesk.redb");
    let store = Store::open(&path, crate::store::StoreSettings::default())
        .expect("ok: opening the fuzzing store is setup"); // ok: fuzz harness setup, not input
    runtime
        .block_on(store.write(WriteOp::CreateProject {
            name: "Acme".to_string(),
            path: PROJECT_PATH.to_string(),
        }))
        .expect("ok: creating the fuzzing project is setup"); // ok: fuzz harness setup, not input
                                                              // Best effort: where open files cannot be removed, they stay behind.
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    Arc::new(Desk::new(store, config.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_harness_accepts_a_message() {
        let output = smtp_transcript(
            b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<acme@desk.test>\r\n\
              DATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n",
        );
        let output = String::from_utf8_lossy(&output);
        assert!(output.contains("250 2.0.0 Message queued as"), "{output}");
        assert!(output.ends_with("221 2.0.0 Bye\r\n"), "{output}");
    }

    #[test]
    fn smtp_harness_ends_on_eof_mid_data() {
        let output = smtp_transcript(
            b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<acme@desk.test>\r\nDATA\r\nSubject: x\r\n",
        );
        assert!(String::from_utf8_lossy(&output).contains("354 "));
    }

    #[test]
    fn ingest_harness_takes_anything() {
        ingest_message(b"");
        ingest_message(b"Subject: =?utf-8?q?a=0D=0Ab?=\r\n\r\nx\r\n");
        address(b"a+b@Example.COM.");
    }
}
