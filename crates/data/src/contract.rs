//! The data contract: the five tables augur reads, their fields, and the event vocabularies.
//!
//! `docs/data-contract.md` is the user-facing description of the same contract; keep them in step.

use serde::{Deserialize, Serialize};

/// How far after the load an event may be dated (7 days, in seconds): exports written in
/// another zone or by a clock a little ahead pass; a typo or a placeholder year does not.
pub const FUTURE_SLACK_SECONDS: i64 = 7 * 86_400;

/// Largest order-line quantity, either way (a return is negative). More is a unit or export
/// error, and a few such lines make spend and revenue sums overflow to infinity.
pub const MAX_QUANTITY: f64 = 1e6;

/// Largest unit price, in any currency (a billion covers prices in the smallest units).
pub const MAX_UNIT_PRICE: f64 = 1e9;

/// One of the five input tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// People the shop can e-mail.
    Contacts,
    /// The catalogue.
    Products,
    /// Order lines (negative quantity = return).
    Orders,
    /// E-mail platform events.
    EmailEvents,
    /// Website or app events.
    WebEvents,
}

impl TableKind {
    /// All tables in load order: reference tables first, so that their ids come first.
    pub const ALL: [TableKind; 5] = [
        Self::Contacts,
        Self::Products,
        Self::Orders,
        Self::EmailEvents,
        Self::WebEvents,
    ];

    /// The table's name in configuration and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Products => "products",
            Self::Orders => "orders",
            Self::EmailEvents => "email_events",
            Self::WebEvents => "web_events",
        }
    }

    /// The fields the contract defines for this table.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::Contacts => CONTACT_FIELDS,
            Self::Products => PRODUCT_FIELDS,
            Self::Orders => ORDER_FIELDS,
            Self::EmailEvents => EMAIL_EVENT_FIELDS,
            Self::WebEvents => WEB_EVENT_FIELDS,
        }
    }

    /// Looks a field up by name.
    pub fn field(self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.name == name)
    }
}

/// How a field's values are read, whatever the physical column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// An identifier: string or integer; `17850.0` reads as `17850`.
    Id,
    /// Free text.
    Text,
    /// A number (integers, floats, decimals, numeric strings).
    Number,
    /// A boolean (`true/false`, `yes/no`, `1/0`).
    Flag,
    /// An instant: Parquet timestamp or date, epoch number, or string.
    Timestamp,
}

impl FieldType {
    /// Human description used in type errors.
    pub fn expected(self) -> &'static str {
        match self {
            Self::Id => "a string or integer id",
            Self::Text => "a string",
            Self::Number => "a number",
            Self::Flag => "a boolean",
            Self::Timestamp => "a timestamp, date, epoch number or date-time string",
        }
    }
}

/// A field of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Contract name, also the default source column name.
    pub name: &'static str,
    /// How values are read.
    pub ty: FieldType,
    /// Whether a file without this column is an error.
    pub required: bool,
}

const fn req(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}
const fn opt(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

use FieldType::{Flag, Id, Number, Text, Timestamp};

const CONTACT_FIELDS: &[Field] = &[
    req("contact_id", Id),
    opt("email", Text),
    opt("first_name", Text),
    opt("country", Text),
    opt("timezone", Text),
    opt("created_at", Timestamp),
    opt("email_consent", Flag),
];

const PRODUCT_FIELDS: &[Field] = &[
    req("product_id", Id),
    opt("name", Text),
    opt("category", Text),
    opt("price", Number),
    opt("url", Text),
    opt("image_url", Text),
    opt("in_stock", Flag),
];

/// Order lines. `product_name`, `product_category` and `country` are optional extras of raw exports
/// that carry them on each line; they fill in products and contacts when those tables are absent.
const ORDER_FIELDS: &[Field] = &[
    opt("order_id", Id),
    req("contact_id", Id),
    req("product_id", Id),
    req("ordered_at", Timestamp),
    opt("quantity", Number),
    opt("unit_price", Number),
    opt("line_total", Number),
    opt("product_name", Text),
    opt("product_category", Text),
    opt("country", Text),
];

const EMAIL_EVENT_FIELDS: &[Field] = &[
    req("contact_id", Id),
    opt("campaign_id", Id),
    req("event", Text),
    req("occurred_at", Timestamp),
    opt("machine_open", Flag),
];

const WEB_EVENT_FIELDS: &[Field] = &[
    req("contact_id", Id),
    req("event", Text),
    opt("product_id", Id),
    req("occurred_at", Timestamp),
];

/// Kinds of e-mail events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum EmailEventKind {
    /// Handed to the mail server.
    Sent,
    /// Accepted by the recipient's server.
    Delivered,
    /// Opened (may be a machine open).
    Open,
    /// A link was clicked.
    Click,
    /// Delivery failed.
    Bounce,
    /// The contact unsubscribed.
    Unsubscribe,
    /// The contact marked the message as spam.
    Complaint,
}

impl EmailEventKind {
    /// All kinds.
    pub const ALL: [Self; 7] = [
        Self::Sent,
        Self::Delivered,
        Self::Open,
        Self::Click,
        Self::Bounce,
        Self::Unsubscribe,
        Self::Complaint,
    ];

    /// Contract spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Open => "open",
            Self::Click => "click",
            Self::Bounce => "bounce",
            Self::Unsubscribe => "unsubscribe",
            Self::Complaint => "complaint",
        }
    }

    /// Reads the contract spelling or a common synonym (case-insensitive).
    pub fn parse(raw: &str) -> Option<Self> {
        // Exact contract spellings first: no allocation on the common path.
        if let Some(kind) = Self::ALL.into_iter().find(|k| k.name() == raw) {
            return Some(kind);
        }
        let s = raw.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "sent" | "send" | "sends" | "processed" => Self::Sent,
            "delivered" | "delivery" | "deliver" => Self::Delivered,
            "open" | "opened" | "opens" => Self::Open,
            "click" | "clicked" | "clicks" => Self::Click,
            "bounce" | "bounced" | "hard_bounce" | "soft_bounce" | "hardbounce" | "softbounce" => {
                Self::Bounce
            }
            "unsubscribe" | "unsubscribed" | "unsub" | "optout" | "opt_out" => Self::Unsubscribe,
            "complaint" | "complained" | "spam" | "spamreport" | "spam_report" => Self::Complaint,
            _ => return None,
        })
    }
}

/// Kinds of web events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum WebEventKind {
    /// A page or product view.
    View,
    /// A product was put in the cart.
    AddToCart,
    /// A product was taken out of the cart.
    RemoveFromCart,
    /// Checkout started.
    Checkout,
    /// A search.
    Search,
    /// A session began (app open, landing).
    Session,
}

impl WebEventKind {
    /// All kinds.
    pub const ALL: [Self; 6] = [
        Self::View,
        Self::AddToCart,
        Self::RemoveFromCart,
        Self::Checkout,
        Self::Search,
        Self::Session,
    ];

    /// Contract spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::AddToCart => "add_to_cart",
            Self::RemoveFromCart => "remove_from_cart",
            Self::Checkout => "checkout",
            Self::Search => "search",
            Self::Session => "session",
        }
    }

    /// Reads the contract spelling or a common synonym (case-insensitive).
    pub fn parse(raw: &str) -> Option<Self> {
        if let Some(kind) = Self::ALL.into_iter().find(|k| k.name() == raw) {
            return Some(kind);
        }
        let s = raw.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Some(match s.as_str() {
            "view" | "page_view" | "pageview" | "product_view" | "view_item" | "viewed" => {
                Self::View
            }
            "add_to_cart" | "addtocart" | "cart" | "add" => Self::AddToCart,
            "remove_from_cart" | "removefromcart" => Self::RemoveFromCart,
            "checkout" | "begin_checkout" | "checkout_started" => Self::Checkout,
            "search" => Self::Search,
            "session" | "session_start" | "visit" | "app_open" => Self::Session,
            _ => return None,
        })
    }
}
