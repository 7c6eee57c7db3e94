//! GitLab quick actions in a note body: each on its own line, starting with
//! `/`. They are removed from the stored text; unknown ones are reported back
//! rather than silently ignored. Lines inside fenced code blocks are text.

/// One understood quick action (names and ids not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuickAction {
    Close,
    Reopen,
    AddEmail(Vec<String>),
    RemoveEmail(Vec<String>),
    Label(Vec<String>),
    /// Empty: remove every label.
    Unlabel(Vec<String>),
    Relabel(Vec<String>),
    /// Usernames without `@`; `me` is the caller.
    Assign(Vec<String>),
    /// Empty: unassign everyone.
    Unassign(Vec<String>),
    Milestone(String),
    RemoveMilestone,
    Estimate(String),
    RemoveEstimate,
    /// A duration, possibly negative.
    Spend(String),
    RemoveTimeSpent,
    Confidential,
    Title(String),
    Due(String),
    RemoveDueDate,
    Lock,
    Unlock,
}

/// A note body split into its text and its commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedNote {
    pub text: String,
    pub actions: Vec<QuickAction>,
    /// Lines that looked like commands but are not known (reported back).
    pub unknown: Vec<String>,
}

/// Splits `~a ~"b c" d` (labels) or `@a @b` (users) into names.
pub fn names(args: &str, sigil: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',']);
        let body = rest.strip_prefix(sigil).unwrap_or(rest);
        if let Some(quoted) = body.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => {
                    out.push(quoted[..end].to_string());
                    rest = &quoted[end + 1..];
                }
                None => {
                    out.push(quoted.to_string());
                    rest = "";
                }
            }
        } else {
            let end = body.find([' ', ',']).unwrap_or(body.len());
            if end > 0 {
                out.push(body[..end].to_string());
            }
            rest = &body[end..];
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// Splits `body` into text and quick actions.
pub fn parse(body: &str) -> ParsedNote {
    let mut parsed = ParsedNote::default();
    let mut text_lines = Vec::new();
    let mut in_code = false;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code = !in_code;
            text_lines.push(line);
            continue;
        }
        if in_code || !trimmed.starts_with('/') || trimmed.starts_with("//") {
            text_lines.push(line);
            continue;
        }
        let (command, args) = match trimmed[1..].split_once(char::is_whitespace) {
            Some((command, args)) => (command, args.trim()),
            None => (&trimmed[1..], ""),
        };
        if command.is_empty()
            || !command
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            // "/path/to/file" and the like are text, not commands.
            text_lines.push(line);
            continue;
        }
        let emails = || -> Vec<String> {
            args.split([' ', ','])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        };
        let action = match (command.to_ascii_lowercase().as_str(), args.is_empty()) {
            ("close", true) => Some(QuickAction::Close),
            ("reopen", true) => Some(QuickAction::Reopen),
            ("add_email", false) => Some(QuickAction::AddEmail(emails())),
            ("remove_email", false) => Some(QuickAction::RemoveEmail(emails())),
            ("label" | "labels", false) => Some(QuickAction::Label(names(args, '~'))),
            ("unlabel" | "remove_label", _) => Some(QuickAction::Unlabel(names(args, '~'))),
            ("relabel", false) => Some(QuickAction::Relabel(names(args, '~'))),
            ("assign", false) => Some(QuickAction::Assign(names(args, '@'))),
            ("unassign", _) => Some(QuickAction::Unassign(names(args, '@'))),
            ("milestone", false) => names(args, '%')
                .into_iter()
                .next()
                .map(QuickAction::Milestone),
            ("remove_milestone", true) => Some(QuickAction::RemoveMilestone),
            ("estimate" | "estimate_time", false) => Some(QuickAction::Estimate(args.to_string())),
            ("remove_estimate" | "remove_time_estimate", true) => Some(QuickAction::RemoveEstimate),
            ("spend" | "spent" | "spend_time", false) => Some(QuickAction::Spend(args.to_string())),
            ("remove_time_spent", true) => Some(QuickAction::RemoveTimeSpent),
            ("confidential", true) => Some(QuickAction::Confidential),
            ("title", false) => Some(QuickAction::Title(args.to_string())),
            ("due", false) => Some(QuickAction::Due(args.to_string())),
            ("remove_due_date", true) => Some(QuickAction::RemoveDueDate),
            ("lock", true) => Some(QuickAction::Lock),
            ("unlock", true) => Some(QuickAction::Unlock),
            _ => None,
        };
        match action {
            Some(action) => parsed.actions.push(action),
            None => parsed.unknown.push(trimmed.to_string()),
        }
    }
    parsed.text = text_lines.join("\n").trim().to_string();
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_removed_and_text_kept() {
        let p = parse("Thanks!\n/add_email a@b.c, d@e.f\n/close\nBye");
        assert_eq!(p.text, "Thanks!\nBye");
        assert_eq!(
            p.actions,
            vec![
                QuickAction::AddEmail(vec!["a@b.c".into(), "d@e.f".into()]),
                QuickAction::Close
            ]
        );
        assert!(p.unknown.is_empty());
    }

    #[test]
    fn unknown_commands_are_reported() {
        let p = parse("/frobnicate now\nhello");
        assert_eq!(p.unknown, vec!["/frobnicate now".to_string()]);
        assert_eq!(p.text, "hello");
    }

    #[test]
    fn paths_and_code_are_text() {
        let p = parse("see /usr/local/bin\n```\n/close\n```");
        assert!(p.actions.is_empty());
        assert!(p.text.contains("/close"));
        assert!(p.text.contains("/usr/local/bin"));
    }

    #[test]
    fn labels_users_and_milestones() {
        let p = parse(
            "/label ~bug ~\"needs info\" ~x\n/assign @alice @bob\n/milestone %\"v1.0\"\n/unlabel",
        );
        assert_eq!(
            p.actions,
            vec![
                QuickAction::Label(vec!["bug".into(), "needs info".into(), "x".into()]),
                QuickAction::Assign(vec!["alice".into(), "bob".into()]),
                QuickAction::Milestone("v1.0".into()),
                QuickAction::Unlabel(vec![]),
            ]
        );
    }

    #[test]
    fn arguments_are_checked() {
        let p = parse("/close now\n/label");
        assert!(p.actions.is_empty());
        assert_eq!(p.unknown.len(), 2);
    }
}
