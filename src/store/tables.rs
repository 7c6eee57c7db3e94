//! Every redb table mxdesk uses, in one place, so a reader finds the whole
//! on-disk layout without searching. Values are MessagePack (`rmp-serde`,
//! named fields) so that adding a field with `#[serde(default)]` needs no
//! migration, while a changed key layout bumps [`SCHEMA_VERSION`].

use redb::TableDefinition;

/// Bumped whenever a table's key or value layout changes incompatibly.
pub const SCHEMA_VERSION: u64 = 2;

/// `"schema_version"` and monotonically increasing id counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// project id → [`super::model::Project`].
pub const PROJECTS: TableDefinition<u64, &[u8]> = TableDefinition::new("projects");
/// lower-cased project path (also the address local part) → project id.
pub const PROJECT_PATHS: TableDefinition<&str, u64> = TableDefinition::new("project_paths");
/// (project id, ticket number) → [`super::model::Ticket`].
pub const TICKETS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("tickets");
/// project id → last ticket number handed out.
pub const TICKET_SEQ: TableDefinition<u64, u64> = TableDefinition::new("ticket_seq");
/// (project id, ticket number, note seq) → [`super::model::Note`].
pub const NOTES: TableDefinition<(u64, u64, u64), &[u8]> = TableDefinition::new("notes");
/// sha256 → bytes of a raw message or attachment, stored once.
pub const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
/// (project id, Message-ID or `sha256:<hex>` of the content) → ticket number.
/// Threading and delivery dedup.
pub const MESSAGE_IDS: TableDefinition<(u64, &str), u64> = TableDefinition::new("message_ids");
/// global sequence → [`super::model::Event`].
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// user id → [`super::model::User`].
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// sha256(token) → [`super::model::ApiToken`].
pub const API_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("api_tokens");
/// reply token → (project id, ticket number); the participant is found on the ticket.
pub const REPLY_TOKENS: TableDefinition<&str, (u64, u64)> = TableDefinition::new("reply_tokens");
/// outbox id → [`super::model::OutboxMail`] still to be delivered.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// lower-cased sender → MessagePack list of recent thank-you times (rate limit).
pub const THANK_YOU_LOG: TableDefinition<&str, &[u8]> = TableDefinition::new("thank_you_log");
/// lower-cased username → user id.
pub const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
/// token id → sha256(token), to revoke by id.
pub const TOKEN_IDS: TableDefinition<u64, &[u8]> = TableDefinition::new("token_ids");
/// (project id, user id) → access level.
pub const MEMBERS: TableDefinition<(u64, u64), u8> = TableDefinition::new("members");
/// (user id, project id) → access level: the projects a user can see.
pub const MEMBERSHIPS: TableDefinition<(u64, u64), u8> = TableDefinition::new("memberships");
/// (project id, label id) → [`super::model::Label`].
pub const LABELS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("labels");
/// (project id, milestone id) → [`super::model::Milestone`].
pub const MILESTONES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("milestones");
/// (project id, hook id) → [`super::model::ProjectHook`].
pub const HOOKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("hooks");
/// hook id → last event seq delivered (webhook delivery cursor).
pub const HOOK_CURSORS: TableDefinition<u64, u64> = TableDefinition::new("hook_cursors");
/// Index: (project id, state 0=opened 1=closed, number) → ().
pub const TICKETS_BY_STATE: TableDefinition<(u64, u8, u64), ()> =
    TableDefinition::new("tickets_by_state");
/// Index: (project id, lower-cased label, number) → ().
pub const TICKETS_BY_LABEL: TableDefinition<(u64, &str, u64), ()> =
    TableDefinition::new("tickets_by_label");
/// Index: (project id, assignee user id, number) → ().
pub const TICKETS_BY_ASSIGNEE: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("tickets_by_assignee");
/// Index: (project id, updated_at ms, number) → ().
pub const TICKETS_BY_UPDATED: TableDefinition<(u64, i64, u64), ()> =
    TableDefinition::new("tickets_by_updated");
