//! The data-quality report of a load: what was read, what was kept, what was dropped and why,
//! what was derived, and whether anything is fatal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::contract::TableKind;
use crate::time::format_utc;

/// Why a row was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// No contact id.
    MissingContactId,
    /// No product id (contacts table: no id at all).
    MissingProductId,
    /// No timestamp.
    MissingTimestamp,
    /// A timestamp that could not be read.
    UnparsableTimestamp,
    /// A timestamp more than [`crate::FUTURE_SLACK_SECONDS`] after the load: a typo or a
    /// placeholder such as 9999-12-31, which would otherwise become the default as-of time.
    FutureTimestamp,
    /// An event value that is neither a contract event nor mapped in `event_values`.
    UnknownEventType,
    /// A return (negative quantity) of a product the contact had not bought before.
    ReturnWithoutPurchase,
    /// An exact repeat of an earlier row.
    Duplicate,
    /// A second row for an id that must be unique (the first is kept).
    DuplicateId,
    /// A product code listed in `exclude_products` or matching `exclude_product_pattern`.
    ExcludedProduct,
    /// Quantity zero.
    ZeroQuantity,
    /// A negative unit price (adjustments, bad-debt write-offs).
    NegativePrice,
    /// A quantity or unit price beyond [`crate::MAX_QUANTITY`] or [`crate::MAX_UNIT_PRICE`].
    ImplausibleAmount,
    /// A row of a contact (or address) that was erased (`augur contacts forget`).
    Erased,
}

impl DropReason {
    /// Text for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MissingContactId => "missing contact_id",
            Self::MissingProductId => "missing product_id",
            Self::MissingTimestamp => "missing timestamp",
            Self::UnparsableTimestamp => "unparsable timestamp",
            Self::FutureTimestamp => "timestamp over 7 days after loading (typo or placeholder)",
            Self::UnknownEventType => "unknown event type",
            Self::ReturnWithoutPurchase => "return without a purchase",
            Self::Duplicate => "duplicate row",
            Self::DuplicateId => "duplicate id (first kept)",
            Self::ExcludedProduct => "excluded product code",
            Self::ZeroQuantity => "zero quantity",
            Self::NegativePrice => "negative unit price",
            Self::ImplausibleAmount => "quantity or unit price out of range",
            Self::Erased => "erased contact (kept out of training)",
        }
    }
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// The table.
    pub table: TableKind,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Rows in the files.
    pub rows_read: u64,
    /// Rows kept.
    pub rows_kept: u64,
    /// Rows dropped, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// A few offending raw values per reason.
    pub examples: BTreeMap<DropReason, Vec<String>>,
    /// Earliest kept instant (UTC seconds).
    pub first_at: Option<i64>,
    /// Latest kept instant (UTC seconds).
    pub last_at: Option<i64>,
    /// Other facts worth knowing (e.g. lines read as returns), by description.
    pub notes: BTreeMap<String, u64>,
}

impl TableReport {
    /// An empty report for a table.
    pub fn new(table: TableKind) -> Self {
        Self {
            table,
            files: Vec::new(),
            rows_read: 0,
            rows_kept: 0,
            dropped: BTreeMap::new(),
            examples: BTreeMap::new(),
            first_at: None,
            last_at: None,
            notes: BTreeMap::new(),
        }
    }

    /// Counts one dropped row, keeping a few examples.
    pub fn drop_row(&mut self, reason: DropReason, example: impl FnOnce() -> String) {
        *self.dropped.entry(reason).or_default() += 1;
        let examples = self.examples.entry(reason).or_default();
        if examples.len() < 3 {
            let text = example();
            if !examples.contains(&text) {
                examples.push(text);
            }
        }
    }

    /// Adds to a note counter.
    pub fn note(&mut self, what: &str, n: u64) {
        if n > 0 {
            *self.notes.entry(what.to_string()).or_default() += n;
        }
    }

    /// Rows dropped in all.
    pub fn rows_dropped(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub(crate) fn observe_time_range(&mut self, at: &[i64]) {
        self.first_at = at.iter().copied().min();
        self.last_at = at.iter().copied().max();
    }
}

/// The report of a whole load.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QualityReport {
    /// Tables that were configured, in load order.
    pub tables: Vec<TableReport>,
    /// Contacts in all.
    pub contacts: u64,
    /// Contacts seen only in events (no contacts-table row).
    pub contacts_derived: u64,
    /// Products in all.
    pub products: u64,
    /// Products seen only in orders or web events.
    pub products_derived: u64,
    /// Contacts by time zone source (`contact`, `country`, `default`).
    pub timezone_sources: BTreeMap<String, u64>,
    /// Problems worth attention that do not stop training.
    pub warnings: Vec<String>,
    /// Problems that make the data unusable; `augur validate` exits non-zero when any exist.
    pub fatal: Vec<String>,
}

impl QualityReport {
    /// Whether a fatal problem was found.
    pub fn is_fatal(&self) -> bool {
        !self.fatal.is_empty()
    }

    /// The report of one table, if it was configured.
    pub fn table(&self, kind: TableKind) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == kind)
    }

    /// Derives warnings and fatal problems from the counts.
    pub(crate) fn judge(&mut self) {
        let mut any_events = false;
        for t in &self.tables {
            let name = t.table.name();
            let dropped = t.rows_dropped();
            if t.rows_read > 0 && t.rows_kept == 0 {
                let top = t
                    .dropped
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(r, _)| r.describe());
                self.fatal.push(format!(
                    "{name}: all {} rows were dropped (mostly: {}); check the column mapping and timestamp_format in [tables.{name}]",
                    t.rows_read,
                    top.unwrap_or("unknown")
                ));
            } else if t.rows_read == 0 {
                self.warnings
                    .push(format!("{name}: the table is configured but holds no rows"));
            } else if dropped * 2 > t.rows_read {
                self.warnings.push(format!(
                    "{name}: {dropped} of {} rows dropped ({:.0} %)",
                    t.rows_read,
                    100.0 * dropped as f64 / t.rows_read as f64
                ));
            }
            if matches!(
                t.table,
                TableKind::Orders | TableKind::EmailEvents | TableKind::WebEvents
            ) && t.rows_kept > 0
            {
                any_events = true;
            }
        }
        if !any_events {
            self.fatal.push(
                "no usable orders, e-mail events or web events: there is nothing to learn from"
                    .into(),
            );
        }
        if self.contacts_derived > 0 && self.contacts_derived < self.contacts {
            self.warnings.push(format!(
                "{} contacts appear in events but not in the contacts table; they were added without attributes",
                self.contacts_derived
            ));
        }
        if let Some(n) = self.timezone_sources.get("default").filter(|n| **n > 0) {
            self.warnings.push(format!(
                "{n} contacts have neither a valid time zone nor a known country; they use data.default_contact_timezone"
            ));
        }
    }

    /// Renders the report for a terminal.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<13} {:>12} {:>12} {:>10}  {:<21} {:<21}",
            "table", "rows read", "kept", "dropped", "first", "last"
        );
        for t in &self.tables {
            let _ = writeln!(
                s,
                "{:<13} {:>12} {:>12} {:>10}  {:<21} {:<21}",
                t.table.name(),
                t.rows_read,
                t.rows_kept,
                t.rows_dropped(),
                t.first_at.map(format_utc).unwrap_or_else(|| "-".into()),
                t.last_at.map(format_utc).unwrap_or_else(|| "-".into()),
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "contacts: {} ({} derived from events)",
            self.contacts, self.contacts_derived
        );
        let _ = writeln!(
            s,
            "products: {} ({} derived from orders and web events)",
            self.products, self.products_derived
        );
        if !self.timezone_sources.is_empty() {
            let parts: Vec<_> = self
                .timezone_sources
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(s, "contact time zones from: {}", parts.join(", "));
        }
        for t in &self.tables {
            if t.dropped.is_empty() && t.notes.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n{}:", t.table.name());
            for (reason, n) in &t.dropped {
                let examples = t.examples.get(reason).filter(|e| !e.is_empty());
                match examples {
                    Some(e) => {
                        let _ = writeln!(
                            s,
                            "  dropped {n:>10}  {} (e.g. {})",
                            reason.describe(),
                            e.join(", ")
                        );
                    }
                    None => {
                        let _ = writeln!(s, "  dropped {n:>10}  {}", reason.describe());
                    }
                }
            }
            for (what, n) in &t.notes {
                let _ = writeln!(s, "  note    {n:>10}  {what}");
            }
        }
        for w in &self.warnings {
            let _ = writeln!(s, "\nwarning: {w}");
        }
        for f in &self.fatal {
            let _ = writeln!(s, "\nFATAL: {f}");
        }
        s
    }
}
