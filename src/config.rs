//! The TOML configuration, its embedded defaults, and start-up validation.
//!
//! One `serde` tree with `deny_unknown_fields`: a typo is an error naming the
//! key, reported before any port is bound (exit code 64, EX_USAGE).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Why the configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, generated certificate and admin token live.
    pub data_dir: PathBuf,
    /// Mail domains this server is the MX for; the first is the one shown.
    pub domains: Vec<String>,
    pub smtp: SmtpConfig,
    pub api: ApiConfig,
    pub outbound: OutboundConfig,
}

/// How outbound mail (thank-you, public notes) leaves mxdesk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Smarthost `host:port`; when absent, mail goes to the recipient's MX.
    pub relay: Option<String>,
    /// `opportunistic` (STARTTLS when offered), `required`, or `none`.
    pub tls: OutboundTls,
    /// AUTH user name for the relay.
    pub username: Option<String>,
    /// File holding the AUTH password (secrets never inline in the config).
    pub password_file: Option<PathBuf>,
    /// Display name of outgoing mail; the address is the project's.
    pub from_name: Option<String>,
    /// Thank-you mails per sender per hour.
    pub thank_you_per_hour: u32,
    /// External participants taken from To/Cc of an opening mail.
    pub max_participants: usize,
    /// Delivery attempts before a mail is given up (then a system note).
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// Per-connection timeout for outbound SMTP.
    pub timeout_secs: u64,
    /// Fixed MX answers: domain → `host:port`, used before DNS (split-horizon
    /// setups and tests).
    pub static_mx: std::collections::BTreeMap<String, String>,
    /// DKIM keys: outbound mail from `domain` is signed when one is present.
    pub dkim: Vec<DkimKey>,
}

/// STARTTLS policy for outbound connections.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutboundTls {
    Opportunistic,
    Required,
    None,
}

/// One DKIM signing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// PEM file with an RSA (PKCS#1/PKCS#8) or Ed25519 (PKCS#8) private key.
    pub private_key: PathBuf,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            relay: None,
            tls: OutboundTls::Opportunistic,
            username: None,
            password_file: None,
            from_name: None,
            thank_you_per_hour: 5,
            max_participants: 10,
            max_attempts: 8,
            retry_base_secs: 60,
            retry_max_secs: 3600,
            timeout_secs: 60,
            static_mx: Default::default(),
            dkim: Vec::new(),
        }
    }
}

/// The SMTP listener and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub listen: Vec<SocketAddr>,
    /// Banner and EHLO name.
    pub hostname: String,
    /// PEM certificate chain; with `key`, or neither (then one is generated).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub max_message_size: usize,
    /// RFC 5321 §4.5.3.1.8 requires at least 100.
    pub max_recipients: usize,
    /// Idle time allowed between commands (RFC 5321 §4.5.3.2.7: 5 minutes).
    pub command_timeout_secs: u64,
    /// Time allowed for one DATA/BDAT transfer to make progress (§4.5.3.2.5: 3 minutes per block, 10 minutes at the end).
    pub data_timeout_secs: u64,
    /// Bad commands tolerated before `421` and hang-up.
    pub max_bad_commands: u32,
    /// Concurrent SMTP sessions; further connections get `421` and are closed.
    pub max_connections: usize,
    /// MIME parts a message may have before it is refused as a bomb.
    pub max_mime_parts: usize,
}

/// The HTTP API listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// How clients reach the API; used in `web_url` and download links.
    pub public_url: String,
    /// Largest request body accepted (bytes).
    pub max_body_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            domains: vec!["localhost".into()],
            smtp: SmtpConfig::default(),
            api: ApiConfig::default(),
            outbound: OutboundConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            hostname: "localhost".into(),
            cert: None,
            key: None,
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            max_bad_commands: 10,
            max_connections: 1024,
            max_mime_parts: 1000,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_size: 1024 * 1024,
        }
    }
}

impl SmtpConfig {
    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs)
    }
    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_secs)
    }
}

impl Config {
    /// Loads `path` (or the embedded defaults when `None`) and validates it.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Config::parse(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                })?
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text; the error message names the offending key and line.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks the values serde cannot: ranges, pairs, syntax of names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_string(),
        };
        if self.domains.is_empty() {
            return Err(invalid("domains", "at least one mail domain is required"));
        }
        for domain in &self.domains {
            if !crate::address::is_valid_domain(domain) {
                return Err(ConfigError::Invalid {
                    key: "domains",
                    message: format!("{domain:?} is not a valid domain name"),
                });
            }
        }
        if self.smtp.listen.is_empty() {
            return Err(invalid("smtp.listen", "at least one address is required"));
        }
        if !crate::address::is_valid_domain(&self.smtp.hostname) {
            return Err(invalid("smtp.hostname", "must be a valid host name"));
        }
        if self.smtp.cert.is_some() != self.smtp.key.is_some() {
            return Err(invalid(
                "smtp.cert",
                "`smtp.cert` and `smtp.key` must be set together",
            ));
        }
        if self.smtp.max_message_size < 1024 {
            return Err(invalid(
                "smtp.max_message_size",
                "must be at least 1024 bytes",
            ));
        }
        if self.smtp.max_recipients < 1 {
            return Err(invalid("smtp.max_recipients", "must be at least 1"));
        }
        if self.smtp.command_timeout_secs == 0 {
            return Err(invalid("smtp.command_timeout_secs", "must be positive"));
        }
        if self.smtp.data_timeout_secs == 0 {
            return Err(invalid("smtp.data_timeout_secs", "must be positive"));
        }
        if self.smtp.max_connections == 0 {
            return Err(invalid("smtp.max_connections", "must be positive"));
        }
        if self.smtp.max_mime_parts == 0 {
            return Err(invalid("smtp.max_mime_parts", "must be positive"));
        }
        let url = &self.api.public_url;
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.contains(char::is_whitespace)
        {
            return Err(invalid(
                "api.public_url",
                "must be an http:// or https:// URL",
            ));
        }
        let out = &self.outbound;
        if let Some(relay) = &out.relay {
            if crate::notify::transport::split_host_port(relay, 25).is_none() {
                return Err(invalid("outbound.relay", "must be host:port"));
            }
        }
        for (domain, target) in &out.static_mx {
            if !crate::address::is_valid_domain(domain)
                || crate::notify::transport::split_host_port(target, 25).is_none()
            {
                return Err(ConfigError::Invalid {
                    key: "outbound.static_mx",
                    message: format!("{domain:?} = {target:?} must map a domain to host:port"),
                });
            }
        }
        if out.username.is_some() != out.password_file.is_some() {
            return Err(invalid(
                "outbound.username",
                "`outbound.username` and `outbound.password_file` must be set together",
            ));
        }
        if out.max_attempts == 0
            || out.retry_base_secs == 0
            || out.retry_max_secs < out.retry_base_secs
        {
            return Err(invalid(
                "outbound.max_attempts",
                "attempts and retry delays must be positive, retry_max_secs >= retry_base_secs",
            ));
        }
        if out.timeout_secs == 0 {
            return Err(invalid("outbound.timeout_secs", "must be positive"));
        }
        if let Some(name) = &out.from_name {
            if name.chars().any(char::is_control) {
                return Err(invalid(
                    "outbound.from_name",
                    "must not contain control characters",
                ));
            }
        }
        if self.api.max_body_size < 1024 {
            return Err(invalid("api.max_body_size", "must be at least 1024 bytes"));
        }
        Ok(())
    }

    /// The first served domain: the one shown in project addresses.
    pub fn primary_domain(&self) -> &str {
        self.domains
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    /// `public_url` without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.api.public_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[smtp]\nlisten_on = []\n").unwrap_err();
        assert!(err.contains("listen_on"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::parse("[smtp]\nmax_message_size = \"big\"\n").unwrap_err();
        assert!(err.contains("max_message_size"), "{err}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let config = Config::parse("[smtp]\ncert = \"a.pem\"\n").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("smtp.cert"), "{err}");
    }

    #[test]
    fn issue_example_parses() {
        let text = r#"
data_dir = "data"
domains = ["desk.test"]
[smtp]
listen = ["127.0.0.1:2525"]
hostname = "mx.desk.test"
cert = "certs/server.pem"
key = "certs/server.key"
max_message_size = 26214400
[api]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
"#;
        let config = Config::parse(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.domains, vec!["desk.test"]);
        assert_eq!(config.smtp.max_message_size, 26214400);
    }
}
