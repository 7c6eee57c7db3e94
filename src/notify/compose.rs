//! Composing one outbound mail with mail-builder. Every value that reaches a
//! header is sanitised here first: mail-builder writes ASCII text, message
//! ids and addresses raw, so CR/LF in a title or name would inject headers.

use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::MessageBuilder;
use thiserror::Error;

use super::templates::{self, html_escape, render};
use crate::config::Config;
use crate::ingest::sanitize_header_text;
use crate::store::{Note, OutboxKind, OutboxMail, Participant, Project, Ticket};

/// Header that marks mail mxdesk sent, for loop detection.
pub const LOOP_HEADER: &str = "X-Mxdesk-Loop";

/// Why a mail could not be composed (a permanent failure: retrying won't help).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ComposeError {
    #[error("recipient address {0:?} is not valid")]
    BadRecipient(String),
    #[error("the participant no longer exists")]
    NoParticipant,
    #[error("could not write the message: {0}")]
    Write(String),
}

/// A message ready for the transport.
#[derive(Debug, Clone)]
pub struct Composed {
    /// `reply+<token>@domain`: bounces come back to the ticket (VERP).
    pub envelope_from: String,
    pub recipient: String,
    pub bytes: Vec<u8>,
}

/// Everything one outbound mail is made of.
pub struct Context<'a> {
    pub config: &'a Config,
    pub project: &'a Project,
    pub ticket: &'a Ticket,
    pub note: Option<&'a Note>,
    pub mail: &'a OutboxMail,
}

/// Whether `address` is safe to put in a header and an SMTP command.
pub fn is_safe_address(address: &str) -> bool {
    crate::address::parse(address).is_some()
        && address.len() <= 254
        && address
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>' && b != b'"' && b != b',')
}

fn clean_id(id: &str) -> Option<String> {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '<' && *c != '>')
        .collect();
    (!id.is_empty()).then_some(id)
}

pub fn compose(ctx: &Context<'_>) -> Result<Composed, ComposeError> {
    let Context {
        config,
        project,
        ticket,
        note,
        mail,
    } = *ctx;
    let participant: &Participant = ticket
        .participants
        .iter()
        .find(|p| p.email == mail.recipient)
        .ok_or(ComposeError::NoParticipant)?;
    if !is_safe_address(&participant.email) {
        return Err(ComposeError::BadRecipient(participant.email.clone()));
    }
    let domain = config.primary_domain();
    let project_address = format!("{}@{}", project.path, domain);
    let reply_address = format!("reply+{}@{}", participant.reply_token, domain);
    let from_name = project
        .service_desk
        .outgoing_name
        .clone()
        .or_else(|| config.outbound.from_name.clone())
        .unwrap_or_else(|| project.name.clone());
    let from_name = sanitize_header_text(&from_name, 128);
    let title = sanitize_header_text(&ticket.title, 255);
    let web_url = format!(
        "{}/-/issues/{}",
        crate::api::json::project_web_url(config, project),
        ticket.number
    );
    let unsubscribe_url = format!(
        "{}/-/sent_notifications/{}/unsubscribe",
        config.public_url(),
        participant.reply_token
    );
    let issue_id = format!("#{}", ticket.number);
    let issue_path = format!(
        "{}/{}#{}",
        crate::api::json::NAMESPACE,
        project.path,
        ticket.number
    );
    let note_text = note.map(|n| n.body.as_str()).unwrap_or("");
    let template = templates::for_kind(&project.service_desk.templates, mail.kind);
    let text_values = [
        ("ISSUE_ID", issue_id.as_str()),
        ("ISSUE_PATH", issue_path.as_str()),
        ("ISSUE_URL", web_url.as_str()),
        ("ISSUE_TITLE", ticket.title.as_str()),
        ("ISSUE_DESCRIPTION", ticket.description.as_str()),
        ("NOTE_TEXT", note_text),
        ("UNSUBSCRIBE_URL", unsubscribe_url.as_str()),
        ("SYSTEM_HEADER", ""),
        ("SYSTEM_FOOTER", ""),
    ];
    let text_body = render(&template.text, &text_values);
    let escaped: Vec<(String, String)> = text_values
        .iter()
        .map(|(k, v)| (k.to_string(), html_escape(v)))
        .collect();
    let html_values: Vec<(&str, &str)> = escaped
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let html_body = template
        .html
        .as_deref()
        .map(|html| render(html, &html_values));
    let reference = format!("[{}#{}]", project.path, ticket.number);
    let subject = match &template.subject {
        Some(subject) => sanitize_header_text(&render(subject, &text_values), 998),
        None => format!("Re: {title} {reference}"),
    };
    let subject = if subject.contains(&reference) {
        subject
    } else {
        format!("{subject} {reference}")
    };

    let message_id =
        clean_id(&mail.message_id).ok_or_else(|| ComposeError::Write("empty Message-ID".into()))?;
    let thread: Vec<String> = ticket
        .thread_message_ids
        .iter()
        .filter(|id| **id != mail.message_id)
        .filter_map(|id| clean_id(id))
        .collect();
    let in_reply_to = match mail.kind {
        OutboxKind::ThankYou => ticket.message_id.as_deref().and_then(clean_id),
        _ => thread.last().cloned(),
    };

    let mut builder = MessageBuilder::new()
        .from(Address::new_address(Some(from_name), project_address))
        .to(Address::new_address(
            participant
                .name
                .as_deref()
                .map(|n| sanitize_header_text(n, 128)),
            participant.email.clone(),
        ))
        .reply_to(reply_address.clone())
        .subject(Text::new(subject))
        .message_id(MessageId::new(message_id))
        .header(LOOP_HEADER, Raw::new(sanitize_header_text(domain, 255)))
        .header("List-Unsubscribe", Raw::new(format!("<{unsubscribe_url}>")))
        .header(
            "List-Unsubscribe-Post",
            Raw::new("List-Unsubscribe=One-Click"),
        )
        .header(
            "X-Mxdesk-Ticket",
            Raw::new(sanitize_header_text(&issue_path, 255)),
        )
        .text_body(text_body);
    if let Some(html) = html_body {
        builder = builder.html_body(html);
    }
    if let Some(id) = in_reply_to {
        builder = builder.in_reply_to(MessageId::new(id));
    }
    if !thread.is_empty() {
        builder = builder.references(MessageId::new_list(thread.iter().map(String::as_str)));
    }
    builder = match mail.kind {
        // RFC 3834 §5: the thank-you is an automatic response.
        OutboxKind::ThankYou => builder
            .header("Auto-Submitted", Raw::new("auto-replied"))
            .header("X-Auto-Response-Suppress", Raw::new("All")),
        OutboxKind::NewParticipant | OutboxKind::Close => {
            builder.header("Auto-Submitted", Raw::new("auto-generated"))
        }
        OutboxKind::NewNote => builder,
    };
    let bytes = builder
        .write_to_vec()
        .map_err(|e| ComposeError::Write(e.to_string()))?;
    Ok(Composed {
        envelope_from: reply_address,
        recipient: participant.email.clone(),
        bytes,
    })
}
