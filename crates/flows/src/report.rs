//! `augur flows report --flow ID`: what a series did — who entered, who left early and why,
//! what each send step sent and what followed it, and the series' uplift over its holdout.
//!
//! Engagement (human opens, clicks) is the flow's e-mail events, from the exports and the
//! event store, each credited to the step whose message the contact got last before it.
//! Conversions are orders within `campaigns.attribution_days` of entering the series, for the
//! entries mailed and for the holdout alike (intention to treat), so the two compare.

use std::collections::{BTreeMap, HashMap, HashSet};

use augur_campaign::{Outbox, Status, two_proportions};
use augur_data::EmailEventKind;
use augur_events::{Body, EventStore};
use serde::Serialize;

use crate::error::Result;
use crate::spec::{Flow, Step, Trigger};
use crate::state::FlowState;

/// One send step's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StepFigures {
    /// Step name.
    pub step: String,
    /// Messages planned (queued, sent or on their way).
    pub planned: u64,
    /// Accepted by the relay.
    pub sent: u64,
    /// Not sent (no consent, opted out, capped…).
    pub suppressed: u64,
    /// Recipients with a human open credited to this step.
    pub opened: u64,
    /// Recipients with a click credited to this step.
    pub clicked: u64,
}

/// A flow's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowReport {
    /// Flow id.
    pub flow: String,
    /// Entries into the series (mailed and held out).
    pub entered: u64,
    /// Of those, held out.
    pub held_out: u64,
    /// Still in it.
    pub active: u64,
    /// Finished every step.
    pub completed: u64,
    /// Left early, by reason.
    pub exited: BTreeMap<String, u64>,
    /// Triggers that did not enter, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Per send step.
    pub steps: Vec<StepFigures>,
    /// Mailed entries followed by an order within the attribution window.
    pub converted: u64,
    /// Their revenue.
    pub revenue: f64,
    /// Held-out entries followed by an order within the window.
    pub holdout_converted: u64,
    /// Their revenue.
    pub holdout_revenue: f64,
    /// Conversion rate of the mailed entries minus the holdout's, with its 95 % interval and
    /// p-value (`None`: no holdout, or no conversion on either side).
    pub uplift: Option<Uplift>,
    /// For a cart series: revenue of the mailed entries above what the holdout's rate
    /// predicts for them, i.e. the revenue the series recovered.
    pub revenue_recovered: Option<f64>,
    /// Attribution window, days.
    pub attribution_days: f64,
}

/// An uplift with its interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Uplift {
    /// Difference in conversion rate (a fraction).
    pub difference: f64,
    /// 95 % interval.
    pub ci95: [f64; 2],
    /// Two-sided p-value.
    pub p_value: f64,
}

/// The figures of `flow`.
///
/// # Errors
/// The state, the outbox, the event store or the exports cannot be read.
pub fn report(
    settings: &augur_campaign::Settings,
    flow: &Flow,
    state: &FlowState,
    outbox: &Outbox,
    store: Option<&EventStore>,
) -> Result<FlowReport> {
    let id = flow.id();
    let mut out = FlowReport {
        flow: id.to_string(),
        attribution_days: settings.campaigns.attribution_days,
        ..FlowReport::default()
    };
    let enrollments = state.of_flow(id)?;
    for e in &enrollments {
        match e.state.as_str() {
            "skipped" => *out.skipped.entry(reason(e)).or_default() += 1,
            "exited" => *out.exited.entry(reason(e)).or_default() += 1,
            "completed" => out.completed += 1,
            "active" => out.active += 1,
            "holdout" => out.held_out += 1,
            _ => {}
        }
        out.entered += u64::from(e.entered_at.is_some());
    }
    let events = Events::read(settings, store)?;
    steps(flow, outbox, &events, &mut out)?;
    let window = (settings.campaigns.attribution_days * 86_400.0) as i64;
    let mut mailed = 0u64;
    for e in enrollments.iter().filter(|e| e.entered_at.is_some()) {
        let entered = e.entered_at.unwrap_or_default();
        let (orders, revenue) = events.orders_between(&e.contact_id, entered, entered + window);
        if e.state == "holdout" {
            out.holdout_converted += u64::from(orders > 0);
            out.holdout_revenue += revenue;
        } else {
            mailed += 1;
            out.converted += u64::from(orders > 0);
            out.revenue += revenue;
        }
    }
    if out.held_out > 0 && out.converted + out.holdout_converted > 0 {
        out.uplift = two_proportions(out.converted, mailed, out.holdout_converted, out.held_out)
            .map(|(difference, ci95, p_value)| Uplift {
                difference,
                ci95,
                p_value,
            });
    }
    if matches!(flow.trigger, Trigger::Web(..)) {
        let expected = if out.held_out > 0 {
            out.holdout_revenue / out.held_out as f64 * mailed as f64
        } else {
            0.0
        };
        out.revenue_recovered = Some(out.revenue - expected);
    }
    Ok(out)
}

fn reason(e: &crate::state::Enrollment) -> String {
    e.reason.clone().unwrap_or_else(|| "other".into())
}

/// Per send step: messages from the outbox, engagement credited to the latest message before it.
fn steps(flow: &Flow, outbox: &Outbox, events: &Events, out: &mut FlowReport) -> Result<()> {
    let id = flow.id();
    let names: Vec<&str> = flow
        .file
        .steps
        .iter()
        .zip(&flow.steps)
        .filter(|(_, s)| matches!(s, Step::Send(_)))
        .map(|(spec, _)| spec.name.as_str())
        .collect();
    let mut figures: Vec<StepFigures> = names
        .iter()
        .map(|n| StepFigures {
            step: (*n).to_string(),
            ..StepFigures::default()
        })
        .collect();
    // The step of a run id `<flow>-<step>-<YYYY-MM-DD>`.
    let step_of = |run: &str| -> Option<usize> {
        let middle = run.strip_prefix(id)?.strip_prefix('-')?;
        let step = middle.get(..middle.len().checked_sub(11)?)?;
        names.iter().position(|n| *n == step)
    };
    let mut sent_to: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
    for r in outbox.campaign_rows(id)? {
        let Some(s) = step_of(&r.run_id) else {
            continue;
        };
        let f = &mut figures[s];
        f.planned += 1;
        f.sent += u64::from(r.status == Status::Sent);
        if let Some(at) = r.sent_at.filter(|_| r.status == Status::Sent) {
            sent_to.entry(r.contact_id).or_default().push((at, s));
        }
    }
    for (run, n) in outbox.suppressed_by_run(id)? {
        if let Some(s) = step_of(&run) {
            figures[s].suppressed += n;
        }
    }
    let mut credited: HashSet<(String, usize, bool)> = HashSet::new();
    for (contact, at, kind) in events.engagement(id) {
        let Some(sends) = sent_to.get(contact) else {
            continue;
        };
        let Some(&(_, s)) = sends.iter().filter(|(t, _)| *t <= at).max() else {
            continue;
        };
        let click = kind == EmailEventKind::Click;
        if credited.insert((contact.to_string(), s, click)) {
            if click {
                figures[s].clicked += 1;
            } else {
                figures[s].opened += 1;
            }
        }
    }
    out.steps = figures;
    Ok(())
}

/// Orders and the flow's e-mail events, from the exports and the event store.
struct Events {
    /// Per contact: (instant, order key, revenue of the line).
    orders: HashMap<String, Vec<(i64, String, f64)>>,
    /// (contact, instant, kind, campaign) of human opens and clicks.
    engagement: Vec<(String, i64, EmailEventKind, String)>,
}

impl Events {
    fn read(settings: &augur_campaign::Settings, store: Option<&EventStore>) -> Result<Self> {
        let mut narrow = settings.data.clone();
        narrow.tables.web_events.path = None;
        let (history, _) = augur_data::load(&narrow).map_err(augur_campaign::Error::from)?;
        let mut orders: HashMap<String, Vec<(i64, String, f64)>> = HashMap::new();
        let o = &history.orders;
        for i in 0..o.len() {
            let contact = history.contacts.ids.name(o.contact[i]).to_string();
            let key = format!("{}/{}", o.order[i], o.product[i]);
            orders.entry(contact).or_default().push((
                o.at[i],
                key,
                o.quantity[i] * o.unit_price[i],
            ));
        }
        let mut engagement = Vec::new();
        let e = &history.email_events;
        for i in 0..e.len() {
            let human_open = e.kind[i] == EmailEventKind::Open && !e.machine_open[i];
            if human_open || e.kind[i] == EmailEventKind::Click {
                engagement.push((
                    history.contacts.ids.name(e.contact[i]).to_string(),
                    e.at[i],
                    e.kind[i],
                    history.campaigns.name(e.campaign[i]).to_string(),
                ));
            }
        }
        for s in store.map(EventStore::all).transpose()?.unwrap_or_default() {
            let ev = s.event;
            match ev.body {
                Body::Order {
                    order_id,
                    product_id,
                    quantity,
                    unit_price,
                } => {
                    let key = format!(
                        "live:{}/{product_id}",
                        order_id.unwrap_or_else(|| ev.event_id.clone())
                    );
                    orders.entry(ev.contact_id).or_default().push((
                        ev.occurred_at,
                        key,
                        quantity * unit_price,
                    ));
                }
                Body::Email {
                    event,
                    campaign_id: Some(campaign),
                    machine_open,
                } if (event == EmailEventKind::Open && !machine_open)
                    || event == EmailEventKind::Click =>
                {
                    engagement.push((ev.contact_id, ev.occurred_at, event, campaign));
                }
                _ => {}
            }
        }
        Ok(Self { orders, engagement })
    }

    /// Distinct orders and revenue of a contact in `[from, to)`.
    fn orders_between(&self, contact: &str, from: i64, to: i64) -> (usize, f64) {
        let Some(lines) = self.orders.get(contact) else {
            return (0, 0.0);
        };
        let mut keys = HashSet::new();
        let mut orders = HashSet::new();
        let mut revenue = 0.0;
        for (_, key, value) in lines.iter().filter(|(at, _, _)| (from..to).contains(at)) {
            if keys.insert(key.as_str()) {
                revenue += value;
                orders.insert(key.split('/').next().unwrap_or_default());
            }
        }
        (orders.len(), revenue)
    }

    /// Human opens and clicks of the flow `campaign`.
    fn engagement<'a>(
        &'a self,
        campaign: &'a str,
    ) -> impl Iterator<Item = (&'a str, i64, EmailEventKind)> + 'a {
        self.engagement
            .iter()
            .filter(move |(_, _, _, c)| c == campaign)
            .map(|(contact, at, kind, _)| (contact.as_str(), *at, *kind))
    }
}
