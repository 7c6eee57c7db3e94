//! Notes and state changes: `POST /issues/:iid/notes` (with quick actions),
//! `PUT /issues/:iid` (`state_event`), and external e-mail participants.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::quick_actions::{self, QuickAction};
use super::request::{json_response, Params};
use super::router::Ctx;
use super::ApiError;
use super::{duration, issues, json, projects};
use crate::store::{
    access_level, NewTicket, NoteChange, NoteOutcome, StateEvent, WriteOp, WriteOutcome,
};

/// Longest note body accepted (GitLab: 1,000,000 characters).
const MAX_NOTE_CHARS: usize = 1_000_000;

async fn apply(ctx: &Ctx<'_>, change: NoteChange) -> Result<NoteOutcome, ApiError> {
    match ctx
        .state
        .store
        .write(WriteOp::ChangeTicket(Box::new(change)))
        .await?
    {
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

/// Resolves usernames (`me` is the caller) to user ids; unknown ones are
/// reported in `problems`.
async fn resolve_users(
    ctx: &Ctx<'_>,
    names: &[String],
    problems: &mut Vec<String>,
) -> Result<Vec<u64>, ApiError> {
    let mut ids = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("me") {
            ids.push(ctx.caller.user.id);
            continue;
        }
        let lookup = name.clone();
        match ctx
            .state
            .read(move |store| store.user_by_username(&lookup))
            .await?
        {
            Some(user) if !user.bot => ids.push(user.id),
            _ => problems.push(format!("User @{name} not found.")),
        }
    }
    Ok(ids)
}

async fn resolve_milestone(
    ctx: &Ctx<'_>,
    project_id: u64,
    title: &str,
) -> Result<Option<u64>, ApiError> {
    let milestones = ctx
        .state
        .read(move |store| store.milestones(project_id))
        .await?;
    Ok(milestones.iter().find(|m| m.title == title).map(|m| m.id))
}

/// `YYYY-MM-DD`, `today` or `tomorrow` → `YYYY-MM-DD`.
fn parse_due(text: &str) -> Option<String> {
    let now = crate::store::now_millis();
    let day = |ms: i64| {
        let d = mail_parser::DateTime::from_timestamp(ms.div_euclid(1000));
        format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "today" => Some(day(now)),
        "tomorrow" => Some(day(now + 86_400_000)),
        date if date.len() == 10 && super::request::parse_datetime(date).is_some() => {
            Some(date.to_string())
        }
        _ => None,
    }
}

/// The label names the store accepts; the others are reported in `problems`.
fn valid_labels(labels: Vec<String>, problems: &mut Vec<String>) -> Vec<String> {
    let (valid, invalid): (Vec<String>, Vec<String>) = labels
        .into_iter()
        .partition(|name| crate::store::Label::normalize_name(name).is_ok());
    for name in invalid {
        problems.push(format!("~{name:?}: not a valid label name."));
    }
    valid
}

/// Turns parsed quick actions into a change; what cannot be applied is
/// described in the returned list (shown to the caller, never ignored).
async fn apply_quick_actions(
    ctx: &Ctx<'_>,
    access: &projects::ProjectAccess,
    ticket: &crate::store::Ticket,
    actions: Vec<QuickAction>,
    change: &mut NoteChange,
) -> Result<Vec<String>, ApiError> {
    let mut problems = Vec::new();
    let may_edit = access.require(access_level::REPORTER).is_ok();
    // GitLab: the author and assignees may close and reopen their issue.
    let user = ctx.caller.user.id;
    let may_change_state =
        may_edit || ticket.author_id == user || ticket.assignee_ids.contains(&user);
    for action in actions {
        let state_only = matches!(action, QuickAction::Close | QuickAction::Reopen);
        let allowed = if state_only {
            may_change_state
        } else {
            may_edit
        };
        if !allowed {
            problems.push(format!(
                "{action:?}: you are not allowed to do this (Reporter or above needed)."
            ));
            continue;
        }
        match action {
            QuickAction::Close => change.state_event = Some(StateEvent::Close),
            QuickAction::Reopen => change.state_event = Some(StateEvent::Reopen),
            QuickAction::AddEmail(emails) => change.add_emails.extend(emails),
            QuickAction::RemoveEmail(emails) => change.remove_emails.extend(emails),
            QuickAction::Label(labels) => change
                .add_labels
                .extend(valid_labels(labels, &mut problems)),
            QuickAction::Unlabel(labels) if labels.is_empty() => {
                change.set_labels = Some(Vec::new())
            }
            QuickAction::Unlabel(labels) => change.remove_labels.extend(labels),
            QuickAction::Relabel(labels) => {
                let labels = valid_labels(labels, &mut problems);
                if !labels.is_empty() {
                    change.set_labels = Some(labels);
                }
            }
            QuickAction::Assign(names) => {
                let ids = resolve_users(ctx, &names, &mut problems).await?;
                change.add_assignees.extend(ids);
            }
            QuickAction::Unassign(names) if names.is_empty() => {
                change.assignee_ids = Some(Vec::new())
            }
            QuickAction::Unassign(names) => {
                let ids = resolve_users(ctx, &names, &mut problems).await?;
                change.remove_assignees.extend(ids);
            }
            QuickAction::Milestone(title) => {
                match resolve_milestone(ctx, access.project.id, &title).await? {
                    Some(id) => change.milestone_id = Some(Some(id)),
                    None => problems.push(format!("Milestone %\"{title}\" not found.")),
                }
            }
            QuickAction::RemoveMilestone => change.milestone_id = Some(None),
            QuickAction::Estimate(text) => match duration::parse(&text) {
                Some(seconds) if seconds >= 0 => change.time_estimate = Some(seconds as u64),
                _ => problems.push(format!("/estimate {text}: not a valid duration.")),
            },
            QuickAction::RemoveEstimate => change.time_estimate = Some(0),
            QuickAction::Spend(text) => match duration::parse(&text) {
                Some(seconds) => change.add_spent = Some(change.add_spent.unwrap_or(0) + seconds),
                None => problems.push(format!("/spend {text}: not a valid duration.")),
            },
            QuickAction::RemoveTimeSpent => change.reset_spent = true,
            QuickAction::Confidential => change.confidential = Some(true),
            QuickAction::Title(title) => {
                let title = crate::ingest::sanitize_header_text(&title, 255);
                if title.is_empty() {
                    problems.push("/title: the title cannot be empty.".into());
                } else {
                    change.title = Some(title);
                }
            }
            QuickAction::Due(text) => match parse_due(&text) {
                Some(date) => change.due_date = Some(Some(date)),
                None => problems.push(format!("/due {text}: not a valid date.")),
            },
            QuickAction::RemoveDueDate => change.due_date = Some(None),
            QuickAction::Lock => change.discussion_locked = Some(true),
            QuickAction::Unlock => change.discussion_locked = Some(false),
        }
    }
    Ok(problems)
}

fn note_body(params: &Params) -> Result<String, ApiError> {
    let body = params
        .string("body")?
        .ok_or_else(|| ApiError::BadRequest("body is missing".into()))?;
    if body.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::Validation {
            field: "note",
            reason: "is too long (maximum is 1000000 characters)".into(),
        });
    }
    Ok(body)
}

/// Posts a note with quick actions; `discussion_id` starts or joins a thread.
async fn post_note(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
    discussion_id: Option<String>,
) -> Result<(NoteOutcome, Vec<String>, Vec<String>), ApiError> {
    ctx.caller.require_write()?;
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    if ticket.discussion_locked {
        access.require(access_level::REPORTER)?;
    }
    let body = note_body(params)?;
    let internal = params
        .bool("internal")?
        .or(params.bool("confidential")?)
        .unwrap_or(false);
    if internal {
        access.require(access_level::REPORTER)?;
    }
    let parsed = quick_actions::parse(&body);
    let mut change = NoteChange::new(access.project.id, ticket.number, ctx.caller.user.id);
    change.body = Some(parsed.text.clone());
    change.internal = internal;
    change.discussion_id = discussion_id;
    let problems = apply_quick_actions(ctx, &access, &ticket, parsed.actions, &mut change).await?;
    let unknown: Vec<String> = parsed.unknown;
    let nothing = parsed.text.is_empty()
        && change.add_emails.is_empty()
        && change.remove_emails.is_empty()
        && change.state_event.is_none()
        && !has_field_changes(&change);
    if nothing {
        let mut why = unknown.clone();
        why.extend(problems.iter().cloned());
        if why.is_empty() {
            return Err(ApiError::BadRequest("body is empty".into()));
        }
        return Err(ApiError::BadRequest(format!(
            "Could not apply commands: {}",
            why.join("; ")
        )));
    }
    let outcome = apply(ctx, change).await?;
    Ok((outcome, unknown, problems))
}

fn has_field_changes(c: &NoteChange) -> bool {
    c.title.is_some()
        || c.set_labels.is_some()
        || !c.add_labels.is_empty()
        || !c.remove_labels.is_empty()
        || c.assignee_ids.is_some()
        || !c.add_assignees.is_empty()
        || !c.remove_assignees.is_empty()
        || c.milestone_id.is_some()
        || c.confidential.is_some()
        || c.due_date.is_some()
        || c.discussion_locked.is_some()
        || c.time_estimate.is_some()
        || c.add_spent.is_some()
        || c.reset_spent
}

pub async fn create(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (outcome, unknown, problems) = post_note(ctx, id, iid, params, None).await?;
    let mut summary = outcome.actions.clone();
    summary.extend(
        unknown
            .iter()
            .map(|u| format!("Unknown or unsupported command: {u}")),
    );
    summary.extend(problems.iter().cloned());
    let changes = json!({ "summary": summary, "unknown": unknown, "errors": problems });
    let mut value = match &outcome.note {
        Some(note) => issues::note_json(ctx, &outcome.ticket, note).await?,
        // Only commands: GitLab answers 202 with the command results.
        None => {
            return Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({ "commands_changes": changes, "summary": summary }),
            ))
        }
    };
    if let Value::Object(map) = &mut value {
        map.insert("commands_changes".into(), changes);
    }
    Ok(json_response(StatusCode::CREATED, &value))
}

/// Posts a note into a discussion; the note JSON, or `None` when the body
/// held only commands.
pub async fn create_in_discussion(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
    discussion: String,
) -> Result<Option<Value>, ApiError> {
    // A thread needs text: refuse a commands-only body before anything runs.
    let body = note_body(params)?;
    if quick_actions::parse(&body).text.is_empty() {
        return Err(ApiError::BadRequest(
            "body is empty (a discussion needs text besides commands)".into(),
        ));
    }
    let (outcome, _, _) = post_note(ctx, id, iid, params, Some(discussion)).await?;
    match &outcome.note {
        Some(note) => Ok(Some(issues::note_json(ctx, &outcome.ticket, note).await?)),
        None => Ok(None),
    }
}

/// `PUT /issues/:iid`: GitLab's editable fields, each leaving a system note.
pub async fn update_issue(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    let reporter = access.require(access_level::REPORTER).is_ok();
    let user = ctx.caller.user.id;
    if !reporter && ticket.author_id != user && !ticket.assignee_ids.contains(&user) {
        return Err(ApiError::Forbidden);
    }
    let mut change = NoteChange::new(access.project.id, ticket.number, ctx.caller.user.id);
    change.state_event = state_event(params.string("state_event")?)?;
    if let Some(title) = params.string("title")? {
        let title = crate::ingest::sanitize_header_text(&title, 255);
        if title.is_empty() {
            return Err(ApiError::Validation {
                field: "title",
                reason: "can't be blank".into(),
            });
        }
        change.title = Some(title);
    }
    if let Some(description) = params.string("description")? {
        if description.chars().count() > MAX_NOTE_CHARS {
            return Err(ApiError::Validation {
                field: "description",
                reason: "is too long".into(),
            });
        }
        change.description = Some(description);
    }
    change.set_labels = params.list("labels")?;
    change.add_labels = params.list("add_labels")?.unwrap_or_default();
    change.remove_labels = params.list("remove_labels")?.unwrap_or_default();
    for label in change.set_labels.iter().flatten().chain(&change.add_labels) {
        if crate::store::Label::normalize_name(label).is_err() {
            return Err(ApiError::BadRequest("labels is invalid".into()));
        }
    }
    let assignees = match (params.ids("assignee_ids")?, params.id("assignee_id")?) {
        (Some(ids), _) => Some(ids),
        (None, Some(0)) => Some(Vec::new()),
        (None, Some(id)) => Some(vec![id]),
        (None, None) => None,
    };
    if let Some(ids) = &assignees {
        let ids: Vec<u64> = ids.iter().copied().filter(|id| *id != 0).collect();
        for user_id in &ids {
            let found = ctx.state.read({
                let user_id = *user_id;
                move |store| store.user(user_id)
            });
            if found.await?.is_none_or(|u| u.bot) {
                return Err(ApiError::NotFound("User"));
            }
        }
        change.assignee_ids = Some(ids);
    }
    if params.value("milestone_id").is_some() {
        change.milestone_id = match params.id("milestone_id")? {
            None | Some(0) => Some(None),
            Some(milestone) => {
                let project_id = access.project.id;
                let exists = ctx
                    .state
                    .read(move |store| store.milestone(project_id, milestone))
                    .await?;
                if exists.is_none() {
                    return Err(ApiError::NotFound("Milestone"));
                }
                Some(Some(milestone))
            }
        };
    }
    change.confidential = params.bool("confidential")?;
    change.discussion_locked = params.bool("discussion_locked")?;
    if params.value("due_date").is_some() {
        change.due_date = match params.string("due_date")?.filter(|d| !d.is_empty()) {
            None => Some(None),
            Some(date) => {
                Some(Some(parse_due(&date).ok_or_else(|| {
                    ApiError::BadRequest("due_date is invalid".into())
                })?))
            }
        };
    }
    if !reporter {
        // Authors and assignees below Reporter may edit the text and the
        // state only; GitLab ignores the other fields for them.
        change = NoteChange {
            title: change.title.take(),
            description: change.description.take(),
            state_event: change.state_event.take(),
            ..NoteChange::new(access.project.id, ticket.number, user)
        };
    }
    let outcome = apply(ctx, change).await?;
    let value = issues::issue_json(ctx, &access.project, &outcome.ticket).await?;
    Ok(json_response(StatusCode::OK, &value))
}

/// `POST /projects/:id/issues`.
pub async fn create_issue(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.caller.require_write()?;
    let access = projects::access(ctx, id).await?;
    let title = params
        .string("title")?
        .ok_or_else(|| ApiError::BadRequest("title is missing".into()))?;
    let title = crate::ingest::sanitize_header_text(&title, 255);
    if title.is_empty() {
        return Err(ApiError::Validation {
            field: "title",
            reason: "can't be blank".into(),
        });
    }
    let description = params.string("description")?.unwrap_or_default();
    if description.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::Validation {
            field: "description",
            reason: "is too long".into(),
        });
    }
    let may_set = access.require(access_level::REPORTER).is_ok();
    let mut new = NewTicket {
        project_id: access.project.id,
        author_id: ctx.caller.user.id,
        title,
        description,
        confidential: params.bool("confidential")?.unwrap_or(false),
        ..NewTicket::default()
    };
    if may_set {
        new.labels = params.list("labels")?.unwrap_or_default();
        if new
            .labels
            .iter()
            .any(|l| crate::store::Label::normalize_name(l).is_err())
        {
            return Err(ApiError::BadRequest("labels is invalid".into()));
        }
        let assignees = match (params.ids("assignee_ids")?, params.id("assignee_id")?) {
            (Some(ids), _) => ids,
            (None, Some(id)) => vec![id],
            _ => Vec::new(),
        };
        for user_id in assignees.iter().copied().filter(|id| *id != 0) {
            let user = ctx.state.read(move |store| store.user(user_id)).await?;
            if user.is_none_or(|u| u.bot) {
                return Err(ApiError::NotFound("User"));
            }
            new.assignee_ids.push(user_id);
        }
        if let Some(milestone) = params.id("milestone_id")?.filter(|m| *m != 0) {
            let project_id = access.project.id;
            if ctx
                .state
                .read(move |store| store.milestone(project_id, milestone))
                .await?
                .is_none()
            {
                return Err(ApiError::NotFound("Milestone"));
            }
            new.milestone_id = Some(milestone);
        }
        if let Some(date) = params.string("due_date")?.filter(|d| !d.is_empty()) {
            new.due_date = Some(
                parse_due(&date)
                    .ok_or_else(|| ApiError::BadRequest("due_date is invalid".into()))?,
            );
        }
    }
    let ticket = match ctx.state.store.write(WriteOp::OpenTicket(new)).await? {
        WriteOutcome::TicketOpened(ticket) => *ticket,
        _ => return Err(ApiError::Internal("unexpected write outcome".into())),
    };
    let value = issues::issue_json(ctx, &access.project, &ticket).await?;
    Ok(json_response(StatusCode::CREATED, &value))
}

/// Time tracking: `time_estimate`, `reset_time_estimate`, `add_spent_time`,
/// `reset_spent_time` (POST) and `time_stats` (GET).
pub async fn time_tracking(
    ctx: &Ctx<'_>,
    id: &str,
    iid: &str,
    action: &str,
    params: &Params,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (access, ticket) = issues::find_with_access(ctx, id, iid).await?;
    if action == "time_stats" {
        return Ok(json_response(StatusCode::OK, &json::time_stats(&ticket)));
    }
    ctx.caller.require_write()?;
    access.require(access_level::REPORTER)?;
    let mut change = NoteChange::new(access.project.id, ticket.number, ctx.caller.user.id);
    let duration = || -> Result<i64, ApiError> {
        let text = params
            .string("duration")?
            .ok_or_else(|| ApiError::BadRequest("duration is missing".into()))?;
        duration::parse(&text).ok_or_else(|| ApiError::BadRequest("duration is invalid".into()))
    };
    let status = match action {
        "time_estimate" => {
            let seconds = duration()?;
            if seconds < 0 {
                return Err(ApiError::BadRequest("duration is invalid".into()));
            }
            change.time_estimate = Some(seconds as u64);
            StatusCode::OK
        }
        "reset_time_estimate" => {
            change.time_estimate = Some(0);
            StatusCode::OK
        }
        "add_spent_time" => {
            change.add_spent = Some(duration()?);
            StatusCode::CREATED
        }
        "reset_spent_time" => {
            change.reset_spent = true;
            StatusCode::OK
        }
        _ => return Err(ApiError::NoRoute),
    };
    let outcome = apply(ctx, change).await?;
    Ok(json_response(status, &json::time_stats(&outcome.ticket)))
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
        ..NoteChange::default()
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
        ..NoteChange::default()
    };
    apply(ctx, change).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default())
}
