//! Interop with clients nobody here wrote: swaks and Python's smtplib for
//! SMTP (STARTTLS verified against the development CA), python-gitlab for
//! the API. A missing tool fails the test with how to install it; nothing is
//! skipped.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{cert_path, python, swaks, ServerOptions, TestServer, INSTALL_HINT};

/// Runs an outside tool; a tool that cannot be started fails the test with
/// the install hint.
fn run_tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?} ({e}): {INSTALL_HINT}"))
}

fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn swaks_over_starttls_opens_a_ticket_with_its_attachment() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    let project_id = project["id"].as_u64().expect("id");

    let dir = tempfile::tempdir().expect("temp dir");
    let attachment_path = dir.path().join("screenshot.bin");
    let attachment: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&attachment_path, &attachment).expect("write attachment");

    let port = server.smtp_addr.port().to_string();
    let ca = cert_path("ca.pem").display().to_string();
    let attach = attachment_path.display().to_string();
    let output = run_tool(
        &swaks(),
        &[
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--ehlo",
            "client.example.org",
            "--from",
            "swaks-user@example.org",
            "--to",
            "acme@desk.test",
            "--header",
            "Subject: swaks interop",
            "--body",
            "Sent by swaks over STARTTLS.",
            "--attach",
            &attach,
            // STARTTLS is required; the chain is verified against the dev
            // CA (this swaks checks the chain, not the name) with SNI set.
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            &ca,
            "--tls-sni",
            common::HOSTNAME,
            "--timeout",
            "30",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stdout.contains("Net::SSLeay") || stderr.contains("Net::SSLeay") {
        panic!(
            "swaks has no TLS support (Perl's Net::SSLeay is missing): {INSTALL_HINT}\n{}",
            describe(&output)
        );
    }
    assert!(
        output.status.success(),
        "swaks failed:\n{}",
        describe(&output)
    );
    // swaks marks traffic inside TLS with `~>` / `<~`.
    assert!(
        stdout.contains("-> STARTTLS") && stdout.contains("<~  250"),
        "swaks did not deliver over TLS:\n{}",
        describe(&output)
    );

    let issue = server.issue("acme", 1);
    assert_eq!(issue["title"], "swaks interop", "{issue}");
    assert_eq!(issue["service_desk_reply_to"], "swaks-user@example.org");
    assert_eq!(issue["confidential"], true);
    assert!(
        issue["description"]
            .as_str()
            .is_some_and(|d| d.contains("Sent by swaks over STARTTLS.")),
        "{issue}"
    );
    let attachments = issue["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{issue}");
    assert_eq!(attachments[0]["name"], "screenshot.bin");
    let download = server.get(&format!(
        "/api/v4/projects/{project_id}/issues/1/attachments/1"
    ));
    assert_eq!(download.status, 200, "{download}");
    assert_eq!(download.body, attachment, "attachment bytes differ");
}

#[test]
fn python_smtplib_over_starttls_opens_tickets() {
    let server = TestServer::start();
    let project = server.create_project("acme");
    let project_id = project["id"].as_u64().expect("id");
    let subject = "Überweisung fehlgeschlagen – Bitte um Hilfe ✉";
    let port = server.smtp_addr.port().to_string();
    let ca = cert_path("ca.pem").display().to_string();
    let output = run_tool(
        &python(),
        &[
            &script("interop_smtplib.py"),
            "127.0.0.1",
            &port,
            &ca,
            "acme@desk.test",
            subject,
        ],
    );
    println!("{}", describe(&output));
    assert!(
        output.status.success(),
        "interop_smtplib.py failed:\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("message 1: 250 2.0.0"), "{stdout}");
    assert!(stdout.contains("message 2: 250 2.0.0"), "{stdout}");

    let first = server.issue("acme", 1);
    assert_eq!(first["title"], subject, "{first}");
    assert_eq!(first["service_desk_reply_to"], "zoe@example.org");
    assert_eq!(
        first["description"],
        "Hallo from smtplib.\nZweite Zeile mit Umlauten: äöü."
    );
    let attachments = first["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{first}");
    assert_eq!(attachments[0]["name"], "invoice.pdf");
    assert_eq!(attachments[0]["content_type"], "application/pdf");
    let download = server.get(&format!(
        "/api/v4/projects/{project_id}/issues/1/attachments/1"
    ));
    assert_eq!(download.body, b"%PDF-1.4 not really\x00\x01\x02");

    let second = server.issue("acme", 2);
    assert_eq!(second["title"], format!("{subject} (SMTPUTF8)"));
    assert_eq!(second["service_desk_reply_to"], "zoë@example.org");
}

#[test]
fn python_gitlab_creates_a_project_and_reads_its_tickets() {
    // python-gitlab follows the `Link` headers, which are built from
    // `api.public_url`: this server's public URL is its real address.
    let server = TestServer::start_opts(ServerOptions {
        real_public_url: true,
        ..ServerOptions::default()
    });
    let port = server.smtp_addr.port().to_string();
    let ca = cert_path("ca.pem").display().to_string();
    let output = run_tool(
        &python(),
        &[
            &script("interop_gitlab.py"),
            &server.public_url,
            &server.token,
            "127.0.0.1",
            &port,
            &ca,
        ],
    );
    println!("{}", describe(&output));
    if output.status.code() == Some(2) {
        panic!(
            "python-gitlab is missing: {INSTALL_HINT}\n{}",
            describe(&output)
        );
    }
    assert!(
        output.status.success(),
        "interop_gitlab.py failed:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("interop_gitlab: OK"),
        "{}",
        describe(&output)
    );
    // What python-gitlab saw is what is stored.
    let issues = server.all_issues("interop");
    assert_eq!(issues.len(), 3, "{issues:?}");
    assert_eq!(server.issue("interop", 1)["title"], "Erste Störung ☎");
}
