//! Cleaning untrusted header text before it is stored or written anywhere.

/// Drops CR, LF, NUL and other control characters, folds runs of white space
/// into one space, trims, and caps the length at `max_chars` characters.
/// Titles and names pass through here: a decoded RFC 2047 word may carry CRLF.
pub fn sanitize_header_text(input: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max_chars));
    let mut pending_space = false;
    let mut count = 0;
    for c in input.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if count + usize::from(pending_space) + 1 > max_chars {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// The `Received:` trace header mxdesk prepends (RFC 5321 §4.4). Every
/// peer-supplied value is reduced to printable ASCII without CR/LF first.
pub fn trace_header(
    helo: &str,
    peer: &str,
    hostname: &str,
    id: &str,
    tls: bool,
    date: &str,
) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect()
    };
    let with = if tls { "ESMTPS" } else { "ESMTP" };
    format!(
        "Received: from {} ({})\r\n\tby {} (mxdesk) with {} id {};\r\n\t{}\r\n",
        clean(helo),
        clean(peer),
        clean(hostname),
        with,
        clean(id),
        date
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_controls_are_removed() {
        assert_eq!(
            sanitize_header_text("Hello\r\nBcc: evil@x.com\0 there", 100),
            "Hello Bcc: evil@x.com there"
        );
    }

    #[test]
    fn length_is_capped_on_characters() {
        assert_eq!(sanitize_header_text("ééééé", 3), "ééé");
        assert_eq!(sanitize_header_text("  a   b  ", 10), "a b");
    }

    #[test]
    fn trace_header_cannot_be_injected() {
        let h = trace_header("evil\r\nX-Injected: 1", "1.2.3.4", "mx", "q1", false, "now");
        assert_eq!(h.matches("\r\n").count(), 3);
        assert!(!h.contains("\r\nX-Injected"));
    }
}
