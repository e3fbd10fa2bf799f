//! Planning a run: select the audience with the current model, drop whoever must not get the
//! message (counting each reason), split off the holdout, pick each contact's variant and send
//! instant, render, and store it all in the outbox in one transaction.
//!
//! A run is one campaign on one (UTC) day: `winback-2026-11-28`. Re-planning it adds nothing
//! twice (rows are unique per run and contact). Holdout and variant are hashes of the campaign
//! and the contact, so a contact lands in the same group on every plan and every night.

use std::collections::BTreeMap;

use crate::config::Settings;
use augur_data::AttributeColumn;
use augur_model::Artifact;
use augur_model::Fields;
use augur_model::{Filters, Request};
use augur_segment::Matcher;
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;

use crate::directory::{Directory, Suppression};
use crate::error::{Error, Result};
use crate::message::{Envelope, Signer, digest_hex, message_id};
use crate::outbox::{Outbox, Planned, Run};
use crate::render::{CampaignView, CategoryShare, ContactView, Context, ProductView, Templates};
use crate::schedule::Window;
use crate::spec::Campaign;

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
    Envelope::new(
        config,
        &sender.from,
        sender.reply_to.as_deref(),
        Signer::new(signing_key),
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
pub fn plan(inputs: &Inputs<'_>, outbox: &Outbox) -> Result<(Summary, Vec<Planned>)> {
    let Inputs {
        config,
        artifact,
        campaign,
        directory,
        at,
    } = *inputs;
    let snapshot = &artifact.snapshot;
    let models = artifact.models();
    let fields = Fields::new(snapshot);
    let matcher = audience(config, campaign, &fields)?;
    let templates = Templates::compile(campaign)?;
    let envelope = envelope(
        config,
        campaign,
        outbox.signing_key(config.campaigns.signing_key.as_deref())?,
    )?;
    let id = campaign.id();
    let run = run_id(id, at);
    let window = Window {
        start: campaign.window_start,
        length: campaign.window,
        quiet: campaign.quiet,
        fallback_time: campaign.fallback_time,
    };
    let cap = campaign.file.caps;
    let repeat_after = campaign.file.audience.resend_after_days;
    let lookback_days = cap.map_or(0.0, |c| c.per_days).max(repeat_after);
    let lookback = Duration::seconds((lookback_days * 86_400.0).ceil() as i64);
    let earlier = outbox.earlier_messages(
        (at - lookback - Duration::days(1)).timestamp(),
        (at + campaign.window + lookback + Duration::days(2)).timestamp(),
        &run,
    )?;
    let content = &campaign.file.content;
    let request = Request {
        mode: campaign.mode,
        k: content.recommendations,
        filters: Filters {
            in_stock_only: content.in_stock,
            ..Filters::default()
        },
    };
    let products = &directory.history.products;
    let product_of: Vec<Option<u32>> = models
        .affinity
        .product_ids
        .iter()
        .map(|p| products.ids.get(p))
        .collect();
    let contacts = &directory.history.contacts;
    let weights: Vec<f64> = campaign.file.variants.iter().map(|v| v.weight).collect();
    let total_weight: f64 = weights.iter().sum();
    let holdout_share = campaign.file.audience.holdout;
    let require_consent = campaign.file.audience.require_consent;
    let per_contact = campaign.file.schedule.per_contact;

    let plan_one = |c: usize| -> Result<Option<Planned>> {
        if !matcher.matches(&fields.record(snapshot, &models, c)) {
            return Ok(None);
        }
        let contact_id = snapshot.contacts.name(c as u32);
        let d = directory.contact(contact_id);
        let zone = snapshot.timezone[c];
        let chosen = if per_contact {
            let predicted = models.send_time.predict(snapshot.engagement(c));
            let scores = models.send_time.send_scores(&predicted.profile);
            window.choose(at, zone, &scores, predicted.source.name())
        } else {
            window.choose(at, zone, &[], "window_start")
        };
        let opens = window.opens(at, zone);
        let (send_at, source) = chosen.unwrap_or((opens, "none"));
        let mut row = Planned {
            contact_id: contact_id.to_string(),
            email: d.and_then(|d| directory.email(d)).map(str::to_string),
            variant: None,
            status: "suppressed",
            reason: None,
            send_at: send_at.timestamp(),
            send_time_source: source,
            expires_at: (opens + window.length).timestamp(),
            message_id: None,
            content: None,
        };
        let mine = earlier.get(contact_id).map_or(&[][..], Vec::as_slice);
        let capped = cap.is_some_and(|cap| {
            let span = (cap.per_days * 86_400.0) as i64;
            let near = mine.iter().filter(|e| (e.at - row.send_at).abs() < span);
            near.count() >= cap.max_messages as usize
        });
        let repeat = (repeat_after * 86_400.0) as i64;
        let recently_in_campaign = mine
            .iter()
            .any(|e| e.campaign_id == id && (e.at - row.send_at).abs() < repeat);
        let reason = directory
            .suppression(d, require_consent)
            .or(recently_in_campaign.then_some(Suppression::RecentlyInCampaign))
            .or(capped.then_some(Suppression::FrequencyCap))
            .or(chosen.is_none().then_some(Suppression::NoSendTime));
        if let Some(reason) = reason {
            row.reason = Some(reason.name());
            return Ok(Some(row));
        }
        if unit(id, "holdout", contact_id) < holdout_share {
            row.status = "holdout";
            return Ok(Some(row));
        }
        let pick = unit(id, "variant", contact_id) * total_weight;
        let mut variant = weights.len() - 1;
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if pick < acc {
                variant = i;
                break;
            }
        }
        let variant_name = &campaign.file.variants[variant].name;
        let recs = snapshot.recommend(&models, c, &request);
        let product_views: Vec<ProductView<'_>> = recs
            .iter()
            .filter_map(|&(p, score)| {
                let q = product_of.get(p as usize).copied().flatten()? as usize;
                Some(ProductView {
                    id: products.ids.name(q as u32),
                    name: products.name[q]
                        .as_deref()
                        .unwrap_or(products.ids.name(q as u32)),
                    price: products.price[q],
                    url: products.url[q].as_deref(),
                    image_url: products.image_url[q].as_deref(),
                    category: (products.category[q] != augur_data::NONE)
                        .then(|| products.categories.name(products.category[q])),
                    score,
                })
            })
            .collect();
        let categories: Vec<CategoryShare<'_>> = snapshot
            .category_affinity(c)
            .into_iter()
            .take(5)
            .filter_map(|(k, share)| {
                Some(CategoryShare {
                    name: snapshot.products.categories.get(k as usize)?,
                    share,
                })
            })
            .collect();
        let dc = d.map(|d| d as usize);
        let first_name = dc.and_then(|d| contacts.first_name[d].as_deref());
        let attributes = dc
            .map(|d| {
                contacts
                    .attributes
                    .iter()
                    .map(|(name, column)| {
                        let v = match column {
                            AttributeColumn::Text(v) => minijinja::Value::from(v[d].as_deref()),
                            AttributeColumn::Number(v) => minijinja::Value::from(v[d]),
                            AttributeColumn::Flag(v) => minijinja::Value::from(v[d]),
                        };
                        (name.as_str(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (_, link) = envelope.unsubscribe.header_and_link(id, contact_id);
        let local = send_at
            .with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let context = Context {
            contact: ContactView {
                id: contact_id,
                email: row.email.as_deref().unwrap_or_default(),
                first_name,
                country: snapshot.country[c],
                timezone: zone.name(),
                attributes,
            },
            first_name: first_name.unwrap_or(&content.first_name_fallback),
            products: &product_views,
            category_affinity: &categories,
            churn_tier: snapshot.churn_tier(c),
            churn_risk: snapshot.churn_risk(c),
            campaign: CampaignView {
                id,
                name: &campaign.file.name,
            },
            variant: variant_name,
            unsubscribe_url: link.as_deref(),
            send_at_local: &local,
        };
        row.content = Some(templates.render(variant, &context)?);
        row.status = "queued";
        row.variant = Some(variant_name.clone());
        row.message_id = Some(message_id(&run, contact_id, &envelope.from));
        Ok(Some(row))
    };
    let rows: Vec<Planned> = (0..snapshot.len())
        .into_par_iter()
        .filter_map(|c| plan_one(c).transpose())
        .collect::<Result<Vec<_>>>()?;

    let mut summary = Summary {
        run_id: run,
        model_version: artifact.manifest.version.clone(),
        audience: rows.len(),
        ..Summary::default()
    };
    for r in &rows {
        match r.status {
            "holdout" => summary.holdout += 1,
            "queued" => {
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
    Ok((summary, rows))
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
    };
    summary.added = outbox.insert_plan(&run, rows)?;
    Ok(summary)
}

/// `--dry-run`: writes the plan as `plan.parquet` and the first `n` messages as `.eml` files
/// into `dir`. Returns how many previews were written.
pub fn preview(
    dir: &std::path::Path,
    rows: &[Planned],
    envelope: &Envelope,
    campaign: &str,
    n: usize,
) -> Result<usize> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampSecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let path = dir.join("plan.parquet");
    let err = |e: &dyn std::fmt::Display| Error::write(&path, e);
    let text = |f: &dyn Fn(&Planned) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("contact_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("variant", DataType::Utf8, true),
        Field::new(
            "send_at",
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            false,
        ),
        Field::new("send_time_source", DataType::Utf8, true),
        Field::new("subject", DataType::Utf8, true),
        Field::new("message_id", DataType::Utf8, true),
    ]));
    let columns = vec![
        text(&|r| Some(r.contact_id.as_str())),
        text(&|r| Some(r.status)),
        text(&|r| r.reason),
        text(&|r| r.variant.as_deref()),
        Arc::new(
            TimestampSecondArray::from_iter_values(rows.iter().map(|r| r.send_at))
                .with_timezone("UTC"),
        ) as ArrayRef,
        text(&|r| Some(r.send_time_source)),
        text(&|r| r.content.as_ref().map(|c| c.subject.as_str())),
        text(&|r| r.message_id.as_deref()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
    let file = std::fs::File::create(&path).map_err(|e| err(&e))?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(|e| err(&e))?;
    writer.write(&batch).map_err(|e| err(&e))?;
    writer.close().map_err(|e| err(&e))?;

    let mut written = 0;
    for r in rows.iter().filter(|r| r.content.is_some()).take(n) {
        let (Some(content), Some(id), Some(to)) = (&r.content, &r.message_id, &r.email) else {
            continue;
        };
        let message = crate::message::build(envelope, campaign, &r.contact_id, to, id, content)
            .map_err(|e| Error::write(dir, e))?;
        let eml = dir.join(format!("preview-{}.eml", written + 1));
        std::fs::write(&eml, message.formatted()).map_err(|e| Error::write(&eml, e))?;
        written += 1;
    }
    Ok(written)
}
