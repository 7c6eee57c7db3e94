//! The single writer: group commit for every mutation.
//!
//! Jobs arrive on a channel. The writer thread takes the first waiting job,
//! then drains every other job already waiting (up to [`MAX_BATCH`]), applies
//! them all in ONE write transaction with immediate durability, commits, and
//! only then answers each job. Throughput therefore costs one fsync per batch,
//! not per message, while every answer still means "on disk".

use std::sync::Arc;

use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot, Notify};

use super::model::*;
use super::ops::{self, Txn};
use super::StoreError;

pub use super::ops::mail::{Bounce, DeliveryOutcome, MailTarget, NewAttachment, NewMail};
pub use super::ops::tickets::{human_duration, NewTicket, NoteChange, NoteOutcome, StateEvent};

/// Most jobs committed together; bounds the latency of the last job in a batch.
const MAX_BATCH: usize = 512;
/// Jobs that may wait for the writer before senders are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// Settings the writer needs from the configuration.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Domain of the Message-IDs mxdesk generates (loop detection relies on it).
    pub message_id_domain: String,
    /// Thank-you mails per sender per hour.
    pub thank_you_per_hour: u32,
    /// External participants taken from To/Cc of an opening mail.
    pub max_participants: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            message_id_domain: "localhost".into(),
            thank_you_per_hour: 5,
            max_participants: 10,
        }
    }
}

/// A mutation the writer can apply.
#[derive(Debug)]
pub enum WriteOp {
    /// File an accepted mail: new ticket, comment, or system note.
    DeliverMail {
        mail: Arc<NewMail>,
        targets: Vec<MailTarget>,
    },
    /// Create a project; fails if the path is taken or reserved.
    CreateProject {
        name: String,
        path: String,
    },
    /// Add a note and/or change a ticket (API notes, quick actions, PUT).
    ChangeTicket(Box<NoteChange>),
    /// Replace a project's service desk settings.
    UpdateServiceDesk {
        project_id: u64,
        settings: ServiceDeskSettings,
    },
    /// Stop mail to the participant holding this token.
    Unsubscribe {
        token: String,
    },
    /// Open a ticket from the API.
    OpenTicket(ops::tickets::NewTicket),
    /// Edit (`Some(body)`) or delete (`None`) a note.
    EditNote {
        project_id: u64,
        number: u64,
        note_id: u64,
        body: Option<String>,
    },
    /// Users, tokens, members.
    Users(ops::users::UserOp),
    Labels(ops::labels::LabelOp),
    Milestones(ops::milestones::MilestoneOp),
    Hooks(ops::hooks::HookOp),
    /// Record the result of one outbound delivery attempt.
    OutboxAttempt {
        id: u64,
        result: ops::outbox::AttemptResult,
    },
}

/// What a [`WriteOp`] did.
#[derive(Debug)]
pub enum WriteOutcome {
    Delivered(Vec<DeliveryOutcome>),
    ProjectCreated(Project),
    TicketChanged(Box<NoteOutcome>),
    ServiceDeskUpdated(Project),
    Unsubscribed {
        project_id: u64,
        number: u64,
        email: String,
    },
    OutboxRecorded,
    Users(ops::users::UserOutcome),
    TicketOpened(Box<Ticket>),
    NoteEdited(Option<Box<Note>>),
    Labels(ops::labels::LabelOutcome),
    Milestones(ops::milestones::MilestoneOutcome),
    Hooks(ops::hooks::HookOutcome),
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

/// The sending side of the writer's queue.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl WriterHandle {
    pub(crate) async fn submit(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Drops this sender and hands back the writer thread to join, so the
    /// caller can wait for the database to be released.
    pub(crate) fn close(self) -> Option<std::thread::JoinHandle<()>> {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self.jobs);
        thread
    }
}

pub(crate) fn spawn(
    db: Arc<Database>,
    settings: StoreSettings,
    outbox_wakeup: Arc<Notify>,
    events_wakeup: Arc<Notify>,
) -> Result<WriterHandle, StoreError> {
    let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
    let thread = std::thread::Builder::new()
        .name("mxdesk-writer".into())
        .spawn(move || run(db, receiver, settings, outbox_wakeup, events_wakeup))
        .map_err(|e| StoreError::Storage(e.to_string()))?;
    Ok(WriterHandle {
        jobs,
        thread: Arc::new(std::sync::Mutex::new(Some(thread))),
    })
}

/// The writer loop; ends when every sender is dropped.
fn run(
    db: Arc<Database>,
    mut receiver: mpsc::Receiver<Job>,
    settings: StoreSettings,
    outbox_wakeup: Arc<Notify>,
    events_wakeup: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match apply_batch(&db, &batch, &settings) {
            Ok((results, queued_mail, appended_events)) => {
                if queued_mail {
                    outbox_wakeup.notify_one();
                }
                // Before the answers, so an agent is woken no later than
                // the SMTP client hears its 250.
                if appended_events {
                    events_wakeup.notify_waiters();
                }
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, jobs = batch.len(), "group commit failed; nothing of the batch was stored");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Storage(error.to_string())));
                }
            }
        }
    }
    tracing::debug!("store writer stopped");
}

type BatchResults = (Vec<Result<WriteOutcome, StoreError>>, bool, bool);

/// Applies every job in one transaction. The outer error means the whole
/// transaction failed; inner errors are per-job refusals that wrote nothing.
fn apply_batch(
    db: &Database,
    batch: &[Job],
    settings: &StoreSettings,
) -> Result<BatchResults, StoreError> {
    let mut write = db.begin_write()?;
    write.set_durability(Durability::Immediate)?;
    write.set_two_phase_commit(true);
    let mut txn = Txn::new(&write, settings);
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = match &job.op {
            WriteOp::DeliverMail { mail, targets } => {
                ops::mail::deliver(&mut txn, mail, targets).map(WriteOutcome::Delivered)
            }
            WriteOp::CreateProject { name, path } => {
                ops::projects::create(&mut txn, name, path).map(WriteOutcome::ProjectCreated)
            }
            WriteOp::ChangeTicket(change) => ops::tickets::change(&mut txn, change)
                .map(|o| WriteOutcome::TicketChanged(Box::new(o))),
            WriteOp::UpdateServiceDesk {
                project_id,
                settings,
            } => ops::projects::update_service_desk(&mut txn, *project_id, settings)
                .map(WriteOutcome::ServiceDeskUpdated),
            WriteOp::Unsubscribe { token } => {
                ops::tickets::unsubscribe(&mut txn, token).map(|(project_id, number, email)| {
                    WriteOutcome::Unsubscribed {
                        project_id,
                        number,
                        email,
                    }
                })
            }
            WriteOp::Users(op) => ops::users::apply(&mut txn, op).map(WriteOutcome::Users),
            WriteOp::OpenTicket(new) => {
                ops::tickets::open(&mut txn, new).map(|t| WriteOutcome::TicketOpened(Box::new(t)))
            }
            WriteOp::EditNote {
                project_id,
                number,
                note_id,
                body,
            } => ops::tickets::edit_note(&mut txn, *project_id, *number, *note_id, body.as_deref())
                .map(|n| WriteOutcome::NoteEdited(n.map(Box::new))),
            WriteOp::Labels(op) => ops::labels::apply(&mut txn, op).map(WriteOutcome::Labels),
            WriteOp::Milestones(op) => {
                ops::milestones::apply(&mut txn, op).map(WriteOutcome::Milestones)
            }
            WriteOp::Hooks(op) => ops::hooks::apply(&mut txn, op).map(WriteOutcome::Hooks),
            WriteOp::OutboxAttempt { id, result } => {
                ops::outbox::record_attempt(&mut txn, *id, result)
                    .map(|_| WriteOutcome::OutboxRecorded)
            }
        };
        match result {
            Err(e) if e.is_refusal() => results.push(Err(e)),
            Err(e) => return Err(e),
            Ok(outcome) => results.push(Ok(outcome)),
        }
    }
    let queued_mail = txn.queued_mail;
    let appended_events = txn.appended_events.get();
    write.commit()?;
    Ok((results, queued_mail, appended_events))
}
