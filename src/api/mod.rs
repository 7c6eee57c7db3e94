//! The JSON API: a faithful subset of GitLab REST v4 over hyper, so GitLab
//! tooling (python-gitlab, CLIs, MCP servers) works against mxdesk unchanged.
//! It maps HTTP to store calls and never touches SMTP.

mod discussions;
mod duration;
mod error;
mod events;
mod hooks;
mod issues;
pub mod json;
mod labels;
mod milestones;
mod notes;
mod openapi;
mod pagination;
mod projects;
mod quick_actions;
mod request;
mod router;
mod service_desk;
mod users;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use error::ApiError;
pub use router::ROUTES;

use crate::config::Config;
use crate::store::Store;

/// How long requests in flight may take to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time allowed to send request headers (slowloris guard).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The bound API socket (bound early so port 0 can be reported).
pub struct ApiListener {
    socket: TcpListener,
}

impl ApiListener {
    pub async fn bind(address: SocketAddr) -> std::io::Result<ApiListener> {
        Ok(ApiListener {
            socket: TcpListener::bind(address).await?,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }
}

/// The body of every API response: a whole document (JSON, a file), or a
/// stream (the event feed's Server-Sent Events).
pub type ApiBody = BoxBody<Bytes, Infallible>;

/// What every handler needs.
pub struct ApiState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Cancelled when the API stops serving: long-polls answer and event
    /// streams end, so graceful shutdown need not wait for them.
    pub shutdown: CancellationToken,
}

impl ApiState {
    pub fn new(store: Store, config: Arc<Config>) -> ApiState {
        ApiState {
            store,
            config,
            shutdown: CancellationToken::new(),
        }
    }

    /// Runs a blocking store read off the reactor.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::from)
    }
}

/// Serves HTTP/1.1 until `shutdown`, then lets requests in flight finish.
pub async fn serve(listener: ApiListener, state: Arc<ApiState>, shutdown: CancellationToken) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.socket.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (stream, _peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "API accept failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let state = state.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, request).await) }
        });
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "API connection ended with an error");
            }
        });
    }
    state.shutdown.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API requests still running after the grace period");
    }
}

async fn handle(state: Arc<ApiState>, request: Request<Incoming>) -> Response<ApiBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("api", %method, %path);
    // The event stream is the one streaming answer: it goes around the
    // router, whose handlers answer whole documents.
    let result = if events::is_stream(&request) {
        events::stream(state, request)
            .instrument(span.clone())
            .await
    } else {
        router::route(&state, request)
            .instrument(span.clone())
            .await
            .map(|response| response.map(BodyExt::boxed))
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            if let ApiError::Internal(detail) = &error {
                tracing::error!(parent: &span, %detail, "internal error");
            }
            let mut response = request::json_response(error.status(), &error.body());
            if matches!(error, ApiError::MethodNotAllowed) {
                let allowed = router::allowed_methods(&path).join(", ");
                if let Ok(value) = hyper::header::HeaderValue::from_str(&allowed) {
                    response.headers_mut().insert(hyper::header::ALLOW, value);
                }
            }
            response.map(BodyExt::boxed)
        }
    }
}
