//! Rows that arrived after the exports — events posted as they happen — in the contract's
//! shapes, so that a load can add them to the tables the exports give. The loader sorts them in
//! with the exported rows and drops exact duplicates (an event that the next export carries too
//! is counted once).

use crate::contract::{EmailEventKind, WebEventKind};

/// One live row.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveRow {
    /// An order line.
    Order {
        /// Contact.
        contact_id: String,
        /// Order (absent: one order per contact and instant).
        order_id: Option<String>,
        /// Product.
        product_id: String,
        /// When (Unix seconds).
        at: i64,
        /// Quantity (negative: a return).
        quantity: f64,
        /// Price per unit.
        unit_price: f64,
    },
    /// A web event.
    Web {
        /// Contact.
        contact_id: String,
        /// Kind.
        kind: WebEventKind,
        /// Product, for product events.
        product_id: Option<String>,
        /// When.
        at: i64,
    },
    /// An e-mail event.
    Email {
        /// Contact.
        contact_id: String,
        /// Kind.
        kind: EmailEventKind,
        /// Campaign or flow.
        campaign_id: Option<String>,
        /// Flagged as a machine open.
        machine_open: bool,
        /// When.
        at: i64,
    },
    /// A contact created or changed (absent fields unchanged).
    Contact {
        /// Contact.
        contact_id: String,
        /// Address.
        email: Option<String>,
        /// First name.
        first_name: Option<String>,
        /// Country (code or name).
        country: Option<String>,
        /// IANA zone.
        timezone: Option<String>,
        /// Sign-up time.
        created_at: Option<i64>,
        /// Consent.
        email_consent: Option<bool>,
    },
}

impl LiveRow {
    /// The contact the row is about.
    pub fn contact_id(&self) -> &str {
        match self {
            Self::Order { contact_id, .. }
            | Self::Web { contact_id, .. }
            | Self::Email { contact_id, .. }
            | Self::Contact { contact_id, .. } => contact_id,
        }
    }
}
