//! Confidential tickets, GitLab's rule, against the real server over real
//! HTTP and SMTP: a confidential ticket is visible only to members with
//! Reporter or above and to administrators. To a Guest and to a non-member
//! it does not exist — 404, absent from lists, totals, searches, `iids[]`,
//! label counts, milestone lists, the event feed and webhooks — while a
//! public ticket of the same project is there for the Guest as usual.
//!
//! The tickets: one opened by mail (mail tickets are confidential by
//! default), one opened through the API with `confidential=true`, a public
//! one, and one that is public at first and made confidential later (what
//! was visible of it disappears, events included).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Outbound mail goes to a port where nothing listens: thank-you mails stay
/// queued instead of leaving the machine.
const NO_RELAY: &str = "outbound.relay = \"127.0.0.1:9\"";
/// Words only the confidential tickets contain (in title, description or
/// notes): they must never reach a Guest or an outsider.
const SECRETS: [&str; 3] = ["zebra", "okapi", "narwhal"];
/// How long a webhook delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn call(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> HttpResponse {
    let text = body.map(Value::to_string).unwrap_or_default();
    let mut headers = vec![("PRIVATE-TOKEN", token)];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    http_request(server.api_addr, method, path, &headers, text.as_bytes())
}

fn get_as(server: &TestServer, token: &str, path: &str) -> HttpResponse {
    call(server, token, "GET", path, None)
}

/// `GET` expecting `200` and a JSON array.
fn list_as(server: &TestServer, token: &str, path: &str) -> (Vec<Value>, HttpResponse) {
    let response = get_as(server, token, path);
    assert_eq!(response.status, 200, "GET {path}: {response}");
    let items = response
        .json()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("GET {path}: not an array: {response}"));
    (items, response)
}

fn iids(items: &[Value]) -> BTreeSet<u64> {
    items
        .iter()
        .map(|i| i["iid"].as_u64().expect("iid"))
        .collect()
}

fn set(values: &[u64]) -> BTreeSet<u64> {
    values.iter().copied().collect()
}

/// Asserts that `text` (a response body) mentions none of [`SECRETS`].
fn assert_no_secret(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for secret in SECRETS {
        assert!(!lower.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

/// A user with a membership (or none) and an `api` token.
struct Account {
    id: u64,
    token: String,
}

fn account(server: &TestServer, username: &str, project_id: u64, level: Option<u8>) -> Account {
    let created = server.post_json(
        "/api/v4/users",
        &json!({ "username": username, "name": username, "email": format!("{username}@example.org") }),
    );
    assert_eq!(created.status, 201, "create user {username}: {created}");
    let id = created.json()["id"].as_u64().expect("user id");
    let token = server.post_json(
        &format!("/api/v4/users/{id}/personal_access_tokens"),
        &json!({ "name": format!("{username}-token"), "scopes": ["api"] }),
    );
    assert_eq!(token.status, 201, "token for {username}: {token}");
    let token = token.json()["token"]
        .as_str()
        .expect("token value")
        .to_string();
    if let Some(level) = level {
        let member = server.post_json(
            &format!("/api/v4/projects/{project_id}/members"),
            &json!({ "user_id": id, "access_level": level }),
        );
        assert_eq!(member.status, 201, "member {username}: {member}");
        assert_eq!(member.json()["access_level"], level);
    }
    Account { id, token }
}

/// Reads the whole event feed visible to `token` (from the beginning).
fn feed(server: &TestServer, token: &str) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v4/service_desk/events?after={c}&limit=100"),
            None => "/api/v4/service_desk/events?limit=100".to_string(),
        };
        let response = get_as(server, token, &path);
        assert_eq!(response.status, 200, "GET {path}: {response}");
        let body = response.json();
        let page = body["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events array: {response}"))
            .clone();
        let next = body["cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("no cursor: {response}"))
            .to_string();
        let done = page.is_empty() && cursor.as_deref() == Some(next.as_str());
        events.extend(page);
        if done {
            return (events, next);
        }
        cursor = Some(next);
    }
}

/// The ticket numbers events are about (events of this project only).
fn event_iids(events: &[Value], project_id: u64) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|e| e["project_id"] == project_id)
        .filter_map(|e| e["issue_iid"].as_u64())
        .collect()
}

// ---------------------------------------------------------------------------
// A webhook receiver: a std TCP server that answers 200 and records requests
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    event: String,
    body: Value,
}

impl Delivery {
    /// The ticket number the payload is about.
    fn iid(&self) -> Option<u64> {
        match self.body["object_kind"].as_str() {
            Some("issue") => self.body["object_attributes"]["iid"].as_u64(),
            Some("note") => self.body["issue"]["iid"].as_u64(),
            _ => None,
        }
    }
}

struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some(delivery) = read_delivery(stream) {
                    sink.lock().expect("receiver lock").push(delivery);
                }
            }
        });
        Receiver { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn deliveries(&self, path: &str) -> Vec<Delivery> {
        self.got
            .lock()
            .expect("receiver lock")
            .iter()
            .filter(|d| d.path == path)
            .cloned()
            .collect()
    }

    /// Waits until a delivery to `path` satisfies `done`.
    fn wait_for(&self, path: &str, what: &str, done: impl Fn(&Delivery) -> bool) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while Instant::now() < deadline {
            if self.deliveries(path).iter().any(&done) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no webhook to {path} for {what} within {DELIVERY_TIMEOUT:?}; got: {:#?}",
            self.deliveries(path)
                .iter()
                .map(|d| (&d.event, d.iid()))
                .collect::<Vec<_>>()
        );
    }
}

/// Reads one HTTP request (Content-Length or chunked body), answers 200.
fn read_delivery(stream: TcpStream) -> Option<Delivery> {
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let path = request_line.split(' ').nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length") {
        body.resize(length.parse().ok()?, 0);
        reader.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let mut stream = stream;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Delivery {
        path,
        event: header("x-gitlab-event").unwrap_or_default(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[test]
fn guests_and_outsiders_never_see_confidential_tickets() {
    let server = TestServer::start_with(NO_RELAY);
    let project = server.create_project("acme");
    let pid = project["id"].as_u64().expect("project id");
    let admin = ADMIN_TOKEN;

    let guest = account(&server, "guest", pid, Some(10));
    let reporter = account(&server, "reporter", pid, Some(20));
    let outsider = account(&server, "outsider", pid, None);

    // Webhooks first, so every ticket event is offered to them: one hook
    // for public issue and note events only, one for everything.
    let receiver = Receiver::start();
    for (path, confidential) in [("/public", false), ("/all", true)] {
        let hook = server.post_json(
            &format!("/api/v4/projects/{pid}/hooks"),
            &json!({
                "url": receiver.url(path), "token": "hook-secret",
                "issues_events": true, "note_events": true,
                "confidential_issues_events": confidential,
                "confidential_note_events": confidential,
            }),
        );
        assert_eq!(hook.status, 201, "create hook {path}: {hook}");
    }
    // Hooks are for maintainers: a Guest is refused, an outsider finds no
    // project, so neither can subscribe to anything.
    let hook_body = json!({ "url": receiver.url("/guest"), "issues_events": true, "confidential_issues_events": true });
    let path = format!("/api/v4/projects/{pid}/hooks");
    call(&server, &guest.token, "POST", &path, Some(&hook_body)).assert_json_error(403);
    call(&server, &guest.token, "GET", &path, None).assert_json_error(403);
    call(&server, &reporter.token, "POST", &path, Some(&hook_body)).assert_json_error(403);
    call(&server, &outsider.token, "POST", &path, Some(&hook_body)).assert_json_error(404);
    call(&server, &outsider.token, "GET", &path, None).assert_json_error(404);

    // #1: by mail, confidential by default.
    let mut smtp = server.smtp();
    smtp.expect("EHLO client.example.org", 250);
    let reply = smtp.send_mail(
        "customer@example.org",
        &["acme@desk.test"],
        &simple_message(
            "Zebra account locked",
            "conf-1@example.org",
            "My zebra-42 account is locked.",
        ),
    );
    assert_eq!(reply.code, 250, "{reply}");
    let _ = smtp.try_cmd("QUIT");
    let mail = server.issue("acme", 1);
    assert_eq!(
        mail["confidential"], true,
        "mail tickets are confidential by default: {mail}"
    );

    // #2: through the API, confidential.
    let created = server.post_json(
        &format!("/api/v4/projects/{pid}/issues"),
        &json!({ "title": "Okapi contract", "description": "Pricing for okapi corp.", "confidential": true, "labels": "secret-label,shared" }),
    );
    assert_eq!(created.status, 201, "{created}");
    assert_eq!(created.json()["iid"], 2);
    assert_eq!(created.json()["confidential"], true);

    // #3: public.
    let created = server.post_json(
        &format!("/api/v4/projects/{pid}/issues"),
        &json!({ "title": "Public outage", "description": "The website is down.", "labels": "shared" }),
    );
    assert_eq!(created.status, 201, "{created}");
    assert_eq!(created.json()["iid"], 3);

    // #4: public at first (the Guest can see it), confidential later.
    let created = server.post_json(
        &format!("/api/v4/projects/{pid}/issues"),
        &json!({ "title": "Narwhal migration", "description": "Moving narwhal data." }),
    );
    assert_eq!(created.status, 201, "{created}");
    let seen = get_as(
        &server,
        &guest.token,
        &format!("/api/v4/projects/{pid}/issues/4"),
    );
    assert_eq!(seen.status, 200, "guest sees #4 while it is public: {seen}");

    // Notes: public notes on confidential tickets, an internal note on the
    // public ticket, a public note on the public ticket.
    for (iid, body, internal) in [
        (1, "Zebra: we reset the account.", false),
        (2, "Okapi: sent the quote.", false),
        (3, "Internal: narwhal team is on it.", true),
        (3, "We are on it.", false),
    ] {
        let note = server.post_json(
            &format!("/api/v4/projects/{pid}/issues/{iid}/notes"),
            &json!({ "body": body, "internal": internal }),
        );
        assert_eq!(note.status, 201, "note on #{iid}: {note}");
    }
    let milestone = server.post_json(
        &format!("/api/v4/projects/{pid}/milestones"),
        &json!({ "title": "m1" }),
    );
    assert_eq!(milestone.status, 201, "{milestone}");
    let milestone_id = milestone.json()["id"].as_u64().expect("milestone id");
    for iid in [2, 3] {
        let put = call(
            &server,
            admin,
            "PUT",
            &format!("/api/v4/projects/{pid}/issues/{iid}"),
            Some(&json!({ "milestone_id": milestone_id })),
        );
        assert_eq!(put.status, 200, "{put}");
    }
    let made_secret = call(
        &server,
        admin,
        "PUT",
        &format!("/api/v4/projects/{pid}/issues/4"),
        Some(&json!({ "confidential": true })),
    );
    assert_eq!(made_secret.status, 200, "{made_secret}");
    assert_eq!(made_secret.json()["confidential"], true);
    // The last event: once a hook has it, it has been offered everything.
    let marker = server.post_json(
        &format!("/api/v4/projects/{pid}/issues/3/notes"),
        &json!({ "body": "marker: last public note" }),
    );
    assert_eq!(marker.status, 201, "{marker}");

    let confidential = set(&[1, 2, 4]);
    let public = set(&[3]);
    let all = set(&[1, 2, 3, 4]);
    let issues = format!("/api/v4/projects/{pid}/issues");

    // -- The outsider: no project, no tickets, nothing anywhere -------------
    let o = &outsider.token;
    for path in [
        format!("/api/v4/projects/{pid}"),
        "/api/v4/projects/acme".to_string(),
        "/api/v4/projects/desk%2Facme".to_string(),
        issues.clone(),
        format!("/api/v4/projects/{pid}/labels"),
        format!("/api/v4/projects/{pid}/milestones"),
        format!("/api/v4/projects/{pid}/members"),
    ] {
        get_as(&server, o, &path).assert_json_error(404);
    }
    for iid in 1..=4 {
        for suffix in ["", "/notes", "/discussions", "/time_stats"] {
            get_as(&server, o, &format!("{issues}/{iid}{suffix}")).assert_json_error(404);
        }
    }
    call(
        &server,
        o,
        "POST",
        &format!("{issues}/3/notes"),
        Some(&json!({ "body": "hi" })),
    )
    .assert_json_error(404);
    let (projects, response) = list_as(&server, o, "/api/v4/projects");
    assert!(projects.is_empty(), "outsider lists projects: {response}");
    for query in [
        "",
        "?search=zebra",
        "?confidential=true",
        "?iids[]=1&iids[]=2",
        "?scope=all",
    ] {
        let (items, response) = list_as(&server, o, &all_issues_url(query));
        assert!(items.is_empty(), "outsider /issues{query}: {response}");
        assert_eq!(
            response.header("x-total"),
            Some("0"),
            "outsider /issues{query} X-Total: {response}"
        );
    }
    let (events, _) = feed(&server, o);
    assert!(
        events.iter().all(|e| e["project_id"] != pid),
        "outsider receives events of acme: {events:#?}"
    );
    assert_no_secret("outsider's event feed", &Value::Array(events).to_string());

    // -- The guest: the public ticket only ---------------------------------
    let g = &guest.token;
    assert_eq!(
        get_as(&server, g, &format!("/api/v4/projects/{pid}")).status,
        200
    );
    let (items, response) = list_as(&server, g, &issues);
    assert_eq!(iids(&items), public, "guest list: {response}");
    assert_eq!(
        response.header("x-total"),
        Some("1"),
        "guest X-Total counts only the public ticket: {response}"
    );
    assert_eq!(response.header("x-total-pages"), Some("1"), "{response}");
    assert_no_secret("guest's issue list", &response.text());
    for iid in &confidential {
        for suffix in [
            "",
            "/notes",
            "/discussions",
            "/time_stats",
            "/email_participants",
            "/raw_message",
            "/attachments/1",
        ] {
            get_as(&server, g, &format!("{issues}/{iid}{suffix}")).assert_json_error(404);
        }
        call(
            &server,
            g,
            "POST",
            &format!("{issues}/{iid}/notes"),
            Some(&json!({ "body": "guest note" })),
        )
        .assert_json_error(404);
        call(
            &server,
            g,
            "PUT",
            &format!("{issues}/{iid}"),
            Some(&json!({ "title": "guest edit" })),
        )
        .assert_json_error(404);
        call(
            &server,
            g,
            "POST",
            &format!("{issues}/{iid}/discussions"),
            Some(&json!({ "body": "guest thread" })),
        )
        .assert_json_error(404);
    }
    // A confidential ticket's notes and threads, by id, under its own path
    // and smuggled under the public ticket's path: 404 either way.
    for iid in &confidential {
        let (notes, _) = list_as(&server, admin, &format!("{issues}/{iid}/notes"));
        let (threads, _) = list_as(&server, admin, &format!("{issues}/{iid}/discussions"));
        for owner in [*iid, 3] {
            for note in &notes {
                let note_id = note["id"].as_u64().expect("note id");
                let path = format!("{issues}/{owner}/notes/{note_id}");
                get_as(&server, g, &path).assert_json_error(404);
                call(&server, g, "PUT", &path, Some(&json!({ "body": "x" })))
                    .assert_json_error(404);
                call(&server, g, "DELETE", &path, None).assert_json_error(404);
            }
            for thread in &threads {
                let id = thread["id"].as_str().expect("discussion id");
                get_as(&server, g, &format!("{issues}/{owner}/discussions/{id}"))
                    .assert_json_error(404);
                call(
                    &server,
                    g,
                    "POST",
                    &format!("{issues}/{owner}/discussions/{id}/notes"),
                    Some(&json!({ "body": "x" })),
                )
                .assert_json_error(404);
            }
        }
        call(
            &server,
            g,
            "POST",
            &format!("{issues}/{iid}/email_participants"),
            Some(&json!({ "email": "spy@example.org" })),
        )
        .assert_json_error(404);
        call(
            &server,
            g,
            "POST",
            &format!("{issues}/{iid}/add_spent_time"),
            Some(&json!({ "duration": "1h" })),
        )
        .assert_json_error(404);
    }
    let public_issue = get_as(&server, g, &format!("{issues}/3"));
    assert_eq!(public_issue.status, 200, "{public_issue}");
    let (notes, response) = list_as(&server, g, &format!("{issues}/3/notes"));
    assert!(
        notes.iter().all(|n| n["internal"] == false),
        "guest sees an internal note: {response}"
    );
    assert_no_secret("guest's notes of the public ticket", &response.text());
    let bot = server.get_json("/api/v4/users?username=support-bot");
    let bot_id = bot[0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no support-bot: {bot}"));
    let support_bot_filter = format!("?author_id={bot_id}");
    let queries = [
        ("?search=zebra", set(&[])),
        ("?search=okapi", set(&[])),
        ("?search=narwhal", set(&[])),
        ("?search=account", set(&[])),
        ("?search=website", public.clone()),
        ("?iids[]=1&iids[]=2&iids[]=4", set(&[])),
        ("?iids[]=1&iids[]=3", public.clone()),
        ("?iids=1,2,3", public.clone()),
        ("?confidential=true", set(&[])),
        ("?confidential=false", public.clone()),
        ("?labels=secret-label", set(&[])),
        ("?labels=shared", public.clone()),
        ("?labels=Any", public.clone()),
        ("?state=opened&order_by=updated_at&sort=asc", public.clone()),
        ("?milestone=m1", public.clone()),
        (support_bot_filter.as_str(), set(&[])),
        ("?per_page=1&page=2", set(&[])),
    ];
    for (query, expected) in &queries {
        let (items, response) = list_as(&server, g, &format!("{issues}{query}"));
        assert_eq!(&iids(&items), expected, "guest {query}: {response}");
        assert_eq!(
            response.header("x-total").map(str::to_string),
            Some(
                if query.contains("page=2") {
                    1
                } else {
                    expected.len()
                }
                .to_string()
            ),
            "guest {query} X-Total: {response}"
        );
        assert_no_secret(&format!("guest {query}"), &response.text());
    }
    // Keyset pagination walks the public ticket only.
    let (items, response) = list_as(
        &server,
        g,
        &format!("{issues}?pagination=keyset&per_page=1&order_by=created_at"),
    );
    assert_eq!(iids(&items), public, "guest keyset: {response}");
    assert!(
        response
            .header("link")
            .is_none_or(|l| !l.contains("rel=\"next\"")),
        "keyset offers a next page past the only visible ticket: {response}"
    );
    // Across projects.
    for (query, expected) in [
        ("", public.clone()),
        ("?search=zebra", set(&[])),
        ("?confidential=true", set(&[])),
        ("?scope=all", public.clone()),
        ("?iids[]=1&iids[]=2&iids[]=3", public.clone()),
        ("?labels=secret-label", set(&[])),
        ("?order_by=updated_at&sort=asc&per_page=100", public.clone()),
    ] {
        let (items, response) = list_as(&server, g, &all_issues_url(query));
        assert_eq!(iids(&items), expected, "guest /issues{query}: {response}");
        assert_eq!(
            response.header("x-total").map(str::to_string),
            Some(expected.len().to_string()),
            "guest /issues{query} X-Total: {response}"
        );
        assert_no_secret(&format!("guest /issues{query}"), &response.text());
    }
    // Label counts and milestone lists count only what the guest can see.
    let (labels, response) = list_as(&server, g, &format!("/api/v4/projects/{pid}/labels"));
    for label in &labels {
        let expected = if label["name"] == "shared" { 1 } else { 0 };
        assert_eq!(
            label["open_issues_count"], expected,
            "guest label counts: {response}"
        );
    }
    let (items, response) = list_as(
        &server,
        g,
        &format!("/api/v4/projects/{pid}/milestones/{milestone_id}/issues"),
    );
    assert_eq!(iids(&items), public, "guest milestone issues: {response}");
    // Events: the public ticket's, never a confidential one's (#4's earlier
    // events included: visibility is judged on the ticket as it is now),
    // and no internal note.
    let (events, guest_cursor) = feed(&server, g);
    assert_eq!(
        event_iids(&events, pid),
        public,
        "guest event feed: {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "issue_opened" && e["issue_iid"] == 3),
        "guest misses the public ticket's opening: {events:#?}"
    );
    assert!(
        events.iter().all(|e| e["internal"] != true),
        "guest receives an internal event: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["issue"].is_null() || e["issue"]["confidential"] == false),
        "{events:#?}"
    );
    assert_no_secret("guest's event feed", &Value::Array(events).to_string());

    // A long-poll is not woken with a confidential event: a new note on a
    // confidential ticket passes it over (the cursor moves, no event).
    let poll_path = format!("/api/v4/service_desk/events?after={guest_cursor}&wait=1");
    let addr = server.api_addr;
    let guest_token = guest.token.clone();
    let waiter = std::thread::spawn(move || {
        http_request(
            addr,
            "GET",
            &poll_path,
            &[("PRIVATE-TOKEN", &guest_token)],
            b"",
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let note = server.post_json(
        &format!("{issues}/2/notes"),
        &json!({ "body": "Okapi: late note" }),
    );
    assert_eq!(note.status, 201, "{note}");
    let response = waiter.join().expect("long-poll thread");
    assert_eq!(response.status, 200, "{response}");
    let body = response.json();
    assert_eq!(
        body["events"],
        json!([]),
        "guest long-poll woken with a confidential event: {response}"
    );
    assert_ne!(
        body["cursor"].as_str(),
        Some(guest_cursor.as_str()),
        "the hidden event still moves the guest's cursor: {response}"
    );
    assert_no_secret("guest long-poll", &response.text());

    // -- The reporter and the admin: everything ----------------------------
    for (who, token) in [("reporter", reporter.token.as_str()), ("admin", admin)] {
        let (items, response) = list_as(&server, token, &issues);
        assert_eq!(iids(&items), all, "{who} list: {response}");
        assert_eq!(
            response.header("x-total"),
            Some("4"),
            "{who} X-Total: {response}"
        );
        for iid in &all {
            assert_eq!(
                get_as(&server, token, &format!("{issues}/{iid}")).status,
                200,
                "{who} #{iid}"
            );
            let (notes, _) = list_as(&server, token, &format!("{issues}/{iid}/notes"));
            assert!(!notes.is_empty(), "{who} notes of #{iid}");
        }
        let (items, response) = list_as(&server, token, &format!("{issues}?search=zebra"));
        assert_eq!(iids(&items), set(&[1]), "{who} search: {response}");
        let (items, response) = list_as(&server, token, &format!("{issues}?iids[]=1&iids[]=2"));
        assert_eq!(iids(&items), set(&[1, 2]), "{who} iids[]: {response}");
        let (items, response) = list_as(&server, token, &format!("{issues}?confidential=true"));
        assert_eq!(
            iids(&items),
            confidential,
            "{who} confidential=true: {response}"
        );
        let (items, response) = list_as(&server, token, "/api/v4/issues?scope=all");
        assert_eq!(iids(&items), all, "{who} /issues: {response}");
        let (events, _) = feed(&server, token);
        assert_eq!(event_iids(&events, pid), all, "{who} event feed");
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "issue_opened" && e["issue_iid"] == 1),
            "{who} misses the mail ticket's opening"
        );
    }
    // Webhooks: hooks are for maintainers, so the reporter may not list them.
    call(&server, &reporter.token, "GET", &path, None).assert_json_error(403);

    // -- Webhooks: confidential tickets only reach confidential hooks ------
    let is_marker =
        |d: &Delivery| d.body["object_attributes"]["note"] == "marker: last public note";
    receiver.wait_for("/public", "the marker note", is_marker);
    receiver.wait_for("/all", "the marker note", is_marker);
    let to_public = receiver.deliveries("/public");
    for delivery in &to_public {
        let iid = delivery.iid();
        assert!(
            !delivery.event.starts_with("Confidential"),
            "public-only hook got a {:?}: {}",
            delivery.event,
            delivery.body
        );
        assert_ne!(
            delivery.body["object_attributes"]["confidential"], true,
            "{}",
            delivery.body
        );
        assert_ne!(
            delivery.body["issue"]["confidential"], true,
            "{}",
            delivery.body
        );
        assert!(
            iid == Some(3) || iid == Some(4),
            "public-only hook got an event of #{iid:?}: {}",
            delivery.body
        );
        if iid == Some(4) {
            // Only its opening, while it was public; never the change.
            assert_eq!(
                delivery.body["object_attributes"]["action"], "open",
                "{}",
                delivery.body
            );
        } else {
            assert_no_secret("public-only hook", &delivery.body.to_string());
        }
    }
    assert!(
        to_public
            .iter()
            .any(|d| d.iid() == Some(3) && d.event == "Issue Hook"),
        "public hook missed #3's opening"
    );
    // The hook taking confidential events did get them: the silence above
    // is the filter, not a delivery failure.
    let to_all = receiver.deliveries("/all");
    let confidential_iids: BTreeSet<u64> = to_all
        .iter()
        .filter(|d| d.event.starts_with("Confidential"))
        .filter_map(Delivery::iid)
        .collect();
    assert!(
        confidential_iids.is_superset(&confidential),
        "confidential hook deliveries: {:#?}",
        to_all
            .iter()
            .map(|d| (&d.event, d.iid()))
            .collect::<Vec<_>>()
    );

    // -- GitLab's exceptions: a Guest sees a confidential ticket it opened
    // or is assigned to; an outsider never does --------------------------
    let own = call(
        &server,
        g,
        "POST",
        &issues,
        Some(&json!({ "title": "Guest's own secret", "confidential": true })),
    );
    assert_eq!(
        own.status, 201,
        "a guest opens a confidential ticket: {own}"
    );
    let own_iid = own.json()["iid"].as_u64().expect("iid");
    assert_eq!(own.json()["confidential"], true, "{own}");
    let assign = call(
        &server,
        admin,
        "PUT",
        &format!("{issues}/2"),
        Some(&json!({ "assignee_ids": [guest.id] })),
    );
    assert_eq!(assign.status, 200, "{assign}");
    let (items, response) = list_as(&server, g, &issues);
    assert_eq!(
        iids(&items),
        set(&[2, 3, own_iid]),
        "guest sees the public ticket, its own and the one assigned to it: {response}"
    );
    assert_eq!(response.header("x-total"), Some("3"), "{response}");
    assert_eq!(get_as(&server, g, &format!("{issues}/2")).status, 200);
    get_as(&server, g, &format!("{issues}/1")).assert_json_error(404);
    get_as(&server, g, &format!("{issues}/4")).assert_json_error(404);
    get_as(&server, o, &format!("{issues}/{own_iid}")).assert_json_error(404);
    let (items, response) = list_as(&server, o, "/api/v4/issues");
    assert!(items.is_empty(), "outsider /issues: {response}");
}

/// `/api/v4/issues` over every visible project: GitLab's default scope is
/// the caller's own tickets, so `scope=all` is added unless the query sets one.
fn all_issues_url(query: &str) -> String {
    if query.contains("scope=") {
        format!("/api/v4/issues{query}")
    } else if let Some(rest) = query.strip_prefix('?') {
        format!("/api/v4/issues?scope=all&{rest}")
    } else {
        "/api/v4/issues?scope=all".to_string()
    }
}
