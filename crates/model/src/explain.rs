//! Churn reasons as a person would write them: "no order for 7 months, 3× longer than usual"
//! beside the machine-readable code `recency_days high`. The sentence reads the contact's own
//! facts from the snapshot, so it states what the contact did, not how the model weighs it.

use crate::snapshot::{FACTS, Snapshot};

/// A contact's facts a sentence may quote, read once per contact.
pub(crate) struct Facts {
    orders: Option<f64>,
    spend: Option<f64>,
    days_since_last_order: Option<f64>,
    days_since_first_order: Option<f64>,
    orders_90d: Option<f64>,
    opens_90d: Option<f64>,
    clicks_90d: Option<f64>,
    days_since_open: Option<f64>,
    days_since_click: Option<f64>,
    web_events_30d: Option<f64>,
}

impl Facts {
    pub(crate) fn of(snapshot: &Snapshot, c: usize) -> Self {
        let fact = |name: &str| {
            FACTS
                .iter()
                .position(|f| *f == name)
                .and_then(|i| snapshot.fact(i, c))
        };
        Self {
            orders: fact("orders"),
            spend: fact("spend"),
            days_since_last_order: fact("days_since_last_order"),
            days_since_first_order: fact("days_since_first_order"),
            orders_90d: fact("orders_90d"),
            opens_90d: fact("opens_90d"),
            clicks_90d: fact("clicks_90d"),
            days_since_open: fact("days_since_open"),
            days_since_click: fact("days_since_click"),
            web_events_30d: fact("web_events_30d"),
        }
    }

    /// The facts with `orders` more orders worth `spend` counted at the as-of time.
    pub(crate) fn with_orders(mut self, orders: u32, spend: f64) -> Self {
        if orders > 0 {
            let n = f64::from(orders);
            self.orders = Some(self.orders.unwrap_or(0.0) + n);
            self.orders_90d = Some(self.orders_90d.unwrap_or(0.0) + n);
            self.spend = Some(self.spend.unwrap_or(0.0) + spend.max(0.0));
            self.days_since_last_order = Some(0.0);
            self.days_since_first_order.get_or_insert(0.0);
        }
        self
    }

    /// Days between two orders on average, when the contact ordered more than once.
    fn usual_gap(&self) -> Option<f64> {
        let (orders, tenure, recency) = (
            self.orders?,
            self.days_since_first_order?,
            self.days_since_last_order?,
        );
        (orders >= 2.0).then(|| (tenure - recency).max(1.0) / (orders - 1.0))
    }
}

/// `12 days`, `7 weeks`, `5 months`, `2 years`.
fn span(days: f64) -> String {
    let days = days.max(0.0);
    let (n, unit) = if days < 14.0 {
        (days.round(), "day")
    } else if days < 60.0 {
        ((days / 7.0).round(), "week")
    } else if days < 730.0 {
        ((days / 30.44).round(), "month")
    } else {
        ((days / 365.25).round(), "year")
    };
    let n = n as i64;
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `once`, `twice`, `5 times`.
fn times(n: f64) -> String {
    match n.round() as i64 {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// Whether the sentence of a reason speaks of a silence in ordering (`no order for 5 months`,
/// `no order in the last 90 days`): untrue of a contact that has just ordered.
pub(crate) fn speaks_of_no_order(feature: &str, high: bool) -> bool {
    matches!(
        (feature, high),
        (
            "recency_days"
                | "recency_squared"
                | "recency_over_gap"
                | "recency_x_frequency"
                | "gap_ratio_x_frequency",
            true
        ) | (
            "btyd_p_alive" | "btyd_p_buy" | "orders_30d" | "orders_90d" | "orders_trend",
            false
        )
    )
}

/// The sentence for the churn feature `feature` pushing a contact's risk up (`high` when a high
/// value does), quoting the contact's facts `f`. A feature without a sentence of its own reads
/// as words.
pub(crate) fn sentence(feature: &str, high: bool, f: &Facts) -> String {
    let recency = || {
        f.days_since_last_order.map_or_else(
            || "no recent order".to_string(),
            |d| match f.usual_gap() {
                Some(gap) if d > 1.5 * gap => format!(
                    "no order for {}, {:.0}× longer than usual",
                    span(d),
                    d / gap
                ),
                _ => format!("no order for {}", span(d)),
            },
        )
    };
    match (feature, high) {
        ("recency_days" | "recency_squared" | "recency_over_gap", true)
        | ("recency_x_frequency" | "gap_ratio_x_frequency", true) => recency(),
        ("frequency" | "recency_x_frequency" | "gap_ratio_x_frequency", false) => {
            f.orders.map_or_else(
                || "few orders".into(),
                |n| format!("ordered {} in all", times(n)),
            )
        }
        ("orders_30d" | "orders_90d" | "orders_trend", false) => match f.orders_90d {
            Some(n) if n >= 1.0 => {
                format!("ordered {} in the last 90 days, less than before", times(n))
            }
            _ => "no order in the last 90 days".into(),
        },
        ("mean_gap_days", true) => f.usual_gap().map_or_else(
            || "orders far apart".into(),
            |gap| format!("orders {} apart on average", span(gap)),
        ),
        ("tenure_days", _) => f.days_since_first_order.map_or_else(
            || "a new customer".into(),
            |d| format!("a customer for {}", span(d)),
        ),
        ("monetary_avg" | "monetary_total", false) => f.spend.map_or_else(
            || "spends little".into(),
            |s| format!("spent {s:.2} in all, less than most"),
        ),
        ("return_share", true) => "returns a large share of what it buys".into(),
        ("opens_90d" | "open_rate_90d" | "emails_delivered_90d", false) => match f.opens_90d {
            Some(n) if n >= 1.0 => format!("opened e-mails only {} in 90 days", times(n)),
            _ => "no e-mail opened in 90 days".into(),
        },
        ("clicks_90d", false) => match f.clicks_90d {
            Some(n) if n >= 1.0 => format!("clicked only {} in 90 days", times(n)),
            _ => "no click in 90 days".into(),
        },
        ("days_since_open", true) => f.days_since_open.map_or_else(
            || "never opened an e-mail".into(),
            |d| format!("no e-mail opened for {}", span(d)),
        ),
        ("days_since_click", true) => f.days_since_click.map_or_else(
            || "never clicked".into(),
            |d| format!("no click for {}", span(d)),
        ),
        ("unsubscribed", true) => "unsubscribed from e-mail".into(),
        ("bounced", true) => "e-mails to this address bounced".into(),
        ("web_events_30d" | "carts_30d", false) | ("days_since_web", true) => {
            match f.web_events_30d {
                Some(n) if n >= 1.0 => format!("visited the shop only {} in 30 days", times(n)),
                _ => "no visit to the shop in 30 days".into(),
            }
        }
        ("btyd_p_alive" | "btyd_p_buy", false) => {
            format!(
                "{}: past the point where buyers like this usually come back",
                recency()
            )
        }
        ("recency_days", false) => f.days_since_last_order.map_or_else(
            || "no recent order".into(),
            |d| format!("last order {} ago", span(d)),
        ),
        ("mean_gap_days", false) => f.usual_gap().map_or_else(
            || "orders close together".into(),
            |gap| format!("orders usually {} apart", span(gap)),
        ),
        ("emails_delivered_90d", true) => {
            "many e-mails received in the last 90 days, few of them read".into()
        }
        (code, high) => format!(
            "{}: {} than for most contacts",
            words(code),
            if high { "higher" } else { "lower" }
        ),
    }
}

/// A feature code in words: `emails_delivered_90d` → `e-mails delivered in 90 days`.
fn words(code: &str) -> String {
    code.split('_')
        .map(|w| match w {
            "90d" => "in 90 days",
            "30d" => "in 30 days",
            "emails" => "e-mails",
            "btyd" => "buy-till-you-die",
            "p" => "chance of",
            "x" => "×",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_counts_read_naturally() {
        assert_eq!(span(1.0), "1 day");
        assert_eq!(span(10.0), "10 days");
        assert_eq!(span(21.0), "3 weeks");
        assert_eq!(span(213.0), "7 months");
        assert_eq!(span(800.0), "2 years");
        assert_eq!(times(1.0), "once");
        assert_eq!(times(2.0), "twice");
        assert_eq!(times(5.0), "5 times");
        assert_eq!(
            words("emails_delivered_90d"),
            "e-mails delivered in 90 days"
        );
    }
}
