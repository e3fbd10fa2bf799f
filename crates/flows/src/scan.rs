//! Triggers that no event fires, found by scanning the model's contacts once per key:
//!
//! - **a segment entered** (`[trigger] segment`): when the flow first sees a model version, the
//!   contacts in the segment under it that were not in it under the version the flow saw before
//!   (the first version a flow sees is its baseline: nobody "enters" a segment by being in it
//!   when the flow is set up). Segments move with training, so one scan per model version.
//! - **an anniversary** (`[trigger] date`): once per UTC day, the contacts whose date has that
//!   month and day (29 February falls on the 28th in other years), catching up at most
//!   [`CATCH_UP_DAYS`] missed days. One entry per contact and year.
//!
//! Each scan is stored with the triggers it found in one transaction (see
//! [`FlowState::record_scan`]): a crash repeats it whole or not at all.

use std::collections::HashSet;

use augur_data::AttributeColumn;
use augur_model::{FACTS, Fields};
use augur_segment::Matcher;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::error::{Error, Result};
use crate::runner::{Runner, TickReport};
use crate::spec::{DateField, Flow, Trigger};
use crate::state::{FlowState, Triggered};

/// Days of anniversaries caught up when `augur flows` did not run on them.
pub const CATCH_UP_DAYS: i64 = 7;

/// Runs the scans of every flow whose trigger needs one and that are not done yet.
pub(crate) fn scan(
    runner: &Runner<'_>,
    state: &mut FlowState,
    at: i64,
    report: &mut TickReport,
) -> Result<()> {
    for flow in runner.flows {
        match &flow.trigger {
            Trigger::SegmentEntered(name) => {
                report.triggered += segment_entered(runner, state, flow, name, at)?;
            }
            Trigger::Anniversary(field) => {
                report.triggered += anniversaries(runner, state, flow, field, at)?;
            }
            Trigger::Signup | Trigger::Order | Trigger::Web(..) | Trigger::Product(_) => {}
        }
    }
    Ok(())
}

/// The matcher of a segment (built-in or configured) over the model's `fields`, `None` when
/// there is no such segment.
pub(crate) fn segment_matcher(
    runner: &Runner<'_>,
    fields: &Fields,
    name: &str,
) -> Result<Option<Matcher>> {
    let all = augur_segment::catalog(&runner.settings.segments, &fields.schema)?;
    Ok(all.into_iter().find(|s| s.name == name).map(|s| s.matcher))
}

/// Checks that every flow's entry rule compiles against `artifact`'s fields and that every
/// segment a flow names (to enter on, or to be admitted by) exists: a typo would otherwise
/// stop a tick at the first trigger, or admit nobody without a word.
///
/// # Errors
/// [`Error::Flow`] naming the first flow file at fault, what is wrong and the fields or
/// segments that exist.
pub fn check_flows(
    settings: &augur_campaign::Settings,
    flows: &[Flow],
    artifact: &augur_model::Artifact,
) -> Result<()> {
    let fields = Fields::new(&artifact.snapshot);
    // The segment catalog is built only when a flow names a segment, as a tick builds it: a
    // configured segment that no flow uses does not stop the flows.
    let mut segments: Option<Vec<augur_segment::Segment>> = None;
    for flow in flows {
        if let Some(rule) = &flow.file.entry.rule {
            rule.compile(&fields.schema)
                .map_err(|e| flow_error(flow, format!("[entry] {e}")))?;
        }
        let trigger = match &flow.trigger {
            Trigger::SegmentEntered(name) => Some(name.as_str()),
            _ => None,
        };
        let named = [
            ("[entry] segment", flow.file.entry.segment.as_deref()),
            ("[trigger] segment", trigger),
        ];
        for (key, name) in named {
            let Some(name) = name else { continue };
            let catalog = match &mut segments {
                Some(catalog) => catalog,
                empty => empty.insert(
                    augur_segment::catalog(&settings.segments, &fields.schema)
                        .map_err(|e| flow_error(flow, format!("{key} `{name}`: {e}")))?,
                ),
            };
            if !catalog.iter().any(|s| s.name == name) {
                let names: Vec<String> = catalog.iter().map(|s| format!("`{}`", s.name)).collect();
                return Err(flow_error(
                    flow,
                    format!(
                        "{key} `{name}` is neither built in nor configured in [segments]; segments: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn flow_error(flow: &Flow, message: String) -> Error {
    Error::Flow {
        path: flow.path.clone(),
        message,
    }
}

/// The segment scan of the current model version; how many triggers were new.
fn segment_entered(
    runner: &Runner<'_>,
    state: &mut FlowState,
    flow: &Flow,
    name: &str,
    at: i64,
) -> Result<usize> {
    let version = &runner.artifact.manifest.version;
    let key = format!("model:{version}");
    if state.scanned(flow.id(), &key)? {
        return Ok(0);
    }
    let snapshot = &runner.artifact.snapshot;
    let fields = Fields::new(snapshot);
    let Some(matcher) = segment_matcher(runner, &fields, name)? else {
        return Err(flow_error(
            flow,
            format!("[trigger] segment `{name}` is neither built in nor configured in [segments]"),
        ));
    };
    let models = runner.artifact.models();
    let now: Vec<String> = (0..snapshot.len())
        .filter(|&c| matcher.matches(&fields.record(snapshot, &models, c)))
        .map(|c| snapshot.contacts.name(c as u32).to_string())
        .collect();
    let baseline = state.last_scan(flow.id(), "model:")?.is_none();
    let triggered: Vec<Triggered> = if baseline {
        Vec::new()
    } else {
        let before: HashSet<String> = state.members(flow.id())?;
        now.iter()
            .filter(|c| !before.contains(*c))
            .map(|c| Triggered {
                flow_id: flow.id().to_string(),
                contact_id: c.clone(),
                trigger_id: format!("segment:{version}"),
                triggered_at: at,
                due_at: at,
                product_id: None,
                product_was: None,
            })
            .collect()
    };
    state.record_scan(flow.id(), &key, at, &triggered, Some(&now))
}

/// The anniversary scans of the days up to `at`'s not done yet; how many triggers were new.
fn anniversaries(
    runner: &Runner<'_>,
    state: &mut FlowState,
    flow: &Flow,
    field: &DateField,
    at: i64,
) -> Result<usize> {
    let Some(today) = DateTime::<Utc>::from_timestamp(at, 0).map(|t| t.date_naive()) else {
        return Ok(0);
    };
    let last = state
        .last_scan(flow.id(), "date:")?
        .and_then(|k| NaiveDate::parse_from_str(&k["date:".len()..], "%Y-%m-%d").ok());
    let first = last.map_or(today, |d| {
        (d + Duration::days(1)).max(today - Duration::days(CATCH_UP_DAYS - 1))
    });
    let dates = contact_dates(runner, flow, field)?;
    let mut added = 0;
    let mut day = first;
    while day <= today {
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .map_or(at, |t| t.and_utc().timestamp());
        let triggered: Vec<Triggered> = dates
            .iter()
            .filter(|(_, date)| {
                falls_on(*date, day)
                    && (*field != DateField::FirstOrder || date.year() < day.year())
            })
            .map(|(contact, _)| Triggered {
                flow_id: flow.id().to_string(),
                contact_id: contact.clone(),
                trigger_id: format!("date:{day}"),
                triggered_at: midnight,
                due_at: at.max(midnight),
                product_id: None,
                product_was: None,
            })
            .collect();
        added += state.record_scan(flow.id(), &format!("date:{day}"), at, &triggered, None)?;
        day += Duration::days(1);
    }
    Ok(added)
}

/// Whether a yearly date falls on `day`: the same month and day, and 29 February on the 28th
/// in a year without one.
pub fn falls_on(date: NaiveDate, day: NaiveDate) -> bool {
    let same = (date.month(), date.day()) == (day.month(), day.day());
    let leap_day_moved = (date.month(), date.day()) == (2, 29)
        && (day.month(), day.day()) == (2, 28)
        && NaiveDate::from_ymd_opt(day.year(), 2, 29).is_none();
    same || leap_day_moved
}

/// Every contact's date for the trigger: the first order's UTC day (from the model's facts),
/// or the attribute's `YYYY-MM-DD` (values that do not parse are skipped).
fn contact_dates(
    runner: &Runner<'_>,
    flow: &Flow,
    field: &DateField,
) -> Result<Vec<(String, NaiveDate)>> {
    let snapshot = &runner.artifact.snapshot;
    let as_of = runner.artifact.manifest.as_of_seconds;
    let name = |c: usize| snapshot.contacts.name(c as u32).to_string();
    let day = |seconds: i64| DateTime::<Utc>::from_timestamp(seconds, 0).map(|t| t.date_naive());
    match field {
        DateField::FirstOrder => {
            let fact = FACTS
                .iter()
                .position(|f| *f == "days_since_first_order")
                .unwrap_or_default();
            Ok((0..snapshot.len())
                .filter_map(|c| {
                    let days = snapshot.fact(fact, c)?;
                    Some((name(c), day(as_of - (days * 86_400.0).round() as i64)?))
                })
                .collect())
        }
        DateField::Attribute(attribute) => match snapshot.attributes.get(attribute) {
            Some(AttributeColumn::Text(values)) => Ok(values
                .iter()
                .enumerate()
                .filter_map(|(c, v)| {
                    let v = v.as_deref()?.trim();
                    let date = NaiveDate::parse_from_str(v.get(..10)?, "%Y-%m-%d").ok()?;
                    Some((name(c), date))
                })
                .collect()),
            Some(_) => Err(flow_error(
                flow,
                format!(
                    "[trigger] date = `attribute.{attribute}`: the column holds numbers or flags; map a column of YYYY-MM-DD dates"
                ),
            )),
            None => Err(flow_error(
                flow,
                format!(
                    "[trigger] date = `attribute.{attribute}`: the contacts table has no such column (extra columns become attributes)"
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_falls_on_its_month_and_day_and_a_leap_day_on_the_28th_otherwise() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        assert!(falls_on(d(1990, 5, 17), d(2026, 5, 17)));
        assert!(!falls_on(d(1990, 5, 17), d(2026, 5, 18)));
        assert!(falls_on(d(2000, 2, 29), d(2026, 2, 28)));
        assert!(
            !falls_on(d(2000, 2, 29), d(2028, 2, 28)),
            "2028 has its own"
        );
        assert!(falls_on(d(2000, 2, 29), d(2028, 2, 29)));
        assert!(!falls_on(d(2001, 2, 28), d(2028, 2, 29)));
    }
}
