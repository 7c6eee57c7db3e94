//! `/projects/:id/milestones`: GitLab's project milestones API (list with
//! GitLab's filters, get, create, update including `state_event`, delete).
//! `:milestone_id` is the global `id`, as in GitLab; `iid` counts per project.
//! `…/:milestone_id/issues` lists the milestone's issues the caller may see.
//!
//! Reading needs a project the caller can see; writing needs Reporter or
//! above and a token with the `api` scope, as in GitLab.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::json::milestone as json;
use super::labels::{description, no_content, optional_text, read_body, writer_access};
use super::pagination::Page;
use super::projects;
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::query::{IdFilter, TicketQuery};
use crate::store::{Milestone, MilestoneOp, MilestoneOutcome, StoreError, WriteOp, WriteOutcome};

/// Routes `…/milestones/…`; `rest` is the path after `milestones`.
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
        (&Method::GET, [id]) => get(ctx, project, id).await,
        (&Method::PUT, [id]) => {
            update(ctx, project, id, &read_body(ctx, params, request).await?).await
        }
        (&Method::DELETE, [id]) => delete(ctx, project, id).await,
        (&Method::GET, [id, "issues"]) => issues(ctx, project, id, &params).await,
        (&Method::GET, [id, "merge_requests"]) => merge_requests(ctx, project, id, &params).await,
        (_, []) | (_, [_]) | (_, [_, "issues"]) | (_, [_, "merge_requests"]) => {
            Err(ApiError::MethodNotAllowed)
        }
        _ => Err(ApiError::NoRoute),
    }
}

/// GitLab's list filters, parsed.
struct Filter {
    closed: Option<bool>,
    title: Option<String>,
    /// Lower-cased; matched in title and description.
    search: Option<String>,
    iids: Option<Vec<u64>>,
    updated_before: Option<i64>,
    updated_after: Option<i64>,
}

impl Filter {
    fn from_params(params: &Params) -> Result<Filter, ApiError> {
        let closed = match params.string("state")?.as_deref() {
            None | Some("") | Some("all") => None,
            Some("active") => Some(false),
            Some("closed") => Some(true),
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "state does not have a valid value".into(),
                ))
            }
        };
        // Accepted for compatibility: mxdesk has no groups to inherit from.
        params.bool("include_parent_milestones")?;
        params.bool("include_ancestors")?;
        Ok(Filter {
            closed,
            title: params.string("title")?,
            search: params.string("search")?.map(|s| s.to_lowercase()),
            iids: params.ids("iids")?,
            updated_before: params.datetime("updated_before")?,
            updated_after: params.datetime("updated_after")?,
        })
    }

    fn matches(&self, m: &Milestone) -> bool {
        self.closed.is_none_or(|closed| m.is_closed() == closed)
            && self.title.as_ref().is_none_or(|t| &m.title == t)
            && self.search.as_deref().is_none_or(|s| {
                m.title.to_lowercase().contains(s)
                    || m.description
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(s))
            })
            && self.iids.as_ref().is_none_or(|iids| iids.contains(&m.iid))
            && self.updated_before.is_none_or(|t| m.updated_at <= t)
            && self.updated_after.is_none_or(|t| m.updated_at >= t)
    }
}

async fn list(
    ctx: &Ctx<'_>,
    project: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = projects::find(ctx, project).await?;
    let page = Page::from_params(params)?;
    let filter = Filter::from_params(params)?;
    let project_id = project.id;
    let mut milestones: Vec<Milestone> = ctx
        .state
        .read(move |store| store.milestones(project_id))
        .await?
        .into_iter()
        .filter(|m| filter.matches(m))
        .collect();
    // GitLab lists the newest first.
    milestones.reverse();
    let total = milestones.len() as u64;
    let items: Vec<Value> = milestones
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(|m| json(&ctx.state.config, &project, m))
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(
        &mut response,
        &ctx.url(&format!("projects/{project_id}/milestones")),
        ctx.query,
        total,
    );
    Ok(response)
}

async fn get(ctx: &Ctx<'_>, project: &str, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = projects::find(ctx, project).await?;
    let milestone = find(ctx, project.id, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &json(&ctx.state.config, &project, &milestone),
    ))
}

async fn create(
    ctx: &Ctx<'_>,
    project: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = writer_access(ctx, project).await?.project;
    let title = params
        .string("title")?
        .ok_or_else(|| ApiError::BadRequest("title is missing".into()))?;
    let op = MilestoneOp::Create {
        project_id: project.id,
        title: valid_title(&title)?,
        description: description(params)?.flatten(),
        due_date: date(params, "due_date")?.flatten(),
        start_date: date(params, "start_date")?.flatten(),
    };
    let milestone = write(ctx, op).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json(&ctx.state.config, &project, &milestone),
    ))
}

async fn update(
    ctx: &Ctx<'_>,
    project: &str,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = writer_access(ctx, project).await?.project;
    let milestone = find(ctx, project.id, id).await?;
    let title = params
        .string("title")?
        .map(|t| valid_title(&t))
        .transpose()?;
    let description = description(params)?;
    let due_date = date(params, "due_date")?;
    let start_date = date(params, "start_date")?;
    let close = match params.string("state_event")?.as_deref() {
        None => None,
        Some("close") => Some(true),
        Some("activate") => Some(false),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "state_event does not have a valid value".into(),
            ))
        }
    };
    if title.is_none()
        && description.is_none()
        && due_date.is_none()
        && start_date.is_none()
        && close.is_none()
    {
        return Err(ApiError::BadRequest(
            "title, description, due_date, start_date, state_event are missing, at least one parameter must be provided"
                .into(),
        ));
    }
    let op = MilestoneOp::Update {
        project_id: project.id,
        milestone_id: milestone.id,
        title,
        description,
        due_date,
        start_date,
        close,
    };
    let milestone = write(ctx, op).await?;
    Ok(json_response(
        StatusCode::OK,
        &json(&ctx.state.config, &project, &milestone),
    ))
}

async fn delete(ctx: &Ctx<'_>, project: &str, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = writer_access(ctx, project).await?.project;
    let milestone = find(ctx, project.id, id).await?;
    write(
        ctx,
        MilestoneOp::Delete {
            project_id: project.id,
            milestone_id: milestone.id,
        },
    )
    .await?;
    Ok(no_content())
}

/// `GET …/milestones/:id/issues`: the issues in the milestone the caller
/// may see, newest first, paginated. No index maps milestones to tickets,
/// so this reads the project's tickets (counting stops at the query cap).
async fn issues(
    ctx: &Ctx<'_>,
    project: &str,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = projects::access(ctx, project).await?;
    let milestone = find(ctx, access.project.id, id).await?;
    let page = Page::from_params(params)?;
    let query = TicketQuery {
        project_id: access.project.id,
        milestone: IdFilter::Is(milestone.id),
        ..TicketQuery::default()
    };
    let (offset, limit) = (page.offset(), page.per_page);
    let checker = access.clone();
    let found = ctx
        .state
        .read(move |store| store.query_tickets(&query, &|t| checker.can_see(t), offset, limit))
        .await?;
    let mut items = Vec::with_capacity(found.tickets.len());
    for ticket in &found.tickets {
        items.push(super::issues::issue_json(ctx, &access.project, ticket).await?);
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate_partial(
        &mut response,
        &ctx.url(&format!(
            "projects/{}/milestones/{}/issues",
            access.project.id, milestone.id
        )),
        ctx.query,
        found.total,
        found.more,
    );
    Ok(response)
}

/// `GET …/milestones/:id/merge_requests`: mxdesk has no merge requests, so
/// an existing milestone has none.
async fn merge_requests(
    ctx: &Ctx<'_>,
    project: &str,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = projects::find(ctx, project).await?;
    let milestone = find(ctx, project.id, id).await?;
    let page = Page::from_params(params)?;
    let mut response = json_response(StatusCode::OK, &Value::Array(Vec::new()));
    page.decorate(
        &mut response,
        &ctx.url(&format!(
            "projects/{}/milestones/{}/merge_requests",
            project.id, milestone.id
        )),
        ctx.query,
        0,
    );
    Ok(response)
}

/// The project's milestone with global id `id`; anything else is a 404.
async fn find(ctx: &Ctx<'_>, project_id: u64, id: &str) -> Result<Milestone, ApiError> {
    let id = id
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound("Milestone"))?;
    ctx.state
        .read(move |store| store.milestone(project_id, id))
        .await?
        .ok_or(ApiError::NotFound("Milestone"))
}

fn valid_title(raw: &str) -> Result<String, ApiError> {
    Milestone::normalize_title(raw).map_err(|reason| ApiError::Validation {
        field: "title",
        reason: reason.into(),
    })
}

/// A `YYYY-MM-DD` date parameter: set, cleared (`null`/`""`) or absent.
fn date(params: &Params, key: &'static str) -> Result<Option<Option<String>>, ApiError> {
    match optional_text(params, key)? {
        Some(Some(text)) => Milestone::parse_date(&text)
            .map(|d| Some(Some(d)))
            .ok_or_else(|| ApiError::BadRequest(format!("{key} is invalid"))),
        other => Ok(other),
    }
}

async fn write(ctx: &Ctx<'_>, op: MilestoneOp) -> Result<Milestone, ApiError> {
    match ctx.state.store.write(WriteOp::Milestones(op)).await {
        Ok(WriteOutcome::Milestones(MilestoneOutcome::Milestone(m)))
        | Ok(WriteOutcome::Milestones(MilestoneOutcome::Deleted(m))) => Ok(m),
        Ok(_) => Err(ApiError::Internal("unexpected write outcome".into())),
        Err(StoreError::Conflict(message)) if message == Milestone::TITLE_TAKEN => {
            Err(ApiError::Validation {
                field: "title",
                reason: "has already been taken".into(),
            })
        }
        Err(StoreError::Conflict(message)) if message == Milestone::DATES_INVERTED => {
            Err(ApiError::Validation {
                field: "due_date",
                reason: "must be greater than start date".into(),
            })
        }
        Err(StoreError::Conflict(message)) => Err(ApiError::BadRequest(message)),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Project;

    fn milestone() -> Milestone {
        Milestone {
            id: 12,
            iid: 3,
            project_id: 16,
            title: "10.0".into(),
            description: None,
            due_date: Some("2013-11-29".into()),
            start_date: None,
            state: "active".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn milestone_json_has_every_gitlab_key() {
        let config = Config::default();
        let project = Project {
            id: 16,
            name: "Acme".into(),
            path: "acme".into(),
            confidential_by_default: true,
            created_at: 0,
            service_desk: Default::default(),
        };
        let value = json(&config, &project, &milestone());
        for key in [
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
        ] {
            assert!(value.get(key).is_some(), "{key} missing: {value}");
        }
        assert!(value["description"].is_null() && value["start_date"].is_null());
        assert_eq!(value["expired"], true);
        assert!(value["web_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/desk/acme/-/milestones/3")));
    }

    #[test]
    fn list_filters_follow_gitlab() {
        let m = milestone();
        let filter = |q: &str| Filter::from_params(&Params::from_query(Some(q)));
        assert!(filter("state=active").unwrap().matches(&m));
        assert!(!filter("state=closed").unwrap().matches(&m));
        assert!(filter("state=opened").is_err());
        assert!(filter("iids[]=3&iids[]=4").unwrap().matches(&m));
        assert!(!filter("iids[]=4").unwrap().matches(&m));
        assert!(filter("iids[]=x").is_err());
        assert!(filter("search=10.").unwrap().matches(&m));
        assert!(!filter("title=10").unwrap().matches(&m));
    }

    #[test]
    fn dates_are_validated() {
        let params = Params::from_query(Some("due_date=2026-02-30&start_date=&x=2026-02-28"));
        assert!(date(&params, "due_date").is_err());
        assert_eq!(date(&params, "start_date").unwrap(), Some(None));
        assert_eq!(
            date(&params, "x").unwrap(),
            Some(Some("2026-02-28".to_string()))
        );
        assert_eq!(date(&params, "absent").unwrap(), None);
    }
}
