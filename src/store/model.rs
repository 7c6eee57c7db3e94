//! The records mxdesk keeps. Plain data: the API shapes them into GitLab JSON,
//! ingest produces them, and only the store persists them.

use serde::{Deserialize, Serialize};

/// A service desk project: one mail address, one ticket sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: u64,
    pub name: String,
    /// Lower-case path; also the local part of the project's mail address.
    pub path: String,
    /// Whether tickets opened by mail start confidential (GitLab's default: yes).
    #[serde(default = "default_true")]
    pub confidential_by_default: bool,
    pub created_at: i64,
    /// Service desk settings and templates (GitLab's service desk settings).
    #[serde(default)]
    pub service_desk: ServiceDeskSettings,
}

/// Per-project service desk behaviour, editable through the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceDeskSettings {
    /// Display name on outgoing mail; the address is the project's.
    #[serde(default)]
    pub outgoing_name: Option<String>,
    /// A participant's reply reopens a closed ticket.
    #[serde(default = "default_true")]
    pub reopen_issue_on_external_participant_note: bool,
    /// To/Cc addresses of the opening mail become participants.
    #[serde(default = "default_true")]
    pub add_external_participants_from_cc: bool,
    /// Mail participants when the ticket is closed.
    #[serde(default)]
    pub send_close_email: bool,
    /// Overrides of the built-in templates, by name (`thank_you`, `new_note`,
    /// `new_participant`, `close`).
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, MailTemplate>,
}

impl Default for ServiceDeskSettings {
    fn default() -> Self {
        ServiceDeskSettings {
            outgoing_name: None,
            reopen_issue_on_external_participant_note: true,
            add_external_participants_from_cc: true,
            send_close_email: false,
            templates: Default::default(),
        }
    }
}

/// A mail template: placeholders like `%{ISSUE_ID}` are filled at send time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailTemplate {
    #[serde(default)]
    pub subject: Option<String>,
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
}

/// An external (mail-only) participant of a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Participant {
    /// Lower-cased address.
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Hex of 16 random bytes: `reply+<token>@domain`, and the unsubscribe key.
    pub reply_token: String,
    #[serde(default)]
    pub unsubscribed: bool,
    /// A delivery status notification said mail to it fails.
    #[serde(default)]
    pub bouncing: bool,
    pub added_at: i64,
}

fn default_true() -> bool {
    true
}

/// Open or closed, as GitLab names them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TicketState {
    Opened,
    Closed,
}

/// A file kept with a ticket; the bytes live in the blob table under `sha256`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

/// A ticket (a GitLab issue). `number` is the per-project `iid`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    /// Global id (GitLab's `id`), unique across projects.
    pub id: u64,
    pub project_id: u64,
    pub number: u64,
    pub title: String,
    pub description: String,
    pub state: TicketState,
    pub confidential: bool,
    /// User id of the author (the support bot for mail-opened tickets).
    pub author_id: u64,
    /// The external reporter's address, for tickets opened by mail.
    pub reporter_email: Option<String>,
    pub reporter_name: Option<String>,
    pub labels: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// sha256 of the raw message that opened the ticket, if it came by mail.
    pub raw_message_sha256: Option<String>,
    pub message_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    /// External participants; the reporter first.
    #[serde(default)]
    pub participants: Vec<Participant>,
    /// Message-IDs of the thread, oldest first (capped), for `References`.
    #[serde(default)]
    pub thread_message_ids: Vec<String>,
    #[serde(default)]
    pub closed_by: Option<u64>,
    /// User ids of the assignees.
    #[serde(default)]
    pub assignee_ids: Vec<u64>,
    #[serde(default)]
    pub milestone_id: Option<u64>,
    /// `YYYY-MM-DD`, as GitLab.
    #[serde(default)]
    pub due_date: Option<String>,
    #[serde(default)]
    pub discussion_locked: bool,
    /// Seconds (GitLab's time tracking).
    #[serde(default)]
    pub time_estimate: u64,
    #[serde(default)]
    pub total_time_spent: u64,
}

/// What kind of note this is; only `Email` and `Public` are ever mailed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NoteKind {
    Email,
    Public,
    Internal,
    System,
}

/// A comment on a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Note {
    pub id: u64,
    pub seq: u64,
    pub kind: NoteKind,
    pub author_id: u64,
    pub body: String,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// For notes that came by mail: the external sender.
    #[serde(default)]
    pub from_email: Option<String>,
    /// Which threading rule attached this mail to the ticket.
    #[serde(default)]
    pub threaded_by: Option<String>,
    /// The mail came through a participant's reply address but from another sender.
    #[serde(default)]
    pub sender_mismatch: bool,
    /// Addresses this note was (queued to be) mailed to.
    #[serde(default)]
    pub sent_to: Vec<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub raw_message_sha256: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The discussion (thread) this note belongs to; `None`: its own.
    #[serde(default)]
    pub discussion_id: Option<String>,
}

/// Why an outbound mail is sent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    ThankYou,
    NewNote,
    NewParticipant,
    Close,
}

/// One outbound mail to one recipient, written in the same transaction as
/// its cause and composed when it is sent (so templates and tokens are current).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxMail {
    pub id: u64,
    pub kind: OutboxKind,
    pub project_id: u64,
    pub ticket_number: u64,
    /// The note being mailed (NewNote).
    #[serde(default)]
    pub note_seq: Option<u64>,
    pub recipient: String,
    /// Fixed at enqueue time so retries keep the same Message-ID.
    pub message_id: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A person or agent that uses the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub name: String,
    pub is_admin: bool,
    /// Bots (the support bot) cannot log in and own no token.
    #[serde(default)]
    pub bot: bool,
    pub created_at: i64,
    #[serde(default)]
    pub email: Option<String>,
    /// `active` or `blocked`; blocked users' tokens stop working.
    #[serde(default)]
    pub blocked: bool,
}

/// GitLab's project access levels.
pub mod access_level {
    pub const NONE: u8 = 0;
    pub const GUEST: u8 = 10;
    pub const REPORTER: u8 = 20;
    pub const DEVELOPER: u8 = 30;
    pub const MAINTAINER: u8 = 40;
    pub const OWNER: u8 = 50;

    /// Whether `level` is one GitLab defines for project members.
    pub fn is_valid(level: u8) -> bool {
        matches!(level, GUEST | REPORTER | DEVELOPER | MAINTAINER | OWNER)
    }
}

/// A project label.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Label {
    pub id: u64,
    pub name: String,
    /// `#RRGGBB`.
    pub color: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: i64,
}

/// A project milestone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Milestone {
    pub id: u64,
    /// Per-project number.
    pub iid: u64,
    pub project_id: u64,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub due_date: Option<String>,
    #[serde(default)]
    pub start_date: Option<String>,
    /// `active` or `closed`.
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A project hook (GitLab's webhooks subset).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProjectHook {
    pub id: u64,
    pub project_id: u64,
    pub url: String,
    /// Sent as `X-Gitlab-Token`; never shown back.
    #[serde(default)]
    pub token: Option<String>,
    pub issues_events: bool,
    pub note_events: bool,
    pub confidential_issues_events: bool,
    pub confidential_note_events: bool,
    pub created_at: i64,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Api,
    ReadApi,
}

/// A personal access token; only its sha256 is stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiToken {
    pub id: u64,
    pub user_id: u64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub revoked: bool,
    pub created_at: i64,
    /// `YYYY-MM-DD`; the token stops working at the start of that day (UTC).
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// One entry of the durable, ordered change log agents follow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub kind: String,
    pub project_id: u64,
    pub ticket_number: Option<u64>,
    pub created_at: i64,
    /// The note the event is about, if any.
    #[serde(default)]
    pub note_id: Option<u64>,
    /// The note is internal (only Reporter+ may see the event).
    #[serde(default)]
    pub internal: bool,
    /// Who caused it (user id), if known.
    #[serde(default)]
    pub actor_id: Option<u64>,
    /// Free-form detail: the changed fields, the delivered address …
    #[serde(default)]
    pub detail: Option<String>,
}

/// The support bot authors every ticket opened by mail, as in GitLab.
pub const SUPPORT_BOT_ID: u64 = 1;
/// The first administrator, created on first start.
pub const ROOT_USER_ID: u64 = 2;
/// The built-in project that receives `postmaster@` and `abuse@` mail.
pub const ADMIN_PROJECT_PATH: &str = "desk-admin";
