//! The glue between SMTP and the store: decides recipients and turns an
//! accepted message into store writes through ingest. SMTP sees only the
//! [`MailHandler`] trait; the store sees only [`WriteOp`]s.

use std::sync::Arc;

use crate::config::Config;
use crate::ingest::{parse_message_from, trace_header, IngestLimits, Origin, ParsedMessage};
use crate::smtp::{DeliveryError, Envelope, MailHandler, RcptVerdict};
use crate::store::{Bounce, MailTarget, NewMail, Store, StoreError, WriteOp, ADMIN_PROJECT_PATH};

/// Local parts that reach the built-in admin project on every served domain:
/// RFC 5321 §4.5.1 (postmaster) and RFC 2142 (abuse).
const ADMIN_MAILBOXES: &[&str] = &["postmaster", "abuse"];
/// The local part of per-participant reply addresses: `reply+<token>@`.
const REPLY_MAILBOX: &str = "reply";
/// Messages up to this size are parsed on the calling task.
const INLINE_PARSE_LIMIT: usize = 64 * 1024;

/// Where a recipient address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    ProjectPath(String),
    ReplyToken(String),
}

/// The service desk as the SMTP layer sees it.
pub struct Desk {
    store: Store,
    config: Arc<Config>,
}

impl Desk {
    pub fn new(store: Store, config: Arc<Config>) -> Desk {
        Desk { store, config }
    }

    fn is_our_domain(&self, domain: &str) -> bool {
        self.config
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Where `address` leads, or the verdict refusing it.
    fn route(&self, address: &str) -> Result<Route, RcptVerdict> {
        if address.eq_ignore_ascii_case("postmaster") {
            return Ok(Route::ProjectPath(ADMIN_PROJECT_PATH.to_string()));
        }
        let Some(parsed) = crate::address::parse(address) else {
            return Err(RcptVerdict::UnknownMailbox);
        };
        if !self.is_our_domain(&parsed.domain) {
            return Err(RcptVerdict::RelayDenied);
        }
        if ADMIN_MAILBOXES.contains(&parsed.mailbox.as_str()) {
            return Ok(Route::ProjectPath(ADMIN_PROJECT_PATH.to_string()));
        }
        if parsed.mailbox == REPLY_MAILBOX {
            return match parsed.tag {
                Some(token) if is_token_syntax(&token) => Ok(Route::ReplyToken(token)),
                _ => Err(RcptVerdict::UnknownMailbox),
            };
        }
        if crate::store::RESERVED_PATHS.contains(&parsed.mailbox.as_str()) {
            return Err(RcptVerdict::UnknownMailbox);
        }
        Ok(Route::ProjectPath(parsed.mailbox))
    }

    /// Resolves a route to a store target, `None` if nothing is there.
    async fn target(&self, route: Route) -> Result<Option<MailTarget>, StoreError> {
        match route {
            Route::ProjectPath(path) => {
                if let Some(id) = self.store.cached_project_id(&path) {
                    return Ok(Some(MailTarget::Project(id)));
                }
                let store = self.store.clone();
                let id = tokio::task::spawn_blocking(move || store.project_id_by_path(&path))
                    .await
                    .map_err(|e| StoreError::Storage(e.to_string()))??;
                Ok(id.map(MailTarget::Project))
            }
            Route::ReplyToken(token) => {
                let store = self.store.clone();
                let lookup = token.clone();
                let exists = tokio::task::spawn_blocking(move || store.reply_token_exists(&lookup))
                    .await
                    .map_err(|e| StoreError::Storage(e.to_string()))??;
                Ok(exists.then_some(MailTarget::ReplyToken(token)))
            }
        }
    }

    /// Builds the store's view of a parsed message.
    fn new_mail(&self, parsed: ParsedMessage, raw: Vec<u8>, mail_from: &str) -> NewMail {
        let mut header_tokens = Vec::new();
        let mut copied: Vec<(String, Option<String>)> = Vec::new();
        for (address, name) in &parsed.addressed_to {
            match crate::address::parse(address) {
                Some(a) if self.is_our_domain(&a.domain) => {
                    let token = a
                        .tag
                        .filter(|t| a.mailbox == REPLY_MAILBOX && is_token_syntax(t));
                    header_tokens.extend(token);
                }
                Some(_) if !copied.iter().any(|(c, _)| c == address) => {
                    copied.push((address.clone(), name.clone()));
                }
                _ => {}
            }
        }
        let reporter_email = parsed
            .from_address
            .or_else(|| (!mail_from.is_empty()).then(|| mail_from.to_string()));
        if let Some(reporter) = &reporter_email {
            copied.retain(|(c, _)| !c.eq_ignore_ascii_case(reporter));
        }
        let bounce = parsed.delivery_report.as_ref().map(|report| Bounce {
            failed_recipients: report.failed_recipients().map(str::to_lowercase).collect(),
            original_message_id: report.original_message_id.clone(),
            permanent: report.is_permanent(),
            status: report
                .recipients
                .iter()
                .find(|r| r.is_permanent_failure())
                .and_then(|r| r.status.clone()),
        });
        let classification = parsed.classification;
        NewMail {
            raw,
            dedup_key: parsed.dedup_key,
            message_id: parsed.message_id,
            title: parsed.title,
            description: parsed.description,
            reply_text: parsed.reply_text,
            reporter_email,
            reporter_name: parsed.from_name,
            attachments: parsed.attachments,
            in_reply_to: parsed.in_reply_to,
            references: parsed.references,
            subject_reference: parsed.subject_reference,
            header_tokens,
            copied,
            automatic: classification.automatic.map(|r| r.to_string()),
            list: classification.list,
            bounce,
        }
    }
}

/// Reply tokens are 32 lower-case hex digits (128 bits).
fn is_token_syntax(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl MailHandler for Desk {
    async fn check_recipient(&self, address: &str) -> RcptVerdict {
        let route = match self.route(address) {
            Ok(route) => route,
            Err(verdict) => return verdict,
        };
        match self.target(route).await {
            Ok(Some(_)) => RcptVerdict::Accept,
            Ok(None) => RcptVerdict::UnknownMailbox,
            Err(error) => {
                tracing::error!(%error, "recipient lookup failed");
                RcptVerdict::TemporaryFailure
            }
        }
    }

    async fn deliver(&self, envelope: Envelope, message: Vec<u8>) -> Result<String, DeliveryError> {
        let mut targets = Vec::with_capacity(envelope.recipients.len());
        for recipient in &envelope.recipients {
            let Ok(route) = self.route(recipient) else {
                continue;
            };
            match self.target(route).await {
                Ok(Some(target)) if !targets.contains(&target) => targets.push(target),
                Ok(_) => {}
                Err(error) => return Err(DeliveryError::Temporary(error.to_string())),
            }
        }
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
        let config = self.config.clone();
        let reply_expected = targets
            .iter()
            .any(|t| matches!(t, MailTarget::ReplyToken(_)));
        let message_len = message.len();
        let parse = move || {
            let origin = Origin {
                envelope_sender: &mail_from,
                own_domains: &config.domains,
                reply_expected,
            };
            let parsed = parse_message_from(&message, limits, origin)?;
            let mut raw = Vec::with_capacity(trace.len() + message.len());
            raw.extend_from_slice(trace.as_bytes());
            raw.extend_from_slice(&message);
            Ok::<_, crate::ingest::IngestError>((parsed, raw, mail_from))
        };
        // Small messages parse in microseconds: not worth a thread hop. Large
        // ones go to the blocking pool so they cannot stall the reactor.
        let parsed = if message_len <= INLINE_PARSE_LIMIT {
            parse()
        } else {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| DeliveryError::Temporary(e.to_string()))?
        };
        let (parsed, raw, mail_from) =
            parsed.map_err(|e| DeliveryError::Rejected(e.to_string()))?;
        if parsed.classification.is_loop() {
            tracing::info!(id = %envelope.session_id, "our own mail came back; dropped after 250");
            return Ok(envelope.session_id);
        }
        let new_mail = self.new_mail(parsed, raw, &mail_from);
        let op = WriteOp::DeliverMail {
            mail: Arc::new(new_mail),
            targets,
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
