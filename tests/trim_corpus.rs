//! Reply trimming against the public corpora in `../shared/corpora`
//! (Discourse's email_reply_trimmer fixtures and Mailgun talon's replies).
//! Prints the pass rate per corpus and the failing cases, and fails when a
//! rate drops below what the trimmer achieves today, so regressions show.

use std::fs;
use std::path::{Path, PathBuf};

use mxdesk::ingest::trim::{trim_html_reply, trim_reply};

/// Minimum pass rates, at the rates achieved (one more failure fails the
/// test). Raise them when the trimmer improves. The known failures are
/// deliberate policy differences:
/// - email_reply_trimmer 63/64: `spam_1` is nothing but nested quotes and
///   expects an empty result; mxdesk never drops a whole message.
/// - talon standard 10/12: talon keeps signatures and footers, mxdesk cuts
///   them, so `iphone` ("Sent from my iPhone") and `sparrow` (`-- ` signature)
///   come out as just "Hello".
/// - talon html 9/9.
const MIN_EMAIL_REPLY_TRIMMER: f64 = 0.98;
const MIN_TALON_STANDARD: f64 = 0.83;
const MIN_TALON_HTML: f64 = 1.0;

fn corpora() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora"));
    assert!(
        dir.is_dir(),
        "reply-trimming corpora not found at {}: the tests need the shared/ folder \
         beside the checkout (as in CI)",
        dir.display()
    );
    dir
}

/// Line endings normalised, trailing white space removed per line and at the end.
fn normalize(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

fn sorted_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Prints "corpus: N/M passed (P%)" and the failures; returns the rate.
fn report(corpus: &str, total: usize, failures: &[(String, String, String)]) -> f64 {
    let passed = total - failures.len();
    let rate = if total == 0 {
        0.0
    } else {
        passed as f64 / total as f64
    };
    println!("{corpus}: {passed}/{total} passed ({:.1}%)", rate * 100.0);
    for (name, got, want) in failures {
        println!("  FAIL {name}");
        if std::env::var_os("TRIM_VERBOSE").is_some() {
            println!("    --- got:\n{got}\n    --- want:\n{want}");
        }
    }
    rate
}

#[test]
fn email_reply_trimmer_corpus() {
    let base = corpora().join("email_reply_trimmer");
    let cases = sorted_files(&base.join("emails"), "txt");
    assert!(!cases.is_empty(), "no cases in {}", base.display());
    let mut failures = Vec::new();
    for case in &cases {
        let name = stem(case);
        let input = fs::read(case).expect("read email");
        let input = String::from_utf8_lossy(&input);
        let expected_path = base.join("trimmed").join(format!("{name}.txt"));
        let expected = fs::read(&expected_path).expect("read expected");
        let want = normalize(&String::from_utf8_lossy(&expected));
        let got = normalize(&trim_reply(&input));
        if got != want {
            failures.push((name, got, want));
        }
    }
    let rate = report("email_reply_trimmer", cases.len(), &failures);
    assert!(
        rate >= MIN_EMAIL_REPLY_TRIMMER,
        "email_reply_trimmer pass rate {rate:.3} fell below {MIN_EMAIL_REPLY_TRIMMER}"
    );
}

#[test]
fn talon_standard_replies() {
    let base = corpora().join("talon/tests/fixtures/standard_replies");
    let cases = sorted_files(&base, "eml");
    assert!(!cases.is_empty(), "no cases in {}", base.display());
    let mut failures = Vec::new();
    for case in &cases {
        let name = stem(case);
        let raw = fs::read(case).expect("read eml");
        let message = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{name}: mail-parser could not parse it"));
        let body = message
            .body_text(0)
            .unwrap_or_else(|| panic!("{name}: no text part"));
        let expected = match fs::read(base.join(format!("{name}_reply_text"))) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => "Hello".to_string(),
        };
        let got = normalize(&trim_reply(&body));
        let want = normalize(&expected);
        if got != want {
            failures.push((name, got, want));
        }
    }
    let rate = report("talon standard_replies", cases.len(), &failures);
    assert!(
        rate >= MIN_TALON_STANDARD,
        "talon standard_replies pass rate {rate:.3} fell below {MIN_TALON_STANDARD}"
    );
}

#[test]
fn talon_html_replies() {
    let base = corpora().join("talon/tests/fixtures/html_replies");
    let cases = sorted_files(&base, "html");
    assert!(!cases.is_empty(), "no cases in {}", base.display());
    let want = "Hi.Iamfine.Thanks,Alex";
    let mut failures = Vec::new();
    for case in &cases {
        let name = stem(case);
        let raw = fs::read(case).expect("read html");
        let html = String::from_utf8_lossy(&raw);
        let trimmed = trim_html_reply(&html);
        let got: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        if got != want {
            failures.push((name, trimmed, want.to_string()));
        }
    }
    let rate = report("talon html_replies", cases.len(), &failures);
    assert!(
        rate >= MIN_TALON_HTML,
        "talon html_replies pass rate {rate:.3} fell below {MIN_TALON_HTML}"
    );
}

/// Every message in the shared corpora (MIME torture tests, bounces, 1 MB
/// stress inputs) goes through both trimmers without a panic and in bounded
/// time: bodies are untrusted.
#[test]
fn every_corpus_message_trims_without_panic() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&corpora(), &mut files);
    files.sort();
    let started = std::time::Instant::now();
    let mut checked = 0;
    for file in &files {
        let Ok(raw) = fs::read(file) else {
            continue;
        };
        let as_text = String::from_utf8_lossy(&raw);
        let _ = trim_reply(&as_text);
        let _ = trim_html_reply(&as_text);
        if let Some(message) = mail_parser::MessageParser::default().parse(&raw) {
            if let Some(text) = message.body_text(0) {
                let _ = trim_reply(&text);
            }
            if let Some(html) = message.body_html(0) {
                let _ = trim_html_reply(&html);
            }
        }
        checked += 1;
    }
    println!("trimmed {checked} corpus files in {:?}", started.elapsed());
    assert!(checked > 100, "only {checked} corpus files found");
}
