//! Maps method and path to a handler. Paths are split on `/` first and each
//! segment percent-decoded afterwards, so `group%2Fname` stays one segment.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::request::{authenticate, json_response, Params};
use super::{
    discussions, events, hooks, issues, json, labels, milestones, notes, openapi, projects,
    service_desk, users, ApiError, ApiState,
};

/// Every (method, path template) the router and its sub-routers serve, in
/// the templates of `openapi.json`, which must list exactly these
/// (`tests/openapi.rs` checks both ways and sends each to a server).
/// `/healthz` answers any method; only `GET` is listed.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/-/sent_notifications/{token}/unsubscribe"),
    ("HEAD", "/-/sent_notifications/{token}/unsubscribe"),
    ("POST", "/-/sent_notifications/{token}/unsubscribe"),
    ("GET", "/api/v4/openapi.json"),
    ("GET", "/api/v4/user"),
    ("GET", "/api/v4/users"),
    ("POST", "/api/v4/users"),
    ("GET", "/api/v4/users/{user_id}"),
    ("POST", "/api/v4/users/{user_id}/personal_access_tokens"),
    ("POST", "/api/v4/user/personal_access_tokens"),
    ("GET", "/api/v4/personal_access_tokens"),
    ("DELETE", "/api/v4/personal_access_tokens/{token_id}"),
    ("GET", "/api/v4/projects/{id}/members"),
    ("GET", "/api/v4/projects/{id}/members/all"),
    ("GET", "/api/v4/projects/{id}/members/{user_id}"),
    ("GET", "/api/v4/projects/{id}/members/all/{user_id}"),
    ("POST", "/api/v4/projects/{id}/members"),
    ("PUT", "/api/v4/projects/{id}/members/{user_id}"),
    ("DELETE", "/api/v4/projects/{id}/members/{user_id}"),
    ("GET", "/api/v4/projects"),
    ("POST", "/api/v4/projects"),
    ("GET", "/api/v4/projects/{id}"),
    ("GET", "/api/v4/projects/{id}/issues"),
    ("GET", "/api/v4/projects/{id}/issues/{issue_iid}"),
    ("GET", "/api/v4/issues"),
    ("POST", "/api/v4/projects/{id}/issues"),
    ("GET", "/api/v4/projects/{id}/issues/{issue_iid}/time_stats"),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/time_estimate",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/reset_time_estimate",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/add_spent_time",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/reset_spent_time",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/notes/{note_id}",
    ),
    (
        "PUT",
        "/api/v4/projects/{id}/issues/{issue_iid}/notes/{note_id}",
    ),
    (
        "DELETE",
        "/api/v4/projects/{id}/issues/{issue_iid}/notes/{note_id}",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions/{discussion_id}",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions/{discussion_id}/notes",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions/{discussion_id}/notes/{note_id}",
    ),
    (
        "PUT",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions/{discussion_id}/notes/{note_id}",
    ),
    (
        "DELETE",
        "/api/v4/projects/{id}/issues/{issue_iid}/discussions/{discussion_id}/notes/{note_id}",
    ),
    ("GET", "/api/v4/projects/{id}/issues/{issue_iid}/notes"),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/attachments/{attachment_id}",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/raw_message",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/blobs/{sha256}",
    ),
    ("POST", "/api/v4/projects/{id}/issues/{issue_iid}/notes"),
    ("PUT", "/api/v4/projects/{id}/issues/{issue_iid}"),
    (
        "GET",
        "/api/v4/projects/{id}/issues/{issue_iid}/email_participants",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/issues/{issue_iid}/email_participants",
    ),
    (
        "DELETE",
        "/api/v4/projects/{id}/issues/{issue_iid}/email_participants/{email}",
    ),
    // labels::route
    ("GET", "/api/v4/projects/{id}/labels"),
    ("POST", "/api/v4/projects/{id}/labels"),
    ("PUT", "/api/v4/projects/{id}/labels"),
    ("DELETE", "/api/v4/projects/{id}/labels"),
    ("GET", "/api/v4/projects/{id}/labels/{label_id}"),
    ("PUT", "/api/v4/projects/{id}/labels/{label_id}"),
    ("DELETE", "/api/v4/projects/{id}/labels/{label_id}"),
    // milestones::route
    ("GET", "/api/v4/projects/{id}/milestones"),
    ("POST", "/api/v4/projects/{id}/milestones"),
    ("GET", "/api/v4/projects/{id}/milestones/{milestone_id}"),
    ("PUT", "/api/v4/projects/{id}/milestones/{milestone_id}"),
    ("DELETE", "/api/v4/projects/{id}/milestones/{milestone_id}"),
    (
        "GET",
        "/api/v4/projects/{id}/milestones/{milestone_id}/issues",
    ),
    (
        "GET",
        "/api/v4/projects/{id}/milestones/{milestone_id}/merge_requests",
    ),
    // hooks::route
    ("GET", "/api/v4/projects/{id}/hooks"),
    ("POST", "/api/v4/projects/{id}/hooks"),
    ("GET", "/api/v4/projects/{id}/hooks/{hook_id}"),
    ("PUT", "/api/v4/projects/{id}/hooks/{hook_id}"),
    ("DELETE", "/api/v4/projects/{id}/hooks/{hook_id}"),
    // events::route, and the stream that `api::handle` serves before routing
    ("GET", "/api/v4/service_desk/events"),
    ("GET", "/api/v4/service_desk/events/stream"),
    ("GET", "/api/v4/projects/{id}/service_desk"),
    ("PUT", "/api/v4/projects/{id}/service_desk"),
];

/// Routes one request.
pub async fn route(
    state: &ApiState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let method = request.method().clone();
    let raw_path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let segments: Vec<String> = raw_path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();

    if segments == ["healthz"] {
        return Ok(json_response(StatusCode::OK, &json!({ "status": "ok" })));
    }
    // The API's description, without a token so tooling can fetch it first.
    if segments == ["api", "v4", "openapi.json"] {
        return match method {
            Method::GET => Ok(openapi::response()),
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    // The unsubscribe link in every mail: no token, the secret is in the URL.
    if let ["-", "sent_notifications", token, "unsubscribe"] = segments.as_slice() {
        return match method {
            Method::GET | Method::HEAD => service_desk::unsubscribe_page(state, token).await,
            Method::POST => service_desk::unsubscribe_confirm(state, token).await,
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    let ["api", "v4", rest @ ..] = segments.as_slice() else {
        return Err(ApiError::NoRoute);
    };
    // Authenticate before revealing whether a route exists.
    let caller = authenticate(state, &request).await?;
    let mut params = Params::from_query(query.as_deref());
    let ctx = Ctx {
        state,
        caller: &caller,
        query: query.as_deref(),
    };

    match (method.clone(), rest) {
        (Method::GET, ["user"]) => Ok(json_response(
            StatusCode::OK,
            &json::current_user(&state.config, &caller.user),
        )),
        (Method::GET, ["users"]) => users::list(&ctx, &params).await,
        (Method::POST, ["users"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            users::create(&ctx, &params).await
        }
        (Method::GET, ["users", id]) => users::get(&ctx, id).await,
        (Method::POST, ["users", id, "personal_access_tokens"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            users::create_token(&ctx, id, &params).await
        }
        (Method::POST, ["user", "personal_access_tokens"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            let own = caller.user.id.to_string();
            users::create_token(&ctx, &own, &params).await
        }
        (Method::GET, ["personal_access_tokens"]) => users::list_tokens(&ctx, &params).await,
        (Method::DELETE, ["personal_access_tokens", token]) => {
            users::revoke_token(&ctx, token).await
        }
        (Method::GET, ["projects", id, "members"])
        | (Method::GET, ["projects", id, "members", "all"]) => {
            users::list_members(&ctx, id, &params).await
        }
        (Method::GET, ["projects", id, "members", user])
        | (Method::GET, ["projects", id, "members", "all", user]) => {
            users::get_member(&ctx, id, user).await
        }
        (Method::POST, ["projects", id, "members"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            users::set_member(&ctx, id, None, &params).await
        }
        (Method::PUT, ["projects", id, "members", user]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            users::set_member(&ctx, id, Some(user), &params).await
        }
        (Method::DELETE, ["projects", id, "members", user]) => {
            users::remove_member(&ctx, id, user).await
        }
        (Method::GET, ["projects"]) => projects::list(&ctx, &params).await,
        (Method::POST, ["projects"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            projects::create(&ctx, &params).await
        }
        (Method::GET, ["projects", id]) => projects::get(&ctx, id).await,
        (Method::GET, ["projects", id, "issues"]) => issues::list(&ctx, id, &params).await,
        (Method::GET, ["projects", id, "issues", iid]) => issues::get(&ctx, id, iid).await,
        (Method::GET, ["issues"]) => issues::list_all(&ctx, &params).await,
        (Method::POST, ["projects", id, "issues"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            notes::create_issue(&ctx, id, &params).await
        }
        (Method::GET, ["projects", id, "issues", iid, "time_stats"]) => {
            notes::time_tracking(&ctx, id, iid, "time_stats", &params).await
        }
        (
            Method::POST,
            ["projects", id, "issues", iid, action @ ("time_estimate"
            | "reset_time_estimate"
            | "add_spent_time"
            | "reset_spent_time")],
        ) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            notes::time_tracking(&ctx, id, iid, action, &params).await
        }
        (Method::GET, ["projects", id, "issues", iid, "notes", note]) => {
            discussions::get_note(&ctx, note_ref(id, iid, None, note)).await
        }
        (Method::PUT, ["projects", id, "issues", iid, "notes", note]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            discussions::edit_note(&ctx, note_ref(id, iid, None, note), Some(&params)).await
        }
        (Method::DELETE, ["projects", id, "issues", iid, "notes", note]) => {
            discussions::edit_note(&ctx, note_ref(id, iid, None, note), None).await
        }
        (
            Method::GET,
            ["projects", id, "issues", iid, "discussions", discussion, "notes", note],
        ) => discussions::get_note(&ctx, note_ref(id, iid, Some(discussion), note)).await,
        (
            Method::PUT,
            ["projects", id, "issues", iid, "discussions", discussion, "notes", note],
        ) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            discussions::edit_note(
                &ctx,
                note_ref(id, iid, Some(discussion), note),
                Some(&params),
            )
            .await
        }
        (
            Method::DELETE,
            ["projects", id, "issues", iid, "discussions", discussion, "notes", note],
        ) => discussions::edit_note(&ctx, note_ref(id, iid, Some(discussion), note), None).await,
        (Method::GET, ["projects", id, "issues", iid, "discussions"]) => {
            discussions::list_discussions(&ctx, id, iid, &params).await
        }
        (Method::GET, ["projects", id, "issues", iid, "discussions", discussion]) => {
            discussions::get_discussion(&ctx, id, iid, discussion).await
        }
        (Method::POST, ["projects", id, "issues", iid, "discussions"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            discussions::post(&ctx, id, iid, None, &params).await
        }
        (Method::POST, ["projects", id, "issues", iid, "discussions", discussion, "notes"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            discussions::post(&ctx, id, iid, Some(discussion), &params).await
        }
        (Method::GET, ["projects", id, "issues", iid, "notes"]) => {
            discussions::list_notes(&ctx, id, iid, &params).await
        }
        (Method::GET, ["projects", id, "issues", iid, "attachments", n]) => {
            issues::attachment(&ctx, id, iid, n).await
        }
        (Method::GET, ["projects", id, "issues", iid, "raw_message"]) => {
            issues::raw_message(&ctx, id, iid).await
        }
        (Method::GET, ["projects", id, "issues", iid, "blobs", sha]) => {
            issues::ticket_blob(&ctx, id, iid, sha).await
        }
        (Method::POST, ["projects", id, "issues", iid, "notes"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            notes::create(&ctx, id, iid, &params).await
        }
        (Method::PUT, ["projects", id, "issues", iid]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            notes::update_issue(&ctx, id, iid, &params).await
        }
        (Method::GET, ["projects", id, "issues", iid, "email_participants"]) => {
            notes::list_participants(&ctx, id, iid).await
        }
        (Method::POST, ["projects", id, "issues", iid, "email_participants"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            notes::add_participant(&ctx, id, iid, &params).await
        }
        (Method::DELETE, ["projects", id, "issues", iid, "email_participants", email]) => {
            notes::remove_participant(&ctx, id, iid, email).await
        }
        (_, ["projects", id, "labels", rest @ ..]) => {
            labels::route(&ctx, &method, id, rest, params, request).await
        }
        (_, ["projects", id, "milestones", rest @ ..]) => {
            milestones::route(&ctx, &method, id, rest, params, request).await
        }
        (_, ["projects", id, "hooks", rest @ ..]) => {
            hooks::route(&ctx, &method, id, rest, params, request).await
        }
        (_, ["service_desk", "events", rest @ ..]) => {
            events::route(&ctx, &method, "", rest, params, request).await
        }
        (Method::GET, ["projects", id, "service_desk"]) => service_desk::get(&ctx, id).await,
        (Method::PUT, ["projects", id, "service_desk"]) => {
            params
                .merge_body(request, state.config.api.max_body_size)
                .await?;
            service_desk::update(&ctx, id, &params).await
        }
        (_, ["user"])
        | (_, ["users"])
        | (_, ["users", _])
        | (_, ["users", _, "personal_access_tokens"])
        | (_, ["user", "personal_access_tokens"])
        | (_, ["personal_access_tokens"])
        | (_, ["personal_access_tokens", _])
        | (_, ["projects", _, "members"])
        | (_, ["projects", _, "members", _])
        | (_, ["projects", _, "members", "all", _])
        | (_, ["projects"])
        | (_, ["projects", _])
        | (_, ["projects", _, "issues"])
        | (_, ["projects", _, "issues", _])
        | (_, ["projects", _, "issues", _, "notes"])
        | (_, ["issues"])
        | (_, ["projects", _, "issues", _, "notes", _])
        | (_, ["projects", _, "issues", _, "discussions"])
        | (_, ["projects", _, "issues", _, "discussions", _])
        | (_, ["projects", _, "issues", _, "discussions", _, "notes"])
        | (_, ["projects", _, "issues", _, "discussions", _, "notes", _])
        | (_, ["projects", _, "issues", _, "time_stats"])
        | (
            _,
            ["projects", _, "issues", _, "time_estimate" | "reset_time_estimate" | "add_spent_time" | "reset_spent_time"],
        )
        | (_, ["projects", _, "issues", _, "attachments", _])
        | (_, ["projects", _, "issues", _, "raw_message"])
        | (_, ["projects", _, "issues", _, "blobs", _])
        | (_, ["projects", _, "issues", _, "email_participants"])
        | (_, ["projects", _, "issues", _, "email_participants", _])
        | (_, ["projects", _, "service_desk"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NoRoute),
    }
}

/// The methods [`ROUTES`] serves at `path`, for the `Allow` header of a
/// 405 (RFC 9110 §15.5.6); path segments are compared as the router does.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, template)| {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| part.starts_with('{') || part == segment)
        })
        .map(|(method, _)| *method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

fn note_ref<'a>(
    project: &'a str,
    iid: &'a str,
    discussion: Option<&'a str>,
    note: &'a str,
) -> discussions::NoteRef<'a> {
    discussions::NoteRef {
        project,
        iid,
        discussion,
        note,
    }
}

/// What a handler knows about the request besides its parameters.
pub struct Ctx<'a> {
    pub state: &'a ApiState,
    pub caller: &'a super::request::Caller,
    pub query: Option<&'a str>,
}

impl Ctx<'_> {
    /// The absolute URL of an API path, for `Link` headers.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v4/{}", self.state.config.public_url(), path)
    }
}
