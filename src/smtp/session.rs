//! One SMTP session: the protocol state machine, generic over its stream so
//! that STARTTLS is a change of stream type and tests can use in-memory pipes.
//!
//! Invariants:
//! - a [`Transaction`] exists only after a successful MAIL, and DATA/BDAT are
//!   refused unless it has at least one accepted recipient;
//! - after STARTTLS every byte the client pipelined in plaintext is discarded
//!   and the session starts over (RFC 3207 §4.2);
//! - `250` to DATA/BDAT is sent only after [`MailHandler::deliver`] resolved.

use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, RequestReceiver,
};
use smtp_proto::{Error as ProtoError, MailFrom, RcptTo, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::reply::{self, Reply};
use super::{DeliveryError, Envelope, MailHandler, RcptVerdict, SmtpLimits};

/// Fixed settings shared by every session of a listener.
#[derive(Clone)]
pub struct SessionSettings {
    pub hostname: String,
    pub limits: SmtpLimits,
    pub tls: Option<TlsAcceptor>,
}

/// Sender and recipients of the mail being received.
struct Transaction {
    mail_from: String,
    recipients: Vec<String>,
    /// Chunks received by BDAT so far.
    chunks: Vec<u8>,
    /// A BDAT chunk pushed the message over the size limit.
    chunks_oversized: bool,
}

/// How a pass over one stream ended.
enum Ending {
    /// The session is over (QUIT, 421, peer gone).
    Closed,
    /// The client asked for TLS and got `220`: upgrade, then start over.
    StartTls,
}

/// Internal failure that ends the connection without a reply.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer closed the connection")]
    PeerClosed,
}

struct Session<H> {
    handler: Arc<H>,
    settings: Arc<SessionSettings>,
    shutdown: CancellationToken,
    id: String,
    peer: SocketAddr,
    tls: bool,
    helo: Option<String>,
    transaction: Option<Transaction>,
    bad_commands: u32,
    messages: u64,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

/// Runs a whole SMTP connection on `stream`, upgrading to TLS on STARTTLS.
pub async fn run_session<S, H>(
    stream: S,
    peer: SocketAddr,
    handler: Arc<H>,
    settings: Arc<SessionSettings>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MailHandler,
{
    let mut session = Session {
        handler,
        settings,
        shutdown,
        id: new_session_id(),
        peer,
        tls: false,
        helo: None,
        transaction: None,
        bad_commands: 0,
        messages: 0,
        inbuf: Vec::with_capacity(8192),
        outbuf: Vec::with_capacity(1024),
    };
    let mut stream = stream;
    let span = tracing::Span::current();
    span.record("session", session.id.as_str());
    let ending = {
        let greeting = reply::greeting(&session.settings.hostname);
        session.push(&greeting);
        session.serve(&mut stream).await
    };
    match ending {
        Ok(Ending::Closed) => {}
        Err(error) => tracing::debug!(parent: &span, %error, "session ended"),
        Ok(Ending::StartTls) => {
            let Some(acceptor) = session.settings.tls.clone() else {
                return;
            };
            match acceptor.accept(stream).await {
                Ok(mut tls_stream) => {
                    session.tls = true;
                    session.helo = None;
                    session.transaction = None;
                    session.inbuf.clear();
                    if let Err(error) = session.serve(&mut tls_stream).await {
                        tracing::debug!(parent: &span, %error, "tls session ended");
                    }
                    let _ = tls_stream.shutdown().await;
                }
                Err(error) => tracing::info!(parent: &span, %error, "TLS handshake failed"),
            }
        }
    }
}

fn new_session_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl<H: MailHandler> Session<H> {
    fn push(&mut self, reply: &Reply) {
        reply.write_to(&mut self.outbuf);
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> Result<(), SessionError> {
        if self.outbuf.is_empty() {
            return Ok(());
        }
        let timeout = self.settings.limits.command_timeout;
        let write = async {
            stream.write_all(&self.outbuf).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(result) => result?,
            Err(_) => return Err(SessionError::PeerClosed),
        }
        self.outbuf.clear();
        Ok(())
    }

    /// Reads more bytes into `inbuf`. Waiting for a command (not in DATA),
    /// shutdown ends the session with `421`.
    async fn read_more<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        in_data: bool,
    ) -> Result<Option<Reply>, SessionError> {
        self.flush(stream).await?;
        let limits = &self.settings.limits;
        let timeout = if in_data {
            limits.data_timeout
        } else {
            limits.command_timeout
        };
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::select! {
            read = tokio::time::timeout(timeout, stream.read(&mut chunk)) => read,
            _ = self.shutdown.cancelled(), if !in_data => return Ok(Some(reply::SHUTTING_DOWN)),
        };
        match read {
            Err(_) => Ok(Some(reply::IDLE_TIMEOUT)),
            Ok(Ok(0)) => Err(SessionError::PeerClosed),
            Ok(Ok(n)) => {
                self.inbuf.extend_from_slice(&chunk[..n]);
                Ok(None)
            }
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Serves commands on one stream until it closes or asks for STARTTLS.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Ending, SessionError> {
        let mut receiver = RequestReceiver::default();
        // Set while the tail of an overlong line is being thrown away.
        let mut discarding = false;
        loop {
            // smtp-proto only sees whole lines: that way the line-length
            // limit holds however the bytes arrive, and an overlong line is
            // answered once and discarded up to its LF.
            let Some(newline) = self.inbuf.iter().position(|&b| b == b'\n') else {
                if self.inbuf.len() > MAX_COMMAND_LINE {
                    self.inbuf.clear();
                    discarding = true;
                }
                match self.read_more(stream, false).await? {
                    Some(closing) => {
                        self.push(&closing);
                        self.flush(stream).await?;
                        return Ok(Ending::Closed);
                    }
                    None => continue,
                }
            };
            let reply = if discarding || newline + 1 > MAX_COMMAND_LINE {
                self.inbuf.drain(..=newline);
                discarding = false;
                reply::LINE_TOO_LONG
            } else if is_null_recipient(&self.inbuf[..newline]) {
                self.inbuf.drain(..=newline);
                reply::BAD_RECIPIENT_SYNTAX
            } else {
                let (parsed, consumed) = {
                    let line = &self.inbuf[..=newline];
                    let mut bytes = line.iter();
                    let parsed = receiver.ingest(&mut bytes).map(Request::into_owned);
                    (parsed, line.len() - bytes.len())
                };
                // A whole line was given: whatever smtp-proto left is the line's end.
                self.inbuf
                    .drain(..consumed.max(newline + 1).min(self.inbuf.len()));
                match parsed {
                    Err(ProtoError::NeedsMoreData { .. }) => reply::UNKNOWN_COMMAND,
                    Err(error) => self.protocol_error(error),
                    Ok(request) => match self.command(stream, request).await? {
                        Step::Reply(reply) => reply,
                        Step::Written => continue,
                        Step::StartTls => {
                            self.push(&reply::READY_FOR_TLS);
                            self.flush(stream).await?;
                            // RFC 3207 §4.2: plaintext pipelined after STARTTLS is discarded.
                            self.inbuf.clear();
                            return Ok(Ending::StartTls);
                        }
                    },
                }
            };
            self.push(&reply);
            if is_protocol_violation(&reply) {
                self.bad_commands += 1;
                if self.bad_commands > self.settings.limits.max_bad_commands {
                    self.push(&reply::TOO_MANY_ERRORS);
                    self.flush(stream).await?;
                    return Ok(Ending::Closed);
                }
            }
            if reply.closes() {
                self.flush(stream).await?;
                return Ok(Ending::Closed);
            }
        }
    }

    fn protocol_error(&self, error: ProtoError) -> Reply {
        match error {
            ProtoError::UnknownCommand => reply::UNKNOWN_COMMAND,
            ProtoError::InvalidSenderAddress => reply::BAD_SENDER_SYNTAX,
            ProtoError::InvalidRecipientAddress => reply::BAD_RECIPIENT_SYNTAX,
            ProtoError::SyntaxError { syntax } => reply::syntax(syntax),
            ProtoError::InvalidParameter { param } => reply::invalid_parameter(param),
            ProtoError::UnsupportedParameter { param } => reply::unsupported_parameter(&param),
            ProtoError::ResponseTooLong => reply::LINE_TOO_LONG,
            ProtoError::NeedsMoreData { .. } | ProtoError::InvalidResponse { .. } => {
                reply::UNKNOWN_COMMAND
            }
        }
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        request: Request<String>,
    ) -> Result<Step, SessionError> {
        let reply = match request {
            Request::Ehlo { host } => {
                self.ehlo(host);
                return Ok(Step::Written);
            }
            Request::Helo { host } => {
                self.helo = Some(host);
                self.transaction = None;
                reply::helo_ok(&self.settings.hostname)
            }
            Request::StartTls => {
                if self.tls {
                    reply::ALREADY_TLS
                } else if self.settings.tls.is_none() {
                    reply::TLS_NOT_AVAILABLE
                } else {
                    return Ok(Step::StartTls);
                }
            }
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => self.data(stream).await?,
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(stream, chunk_size, is_last).await?,
            Request::Rset => {
                self.transaction = None;
                reply::OK
            }
            Request::Noop { .. } => reply::OK,
            Request::Quit => reply::BYE,
            Request::Vrfy { .. } => reply::CANNOT_VRFY,
            Request::Help { .. } => reply::HELP,
            Request::Lhlo { .. }
            | Request::Auth { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => reply::NOT_IMPLEMENTED,
        };
        Ok(Step::Reply(reply))
    }

    fn ehlo(&mut self, host: String) {
        self.helo = Some(host);
        self.transaction = None;
        let offer_tls = !self.tls && self.settings.tls.is_some();
        reply::write_ehlo(
            &mut self.outbuf,
            &self.settings.hostname,
            offer_tls,
            self.settings.limits.max_message_size,
        );
    }

    fn mail(&mut self, from: MailFrom<String>) -> Reply {
        if self.helo.is_none() {
            return reply::HELLO_FIRST;
        }
        if self.transaction.is_some() {
            return reply::NESTED_MAIL;
        }
        if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
            return reply::BINARYMIME_UNSUPPORTED;
        }
        if from.size > self.settings.limits.max_message_size {
            return reply::MESSAGE_TOO_BIG;
        }
        if from.address.chars().any(|c| c.is_control()) {
            return reply::BAD_SENDER_SYNTAX;
        }
        self.transaction = Some(Transaction {
            mail_from: from.address,
            recipients: Vec::new(),
            chunks: Vec::new(),
            chunks_oversized: false,
        });
        reply::SENDER_OK
    }

    async fn rcpt(&mut self, to: RcptTo<String>) -> Reply {
        let Some(transaction) = self.transaction.as_ref() else {
            return reply::MAIL_FIRST;
        };
        if transaction.recipients.len() >= self.settings.limits.max_recipients {
            return reply::TOO_MANY_RECIPIENTS;
        }
        // smtp-proto parses both `<>` and `<postmaster>` to "": in RCPT it is
        // postmaster (RFC 5321 §4.5.1).
        let address = if to.address.is_empty() {
            "postmaster".to_string()
        } else {
            to.address
        };
        if address.chars().any(|c| c.is_control()) {
            return reply::BAD_RECIPIENT_SYNTAX;
        }
        let verdict = self.handler.check_recipient(&address).await;
        match verdict {
            RcptVerdict::Accept => {
                if let Some(transaction) = self.transaction.as_mut() {
                    if !transaction
                        .recipients
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(&address))
                    {
                        transaction.recipients.push(address);
                    }
                }
                reply::RECIPIENT_OK
            }
            RcptVerdict::UnknownMailbox => reply::UNKNOWN_USER,
            RcptVerdict::RelayDenied => reply::RELAY_DENIED,
            RcptVerdict::TemporaryFailure => reply::RECIPIENT_CHECK_FAILED,
        }
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Reply, SessionError> {
        match &self.transaction {
            None => return Ok(reply::MAIL_FIRST),
            Some(t) if t.recipients.is_empty() => return Ok(reply::NO_VALID_RECIPIENTS),
            Some(_) => {}
        }
        self.push(&reply::START_DATA);
        let max = self.settings.limits.max_message_size;
        let mut receiver = DataReceiver::new();
        let mut body = Vec::with_capacity(8192);
        // Prime the receiver as if a CRLF had just been seen, so that a lone
        // "." or a leading ".." on the first line is recognised; the two
        // priming bytes are removed below.
        receiver.ingest(&mut b"\r\n".iter(), &mut body);
        let mut discard: Option<DummyDataReceiver> = None;
        loop {
            let (done, consumed) = {
                let mut bytes = self.inbuf.iter();
                let before = bytes.len();
                let done = match discard.as_mut() {
                    Some(dummy) => dummy.ingest(&mut bytes),
                    None => receiver.ingest(&mut bytes, &mut body),
                };
                (done, before - bytes.len())
            };
            self.inbuf.drain(..consumed);
            if discard.is_none() && body.len() > max + 2 {
                discard = Some(DummyDataReceiver::new_data(&receiver));
                body = Vec::new();
            }
            if done {
                break;
            }
            if let Some(closing) = self.read_more(stream, true).await? {
                self.transaction = None;
                return Ok(closing);
            }
        }
        let Some(transaction) = self.transaction.take() else {
            return Ok(reply::MAIL_FIRST);
        };
        if discard.is_some() {
            return Ok(reply::MESSAGE_TOO_BIG);
        }
        let mut message = body.split_off(2.min(body.len()));
        if has_bare_line_ending(&message) {
            tracing::info!(session = %self.id, "message with bare CR/LF refused");
            return Ok(reply::BARE_LINE_ENDING);
        }
        if !message.is_empty() && !message.ends_with(b"\r\n") {
            message.extend_from_slice(b"\r\n");
        }
        Ok(self.deliver(transaction, message).await)
    }

    async fn bdat<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        chunk_size: usize,
        is_last: bool,
    ) -> Result<Reply, SessionError> {
        let max = self.settings.limits.max_message_size;
        let accepting = matches!(&self.transaction, Some(t) if !t.recipients.is_empty() && !t.chunks_oversized)
            && self
                .transaction
                .as_ref()
                .is_some_and(|t| t.chunks.len().saturating_add(chunk_size) <= max);
        // Read (or skip) exactly chunk_size bytes: they are not commands.
        if accepting {
            let mut receiver = BdatReceiver::new(chunk_size, is_last);
            let mut chunk = Vec::with_capacity(chunk_size.min(1 << 20));
            loop {
                let (done, consumed) = {
                    let mut bytes = self.inbuf.iter();
                    let before = bytes.len();
                    let done = receiver.ingest(&mut bytes, &mut chunk);
                    (done, before - bytes.len())
                };
                self.inbuf.drain(..consumed);
                if done || chunk_size == 0 {
                    break;
                }
                if let Some(closing) = self.read_more(stream, true).await? {
                    self.transaction = None;
                    return Ok(closing);
                }
            }
            if let Some(t) = self.transaction.as_mut() {
                t.chunks.extend_from_slice(&chunk);
            }
        } else {
            let mut skipper = DummyDataReceiver::new_bdat(chunk_size);
            loop {
                let (done, consumed) = {
                    let mut bytes = self.inbuf.iter();
                    let before = bytes.len();
                    let done = skipper.ingest(&mut bytes);
                    (done, before - bytes.len())
                };
                self.inbuf.drain(..consumed);
                if done || chunk_size == 0 {
                    break;
                }
                if let Some(closing) = self.read_more(stream, true).await? {
                    self.transaction = None;
                    return Ok(closing);
                }
            }
            match self.transaction.as_mut() {
                None => return Ok(reply::MAIL_FIRST),
                Some(t) if t.recipients.is_empty() => return Ok(reply::NO_VALID_RECIPIENTS),
                Some(t) => {
                    t.chunks_oversized = true;
                    t.chunks = Vec::new();
                }
            }
        }
        if !is_last {
            return Ok(match &self.transaction {
                Some(t) if t.chunks_oversized => reply::MESSAGE_TOO_BIG,
                _ => reply::chunk_received(chunk_size),
            });
        }
        let Some(transaction) = self.transaction.take() else {
            return Ok(reply::MAIL_FIRST);
        };
        if transaction.chunks_oversized {
            return Ok(reply::MESSAGE_TOO_BIG);
        }
        let mut transaction = transaction;
        let mut message = std::mem::take(&mut transaction.chunks);
        if !message.is_empty() && !message.ends_with(b"\r\n") {
            message.extend_from_slice(b"\r\n");
        }
        Ok(self.deliver(transaction, message).await)
    }

    async fn deliver(&mut self, transaction: Transaction, message: Vec<u8>) -> Reply {
        self.messages += 1;
        let envelope = Envelope {
            session_id: format!("{}.{}", self.id, self.messages),
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.tls,
            mail_from: transaction.mail_from,
            recipients: transaction.recipients,
        };
        match self.handler.deliver(envelope, message).await {
            Ok(queue_id) => reply::queued(&queue_id),
            Err(DeliveryError::Temporary(reason)) => {
                tracing::warn!(session = %self.id, %reason, "delivery failed temporarily");
                reply::STORAGE_FAILURE
            }
            Err(DeliveryError::Rejected(reason)) => reply::rejected(&reason),
        }
    }
}

/// What handling a command asks the serve loop to do.
enum Step {
    Reply(Reply),
    /// The reply was already written (EHLO's multi-line answer).
    Written,
    StartTls,
}

/// Longest command line accepted, CRLF included (RFC 5321 §4.5.3.1.4 sets
/// 512 as the minimum; extensions need more, so smtp-proto's 4096).
const MAX_COMMAND_LINE: usize = smtp_proto::request::receiver::MAX_LINE_LENGTH;

/// Replies that count towards `max_bad_commands`: broken or out-of-order
/// commands. Policy refusals (unknown recipient, too big) do not: a session
/// that keeps delivering mail must not be cut off for them.
fn is_protocol_violation(reply: &Reply) -> bool {
    matches!(reply.code, 500 | 501 | 502 | 503 | 504 | 555)
}

/// `RCPT TO:<>`: smtp-proto reads it as postmaster, but RFC 5321 §4.1.1.3
/// allows only `<Postmaster>` without a domain, never a null recipient.
fn is_null_recipient(line: &[u8]) -> bool {
    let line: Vec<u8> = line
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(u8::to_ascii_uppercase)
        .collect();
    line.starts_with(b"RCPTTO:<>")
}

/// Whether `message` has a CR not followed by LF or an LF not preceded by CR.
pub(crate) fn has_bare_line_ending(message: &[u8]) -> bool {
    let mut previous = 0u8;
    for (i, &byte) in message.iter().enumerate() {
        match byte {
            b'\n' if previous != b'\r' => return true,
            b'\r' if message.get(i + 1) != Some(&b'\n') => return true,
            _ => {}
        }
        previous = byte;
    }
    false
}
