//! Accepting SMTP connections: one task per connection, a bounded number of
//! them, and a clean stop on shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::reply;
use super::session::{run_session, SessionSettings};
use super::MailHandler;

/// The bound SMTP sockets, so the caller can learn their ports (port 0)
/// before serving.
pub struct SmtpListener {
    sockets: Vec<TcpListener>,
}

impl SmtpListener {
    /// Binds every address; fails on the first that cannot be bound.
    pub async fn bind(addresses: &[SocketAddr]) -> io::Result<SmtpListener> {
        let mut sockets = Vec::with_capacity(addresses.len());
        for address in addresses {
            sockets.push(TcpListener::bind(address).await?);
        }
        Ok(SmtpListener { sockets })
    }

    /// The addresses actually bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

/// Serves SMTP until `shutdown` is cancelled. Sessions are spawned on
/// `tracker`, so the caller can wait for them to finish.
pub async fn serve<H: MailHandler>(
    listener: SmtpListener,
    handler: Arc<H>,
    settings: Arc<SessionSettings>,
    max_connections: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut loops = Vec::new();
    for socket in listener.sockets {
        let handler = handler.clone();
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        let tracker_for_sessions = tracker.clone();
        let permits = permits.clone();
        loops.push(tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = socket.accept() => accepted,
                    _ = shutdown.cancelled() => break,
                };
                let (mut stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // EMFILE and friends: log and keep accepting.
                        tracing::warn!(%error, "accept failed");
                        tokio::task::yield_now().await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        reply::TOO_MANY_CONNECTIONS.write_to(&mut out);
                        let _ = stream.write_all(&out).await;
                    });
                    continue;
                };
                let (handler, settings, shutdown) =
                    (handler.clone(), settings.clone(), shutdown.clone());
                let span = tracing::info_span!("smtp", %peer, session = tracing::field::Empty);
                tracker_for_sessions.spawn(
                    async move {
                        run_session(stream, peer, handler, settings, shutdown).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }));
    }
    for accept_loop in loops {
        let _ = accept_loop.await;
    }
}
