//! The single writer: group commit for every mutation.
//!
//! Jobs arrive on a channel. The writer thread takes the first waiting job,
//! then drains every other job already waiting (up to [`MAX_BATCH`]), applies
//! them all in ONE write transaction with immediate durability, commits, and
//! only then answers each job. Throughput therefore costs one fsync per batch,
//! not per message, while every answer still means "on disk".

use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::model::*;
use super::tables::*;
use super::{encode, next_counter, now_millis, StoreError, RESERVED_PATHS};

/// Most jobs committed together; bounds the latency of the last job in a batch.
const MAX_BATCH: usize = 512;
/// Jobs that may wait for the writer before senders are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// An attachment as ingest found it, before it becomes a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A parsed incoming mail, ready to become a ticket in each target project.
#[derive(Debug, Clone)]
pub struct NewMail {
    /// The message as stored (with our `Received:` trace header).
    pub raw: Vec<u8>,
    /// Message-ID, or `sha256:<hex>` of the client's bytes when it had none.
    pub dedup_key: String,
    pub message_id: Option<String>,
    pub title: String,
    pub description: String,
    pub reporter_email: Option<String>,
    pub reporter_name: Option<String>,
    pub attachments: Vec<NewAttachment>,
}

/// A mutation the writer can apply.
#[derive(Debug)]
pub enum WriteOp {
    /// Open a ticket for `mail` in each project (deduplicated per project).
    DeliverMail {
        mail: Arc<NewMail>,
        project_ids: Vec<u64>,
    },
    /// Create a project; fails if the path is taken or reserved.
    CreateProject { name: String, path: String },
}

/// What a [`WriteOp`] did.
#[derive(Debug)]
pub enum WriteOutcome {
    /// (project id, ticket number, whether it was new rather than a duplicate).
    Delivered(Vec<(u64, u64, bool)>),
    ProjectCreated(Project),
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

    /// Drops this sender and, if it was the last one, waits for the writer
    /// thread to finish its batch and release the database.
    pub(crate) fn close(self) -> Option<std::thread::JoinHandle<()>> {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self.jobs);
        thread
    }
}

pub(crate) fn spawn(db: Arc<Database>) -> Result<WriterHandle, StoreError> {
    let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
    let thread = std::thread::Builder::new()
        .name("mxdesk-writer".into())
        .spawn(move || run(db, receiver))
        .map_err(|e| StoreError::Storage(e.to_string()))?;
    Ok(WriterHandle {
        jobs,
        thread: Arc::new(std::sync::Mutex::new(Some(thread))),
    })
}

/// The writer loop; ends when every sender is dropped.
fn run(db: Arc<Database>, mut receiver: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&db, &mut batch);
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(db: &Database, batch: &mut Vec<Job>) {
    let results = apply_batch(db, batch);
    match results {
        Ok(results) => {
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

/// Applies every job in one transaction. The outer error means the whole
/// transaction failed; inner errors are per-job domain refusals that wrote nothing.
fn apply_batch(
    db: &Database,
    batch: &[Job],
) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.set_two_phase_commit(true);
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = match &job.op {
            WriteOp::DeliverMail { mail, project_ids } => {
                deliver_mail(&txn, mail, project_ids).map(WriteOutcome::Delivered)
            }
            WriteOp::CreateProject { name, path } => {
                create_project(&txn, name, path).map(WriteOutcome::ProjectCreated)
            }
        };
        match result {
            Err(e @ (StoreError::PathTaken(_) | StoreError::PathReserved(_))) => {
                results.push(Err(e))
            }
            Err(e) => return Err(e),
            Ok(outcome) => results.push(Ok(outcome)),
        }
    }
    txn.commit()?;
    Ok(results)
}

fn put_blob(txn: &WriteTransaction, bytes: &[u8]) -> Result<String, StoreError> {
    let digest = Sha256::digest(bytes);
    let mut blobs = txn.open_table(BLOBS)?;
    if blobs.get(digest.as_slice())?.is_none() {
        blobs.insert(digest.as_slice(), bytes)?;
    }
    Ok(hex::encode(digest))
}

fn append_event(
    txn: &WriteTransaction,
    kind: &str,
    project_id: u64,
    ticket_number: Option<u64>,
) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let seq = next_counter(&mut meta, "event_seq")?;
    let event = Event {
        seq,
        kind: kind.into(),
        project_id,
        ticket_number,
        created_at: now_millis(),
    };
    txn.open_table(EVENTS)?
        .insert(seq, encode(&event)?.as_slice())?;
    Ok(())
}

fn deliver_mail(
    txn: &WriteTransaction,
    mail: &NewMail,
    project_ids: &[u64],
) -> Result<Vec<(u64, u64, bool)>, StoreError> {
    let mut outcome = Vec::with_capacity(project_ids.len());
    let mut raw_sha = None;
    for &project_id in project_ids {
        let existing = txn
            .open_table(MESSAGE_IDS)?
            .get((project_id, mail.dedup_key.as_str()))?
            .map(|v| v.value());
        if let Some(number) = existing {
            outcome.push((project_id, number, false));
            continue;
        }
        let Some(project) = txn
            .open_table(PROJECTS)?
            .get(project_id)?
            .map(|v| super::decode::<Project>("projects", v.value()))
            .transpose()?
        else {
            // The project was deleted between RCPT and commit: nothing to open.
            continue;
        };
        let raw_sha = match &raw_sha {
            Some(sha) => String::clone(sha),
            None => {
                let sha = put_blob(txn, &mail.raw)?;
                raw_sha = Some(sha.clone());
                sha
            }
        };
        let mut attachments = Vec::with_capacity(mail.attachments.len());
        for attachment in &mail.attachments {
            attachments.push(Attachment {
                name: attachment.name.clone(),
                content_type: attachment.content_type.clone(),
                size: attachment.bytes.len() as u64,
                sha256: put_blob(txn, &attachment.bytes)?,
            });
        }
        let number = {
            let mut seq = txn.open_table(TICKET_SEQ)?;
            let next = seq.get(project_id)?.map(|v| v.value()).unwrap_or(0) + 1;
            seq.insert(project_id, next)?;
            next
        };
        let id = next_counter(&mut txn.open_table(META)?, "next_ticket_id")?;
        let now = now_millis();
        let ticket = Ticket {
            id,
            project_id,
            number,
            title: mail.title.clone(),
            description: mail.description.clone(),
            state: TicketState::Opened,
            confidential: project.confidential_by_default,
            author_id: SUPPORT_BOT_ID,
            reporter_email: mail.reporter_email.clone(),
            reporter_name: mail.reporter_name.clone(),
            labels: Vec::new(),
            attachments,
            raw_message_sha256: Some(raw_sha),
            message_id: mail.message_id.clone(),
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        txn.open_table(TICKETS)?
            .insert((project_id, number), encode(&ticket)?.as_slice())?;
        txn.open_table(MESSAGE_IDS)?
            .insert((project_id, mail.dedup_key.as_str()), number)?;
        append_event(txn, "issue_opened", project_id, Some(number))?;
        outcome.push((project_id, number, true));
    }
    Ok(outcome)
}

fn create_project(txn: &WriteTransaction, name: &str, path: &str) -> Result<Project, StoreError> {
    let path = path.to_ascii_lowercase();
    if RESERVED_PATHS.contains(&path.as_str()) {
        return Err(StoreError::PathReserved(path));
    }
    let mut paths = txn.open_table(PROJECT_PATHS)?;
    if paths.get(path.as_str())?.is_some() {
        return Err(StoreError::PathTaken(path));
    }
    let id = next_counter(&mut txn.open_table(META)?, "next_project_id")?;
    let project = Project {
        id,
        name: name.to_string(),
        path: path.clone(),
        confidential_by_default: true,
        created_at: now_millis(),
    };
    paths.insert(path.as_str(), id)?;
    txn.open_table(PROJECTS)?
        .insert(id, encode(&project)?.as_slice())?;
    append_event(txn, "project_created", id, None)?;
    Ok(project)
}
