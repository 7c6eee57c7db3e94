//! `/projects/:id/labels`: GitLab's project labels API (list, get, create,
//! update, delete). A label is addressed by id or by its URL-encoded name.
//! python-gitlab updates and deletes through the collection with `name` in
//! the parameters (GitLab's older form), so that is served too.
//!
//! Reading needs a project the caller can see; writing needs Reporter or
//! above and a token with the `api` scope, as in GitLab.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::pagination::Page;
use super::projects::{self, ProjectAccess};
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::{
    access_level, Label, LabelOp, LabelOutcome, StoreError, Ticket, WriteOp, WriteOutcome,
};

/// GitLab's limit on descriptions (1 MiB of characters).
pub(super) const MAX_DESCRIPTION_CHARS: usize = 1_048_576;

/// Routes `…/labels/…`; `rest` is the path after `labels`.
pub async fn route(
    ctx: &Ctx<'_>,
    method: &Method,
    project: &str,
    rest: &[&str],
    params: Params,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    match (method, rest) {
        (&Method::GET, []) => list(ctx, project, &params).await,
        (&Method::POST, []) => create(ctx, project, &read_body(ctx, params, request).await?).await,
        (&Method::PUT, []) => {
            update(ctx, project, None, &read_body(ctx, params, request).await?).await
        }
        (&Method::DELETE, []) => {
            delete(ctx, project, None, &read_body(ctx, params, request).await?).await
        }
        (&Method::GET, [label]) => get(ctx, project, label).await,
        (&Method::PUT, [label]) => {
            update(
                ctx,
                project,
                Some(label),
                &read_body(ctx, params, request).await?,
            )
            .await
        }
        (&Method::DELETE, [label]) => {
            delete(
                ctx,
                project,
                Some(label),
                &read_body(ctx, params, request).await?,
            )
            .await
        }
        (_, []) | (_, [_]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NoRoute),
    }
}

/// GitLab's label JSON. Every key GitLab sends is present; mxdesk has no
/// merge requests, subscriptions or priorities, so those are constant.
pub fn json(label: &Label, open_issues: u64, closed_issues: u64) -> Value {
    json!({
        "id": label.id,
        "name": label.name,
        "description": label.description,
        "description_html": label.description.as_deref().map(escape_html),
        "text_color": label.text_color(),
        "color": label.color,
        "open_issues_count": open_issues,
        "closed_issues_count": closed_issues,
        "open_merge_requests_count": 0,
        "subscribed": false,
        "priority": null,
        "is_project_label": true,
    })
}

async fn list(
    ctx: &Ctx<'_>,
    project: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = projects::access(ctx, project).await?;
    let page = Page::from_params(params)?;
    let search = params.string("search")?.map(|s| s.to_lowercase());
    // Accepted for compatibility; counts are always included.
    params.bool("with_counts")?;
    params.bool("include_ancestor_groups")?;
    let project_id = access.project.id;
    let labels: Vec<Label> = ctx
        .state
        .read(move |store| store.labels(project_id))
        .await?
        .into_iter()
        // GitLab's `search` matches the title or the description.
        .filter(|l| {
            search.as_deref().is_none_or(|s| {
                l.name.to_lowercase().contains(s)
                    || l.description
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(s))
            })
        })
        .collect();
    let total = labels.len() as u64;
    let shown: Vec<Label> = labels
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .collect();
    let items = with_counts(ctx, &access, &shown).await?;
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(
        &mut response,
        &ctx.url(&format!("projects/{project_id}/labels")),
        ctx.query,
        total,
    );
    Ok(response)
}

async fn get(ctx: &Ctx<'_>, project: &str, label: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = projects::access(ctx, project).await?;
    let label = find(ctx, access.project.id, label).await?;
    let mut items = with_counts(ctx, &access, std::slice::from_ref(&label)).await?;
    Ok(json_response(
        StatusCode::OK,
        &items.pop().unwrap_or(Value::Null),
    ))
}

async fn create(
    ctx: &Ctx<'_>,
    project: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = writer_access(ctx, project).await?;
    let name = params
        .string("name")?
        .ok_or_else(|| ApiError::BadRequest("name is missing".into()))?;
    let color = params
        .string("color")?
        .ok_or_else(|| ApiError::BadRequest("color is missing".into()))?;
    let name = valid_name(&name)?;
    let color = valid_color(&color)?;
    let description = description(params)?.flatten();
    ignored_priority(params)?;
    let op = LabelOp::Create {
        project_id: access.project.id,
        name,
        color,
        description,
    };
    // A taken name is `409 Label already exists`, as in GitLab.
    let label = write(ctx, op).await?;
    Ok(json_response(StatusCode::CREATED, &json(&label, 0, 0)))
}

async fn update(
    ctx: &Ctx<'_>,
    project: &str,
    label: Option<&str>,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = writer_access(ctx, project).await?;
    let label = match label {
        Some(reference) => find(ctx, access.project.id, reference).await?,
        None => find_from_params(ctx, access.project.id, params).await?,
    };
    let new_name = params
        .string("new_name")?
        .map(|n| valid_name(&n))
        .transpose()?;
    let color = params
        .string("color")?
        .map(|c| valid_color(&c))
        .transpose()?;
    let description = description(params)?;
    let priority_given = ignored_priority(params)?;
    if new_name.is_none() && color.is_none() && description.is_none() && !priority_given {
        return Err(ApiError::BadRequest(
            "new_name, color, description, priority are missing, at least one parameter must be provided"
                .into(),
        ));
    }
    let op = LabelOp::Update {
        project_id: access.project.id,
        label_id: label.id,
        new_name,
        color,
        description,
    };
    let label = match write(ctx, op).await {
        Err(ApiError::Conflict(m)) if m == Label::NAME_TAKEN => {
            return Err(ApiError::Validation {
                field: "title",
                reason: "has already been taken".into(),
            })
        }
        other => other?,
    };
    let mut items = with_counts(ctx, &access, std::slice::from_ref(&label)).await?;
    Ok(json_response(
        StatusCode::OK,
        &items.pop().unwrap_or(Value::Null),
    ))
}

async fn delete(
    ctx: &Ctx<'_>,
    project: &str,
    label: Option<&str>,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = writer_access(ctx, project).await?;
    let label = match label {
        Some(reference) => find(ctx, access.project.id, reference).await?,
        None => find_from_params(ctx, access.project.id, params).await?,
    };
    write(
        ctx,
        LabelOp::Delete {
            project_id: access.project.id,
            label_id: label.id,
        },
    )
    .await?;
    Ok(no_content())
}

/// The caller's access after the checks every write makes: `api` scope
/// first (as GitLab), then a visible project, then Reporter or above.
pub(super) async fn writer_access(ctx: &Ctx<'_>, project: &str) -> Result<ProjectAccess, ApiError> {
    ctx.caller.require_write()?;
    let access = projects::access(ctx, project).await?;
    access.require(access_level::REPORTER)?;
    Ok(access)
}

/// Merges the request body into the query parameters.
pub(super) async fn read_body(
    ctx: &Ctx<'_>,
    mut params: Params,
    request: Request<Incoming>,
) -> Result<Params, ApiError> {
    params
        .merge_body(request, ctx.state.config.api.max_body_size)
        .await?;
    Ok(params)
}

/// `204 No Content`, GitLab's answer to a delete.
pub(super) fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A text field that may be set, cleared (`null` or `""`) or left alone
/// (absent): `None`, `Some(None)` or `Some(Some(text))`.
pub(super) fn optional_text(
    params: &Params,
    key: &'static str,
) -> Result<Option<Option<String>>, ApiError> {
    match params.value(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
        Some(_) => Ok(Some(params.string(key)?)),
    }
}

/// The `description` parameter, bounded as GitLab bounds it.
pub(super) fn description(params: &Params) -> Result<Option<Option<String>>, ApiError> {
    let value = optional_text(params, "description")?;
    if let Some(Some(text)) = &value {
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(ApiError::Validation {
                field: "description",
                reason: format!("is too long (maximum is {MAX_DESCRIPTION_CHARS} characters)"),
            });
        }
    }
    Ok(value)
}

fn valid_name(raw: &str) -> Result<String, ApiError> {
    Label::normalize_name(raw).map_err(|e| ApiError::Validation {
        field: "title",
        reason: e.reason().into(),
    })
}

fn valid_color(raw: &str) -> Result<String, ApiError> {
    Label::normalize_color(raw).ok_or_else(|| ApiError::Validation {
        field: "color",
        reason: "must be a valid color code".into(),
    })
}

/// mxdesk keeps no label priorities: a well-formed `priority` is accepted
/// and ignored. Returns whether one was given.
fn ignored_priority(params: &Params) -> Result<bool, ApiError> {
    match params.i64("priority")? {
        Some(p) if p < 0 => Err(ApiError::BadRequest("priority is invalid".into())),
        _ => Ok(params.value("priority").is_some()),
    }
}

/// A label by id (when the reference is a number naming one) or by name.
async fn find(ctx: &Ctx<'_>, project_id: u64, reference: &str) -> Result<Label, ApiError> {
    let reference = reference.to_string();
    ctx.state
        .read(move |store| {
            if let Ok(id) = reference.parse::<u64>() {
                if let Some(label) = store.label(project_id, id)? {
                    return Ok(Some(label));
                }
            }
            store.label_by_name(project_id, &reference)
        })
        .await?
        .ok_or(ApiError::NotFound("Label"))
}

/// The label named by the `label_id` or `name` parameter (GitLab's
/// collection-level update and delete).
async fn find_from_params(
    ctx: &Ctx<'_>,
    project_id: u64,
    params: &Params,
) -> Result<Label, ApiError> {
    if let Some(id) = params.id("label_id")? {
        return find(ctx, project_id, &id.to_string()).await;
    }
    match params.string("name")? {
        Some(name) => {
            let found = ctx
                .state
                .read(move |store| store.label_by_name(project_id, &name))
                .await?;
            found.ok_or(ApiError::NotFound("Label"))
        }
        None => Err(ApiError::BadRequest(
            "label_id, name are missing, exactly one parameter must be provided".into(),
        )),
    }
}

/// Label JSON with issue counts the caller is allowed to see: confidential
/// tickets count only for those who may see them (GitLab's rule).
async fn with_counts(
    ctx: &Ctx<'_>,
    access: &ProjectAccess,
    labels: &[Label],
) -> Result<Vec<Value>, ApiError> {
    let names: Vec<String> = labels.iter().map(|l| l.name.clone()).collect();
    let project_id = access.project.id;
    let sees_all = access.admin || access.level >= access_level::REPORTER;
    let rule = access.clone();
    let counts = ctx
        .state
        .read(move |store| {
            let visible = |ticket: &Ticket| rule.can_see(ticket);
            let visible: Option<&dyn Fn(&Ticket) -> bool> =
                if sees_all { None } else { Some(&visible) };
            store.label_issue_counts(project_id, &names, visible)
        })
        .await?;
    Ok(labels
        .iter()
        .zip(counts)
        .map(|(label, counts)| json(label, counts.open, counts.closed))
        .collect())
}

async fn write(ctx: &Ctx<'_>, op: LabelOp) -> Result<Label, ApiError> {
    match ctx.state.store.write(WriteOp::Labels(op)).await {
        Ok(WriteOutcome::Labels(LabelOutcome::Label(label)))
        | Ok(WriteOutcome::Labels(LabelOutcome::Deleted(label))) => Ok(label),
        Ok(_) => Err(ApiError::Internal("unexpected write outcome".into())),
        // Input is checked before the write; what the store still refuses
        // is a name taken meanwhile, or a stale reference.
        Err(StoreError::Conflict(message)) if message == Label::NAME_TAKEN => {
            Err(ApiError::Conflict(message))
        }
        Err(StoreError::Conflict(message)) => Err(ApiError::BadRequest(message)),
        Err(other) => Err(other.into()),
    }
}

/// GitLab renders label descriptions as one line of Markdown; mxdesk shows
/// the text, escaped, on one line.
fn escape_html(text: &str) -> String {
    crate::notify::templates::html_escape(&text.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_json_has_every_gitlab_key() {
        let label = Label {
            id: 7,
            name: "bug".into(),
            color: "#d9534f".into(),
            description: Some("<b>broken</b>".into()),
            created_at: 0,
        };
        let value = json(&label, 2, 1);
        for key in [
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
        ] {
            assert!(value.get(key).is_some(), "{key} missing: {value}");
        }
        assert_eq!(value["description_html"], "&lt;b&gt;broken&lt;/b&gt;");
        assert_eq!(value["open_issues_count"], 2);
        let bare = Label {
            description: None,
            ..label
        };
        assert!(json(&bare, 0, 0)["description_html"].is_null());
    }

    #[test]
    fn clearing_and_absent_text_differ() {
        let params = Params::from_query(Some("description=&x=y"));
        assert_eq!(optional_text(&params, "description").unwrap(), Some(None));
        assert_eq!(optional_text(&params, "other").unwrap(), None);
        assert_eq!(
            optional_text(&params, "x").unwrap(),
            Some(Some("y".to_string()))
        );
    }
}
