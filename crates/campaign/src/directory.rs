//! What the exports say about each contact right now: address, name, consent, and whether it
//! unsubscribed, bounced or complained. The model's snapshot is as old as the last training;
//! these tables are read fresh when planning and again while sending, so that a contact who
//! unsubscribed an hour ago gets nothing. Events posted live (`POST /v1/events`, in the event
//! store) are applied on top: a contact created a minute ago can be mailed, one who withdrew
//! consent or unsubscribed a minute ago is not. The contacts' own choices (the preference
//! store: topics, frequency, pause) and erasures apply last.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use augur_consent::{Block, Forgotten, Preference, PreferenceStore};
use std::time::SystemTime;

use augur_data::History;
use augur_data::{Config, EmailEventKind, TableKind};

use crate::config::Settings;
use crate::error::{Error, Result};

/// Why a contact must not get a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suppression {
    /// No usable e-mail address: none, none with an `@`, or one holding control characters
    /// (a line break in an address is a header injection waiting to happen).
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
    /// The contact (or its address) was erased: it is never mailed again.
    Erased,
    /// The contact turned this message's topic off.
    TopicOptOut,
    /// The contact paused its e-mail until after the send instant.
    Paused,
    /// The contact asked for at most one message a week or a month, and another lies closer.
    FrequencyChoice,
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
            Self::Erased => "erased",
            Self::TopicOptOut => "topic_opt_out",
            Self::Paused => "paused",
            Self::FrequencyChoice => "frequency_choice",
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
    /// The contacts' own choices, by contact id (only those who chose anything).
    preferences: HashMap<String, Preference>,
    /// Erased contacts and addresses.
    forgotten: Forgotten,
}

impl Directory {
    /// Reads the exports of `settings` and applies the event store's contact changes and
    /// opt-outs on top (when the store exists).
    ///
    /// # Errors
    /// The exports or the store cannot be read.
    pub fn open(settings: &Settings) -> Result<Self> {
        let mut directory = Self::load(&settings.data)?;
        if let Some(store) = settings.events.as_deref().filter(|p| p.exists()) {
            let events = augur_events::EventStore::open(store)
                .and_then(|s| s.all())
                .map_err(|e| Error::Setting {
                    setting: "events.store".into(),
                    message: e.to_string(),
                })?;
            directory.apply_events(&events, settings.data.default_contact_zone());
        }
        let preferences = settings.preference_store();
        if preferences.exists() {
            let store = PreferenceStore::open(&preferences).map_err(|e| consent_error(&e))?;
            directory.preferences = store.all().map_err(|e| consent_error(&e))?;
            directory.forgotten = store.forgotten().map_err(|e| consent_error(&e))?;
        }
        directory.fingerprint = live_fingerprint(settings);
        Ok(directory)
    }

    /// What the contact chose that stops a message of `topic` at `at` (Unix seconds), given
    /// the instants of its other messages: unsubscribed from everything, the topic turned off,
    /// a pause, or a frequency it asked for.
    pub fn choice(
        &self,
        contact_id: &str,
        topic: Option<&str>,
        at: i64,
        others: impl IntoIterator<Item = i64>,
    ) -> Option<Suppression> {
        let block = self
            .preferences
            .get(contact_id)?
            .blocks(topic, at, others)?;
        Some(match block {
            Block::Unsubscribed => Suppression::Unsubscribed,
            Block::TopicOff => Suppression::TopicOptOut,
            Block::Paused => Suppression::Paused,
            Block::Frequency => Suppression::FrequencyChoice,
        })
    }

    /// Whether any contact asked for a frequency (planning then looks further back).
    pub fn has_frequency_choices(&self) -> bool {
        self.preferences.values().any(|p| p.frequency.is_some())
    }

    /// Whether the exports or the event store changed since this was read.
    pub fn is_stale_for(&self, settings: &Settings) -> bool {
        live_fingerprint(settings) != self.fingerprint
    }

    /// Applies live events, oldest first: contact changes (address, name, country, zone,
    /// consent) and unsubscribes, bounces and complaints.
    pub fn apply_events(&mut self, events: &[augur_events::Stored], default_zone: chrono_tz::Tz) {
        use augur_events::Body;
        for stored in events {
            let e = &stored.event;
            match &e.body {
                Body::Contact {
                    email,
                    first_name,
                    country,
                    timezone,
                    created_at,
                    email_consent,
                } => {
                    self.history.contacts.upsert(
                        &e.contact_id,
                        email.as_deref(),
                        first_name.as_deref(),
                        country.as_deref(),
                        timezone.as_deref(),
                        *created_at,
                        *email_consent,
                        default_zone,
                    );
                }
                Body::Email { event, .. } => {
                    let Some(reason) = opt_out(*event) else {
                        continue;
                    };
                    let Some(c) = self.contact(&e.contact_id) else {
                        continue;
                    };
                    let slot = &mut self.opted_out[c as usize];
                    *slot = Some(slot.map_or(reason, |r: Suppression| r.min(reason)));
                }
                _ => {}
            }
            self.opted_out.resize(self.history.contacts.len(), None);
        }
    }

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
            let Some(reason) = opt_out(kind) else {
                continue;
            };
            let slot = &mut opted_out[c as usize];
            *slot = Some(slot.map_or(reason, |r: Suppression| r.min(reason)));
        }
        Ok(Self {
            history,
            opted_out,
            fingerprint,
            preferences: HashMap::new(),
            forgotten: Forgotten::default(),
        })
    }

    /// Whether the contacts, products or e-mail events files changed since this was read.
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
        if !self.forgotten.is_empty()
            && (self.forgotten.contact(contacts.ids.name(c))
                || contacts.email[c as usize]
                    .as_deref()
                    .is_some_and(|e| self.forgotten.email(e)))
        {
            return Some(Suppression::Erased);
        }
        if contacts.email[c as usize]
            .as_deref()
            .is_none_or(|e| !e.contains('@') || e.chars().any(char::is_control))
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

/// The suppression an e-mail event stands for, if it is an opt-out.
fn opt_out(kind: EmailEventKind) -> Option<Suppression> {
    match kind {
        EmailEventKind::Unsubscribe => Some(Suppression::Unsubscribed),
        EmailEventKind::Bounce => Some(Suppression::Bounced),
        EmailEventKind::Complaint => Some(Suppression::Complained),
        _ => None,
    }
}

/// The exports' fingerprint, with the event store's files (and its write-ahead log) when it
/// exists.
fn live_fingerprint(settings: &Settings) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = fingerprint(&settings.data);
    let stores = [settings.events.clone(), Some(settings.preference_store())];
    for store in stores.iter().flatten().filter(|p| p.exists()) {
        walk(store, &mut out);
        walk(&wal(store), &mut out);
    }
    out.sort();
    out
}

fn consent_error(e: &augur_consent::Error) -> Error {
    Error::Setting {
        setting: "preferences.store".into(),
        message: e.to_string(),
    }
}

/// The write-ahead log beside an SQLite database: where its recent commits are.
fn wal(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Size and modification time of every file of the contacts, products and e-mail events
/// tables.
fn fingerprint(config: &Config) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    for kind in [
        TableKind::Contacts,
        TableKind::Products,
        TableKind::EmailEvents,
    ] {
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
