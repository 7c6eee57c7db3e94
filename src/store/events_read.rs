//! Read side of the event log and of project hooks: what the agent feed and
//! the webhook worker follow.
//!
//! The log (`EVENTS`) is append-only and totally ordered by `seq`; every
//! change writes its events in the same transaction as the change, so a
//! reader that has seen event `n` has seen everything committed before it.
//! Readers filter (by project, by what a caller may see) while they scan, and
//! report how far they scanned, so that events filtered out still move the
//! reader's cursor and are never scanned again.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use tokio::sync::Notify;

use super::model::*;
use super::tables::*;
use super::{decode, Store, StoreError};

/// One event with the records it is about, as they are now.
#[derive(Debug, Clone)]
pub struct EventItem {
    pub event: Event,
    /// The ticket, if the event is about one (and it still exists).
    pub ticket: Option<Ticket>,
    /// The note, if the event is about one (and it still exists).
    pub note: Option<Note>,
}

/// A run of events that passed a filter, and how far the scan went.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub items: Vec<EventItem>,
    /// The seq of the last event scanned, whether it passed or not (the
    /// `after` given when nothing was scanned): the next cursor.
    pub last_seq: u64,
    /// The scan stopped at its bound, not at the end of the log: read on at
    /// once instead of waiting for new events.
    pub more: bool,
}

/// The opaque cursor of the position just after event `seq`, as the feed
/// and the webhook headers show it.
pub fn event_cursor(seq: u64) -> String {
    format!("e{seq}")
}

/// The seq a cursor stands for; empty means the beginning of the log.
pub fn parse_event_cursor(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    let digits = text.strip_prefix('e')?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Store {
    /// Woken (all waiters at once) after every commit that appended events.
    /// Register interest (`Notified::enable`) *before* reading the log, or an
    /// event committed between the read and the wait is slept through.
    pub fn events_wakeup(&self) -> Arc<Notify> {
        self.events_wakeup.clone()
    }

    /// The seq of the newest event (0 for an empty log).
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let last = table.last()?.map(|(k, _)| k.value());
        Ok(last.unwrap_or(0))
    }

    /// Events after `after`, oldest first: at most `limit` that are in
    /// `project` (when given) and pass `visible`, scanning at most `max_scan`
    /// events. `visible` sees each event with its ticket as it is now.
    pub fn event_page<F>(
        &self,
        after: u64,
        limit: usize,
        max_scan: usize,
        project: Option<u64>,
        visible: F,
    ) -> Result<EventPage, StoreError>
    where
        F: Fn(&Event, Option<&Ticket>) -> bool,
    {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let tickets = txn.open_table(TICKETS)?;
        let notes = txn.open_table(NOTES)?;
        let mut page = EventPage {
            items: Vec::new(),
            last_seq: after,
            more: false,
        };
        for (scanned, row) in events.range(after.saturating_add(1)..)?.enumerate() {
            if page.items.len() >= limit || scanned >= max_scan {
                page.more = true;
                break;
            }
            let (key, value) = row?;
            page.last_seq = key.value();
            let event: Event = decode("events", value.value())?;
            if project.is_some_and(|p| p != event.project_id) {
                continue;
            }
            let ticket: Option<Ticket> = match event.ticket_number {
                Some(number) => tickets
                    .get((event.project_id, number))?
                    .map(|v| decode("tickets", v.value()))
                    .transpose()?,
                None => None,
            };
            if !visible(&event, ticket.as_ref()) {
                continue;
            }
            let note = match (event.note_id, &ticket) {
                (Some(id), Some(ticket)) => find_note(&notes, ticket, id)?,
                _ => None,
            };
            page.items.push(EventItem {
                event,
                ticket,
                note,
            });
        }
        Ok(page)
    }

    /// The hooks of one project, by id.
    pub fn hooks(&self, project_id: u64) -> Result<Vec<ProjectHook>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOOKS)?;
        let mut out = Vec::new();
        for row in table.range((project_id, 0)..=(project_id, u64::MAX))? {
            let (_, v) = row?;
            out.push(decode("hooks", v.value())?);
        }
        Ok(out)
    }

    /// One hook of a project.
    pub fn hook(&self, project_id: u64, hook_id: u64) -> Result<Option<ProjectHook>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOOKS)?;
        let value = table.get((project_id, hook_id))?;
        value.map(|v| decode("hooks", v.value())).transpose()
    }

    /// Every hook of every project.
    pub fn all_hooks(&self) -> Result<Vec<ProjectHook>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOOKS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(decode("hooks", v.value())?);
        }
        Ok(out)
    }

    /// A hook's delivery cursor (`None` once the hook is deleted).
    pub fn hook_cursor(&self, hook_id: u64) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOOK_CURSORS)?;
        let value = table.get(hook_id)?;
        Ok(value.map(|v| v.value()))
    }
}

/// The note of `ticket` with global id `id`; notes are keyed by their
/// per-ticket seq, so this scans the ticket's notes (newest first: events
/// are mostly about recent notes).
fn find_note(
    notes: &redb::ReadOnlyTable<(u64, u64, u64), &[u8]>,
    ticket: &Ticket,
    id: u64,
) -> Result<Option<Note>, StoreError> {
    let range =
        (ticket.project_id, ticket.number, 0)..=(ticket.project_id, ticket.number, u64::MAX);
    for row in notes.range(range)?.rev() {
        let (_, v) = row?;
        let note: Note = decode("notes", v.value())?;
        if note.id == id {
            return Ok(Some(note));
        }
    }
    Ok(None)
}
