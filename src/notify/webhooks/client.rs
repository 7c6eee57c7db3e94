//! One webhook POST: a fresh connection (TLS for `https`, verified against
//! the Mozilla roots of webpki-roots), HTTP/1.1 through hyper's low-level
//! client, the status line read, the connection dropped. Every step is
//! bounded by [`REQUEST_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Time to open the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole exchange, up to the response's status line (GitLab's
/// webhook timeout is 10 s too).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a POST did not get a status.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PostError {
    /// Worth trying again: refused, reset, timed out, DNS.
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot help: the URL or a header value is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// Sends POST requests to hook receivers; cheap to share.
pub struct HookClient {
    /// `None` when no TLS client could be built: `https` hooks then fail.
    tls: Option<TlsConnector>,
}

impl Default for HookClient {
    fn default() -> Self {
        HookClient::new()
    }
}

impl HookClient {
    pub fn new() -> HookClient {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let tls = match tls {
            Ok(config) => Some(TlsConnector::from(Arc::new(config))),
            Err(error) => {
                tracing::error!(%error, "no TLS client for https webhooks");
                None
            }
        };
        HookClient { tls }
    }

    /// POSTs `body` to `url` with `headers` (plus Host, Content-Type,
    /// User-Agent, Connection: close); returns the response status.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<StatusCode, PostError> {
        let target = Target::parse(url)?;
        let request = target.request(headers, body)?;
        let exchange = async {
            let tcp = tokio::time::timeout(
                CONNECT_TIMEOUT,
                TcpStream::connect((target.host.as_str(), target.port)),
            )
            .await
            .map_err(|_| PostError::Transient("connect timed out".into()))?
            .map_err(|e| PostError::Transient(format!("connect: {e}")))?;
            let _ = tcp.set_nodelay(true);
            if target.https {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| PostError::Invalid(format!("server name: {e}")))?;
                let connector = self
                    .tls
                    .as_ref()
                    .ok_or_else(|| PostError::Invalid("TLS is unavailable".into()))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| PostError::Transient(format!("TLS: {e}")))?;
                exchange(tls, request).await
            } else {
                exchange(tcp, request).await
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| PostError::Transient(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }
}

/// Sends one request on a fresh connection and waits for the status.
async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> Result<StatusCode, PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| PostError::Transient(format!("HTTP handshake: {e}")))?;
    let response = sender.send_request(request);
    tokio::pin!(connection);
    tokio::pin!(response);
    let result = tokio::select! {
        response = &mut response => response,
        ended = &mut connection => match ended {
            // The server may close right after its answer: take the answer.
            Ok(()) => response.await,
            Err(e) => return Err(PostError::Transient(format!("connection: {e}"))),
        },
    };
    result
        .map(|r| r.status())
        .map_err(|e| PostError::Transient(format!("request: {e}")))
}

/// Where a hook URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` as written, for the Host header.
    authority: String,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, PostError> {
        let invalid = || PostError::Invalid(format!("not a usable http(s) URL: {url:?}"));
        let uri: Uri = url.parse().map_err(|_| invalid())?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid()),
        };
        let authority = uri.authority().ok_or_else(invalid)?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(invalid());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        Ok(Target {
            https,
            host,
            port,
            authority: authority.as_str().to_string(),
            path_and_query,
        })
    }

    fn request(
        &self,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, PostError> {
        let mut request = Request::post(self.path_and_query.as_str())
            .body(Full::new(body))
            .map_err(|e| PostError::Invalid(format!("request: {e}")))?;
        let map = request.headers_mut();
        let value = |text: &str| {
            HeaderValue::from_bytes(text.as_bytes())
                .map_err(|_| PostError::Invalid("a header value is not allowed".into()))
        };
        map.insert(HOST, value(&self.authority)?);
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        map.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("mxdesk/", env!("CARGO_PKG_VERSION"))),
        );
        map.insert(CONNECTION, HeaderValue::from_static("close"));
        for (name, text) in headers {
            map.insert(HeaderName::from_static(name), value(text)?);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        let t = Target::parse("http://127.0.0.1:9000/hooks/in?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                https: false,
                host: "127.0.0.1".into(),
                port: 9000,
                authority: "127.0.0.1:9000".into(),
                path_and_query: "/hooks/in?x=1".into(),
            }
        );
        let t = Target::parse("https://hooks.example.org").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str()), (443, "/"));
        let t = Target::parse("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert!(Target::parse("ftp://example.org/").is_err());
        assert!(Target::parse("/relative").is_err());
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        let t = Target::parse("http://example.org/").unwrap();
        let bad = [("x-gitlab-token", "a\r\nInjected: yes".to_string())];
        assert!(matches!(
            t.request(&bad, Bytes::new()),
            Err(PostError::Invalid(_))
        ));
    }
}
