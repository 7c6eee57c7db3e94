//! GitLab v4 JSON shapes for mxdesk's records. Keys GitLab always sends are
//! always present, `null` when there is no value, so strict clients work.

use serde_json::{json, Value};

use crate::config::Config;
use crate::store::{Note, NoteKind, Project, Ticket, TicketState, User};

/// The one namespace every project lives in (GitLab needs one).
pub const NAMESPACE: &str = "desk";

/// Milliseconds since the epoch as GitLab's ISO 8601 (`2026-01-02T03:04:05.678Z`).
pub fn timestamp(millis: i64) -> String {
    let dt = mail_parser::DateTime::from_timestamp(millis.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year,
        dt.month,
        dt.day,
        dt.hour,
        dt.minute,
        dt.second,
        millis.rem_euclid(1000)
    )
}

pub fn project_web_url(config: &Config, project: &Project) -> String {
    format!("{}/{}/{}", config.public_url(), NAMESPACE, project.path)
}

pub fn user(config: &Config, user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": "active",
        "locked": false,
        "avatar_url": null,
        "web_url": format!("{}/{}", config.public_url(), user.username),
    })
}

/// The current user (`GET /user`) carries a few more keys.
pub fn current_user(config: &Config, record: &User) -> Value {
    let mut value = user(config, record);
    if let Some(map) = value.as_object_mut() {
        map.insert("is_admin".into(), json!(record.is_admin));
        map.insert("bot".into(), json!(record.bot));
        map.insert("created_at".into(), json!(timestamp(record.created_at)));
        map.insert("email".into(), Value::Null);
    }
    value
}

pub fn project(config: &Config, project: &Project) -> Value {
    let web_url = project_web_url(config, project);
    json!({
        "id": project.id,
        "name": project.name,
        "path": project.path,
        "name_with_namespace": format!("{} / {}", NAMESPACE, project.name),
        "path_with_namespace": format!("{}/{}", NAMESPACE, project.path),
        "description": null,
        "default_branch": null,
        "visibility": "private",
        "created_at": timestamp(project.created_at),
        "last_activity_at": timestamp(project.created_at),
        "web_url": web_url,
        "namespace": {
            "id": 1, "name": NAMESPACE, "path": NAMESPACE, "kind": "group",
            "full_path": NAMESPACE, "parent_id": null, "avatar_url": null,
            "web_url": format!("{}/{}", config.public_url(), NAMESPACE),
        },
        "issues_enabled": true,
        "service_desk_enabled": true,
        "service_desk_address": format!("{}@{}", project.path, config.primary_domain()),
        "_links": {
            "self": format!("{}/api/v4/projects/{}", config.public_url(), project.id),
            "issues": format!("{}/api/v4/projects/{}/issues", config.public_url(), project.id),
        },
    })
}

fn state_name(state: TicketState) -> &'static str {
    match state {
        TicketState::Opened => "opened",
        TicketState::Closed => "closed",
    }
}

/// The related records an issue JSON embeds, looked up by the caller.
#[derive(Debug, Default)]
pub struct IssueRelations {
    pub author: Value,
    pub assignees: Vec<Value>,
    pub milestone: Value,
    pub closed_by: Value,
    pub notes_count: usize,
}

/// GitLab's time_stats object.
pub fn time_stats(ticket: &Ticket) -> Value {
    let human = |s: u64| (s > 0).then(|| crate::store::human_duration(s));
    json!({
        "time_estimate": ticket.time_estimate,
        "total_time_spent": ticket.total_time_spent,
        "human_time_estimate": human(ticket.time_estimate),
        "human_total_time_spent": human(ticket.total_time_spent),
    })
}

/// GitLab's milestone JSON.
pub fn milestone(config: &Config, project: &Project, m: &crate::store::Milestone) -> Value {
    let expired = m
        .due_date
        .as_deref()
        .and_then(super::request::parse_datetime)
        .is_some_and(|due| due + 86_400_000 <= crate::store::now_millis());
    json!({
        "id": m.id,
        "iid": m.iid,
        "project_id": m.project_id,
        "title": m.title,
        "description": m.description,
        "state": m.state,
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
        "due_date": m.due_date,
        "start_date": m.start_date,
        "expired": expired,
        "web_url": format!("{}/-/milestones/{}", project_web_url(config, project), m.iid),
    })
}

/// GitLab's issue JSON, plus mxdesk's `attachments` and `raw_message_url`.
pub fn issue(
    config: &Config,
    project: &Project,
    ticket: &Ticket,
    relations: IssueRelations,
) -> Value {
    let IssueRelations {
        author,
        assignees,
        milestone,
        closed_by,
        notes_count,
    } = relations;
    let api = format!(
        "{}/api/v4/projects/{}/issues/{}",
        config.public_url(),
        project.id,
        ticket.number
    );
    let attachments: Vec<Value> = ticket
        .attachments
        .iter()
        .enumerate()
        .map(|(index, a)| {
            json!({
                "id": index + 1,
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "url": format!("{api}/attachments/{}", index + 1),
            })
        })
        .collect();
    json!({
        "id": ticket.id,
        "iid": ticket.number,
        "project_id": ticket.project_id,
        "title": ticket.title,
        "description": ticket.description,
        "state": state_name(ticket.state),
        "created_at": timestamp(ticket.created_at),
        "updated_at": timestamp(ticket.updated_at),
        "closed_at": ticket.closed_at.map(timestamp),
        "closed_by": closed_by,
        "labels": ticket.labels,
        "milestone": milestone,
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "author": author,
        "type": "ISSUE",
        "issue_type": "issue",
        "user_notes_count": notes_count,
        "merge_requests_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "due_date": ticket.due_date,
        "confidential": ticket.confidential,
        "discussion_locked": ticket.discussion_locked,
        "web_url": format!("{}/-/issues/{}", project_web_url(config, project), ticket.number),
        "references": {
            "short": format!("#{}", ticket.number),
            "relative": format!("#{}", ticket.number),
            "full": format!("{}/{}#{}", NAMESPACE, project.path, ticket.number),
        },
        "time_stats": time_stats(ticket),
        "task_completion_status": { "count": 0, "completed_count": 0 },
        "has_tasks": false,
        "weight": null,
        "severity": "UNKNOWN",
        "moved_to_id": null,
        "service_desk_reply_to": ticket.reporter_email,
        "attachments": attachments,
        "raw_message_url": ticket.raw_message_sha256.as_ref().map(|_| format!("{api}/raw_message")),
        "_links": {
            "self": api,
            "notes": format!("{api}/notes"),
            "award_emoji": format!("{api}/award_emoji"),
            "project": format!("{}/api/v4/projects/{}", config.public_url(), project.id),
            "closed_as_duplicate_of": null,
        },
    })
}

pub fn note(ticket: &Ticket, note: &Note, author: &Value) -> Value {
    json!({
        "id": note.id,
        "type": null,
        "body": note.body,
        "attachment": null,
        "author": author,
        "created_at": timestamp(note.created_at),
        "updated_at": timestamp(note.updated_at.unwrap_or(note.created_at)),
        "system": note.kind == NoteKind::System,
        "internal": note.kind == NoteKind::Internal,
        "confidential": note.kind == NoteKind::Internal,
        "noteable_id": ticket.id,
        "noteable_type": "Issue",
        "noteable_iid": ticket.number,
        "project_id": ticket.project_id,
        "resolvable": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_gitlab_iso8601() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_764_047_487_123), "2025-11-25T05:11:27.123Z");
    }
}
