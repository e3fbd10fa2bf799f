//! `augur report list`: the health of the mailing list, week by week — how fast it grows, net
//! of the contacts it loses, and how much of it still engages.
//!
//! Rules (documented in `docs/campaigns.md`; weeks are the 7-day spans ending at the report's
//! instant, oldest first):
//! - **On the list**: a contact whose consent is recorded as given, or who has an unsubscribe,
//!   bounce or complaint event (it was mailed, so it was on the list until then). It joins at
//!   its `created_at` (unknown: before the first week) and leaves at its first unsubscribe,
//!   bounce or complaint.
//! - **Growth** of a week: contacts who joined in it, minus those who left in it (by kind);
//!   the rate is that net change over the list's size when the week began.
//! - **Engagement bands** at each week's end, among the contacts then on the list, by their
//!   last human open or click (machine opens never count: flagged, or within seconds of the
//!   delivery): `engaged` within 30 days,
//!   `moderately_engaged` within 90, `inactive` none in 90 (of which `inactive_180`: none in
//!   180, the candidates for a sunset policy), and `new` for contacts who joined within 90 days
//!   and have not engaged yet. The built-in segments of the same names apply the same rules to
//!   the model's snapshot.

use std::path::{Path, PathBuf};

use augur_data::EmailEventKind;
use augur_model::is_machine_open;
use plotters::prelude::*;
use serde::Serialize;

use crate::config::Settings;
use crate::error::{Error, Result};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// One week of the list.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Week {
    /// First instant of the week (UTC seconds).
    pub start: i64,
    /// First instant after it.
    pub end: i64,
    /// On the list when the week began.
    pub list_at_start: u64,
    /// Joined during the week.
    pub joined: u64,
    /// Left by unsubscribing.
    pub unsubscribed: u64,
    /// Left by a bounce.
    pub bounced: u64,
    /// Left by a spam complaint.
    pub complained: u64,
    /// `joined − unsubscribed − bounced − complained`.
    pub net: i64,
    /// `net / list_at_start` (`None` for an empty list).
    pub growth_rate: Option<f64>,
    /// On the list at the week's end.
    pub list_at_end: u64,
    /// Last human open or click within 30 days of the week's end.
    pub engaged: u64,
    /// Within 90 days, not within 30.
    pub moderately_engaged: u64,
    /// None within 90 days (and not new).
    pub inactive: u64,
    /// Of the inactive, none within 180 days.
    pub inactive_180: u64,
    /// Joined within 90 days and not engaged yet.
    pub new: u64,
}

/// The list's health over a span of weeks.
#[derive(Debug, Clone, Serialize)]
pub struct ListHealth {
    /// The report's instant (UTC seconds): the last week ends here.
    pub at: i64,
    /// Oldest first.
    pub weeks: Vec<Week>,
}

/// A contact's life on the list.
#[derive(Debug, Clone, Default)]
struct Member {
    joined: Option<i64>,
    left: Option<(i64, EmailEventKind)>,
    /// Human opens and clicks, sorted.
    engaged: Vec<i64>,
}

/// The list's health over the `weeks` weeks ending at `at` (UTC seconds), from the contacts and
/// e-mail events exports.
///
/// # Errors
/// The exports cannot be read.
pub fn list_health(config: &Settings, at: i64, weeks: usize) -> Result<ListHealth> {
    let mut narrow = config.data.clone();
    narrow.tables.orders.path = None;
    narrow.tables.web_events.path = None;
    let (history, _) = augur_data::load(&narrow)?;
    let contacts = &history.contacts;
    let mut members: Vec<Member> = (0..contacts.len())
        .map(|c| Member {
            joined: contacts.created_at[c],
            ..Member::default()
        })
        .collect();
    let e = &history.email_events;
    // Events are sorted by time: a contact's last delivery is known when an open comes.
    let mut last_delivered: Vec<Option<i64>> = vec![None; members.len()];
    for i in 0..e.len() {
        let c = e.contact[i] as usize;
        let Some(m) = members.get_mut(c) else {
            continue;
        };
        let at = e.at[i];
        match e.kind[i] {
            EmailEventKind::Delivered => last_delivered[c] = Some(at),
            EmailEventKind::Open if !is_machine_open(e.machine_open[i], at, last_delivered[c]) => {
                m.engaged.push(at);
            }
            EmailEventKind::Click => m.engaged.push(at),
            kind @ (EmailEventKind::Unsubscribe
            | EmailEventKind::Bounce
            | EmailEventKind::Complaint)
                if m.left.is_none_or(|(first, _)| at < first) =>
            {
                m.left = Some((at, kind));
            }
            _ => {}
        }
    }
    let on_list =
        |c: usize, m: &Member| contacts.email_consent[c] == Some(true) || m.left.is_some();
    let first = at - WEEK * weeks as i64;
    let mut out: Vec<Week> = (0..weeks as i64)
        .map(|w| Week {
            start: first + w * WEEK,
            end: first + (w + 1) * WEEK,
            ..Week::default()
        })
        .collect();
    for (c, m) in members.iter_mut().enumerate() {
        if !on_list(c, m) {
            continue;
        }
        m.engaged.sort_unstable();
        for week in &mut out {
            count(week, m);
        }
    }
    for w in &mut out {
        w.net = w.joined as i64 - (w.unsubscribed + w.bounced + w.complained) as i64;
        w.growth_rate = (w.list_at_start > 0).then(|| w.net as f64 / w.list_at_start as f64);
    }
    Ok(ListHealth { at, weeks: out })
}

/// Counts one contact on the list into one week.
fn count(week: &mut Week, m: &Member) {
    let joined_by = |t: i64| m.joined.is_none_or(|j| j < t);
    let listed_at = |t: i64| joined_by(t) && m.left.is_none_or(|(l, _)| l >= t);
    week.list_at_start += u64::from(listed_at(week.start));
    if m.joined
        .is_some_and(|j| (week.start..week.end).contains(&j))
    {
        week.joined += 1;
    }
    if let Some((l, kind)) = m.left
        && (week.start..week.end).contains(&l)
    {
        match kind {
            EmailEventKind::Unsubscribe => week.unsubscribed += 1,
            EmailEventKind::Bounce => week.bounced += 1,
            _ => week.complained += 1,
        }
    }
    if !listed_at(week.end) {
        return;
    }
    week.list_at_end += 1;
    // Seconds since the last engagement, compared as the segments compare fractional days.
    let before = m.engaged.partition_point(|t| *t < week.end);
    let since = before.checked_sub(1).map(|i| week.end - m.engaged[i]);
    match since {
        Some(s) if s <= 30 * DAY => week.engaged += 1,
        Some(s) if s <= 90 * DAY => week.moderately_engaged += 1,
        _ if m.joined.is_some_and(|j| week.end - j <= 90 * DAY) => week.new += 1,
        s => {
            week.inactive += 1;
            week.inactive_180 += u64::from(s.is_none_or(|s| s > 180 * DAY));
        }
    }
}

/// Writes `list-health.json` and `list-health.html` (two charts: growth and engagement bands)
/// into `dir`; returns the HTML page's path.
///
/// # Errors
/// A file cannot be written.
pub fn write_list_health(health: &ListHealth, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let json = dir.join("list-health.json");
    let text = serde_json::to_string_pretty(health).map_err(|e| Error::write(&json, e))?;
    std::fs::write(&json, text).map_err(|e| Error::write(&json, e))?;
    let path = dir.join("list-health.html");
    let growth = chart(
        "Joined and left per week",
        &[
            ("joined", health.weeks.iter().map(|w| w.joined).collect()),
            (
                "left",
                health
                    .weeks
                    .iter()
                    .map(|w| w.unsubscribed + w.bounced + w.complained)
                    .collect(),
            ),
        ],
    )
    .map_err(|e| Error::write(&path, e))?;
    let bands = chart(
        "Engagement bands at each week's end",
        &[
            ("engaged", health.weeks.iter().map(|w| w.engaged).collect()),
            (
                "moderately_engaged",
                health.weeks.iter().map(|w| w.moderately_engaged).collect(),
            ),
            (
                "inactive",
                health.weeks.iter().map(|w| w.inactive).collect(),
            ),
            ("new", health.weeks.iter().map(|w| w.new).collect()),
        ],
    )
    .map_err(|e| Error::write(&path, e))?;
    let mut rows = String::new();
    for w in &health.weeks {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            day(w.start), w.list_at_start, w.joined, w.unsubscribed, w.bounced, w.complained, w.net,
            w.growth_rate.map_or("–".into(), |r| format!("{:+.2} %", 100.0 * r)),
            w.engaged, w.moderately_engaged, w.inactive, w.inactive_180, w.new
        ));
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>List health</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>\
         <h1>List health</h1><p>Weeks of 7 days ending {}. Engagement is a human open or click (machine opens never count): engaged within 30 days, moderately engaged within 90, inactive none in 90 (inactive 180: none in 180); new: joined within 90 days, not engaged yet.</p>\
         {growth}{bands}\
         <table><tr><th>week from</th><th>list</th><th>joined</th><th>unsubscribed</th><th>bounced</th><th>complained</th><th>net</th><th>growth</th><th>engaged</th><th>moderately engaged</th><th>inactive</th><th>inactive 180</th><th>new</th></tr>\n{rows}</table></body></html>",
        day(health.at)
    );
    std::fs::write(&path, html).map_err(|e| Error::write(&path, e))?;
    Ok(path)
}

/// `YYYY-MM-DD` of an instant.
fn day(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(127, 127, 127),
    RGBColor(44, 160, 44),
];

/// A line chart of weekly series, as SVG.
fn chart(title: &str, series: &[(&str, Vec<u64>)]) -> Result<String, String> {
    let weeks = series.first().map_or(0, |(_, v)| v.len()).max(2);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..(weeks - 1) as f64, 0f64..max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("week")
            .y_desc("contacts")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, values)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(w, n)| (w as f64, *n as f64)),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(*name)
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
