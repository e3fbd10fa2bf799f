//! `augur campaign report --by …`: a campaign's figures per group of contacts — per variant,
//! per predictive segment, churn tier, country or send-time source as of the plan — each with
//! the uplift over that group's own holdout where the group is large enough.
//!
//! A win-back that works for lapsed VIPs and fails for one-time buyers looks flat in the
//! campaign's total; a table per group shows it. Groups come from what the outbox recorded at
//! planning, not from today's model, so a contact whose tier changed since stays where it was
//! when it was chosen. Segments overlap (a contact may be in several, and is counted in each);
//! every other grouping is a partition, and its groups add up to the campaign.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::attribution;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::outbox::{Outbox, ReportRow, Status};
use crate::report::campaign_rows;
use crate::stats::two_proportions;

/// Contacts each side (mailed and held out) needs before a group's uplift is shown.
pub const MIN_UPLIFT_GROUP: u64 = 100;

/// What `--by` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The variant (each compared with the whole holdout).
    Variant,
    /// Every predictive segment (built-in and configured) the contact was in.
    Segment,
    /// Churn tier.
    ChurnTier,
    /// Country.
    Country,
    /// How the send time was chosen (`own`, `cluster`, `population`, …).
    SendTimeSource,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Self; 5] = [
        Self::Variant,
        Self::Segment,
        Self::ChurnTier,
        Self::Country,
        Self::SendTimeSource,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Variant => "variant",
            Self::Segment => "segment",
            Self::ChurnTier => "churn_tier",
            Self::Country => "country",
            Self::SendTimeSource => "send_time_source",
        }
    }

    /// The dimension named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The groups a row belongs to. A held-out row, grouped by variant, is the control of
    /// every variant.
    fn keys(self, row: &ReportRow, variants: &[String]) -> Vec<String> {
        let recorded = |v: &Option<String>| {
            v.clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| NOT_RECORDED.to_string())
        };
        match self {
            Self::Variant if row.group == "holdout" => variants.to_vec(),
            Self::Variant => vec![row.group.clone()],
            Self::ChurnTier => vec![recorded(&row.churn_tier)],
            Self::Country => vec![recorded(&row.country)],
            Self::SendTimeSource => vec![row.send_time_source.clone()],
            Self::Segment => match &row.segments {
                None => vec![NOT_RECORDED.to_string()],
                Some(s) if s.is_empty() => vec!["(none)".to_string()],
                Some(s) => s.split(',').map(str::to_string).collect(),
            },
        }
    }
}

/// The group of rows planned before augur recorded the grouping.
const NOT_RECORDED: &str = "(not recorded)";

/// One group's figures. Rates are per message sent (opens, clicks, unsubscribes, complaints)
/// or per contact assigned (conversion, revenue per e-mail, so that they compare with the
/// holdout's, whose contacts were never mailed).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GroupFigures {
    /// The group.
    pub group: String,
    /// Contacts assigned a variant.
    pub audience: u64,
    /// Contacts held out.
    pub holdout: u64,
    /// Messages accepted by the relay.
    pub sent: u64,
    /// Delivered, per the e-mail platform's events.
    pub delivered: u64,
    /// Recipients with a human open.
    pub opened: u64,
    /// Recipients who clicked.
    pub clicked: u64,
    /// Recipients who unsubscribed.
    pub unsubscribed: u64,
    /// Recipients who complained.
    pub complained: u64,
    /// Assigned contacts who ordered within the attribution window.
    pub converted: u64,
    /// Their orders.
    pub orders: u64,
    /// Their revenue.
    pub revenue: f64,
    /// Held-out contacts who ordered within the window after their would-be send.
    pub holdout_converted: u64,
    /// `opened / sent`.
    pub open_rate: f64,
    /// `clicked / sent`.
    pub click_rate: f64,
    /// `converted / audience`.
    pub conversion_rate: f64,
    /// `revenue / audience`.
    pub revenue_per_email: f64,
    /// `unsubscribed / sent`.
    pub unsubscribe_rate: f64,
    /// `complained / sent`.
    pub complaint_rate: f64,
    /// Conversion rate minus the holdout's, with its 95 % interval and p-value, when both
    /// sides have at least [`MIN_UPLIFT_GROUP`] contacts.
    pub uplift: Option<GroupUplift>,
    /// Why there is no uplift, when there is none.
    pub uplift_note: Option<String>,
}

/// A group's uplift over its holdout.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupUplift {
    /// The holdout's conversion rate.
    pub holdout_rate: f64,
    /// Difference in conversion rate (a fraction).
    pub difference: f64,
    /// 95 % interval of the difference.
    pub ci95: [f64; 2],
    /// Two-sided p-value.
    pub p_value: f64,
}

/// A campaign's figures by one dimension.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// Campaign id.
    pub campaign: String,
    /// The dimension.
    pub by: String,
    /// Attribution window, days.
    pub attribution_days: f64,
    /// Per group, by name.
    pub groups: Vec<GroupFigures>,
    /// The campaign as a whole, for comparison.
    pub total: GroupFigures,
    /// How to read the table.
    pub note: String,
}

/// The figures of `campaign` grouped by `by`.
///
/// # Errors
/// No planned rows for the campaign, or the exports or the outbox cannot be read.
pub fn breakdown(
    config: &Settings,
    outbox: &Outbox,
    campaign: &str,
    by: Dimension,
) -> Result<Breakdown> {
    let rows = campaign_rows(outbox, campaign)?;
    let history = attribution::load(config)?;
    let window = (config.campaigns.attribution_days * 86_400.0) as i64;
    // Each contact counts once, in its first assignment (rows come earliest first).
    let mut seen: HashSet<&str> = HashSet::new();
    let rows: Vec<&ReportRow> = rows
        .iter()
        .filter(|r| seen.insert(r.contact_id.as_str()))
        .collect();
    let mut starts: HashMap<u32, i64> = HashMap::new();
    for r in &rows {
        if let Some(c) = history.contacts.ids.get(&r.contact_id) {
            starts.insert(c, r.sent_at.unwrap_or(r.send_at));
        }
    }
    let outcomes = attribution::outcomes(&history, campaign, &starts, window, None);
    let variants: Vec<String> = rows
        .iter()
        .filter(|r| r.group != "holdout")
        .map(|r| r.group.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut groups: BTreeMap<String, GroupFigures> = BTreeMap::new();
    let mut total = GroupFigures {
        group: "all".into(),
        ..GroupFigures::default()
    };
    for r in &rows {
        let outcome = history
            .contacts
            .ids
            .get(&r.contact_id)
            .and_then(|c| outcomes.get(&c));
        for key in by.keys(r, &variants) {
            let g = groups.entry(key.clone()).or_insert_with(|| GroupFigures {
                group: key,
                ..GroupFigures::default()
            });
            add(g, r, outcome);
        }
        add(&mut total, r, outcome);
    }
    let mut groups: Vec<GroupFigures> = groups.into_values().collect();
    for g in groups.iter_mut().chain(std::iter::once(&mut total)) {
        finish(g);
    }
    let note = match by {
        Dimension::Segment => {
            "segments overlap: a contact in several is counted in each, so the groups do not add up to the total"
        }
        Dimension::Variant => {
            "each variant is compared with the whole holdout, which appears in every row"
        }
        _ => "the groups partition the campaign and add up to the total",
    };
    Ok(Breakdown {
        campaign: campaign.to_string(),
        by: by.name().to_string(),
        attribution_days: config.campaigns.attribution_days,
        groups,
        total,
        note: note.to_string(),
    })
}

/// Counts one contact's row into a group.
fn add(g: &mut GroupFigures, r: &ReportRow, o: Option<&attribution::Outcome>) {
    let converted = o.is_some_and(attribution::Outcome::converted);
    if r.group == "holdout" {
        g.holdout += 1;
        g.holdout_converted += u64::from(converted);
        return;
    }
    g.audience += 1;
    g.sent += u64::from(r.status == Status::Sent);
    g.converted += u64::from(converted);
    if let Some(o) = o {
        g.delivered += u64::from(o.delivered);
        g.opened += u64::from(o.opened);
        g.clicked += u64::from(o.clicked);
        g.unsubscribed += u64::from(o.unsubscribed);
        g.complained += u64::from(o.complained);
        g.orders += u64::from(o.orders);
        g.revenue += o.revenue;
    }
}

/// Rates and the uplift, from the counts.
fn finish(g: &mut GroupFigures) {
    let per = |x: u64, n: u64| if n > 0 { x as f64 / n as f64 } else { 0.0 };
    g.open_rate = per(g.opened, g.sent);
    g.click_rate = per(g.clicked, g.sent);
    g.unsubscribe_rate = per(g.unsubscribed, g.sent);
    g.complaint_rate = per(g.complained, g.sent);
    g.conversion_rate = per(g.converted, g.audience);
    g.revenue_per_email = if g.audience > 0 {
        g.revenue / g.audience as f64
    } else {
        0.0
    };
    if g.holdout == 0 {
        g.uplift_note = Some("no holdout in this group".into());
    } else if g.audience < MIN_UPLIFT_GROUP || g.holdout < MIN_UPLIFT_GROUP {
        g.uplift_note = Some(format!(
            "too small for an uplift: {} mailed and {} held out; {MIN_UPLIFT_GROUP} each are needed",
            g.audience, g.holdout
        ));
    } else if g.converted + g.holdout_converted == 0 {
        g.uplift_note = Some("no conversion yet in the group or its holdout".into());
    } else if let Some((difference, ci95, p_value)) =
        two_proportions(g.converted, g.audience, g.holdout_converted, g.holdout)
    {
        g.uplift = Some(GroupUplift {
            holdout_rate: per(g.holdout_converted, g.holdout),
            difference,
            ci95,
            p_value,
        });
    }
}

/// Writes `by-<dimension>.json` into `dir`; returns its path.
pub fn write_breakdown(breakdown: &Breakdown, dir: &std::path::Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let path = dir.join(format!("by-{}.json", breakdown.by));
    let text = serde_json::to_string_pretty(breakdown).map_err(|e| Error::write(&path, e))?;
    std::fs::write(&path, text).map_err(|e| Error::write(&path, e))?;
    Ok(path)
}
