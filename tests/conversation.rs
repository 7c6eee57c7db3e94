//! The two-way email conversation (issue 3), end to end: the real `mxdesk`
//! process, real SMTP in (the project's test client and Python's smtplib),
//! and a real SMTP server as the outbound relay (`tests/sink.py`, aiosmtpd)
//! that stores what mxdesk sends so the tests can read it back.
//!
//! "Nothing more arrives" is never a fixed sleep: [`flush_outbox`] posts two
//! public notes one after the other and waits for each at the sink. The
//! outbox worker takes due mail oldest first and finishes a whole batch
//! before it looks again, so once the second note has arrived every mail
//! queued before the first one has been attempted.

mod common;
#[path = "common/sink.rs"]
mod sink;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{cert_path, http_request, Reply, ServerOptions, TestServer};
use serde_json::{json, Value};
use sink::{free_port, python, Sink, SinkMail};

/// Longest wait for a mail or a note: generous, the machine may be busy.
const WAIT: Duration = Duration::from_secs(30);
const REPORTER: &str = "reporter@example.org";
const PROJECT_ADDRESS: &str = "acme@desk.test";
/// What every reply fixture says above the quoted history.
const NEW_TEXT: &str =
    "Thanks, the printer works again.\nOne more question: can I also order toner through you?";
/// With `retry_base_secs = 1` and `retry_max_secs = 2` a deferred mail is
/// due again within 2 s; this leaves room for a busy machine.
const RETRY_BOUND: Duration = Duration::from_secs(15);
/// In the body of the notes [`flush_outbox`] posts.
const BARRIER: &str = "outbox-barrier";

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// A server whose outbound mail goes to `sink`, retrying fast, with the API
/// on a known port so that `public_url` (and every unsubscribe link) works.
fn desk(sink: &Sink, extra: &str) -> TestServer {
    desk_with(&sink.relay_toml(), extra)
}

fn desk_with(route_toml: &str, extra: &str) -> TestServer {
    let server = TestServer::start_opts(ServerOptions {
        extra_toml: format!(
            "{route_toml}\n\
             outbound.from_name = \"Acme Support\"\n\
             outbound.retry_base_secs = 1\n\
             outbound.retry_max_secs = 2\n\
             {extra}"
        ),
        real_public_url: true,
    });
    server.create_project("acme");
    server
}

/// One message over a fresh plaintext session; asserts `250` to the data.
fn send(server: &TestServer, from: &str, rcpts: &[&str], data: &[u8]) -> Reply {
    let mut client = server.smtp();
    client.expect("EHLO client.example.org", 250);
    let reply = client.send_mail(from, rcpts, data);
    assert_eq!(reply.code, 250, "end of data: {reply}");
    let _ = client.try_cmd("QUIT");
    reply
}

/// One message through Python's smtplib over STARTTLS (verifying the dev
/// CA); `from = ""` sends the null sender `<>`.
fn send_smtplib(server: &TestServer, from: &str, rcpt: &str, data: &[u8]) {
    const SCRIPT: &str = r#"
import smtplib, ssl, sys
host, port, ca, sender, rcpt = sys.argv[1:]
data = sys.stdin.buffer.read()
context = ssl.create_default_context(cafile=ca)
with smtplib.SMTP(host, int(port), local_hostname="client.example.org", timeout=30) as smtp:
    smtp.ehlo()
    smtp.starttls(context=context)
    smtp.ehlo()
    refused = smtp.sendmail(sender, [rcpt], data)
    assert not refused, refused
print("sent")
"#;
    use std::io::Write;
    let mut child = std::process::Command::new(python())
        .args(["-c", SCRIPT, "127.0.0.1"])
        .arg(server.smtp_addr.port().to_string())
        .arg(cert_path("ca.pem"))
        .arg(from)
        .arg(rcpt)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python smtplib");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write message to python");
    let output = child.wait_with_output().expect("wait for python");
    assert!(
        output.status.success(),
        "smtplib failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An opening mail from the reporter to the project address.
fn opening_mail(subject: &str, message_id: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "From: Rita Reporter <{REPORTER}>\r\n\
         To: Acme Support <{PROJECT_ADDRESS}>\r\n\
         {extra_headers}\
         Subject: {subject}\r\n\
         Message-ID: <{message_id}>\r\n\
         Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         The printer in room 4 is on fire.\r\n"
    )
    .into_bytes()
}

/// A plain-text reply.
fn reply_mail(from: &str, to: &str, subject: &str, message_id: &str, headers: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\n\
         To: {to}\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{message_id}>\r\n\
         {headers}\
         Date: Mon, 02 Mar 2026 12:00:00 +0100\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         It is still on fire.\r\n"
    )
    .into_bytes()
}

/// A reply fixture from `tests/fixtures/replies/` with its placeholders
/// filled and CRLF line endings.
fn fixture(name: &str, to: &str, subject: &str, message_id: &str, in_reply_to: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/replies")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    text.replace("{{TO}}", to)
        .replace("{{SUBJECT}}", subject)
        .replace("{{MESSAGE_ID}}", message_id)
        .replace("{{IN_REPLY_TO}}", in_reply_to)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn issue_path(iid: u64) -> String {
    format!("/api/v4/projects/acme/issues/{iid}")
}

/// The notes of ticket `iid`, oldest first (GitLab lists newest first by default).
fn notes(server: &TestServer, iid: u64) -> Vec<Value> {
    let notes = server.get_json(&format!("{}/notes?per_page=100&sort=asc", issue_path(iid)));
    notes.as_array().expect("notes are an array").clone()
}

/// Polls the notes of ticket `iid` until `done` holds.
fn wait_notes(
    server: &TestServer,
    iid: u64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_notes_for(server, iid, WAIT, what, done)
}

fn wait_notes_for(
    server: &TestServer,
    iid: u64,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let notes = notes(server, iid);
        if done(&notes) {
            return notes;
        }
        assert!(
            Instant::now() < deadline,
            "waited {timeout:?} for {what} on #{iid}; notes: {}",
            serde_json::to_string_pretty(&notes).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the server has logged a failed (deferred) delivery attempt.
fn wait_for_deferral(server: &TestServer) {
    let deadline = Instant::now() + WAIT;
    while !server.log_tail(400).contains("mail deferred") {
        assert!(
            Instant::now() < deadline,
            "no failed delivery attempt logged:\n{}",
            server.log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Posts a note; asserts `201`.
fn post_note(server: &TestServer, iid: u64, body: &str, internal: bool) -> Value {
    let response = server.post_json(
        &format!("{}/notes", issue_path(iid)),
        &json!({ "body": body, "internal": internal }),
    );
    assert_eq!(response.status, 201, "post note {body:?}: {response}");
    response.json()
}

fn sent_to(note: &Value) -> Vec<String> {
    note["sent_to"]
        .as_array()
        .unwrap_or_else(|| panic!("note has no sent_to array: {note}"))
        .iter()
        .map(|v| v.as_str().expect("sent_to entries are strings").to_string())
        .collect()
}

fn participant<'a>(issue: &'a Value, email: &str) -> &'a Value {
    issue["email_participants"]
        .as_array()
        .expect("email_participants")
        .iter()
        .find(|p| p["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not a participant: {issue}"))
}

/// Waits until a mail whose body contains `text` reached each of `rcpts`;
/// returns those mails.
fn wait_note_mails(sink: &Sink, text: &str, rcpts: &[&str]) -> Vec<SinkMail> {
    let arrived = |mails: &[SinkMail]| {
        rcpts
            .iter()
            .all(|r| mails.iter().any(|m| m.is_for(r) && m.text.contains(text)))
    };
    let mails = sink.wait_until(WAIT, &format!("{text:?} to {rcpts:?}"), arrived);
    mails
        .into_iter()
        .filter(|m| m.text.contains(text))
        .collect()
}

/// Returns once every mail queued so far has been attempted (see the module
/// documentation). The barrier notes go to the ticket's participants and
/// carry [`BARRIER`]; [`real_mails`] leaves them out.
fn flush_outbox(server: &TestServer, sink: &Sink, iid: u64) {
    static N: AtomicUsize = AtomicUsize::new(0);
    for _ in 0..2 {
        let body = format!("{BARRIER} {}", N.fetch_add(1, Ordering::Relaxed));
        let note = post_note(server, iid, &body, false);
        let to = sent_to(&note);
        assert!(!to.is_empty(), "a barrier note needs a recipient: {note}");
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        wait_note_mails(sink, &body, &to);
    }
}

/// The sink's mails without the barrier notes.
fn real_mails(sink: &Sink) -> Vec<SinkMail> {
    sink.mails()
        .into_iter()
        .filter(|m| !m.text.contains(BARRIER))
        .collect()
}

fn thank_yous(mails: &[SinkMail]) -> Vec<&SinkMail> {
    mails
        .iter()
        .filter(|m| m.header("Auto-Submitted").as_deref() == Some("auto-replied"))
        .collect()
}

/// `reply+<32 hex>@desk.test` from the mail's Reply-To; asserts its form.
fn reply_address(mail: &SinkMail) -> String {
    assert_eq!(mail.reply_to.len(), 1, "Reply-To: {}", mail.summary());
    let address = mail.reply_to[0].1.clone();
    let token = address
        .strip_prefix("reply+")
        .and_then(|rest| rest.strip_suffix("@desk.test"))
        .unwrap_or_else(|| panic!("Reply-To is not a reply address: {address}"));
    assert!(
        token.len() == 32
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "reply token is not 32 lower-case hex digits: {address}"
    );
    address
}

/// Opens ticket #1 from the reporter and returns its thank-you.
fn open_first_ticket(server: &TestServer, sink: &Sink, extra_headers: &str) -> SinkMail {
    send(
        server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Printer on fire", "open-1@mail.example.org", extra_headers),
    );
    let mails = sink.wait_for(1, WAIT);
    assert_eq!(mails.len(), 1, "only the thank-you is sent");
    mails.into_iter().next().expect("one mail")
}

// ---------------------------------------------------------------------------
// 1. the thank-you
// ---------------------------------------------------------------------------

#[test]
fn thank_you_reaches_the_reporter_with_threading_and_reply_headers() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    let mail = open_first_ticket(&server, &sink, "");

    assert_eq!(
        mail.from,
        vec![(
            Some("Acme Support".to_string()),
            PROJECT_ADDRESS.to_string()
        )],
        "{}",
        mail.raw_header_section()
    );
    assert_eq!(
        mail.to.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>(),
        [REPORTER]
    );
    let reply = reply_address(&mail);
    assert_eq!(
        mail.mail_from, reply,
        "envelope sender is the reply address"
    );
    assert_eq!(mail.rcpt_tos, [REPORTER]);
    assert_eq!(
        mail.subject.as_deref(),
        Some("Re: Printer on fire [acme#1]")
    );
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(mail.in_reply_to, ["open-1@mail.example.org"]);
    assert!(
        mail.references
            .iter()
            .any(|r| r == "open-1@mail.example.org"),
        "References: {:?}",
        mail.references
    );
    let id = mail.message_id.clone().expect("Message-ID");
    assert!(id.ends_with("@desk.test"), "Message-ID {id}");

    let token = reply
        .strip_prefix("reply+")
        .and_then(|r| r.strip_suffix("@desk.test"))
        .expect("token");
    assert_eq!(
        mail.header("List-Unsubscribe"),
        Some(format!(
            "<{}/-/sent_notifications/{token}/unsubscribe>",
            server.public_url
        ))
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(mail.text.contains("#1"), "text: {}", mail.text);

    // The reply address leads back to the ticket: GET shows the page.
    let page = http_request(
        server.api_addr,
        "GET",
        &format!("/-/sent_notifications/{token}/unsubscribe"),
        &[],
        b"",
    );
    assert_eq!(page.status, 200, "{page}");
    assert!(page.text().contains("Printer on fire"), "{page}");
    let issue = server.issue("acme", 1);
    assert_eq!(participant(&issue, REPORTER)["unsubscribed"], false);
}

// ---------------------------------------------------------------------------
// 2. public and internal notes, CC participants
// ---------------------------------------------------------------------------

#[test]
fn public_notes_reach_reporter_and_cc_and_internal_notes_do_not() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    let thank_you = open_first_ticket(
        &server,
        &sink,
        "Cc: Bob Colleague <bob@example.com>, acme@desk.test\r\n",
    );
    assert_eq!(
        thank_you.rcpt_tos,
        [REPORTER],
        "the thank-you is the reporter's"
    );

    let issue = server.issue("acme", 1);
    let emails: Vec<&str> = issue["email_participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["email"].as_str().expect("email"))
        .collect();
    assert_eq!(emails, [REPORTER, "bob@example.com"], "{issue}");

    let note = post_note(&server, 1, "We have sent a technician.", false);
    let mut to = sent_to(&note);
    to.sort();
    assert_eq!(to, ["bob@example.com", REPORTER], "{note}");
    let mails = wait_note_mails(
        &sink,
        "We have sent a technician.",
        &[REPORTER, "bob@example.com"],
    );
    assert_eq!(mails.len(), 2, "one mail per participant");
    for mail in &mails {
        let rcpt = mail.rcpt_tos[0].clone();
        assert_eq!(mail.rcpt_tos.len(), 1);
        assert_eq!(mail.to[0].1, rcpt);
        assert_eq!(
            mail.subject.as_deref(),
            Some("Re: Printer on fire [acme#1]")
        );
        assert_eq!(mail.mail_from, reply_address(mail));
        assert_eq!(
            mail.header("Auto-Submitted"),
            None,
            "a note is not automatic"
        );
        assert!(
            mail.references
                .iter()
                .any(|r| r == "open-1@mail.example.org"),
            "References: {:?}",
            mail.references
        );
        assert!(!mail.in_reply_to.is_empty(), "In-Reply-To missing");
    }
    assert_ne!(
        mails[0].mail_from, mails[1].mail_from,
        "each participant has its own reply address"
    );

    let internal = post_note(&server, 1, "Internal: the printer is a lost cause.", true);
    assert_eq!(sent_to(&internal), Vec::<String>::new(), "{internal}");
    assert_eq!(internal["internal"], true);
    post_note(&server, 1, "The technician is on the way.", false);
    wait_note_mails(
        &sink,
        "The technician is on the way.",
        &[REPORTER, "bob@example.com"],
    );
    flush_outbox(&server, &sink, 1);

    let mails = real_mails(&sink);
    let summary: Vec<String> = mails.iter().map(SinkMail::summary).collect();
    assert!(
        !mails.iter().any(|m| m.text.contains("lost cause")),
        "the internal note was mailed:\n{}",
        summary.join("\n")
    );
    assert_eq!(
        mails.len(),
        5,
        "thank-you + 2 × 2 public notes:\n{}",
        summary.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 3. trimmed replies on the right ticket
// ---------------------------------------------------------------------------

#[test]
fn gmail_outlook_and_apple_mail_replies_become_trimmed_comments_on_the_right_ticket() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Printer on fire", "open-1@mail.example.org", ""),
    );
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Scanner jammed", "open-2@mail.example.org", ""),
    );
    let mails = sink.wait_for(2, WAIT);
    let thank_you = |n: u64| {
        mails
            .iter()
            .find(|m| {
                m.subject
                    .as_deref()
                    .is_some_and(|s| s.ends_with(&format!("[acme#{n}]")))
            })
            .unwrap_or_else(|| panic!("no thank-you for #{n}"))
    };
    let (first, second) = (thank_you(1), thank_you(2));
    let (reply_1, reply_2) = (reply_address(first), reply_address(second));
    assert_ne!(reply_1, reply_2, "each ticket has its own reply address");
    let (id_1, id_2) = (
        first.message_id.clone().expect("id"),
        second.message_id.clone().expect("id"),
    );

    // (fixture, ticket, reply address, thank-you id, subject)
    let cases = [
        (
            "gmail.eml",
            1,
            &reply_1,
            &id_1,
            "Re: Printer on fire [acme#1]",
        ),
        (
            "outlook.eml",
            2,
            &reply_2,
            &id_2,
            "Re: Scanner jammed [acme#2]",
        ),
        (
            "outlook_original_message.eml",
            1,
            &reply_1,
            &id_1,
            "Re: Printer on fire [acme#1]",
        ),
        (
            "apple_mail.eml",
            2,
            &reply_2,
            &id_2,
            "Re: Scanner jammed [acme#2]",
        ),
    ];
    let mut failures = Vec::new();
    for (n, (name, iid, to, in_reply_to, subject)) in cases.iter().enumerate() {
        let before = notes(&server, *iid).len();
        let message_id = format!("reply-{n}@mail.example.org");
        send(
            &server,
            REPORTER,
            &[to.as_str()],
            &fixture(name, to, subject, &message_id, in_reply_to),
        );
        let notes = notes(&server, *iid);
        assert_eq!(notes.len(), before + 1, "{name}: one new note on #{iid}");
        let note = notes.last().expect("note");
        assert_eq!(note["system"], false, "{name}: {note}");
        assert_eq!(note["internal"], false, "{name}: {note}");
        assert_eq!(note["threaded_by"], "reply_token", "{name}: {note}");
        assert_eq!(note["from_email"], REPORTER, "{name}: {note}");
        assert_eq!(note["sender_mismatch"], false, "{name}: {note}");
        if note["body"] != NEW_TEXT {
            failures.push(format!(
                "{name}: expected {NEW_TEXT:?}\n  got {:?}",
                note["body"].as_str().unwrap_or_default()
            ));
        }
    }
    assert_eq!(
        server.all_issues("acme").len(),
        2,
        "no reply opened a ticket"
    );
    assert_eq!(notes(&server, 1).len(), 2);
    assert_eq!(notes(&server, 2).len(), 2);
    assert!(
        failures.is_empty(),
        "quoted history was not cut:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 4. threading without a reply address
// ---------------------------------------------------------------------------

#[test]
fn replies_to_the_project_address_thread_by_in_reply_to_references_and_subject() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    let thank_you = open_first_ticket(&server, &sink, "");
    let sent_id = thank_you.message_id.clone().expect("thank-you Message-ID");
    let reporter = format!("Rita Reporter <{REPORTER}>");

    let cases = [
        (
            "only In-Reply-To: the thank-you",
            reporter.as_str(),
            "Re: a subject without a reference",
            format!("In-Reply-To: <{sent_id}>\r\n"),
            "in_reply_to",
        ),
        (
            "only References: the thank-you",
            reporter.as_str(),
            "Re: another subject",
            format!("References: <unknown@elsewhere.example> <{sent_id}>\r\n"),
            "references",
        ),
        (
            "only In-Reply-To: the opening mail, from a colleague",
            "Carl Colleague <carl@example.com>",
            "Re: forwarded",
            "In-Reply-To: <open-1@mail.example.org>\r\n".to_string(),
            "in_reply_to",
        ),
        (
            "only a subject reference, from a participant",
            reporter.as_str(),
            "Re: Printer on fire [acme#1]",
            String::new(),
            "subject",
        ),
    ];
    for (n, (what, from, subject, headers, rule)) in cases.iter().enumerate() {
        let before = notes(&server, 1).len();
        let sender = from
            .rsplit_once('<')
            .map(|(_, a)| a.trim_end_matches('>'))
            .expect("address");
        send(
            &server,
            sender,
            &[PROJECT_ADDRESS],
            &reply_mail(
                from,
                PROJECT_ADDRESS,
                subject,
                &format!("thread-{n}@mail.example.org"),
                headers,
            ),
        );
        let notes = notes(&server, 1);
        assert_eq!(notes.len(), before + 1, "{what}: not threaded to #1");
        let note = notes.last().expect("note");
        assert_eq!(note["threaded_by"], *rule, "{what}: {note}");
        assert_eq!(note["body"], "It is still on fire.", "{what}: {note}");
        assert_eq!(
            server.all_issues("acme").len(),
            1,
            "{what}: opened a ticket"
        );
    }

    // The same subject reference from a stranger opens a new ticket.
    let before = notes(&server, 1).len();
    send(
        &server,
        "mallory@example.net",
        &[PROJECT_ADDRESS],
        &reply_mail(
            "Mallory <mallory@example.net>",
            PROJECT_ADDRESS,
            "Re: Printer on fire [acme#1]",
            "stranger@mail.example.net",
            "",
        ),
    );
    let issues = server.all_issues("acme");
    assert_eq!(
        issues.len(),
        2,
        "a stranger's subject reference opens a ticket"
    );
    let new = server.issue("acme", 2);
    assert_eq!(new["title"], "Re: Printer on fire [acme#1]", "{new}");
    assert_eq!(notes(&server, 1).len(), before, "nothing was added to #1");
}

// ---------------------------------------------------------------------------
// 5. reopening, and auto-replies that must not
// ---------------------------------------------------------------------------

fn close(server: &TestServer, iid: u64) {
    let response = server.request(
        "PUT",
        &issue_path(iid),
        &[("Content-Type", "application/json")],
        json!({ "state_event": "close" }).to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "close: {response}");
    assert_eq!(response.json()["state"], "closed", "{response}");
}

#[test]
fn reply_reopens_a_closed_ticket_but_an_out_of_office_does_not() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    let thank_you = open_first_ticket(&server, &sink, "");
    let reply_to = reply_address(&thank_you);
    let sent_id = thank_you.message_id.clone().expect("id");

    close(&server, 1);
    send(
        &server,
        REPORTER,
        &[&reply_to],
        &reply_mail(
            &format!("Rita Reporter <{REPORTER}>"),
            &reply_to,
            "Re: Printer on fire [acme#1]",
            "reopen@mail.example.org",
            &format!("In-Reply-To: <{sent_id}>\r\n"),
        ),
    );
    let issue = server.issue("acme", 1);
    assert_eq!(issue["state"], "opened", "the reply reopens: {issue}");
    let after_reopen = notes(&server, 1);
    let last = after_reopen.last().expect("notes");
    assert_eq!(last["system"], true, "{last}");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.contains("reopened") && b.contains(REPORTER)),
        "{last}"
    );
    assert!(
        after_reopen
            .iter()
            .any(|n| n["body"] == "It is still on fire." && n["system"] == false),
        "the reply is a comment"
    );

    close(&server, 1);
    flush_outbox(&server, &sink, 1);
    let mails_before = real_mails(&sink).len();
    let notes_before = notes(&server, 1).len();
    let out_of_office = format!(
        "From: Rita Reporter <{REPORTER}>\r\n\
         To: {reply_to}\r\n\
         Subject: Automatic reply: Re: Printer on fire [acme#1]\r\n\
         Message-ID: <ooo-1@mail.example.org>\r\n\
         In-Reply-To: <{sent_id}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         X-Auto-Response-Suppress: All\r\n\
         Date: Mon, 02 Mar 2026 13:00:00 +0100\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         I am out of the office until Monday.\r\n"
    );
    send(&server, REPORTER, &[&reply_to], out_of_office.as_bytes());

    let issue = server.issue("acme", 1);
    assert_eq!(
        issue["state"], "closed",
        "an auto-reply must not reopen: {issue}"
    );
    let notes_now = notes(&server, 1);
    assert_eq!(notes_now.len(), notes_before + 1, "stored as one note");
    let note = notes_now.last().expect("note");
    assert_eq!(
        note["system"], true,
        "an auto-reply is a system note: {note}"
    );
    assert!(
        !notes_now.iter().any(|n| n["system"] == false
            && n["body"]
                .as_str()
                .is_some_and(|b| b.contains("out of the office"))),
        "the auto-reply became a comment"
    );
    flush_outbox(&server, &sink, 1);
    let mails = real_mails(&sink);
    assert_eq!(
        mails.len(),
        mails_before,
        "the auto-reply triggered mail:\n{}",
        mails
            .iter()
            .map(SinkMail::summary)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(server.all_issues("acme").len(), 1);
}

// ---------------------------------------------------------------------------
// 6. unsubscribe
// ---------------------------------------------------------------------------

#[test]
fn one_click_unsubscribe_stops_mail_to_that_participant_only() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    open_first_ticket(&server, &sink, "Cc: bob@example.com\r\n");
    post_note(&server, 1, "First answer.", false);
    let mails = wait_note_mails(&sink, "First answer.", &[REPORTER, "bob@example.com"]);
    let bob_mail = mails
        .iter()
        .find(|m| m.is_for("bob@example.com"))
        .expect("bob's mail");
    let header = bob_mail
        .header("List-Unsubscribe")
        .expect("List-Unsubscribe");
    let url = header
        .strip_prefix('<')
        .and_then(|h| h.strip_suffix('>'))
        .unwrap_or_else(|| panic!("List-Unsubscribe is not <URL>: {header}"));
    let path = url
        .strip_prefix(&server.public_url)
        .unwrap_or_else(|| panic!("{url} does not start with {}", server.public_url));
    assert!(
        bob_mail.text.contains(url) || bob_mail.html.as_deref().is_some_and(|h| h.contains(url)),
        "the unsubscribe URL is in the body too"
    );

    // GET only shows a confirmation (link scanners follow GETs).
    let page = http_request(server.api_addr, "GET", path, &[], b"");
    assert_eq!(page.status, 200, "{page}");
    assert!(page.text().contains("<form"), "{page}");
    let issue = server.issue("acme", 1);
    assert_eq!(
        participant(&issue, "bob@example.com")["unsubscribed"],
        false
    );

    // RFC 8058 one-click POST, no credentials.
    let done = http_request(
        server.api_addr,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(done.status, 200, "{done}");
    let issue = server.issue("acme", 1);
    assert_eq!(participant(&issue, "bob@example.com")["unsubscribed"], true);
    assert_eq!(participant(&issue, REPORTER)["unsubscribed"], false);
    assert!(
        notes(&server, 1).iter().any(|n| n["system"] == true
            && n["body"]
                .as_str()
                .is_some_and(|b| b.contains("bob@example.com") && b.contains("unsubscribed"))),
        "a system note records the unsubscribe"
    );

    let note = post_note(&server, 1, "Second answer.", false);
    assert_eq!(sent_to(&note), [REPORTER], "{note}");
    wait_note_mails(&sink, "Second answer.", &[REPORTER]);
    flush_outbox(&server, &sink, 1);
    let to_bob: Vec<String> = sink
        .mails()
        .iter()
        .filter(|m| m.is_for("bob@example.com"))
        .map(SinkMail::summary)
        .collect();
    assert_eq!(
        to_bob.len(),
        1,
        "bob got mail after unsubscribing:\n{}",
        to_bob.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 7. the outbox survives a restart
// ---------------------------------------------------------------------------

#[test]
fn mail_queued_while_the_relay_is_down_is_delivered_after_a_restart() {
    let port = free_port();
    let mut server = desk_with(
        &format!("outbound.relay = \"127.0.0.1:{port}\""),
        "outbound.tls = \"none\"\noutbound.max_attempts = 30",
    );
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Printer on fire", "open-1@mail.example.org", ""),
    );
    // An attempt has failed: the mail is in the outbox, not sent.
    wait_for_deferral(&server);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exit: {status}");
    server.restart();

    let sink = Sink::start_on(port);
    let mails = sink.wait_for(1, WAIT);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_tos, [REPORTER]);
    assert_eq!(
        mail.subject.as_deref(),
        Some("Re: Printer on fire [acme#1]")
    );
    assert_eq!(mail.in_reply_to, ["open-1@mail.example.org"]);
    assert!(
        !notes(&server, 1).iter().any(|n| n["body"]
            .as_str()
            .is_some_and(|b| b.contains("could not deliver"))),
        "a temporary failure is no failure note"
    );
    flush_outbox(&server, &sink, 1);
    assert_eq!(thank_yous(&real_mails(&sink)).len(), 1, "sent exactly once");
}

// ---------------------------------------------------------------------------
// 8. bounces
// ---------------------------------------------------------------------------

fn delivery_status_notification(to: &str, failed: &str, original_id: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@example.net>\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn-1@mx.example.net>\r\n\
         Date: Mon, 02 Mar 2026 10:05:00 +0100\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"B0UNDARY.1772442300/mx.example.net\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --B0UNDARY.1772442300/mx.example.net\r\n\
         Content-Description: Notification\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This is the mail system at host mx.example.net.\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not\r\n\
         be delivered to one or more recipients.\r\n\
         \r\n\
         <{failed}>: host mx.example.net said: 550 5.1.1 User unknown\r\n\
         \r\n\
         --B0UNDARY.1772442300/mx.example.net\r\n\
         Content-Description: Delivery report\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         Arrival-Date: Mon,  2 Mar 2026 10:04:59 +0100 (CET)\r\n\
         \r\n\
         Final-Recipient: rfc822; {failed}\r\n\
         Original-Recipient: rfc822;{failed}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected:\r\n\
         \x20   User unknown in local recipient table\r\n\
         \r\n\
         --B0UNDARY.1772442300/mx.example.net\r\n\
         Content-Description: Undelivered Message Headers\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Acme Support <acme@desk.test>\r\n\
         To: {failed}\r\n\
         Subject: Re: Printer on fire [acme#1]\r\n\
         Message-ID: <{original_id}>\r\n\
         \r\n\
         --B0UNDARY.1772442300/mx.example.net--\r\n"
    )
    .into_bytes()
}

#[test]
fn a_bounce_marks_the_participant_and_stops_mail_to_it() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    open_first_ticket(&server, &sink, "Cc: Carol <carol@example.net>\r\n");
    post_note(&server, 1, "Carol, can you check the printer?", false);
    let mails = wait_note_mails(
        &sink,
        "Carol, can you check the printer?",
        &[REPORTER, "carol@example.net"],
    );
    let carol_mail = mails
        .iter()
        .find(|m| m.is_for("carol@example.net"))
        .expect("carol's mail");
    let bounce_to = carol_mail.mail_from.clone();
    assert_eq!(bounce_to, reply_address(carol_mail));
    let original_id = carol_mail.message_id.clone().expect("Message-ID");
    let notes_before = notes(&server, 1).len();

    send_smtplib(
        &server,
        "",
        &bounce_to,
        &delivery_status_notification(&bounce_to, "carol@example.net", &original_id),
    );

    let issue = server.issue("acme", 1);
    assert_eq!(
        participant(&issue, "carol@example.net")["bouncing"],
        true,
        "{issue}"
    );
    assert_eq!(participant(&issue, REPORTER)["bouncing"], false);
    assert_eq!(issue["state"], "opened");
    let notes_now = notes(&server, 1);
    assert_eq!(notes_now.len(), notes_before + 1, "one note for the bounce");
    let note = notes_now.last().expect("note");
    assert_eq!(note["system"], true, "{note}");
    assert!(
        note["body"]
            .as_str()
            .is_some_and(|b| b.contains("carol@example.net") && b.contains("bounced")),
        "{note}"
    );
    assert_eq!(
        server.all_issues("acme").len(),
        1,
        "a bounce opens no ticket"
    );

    let sent_before = sink.count();
    let note = post_note(&server, 1, "Anyone there?", false);
    assert_eq!(sent_to(&note), [REPORTER], "{note}");
    flush_outbox(&server, &sink, 1);
    let later: Vec<String> = sink.mails()[sent_before..]
        .iter()
        .filter(|m| m.is_for("carol@example.net"))
        .map(SinkMail::summary)
        .collect();
    assert!(
        later.is_empty(),
        "mail went to a bouncing address:\n{}",
        later.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 9. header injection
// ---------------------------------------------------------------------------

#[test]
fn crlf_in_subject_and_names_adds_no_header_to_the_thank_you() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    let response = server.request(
        "PUT",
        "/api/v4/projects/acme/service_desk",
        &[("Content-Type", "application/json")],
        json!({ "outgoing_name": "Acme\r\nBcc: evil3@x.com" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(response.status, 200, "{response}");

    let message = "From: =?UTF-8?Q?Eve=0D=0ABcc:_evil2@x.com?= <eve@example.org>\r\n\
                   To: acme@desk.test\r\n\
                   Subject: =?UTF-8?Q?Hi=0D=0ABcc:_evil@x.com?=\r\n\
                   Message-ID: <inject-1@example.org>\r\n\
                   Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n\
                   MIME-Version: 1.0\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\
                   \r\n\
                   hello\r\n";
    send(
        &server,
        "eve@example.org",
        &[PROJECT_ADDRESS],
        message.as_bytes(),
    );
    let mails = sink.wait_for(1, WAIT);
    let mail = &mails[0];
    let head = mail.raw_header_section();

    assert_eq!(mail.rcpt_tos, ["eve@example.org"], "{head}");
    assert!(
        mail.header("Bcc").is_none() && mail.header("Cc").is_none(),
        "an injected header:\n{head}"
    );
    for line in head.split("\r\n") {
        let field = line.split(':').next().unwrap_or("").trim();
        assert!(
            !field.eq_ignore_ascii_case("bcc"),
            "an injected header line {line:?}:\n{head}"
        );
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "bare CR/LF in {line:?}"
        );
    }
    let subjects = mail.header_all("Subject");
    assert_eq!(subjects.len(), 1, "{head}");
    let subject = mail.subject.clone().expect("subject");
    assert!(
        !subject.contains(['\r', '\n']) && subject.ends_with("[acme#1]"),
        "subject {subject:?}"
    );
    assert_eq!(mail.to.len(), 1, "To has one mailbox: {head}");
    assert_eq!(mail.to[0].1, "eve@example.org", "{head}");
    assert_eq!(mail.from.len(), 1, "From has one mailbox: {head}");
    assert_eq!(mail.from[0].1, PROJECT_ADDRESS, "{head}");

    let issue = server.issue("acme", 1);
    let title = issue["title"].as_str().expect("title");
    assert!(!title.contains(['\r', '\n']), "title {title:?}");
}

// ---------------------------------------------------------------------------
// 10. permanent failure
// ---------------------------------------------------------------------------

#[test]
fn a_5xx_from_the_relay_becomes_a_system_note() {
    let sink = Sink::start_rejecting();
    let server = desk(&sink, "outbound.tls = \"none\"");
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Printer on fire", "open-1@mail.example.org", ""),
    );
    let notes = wait_notes(&server, 1, "a delivery failure note", |notes| {
        notes.iter().any(|n| {
            n["system"] == true
                && n["body"].as_str().is_some_and(|b| {
                    b.starts_with(&format!("could not deliver mail to {REPORTER}"))
                })
        })
    });
    let note = notes
        .iter()
        .find(|n| {
            n["body"]
                .as_str()
                .is_some_and(|b| b.contains("could not deliver"))
        })
        .expect("note");
    assert!(
        note["body"].as_str().is_some_and(|b| b.contains("550")),
        "the note says what the relay answered: {note}"
    );
    assert_eq!(sink.count(), 0);
}

// ---------------------------------------------------------------------------
// 11. direct delivery and DKIM
// ---------------------------------------------------------------------------

/// A TXT "cache" holding the one DKIM key record, so verification needs no DNS.
struct DkimRecord(std::collections::HashMap<String, mail_auth::Txt>);

impl mail_auth::ResolverCache<String, mail_auth::Txt> for DkimRecord {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }
    fn remove<Q>(&self, _: &Q) -> Option<mail_auth::Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: String, _: mail_auth::Txt, _: Instant) {}
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Verifies the mail's DKIM signature against `public_key_b64` (the `p=`
/// of `s1._domainkey.desk.test`).
fn verify_dkim(raw: &[u8], public_key_b64: &str) -> Vec<String> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    let record = format!("v=DKIM1; k=rsa; p={public_key_b64}");
    let key = DomainKey::parse(record.as_bytes()).expect("DKIM key record");
    let cache = DkimRecord(
        [(
            "s1._domainkey.desk.test.".to_string(),
            mail_auth::Txt::from(key),
        )]
        .into_iter()
        .collect(),
    );
    let message = mail_auth::AuthenticatedMessage::parse(raw).expect("parse signed mail");
    let authenticator =
        mail_auth::MessageAuthenticator::new_cloudflare().expect("resolver (never queried)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime.block_on(
        authenticator.verify_dkim(mail_auth::Parameters::new(&message).with_txt_cache(&cache)),
    );
    results
        .iter()
        .map(|r| format!("{:?}", r.result()))
        .collect()
}

#[test]
fn without_a_relay_mail_goes_to_the_mx_dkim_signed() {
    let sink = Sink::start();
    let keys = tempfile::tempdir().expect("key dir");
    let key_path = keys.path().join("dkim.pem");
    let key = key_path.display().to_string();
    openssl(&["genrsa", "-out", &key, "2048"]);
    let public_pem = String::from_utf8(openssl(&["rsa", "-in", &key, "-pubout"])).expect("pem");
    let public_b64: String = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();

    // No `outbound.relay`: example.org's MX comes from the static table.
    let server = desk_with(
        &format!("outbound.static_mx = {{ \"example.org\" = \"{}\" }}", sink.addr),
        &format!("outbound.dkim = [{{ domain = \"desk.test\", selector = \"s1\", private_key = {key:?} }}]"),
    );
    let mail = open_first_ticket(&server, &sink, "");
    assert_eq!(mail.rcpt_tos, [REPORTER]);
    assert_eq!(mail.mail_from, reply_address(&mail));

    let signature = mail
        .header("DKIM-Signature")
        .unwrap_or_else(|| panic!("no DKIM-Signature:\n{}", mail.raw_header_section()));
    let tags: Vec<String> = signature
        .split(';')
        .map(|t| t.split_whitespace().collect::<String>())
        .collect();
    assert!(tags.iter().any(|t| t == "d=desk.test"), "{signature}");
    assert!(tags.iter().any(|t| t == "s=s1"), "{signature}");
    let results = verify_dkim(&mail.raw, &public_b64);
    assert_eq!(results, ["Pass"], "DKIM verification: {signature}");
}

// ---------------------------------------------------------------------------
// 12. the thank-you rate limit
// ---------------------------------------------------------------------------

#[test]
fn at_most_five_thank_yous_per_sender_and_hour() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    for n in 1..=7 {
        send(
            &server,
            REPORTER,
            &[PROJECT_ADDRESS],
            &opening_mail(
                &format!("Request {n}"),
                &format!("open-{n}@mail.example.org"),
                "",
            ),
        );
    }
    assert_eq!(
        server.all_issues("acme").len(),
        7,
        "every mail opens a ticket"
    );
    sink.wait_for(5, WAIT);
    flush_outbox(&server, &sink, 1);
    let mails = real_mails(&sink);
    let mut subjects: Vec<String> = thank_yous(&mails)
        .iter()
        .map(|m| m.subject.clone().unwrap_or_default())
        .collect();
    subjects.sort();
    let expected: Vec<String> = (1..=5)
        .map(|n| format!("Re: Request {n} [acme#{n}]"))
        .collect();
    assert_eq!(subjects, expected, "thank-yous for the first five only");
    assert_eq!(mails.len(), 5, "nothing else was sent");
}

// ---------------------------------------------------------------------------
// 13. loops
// ---------------------------------------------------------------------------

#[test]
fn mail_carrying_the_loop_header_or_our_own_message_creates_nothing() {
    let sink = Sink::start();
    let server = desk(&sink, "outbound.tls = \"none\"");
    let thank_you = open_first_ticket(&server, &sink, "");
    let notes_before = notes(&server, 1).len();

    let looped = "From: Someone <someone@example.com>\r\n\
                  To: acme@desk.test\r\n\
                  Subject: Loop me\r\n\
                  Message-ID: <loop-1@example.com>\r\n\
                  X-Mxdesk-Loop: desk.test\r\n\
                  Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n\
                  MIME-Version: 1.0\r\n\
                  Content-Type: text/plain; charset=utf-8\r\n\
                  \r\n\
                  ping\r\n";
    send(
        &server,
        "someone@example.com",
        &[PROJECT_ADDRESS],
        looped.as_bytes(),
    );
    assert_eq!(
        server.all_issues("acme").len(),
        1,
        "the looped mail opened a ticket"
    );

    // Our own thank-you, sent back to us by a misconfigured forwarder.
    send(
        &server,
        "forwarder@example.com",
        &[PROJECT_ADDRESS],
        &thank_you.raw,
    );
    assert_eq!(
        server.all_issues("acme").len(),
        1,
        "our own mail opened a ticket"
    );
    assert_eq!(
        notes(&server, 1).len(),
        notes_before,
        "our own mail became a note"
    );

    flush_outbox(&server, &sink, 1);
    let mails = real_mails(&sink);
    assert_eq!(
        mails.len(),
        1,
        "only the first thank-you was sent:\n{}",
        mails
            .iter()
            .map(SinkMail::summary)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------
// more of issue 3: give-up, automatic mail, sender mismatch, quick actions,
// templates
// ---------------------------------------------------------------------------

#[test]
fn a_relay_that_stays_down_gives_up_after_max_attempts_with_a_system_note() {
    let port = free_port();
    let server = desk_with(
        &format!("outbound.relay = \"127.0.0.1:{port}\""),
        "outbound.max_attempts = 2",
    );
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Printer on fire", "open-1@mail.example.org", ""),
    );
    // Two attempts 1 s apart: far less than RETRY_BOUND.
    let notes = wait_notes_for(&server, 1, RETRY_BOUND, "a give-up note", |notes| {
        notes.iter().any(|n| {
            n["system"] == true
                && n["body"].as_str().is_some_and(|b| {
                    b.starts_with(&format!("could not deliver mail to {REPORTER}"))
                })
        })
    });
    let failures: Vec<&Value> = notes
        .iter()
        .filter(|n| {
            n["body"]
                .as_str()
                .is_some_and(|b| b.contains("could not deliver"))
        })
        .collect();
    assert_eq!(failures.len(), 1, "one note per failed mail: {failures:?}");
    assert!(
        failures[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("after 2 attempts")),
        "{}",
        failures[0]
    );
}

#[test]
fn automatic_mail_to_the_project_address_opens_no_ticket_and_gets_no_thank_you() {
    let sink = Sink::start();
    let server = desk(&sink, "");
    let automatic = [
        ("Auto-Submitted: auto-generated\r\n", "monitor@example.com"),
        ("Precedence: bulk\r\n", "newsletter@example.com"),
        ("List-Id: <deals.example.com>\r\n", "deals@example.com"),
    ];
    for (n, (header, from)) in automatic.iter().enumerate() {
        send(
            &server,
            from,
            &[PROJECT_ADDRESS],
            &reply_mail(
                from,
                PROJECT_ADDRESS,
                &format!("Automatic {n}"),
                &format!("auto-{n}@example.com"),
                header,
            ),
        );
        assert_eq!(
            server.all_issues("acme").len(),
            0,
            "{header:?} opened a ticket"
        );
    }
    // A human mail afterwards: its thank-you is the only mail.
    let thank_you = open_first_ticket(&server, &sink, "");
    assert_eq!(thank_you.rcpt_tos, [REPORTER]);
    flush_outbox(&server, &sink, 1);
    assert_eq!(real_mails(&sink).len(), 1, "automatic mail got a thank-you");
}

#[test]
fn a_reply_from_another_sender_via_a_reply_address_is_marked_and_does_not_reopen() {
    let sink = Sink::start();
    let server = desk(&sink, "");
    let thank_you = open_first_ticket(&server, &sink, "");
    let reply_to = reply_address(&thank_you);
    close(&server, 1);
    send(
        &server,
        "intruder@example.net",
        &[&reply_to],
        &reply_mail(
            "Intruder <intruder@example.net>",
            &reply_to,
            "Re: Printer on fire [acme#1]",
            "mismatch@example.net",
            "",
        ),
    );
    let issue = server.issue("acme", 1);
    assert_eq!(
        issue["state"], "closed",
        "a mismatched sender reopened: {issue}"
    );
    let notes = notes(&server, 1);
    let note = notes
        .iter()
        .find(|n| n["body"] == "It is still on fire.")
        .expect("the reply is kept");
    assert_eq!(note["sender_mismatch"], true, "{note}");
    assert_eq!(note["from_email"], "intruder@example.net", "{note}");
    assert_eq!(note["threaded_by"], "reply_token", "{note}");
}

#[test]
fn quick_actions_add_and_remove_participants_and_close_with_a_mail() {
    let sink = Sink::start();
    let server = desk(&sink, "");
    open_first_ticket(&server, &sink, "");
    let response = server.request(
        "PUT",
        "/api/v4/projects/acme/service_desk",
        &[("Content-Type", "application/json")],
        json!({ "send_close_email": true }).to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{response}");

    let note = post_note(
        &server,
        1,
        "Looping in Dana from facilities.\n/add_email dana@example.com",
        false,
    );
    assert_eq!(note["body"], "Looping in Dana from facilities.", "{note}");
    let summary = note["commands_changes"]["summary"].to_string();
    assert!(summary.contains("dana@example.com"), "{note}");
    let mut to = sent_to(&note);
    to.sort();
    assert_eq!(to, ["dana@example.com", REPORTER], "{note}");

    // Dana gets the new-participant mail and the note.
    let mails = sink.wait_until(WAIT, "dana's two mails", |mails| {
        mails
            .iter()
            .filter(|m| m.is_for("dana@example.com"))
            .count()
            >= 2
    });
    let dana: Vec<&SinkMail> = mails
        .iter()
        .filter(|m| m.is_for("dana@example.com"))
        .collect();
    let welcome = dana
        .iter()
        .find(|m| m.header("Auto-Submitted").as_deref() == Some("auto-generated"))
        .unwrap_or_else(|| panic!("no new-participant mail: {}", dana[0].summary()));
    assert!(welcome.text.contains("#1"), "{}", welcome.text);
    let dana_reply_to = reply_address(welcome);

    // Dana answers through her own reply address.
    send(
        &server,
        "dana@example.com",
        &[&dana_reply_to],
        &reply_mail(
            "Dana <dana@example.com>",
            &dana_reply_to,
            "Re: Printer on fire [acme#1]",
            "dana-1@example.com",
            "",
        ),
    );
    let last = notes(&server, 1).last().cloned().expect("note");
    assert_eq!(last["from_email"], "dana@example.com", "{last}");
    assert_eq!(last["sender_mismatch"], false, "{last}");

    // Removing her revokes the reply address.
    let response = server.post_json(
        &format!("{}/notes", issue_path(1)),
        &json!({ "body": "/remove_email dana@example.com" }),
    );
    assert!(matches!(response.status, 201 | 202), "{response}");
    let issue = server.issue("acme", 1);
    assert!(
        !issue["email_participants"]
            .as_array()
            .expect("participants")
            .iter()
            .any(|p| p["email"] == "dana@example.com"),
        "{issue}"
    );
    let mut client = server.smtp();
    client.expect("EHLO client.example.org", 250);
    client.expect("MAIL FROM:<dana@example.com>", 250);
    let refused = client.cmd(&format!("RCPT TO:<{dana_reply_to}>"));
    assert_eq!(refused.code, 550, "a revoked reply address: {refused}");

    // `/close` closes and, with send_close_email, mails the participants.
    let count = sink.count();
    let response = server.post_json(
        &format!("{}/notes", issue_path(1)),
        &json!({ "body": "/close" }),
    );
    assert!(matches!(response.status, 201 | 202), "{response}");
    assert_eq!(server.issue("acme", 1)["state"], "closed");
    let mails = sink.wait_for(count + 1, WAIT);
    let close_mail = &mails[count];
    assert_eq!(close_mail.rcpt_tos, [REPORTER], "{}", close_mail.summary());
    assert!(close_mail.text.contains("closed"), "{}", close_mail.text);
    assert_eq!(
        close_mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
}

#[test]
fn a_custom_thank_you_template_is_rendered_with_its_placeholders() {
    let sink = Sink::start();
    let server = desk(&sink, "");
    let response = server.request(
        "PUT",
        "/api/v4/projects/acme/service_desk",
        &[("Content-Type", "application/json")],
        json!({ "templates": { "thank_you": {
            "subject": "We got it: %{ISSUE_TITLE}",
            "text": "Ticket %{ISSUE_ID} (%{ISSUE_PATH}): %{ISSUE_TITLE}\nStop: %{UNSUBSCRIBE_URL}\n%{NOT_A_PLACEHOLDER}",
            "html": "<p>Ticket %{ISSUE_ID}: %{ISSUE_TITLE}</p>",
        }}})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(
        response.json()["templates"]["thank_you"]["custom"],
        true,
        "{response}"
    );
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Toner <empty> & co", "open-1@mail.example.org", ""),
    );
    let mails = sink.wait_for(1, WAIT);
    let mail = &mails[0];
    assert_eq!(
        mail.subject.as_deref(),
        Some("We got it: Toner <empty> & co [acme#1]"),
        "the ticket reference is added to a custom subject"
    );
    let token = reply_address(mail)
        .trim_start_matches("reply+")
        .trim_end_matches("@desk.test")
        .to_string();
    assert_eq!(
        mail.text.trim_end(),
        format!(
            "Ticket #1 (desk/acme#1): Toner <empty> & co\nStop: {}/-/sent_notifications/{token}/unsubscribe\n%{{NOT_A_PLACEHOLDER}}",
            server.public_url
        )
    );
    let html = mail.html.as_deref().expect("html part");
    assert!(
        html.contains("<p>Ticket #1: Toner &lt;empty&gt; &amp; co</p>"),
        "the title is escaped in HTML: {html}"
    );
}

#[test]
fn a_deferred_mail_is_retried_after_the_configured_backoff() {
    let port = free_port();
    let server = desk_with(
        &format!("outbound.relay = \"127.0.0.1:{port}\""),
        "outbound.max_attempts = 30",
    );
    send(
        &server,
        REPORTER,
        &[PROJECT_ADDRESS],
        &opening_mail("Printer on fire", "open-1@mail.example.org", ""),
    );
    wait_for_deferral(&server);
    // The relay comes back; the same process retries on its own.
    let sink = Sink::start_on(port);
    let mails = sink.wait_until(
        RETRY_BOUND,
        "the retry (due 1-2 s after the failed attempt: retry_base_secs = 1, retry_max_secs = 2)",
        |mails| !mails.is_empty(),
    );
    assert_eq!(mails[0].rcpt_tos, [REPORTER]);
}
