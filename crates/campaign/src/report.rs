//! `augur campaign report`: what a campaign did, per variant and for the holdout, read from the
//! exports (e-mail events and orders) and the outbox (who was in which group, sent when).
//!
//! Orders count for a contact when they fall within `campaigns.attribution_days` after its send
//! (for the holdout: after the instant it would have been sent). Groups are compared as
//! assigned (intention to treat): a variant's audience includes messages that failed or were
//! suppressed at sending, so the comparison with the holdout is not biased by who could be
//! reached.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::attribution;
use crate::config::Settings;
use crate::stats::two_proportions;
use plotters::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::outbox::{Outbox, ReportRow, Status};

/// Hours after sending shown in the opens chart.
pub const CHART_HOURS: usize = 72;

/// One group's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupStats {
    /// Variant name or `holdout`.
    pub group: String,
    /// Contacts assigned (each counted once, in its first group).
    pub audience: u64,
    /// Of the audience, messages accepted by the SMTP server.
    pub sent: u64,
    /// Delivered (per the e-mail platform's events).
    pub delivered: u64,
    /// Bounced.
    pub bounced: u64,
    /// Contacts with a human open (machine opens excluded).
    pub opened: u64,
    /// Contacts who clicked.
    pub clicked: u64,
    /// Contacts who unsubscribed.
    pub unsubscribed: u64,
    /// Contacts with an order in the attribution window.
    pub converted: u64,
    /// Orders in the attribution window.
    pub orders: u64,
    /// Revenue of those orders.
    pub revenue: f64,
    /// Revenue per contact assigned: per planned e-mail for a variant, per contact held out
    /// for the holdout (so the two compare).
    pub revenue_per_email: f64,
    /// Human opens by hour after sending (first [`CHART_HOURS`] hours).
    pub opens_by_hour: Vec<u64>,
}

/// A variant against the holdout: difference in conversion rate with its 95 % interval.
#[derive(Debug, Clone, Serialize)]
pub struct Uplift {
    /// Variant.
    pub group: String,
    /// Conversion rate of the variant.
    pub rate: f64,
    /// Conversion rate of the holdout.
    pub holdout_rate: f64,
    /// Difference (percentage points as a fraction).
    pub difference: f64,
    /// 95 % confidence interval of the difference.
    pub ci95: [f64; 2],
    /// Two-sided p-value of the two-proportion z-test.
    pub p_value: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    /// Campaign id.
    pub campaign: String,
    /// Attribution window, days.
    pub attribution_days: f64,
    /// Per group, variants first (by name), holdout last.
    pub groups: Vec<GroupStats>,
    /// Each variant against the holdout, for variants with messages delivered and conversions
    /// in either group (empty otherwise; `uplift_note` says why).
    pub uplift: Vec<Uplift>,
    /// Why there is no uplift to show, when there is none.
    pub uplift_note: Option<String>,
    /// Messages by outbox state.
    pub outbox: BTreeMap<String, u64>,
    /// The campaign's A/B tests, one per run that had one, and their decisions.
    pub tests: Vec<TestSummary>,
}

/// One run's A/B test in a report.
#[derive(Debug, Clone, Serialize)]
pub struct TestSummary {
    /// The run.
    pub run_id: String,
    /// What decides.
    pub metric: String,
    /// Earliest decision (UTC seconds).
    pub decide_after: i64,
    /// Latest decision (UTC seconds).
    pub decide_by: i64,
    /// The variant sent to the rest, once decided.
    pub winner: Option<String>,
    /// Whether it cleared the bar (`false`: the default, for want of a clear winner).
    pub clear: Option<bool>,
    /// When it was decided (UTC seconds).
    pub decided_at: Option<i64>,
    /// The figures it was decided on.
    pub evidence: Option<serde_json::Value>,
}

/// Why a report has no uplift, in words: no holdout, nothing delivered yet, or no conversion in
/// either group yet (an interval of [+0.00, +0.00] would say nothing).
fn uplift_note(
    groups: &[GroupStats],
    holdout: Option<&GroupStats>,
    uplift: &[Uplift],
) -> Option<String> {
    if !uplift.is_empty() {
        return None;
    }
    let sent: u64 = groups
        .iter()
        .filter(|g| g.group != "holdout")
        .map(|g| g.sent)
        .sum();
    Some(if holdout.is_none() {
        "no holdout: the campaign keeps no control group, so there is no uplift to measure".into()
    } else if sent == 0 {
        "nothing delivered yet: uplift is measured once messages are sent (augur campaign send)"
            .into()
    } else {
        "no conversion yet in the variants or the holdout within the attribution window".into()
    })
}

/// Builds the report of `campaign` from the outbox and the exports.
pub fn report(config: &Settings, outbox: &Outbox, campaign: &str) -> Result<CampaignReport> {
    let rows = campaign_rows(outbox, campaign)?;
    let history = attribution::load(config)?;
    let window = (config.campaigns.attribution_days * 86_400.0) as i64;

    let mut groups: BTreeMap<String, GroupStats> = BTreeMap::new();
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    // Dense contact → (group, start of attribution).
    let mut member: HashMap<u32, &str> = HashMap::new();
    let mut starts: HashMap<u32, i64> = HashMap::new();
    let mut assigned: HashSet<&str> = HashSet::new();
    for r in &rows {
        *states.entry(r.status.to_string()).or_default() += 1;
        let g = groups.entry(r.group.clone()).or_insert_with(|| GroupStats {
            group: r.group.clone(),
            opens_by_hour: vec![0; CHART_HOURS],
            ..GroupStats::default()
        });
        // A contact counts once, in the group of its first assignment (rows come earliest
        // first), and its orders are attributed from then.
        if !assigned.insert(r.contact_id.as_str()) {
            continue;
        }
        g.audience += 1;
        g.sent += u64::from(r.status == Status::Sent);
        if let Some(c) = history.contacts.ids.get(&r.contact_id) {
            member.insert(c, r.group.as_str());
            starts.insert(c, r.sent_at.unwrap_or(r.send_at));
        }
    }
    for (c, o) in attribution::outcomes(&history, campaign, &starts, window, None) {
        let g = groups
            .get_mut(member[&c])
            .expect("every member's group exists");
        g.delivered += u64::from(o.delivered);
        g.bounced += u64::from(o.bounced);
        g.opened += u64::from(o.opened);
        g.clicked += u64::from(o.clicked);
        g.unsubscribed += u64::from(o.unsubscribed);
        g.converted += u64::from(o.converted());
        g.orders += u64::from(o.orders);
        g.revenue += o.revenue;
        for at in o.opens_at {
            let hour = (at - starts[&c]).div_euclid(3600);
            if let Ok(h) = usize::try_from(hour)
                && h < CHART_HOURS
            {
                g.opens_by_hour[h] += 1;
            }
        }
    }
    let awaiting = outbox.awaiting_count(campaign)?;
    if awaiting > 0 {
        states.insert(Status::AwaitingTest.to_string(), awaiting);
    }
    let holdout = groups.remove("holdout");
    let mut list: Vec<GroupStats> = groups.into_values().collect();
    list.extend(holdout.clone());
    for g in &mut list {
        g.revenue_per_email = if g.audience > 0 {
            g.revenue / g.audience as f64
        } else {
            0.0
        };
    }
    let uplift: Vec<Uplift> = holdout
        .iter()
        .flat_map(|h| {
            list.iter()
                .filter(|g| g.group != "holdout" && g.sent > 0)
                .filter(move |g| g.converted + h.converted > 0)
                .filter_map(move |g| {
                    let (d, ci95, p_value) =
                        two_proportions(g.converted, g.audience, h.converted, h.audience)?;
                    Some(Uplift {
                        group: g.group.clone(),
                        rate: g.converted as f64 / g.audience as f64,
                        holdout_rate: h.converted as f64 / h.audience as f64,
                        difference: d,
                        ci95,
                        p_value,
                    })
                })
        })
        .collect();
    let uplift_note = uplift_note(&list, holdout.as_ref(), &uplift);
    Ok(CampaignReport {
        campaign: campaign.to_string(),
        attribution_days: config.campaigns.attribution_days,
        groups: list,
        uplift_note,
        uplift,
        outbox: states,
        tests: tests(outbox, campaign)?,
    })
}

/// The rows of `campaign` that assigned a contact to a group; an error when there are none.
pub(crate) fn campaign_rows(outbox: &Outbox, campaign: &str) -> Result<Vec<ReportRow>> {
    let rows = outbox.campaign_rows(campaign)?;
    if rows.is_empty() {
        return Err(Error::outbox(
            outbox.path(),
            format!(
                "no planned messages of campaign `{campaign}`; plan it first (augur campaign plan)"
            ),
        ));
    }
    Ok(rows)
}

/// The campaign's A/B tests, as the report shows them.
fn tests(outbox: &Outbox, campaign: &str) -> Result<Vec<TestSummary>> {
    Ok(outbox
        .run_tests(campaign)?
        .into_iter()
        .map(|t| TestSummary {
            run_id: t.run_id,
            metric: t.test.metric,
            decide_after: t.test.decide_after,
            decide_by: t.test.decide_by,
            winner: t.decision.as_ref().map(|d| d.winner.clone()),
            clear: t.decision.as_ref().map(|d| d.clear),
            decided_at: t.decision.as_ref().map(|d| d.decided_at),
            evidence: t
                .decision
                .and_then(|d| serde_json::from_str(&d.evidence).ok()),
        })
        .collect())
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// The opens-by-hour chart as SVG.
fn opens_chart(report: &CampaignReport) -> Result<String, String> {
    let max = report
        .groups
        .iter()
        .flat_map(|g| g.opens_by_hour.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Human opens by hour after sending", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..CHART_HOURS as f64, 0f64..max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("hours after sending")
            .y_desc("opens")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, g) in report.groups.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    g.opens_by_hour
                        .iter()
                        .enumerate()
                        .map(|(h, n)| (h as f64, *n as f64)),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(g.group.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes `report.json` and `report.html` into `dir`.
pub fn write_report(report: &CampaignReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let json = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::write(&json, e))?;
    std::fs::write(&json, text).map_err(|e| Error::write(&json, e))?;
    let chart = opens_chart(report).map_err(|e| Error::write(&dir.join("report.html"), e))?;
    let mut rows = String::new();
    for g in &report.groups {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.3}</td></tr>\n",
            escape(&g.group), g.audience, g.sent, g.delivered, g.bounced, g.opened, g.clicked,
            g.unsubscribed, g.orders, g.revenue, g.revenue_per_email
        ));
    }
    let mut uplift = String::new();
    if let Some(note) = &report.uplift_note {
        uplift.push_str(&format!(
            "<tr><td colspan=\"6\">{}</td></tr>\n",
            escape(note)
        ));
    }
    for u in &report.uplift {
        uplift.push_str(&format!(
            "<tr><td>{}</td><td>{:.2} %</td><td>{:.2} %</td><td>{:+.2} pp</td><td>[{:+.2}, {:+.2}] pp</td><td>{:.3}</td></tr>\n",
            escape(&u.group), 100.0 * u.rate, 100.0 * u.holdout_rate, 100.0 * u.difference,
            100.0 * u.ci95[0], 100.0 * u.ci95[1], u.p_value
        ));
    }
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Campaign {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>\
         <h1>Campaign {id}</h1><p>Orders attributed within {days} days of sending (the holdout: of when it would have been sent).</p>\
         <table><tr><th>group</th><th>audience</th><th>sent</th><th>delivered</th><th>bounced</th><th>opened</th><th>clicked</th><th>unsubscribed</th><th>orders</th><th>revenue</th><th>revenue / e-mail</th></tr>\n{rows}</table>\
         <h2>Uplift over the holdout (conversion rate)</h2><table><tr><th>variant</th><th>rate</th><th>holdout</th><th>difference</th><th>95 % CI</th><th>p</th></tr>\n{uplift}</table>\
         <h2>Opens</h2>{chart}</body></html>",
        id = escape(&report.campaign),
        days = report.attribution_days,
    );
    let path = dir.join("report.html");
    std::fs::write(&path, html).map_err(|e| Error::write(&path, e))
}
