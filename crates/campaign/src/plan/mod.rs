//! Planning a run: select the audience with the current model, drop whoever must not get the
//! message (counting each reason), split off the holdout, pick each contact's variant and send
//! instant, render, and store it all in the outbox in one transaction.
//!
//! A run is one campaign on one (UTC) day: `winback-2026-11-28`. Re-planning it adds nothing
//! twice (rows are unique per run and contact). Holdout and variant are hashes of the campaign
//! and the contact, so a contact lands in the same group on every plan and every night.

mod context;
mod preview;

use std::collections::{BTreeMap, HashMap};

use crate::config::Settings;
use augur_model::Artifact;
use augur_model::Fields;
use augur_model::{Filters, Request};
use augur_segment::Matcher;
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;

use crate::directory::{Directory, Suppression};
use crate::error::{Error, Result};
use crate::message::{Envelope, Signer, digest_hex, message_id};
use crate::outbox::{Earlier, Outbox, PlanFacts, Planned, Rendered, Run, Status, TestRecord};
use crate::render::{CampaignView, ContactView, Context, Templates};

use crate::schedule::Window;
use crate::spec::Campaign;
pub use preview::preview;

/// What a plan selected, dropped and scheduled.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// The run.
    pub run_id: String,
    /// Model version used.
    pub model_version: String,
    /// Contacts matching the audience rule.
    pub audience: usize,
    /// Dropped, by reason.
    pub suppressed: BTreeMap<&'static str, usize>,
    /// Kept out as the control group.
    pub holdout: usize,
    /// Waiting for the A/B test's winner (planned when it is decided).
    pub awaiting_test: usize,
    /// Messages to send, by variant.
    pub variants: BTreeMap<String, usize>,
    /// Messages by local hour of day of their send time.
    pub by_local_hour: [usize; 24],
    /// Messages by how their send time was chosen.
    pub send_time_sources: BTreeMap<&'static str, usize>,
    /// Rows new in the outbox (0 when the run was planned before).
    pub added: usize,
}

impl Summary {
    /// Messages to send.
    pub fn messages(&self) -> usize {
        self.variants.values().sum()
    }
}

/// A stable number in `[0, 1)` for a contact, per campaign and purpose.
fn unit(campaign: &str, purpose: &str, contact: &str) -> f64 {
    let hex = digest_hex(&[campaign, purpose, contact], 8);
    u64::from_str_radix(&hex, 16).unwrap_or(0) as f64 / 2f64.powi(64)
}

/// The run id of `campaign` planned at `at`.
pub fn run_id(campaign: &str, at: DateTime<Utc>) -> String {
    format!("{campaign}-{}", at.format("%Y-%m-%d"))
}

/// The compiled audience rule.
fn audience(config: &Settings, campaign: &Campaign, fields: &Fields) -> Result<Matcher> {
    let spec = &campaign.file.audience;
    if let Some(rule) = &spec.rule {
        return Ok(rule.compile(&fields.schema)?);
    }
    let name = spec.segment.as_deref().unwrap_or_default();
    let segments = augur_segment::catalog(&config.segments, &fields.schema)?;
    segments
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.matcher.clone())
        .ok_or_else(|| Error::Campaign {
            path: campaign.path.clone(),
            message: format!(
                "[audience] segment `{name}` does not exist; segments: {}",
                segments
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// The envelope of a campaign: sender, reply-to and unsubscribe links.
pub fn envelope(config: &Settings, campaign: &Campaign, signing_key: Vec<u8>) -> Result<Envelope> {
    let sender = &campaign.file.sender;
    let hosted = crate::message::hosted_keyring(config).map_err(|message| Error::Setting {
        setting: "preferences".into(),
        message,
    })?;
    Envelope::new(
        config,
        &sender.from,
        sender.reply_to.as_deref(),
        Signer::new(signing_key),
        hosted,
    )
    .map_err(|e| Error::Campaign {
        path: campaign.path.clone(),
        message: format!("[sender] {e}"),
    })
}

/// Everything a plan reads.
pub struct Inputs<'a> {
    /// Configuration (segments, tables, campaign settings).
    pub config: &'a Settings,
    /// The trained model.
    pub artifact: &'a Artifact,
    /// The campaign.
    pub campaign: &'a Campaign,
    /// The exports as they are now.
    pub directory: &'a Directory,
    /// Planning instant.
    pub at: DateTime<Utc>,
}

/// Plans a run; rows are returned, not stored (see [`store_plan`]).
///
/// Each contact of the model goes through the same steps, in parallel: the audience rule, then
/// suppression (consent, recent sends of this campaign, the frequency cap, no send time), then
/// the holdout and the variant, then the message itself.
///
/// # Errors
/// The audience rule or a template does not compile, the outbox cannot be read, or a template
/// fails to render for a contact (naming the contact).
pub fn plan(inputs: &Inputs<'_>, outbox: &Outbox) -> Result<(Summary, Vec<Planned>)> {
    let mut planner = Planner::new(
        inputs,
        outbox,
        run_id(inputs.campaign.id(), inputs.at),
        None,
    )?;
    planner.decided = decided_winner(inputs, outbox, &planner.run)?;
    let snapshot = &inputs.artifact.snapshot;
    let rows: Vec<Planned> = (0..snapshot.len())
        .into_par_iter()
        .filter_map(|c| planner.plan_one(c).transpose())
        .collect::<Result<Vec<_>>>()?;
    if let Some(message) = planner.unrendered(&rows, "") {
        return Err(Error::Campaign {
            path: inputs.campaign.path.clone(),
            message,
        });
    }
    let summary = summarize(
        planner.run,
        &inputs.artifact.manifest.version,
        snapshot,
        &rows,
    );
    Ok((summary, rows))
}

/// Plans chosen `contacts` into `run` as of `inputs.at`, without selecting them again: each
/// at its own best instant of a window that opens then, checked for opt-outs and caps, with
/// `variant` (an index into the campaign's variants) or, when `None`, the campaign's split.
/// Contacts the model does not know (new since it was trained) get the population's send time
/// and the most popular products. Rows are returned, not stored: an A/B test's remainder is
/// stored by [`Outbox::decide`], a series' step by [`Outbox::insert_plan`]. `triggers` gives a
/// series' contacts the product that started their enrollment (empty for a campaign).
///
/// # Errors
/// As [`plan`]; and when no message renders at all.
pub fn plan_contacts(
    inputs: &Inputs<'_>,
    outbox: &Outbox,
    run: &str,
    variant: Option<usize>,
    contacts: &[String],
    triggers: HashMap<String, TriggerProduct>,
) -> Result<Vec<Planned>> {
    let mut planner = Planner::new(inputs, outbox, run.to_string(), variant)?;
    planner.preselected = true;
    planner.triggers = triggers;
    let snapshot = &inputs.artifact.snapshot;
    let rows: Vec<Planned> = contacts
        .par_iter()
        .map(|id| match snapshot.contact(id) {
            Some(c) => planner
                .plan_one(c)
                .map(|row| row.expect("a chosen contact is always planned")),
            None => planner.plan_new(id),
        })
        .collect::<Result<_>>()?;
    // As in `plan`: a template that fails for everyone stops before anything is stored.
    if let Some(message) = planner.unrendered(&rows, ", so nothing was stored") {
        return Err(Error::Campaign {
            path: inputs.campaign.path.clone(),
            message,
        });
    }
    Ok(rows)
}

/// The variant index of the recorded winner of `run`'s A/B test, if it was decided (and the
/// campaign file still has that variant).
fn decided_winner(inputs: &Inputs<'_>, outbox: &Outbox, run: &str) -> Result<Option<usize>> {
    if inputs.campaign.file.test.is_none() {
        return Ok(None);
    }
    let winner = outbox
        .run_tests(inputs.campaign.id())?
        .into_iter()
        .find(|t| t.run_id == run)
        .and_then(|t| t.decision)
        .map(|d| d.winner);
    Ok(winner.and_then(|w| {
        let variants = &inputs.campaign.file.variants;
        variants.iter().position(|v| v.name == w)
    }))
}

/// What every contact's plan shares: compiled once, read by all threads.
struct Planner<'a> {
    inputs: &'a Inputs<'a>,
    models: augur_model::Models<'a>,
    fields: Fields,
    matcher: Matcher,
    /// Every named segment, for the plan facts that reports group by.
    segments: Vec<(String, Matcher)>,
    /// Set when planning an A/B test's remainder: everyone gets this variant, no split.
    forced: Option<usize>,
    /// The contacts were chosen before (an A/B test's remainder, a series' step): the audience
    /// rule is not applied again.
    preselected: bool,
    /// The winner of this run's A/B test when it was decided before this plan: contacts new
    /// to the run outside the test's share get it instead of waiting.
    decided: Option<usize>,
    templates: Templates,
    envelope: Envelope,
    run: String,
    window: Window,
    /// Earlier messages by contact, for the cap and the campaign's own resend rule.
    earlier: HashMap<String, Vec<Earlier>>,
    request: Request,
    /// The model's product index → the exports' product index.
    product_of: Vec<Option<u32>>,
    weights: Vec<f64>,
    /// Per variant, its first per-contact rendering failure: for the error when a variant
    /// renders for nobody (a typo in its subject, say), which would otherwise quietly turn
    /// an A/B test into a single message.
    first_failure: Vec<std::sync::OnceLock<String>>,
    /// In a series' step: the product that started each contact's enrollment.
    triggers: HashMap<String, TriggerProduct>,
    /// The most popular products, ranked once for every contact the model does not know.
    popular: std::sync::OnceLock<Vec<(u32, f64)>>,
}

/// The product that started a contact's enrollment in a series, which its messages show as
/// `trigger_product` (see `docs/campaigns.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerProduct {
    /// External product id.
    pub product_id: String,
    /// For a price drop, the price before it.
    pub previous_price: Option<f64>,
}

/// A contact being planned: in the model's snapshot (`c`), or new since it was trained.
#[derive(Clone, Copy)]
struct Subject<'s> {
    /// The model's index.
    c: Option<usize>,
    /// External id.
    contact_id: &'s str,
    /// Index in the exports (and live contact changes).
    d: Option<u32>,
    /// Time zone its local hours are read in.
    zone: chrono_tz::Tz,
    /// ISO 3166-1 alpha-2 country.
    country: Option<&'static str>,
}

/// Whether a contact that passed suppression is held out, gets a variant, or waits for the A/B
/// test's winner.
enum Assignment {
    Holdout,
    Variant(usize),
    AwaitingTest,
}

impl<'a> Planner<'a> {
    fn new(
        inputs: &'a Inputs<'a>,
        outbox: &Outbox,
        run: String,
        forced: Option<usize>,
    ) -> Result<Self> {
        let Inputs {
            config,
            artifact,
            campaign,
            directory,
            at,
        } = *inputs;
        let fields = Fields::new(&artifact.snapshot);
        let matcher = audience(config, campaign, &fields)?;
        // With topics configured, a campaign's must be one of them (a typo would never match a
        // contact's choice); without any, contacts cannot turn topics off and any name passes.
        if let Some(topic) = campaign.file.topic.as_deref()
            && !config.preferences.topics.is_empty()
            && config.preferences.topic(topic).is_none()
        {
            return Err(Error::Campaign {
                path: campaign.path.clone(),
                message: format!(
                    "topic `{topic}` is not one of `[preferences] topics` ({}); add it there or fix the name",
                    config
                        .preferences
                        .topics
                        .iter()
                        .map(|t| t.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let templates = Templates::compile(campaign)?;
        let signing_key = outbox.signing_key(config.campaigns.signing_key.as_deref())?;
        let envelope = envelope(config, campaign, signing_key)?;
        // Segments are recorded for reports only: one that no longer compiles costs its group
        // there, not the plan (the audience rule was checked on its own above).
        let segments = match augur_segment::catalog(&config.segments, &fields.schema) {
            Ok(all) => all.into_iter().map(|s| (s.name, s.matcher)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "segments not recorded with the plan");
                Vec::new()
            }
        };
        let cap = campaign.file.caps;
        let repeat_after = campaign.file.audience.resend_after_days;
        // A contact's own frequency choice looks back a month at most.
        let chosen = if directory.has_frequency_choices() {
            30.0
        } else {
            0.0
        };
        let lookback_days = cap
            .map_or(0.0, |c| c.per_days)
            .max(repeat_after)
            .max(chosen);
        let lookback = Duration::seconds((lookback_days * 86_400.0).ceil() as i64);
        let earlier = outbox.earlier_messages(
            (at - lookback - Duration::days(1)).timestamp(),
            (at + campaign.window + lookback + Duration::days(2)).timestamp(),
            &run,
        )?;
        let content = &campaign.file.content;
        let products = &directory.history.products;
        Ok(Self {
            inputs,
            models: artifact.models(),
            fields,
            matcher,
            segments,
            forced,
            preselected: false,
            decided: None,
            templates,
            envelope,
            run,
            window: Window {
                start: campaign.window_start,
                length: campaign.window,
                quiet: campaign.quiet,
                fallback_time: campaign.fallback_time,
            },
            earlier,
            request: Request {
                mode: campaign.mode,
                k: content.recommendations,
                filters: Filters {
                    in_stock_only: content.in_stock,
                    ..Filters::default()
                },
            },
            product_of: artifact
                .affinity
                .product_ids
                .iter()
                .map(|p| products.ids.get(p))
                .collect(),
            weights: campaign.file.variants.iter().map(|v| v.weight).collect(),
            first_failure: campaign
                .file
                .variants
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            triggers: HashMap::new(),
            popular: std::sync::OnceLock::new(),
        })
    }

    /// The plan of contact `c` (the model's index), or `None` outside the audience.
    fn plan_one(&self, c: usize) -> Result<Option<Planned>> {
        let snapshot = &self.inputs.artifact.snapshot;
        let record = self.fields.record(snapshot, &self.models, c);
        // Contacts chosen before (an A/B test's remainder, a series' step) are not selected again.
        if !self.preselected && !self.matcher.matches(&record) {
            return Ok(None);
        }
        let contact_id = snapshot.contacts.name(c as u32);
        // Segments are filled in once the contact is known to be held out or mailed: only
        // those rows are grouped in reports.
        let facts = PlanFacts {
            churn_tier: Some(snapshot.churn_tier(c)),
            country: Some(snapshot.country[c].unwrap_or("unknown")),
            segments: String::new(),
        };
        self.plan_subject(self.subject(Some(c), contact_id), facts)
            .map(Some)
    }

    /// The names of the segments contact `c` is in, comma-separated.
    fn segments_of(&self, c: usize) -> String {
        let snapshot = &self.inputs.artifact.snapshot;
        let record = self.fields.record(snapshot, &self.models, c);
        let names: Vec<&str> = self
            .segments
            .iter()
            .filter(|(_, m)| m.matches(&record))
            .map(|(name, _)| name.as_str())
            .collect();
        names.join(",")
    }

    /// The plan of a contact the model does not know (new since it was trained, known from
    /// the exports or live events only): the population's send time and the most popular
    /// products stand in for its own.
    fn plan_new(&self, contact_id: &str) -> Result<Planned> {
        let subject = self.subject(None, contact_id);
        let facts = PlanFacts {
            churn_tier: Some("not_scored"),
            country: Some(subject.country.unwrap_or("unknown")),
            segments: String::new(),
        };
        self.plan_subject(subject, facts)
    }

    /// `contact_id` as planning sees it: its index in the model (if any) and in the exports,
    /// its zone and country.
    fn subject<'s>(&self, c: Option<usize>, contact_id: &'s str) -> Subject<'s> {
        let snapshot = &self.inputs.artifact.snapshot;
        let directory = self.inputs.directory;
        let d = directory.contact(contact_id);
        let contacts = &directory.history.contacts;
        let (zone, country) = match (c, d) {
            (Some(c), _) => (snapshot.timezone[c], snapshot.country[c]),
            (None, Some(d)) => (contacts.timezone[d as usize], contacts.country[d as usize]),
            (None, None) => (self.inputs.config.data.default_contact_zone(), None),
        };
        Subject {
            c,
            contact_id,
            d,
            zone,
            country,
        }
    }

    /// Why the plan must stop, if it must: a variant whose every message failed to render
    /// (`then` is added after "rendered", e.g. `, so nothing was stored`).
    fn unrendered(&self, rows: &[Planned], then: &str) -> Option<String> {
        let variants = &self.inputs.campaign.file.variants;
        variants.iter().zip(&self.first_failure).find_map(|(v, first)| {
            let failure = first.get()?;
            let rendered = rows
                .iter()
                .any(|r| r.status == Status::Queued && r.variant.as_deref() == Some(&v.name));
            (!rendered).then(|| {
                format!(
                    "no message of variant `{}` could be rendered{then}; the first failure: {failure}",
                    v.name
                )
            })
        })
    }

    /// Suppression, holdout and variant, send time and rendering of one contact.
    fn plan_subject(&self, s: Subject<'_>, facts: PlanFacts) -> Result<Planned> {
        let Inputs {
            campaign,
            directory,
            ..
        } = *self.inputs;
        let (chosen, opens) = self.send_time(&s);
        let (send_at, source) = chosen.unwrap_or((opens, "none"));
        let mut row = Planned {
            contact_id: s.contact_id.to_string(),
            email: s.d.and_then(|d| directory.email(d)).map(str::to_string),
            variant: None,
            status: Status::Suppressed,
            reason: None,
            send_at: send_at.timestamp(),
            send_time_source: source,
            expires_at: (opens + self.window.length).timestamp(),
            message_id: None,
            content: None,
            facts,
        };
        if let Some(reason) = self.suppression(s.d, s.contact_id, row.send_at, chosen.is_none()) {
            row.reason = Some(reason.name());
            return Ok(row);
        }
        if let Some(c) = s.c {
            row.facts.segments = self.segments_of(c);
        }
        let variant = match self.assignment(s.contact_id) {
            Assignment::Holdout => {
                row.status = Status::Holdout;
                return Ok(row);
            }
            Assignment::AwaitingTest => {
                row.status = Status::AwaitingTest;
                return Ok(row);
            }
            Assignment::Variant(v) => v,
        };
        let variant_name = &campaign.file.variants[variant].name;
        let email = row.email.as_deref().unwrap_or_default();
        let content = match self.render(&s, variant, email, send_at) {
            Ok(content) => content,
            // One contact's failure stops nobody else's message; `plan` fails only when no
            // message renders at all (then the template is wrong for everyone).
            Err(
                e @ Error::Template {
                    contact: Some(_), ..
                },
            ) => {
                tracing::warn!(error = %e, "message not rendered; contact skipped");
                if let Some(first) = self.first_failure.get(variant) {
                    first.get_or_init(|| e.to_string());
                }
                row.reason = Some(Suppression::RenderingFailed.name());
                return Ok(row);
            }
            Err(e) => return Err(e),
        };
        row.content = Some(content);
        row.status = Status::Queued;
        row.variant = Some(variant_name.clone());
        row.message_id = Some(message_id(&self.run, s.contact_id, &self.envelope.from));
        Ok(row)
    }

    /// The contact's send instant and how it was chosen (`None` when the window holds no
    /// allowed instant), and when its window opens.
    fn send_time(&self, s: &Subject<'_>) -> (Option<(DateTime<Utc>, &'static str)>, DateTime<Utc>) {
        let Inputs {
            artifact,
            campaign,
            at,
            ..
        } = *self.inputs;
        let snapshot = &artifact.snapshot;
        let chosen = if campaign.file.schedule.per_contact {
            let engagement = match s.c {
                Some(c) => snapshot.engagement(c),
                None => augur_model::Engagement::Sparse {
                    hours: &[],
                    weights: &[],
                },
            };
            let predicted = self.models.send_time.predict(engagement);
            let scores = self.models.send_time.send_scores(&predicted.profile);
            self.window
                .choose(at, s.zone, &scores, predicted.source.name())
        } else {
            self.window.choose(at, s.zone, &[], "window_start")
        };
        (chosen, self.window.opens(at, s.zone))
    }

    /// Why the contact must not get this message, if it must not: consent and list state
    /// first, then this campaign's own resend rule, the frequency cap, and a missing send time.
    fn suppression(
        &self,
        d: Option<u32>,
        contact_id: &str,
        send_at: i64,
        no_send_time: bool,
    ) -> Option<Suppression> {
        let campaign = self.inputs.campaign;
        let id = campaign.id();
        let mine = self.earlier.get(contact_id).map_or(&[][..], Vec::as_slice);
        let capped = campaign.file.caps.is_some_and(|cap| {
            let span = (cap.per_days * 86_400.0) as i64;
            let near = mine.iter().filter(|e| (e.at - send_at).abs() < span);
            near.count() >= cap.max_messages as usize
        });
        let repeat = (campaign.file.audience.resend_after_days * 86_400.0) as i64;
        let recently_in_campaign = mine
            .iter()
            .any(|e| e.campaign_id == id && (e.at - send_at).abs() < repeat);
        let directory = self.inputs.directory;
        let chosen = directory.choice(
            contact_id,
            campaign.file.topic.as_deref(),
            send_at,
            mine.iter().map(|e| e.at),
        );
        directory
            .suppression(d, campaign.file.audience.require_consent)
            .or(chosen)
            .or(recently_in_campaign.then_some(Suppression::RecentlyInCampaign))
            .or(capped.then_some(Suppression::FrequencyCap))
            .or(no_send_time.then_some(Suppression::NoSendTime))
    }

    /// The message of a contact in `variant`, sent at `send_at`.
    fn render(
        &self,
        s: &Subject<'_>,
        variant: usize,
        email: &str,
        send_at: DateTime<Utc>,
    ) -> Result<Rendered> {
        let Inputs {
            artifact,
            campaign,
            directory,
            ..
        } = *self.inputs;
        let snapshot = &artifact.snapshot;
        let contacts = &directory.history.contacts;
        let recommendations = match s.c {
            Some(c) => snapshot.recommend(&self.models, c, &self.request),
            None => self.popular.get_or_init(|| self.popular()).clone(),
        };
        let products = context::product_views(
            &recommendations,
            &self.product_of,
            &directory.history.products,
        );
        let categories =
            s.c.map(|c| context::category_shares(snapshot, c))
                .unwrap_or_default();
        let trigger_product = self
            .triggers
            .get(s.contact_id)
            .and_then(|t| context::trigger_product_view(t, &directory.history.products));
        let d = s.d.map(|d| d as usize);
        let first_name = d.and_then(|d| contacts.first_name[d].as_deref());
        let (_, link) = self.envelope.unsubscribe.header_and_link(
            campaign.id(),
            s.contact_id,
            self.inputs.at.timestamp(),
        );
        let local = send_at
            .with_timezone(&s.zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let context = Context {
            contact: ContactView {
                id: s.contact_id,
                email,
                first_name,
                country: s.country,
                timezone: s.zone.name(),
                attributes: context::attributes(contacts, d),
            },
            first_name: first_name.unwrap_or(&campaign.file.content.first_name_fallback),
            products: &products,
            trigger_product,
            category_affinity: &categories,
            churn_tier: s.c.map_or("not_scored", |c| snapshot.churn_tier(c)),
            churn_risk: s.c.and_then(|c| snapshot.churn_risk(c)),
            campaign: CampaignView {
                id: campaign.id(),
                name: &campaign.file.name,
            },
            variant: &campaign.file.variants[variant].name,
            unsubscribe_url: link.as_deref(),
            send_at_local: &local,
        };
        self.templates.render(variant, &context)
    }

    /// The most popular products (in stock, when the campaign asks), for a contact the model
    /// does not know.
    fn popular(&self) -> Vec<(u32, f64)> {
        let affinity = &self.inputs.artifact.affinity;
        let catalog = &self.inputs.artifact.snapshot.products;
        let mut ranked: Vec<(u32, f64)> = affinity
            .popularity
            .iter()
            .enumerate()
            .filter(|(p, _)| {
                !self.request.filters.in_stock_only
                    || catalog.in_stock.get(*p).copied().unwrap_or(false)
            })
            .map(|(p, w)| (p as u32, f64::from(*w)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(self.request.k);
        ranked
    }

    /// Holdout, variant or waiting for the test, from hashes of the campaign and the contact:
    /// the same on every plan. A contact planned for a test's winner gets it.
    fn assignment(&self, contact_id: &str) -> Assignment {
        if let Some(winner) = self.forced {
            return Assignment::Variant(winner);
        }
        let campaign = self.inputs.campaign;
        let id = campaign.id();
        if unit(id, "holdout", contact_id) < campaign.file.audience.holdout {
            return Assignment::Holdout;
        }
        if let Some(test) = &campaign.file.test
            && unit(id, "test", contact_id) >= test.share
        {
            return self
                .decided
                .map_or(Assignment::AwaitingTest, Assignment::Variant);
        }
        let total: f64 = self.weights.iter().sum();
        let pick = unit(id, "variant", contact_id) * total;
        let mut acc = 0.0;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if pick < acc {
                return Assignment::Variant(i);
            }
        }
        Assignment::Variant(self.weights.len() - 1)
    }
}

/// Counts what a plan selected, dropped and scheduled, by reason, variant, send-time source and
/// local hour.
fn summarize(
    run_id: String,
    model_version: &str,
    snapshot: &augur_model::Snapshot,
    rows: &[Planned],
) -> Summary {
    let mut summary = Summary {
        run_id,
        model_version: model_version.to_string(),
        audience: rows.len(),
        ..Summary::default()
    };
    for r in rows {
        match r.status {
            Status::Holdout => summary.holdout += 1,
            Status::AwaitingTest => summary.awaiting_test += 1,
            Status::Queued => {
                *summary
                    .variants
                    .entry(r.variant.clone().unwrap_or_default())
                    .or_default() += 1;
                *summary
                    .send_time_sources
                    .entry(r.send_time_source)
                    .or_default() += 1;
                if let Some(c) = snapshot.contact(&r.contact_id) {
                    let zone = snapshot.timezone[c];
                    if let Some(t) = DateTime::<Utc>::from_timestamp(r.send_at, 0) {
                        let hour = chrono::Timelike::hour(&t.with_timezone(&zone));
                        summary.by_local_hour[hour as usize] += 1;
                    }
                }
            }
            _ => {
                *summary
                    .suppressed
                    .entry(r.reason.unwrap_or("other"))
                    .or_default() += 1;
            }
        }
    }
    summary
}

/// Stores a plan in the outbox; returns the summary with the number of new rows.
pub fn store_plan(
    outbox: &mut Outbox,
    inputs: &Inputs<'_>,
    mut summary: Summary,
    rows: &[Planned],
) -> Result<Summary> {
    let window_end = rows
        .iter()
        .map(|r| r.expires_at)
        .max()
        .unwrap_or(inputs.at.timestamp());
    let run = Run {
        run_id: summary.run_id.clone(),
        campaign_id: inputs.campaign.id().to_string(),
        planned_for: inputs.at.timestamp(),
        window_end,
        model_version: summary.model_version.clone(),
        sender: inputs.campaign.file.sender.from.clone(),
        reply_to: inputs.campaign.file.sender.reply_to.clone(),
        require_consent: inputs.campaign.file.audience.require_consent,
        cap: inputs.campaign.file.caps,
        topic: inputs.campaign.file.topic.clone(),
        test: inputs.campaign.file.test.as_ref().map(|t| {
            let hours = |h: f64| inputs.at.timestamp() + (h * 3600.0).round() as i64;
            TestRecord {
                metric: t.metric.name().to_string(),
                decide_after: hours(t.decide_after_hours),
                decide_by: hours(t.decide_by_hours),
                confidence: t.confidence,
                min_per_variant: t.min_per_variant,
                default_variant: inputs.campaign.default_variant().to_string(),
            }
        }),
    };
    let inserted = outbox.insert_plan(&run, rows)?;
    if !inserted.capped.is_empty() {
        // Another plan stored messages for some of these contacts meanwhile: count them as
        // the outbox holds them.
        let mut stored = rows.to_vec();
        for &i in &inserted.capped {
            let row = &mut stored[i];
            row.status = Status::Suppressed;
            row.reason = Some(Suppression::FrequencyCap.name());
            row.variant = None;
        }
        let run_id = std::mem::take(&mut summary.run_id);
        summary = summarize(
            run_id,
            &summary.model_version,
            &inputs.artifact.snapshot,
            &stored,
        );
    }
    summary.added = inserted.added;
    Ok(summary)
}
