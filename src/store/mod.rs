//! The only code that opens a redb transaction.
//!
//! Invariants:
//! - every write goes through the single writer thread ([`writer`]), which
//!   commits whatever jobs are waiting as ONE durable transaction (group
//!   commit) and answers each job only after that commit returned;
//! - a job either applies all of its effects or none: domain checks run
//!   before the first mutation, and a storage error aborts the whole batch;
//! - reads use MVCC read transactions and never block the writer.

mod access;
mod events_read;
mod labels_read;
pub mod model;
mod ops;
pub mod query;
pub mod tables;
mod writer;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use events_read::{event_cursor, parse_event_cursor, EventItem, EventPage};
pub use model::*;
pub use ops::hooks::{HookChanges, HookFlags, HookOp, HookOutcome};
pub use ops::labels::{LabelOp, LabelOutcome};
pub use ops::milestones::{MilestoneOp, MilestoneOutcome};
pub use ops::outbox::AttemptResult;
pub use ops::users::{UserOp, UserOutcome};
use tables::*;
pub use writer::{
    human_duration, Bounce, DeliveryOutcome, MailTarget, NewAttachment, NewMail, NewTicket,
    NoteChange, NoteOutcome, StateEvent, StoreSettings, WriteOp, WriteOutcome,
};

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be read or written; the caller should retry later.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The database file was written by a newer mxdesk.
    #[error("database schema version {found} is newer than this mxdesk supports ({supported})")]
    SchemaTooNew { found: u64, supported: u64 },
    /// A stored record could not be decoded.
    #[error("corrupt record in table {0}")]
    Corrupt(&'static str),
    /// The writer thread is gone (shutting down).
    #[error("store is shut down")]
    Closed,
    /// The project path is already used or reserved.
    #[error("path {0} has already been taken")]
    PathTaken(String),
    /// The project path is reserved for mxdesk's own addresses.
    #[error("path {0} is reserved")]
    PathReserved(String),
    /// The record a change refers to does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change conflicts with what exists (a taken name …).
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// A refusal of one job (nothing written), as opposed to a failure of
    /// the whole transaction.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::PathTaken(_)
                | StoreError::PathReserved(_)
                | StoreError::NotFound(_)
                | StoreError::Conflict(_)
        )
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Local parts no project may take: mxdesk's own addresses (DESIGN §2).
pub const RESERVED_PATHS: &[&str] = &["reply", "postmaster", "abuse", "mailer-daemon", "noreply"];

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: writer::WriterHandle,
    /// path → project id for projects known to exist. Projects are never
    /// deleted or renamed today; whatever adds that must evict here.
    project_ids: Arc<std::sync::RwLock<std::collections::HashMap<String, u64>>>,
    /// Notified after a commit that queued outbound mail.
    outbox_wakeup: Arc<tokio::sync::Notify>,
    /// Notified (all waiters) after a commit that appended events.
    events_wakeup: Arc<tokio::sync::Notify>,
}

/// One page of tickets plus the total matching count (for `X-Total`).
#[derive(Debug)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    pub total: u64,
}

/// sha256 of `bytes`, as lower-case hex: the key of the blob table.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|e| StoreError::Storage(e.to_string()))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|_| StoreError::Corrupt(table))
}

impl Store {
    /// Opens (or creates) the database at `path`, migrates it, makes sure the
    /// built-in users and admin project exist, and starts the writer thread.
    pub fn open(path: &Path, settings: StoreSettings) -> Result<Store, StoreError> {
        let db = Database::builder().create(path)?;
        initialise(&db)?;
        let db = Arc::new(db);
        let outbox_wakeup = Arc::new(tokio::sync::Notify::new());
        let events_wakeup = Arc::new(tokio::sync::Notify::new());
        let writer = writer::spawn(
            db.clone(),
            settings,
            outbox_wakeup.clone(),
            events_wakeup.clone(),
        )?;
        Ok(Store {
            db,
            writer,
            project_ids: Default::default(),
            outbox_wakeup,
            events_wakeup,
        })
    }

    /// Runs one write operation through the group-commit writer. Resolves only
    /// after the transaction that holds it has durably committed.
    pub async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.writer.submit(op).await
    }

    /// Woken whenever a commit queued outbound mail.
    pub fn outbox_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_wakeup.clone()
    }

    /// Outbound mails due at `now` (oldest first, at most `limit`), and the
    /// earliest due time of the rest, so the worker knows when to wake.
    pub fn due_outbox(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<(Vec<OutboxMail>, Option<i64>), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OUTBOX)?;
        let mut due = Vec::new();
        let mut next: Option<i64> = None;
        for row in table.iter()? {
            let (_, v) = row?;
            let mail: OutboxMail = decode("outbox", v.value())?;
            if mail.next_attempt_at <= now && due.len() < limit {
                due.push(mail);
            } else {
                next = Some(next.map_or(mail.next_attempt_at, |n| n.min(mail.next_attempt_at)));
            }
        }
        Ok((due, next))
    }

    /// One note of a ticket.
    pub fn note(&self, project_id: u64, number: u64, seq: u64) -> Result<Option<Note>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NOTES)?;
        match table.get((project_id, number, seq))? {
            Some(v) => Ok(Some(decode("notes", v.value())?)),
            None => Ok(None),
        }
    }

    /// The ticket a reply token belongs to.
    pub fn ticket_by_token(&self, token: &str) -> Result<Option<Ticket>, StoreError> {
        let txn = self.db.begin_read()?;
        let tokens = txn.open_table(REPLY_TOKENS)?;
        let Some((project_id, number)) = tokens.get(token)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(TICKETS)?;
        match table.get((project_id, number))? {
            Some(v) => Ok(Some(decode("tickets", v.value())?)),
            None => Ok(None),
        }
    }

    /// Whether a reply token exists (RCPT-time check for reply addresses).
    pub fn reply_token_exists(&self, token: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(REPLY_TOKENS)?.get(token)?.is_some())
    }

    /// Closes the database cleanly: once every other clone of this store is
    /// gone, the writer thread drops the last database handle, and this waits
    /// (at most `grace`) for that to happen.
    pub async fn close(self, grace: std::time::Duration) {
        let Store { db, writer, .. } = self;
        drop(db);
        let Some(thread) = writer.close() else { return };
        let join = tokio::task::spawn_blocking(move || thread.join());
        if tokio::time::timeout(grace, join).await.is_err() {
            tracing::warn!("database writer did not stop in time");
        }
    }

    /// Creates the first admin token when no token exists yet. Returns the
    /// token value when one was created (so it can be shown once).
    pub fn bootstrap_admin_token(
        &self,
        preset: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_write()?;
        let created = {
            let mut tokens = txn.open_table(API_TOKENS)?;
            if tokens.len()? > 0 {
                None
            } else {
                let value = preset.unwrap_or_else(new_secret_token);
                let mut meta = txn.open_table(META)?;
                let id = next_counter(&mut meta, "next_token_id")?;
                let record = ApiToken {
                    id,
                    user_id: ROOT_USER_ID,
                    name: "bootstrap".into(),
                    scopes: vec![Scope::Api],
                    revoked: false,
                    created_at: now_millis(),
                    expires_at: None,
                };
                tokens.insert(
                    Sha256::digest(value.as_bytes()).as_slice(),
                    encode(&record)?.as_slice(),
                )?;
                Some(value)
            }
        };
        txn.commit()?;
        Ok(created)
    }

    /// Looks a presented API token up by its hash.
    pub fn token(&self, presented: &str) -> Result<Option<(ApiToken, User)>, StoreError> {
        let txn = self.db.begin_read()?;
        let tokens = txn.open_table(API_TOKENS)?;
        let Some(raw) = tokens.get(Sha256::digest(presented.as_bytes()).as_slice())? else {
            return Ok(None);
        };
        let token: ApiToken = decode("api_tokens", raw.value())?;
        let Some(user) = get_record::<User>(&txn, USERS, token.user_id, "users")? else {
            return Ok(None);
        };
        Ok(Some((token, user)))
    }

    /// A user by id.
    pub fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        let txn = self.db.begin_read()?;
        get_record(&txn, USERS, id, "users")
    }

    /// The project whose address local part (its path) is `local_part`.
    pub fn project_by_path(&self, path: &str) -> Result<Option<Project>, StoreError> {
        let txn = self.db.begin_read()?;
        let paths = txn.open_table(PROJECT_PATHS)?;
        let Some(id) = paths
            .get(path.to_ascii_lowercase().as_str())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        get_record(&txn, PROJECTS, id, "projects")
    }

    /// The id of the project at `path`, answered from memory once known, so
    /// the SMTP hot path (every RCPT) does not open a read transaction.
    pub fn project_id_by_path(&self, path: &str) -> Result<Option<u64>, StoreError> {
        let path = path.to_ascii_lowercase();
        if let Some(id) = self
            .project_ids
            .read()
            .ok()
            .and_then(|m| m.get(&path).copied())
        {
            return Ok(Some(id));
        }
        let found = {
            let txn = self.db.begin_read()?;
            let paths = txn.open_table(PROJECT_PATHS)?;
            let found = paths.get(path.as_str())?.map(|v| v.value());
            found
        };
        if let (Some(id), Ok(mut cache)) = (found, self.project_ids.write()) {
            cache.insert(path, id);
        }
        Ok(found)
    }

    /// Whether the cached answer for `path` exists without touching disk.
    pub fn cached_project_id(&self, path: &str) -> Option<u64> {
        self.project_ids
            .read()
            .ok()
            .and_then(|m| m.get(&path.to_ascii_lowercase()).copied())
    }

    /// A project by numeric id.
    pub fn project(&self, id: u64) -> Result<Option<Project>, StoreError> {
        let txn = self.db.begin_read()?;
        get_record(&txn, PROJECTS, id, "projects")
    }

    /// All projects, by id.
    pub fn projects(&self) -> Result<Vec<Project>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PROJECTS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(decode("projects", v.value())?);
        }
        Ok(out)
    }

    /// One page of a project's tickets, newest first, optionally by state.
    pub fn tickets(
        &self,
        project_id: u64,
        state: Option<TicketState>,
        offset: u64,
        limit: u64,
    ) -> Result<TicketPage, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TICKETS)?;
        let mut tickets = Vec::new();
        let mut total = 0u64;
        for row in table.range((project_id, 0)..=(project_id, u64::MAX))?.rev() {
            let (_, v) = row?;
            let ticket: Ticket = decode("tickets", v.value())?;
            if state.is_some_and(|s| s != ticket.state) {
                continue;
            }
            if total >= offset && (tickets.len() as u64) < limit {
                tickets.push(ticket);
            }
            total += 1;
        }
        Ok(TicketPage { tickets, total })
    }

    /// One ticket.
    pub fn ticket(&self, project_id: u64, number: u64) -> Result<Option<Ticket>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TICKETS)?;
        match table.get((project_id, number))? {
            Some(v) => Ok(Some(decode("tickets", v.value())?)),
            None => Ok(None),
        }
    }

    /// The notes of one ticket, oldest first.
    pub fn notes(&self, project_id: u64, number: u64) -> Result<Vec<Note>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NOTES)?;
        let mut out = Vec::new();
        for row in table.range((project_id, number, 0)..=(project_id, number, u64::MAX))? {
            let (_, v) = row?;
            out.push(decode("notes", v.value())?);
        }
        Ok(out)
    }

    /// The bytes stored under a sha256 hex digest.
    pub fn blob(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Ok(key) = hex::decode(sha256_hex) else {
            return Ok(None);
        };
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOBS)?;
        Ok(table.get(key.as_slice())?.map(|v| v.value().to_vec()))
    }

    /// Every event after `after`, up to `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for row in table.range(after.saturating_add(1)..)?.take(limit) {
            let (_, v) = row?;
            out.push(decode("events", v.value())?);
        }
        Ok(out)
    }

    /// Number of tickets across all projects (used by tests and health).
    pub fn ticket_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TICKETS)?.len()?)
    }
}

/// A new random API token: 32 bytes of OS randomness, hex, with GitLab's prefix.
pub fn new_secret_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("glpat-{}", hex::encode(bytes))
}

fn get_record<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<u64, &[u8]>,
    id: u64,
    name: &'static str,
) -> Result<Option<T>, StoreError> {
    let table = txn.open_table(def)?;
    match table.get(id)? {
        Some(v) => Ok(Some(decode(name, v.value())?)),
        None => Ok(None),
    }
}

pub(crate) fn next_counter(
    meta: &mut redb::Table<&str, u64>,
    name: &str,
) -> Result<u64, StoreError> {
    let next = meta.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert(name, next)?;
    Ok(next)
}

/// Creates every table, checks the schema version, and seeds the built-in
/// records (support bot, root admin, admin project) in one transaction.
fn initialise(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_two_phase_commit(true);
    {
        let mut meta = txn.open_table(META)?;
        let version = meta.get("schema_version")?.map(|v| v.value());
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                })
            }
            _ => {
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
        }
        // Version 1 lacked the user names and index tables.
        if version == Some(1) {
            let mut usernames = txn.open_table(USERNAMES)?;
            usernames.insert("support-bot", SUPPORT_BOT_ID)?;
            usernames.insert("root", ROOT_USER_ID)?;
        }
        // 1 → 2 added the ticket index tables: build them from the tickets.
        let needs_reindex = version == Some(1);
        txn.open_table(PROJECTS)?;
        txn.open_table(PROJECT_PATHS)?;
        txn.open_table(TICKETS)?;
        txn.open_table(TICKET_SEQ)?;
        txn.open_table(NOTES)?;
        txn.open_table(BLOBS)?;
        txn.open_table(MESSAGE_IDS)?;
        txn.open_table(EVENTS)?;
        txn.open_table(API_TOKENS)?;
        txn.open_table(REPLY_TOKENS)?;
        txn.open_table(OUTBOX)?;
        txn.open_table(THANK_YOU_LOG)?;
        txn.open_table(USERNAMES)?;
        txn.open_table(TOKEN_IDS)?;
        txn.open_table(MEMBERS)?;
        txn.open_table(MEMBERSHIPS)?;
        txn.open_table(LABELS)?;
        txn.open_table(MILESTONES)?;
        txn.open_table(HOOKS)?;
        txn.open_table(HOOK_CURSORS)?;
        txn.open_table(TICKETS_BY_STATE)?;
        txn.open_table(TICKETS_BY_LABEL)?;
        txn.open_table(TICKETS_BY_ASSIGNEE)?;
        txn.open_table(TICKETS_BY_UPDATED)?;
        if needs_reindex {
            let tickets: Vec<Ticket> = {
                let table = txn.open_table(TICKETS)?;
                let mut all = Vec::new();
                for row in table.iter()? {
                    let (_, v) = row?;
                    all.push(decode("tickets", v.value())?);
                }
                all
            };
            for ticket in &tickets {
                ops::index_ticket(&txn, ticket)?;
            }
        }
        let mut users = txn.open_table(USERS)?;
        let now = now_millis();
        if users.get(SUPPORT_BOT_ID)?.is_none() {
            let bot = User {
                id: SUPPORT_BOT_ID,
                username: "support-bot".into(),
                name: "GitLab Support Bot".into(),
                is_admin: false,
                bot: true,
                created_at: now,
                email: None,
                blocked: false,
            };
            users.insert(SUPPORT_BOT_ID, encode(&bot)?.as_slice())?;
            let root = User {
                id: ROOT_USER_ID,
                username: "root".into(),
                name: "Administrator".into(),
                is_admin: true,
                bot: false,
                created_at: now,
                email: None,
                blocked: false,
            };
            users.insert(ROOT_USER_ID, encode(&root)?.as_slice())?;
            let mut usernames = txn.open_table(USERNAMES)?;
            usernames.insert("support-bot", SUPPORT_BOT_ID)?;
            usernames.insert("root", ROOT_USER_ID)?;
            meta.insert("next_user_id", ROOT_USER_ID)?;
        }
        drop(users);
        let mut paths = txn.open_table(PROJECT_PATHS)?;
        if paths.get(ADMIN_PROJECT_PATH)?.is_none() {
            let id = next_counter(&mut meta, "next_project_id")?;
            let project = Project {
                id,
                name: "Postmaster".into(),
                path: ADMIN_PROJECT_PATH.into(),
                confidential_by_default: true,
                created_at: now,
                service_desk: ServiceDeskSettings::default(),
            };
            paths.insert(ADMIN_PROJECT_PATH, id)?;
            txn.open_table(PROJECTS)?
                .insert(id, encode(&project)?.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}
