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
use crate::store::{Project, Ticket, TicketState, User};

fn parse_iid(iid: &str) -> Result<u64, ApiError> {
    iid.parse::<u64>().map_err(|_| ApiError::NotFound("Issue"))
}

pub async fn find(ctx: &Ctx<'_>, id: &str, iid: &str) -> Result<(Project, Ticket), ApiError> {
    let (access, ticket) = find_with_access(ctx, id, iid).await?;
    Ok((access.project, ticket))
}

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

async fn author(ctx: &Ctx<'_>, user_id: u64) -> Result<Value, ApiError> {
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
    let author = author(ctx, ticket.author_id).await?;
    let (project_id, number) = (ticket.project_id, ticket.number);
    let notes = ctx
        .state
        .read(move |store| store.notes(project_id, number))
        .await?;
    let user_notes = notes
        .iter()
        .filter(|n| n.kind != crate::store::NoteKind::System)
        .count();
    let mut value = json::issue(&ctx.state.config, project, ticket, &author, user_notes);
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

pub async fn list(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let project = projects::find(ctx, id).await?;
    let page = Page::from_params(params)?;
    let state = match params.string("state")?.as_deref() {
        None | Some("all") => None,
        Some("opened") => Some(TicketState::Opened),
        Some("closed") => Some(TicketState::Closed),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "state does not have a valid value".into(),
            ))
        }
    };
    let project_id = project.id;
    let (offset, limit) = (page.offset(), page.per_page);
    let result = ctx
        .state
        .read(move |store| store.tickets(project_id, state, offset, limit))
        .await?;
    let mut items = Vec::with_capacity(result.tickets.len());
    for ticket in &result.tickets {
        items.push(issue_json(ctx, &project, ticket).await?);
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(
        &mut response,
        &ctx.url(&format!("projects/{}/issues", project.id)),
        ctx.query,
        result.total,
    );
    Ok(response)
}

pub async fn get(ctx: &Ctx<'_>, id: &str, iid: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let (project, ticket) = find(ctx, id, iid).await?;
    Ok(json_response(
        StatusCode::OK,
        &issue_json(ctx, &project, &ticket).await?,
    ))
}

pub async fn notes(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (project, ticket) = find(ctx, id, iid).await?;
    let page = Page::from_params(params)?;
    let (project_id, number) = (ticket.project_id, ticket.number);
    let notes = ctx
        .state
        .read(move |store| store.notes(project_id, number))
        .await?;
    let total = notes.len() as u64;
    let mut items = Vec::new();
    for note in notes
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
    {
        items.push(note_json(ctx, &ticket, note).await?);
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    page.decorate(
        &mut response,
        &ctx.url(&format!(
            "projects/{}/issues/{}/notes",
            project.id, ticket.number
        )),
        ctx.query,
        total,
    );
    Ok(response)
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
