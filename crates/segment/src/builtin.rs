//! The built-in lifecycle segments every shop gets without configuring anything.
//!
//! They are written in the rule language itself, so they behave exactly like configured segments
//! (and can be replaced by one of the same name). They read the lifecycle fields the service puts
//! in its schema; days are days before the scoring time, and contacts that never ordered have no
//! `days_since_last_order`, so they are in none of the order-based segments.

use crate::rule::{List, Op, Rule, Scalar};

/// `field <op> value` on a number field.
fn number(field: &str, op: Op, value: f64) -> Rule {
    Rule::Compare {
        field: field.to_string(),
        op,
        value: Scalar::Number(value),
    }
}

/// A human open or click within `days` (machine opens are not in `days_since_open`).
fn engaged_within(days: f64) -> Rule {
    Rule::Any(vec![
        number("days_since_open", Op::Lte, days),
        number("days_since_click", Op::Lte, days),
    ])
}

/// The built-in segments as `(name, description, rule)`, sorted by name.
pub fn builtin() -> Vec<(&'static str, &'static str, Rule)> {
    vec![
        (
            "active_buyers",
            "Ordered within the last 90 days.",
            number("days_since_last_order", Op::Lte, 90.0),
        ),
        (
            "at_risk",
            "Customers who ordered within the last year and whose churn risk is high or critical.",
            Rule::All(vec![
                number("orders", Op::Gte, 1.0),
                Rule::In {
                    field: "churn_tier".to_string(),
                    values: List::Texts(vec!["high".to_string(), "critical".to_string()]),
                },
                number("days_since_last_order", Op::Lte, 365.0),
            ]),
        ),
        (
            "engaged",
            "A human open or click within the last 30 days.",
            engaged_within(30.0),
        ),
        (
            "inactive",
            "No human open or click within 90 days, and not signed up within 90 days.",
            Rule::All(vec![
                Rule::Not(Box::new(engaged_within(90.0))),
                Rule::Not(Box::new(number("days_since_signup", Op::Lte, 90.0))),
            ]),
        ),
        (
            "lapsed",
            "Customers whose last order is more than a year ago.",
            number("days_since_last_order", Op::Gt, 365.0),
        ),
        (
            "moderately_engaged",
            "The last human open or click 31 to 90 days ago.",
            Rule::All(vec![
                engaged_within(90.0),
                Rule::Not(Box::new(engaged_within(30.0))),
            ]),
        ),
        (
            "new_subscribers",
            "Signed up within the last 30 days and have not ordered yet.",
            Rule::All(vec![
                number("days_since_signup", Op::Lte, 30.0),
                number("orders", Op::Eq, 0.0),
            ]),
        ),
        (
            "vip",
            "Top 10% of buyers by spend who ordered within the last year.",
            Rule::All(vec![
                number("spend_percentile", Op::Gte, 0.9),
                number("days_since_last_order", Op::Lte, 365.0),
            ]),
        ),
    ]
}
