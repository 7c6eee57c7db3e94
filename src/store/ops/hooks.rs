//! Project hooks (GitLab's webhooks subset) and their delivery cursors.
//!
//! Invariants:
//! - every hook has a row in `HOOK_CURSORS` from the moment it exists: the
//!   seq of the last event it has been given (or passed over). A new hook
//!   starts at the end of the log, so it is sent what happens after it was
//!   made, as in GitLab, and never the history;
//! - a cursor only moves forward, and only the delivery worker moves it, after
//!   the event was delivered or given up on; so a crash re-sends, never skips.

use redb::ReadableTable;

use super::Txn;
use crate::store::model::ProjectHook;
use crate::store::tables::*;
use crate::store::{decode, encode, now_millis, StoreError};

/// A change to project hooks.
#[derive(Debug, Clone)]
pub enum HookOp {
    /// Adds a hook; fields are validated by the caller.
    Create {
        project_id: u64,
        url: String,
        token: Option<String>,
        flags: HookFlags,
    },
    /// Changes the given fields of a hook.
    Update {
        project_id: u64,
        hook_id: u64,
        changes: HookChanges,
    },
    /// Removes a hook and its cursor.
    Delete { project_id: u64, hook_id: u64 },
    /// Moves a hook's delivery cursor forward to `seq` (never back). A hook
    /// deleted meanwhile is not an error: there is nothing left to move.
    Advance { hook_id: u64, seq: u64 },
}

/// Which events a hook wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookFlags {
    pub issues_events: bool,
    pub note_events: bool,
    pub confidential_issues_events: bool,
    pub confidential_note_events: bool,
}

/// The fields an update sets; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct HookChanges {
    pub url: Option<String>,
    /// `Some(None)` removes the token.
    pub token: Option<Option<String>>,
    pub issues_events: Option<bool>,
    pub note_events: Option<bool>,
    pub confidential_issues_events: Option<bool>,
    pub confidential_note_events: Option<bool>,
}

/// What a [`HookOp`] produced.
#[derive(Debug, Clone)]
pub enum HookOutcome {
    Hook(ProjectHook),
    Done,
}

pub fn apply(txn: &mut Txn, op: &HookOp) -> Result<HookOutcome, StoreError> {
    match op {
        HookOp::Create {
            project_id,
            url,
            token,
            flags,
        } => {
            txn.project(*project_id)?
                .ok_or(StoreError::NotFound("Project"))?;
            let hook = ProjectHook {
                id: txn.counter("next_hook_id")?,
                project_id: *project_id,
                url: url.clone(),
                token: token.clone(),
                issues_events: flags.issues_events,
                note_events: flags.note_events,
                confidential_issues_events: flags.confidential_issues_events,
                confidential_note_events: flags.confidential_note_events,
                created_at: now_millis(),
            };
            let end_of_log = txn
                .w
                .open_table(META)?
                .get("event_seq")?
                .map(|v| v.value())
                .unwrap_or(0);
            save(txn, &hook)?;
            txn.w
                .open_table(HOOK_CURSORS)?
                .insert(hook.id, end_of_log)?;
            Ok(HookOutcome::Hook(hook))
        }
        HookOp::Update {
            project_id,
            hook_id,
            changes,
        } => {
            let mut hook = find(txn, *project_id, *hook_id)?.ok_or(StoreError::NotFound("Hook"))?;
            if let Some(url) = &changes.url {
                hook.url = url.clone();
            }
            if let Some(token) = &changes.token {
                hook.token = token.clone();
            }
            let set = |field: &mut bool, value: Option<bool>| {
                if let Some(value) = value {
                    *field = value;
                }
            };
            set(&mut hook.issues_events, changes.issues_events);
            set(&mut hook.note_events, changes.note_events);
            set(
                &mut hook.confidential_issues_events,
                changes.confidential_issues_events,
            );
            set(
                &mut hook.confidential_note_events,
                changes.confidential_note_events,
            );
            save(txn, &hook)?;
            Ok(HookOutcome::Hook(hook))
        }
        HookOp::Delete {
            project_id,
            hook_id,
        } => {
            let removed = txn
                .w
                .open_table(HOOKS)?
                .remove((*project_id, *hook_id))?
                .is_some();
            if !removed {
                return Err(StoreError::NotFound("Hook"));
            }
            txn.w.open_table(HOOK_CURSORS)?.remove(*hook_id)?;
            Ok(HookOutcome::Done)
        }
        HookOp::Advance { hook_id, seq } => {
            let mut cursors = txn.w.open_table(HOOK_CURSORS)?;
            let current = cursors.get(*hook_id)?.map(|v| v.value());
            if let Some(current) = current {
                if *seq > current {
                    cursors.insert(*hook_id, *seq)?;
                }
            }
            Ok(HookOutcome::Done)
        }
    }
}

fn find(txn: &Txn, project_id: u64, hook_id: u64) -> Result<Option<ProjectHook>, StoreError> {
    let table = txn.w.open_table(HOOKS)?;
    let value = table.get((project_id, hook_id))?;
    value.map(|v| decode("hooks", v.value())).transpose()
}

fn save(txn: &Txn, hook: &ProjectHook) -> Result<(), StoreError> {
    txn.w
        .open_table(HOOKS)?
        .insert((hook.project_id, hook.id), encode(hook)?.as_slice())?;
    Ok(())
}
