//! Mail templates with GitLab's `%{PLACEHOLDER}` syntax, built-in defaults,
//! and per-project overrides.

use std::collections::BTreeMap;

use crate::store::{MailTemplate, OutboxKind};

/// The template name of each kind of outbound mail.
pub fn name(kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::ThankYou => "thank_you",
        OutboxKind::NewNote => "new_note",
        OutboxKind::NewParticipant => "new_participant",
        OutboxKind::Close => "close",
    }
}

/// Every template name a project may override.
pub const NAMES: &[&str] = &["thank_you", "new_note", "new_participant", "close"];

/// The built-in template for `kind`.
pub fn builtin(kind: OutboxKind) -> MailTemplate {
    let (text, html) = match kind {
        OutboxKind::ThankYou => (
            "%{SYSTEM_HEADER}Thank you for your support request! We are tracking your request as ticket %{ISSUE_ID}, and will respond as soon as we can.\n\nTo add to the conversation, reply to this email.\n\n%{SYSTEM_FOOTER}",
            "<p>Thank you for your support request! We are tracking your request as ticket <strong>%{ISSUE_ID}</strong>, and will respond as soon as we can.</p><p>To add to the conversation, reply to this email.</p>",
        ),
        OutboxKind::NewNote => ("%{NOTE_TEXT}\n\n%{SYSTEM_FOOTER}", "<div>%{NOTE_TEXT}</div>"),
        OutboxKind::NewParticipant => (
            "%{SYSTEM_HEADER}You have been added to ticket %{ISSUE_ID}: %{ISSUE_TITLE}.\n\n%{ISSUE_DESCRIPTION}\n\nTo add to the conversation, reply to this email.\n\n%{SYSTEM_FOOTER}",
            "<p>You have been added to ticket <strong>%{ISSUE_ID}</strong>: %{ISSUE_TITLE}.</p><p>To add to the conversation, reply to this email.</p>",
        ),
        OutboxKind::Close => (
            "%{SYSTEM_HEADER}Ticket %{ISSUE_ID} (%{ISSUE_TITLE}) has been closed. Reply to this email to reopen it.\n\n%{SYSTEM_FOOTER}",
            "<p>Ticket <strong>%{ISSUE_ID}</strong> (%{ISSUE_TITLE}) has been closed. Reply to this email to reopen it.</p>",
        ),
    };
    MailTemplate {
        subject: None,
        text: format!("{text}\n-- \nTo stop receiving mail about this ticket: %{{UNSUBSCRIBE_URL}}\n"),
        html: Some(format!("{html}<hr><p style=\"font-size:small\"><a href=\"%{{UNSUBSCRIBE_URL}}\">Unsubscribe</a> from this ticket.</p>")),
    }
}

/// The project's override for `kind`, else the built-in one.
pub fn for_kind(overrides: &BTreeMap<String, MailTemplate>, kind: OutboxKind) -> MailTemplate {
    overrides
        .get(name(kind))
        .cloned()
        .unwrap_or_else(|| builtin(kind))
}

/// Replaces every `%{NAME}` that has a value; unknown placeholders stay as
/// they are so a typo is visible rather than silently empty.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let key = &after[..end];
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push_str("%{");
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for inclusion in an HTML template.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        let out = render(
            "Ticket %{ISSUE_ID}: %{NOTE_TEXT} %{UNKNOWN} %{",
            &[("ISSUE_ID", "acme#3"), ("NOTE_TEXT", "hi")],
        );
        assert_eq!(out, "Ticket acme#3: hi %{UNKNOWN} %{");
    }

    #[test]
    fn values_are_not_rendered_again() {
        let out = render("%{A}", &[("A", "%{B}"), ("B", "x")]);
        assert_eq!(out, "%{B}");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
    }

    #[test]
    fn every_kind_has_a_builtin_mentioning_its_issue() {
        for kind in [
            OutboxKind::ThankYou,
            OutboxKind::NewParticipant,
            OutboxKind::Close,
        ] {
            assert!(builtin(kind).text.contains("%{ISSUE_ID}"));
        }
        assert!(builtin(OutboxKind::NewNote).text.contains("%{NOTE_TEXT}"));
    }
}
