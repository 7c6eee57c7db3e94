//! Recording outbound delivery attempts: sent mail leaves the outbox, a
//! temporary failure is retried later, a permanent one becomes a system note.

use redb::ReadableTable;

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{decode, encode, StoreError};

/// The result of one attempt, as the outbox worker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Sent,
    /// Try again at `next_attempt_at` (ms since the epoch).
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    /// Give up: 5xx from the next hop, or retries exhausted.
    Failed {
        error: String,
    },
    /// Not sent and not a failure (the recipient unsubscribed meanwhile).
    Cancelled {
        reason: String,
    },
}

pub fn record_attempt(txn: &mut Txn, id: u64, result: &AttemptResult) -> Result<(), StoreError> {
    let mail: Option<OutboxMail> = {
        let table = txn.w.open_table(OUTBOX)?;
        let value = table.get(id)?;
        value.map(|v| decode("outbox", v.value())).transpose()?
    };
    let Some(mut mail) = mail else {
        return Ok(());
    };
    match result {
        AttemptResult::Sent => {
            txn.w.open_table(OUTBOX)?.remove(id)?;
            txn.event("mail_delivered", mail.project_id, Some(mail.ticket_number))?;
        }
        AttemptResult::Cancelled { reason } => {
            tracing::info!(id, %reason, "outbound mail cancelled");
            txn.w.open_table(OUTBOX)?.remove(id)?;
        }
        AttemptResult::Retry {
            error,
            next_attempt_at,
        } => {
            mail.attempts += 1;
            mail.next_attempt_at = *next_attempt_at;
            mail.last_error = Some(error.clone());
            txn.w
                .open_table(OUTBOX)?
                .insert(id, encode(&mail)?.as_slice())?;
        }
        AttemptResult::Failed { error } => {
            txn.w.open_table(OUTBOX)?.remove(id)?;
            if let Some(ticket) = txn.ticket(mail.project_id, mail.ticket_number)? {
                txn.system_note(
                    &ticket,
                    format!("could not deliver mail to {}: {error}", mail.recipient),
                )?;
            }
            txn.event("mail_failed", mail.project_id, Some(mail.ticket_number))?;
        }
    }
    Ok(())
}
