//! One live event: its shapes as posted (the data contract's tables, one row each), the rules
//! that check them, and the id that makes posting it twice harmless.
//!
//! ```json
//! {"type": "order",   "contact_id": "C1", "occurred_at": "2026-11-30T12:00:00Z", "order_id": "O1", "product_id": "P1", "quantity": 1, "unit_price": 9.5}
//! {"type": "web",     "contact_id": "C1", "occurred_at": "…", "event": "add_to_cart", "product_id": "P1"}
//! {"type": "email",   "contact_id": "C1", "occurred_at": "…", "event": "click", "campaign_id": "winback"}
//! {"type": "contact", "contact_id": "C1", "occurred_at": "…", "email": "ann@shop.example", "email_consent": true}
//! ```
//!
//! `occurred_at` is RFC 3339 with an offset, or Unix seconds. `event_id` is optional: without
//! it, the id is derived from the content (SHA-256 of the normalized event), so a client that
//! retries a batch stores each event once.

use augur_data::{EmailEventKind, WebEventKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest id (contact, product, order, campaign, event) accepted.
pub const MAX_ID: usize = 256;

/// A checked event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Given, or derived from the content.
    pub event_id: String,
    /// The contact it is about.
    pub contact_id: String,
    /// When it happened (Unix seconds).
    pub occurred_at: i64,
    /// What happened.
    #[serde(flatten)]
    pub body: Body,
}

/// What happened, in the shape of the contract's table it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// An order line.
    Order {
        /// Order (lines of one order share it).
        order_id: Option<String>,
        /// Product.
        product_id: String,
        /// Quantity (negative: a return).
        quantity: f64,
        /// Price per unit.
        unit_price: f64,
    },
    /// A web event.
    Web {
        /// Kind, in the contract's spelling.
        event: WebEventKind,
        /// Product, for product events.
        product_id: Option<String>,
    },
    /// An e-mail event.
    Email {
        /// Kind, in the contract's spelling.
        event: EmailEventKind,
        /// Campaign or flow.
        campaign_id: Option<String>,
        /// Flagged as a machine open by the e-mail platform.
        machine_open: bool,
    },
    /// A contact created or changed (fields absent: unchanged).
    Contact {
        /// Address.
        email: Option<String>,
        /// First name.
        first_name: Option<String>,
        /// ISO 3166-1 alpha-2 country.
        country: Option<String>,
        /// IANA time zone.
        timezone: Option<String>,
        /// Sign-up time (Unix seconds).
        created_at: Option<i64>,
        /// Consent to marketing e-mail; `false` withdraws it.
        email_consent: Option<bool>,
    },
}

impl Event {
    /// The event as a row of its table, for a load that adds it to the exports.
    pub fn live_row(&self) -> augur_data::LiveRow {
        use augur_data::LiveRow;
        let contact_id = self.contact_id.clone();
        let at = self.occurred_at;
        match &self.body {
            Body::Order {
                order_id,
                product_id,
                quantity,
                unit_price,
            } => LiveRow::Order {
                contact_id,
                order_id: order_id.clone(),
                product_id: product_id.clone(),
                at,
                quantity: *quantity,
                unit_price: *unit_price,
            },
            Body::Web { event, product_id } => LiveRow::Web {
                contact_id,
                kind: *event,
                product_id: product_id.clone(),
                at,
            },
            Body::Email {
                event,
                campaign_id,
                machine_open,
            } => LiveRow::Email {
                contact_id,
                kind: *event,
                campaign_id: campaign_id.clone(),
                machine_open: *machine_open,
                at,
            },
            Body::Contact {
                email,
                first_name,
                country,
                timezone,
                created_at,
                email_consent,
            } => LiveRow::Contact {
                contact_id,
                email: email.clone(),
                first_name: first_name.clone(),
                country: country.clone(),
                timezone: timezone.clone(),
                created_at: *created_at,
                email_consent: *email_consent,
            },
        }
    }
}

impl Body {
    /// `order`, `web`, `email` or `contact`.
    pub fn table(&self) -> &'static str {
        match self {
            Self::Order { .. } => "order",
            Self::Web { .. } => "web",
            Self::Email { .. } => "email",
            Self::Contact { .. } => "contact",
        }
    }

    /// The kind within the table: the web or e-mail event's name, `order` or `contact`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Web { event, .. } => event.name(),
            Self::Email { event, .. } => event.name(),
            other => other.table(),
        }
    }

    /// The product it names, if any.
    pub fn product(&self) -> Option<&str> {
        match self {
            Self::Order { product_id, .. } => Some(product_id),
            Self::Web { product_id, .. } => product_id.as_deref(),
            _ => None,
        }
    }
}

/// An event as posted, before its rules are checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    #[serde(rename = "type")]
    table: String,
    event_id: Option<String>,
    contact_id: String,
    occurred_at: serde_json::Value,
    event: Option<String>,
    order_id: Option<String>,
    product_id: Option<String>,
    quantity: Option<f64>,
    unit_price: Option<f64>,
    campaign_id: Option<String>,
    machine_open: Option<bool>,
    email: Option<String>,
    first_name: Option<String>,
    country: Option<String>,
    timezone: Option<String>,
    created_at: Option<serde_json::Value>,
    email_consent: Option<bool>,
}

/// Checks one posted event (`value`) against the contract's rules, as of `now` (Unix seconds):
/// the event, or why it was refused, in words a client can act on.
///
/// # Errors
/// The reason: an unknown field or table, a missing or malformed field, an id too long, a kind
/// outside the contract's vocabulary, a time too far in the future, a quantity or price that is
/// not a finite number.
pub fn check(value: serde_json::Value, now: i64, max_future: i64) -> Result<Event, String> {
    if !value.is_object() {
        return Err("an event is a JSON object with `type`, `contact_id` and `occurred_at`".into());
    }
    // The path names the field at fault (`quantity: invalid type: string "3", expected f64`).
    let p: Posted = serde_path_to_error::deserialize(value)
        .map_err(|e| format!("`{}`: {}", e.path(), e.inner()))?;
    let contact_id = id("contact_id", Some(p.contact_id))?.unwrap_or_default();
    let occurred_at = instant("occurred_at", &p.occurred_at)?;
    if occurred_at > now + max_future {
        return Err(format!(
            "`occurred_at` is more than {max_future} s in the future; send the time the event happened, with its offset"
        ));
    }
    let body = match p.table.as_str() {
        "order" => {
            let quantity = p.quantity.unwrap_or(1.0);
            let unit_price = p.unit_price.unwrap_or(0.0);
            amounts(quantity, unit_price)?;
            Body::Order {
                order_id: id("order_id", p.order_id)?,
                product_id: id("product_id", p.product_id)?
                    .ok_or("an order line needs `product_id`")?,
                quantity,
                unit_price,
            }
        }
        "web" => {
            let raw = p.event.ok_or("a web event needs `event`")?;
            let event = WebEventKind::parse(&raw).ok_or_else(|| {
                vocabulary("web", &raw, WebEventKind::ALL.iter().map(|k| k.name()))
            })?;
            Body::Web {
                event,
                product_id: id("product_id", p.product_id)?,
            }
        }
        "email" => {
            let raw = p.event.ok_or("an e-mail event needs `event`")?;
            let event = EmailEventKind::parse(&raw).ok_or_else(|| {
                vocabulary("e-mail", &raw, EmailEventKind::ALL.iter().map(|k| k.name()))
            })?;
            Body::Email {
                event,
                campaign_id: id("campaign_id", p.campaign_id)?,
                machine_open: p.machine_open.unwrap_or(false),
            }
        }
        "contact" => {
            if p.email.as_deref().is_some_and(|e| !e.contains('@')) {
                return Err("`email` has no `@`".into());
            }
            if let Some(tz) = &p.timezone
                && tz.parse::<chrono_tz::Tz>().is_err()
            {
                return Err(format!(
                    "`timezone` `{tz}` is not an IANA time zone, e.g. Europe/Berlin"
                ));
            }
            Body::Contact {
                email: p.email,
                first_name: p.first_name,
                country: p.country.map(|c| c.to_ascii_uppercase()),
                timezone: p.timezone,
                created_at: p
                    .created_at
                    .as_ref()
                    .map(|v| instant("created_at", v))
                    .transpose()?,
                email_consent: p.email_consent,
            }
        }
        other => {
            return Err(format!(
                "`type` `{other}`: use order, web, email or contact"
            ));
        }
    };
    let mut event = Event {
        event_id: String::new(),
        contact_id,
        occurred_at,
        body,
    };
    event.event_id = match id("event_id", p.event_id)? {
        Some(given) => given,
        None => derived_id(&event),
    };
    Ok(event)
}

/// An id as the contract reads it: trimmed, not empty, at most [`MAX_ID`] bytes, and free of
/// control and invisible formatting characters (which would otherwise reach CSV exports,
/// logs and templates).
fn id(field: &str, v: Option<String>) -> Result<Option<String>, String> {
    let Some(raw) = v else {
        return Ok(None);
    };
    let s = raw.trim();
    if s.is_empty() {
        return Err(format!("`{field}` is empty"));
    }
    if s.len() > MAX_ID {
        return Err(format!("`{field}` is longer than {MAX_ID} bytes"));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || is_format(*c)) {
        return Err(format!(
            "`{field}` holds the control or formatting character U+{:04X}; send the id as the shop stores it",
            u32::from(c)
        ));
    }
    Ok(Some(s.to_string()))
}

/// Invisible formatting characters (Unicode category Cf, the common ones): soft hyphen,
/// zero-width and direction marks, bidirectional overrides and isolates, the byte-order mark.
fn is_format(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The contract's rules for an order line's amounts, each named on its own.
fn amounts(quantity: f64, unit_price: f64) -> Result<(), String> {
    use augur_data::{MAX_QUANTITY, MAX_UNIT_PRICE};
    if quantity == 0.0 {
        return Err("`quantity` is 0; an order line sells 1 or more (a return is negative)".into());
    }
    if !quantity.is_finite() || quantity.abs() > MAX_QUANTITY {
        return Err(format!(
            "`quantity` {quantity:e} is out of range: at most {MAX_QUANTITY:e} either way"
        ));
    }
    if unit_price < 0.0 {
        return Err(format!(
            "`unit_price` {unit_price} is negative: send a return as a negative `quantity` at the price paid"
        ));
    }
    if !unit_price.is_finite() || unit_price > MAX_UNIT_PRICE {
        return Err(format!(
            "`unit_price` {unit_price:e} is out of range: from 0 to {MAX_UNIT_PRICE:e}"
        ));
    }
    Ok(())
}

/// The id of an event posted without one: SHA-256 of its normalized JSON, first 32 hex digits.
fn derived_id(event: &Event) -> String {
    let json = serde_json::to_string(event).unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The instants accepted, in Unix seconds: 1970 to the end of 9999, in either form.
const SECONDS: std::ops::RangeInclusive<i64> = 0..=253_402_300_799;

/// An instant: RFC 3339 with an offset, or Unix seconds.
fn instant(field: &str, v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::String(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp())
                .map_err(|_| {
                    format!(
                        "`{field}` `{s}` is not RFC 3339 with an offset, e.g. 2026-11-30T12:00:00Z"
                    )
                })?;
            if SECONDS.contains(&t) {
                Ok(t)
            } else {
                Err(format!("`{field}` `{s}` is before 1970"))
            }
        }
        // Fractions of a second are dropped: the contract counts whole seconds.
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite())
            .map(|s| s.floor() as i64)
            .filter(|s| SECONDS.contains(s))
            .ok_or_else(|| format!("`{field}` {n} is not Unix seconds between 1970 and 9999")),
        _ => Err(format!(
            "`{field}` must be an RFC 3339 string or Unix seconds"
        )),
    }
}

fn vocabulary<'a>(table: &str, raw: &str, names: impl Iterator<Item = &'a str>) -> String {
    format!(
        "{table} event `{raw}` is not in the contract; use one of {}",
        names.collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn each_shape_is_checked_and_an_id_is_derived_from_the_content() {
        let cart = json!({"type": "web", "contact_id": "C1", "occurred_at": "2027-01-15T08:00:00Z",
                          "event": "add_to_cart", "product_id": "P1"});
        let a = check(cart.clone(), NOW, 3600).expect("valid");
        let b = check(cart, NOW, 3600).expect("valid");
        assert_eq!(a.event_id, b.event_id, "the same content, the same id");
        assert_eq!(a.body.kind(), "add_to_cart");
        let order = json!({"type": "order", "contact_id": "C1", "occurred_at": NOW - 10,
                           "product_id": "P1", "order_id": "O1", "quantity": 2, "unit_price": 3.5,
                           "event_id": "shop-123"});
        let o = check(order, NOW, 3600).expect("valid");
        assert_eq!(o.event_id, "shop-123");
        assert_eq!(o.occurred_at, NOW - 10);
        let padded = json!({"type": "web", "contact_id": "  C1\t", "occurred_at": NOW as f64 + 0.5,
                            "event": "view"});
        let v = check(padded, NOW, 3600).expect("valid");
        assert_eq!(
            (v.contact_id.as_str(), v.occurred_at),
            ("C1", NOW),
            "trimmed, whole seconds"
        );
    }

    #[test]
    fn bad_events_say_what_to_fix() {
        let cases = [
            (
                json!({"type": "web", "contact_id": "C1", "occurred_at": "yesterday", "event": "view"}),
                "RFC 3339",
            ),
            (
                json!({"type": "web", "contact_id": "C1", "occurred_at": NOW, "event": "teleport"}),
                "not in the contract",
            ),
            (
                json!({"type": "order", "contact_id": "C1", "occurred_at": NOW}),
                "product_id",
            ),
            (
                json!({"type": "order", "contact_id": "C1", "occurred_at": NOW, "product_id": "P", "unit_price": -1}),
                "`unit_price` -1 is negative",
            ),
            (
                json!({"type": "web", "contact_id": "", "occurred_at": NOW, "event": "view"}),
                "`contact_id` is empty",
            ),
            (
                json!({"type": "web", "contact_id": "C1", "occurred_at": NOW + 7200, "event": "view"}),
                "future",
            ),
            (
                json!({"type": "web", "contact_id": "C1", "occurred_at": NOW, "event": "view", "colour": 1}),
                "unknown field",
            ),
            (
                json!({"type": "contact", "contact_id": "C1", "occurred_at": NOW, "timezone": "Mars/Base"}),
                "IANA",
            ),
            (
                json!({"type": "sms", "contact_id": "C1", "occurred_at": NOW}),
                "use order, web, email or contact",
            ),
            (
                json!({"type": "order", "contact_id": "C1", "occurred_at": NOW, "product_id": "P", "quantity": "3"}),
                "`quantity`: invalid type",
            ),
            (
                json!({"type": "order", "contact_id": "C1", "occurred_at": NOW, "product_id": "P", "unit_price": 1e300}),
                "`unit_price` 1e300 is out of range",
            ),
            (
                json!({"type": "order", "contact_id": "C1", "occurred_at": NOW, "product_id": "P", "quantity": 1e30}),
                "`quantity` 1e30 is out of range",
            ),
            (
                json!({"type": "order", "contact_id": "C1", "occurred_at": NOW, "product_id": "P", "quantity": 0}),
                "`quantity` is 0",
            ),
            (
                json!({"type": "web", "contact_id": "C\u{1b}[31m", "occurred_at": NOW, "event": "view"}),
                "U+001B",
            ),
            (
                json!({"type": "web", "contact_id": "C\u{202E}1", "occurred_at": NOW, "event": "view"}),
                "U+202E",
            ),
            (
                json!({"type": "web", "contact_id": "C1", "occurred_at": "1900-01-01T00:00:00Z", "event": "view"}),
                "before 1970",
            ),
            (json!([1, 2]), "a JSON object"),
        ];
        for (value, expected) in cases {
            let e = check(value.clone(), NOW, 3600).expect_err(&value.to_string());
            assert!(e.contains(expected), "{value}: {e}");
        }
    }
}
