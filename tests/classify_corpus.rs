//! The automatic-mail classifier and the bounce reader against real mail
//! from /work/shared/corpora (flanker bounces and ARF complaints, the Ruby
//! `mail` gem's multipart reports, talon's and the mail gem's human mail).
//!
//! Expected recipients and Message-IDs were read off each file by hand.

use std::path::{Path, PathBuf};

use mail_parser::{Message, MessageParser};
use mxdesk::ingest::classify::{
    classify, delivery_report, AutoReason, Classification, DeliveryReport, DsnAction, ReportSource,
};

/// A sender that triggers no rule, so bounces must be recognised from their
/// headers and bodies alone, not from the `<>` they would arrive with.
const NEUTRAL_SENDER: &str = "someone@corpus.invalid";

fn corpora() -> PathBuf {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora"));
    assert!(
        path.is_dir(),
        "test corpora missing: expected them at {} (see /work/shared/corpora/README.md)",
        path.display()
    );
    path.to_path_buf()
}

fn own_domains() -> Vec<String> {
    vec!["desk.example.org".to_string()]
}

/// All `.eml` files of a corpus folder, sorted by name; fails if there are none.
fn emls(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpora().join(dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => panic!("cannot read corpus folder {}: {e}", dir.display()),
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .eml files in {}", dir.display());
    files
}

fn parse<'a>(name: &str, bytes: &'a [u8]) -> Message<'a> {
    MessageParser::default()
        .parse(bytes)
        .unwrap_or_else(|| panic!("{name}: mail-parser refused it"))
}

fn reason(c: &Classification) -> String {
    c.reason_for_new_ticket()
        .map_or("-".to_string(), |r| r.to_string())
}

/// What each bounce file must give: the reason it is automatic (with a
/// neutral envelope sender), and for a readable report its permanently
/// failed recipients, all its recipients and the returned Message-ID.
struct Expect {
    file: &'static str,
    reason: AutoReason,
    report: Option<ExpectReport>,
}

struct ExpectReport {
    source: ReportSource,
    failed: &'static [&'static str],
    all: &'static [&'static str],
    original_id: Option<&'static str>,
}

fn check_folder(dir: &str, expected: &[Expect]) -> (usize, usize) {
    let files = emls(dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut want: Vec<&str> = expected.iter().map(|e| e.file).collect();
    want.sort();
    assert_eq!(names, want, "{dir}: files and expectations differ");
    let (mut automatic, mut permanent) = (0, 0);
    for (name, bytes) in &files {
        let Some(exp) = expected.iter().find(|e| e.file == name) else {
            continue;
        };
        let message = parse(name, bytes);
        let c = classify(NEUTRAL_SENDER, &message, &own_domains());
        let report = delivery_report(&message);
        println!(
            "{dir}/{name}: automatic={} report={}",
            reason(&c),
            describe(report.as_ref())
        );
        assert!(c.is_automatic_for_reply(), "{name}: not automatic");
        assert_eq!(c.automatic, Some(exp.reason), "{name}: wrong rule");
        automatic += 1;
        match (&exp.report, report) {
            (None, None) => {}
            (None, Some(r)) => panic!("{name}: unexpected report {r:?}"),
            (Some(_), None) => panic!("{name}: report not recognised"),
            (Some(e), Some(r)) => {
                assert_eq!(r.source, e.source, "{name}: source");
                let failed: Vec<&str> = r.failed_recipients().collect();
                assert_eq!(failed, e.failed, "{name}: failed recipients");
                let all: Vec<&str> = r.recipients.iter().map(|x| x.address.as_str()).collect();
                assert_eq!(all, e.all, "{name}: all recipients");
                assert_eq!(r.is_permanent(), !e.failed.is_empty(), "{name}: permanence");
                assert_eq!(
                    r.original_message_id.as_deref(),
                    e.original_id,
                    "{name}: original Message-ID"
                );
                if r.is_permanent() {
                    permanent += 1;
                }
            }
        }
    }
    (automatic, permanent)
}

fn describe(report: Option<&DeliveryReport>) -> String {
    let Some(r) = report else {
        return "-".to_string();
    };
    let recipients: Vec<String> = r
        .recipients
        .iter()
        .map(|x| {
            format!(
                "{} {:?} {}",
                x.address,
                x.action,
                x.status.as_deref().unwrap_or("?")
            )
        })
        .collect();
    format!(
        "{:?} permanent={} [{}] original={}",
        r.source,
        r.is_permanent(),
        recipients.join(", "),
        r.original_message_id.as_deref().unwrap_or("-")
    )
}

#[test]
fn flanker_bounces() {
    use AutoReason::*;
    let dsn = ReportSource::DeliveryStatus;
    let header = ReportSource::FailedRecipientsHeader;
    let expected = [
        // Plain-text "Undeliverable Mail" from postmaster: automatic, but the
        // failed address is only in prose, so no report.
        Expect {
            file: "broken-mime.eml",
            reason: DaemonSender,
            report: None,
        },
        // A bare message/delivery-status with no other header; it says
        // `Action: failed` (with a transient 4.2.2 status): the MTA gave up.
        Expect {
            file: "delayed-broken.eml",
            reason: Report,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["demo@example.com"],
                all: &["demo@example.com"],
                original_id: None,
            }),
        },
        // RFC 3464's example: deferred for 5 days, then `Action: failed`,
        // "Message will be deleted from queue": not delivered, ever.
        Expect {
            file: "delayed.eml",
            reason: DaemonSender,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["foo@example.com"],
                all: &["foo@example.com"],
                original_id: None,
            }),
        },
        Expect {
            file: "gmail-invalid-address.eml",
            reason: NullSender,
            report: Some(ExpectReport {
                source: header,
                failed: &["awfawfawfawfawfaw@someserverhere.com"],
                all: &["awfawfawfawfawfaw@someserverhere.com"],
                original_id: Some(
                    "CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com",
                ),
            }),
        },
        Expect {
            file: "gmail-no-dns.eml",
            reason: NullSender,
            report: Some(ExpectReport {
                source: header,
                failed: &["user@example.comm"],
                all: &["user@example.comm"],
                original_id: None,
            }),
        },
        Expect {
            file: "mailbox-full.eml",
            reason: AutoSubmitted,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["user@aol.com"],
                all: &["user@aol.com"],
                original_id: Some("4E326A95.3010907@example.com"),
            }),
        },
        // `Action: delayed`, 4.4.4 "no MX or A for domain": still trying.
        Expect {
            file: "no-mx.eml",
            reason: NullSender,
            report: Some(ExpectReport {
                source: dsn,
                failed: &[],
                all: &["user@example.com"],
                original_id: Some("19E44CA63F984902B7D654F8FF40F89D@bo"),
            }),
        },
        Expect {
            file: "office365.eml",
            reason: AutoSubmitted,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["noname@example.com"],
                all: &["noname@example.com"],
                original_id: Some("20171013111011.20866.254C2F3A4D7AA526@ninomail.com"),
            }),
        },
        Expect {
            file: "zed.eml",
            reason: NullSender,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"],
                all: &["asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"],
                original_id: Some("20090708054735.GC7578@example.com"),
            }),
        },
    ];
    let (automatic, permanent) = check_folder("flanker/tests/fixtures/messages/bounce", &expected);
    println!("flanker bounces: {automatic}/9 automatic, {permanent} permanent reports");
    assert_eq!((automatic, permanent), (9, 7));
}

#[test]
fn office365_report_threads_to_the_original() {
    let path = corpora().join("flanker/tests/fixtures/messages/bounce/office365.eml");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let message = parse("office365.eml", &bytes);
    let Some(report) = delivery_report(&message) else {
        panic!("office365.eml: no report");
    };
    assert_eq!(
        report.referenced_ids,
        ["20171013111011.20866.254C2F3A4D7AA526@ninomail.com"]
    );
    let first = &report.recipients[0];
    assert_eq!(first.action, DsnAction::Failed);
    assert_eq!(first.status.as_deref(), Some("5.1.10"));
    assert_eq!(
        first.original_address.as_deref(),
        Some("noname@example.com")
    );
    assert!(first
        .diagnostic
        .as_deref()
        .is_some_and(|d| d.contains("RecipientNotFound")));
}

#[test]
fn mail_gem_multipart_reports() {
    use AutoReason::*;
    let dsn = ReportSource::DeliveryStatus;
    const FIVE: &[&str] = &[
        "bbbbvhvbbvkjbhfbvbvjhb@gmail.com",
        "bscdbcjhasbcjhbdscbhbsdhcbj@gmail.com",
        "egyfefsdvsfvvhjsd@gmail.com",
        "kfhejkfbsjkjsbhds@gmail.com",
        "qfvhgsvhgsduiohncdhcvhsdfvsfygusd@gmail.com",
    ];
    let expected = [
        Expect {
            file: "multi_address_bounce1.eml",
            reason: AutoSubmitted,
            report: Some(ExpectReport {
                source: dsn,
                failed: FIVE,
                all: FIVE,
                original_id: Some("118707422.15521266992174819.JavaMail.root@lvmail01"),
            }),
        },
        Expect {
            file: "multi_address_bounce2.eml",
            reason: AutoSubmitted,
            report: Some(ExpectReport {
                source: dsn,
                failed: FIVE,
                all: FIVE,
                original_id: Some("118707422.15521266992174819.JavaMail.root@lvmail01"),
            }),
        },
        // Two message/delivery-status parts, the first one free text.
        Expect {
            file: "multipart_report_multiple_status.eml",
            reason: NullSender,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["u@ci.com"],
                all: &["u@ci.com"],
                original_id: Some("4c2a146147ac8_61ff157c4ec1652df@s.h.c.mail"),
            }),
        },
        // A warning: `Action: delayed`, mailbox full.
        Expect {
            file: "report_422.eml",
            reason: AutoSubmitted,
            report: Some(ExpectReport {
                source: dsn,
                failed: &[],
                all: &["fraser@oooooooo.com.au"],
                original_id: Some(
                    "15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au",
                ),
            }),
        },
        Expect {
            file: "report_530.eml",
            reason: AutoSubmitted,
            report: Some(ExpectReport {
                source: dsn,
                failed: &["edwin@zzzzzzz.com"],
                all: &["edwin@zzzzzzz.com"],
                original_id: Some("200712232303.lBNN3jDq002941@mail12.rrrr.com.au"),
            }),
        },
    ];
    let (automatic, permanent) = check_folder(
        "mikel-mail/spec/fixtures/emails/multipart_report_emails",
        &expected,
    );
    println!("mail gem reports: {automatic}/5 automatic, {permanent} permanent reports");
    assert_eq!((automatic, permanent), (5, 4));
}

#[test]
fn flanker_complaints() {
    // ARF abuse reports: AOL's says `Precedence: list`; Yahoo's has no
    // Auto-Submitted, no null Return-Path and no daemon sender, so only the
    // multipart/report rule catches it. Neither is a delivery report.
    let expected = [
        ("aol.eml", AutoReason::Precedence),
        ("yahoo.eml", AutoReason::Report),
    ];
    let files = emls("flanker/tests/fixtures/messages/complaints");
    assert_eq!(files.len(), expected.len());
    for (name, bytes) in &files {
        let message = parse(name, bytes);
        let c = classify(NEUTRAL_SENDER, &message, &own_domains());
        println!("complaints/{name}: automatic={}", reason(&c));
        let want = expected.iter().find(|(f, _)| f == name).map(|(_, r)| *r);
        assert_eq!(c.automatic, want, "{name}");
        assert_eq!(delivery_report(&message), None, "{name}");
    }
}

/// The envelope sender a human mail would have arrived with: its
/// Return-Path, else its From.
fn human_envelope(message: &Message<'_>) -> String {
    message
        .return_address()
        .or_else(|| {
            message
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
        })
        .unwrap_or(NEUTRAL_SENDER)
        .to_string()
}

fn check_humans(dir: &str, exceptions: &[(&str, AutoReason)]) -> (usize, usize) {
    let files = emls(dir);
    let mut human = 0;
    for (name, bytes) in &files {
        let message = parse(name, bytes);
        let c = classify(&human_envelope(&message), &message, &own_domains());
        let exception = exceptions.iter().find(|(f, _)| f == name).map(|(_, r)| *r);
        match exception {
            Some(r) => {
                println!(
                    "{dir}/{name}: automatic={} (expected exception)",
                    reason(&c)
                );
                assert_eq!(c.reason_for_new_ticket(), Some(r), "{name}");
            }
            None => {
                assert!(
                    !c.is_automatic_for_new_ticket(),
                    "{name}: human mail classified automatic ({})",
                    reason(&c)
                );
                human += 1;
            }
        }
        assert_eq!(delivery_report(&message), None, "{name}: not a bounce");
    }
    (human, files.len())
}

#[test]
fn human_mail_is_not_automatic() {
    // No file in these folders carries an automatic marker (checked with
    // grep for Auto-Submitted, Precedence, X-Auto*, List-*, <> and daemon
    // senders), so there are no exceptions to list.
    let (h1, n1) = check_humans("talon/tests/fixtures/standard_replies", &[]);
    let (h2, n2) = check_humans("mikel-mail/spec/fixtures/emails/plain_emails", &[]);
    println!("human mail: talon {h1}/{n1}, mail gem plain {h2}/{n2} not automatic");
    assert_eq!((h1, h2), (n1, n2));
    assert!(n1 >= 10 && n2 >= 15, "corpus shrank: {n1} + {n2} files");
}

/// Every message in every corpus goes through both functions without a
/// panic; the counts are printed for the record.
#[test]
fn whole_corpus_never_panics() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "eml") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&corpora(), &mut paths);
    assert!(paths.len() > 100, "only {} .eml files found", paths.len());
    let (mut parsed, mut automatic, mut reports) = (0, 0, 0);
    for path in &paths {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let Some(message) = MessageParser::default().parse(&bytes) else {
            continue;
        };
        parsed += 1;
        if classify("", &message, &own_domains()).automatic != Some(AutoReason::NullSender) {
            panic!("{}: null sender not honoured", path.display());
        }
        if classify(NEUTRAL_SENDER, &message, &own_domains()).is_automatic_for_new_ticket() {
            automatic += 1;
        }
        if delivery_report(&message).is_some() {
            reports += 1;
        }
    }
    println!(
        "whole corpus: {} files, {parsed} parsed, {automatic} automatic, {reports} delivery reports",
        paths.len()
    );
}
