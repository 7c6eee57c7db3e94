//! Changing a ticket from the API: notes, participants, state.

use redb::ReadableTable;

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{now_millis, StoreError};

/// Close or reopen, as GitLab's `state_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateEvent {
    Close,
    Reopen,
}

/// One change to a ticket, applied atomically: a note, field edits, quick
/// actions. Every field change leaves a system note, as GitLab does.
#[derive(Debug, Clone, Default)]
pub struct NoteChange {
    pub project_id: u64,
    pub number: u64,
    pub author_id: u64,
    /// The note text (quick actions already removed); `None` for no note.
    pub body: Option<String>,
    pub internal: bool,
    /// Reply in this discussion (`None`: the note starts its own).
    pub discussion_id: Option<String>,
    pub add_emails: Vec<String>,
    pub remove_emails: Vec<String>,
    pub state_event: Option<StateEvent>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Replace all labels.
    pub set_labels: Option<Vec<String>>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    /// Replace the assignees (empty: unassign all).
    pub assignee_ids: Option<Vec<u64>>,
    pub add_assignees: Vec<u64>,
    pub remove_assignees: Vec<u64>,
    /// `Some(None)` removes the milestone.
    pub milestone_id: Option<Option<u64>>,
    pub confidential: Option<bool>,
    /// `Some(None)` removes the due date.
    pub due_date: Option<Option<String>>,
    pub discussion_locked: Option<bool>,
    /// Seconds; `Some(0)` resets.
    pub time_estimate: Option<u64>,
    /// Seconds to add (negative subtracts).
    pub add_spent: Option<i64>,
    pub reset_spent: bool,
}

impl NoteChange {
    /// A change with nothing in it yet.
    pub fn new(project_id: u64, number: u64, author_id: u64) -> NoteChange {
        NoteChange {
            project_id,
            number,
            author_id,
            ..NoteChange::default()
        }
    }
}

/// A ticket opened through the API.
#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    pub project_id: u64,
    pub author_id: u64,
    pub title: String,
    pub description: String,
    pub confidential: bool,
    pub labels: Vec<String>,
    pub assignee_ids: Vec<u64>,
    pub milestone_id: Option<u64>,
    pub due_date: Option<String>,
}

/// Opens a ticket from the API (no mail is sent: there is no reporter).
pub fn open(txn: &mut Txn, new: &NewTicket) -> Result<Ticket, StoreError> {
    txn.project(new.project_id)?
        .ok_or(StoreError::NotFound("Project"))?;
    let number = {
        let mut seq = txn.w.open_table(TICKET_SEQ)?;
        let next = seq.get(new.project_id)?.map(|v| v.value()).unwrap_or(0) + 1;
        seq.insert(new.project_id, next)?;
        next
    };
    let mut labels = Vec::new();
    for label in &new.labels {
        let label = super::labels::ensure_label(txn, new.project_id, label)?;
        if !labels.contains(&label.name) {
            labels.push(label.name);
        }
    }
    let now = now_millis();
    let ticket = Ticket {
        id: txn.counter("next_ticket_id")?,
        project_id: new.project_id,
        number,
        title: new.title.clone(),
        description: new.description.clone(),
        state: TicketState::Opened,
        confidential: new.confidential,
        author_id: new.author_id,
        reporter_email: None,
        reporter_name: None,
        labels,
        attachments: Vec::new(),
        raw_message_sha256: None,
        message_id: None,
        created_at: now,
        updated_at: now,
        closed_at: None,
        participants: Vec::new(),
        thread_message_ids: Vec::new(),
        closed_by: None,
        assignee_ids: new.assignee_ids.clone(),
        milestone_id: new.milestone_id,
        due_date: new.due_date.clone(),
        discussion_locked: false,
        time_estimate: 0,
        total_time_spent: 0,
    };
    txn.save_ticket(&ticket)?;
    txn.record_event(Event {
        seq: 0,
        kind: "issue_opened".into(),
        project_id: ticket.project_id,
        ticket_number: Some(number),
        created_at: now,
        note_id: None,
        internal: false,
        actor_id: Some(new.author_id),
        detail: Some("api".into()),
    })?;
    Ok(ticket)
}

/// Edits a note's body (authors and maintainers; the API checks who).
pub fn edit_note(
    txn: &mut Txn,
    project_id: u64,
    number: u64,
    note_id: u64,
    body: Option<&str>,
) -> Result<Option<Note>, StoreError> {
    let ticket = txn
        .ticket(project_id, number)?
        .ok_or(StoreError::NotFound("Issue"))?;
    let found = {
        let notes = txn.w.open_table(NOTES)?;
        let mut found = None;
        for row in notes.range((project_id, number, 0)..=(project_id, number, u64::MAX))? {
            let (k, v) = row?;
            let note: Note = crate::store::decode("notes", v.value())?;
            if note.id == note_id {
                found = Some((k.value().2, note));
                break;
            }
        }
        found
    };
    let (seq, mut note) = found.ok_or(StoreError::NotFound("Note"))?;
    if note.kind == NoteKind::System {
        return Err(StoreError::Conflict(
            "system notes cannot be changed".into(),
        ));
    }
    let mut notes = txn.w.open_table(NOTES)?;
    match body {
        Some(body) => {
            note.body = body.to_string();
            note.updated_at = Some(now_millis());
            notes.insert(
                (project_id, number, seq),
                crate::store::encode(&note)?.as_slice(),
            )?;
            drop(notes);
            note_event(txn, &ticket, &note, "note_updated")?;
            Ok(Some(note))
        }
        None => {
            notes.remove((project_id, number, seq))?;
            drop(notes);
            note_event(txn, &ticket, &note, "note_deleted")?;
            Ok(None)
        }
    }
}

/// An event about an existing note, carrying its id and visibility so the
/// feed and hooks can filter it like the note itself.
fn note_event(txn: &Txn, ticket: &Ticket, note: &Note, kind: &str) -> Result<(), StoreError> {
    txn.record_event(Event {
        seq: 0,
        kind: kind.into(),
        project_id: ticket.project_id,
        ticket_number: Some(ticket.number),
        created_at: now_millis(),
        note_id: Some(note.id),
        internal: note.kind == NoteKind::Internal,
        actor_id: Some(note.author_id),
        detail: Some(format!("{:?}", note.kind).to_lowercase()),
    })
}

/// GitLab's human duration: `1w 2d 3h 4m` (8-hour days, 5-day weeks).
pub fn human_duration(seconds: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (4 * 5 * 8 * 3600, "mo"),
        (5 * 8 * 3600, "w"),
        (8 * 3600, "d"),
        (3600, "h"),
        (60, "m"),
    ];
    let mut rest = seconds;
    let mut parts = Vec::new();
    for (size, name) in UNITS {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
    }
    if rest > 0 || parts.is_empty() {
        parts.push(format!("{rest}s"));
    }
    parts.join(" ")
}

/// The result: the note (if any), the ticket as it now is, and what was done.
#[derive(Debug, Clone)]
pub struct NoteOutcome {
    pub note: Option<Note>,
    pub ticket: Ticket,
    pub actions: Vec<String>,
}

pub fn change(txn: &mut Txn, change: &NoteChange) -> Result<NoteOutcome, StoreError> {
    let mut ticket = txn
        .ticket(change.project_id, change.number)?
        .ok_or(StoreError::NotFound("Issue"))?;
    let project = txn
        .project(change.project_id)?
        .ok_or(StoreError::NotFound("Project"))?;
    let mut actions = Vec::new();

    for email in &change.remove_emails {
        if txn.remove_participant(&mut ticket, email)? {
            txn.system_note(
                &ticket,
                format!("removed {email} as an external participant"),
            )?;
            actions.push(format!("Removed {email}."));
        } else {
            actions.push(format!("{email} is not a participant."));
        }
    }
    for email in &change.add_emails {
        if txn.add_participant(&mut ticket, email, None)? {
            let email = email.trim().to_lowercase();
            txn.system_note(&ticket, format!("added {email} as an external participant"))?;
            txn.enqueue_mail(OutboxKind::NewParticipant, &mut ticket, None, &email)?;
            actions.push(format!("Added {email}."));
        } else {
            actions.push(format!(
                "{email} was not added (invalid or already a participant)."
            ));
        }
    }

    apply_fields(txn, change, &mut ticket, &mut actions)?;

    let mut note_out = None;
    if let Some(body) = change.body.as_ref().filter(|b| !b.trim().is_empty()) {
        let kind = if change.internal {
            NoteKind::Internal
        } else {
            NoteKind::Public
        };
        let mut note = Note::new(kind, change.author_id, body.clone());
        note.discussion_id = change.discussion_id.clone();
        let mut note = txn.add_note(&ticket, note)?;
        if kind == NoteKind::Public {
            // Internal notes are never mailed (DESIGN §1).
            note.sent_to =
                txn.mail_participants(OutboxKind::NewNote, &mut ticket, Some(note.seq))?;
            txn.w.open_table(NOTES)?.insert(
                (ticket.project_id, ticket.number, note.seq),
                crate::store::encode(&note)?.as_slice(),
            )?;
        }
        note_out = Some(note);
    }

    match change.state_event {
        Some(StateEvent::Close) if ticket.state == TicketState::Opened => {
            ticket.state = TicketState::Closed;
            ticket.closed_at = Some(now_millis());
            ticket.closed_by = Some(change.author_id);
            txn.system_note(&ticket, "closed".into())?;
            txn.event("issue_closed", ticket.project_id, Some(ticket.number))?;
            if project.service_desk.send_close_email {
                txn.mail_participants(OutboxKind::Close, &mut ticket, None)?;
            }
            actions.push("Closed this issue.".into());
        }
        Some(StateEvent::Reopen) if ticket.state == TicketState::Closed => {
            ticket.state = TicketState::Opened;
            ticket.closed_at = None;
            ticket.closed_by = None;
            txn.system_note(&ticket, "reopened".into())?;
            txn.event("issue_reopened", ticket.project_id, Some(ticket.number))?;
            actions.push("Reopened this issue.".into());
        }
        _ => {}
    }
    ticket.updated_at = now_millis();
    txn.save_ticket(&ticket)?;
    Ok(NoteOutcome {
        note: note_out,
        ticket,
        actions,
    })
}

/// Applies the field edits of `change`, each with its system note.
fn apply_fields(
    txn: &mut Txn,
    change: &NoteChange,
    ticket: &mut Ticket,
    actions: &mut Vec<String>,
) -> Result<(), StoreError> {
    let mut notes: Vec<String> = Vec::new();
    if let Some(title) = change.title.as_ref().filter(|t| **t != ticket.title) {
        notes.push(format!(
            "changed title from **{}** to **{}**",
            ticket.title, title
        ));
        ticket.title = title.clone();
        actions.push("Changed the title.".into());
    }
    if let Some(description) = change
        .description
        .as_ref()
        .filter(|d| **d != ticket.description)
    {
        ticket.description = description.clone();
        notes.push("changed the description".into());
    }
    // Labels: GitLab creates unknown labels when they are set on an issue.
    let mut labels = ticket.labels.clone();
    if let Some(set) = &change.set_labels {
        labels.clear();
        for name in set {
            let label = super::labels::ensure_label(txn, ticket.project_id, name)?;
            if !labels
                .iter()
                .any(|l: &String| l.eq_ignore_ascii_case(&label.name))
            {
                labels.push(label.name);
            }
        }
    }
    for name in &change.add_labels {
        let label = super::labels::ensure_label(txn, ticket.project_id, name)?;
        if !labels.iter().any(|l| l.eq_ignore_ascii_case(&label.name)) {
            labels.push(label.name);
        }
    }
    labels.retain(|l| {
        !change
            .remove_labels
            .iter()
            .any(|r| r.eq_ignore_ascii_case(l))
    });
    let added: Vec<&String> = labels
        .iter()
        .filter(|l| !ticket.labels.contains(l))
        .collect();
    let removed: Vec<&String> = ticket
        .labels
        .iter()
        .filter(|l| !labels.contains(l))
        .collect();
    if !added.is_empty() || !removed.is_empty() {
        let tilde = |ls: &[&String]| {
            ls.iter()
                .map(|l| format!("~\"{l}\""))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut text = Vec::new();
        if !added.is_empty() {
            text.push(format!(
                "added {} label{}",
                tilde(&added),
                if added.len() > 1 { "s" } else { "" }
            ));
        }
        if !removed.is_empty() {
            text.push(format!(
                "removed {} label{}",
                tilde(&removed),
                if removed.len() > 1 { "s" } else { "" }
            ));
        }
        notes.push(text.join(" and "));
        actions.push("Changed labels.".into());
        ticket.labels = labels;
    }
    let mut assignees = ticket.assignee_ids.clone();
    if let Some(set) = &change.assignee_ids {
        assignees = set.clone();
    }
    for id in &change.add_assignees {
        if !assignees.contains(id) {
            assignees.push(*id);
        }
    }
    assignees.retain(|id| !change.remove_assignees.contains(id));
    assignees.dedup();
    if assignees != ticket.assignee_ids {
        let names = |ids: &[u64]| -> Result<String, StoreError> {
            let users = txn.w.open_table(USERS)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(v) = users.get(*id)? {
                    let user: User = crate::store::decode("users", v.value())?;
                    out.push(format!("@{}", user.username));
                }
            }
            Ok(out.join(", "))
        };
        let new_ones: Vec<u64> = assignees
            .iter()
            .copied()
            .filter(|a| !ticket.assignee_ids.contains(a))
            .collect();
        let gone: Vec<u64> = ticket
            .assignee_ids
            .iter()
            .copied()
            .filter(|a| !assignees.contains(a))
            .collect();
        let mut text = Vec::new();
        if !new_ones.is_empty() {
            text.push(format!("assigned to {}", names(&new_ones)?));
        }
        if !gone.is_empty() {
            text.push(format!("unassigned {}", names(&gone)?));
        }
        notes.push(text.join(" and "));
        actions.push("Changed assignees.".into());
        ticket.assignee_ids = assignees;
    }
    if let Some(milestone) = change.milestone_id.filter(|m| *m != ticket.milestone_id) {
        match milestone {
            Some(id) => {
                let title = txn
                    .w
                    .open_table(MILESTONES)?
                    .get((ticket.project_id, id))?
                    .map(|v| crate::store::decode::<Milestone>("milestones", v.value()))
                    .transpose()?
                    .ok_or(StoreError::NotFound("Milestone"))?
                    .title;
                notes.push(format!("changed milestone to %\"{title}\""));
            }
            None => notes.push("removed milestone".into()),
        }
        ticket.milestone_id = milestone;
        actions.push("Changed the milestone.".into());
    }
    if let Some(confidential) = change.confidential.filter(|c| *c != ticket.confidential) {
        ticket.confidential = confidential;
        notes.push(if confidential {
            "made the issue confidential".into()
        } else {
            "made the issue visible to everyone".into()
        });
        actions.push("Changed confidentiality.".into());
    }
    if let Some(due) = change.due_date.clone().filter(|d| *d != ticket.due_date) {
        notes.push(match &due {
            Some(date) => format!("changed due date to {date}"),
            None => "removed due date".into(),
        });
        ticket.due_date = due;
        actions.push("Changed the due date.".into());
    }
    if let Some(locked) = change
        .discussion_locked
        .filter(|l| *l != ticket.discussion_locked)
    {
        ticket.discussion_locked = locked;
        notes.push(if locked {
            "locked the discussion".into()
        } else {
            "unlocked the discussion".into()
        });
    }
    if let Some(estimate) = change.time_estimate.filter(|e| *e != ticket.time_estimate) {
        ticket.time_estimate = estimate;
        notes.push(if estimate == 0 {
            "removed time estimate".into()
        } else {
            format!("changed time estimate to {}", human_duration(estimate))
        });
    }
    if change.reset_spent && ticket.total_time_spent > 0 {
        ticket.total_time_spent = 0;
        notes.push("removed time spent".into());
    }
    if let Some(delta) = change.add_spent.filter(|d| *d != 0) {
        let before = ticket.total_time_spent;
        ticket.total_time_spent = if delta >= 0 {
            before.saturating_add(delta as u64)
        } else {
            before.saturating_sub(delta.unsigned_abs())
        };
        notes.push(if delta >= 0 {
            format!("added {} of time spent", human_duration(delta as u64))
        } else {
            format!(
                "subtracted {} of time spent",
                human_duration(delta.unsigned_abs())
            )
        });
    }
    let changed = !notes.is_empty();
    for body in notes {
        txn.add_note(ticket, Note::new(NoteKind::System, change.author_id, body))?;
    }
    if changed {
        txn.record_event(Event {
            seq: 0,
            kind: "issue_updated".into(),
            project_id: ticket.project_id,
            ticket_number: Some(ticket.number),
            created_at: now_millis(),
            note_id: None,
            internal: false,
            actor_id: Some(change.author_id),
            detail: Some(actions.join(" ")),
        })?;
    }
    Ok(())
}

/// Marks the participant holding `token` as unsubscribed (RFC 8058).
pub fn unsubscribe(txn: &mut Txn, token: &str) -> Result<(u64, u64, String), StoreError> {
    let found = txn
        .w
        .open_table(REPLY_TOKENS)?
        .get(token)?
        .map(|v| v.value());
    let (project_id, number) = found.ok_or(StoreError::NotFound("Token"))?;
    let mut ticket = txn
        .ticket(project_id, number)?
        .ok_or(StoreError::NotFound("Token"))?;
    let Some(participant) = ticket
        .participants
        .iter_mut()
        .find(|p| p.reply_token == token)
    else {
        return Err(StoreError::NotFound("Token"));
    };
    let email = participant.email.clone();
    if !participant.unsubscribed {
        participant.unsubscribed = true;
        txn.system_note(&ticket, format!("{email} unsubscribed from this issue"))?;
        txn.save_ticket(&ticket)?;
    }
    Ok((project_id, number, email))
}
