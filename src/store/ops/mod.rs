//! What the writer does inside its transaction, one module per kind of
//! change. Every function checks before it mutates, so a refusal
//! ([`StoreError::is_refusal`]) leaves the batch's transaction untouched.

pub mod hooks;
pub mod labels;
pub mod mail;
pub mod milestones;
pub mod outbox;
pub mod projects;
pub mod tickets;
pub mod users;

use redb::{ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

use super::model::*;
use super::tables::*;
use super::writer::StoreSettings;
use super::{decode, encode, next_counter, now_millis, StoreError};

/// Most Message-IDs kept per ticket for `References`.
const MAX_THREAD_IDS: usize = 50;

/// The writer's transaction plus what the batch learned along the way.
pub(crate) struct Txn<'a> {
    pub w: &'a WriteTransaction,
    pub settings: &'a StoreSettings,
    /// Some job queued outbound mail: wake the outbox worker after commit.
    pub queued_mail: bool,
    /// Some job appended events: wake the event feed after commit.
    pub appended_events: std::cell::Cell<bool>,
}

impl<'a> Txn<'a> {
    pub fn new(w: &'a WriteTransaction, settings: &'a StoreSettings) -> Self {
        Txn {
            w,
            settings,
            queued_mail: false,
            appended_events: std::cell::Cell::new(false),
        }
    }

    pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
        next_counter(&mut self.w.open_table(META)?, name)
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = Sha256::digest(bytes);
        let mut blobs = self.w.open_table(BLOBS)?;
        if blobs.get(digest.as_slice())?.is_none() {
            blobs.insert(digest.as_slice(), bytes)?;
        }
        Ok(hex::encode(digest))
    }

    pub fn event(
        &self,
        kind: &str,
        project_id: u64,
        ticket_number: Option<u64>,
    ) -> Result<(), StoreError> {
        self.record_event(Event {
            seq: 0,
            kind: kind.into(),
            project_id,
            ticket_number,
            created_at: now_millis(),
            note_id: None,
            internal: false,
            actor_id: None,
            detail: None,
        })
    }

    /// Appends `event` (its `seq` is assigned here) to the durable log.
    pub fn record_event(&self, mut event: Event) -> Result<(), StoreError> {
        event.seq = self.counter("event_seq")?;
        self.w
            .open_table(EVENTS)?
            .insert(event.seq, encode(&event)?.as_slice())?;
        self.appended_events.set(true);
        Ok(())
    }

    pub fn project(&self, id: u64) -> Result<Option<Project>, StoreError> {
        let table = self.w.open_table(PROJECTS)?;
        let value = table.get(id)?;
        value.map(|v| decode("projects", v.value())).transpose()
    }

    pub fn save_project(&self, project: &Project) -> Result<(), StoreError> {
        self.w
            .open_table(PROJECTS)?
            .insert(project.id, encode(project)?.as_slice())?;
        Ok(())
    }

    pub fn ticket(&self, project_id: u64, number: u64) -> Result<Option<Ticket>, StoreError> {
        let table = self.w.open_table(TICKETS)?;
        let value = table.get((project_id, number))?;
        value.map(|v| decode("tickets", v.value())).transpose()
    }

    /// Writes the ticket and keeps every index table in step with it.
    pub fn save_ticket(&self, ticket: &Ticket) -> Result<(), StoreError> {
        if let Some(previous) = self.ticket(ticket.project_id, ticket.number)? {
            unindex_ticket(self.w, &previous)?;
        }
        index_ticket(self.w, ticket)?;
        self.w.open_table(TICKETS)?.insert(
            (ticket.project_id, ticket.number),
            encode(ticket)?.as_slice(),
        )?;
        Ok(())
    }

    /// The ticket number a Message-ID belongs to in a project.
    pub fn thread_of(&self, project_id: u64, message_id: &str) -> Result<Option<u64>, StoreError> {
        let table = self.w.open_table(MESSAGE_IDS)?;
        let value = table.get((project_id, message_id))?;
        Ok(value.map(|v| v.value()))
    }

    /// Records that `message_id` belongs to the ticket (threading and dedup).
    pub fn remember_message(
        &self,
        ticket: &mut Ticket,
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.w
            .open_table(MESSAGE_IDS)?
            .insert((ticket.project_id, message_id), ticket.number)?;
        if !message_id.starts_with("sha256:")
            && !ticket.thread_message_ids.iter().any(|m| m == message_id)
        {
            ticket.thread_message_ids.push(message_id.to_string());
            if ticket.thread_message_ids.len() > MAX_THREAD_IDS {
                // Keep the first (the opening mail) and the most recent ones.
                ticket.thread_message_ids.remove(1);
            }
        }
        Ok(())
    }

    /// Adds a note with the next sequence number; returns it as stored.
    pub fn add_note(&self, ticket: &Ticket, mut note: Note) -> Result<Note, StoreError> {
        let seq = {
            let notes = self.w.open_table(NOTES)?;
            let last = notes
                .range(
                    (ticket.project_id, ticket.number, 0)
                        ..=(ticket.project_id, ticket.number, u64::MAX),
                )?
                .next_back()
                .transpose()?
                .map(|(k, _)| k.value().2);
            last.unwrap_or(0) + 1
        };
        note.seq = seq;
        note.id = self.counter("next_note_id")?;
        self.w.open_table(NOTES)?.insert(
            (ticket.project_id, ticket.number, seq),
            encode(&note)?.as_slice(),
        )?;
        self.record_event(Event {
            seq: 0,
            kind: "note_added".into(),
            project_id: ticket.project_id,
            ticket_number: Some(ticket.number),
            created_at: note.created_at,
            note_id: Some(note.id),
            internal: note.kind == NoteKind::Internal,
            actor_id: Some(note.author_id),
            detail: Some(format!("{:?}", note.kind).to_lowercase()),
        })?;
        Ok(note)
    }

    pub fn system_note(&self, ticket: &Ticket, body: String) -> Result<Note, StoreError> {
        self.add_note(ticket, Note::new(NoteKind::System, SUPPORT_BOT_ID, body))
    }

    /// Adds an external participant with a fresh reply token. Returns false
    /// when the address is already a participant or the address is invalid.
    pub fn add_participant(
        &self,
        ticket: &mut Ticket,
        email: &str,
        name: Option<String>,
    ) -> Result<bool, StoreError> {
        let email = email.trim().to_lowercase();
        if crate::address::parse(&email).is_none()
            || ticket.participants.iter().any(|p| p.email == email)
        {
            return Ok(false);
        }
        let token = random_token();
        self.w
            .open_table(REPLY_TOKENS)?
            .insert(token.as_str(), (ticket.project_id, ticket.number))?;
        ticket.participants.push(Participant {
            email,
            name,
            reply_token: token,
            unsubscribed: false,
            bouncing: false,
            added_at: now_millis(),
        });
        Ok(true)
    }

    /// Removes a participant and revokes its reply token.
    pub fn remove_participant(&self, ticket: &mut Ticket, email: &str) -> Result<bool, StoreError> {
        let email = email.trim().to_lowercase();
        let Some(index) = ticket.participants.iter().position(|p| p.email == email) else {
            return Ok(false);
        };
        let removed = ticket.participants.remove(index);
        self.w
            .open_table(REPLY_TOKENS)?
            .remove(removed.reply_token.as_str())?;
        Ok(true)
    }

    /// Queues one outbound mail and records its Message-ID on the ticket.
    pub fn enqueue_mail(
        &mut self,
        kind: OutboxKind,
        ticket: &mut Ticket,
        note_seq: Option<u64>,
        recipient: &str,
    ) -> Result<(), StoreError> {
        let id = self.counter("next_outbox_id")?;
        let message_id = format!(
            "mxdesk.{}.{}@{}",
            id,
            random_token(),
            self.settings.message_id_domain
        );
        let now = now_millis();
        let mail = OutboxMail {
            id,
            kind,
            project_id: ticket.project_id,
            ticket_number: ticket.number,
            note_seq,
            recipient: recipient.to_string(),
            message_id: message_id.clone(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        };
        self.w
            .open_table(OUTBOX)?
            .insert(id, encode(&mail)?.as_slice())?;
        self.remember_message(ticket, &message_id)?;
        self.queued_mail = true;
        Ok(())
    }

    /// Mails `kind` to every participant that still wants mail.
    pub fn mail_participants(
        &mut self,
        kind: OutboxKind,
        ticket: &mut Ticket,
        note_seq: Option<u64>,
    ) -> Result<Vec<String>, StoreError> {
        let recipients: Vec<String> = ticket
            .participants
            .iter()
            .filter(|p| !p.unsubscribed && !p.bouncing)
            .map(|p| p.email.clone())
            .collect();
        for recipient in &recipients {
            self.enqueue_mail(kind, ticket, note_seq, recipient)?;
        }
        Ok(recipients)
    }
}

fn state_key(state: TicketState) -> u8 {
    match state {
        TicketState::Opened => 0,
        TicketState::Closed => 1,
    }
}

/// Adds the index rows of `ticket` (state, labels, assignees, updated_at).
pub(crate) fn index_ticket(w: &WriteTransaction, ticket: &Ticket) -> Result<(), StoreError> {
    let (p, n) = (ticket.project_id, ticket.number);
    w.open_table(TICKETS_BY_STATE)?
        .insert((p, state_key(ticket.state), n), ())?;
    w.open_table(TICKETS_BY_UPDATED)?
        .insert((p, ticket.updated_at, n), ())?;
    let mut labels = w.open_table(TICKETS_BY_LABEL)?;
    for label in &ticket.labels {
        labels.insert((p, label.to_lowercase().as_str(), n), ())?;
    }
    let mut assignees = w.open_table(TICKETS_BY_ASSIGNEE)?;
    for user in &ticket.assignee_ids {
        assignees.insert((p, *user, n), ())?;
    }
    Ok(())
}

/// Removes the index rows of `ticket` as it was stored.
pub(crate) fn unindex_ticket(w: &WriteTransaction, ticket: &Ticket) -> Result<(), StoreError> {
    let (p, n) = (ticket.project_id, ticket.number);
    w.open_table(TICKETS_BY_STATE)?
        .remove((p, state_key(ticket.state), n))?;
    w.open_table(TICKETS_BY_UPDATED)?
        .remove((p, ticket.updated_at, n))?;
    let mut labels = w.open_table(TICKETS_BY_LABEL)?;
    for label in &ticket.labels {
        labels.remove((p, label.to_lowercase().as_str(), n))?;
    }
    let mut assignees = w.open_table(TICKETS_BY_ASSIGNEE)?;
    for user in &ticket.assignee_ids {
        assignees.remove((p, *user, n))?;
    }
    Ok(())
}

impl Note {
    /// A note with nothing but a kind, an author and a body.
    pub fn new(kind: NoteKind, author_id: u64, body: String) -> Note {
        Note {
            id: 0,
            seq: 0,
            kind,
            author_id,
            body,
            created_at: now_millis(),
            updated_at: None,
            from_email: None,
            threaded_by: None,
            sender_mismatch: false,
            sent_to: Vec::new(),
            message_id: None,
            raw_message_sha256: None,
            attachments: Vec::new(),
            discussion_id: None,
        }
    }
}

/// 128 random bits as hex: reply tokens and Message-ID uniqueness.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
