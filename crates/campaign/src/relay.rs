//! Connections to the SMTP relay, kept open between messages.
//!
//! lettre speaks the protocol ([`AsyncSmtpConnection`]); the sockets are opened here so that
//! they can set `TCP_NODELAY`. lettre writes a message body and its closing `.` in two writes;
//! with Nagle's algorithm on, the second waits for the server's delayed ACK, up to 40 ms per
//! message — on loopback that capped delivery near 130 messages/s with 8 connections.

use std::sync::Mutex;
use std::time::Duration;

use augur_core::config::{SmtpConfig, SmtpSecurity};
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

/// A failed attempt: the reply or error, and whether it is permanent (5xx).
pub type Failure = (String, bool);

/// An SMTP relay and its idle connections.
pub struct Relay {
    config: SmtpConfig,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({}:{:?})", self.config.host, self.config.port)
    }
}

fn failure(e: &lettre::transport::smtp::Error) -> Failure {
    (e.to_string(), e.is_permanent())
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
        let host = self.config.host.as_str();
        let tls = || {
            TlsParameters::new(host.to_string()).map_err(|e| (format!("TLS for {host}: {e}"), true))
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
            .map_err(|e| failure(&e))?,
            SmtpSecurity::None | SmtpSecurity::Starttls => {
                let stream = tokio::time::timeout(
                    self.timeout(),
                    tokio::net::TcpStream::connect((host, self.port())),
                )
                .await
                .map_err(|_| {
                    (
                        format!("connecting to {host}:{} timed out", self.port()),
                        false,
                    )
                })?
                .map_err(|e| (format!("connecting to {host}:{}: {e}", self.port()), false))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| (format!("TCP_NODELAY: {e}"), false))?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(|e| failure(&e))?;
                if self.config.security == SmtpSecurity::Starttls {
                    conn.starttls(tls()?, &self.hello)
                        .await
                        .map_err(|e| failure(&e))?;
                }
                conn
            }
        };
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(|e| failure(&e))?;
        }
        Ok(conn)
    }

    /// Sends one message. A reused connection that turns out closed (relays drop idle ones) is
    /// replaced once at once, so that costs no retry delay.
    pub async fn send(&self, message: &Message) -> Result<(), Failure> {
        let bytes = message.formatted();
        let envelope = message.envelope();
        let reused = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(c) => c,
            None => self.connect().await?,
        };
        let limit = self.timeout() * 4;
        let result = tokio::time::timeout(limit, conn.send(envelope, &bytes)).await;
        match result {
            Ok(Ok(_)) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(conn);
                }
                Ok(())
            }
            Ok(Err(e)) if !fresh && e.status().is_none() => {
                // The idle connection had gone away; try once on a new one.
                let mut conn = self.connect().await?;
                match tokio::time::timeout(limit, conn.send(envelope, &bytes)).await {
                    Ok(Ok(_)) => {
                        if let Ok(mut idle) = self.idle.lock() {
                            idle.push(conn);
                        }
                        Ok(())
                    }
                    Ok(Err(e)) => Err(failure(&e)),
                    Err(_) => Err((format!("no answer within {limit:?}"), false)),
                }
            }
            Ok(Err(e)) => Err(failure(&e)),
            Err(_) => Err((format!("no answer within {limit:?}"), false)),
        }
    }
}
