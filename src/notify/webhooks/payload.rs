//! Which log events a project hook is sent, and the GitLab-shaped body of
//! each: plain functions on plain data, no I/O.
//!
//! GitLab's rules, as far as mxdesk has the events:
//! - ticket opened, closed, reopened or changed → an Issue Hook (`action`
//!   `open`, `close`, `reopen`, `update`) to hooks with `issues_events`, or,
//!   for a confidential ticket, only to hooks with
//!   `confidential_issues_events` (header `Confidential Issue Hook`);
//! - a comment (from the API or by mail) → a Note Hook to hooks with
//!   `note_events`, or, for an internal note or a note on a confidential
//!   ticket, only to hooks with `confidential_note_events`;
//! - system notes, mail delivery reports and project events are not sent.
//!
//! Confidentiality is judged on the ticket as it is when the hook is sent.

use serde_json::{json, Value};

use crate::api::json::{project_web_url, timestamp, NAMESPACE};
use crate::config::Config;
use crate::store::{Event, Note, NoteKind, Project, ProjectHook, Ticket, TicketState, User};

/// What an event is, for hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    /// An Issue Hook with this `object_attributes.action`.
    Issue(&'static str),
    /// A Note Hook with this `object_attributes.action`.
    Note(&'static str),
}

/// The hook event a log event becomes, if any. Event kinds that other
/// changes add later (`issue_updated`, `issue_labels_changed` …) count as
/// issue updates when they start with `issue_`.
pub fn hook_event(event: &Event) -> Option<HookEvent> {
    event.ticket_number?;
    match event.kind.as_str() {
        "issue_opened" => Some(HookEvent::Issue("open")),
        "issue_closed" => Some(HookEvent::Issue("close")),
        "issue_reopened" => Some(HookEvent::Issue("reopen")),
        "note_added" if event.detail.as_deref() == Some("system") => None,
        "note_added" => Some(HookEvent::Note("create")),
        "note_updated" => Some(HookEvent::Note("update")),
        kind if kind.starts_with("issue_") => Some(HookEvent::Issue("update")),
        _ => None,
    }
}

/// Whether this hook event falls under the confidential categories.
pub fn is_confidential(kind: HookEvent, event: &Event, ticket: &Ticket) -> bool {
    ticket.confidential || matches!(kind, HookEvent::Note(_)) && event.internal
}

/// Whether `hook` subscribed to this kind of event.
pub fn wants(hook: &ProjectHook, kind: HookEvent, confidential: bool) -> bool {
    match (kind, confidential) {
        (HookEvent::Issue(_), false) => hook.issues_events,
        (HookEvent::Issue(_), true) => hook.confidential_issues_events,
        (HookEvent::Note(_), false) => hook.note_events,
        (HookEvent::Note(_), true) => hook.confidential_note_events,
    }
}

/// The `X-Gitlab-Event` header value.
pub fn event_header(kind: HookEvent, confidential: bool) -> &'static str {
    match (kind, confidential) {
        (HookEvent::Issue(_), false) => "Issue Hook",
        (HookEvent::Issue(_), true) => "Confidential Issue Hook",
        (HookEvent::Note(_), false) => "Note Hook",
        (HookEvent::Note(_), true) => "Confidential Note Hook",
    }
}

/// Everything a payload is made of, loaded by the worker.
pub struct PayloadInput<'a> {
    pub config: &'a Config,
    pub project: &'a Project,
    pub ticket: &'a Ticket,
    /// The note, for Note Hooks.
    pub note: Option<&'a Note>,
    /// Who caused the event.
    pub user: Option<&'a User>,
    pub assignees: &'a [User],
}

/// The JSON body GitLab would send for this event.
pub fn payload(kind: HookEvent, confidential: bool, input: &PayloadInput) -> Value {
    let user = input.user.map(user_json).unwrap_or(Value::Null);
    let project = project_json(input.config, input.project);
    let repository = json!({
        "name": input.project.name,
        "url": project_web_url(input.config, input.project),
        "description": null,
        "homepage": project_web_url(input.config, input.project),
    });
    let labels = labels_json(input.ticket);
    let assignees: Vec<Value> = input.assignees.iter().map(user_json).collect();
    match kind {
        HookEvent::Issue(action) => {
            let mut attributes = issue_attributes(input);
            if let Value::Object(map) = &mut attributes {
                map.insert("action".into(), json!(action));
            }
            json!({
                "object_kind": "issue",
                "event_type": if confidential { "confidential_issue" } else { "issue" },
                "user": user,
                "project": project,
                "object_attributes": attributes,
                "labels": labels,
                "assignees": assignees,
                "changes": {},
                "repository": repository,
            })
        }
        HookEvent::Note(action) => {
            let note = input.note;
            let issue_url = issue_url(input);
            let attributes = match note {
                Some(note) => json!({
                    "id": note.id,
                    "note": note.body,
                    "noteable_type": "Issue",
                    "author_id": note.author_id,
                    "created_at": timestamp(note.created_at),
                    "updated_at": timestamp(note.updated_at.unwrap_or(note.created_at)),
                    "project_id": input.project.id,
                    "attachment": null,
                    "line_code": null,
                    "commit_id": "",
                    "noteable_id": input.ticket.id,
                    "system": note.kind == NoteKind::System,
                    "st_diff": null,
                    "internal": note.kind == NoteKind::Internal,
                    "confidential": note.kind == NoteKind::Internal,
                    "type": null,
                    "action": action,
                    "url": format!("{issue_url}#note_{}", note.id),
                    "from_email": note.from_email,
                }),
                None => Value::Null,
            };
            json!({
                "object_kind": "note",
                "event_type": if confidential { "confidential_note" } else { "note" },
                "user": user,
                "project_id": input.project.id,
                "project": project,
                "object_attributes": attributes,
                "repository": repository,
                "issue": issue_attributes(input),
            })
        }
    }
}

fn issue_url(input: &PayloadInput) -> String {
    format!(
        "{}/-/issues/{}",
        project_web_url(input.config, input.project),
        input.ticket.number
    )
}

/// The issue as GitLab's hooks describe it (`object_attributes` of an Issue
/// Hook, `issue` of a Note Hook).
fn issue_attributes(input: &PayloadInput) -> Value {
    let ticket = input.ticket;
    let (state, state_id) = match ticket.state {
        TicketState::Opened => ("opened", 1),
        TicketState::Closed => ("closed", 2),
    };
    json!({
        "id": ticket.id,
        "iid": ticket.number,
        "project_id": ticket.project_id,
        "title": ticket.title,
        "description": ticket.description,
        "state": state,
        "state_id": state_id,
        "confidential": ticket.confidential,
        "author_id": ticket.author_id,
        "assignee_ids": ticket.assignee_ids,
        "assignee_id": ticket.assignee_ids.first(),
        "milestone_id": ticket.milestone_id,
        "due_date": ticket.due_date,
        "discussion_locked": ticket.discussion_locked,
        "created_at": timestamp(ticket.created_at),
        "updated_at": timestamp(ticket.updated_at),
        "closed_at": ticket.closed_at.map(timestamp),
        "updated_by_id": null,
        "last_edited_at": null,
        "last_edited_by_id": null,
        "moved_to_id": null,
        "duplicated_to_id": null,
        "relative_position": null,
        "time_estimate": ticket.time_estimate,
        "total_time_spent": ticket.total_time_spent,
        "time_change": 0,
        "human_time_estimate": null,
        "human_total_time_spent": null,
        "human_time_change": null,
        "weight": null,
        "severity": "unknown",
        "type": "Issue",
        "labels": labels_json(ticket),
        "url": issue_url(input),
        "service_desk_reply_to": ticket.reporter_email,
    })
}

fn labels_json(ticket: &Ticket) -> Vec<Value> {
    ticket
        .labels
        .iter()
        .map(|name| {
            json!({
                "title": name,
                "project_id": ticket.project_id,
                "type": "ProjectLabel",
                "group_id": null,
                "template": false,
            })
        })
        .collect()
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "avatar_url": null,
        "email": "[REDACTED]",
    })
}

fn project_json(config: &Config, project: &Project) -> Value {
    let web_url = project_web_url(config, project);
    json!({
        "id": project.id,
        "name": project.name,
        "description": null,
        "web_url": web_url,
        "avatar_url": null,
        "git_ssh_url": null,
        "git_http_url": null,
        "namespace": NAMESPACE,
        "visibility_level": 0,
        "path_with_namespace": format!("{NAMESPACE}/{}", project.path),
        "default_branch": null,
        "ci_config_path": null,
        "homepage": web_url,
        "url": web_url,
        "ssh_url": null,
        "http_url": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, detail: Option<&str>, internal: bool) -> Event {
        Event {
            seq: 1,
            kind: kind.into(),
            project_id: 1,
            ticket_number: Some(1),
            created_at: 0,
            note_id: None,
            internal,
            actor_id: None,
            detail: detail.map(str::to_string),
        }
    }

    fn hook(issues: bool, notes: bool, c_issues: bool, c_notes: bool) -> ProjectHook {
        ProjectHook {
            id: 1,
            project_id: 1,
            url: "http://x.test/".into(),
            token: None,
            issues_events: issues,
            note_events: notes,
            confidential_issues_events: c_issues,
            confidential_note_events: c_notes,
            created_at: 0,
        }
    }

    #[test]
    fn log_kinds_map_to_gitlab_hook_events() {
        let kind = |k, d| hook_event(&event(k, d, false));
        assert_eq!(kind("issue_opened", None), Some(HookEvent::Issue("open")));
        assert_eq!(kind("issue_closed", None), Some(HookEvent::Issue("close")));
        assert_eq!(
            kind("issue_reopened", None),
            Some(HookEvent::Issue("reopen"))
        );
        assert_eq!(
            kind("issue_updated", None),
            Some(HookEvent::Issue("update"))
        );
        assert_eq!(
            kind("note_added", Some("email")),
            Some(HookEvent::Note("create"))
        );
        assert_eq!(kind("note_added", Some("system")), None);
        assert_eq!(kind("mail_delivered", None), None);
        let mut project_event = event("project_created", None, false);
        project_event.ticket_number = None;
        assert_eq!(hook_event(&project_event), None);
    }

    #[test]
    fn confidential_events_need_the_confidential_flags() {
        let issue = HookEvent::Issue("open");
        let note = HookEvent::Note("create");
        let public_only = hook(true, true, false, false);
        let confidential_only = hook(false, false, true, true);
        assert!(wants(&public_only, issue, false));
        assert!(!wants(&public_only, issue, true));
        assert!(!wants(&public_only, note, true));
        assert!(wants(&confidential_only, issue, true));
        assert!(!wants(&confidential_only, note, false));
        assert_eq!(event_header(issue, true), "Confidential Issue Hook");
        assert_eq!(event_header(note, false), "Note Hook");
    }

    #[test]
    fn internal_notes_are_confidential_even_on_public_tickets() {
        // Through serde, so fields added later with defaults need no edit here.
        let ticket: Ticket = serde_json::from_value(json!({
            "id": 1, "project_id": 1, "number": 1, "title": "", "description": "",
            "state": "opened", "confidential": false, "author_id": 1,
            "reporter_email": null, "reporter_name": null, "labels": [],
            "attachments": [], "raw_message_sha256": null, "message_id": null,
            "created_at": 0, "updated_at": 0, "closed_at": null,
        }))
        .expect("a minimal ticket");
        let internal = event("note_added", Some("internal"), true);
        assert!(is_confidential(
            HookEvent::Note("create"),
            &internal,
            &ticket
        ));
        let public = event("note_added", Some("public"), false);
        assert!(!is_confidential(
            HookEvent::Note("create"),
            &public,
            &ticket
        ));
    }
}
