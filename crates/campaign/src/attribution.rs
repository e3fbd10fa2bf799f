//! What followed a message: per contact, its engagement with the campaign (read from the e-mail
//! events export) and its orders within the attribution window after the send — for a held-out
//! contact, after the instant it would have been sent. Reports, segment tables and A/B test
//! decisions all count from here, so that they agree.

use std::collections::{HashMap, HashSet};

use augur_data::{EmailEventKind, History};
use augur_model::is_machine_open;

use crate::config::Settings;
use crate::error::Result;

/// One contact's outcome.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// A `delivered` event.
    pub delivered: bool,
    /// A `bounce` event.
    pub bounced: bool,
    /// A human open: machine opens (flagged by the export, or within seconds of the delivery,
    /// see [`augur_model::is_machine_open`]) never count.
    pub opened: bool,
    /// A click.
    pub clicked: bool,
    /// An unsubscribe.
    pub unsubscribed: bool,
    /// A spam complaint.
    pub complained: bool,
    /// Distinct orders within the attribution window.
    pub orders: u32,
    /// Their revenue (quantity × unit price).
    pub revenue: f64,
    /// Instants of human opens (UTC seconds).
    pub opens_at: Vec<i64>,
}

impl Outcome {
    /// Whether the contact ordered within the window.
    pub fn converted(&self) -> bool {
        self.orders > 0
    }
}

/// The exports a report reads: contacts, orders and e-mail events (web events are not needed).
pub fn load(config: &Settings) -> Result<History> {
    let mut narrow = config.data.clone();
    narrow.tables.web_events.path = None;
    Ok(augur_data::load(&narrow)?.0)
}

/// The outcomes of `members` (dense contact → instant its attribution starts) in `campaign`:
/// e-mail events of that campaign, and orders in `[start, start + window)`. Only what happened
/// before `until` counts, when given (a decision as of an instant does not see later events).
pub fn outcomes(
    history: &History,
    campaign: &str,
    members: &HashMap<u32, i64>,
    window: i64,
    until: Option<i64>,
) -> HashMap<u32, Outcome> {
    let until = until.unwrap_or(i64::MAX);
    let mut out: HashMap<u32, Outcome> = HashMap::new();
    if let Some(cid) = history.campaigns.get(campaign) {
        let e = &history.email_events;
        // Events are sorted by time: the last delivery is known when an open comes.
        let mut last_delivered: HashMap<u32, i64> = HashMap::new();
        for i in 0..e.len() {
            let c = e.contact[i];
            if e.at[i] >= until || !members.contains_key(&c) {
                continue;
            }
            if e.kind[i] == EmailEventKind::Delivered {
                last_delivered.insert(c, e.at[i]);
            }
            if e.campaign[i] != cid {
                continue;
            }
            let o = out.entry(c).or_default();
            match e.kind[i] {
                EmailEventKind::Delivered => o.delivered = true,
                EmailEventKind::Bounce => o.bounced = true,
                EmailEventKind::Open
                    if !is_machine_open(
                        e.machine_open[i],
                        e.at[i],
                        last_delivered.get(&c).copied(),
                    ) =>
                {
                    o.opened = true;
                    o.opens_at.push(e.at[i]);
                }
                EmailEventKind::Click => o.clicked = true,
                EmailEventKind::Unsubscribe => o.unsubscribed = true,
                EmailEventKind::Complaint => o.complained = true,
                _ => {}
            }
        }
    }
    let orders = &history.orders;
    let mut counted: HashSet<(u32, u32)> = HashSet::new();
    for i in 0..orders.len() {
        let c = orders.contact[i];
        let Some(&start) = members.get(&c) else {
            continue;
        };
        let at = orders.at[i];
        if at < start || at >= start.saturating_add(window) || at >= until {
            continue;
        }
        let o = out.entry(c).or_default();
        o.revenue += orders.quantity[i] * orders.unit_price[i];
        if counted.insert((c, orders.order[i])) {
            o.orders += 1;
        }
    }
    out
}
