//! `/projects/:id/issues`: list, get, notes, attachments and the raw message.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::json;
use super::pagination::Page;
use super::projects;
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::query::{Cursor, IdFilter, LabelFilter, OrderBy, TicketQuery};
use crate::store::{Project, Ticket, TicketState, User};

fn parse_iid(iid: &str) -> Result<u64, ApiError> {
    iid.parse::<u64>().map_err(|_| ApiError::NotFound("Issue"))
}

pub async fn find(ctx: &Ctx<'_>, id: &str, iid: &str) -> Result<(Project, Ticket), ApiError> {
    let (access, ticket) = find_with_access(ctx, id, iid).await?;
    Ok((access.project, ticket))
}

/// A ticket with the caller's rights in its project.
pub type Found = (projects::ProjectAccess, Ticket);

/// The ticket and the caller's rights in its project; a ticket the caller
/// may not see does not exist (404), as in GitLab.
pub async fn find_with_access(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
) -> Result<(projects::ProjectAccess, Ticket), ApiError> {
    let access = projects::access(ctx, id).await?;
    let project = &access.project;
    let number = parse_iid(iid)?;
    let project_id = project.id;
    let ticket = ctx
        .state
        .read(move |store| store.ticket(project_id, number))
        .await?
        .ok_or(ApiError::NotFound("Issue"))?;
    if !access.can_see(&ticket) {
        return Err(ApiError::NotFound("Issue"));
    }
    Ok((access, ticket))
}

pub async fn author(ctx: &Ctx<'_>, user_id: u64) -> Result<Value, ApiError> {
    let user: Option<User> = ctx.state.read(move |store| store.user(user_id)).await?;
    Ok(match user {
        Some(user) => json::user(&ctx.state.config, &user),
        None => Value::Null,
    })
}

pub async fn issue_json(
    ctx: &Ctx<'_>,
    project: &Project,
    ticket: &Ticket,
) -> Result<Value, ApiError> {
    let author_json = author(ctx, ticket.author_id).await?;
    let (project_id, number) = (ticket.project_id, ticket.number);
    let notes = ctx
        .state
        .read(move |store| store.notes(project_id, number))
        .await?;
    // Internal notes count only for those who may read them.
    let sees_internal = ctx.caller.user.is_admin || {
        let user_id = ctx.caller.user.id;
        ctx.state
            .read(move |store| store.access_level(project_id, user_id))
            .await?
            >= crate::store::access_level::REPORTER
    };
    let notes_count = notes
        .iter()
        .filter(|n| n.kind != crate::store::NoteKind::System)
        .filter(|n| sees_internal || n.kind != crate::store::NoteKind::Internal)
        .count();
    let mut assignees = Vec::new();
    for id in &ticket.assignee_ids {
        let value = author(ctx, *id).await?;
        if !value.is_null() {
            assignees.push(value);
        }
    }
    let milestone = match ticket.milestone_id {
        Some(id) => ctx
            .state
            .read(move |store| store.milestone(project_id, id))
            .await?
            .map(|m| json::milestone(&ctx.state.config, project, &m))
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let closed_by = match ticket.closed_by {
        Some(id) => author(ctx, id).await?,
        None => Value::Null,
    };
    let relations = json::IssueRelations {
        author: author_json,
        assignees,
        milestone,
        closed_by,
        notes_count,
    };
    let mut value = json::issue(&ctx.state.config, project, ticket, relations);
    if let Value::Object(map) = &mut value {
        map.insert(
            "email_participants".into(),
            Value::Array(participants_json(ticket)),
        );
    }
    Ok(value)
}

/// mxdesk's view of a ticket's external participants.
pub fn participants_json(ticket: &Ticket) -> Vec<Value> {
    ticket
        .participants
        .iter()
        .map(|p| {
            serde_json::json!({
                "email": p.email,
                "name": p.name,
                "unsubscribed": p.unsubscribed,
                "bouncing": p.bouncing,
                "created_at": json::timestamp(p.added_at),
            })
        })
        .collect()
}

/// GitLab's note JSON plus mxdesk's mail details.
pub async fn note_json(
    ctx: &Ctx<'_>,
    ticket: &Ticket,
    note: &crate::store::Note,
) -> Result<Value, ApiError> {
    let author = author(ctx, note.author_id).await?;
    let mut value = json::note(ticket, note, &author);
    if let Value::Object(map) = &mut value {
        map.insert("sent_to".into(), serde_json::json!(note.sent_to));
        map.insert("from_email".into(), serde_json::json!(note.from_email));
        map.insert("threaded_by".into(), serde_json::json!(note.threaded_by));
        map.insert(
            "sender_mismatch".into(),
            serde_json::json!(note.sender_mismatch),
        );
        let api = ctx.url(&format!(
            "projects/{}/issues/{}",
            ticket.project_id, ticket.number
        ));
        let attachments: Vec<Value> = note
            .attachments
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name, "content_type": a.content_type, "size": a.size,
                    "url": format!("{api}/blobs/{}", a.sha256),
                })
            })
            .collect();
        map.insert("attachments".into(), Value::Array(attachments));
    }
    Ok(value)
}

/// Reads GitLab's issue-list filters into a store query.
async fn build_query(
    ctx: &Ctx<'_>,
    project_id: u64,
    params: &Params,
) -> Result<TicketQuery, ApiError> {
    let mut query = TicketQuery {
        project_id,
        ..TicketQuery::default()
    };
    query.state = match params.string("state")?.as_deref() {
        None | Some("all") | Some("") => None,
        Some("opened") => Some(TicketState::Opened),
        Some("closed") => Some(TicketState::Closed),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "state does not have a valid value".into(),
            ))
        }
    };
    query.labels = match params.list("labels")? {
        None => LabelFilter::Ignore,
        Some(labels) if labels.len() == 1 && labels[0].eq_ignore_ascii_case("none") => {
            LabelFilter::NoLabel
        }
        Some(labels) if labels.len() == 1 && labels[0].eq_ignore_ascii_case("any") => {
            LabelFilter::AnyLabel
        }
        Some(labels) if labels.is_empty() => LabelFilter::Ignore,
        Some(labels) => LabelFilter::All(labels),
    };
    query.assignee = match (
        params.string("assignee_id")?,
        params.list("assignee_username")?,
    ) {
        (Some(id), _) if id.eq_ignore_ascii_case("none") => IdFilter::NoneSet,
        (Some(id), _) if id.eq_ignore_ascii_case("any") => IdFilter::AnySet,
        (Some(id), _) => IdFilter::Is(
            id.parse::<u64>()
                .map_err(|_| ApiError::BadRequest("assignee_id is invalid".into()))?,
        ),
        (None, Some(names)) if !names.is_empty() => {
            let name = names[0].clone();
            match ctx
                .state
                .read(move |store| store.user_by_username(&name))
                .await?
            {
                Some(user) => IdFilter::Is(user.id),
                // An unknown user is assigned to nothing.
                None => IdFilter::Is(0),
            }
        }
        _ => IdFilter::Ignore,
    };
    query.milestone = match params.string("milestone")? {
        None => IdFilter::Ignore,
        Some(m) if m.eq_ignore_ascii_case("none") => IdFilter::NoneSet,
        Some(m) if m.eq_ignore_ascii_case("any") => IdFilter::AnySet,
        Some(title) => {
            let milestones = ctx
                .state
                .read(move |store| store.milestones(project_id))
                .await?;
            match milestones.iter().find(|m| m.title == title) {
                Some(m) => IdFilter::Is(m.id),
                None => IdFilter::Is(0),
            }
        }
    };
    query.author_id = params.id("author_id")?;
    query.search = params
        .string("search")?
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    query.confidential = params.bool("confidential")?;
    query.iids = params.ids("iids")?;
    query.created_after = params.datetime("created_after")?;
    query.created_before = params.datetime("created_before")?;
    query.updated_after = params.datetime("updated_after")?;
    query.updated_before = params.datetime("updated_before")?;
    query.order_by = match params.string("order_by")?.as_deref() {
        None | Some("created_at") => OrderBy::CreatedAt,
        Some("updated_at") => OrderBy::UpdatedAt,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "order_by does not have a valid value (created_at, updated_at)".into(),
            ))
        }
    };
    query.ascending = match params.string("sort")?.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "sort does not have a valid value".into(),
            ))
        }
    };
    Ok(query)
}

/// Keyset cursors: opaque to clients, `<updated_at>.<number>` in hex.
fn encode_cursor(ticket: &Ticket) -> String {
    hex::encode(format!("{}.{}", ticket.updated_at, ticket.number))
}

fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::BadRequest("cursor is invalid".into());
    let raw = hex::decode(text).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (updated, number) = raw.split_once('.').ok_or_else(bad)?;
    Ok(Cursor {
        updated_at: updated.parse().map_err(|_| bad())?,
        number: number.parse().map_err(|_| bad())?,
    })
}

pub async fn list(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let access = projects::access(ctx, id).await?;
    let mut query = build_query(ctx, access.project.id, params).await?;
    let keyset = match params.string("pagination")?.as_deref() {
        None | Some("offset") => false,
        Some("keyset") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "pagination does not have a valid value".into(),
            ))
        }
    };
    let page = Page::from_params(params)?;
    if keyset {
        if let Some(cursor) = params.string("cursor")? {
            query.after = Some(decode_cursor(&cursor)?);
        }
    }
    let offset = if keyset { 0 } else { page.offset() };
    let limit = page.per_page;
    let checker = access.clone();
    let result = ctx
        .state
        .read(move |store| store.query_tickets(&query, &|t| checker.can_see(t), offset, limit))
        .await?;
    let project = &access.project;
    let mut items = Vec::with_capacity(result.tickets.len());
    for ticket in &result.tickets {
        items.push(issue_json(ctx, project, ticket).await?);
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    let url = ctx.url(&format!("projects/{}/issues", project.id));
    if keyset {
        if let (true, Some(last)) = (result.more, result.tickets.last()) {
            page.decorate_keyset(&mut response, &url, ctx.query, &encode_cursor(last));
        }
    } else {
        page.decorate_partial(&mut response, &url, ctx.query, result.total, result.more);
    }
    Ok(response)
}

/// `GET /issues`: every ticket the caller may see, across projects.
pub async fn list_all(ctx: &Ctx<'_>, params: &Params) -> Result<Response<Full<Bytes>>, ApiError> {
    let page = Page::from_params(params)?;
    let user = ctx.caller.user.clone();
    let project_ids: Vec<u64> = if user.is_admin {
        ctx.state
            .read(|store| store.projects())
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect()
    } else {
        let id = user.id;
        ctx.state
            .read(move |store| store.memberships(id))
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    };
    // GitLab's default scope for `/issues` is the caller's own tickets.
    let me = ctx.caller.user.id;
    let scope = params.string("scope")?;
    let (author_only, assignee_only) = match scope.as_deref() {
        None | Some("created_by_me") | Some("created-by-me") => (true, false),
        Some("assigned_to_me") | Some("assigned-to-me") => (false, true),
        Some("all") => (false, false),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "scope does not have a valid value".into(),
            ))
        }
    };
    let wanted = page.offset() + page.per_page;
    let mut all: Vec<(projects::ProjectAccess, Ticket)> = Vec::new();
    let mut total: Option<u64> = Some(0);
    for project_id in project_ids {
        let Ok(access) = projects::access(ctx, &project_id.to_string()).await else {
            continue;
        };
        let mut query = build_query(ctx, project_id, params).await?;
        if author_only {
            query.author_id = Some(me);
        }
        if assignee_only {
            query.assignee = IdFilter::Is(me);
        }
        let checker = access.clone();
        let result = ctx
            .state
            .read(move |store| store.query_tickets(&query, &|t| checker.can_see(t), 0, wanted))
            .await?;
        total = match (total, result.total) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        all.extend(result.tickets.into_iter().map(|t| (access.clone(), t)));
    }
    let ascending = params.string("sort")?.as_deref() == Some("asc");
    let by_updated = params.string("order_by")?.as_deref() == Some("updated_at");
    all.sort_by_key(|(_, t)| {
        (
            if by_updated {
                t.updated_at
            } else {
                t.created_at
            },
            t.id,
        )
    });
    if !ascending {
        all.reverse();
    }
    let mut items = Vec::new();
    for (access, ticket) in all
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
    {
        items.push(issue_json(ctx, &access.project, ticket).await?);
    }
    let more = (all.len() as u64) > wanted || total.is_none_or(|t| t > wanted);
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate_partial(&mut response, &ctx.url("issues"), ctx.query, total, more);
    Ok(response)
}

pub async fn get(ctx: &Ctx<'_>, id: &str, iid: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let (project, ticket) = find(ctx, id, iid).await?;
    Ok(json_response(
        StatusCode::OK,
        &issue_json(ctx, &project, &ticket).await?,
    ))
}

fn download(bytes: Vec<u8>, content_type: &str, filename: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Only a safe ASCII subset goes into the header; the JSON has the real name.
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn blob(ctx: &Ctx<'_>, sha256: &str) -> Result<Vec<u8>, ApiError> {
    let sha256 = sha256.to_string();
    ctx.state
        .read(move |store| store.blob(&sha256))
        .await?
        .ok_or(ApiError::NotFound("File"))
}

pub async fn attachment(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    n: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (_, ticket) = find(ctx, id, iid).await?;
    let index = n.parse::<usize>().map_err(|_| ApiError::NotFound("File"))?;
    let attachment = index
        .checked_sub(1)
        .and_then(|i| ticket.attachments.get(i))
        .ok_or(ApiError::NotFound("File"))?;
    let bytes = blob(ctx, &attachment.sha256).await?;
    Ok(download(bytes, &attachment.content_type, &attachment.name))
}

/// A blob referenced by the ticket or one of its notes (note attachments).
pub async fn ticket_blob(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    sha256: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (_, ticket) = find(ctx, id, iid).await?;
    let (project_id, number) = (ticket.project_id, ticket.number);
    let notes = ctx
        .state
        .read(move |store| store.notes(project_id, number))
        .await?;
    let attachment = ticket
        .attachments
        .iter()
        .chain(notes.iter().flat_map(|n| n.attachments.iter()))
        .find(|a| a.sha256 == sha256)
        .cloned()
        .ok_or(ApiError::NotFound("File"))?;
    let bytes = blob(ctx, &attachment.sha256).await?;
    Ok(download(bytes, &attachment.content_type, &attachment.name))
}

pub async fn raw_message(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (_, ticket) = find(ctx, id, iid).await?;
    let sha = ticket
        .raw_message_sha256
        .as_deref()
        .ok_or(ApiError::NotFound("File"))?;
    let bytes = blob(ctx, sha).await?;
    Ok(download(
        bytes,
        "message/rfc822",
        &format!("issue-{}.eml", ticket.number),
    ))
}
