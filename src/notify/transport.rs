//! Handing a composed mail to the next hop with mail-send: the configured
//! relay, a fixed MX from the config, or the recipient domain's MX from DNS.
//! A 5xx answer is permanent; everything else is worth retrying.

use std::sync::Arc;
use std::time::Duration;

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::MessageAuthenticator;
use mail_send::smtp::message::Message;
use mail_send::SmtpClientBuilder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

use super::compose::{is_safe_address, Composed};
use crate::config::{Config, OutboundTls};

/// Why a delivery attempt failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SendError {
    /// Try again later (4xx, connection trouble, DNS trouble).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The next hop refused for good (5xx), or the mail can never be sent.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Why the transport could not be set up (reported at start-up).
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot read outbound.password_file {path}: {source}")]
    Password {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot load DKIM key {path}: {message}")]
    Dkim {
        path: std::path::PathBuf,
        message: String,
    },
}

/// `host:port` split, with a default port; `[v6]:port` accepted.
pub fn split_host_port(value: &str, default_port: u16) -> Option<(String, u16)> {
    let value = value.trim();
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    if let Some(rest) = value.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if tail.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_string(), port.parse().ok()?)),
        Some(_) => None,
        None => Some((value.to_string(), default_port)),
    }
}

struct DkimKey {
    domain: String,
    signer: DkimSigner<RsaKey<Sha256>, mail_auth::dkim::Done>,
}

/// Sends composed mail; cheap to share.
pub struct Transport {
    relay: Option<(String, u16)>,
    tls: OutboundTls,
    credentials: Option<(String, String)>,
    static_mx: std::collections::BTreeMap<String, (String, u16)>,
    hostname: String,
    timeout: Duration,
    dkim: Vec<DkimKey>,
    resolver: Option<Arc<MessageAuthenticator>>,
}

impl Transport {
    /// Builds the transport from the configuration, reading secrets and keys.
    pub fn new(config: &Config) -> Result<Transport, TransportError> {
        let out = &config.outbound;
        let credentials = match (&out.username, &out.password_file) {
            (Some(user), Some(path)) => {
                let password =
                    std::fs::read_to_string(path).map_err(|source| TransportError::Password {
                        path: path.clone(),
                        source,
                    })?;
                Some((
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_string(),
                ))
            }
            _ => None,
        };
        let mut dkim = Vec::new();
        for key in &out.dkim {
            let der = PrivateKeyDer::from_pem_file(&key.private_key).map_err(|e| {
                TransportError::Dkim {
                    path: key.private_key.clone(),
                    message: e.to_string(),
                }
            })?;
            let rsa = RsaKey::<Sha256>::from_key_der(der).map_err(|e| TransportError::Dkim {
                path: key.private_key.clone(),
                message: e.to_string(),
            })?;
            let signer = DkimSigner::from_key(rsa)
                .domain(key.domain.clone())
                .selector(key.selector.clone())
                .headers([
                    "From",
                    "To",
                    "Subject",
                    "Date",
                    "Message-ID",
                    "In-Reply-To",
                    "References",
                ]);
            dkim.push(DkimKey {
                domain: key.domain.to_ascii_lowercase(),
                signer,
            });
        }
        let static_mx = out
            .static_mx
            .iter()
            .filter_map(|(domain, target)| {
                Some((domain.to_ascii_lowercase(), split_host_port(target, 25)?))
            })
            .collect();
        let relay = out.relay.as_deref().and_then(|r| split_host_port(r, 25));
        // DNS is only needed for direct delivery; a broken resolver config is
        // a temporary failure per mail, not a start-up error.
        let resolver = if relay.is_none() {
            MessageAuthenticator::new_system_conf().ok().map(Arc::new)
        } else {
            None
        };
        Ok(Transport {
            relay,
            tls: out.tls,
            credentials,
            static_mx,
            hostname: config.smtp.hostname.clone(),
            timeout: Duration::from_secs(out.timeout_secs),
            dkim,
            resolver,
        })
    }

    /// Where mail for `recipient` goes: the relay, a fixed MX, or DNS MX hosts.
    async fn routes(&self, recipient: &str) -> Result<Vec<(String, u16)>, SendError> {
        if let Some(relay) = &self.relay {
            return Ok(vec![relay.clone()]);
        }
        let domain = recipient
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .ok_or_else(|| SendError::Permanent(format!("{recipient} has no domain")))?;
        if let Some(fixed) = self.static_mx.get(&domain) {
            return Ok(vec![fixed.clone()]);
        }
        let resolver = self
            .resolver
            .as_ref()
            .ok_or_else(|| SendError::Temporary("no DNS resolver configured".into()))?;
        let records = resolver
            .mx_lookup(
                domain.as_str(),
                None::<&mail_auth::common::cache::NoCache<String, Arc<Vec<mail_auth::MX>>>>,
            )
            .await;
        match records {
            Ok(records) => {
                let mut records: Vec<_> = records.iter().cloned().collect();
                records.sort_by_key(|r| r.preference);
                let hosts: Vec<(String, u16)> = records
                    .into_iter()
                    .flat_map(|r| r.exchanges.into_iter())
                    .map(|h| (h.trim_end_matches('.').to_string(), 25))
                    .filter(|(h, _)| !h.is_empty())
                    .collect();
                // RFC 7505 null MX: the domain accepts no mail.
                if hosts.is_empty() {
                    return Err(SendError::Permanent(format!(
                        "{domain} accepts no mail (null MX)"
                    )));
                }
                Ok(hosts)
            }
            // RFC 5321 §5.1: no MX record means the domain itself is the host.
            Err(mail_auth::Error::DnsRecordNotFound(_)) => Ok(vec![(domain, 25)]),
            Err(error) => Err(SendError::Temporary(format!(
                "MX lookup for {domain} failed: {error}"
            ))),
        }
    }

    /// DKIM-signs the message when a key for the sender's domain exists.
    fn sign(&self, composed: &Composed) -> Vec<u8> {
        let from_domain = composed
            .envelope_from
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let Some(key) = self.dkim.iter().find(|k| k.domain == from_domain) else {
            return composed.bytes.clone();
        };
        match key.signer.sign(&composed.bytes) {
            Ok(signature) => {
                let mut signed = signature.to_header().into_bytes();
                signed.extend_from_slice(&composed.bytes);
                signed
            }
            Err(error) => {
                tracing::warn!(%error, "DKIM signing failed; sending unsigned");
                composed.bytes.clone()
            }
        }
    }

    /// One delivery attempt over every route in order.
    pub async fn send(&self, composed: &Composed) -> Result<(), SendError> {
        if !is_safe_address(&composed.recipient) || !is_safe_address(&composed.envelope_from) {
            return Err(SendError::Permanent("unsafe envelope address".into()));
        }
        let bytes = self.sign(composed);
        let mut last = SendError::Temporary("no route".into());
        for (host, port) in self.routes(&composed.recipient).await? {
            match self.send_via(&host, port, composed, &bytes).await {
                Ok(()) => return Ok(()),
                Err(SendError::Permanent(reason)) => return Err(SendError::Permanent(reason)),
                Err(temporary) => {
                    tracing::info!(%host, port, error = %temporary, "next hop failed; trying the next one");
                    last = temporary;
                }
            }
        }
        Err(last)
    }

    async fn send_via(
        &self,
        host: &str,
        port: u16,
        composed: &Composed,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        let mut builder = SmtpClientBuilder::new(host.to_string(), port)
            .helo_host(self.hostname.clone())
            .timeout(self.timeout)
            .implicit_tls(port == 465);
        if self.relay.is_none() {
            // MTA-to-MTA STARTTLS is opportunistic: certificates are not
            // verified (RFC 7435), as every MTA does without DANE/MTA-STS.
            builder = builder.allow_invalid_certs();
        }
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials((user.clone(), password.clone()));
        }
        let message = Message::new(
            composed.envelope_from.as_str(),
            [composed.recipient.as_str()],
            bytes,
        );
        let result = match self.tls {
            OutboundTls::None => match builder.connect_plain().await {
                Ok(client) => transmit(client, message).await,
                Err(error) => Err(error),
            },
            OutboundTls::Required => match builder.connect().await {
                Ok(client) => transmit(client, message).await,
                Err(error) => Err(error),
            },
            OutboundTls::Opportunistic => match builder.connect().await {
                Ok(client) => transmit(client, message).await,
                Err(mail_send::Error::MissingStartTls) | Err(mail_send::Error::Tls(_)) => {
                    match builder.connect_plain().await {
                        Ok(client) => transmit(client, message).await,
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            },
        };
        result.map_err(classify)
    }
}

async fn transmit<T: AsyncRead + AsyncWrite + Unpin>(
    mut client: mail_send::SmtpClient<T>,
    message: Message<'_>,
) -> Result<(), mail_send::Error> {
    client.send(message).await?;
    let _ = client.quit().await;
    Ok(())
}

fn classify(error: mail_send::Error) -> SendError {
    match &error {
        mail_send::Error::UnexpectedReply(reply) if reply.code >= 500 => {
            SendError::Permanent(format!("{} {}", reply.code, reply.message))
        }
        mail_send::Error::UnexpectedReply(reply) => {
            SendError::Temporary(format!("{} {}", reply.code, reply.message))
        }
        _ => SendError::Temporary(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("smtp.example.net:587", 25),
            Some(("smtp.example.net".into(), 587))
        );
        assert_eq!(
            split_host_port("smtp.example.net", 25),
            Some(("smtp.example.net".into(), 25))
        );
        assert_eq!(
            split_host_port("[::1]:2525", 25),
            Some(("::1".into(), 2525))
        );
        assert_eq!(split_host_port("a b:25", 25), None);
        assert_eq!(split_host_port("host:notaport", 25), None);
    }
}
