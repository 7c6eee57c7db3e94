//! `/projects/:id/hooks`: GitLab's project hooks, the issue and note subset.
//!
//! Maintainers (and admins) list, create, change and delete hooks; the
//! delivery itself is [`crate::notify::webhooks`]. A hook's `token` is
//! write-only: it is sent to the receiver as `X-Gitlab-Token` and never shown
//! back, as in GitLab.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::json::timestamp;
use super::pagination::Page;
use super::projects::{self, ProjectAccess};
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::{
    access_level, HookChanges, HookFlags, HookOp, HookOutcome, ProjectHook, WriteOp, WriteOutcome,
};

/// Longest hook URL accepted (GitLab's limit).
const MAX_URL_LEN: usize = 2048;
/// Longest secret token accepted.
const MAX_TOKEN_LEN: usize = 255;

/// Routes `…/hooks/…`; `rest` is the path after `hooks`.
pub async fn route(
    ctx: &Ctx<'_>,
    method: &Method,
    project: &str,
    rest: &[&str],
    mut params: Params,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let limit = ctx.state.config.api.max_body_size;
    match (method, rest) {
        (&Method::GET, []) => list(ctx, project, &params).await,
        (&Method::POST, []) => {
            params.merge_body(request, limit).await?;
            create(ctx, project, &params).await
        }
        (&Method::GET, [hook]) => get(ctx, project, hook).await,
        (&Method::PUT, [hook]) => {
            params.merge_body(request, limit).await?;
            update(ctx, project, hook, &params).await
        }
        (&Method::DELETE, [hook]) => delete(ctx, project, hook).await,
        (_, []) | (_, [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NoRoute),
    }
}

/// The project, if the caller is a Maintainer there (or admin). Others who
/// can see the project get 403, as in GitLab.
async fn maintained(ctx: &Ctx<'_>, id: &str) -> Result<ProjectAccess, ApiError> {
    let access = projects::access(ctx, id).await?;
    access.require(access_level::MAINTAINER)?;
    Ok(access)
}

fn parse_hook_id(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| ApiError::NotFound("Hook"))
}

async fn find(ctx: &Ctx<'_>, project_id: u64, hook: &str) -> Result<ProjectHook, ApiError> {
    let hook_id = parse_hook_id(hook)?;
    ctx.state
        .read(move |store| store.hook(project_id, hook_id))
        .await?
        .ok_or(ApiError::NotFound("Hook"))
}

async fn list(ctx: &Ctx<'_>, id: &str, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = maintained(ctx, id).await?;
    let page = Page::from_params(params)?;
    let project_id = access.project.id;
    let hooks = ctx.state.read(move |store| store.hooks(project_id)).await?;
    let items: Vec<Value> = hooks
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(hook_json)
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(
        &mut response,
        &ctx.url(&format!("projects/{project_id}/hooks")),
        ctx.query,
        hooks.len() as u64,
    );
    Ok(response)
}

async fn get(ctx: &Ctx<'_>, id: &str, hook: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = maintained(ctx, id).await?;
    let hook = find(ctx, access.project.id, hook).await?;
    Ok(json_response(StatusCode::OK, &hook_json(&hook)))
}

async fn create(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = maintained(ctx, id).await?;
    let url = match params.string("url")? {
        Some(url) => valid_url(&url)?,
        None => return Err(ApiError::BadRequest("url is missing".into())),
    };
    let token = valid_token(params.string("token")?)?;
    let flag = |key| params.bool(key).map(|v| v.unwrap_or(false));
    let flags = HookFlags {
        issues_events: flag("issues_events")?,
        note_events: flag("note_events")?,
        confidential_issues_events: flag("confidential_issues_events")?,
        confidential_note_events: flag("confidential_note_events")?,
    };
    let hook = write(
        ctx,
        HookOp::Create {
            project_id: access.project.id,
            url,
            token,
            flags,
        },
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, &hook_json(&hook)))
}

async fn update(
    ctx: &Ctx<'_>,
    id: &str,
    hook: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = maintained(ctx, id).await?;
    let existing = find(ctx, access.project.id, hook).await?;
    let changes = HookChanges {
        url: params.string("url")?.map(|u| valid_url(&u)).transpose()?,
        // GitLab: an empty token removes it; an absent one keeps it.
        token: match params.value("token") {
            None => None,
            Some(_) => Some(valid_token(params.string("token")?)?),
        },
        issues_events: params.bool("issues_events")?,
        note_events: params.bool("note_events")?,
        confidential_issues_events: params.bool("confidential_issues_events")?,
        confidential_note_events: params.bool("confidential_note_events")?,
    };
    let hook = write(
        ctx,
        HookOp::Update {
            project_id: access.project.id,
            hook_id: existing.id,
            changes,
        },
    )
    .await?;
    Ok(json_response(StatusCode::OK, &hook_json(&hook)))
}

async fn delete(ctx: &Ctx<'_>, id: &str, hook: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = maintained(ctx, id).await?;
    let hook_id = parse_hook_id(hook)?;
    ctx.state
        .store
        .write(WriteOp::Hooks(HookOp::Delete {
            project_id: access.project.id,
            hook_id,
        }))
        .await?;
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

async fn write(ctx: &Ctx<'_>, op: HookOp) -> Result<ProjectHook, ApiError> {
    match ctx.state.store.write(WriteOp::Hooks(op)).await? {
        WriteOutcome::Hooks(HookOutcome::Hook(hook)) => Ok(hook),
        _ => Err(ApiError::Internal("unexpected write outcome".into())),
    }
}

/// An absolute `http` or `https` URL with a host, without credentials.
fn valid_url(text: &str) -> Result<String, ApiError> {
    let invalid = |reason: &str| ApiError::Validation {
        field: "url",
        reason: reason.to_string(),
    };
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_URL_LEN || text.chars().any(char::is_control) {
        return Err(invalid("is invalid"));
    }
    let uri: hyper::Uri = text.parse().map_err(|_| invalid("is invalid"))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") | Some("https") => {}
        _ => return Err(invalid("is blocked: Only allowed schemes are http, https")),
    }
    let authority = uri.authority().ok_or_else(|| invalid("is invalid"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(invalid("is invalid"));
    }
    Ok(text.to_string())
}

/// A secret token: empty means none.
fn valid_token(token: Option<String>) -> Result<Option<String>, ApiError> {
    match token {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) if t.len() > MAX_TOKEN_LEN || t.bytes().any(|b| b.is_ascii_control()) => {
            Err(ApiError::Validation {
                field: "token",
                reason: format!("is too long (maximum is {MAX_TOKEN_LEN} characters) or invalid"),
            })
        }
        Some(t) => Ok(Some(t)),
    }
}

/// GitLab's project hook JSON. The token is never included; events mxdesk
/// has no source of are present and `false`.
pub fn hook_json(hook: &ProjectHook) -> Value {
    json!({
        "id": hook.id,
        "url": hook.url,
        "name": null,
        "description": null,
        "project_id": hook.project_id,
        "created_at": timestamp(hook.created_at),
        "push_events": false,
        "push_events_branch_filter": null,
        "branch_filter_strategy": "wildcard",
        "issues_events": hook.issues_events,
        "confidential_issues_events": hook.confidential_issues_events,
        "merge_requests_events": false,
        "tag_push_events": false,
        "note_events": hook.note_events,
        "confidential_note_events": hook.confidential_note_events,
        "job_events": false,
        "pipeline_events": false,
        "wiki_page_events": false,
        "deployment_events": false,
        "feature_flag_events": false,
        "releases_events": false,
        "emoji_events": false,
        "resource_access_token_events": false,
        "repository_update_events": false,
        "enable_ssl_verification": true,
        "alert_status": "executable",
        "disabled_until": null,
        "url_variables": [],
        "custom_webhook_template": null,
        "custom_headers": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_urls_are_http_or_https_with_a_host() {
        assert!(valid_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(valid_url("https://hooks.example.org/x?y=1").is_ok());
        for bad in [
            "",
            "ftp://example.org/",
            "/relative",
            "example.org/hook",
            "http://user:pw@example.org/",
            "javascript:alert(1)",
            "http://exa mple.org/",
        ] {
            assert!(valid_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hook_json_never_shows_the_token() {
        let hook = ProjectHook {
            id: 1,
            project_id: 2,
            url: "http://x.test/".into(),
            token: Some("s3cret".into()),
            issues_events: true,
            note_events: false,
            confidential_issues_events: false,
            confidential_note_events: false,
            created_at: 0,
        };
        let text = hook_json(&hook).to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("\"token\""), "{text}");
    }
}
