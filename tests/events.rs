//! The agent event feed, `/api/v4/service_desk/events`, against the real
//! server: the long-poll wakes within a second of the SMTP `250` (and
//! reports how long it took), cursors resume exactly once and in order across
//! a restart, callers see only the events of tickets they may see, and the
//! Server-Sent Events stream delivers and resumes with `Last-Event-ID`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Outbound mail goes to a port where nothing listens: thank-you mails
/// stay queued instead of looking up the MX of example.org.
const NO_RELAY: &str = "outbound.relay = \"127.0.0.1:9\"";

fn desk() -> TestServer {
    let server = TestServer::start_with(NO_RELAY);
    server.create_project("acme");
    server
}

/// One mail to acme@ over a fresh session; returns when the `250` is read.
fn send_mail(server: &TestServer, subject: &str, message_id: &str) -> Instant {
    let mut client = server.smtp();
    client.expect("EHLO client.example.org", 250);
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test"],
        &simple_message(subject, message_id, "Hello, something is broken."),
    );
    let accepted = Instant::now();
    assert_eq!(reply.code, 250, "end of data: {reply}");
    let _ = client.try_cmd("QUIT");
    accepted
}

fn get_as(server: &TestServer, token: &str, path: &str) -> HttpResponse {
    http_request(
        server.api_addr,
        "GET",
        path,
        &[("PRIVATE-TOKEN", token)],
        b"",
    )
}

/// One feed request; returns the events and the next cursor.
fn poll(server: &TestServer, token: &str, query: &str) -> (Vec<Value>, String) {
    let path = format!("/api/v4/service_desk/events?{query}");
    let response = get_as(server, token, &path);
    assert_eq!(response.status, 200, "GET {path}: {response}");
    let body = response.json();
    let events = body["events"].as_array().expect("events array").clone();
    let cursor = body["cursor"].as_str().expect("cursor string").to_string();
    (events, cursor)
}

/// Reads the feed from `after` (the beginning when `None`) to its current
/// end, `limit` events at a time.
fn drain(
    server: &TestServer,
    token: &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    let mut cursor = after.map(str::to_string);
    loop {
        let query = match &cursor {
            Some(c) => format!("after={c}&limit={limit}"),
            None => format!("limit={limit}"),
        };
        let (events, next) = poll(server, token, &query);
        let done = events.is_empty();
        all.extend(events);
        if done && cursor.as_deref() == Some(next.as_str()) {
            return (all, next);
        }
        cursor = Some(next);
    }
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq is a number"))
        .collect()
}

fn assert_strictly_increasing(events: &[Value]) {
    let seqs = seqs(events);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "event seqs are not strictly increasing: {seqs:?}"
    );
}

#[test]
fn long_poll_returns_within_a_second_of_the_250() {
    let server = desk();
    let (_, cursor) = drain(&server, ADMIN_TOKEN, None, 1000);

    let (done_tx, done_rx) = mpsc::channel();
    let addr = server.api_addr;
    let path = format!("/api/v4/service_desk/events?after={cursor}&wait=10");
    let started = Instant::now();
    std::thread::spawn(move || {
        let response = http_request(addr, "GET", &path, &[("PRIVATE-TOKEN", ADMIN_TOKEN)], b"");
        let _ = done_tx.send((Instant::now(), response));
    });
    // The poll must be parked, not answered: nothing has happened after the
    // cursor, so an answer now would be an empty one.
    assert!(
        done_rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the long-poll answered before any event"
    );

    let accepted = send_mail(&server, "Printer on fire", "latency-1@example.org");
    let (returned, response) = done_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the long-poll answered");
    assert_eq!(response.status, 200, "{response}");
    let latency = returned.saturating_duration_since(accepted);
    println!(
        "long-poll wake latency after the SMTP 250: {:.1} ms (poll open for {:.0} ms)",
        latency.as_secs_f64() * 1000.0,
        returned.duration_since(started).as_secs_f64() * 1000.0
    );
    assert!(
        latency < Duration::from_secs(1),
        "the long-poll took {latency:?} after the 250"
    );
    assert!(returned.duration_since(started) < Duration::from_secs(9));

    let body = response.json();
    let events = body["events"].as_array().expect("events");
    let opened = events
        .iter()
        .find(|e| e["type"] == "issue_opened")
        .unwrap_or_else(|| panic!("no issue_opened in {body}"));
    assert_eq!(opened["issue_iid"], 1);
    assert_eq!(opened["issue"]["title"], "Printer on fire");
    assert_eq!(opened["issue"]["confidential"], true);
    assert_eq!(
        opened["id"].as_str(),
        Some(body["cursor"].as_str().unwrap())
    );
    for key in [
        "id",
        "seq",
        "type",
        "project_id",
        "issue_iid",
        "note_id",
        "internal",
        "created_at",
    ] {
        assert!(opened.get(key).is_some(), "event lacks {key}: {opened}");
    }
}

#[test]
fn an_empty_wait_times_out_with_the_same_cursor() {
    let server = desk();
    let (_, cursor) = drain(&server, ADMIN_TOKEN, None, 1000);
    let started = Instant::now();
    let (events, next) = poll(&server, ADMIN_TOKEN, &format!("after={cursor}&wait=0.5"));
    let took = started.elapsed();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(next, cursor);
    assert!(
        took >= Duration::from_millis(450),
        "returned after {took:?}"
    );
}

#[test]
fn bad_cursor_wait_and_limit_are_400_with_a_message() {
    let server = desk();
    for query in [
        "after=nonsense",
        "after=e-1",
        "after=12",
        "wait=61",
        "wait=-1",
        "wait=soon",
        "limit=0",
        "limit=-5",
        "limit=many",
    ] {
        let response = server.get(&format!("/api/v4/service_desk/events?{query}"));
        response.assert_json_error(400);
    }
    let response = http_request(
        server.api_addr,
        "GET",
        "/api/v4/service_desk/events",
        &[],
        b"",
    );
    response.assert_json_error(401);
    let response = server.post_json("/api/v4/service_desk/events", &json!({}));
    response.assert_json_error(405);
}

#[test]
fn resume_after_a_restart_yields_every_event_exactly_once_in_order() {
    let mut server = desk();
    for i in 1..=3 {
        send_mail(
            &server,
            &format!("Before restart {i}"),
            &format!("before-{i}@example.org"),
        );
    }
    let note = server.post_json(
        "/api/v4/projects/acme/issues/1/notes",
        &json!({ "body": "Looking into it" }),
    );
    assert_eq!(note.status, 201, "{note}");
    // Small pages, so the cursor is carried between many requests.
    let (before, cursor) = drain(&server, ADMIN_TOKEN, None, 2);
    assert!(before.len() >= 5, "{before:?}");

    server.restart();
    for i in 1..=2 {
        send_mail(
            &server,
            &format!("After restart {i}"),
            &format!("after-{i}@example.org"),
        );
    }
    let (after, end) = drain(&server, ADMIN_TOKEN, Some(&cursor), 2);
    let opened_after: Vec<u64> = after
        .iter()
        .filter(|e| e["type"] == "issue_opened")
        .map(|e| e["issue_iid"].as_u64().unwrap())
        .collect();
    assert_eq!(opened_after, vec![4, 5], "{after:?}");

    let mut resumed = before.clone();
    resumed.extend(after);
    assert_strictly_increasing(&resumed);
    // The whole log read in one go from the beginning, up to where the
    // resumed reading stopped (the outbox may append events meanwhile).
    let last = *seqs(&resumed).last().unwrap();
    let (whole, _) = drain(&server, ADMIN_TOKEN, None, 1000);
    let whole: Vec<Value> = whole
        .into_iter()
        .filter(|e| e["seq"].as_u64().unwrap() <= last)
        .collect();
    assert_eq!(seqs(&resumed), seqs(&whole));
    // And the final cursor gives nothing already read.
    let (rest, _) = poll(&server, ADMIN_TOKEN, &format!("after={end}"));
    assert!(seqs(&rest).iter().all(|s| *s > last), "{rest:?}");
}

/// A user with a token (`api` scope), a member of `project` at `level`
/// when given. Uses GitLab's admin routes.
fn user_with_token(
    server: &TestServer,
    username: &str,
    project_id: u64,
    level: Option<u8>,
) -> String {
    let user = server.post_json(
        "/api/v4/users",
        &json!({
            "username": username,
            "name": username,
            "email": format!("{username}@example.org"),
            "password": "not-used-by-mxdesk-1",
        }),
    );
    assert_eq!(user.status, 201, "create user {username}: {user}");
    let user_id = user.json()["id"].as_u64().expect("user id");
    let token = server.post_json(
        &format!("/api/v4/users/{user_id}/personal_access_tokens"),
        &json!({ "name": "feed", "scopes": ["api"] }),
    );
    assert_eq!(token.status, 201, "create token: {token}");
    if let Some(level) = level {
        let member = server.post_json(
            &format!("/api/v4/projects/{project_id}/members"),
            &json!({ "user_id": user_id, "access_level": level }),
        );
        assert_eq!(member.status, 201, "add member: {member}");
    }
    token.json()["token"]
        .as_str()
        .expect("token value")
        .to_string()
}

#[test]
fn guests_and_outsiders_never_see_confidential_tickets_or_internal_notes() {
    let server = desk();
    let project_id = server.get_json("/api/v4/projects/acme")["id"]
        .as_u64()
        .unwrap();
    let guest = user_with_token(&server, "gina", project_id, Some(10));
    let reporter = user_with_token(&server, "rory", project_id, Some(20));
    let outsider = user_with_token(&server, "otto", project_id, None);

    // #1: opened by mail, confidential (GitLab's service desk default).
    send_mail(&server, "Secret invoice", "secret-1@example.org");
    // #2: public, with a public and an internal note.
    let public = server.post_json(
        "/api/v4/projects/acme/issues",
        &json!({ "title": "Public outage", "confidential": false }),
    );
    assert_eq!(public.status, 201, "{public}");
    assert_eq!(public.json()["iid"], 2);
    for (body, internal) in [("We are on it", false), ("Customer is VIP", true)] {
        let note = server.post_json(
            "/api/v4/projects/acme/issues/2/notes",
            &json!({ "body": body, "internal": internal }),
        );
        assert_eq!(note.status, 201, "{note}");
    }
    // A note on the confidential ticket.
    let note = server.post_json(
        "/api/v4/projects/acme/issues/1/notes",
        &json!({ "body": "Refund approved" }),
    );
    assert_eq!(note.status, 201, "{note}");

    let (all, end) = drain(&server, ADMIN_TOKEN, None, 1000);
    assert!(all.iter().any(|e| e["issue_iid"] == 1));
    assert!(all.iter().any(|e| e["internal"] == true));

    let (seen, cursor) = drain(&server, &guest, None, 1000);
    assert!(
        seen.iter()
            .any(|e| e["issue_iid"] == 2 && e["type"] == "issue_opened"),
        "the guest sees the public ticket: {seen:?}"
    );
    assert!(
        seen.iter().any(|e| e["note"]["body"] == "We are on it"),
        "the guest sees the public note: {seen:?}"
    );
    for event in &seen {
        assert_ne!(
            event["issue_iid"], 1,
            "guest saw a confidential ticket: {event}"
        );
        assert_ne!(
            event["internal"], true,
            "guest saw an internal note: {event}"
        );
        let text = event.to_string();
        for secret in ["Secret invoice", "Customer is VIP", "Refund approved"] {
            assert!(!text.contains(secret), "guest saw {secret:?}: {text}");
        }
    }
    // Filtered-out events still move the cursor to the end.
    assert_eq!(cursor, end);

    let (seen, cursor) = drain(&server, &outsider, None, 1000);
    assert!(
        seen.iter().all(|e| e["project_id"] != project_id),
        "a non-member saw events of the project: {seen:?}"
    );
    assert_eq!(cursor, end);

    let (seen, _) = drain(&server, &reporter, None, 1000);
    assert!(seen.iter().any(|e| e["issue_iid"] == 1), "{seen:?}");
    assert!(
        seen.iter().any(|e| e["note"]["body"] == "Customer is VIP"),
        "a reporter sees internal notes: {seen:?}"
    );
}

// ---------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------

/// One dispatched SSE event.
#[derive(Debug)]
struct SseEvent {
    id: String,
    event: String,
    data: Value,
}

/// A blocking reader of a chunked `text/event-stream` response.
struct SseClient {
    reader: BufReader<TcpStream>,
    /// Decoded body bytes not yet split into events.
    pending: Vec<u8>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl SseClient {
    fn open(server: &TestServer, path: &str, extra: &[(&str, &str)]) -> SseClient {
        let mut stream = TcpStream::connect(server.api_addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nPRIVATE-TOKEN: {ADMIN_TOKEN}\r\n",
            server.api_addr
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write request");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        SseClient {
            reader,
            pending: Vec::new(),
            status,
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads one chunk of the chunked body into `pending`.
    fn read_chunk(&mut self) {
        let mut size_line = String::new();
        self.reader.read_line(&mut size_line).expect("chunk size");
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        assert!(size > 0, "the stream ended");
        let mut chunk = vec![0u8; size + 2];
        self.reader.read_exact(&mut chunk).expect("chunk");
        self.pending.extend_from_slice(&chunk[..size]);
    }

    /// Whether the body ends (the last chunk) before any further event.
    fn ended(&mut self) -> bool {
        loop {
            let mut size_line = String::new();
            match self.reader.read_line(&mut size_line) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            let size = usize::from_str_radix(size_line.trim(), 16).unwrap_or(usize::MAX);
            if size == 0 {
                return true;
            }
            if size == usize::MAX {
                return false;
            }
            let mut chunk = vec![0u8; size + 2];
            if self.reader.read_exact(&mut chunk).is_err() {
                return false;
            }
            if String::from_utf8_lossy(&chunk).contains("data: ") {
                return false;
            }
        }
    }

    /// The next raw block (text up to a blank line), comments included.
    fn next_block(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..end + 2).collect();
                return String::from_utf8(block).expect("UTF-8 stream");
            }
            self.read_chunk();
        }
    }

    /// The next event that carries data (skips comments and id-only blocks).
    fn next_event(&mut self) -> SseEvent {
        loop {
            let block = self.next_block();
            let (mut id, mut event, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).expect("data is JSON"));
                }
            }
            if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                return SseEvent { id, event, data };
            }
        }
    }

    /// The next event of `kind`.
    fn next_of(&mut self, kind: &str) -> SseEvent {
        loop {
            let event = self.next_event();
            if event.event == kind {
                return event;
            }
        }
    }
}

#[test]
fn sse_stream_delivers_events_and_resumes_from_last_event_id() {
    let server = desk();
    let (_, cursor) = drain(&server, ADMIN_TOKEN, None, 1000);

    let path = format!("/api/v4/service_desk/events/stream?after={cursor}");
    let mut stream = SseClient::open(&server, &path, &[]);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    // The opening comment arrives before any event: the stream is live.
    assert!(stream.next_block().contains(": connected"));

    send_mail(&server, "Streamed one", "sse-1@example.org");
    let first = stream.next_of("issue_opened");
    assert_eq!(first.data["issue_iid"], 1);
    assert_eq!(first.data["id"].as_str(), Some(first.id.as_str()));
    assert_eq!(first.data["issue"]["title"], "Streamed one");
    drop(stream);

    send_mail(&server, "Streamed two", "sse-2@example.org");
    // Resume with Last-Event-ID on the plain path with Accept.
    let mut resumed = SseClient::open(
        &server,
        "/api/v4/service_desk/events",
        &[
            ("Accept", "text/event-stream"),
            ("Last-Event-ID", &first.id),
        ],
    );
    assert_eq!(resumed.status, 200);
    let next = resumed.next_event();
    let first_seq = first.data["seq"].as_u64().unwrap();
    assert!(
        next.data["seq"].as_u64().unwrap() > first_seq,
        "resumed at or before the last event: {next:?}"
    );
    let second = if next.event == "issue_opened" {
        next
    } else {
        resumed.next_of("issue_opened")
    };
    assert_eq!(second.data["issue_iid"], 2, "{second:?}");

    let bad = http_request(
        server.api_addr,
        "GET",
        "/api/v4/service_desk/events/stream",
        &[("PRIVATE-TOKEN", ADMIN_TOKEN), ("Last-Event-ID", "bogus")],
        b"",
    );
    bad.assert_json_error(400);
}

#[test]
fn parked_polls_and_streams_end_promptly_when_the_server_stops() {
    let mut server = desk();
    let (_, cursor) = drain(&server, ADMIN_TOKEN, None, 1000);
    let (done_tx, done_rx) = mpsc::channel();
    let addr = server.api_addr;
    let path = format!("/api/v4/service_desk/events?after={cursor}&wait=60");
    std::thread::spawn(move || {
        let response = http_request(addr, "GET", &path, &[("PRIVATE-TOKEN", ADMIN_TOKEN)], b"");
        let _ = done_tx.send(response);
    });
    let mut stream = SseClient::open(
        &server,
        &format!("/api/v4/service_desk/events/stream?after={cursor}"),
        &[],
    );
    assert!(stream.next_block().contains(": connected"));
    assert!(done_rx.recv_timeout(Duration::from_millis(300)).is_err());

    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for the feed",
        started.elapsed()
    );
    let response = done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the long-poll answered");
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(response.json()["events"], json!([]));
    assert_eq!(response.json()["cursor"], cursor);
    assert!(stream.ended(), "the stream did not end");
}
