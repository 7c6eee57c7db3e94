//! Mail address syntax: what mxdesk accepts as a domain and how it splits and
//! normalises a recipient (DESIGN §2: case-insensitive, `+tag` sub-addressing).

/// A recipient split into the parts routing needs, all lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAddress {
    /// Local part without any `+tag`.
    pub mailbox: String,
    /// The `+tag` part, if any (without the `+`).
    pub tag: Option<String>,
    pub domain: String,
}

/// Whether `name` is a syntactically valid DNS host name (RFC 1035 §2.3.1, RFC 1123 §2.1).
pub fn is_valid_domain(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Splits `local@domain`, lower-casing both sides and separating `+tag`.
/// Returns `None` for anything that is not a plausible address (no `@`, empty
/// parts, control characters, an invalid domain).
pub fn parse(address: &str) -> Option<MailAddress> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(|c| c.is_control() || c.is_whitespace())
        || !is_valid_domain(domain)
    {
        return None;
    }
    let local = local.to_lowercase();
    let (mailbox, tag) = match local.split_once('+') {
        Some((mailbox, tag)) => (mailbox.to_string(), Some(tag.to_string())),
        None => (local, None),
    };
    if mailbox.is_empty() {
        return None;
    }
    Some(MailAddress {
        mailbox,
        tag,
        domain: domain.trim_end_matches('.').to_ascii_lowercase(),
    })
}

/// Whether `path` may be a project path (and so an address local part):
/// lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit.
pub fn is_valid_project_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 64
        && path
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && path.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_address_and_case_are_normalised() {
        let a = parse("Acme+Urgent@Desk.Example.COM").unwrap();
        assert_eq!(a.mailbox, "acme");
        assert_eq!(a.tag.as_deref(), Some("urgent"));
        assert_eq!(a.domain, "desk.example.com");
    }

    #[test]
    fn garbage_is_not_an_address() {
        for bad in [
            "",
            "@x.com",
            "a@",
            "a@-x.com",
            "a b@x.com",
            "a@x..com",
            "+tag@x.com",
            "a\r\n@x.com",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn domains() {
        assert!(is_valid_domain("localhost"));
        assert!(is_valid_domain("mx.desk.test"));
        assert!(!is_valid_domain("bad_domain.com"));
        assert!(!is_valid_domain(""));
    }

    #[test]
    fn project_paths() {
        assert!(is_valid_project_path("acme"));
        assert!(is_valid_project_path("acme-support.eu"));
        assert!(!is_valid_project_path("-acme"));
        assert!(!is_valid_project_path("a/b"));
        assert!(!is_valid_project_path("Acme"));
    }
}
