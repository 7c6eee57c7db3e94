//! GitLab compatibility: `tests/gitlab_api.py` drives the real server with
//! python-gitlab, unchanged, through every area of the GitLab v4 subset
//! (projects, users and tokens, members, labels, milestones, issues with
//! their filters and both paginations, updates, close/reopen, time
//! tracking, notes, discussions, quick actions, roles and scopes).
//!
//! The interpreter is `MXDESK_PYTHON` (set by `bash tests/run-all.sh` to its
//! virtualenv with python-gitlab), else `python3`. A missing python-gitlab
//! fails the test with how to install it; nothing is skipped.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{python, ServerOptions, TestServer, INSTALL_HINT};

/// The whole script normally takes a few seconds; a hang fails the test.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

struct ScriptRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl ScriptRun {
    fn describe(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The one-line verdicts (`gitlab_api: <area>: FAIL: …`), for the panic
    /// message's first lines.
    fn failures(&self) -> String {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("gitlab_api: ") && l.contains("FAIL"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the script with a deadline; output is read on threads so a full
/// pipe never blocks it.
fn run_script(args: &[&str]) -> ScriptRun {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gitlab_api.py");
    let interpreter = python();
    let mut child = Command::new(&interpreter)
        .arg(&script)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {interpreter:?} ({e}): {INSTALL_HINT}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait python") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            panic!(
                "gitlab_api.py did not finish within {SCRIPT_TIMEOUT:?}\n--- stdout ---\n{stdout}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ScriptRun {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

#[test]
fn python_gitlab_drives_the_whole_gitlab_api_subset() {
    // python-gitlab follows `Link` URLs built from `api.public_url`: the
    // server's public URL is its real address. Outbound mail goes nowhere.
    let server = TestServer::start_opts(ServerOptions {
        extra_toml: "outbound.relay = \"127.0.0.1:9\"".into(),
        real_public_url: true,
    });
    let run = run_script(&[&server.public_url, &server.token]);
    println!("{}", run.describe());
    if run.status.code() == Some(2) {
        panic!(
            "python-gitlab is missing for {:?}: {INSTALL_HINT}\n{}",
            python(),
            run.describe()
        );
    }
    assert!(
        run.status.success(),
        "gitlab_api.py failed:\n{}\n\n{}",
        run.failures(),
        run.describe()
    );
    assert!(
        run.stdout.lines().any(|l| l == "gitlab_api: OK"),
        "no final OK line:\n{}",
        run.describe()
    );

    // What python-gitlab did is what the server stored.
    let issues = server.all_issues("gapi");
    assert_eq!(issues.len(), 8, "{issues:?}");
    let jam = server.issue("gapi", 6);
    assert_eq!(jam["title"], "Printer jam (floor 2)", "{jam}");
    assert_eq!(jam["state"], "opened", "{jam}");
    let invoice = server.issue("gapi", 3);
    assert_eq!(invoice["confidential"], true, "{invoice}");
    let members = server.get_json("/api/v4/projects/gapi/members");
    let mut names: Vec<&str> = members
        .as_array()
        .expect("members array")
        .iter()
        .filter_map(|m| m["username"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"], "{members}");
}
