//! Every SMTP reply mxdesk sends, with its code and enhanced status code
//! (RFC 3463), in one place.

use std::borrow::Cow;

/// One single-line SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: [u8; 3],
    pub text: Cow<'static, str>,
}

const fn fixed(code: u16, status: [u8; 3], text: &'static str) -> Reply {
    Reply {
        code,
        status,
        text: Cow::Borrowed(text),
    }
}

impl Reply {
    /// Serialises the reply as `code x.y.z text\r\n`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let [a, b, c] = self.status;
        let response = smtp_proto::Response::new(self.code, a, b, c, self.text.as_ref());
        // Writing into a Vec cannot fail.
        let _ = response.write(out);
    }

    /// Whether this reply ends the session (the server closes after it).
    pub fn closes(&self) -> bool {
        self.code == 421 || self.code == 221
    }
}

/// The multi-line EHLO reply (RFC 5321 §4.1.1.1) with the extensions
/// mxdesk implements; STARTTLS only while the session is still plaintext.
pub fn write_ehlo(out: &mut Vec<u8>, hostname: &str, offer_tls: bool, max_size: usize) {
    let size = format!("SIZE {max_size}");
    let mut lines: Vec<&str> = vec!["PIPELINING", &size, "8BITMIME", "ENHANCEDSTATUSCODES"];
    if offer_tls {
        lines.push("STARTTLS");
    }
    lines.extend(["CHUNKING", "SMTPUTF8", "HELP"]);
    out.extend_from_slice(format!("250-{hostname} greets you\r\n").as_bytes());
    for (index, line) in lines.iter().enumerate() {
        let separator = if index + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("250{separator}{line}\r\n").as_bytes());
    }
}

pub fn greeting(hostname: &str) -> Reply {
    Reply {
        code: 220,
        status: [2, 0, 0],
        text: format!("{hostname} ESMTP mxdesk ready").into(),
    }
}
pub fn helo_ok(hostname: &str) -> Reply {
    Reply {
        code: 250,
        status: [2, 0, 0],
        text: format!("{hostname} greets you").into(),
    }
}
pub fn queued(id: &str) -> Reply {
    Reply {
        code: 250,
        status: [2, 0, 0],
        text: format!("Message queued as {id}").into(),
    }
}
pub fn chunk_received(octets: usize) -> Reply {
    Reply {
        code: 250,
        status: [2, 0, 0],
        text: format!("{octets} octets received").into(),
    }
}
pub fn syntax(hint: &str) -> Reply {
    Reply {
        code: 501,
        status: [5, 5, 4],
        text: format!("Syntax: {hint}").into(),
    }
}
pub fn invalid_parameter(param: &str) -> Reply {
    Reply {
        code: 501,
        status: [5, 5, 4],
        text: format!("Invalid parameter {param}").into(),
    }
}
/// RFC 5321 §4.1.1.11: unrecognised MAIL/RCPT parameters get 555.
pub fn unsupported_parameter(param: &str) -> Reply {
    let param: String = param
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    Reply {
        code: 555,
        status: [5, 5, 4],
        text: format!("Unsupported parameter {param}").into(),
    }
}
pub fn rejected(reason: &str) -> Reply {
    Reply {
        code: 554,
        status: [5, 6, 0],
        text: format!("Message rejected: {reason}").into(),
    }
}

pub const OK: Reply = fixed(250, [2, 0, 0], "OK");
pub const SENDER_OK: Reply = fixed(250, [2, 1, 0], "Sender OK");
pub const RECIPIENT_OK: Reply = fixed(250, [2, 1, 5], "Recipient OK");
pub const START_DATA: Reply = fixed(354, [2, 0, 0], "Start mail input; end with <CRLF>.<CRLF>");
pub const READY_FOR_TLS: Reply = fixed(220, [2, 0, 0], "Ready to start TLS");
pub const BYE: Reply = fixed(221, [2, 0, 0], "Bye");
pub const HELP: Reply = fixed(214, [2, 0, 0], "mxdesk: see RFC 5321; commands EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS");
/// RFC 5321 §3.5.3: no verification, but mail will be attempted.
pub const CANNOT_VRFY: Reply = fixed(
    252,
    [2, 5, 2],
    "Cannot VRFY user, but will accept message and attempt delivery",
);

pub const SHUTTING_DOWN: Reply = fixed(421, [4, 3, 2], "Service shutting down, try again later");
pub const TOO_MANY_CONNECTIONS: Reply =
    fixed(421, [4, 3, 2], "Too many connections, try again later");
pub const IDLE_TIMEOUT: Reply = fixed(421, [4, 4, 2], "Idle timeout, closing connection");
pub const TOO_MANY_ERRORS: Reply = fixed(421, [4, 7, 0], "Too many errors, closing connection");
pub const STORAGE_FAILURE: Reply =
    fixed(451, [4, 3, 0], "Temporary storage failure, try again later");
pub const RECIPIENT_CHECK_FAILED: Reply = fixed(
    451,
    [4, 3, 0],
    "Temporary failure checking recipient, try again later",
);
/// RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452.
pub const TOO_MANY_RECIPIENTS: Reply = fixed(452, [4, 5, 3], "Too many recipients");
pub const TLS_NOT_AVAILABLE: Reply = fixed(454, [4, 7, 0], "TLS not available");

pub const UNKNOWN_COMMAND: Reply = fixed(500, [5, 5, 1], "Command unrecognized");
pub const LINE_TOO_LONG: Reply = fixed(500, [5, 5, 6], "Line too long");
pub const BAD_SENDER_SYNTAX: Reply = fixed(501, [5, 1, 7], "Bad sender address syntax");
pub const BAD_RECIPIENT_SYNTAX: Reply = fixed(501, [5, 1, 3], "Bad recipient address syntax");
pub const NOT_IMPLEMENTED: Reply = fixed(502, [5, 5, 1], "Command not implemented");
pub const HELLO_FIRST: Reply = fixed(503, [5, 5, 1], "Send EHLO or HELO first");
pub const NESTED_MAIL: Reply = fixed(503, [5, 5, 1], "Sender already specified");
pub const MAIL_FIRST: Reply = fixed(503, [5, 5, 1], "Send MAIL FROM first");
pub const ALREADY_TLS: Reply = fixed(503, [5, 5, 1], "Already in TLS");
pub const NO_VALID_RECIPIENTS: Reply = fixed(554, [5, 5, 1], "No valid recipients");
pub const UNKNOWN_USER: Reply = fixed(550, [5, 1, 1], "Mailbox unavailable: no such user here");
pub const RELAY_DENIED: Reply = fixed(550, [5, 7, 1], "Relaying denied");
pub const MESSAGE_TOO_BIG: Reply = fixed(
    552,
    [5, 3, 4],
    "Message size exceeds fixed maximum message size",
);
pub const BINARYMIME_UNSUPPORTED: Reply = fixed(555, [5, 5, 4], "BODY=BINARYMIME is not supported");
/// RFC 5321 §2.3.8: lines end in CRLF; bare CR or LF enables SMTP smuggling.
pub const BARE_LINE_ENDING: Reply = fixed(
    550,
    [5, 6, 11],
    "Message contains a bare CR or LF; lines must end with CRLF",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_lists_extensions_and_ends_with_a_space_line() {
        let mut out = Vec::new();
        write_ehlo(&mut out, "mx.test", true, 1000);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("250-mx.test greets you\r\n"));
        assert!(text.contains("250-STARTTLS\r\n"));
        assert!(text.contains("250-SIZE 1000\r\n"));
        assert!(text.ends_with("250 HELP\r\n"));
        let mut plain = Vec::new();
        write_ehlo(&mut plain, "mx.test", false, 1000);
        assert!(!String::from_utf8(plain).unwrap().contains("STARTTLS"));
    }

    #[test]
    fn replies_carry_enhanced_codes() {
        let mut out = Vec::new();
        UNKNOWN_USER.write_to(&mut out);
        assert_eq!(out, b"550 5.1.1 Mailbox unavailable: no such user here\r\n");
    }

    #[test]
    fn unsupported_parameter_text_is_printable() {
        let mut out = Vec::new();
        unsupported_parameter("X\r\nRCPT").write_to(&mut out);
        assert_eq!(out, b"555 5.5.4 Unsupported parameter XRCPT\r\n");
    }
}
