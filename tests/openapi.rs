//! The OpenAPI document and the router agree: the document served at
//! `/api/v4/openapi.json` (without a token) lists exactly the routes of
//! `mxdesk::api::ROUTES`, and a real server recognises every one of them —
//! no route of the list answers the unknown-route `404 Not Found` or `405`,
//! and each answers a status the document gives for it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{http_request, TestServer, ADMIN_TOKEN, IO_TIMEOUT};
use serde_json::{json, Value};

/// Outbound mail (thank-you, participants) goes to a closed local port:
/// the tests never reach outside the machine.
const LOCAL_RELAY: &str = "outbound.relay = \"127.0.0.1:1\"";

/// The document, fetched without a token.
fn served_document(server: &TestServer) -> Value {
    let response = http_request(server.api_addr, "GET", "/api/v4/openapi.json", &[], b"");
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response}"
    );
    response.json()
}

/// (METHOD, path template) of every operation in the document.
fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths is an object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("path item is an object");
        for method in item.keys() {
            if [
                "get", "head", "post", "put", "delete", "patch", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                routes.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes
}

fn router_routes() -> BTreeSet<(String, String)> {
    let routes: BTreeSet<(String, String)> = mxdesk::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        routes.len(),
        mxdesk::api::ROUTES.len(),
        "ROUTES lists a route twice"
    );
    routes
}

#[test]
fn document_lists_exactly_the_routes_of_the_router() {
    let server = TestServer::start();
    let document = served_document(&server);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "not an OpenAPI 3 document"
    );
    let documented = documented_routes(&document);
    let routed = router_routes();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "served but not in openapi.json: {undocumented:?}\n\
         in openapi.json but not in ROUTES: {unrouted:?}"
    );
}

/// Every `{name}` of a path is declared as a path parameter of each of its
/// operations, and every `$ref` points at something that exists.
#[test]
fn document_parameters_and_references_resolve() {
    let document: Value =
        serde_json::from_str(include_str!("../src/api/openapi.json")).expect("openapi.json");
    let resolve = |value: &Value| -> Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => document
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {pointer}"))
                .clone(),
            None => value.clone(),
        }
    };
    check_refs(&document, &document);
    for (path, item) in document["paths"].as_object().expect("paths") {
        let names: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, operation) in item.as_object().expect("path item") {
            let declared: BTreeSet<String> = operation["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .map(&resolve)
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let wanted: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
            assert_eq!(declared, wanted, "{method} {path}: path parameters");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{method} {path}: no success response"
            );
        }
    }
}

fn check_refs(document: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(pointer)) = map.get("$ref") {
                assert!(
                    document.pointer(pointer.trim_start_matches('#')).is_some(),
                    "dangling $ref {pointer}"
                );
            }
            map.values().for_each(|v| check_refs(document, v));
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(document, v)),
        _ => {}
    }
}

/// The status line of a response whose body is not read: the event stream
/// (which never ends) and `HEAD`.
fn status_only(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let auth = token
        .map(|t| format!("PRIVATE-TOKEN: {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n"
    )
    .expect("write request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status line in {head:?}"));
    (status, head)
}

fn created(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server.post_json(path, &body);
    assert_eq!(response.status, 201, "POST {path}: {response}");
    response.json()
}

/// Ids that exist, for every path parameter of the document.
fn seed(server: &TestServer) -> BTreeMap<&'static str, String> {
    let project = server.create_project("routes");
    let id = project["id"].as_u64().expect("project id");
    let p = format!("/api/v4/projects/{id}");
    let issue = created(
        server,
        &format!("{p}/issues"),
        json!({ "title": "Route check" }),
    );
    let iid = issue["iid"].as_u64().expect("iid");
    let note = created(
        server,
        &format!("{p}/issues/{iid}/notes"),
        json!({ "body": "a note" }),
    );
    let discussion = created(
        server,
        &format!("{p}/issues/{iid}/discussions"),
        json!({ "body": "a thread" }),
    );
    let participant = "someone@example.org";
    created(
        server,
        &format!("{p}/issues/{iid}/email_participants"),
        json!({ "email": participant }),
    );
    let label = created(
        server,
        &format!("{p}/labels"),
        json!({ "name": "bug", "color": "#ff0000" }),
    );
    let milestone = created(server, &format!("{p}/milestones"), json!({ "title": "v1" }));
    let hook = created(
        server,
        &format!("{p}/hooks"),
        json!({ "url": "http://127.0.0.1:1/hook", "issues_events": true }),
    );
    let user = created(
        server,
        "/api/v4/users",
        json!({ "username": "agent", "name": "Agent" }),
    );
    let user_id = user["id"].as_u64().expect("user id");
    let token = created(
        server,
        &format!("/api/v4/users/{user_id}/personal_access_tokens"),
        json!({ "name": "t", "scopes": ["api"] }),
    );
    created(
        server,
        &format!("{p}/members"),
        json!({ "user_id": user_id, "access_level": 30 }),
    );
    let mut values = BTreeMap::new();
    values.insert("id", id.to_string());
    values.insert("issue_iid", iid.to_string());
    values.insert("note_id", note["id"].to_string());
    values.insert(
        "discussion_id",
        discussion["id"]
            .as_str()
            .expect("discussion id")
            .to_string(),
    );
    values.insert("label_id", label["id"].to_string());
    values.insert("milestone_id", milestone["id"].to_string());
    values.insert("hook_id", hook["id"].to_string());
    values.insert("user_id", user_id.to_string());
    // The new user's token: revoking the admin's would end the test.
    values.insert("token_id", token["id"].to_string());
    values.insert("attachment_id", "1".to_string());
    values.insert("sha256", "0".repeat(64));
    values.insert("email", participant.to_string());
    values.insert("token", "no-such-unsubscribe-token".to_string());
    values
}

fn fill(template: &str, values: &BTreeMap<&'static str, String>) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => values
                    .get(name)
                    .unwrap_or_else(|| panic!("no value for {{{name}}} in {template}"))
                    .clone(),
                None => segment.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a response is the router's "no such route" or "no such method".
fn unrecognised(status: u16, body: &[u8]) -> bool {
    status == 405
        || status == 404
            && serde_json::from_slice::<Value>(body)
                .is_ok_and(|v| v == json!({ "message": "404 Not Found" }))
}

#[test]
fn a_real_server_recognises_every_route_and_answers_a_documented_status() {
    let server = TestServer::start_with(LOCAL_RELAY);
    let document = served_document(&server);
    let values = seed(&server);
    let mut failures = Vec::new();
    for (method, template) in mxdesk::api::ROUTES {
        let path = fill(template, &values);
        let (status, detail, body) = if *method == "HEAD" || path.ends_with("/events/stream") {
            let (status, head) = status_only(server.api_addr, method, &path, Some(ADMIN_TOKEN));
            (status, head, Vec::new())
        } else {
            let headers: &[(&str, &str)] = if matches!(*method, "POST" | "PUT") {
                &[("Content-Type", "application/json")]
            } else {
                &[]
            };
            let body: &[u8] = if matches!(*method, "POST" | "PUT") {
                b"{}"
            } else {
                b""
            };
            let response = server.request(method, &path, headers, body);
            (response.status, response.to_string(), response.body)
        };
        if unrecognised(status, &body) {
            failures.push(format!("{method} {path}: not routed: {detail}"));
            continue;
        }
        let documented = &document["paths"][*template][method.to_ascii_lowercase()]["responses"];
        if documented.get(status.to_string()).is_none() {
            failures.push(format!(
                "{method} {path}: status {status} is not documented: {detail}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether `path` (filled) is an instance of `template`.
fn instance_of(template: &str, path: &str) -> bool {
    let parts: Vec<&str> = template.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(&segments)
            .all(|(part, segment)| part.starts_with('{') || part == segment)
}

/// The other direction of "every route is in ROUTES": at every path of
/// ROUTES, each method that no ROUTES entry serves there is refused with
/// `405` and an `Allow` header naming exactly the ones that are.
/// (`/healthz` answers every method, by design.)
#[test]
fn methods_beyond_routes_are_refused_with_allow() {
    let server = TestServer::start_with(LOCAL_RELAY);
    let values = seed(&server);
    let templates: BTreeSet<&str> = mxdesk::api::ROUTES
        .iter()
        .map(|(_, template)| *template)
        .filter(|template| *template != "/healthz")
        .collect();
    let mut failures = Vec::new();
    for template in templates {
        let path = fill(template, &values);
        let served: BTreeSet<&str> = mxdesk::api::ROUTES
            .iter()
            .filter(|(_, other)| instance_of(other, &path))
            .map(|(method, _)| *method)
            .collect();
        let allow = served.iter().copied().collect::<Vec<_>>().join(", ");
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            if served.contains(method) {
                continue;
            }
            let (status, head) = status_only(server.api_addr, method, &path, Some(ADMIN_TOKEN));
            let allow_header = head
                .lines()
                .find_map(|line| line.strip_prefix("allow: "))
                .unwrap_or("<none>");
            if status != 405 || allow_header != allow {
                failures.push(format!(
                    "{method} {path}: wanted 405 with Allow: {allow}, got {status} with Allow: {allow_header}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_routes_and_methods_are_told_apart_from_missing_records() {
    let server = TestServer::start();
    let response = server.get("/api/v4/no_such_thing");
    assert!(unrecognised(response.status, &response.body), "{response}");
    let response = server.request("PATCH", "/api/v4/projects", &[], b"");
    assert!(unrecognised(response.status, &response.body), "{response}");
    let response = server.request("POST", "/api/v4/openapi.json", &[], b"");
    assert!(unrecognised(response.status, &response.body), "{response}");
    let response = server.get("/api/v4/projects/999999");
    assert_eq!(response.status, 404, "{response}");
    assert!(!unrecognised(response.status, &response.body), "{response}");
}
