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

/// One change to a ticket, applied atomically.
#[derive(Debug, Clone)]
pub struct NoteChange {
    pub project_id: u64,
    pub number: u64,
    pub author_id: u64,
    /// The note text (quick actions already removed); `None` for no note.
    pub body: Option<String>,
    pub internal: bool,
    pub add_emails: Vec<String>,
    pub remove_emails: Vec<String>,
    pub state_event: Option<StateEvent>,
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

    let mut note_out = None;
    if let Some(body) = change.body.as_ref().filter(|b| !b.trim().is_empty()) {
        let kind = if change.internal {
            NoteKind::Internal
        } else {
            NoteKind::Public
        };
        let note = Note::new(kind, change.author_id, body.clone());
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
