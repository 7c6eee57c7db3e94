//! SMTP intake and the API, end to end: the real `mxdesk` process on port 0,
//! real TCP, real TLS with the development CA.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{dot_stuff, simple_message, SmtpClient, TestServer, PLACEHOLDER_PUBLIC_URL};
use serde_json::json;

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// RFC 4648 base64 with line breaks every 76 characters (MIME).
fn base64(bytes: &[u8], wrap: bool) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    if !wrap {
        return out;
    }
    let mut wrapped = String::new();
    for (i, c) in out.chars().enumerate() {
        if i > 0 && i % 76 == 0 {
            wrapped.push_str("\r\n");
        }
        wrapped.push(c);
    }
    wrapped
}

/// A fresh session that said EHLO (plaintext).
fn ehlo(server: &TestServer) -> SmtpClient {
    let mut client = server.smtp();
    client.expect("EHLO client.example.org", 250);
    client
}

/// Delivers one simple message to `rcpt`; asserts `250`.
fn deliver(server: &TestServer, rcpt: &str, subject: &str) {
    let mut client = ehlo(server);
    let id = format!("{}@example.org", subject.replace(' ', "-"));
    let reply = client.send_mail(
        "reporter@example.org",
        &[rcpt],
        &simple_message(subject, &id, "body"),
    );
    assert!(reply.is(250, "2.0.0"), "delivery of {subject:?}: {reply}");
    client.expect("QUIT", 221);
}

fn titles(server: &TestServer, project: &str) -> Vec<String> {
    server
        .all_issues(project)
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect()
}

fn ehlo_keywords(reply: &common::Reply) -> Vec<String> {
    reply.lines[1..].iter().map(|l| l.to_string()).collect()
}

// ---------------------------------------------------------------------------
// greeting, EHLO, STARTTLS
// ---------------------------------------------------------------------------

#[test]
fn greeting_and_ehlo_advertise_the_extensions() {
    let server = TestServer::start();
    let (mut client, greeting) = SmtpClient::connect(server.smtp_addr);
    assert_eq!(greeting.code, 220, "{greeting}");
    assert!(
        greeting.lines[0].starts_with("2.0.0 mx.desk.test "),
        "greeting names the host: {greeting}"
    );

    let reply = client.expect("EHLO client.example.org", 250);
    assert!(reply.lines[0].starts_with("mx.desk.test"), "{reply}");
    let keywords = ehlo_keywords(&reply);
    for wanted in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "CHUNKING",
        "SMTPUTF8",
    ] {
        assert!(
            keywords.iter().any(|k| k == wanted),
            "EHLO lacks {wanted}: {reply}"
        );
    }

    client.starttls();
    assert!(client.is_tls());
    let reply = client.expect("EHLO client.example.org", 250);
    let keywords = ehlo_keywords(&reply);
    assert!(
        !keywords.iter().any(|k| k == "STARTTLS"),
        "STARTTLS advertised after TLS: {reply}"
    );
    for wanted in ["PIPELINING", "SIZE 26214400", "CHUNKING", "SMTPUTF8"] {
        assert!(
            keywords.iter().any(|k| k == wanted),
            "EHLO over TLS lacks {wanted}: {reply}"
        );
    }
    let again = client.cmd("STARTTLS");
    assert!(again.is(503, "5.5.1"), "STARTTLS inside TLS: {again}");
    client.expect("QUIT", 221);
}

#[test]
fn size_advertised_is_the_configured_maximum() {
    let server = TestServer::start_with("smtp.max_message_size = 4096");
    let mut client = server.smtp();
    let reply = client.expect("EHLO client.example.org", 250);
    assert!(
        ehlo_keywords(&reply).iter().any(|k| k == "SIZE 4096"),
        "{reply}"
    );
}

#[test]
fn starttls_negotiates_tls13_and_tls12() {
    let server = TestServer::start();
    let client = server.smtp_tls();
    assert_eq!(
        client.tls_version(),
        Some(rustls::ProtocolVersion::TLSv1_3),
        "default handshake"
    );

    // A client that only speaks TLS 1.2 still gets in.
    let mut client = server.smtp();
    client.expect("EHLO old.example.org", 250);
    let reply = client.cmd("STARTTLS");
    assert!(reply.is(220, "2.0.0"), "{reply}");
    client
        .upgrade_tls_with(common::tls_client_config_versions(&[
            &rustls::version::TLS12,
        ]))
        .expect("TLS 1.2 handshake");
    assert_eq!(client.tls_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    client.expect("EHLO old.example.org", 250);
    client.expect("NOOP", 250);
}

// ---------------------------------------------------------------------------
// the ticket a multipart message becomes
// ---------------------------------------------------------------------------

#[test]
fn multipart_message_over_starttls_becomes_confidential_ticket_one() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    assert_eq!(project["service_desk_address"], "acme@desk.test");
    assert_eq!(project["service_desk_enabled"], true);
    assert_eq!(project["path_with_namespace"], "desk/acme");
    let project_id = project["id"].as_u64().expect("numeric project id");

    let subject = "Drucker kaputt – größer Ärger 🖨";
    let attachment: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let message = format!(
        "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.org>\r\n\
         To: Acme Support <acme@desk.test>\r\n\
         Subject: =?UTF-8?B?{subject_b64}?=\r\n\
         Message-ID: <multipart-1@example.org>\r\n\
         Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer-boundary\"\r\n\
         \r\n\
         This is a multi-part message in MIME format.\r\n\
         --outer-boundary\r\n\
         Content-Type: multipart/alternative; boundary=\"inner-boundary\"\r\n\
         \r\n\
         --inner-boundary\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Hallo,\r\n\
         \r\n\
         der Drucker im 2. Stock druckt nur leere Seiten.\r\n\
         .punkt am Zeilenanfang\r\n\
         Grüße, Jörg\r\n\
         --inner-boundary\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <html><body><p>Hallo,</p><p>der Drucker im 2. Stock druckt nur leere Seiten.</p></body></html>\r\n\
         --inner-boundary--\r\n\
         --outer-boundary\r\n\
         Content-Type: application/octet-stream; name=\"report.bin\"\r\n\
         Content-Disposition: attachment; filename=\"report.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {attachment_b64}\r\n\
         --outer-boundary--\r\n",
        subject_b64 = base64(subject.as_bytes(), false),
        attachment_b64 = base64(&attachment, true),
    );

    let mut client = server.smtp_tls();
    let reply = client.send_mail(
        "bounce@example.org",
        &["acme@desk.test"],
        message.as_bytes(),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    client.expect("QUIT", 221);

    let issue = server.issue("acme", 1);
    assert_eq!(issue["iid"], 1);
    assert_eq!(issue["project_id"], project_id);
    assert_eq!(issue["title"], subject);
    assert_eq!(
        issue["description"],
        "Hallo,\n\nder Drucker im 2. Stock druckt nur leere Seiten.\n.punkt am Zeilenanfang\nGrüße, Jörg"
    );
    assert_eq!(issue["state"], "opened");
    assert_eq!(issue["confidential"], true);
    assert_eq!(issue["service_desk_reply_to"], "joerg@example.org");
    assert_eq!(issue["author"]["username"], "support-bot");
    assert_eq!(issue["labels"], json!([]));
    assert_eq!(issue["assignees"], json!([]));
    assert!(issue["closed_at"].is_null(), "{issue}");
    for key in ["id", "created_at", "updated_at", "web_url"] {
        assert!(!issue[key].is_null(), "issue lacks {key}: {issue}");
    }
    // The same ticket by numeric project id.
    let by_id = server.issue(&project_id.to_string(), 1);
    assert_eq!(by_id["id"], issue["id"]);

    let attachments = issue["attachments"].as_array().expect("attachments array");
    assert_eq!(attachments.len(), 1, "{issue}");
    let listed = &attachments[0];
    assert_eq!(listed["name"], "report.bin");
    assert_eq!(listed["content_type"], "application/octet-stream");
    assert_eq!(listed["size"], attachment.len());
    let url = listed["url"].as_str().expect("attachment url");
    let path = format!("/api/v4/projects/{project_id}/issues/1/attachments/1");
    assert_eq!(url, format!("{PLACEHOLDER_PUBLIC_URL}{path}"));
    let download = server.get(&path);
    assert_eq!(download.status, 200, "{download}");
    assert_eq!(
        download.body, attachment,
        "attachment bytes differ after the round trip"
    );
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        download
            .header("content-disposition")
            .is_some_and(|v| v.contains("report.bin")),
        "{:?}",
        download.headers
    );
    // Attachment numbers are 1-based and bounded.
    server
        .get(&format!(
            "/api/v4/projects/{project_id}/issues/1/attachments/2"
        ))
        .assert_json_error(404);
    server
        .get(&format!(
            "/api/v4/projects/{project_id}/issues/1/attachments/0"
        ))
        .assert_json_error(404);

    let raw = server.get(&format!(
        "/api/v4/projects/{project_id}/issues/1/raw_message"
    ));
    assert_eq!(raw.status, 200, "{raw}");
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    assert!(
        raw.body.ends_with(message.as_bytes()),
        "the raw message is the message as sent (after a trace header): {}",
        raw.text()
    );
    assert!(raw.text().starts_with("Received: "), "{}", raw.text());

    let notes = server.get_json(&format!("/api/v4/projects/{project_id}/issues/1/notes"));
    assert!(notes.is_array(), "{notes}");

    // Nothing else was created, and a second ticket gets number 2.
    assert_eq!(server.all_issues("acme").len(), 1);
    deliver(&server, "acme@desk.test", "second");
    assert_eq!(server.issue("acme", 2)["title"], "second");
    server
        .get("/api/v4/projects/acme/issues/3")
        .assert_json_error(404);
}

// ---------------------------------------------------------------------------
// recipients
// ---------------------------------------------------------------------------

#[test]
fn unknown_recipient_is_refused_at_rcpt() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<someone@example.org>", 250);
    let reply = client.cmd("RCPT TO:<nobody@desk.test>");
    assert!(reply.is(550, "5.1.1"), "{reply}");
    // Reserved names are not projects either.
    for reserved in ["reply", "noreply", "mailer-daemon"] {
        let reply = client.cmd(&format!("RCPT TO:<{reserved}@desk.test>"));
        assert!(reply.is(550, "5.1.1"), "{reserved}: {reply}");
    }
    // Domain and local part are compared case-insensitively.
    let reply = client.cmd("RCPT TO:<ACME@Desk.TEST>");
    assert!(reply.is(250, "2.1.5"), "{reply}");
}

#[test]
fn foreign_domain_is_relaying_denied() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<someone@example.org>", 250);
    for rcpt in [
        "acme@example.com",
        "acme@desk.test.example.com",
        "x@sub.desk.test",
    ] {
        let reply = client.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(reply.is(550, "5.7.1"), "{rcpt}: {reply}");
    }
    // With no accepted recipient there is nothing to send.
    let reply = client.cmd("DATA");
    assert_eq!(reply.code, 554, "{reply}");
}

#[test]
fn postmaster_is_always_accepted_and_reaches_the_admin_project() {
    let server = TestServer::start();
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<someone@example.org>", 250);
    let reply = client.cmd("RCPT TO:<postmaster@desk.test>");
    assert!(reply.is(250, "2.1.5"), "{reply}");
    let reply = client.cmd("RCPT TO:<postmaster>");
    assert!(reply.is(250, "2.1.5"), "bare <postmaster>: {reply}");
    let reply = client.cmd("RCPT TO:<abuse@desk.test>");
    assert!(reply.is(250, "2.1.5"), "{reply}");
    client.expect("RSET", 250);

    let reply = client.send_mail(
        "someone@example.org",
        &["postmaster"],
        &simple_message("to the postmaster", "pm-1@example.org", "hello"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "desk-admin"), vec!["to the postmaster"]);
}

#[test]
fn sub_address_lands_in_the_project() {
    let server = TestServer::start();
    server.create_project("acme");
    server.create_project("other");
    deliver(&server, "acme+billing@desk.test", "tagged");
    assert_eq!(titles(&server, "acme"), vec!["tagged"]);
    assert!(titles(&server, "other").is_empty());
}

#[test]
fn one_message_to_two_projects_opens_a_ticket_in_each() {
    let server = TestServer::start();
    server.create_project("acme");
    server.create_project("other");
    let mut client = ehlo(&server);
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test", "other@desk.test", "acme+again@desk.test"],
        &simple_message("both", "both@example.org", "body"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "acme"), vec!["both"]);
    assert_eq!(titles(&server, "other"), vec!["both"]);
}

#[test]
fn hundred_and_first_recipient_gets_452() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<someone@example.org>", 250);
    for n in 1..=100 {
        let reply = client.cmd(&format!("RCPT TO:<acme+{n}@desk.test>"));
        assert!(reply.is(250, "2.1.5"), "recipient {n}: {reply}");
    }
    let reply = client.cmd("RCPT TO:<acme+101@desk.test>");
    assert!(reply.is(452, "4.5.3"), "recipient 101: {reply}");
    let reply = client.cmd("DATA");
    assert_eq!(reply.code, 354, "{reply}");
    client
        .send_raw(&dot_stuff(&simple_message("many", "many@example.org", "x")))
        .expect("send data");
    let reply = client.reply();
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "acme"), vec!["many"], "one ticket, not 100");
}

// ---------------------------------------------------------------------------
// sizes
// ---------------------------------------------------------------------------

#[test]
fn mail_from_with_too_big_size_is_refused_before_data() {
    let server = TestServer::start_with("smtp.max_message_size = 2048");
    server.create_project("acme");
    let mut client = ehlo(&server);
    let reply = client.cmd("MAIL FROM:<someone@example.org> SIZE=2049");
    assert!(reply.is(552, "5.3.4"), "{reply}");
    // No transaction was opened by the refused MAIL.
    let reply = client.cmd("RCPT TO:<acme@desk.test>");
    assert!(reply.is(503, "5.5.1"), "{reply}");
    let reply = client.cmd("MAIL FROM:<someone@example.org> SIZE=2048");
    assert!(reply.is(250, "2.1.0"), "{reply}");
    client.expect("RSET", 250);
    // The null sender is a valid sender.
    let reply = client.cmd("MAIL FROM:<>");
    assert!(reply.is(250, "2.1.0"), "{reply}");
}

#[test]
fn oversize_data_is_refused_and_the_session_goes_on() {
    let server = TestServer::start_with("smtp.max_message_size = 2048");
    server.create_project("acme");
    let mut client = ehlo(&server);
    let big_body = "x".repeat(70).repeat(100).chars().collect::<Vec<_>>();
    let big_body: String = big_body
        .chunks(70)
        .map(|c| c.iter().collect::<String>() + "\r\n")
        .collect();
    let big = simple_message("too big", "big@example.org", &big_body);
    assert!(big.len() > 2048);
    let reply = client.send_mail("someone@example.org", &["acme@desk.test"], &big);
    assert!(reply.is(552, "5.3.4"), "{reply}");

    // The same session still works, and a small message goes through.
    client.expect("NOOP", 250);
    let reply = client.send_mail(
        "someone@example.org",
        &["acme@desk.test"],
        &simple_message("small", "small@example.org", "fits"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");

    // BDAT past the limit is refused too, and the session survives it.
    client.expect("MAIL FROM:<someone@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    let mut chunk = format!("BDAT {} LAST\r\n", big.len()).into_bytes();
    chunk.extend_from_slice(&big);
    client.send_raw(&chunk).expect("send BDAT");
    let reply = client.reply();
    assert!(reply.is(552, "5.3.4"), "BDAT: {reply}");
    client.expect("NOOP", 250);

    assert_eq!(titles(&server, "acme"), vec!["small"]);
}

// ---------------------------------------------------------------------------
// smuggling and line endings
// ---------------------------------------------------------------------------

#[test]
fn bare_lf_and_bare_cr_smuggling_is_rejected() {
    let server = TestServer::start();
    server.create_project("acme");
    let smuggled = "MAIL FROM:<evil@example.net>\r\n\
                    RCPT TO:<acme@desk.test>\r\n\
                    DATA\r\n\
                    From: evil@example.net\r\n\
                    Subject: smuggled\r\n\
                    \r\n\
                    spoofed\r\n";
    let mut client = ehlo(&server);
    for (name, fake_end) in [
        ("bare LF before the dot", "\n.\r\n"),
        ("bare LF after the dot", "\r\n.\n"),
        ("bare LFs", "\n.\n"),
        ("bare CR before the dot", "\r.\r\n"),
        ("bare CRs", "\r.\r"),
    ] {
        client.expect("MAIL FROM:<reporter@example.org>", 250);
        client.expect("RCPT TO:<acme@desk.test>", 250);
        client.expect("DATA", 354);
        let payload = format!(
            "From: reporter@example.org\r\nSubject: outer\r\n\r\nhello{fake_end}{smuggled}.\r\n"
        );
        client.send_raw(payload.as_bytes()).expect("send payload");
        let reply = client.reply();
        assert!(
            reply.code >= 500 && reply.code < 600,
            "{name}: smuggling attempt got {reply}"
        );
        // Exactly one reply for the whole DATA: the next command is answered
        // next, so none of the smuggled commands was executed.
        let reply = client.cmd("NOOP");
        assert!(reply.is(250, "2.0.0"), "{name}: out of step: {reply}");
    }
    assert!(
        server.all_issues("acme").is_empty(),
        "a smuggling attempt created a ticket: {:?}",
        titles(&server, "acme")
    );
}

#[test]
fn bare_lf_in_an_ordinary_body_is_rejected() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<reporter@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    client.expect("DATA", 354);
    client
        .send_raw(b"Subject: lf\r\n\r\nline one\nline two\r\n.\r\n")
        .expect("send");
    let reply = client.reply();
    assert!(reply.is(550, "5.6.11"), "{reply}");
    assert!(server.all_issues("acme").is_empty());
}

#[test]
fn empty_data_does_not_hang_the_session() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<reporter@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    client.expect("DATA", 354);
    let started = Instant::now();
    client.send_raw(b".\r\n").expect("send end of data");
    let reply = client.reply();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "empty DATA took {:?}",
        started.elapsed()
    );
    assert_ne!(reply.code, 354, "{reply}");
    assert!(reply.is(554, "5.6.0"), "empty message: {reply}");
    client.expect("NOOP", 250);
    // The session is back in command state: a normal mail goes through.
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test"],
        &simple_message("after empty", "after-empty@example.org", "x"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert!(titles(&server, "acme").contains(&"after empty".to_string()));
}

#[test]
fn leading_dots_are_unstuffed_including_on_the_first_line() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    let id = project["id"].as_u64().expect("id");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<reporter@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    client.expect("DATA", 354);
    // Sent stuffed by hand: the first line of DATA starts with "..".
    client
        .send_raw(
            b"..X-Dotted: first line\r\n\
              Subject: dots\r\n\
              Message-ID: <dots@example.org>\r\n\
              \r\n\
              ..leading dot in the body\r\n\
              ...two dots\r\n\
              .\r\n",
        )
        .expect("send");
    let reply = client.reply();
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let raw = server.get(&format!("/api/v4/projects/{id}/issues/1/raw_message"));
    assert_eq!(raw.status, 200, "{raw}");
    let expected = b"\r\n.X-Dotted: first line\r\n\
                     Subject: dots\r\n\
                     Message-ID: <dots@example.org>\r\n\
                     \r\n\
                     .leading dot in the body\r\n\
                     ..two dots\r\n";
    assert!(
        raw.body.ends_with(expected),
        "stored message is not the unstuffed one: {:?}",
        raw.text()
    );
}

// ---------------------------------------------------------------------------
// dedup
// ---------------------------------------------------------------------------

#[test]
fn same_message_id_resent_is_still_one_ticket() {
    let server = TestServer::start();
    server.create_project("acme");
    let message = simple_message("once", "dedup-1@example.org", "body");
    for attempt in 1..=2 {
        let mut client = ehlo(&server);
        let reply = client.send_mail("reporter@example.org", &["acme@desk.test"], &message);
        assert!(reply.is(250, "2.0.0"), "attempt {attempt}: {reply}");
    }
    // Same Message-ID with different bytes (a retry that re-encoded) too.
    let mut client = ehlo(&server);
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test"],
        &simple_message("once (again)", "dedup-1@example.org", "other body"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "acme"), vec!["once"]);
}

#[test]
fn identical_message_without_message_id_resent_is_one_ticket() {
    let server = TestServer::start();
    server.create_project("acme");
    let message = b"From: reporter@example.org\r\n\
                    To: acme@desk.test\r\n\
                    Subject: no id\r\n\
                    \r\n\
                    same bytes\r\n";
    let mut client = ehlo(&server);
    for attempt in 1..=2 {
        let reply = client.send_mail("reporter@example.org", &["acme@desk.test"], message);
        assert!(reply.is(250, "2.0.0"), "attempt {attempt}: {reply}");
    }
    // Different content without Message-ID is a different ticket.
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test"],
        b"From: reporter@example.org\r\nSubject: no id\r\n\r\nother bytes\r\n",
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "acme"), vec!["no id", "no id"]);
}

// ---------------------------------------------------------------------------
// STARTTLS injection
// ---------------------------------------------------------------------------

#[test]
fn plaintext_pipelined_after_starttls_is_not_executed() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    // Everything after STARTTLS in the same write is the attacker's.
    client
        .send_raw(
            b"STARTTLS\r\n\
              EHLO injected.example.net\r\n\
              MAIL FROM:<injected@example.net>\r\n\
              RCPT TO:<acme@desk.test>\r\n",
        )
        .expect("send");
    let reply = client.reply();
    assert!(reply.is(220, "2.0.0"), "{reply}");
    // `upgrade_tls` also asserts that no plaintext reply followed the 220.
    client.upgrade_tls().expect("TLS handshake");

    // A fresh session: no EHLO and no MAIL survived the upgrade.
    let reply = client.cmd("RCPT TO:<acme@desk.test>");
    assert!(reply.is(503, "5.5.1"), "RCPT after TLS: {reply}");
    let reply = client.cmd("MAIL FROM:<a@b.c>");
    assert!(
        reply.is(503, "5.5.1"),
        "MAIL before EHLO after TLS: {reply}"
    );
    client.expect("EHLO client.example.org", 250);
    let reply = client.cmd("MAIL FROM:<a@b.c>");
    assert!(reply.is(250, "2.1.0"), "{reply}");
}

#[test]
fn transaction_before_starttls_is_forgotten() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<before@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    client.starttls();
    client.expect("EHLO client.example.org", 250);
    let reply = client.cmd("DATA");
    assert!(
        reply.is(503, "5.5.1"),
        "DATA after TLS reused a plaintext transaction: {reply}"
    );
}

// ---------------------------------------------------------------------------
// BDAT
// ---------------------------------------------------------------------------

#[test]
fn bdat_in_two_chunks_creates_a_ticket() {
    let server = TestServer::start();
    server.create_project("acme");
    let message = simple_message("chunked", "bdat-1@example.org", "first half\r\nsecond half");
    let (first, second) = message.split_at(message.len() / 2);
    let mut client = server.smtp_tls();
    client.expect("MAIL FROM:<reporter@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    let mut bytes = format!("BDAT {}\r\n", first.len()).into_bytes();
    bytes.extend_from_slice(first);
    client.send_raw(&bytes).expect("send chunk 1");
    let reply = client.reply();
    assert!(reply.is(250, "2.0.0"), "chunk 1: {reply}");
    let mut bytes = format!("BDAT {} LAST\r\n", second.len()).into_bytes();
    bytes.extend_from_slice(second);
    client.send_raw(&bytes).expect("send chunk 2");
    let reply = client.reply();
    assert!(reply.is(250, "2.0.0"), "last chunk: {reply}");

    let issue = server.issue("acme", 1);
    assert_eq!(issue["title"], "chunked");
    assert_eq!(issue["description"], "first half\nsecond half");

    // BDAT without a transaction is refused and its bytes are not commands.
    let mut bytes = b"BDAT 6 LAST\r\n".to_vec();
    bytes.extend_from_slice(b"QUIT\r\n");
    client.send_raw(&bytes).expect("send");
    let reply = client.reply();
    assert!(reply.is(503, "5.5.1"), "{reply}");
    client.expect("NOOP", 250);
}

#[test]
fn pipelined_bdat_chunks_and_dot_lines_are_literal() {
    let server = TestServer::start();
    server.create_project("acme");
    // In BDAT a line with a single dot is data, not an end marker.
    let message = simple_message("binary-safe", "bdat-2@example.org", "before\r\n.\r\nafter");
    let (first, second) = message.split_at(20);
    let mut client = ehlo(&server);
    let mut bytes = b"MAIL FROM:<reporter@example.org>\r\nRCPT TO:<acme@desk.test>\r\n".to_vec();
    bytes.extend_from_slice(format!("BDAT {}\r\n", first.len()).as_bytes());
    bytes.extend_from_slice(first);
    bytes.extend_from_slice(format!("BDAT {} LAST\r\n", second.len()).as_bytes());
    bytes.extend_from_slice(second);
    client.send_raw(&bytes).expect("send");
    let codes: Vec<u16> = (0..4).map(|_| client.reply().code).collect();
    assert_eq!(codes, vec![250, 250, 250, 250]);
    let issue = server.issue("acme", 1);
    assert_eq!(issue["description"], "before\n.\nafter");
}

// ---------------------------------------------------------------------------
// the other commands and session limits
// ---------------------------------------------------------------------------

#[test]
fn rset_noop_vrfy_help_and_quit() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = server.smtp();
    // Before HELO/EHLO, MAIL is refused.
    let reply = client.cmd("MAIL FROM:<a@example.org>");
    assert!(reply.is(503, "5.5.1"), "{reply}");
    let reply = client.cmd("HELO client.example.org");
    assert!(reply.is(250, "2.0.0"), "HELO: {reply}");
    let reply = client.cmd("NOOP");
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let reply = client.cmd("VRFY acme");
    assert!(reply.is(252, "2.5.2"), "{reply}");
    let reply = client.cmd("HELP");
    assert!(reply.is(214, "2.0.0"), "{reply}");

    client.expect("MAIL FROM:<a@example.org>", 250);
    let reply = client.cmd("MAIL FROM:<b@example.org>");
    assert!(reply.is(503, "5.5.1"), "nested MAIL: {reply}");
    client.expect("RCPT TO:<acme@desk.test>", 250);
    let reply = client.cmd("RSET");
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let reply = client.cmd("RCPT TO:<acme@desk.test>");
    assert!(
        reply.is(503, "5.5.1"),
        "RSET did not end the transaction: {reply}"
    );
    let reply = client.cmd("DATA");
    assert!(reply.is(503, "5.5.1"), "{reply}");

    let reply = client.cmd("QUIT");
    assert!(reply.is(221, "2.0.0"), "{reply}");
    let rest = client.read_until_closed();
    assert!(rest.is_empty(), "bytes after 221: {rest:?}");
    assert!(server.all_issues("acme").is_empty());
}

#[test]
fn unknown_and_malformed_commands_get_5xx_with_enhanced_codes() {
    let server = TestServer::start();
    let mut client = ehlo(&server);
    let reply = client.cmd("FROBNICATE");
    assert!(reply.is(500, "5.5.1"), "{reply}");
    let reply = client.cmd("MAIL FROM:no-brackets");
    assert_eq!(reply.code / 100, 5, "{reply}");
    assert!(reply.enhanced().starts_with("5."), "{reply}");
    let reply = client.cmd("MAIL FROM:<a@example.org> FOO=bar");
    assert_eq!(reply.code / 100, 5, "{reply}");
    assert!(reply.enhanced().starts_with("5."), "{reply}");
    client.expect("NOOP", 250);
}

#[test]
fn overlong_command_line_is_answered_once_and_discarded() {
    let server = TestServer::start();
    let mut client = ehlo(&server);
    // Longer than the server reads at once: the rest of the line is still
    // part of the refused line, not a new command.
    let long = format!("NOOP {}\r\nNOOP\r\n", "x".repeat(20_000));
    client.send_raw(long.as_bytes()).expect("send");
    let reply = client.reply();
    assert!(reply.is(500, "5.5.6"), "overlong line: {reply}");
    let reply = client.reply();
    assert!(
        reply.is(250, "2.0.0"),
        "the NOOP after an overlong line got {reply} (the tail of the long line was read as a command)"
    );
}

#[test]
fn command_line_over_the_limit_is_refused_however_it_arrives() {
    let server = TestServer::start();
    let mut client = ehlo(&server);
    // 5,000 bytes in one write: over smtp-proto's 4,096-byte line limit
    // (and RFC 5321 §4.5.3.1.4's 512), whether or not one read gets it all.
    let reply = client.cmd(&format!("NOOP {}", "x".repeat(5000)));
    assert!(reply.is(500, "5.5.6"), "5,000-byte command line: {reply}");
    client.expect("NOOP", 250);
}

#[test]
fn too_many_bad_commands_get_421_and_hang_up() {
    let server = TestServer::start_with("smtp.max_bad_commands = 3");
    let mut client = ehlo(&server);
    for n in 1..=3 {
        let reply = client.cmd("BOGUS");
        assert!(reply.is(500, "5.5.1"), "bad command {n}: {reply}");
    }
    let reply = client.cmd("BOGUS");
    assert!(reply.is(500, "5.5.1"), "bad command 4: {reply}");
    let reply = client.reply();
    assert!(reply.is(421, "4.7.0"), "{reply}");
    let rest = client.read_until_closed();
    assert!(rest.is_empty(), "bytes after 421: {rest:?}");
}

#[test]
fn idle_session_times_out_with_421() {
    let server = TestServer::start_with("smtp.command_timeout_secs = 1");
    let mut client = ehlo(&server);
    let started = Instant::now();
    // Send nothing: the server must give up on us.
    let reply = client.reply();
    let waited = started.elapsed();
    assert!(reply.is(421, "4.4.2"), "{reply}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "timed out after {waited:?}"
    );
    let rest = client.read_until_closed();
    assert!(rest.is_empty(), "bytes after 421: {rest:?}");
}

#[test]
fn many_pipelined_commands_get_all_replies_in_order() {
    // 40 refused recipients below: more than the default bad-command limit.
    let server = TestServer::start_with("smtp.max_bad_commands = 1000");
    server.create_project("acme");
    let mut client = server.smtp();
    let mut batch = String::from("EHLO client.example.org\r\n");
    let mut expected: Vec<(u16, &str)> = vec![(250, "")];
    for n in 0..20 {
        batch.push_str("MAIL FROM:<reporter@example.org>\r\n");
        batch.push_str(&format!("RCPT TO:<acme+{n}@desk.test>\r\n"));
        batch.push_str("RCPT TO:<nobody@desk.test>\r\n");
        batch.push_str("RCPT TO:<acme@example.com>\r\n");
        batch.push_str("VRFY acme\r\n");
        batch.push_str("RSET\r\n");
        expected.extend([
            (250, "2.1.0"),
            (250, "2.1.5"),
            (550, "5.1.1"),
            (550, "5.7.1"),
            (252, "2.5.2"),
            (250, "2.0.0"),
        ]);
    }
    // And a whole mail at the end, DATA included (RFC 2920 allows the
    // message itself only after the 354).
    batch.push_str("MAIL FROM:<reporter@example.org>\r\nRCPT TO:<acme@desk.test>\r\nDATA\r\n");
    expected.extend([(250, "2.1.0"), (250, "2.1.5"), (354, "")]);
    client.send_raw(batch.as_bytes()).expect("send batch");
    for (i, (code, enhanced)) in expected.iter().enumerate() {
        let reply = client.reply();
        assert_eq!(reply.code, *code, "reply {i}: {reply}");
        if !enhanced.is_empty() {
            assert_eq!(reply.enhanced(), *enhanced, "reply {i}: {reply}");
        }
    }
    client
        .send_raw(&dot_stuff(&simple_message(
            "piped",
            "piped@example.org",
            "x",
        )))
        .expect("send data");
    let reply = client.reply();
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "acme"), vec!["piped"]);
}

// ---------------------------------------------------------------------------
// the API
// ---------------------------------------------------------------------------

#[test]
fn api_requires_a_token() {
    let server = TestServer::start();
    let no_token = common::http_request(server.api_addr, "GET", "/api/v4/user", &[], b"");
    let message = no_token.assert_json_error(401);
    assert_eq!(message, "401 Unauthorized");
    let wrong = common::http_request(
        server.api_addr,
        "GET",
        "/api/v4/projects",
        &[("PRIVATE-TOKEN", "not-the-token")],
        b"",
    );
    wrong.assert_json_error(401);
    // Unknown routes are not revealed before authentication either.
    common::http_request(server.api_addr, "GET", "/api/v4/nope", &[], b"").assert_json_error(401);

    let user = server.get_json("/api/v4/user");
    assert_eq!(user["is_admin"], true, "{user}");
    assert_eq!(user["bot"], false, "{user}");
    let bearer = format!("Bearer {}", server.token);
    let by_bearer = common::http_request(
        server.api_addr,
        "GET",
        "/api/v4/user",
        &[("Authorization", bearer.as_str())],
        b"",
    );
    assert_eq!(by_bearer.status, 200, "{by_bearer}");
    assert_eq!(by_bearer.json()["id"], user["id"]);

    // The health check needs no token.
    let health = common::http_request(server.api_addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{health}");
}

#[test]
fn api_errors_are_gitlab_shaped_json() {
    let server = TestServer::start_with("api.max_body_size = 1024");
    server.get("/api/v4/nope").assert_json_error(404);
    server.get("/not/api/at/all").assert_json_error(404);
    let message = server
        .get("/api/v4/projects/missing")
        .assert_json_error(404);
    assert_eq!(message, "404 Project Not Found");
    server.get("/api/v4/projects/424242").assert_json_error(404);
    server.create_project("acme");
    let message = server
        .get("/api/v4/projects/acme/issues/1")
        .assert_json_error(404);
    assert_eq!(message, "404 Issue Not Found");
    server
        .get("/api/v4/projects/acme/issues/not-a-number")
        .assert_json_error(404);
    server
        .request("DELETE", "/api/v4/projects/acme", &[], b"")
        .assert_json_error(405);

    // Malformed JSON.
    let bad = server.request(
        "POST",
        "/api/v4/projects",
        &[("Content-Type", "application/json")],
        b"{\"name\": \"x\", ",
    );
    bad.assert_json_error(400);
    // A JSON value that is not an object; a parameter of the wrong type.
    server
        .post_json("/api/v4/projects", &json!(["acme"]))
        .assert_json_error(400);
    server
        .post_json("/api/v4/projects", &json!({"name": {"x": 1}}))
        .assert_json_error(400);
    server
        .post_json("/api/v4/projects", &json!({}))
        .assert_json_error(400);
    // A taken path and a reserved one.
    let taken = server
        .post_json("/api/v4/projects", &json!({"name": "acme", "path": "acme"}))
        .assert_json_error(400);
    assert!(taken.get("path").is_some(), "{taken}");
    server
        .post_json(
            "/api/v4/projects",
            &json!({"name": "pm", "path": "postmaster"}),
        )
        .assert_json_error(400);
    server
        .post_json("/api/v4/projects", &json!({"name": "bad", "path": "../x"}))
        .assert_json_error(400);

    // Too large.
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(64 * 1024));
    let response = server.request(
        "POST",
        "/api/v4/projects",
        &[("Content-Type", "application/json")],
        huge.as_bytes(),
    );
    response.assert_json_error(413);

    // Form bodies work like JSON (python-gitlab sends JSON, curl -d forms).
    let form = server.request(
        "POST",
        "/api/v4/projects",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=Form+Project&path=formproj",
    );
    assert_eq!(form.status, 201, "{form}");
    assert_eq!(form.json()["name"], "Form Project");

    // The server is still fine.
    let health = common::http_request(server.api_addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{health}");
}

#[test]
fn project_is_found_by_id_path_and_url_encoded_full_path() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    let id = project["id"].as_u64().expect("id");
    for key in [id.to_string(), "acme".into(), "desk%2Facme".into()] {
        let found = server.get_json(&format!("/api/v4/projects/{key}"));
        assert_eq!(found["id"], id, "{key}: {found}");
        assert_eq!(found["service_desk_address"], "acme@desk.test");
    }
    let list = server.get_json("/api/v4/projects");
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|p| p["path"] == "acme"),
        "{list}"
    );
}

#[test]
fn issue_list_paginates_with_gitlab_headers_and_filters_by_state() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    let id = project["id"].as_u64().expect("id");
    for n in 1..=5 {
        deliver(&server, "acme@desk.test", &format!("ticket {n}"));
    }

    let base = format!("/api/v4/projects/{id}/issues");
    let mut seen = BTreeSet::new();
    let mut page = 1;
    loop {
        let response = server.get(&format!("{base}?per_page=2&page={page}"));
        assert_eq!(response.status, 200, "{response}");
        assert_eq!(response.header("x-total"), Some("5"));
        assert_eq!(response.header("x-total-pages"), Some("3"));
        assert_eq!(response.header("x-per-page"), Some("2"));
        assert_eq!(response.header("x-page"), Some(page.to_string().as_str()));
        let items = response.json();
        let items = items.as_array().expect("array");
        let link = response.header("link").unwrap_or("").to_string();
        if page < 3 {
            assert_eq!(items.len(), 2, "page {page}");
            assert_eq!(
                response.header("x-next-page"),
                Some((page + 1).to_string().as_str())
            );
            let next = format!(
                "<{PLACEHOLDER_PUBLIC_URL}{base}?page={}&per_page=2>; rel=\"next\"",
                page + 1
            );
            assert!(link.contains(&next), "page {page} Link: {link}");
        } else {
            assert_eq!(items.len(), 1, "last page");
            assert_eq!(response.header("x-next-page"), Some(""));
            assert!(!link.contains("rel=\"next\""), "last page Link: {link}");
            assert!(link.contains("rel=\"prev\""), "last page Link: {link}");
        }
        for item in items {
            assert!(
                seen.insert(item["iid"].as_u64().expect("iid")),
                "iid twice: {item}"
            );
        }
        if page == 3 {
            break;
        }
        page += 1;
    }
    assert_eq!(seen, (1..=5).collect::<BTreeSet<u64>>());

    // Newest first, as GitLab.
    let first = server.get_json(&format!("{base}?per_page=1"));
    assert_eq!(first[0]["iid"], 5, "{first}");

    let opened = server.get(&format!("{base}?state=opened"));
    assert_eq!(opened.header("x-total"), Some("5"), "{opened}");
    let closed = server.get(&format!("{base}?state=closed"));
    assert_eq!(closed.status, 200, "{closed}");
    assert_eq!(closed.header("x-total"), Some("0"));
    assert_eq!(closed.json(), json!([]));
    let all = server.get(&format!("{base}?state=all&per_page=100"));
    assert_eq!(all.json().as_array().map(Vec::len), Some(5));
    server
        .get(&format!("{base}?state=bogus"))
        .assert_json_error(400);
    server
        .get(&format!("{base}?page=abc"))
        .assert_json_error(400);
    // Filters survive into the links.
    let filtered = server.get(&format!("{base}?state=opened&per_page=2"));
    let link = filtered.header("link").unwrap_or("");
    assert!(
        link.contains("state=opened&page=2&per_page=2>; rel=\"next\""),
        "{link}"
    );
}

// ---------------------------------------------------------------------------
// more limits
// ---------------------------------------------------------------------------

#[test]
fn message_of_exactly_the_maximum_size_is_accepted_and_one_byte_more_is_not() {
    let server = TestServer::start_with("smtp.max_message_size = 2048");
    server.create_project("acme");
    let sized = |subject: &str, size: usize| {
        let mut message = simple_message(subject, &format!("{subject}@example.org"), "");
        let filler = size - message.len();
        message.truncate(message.len() - 2);
        message.extend(std::iter::repeat_n(b'y', filler));
        message.extend_from_slice(b"\r\n");
        assert_eq!(message.len(), size);
        message
    };
    let mut client = ehlo(&server);
    let reply = client.send_mail("a@example.org", &["acme@desk.test"], &sized("exact", 2048));
    assert!(reply.is(250, "2.0.0"), "2,048-byte message: {reply}");
    for size in [2049, 2050, 2051] {
        let subject = format!("over{size}");
        let reply = client.send_mail("a@example.org", &["acme@desk.test"], &sized(&subject, size));
        assert!(
            reply.is(552, "5.3.4"),
            "{size}-byte message with max_message_size = 2048: {reply}"
        );
    }
    assert_eq!(titles(&server, "acme"), vec!["exact"]);
}

#[test]
fn connections_beyond_the_limit_get_421() {
    let server = TestServer::start_with("smtp.max_connections = 2");
    let first = server.smtp();
    let second = server.smtp();
    let (mut third, greeting) = SmtpClient::connect(server.smtp_addr);
    assert!(greeting.is(421, "4.3.2"), "third connection: {greeting}");
    assert!(third.read_until_closed().is_empty());
    drop(first);
    drop(second);
    // Once a session has ended its slot is free again; the server notices
    // the closed sockets on its own schedule, so retry until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (mut client, greeting) = SmtpClient::connect(server.smtp_addr);
        if greeting.code == 220 {
            client.expect("EHLO client.example.org", 250);
            break;
        }
        assert!(greeting.is(421, "4.3.2"), "{greeting}");
        assert!(
            Instant::now() < deadline,
            "slots were not released after the sessions closed"
        );
        std::thread::yield_now();
    }
}

#[test]
fn stalled_data_times_out_with_421() {
    let server = TestServer::start_with("smtp.data_timeout_secs = 1");
    server.create_project("acme");
    let mut client = ehlo(&server);
    client.expect("MAIL FROM:<reporter@example.org>", 250);
    client.expect("RCPT TO:<acme@desk.test>", 250);
    client.expect("DATA", 354);
    client
        .send_raw(b"Subject: stalled\r\n\r\nhalf a mess")
        .expect("send");
    let reply = client.reply();
    assert!(reply.is(421, "4.4.2"), "{reply}");
    assert!(client.read_until_closed().is_empty());
    assert!(server.all_issues("acme").is_empty());
}

#[test]
fn mime_bomb_is_refused_and_the_session_goes_on() {
    let server = TestServer::start_with("smtp.max_mime_parts = 5");
    server.create_project("acme");
    let mut message = String::from(
        "From: r@example.org\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
    );
    for n in 0..10 {
        message.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n"
        ));
    }
    message.push_str("--b--\r\n");
    let mut client = ehlo(&server);
    let reply = client.send_mail("r@example.org", &["acme@desk.test"], message.as_bytes());
    assert!(reply.is(554, "5.6.0"), "{reply}");
    let reply = client.send_mail(
        "r@example.org",
        &["acme@desk.test"],
        &simple_message("fine", "fine@example.org", "x"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(titles(&server, "acme"), vec!["fine"]);
}

// ---------------------------------------------------------------------------
// what a message becomes
// ---------------------------------------------------------------------------

#[test]
fn html_only_message_becomes_readable_text() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    let reply = client.send_mail(
        "r@example.org",
        &["acme@desk.test"],
        b"From: r@example.org\r\n\
          Subject: html only\r\n\
          MIME-Version: 1.0\r\n\
          Content-Type: text/html; charset=utf-8\r\n\
          \r\n\
          <html><head><style>p { color: red; }</style></head>\r\n\
          <body><p>Hello <b>world</b>,</p><p>the &amp; printer is broken.</p></body></html>\r\n",
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let issue = server.issue("acme", 1);
    let description = issue["description"].as_str().expect("description");
    assert!(description.contains("Hello world"), "{description:?}");
    assert!(
        description.contains("the & printer is broken."),
        "{description:?}"
    );
    assert!(!description.contains('<'), "markup left: {description:?}");
}

#[test]
fn missing_subject_and_smtputf8_headers() {
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    let reply = client.send_mail(
        "r@example.org",
        &["acme@desk.test"],
        b"From: r@example.org\r\nMessage-ID: <nosub@example.org>\r\n\r\nno subject here\r\n",
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    assert_eq!(server.issue("acme", 1)["title"], "(no subject)");

    // Raw UTF-8 in headers and envelope (RFC 6531/6532).
    let reply = client.cmd("MAIL FROM:<jörg@exämple.org> SMTPUTF8 BODY=8BITMIME");
    assert!(reply.is(250, "2.1.0"), "{reply}");
    client.expect("RCPT TO:<acme@desk.test>", 250);
    client.expect("DATA", 354);
    client
        .send_raw(
            "From: Jörg <jörg@example.org>\r\n\
             Subject: Grüße aus Köln\r\n\
             Message-ID: <utf8@example.org>\r\n\
             \r\n\
             Straße\r\n.\r\n"
                .as_bytes(),
        )
        .expect("send");
    let reply = client.reply();
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let issue = server.issue("acme", 2);
    assert_eq!(issue["title"], "Grüße aus Köln");
    assert_eq!(issue["description"], "Straße");
    assert_eq!(issue["service_desk_reply_to"], "jörg@example.org");
}

#[test]
fn encoded_crlf_in_the_subject_cannot_inject_headers() {
    let server = TestServer::start();
    server.create_project("acme");
    let evil = base64(b"Invoice\r\nBcc: victim@example.net\r\n\r\nbody", false);
    let message = format!(
        "From: r@example.org\r\nSubject: =?UTF-8?B?{evil}?=\r\nMessage-ID: <inj@example.org>\r\n\r\nx\r\n"
    );
    let mut client = ehlo(&server);
    let reply = client.send_mail("r@example.org", &["acme@desk.test"], message.as_bytes());
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let title = server.issue("acme", 1)["title"]
        .as_str()
        .expect("title")
        .to_string();
    assert!(
        !title.chars().any(char::is_control),
        "control characters in the title: {title:?}"
    );
    assert!(title.starts_with("Invoice"), "{title:?}");
}

#[test]
fn a_session_that_keeps_delivering_is_not_cut_off_by_refused_recipients() {
    // A refused recipient is a well-formed command with a policy answer,
    // not client misbehaviour: a relay forwarding a list with one stale
    // address per message must be able to keep its session (default limit:
    // 10 bad commands).
    let server = TestServer::start();
    server.create_project("acme");
    let mut client = ehlo(&server);
    for n in 1..=12 {
        client.expect("MAIL FROM:<list@example.org>", 250);
        let reply = client.cmd(&format!("RCPT TO:<left-the-company-{n}@desk.test>"));
        assert!(reply.is(550, "5.1.1"), "message {n}: {reply}");
        let reply = client.cmd("RCPT TO:<acme@desk.test>");
        assert!(
            reply.is(250, "2.1.5"),
            "message {n}: valid recipient after a refused one got {reply}"
        );
        client.expect("DATA", 354);
        client
            .send_raw(&dot_stuff(&simple_message(
                &format!("list {n}"),
                &format!("list-{n}@example.org"),
                "x",
            )))
            .expect("send");
        let reply = client.reply();
        assert!(reply.is(250, "2.0.0"), "message {n}: {reply}");
    }
    assert_eq!(server.all_issues("acme").len(), 12);
}
