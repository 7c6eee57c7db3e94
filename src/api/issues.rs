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

async fn find(ctx: &Ctx<'_>, id: &str, iid: &str) -> Result<(Project, Ticket), ApiError> {
    let project = projects::find(ctx, id).await?;
    let number = parse_iid(iid)?;
    let project_id = project.id;
    let ticket = ctx
        .state
        .read(move |store| store.ticket(project_id, number))
        .await?
        .ok_or(ApiError::NotFound("Issue"))?;
    Ok((project, ticket))
}

async fn author(ctx: &Ctx<'_>, user_id: u64) -> Result<Value, ApiError> {
    let user: Option<User> = ctx.state.read(move |store| store.user(user_id)).await?;
    Ok(match user {
        Some(user) => json::user(&ctx.state.config, &user),
        None => Value::Null,
    })
}

async fn issue_json(ctx: &Ctx<'_>, project: &Project, ticket: &Ticket) -> Result<Value, ApiError> {
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
    Ok(json::issue(
        &ctx.state.config,
        project,
        ticket,
        &author,
        user_notes,
    ))
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
        let author = author(ctx, note.author_id).await?;
        items.push(json::note(&ticket, note, &author));
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
