//! Notes and state changes: `POST /issues/:iid/notes` (with quick actions),
//! `PUT /issues/:iid` (`state_event`), and external e-mail participants.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::issues;
use super::quick_actions::{self, QuickAction};
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use crate::store::{NoteChange, NoteOutcome, StateEvent, WriteOp, WriteOutcome};

/// Longest note body accepted (GitLab: 1,000,000 characters).
const MAX_NOTE_CHARS: usize = 1_000_000;

async fn apply(ctx: &Ctx<'_>, change: NoteChange) -> Result<NoteOutcome, ApiError> {
    match ctx.state.store.write(WriteOp::ChangeTicket(change)).await? {
        WriteOutcome::TicketChanged(outcome) => Ok(*outcome),
        _ => Err(ApiError::Internal("unexpected write outcome".into())),
    }
}

fn state_event(value: Option<String>) -> Result<Option<StateEvent>, ApiError> {
    match value.as_deref() {
        None => Ok(None),
        Some("close") => Ok(Some(StateEvent::Close)),
        Some("reopen") => Ok(Some(StateEvent::Reopen)),
        Some(_) => Err(ApiError::BadRequest(
            "state_event does not have a valid value".into(),
        )),
    }
}

pub async fn create(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let (project, ticket) = issues::find(ctx, id, iid).await?;
    let body = params
        .string("body")?
        .ok_or_else(|| ApiError::BadRequest("body is missing".into()))?;
    if body.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::Validation {
            field: "note",
            reason: "is too long (maximum is 1000000 characters)".into(),
        });
    }
    let internal = params
        .bool("internal")?
        .or(params.bool("confidential")?)
        .unwrap_or(false);
    let parsed = quick_actions::parse(&body);
    let mut change = NoteChange {
        project_id: project.id,
        number: ticket.number,
        author_id: ctx.caller.user.id,
        body: Some(parsed.text.clone()),
        internal,
        add_emails: Vec::new(),
        remove_emails: Vec::new(),
        state_event: None,
    };
    for action in parsed.actions {
        match action {
            QuickAction::Close => change.state_event = Some(StateEvent::Close),
            QuickAction::Reopen => change.state_event = Some(StateEvent::Reopen),
            QuickAction::AddEmail(emails) => change.add_emails.extend(emails),
            QuickAction::RemoveEmail(emails) => change.remove_emails.extend(emails),
        }
    }
    if parsed.text.is_empty()
        && change.add_emails.is_empty()
        && change.remove_emails.is_empty()
        && change.state_event.is_none()
    {
        if parsed.unknown.is_empty() {
            return Err(ApiError::BadRequest("body is empty".into()));
        }
        return Err(ApiError::BadRequest(format!(
            "Could not apply commands: {}",
            parsed.unknown.join(", ")
        )));
    }
    let outcome = apply(ctx, change).await?;
    let mut messages = outcome.actions.clone();
    messages.extend(
        parsed
            .unknown
            .iter()
            .map(|u| format!("Unknown or unsupported command: {u}")),
    );
    let mut value = match &outcome.note {
        Some(note) => issues::note_json(ctx, &outcome.ticket, note).await?,
        // Only commands: GitLab answers 202 with the command results.
        None => {
            return Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({ "commands_changes": {}, "summary": messages }),
            ))
        }
    };
    if let Value::Object(map) = &mut value {
        map.insert(
            "commands_changes".into(),
            json!({ "summary": messages, "unknown": parsed.unknown }),
        );
    }
    Ok(json_response(StatusCode::CREATED, &value))
}

pub async fn update_issue(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let (project, ticket) = issues::find(ctx, id, iid).await?;
    let change = NoteChange {
        project_id: project.id,
        number: ticket.number,
        author_id: ctx.caller.user.id,
        body: None,
        internal: false,
        add_emails: Vec::new(),
        remove_emails: Vec::new(),
        state_event: state_event(params.string("state_event")?)?,
    };
    let outcome = apply(ctx, change).await?;
    let value = issues::issue_json(ctx, &project, &outcome.ticket).await?;
    Ok(json_response(StatusCode::OK, &value))
}

pub async fn list_participants(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (_, ticket) = issues::find(ctx, id, iid).await?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(issues::participants_json(&ticket)),
    ))
}

pub async fn add_participant(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let (project, ticket) = issues::find(ctx, id, iid).await?;
    let email = params
        .string("email")?
        .ok_or_else(|| ApiError::BadRequest("email is missing".into()))?;
    if !crate::notify::compose::is_safe_address(email.trim()) {
        return Err(ApiError::Validation {
            field: "email",
            reason: "is invalid".into(),
        });
    }
    let change = NoteChange {
        project_id: project.id,
        number: ticket.number,
        author_id: ctx.caller.user.id,
        body: None,
        internal: false,
        add_emails: vec![email],
        remove_emails: Vec::new(),
        state_event: None,
    };
    let outcome = apply(ctx, change).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &Value::Array(issues::participants_json(&outcome.ticket)),
    ))
}

pub async fn remove_participant(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    email: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let (project, ticket) = issues::find(ctx, id, iid).await?;
    let email = email.trim().to_lowercase();
    if !ticket.participants.iter().any(|p| p.email == email) {
        return Err(ApiError::NotFound("Participant"));
    }
    let change = NoteChange {
        project_id: project.id,
        number: ticket.number,
        author_id: ctx.caller.user.id,
        body: None,
        internal: false,
        add_emails: Vec::new(),
        remove_emails: vec![email],
        state_event: None,
    };
    apply(ctx, change).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default())
}
