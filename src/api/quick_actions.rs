//! GitLab quick actions in a note body: each on its own line, starting with
//! `/`. They are removed from the stored text; unknown ones are reported back
//! rather than silently ignored. Lines inside fenced code blocks are text.

/// One understood quick action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuickAction {
    Close,
    Reopen,
    AddEmail(Vec<String>),
    RemoveEmail(Vec<String>),
}

/// A note body split into its text and its commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedNote {
    pub text: String,
    pub actions: Vec<QuickAction>,
    /// Lines that looked like commands but are not known (reported back).
    pub unknown: Vec<String>,
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
        match command.to_ascii_lowercase().as_str() {
            "close" if args.is_empty() => parsed.actions.push(QuickAction::Close),
            "reopen" if args.is_empty() => parsed.actions.push(QuickAction::Reopen),
            "add_email" if !args.is_empty() => parsed.actions.push(QuickAction::AddEmail(emails())),
            "remove_email" if !args.is_empty() => {
                parsed.actions.push(QuickAction::RemoveEmail(emails()))
            }
            _ => parsed.unknown.push(trimmed.to_string()),
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
}
