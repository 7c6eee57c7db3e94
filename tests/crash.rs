//! Durability: a `250` to DATA means the message is on disk. Concurrent
//! clients send while the server is killed with SIGKILL; after a restart on
//! the same data directory every accepted message must be a ticket. And a
//! SIGTERM shuts down gracefully, finishing the transaction in flight.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{simple_message, SmtpClient, TestServer};

/// Concurrent SMTP clients.
const CLIENTS: usize = 8;
/// Accepted messages per round before the kill.
const ACCEPTED_BEFORE_KILL: usize = 200;
/// Kill-and-restart cycles.
const ROUNDS: usize = 3;
/// How long a round may take to reach that many.
const ROUND_DEADLINE: Duration = Duration::from_secs(90);

/// What one client saw.
struct ClientLog {
    /// Subjects that got `250` to the end of DATA.
    accepted: Vec<String>,
    /// Subjects whose DATA was sent, whatever the outcome.
    attempted: Vec<String>,
    /// Replies other than `250` to a complete message (should be none).
    refused: Vec<String>,
    /// Why the client stopped.
    ended_by: String,
}

/// One client: one session, messages in a loop until the connection breaks
/// or `stop` is set. Every `250` is reported on `accepted_tx`.
fn run_client(
    addr: std::net::SocketAddr,
    round: usize,
    client_no: usize,
    stop: Arc<AtomicBool>,
    running: Arc<AtomicUsize>,
    accepted_tx: mpsc::Sender<()>,
) -> ClientLog {
    let mut log = ClientLog {
        accepted: Vec::new(),
        attempted: Vec::new(),
        refused: Vec::new(),
        ended_by: String::new(),
    };
    let body = "The printer on the second floor prints only blank pages.\r\n".repeat(20);
    let result = (|| -> std::io::Result<()> {
        let mut client = SmtpClient::try_connect(addr)?;
        let greeting = client.try_reply()?;
        if greeting.code != 220 {
            return Err(std::io::Error::other(format!("greeting {greeting}")));
        }
        let ehlo = client.try_cmd("EHLO crash.example.org")?;
        if ehlo.code != 250 {
            return Err(std::io::Error::other(format!("EHLO {ehlo}")));
        }
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let subject = format!("crash r{round} c{client_no} m{n}");
            let id = format!("crash-r{round}-c{client_no}-m{n}@example.org");
            let message = simple_message(&subject, &id, &body);
            log.attempted.push(subject.clone());
            let reply =
                client.try_send_mail("reporter@example.org", &["acme@desk.test"], &message)?;
            if reply.is(250, "2.0.0") {
                log.accepted.push(subject);
                let _ = accepted_tx.send(());
            } else {
                log.refused.push(format!("{subject}: {reply}"));
            }
        }
        Ok(())
    })();
    log.ended_by = match result {
        Ok(()) => "stopped".into(),
        Err(e) => e.to_string(),
    };
    running.fetch_sub(1, Ordering::SeqCst);
    log
}

/// Runs one round of concurrent load and kills the server with SIGKILL
/// once `ACCEPTED_BEFORE_KILL` messages were accepted, while every client
/// is still sending. Returns the client logs.
fn load_and_kill(server: &mut TestServer, round: usize) -> Vec<ClientLog> {
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(CLIENTS));
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, running, tx) = (stop.clone(), running.clone(), accepted_tx.clone());
            let addr = server.smtp_addr;
            thread::spawn(move || run_client(addr, round, c, stop, running, tx))
        })
        .collect();
    drop(accepted_tx);

    let deadline = Instant::now() + ROUND_DEADLINE;
    let mut accepted = 0;
    while accepted < ACCEPTED_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match accepted_rx.recv_timeout(left) {
            Ok(()) => accepted += 1,
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                let logs: Vec<ClientLog> =
                    handles.into_iter().filter_map(|h| h.join().ok()).collect();
                let ends: Vec<&str> = logs.iter().map(|l| l.ended_by.as_str()).collect();
                panic!(
                    "round {round}: only {accepted} messages accepted ({e:?}); clients ended by {ends:?}"
                );
            }
        }
    }
    let still_sending = running.load(Ordering::SeqCst);
    server.kill9();
    // The clients notice the dead server through their sockets; `stop` only
    // covers a client that somehow did not.
    stop.store(true, Ordering::SeqCst);
    let logs: Vec<ClientLog> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread panicked"))
        .collect();
    assert_eq!(
        still_sending,
        CLIENTS,
        "round {round}: clients had stopped before the kill: {:?}",
        logs.iter().map(|l| &l.ended_by).collect::<Vec<_>>()
    );
    for log in &logs {
        assert!(
            log.refused.is_empty(),
            "round {round}: messages refused under load: {:?}",
            log.refused
        );
    }
    logs
}

#[test]
fn every_message_that_got_250_survives_kill_9() {
    let mut server = TestServer::start();
    server.create_project("acme");

    let mut accepted = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    for round in 1..=ROUNDS {
        let logs = load_and_kill(&mut server, round);
        for log in logs {
            accepted.extend(log.accepted);
            attempted.extend(log.attempted);
        }
        // The database must open cleanly: the server starts (the harness
        // fails the test with the server's log if it does not).
        server.restart();
    }
    assert!(accepted.len() >= ROUNDS * ACCEPTED_BEFORE_KILL);

    let issues = server.all_issues("acme");
    let mut by_title: BTreeMap<String, usize> = BTreeMap::new();
    let mut iids = BTreeSet::new();
    for issue in &issues {
        let title = issue["title"].as_str().expect("title").to_string();
        *by_title.entry(title).or_default() += 1;
        assert!(
            iids.insert(issue["iid"].as_u64().expect("iid")),
            "duplicate iid: {issue}"
        );
    }
    let lost: Vec<&String> = accepted
        .iter()
        .filter(|s| !by_title.contains_key(*s))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} messages that got 250 are not tickets after kill -9: {:?}",
        lost.len(),
        accepted.len(),
        lost.iter().take(20).collect::<Vec<_>>()
    );
    let doubled: Vec<(&String, &usize)> = by_title.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "tickets created twice: {doubled:?}");
    let unknown: Vec<&String> = by_title
        .keys()
        .filter(|t| !attempted.contains(*t))
        .collect();
    assert!(unknown.is_empty(), "tickets nobody sent: {unknown:?}");
    // Ticket numbers are dense: 1..=n with no gap and no reuse.
    assert_eq!(
        iids,
        (1..=issues.len() as u64).collect::<BTreeSet<u64>>(),
        "ticket numbers have gaps"
    );

    // The restarted server takes new mail and numbers it after the rest.
    let mut client = server.smtp();
    client.expect("EHLO after.example.org", 250);
    let reply = client.send_mail(
        "reporter@example.org",
        &["acme@desk.test"],
        &simple_message("after the crash", "after-crash@example.org", "still here"),
    );
    assert!(reply.is(250, "2.0.0"), "{reply}");
    let next = server.issue("acme", issues.len() as u64 + 1);
    assert_eq!(next["title"], "after the crash");
}

#[test]
fn sigterm_finishes_the_transaction_in_flight_and_exits_cleanly() {
    let mut server = TestServer::start();
    server.create_project("acme");
    for n in 1..=3 {
        let mut client = server.smtp();
        client.expect("EHLO client.example.org", 250);
        let reply = client.send_mail(
            "reporter@example.org",
            &["acme@desk.test"],
            &simple_message(
                &format!("before {n}"),
                &format!("before-{n}@example.org"),
                "x",
            ),
        );
        assert!(reply.is(250, "2.0.0"), "{reply}");
    }

    // One session waiting for a command, one in the middle of DATA.
    let mut idle = server.smtp_tls();
    let mut busy = server.smtp();
    busy.expect("EHLO busy.example.org", 250);
    busy.expect("MAIL FROM:<reporter@example.org>", 250);
    busy.expect("RCPT TO:<acme@desk.test>", 250);
    busy.expect("DATA", 354);
    let message = simple_message("in flight", "in-flight@example.org", "sent across SIGTERM");
    let (head, tail) = message.split_at(message.len() / 2);
    busy.send_raw(head).expect("send first half");

    server.send_sigterm();
    // The idle session is told the server is going away: that is also how
    // this test knows the signal has been handled.
    let reply = idle.reply();
    assert!(reply.is(421, "4.3.2"), "idle session on SIGTERM: {reply}");
    assert!(idle.read_until_closed().is_empty());
    // The transaction in flight is allowed to finish.
    let mut rest = tail.to_vec();
    rest.extend_from_slice(b".\r\n");
    busy.send_raw(&rest).expect("send second half");
    let reply = busy.reply();
    assert!(reply.is(250, "2.0.0"), "transaction in flight: {reply}");
    let _ = busy.try_cmd("QUIT");
    drop(busy);

    let stopping = Instant::now();
    let status = server.wait_for_exit();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "took {:?} to exit after the last session",
        stopping.elapsed()
    );

    server.restart();
    // The same admin token still works (it is in the database, not re-made).
    let user = server.get_json("/api/v4/user");
    assert_eq!(user["is_admin"], true);
    let mut titles: Vec<String> = server
        .all_issues("acme")
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        vec!["before 1", "before 2", "before 3", "in flight"]
    );
    let token_file = server.data_dir().join("admin-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file)
            .unwrap_or_else(|e| panic!("{}: {e}", token_file.display()))
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "admin-token mode {mode:o}");
}
