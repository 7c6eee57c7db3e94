//! Start-up and shutdown of the whole service: everything that can fail on
//! bad configuration happens in [`Server::bind`], before any port is served;
//! [`Server::run`] then serves until the shutdown token is cancelled.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::desk::Desk;
use crate::notify::transport::{Transport, TransportError};
use crate::notify::OutboxWorker;
use crate::smtp::{SessionSettings, SmtpLimits, SmtpListener};
use crate::store::{Store, StoreError, StoreSettings};
use crate::tls::TlsError;

/// How long sessions may take to finish their current transaction on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot bind {what} on {address}: {source}")]
    Bind {
        what: &'static str,
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot write the admin token to {path}: {source}")]
    AdminToken {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A server whose sockets are bound and whose database is open.
pub struct Server {
    config: Arc<Config>,
    store: Store,
    smtp: SmtpListener,
    api: crate::api::ApiListener,
    settings: Arc<SessionSettings>,
    transport: Transport,
    /// The first admin token, when this start created it (shown once).
    pub new_admin_token: Option<String>,
}

impl Server {
    /// Prepares everything: data dir, TLS, database, first token, sockets.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let config = Arc::new(config);
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| ServeError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let configured = config.smtp.cert.as_deref().zip(config.smtp.key.as_deref());
        let (cert, key) =
            crate::tls::certificate_paths(configured, &data_dir, &config.smtp.hostname)?;
        let acceptor = crate::tls::acceptor(&cert, &key)?;

        let transport = crate::notify::transport::Transport::new(&config)?;
        let db_path = data_dir.join("mxdesk.redb");
        let settings = StoreSettings {
            message_id_domain: config.primary_domain().to_string(),
            thank_you_per_hour: config.outbound.thank_you_per_hour,
            max_participants: config.outbound.max_participants,
        };
        let store = tokio::task::spawn_blocking(move || Store::open(&db_path, settings))
            .await
            .map_err(|e| StoreError::Storage(e.to_string()))??;
        let preset = std::env::var("MXDESK_BOOTSTRAP_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let new_admin_token = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.bootstrap_admin_token(preset))
                .await
                .map_err(|e| StoreError::Storage(e.to_string()))??
        };
        if let Some(token) = &new_admin_token {
            let path = data_dir.join("admin-token");
            crate::fsutil::write_private(&path, format!("{token}\n").as_bytes())
                .map_err(|source| ServeError::AdminToken { path, source })?;
        }

        let smtp = SmtpListener::bind(&config.smtp.listen)
            .await
            .map_err(|source| ServeError::Bind {
                what: "SMTP",
                address: format!("{:?}", config.smtp.listen),
                source,
            })?;
        let api = crate::api::ApiListener::bind(config.api.listen)
            .await
            .map_err(|source| ServeError::Bind {
                what: "API",
                address: config.api.listen.to_string(),
                source,
            })?;
        let settings = Arc::new(SessionSettings {
            hostname: config.smtp.hostname.clone(),
            limits: SmtpLimits {
                max_message_size: config.smtp.max_message_size,
                max_recipients: config.smtp.max_recipients,
                command_timeout: config.smtp.command_timeout(),
                data_timeout: config.smtp.data_timeout(),
                max_bad_commands: config.smtp.max_bad_commands,
            },
            tls: Some(acceptor),
        });
        Ok(Server {
            config,
            store,
            smtp,
            api,
            settings,
            transport,
            new_admin_token,
        })
    }

    /// The SMTP addresses actually bound.
    pub fn smtp_addrs(&self) -> Vec<SocketAddr> {
        self.smtp.local_addrs()
    }

    /// The API address actually bound.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, gives open
    /// sessions a bounded time to finish, and lets the database close.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let desk = Arc::new(Desk::new(self.store.clone(), self.config.clone()));
        let smtp = tokio::spawn(crate::smtp::serve(
            self.smtp,
            desk,
            self.settings,
            self.config.smtp.max_connections,
            shutdown.clone(),
            tracker.clone(),
        ));
        let api_state = Arc::new(crate::api::ApiState::new(
            self.store.clone(),
            self.config.clone(),
        ));
        let api = tokio::spawn(crate::api::serve(self.api, api_state, shutdown.clone()));
        let outbox = OutboxWorker::new(self.store.clone(), self.config.clone(), self.transport);
        let outbox = tokio::spawn(outbox.run(shutdown.clone()));
        let webhooks =
            crate::notify::webhooks::WebhookWorker::new(self.store.clone(), self.config.clone());
        let webhooks = tokio::spawn(webhooks.run(shutdown.clone()));
        shutdown.cancelled().await;
        tracing::info!("shutting down");
        let _ = smtp.await;
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("sessions still open after the grace period; closing anyway");
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, api).await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, outbox).await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, webhooks).await;
        self.store.close(SHUTDOWN_GRACE).await;
        tracing::info!("stopped");
    }
}
