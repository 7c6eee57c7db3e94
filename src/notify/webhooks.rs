//! The webhook worker: delivers project hooks from the durable event log.
//!
//! Each hook has a cursor in the store (`HOOK_CURSORS`): the last event it
//! was given or passed over. One task per hook reads the log after its
//! cursor, POSTs the events the hook subscribed to (GitLab-shaped payloads,
//! [`payload`]) one at a time and in order, and moves the cursor only after a
//! delivery succeeded or was given up on. So nothing is lost across a crash
//! or restart: the worker starts again at the cursor, and a receiver may see
//! an event twice (at least once), never not at all. Receivers can tell
//! repeats by `X-Mxdesk-Event-Id`.
//!
//! Retries: network errors, timeouts, `5xx`, `408` and `429` are tried again
//! with exponential backoff, up to [`MAX_ATTEMPTS`]; then the event is logged
//! and skipped so one dead receiver cannot hold its hook forever. Other
//! answers (`3xx`, `4xx`) mean the receiver refuses the event: logged,
//! skipped, as GitLab does. One hook's trouble never delays another hook.

mod client;
pub mod payload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::StatusCode;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::client::{HookClient, PostError};
use self::payload::{HookEvent, PayloadInput};
use super::worker::backoff;
use crate::config::Config;
use crate::store::{event_cursor, EventItem, HookOp, ProjectHook, Store, StoreError, WriteOp};

/// Attempts per event before it is skipped.
pub const MAX_ATTEMPTS: u32 = 10;
/// First retry delay and the longest one, in seconds (1, 2, 4 … 300:
/// about 8.5 minutes of retrying in all).
const RETRY_BASE_SECS: u64 = 1;
const RETRY_MAX_SECS: u64 = 300;
/// Events read per batch of one hook, and examined per read.
const BATCH: usize = 50;
const MAX_SCAN: usize = 5_000;
/// The hook list is read again at least this often, in case a wakeup was
/// missed (hooks are also found on every commit that appends events).
const RESCAN: Duration = Duration::from_secs(60);
/// How long hook tasks may take to stop on shutdown.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Delivers every project hook.
pub struct WebhookWorker {
    store: Store,
    config: Arc<Config>,
    client: HookClient,
}

/// A running hook task.
struct HookTask {
    wake: Arc<Notify>,
    handle: JoinHandle<()>,
}

/// What became of one event for one hook.
enum Outcome {
    /// Delivered: move the cursor now.
    Delivered { attempt: u32 },
    /// Given up on: move the cursor now.
    Done,
    /// Not for this hook: move the cursor with the next write.
    Skipped,
    /// Shutdown, or the hook is gone: leave the cursor.
    Stopped,
}

impl WebhookWorker {
    pub fn new(store: Store, config: Arc<Config>) -> WebhookWorker {
        WebhookWorker {
            store,
            config,
            client: HookClient::new(),
        }
    }

    /// Runs until `shutdown`: keeps one task per hook, wakes them when
    /// events commit, and lets them stop (briefly) on shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        let wakeup = worker.store.events_wakeup();
        let mut tasks: HashMap<u64, HookTask> = HashMap::new();
        loop {
            let notified = wakeup.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let store = worker.store.clone();
            match tokio::task::spawn_blocking(move || store.all_hooks()).await {
                Ok(Ok(hooks)) => {
                    tasks.retain(|_, task| !task.handle.is_finished());
                    for hook in hooks {
                        let task = tasks.entry(hook.id).or_insert_with(|| {
                            let wake = Arc::new(Notify::new());
                            let handle = tokio::spawn(worker.clone().follow(
                                hook.project_id,
                                hook.id,
                                wake.clone(),
                                shutdown.clone(),
                            ));
                            HookTask { wake, handle }
                        });
                        task.wake.notify_one();
                    }
                    // Tasks of deleted hooks find out when they look.
                    for task in tasks.values() {
                        task.wake.notify_one();
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "cannot read the webhooks"),
                Err(error) => tracing::error!(%error, "webhook read task failed"),
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(RESCAN) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        for (_, task) in tasks {
            if tokio::time::timeout(STOP_GRACE, task.handle).await.is_err() {
                tracing::warn!("a webhook task did not stop in time");
            }
        }
        tracing::debug!("webhook worker stopped");
    }

    /// Follows one hook's cursor until the hook is deleted or shutdown.
    async fn follow(
        self: Arc<Self>,
        project_id: u64,
        hook_id: u64,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        let span = tracing::info_span!("webhook", hook_id, project_id);
        tracing::Instrument::instrument(
            async move {
                if let Err(error) = self
                    .follow_inner(project_id, hook_id, &wake, &shutdown)
                    .await
                {
                    if !matches!(error, StoreError::Closed) {
                        tracing::error!(%error, "webhook delivery stopped");
                    }
                }
            },
            span,
        )
        .await
    }

    async fn follow_inner(
        &self,
        project_id: u64,
        hook_id: u64,
        wake: &Notify,
        shutdown: &CancellationToken,
    ) -> Result<(), StoreError> {
        let Some(mut cursor) = self.read(move |s| s.hook_cursor(hook_id)).await? else {
            return Ok(());
        };
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let Some(hook) = self.read(move |s| s.hook(project_id, hook_id)).await? else {
                return Ok(());
            };
            let after = cursor;
            let page = self
                .read(move |s| s.event_page(after, BATCH, MAX_SCAN, Some(project_id), |_, _| true))
                .await?;
            let mut saved = cursor;
            for item in &page.items {
                let outcome = self.offer(&hook, item, shutdown).await?;
                if matches!(outcome, Outcome::Stopped) {
                    return Ok(());
                }
                cursor = item.event.seq;
                if matches!(outcome, Outcome::Done | Outcome::Delivered { .. }) {
                    self.advance(hook_id, cursor).await?;
                    saved = cursor;
                }
                if let Outcome::Delivered { attempt } = outcome {
                    // Logged once the cursor is durable: from here on a
                    // restart will not send this event again.
                    tracing::info!(seq = cursor, attempt, "webhook delivered");
                }
            }
            // Events of other projects and unwanted ones move it too.
            cursor = cursor.max(page.last_seq);
            if cursor > saved {
                self.advance(hook_id, cursor).await?;
            }
            if page.more {
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// Delivers `item` if `hook` wants it, retrying as the module says.
    async fn offer(
        &self,
        hook: &ProjectHook,
        item: &EventItem,
        shutdown: &CancellationToken,
    ) -> Result<Outcome, StoreError> {
        let Some((kind, confidential)) = wanted(hook, item) else {
            return Ok(Outcome::Skipped);
        };
        let Some(body) = self.body(kind, confidential, item).await? else {
            return Ok(Outcome::Skipped);
        };
        let event_id = event_cursor(item.event.seq);
        let delivery_id = random_uuid();
        let mut hook = hook.clone();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut headers = vec![
                (
                    "x-gitlab-event",
                    payload::event_header(kind, confidential).to_string(),
                ),
                ("x-gitlab-event-uuid", delivery_id.clone()),
                ("x-gitlab-instance", self.config.public_url().to_string()),
                ("x-mxdesk-event-id", event_id.clone()),
            ];
            if let Some(token) = &hook.token {
                headers.push(("x-gitlab-token", token.clone()));
            }
            let result = tokio::select! {
                result = self.client.post(&hook.url, &headers, body.clone()) => result,
                _ = shutdown.cancelled() => return Ok(Outcome::Stopped),
            };
            let seq = item.event.seq;
            let retry = match result {
                Ok(status) if status.is_success() => return Ok(Outcome::Delivered { attempt }),
                Ok(status) if retryable(status) => format!("answered {status}"),
                Ok(status) => {
                    tracing::warn!(seq, %status, url = %hook.url, "webhook refused by the receiver; event skipped");
                    return Ok(Outcome::Done);
                }
                Err(PostError::Invalid(error)) => {
                    tracing::warn!(seq, %error, url = %hook.url, "webhook cannot be sent; event skipped");
                    return Ok(Outcome::Done);
                }
                Err(PostError::Transient(error)) => error,
            };
            if attempt >= MAX_ATTEMPTS {
                tracing::warn!(seq, attempt, error = %retry, url = %hook.url, "webhook gave up; event skipped");
                return Ok(Outcome::Done);
            }
            let delay = backoff(RETRY_BASE_SECS, RETRY_MAX_SECS, attempt - 1);
            tracing::info!(seq, attempt, error = %retry, ?delay, "webhook failed; will retry");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return Ok(Outcome::Stopped),
            }
            // The hook may have been changed (new URL, token) or deleted.
            let (project_id, hook_id) = (hook.project_id, hook.id);
            match self.read(move |s| s.hook(project_id, hook_id)).await? {
                Some(current) => hook = current,
                None => return Ok(Outcome::Stopped),
            }
        }
    }

    /// The JSON body for one event, from the records as they are now.
    async fn body(
        &self,
        kind: HookEvent,
        confidential: bool,
        item: &EventItem,
    ) -> Result<Option<Bytes>, StoreError> {
        let Some(ticket) = item.ticket.clone() else {
            return Ok(None);
        };
        let event = item.event.clone();
        let note = item.note.clone();
        let actor_id = event
            .actor_id
            .or(note.as_ref().map(|n| n.author_id))
            .or(ticket
                .closed_by
                .filter(|_| kind == HookEvent::Issue("close")))
            .unwrap_or(ticket.author_id);
        let loaded = self
            .read(move |s| {
                let project = s.project(ticket.project_id)?;
                let actor = s.user(actor_id)?;
                let mut assignees = Vec::new();
                for id in &ticket.assignee_ids {
                    assignees.extend(s.user(*id)?);
                }
                Ok((project, actor, assignees, ticket))
            })
            .await?;
        let (Some(project), actor, assignees, ticket) = loaded else {
            return Ok(None);
        };
        if matches!(kind, HookEvent::Note(_)) && note.is_none() {
            return Ok(None);
        }
        let input = PayloadInput {
            config: &self.config,
            project: &project,
            ticket: &ticket,
            note: note.as_ref(),
            user: actor.as_ref(),
            assignees: &assignees,
        };
        let value = payload::payload(kind, confidential, &input);
        Ok(Some(Bytes::from(value.to_string())))
    }

    async fn advance(&self, hook_id: u64, seq: u64) -> Result<(), StoreError> {
        self.store
            .write(WriteOp::Hooks(HookOp::Advance { hook_id, seq }))
            .await
            .map(|_| ())
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Storage(e.to_string()))?
    }
}

/// The hook event and its confidentiality, if `hook` wants `item`.
fn wanted(hook: &ProjectHook, item: &EventItem) -> Option<(HookEvent, bool)> {
    let kind = payload::hook_event(&item.event)?;
    let ticket = item.ticket.as_ref()?;
    let confidential = payload::is_confidential(kind, &item.event, ticket);
    payload::wants(hook, kind, confidential).then_some((kind, confidential))
}

/// Answers worth another try: the receiver is overloaded or timed out.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// A random version-4 UUID, for `X-Gitlab-Event-UUID`.
fn random_uuid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_overload_and_server_errors_are_retried() {
        assert!(retryable(StatusCode::BAD_GATEWAY));
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable(StatusCode::REQUEST_TIMEOUT));
        assert!(!retryable(StatusCode::NOT_FOUND));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
        assert!(!retryable(StatusCode::MOVED_PERMANENTLY));
    }

    #[test]
    fn uuids_look_like_uuids() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, random_uuid());
    }
}
