//! The outbox worker: delivers queued mail, retries with exponential backoff,
//! and survives restarts because the queue is the `outbox` table itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::compose::{compose, Context};
use super::transport::{SendError, Transport};
use crate::config::Config;
use crate::store::{now_millis, AttemptResult, OutboxMail, Store, WriteOp};

/// Mails attempted at once.
const PARALLEL: usize = 8;
/// Longest sleep when nothing is due (new mail wakes the worker anyway).
const IDLE_WAKE: Duration = Duration::from_secs(60);

/// Delivers the outbox.
pub struct OutboxWorker {
    store: Store,
    config: Arc<Config>,
    transport: Arc<Transport>,
}

impl OutboxWorker {
    pub fn new(store: Store, config: Arc<Config>, transport: Transport) -> OutboxWorker {
        OutboxWorker {
            store,
            config,
            transport: Arc::new(transport),
        }
    }

    /// Runs until `shutdown`; attempts in flight finish first.
    pub async fn run(self, shutdown: CancellationToken) {
        let wakeup = self.store.outbox_wakeup();
        let worker = Arc::new(self);
        loop {
            let store = worker.store.clone();
            let due =
                tokio::task::spawn_blocking(move || store.due_outbox(now_millis(), PARALLEL * 4))
                    .await;
            let (due, next) = match due {
                Ok(Ok(found)) => found,
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot read the outbox");
                    (Vec::new(), Some(now_millis() + 5_000))
                }
                Err(error) => {
                    tracing::error!(%error, "outbox read task failed");
                    (Vec::new(), Some(now_millis() + 5_000))
                }
            };
            let mut attempts = JoinSet::new();
            // Attempts change the outbox (retry times): read it again before
            // deciding how long to sleep.
            let attempted = !due.is_empty();
            for mail in due {
                while attempts.len() >= PARALLEL {
                    attempts.join_next().await;
                }
                let worker = worker.clone();
                attempts.spawn(async move { worker.deliver(mail).await });
            }
            while attempts.join_next().await.is_some() {}
            if attempted && !shutdown.is_cancelled() {
                continue;
            }
            let sleep = next
                .map(|at| {
                    Duration::from_millis(
                        (at - now_millis()).clamp(0, IDLE_WAKE.as_millis() as i64) as u64,
                    )
                })
                .unwrap_or(IDLE_WAKE);
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::debug!("outbox worker stopped");
    }

    /// One attempt for one mail, recorded durably.
    async fn deliver(&self, mail: OutboxMail) {
        let id = mail.id;
        let result = self.attempt(&mail).await;
        match &result {
            AttemptResult::Sent => tracing::info!(id, to = %mail.recipient, "mail delivered"),
            AttemptResult::Retry { error, .. } => {
                tracing::info!(id, to = %mail.recipient, %error, "mail deferred")
            }
            AttemptResult::Failed { error } => {
                tracing::warn!(id, to = %mail.recipient, %error, "mail failed")
            }
            AttemptResult::Cancelled { .. } => {}
        }
        if let Err(error) = self
            .store
            .write(WriteOp::OutboxAttempt { id, result })
            .await
        {
            tracing::error!(id, %error, "cannot record the delivery attempt; it will be retried");
        }
    }

    async fn attempt(&self, mail: &OutboxMail) -> AttemptResult {
        let store = self.store.clone();
        let (project_id, number, seq) = (mail.project_id, mail.ticket_number, mail.note_seq);
        let loaded = tokio::task::spawn_blocking(move || {
            let project = store.project(project_id)?;
            let ticket = store.ticket(project_id, number)?;
            let note = match seq {
                Some(seq) => store.note(project_id, number, seq)?,
                None => None,
            };
            Ok::<_, crate::store::StoreError>((project, ticket, note))
        })
        .await;
        let (project, ticket, note) = match loaded {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => return self.retry(mail, error.to_string()),
            Err(error) => return self.retry(mail, error.to_string()),
        };
        let (Some(project), Some(ticket)) = (project, ticket) else {
            return AttemptResult::Cancelled {
                reason: "ticket no longer exists".into(),
            };
        };
        match ticket
            .participants
            .iter()
            .find(|p| p.email == mail.recipient)
        {
            None => {
                return AttemptResult::Cancelled {
                    reason: "no longer a participant".into(),
                }
            }
            Some(p) if p.unsubscribed => {
                return AttemptResult::Cancelled {
                    reason: "unsubscribed".into(),
                }
            }
            Some(_) => {}
        }
        let context = Context {
            config: &self.config,
            project: &project,
            ticket: &ticket,
            note: note.as_ref(),
            mail,
        };
        let composed = match compose(&context) {
            Ok(composed) => composed,
            Err(error) => {
                return AttemptResult::Failed {
                    error: error.to_string(),
                }
            }
        };
        match self.transport.send(&composed).await {
            Ok(()) => AttemptResult::Sent,
            Err(SendError::Permanent(error)) => AttemptResult::Failed { error },
            Err(SendError::Temporary(error)) => self.retry(mail, error),
        }
    }

    /// Schedules the next attempt with exponential backoff, or gives up.
    fn retry(&self, mail: &OutboxMail, error: String) -> AttemptResult {
        let out = &self.config.outbound;
        let attempts = mail.attempts + 1;
        if attempts >= out.max_attempts {
            return AttemptResult::Failed {
                error: format!("gave up after {attempts} attempts: {error}"),
            };
        }
        let delay = backoff(out.retry_base_secs, out.retry_max_secs, mail.attempts);
        AttemptResult::Retry {
            error,
            next_attempt_at: now_millis() + (delay.as_millis() as i64),
        }
    }
}

/// `base · 2^attempts`, capped at `max`.
pub fn backoff(base_secs: u64, max_secs: u64, attempts: u32) -> Duration {
    let factor = 1u64.checked_shl(attempts.min(32)).unwrap_or(u64::MAX);
    Duration::from_secs(base_secs.saturating_mul(factor).min(max_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(60, 3600, 0), Duration::from_secs(60));
        assert_eq!(backoff(60, 3600, 1), Duration::from_secs(120));
        assert_eq!(backoff(60, 3600, 10), Duration::from_secs(3600));
        assert_eq!(backoff(60, 3600, 200), Duration::from_secs(3600));
    }
}
