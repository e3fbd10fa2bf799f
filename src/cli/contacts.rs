//! `augur contacts`: data-subject rights from the command line (`export ID`, `forget ID…`), and
//! [`Records`], what the campaign and series stages hold about a contact, which `augur serve`'s
//! `GET /v1/contacts/{id}/export` and `DELETE /v1/contacts/{id}` read and erase too.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use augur_campaign::{Directory, Outbox};
use augur_consent::PreferenceStore;
use augur_flows::FlowState;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::ConfigArg;
use super::settings::Settings;

#[derive(Debug, Args)]
pub struct ContactsArgs {
    #[command(subcommand)]
    pub command: ContactsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Print what the outbox, the series, the event store and the preference store hold about
    /// a contact, as JSON (the model's predictions come from `GET /v1/contacts/{id}/export`).
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// The contact id.
        id: String,
    },
    /// Print each contact's hosted link (`<preferences.public_url>/u/<token>`): its one-click
    /// unsubscribe and preference page, for messages augur does not send (receipts, support).
    Link {
        #[command(flatten)]
        config: ConfigArg,
        /// What the link is for, recorded in its token (e.g. `receipts`).
        #[arg(long, default_value = "manual")]
        campaign: String,
        /// Contact ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Erase contacts: their queued messages are cancelled, their rows keep no personal data,
    /// their posted events and series enrollments are deleted, and their ids and addresses are
    /// kept only as salted hashes, so that no audience, listing or training takes them again.
    Forget {
        #[command(flatten)]
        config: ConfigArg,
        /// Contact ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

pub fn run(args: &ContactsArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ContactsCommand::Export { config, id } => {
            let settings = Settings::load(config.config.as_deref())?;
            let store = settings.campaign().preference_store();
            if store.exists() && PreferenceStore::open(&store)?.forgotten()?.contact(id) {
                anyhow::bail!(
                    "contact `{id}` was erased: augur keeps nothing of it but a salted hash of its id and address"
                );
            }
            let records = Records::new(&settings);
            let mut doc = records.export_all(id)?;
            doc.insert("contact_id".into(), json!(id));
            outln!("{}", serde_json::to_string_pretty(&Value::Object(doc))?);
        }
        ContactsCommand::Link {
            config,
            campaign,
            ids,
        } => {
            let settings = Settings::load(config.config.as_deref())?;
            for line in links(&settings, campaign, ids)? {
                outln!("{line}");
            }
        }
        ContactsCommand::Forget { config, ids } => {
            let settings = Settings::load(config.config.as_deref())?;
            let records = Records::new(&settings);
            let done = records.forget_all(ids)?;
            outln!(
                "Erased {} contact(s) ({} address(es) kept as salted hashes): {} queued message(s) cancelled, {} outbox row(s) cleared, {} posted event(s) and {} series enrollment(s) deleted.",
                ids.len(),
                done.addresses,
                done.cancelled,
                done.scrubbed,
                done.events,
                done.enrollments
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The hosted link of each of `ids`, signed now for `campaign`.
fn links(settings: &Settings, campaign: &str, ids: &[String]) -> anyhow::Result<Vec<String>> {
    let Some(base) = settings.preferences.public_url.as_deref() else {
        anyhow::bail!(
            "`preferences.public_url` is not set: set it to where augur serve is reachable (docs/privacy.md)"
        );
    };
    let keyring = keyring(settings)?;
    Ok(ids
        .iter()
        .map(|id| {
            let token = token(&keyring, campaign, id);
            format!("{id}\t{}/u/{token}", base.trim_end_matches('/'))
        })
        .collect())
}

/// The keys that sign hosted links (configured, or generated in the preference store).
pub fn keyring(settings: &Settings) -> anyhow::Result<augur_consent::Keyring> {
    let store = PreferenceStore::open(&settings.campaign().preference_store())?;
    Ok(augur_consent::Keyring::for_store(
        &settings.preferences,
        &store,
    )?)
}

/// The token of contact `id`'s link for `campaign`, signed now.
pub fn token(keyring: &augur_consent::Keyring, campaign: &str, id: &str) -> String {
    keyring.sign(&augur_consent::Link {
        contact: id.to_string(),
        campaign: campaign.to_string(),
        issued: chrono::Utc::now().timestamp(),
    })
}

/// What erasing did, summed over the contacts.
#[derive(Debug, Default)]
pub struct Forgotten {
    addresses: usize,
    cancelled: usize,
    scrubbed: usize,
    events: usize,
    enrollments: usize,
}

/// The campaign and series stages' records of contacts, and the stores beside them.
pub struct Records {
    settings: augur_campaign::Settings,
    events: PathBuf,
    flows: PathBuf,
}

impl Records {
    pub fn new(settings: &Settings) -> Self {
        let campaign = settings.campaign();
        Self {
            flows: super::flows::state_path(&campaign),
            events: settings.events.store.clone(),
            settings: campaign,
        }
    }

    /// Messages, series enrollments, posted events and preferences of `id`.
    fn export_all(&self, id: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
        let mut doc = self.sections(id)?;
        if self.events.exists() {
            let posted =
                augur_events::EventStore::open(&self.events)?.of_contact(id, i64::MIN, i64::MAX)?;
            let posted: Vec<Value> = posted
                .iter()
                .map(|s| serde_json::to_value(&s.event).unwrap_or(Value::Null))
                .collect();
            doc.insert("posted_events".into(), json!(posted));
        }
        let store = self.settings.preference_store();
        if store.exists() {
            doc.insert(
                "preferences".into(),
                PreferenceStore::open(&store)?.export(id)?,
            );
        }
        Ok(doc)
    }

    /// Messages and series enrollments of `id`.
    fn sections(&self, id: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
        let mut doc = serde_json::Map::new();
        let outbox = &self.settings.campaigns.outbox;
        if outbox.exists() {
            doc.insert(
                "messages".into(),
                json!(Outbox::open(outbox)?.messages_of(id)?),
            );
        }
        if self.flows.exists() {
            let series: Vec<Value> = FlowState::open(&self.flows)?
                .of_contact(id)?
                .iter()
                .map(|e| {
                    json!({
                        "flow_id": e.flow_id, "state": e.state, "reason": e.reason,
                        "triggered_at": e.triggered_at, "entered_at": e.entered_at,
                        "step": e.step, "last_sent_at": e.last_sent_at,
                    })
                })
                .collect();
            doc.insert("series".into(), json!(series));
        }
        Ok(doc)
    }

    /// Erases `ids` from every store: the preference store keeps the salted hashes of the id
    /// and of the address the exports give for it.
    fn forget_all(&self, ids: &[String]) -> anyhow::Result<Forgotten> {
        // Without readable exports the ids are still erased; their addresses cannot be hashed.
        let directory = Directory::open(&self.settings)
            .inspect_err(|e| {
                tracing::warn!(error = %e, "the exports could not be read: the erased contacts' addresses are not hashed");
            })
            .ok();
        let mut prefs = PreferenceStore::open(&self.settings.preference_store())?;
        let outbox = &self.settings.campaigns.outbox;
        let mut outbox = if outbox.exists() {
            Some(Outbox::open(outbox)?)
        } else {
            None
        };
        let mut events = self
            .events
            .exists()
            .then(|| augur_events::EventStore::open(&self.events))
            .transpose()?;
        let mut flows = self
            .flows
            .exists()
            .then(|| FlowState::open(&self.flows))
            .transpose()?;
        let now = chrono::Utc::now().timestamp();
        let mut done = Forgotten::default();
        for id in ids {
            let email = directory
                .as_ref()
                .and_then(|d| d.contact(id).and_then(|c| d.email(c)));
            done.addresses += usize::from(email.is_some());
            prefs.forget(id, email, now)?;
            if let Some(outbox) = outbox.as_mut() {
                let (cancelled, scrubbed) = outbox.forget(id)?;
                done.cancelled += cancelled;
                done.scrubbed += scrubbed;
            }
            if let Some(store) = events.as_mut() {
                done.events += store.forget(id)?;
            }
            if let Some(state) = flows.as_mut() {
                done.enrollments += state.forget(id)?;
            }
        }
        tracing::info!(contacts = ids.len(), "contacts erased");
        Ok(done)
    }
}

impl augur_serve::ContactRecords for Records {
    fn export(&self, contact: &str) -> Result<serde_json::Map<String, Value>, String> {
        self.sections(contact).map_err(|e| format!("{e:#}"))
    }

    fn forget(&self, contact: &str) -> Result<Value, String> {
        self.forget_all(&[contact.to_string()])
            .map(|done| {
                json!({
                    "addresses_hashed": done.addresses, "messages_cancelled": done.cancelled, "outbox_rows_cleared": done.scrubbed,
                    "posted_events_deleted": done.events, "series_enrollments_deleted": done.enrollments,
                })
            })
            .map_err(|e| format!("{e:#}"))
    }
}

/// The unsubscribes kept in the preference store (one-click, the page, posted opt-outs), as
/// `unsubscribe` e-mail events for training.
pub fn opt_out_rows(settings: &Settings) -> anyhow::Result<Vec<augur_data::LiveRow>> {
    let path = settings.campaign().preference_store();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let rows: Vec<augur_data::LiveRow> = PreferenceStore::open(&path)?
        .all()?
        .into_iter()
        .filter_map(|(contact_id, p)| {
            Some(augur_data::LiveRow::Email {
                contact_id,
                kind: augur_data::EmailEventKind::Unsubscribe,
                campaign_id: None,
                machine_open: false,
                at: p.unsubscribed_at?,
            })
        })
        .collect();
    if !rows.is_empty() {
        tracing::info!(
            unsubscribes = rows.len(),
            "adding the preference store's unsubscribes"
        );
    }
    Ok(rows)
}

/// The erased contacts, for training to leave out (`None` when nobody was erased).
pub fn erased(settings: &Settings) -> anyhow::Result<Option<augur_data::Erased>> {
    let path = settings.campaign().preference_store();
    if !path.exists() {
        return Ok(None);
    }
    let forgotten = PreferenceStore::open(&path)?.forgotten()?;
    if forgotten.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(move |id: &str, email: Option<&str>| {
        forgotten.contact(id) || email.is_some_and(|e| forgotten.email(e))
    })))
}
