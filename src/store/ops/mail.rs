//! Filing an accepted mail: a new ticket, a comment on an existing one, or a
//! system note for automatic mail. Threading order (issue #3): reply token,
//! then `In-Reply-To`, then `References`, then a `[path#N]` subject reference
//! from a known participant, else a new ticket.

use super::Txn;
use crate::store::model::*;
use crate::store::tables::*;
use crate::store::{decode, encode, now_millis, StoreError};
use redb::ReadableTable;

/// An attachment as ingest found it, before it becomes a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A delivery status notification, as ingest understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub failed_recipients: Vec<String>,
    pub original_message_id: Option<String>,
    pub permanent: bool,
    pub status: Option<String>,
}

/// A parsed incoming mail with everything routing needs.
#[derive(Debug, Clone, Default)]
pub struct NewMail {
    /// The message as stored (with our `Received:` trace header).
    pub raw: Vec<u8>,
    /// Message-ID, or `sha256:<hex>` of the client's bytes when it had none.
    pub dedup_key: String,
    pub message_id: Option<String>,
    pub title: String,
    /// The whole text: the description of a new ticket.
    pub description: String,
    /// The new text only (quotes and signatures cut): the body of a comment.
    pub reply_text: String,
    pub reporter_email: Option<String>,
    pub reporter_name: Option<String>,
    pub attachments: Vec<NewAttachment>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// `[path#N]` found in the subject.
    pub subject_reference: Option<(String, u64)>,
    /// Reply tokens found in To/Cc/Delivered-To.
    pub header_tokens: Vec<String>,
    /// Other To/Cc addresses (not ours), with display names.
    pub copied: Vec<(String, Option<String>)>,
    /// Why the mail is automatic (RFC 3834 and friends), if it is.
    pub automatic: Option<String>,
    /// List mail: automatic for new tickets only.
    pub list: bool,
    pub bounce: Option<Bounce>,
}

/// Where the SMTP envelope sent the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTarget {
    Project(u64),
    ReplyToken(String),
}

/// What happened to the mail for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    TicketOpened {
        project_id: u64,
        number: u64,
    },
    Commented {
        project_id: u64,
        number: u64,
        threaded_by: &'static str,
    },
    SystemNote {
        project_id: u64,
        number: u64,
    },
    Duplicate {
        project_id: u64,
        number: u64,
    },
    Dropped {
        reason: String,
    },
}

pub fn deliver(
    txn: &mut Txn,
    mail: &NewMail,
    targets: &[MailTarget],
) -> Result<Vec<DeliveryOutcome>, StoreError> {
    let mut outcomes = Vec::new();
    let mut handled_projects = Vec::new();
    // 1. Reply tokens: envelope first, then headers. The first valid one wins.
    let tokens = targets
        .iter()
        .filter_map(|t| match t {
            MailTarget::ReplyToken(token) => Some(token.as_str()),
            MailTarget::Project(_) => None,
        })
        .chain(mail.header_tokens.iter().map(String::as_str));
    for token in tokens {
        let found = txn
            .w
            .open_table(REPLY_TOKENS)?
            .get(token)?
            .map(|v| v.value());
        let Some((project_id, number)) = found else {
            continue;
        };
        if handled_projects.contains(&project_id) {
            continue;
        }
        handled_projects.push(project_id);
        outcomes.push(comment(
            txn,
            mail,
            project_id,
            number,
            "reply_token",
            Some(token),
        )?);
    }
    // 2. Project addresses.
    for target in targets {
        let MailTarget::Project(project_id) = *target else {
            continue;
        };
        if handled_projects.contains(&project_id) {
            continue;
        }
        handled_projects.push(project_id);
        if let Some(number) = txn.thread_of(project_id, &mail.dedup_key)? {
            outcomes.push(DeliveryOutcome::Duplicate { project_id, number });
            continue;
        }
        match thread(txn, mail, project_id)? {
            Some((number, rule)) => {
                outcomes.push(comment(txn, mail, project_id, number, rule, None)?)
            }
            None => outcomes.push(open_ticket(txn, mail, project_id)?),
        }
    }
    if outcomes.is_empty() {
        outcomes.push(DeliveryOutcome::Dropped {
            reason: "no valid target".into(),
        });
    }
    Ok(outcomes)
}

/// Finds the ticket a mail to the project address belongs to.
fn thread(
    txn: &Txn,
    mail: &NewMail,
    project_id: u64,
) -> Result<Option<(u64, &'static str)>, StoreError> {
    for id in &mail.in_reply_to {
        if let Some(number) = txn.thread_of(project_id, id)? {
            return Ok(Some((number, "in_reply_to")));
        }
    }
    for id in mail.references.iter().rev() {
        if let Some(number) = txn.thread_of(project_id, id)? {
            return Ok(Some((number, "references")));
        }
    }
    if let (Some((path, number)), Some(sender)) = (&mail.subject_reference, &mail.reporter_email) {
        let project = txn.project(project_id)?;
        if project.is_some_and(|p| p.path.eq_ignore_ascii_case(path)) {
            if let Some(ticket) = txn.ticket(project_id, *number)? {
                let sender = sender.to_lowercase();
                if ticket.participants.iter().any(|p| p.email == sender) {
                    return Ok(Some((*number, "subject")));
                }
            }
        }
    }
    Ok(None)
}

fn attachments(txn: &Txn, mail: &NewMail) -> Result<Vec<Attachment>, StoreError> {
    mail.attachments
        .iter()
        .map(|a| {
            Ok(Attachment {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.bytes.len() as u64,
                sha256: txn.put_blob(&a.bytes)?,
            })
        })
        .collect()
}

fn open_ticket(
    txn: &mut Txn,
    mail: &NewMail,
    project_id: u64,
) -> Result<DeliveryOutcome, StoreError> {
    if let Some(reason) = mail
        .automatic
        .as_deref()
        .or(mail.list.then_some("mailing list"))
    {
        tracing::info!(
            project_id,
            reason,
            "automatic mail opens no ticket; dropped after 250"
        );
        return Ok(DeliveryOutcome::Dropped {
            reason: format!("automatic mail: {reason}"),
        });
    }
    let Some(project) = txn.project(project_id)? else {
        return Ok(DeliveryOutcome::Dropped {
            reason: "project no longer exists".into(),
        });
    };
    let raw_sha = txn.put_blob(&mail.raw)?;
    let attachments = attachments(txn, mail)?;
    let number = {
        let mut seq = txn.w.open_table(TICKET_SEQ)?;
        let next = seq.get(project_id)?.map(|v| v.value()).unwrap_or(0) + 1;
        seq.insert(project_id, next)?;
        next
    };
    let now = now_millis();
    let mut ticket = Ticket {
        id: txn.counter("next_ticket_id")?,
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
        participants: Vec::new(),
        thread_message_ids: Vec::new(),
        closed_by: None,
        assignee_ids: Vec::new(),
        milestone_id: None,
        due_date: None,
        discussion_locked: false,
        time_estimate: 0,
        total_time_spent: 0,
    };
    txn.remember_message(&mut ticket, &mail.dedup_key)?;
    if let Some(reporter) = &mail.reporter_email {
        txn.add_participant(&mut ticket, reporter, mail.reporter_name.clone())?;
    }
    if project.service_desk.add_external_participants_from_cc {
        for (email, name) in &mail.copied {
            if ticket.participants.len() > txn.settings.max_participants {
                break;
            }
            txn.add_participant(&mut ticket, email, name.clone())?;
        }
    }
    if let Some(reporter) = mail.reporter_email.as_deref() {
        if thank_you_allowed(txn, reporter)? {
            txn.enqueue_mail(
                OutboxKind::ThankYou,
                &mut ticket,
                None,
                &reporter.to_lowercase(),
            )?;
        }
    }
    txn.save_ticket(&ticket)?;
    txn.event("issue_opened", project_id, Some(number))?;
    Ok(DeliveryOutcome::TicketOpened { project_id, number })
}

/// At most `thank_you_per_hour` thank-you mails per sender per hour.
fn thank_you_allowed(txn: &Txn, sender: &str) -> Result<bool, StoreError> {
    let sender = sender.to_lowercase();
    let now = now_millis();
    let hour_ago = now - 3_600_000;
    let mut log = txn.w.open_table(THANK_YOU_LOG)?;
    let mut times: Vec<i64> = match log.get(sender.as_str())? {
        Some(v) => decode("thank_you_log", v.value()).unwrap_or_default(),
        None => Vec::new(),
    };
    times.retain(|t| *t > hour_ago);
    let allowed = times.len() < txn.settings.thank_you_per_hour as usize;
    if allowed {
        times.push(now);
    }
    log.insert(sender.as_str(), encode(&times)?.as_slice())?;
    Ok(allowed)
}

fn comment(
    txn: &mut Txn,
    mail: &NewMail,
    project_id: u64,
    number: u64,
    rule: &'static str,
    token: Option<&str>,
) -> Result<DeliveryOutcome, StoreError> {
    let Some(mut ticket) = txn.ticket(project_id, number)? else {
        return Ok(DeliveryOutcome::Dropped {
            reason: "ticket no longer exists".into(),
        });
    };
    if txn.thread_of(project_id, &mail.dedup_key)?.is_some() {
        return Ok(DeliveryOutcome::Duplicate { project_id, number });
    }
    let sender = mail.reporter_email.as_deref().map(str::to_lowercase);
    let token_holder = token.and_then(|t| ticket.participants.iter().find(|p| p.reply_token == t));
    let sender_mismatch = match (token_holder, &sender) {
        (Some(holder), Some(sender)) => holder.email != *sender,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let raw_sha = txn.put_blob(&mail.raw)?;
    txn.remember_message(&mut ticket, &mail.dedup_key)?;
    if let Some(id) = &mail.message_id {
        txn.remember_message(&mut ticket, id)?;
    }

    if mail.automatic.is_some() || mail.bounce.is_some() {
        let body = automatic_note(&mut ticket, mail, token);
        let mut note = Note::new(NoteKind::System, SUPPORT_BOT_ID, body);
        note.from_email = sender.clone();
        note.threaded_by = Some(rule.into());
        note.message_id = mail.message_id.clone();
        note.raw_message_sha256 = Some(raw_sha);
        txn.add_note(&ticket, note)?;
        ticket.updated_at = now_millis();
        txn.save_ticket(&ticket)?;
        return Ok(DeliveryOutcome::SystemNote { project_id, number });
    }

    let mut note = Note::new(NoteKind::Email, SUPPORT_BOT_ID, mail.reply_text.clone());
    note.from_email = sender.clone();
    note.threaded_by = Some(rule.into());
    note.sender_mismatch = sender_mismatch;
    note.message_id = mail.message_id.clone();
    note.raw_message_sha256 = Some(raw_sha);
    note.attachments = attachments(txn, mail)?;
    txn.add_note(&ticket, note)?;

    let is_participant = sender
        .as_ref()
        .is_some_and(|s| ticket.participants.iter().any(|p| p.email == *s));
    let reopen = ticket.state == TicketState::Closed
        && !sender_mismatch
        && is_participant
        && txn
            .project(project_id)?
            .is_some_and(|p| p.service_desk.reopen_issue_on_external_participant_note);
    if reopen {
        ticket.state = TicketState::Opened;
        ticket.closed_at = None;
        ticket.closed_by = None;
        let who = sender.clone().unwrap_or_default();
        txn.system_note(&ticket, format!("reopened by an email reply from {who}"))?;
        txn.event("issue_reopened", project_id, Some(number))?;
    }
    ticket.updated_at = now_millis();
    txn.save_ticket(&ticket)?;
    Ok(DeliveryOutcome::Commented {
        project_id,
        number,
        threaded_by: rule,
    })
}

/// The system note for automatic mail; a bounce also marks the participant.
fn automatic_note(ticket: &mut Ticket, mail: &NewMail, token: Option<&str>) -> String {
    let sender = mail.reporter_email.clone().unwrap_or_else(|| "<>".into());
    let Some(bounce) = mail.bounce.as_ref() else {
        let reason = mail.automatic.as_deref().unwrap_or("automatic");
        return format!("automatic reply from {sender} ({reason}) received; no action taken");
    };
    if !bounce.permanent {
        return format!(
            "delivery to {} is delayed",
            bounce.failed_recipients.join(", ")
        );
    }
    let mut marked = Vec::new();
    for participant in &mut ticket.participants {
        let named = bounce
            .failed_recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&participant.email));
        let via_token =
            bounce.failed_recipients.is_empty() && token == Some(participant.reply_token.as_str());
        if named || via_token {
            participant.bouncing = true;
            marked.push(participant.email.clone());
        }
    }
    let status = bounce.status.as_deref().unwrap_or("permanent failure");
    if marked.is_empty() {
        format!("delivery status notification received ({status}); no participant matched")
    } else {
        format!(
            "mail to {} bounced ({status}); no more mail will be sent there",
            marked.join(", ")
        )
    }
}
