//! Single notes (`GET/PUT/DELETE /issues/:iid/notes/:note_id`) and
//! discussions (`/issues/:iid/discussions`), GitLab's thread view of the
//! notes: several agent tools read a conversation only through it.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::issues;
use super::request::{json_response, Params};
use super::router::Ctx;
use super::{notes, ApiError};
use crate::store::{access_level, Note, NoteKind, Ticket, WriteOp, WriteOutcome};

/// The discussion a note belongs to: its thread, or its own 40-hex id.
pub fn discussion_id(note: &Note) -> String {
    note.discussion_id
        .clone()
        .unwrap_or_else(|| format!("{:0>40x}", note.id))
}

async fn visible_notes(
    ctx: &Ctx<'_>,
    ticket: &Ticket,
    may_see_internal: bool,
) -> Result<Vec<Note>, ApiError> {
    let (project_id, number) = (ticket.project_id, ticket.number);
    let notes = ctx
        .state
        .read(move |store| store.notes(project_id, number))
        .await?;
    Ok(notes
        .into_iter()
        .filter(|n| may_see_internal || n.kind != NoteKind::Internal)
        .collect())
}

/// Which note a request names: by ticket, optionally within a discussion
/// (`…/discussions/:discussion_id/notes/:note_id`).
#[derive(Debug, Clone, Copy)]
pub struct NoteRef<'a> {
    pub project: &'a str,
    pub iid: &'a str,
    pub discussion: Option<&'a str>,
    pub note: &'a str,
}

/// The note, if the caller may see it and it belongs to the named discussion.
async fn find_note(ctx: &Ctx<'_>, at: NoteRef<'_>) -> Result<(issues::Found, Note), ApiError> {
    let found = issues::find_with_access(ctx, at.project, at.iid).await?;
    let note_id = at
        .note
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound("Note"))?;
    let internal_ok = found.0.require(access_level::REPORTER).is_ok();
    let note = visible_notes(ctx, &found.1, internal_ok)
        .await?
        .into_iter()
        .find(|n| n.id == note_id)
        .filter(|n| at.discussion.is_none_or(|d| discussion_id(n) == d))
        .ok_or(ApiError::NotFound("Note"))?;
    Ok((found, note))
}

/// `GET …/notes/:note_id`, also inside a discussion.
pub async fn get_note(ctx: &Ctx<'_>, at: NoteRef<'_>) -> Result<Response<Full<Bytes>>, ApiError> {
    let ((_, ticket), note) = find_note(ctx, at).await?;
    Ok(json_response(
        StatusCode::OK,
        &issues::note_json(ctx, &ticket, &note).await?,
    ))
}

/// Authors edit their own notes; maintainers edit and delete anyone's.
/// `PUT` (`Some(params)`) or `DELETE` (`None`) a note, also inside a discussion.
pub async fn edit_note(
    ctx: &Ctx<'_>,
    at: NoteRef<'_>,
    params: Option<&Params>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let ((access, ticket), note) = find_note(ctx, at).await?;
    if note.author_id != ctx.caller.user.id {
        access.require(access_level::MAINTAINER)?;
    }
    if note.kind == NoteKind::System || note.kind == NoteKind::Email {
        return Err(ApiError::Forbidden);
    }
    let body = match params {
        Some(params) => {
            let body = params
                .string("body")?
                .ok_or_else(|| ApiError::BadRequest("body is missing".into()))?;
            if body.trim().is_empty() || body.chars().count() > 1_000_000 {
                return Err(ApiError::BadRequest("body is invalid".into()));
            }
            Some(body)
        }
        None => None,
    };
    let op = WriteOp::EditNote {
        project_id: ticket.project_id,
        number: ticket.number,
        note_id: note.id,
        body,
    };
    match ctx.state.store.write(op).await? {
        WriteOutcome::NoteEdited(Some(note)) => Ok(json_response(
            StatusCode::OK,
            &issues::note_json(ctx, &ticket, &note).await?,
        )),
        WriteOutcome::NoteEdited(None) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok(response)
        }
        _ => Err(ApiError::Internal("unexpected write outcome".into())),
    }
}

/// `GET /issues/:iid/notes` with GitLab's `sort` (default desc) and `order_by`.
pub async fn list_notes(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    let page = super::pagination::Page::from_params(params)?;
    let internal_ok = access.require(access_level::REPORTER).is_ok();
    let mut notes = visible_notes(ctx, &ticket, internal_ok).await?;
    match params.string("order_by")?.as_deref() {
        None | Some("created_at") => notes.sort_by_key(|n| (n.created_at, n.id)),
        Some("updated_at") => notes.sort_by_key(|n| (n.updated_at.unwrap_or(n.created_at), n.id)),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "order_by does not have a valid value".into(),
            ))
        }
    }
    match params.string("sort")?.as_deref() {
        None | Some("desc") => notes.reverse(),
        Some("asc") => {}
        Some(_) => {
            return Err(ApiError::BadRequest(
                "sort does not have a valid value".into(),
            ))
        }
    }
    let total = notes.len() as u64;
    let mut items = Vec::new();
    for note in notes
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
    {
        items.push(issues::note_json(ctx, &ticket, note).await?);
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    let url = ctx.url(&format!(
        "projects/{}/issues/{}/notes",
        ticket.project_id, ticket.number
    ));
    page.decorate(&mut response, &url, ctx.query, total);
    Ok(response)
}

async fn discussions_of(
    ctx: &Ctx<'_>,
    ticket: &Ticket,
    internal_ok: bool,
) -> Result<Vec<Value>, ApiError> {
    let notes = visible_notes(ctx, ticket, internal_ok).await?;
    let mut order: Vec<String> = Vec::new();
    let mut groups: std::collections::HashMap<String, Vec<&Note>> = Default::default();
    for note in &notes {
        let id = discussion_id(note);
        if !groups.contains_key(&id) {
            order.push(id.clone());
        }
        groups.entry(id).or_default().push(note);
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let members = groups.remove(&id).unwrap_or_default();
        let individual = members.len() == 1 && members[0].discussion_id.is_none();
        let mut notes_json = Vec::with_capacity(members.len());
        for note in members {
            let mut value = issues::note_json(ctx, ticket, note).await?;
            if let Value::Object(map) = &mut value {
                map.insert(
                    "type".into(),
                    if individual {
                        Value::Null
                    } else {
                        json!("DiscussionNote")
                    },
                );
            }
            notes_json.push(value);
        }
        out.push(json!({ "id": id, "individual_note": individual, "notes": notes_json }));
    }
    Ok(out)
}

pub async fn list_discussions(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    let page = super::pagination::Page::from_params(params)?;
    let internal_ok = access.require(access_level::REPORTER).is_ok();
    let all = discussions_of(ctx, &ticket, internal_ok).await?;
    let total = all.len() as u64;
    let items: Vec<Value> = all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    let url = ctx.url(&format!(
        "projects/{}/issues/{}/discussions",
        ticket.project_id, ticket.number
    ));
    page.decorate(&mut response, &url, ctx.query, total);
    Ok(response)
}

pub async fn get_discussion(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    discussion: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    let internal_ok = access.require(access_level::REPORTER).is_ok();
    let found = discussions_of(ctx, &ticket, internal_ok)
        .await?
        .into_iter()
        .find(|d| d["id"] == discussion)
        .ok_or(ApiError::NotFound("Discussion"))?;
    Ok(json_response(StatusCode::OK, &found))
}

/// Starts a thread (`discussion: None`) or replies in one.
pub async fn post(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    discussion: Option<&str>,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let thread = match discussion {
        None => crate::store::new_secret_token()
            .trim_start_matches("glpat-")
            .chars()
            .take(40)
            .collect::<String>(),
        Some(existing) => {
            let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
            let internal_ok = access.require(access_level::REPORTER).is_ok();
            let exists = discussions_of(ctx, &ticket, internal_ok)
                .await?
                .iter()
                .any(|d| d["id"] == existing);
            if !exists {
                return Err(ApiError::NotFound("Discussion"));
            }
            existing.to_string()
        }
    };
    let response = notes::create_in_discussion(ctx, id, iid, params, thread.clone()).await?;
    let Some(note) = response else {
        return Err(ApiError::BadRequest("body is empty".into()));
    };
    if discussion.is_some() {
        return Ok(json_response(StatusCode::CREATED, &note));
    }
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    let internal_ok = access.require(access_level::REPORTER).is_ok();
    let created = discussions_of(ctx, &ticket, internal_ok)
        .await?
        .into_iter()
        .find(|d| d["id"] == thread.as_str())
        .ok_or(ApiError::NotFound("Discussion"))?;
    Ok(json_response(StatusCode::CREATED, &created))
}
