//! What the exports say about each contact right now: address, name, consent, and whether it
//! unsubscribed, bounced or complained. The model's snapshot is as old as the last training;
//! these tables are read fresh when planning and again while sending, so that a contact who
//! unsubscribed an hour ago gets nothing.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use augur_data::History;
use augur_data::{Config, EmailEventKind, TableKind};

use crate::error::Result;

/// Why a contact must not get a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suppression {
    /// No e-mail address.
    NoEmail,
    /// Consent withheld (or, when required, not recorded).
    NoConsent,
    /// Unsubscribed.
    Unsubscribed,
    /// A message bounced.
    Bounced,
    /// Complained (marked as spam).
    Complained,
    /// Planned for the same campaign (sent or held out) within `resend_after_days`.
    RecentlyInCampaign,
    /// Over the frequency cap.
    FrequencyCap,
    /// No instant of the window lies outside the quiet hours in the contact's zone.
    NoSendTime,
    /// The templates failed for this contact (e.g. a filter on a value only it has); the run
    /// goes on for everyone else and the failure is logged.
    RenderingFailed,
}

impl Suppression {
    /// Name used in the outbox and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoEmail => "no_email",
            Self::NoConsent => "no_consent",
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
            Self::RecentlyInCampaign => "recently_in_campaign",
            Self::FrequencyCap => "frequency_cap",
            Self::NoSendTime => "no_send_time",
            Self::RenderingFailed => "rendering_failed",
        }
    }
}

/// Contacts and products as the exports give them now.
#[derive(Debug)]
pub struct Directory {
    /// Contacts, products, and the unsubscribe, bounce and complaint e-mail events (orders,
    /// web events and other e-mail events are not read).
    pub history: History,
    /// Per contact: unsubscribed, bounced, complained (any time).
    opted_out: Vec<Option<Suppression>>,
    fingerprint: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

impl Directory {
    /// Reads the contacts, products and e-mail events tables of `config`.
    pub fn load(config: &Config) -> Result<Self> {
        let mut narrow = config.clone();
        narrow.tables.orders.path = None;
        narrow.tables.web_events.path = None;
        let fingerprint = fingerprint(config);
        let (history, _) = augur_data::load_email_kinds(
            &narrow,
            &[
                EmailEventKind::Unsubscribe,
                EmailEventKind::Bounce,
                EmailEventKind::Complaint,
            ],
        )?;
        let mut opted_out = vec![None; history.contacts.len()];
        let e = &history.email_events;
        for (&c, &kind) in e.contact.iter().zip(&e.kind) {
            let reason = match kind {
                EmailEventKind::Unsubscribe => Suppression::Unsubscribed,
                EmailEventKind::Bounce => Suppression::Bounced,
                EmailEventKind::Complaint => Suppression::Complained,
                _ => continue,
            };
            let slot = &mut opted_out[c as usize];
            *slot = Some(slot.map_or(reason, |r: Suppression| r.min(reason)));
        }
        Ok(Self {
            history,
            opted_out,
            fingerprint,
        })
    }

    /// Whether the contacts or e-mail events files changed since this was read.
    pub fn is_stale(&self, config: &Config) -> bool {
        fingerprint(config) != self.fingerprint
    }

    /// The dense index of an external contact id.
    pub fn contact(&self, id: &str) -> Option<u32> {
        self.history.contacts.ids.get(id)
    }

    /// The address of a contact.
    pub fn email(&self, c: u32) -> Option<&str> {
        self.history.contacts.email[c as usize].as_deref()
    }

    /// Why contact `c` (`None`: not in the exports) must not get a message, if it must not.
    pub fn suppression(&self, c: Option<u32>, require_consent: bool) -> Option<Suppression> {
        let Some(c) = c else {
            return Some(Suppression::NoEmail);
        };
        let contacts = &self.history.contacts;
        if contacts.email[c as usize]
            .as_deref()
            .is_none_or(|e| !e.contains('@'))
        {
            return Some(Suppression::NoEmail);
        }
        match contacts.email_consent[c as usize] {
            Some(false) => return Some(Suppression::NoConsent),
            None if require_consent => return Some(Suppression::NoConsent),
            _ => {}
        }
        self.opted_out[c as usize]
    }
}

/// Size and modification time of every file of the contacts and e-mail events tables.
fn fingerprint(config: &Config) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    for kind in [TableKind::Contacts, TableKind::EmailEvents] {
        if let Some(root) = &config.tables.get(kind).path {
            walk(root, &mut out);
        }
    }
    out.sort();
    out
}

fn walk(path: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                walk(&entry.path(), out);
            }
        }
    } else {
        // Our own `sent` files (and their temporary names) hold no opt-outs; skipping them
        // keeps each flush of sent rows from forcing a re-read.
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with(crate::events::FILE_PREFIX) && !name.starts_with('.') {
            out.push((path.to_path_buf(), meta.len(), meta.modified().ok()));
        }
    }
}
