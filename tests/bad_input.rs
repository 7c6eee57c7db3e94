//! Bad input to the API — malformed JSON, wrong types, ids of nothing,
//! absurd pagination, huge bodies, invalid UTF-8, unknown routes — is
//! answered with a 4xx and GitLab's JSON `{"message": ...}`, never a 5xx or
//! a panic, and the server keeps serving afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{HttpResponse, TestServer, ADMIN_TOKEN, IO_TIMEOUT};
use serde_json::{json, Value};

/// Outbound mail goes to a closed local port: nothing leaves the machine.
const LOCAL_RELAY: &str = "outbound.relay = \"127.0.0.1:1\"";
/// The default `api.max_body_size`.
const MAX_BODY: usize = 1024 * 1024;

/// A test server with a project (`acme`), a ticket (`#1`) and a note.
struct Desk {
    server: TestServer,
    project: String,
}

impl Desk {
    fn start() -> Desk {
        let server = TestServer::start_with(LOCAL_RELAY);
        let id = server.create_project("acme")["id"].to_string();
        let project = format!("/api/v4/projects/{id}");
        let issue = server.post_json(&format!("{project}/issues"), &json!({ "title": "Broken" }));
        assert_eq!(issue.status, 201, "{issue}");
        Desk { server, project }
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        self.server
            .request(method, path, &[("Content-Type", "application/json")], body)
    }

    fn issue(&self) -> String {
        format!("{}/issues/1", self.project)
    }

    /// The server still answers, with its data intact.
    fn assert_alive(&self) {
        assert_eq!(self.server.get("/healthz").status, 200);
        let issue = self.server.get_json(&self.issue());
        assert_eq!(issue["title"], "Broken", "{issue}");
    }
}

/// `status` is a 4xx and the body GitLab's JSON error.
#[track_caller]
fn assert_json_4xx(response: &HttpResponse, what: &str) -> Value {
    assert!(
        (400..500).contains(&response.status),
        "{what}: wanted a 4xx, got {response}"
    );
    let content_type = response.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: error content type {content_type:?}: {response}"
    );
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {response}"));
    let message = body
        .get("message")
        .unwrap_or_else(|| panic!("{what}: no `message`: {response}"));
    assert!(
        message.is_string() || message.is_object(),
        "{what}: {response}"
    );
    message.clone()
}

#[test]
fn malformed_json_bodies_are_400() {
    let desk = Desk::start();
    let cases: &[(&str, &[u8])] = &[
        ("truncated", b"{\"title\": \"x\""),
        ("not JSON", b"{title: x}"),
        ("trailing garbage", b"{\"title\": \"x\"} yes"),
        ("an array", b"[1, 2, 3]"),
        ("a string", b"\"title\""),
        ("invalid UTF-8", b"{\"title\": \"\xff\xfe\"}"),
        ("a lone surrogate", b"{\"title\": \"\\ud800\"}"),
        (
            "a number out of range",
            b"{\"title\": \"x\", \"milestone_id\": 1e400}",
        ),
        ("nesting beyond serde's limit", &[b'['; 100_000]),
        ("a NUL byte", b"{\"title\": \"x\"}\x00"),
    ];
    for (what, body) in cases {
        let response = desk.json("POST", &format!("{}/issues", desk.project), body);
        let message = assert_json_4xx(&response, what);
        assert_eq!(response.status, 400, "{what}: {response}");
        assert!(message.to_string().contains("400"), "{what}: {message}");
    }
    // A body type the API does not read.
    let response = desk.server.request(
        "POST",
        &format!("{}/issues", desk.project),
        &[("Content-Type", "text/plain")],
        b"title=x",
    );
    assert_json_4xx(&response, "text/plain body");
    assert_eq!(response.status, 415, "{response}");
    desk.assert_alive();
}

#[test]
fn wrong_types_are_400() {
    let desk = Desk::start();
    let issues = format!("{}/issues", desk.project);
    let posts = [
        (issues.as_str(), json!({ "title": { "a": 1 } })),
        (issues.as_str(), json!({ "title": ["a"] })),
        (issues.as_str(), json!({ "title": true })),
        (
            issues.as_str(),
            json!({ "title": "x", "confidential": "maybe" }),
        ),
        (issues.as_str(), json!({ "title": "x", "confidential": 2 })),
        (
            issues.as_str(),
            json!({ "title": "x", "milestone_id": "abc" }),
        ),
        (issues.as_str(), json!({ "title": "x", "milestone_id": -1 })),
        (
            issues.as_str(),
            json!({ "title": "x", "milestone_id": 1.5 }),
        ),
        (
            issues.as_str(),
            json!({ "title": "x", "assignee_ids": "one,two" }),
        ),
        (
            issues.as_str(),
            json!({ "title": "x", "assignee_ids": [{ "id": 1 }] }),
        ),
        (
            issues.as_str(),
            json!({ "title": "x", "labels": { "a": 1 } }),
        ),
        (
            issues.as_str(),
            json!({ "title": "x", "labels": ["", "b"] }),
        ),
        (issues.as_str(), json!({ "title": "x", "labels": ["a,b"] })),
        (
            issues.as_str(),
            json!({ "title": "x", "due_date": "someday" }),
        ),
        (
            issues.as_str(),
            json!({ "title": "x", "due_date": 20260101 }),
        ),
        ("/api/v4/projects", json!({ "name": 42.5, "path": [] })),
        ("/api/v4/users", json!({ "username": 7, "name": null })),
        ("/api/v4/users", json!({ "username": "a b", "name": "x" })),
        (
            "/api/v4/user/personal_access_tokens",
            json!({ "name": "t", "scopes": "root" }),
        ),
        (
            "/api/v4/user/personal_access_tokens",
            json!({ "name": "t", "scopes": [], }),
        ),
        (
            "/api/v4/user/personal_access_tokens",
            json!({ "name": "t", "scopes": ["api"], "expires_at": "tomorrow" }),
        ),
    ];
    for (path, body) in &posts {
        let response = desk.json("POST", path, body.to_string().as_bytes());
        assert_json_4xx(&response, &format!("POST {path} {body}"));
        assert_eq!(response.status, 400, "POST {path} {body}: {response}");
    }
    let issue = desk.issue();
    let puts = [
        json!({ "state_event": "explode" }),
        json!({ "state_event": 5 }),
        json!({ "title": "" }),
        json!({ "title": "\u{0}\u{1}\t " }),
        json!({ "discussion_locked": "perhaps" }),
        json!({ "assignee_id": "me" }),
        json!({ "add_labels": [["nested"]] }),
        json!({ "labels": ",," , "add_labels": ["ok", ""] }),
        json!({ "milestone_id": { "id": 1 } }),
    ];
    for body in &puts {
        let response = desk.json("PUT", &issue, body.to_string().as_bytes());
        assert_json_4xx(&response, &format!("PUT {issue} {body}"));
        assert_eq!(response.status, 400, "PUT {issue} {body}: {response}");
    }
    for (path, body) in [
        (
            format!("{issue}/time_estimate"),
            json!({ "duration": "soon" }),
        ),
        (
            format!("{issue}/time_estimate"),
            json!({ "duration": "-1h" }),
        ),
        (
            format!("{issue}/add_spent_time"),
            json!({ "duration": 3600 }),
        ),
        (
            format!("{issue}/add_spent_time"),
            json!({ "duration": "99999999999mo" }),
        ),
        (format!("{issue}/notes"), json!({ "body": { "text": "x" } })),
        (
            format!("{issue}/notes"),
            json!({ "body": "x", "internal": "sometimes" }),
        ),
        (
            format!("{issue}/email_participants"),
            json!({ "email": "not an address" }),
        ),
        (
            format!("{}/labels", desk.project),
            json!({ "name": "x", "color": "ultraviolet" }),
        ),
        (
            format!("{}/labels", desk.project),
            json!({ "name": "", "color": "#fff" }),
        ),
        (
            format!("{}/milestones", desk.project),
            json!({ "title": "v1", "due_date": "2026-02-30" }),
        ),
        (
            format!("{}/hooks", desk.project),
            json!({ "url": "ftp://example.org/" }),
        ),
        (
            format!("{}/members", desk.project),
            json!({ "user_id": 2, "access_level": "owner" }),
        ),
        (
            format!("{}/members", desk.project),
            json!({ "user_id": 2, "access_level": 35 }),
        ),
    ] {
        let response = desk.json("POST", &path, body.to_string().as_bytes());
        assert_json_4xx(&response, &format!("POST {path} {body}"));
        assert_eq!(response.status, 400, "POST {path} {body}: {response}");
    }
    let response = desk.json(
        "PUT",
        &format!("{}/service_desk", desk.project),
        json!({ "templates": { "thank_you": 5 } })
            .to_string()
            .as_bytes(),
    );
    assert_json_4xx(&response, "template of the wrong type");
    desk.assert_alive();
}

#[test]
fn ids_of_nothing_are_404_with_the_kind_of_thing() {
    let desk = Desk::start();
    let issue = desk.issue();
    let p = &desk.project;
    let cases = [
        (
            "PUT",
            issue.clone(),
            json!({ "assignee_ids": [999_999] }),
            "User",
        ),
        (
            "PUT",
            issue.clone(),
            json!({ "assignee_id": 999_999 }),
            "User",
        ),
        (
            "PUT",
            issue.clone(),
            json!({ "milestone_id": 999_999 }),
            "Milestone",
        ),
        (
            "POST",
            format!("{p}/issues"),
            json!({ "title": "x", "assignee_ids": [999_999] }),
            "User",
        ),
        (
            "POST",
            format!("{p}/issues"),
            json!({ "title": "x", "milestone_id": "999999" }),
            "Milestone",
        ),
        (
            "POST",
            format!("{p}/members"),
            json!({ "user_id": 999_999, "access_level": 30 }),
            "User",
        ),
        (
            "PUT",
            format!("{p}/labels/no-such-label"),
            json!({ "color": "#fff" }),
            "Label",
        ),
        (
            "PUT",
            format!("{p}/labels"),
            json!({ "name": "no-such-label", "color": "#fff" }),
            "Label",
        ),
        ("DELETE", format!("{p}/labels/999999"), json!({}), "Label"),
        (
            "PUT",
            format!("{p}/milestones/999999"),
            json!({ "title": "x" }),
            "Milestone",
        ),
        ("DELETE", format!("{p}/hooks/999999"), json!({}), "Hook"),
        ("GET", format!("{p}/issues/999999"), json!({}), "Issue"),
        ("GET", format!("{p}/issues/abc"), json!({}), "Issue"),
        ("GET", format!("{issue}/notes/999999"), json!({}), "Note"),
        ("DELETE", format!("{issue}/notes/999999"), json!({}), "Note"),
        (
            "GET",
            format!("{issue}/discussions/{}", "f".repeat(40)),
            json!({}),
            "Discussion",
        ),
        (
            "POST",
            format!("{issue}/discussions/nope/notes"),
            json!({ "body": "x" }),
            "Discussion",
        ),
        (
            "DELETE",
            format!("{issue}/email_participants/nobody@example.org"),
            json!({}),
            "Participant",
        ),
        ("GET", format!("{issue}/attachments/0"), json!({}), "File"),
        ("GET", format!("{issue}/raw_message"), json!({}), "File"),
        (
            "GET",
            format!("{issue}/blobs/{}", "0".repeat(64)),
            json!({}),
            "File",
        ),
        (
            "GET",
            "/api/v4/projects/999999/issues".to_string(),
            json!({}),
            "Project",
        ),
        (
            "GET",
            "/api/v4/projects/no%2Fsuch%2Fpath".to_string(),
            json!({}),
            "Project",
        ),
        ("GET", "/api/v4/users/999999".to_string(), json!({}), "User"),
        (
            "POST",
            "/api/v4/users/999999/personal_access_tokens".to_string(),
            json!({ "name": "t", "scopes": ["api"] }),
            "User",
        ),
        (
            "DELETE",
            "/api/v4/personal_access_tokens/999999".to_string(),
            json!({}),
            "Token",
        ),
        ("GET", format!("{p}/members/999999"), json!({}), "Member"),
    ];
    for (method, path, body, what) in &cases {
        let response = desk.json(method, path, body.to_string().as_bytes());
        let message = assert_json_4xx(&response, &format!("{method} {path}"));
        assert_eq!(response.status, 404, "{method} {path}: {response}");
        assert_eq!(
            message,
            json!(format!("404 {what} Not Found")),
            "{method} {path}"
        );
    }
    // Filters naming nothing match nothing; they are not errors.
    for query in [
        "assignee_username=nobody",
        "milestone=no-such-milestone",
        "labels=no-such-label",
        "author_id=999999",
    ] {
        let response = desk.server.get(&format!("{p}/issues?{query}"));
        assert_eq!(response.status, 200, "{query}: {response}");
        assert_eq!(response.json(), json!([]), "{query}");
    }
    desk.assert_alive();
}

#[test]
fn quick_actions_naming_nothing_are_reported_not_failed() {
    let desk = Desk::start();
    let notes = format!("{}/notes", desk.issue());
    for body in [
        "/assign @nobody",
        "/milestone %\"no such milestone\"",
        "/label ~\"\"",
        "/label ~\"a,b\"",
        "/relabel ~,",
        "/estimate 99999999999mo",
        "/spend -99999999999mo",
        "/due someday",
        "/title",
        "/unknown_command",
        "/",
    ] {
        let response = desk.json(
            "POST",
            &notes,
            json!({ "body": body }).to_string().as_bytes(),
        );
        assert!(
            response.status < 500,
            "{body:?}: a server error: {response}"
        );
        if response.status >= 400 {
            assert_json_4xx(&response, body);
            assert_eq!(response.status, 400, "{body:?}: {response}");
        }
        // The same command after some text: the note is kept, the command's
        // trouble reported.
        let with_text = format!("Looking into it.\n{body}");
        let response = desk.json(
            "POST",
            &notes,
            json!({ "body": with_text }).to_string().as_bytes(),
        );
        assert!(response.status < 500, "{with_text:?}: {response}");
        if response.status >= 400 {
            assert_json_4xx(&response, &with_text);
            assert_eq!(response.status, 400, "{with_text:?}: {response}");
        }
    }
    // A label name no label may have is reported with the note, which is
    // kept (it was a 409 for the whole note once).
    let response = desk.json(
        "POST",
        &notes,
        json!({ "body": "Tagging.\n/label ~\"a,b\" ~ok" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(response.status, 201, "{response}");
    let note = response.json();
    assert_eq!(note["body"], "Tagging.", "{note}");
    let errors = note["commands_changes"]["errors"].to_string();
    assert!(errors.contains("a,b"), "{note}");
    let labels = desk.server.get_json(&desk.issue())["labels"].clone();
    assert!(
        labels.as_array().is_some_and(|l| l.contains(&json!("ok"))),
        "{labels}"
    );
    desk.assert_alive();
}

#[test]
fn negative_absurd_and_non_numeric_pagination_is_400() {
    let desk = Desk::start();
    let lists = [
        "/api/v4/projects".to_string(),
        "/api/v4/users".to_string(),
        "/api/v4/issues".to_string(),
        format!("{}/issues", desk.project),
        format!("{}/labels", desk.project),
        format!("{}/milestones", desk.project),
        format!("{}/members", desk.project),
        format!("{}/hooks", desk.project),
        format!("{}/notes", desk.issue()),
        format!("{}/discussions", desk.issue()),
    ];
    for list in &lists {
        for query in [
            "page=abc",
            "per_page=abc",
            "page=1.5",
            "per_page=1e3",
            "page=99999999999999999999999",
            "page=%FF%FE",
            "page[]=1",
        ] {
            let response = desk.server.get(&format!("{list}?{query}"));
            assert_json_4xx(&response, &format!("{list}?{query}"));
            assert_eq!(response.status, 400, "{list}?{query}: {response}");
        }
        // Issue #4: negative or absurd pagination is refused (GitLab would clamp).
        for query in [
            "page=-1",
            "page=0&per_page=0",
            "per_page=100000",
            "per_page=-5",
            "page=9223372036854775807&per_page=100",
            "page=-9223372036854775808",
        ] {
            let response = desk.server.get(&format!("{list}?{query}"));
            assert_json_4xx(&response, &format!("{list}?{query}"));
            assert_eq!(response.status, 400, "{list}?{query}: {response}");
        }
        let response = desk.server.get(&format!("{list}?page=1&per_page=100"));
        assert_eq!(
            response.status, 200,
            "{list}?page=1&per_page=100: {response}"
        );
        assert_eq!(response.header("x-per-page"), Some("100"), "{list}");
    }
    for query in [
        "pagination=keyset&cursor=zz",
        "pagination=keyset&cursor=3132",
        "pagination=sideways",
        "state=exploded",
        "order_by=title",
        "sort=sideways",
        "created_after=yesterday",
        "updated_before=2026-13-45",
        "iids[]=x",
        "assignee_id=someone",
        "confidential=perhaps",
    ] {
        let path = format!("{}/issues?{query}", desk.project);
        let response = desk.server.get(&path);
        assert_json_4xx(&response, &path);
        assert_eq!(response.status, 400, "{path}: {response}");
    }
    for query in [
        "after=42",
        "after=e-1",
        "limit=0",
        "limit=-3",
        "wait=61",
        "wait=NaN",
    ] {
        let path = format!("/api/v4/service_desk/events?{query}");
        let response = desk.server.get(&path);
        assert_json_4xx(&response, &path);
        assert_eq!(response.status, 400, "{path}: {response}");
    }
    desk.assert_alive();
}

#[test]
fn bodies_over_the_limit_are_413() {
    let desk = Desk::start();
    let huge = format!(
        "{{\"title\": \"x\", \"description\": \"{}\"}}",
        "a".repeat(MAX_BODY)
    );
    for (method, path) in [
        ("POST", format!("{}/issues", desk.project)),
        ("PUT", desk.issue()),
        ("POST", format!("{}/notes", desk.issue())),
        ("POST", "/api/v4/projects".to_string()),
        ("PUT", format!("{}/service_desk", desk.project)),
        ("POST", format!("{}/labels", desk.project)),
        ("POST", format!("{}/hooks", desk.project)),
    ] {
        let response = desk.json(method, &path, huge.as_bytes());
        assert_json_4xx(&response, &format!("{method} {path}"));
        assert_eq!(response.status, 413, "{method} {path}: {response}");
    }
    // Exactly at the limit is read (and then judged on its content).
    let (prefix, suffix) = ("{\"title\": \"x\", \"description\": \"", "\"}");
    let filler = "a".repeat(MAX_BODY - prefix.len() - suffix.len());
    let at_limit = format!("{prefix}{filler}{suffix}");
    assert_eq!(at_limit.len(), MAX_BODY);
    let response = desk.json(
        "POST",
        &format!("{}/issues", desk.project),
        at_limit.as_bytes(),
    );
    assert_json_4xx(&response, "a description over GitLab's limit");
    assert_eq!(response.status, 400, "{response}");
    // Chunked, with no length announced: refused once the limit is passed.
    let response = raw_request(
        &desk,
        format!(
            "POST {}/issues HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             PRIVATE-TOKEN: {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            desk.project
        )
        .into_bytes(),
        &chunked(huge.as_bytes()),
    );
    assert_json_4xx(&response, "chunked huge body");
    assert_eq!(response.status, 413, "{response}");
    desk.assert_alive();
}

#[test]
fn invalid_utf8_in_paths_and_queries_is_a_json_4xx() {
    let desk = Desk::start();
    let p = &desk.project;
    for path in [
        "/api/v4/projects/%FF%FE".to_string(),
        "/api/v4/projects/%C3%28/issues".to_string(),
        format!("{p}/issues/%ED%A0%80"),
        format!("{p}/labels/%FF"),
        format!("{p}/issues/1/notes/%80"),
        "/api/v4/users/%F0%28%8C%BC".to_string(),
        format!("{p}/issues?state=%FF"),
        format!("{p}/issues?created_after=%C0%AF"),
        "/api/v4/service_desk/events?after=%FF".to_string(),
        "/api/v4/%FF".to_string(),
    ] {
        let response = desk.server.get(&path);
        assert_json_4xx(&response, &path);
    }
    // Searching for text that was not UTF-8 finds nothing; it is no error.
    let response = desk.server.get(&format!("{p}/issues?search=%FF%FE"));
    assert_eq!(response.status, 200, "{response}");
    // Raw bytes that are not allowed in a request line at all: hyper refuses
    // the request before mxdesk sees it (a bare 400, not JSON).
    let mut head = b"GET /api/v4/projects/\xff\xfe HTTP/1.1\r\n".to_vec();
    head.extend_from_slice(
        format!("Host: x\r\nConnection: close\r\nPRIVATE-TOKEN: {ADMIN_TOKEN}\r\n\r\n").as_bytes(),
    );
    let response = raw_request(&desk, head, b"");
    assert!(
        (400..500).contains(&response.status),
        "raw non-ASCII request line: {response}"
    );
    // A token header that is not UTF-8 is no token.
    let mut head =
        format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nPRIVATE-TOKEN: ").into_bytes();
    head.extend_from_slice(b"\xff\xfe\r\n\r\n");
    let response = raw_request(&desk, head, b"");
    assert_json_4xx(&response, "non-UTF-8 token");
    assert_eq!(response.status, 401, "{response}");
    desk.assert_alive();
}

#[test]
fn unknown_routes_and_methods_are_json_404_and_405() {
    let desk = Desk::start();
    for path in [
        "/api/v4/nope",
        "/api/v4/projects/1/nope",
        "/api/v4/projects/1/issues/1/nope/2",
        "/api/v4/projects/1/labels/a/b/c",
        "/api/v4/service_desk/events/nope",
        "/api/v3/projects",
        "/api/v4//projects",
        "/nope",
        "/",
    ] {
        let response = desk.server.get(path);
        let message = assert_json_4xx(&response, path);
        assert_eq!(response.status, 404, "{path}: {response}");
        assert_eq!(message, json!("404 Not Found"), "{path}");
    }
    for (method, path) in [
        ("PATCH", "/api/v4/projects".to_string()),
        ("DELETE", desk.issue()),
        ("POST", "/api/v4/user".to_string()),
        ("PUT", "/api/v4/openapi.json".to_string()),
        ("DELETE", format!("{}/milestones/1/issues", desk.project)),
    ] {
        let response = desk.server.request(method, &path, &[], b"");
        let message = assert_json_4xx(&response, &format!("{method} {path}"));
        assert_eq!(response.status, 405, "{method} {path}: {response}");
        assert_eq!(message, json!("405 Method Not Allowed"));
        assert!(response.header("allow").is_some(), "{response}");
    }
    // Without a token an API route, known or not, is 401 (existence is
    // not revealed); a bad token is the same.
    for (token, path) in [
        (None, "/api/v4/nope"),
        (None, "/api/v4/projects"),
        (Some("wrong"), "/api/v4/projects"),
        (Some(&"x".repeat(300)[..]), "/api/v4/projects"),
    ] {
        let headers: Vec<(&str, &str)> = token.map(|t| ("PRIVATE-TOKEN", t)).into_iter().collect();
        let response = common::http_request(desk.server.api_addr, "GET", path, &headers, b"");
        assert_json_4xx(&response, path);
        assert_eq!(response.status, 401, "{path}: {response}");
    }
    desk.assert_alive();
}

/// Sends `head` and `body` as they are; reads the whole response.
fn raw_request(desk: &Desk, head: Vec<u8>, body: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(desk.server.api_addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.write_all(&head).expect("write head");
    // The server may answer and close before reading all of a refused body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)));
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(length) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(length);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// `data` in HTTP/1.1 chunks of 64 KiB.
fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1024);
    for chunk in data.chunks(64 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}
