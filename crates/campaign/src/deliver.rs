//! Delivery: due messages leave the outbox over SMTP (or into a directory as `.eml` files when
//! no relay is configured), at a paced rate, each outcome recorded.
//!
//! Exactly once: a batch of at most `campaigns.connections` messages is marked `sending` in one
//! commit before any of it is transmitted, and each outcome is committed after the server
//! answers. After a crash, only that batch can be in doubt; see [`crate::outbox`] and
//! `campaigns.unknown_outcome`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_consent::Keyring;

use crate::config::Settings;
use crate::config::UnknownOutcome;
use chrono::Utc;

use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::events::SentLog;
use crate::message::{Envelope, Signer, build};
use crate::outbox::{Claimed, Outbox, Outcome};
use crate::relay::{Failure, Relay};

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP relay, with connections kept open.
    Smtp(Arc<Relay>),
    /// A directory of `.eml` files (no relay configured).
    Directory(PathBuf),
}

impl Transport {
    /// The transport `config` asks for.
    pub fn new(config: &Settings) -> Result<Self> {
        let campaigns = &config.campaigns;
        let Some(smtp) = &campaigns.smtp else {
            std::fs::create_dir_all(&campaigns.eml_dir)
                .map_err(|e| Error::write(&campaigns.eml_dir, e))?;
            return Ok(Self::Directory(campaigns.eml_dir.clone()));
        };
        if smtp.username.is_some() != smtp.password.is_some() {
            return Err(Error::Setting {
                setting: "campaigns.smtp.username / password".into(),
                message:
                    "give both or neither (the password usually as AUGUR_CAMPAIGNS__SMTP__PASSWORD)"
                        .into(),
            });
        }
        Ok(Self::Smtp(Arc::new(Relay::new(smtp.clone()))))
    }

    /// Where messages go, for messages to people.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "SMTP relay".into(),
            Self::Directory(d) => format!("{} (.eml files; no SMTP relay configured)", d.display()),
        }
    }
}

/// How long `send` keeps going.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Deliver what is due now, then stop (retries wait for the next invocation).
    DueNow,
    /// Keep going until nothing is queued, or this instant (UTC seconds) passes.
    Drained(Option<i64>),
}

/// What a send did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SendReport {
    /// Messages found `sending` from a sender that stopped abruptly.
    pub recovered_in_doubt: usize,
    /// Of those, queued again (policy `resend`); the rest are `unknown`.
    pub resent_in_doubt: bool,
    /// Accepted by the server.
    pub sent: usize,
    /// Transient failures (retried later).
    pub retried: usize,
    /// Permanent failures.
    pub failed: usize,
    /// Not sent: the contact opted out after planning, or its frequency cap was used up.
    pub suppressed: usize,
    /// Not sent before the window closed.
    pub expired: usize,
    /// The connection failed mid-transaction: held as `unknown` (see `unknown_outcome`).
    pub unknown: usize,
    /// `sent` rows written to the e-mail events table.
    pub events_logged: usize,
}

/// Options of one send.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// How long to keep going.
    pub until: Until,
    /// Resend messages of unknown outcome (overrides `campaigns.unknown_outcome`).
    pub resend_unknown: bool,
}

/// Holds the outbox's sender lock while alive: two senders would each take the other's
/// `sending` rows for a crash.
#[derive(Debug)]
pub struct SenderLock {
    _file: std::fs::File,
}

impl SenderLock {
    /// Takes the lock of `outbox`, or says who has it.
    pub fn take(outbox: &Path) -> Result<Self> {
        let lock = outbox.with_extension("send.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| Error::outbox(&lock, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(_) => Err(Error::Busy {
                outbox: outbox.to_path_buf(),
                lock,
            }),
        }
    }
}

/// Delivers due messages.
pub async fn send(
    config: &Settings,
    outbox: &mut Outbox,
    transport: &Transport,
    options: &SendOptions,
) -> Result<SendReport> {
    let campaigns = &config.campaigns;
    let _lock = SenderLock::take(outbox.path())?;
    let log = SentLog::new(config)?;
    let resend = options.resend_unknown || campaigns.unknown_outcome == UnknownOutcome::Resend;
    let mut report = SendReport {
        recovered_in_doubt: outbox.recover(resend)?,
        resent_in_doubt: resend,
        ..SendReport::default()
    };
    if report.recovered_in_doubt > 0 {
        if resend {
            tracing::warn!(
                "{} messages of unknown outcome were queued again (they may arrive twice)",
                report.recovered_in_doubt
            );
        } else {
            tracing::warn!(
                "{} messages were being sent when the last sender stopped; held as `unknown` (the server may have accepted them)",
                report.recovered_in_doubt
            );
        }
    }
    log.recover(outbox)?;
    let signer = Signer::new(outbox.signing_key(campaigns.signing_key.as_deref())?);
    let hosted = crate::message::hosted_keyring(config).map_err(|message| Error::Setting {
        setting: "preferences".into(),
        message,
    })?;
    let mut directory = Directory::open(config)?;
    let batch = campaigns.connections;
    let started = Instant::now();
    let mut last_flush = Instant::now();
    let mut last_expiry: Option<Instant> = None;
    let mut unreadable_since: Option<Instant> = None;
    let mut last_look: Option<Instant> = None;
    loop {
        let now = Utc::now().timestamp();
        // Expiry scans the queue; once a second is soon enough for windows measured in hours.
        if last_expiry.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            report.expired += outbox.expire(now)?;
            last_expiry = Some(Instant::now());
        }
        // Re-read opt-outs before claiming, so that a failed read never strands claimed rows. An
        // export being rewritten may fail to read for a moment; for longer, sending stops. The
        // files are looked at once a second, not once a batch.
        let look = last_look.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if look {
            last_look = Some(Instant::now());
        }
        if look
            && directory.is_stale_for(config)
            && unreadable_since.is_none_or(|t| t.elapsed() >= RETRY_READ)
        {
            match Directory::open(config) {
                Ok(fresh) => {
                    directory = fresh;
                    unreadable_since = None;
                }
                Err(e) => {
                    let since = *unreadable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= STOP_AFTER_UNREADABLE {
                        return Err(e);
                    }
                    tracing::warn!("opt-outs unreadable, keeping the ones read before: {e}");
                }
            }
        }
        // A deadline ends the run even with a backlog: `campaign run` has a test to decide.
        if let Until::Drained(Some(deadline)) = options.until
            && now >= deadline
        {
            report.events_logged += log.flush(outbox)?;
            break;
        }
        let due = outbox.claim_due(now, batch)?;
        report.suppressed += due.capped;
        let claimed = due.claimed;
        if claimed.is_empty() && due.capped > 0 {
            continue; // The whole batch was capped; the next may not be.
        }
        if claimed.is_empty() {
            report.events_logged += log.flush(outbox)?;
            let Until::Drained(deadline) = options.until else {
                break;
            };
            let Some(next) = outbox.next_due()? else {
                break;
            };
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let wait_ms = ((next - now).max(0) * 1000).clamp(100, 1000) as u64;
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            continue;
        }
        let sends = claimed.iter().map(|m| {
            deliver_one(
                m,
                &directory,
                transport,
                &signer,
                hosted.as_ref(),
                config,
                resend,
            )
        });
        let outcomes: Vec<(i64, Outcome)> = futures_util::future::join_all(sends)
            .await
            .into_iter()
            .zip(&claimed)
            .map(|(outcome, m)| (m.id, outcome))
            .collect();
        for (_, o) in &outcomes {
            match o {
                Outcome::Sent(_) => report.sent += 1,
                Outcome::Retry(..) => report.retried += 1,
                Outcome::Failed(_) => report.failed += 1,
                Outcome::Suppressed(_) => report.suppressed += 1,
                Outcome::Unknown(_) => report.unknown += 1,
            }
        }
        record(outbox, &outcomes).await?;
        if last_flush.elapsed() > Duration::from_secs(10) {
            report.events_logged += log.flush(outbox)?;
            last_flush = Instant::now();
        }
        // Pace: never ahead of `messages_per_second` on average since the start.
        let due = Duration::from_secs_f64(report.sent as f64 / campaigns.messages_per_second);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }
    report.events_logged += log.flush(outbox)?;
    Ok(report)
}

/// How long to wait between attempts to re-read unreadable opt-outs.
const RETRY_READ: Duration = Duration::from_secs(5);
/// Sending stops when opt-outs stay unreadable this long.
const STOP_AFTER_UNREADABLE: Duration = Duration::from_secs(60);

/// Records outcomes, trying a few times: rows left `sending` would come back as `unknown`.
async fn record(outbox: &mut Outbox, outcomes: &[(i64, Outcome)]) -> Result<()> {
    let mut tries = 0;
    loop {
        match outbox.record(outcomes) {
            Ok(()) => return Ok(()),
            Err(e) if tries < 5 => {
                tries += 1;
                tracing::warn!("recording outcomes failed ({e}); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Checks the contact again, builds the message and hands it over.
async fn deliver_one(
    m: &Claimed,
    directory: &Directory,
    transport: &Transport,
    signer: &Signer,
    hosted: Option<&Arc<Keyring>>,
    config: &Settings,
    resend_unknown: bool,
) -> Outcome {
    let d = directory.contact(&m.contact_id);
    let now = Utc::now().timestamp();
    // Frequency choices were applied when planning (against every planned message); topic
    // opt-outs, pauses and unsubscribes made since apply here.
    let chosen = directory.choice(&m.contact_id, m.topic.as_deref(), now, []);
    if let Some(reason) = directory.suppression(d, m.require_consent).or(chosen) {
        return Outcome::Suppressed(reason.name());
    }
    // The address may have changed since planning; the export is the truth.
    let to = d.and_then(|d| directory.email(d)).unwrap_or(&m.email);
    let envelope = match Envelope::new(
        config,
        &m.sender,
        m.reply_to.as_deref(),
        signer.clone(),
        hosted.cloned(),
    ) {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(e),
    };
    let message = match build(
        &envelope,
        &m.campaign_id,
        &m.contact_id,
        to,
        &m.message_id,
        &m.content,
    ) {
        Ok(message) => message,
        Err(e) => return Outcome::Failed(format!("not sendable: {e}")),
    };
    let result = match transport {
        Transport::Smtp(relay) => relay.send(&message).await,
        Transport::Directory(dir) => {
            write_eml(dir, &m.message_id, &message.formatted()).map_err(Failure::Transient)
        }
    };
    let retry = |e: String| {
        if m.attempts >= config.campaigns.max_attempts {
            Outcome::Failed(format!("gave up after {} attempts: {e}", m.attempts))
        } else {
            Outcome::Retry(retry_at(config, m.attempts), e)
        }
    };
    match result {
        Ok(()) => Outcome::Sent(Utc::now().timestamp()),
        Err(Failure::Permanent(e)) => Outcome::Failed(e),
        Err(Failure::Transient(e)) => retry(e),
        Err(Failure::Unknown(e)) if resend_unknown => retry(e),
        Err(Failure::Unknown(e)) => Outcome::Unknown(e),
    }
}

/// Exponential backoff: `retry_seconds`, doubled per attempt, at most an hour.
fn retry_at(config: &Settings, attempts: u32) -> i64 {
    let wait =
        config.campaigns.retry_seconds * 2f64.powi(attempts.saturating_sub(1).min(20) as i32);
    Utc::now().timestamp() + wait.min(3600.0).ceil() as i64
}

/// Writes a message file atomically, named by its Message-ID.
fn write_eml(dir: &Path, message_id: &str, bytes: &[u8]) -> Result<(), String> {
    let name: String = message_id
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '@' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.eml"));
    let tmp = dir.join(format!(".{name}.eml.tmp"));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}
