//! MIME parsing with mail-parser, under limits mail-parser does not enforce.
//!
//! mail-parser has had fuzz-found panics, so parsing runs under
//! `catch_unwind`: a panic is a refused message, never a dead session.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{MessageParser, MimeHeaders};
use thiserror::Error;

use super::classify::{classify, delivery_report, Classification, DeliveryReport};
use super::text::sanitize_header_text;
use crate::store::{sha256_hex, NewAttachment};

/// GitLab's limit on issue titles.
const MAX_TITLE_CHARS: usize = 255;
/// Longest description kept (the full text stays in the raw message).
const MAX_DESCRIPTION_BYTES: usize = 1024 * 1024;
/// Headers of all parts together before the message counts as a header bomb.
const MAX_HEADERS: usize = 10_000;

/// Why a message could not be turned into a ticket.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("message is not valid MIME")]
    Unparseable,
    #[error("message has {0} MIME parts, more than allowed")]
    TooManyParts(usize),
    #[error("message has {0} headers, more than allowed")]
    TooManyHeaders(usize),
}

/// Limits applied after parsing.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_mime_parts: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_mime_parts: 1000,
        }
    }
}

/// What a message says, reduced to what a ticket needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMessage {
    pub title: String,
    pub description: String,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub message_id: Option<String>,
    /// Message-ID, or `sha256:<hex>` of the bytes when there is none.
    pub dedup_key: String,
    pub attachments: Vec<NewAttachment>,
    /// Only the new text of a reply (quotes and signatures cut).
    pub reply_text: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// To, Cc and Delivered-To addresses with display names, lower-cased.
    pub addressed_to: Vec<(String, Option<String>)>,
    /// `[path#N]` in the subject.
    pub subject_reference: Option<(String, u64)>,
    pub classification: Classification,
    pub delivery_report: Option<DeliveryReport>,
}

/// Who sent the message, as far as classification needs to know.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// SMTP `MAIL FROM`, `""` for the null sender.
    pub envelope_sender: &'a str,
    /// Domains of the Message-IDs mxdesk generates (loop detection).
    pub own_domains: &'a [String],
    /// The envelope names a reply address: the mail will be a comment.
    pub reply_expected: bool,
}

/// Parses `raw` (the message as the client sent it, ending in CRLF).
pub fn parse_message(raw: &[u8], limits: IngestLimits) -> Result<ParsedMessage, IngestError> {
    parse_message_from(raw, limits, Origin::default())
}

/// Parses `raw` and classifies it knowing who sent it.
pub fn parse_message_from(
    raw: &[u8],
    limits: IngestLimits,
    origin: Origin<'_>,
) -> Result<ParsedMessage, IngestError> {
    catch_unwind(AssertUnwindSafe(|| parse_unguarded(raw, limits, origin))).unwrap_or_else(|_| {
        tracing::warn!("mail-parser panicked; message refused");
        Err(IngestError::Unparseable)
    })
}

fn parse_unguarded(
    raw: &[u8],
    limits: IngestLimits,
    origin: Origin<'_>,
) -> Result<ParsedMessage, IngestError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(IngestError::Unparseable)?;
    if message.parts.len() > limits.max_mime_parts {
        return Err(IngestError::TooManyParts(message.parts.len()));
    }
    let headers: usize = message.parts.iter().map(|p| p.headers.len()).sum();
    if headers > MAX_HEADERS {
        return Err(IngestError::TooManyHeaders(headers));
    }

    let title = message
        .subject()
        .map(|s| sanitize_header_text(s, MAX_TITLE_CHARS))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".to_string());

    let mut description = message
        .body_text(0)
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    if description.len() > MAX_DESCRIPTION_BYTES {
        let mut cut = MAX_DESCRIPTION_BYTES;
        while !description.is_char_boundary(cut) {
            cut -= 1;
        }
        description.truncate(cut);
    }
    let description = description.trim_end().to_string();
    let sender = message.from().and_then(|a| a.first());
    let from_address = sender
        .and_then(|a| a.address())
        .and_then(crate::address::parse)
        .and_then(|_| sender.and_then(|a| a.address()))
        .map(|a| a.trim().to_string());
    let from_name = sender
        .and_then(|a| a.name())
        .map(|n| sanitize_header_text(n, 255))
        .filter(|n| !n.is_empty());

    let message_id = message
        .message_id()
        .map(|id| {
            id.chars()
                .filter(|c| c.is_ascii_graphic() && *c != '<' && *c != '>')
                .collect::<String>()
        })
        .filter(|id| !id.is_empty() && id.len() <= 998);
    let dedup_key = match &message_id {
        Some(id) => id.clone(),
        None => format!("sha256:{}", sha256_hex(raw)),
    };

    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_string());
            let name = part
                .attachment_name()
                .map(|n| sanitize_header_text(n, 255).replace(['/', '\\'], "_"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("attachment-{}", index + 1));
            NewAttachment {
                name,
                content_type: sanitize_header_text(&content_type, 255).to_ascii_lowercase(),
                bytes: part.contents().to_vec(),
            }
        })
        .collect();

    let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        value
            .as_text_list()
            .map(|list| {
                list.iter()
                    .filter_map(|id| clean_message_id(id))
                    .take(100)
                    .collect()
            })
            .unwrap_or_default()
    };
    let in_reply_to = ids(message.in_reply_to());
    let references = ids(message.references());
    let mut addressed_to = Vec::new();
    for address in message.to().into_iter().chain(message.cc()).chain(
        message
            .header_values(mail_parser::HeaderName::DeliveredTo)
            .filter_map(|h| h.as_address()),
    ) {
        for addr in address.iter().take(200) {
            if let Some(email) = addr
                .address()
                .filter(|a| crate::address::parse(a).is_some())
            {
                let name = addr
                    .name()
                    .map(|n| sanitize_header_text(n, 255))
                    .filter(|n| !n.is_empty());
                addressed_to.push((email.trim().to_lowercase(), name));
            }
        }
    }
    // Delivered-To is usually a bare address, which mail-parser keeps as text.
    for value in message.header_values(mail_parser::HeaderName::DeliveredTo) {
        if let Some(text) = value.as_text() {
            let text = text
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_lowercase();
            if crate::address::parse(&text).is_some() {
                addressed_to.push((text, None));
            }
        }
    }
    let subject_reference = subject_reference(&title);
    // Trimming only matters for a mail that can become a comment: one with
    // threading headers, a subject reference or a reply address. A fresh
    // mail opens a ticket with its whole text, so skip the work.
    let may_be_reply = origin.reply_expected
        || !in_reply_to.is_empty()
        || !references.is_empty()
        || subject_reference.is_some()
        || addressed_to.iter().any(|(a, _)| a.starts_with("reply+"));
    let reply_text = if !may_be_reply {
        description.clone()
    } else if message.text_part(0).is_some_and(|p| p.is_text_html()) {
        message
            .body_html(0)
            .map(|html| super::trim::trim_html_reply(&html))
            .unwrap_or_default()
    } else {
        super::trim::trim_reply(&description)
    };
    let classification = classify(origin.envelope_sender, &message, origin.own_domains);
    let delivery_report = delivery_report(&message);

    Ok(ParsedMessage {
        reply_text,
        in_reply_to,
        references,
        addressed_to,
        subject_reference,
        classification,
        delivery_report,
        title,
        description,
        from_address,
        from_name,
        message_id,
        dedup_key,
        attachments,
    })
}

fn clean_message_id(id: &str) -> Option<String> {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '<' && *c != '>')
        .take(998)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Finds the last `[path#N]` in a subject: how a reply that lost its
/// threading headers can still name its ticket.
pub fn subject_reference(subject: &str) -> Option<(String, u64)> {
    let mut found = None;
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner = &after[..close];
        if let Some((path, number)) = inner.rsplit_once('#') {
            let path = path.rsplit('/').next().unwrap_or(path);
            if crate::address::is_valid_project_path(&path.to_ascii_lowercase()) {
                if let Ok(number) = number.parse::<u64>() {
                    found = Some((path.to_ascii_lowercase(), number));
                }
            }
        }
        rest = &after[close + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_references() {
        assert_eq!(
            super::subject_reference("Re: Printer [acme#12]"),
            Some(("acme".into(), 12))
        );
        assert_eq!(
            super::subject_reference("[x] Re: [desk/Acme#3] again"),
            Some(("acme".into(), 3))
        );
        assert_eq!(super::subject_reference("no [ref#] here"), None);
        assert_eq!(super::subject_reference("[[[#"), None);
    }

    use super::*;

    const MULTIPART: &str = concat!(
        "From: =?UTF-8?Q?Ren=C3=A9e?= <renee@example.org>\r\n",
        "To: acme@desk.test\r\n",
        "Subject: =?UTF-8?B?UHJpbnRlciBrYXB1dHQg4pyU?=\r\n",
        "Message-ID: <abc@example.org>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n",
        "\r\n",
        "--b1\r\n",
        "Content-Type: multipart/alternative; boundary=\"b2\"\r\n",
        "\r\n",
        "--b2\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "The printer is broken.\r\n",
        "--b2\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "\r\n",
        "<p>The printer is <b>broken</b>.</p>\r\n",
        "--b2--\r\n",
        "--b1\r\n",
        "Content-Type: application/pdf; name=\"report.pdf\"\r\n",
        "Content-Disposition: attachment; filename=\"report.pdf\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "JVBERi0xLjQK\r\n",
        "--b1--\r\n",
    );

    #[test]
    fn multipart_fields() {
        let m = parse_message(MULTIPART.as_bytes(), IngestLimits::default()).unwrap();
        assert_eq!(m.title, "Printer kaputt ✔");
        assert_eq!(m.description, "The printer is broken.");
        assert_eq!(m.from_address.as_deref(), Some("renee@example.org"));
        assert_eq!(m.from_name.as_deref(), Some("Renée"));
        assert_eq!(m.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name, "report.pdf");
        assert_eq!(m.attachments[0].content_type, "application/pdf");
        assert_eq!(m.attachments[0].bytes, b"%PDF-1.4\n");
    }

    #[test]
    fn html_only_becomes_text() {
        let raw = "From: a@b.c\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>world</b></p>\r\n";
        let m = parse_message(raw.as_bytes(), IngestLimits::default()).unwrap();
        assert!(m.description.contains("Hello world"), "{:?}", m.description);
        assert!(!m.description.contains('<'));
    }

    #[test]
    fn missing_subject_and_message_id() {
        let raw = b"From: a@b.c\r\n\r\nbody\r\n";
        let m = parse_message(raw, IngestLimits::default()).unwrap();
        assert_eq!(m.title, "(no subject)");
        assert!(m.dedup_key.starts_with("sha256:"));
    }

    #[test]
    fn subject_with_encoded_crlf_is_flattened() {
        let raw = b"Subject: =?UTF-8?Q?a=0D=0ABcc:_x@y.z?=\r\n\r\nbody\r\n";
        let m = parse_message(raw, IngestLimits::default()).unwrap();
        assert!(
            !m.title.contains('\r') && !m.title.contains('\n'),
            "{:?}",
            m.title
        );
    }

    #[test]
    fn part_bomb_is_refused() {
        let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..20 {
            raw.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        raw.push_str("--b--\r\n");
        let err = parse_message(raw.as_bytes(), IngestLimits { max_mime_parts: 10 }).unwrap_err();
        assert!(matches!(err, IngestError::TooManyParts(_)));
    }
}
