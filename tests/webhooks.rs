//! Project hooks against the real server and a real HTTP receiver (a std
//! `TcpListener` in a test thread that records each request): GitLab's
//! headers and payloads for tickets opened by mail and by the API, the
//! token, retries while the receiver is down (also across a restart), and no
//! confidential ticket reaching a hook that did not ask for them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Outbound mail goes to a port where nothing listens: thank-you mails
/// stay queued instead of looking up the MX of example.org.
const NO_RELAY: &str = "outbound.relay = \"127.0.0.1:9\"";
/// How long a hook delivery may take to arrive.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

fn desk() -> TestServer {
    let server = TestServer::start_with(NO_RELAY);
    server.create_project("acme");
    server
}

fn send_mail(server: &TestServer, subject: &str, message_id: &str) {
    let mut client = server.smtp();
    client.expect("EHLO client.example.org", 250);
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test"],
        &simple_message(subject, message_id, "Please help."),
    );
    assert_eq!(reply.code, 250, "end of data: {reply}");
    let _ = client.try_cmd("QUIT");
}

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver answering `200` to every request.
struct Receiver {
    addr: SocketAddr,
    requests: mpsc::Receiver<Received>,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").expect("bind receiver"))
    }

    fn on(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().expect("receiver address");
        let (tx, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(request) = read_request(stream) else {
                    continue;
                };
                if tx.send(request).is_err() {
                    return;
                }
            }
        });
        Receiver { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn next(&self) -> Received {
        self.requests
            .recv_timeout(DELIVERY_TIMEOUT)
            .unwrap_or_else(|_| panic!("no webhook within {DELIVERY_TIMEOUT:?}"))
    }
}

/// Reads one request (Content-Length body) and answers `200`.
fn read_request(stream: std::net::TcpStream) -> Option<Received> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Received {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn create_hook(server: &TestServer, body: &Value) -> Value {
    let response = server.post_json("/api/v4/projects/acme/hooks", body);
    assert_eq!(response.status, 201, "create hook: {response}");
    response.json()
}

/// Waits (bounded) until the server log holds `count` lines with `text`.
fn wait_for_log(server: &TestServer, text: &str, count: usize) {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let found = server.log_tail(10_000).matches(text).count();
        if found >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} log lines with {text:?} expected, {found} found:\n{}",
            server.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tickets_and_notes_reach_the_hook_with_gitlab_headers_and_token() {
    let server = desk();
    let receiver = Receiver::start();
    let hook = create_hook(
        &server,
        &json!({
            "url": receiver.url(),
            "token": "s3cret-token",
            "issues_events": true,
            "confidential_issues_events": true,
            "note_events": true,
        }),
    );
    assert_eq!(hook["url"], receiver.url());
    assert_eq!(hook["issues_events"], true);
    assert_eq!(hook["confidential_note_events"], false);
    assert_eq!(hook["push_events"], false);
    assert_eq!(hook["enable_ssl_verification"], true);
    assert!(hook.get("token").is_none(), "the token is shown: {hook}");

    // Opened by mail: confidential, as GitLab's service desk does.
    send_mail(&server, "Broken printer", "hook-1@example.org");
    let got = receiver.next();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hook"));
    assert_eq!(
        got.header("x-gitlab-event"),
        Some("Confidential Issue Hook")
    );
    assert_eq!(got.header("x-gitlab-token"), Some("s3cret-token"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got.header("x-gitlab-event-uuid").is_some());
    let body = &got.body;
    assert_eq!(body["object_kind"], "issue");
    assert_eq!(body["event_type"], "confidential_issue");
    assert_eq!(body["object_attributes"]["action"], "open");
    assert_eq!(body["object_attributes"]["iid"], 1);
    assert_eq!(body["object_attributes"]["title"], "Broken printer");
    assert_eq!(body["object_attributes"]["state"], "opened");
    assert_eq!(body["object_attributes"]["confidential"], true);
    assert_eq!(body["project"]["path_with_namespace"], "desk/acme");
    assert_eq!(body["user"]["username"], "support-bot");

    // Opened by the API, public: a plain Issue Hook.
    let issue = server.post_json(
        "/api/v4/projects/acme/issues",
        &json!({ "title": "Public question", "confidential": false }),
    );
    assert_eq!(issue.status, 201, "{issue}");
    let got = receiver.next();
    assert_eq!(got.header("x-gitlab-event"), Some("Issue Hook"));
    assert_eq!(got.body["object_attributes"]["iid"], 2);
    assert_eq!(got.body["object_attributes"]["confidential"], false);
    assert_eq!(got.body["user"]["username"], "root");

    // A comment: a Note Hook with the issue.
    let note = server.post_json(
        "/api/v4/projects/acme/issues/2/notes",
        &json!({ "body": "Answered by mail" }),
    );
    assert_eq!(note.status, 201, "{note}");
    let got = receiver.next();
    assert_eq!(got.header("x-gitlab-event"), Some("Note Hook"));
    assert_eq!(got.body["object_kind"], "note");
    assert_eq!(got.body["object_attributes"]["note"], "Answered by mail");
    assert_eq!(got.body["object_attributes"]["noteable_type"], "Issue");
    assert_eq!(got.body["object_attributes"]["internal"], false);
    assert_eq!(got.body["issue"]["iid"], 2);

    // Closing: an Issue Hook with action close.
    let closed = server.request(
        "PUT",
        "/api/v4/projects/acme/issues/2",
        &[("Content-Type", "application/json")],
        json!({ "state_event": "close" }).to_string().as_bytes(),
    );
    assert_eq!(closed.status, 200, "{closed}");
    let got = receiver.next();
    assert_eq!(got.header("x-gitlab-event"), Some("Issue Hook"));
    assert_eq!(got.body["object_attributes"]["action"], "close");
    assert_eq!(got.body["object_attributes"]["state"], "closed");
}

#[test]
fn confidential_tickets_do_not_reach_a_hook_without_confidential_issues_events() {
    let server = desk();
    let public_only = Receiver::start();
    let everything = Receiver::start();
    create_hook(
        &server,
        &json!({ "url": public_only.url(), "issues_events": true, "note_events": true }),
    );
    create_hook(
        &server,
        &json!({
            "url": everything.url(), "issues_events": true, "confidential_issues_events": true,
        }),
    );
    send_mail(&server, "Confidential by mail", "conf-1@example.org");
    let note = server.post_json(
        "/api/v4/projects/acme/issues/1/notes",
        &json!({ "body": "Internal remark" , "internal": true}),
    );
    assert_eq!(note.status, 201, "{note}");
    let issue = server.post_json(
        "/api/v4/projects/acme/issues",
        &json!({ "title": "Public one", "confidential": false }),
    );
    assert_eq!(issue.status, 201, "{issue}");

    // Hooks deliver in log order: the public ticket came last, so whatever
    // the public-only hook was going to get of #1 would have come first.
    let got = public_only.next();
    assert_eq!(got.body["object_attributes"]["iid"], 2, "{:?}", got.body);
    assert_eq!(got.header("x-gitlab-event"), Some("Issue Hook"));

    let got = everything.next();
    assert_eq!(
        got.header("x-gitlab-event"),
        Some("Confidential Issue Hook")
    );
    assert_eq!(got.body["object_attributes"]["iid"], 1);
    let got = everything.next();
    assert_eq!(got.body["object_attributes"]["iid"], 2);
}

#[test]
fn a_receiver_down_at_first_gets_the_event_once_it_is_up_even_across_a_restart() {
    let mut server = desk();
    // A port where nothing listens yet; the receiver binds it later.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    create_hook(
        &server,
        &json!({
            "url": format!("http://127.0.0.1:{port}/hook"),
            "token": "t",
            "issues_events": true,
            "confidential_issues_events": true,
        }),
    );
    send_mail(
        &server,
        "Sent while the receiver is down",
        "down-1@example.org",
    );
    wait_for_log(&server, "webhook failed; will retry", 1);

    // The event is still owed after a crash.
    server.restart();
    let before = server
        .log_tail(10_000)
        .matches("webhook failed; will retry")
        .count();
    wait_for_log(&server, "webhook failed; will retry", before + 1);

    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).expect("rebind the port"));
    let got = receiver.next();
    assert_eq!(got.body["object_attributes"]["iid"], 1);
    assert_eq!(
        got.body["object_attributes"]["title"],
        "Sent while the receiver is down"
    );
    let first_id = got.header("x-mxdesk-event-id").map(str::to_string);
    // Delivery is at least once: a crash between the receiver's 200 and the
    // cursor's commit sends the event again. The log line comes after the
    // commit.
    wait_for_log(&server, "webhook delivered", 1);

    // Delivered means done: after another restart the next delivery is the
    // next ticket, not the first one again.
    server.restart();
    send_mail(&server, "After the outage", "down-2@example.org");
    let got = receiver.next();
    assert_eq!(got.body["object_attributes"]["iid"], 2, "{:?}", got.body);
    assert_ne!(
        got.header("x-mxdesk-event-id").map(str::to_string),
        first_id
    );
}

/// A user with an `api` token, a member of acme at `level`.
fn member_token(server: &TestServer, username: &str, level: u8) -> String {
    let user = server.post_json(
        "/api/v4/users",
        &json!({ "username": username, "name": username, "email": format!("{username}@example.org") }),
    );
    assert_eq!(user.status, 201, "create user: {user}");
    let user_id = user.json()["id"].as_u64().expect("user id");
    let token = server.post_json(
        &format!("/api/v4/users/{user_id}/personal_access_tokens"),
        &json!({ "name": "hooks", "scopes": ["api"] }),
    );
    assert_eq!(token.status, 201, "create token: {token}");
    let member = server.post_json(
        "/api/v4/projects/acme/members",
        &json!({ "user_id": user_id, "access_level": level }),
    );
    assert_eq!(member.status, 201, "add member: {member}");
    token.json()["token"].as_str().expect("token").to_string()
}

#[test]
fn hooks_are_for_maintainers_and_urls_must_be_http() {
    let server = desk();
    let developer = member_token(&server, "dev", 30);
    let maintainer = member_token(&server, "maia", 40);
    let as_user = |token: &str, method: &str, path: &str, body: &Value| {
        http_request(
            server.api_addr,
            method,
            path,
            &[
                ("PRIVATE-TOKEN", token),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    };
    let hooks = "/api/v4/projects/acme/hooks";
    let good = json!({ "url": "http://127.0.0.1:1/x", "issues_events": true });
    as_user(&developer, "GET", hooks, &json!({})).assert_json_error(403);
    as_user(&developer, "POST", hooks, &good).assert_json_error(403);

    for bad in [
        json!({}),
        json!({ "url": "ftp://example.org/" }),
        json!({ "url": "not a url" }),
        json!({ "url": "http://127.0.0.1/", "issues_events": "maybe" }),
    ] {
        as_user(&maintainer, "POST", hooks, &bad).assert_json_error(400);
    }
    let created = as_user(&maintainer, "POST", hooks, &good);
    assert_eq!(created.status, 201, "{created}");
    let id = created.json()["id"].as_u64().unwrap();
    let one = format!("{hooks}/{id}");

    let listed = server.get_json(hooks);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let changed = as_user(
        &maintainer,
        "PUT",
        &one,
        &json!({ "note_events": true, "token": "new" }),
    );
    assert_eq!(changed.status, 200, "{changed}");
    let changed = changed.json();
    assert_eq!(changed["note_events"], true);
    assert_eq!(changed["issues_events"], true);
    assert!(changed.get("token").is_none());

    let deleted = as_user(&maintainer, "DELETE", &one, &json!({}));
    assert_eq!(deleted.status, 204, "{deleted}");
    server.get(&one).assert_json_error(404);
    server
        .get(&format!("{hooks}/nonsense"))
        .assert_json_error(404);
}
