//! TLS for STARTTLS: load the configured PEM certificate and key, or
//! generate a self-signed pair for the SMTP hostname on first start, so that
//! `mxdesk serve` offers STARTTLS on a fresh machine with no configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// Why no TLS configuration could be built.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read certificate chain {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("cannot read private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate and key do not form a valid TLS configuration: {0}")]
    Config(String),
}

/// Builds the STARTTLS acceptor (TLS 1.2 and 1.3).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_path_buf(),
            message: "no certificate found".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Returns the configured pair, or the generated one in `data_dir/tls/`,
/// generating it for `hostname` when it does not exist yet.
pub fn certificate_paths(
    configured: Option<(&Path, &Path)>,
    data_dir: &Path,
    hostname: &str,
) -> Result<(PathBuf, PathBuf), TlsError> {
    if let Some((cert, key)) = configured {
        return Ok((cert.to_path_buf(), key.to_path_buf()));
    }
    let dir = data_dir.join("tls");
    let cert = dir.join("self-signed.pem");
    let key = dir.join("self-signed.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let generated = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, contents: String| {
        std::fs::create_dir_all(&dir)
            .and_then(|_| crate::fsutil::write_private(path, contents.as_bytes()))
            .map_err(|source| TlsError::Write {
                path: path.to_path_buf(),
                source,
            })
    };
    write(&key, generated.signing_key.serialize_pem())?;
    write(&cert, generated.cert.pem())?;
    tracing::info!(path = %cert.display(), "generated a self-signed certificate for {hostname}");
    Ok((cert, key))
}
