//! Connections to the SMTP relay, kept open between messages.
//!
//! lettre speaks the protocol ([`AsyncSmtpConnection`]); the sockets are opened here so that
//! they can set `TCP_NODELAY`. lettre writes a message body and its closing `.` in two writes;
//! with Nagle's algorithm on, the second waits for the server's delayed ACK, up to 40 ms per
//! message — on loopback that capped delivery near 130 messages/s with 8 connections.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{SmtpConfig, SmtpSecurity};
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

/// Why an attempt did not end with the relay's acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing of the message was handed over, or the relay answered 4xx: safe to try again.
    Transient(String),
    /// The relay answered 5xx: it will not take the message.
    Permanent(String),
    /// The connection failed or went silent after the message started going out: the relay
    /// may have accepted it.
    Unknown(String),
}

/// A failure while connecting, greeting or authenticating: nothing of any message was sent,
/// so it is worth another attempt later (a wrong password shows in every message's reason and
/// ends as `failed` after `max_attempts`).
fn connecting(e: &lettre::transport::smtp::Error) -> Failure {
    Failure::Transient(format!("connecting: {e}"))
}

/// A failure before the body went out (MAIL, RCPT, DATA): a 5xx reply refuses the message,
/// anything else leaves it safely unsent.
fn before_body(e: &lettre::transport::smtp::Error) -> Failure {
    if e.is_permanent() {
        Failure::Permanent(e.to_string())
    } else {
        Failure::Transient(e.to_string())
    }
}

/// A failure while or after the body went out: a reply is definite, anything else is in doubt.
fn after_body(e: &lettre::transport::smtp::Error) -> Failure {
    match e.status() {
        Some(_) if e.is_permanent() => Failure::Permanent(e.to_string()),
        Some(_) => Failure::Transient(e.to_string()),
        None => Failure::Unknown(e.to_string()),
    }
}

/// Idle connections older than this are checked with a NOOP before reuse (relays close idle
/// connections, and a message must not be started on a dead one).
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

/// An SMTP relay and its idle connections.
pub struct Relay {
    config: SmtpConfig,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({}:{:?})", self.config.host, self.config.port)
    }
}

impl Relay {
    /// A relay for `config` (no connection is opened yet).
    pub fn new(config: SmtpConfig) -> Self {
        Self {
            config,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn port(&self) -> u16 {
        self.config.port.unwrap_or(match self.config.security {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.config.timeout_seconds.max(0.1))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        // Greeting, EHLO, STARTTLS and AUTH all fall under one limit: a relay that accepts the
        // connection and then stays silent must not hang the sender.
        let limit = self.timeout() * 4;
        tokio::time::timeout(limit, self.open())
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Transient(format!(
                    "{}: no greeting within {limit:?}",
                    self.config.host
                )))
            })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, Failure> {
        let host = self.config.host.as_str();
        let tls = || {
            TlsParameters::new(host.to_string())
                .map_err(|e| Failure::Transient(format!("TLS for {host}: {e}")))
        };
        let mut conn = match self.config.security {
            SmtpSecurity::Tls => AsyncSmtpConnection::connect_tokio1(
                (host, self.port()),
                Some(self.timeout()),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| connecting(&e))?,
            SmtpSecurity::None | SmtpSecurity::Starttls => {
                let stream = tokio::time::timeout(
                    self.timeout(),
                    tokio::net::TcpStream::connect((host, self.port())),
                )
                .await
                .map_err(|_| {
                    Failure::Transient(format!("connecting to {host}:{} timed out", self.port()))
                })?
                .map_err(|e| {
                    Failure::Transient(format!("connecting to {host}:{}: {e}", self.port()))
                })?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| Failure::Transient(format!("TCP_NODELAY: {e}")))?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(|e| connecting(&e))?;
                if self.config.security == SmtpSecurity::Starttls {
                    conn.starttls(tls()?, &self.hello)
                        .await
                        .map_err(|e| connecting(&e))?;
                }
                conn
            }
        };
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(|e| connecting(&e))?;
        }
        Ok(conn)
    }

    /// An open connection: an idle one (checked with a NOOP if it idled a while), else a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let idle = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
            let Some((mut conn, since)) = idle else {
                return self.connect().await;
            };
            if since.elapsed() < CHECK_AFTER_IDLE {
                return Ok(conn);
            }
            let alive = tokio::time::timeout(self.timeout(), conn.test_connected()).await;
            if alive.unwrap_or(false) {
                return Ok(conn);
            }
        }
    }

    /// Sends one message: MAIL, RCPT and DATA, then the body, each step under the timeout.
    /// Only a failure without a reply while the body goes out leaves the outcome unknown.
    pub async fn send(&self, message: &Message) -> Result<(), Failure> {
        let bytes = message.formatted();
        let envelope = message.envelope();
        let mut conn = self.checkout().await?;
        let limit = self.timeout();
        let silent = |step: &str| format!("no answer to {step} within {limit:?}");
        let info = conn.server_info();
        let mut options = Vec::new();
        // Domains are sent in their IDNA form (see `message::with_ascii_domain`): what is left
        // non-ASCII is a local part, which only SMTPUTF8 carries.
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Failure::Permanent(
                    "the local part of the address is not ASCII, which needs SMTPUTF8, and the relay does not offer it".into(),
                ));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(Failure::Permanent(
                    "the message is not ASCII and the relay does not offer 8BITMIME".into(),
                ));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = Mail::new(envelope.from().cloned(), options);
        tokio::time::timeout(limit, conn.command(mail))
            .await
            .map_err(|_| Failure::Transient(silent("MAIL FROM")))?
            .map_err(|e| before_body(&e))?;
        for to in envelope.to() {
            tokio::time::timeout(limit, conn.command(Rcpt::new(to.clone(), Vec::new())))
                .await
                .map_err(|_| Failure::Transient(silent("RCPT TO")))?
                .map_err(|e| before_body(&e))?;
        }
        tokio::time::timeout(limit, conn.command(Data))
            .await
            .map_err(|_| Failure::Transient(silent("DATA")))?
            .map_err(|e| before_body(&e))?;
        match tokio::time::timeout(limit * 4, conn.message(&bytes)).await {
            Ok(Ok(_)) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push((conn, Instant::now()));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(after_body(&e)),
            Err(_) => Err(Failure::Unknown(silent("the message"))),
        }
    }
}
