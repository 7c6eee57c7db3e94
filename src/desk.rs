//! The glue between SMTP and the store: decides recipients and turns an
//! accepted message into store writes through ingest. SMTP sees only the
//! [`MailHandler`] trait; the store sees only [`WriteOp`]s.

use std::sync::Arc;

use crate::config::Config;
use crate::ingest::{parse_message, trace_header, IngestLimits};
use crate::smtp::{DeliveryError, Envelope, MailHandler, RcptVerdict};
use crate::store::{NewMail, Store, StoreError, WriteOp, ADMIN_PROJECT_PATH};

/// Local parts that reach the built-in admin project on every served domain:
/// RFC 5321 §4.5.1 (postmaster) and RFC 2142 (abuse).
const ADMIN_MAILBOXES: &[&str] = &["postmaster", "abuse"];

/// Messages up to this size are parsed on the calling task.
const INLINE_PARSE_LIMIT: usize = 64 * 1024;

/// The service desk as the SMTP layer sees it.
pub struct Desk {
    store: Store,
    config: Arc<Config>,
}

impl Desk {
    pub fn new(store: Store, config: Arc<Config>) -> Desk {
        Desk { store, config }
    }

    /// The project path an address routes to, or the verdict refusing it.
    fn route(&self, address: &str) -> Result<String, RcptVerdict> {
        if address.eq_ignore_ascii_case("postmaster") {
            return Ok(ADMIN_PROJECT_PATH.to_string());
        }
        let Some(parsed) = crate::address::parse(address) else {
            return Err(RcptVerdict::UnknownMailbox);
        };
        if !self
            .config
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&parsed.domain))
        {
            return Err(RcptVerdict::RelayDenied);
        }
        if ADMIN_MAILBOXES.contains(&parsed.mailbox.as_str()) {
            return Ok(ADMIN_PROJECT_PATH.to_string());
        }
        if crate::store::RESERVED_PATHS.contains(&parsed.mailbox.as_str()) {
            return Err(RcptVerdict::UnknownMailbox);
        }
        Ok(parsed.mailbox)
    }

    async fn project_id(&self, path: String) -> Result<Option<u64>, StoreError> {
        if let Some(id) = self.store.cached_project_id(&path) {
            return Ok(Some(id));
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.project_id_by_path(&path))
            .await
            .map_err(|e| StoreError::Storage(e.to_string()))?
    }
}

impl MailHandler for Desk {
    async fn check_recipient(&self, address: &str) -> RcptVerdict {
        let path = match self.route(address) {
            Ok(path) => path,
            Err(verdict) => return verdict,
        };
        match self.project_id(path).await {
            Ok(Some(_)) => RcptVerdict::Accept,
            Ok(None) => RcptVerdict::UnknownMailbox,
            Err(error) => {
                tracing::error!(%error, "recipient lookup failed");
                RcptVerdict::TemporaryFailure
            }
        }
    }

    async fn deliver(&self, envelope: Envelope, message: Vec<u8>) -> Result<String, DeliveryError> {
        let mut project_ids = Vec::with_capacity(envelope.recipients.len());
        for recipient in &envelope.recipients {
            let Ok(path) = self.route(recipient) else {
                continue;
            };
            match self.project_id(path).await {
                Ok(Some(id)) if !project_ids.contains(&id) => project_ids.push(id),
                Ok(_) => {}
                Err(error) => return Err(DeliveryError::Temporary(error.to_string())),
            }
        }
        let message_len = message.len();
        let limits = IngestLimits {
            max_mime_parts: self.config.smtp.max_mime_parts,
        };
        let trace = trace_header(
            &envelope.helo,
            &envelope.peer.to_string(),
            &self.config.smtp.hostname,
            &envelope.session_id,
            envelope.tls,
            &mail_parser::DateTime::from_timestamp(crate::store::now_millis() / 1000).to_rfc822(),
        );
        let mail_from = envelope.mail_from.clone();
        let build = move || {
            let parsed = parse_message(&message, limits)?;
            let mut raw = Vec::with_capacity(trace.len() + message.len());
            raw.extend_from_slice(trace.as_bytes());
            raw.extend_from_slice(&message);
            let reporter_email = parsed
                .from_address
                .or_else(|| (!mail_from.is_empty()).then_some(mail_from));
            Ok::<_, crate::ingest::IngestError>(NewMail {
                raw,
                dedup_key: parsed.dedup_key,
                message_id: parsed.message_id,
                title: parsed.title,
                description: parsed.description,
                reporter_email,
                reporter_name: parsed.from_name,
                attachments: parsed.attachments,
            })
        };
        // Small messages parse in microseconds: not worth a thread hop. Large
        // ones go to the blocking pool so they cannot stall the reactor.
        let built = if message_len <= INLINE_PARSE_LIMIT {
            build()
        } else {
            tokio::task::spawn_blocking(build)
                .await
                .map_err(|e| DeliveryError::Temporary(e.to_string()))?
        };
        let new_mail = built.map_err(|e| DeliveryError::Rejected(e.to_string()))?;

        let op = WriteOp::DeliverMail {
            mail: Arc::new(new_mail),
            project_ids,
        };
        match self.store.write(op).await {
            Ok(outcome) => {
                tracing::info!(id = %envelope.session_id, ?outcome, "message stored");
                Ok(envelope.session_id)
            }
            Err(error) => Err(DeliveryError::Temporary(error.to_string())),
        }
    }
}
