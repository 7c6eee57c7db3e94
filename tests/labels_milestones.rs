//! Project labels and milestones over the real API: GitLab's shapes, CRUD,
//! duplicates, validation (always a 4xx with a JSON message), pagination
//! headers and who may read or write.

mod common;

use common::{http_request, HttpResponse, TestServer};
use serde_json::{json, Value};

const LABEL_KEYS: &[&str] = &[
    "id",
    "name",
    "color",
    "text_color",
    "description",
    "description_html",
    "open_issues_count",
    "closed_issues_count",
    "open_merge_requests_count",
    "subscribed",
    "priority",
    "is_project_label",
];

const MILESTONE_KEYS: &[&str] = &[
    "id",
    "iid",
    "project_id",
    "title",
    "description",
    "state",
    "created_at",
    "updated_at",
    "due_date",
    "start_date",
    "expired",
    "web_url",
];

fn assert_keys(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(*key).is_some(), "`{key}` missing in {value}");
    }
}

fn send(server: &TestServer, method: &str, path: &str, body: &Value) -> HttpResponse {
    server.request(
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn send_raw(
    server: &TestServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> HttpResponse {
    server.request(
        method,
        path,
        &[("Content-Type", content_type)],
        body.as_bytes(),
    )
}

/// A request with `token` instead of the admin's.
fn as_user(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> HttpResponse {
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
}

fn create_label(server: &TestServer, project: u64, name: &str, color: &str) -> Value {
    let response = send(
        server,
        "POST",
        &format!("/api/v4/projects/{project}/labels"),
        &json!({ "name": name, "color": color }),
    );
    assert_eq!(response.status, 201, "{response}");
    response.json()
}

fn create_milestone(server: &TestServer, project: u64, body: Value) -> Value {
    let response = send(
        server,
        "POST",
        &format!("/api/v4/projects/{project}/milestones"),
        &body,
    );
    assert_eq!(response.status, 201, "{response}");
    response.json()
}

fn project_id(project: &Value) -> u64 {
    project["id"].as_u64().expect("project id")
}

#[test]
fn labels_can_be_created_read_updated_and_deleted() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    let base = format!("/api/v4/projects/{p}/labels");

    let response = send(
        &server,
        "POST",
        &base,
        &json!({ "name": " bug ", "color": "#d9534f", "description": "Something <broken>" }),
    );
    assert_eq!(response.status, 201, "{response}");
    assert!(response
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let bug = response.json();
    assert_keys(&bug, LABEL_KEYS);
    assert_eq!(bug["name"], "bug");
    assert_eq!(bug["color"], "#d9534f");
    assert_eq!(bug["text_color"], "#FFFFFF");
    assert_eq!(bug["description"], "Something <broken>");
    assert_eq!(bug["description_html"], "Something &lt;broken&gt;");
    assert_eq!(bug["open_issues_count"], 0);
    assert_eq!(bug["closed_issues_count"], 0);
    assert_eq!(bug["open_merge_requests_count"], 0);
    assert_eq!(bug["subscribed"], false);
    assert!(bug["priority"].is_null());
    assert_eq!(bug["is_project_label"], true);
    let bug_id = bug["id"].as_u64().expect("label id");

    // Colour names and #RGB are accepted and stored as #RRGGBB; no description is null.
    let named = create_label(&server, p, "needs info/customer", "Yellow");
    assert_eq!(named["color"], "#ffff00");
    assert_eq!(named["text_color"], "#1F1E24");
    assert!(named["description"].is_null() && named["description_html"].is_null());
    assert_eq!(create_label(&server, p, "ops", "#abc")["color"], "#aabbcc");

    // By id, by name (any case), by URL-encoded name holding a slash.
    assert_eq!(server.get_json(&format!("{base}/{bug_id}"))["name"], "bug");
    assert_eq!(server.get_json(&format!("{base}/BUG"))["id"], bug_id);
    assert_eq!(
        server.get_json(&format!("{base}/needs%20info%2Fcustomer"))["id"],
        named["id"]
    );
    let list = server.get_json(&base);
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|l| l["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["bug", "needs info/customer", "ops"]);
    list.as_array()
        .expect("array")
        .iter()
        .for_each(|l| assert_keys(l, LABEL_KEYS));
    let found = server.get_json(&format!("{base}?search=INFO"));
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");

    // Update by name in the path.
    let response = send(
        &server,
        "PUT",
        &format!("{base}/bug"),
        &json!({ "new_name": "defect", "color": "red", "description": null }),
    );
    assert_eq!(response.status, 200, "{response}");
    let defect = response.json();
    assert_keys(&defect, LABEL_KEYS);
    assert_eq!(defect["id"], bug_id);
    assert_eq!(defect["name"], "defect");
    assert_eq!(defect["color"], "#ff0000");
    assert!(defect["description"].is_null());

    // python-gitlab updates through the collection with `name` in the body.
    let response = send(
        &server,
        "PUT",
        &base,
        &json!({ "name": "defect", "description": "From python-gitlab" }),
    );
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(response.json()["description"], "From python-gitlab");

    // Delete by id → 204, then it is gone.
    let response = server.request("DELETE", &format!("{base}/{bug_id}"), &[], b"");
    assert_eq!(response.status, 204, "{response}");
    assert!(response.body.is_empty());
    let message = server
        .get(&format!("{base}/{bug_id}"))
        .assert_json_error(404);
    assert_eq!(message, "404 Label Not Found");
    // Delete through the collection (GitLab's older form).
    let response = send(&server, "DELETE", &base, &json!({ "name": "ops" }));
    assert_eq!(response.status, 204, "{response}");
    assert_eq!(server.get_json(&base).as_array().map(Vec::len), Some(1));

    // A form-encoded create works like JSON.
    let response = send_raw(
        &server,
        "POST",
        &base,
        "application/x-www-form-urlencoded",
        "name=from+form&color=%23336699&description=d",
    );
    assert_eq!(response.status, 201, "{response}");
    assert_eq!(response.json()["color"], "#336699");
}

#[test]
fn duplicate_label_names_are_refused_case_insensitively() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    let base = format!("/api/v4/projects/{p}/labels");
    create_label(&server, p, "Bug", "#d9534f");
    let other = create_label(&server, p, "feature", "#428bca");

    for name in ["Bug", "bug", " BUG "] {
        let response = send(
            &server,
            "POST",
            &base,
            &json!({ "name": name, "color": "#ffffff" }),
        );
        assert_eq!(response.assert_json_error(409), "Label already exists");
    }
    // Renaming onto a taken name is GitLab's validation error.
    let response = send(
        &server,
        "PUT",
        &format!("{base}/{}", other["id"]),
        &json!({ "new_name": "BUG" }),
    );
    assert_eq!(
        response.assert_json_error(400),
        json!({ "title": ["has already been taken"] })
    );
    // A label may change the case of its own name.
    let response = send(
        &server,
        "PUT",
        &format!("{base}/bug"),
        &json!({ "new_name": "BUG" }),
    );
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(response.json()["name"], "BUG");
    // The same name in another project is another label.
    let q = project_id(&server.create_project("other"));
    create_label(&server, q, "bug", "#d9534f");
}

#[test]
fn bad_label_input_is_a_4xx_with_a_json_message() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    let base = format!("/api/v4/projects/{p}/labels");
    create_label(&server, p, "bug", "#d9534f");

    let cases: Vec<(Value, u16)> = vec![
        (json!({ "color": "#ffffff" }), 400),
        (json!({ "name": "x" }), 400),
        (json!({ "name": "x", "color": "#12" }), 400),
        (json!({ "name": "x", "color": "#gggggg" }), 400),
        (json!({ "name": "x", "color": "notacolor" }), 400),
        (json!({ "name": "x", "color": 123 }), 400),
        (json!({ "name": "x".repeat(256), "color": "#ffffff" }), 400),
        (json!({ "name": "a,b", "color": "#ffffff" }), 400),
        (json!({ "name": "   ", "color": "#ffffff" }), 400),
        (json!({ "name": ["x"], "color": "#ffffff" }), 400),
        (json!({ "name": { "x": 1 }, "color": "#ffffff" }), 400),
        (json!({ "name": true, "color": "#ffffff" }), 400),
        (
            json!({ "name": "x", "color": "#ffffff", "description": ["d"] }),
            400,
        ),
        (
            json!({ "name": "x", "color": "#ffffff", "priority": "high" }),
            400,
        ),
    ];
    for (body, status) in cases {
        let response = send(&server, "POST", &base, &body);
        response.assert_json_error(status);
        assert_ne!(response.status, 201, "{body} was accepted");
    }
    let message = send(
        &server,
        "POST",
        &base,
        &json!({ "name": "x", "color": "#12" }),
    )
    .assert_json_error(400);
    assert_eq!(message, json!({ "color": ["must be a valid color code"] }));
    let message = send(
        &server,
        "POST",
        &base,
        &json!({ "name": "x".repeat(256), "color": "#ffffff" }),
    )
    .assert_json_error(400);
    assert_eq!(
        message,
        json!({ "title": ["is too long (maximum is 255 characters)"] })
    );
    // 255 characters is still fine.
    create_label(&server, p, &"é".repeat(255), "#ffffff");

    send_raw(&server, "POST", &base, "application/json", "{\"name\": ").assert_json_error(400);
    send_raw(&server, "POST", &base, "application/json", "[1, 2]").assert_json_error(400);
    send(&server, "PUT", &format!("{base}/bug"), &json!({})).assert_json_error(400);
    send(
        &server,
        "PUT",
        &format!("{base}/bug"),
        &json!({ "color": "blurple" }),
    )
    .assert_json_error(400);
    send(
        &server,
        "PUT",
        &format!("{base}/bug"),
        &json!({ "new_name": "" }),
    )
    .assert_json_error(400);
    send(
        &server,
        "PUT",
        &base,
        &json!({ "description": "no target" }),
    )
    .assert_json_error(400);
    send(
        &server,
        "PUT",
        &format!("{base}/nope"),
        &json!({ "color": "red" }),
    )
    .assert_json_error(404);
    assert_eq!(
        server.get(&format!("{base}/999999")).assert_json_error(404),
        "404 Label Not Found"
    );
    server
        .request("DELETE", &format!("{base}/nope"), &[], b"")
        .assert_json_error(404);
    server
        .get("/api/v4/projects/999999/labels")
        .assert_json_error(404);
    send(&server, "POST", &format!("{base}/bug"), &json!({})).assert_json_error(405);
    server
        .request("PATCH", &base, &[], b"")
        .assert_json_error(405);
    server
        .get(&format!("{base}/bug/subscribers/x"))
        .assert_json_error(404);
    server
        .get(&format!("{base}?page=abc"))
        .assert_json_error(400);
}

#[test]
fn milestones_can_be_created_read_updated_and_deleted() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    let p = project_id(&project);
    let base = format!("/api/v4/projects/{p}/milestones");

    let v1 = create_milestone(
        &server,
        p,
        json!({
            "title": " v1.0 ", "description": "First", "due_date": "2999-03-31",
            "start_date": "2999-03-01",
        }),
    );
    assert_keys(&v1, MILESTONE_KEYS);
    assert_eq!(v1["iid"], 1);
    assert_eq!(v1["project_id"], p);
    assert_eq!(v1["title"], "v1.0");
    assert_eq!(v1["description"], "First");
    assert_eq!(v1["state"], "active");
    assert_eq!(v1["due_date"], "2999-03-31");
    assert_eq!(v1["start_date"], "2999-03-01");
    assert_eq!(v1["expired"], false);
    assert!(
        v1["web_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/desk/acme/-/milestones/1")),
        "{v1}"
    );
    assert!(v1["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let v1_id = v1["id"].as_u64().expect("milestone id");

    let old = create_milestone(
        &server,
        p,
        json!({ "title": "old", "due_date": "2000-01-01" }),
    );
    assert_eq!(old["iid"], 2);
    assert_eq!(old["expired"], true);
    assert!(old["description"].is_null() && old["start_date"].is_null());
    // iids count per project.
    let q = project_id(&server.create_project("other"));
    assert_eq!(
        create_milestone(&server, q, json!({ "title": "v1.0" }))["iid"],
        1
    );

    assert_eq!(server.get_json(&format!("{base}/{v1_id}"))["title"], "v1.0");
    // Newest first.
    let list = server.get_json(&base);
    let titles: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(titles, ["old", "v1.0"]);

    // Close, then filter by state, title, search and iids.
    let response = send(
        &server,
        "PUT",
        &format!("{base}/{v1_id}"),
        &json!({ "state_event": "close" }),
    );
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(response.json()["state"], "closed");
    let count = |query: &str| {
        server
            .get_json(&format!("{base}?{query}"))
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    assert_eq!(count("state=closed"), 1);
    assert_eq!(count("state=active"), 1);
    assert_eq!(count("title=v1.0"), 1);
    assert_eq!(count("title=v1"), 0);
    assert_eq!(count("search=FIRST"), 1);
    assert_eq!(count("iids[]=2"), 1);
    assert_eq!(count("iids[]=1&iids[]=2"), 2);
    assert_eq!(count("iids=1,2"), 2);

    // Update fields, clear dates, reactivate.
    let response = send(
        &server,
        "PUT",
        &format!("{base}/{v1_id}"),
        &json!({
            "title": "v1.1", "description": "", "due_date": null, "start_date": "",
            "state_event": "activate",
        }),
    );
    assert_eq!(response.status, 200, "{response}");
    let updated = response.json();
    assert_keys(&updated, MILESTONE_KEYS);
    assert_eq!(updated["title"], "v1.1");
    assert!(updated["description"].is_null());
    assert!(updated["due_date"].is_null() && updated["start_date"].is_null());
    assert_eq!(updated["state"], "active");
    assert_eq!(updated["iid"], 1);

    let response = server.request("DELETE", &format!("{base}/{v1_id}"), &[], b"");
    assert_eq!(response.status, 204, "{response}");
    assert_eq!(
        server
            .get(&format!("{base}/{v1_id}"))
            .assert_json_error(404),
        "404 Milestone Not Found"
    );
    // A milestone of another project is not found through this one.
    let other = server.get_json(&format!("/api/v4/projects/{q}/milestones"));
    let other_id = other[0]["id"].as_u64().expect("id");
    server
        .get(&format!("{base}/{other_id}"))
        .assert_json_error(404);
}

#[test]
fn bad_milestone_input_is_a_4xx_with_a_json_message() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    let base = format!("/api/v4/projects/{p}/milestones");
    let v1 = create_milestone(&server, p, json!({ "title": "v1" }));
    let v1_path = format!("{base}/{}", v1["id"]);

    let message = send(&server, "POST", &base, &json!({ "title": "v1" })).assert_json_error(400);
    assert_eq!(message, json!({ "title": ["has already been taken"] }));
    create_milestone(&server, p, json!({ "title": "v2" }));
    let message = send(&server, "PUT", &v1_path, &json!({ "title": "v2" })).assert_json_error(400);
    assert_eq!(message, json!({ "title": ["has already been taken"] }));

    for body in [
        json!({}),
        json!({ "description": "no title" }),
        json!({ "title": "" }),
        json!({ "title": "x".repeat(256) }),
        json!({ "title": ["x"] }),
        json!({ "title": "d", "due_date": "2026-02-30" }),
        json!({ "title": "d", "due_date": "tomorrow" }),
        json!({ "title": "d", "due_date": 2026 }),
        json!({ "title": "d", "start_date": "2026-1-1" }),
        json!({ "title": "d", "due_date": "12026-01-01" }),
        json!({ "title": "d", "description": { "a": 1 } }),
    ] {
        let response = send(&server, "POST", &base, &body);
        assert_ne!(response.status, 201, "{body} was accepted");
        response.assert_json_error(400);
    }
    let message = send(
        &server,
        "POST",
        &base,
        &json!({ "title": "d", "start_date": "2026-03-02", "due_date": "2026-03-01" }),
    )
    .assert_json_error(400);
    assert_eq!(
        message,
        json!({ "due_date": ["must be greater than start date"] })
    );
    // The check also holds when only one of the dates changes.
    let response = send(
        &server,
        "PUT",
        &v1_path,
        &json!({ "due_date": "2026-03-01" }),
    );
    assert_eq!(response.status, 200, "{response}");
    send(
        &server,
        "PUT",
        &v1_path,
        &json!({ "start_date": "2026-03-05" }),
    )
    .assert_json_error(400);

    send(&server, "PUT", &v1_path, &json!({})).assert_json_error(400);
    send(
        &server,
        "PUT",
        &v1_path,
        &json!({ "state_event": "reopen" }),
    )
    .assert_json_error(400);
    server
        .get(&format!("{base}?state=opened"))
        .assert_json_error(400);
    server
        .get(&format!("{base}?iids[]=x"))
        .assert_json_error(400);
    server
        .get(&format!("{base}?updated_after=never"))
        .assert_json_error(400);
    assert_eq!(
        server.get(&format!("{base}/abc")).assert_json_error(404),
        "404 Milestone Not Found"
    );
    server.get(&format!("{base}/999999")).assert_json_error(404);
    send(
        &server,
        "PUT",
        &format!("{base}/999999"),
        &json!({ "title": "z" }),
    )
    .assert_json_error(404);
    server
        .request("DELETE", &format!("{base}/999999"), &[], b"")
        .assert_json_error(404);
    send(&server, "POST", &v1_path, &json!({})).assert_json_error(405);
    server
        .get(&format!("{v1_path}/nothing/here"))
        .assert_json_error(404);
}

#[test]
fn lists_carry_gitlab_pagination_headers() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    for i in 0..5 {
        create_label(&server, p, &format!("label-{i}"), "#428bca");
        create_milestone(&server, p, json!({ "title": format!("m{i}") }));
    }
    for what in ["labels", "milestones"] {
        let path = format!("/api/v4/projects/{p}/{what}?per_page=2&page=2");
        let response = server.get(&path);
        assert_eq!(response.status, 200, "{response}");
        assert_eq!(response.json().as_array().map(Vec::len), Some(2));
        assert_eq!(response.header("x-total"), Some("5"));
        assert_eq!(response.header("x-total-pages"), Some("3"));
        assert_eq!(response.header("x-page"), Some("2"));
        assert_eq!(response.header("x-per-page"), Some("2"));
        assert_eq!(response.header("x-next-page"), Some("3"));
        assert_eq!(response.header("x-prev-page"), Some("1"));
        let link = response.header("link").unwrap_or("");
        assert!(
            link.contains(&format!(
                "/api/v4/projects/{p}/{what}?page=3&per_page=2>; rel=\"next\""
            )),
            "{link}"
        );
        let last = server.get(&format!("/api/v4/projects/{p}/{what}?per_page=2&page=3"));
        assert_eq!(last.json().as_array().map(Vec::len), Some(1));
        assert_eq!(last.header("x-next-page"), Some(""));
        // Absurd values and non-numbers are refused (issue #4).
        server
            .get(&format!(
                "/api/v4/projects/{p}/{what}?per_page=100000&page=-3"
            ))
            .assert_json_error(400);
        let all = server.get(&format!("/api/v4/projects/{p}/{what}?per_page=100"));
        assert_eq!(all.status, 200, "{all}");
        assert_eq!(all.json().as_array().map(Vec::len), Some(5));
        server
            .get(&format!("/api/v4/projects/{p}/{what}?per_page=lots"))
            .assert_json_error(400);
    }
}

/// A new user with a token of `scope` (the token is returned), a member of
/// project `p` at `level` (0: not a member).
fn user_with_token(server: &TestServer, username: &str, p: u64, level: u8, scope: &str) -> String {
    let response = send(
        server,
        "POST",
        "/api/v4/users",
        &json!({ "username": username, "name": username, "email": format!("{username}@example.org") }),
    );
    assert_eq!(response.status, 201, "create user: {response}");
    let user_id = response.json()["id"].as_u64().expect("user id");
    let response = send(
        server,
        "POST",
        &format!("/api/v4/users/{user_id}/personal_access_tokens"),
        &json!({ "name": "t", "scopes": [scope] }),
    );
    assert_eq!(response.status, 201, "create token: {response}");
    let token = response.json()["token"]
        .as_str()
        .expect("token value")
        .to_string();
    if level > 0 {
        let response = send(
            server,
            "POST",
            &format!("/api/v4/projects/{p}/members"),
            &json!({ "user_id": user_id, "access_level": level }),
        );
        assert_eq!(response.status, 201, "add member: {response}");
    }
    token
}

#[test]
fn reading_needs_the_project_and_writing_needs_reporter_with_api_scope() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    let labels = format!("/api/v4/projects/{p}/labels");
    let milestones = format!("/api/v4/projects/{p}/milestones");
    create_label(&server, p, "bug", "#d9534f");
    let v1 = create_milestone(&server, p, json!({ "title": "v1" }));

    // No token at all.
    for (method, path) in [
        ("GET", labels.clone()),
        ("POST", labels.clone()),
        ("GET", milestones.clone()),
        ("POST", milestones.clone()),
    ] {
        http_request(server.api_addr, method, &path, &[], b"").assert_json_error(401);
    }

    let new_label = json!({ "name": "new", "color": "#ffffff" });
    let new_milestone = json!({ "title": "new" });

    let guest = user_with_token(&server, "guest", p, 10, "api");
    assert_eq!(
        as_user(&server, &guest, "GET", &labels, &json!({})).status,
        200
    );
    assert_eq!(
        as_user(&server, &guest, "GET", &milestones, &json!({})).status,
        200
    );
    as_user(&server, &guest, "POST", &labels, &new_label).assert_json_error(403);
    as_user(
        &server,
        &guest,
        "PUT",
        &format!("{labels}/bug"),
        &json!({ "color": "red" }),
    )
    .assert_json_error(403);
    as_user(
        &server,
        &guest,
        "DELETE",
        &format!("{labels}/bug"),
        &json!({}),
    )
    .assert_json_error(403);
    as_user(&server, &guest, "POST", &milestones, &new_milestone).assert_json_error(403);
    as_user(
        &server,
        &guest,
        "DELETE",
        &format!("{milestones}/{}", v1["id"]),
        &json!({}),
    )
    .assert_json_error(403);

    let stranger = user_with_token(&server, "stranger", p, 0, "api");
    let message = as_user(&server, &stranger, "GET", &labels, &json!({})).assert_json_error(404);
    assert_eq!(message, "404 Project Not Found");
    as_user(&server, &stranger, "POST", &labels, &new_label).assert_json_error(404);
    as_user(&server, &stranger, "GET", &milestones, &json!({})).assert_json_error(404);

    let reader = user_with_token(&server, "reader", p, 20, "read_api");
    assert_eq!(
        as_user(&server, &reader, "GET", &labels, &json!({})).status,
        200
    );
    as_user(&server, &reader, "POST", &labels, &new_label).assert_json_error(403);
    as_user(&server, &reader, "POST", &milestones, &new_milestone).assert_json_error(403);

    let reporter = user_with_token(&server, "reporter", p, 20, "api");
    let response = as_user(&server, &reporter, "POST", &labels, &new_label);
    assert_eq!(response.status, 201, "{response}");
    let response = as_user(&server, &reporter, "POST", &milestones, &new_milestone);
    assert_eq!(response.status, 201, "{response}");
    let response = as_user(
        &server,
        &reporter,
        "DELETE",
        &format!("{labels}/new"),
        &json!({}),
    );
    assert_eq!(response.status, 204, "{response}");
}

#[test]
fn labels_and_milestones_follow_their_issues() {
    let server = TestServer::start();
    let p = project_id(&server.create_project("acme"));
    let labels = format!("/api/v4/projects/{p}/labels");
    let issues = format!("/api/v4/projects/{p}/issues");
    create_label(&server, p, "bug", "#d9534f");
    let v1 = create_milestone(&server, p, json!({ "title": "v1" }));
    let v1_path = format!("/api/v4/projects/{p}/milestones/{}", v1["id"]);

    let response = send(
        &server,
        "POST",
        &issues,
        &json!({ "title": "public", "labels": "bug,new one", "milestone_id": v1["id"] }),
    );
    assert_eq!(response.status, 201, "{response}");
    let public = response.json()["iid"].as_u64().expect("iid");
    let response = send(
        &server,
        "POST",
        &issues,
        &json!({ "title": "secret", "labels": ["BUG"], "confidential": true }),
    );
    assert_eq!(response.status, 201, "{response}");

    // An unknown label set on an issue is created, with GitLab's default colour.
    let created = server.get_json(&format!("{labels}/new%20one"));
    assert_eq!(created["color"], "#6699cc");
    assert_eq!(created["open_issues_count"], 1);
    // Counts follow state, and confidential tickets only count for those
    // who may see them.
    let bug = server.get_json(&format!("{labels}/bug"));
    assert_eq!(
        (
            bug["open_issues_count"].as_u64(),
            bug["closed_issues_count"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let response = send(
        &server,
        "PUT",
        &format!("{issues}/{public}"),
        &json!({ "state_event": "close" }),
    );
    assert_eq!(response.status, 200, "{response}");
    let bug = server.get_json(&format!("{labels}/bug"));
    assert_eq!(
        (
            bug["open_issues_count"].as_u64(),
            bug["closed_issues_count"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let guest = user_with_token(&server, "guest", p, 10, "api");
    let seen = as_user(&server, &guest, "GET", &labels, &json!({})).json();
    let guest_bug = seen
        .as_array()
        .and_then(|all| all.iter().find(|l| l["name"] == "bug"))
        .expect("bug listed")
        .clone();
    assert_eq!(guest_bug["open_issues_count"], 0);
    assert_eq!(guest_bug["closed_issues_count"], 1);

    // The milestone's issues.
    let response = server.get(&format!("{v1_path}/issues"));
    assert_eq!(response.status, 200, "{response}");
    let in_milestone = response.json();
    assert_eq!(
        in_milestone.as_array().map(Vec::len),
        Some(1),
        "{in_milestone}"
    );
    assert_eq!(in_milestone[0]["iid"], public);
    assert_eq!(in_milestone[0]["milestone"]["id"], v1["id"]);
    assert_eq!(response.header("x-total"), Some("1"));
    assert_eq!(
        server.get_json(&format!("{v1_path}/merge_requests")),
        json!([])
    );
    server
        .get(&format!("/api/v4/projects/{p}/milestones/999999/issues"))
        .assert_json_error(404);

    // Renaming and deleting a label rewrites the issues that carry it.
    let response = send(
        &server,
        "PUT",
        &format!("{labels}/bug"),
        &json!({ "new_name": "defect" }),
    );
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(
        server.issue(&p.to_string(), public)["labels"],
        json!(["defect", "new one"])
    );
    let response = server.request("DELETE", &format!("{labels}/new%20one"), &[], b"");
    assert_eq!(response.status, 204, "{response}");
    assert_eq!(
        server.issue(&p.to_string(), public)["labels"],
        json!(["defect"])
    );
    let by_label = server.get_json(&format!("{issues}?labels=defect&state=all"));
    assert_eq!(by_label.as_array().map(Vec::len), Some(2));

    // Deleting the milestone takes it off the issue.
    let response = server.request("DELETE", &v1_path, &[], b"");
    assert_eq!(response.status, 204, "{response}");
    assert!(server.issue(&p.to_string(), public)["milestone"].is_null());
}
