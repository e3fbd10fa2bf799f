//! Point-in-time contact features: everything a model may know about a contact as of an instant
//! `t`, computed only from events strictly before `t` (event tables are sorted by time, so the
//! cut is a binary search and nothing after `t` is ever read).

use crate::btyd::{BgNbd, Rfa};
use augur_data::DAY;
use augur_data::History;
use augur_data::NONE;
use augur_data::{EmailEventKind, WebEventKind};

/// An open this soon after delivery is a privacy proxy fetching the message, not a person.
pub const MACHINE_OPEN_SECONDS: i64 = 10;

/// Days used when an event never happened ("days since last click" for a contact who never clicked).
pub const NEVER_DAYS: f64 = 730.0;

/// Names of the churn features, in column order. Counts are `ln(1 + x)`; durations in days.
pub const CHURN_FEATURES: [&str; 27] = [
    "recency_days",
    "frequency",
    "tenure_days",
    "monetary_avg",
    "monetary_total",
    "mean_gap_days",
    "recency_over_gap",
    "orders_30d",
    "orders_90d",
    "orders_trend",
    "return_share",
    "emails_delivered_90d",
    "opens_90d",
    "clicks_90d",
    "open_rate_90d",
    "days_since_open",
    "days_since_click",
    "unsubscribed",
    "bounced",
    "web_events_30d",
    "days_since_web",
    "carts_30d",
    "recency_x_frequency",
    "recency_squared",
    "gap_ratio_x_frequency",
    "btyd_p_alive",
    "btyd_p_buy",
];

/// Per-contact state as of `t`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactState {
    /// First and last purchase (UTC seconds), if any.
    pub first_order: Option<i64>,
    /// Last purchase.
    pub last_order: Option<i64>,
    /// Distinct orders with a purchase line.
    pub orders: u32,
    /// Orders in the last 30 / 90 days and in the 90 days before those.
    pub orders_30d: u32,
    /// See `orders_30d`.
    pub orders_90d: u32,
    /// See `orders_30d`.
    pub orders_prev_90d: u32,
    /// Purchase value (quantity × unit price).
    pub spend: f64,
    /// Purchase lines and return lines.
    pub lines: u32,
    /// See `lines`.
    pub return_lines: u32,
    /// E-mail counts over the last 90 days (human opens only).
    pub delivered_90d: u32,
    /// See `delivered_90d`.
    pub opens_90d: u32,
    /// See `delivered_90d`.
    pub clicks_90d: u32,
    /// Last human open and last click.
    pub last_open: Option<i64>,
    /// See `last_open`.
    pub last_click: Option<i64>,
    /// Unsubscribed, bounced or complained before `t`.
    pub unsubscribed: bool,
    /// See `unsubscribed`.
    pub bounced: bool,
    /// See `unsubscribed`.
    pub complained: bool,
    /// Web events in the last 30 days, cart adds in the last 30 days, last web event.
    pub web_30d: u32,
    /// See `web_30d`.
    pub carts_30d: u32,
    /// See `web_30d`.
    pub last_web: Option<i64>,
    /// Last delivery (to recognise machine opens).
    last_delivered: Option<i64>,
    last_order_id: u32,
}

/// The number of rows of a time-sorted column strictly before `t`.
pub fn rows_before(at: &[i64], t: i64) -> usize {
    at.partition_point(|&x| x < t)
}

/// Whether an open at `at` is a machine open: flagged, or within seconds of the last delivery.
pub fn is_machine_open(flagged: bool, at: i64, last_delivered: Option<i64>) -> bool {
    flagged || last_delivered.is_some_and(|d| at >= d && at - d <= MACHINE_OPEN_SECONDS)
}

/// Folds every event before `t` into one state per contact.
pub fn contact_states(history: &History, t: i64) -> Vec<ContactState> {
    let mut states = vec![
        ContactState {
            last_order_id: NONE,
            ..ContactState::default()
        };
        history.contacts.len()
    ];
    let o = &history.orders;
    for i in 0..rows_before(&o.at, t) {
        let s = &mut states[o.contact[i] as usize];
        let at = o.at[i];
        if o.quantity[i] < 0.0 {
            s.return_lines += 1;
            continue;
        }
        s.lines += 1;
        s.spend += o.quantity[i] * o.unit_price[i];
        if o.order[i] != s.last_order_id {
            s.last_order_id = o.order[i];
            s.orders += 1;
            s.first_order.get_or_insert(at);
            s.last_order = Some(at);
            let age = t - at;
            s.orders_30d += u32::from(age < 30 * DAY);
            s.orders_90d += u32::from(age < 90 * DAY);
            s.orders_prev_90d += u32::from((90 * DAY..180 * DAY).contains(&age));
        }
    }
    let e = &history.email_events;
    for i in 0..rows_before(&e.at, t) {
        let s = &mut states[e.contact[i] as usize];
        let at = e.at[i];
        let recent = t - at < 90 * DAY;
        match e.kind[i] {
            EmailEventKind::Delivered => {
                s.last_delivered = Some(at);
                s.delivered_90d += u32::from(recent);
            }
            EmailEventKind::Open => {
                if !is_machine_open(e.machine_open[i], at, s.last_delivered) {
                    s.opens_90d += u32::from(recent);
                    s.last_open = Some(at);
                }
            }
            EmailEventKind::Click => {
                s.clicks_90d += u32::from(recent);
                s.last_click = Some(at);
            }
            EmailEventKind::Unsubscribe => s.unsubscribed = true,
            EmailEventKind::Bounce => s.bounced = true,
            EmailEventKind::Complaint => s.complained = true,
            EmailEventKind::Sent => {}
        }
    }
    let w = &history.web_events;
    for i in 0..rows_before(&w.at, t) {
        let s = &mut states[w.contact[i] as usize];
        let recent = t - w.at[i] < 30 * DAY;
        s.web_30d += u32::from(recent);
        s.carts_30d += u32::from(recent && w.kind[i] == WebEventKind::AddToCart);
        s.last_web = Some(w.at[i]);
    }
    states
}

fn days(seconds: i64) -> f64 {
    seconds as f64 / DAY as f64
}

fn since(t: i64, at: Option<i64>) -> f64 {
    at.map_or(NEVER_DAYS, |a| days(t - a).min(NEVER_DAYS))
}

fn log_count(n: u32) -> f64 {
    f64::from(n).ln_1p()
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// The churn features of a contact that has bought before `t` (`None` otherwise), in
/// [`CHURN_FEATURES`] order. `btyd` (fitted by training) adds P(alive) and P(buy within
/// `horizon_days`); without it those two are neutral. Every value is finite.
pub fn churn_features(
    s: &ContactState,
    t: i64,
    btyd: Option<&BgNbd>,
    horizon_days: f64,
) -> Option<[f64; CHURN_FEATURES.len()]> {
    let (first, last) = (s.first_order?, s.last_order?);
    let recency = days(t - last).max(0.0);
    let tenure = days(t - first).max(0.0);
    // A contact's usual rhythm: its mean gap between orders, or its tenure (plus a month) if it
    // bought once, so that a fresh single buyer is not yet "overdue".
    let mean_gap = if s.orders >= 2 {
        (days(last - first) / f64::from(s.orders - 1)).max(1.0)
    } else {
        tenure + 30.0
    };
    let avg = s.spend / f64::from(s.orders.max(1));
    let trend = log_count(s.orders_90d) - log_count(s.orders_prev_90d);
    let return_share = f64::from(s.return_lines) / f64::from((s.lines + s.return_lines).max(1));
    let open_rate = f64::from(s.opens_90d) / f64::from(s.delivered_90d.max(1));
    Some([
        (recency + 1.0).ln(),
        log_count(s.orders),
        (tenure + 1.0).ln(),
        avg.max(0.0).ln_1p(),
        s.spend.max(0.0).ln_1p(),
        mean_gap.ln(),
        ((recency + 1.0) / (mean_gap + 1.0)).ln(),
        log_count(s.orders_30d),
        log_count(s.orders_90d),
        trend,
        return_share,
        log_count(s.delivered_90d),
        log_count(s.opens_90d),
        log_count(s.clicks_90d),
        open_rate.min(1.0),
        since(t, s.last_open).ln_1p(),
        since(t, s.last_click).ln_1p(),
        f64::from(u8::from(s.unsubscribed || s.complained)),
        f64::from(u8::from(s.bounced)),
        log_count(s.web_30d),
        since(t, s.last_web).ln_1p(),
        log_count(s.carts_30d),
        // Buy-till-you-die models say a long silence means more for a frequent buyer than for a
        // rare one: these let a linear model see that.
        (recency + 1.0).ln() * log_count(s.orders),
        (recency + 1.0).ln().powi(2),
        ((recency + 1.0) / (mean_gap + 1.0)).ln() * log_count(s.orders),
        btyd.map_or(0.0, |m| {
            logit(m.p_alive(&Rfa::new(first, last, s.orders, t)))
        }),
        btyd.map_or(0.0, |m| {
            logit(m.p_buy(&Rfa::new(first, last, s.orders, t), horizon_days / 7.0))
        }),
    ])
}

/// The buy-till-you-die view of every buyer as of `t`.
pub fn buyers_rfa(states: &[ContactState], t: i64) -> Vec<Rfa> {
    states
        .iter()
        .filter_map(|s| Some(Rfa::new(s.first_order?, s.last_order?, s.orders, t)))
        .collect()
}

/// Whether the contact buys in `[from, to)`: the churn label is the opposite.
pub fn buys_between(history: &History, from: i64, to: i64) -> Vec<bool> {
    let o = &history.orders;
    let mut bought = vec![false; history.contacts.len()];
    let (a, b) = (rows_before(&o.at, from), rows_before(&o.at, to));
    for i in a..b {
        if o.quantity[i] > 0.0 {
            bought[o.contact[i] as usize] = true;
        }
    }
    bought
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_buyer_features_are_finite() {
        let s = ContactState {
            first_order: Some(0),
            last_order: Some(0),
            orders: 1,
            lines: 1,
            spend: 10.0,
            ..ContactState::default()
        };
        let f = churn_features(&s, 100 * DAY, None, 90.0).expect("buyer");
        assert!(f.iter().all(|v| v.is_finite()));
        assert!(churn_features(&ContactState::default(), 0, None, 90.0).is_none());
    }

    #[test]
    fn machine_opens_by_flag_or_delay() {
        assert!(is_machine_open(true, 1000, None));
        assert!(is_machine_open(false, 1005, Some(1000)));
        assert!(!is_machine_open(false, 1000 + 3600, Some(1000)));
    }
}
