//! The SMTP listener and session state machine. It speaks SMTP and knows
//! nothing about tickets: what a recipient is and what happens to an accepted
//! message are asked of a [`MailHandler`].

mod listener;
pub mod reply;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

pub use listener::{serve, SmtpListener};
pub use session::{run_session, SessionSettings};

/// Where a recipient stands, decided at RCPT time (no backscatter later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptVerdict {
    Accept,
    /// A served domain, but no such mailbox: `550 5.1.1`.
    UnknownMailbox,
    /// Not a domain we serve: `550 5.7.1`, we are no open relay.
    RelayDenied,
    /// The lookup failed: `451 4.3.0`, the client retries.
    TemporaryFailure,
}

/// Why a complete message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Storage failed; nothing was kept: `451 4.3.0`.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The content is refused for good: `554 5.6.0`.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Everything known about one mail transaction besides its content.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub session_id: String,
    pub peer: SocketAddr,
    pub helo: String,
    pub tls: bool,
    /// Empty for the null sender `<>`.
    pub mail_from: String,
    pub recipients: Vec<String>,
}

/// What the SMTP layer asks of the rest of mxdesk.
pub trait MailHandler: Send + Sync + 'static {
    /// Decides whether `address` is a recipient we accept.
    fn check_recipient(&self, address: &str) -> impl Future<Output = RcptVerdict> + Send;
    /// Takes a complete message (ending in CRLF). Must resolve `Ok` only once
    /// the message is durably stored; the `Ok` value is the queue id shown
    /// in the `250` reply.
    fn deliver(
        &self,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<String, DeliveryError>> + Send;
}

/// Limits and names of the SMTP service, from the configuration.
#[derive(Debug, Clone)]
pub struct SmtpLimits {
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub max_bad_commands: u32,
}
