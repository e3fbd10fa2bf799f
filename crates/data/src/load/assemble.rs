//! The sequential half of loading: contract rules applied row by row, ids mapped to dense
//! indexes, then per table the sort by time, duplicate removal and return checks.

use std::collections::{BTreeMap, HashSet};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use chrono_tz::Tz;
use regex::Regex;

use super::decode::{Decoded, Values};
use super::source::AttributeType;
use crate::config::{Config, TableConfig};
use crate::contract::{EmailEventKind, TableKind, WebEventKind};
use crate::error::{Error, Result};
use crate::history::{
    AttributeColumn, Columns as _, EmailEvents, History, Orders, WebEvents, time_order,
};
use crate::ids::{NONE, canonical_id};
use crate::quality::{DropReason, QualityReport, TableReport};
use crate::time::{TimeColumn, TimeStatus};
use crate::zones::{ZoneSource, normalize_country, resolve_zone};

/// Product codes that are not products, from `exclude_products` and `exclude_product_pattern`.
struct Exclusions {
    codes: HashSet<String>,
    pattern: Option<Regex>,
}

impl Exclusions {
    fn new(table: &TableConfig) -> Result<Self> {
        let pattern = match &table.exclude_product_pattern {
            Some(p) => Some(Regex::new(p).map_err(|e| Error::InvalidSetting {
                setting: "tables.orders.exclude_product_pattern".into(),
                message: e.to_string(),
            })?),
            None => None,
        };
        Ok(Self {
            codes: table.exclude_products.iter().cloned().collect(),
            pattern,
        })
    }

    fn excludes(&self, code: &str) -> bool {
        self.codes.contains(code) || self.pattern.as_ref().is_some_and(|p| p.is_match(code))
    }
}

/// Accumulates the history while batches arrive; see the module docs.
pub struct Loader {
    history: History,
    pub(crate) report: QualityReport,
    default_zone: Tz,
    /// Raw `timezone` values of contacts, resolved once every table is in.
    raw_zones: Vec<Option<Box<str>>>,
    /// Time of the unit price last taken as a derived product's price.
    derived_price_at: Vec<i64>,
    /// Events after this instant (UTC seconds) are dropped as in the future.
    latest: i64,
    /// The report's note on each number field that held text other than numbers (its first
    /// example fixed, so that every batch adds to one line).
    unreadable_notes: BTreeMap<(TableKind, &'static str), String>,
    exclusions: Exclusions,
    cancelled_prefix: Option<String>,
    email_values: BTreeMap<String, EmailEventKind>,
    web_values: BTreeMap<String, WebEventKind>,
    /// Keep only these e-mail event kinds (all when `None`).
    pub(crate) email_kinds: Option<Vec<EmailEventKind>>,
    /// Rows posted after the exports, added to their tables before each is finished.
    pub(crate) live: Vec<crate::LiveRow>,
    /// Whether a contact (by id, and by address on the contacts table) was erased: its rows
    /// are dropped and counted, never shown.
    pub(crate) erased: Option<crate::Erased>,
}

impl Loader {
    /// A loader for one configuration.
    pub fn new(config: &Config) -> Result<Self> {
        let email_values = config
            .tables
            .email_events
            .event_values
            .iter()
            .filter_map(|(raw, to)| Some((raw.trim().to_lowercase(), EmailEventKind::parse(to)?)))
            .collect();
        let web_values = config
            .tables
            .web_events
            .event_values
            .iter()
            .filter_map(|(raw, to)| Some((raw.trim().to_lowercase(), WebEventKind::parse(to)?)))
            .collect();
        Ok(Self {
            history: History::default(),
            report: QualityReport::default(),
            default_zone: config.default_contact_zone(),
            raw_zones: Vec::new(),
            derived_price_at: Vec::new(),
            latest: chrono::Utc::now().timestamp() + crate::FUTURE_SLACK_SECONDS,
            unreadable_notes: BTreeMap::new(),
            exclusions: Exclusions::new(&config.tables.orders)?,
            cancelled_prefix: config
                .tables
                .orders
                .cancelled_order_prefix
                .clone()
                .filter(|p| !p.is_empty()),
            email_values,
            web_values,
            email_kinds: None,
            live: Vec::new(),
            erased: None,
        })
    }

    /// Adds the live rows of `table` to it (before [`Loader::finish_table`] sorts the table
    /// and drops exact duplicates, so an event the exports hold too counts once).
    pub(crate) fn absorb_live(&mut self, table: TableKind, report: &mut TableReport) {
        use crate::LiveRow;
        let rows = std::mem::take(&mut self.live);
        let mut added = 0;
        for row in &rows {
            if self
                .erased
                .as_ref()
                .is_some_and(|f| f(row.contact_id(), None))
            {
                continue;
            }
            match (table, row) {
                (
                    TableKind::Orders,
                    LiveRow::Order {
                        contact_id,
                        order_id,
                        product_id,
                        at,
                        quantity,
                        unit_price,
                    },
                ) if *quantity != 0.0 && !self.exclusions.excludes(product_id) => {
                    let c = self.contact(contact_id);
                    let p = self.product(product_id);
                    let key = order_id
                        .clone()
                        .unwrap_or_else(|| format!("{contact_id}@{at}"));
                    let orders = &mut self.history.orders;
                    let o = orders.order_ids.intern(&key);
                    orders.order.push(o);
                    orders.contact.push(c);
                    orders.product.push(p);
                    orders.at.push(*at);
                    orders.quantity.push(*quantity);
                    orders.unit_price.push(*unit_price);
                    added += 1;
                }
                (
                    TableKind::EmailEvents,
                    LiveRow::Email {
                        contact_id,
                        kind,
                        campaign_id,
                        machine_open,
                        at,
                    },
                ) if self.email_kinds.as_ref().is_none_or(|k| k.contains(kind)) => {
                    let c = self.contact(contact_id);
                    let camp = campaign_id
                        .as_deref()
                        .map_or(NONE, |k| self.history.campaigns.intern(k));
                    let events = &mut self.history.email_events;
                    events.contact.push(c);
                    events.campaign.push(camp);
                    events.kind.push(*kind);
                    events.at.push(*at);
                    events
                        .machine_open
                        .push(*kind == EmailEventKind::Open && *machine_open);
                    added += 1;
                }
                (
                    TableKind::WebEvents,
                    LiveRow::Web {
                        contact_id,
                        kind,
                        product_id,
                        at,
                    },
                ) => {
                    let c = self.contact(contact_id);
                    let p = product_id.as_deref().map_or(NONE, |k| self.product(k));
                    let events = &mut self.history.web_events;
                    events.contact.push(c);
                    events.kind.push(*kind);
                    events.product.push(p);
                    events.at.push(*at);
                    added += 1;
                }
                _ => {}
            }
        }
        self.live = rows;
        report.note("rows added from the event store", added);
    }

    /// Whether contact `key` (with `email`, on the contacts table) was erased; its row is
    /// counted as dropped, with no example (the id is not shown anywhere).
    fn is_erased(&self, key: &str, email: Option<&str>, report: &mut TableReport) -> bool {
        let erased = self.erased.as_ref().is_some_and(|f| f(key, email));
        if erased {
            report.drop_row(DropReason::Erased, || "(withheld)".into());
        }
        erased
    }

    fn contact(&mut self, id: &str) -> u32 {
        let i = self.history.contacts.intern(id, self.default_zone);
        if self.raw_zones.len() < self.history.contacts.len() {
            self.raw_zones.push(None);
        }
        i
    }

    fn product(&mut self, id: &str) -> u32 {
        let i = self.history.products.intern(id);
        if self.derived_price_at.len() < self.history.products.len() {
            self.derived_price_at.push(i64::MIN);
        }
        i
    }

    /// Applies one decoded batch of `table`.
    pub(crate) fn absorb(&mut self, table: TableKind, batch: &Decoded, report: &mut TableReport) {
        for (field, n, first) in &batch.unreadable {
            let key = self
                .unreadable_notes
                .entry((table, *field))
                .or_insert_with(|| {
                    format!(
                        "`{field}` values that are not numbers, read as missing (e.g. {first:?})"
                    )
                });
            report.note(key, *n);
        }
        match table {
            TableKind::Contacts => self.absorb_contacts(batch, report),
            TableKind::Products => self.absorb_products(batch, report),
            TableKind::Orders => self.absorb_orders(batch, report),
            TableKind::EmailEvents => self.absorb_email(batch, report),
            TableKind::WebEvents => self.absorb_web(batch, report),
        }
    }

    fn absorb_contacts(&mut self, b: &Decoded, report: &mut TableReport) {
        let t = TableKind::Contacts;
        let (id, email, first, country, zone, created, consent) = (
            b.field(t, "contact_id"),
            b.field(t, "email"),
            b.field(t, "first_name"),
            b.field(t, "country"),
            b.field(t, "timezone"),
            b.field(t, "created_at"),
            b.field(t, "email_consent"),
        );
        let attributes: Vec<_> = b
            .attributes
            .iter()
            .map(|(name, ty, array)| (name, *ty, attribute_values(*ty, array.as_ref())))
            .collect();
        let mut unknown_countries = 0;
        let mut bad_created = 0;
        for row in 0..b.rows {
            let Some(key) = id.str(row).and_then(canonical_id) else {
                report.drop_row(DropReason::MissingContactId, || {
                    format!("row {row} of a batch")
                });
                continue;
            };
            if self.is_erased(&key, email.str(row), report) {
                continue;
            }
            if self.history.contacts.ids.get(&key).is_some() {
                report.drop_row(DropReason::DuplicateId, || key.to_string());
                continue;
            }
            let c = self.contact(&key) as usize;
            let contacts = &mut self.history.contacts;
            contacts.listed[c] = true;
            contacts.email[c] = text(email, row);
            contacts.first_name[c] = text(first, row);
            if let Some(raw) = country.str(row).filter(|s| !s.trim().is_empty()) {
                contacts.country[c] = normalize_country(raw);
                unknown_countries += u64::from(contacts.country[c].is_none());
            }
            self.raw_zones[c] = text(zone, row);
            contacts.created_at[c] = time_at(created, row);
            if matches!(
                created.times().map(|tc| tc.status[row]),
                Some(TimeStatus::Unparsable)
            ) {
                bad_created += 1;
            }
            contacts.email_consent[c] = consent.flag(row);
            for (name, ty, values) in &attributes {
                let column =
                    contacts
                        .attributes
                        .entry((*name).clone())
                        .or_insert_with(|| match ty {
                            AttributeType::Text => AttributeColumn::Text(Vec::new()),
                            AttributeType::Number => AttributeColumn::Number(Vec::new()),
                            AttributeType::Flag => AttributeColumn::Flag(Vec::new()),
                        });
                set_attribute(column, c, values, row);
            }
            report.rows_kept += 1;
        }
        report.note(
            "unknown country (no time zone from country)",
            unknown_countries,
        );
        report.note("unparsable created_at (kept without it)", bad_created);
    }

    fn absorb_products(&mut self, b: &Decoded, report: &mut TableReport) {
        let t = TableKind::Products;
        let (id, name, category, price, url, image, stock) = (
            b.field(t, "product_id"),
            b.field(t, "name"),
            b.field(t, "category"),
            b.field(t, "price"),
            b.field(t, "url"),
            b.field(t, "image_url"),
            b.field(t, "in_stock"),
        );
        for row in 0..b.rows {
            let Some(key) = id.str(row).and_then(canonical_id) else {
                report.drop_row(DropReason::MissingProductId, || {
                    format!("row {row} of a batch")
                });
                continue;
            };
            if self.history.products.ids.get(&key).is_some() {
                report.drop_row(DropReason::DuplicateId, || key.to_string());
                continue;
            }
            let p = self.product(&key) as usize;
            let products = &mut self.history.products;
            products.listed[p] = true;
            products.name[p] = text(name, row);
            if let Some(c) = category.str(row).map(str::trim).filter(|s| !s.is_empty()) {
                products.category[p] = products.categories.intern(c);
            }
            products.price[p] = price.number(row).filter(|v| *v >= 0.0);
            products.url[p] = text(url, row);
            products.image_url[p] = text(image, row);
            products.in_stock[p] = stock.flag(row).unwrap_or(true);
            report.rows_kept += 1;
        }
    }

    fn absorb_orders(&mut self, b: &Decoded, report: &mut TableReport) {
        let t = TableKind::Orders;
        let (order, contact, product, at, quantity, price, total, name, category, country) = (
            b.field(t, "order_id"),
            b.field(t, "contact_id"),
            b.field(t, "product_id"),
            b.field(t, "ordered_at"),
            b.field(t, "quantity"),
            b.field(t, "unit_price"),
            b.field(t, "line_total"),
            b.field(t, "product_name"),
            b.field(t, "product_category"),
            b.field(t, "country"),
        );
        let times = at.times();
        let mut cancelled = 0;
        for row in 0..b.rows {
            let order_key = order.str(row).and_then(canonical_id);
            let Some(contact_key) = contact.str(row).and_then(canonical_id) else {
                report.drop_row(DropReason::MissingContactId, || {
                    order_key
                        .as_deref()
                        .map_or_else(|| format!("row {row}"), |o| format!("order {o}"))
                });
                continue;
            };
            let Some(product_key) = product.str(row).and_then(canonical_id) else {
                report.drop_row(DropReason::MissingProductId, || {
                    format!("contact {contact_key}")
                });
                continue;
            };
            let Some(ts) = checked_time(times, row, self.latest, report) else {
                continue;
            };
            if self.exclusions.excludes(&product_key) {
                report.drop_row(DropReason::ExcludedProduct, || product_key.to_string());
                continue;
            }
            let mut qty = quantity.number(row).unwrap_or(1.0);
            if qty == 0.0 {
                report.drop_row(DropReason::ZeroQuantity, || {
                    format!("product {product_key}")
                });
                continue;
            }
            // Exports that give the line's value (dunnhumby's `sales_value`, an `amount`) rather
            // than the unit price: the unit price is the value over the quantity. A return's
            // value may be written negative or not; a purchase with a negative value is an
            // adjustment, dropped as a negative price.
            let unit_price = price.number(row).or_else(|| {
                total
                    .number(row)
                    .map(|v| if qty < 0.0 { v.abs() / -qty } else { v / qty })
            });
            if unit_price.is_some_and(|p| p < 0.0) {
                report.drop_row(DropReason::NegativePrice, || {
                    format!("{} for {product_key}", unit_price.unwrap_or_default())
                });
                continue;
            }
            if qty.abs() > crate::MAX_QUANTITY || unit_price.unwrap_or(0.0) > crate::MAX_UNIT_PRICE
            {
                report.drop_row(DropReason::ImplausibleAmount, || {
                    format!(
                        "{qty} × {} for {product_key}",
                        unit_price.unwrap_or_default()
                    )
                });
                continue;
            }
            if let (Some(prefix), Some(o)) = (&self.cancelled_prefix, &order_key)
                && o.starts_with(prefix.as_str())
            {
                qty = -qty.abs();
                cancelled += 1;
            }
            if self.is_erased(&contact_key, None, report) {
                continue;
            }
            let c = self.contact(&contact_key);
            let p = self.product(&product_key);
            let order_index = match &order_key {
                Some(o) => self.history.orders.order_ids.intern(o),
                None => self
                    .history
                    .orders
                    .order_ids
                    .intern(&format!("{contact_key}@{ts}")),
            };
            self.fill_derived_product(p as usize, name, category, unit_price, ts, row);
            let contacts = &mut self.history.contacts;
            if contacts.country[c as usize].is_none() {
                contacts.country[c as usize] = country.str(row).and_then(normalize_country);
            }
            let orders = &mut self.history.orders;
            orders.order.push(order_index);
            orders.contact.push(c);
            orders.product.push(p);
            orders.at.push(ts);
            orders.quantity.push(qty);
            orders.unit_price.push(unit_price.unwrap_or(0.0));
        }
        report.note("lines of cancelled orders read as returns", cancelled);
    }

    /// Fills a derived product's name, category and price from an order line.
    fn fill_derived_product(
        &mut self,
        p: usize,
        name: &Values,
        category: &Values,
        price: Option<f64>,
        ts: i64,
        row: usize,
    ) {
        let products = &mut self.history.products;
        if products.listed[p] {
            return;
        }
        if products.name[p].is_none() {
            products.name[p] = text(name, row);
        }
        if products.category[p] == NONE
            && let Some(c) = category.str(row).map(str::trim).filter(|s| !s.is_empty())
        {
            products.category[p] = products.categories.intern(c);
        }
        if let Some(price) = price.filter(|v| *v > 0.0)
            && ts >= self.derived_price_at[p]
        {
            products.price[p] = Some(price);
            self.derived_price_at[p] = ts;
        }
    }

    fn absorb_email(&mut self, b: &Decoded, report: &mut TableReport) {
        let t = TableKind::EmailEvents;
        let (contact, campaign, event, at, machine) = (
            b.field(t, "contact_id"),
            b.field(t, "campaign_id"),
            b.field(t, "event"),
            b.field(t, "occurred_at"),
            b.field(t, "machine_open"),
        );
        let times = at.times();
        for row in 0..b.rows {
            // The event is read once: it decides both whether a narrowed load keeps the row
            // and, below, the row's kind.
            let raw = event.str(row).unwrap_or("");
            let kind = mapped(&self.email_values, raw).or_else(|| EmailEventKind::parse(raw));
            if let Some(kinds) = &self.email_kinds
                && !kind.is_some_and(|k| kinds.contains(&k))
            {
                continue;
            }
            let Some(contact_key) = contact.str(row).and_then(canonical_id) else {
                report.drop_row(DropReason::MissingContactId, || format!("row {row}"));
                continue;
            };
            let Some(kind) = kind else {
                report.drop_row(DropReason::UnknownEventType, || raw.to_string());
                continue;
            };
            let Some(ts) = checked_time(times, row, self.latest, report) else {
                continue;
            };
            if self.is_erased(&contact_key, None, report) {
                continue;
            }
            let c = self.contact(&contact_key);
            let camp = campaign
                .str(row)
                .and_then(canonical_id)
                .map_or(NONE, |k| self.history.campaigns.intern(&k));
            let events = &mut self.history.email_events;
            events.contact.push(c);
            events.campaign.push(camp);
            events.kind.push(kind);
            events.at.push(ts);
            events
                .machine_open
                .push(kind == EmailEventKind::Open && machine.flag(row).unwrap_or(false));
        }
    }

    fn absorb_web(&mut self, b: &Decoded, report: &mut TableReport) {
        let t = TableKind::WebEvents;
        let (contact, event, product, at) = (
            b.field(t, "contact_id"),
            b.field(t, "event"),
            b.field(t, "product_id"),
            b.field(t, "occurred_at"),
        );
        let times = at.times();
        for row in 0..b.rows {
            let Some(contact_key) = contact.str(row).and_then(canonical_id) else {
                report.drop_row(DropReason::MissingContactId, || format!("row {row}"));
                continue;
            };
            let raw = event.str(row).unwrap_or("");
            let Some(kind) = mapped(&self.web_values, raw).or_else(|| WebEventKind::parse(raw))
            else {
                report.drop_row(DropReason::UnknownEventType, || raw.to_string());
                continue;
            };
            let Some(ts) = checked_time(times, row, self.latest, report) else {
                continue;
            };
            if self.is_erased(&contact_key, None, report) {
                continue;
            }
            let c = self.contact(&contact_key);
            let p = product
                .str(row)
                .and_then(canonical_id)
                .map_or(NONE, |k| self.product(&k));
            let events = &mut self.history.web_events;
            events.contact.push(c);
            events.kind.push(kind);
            events.product.push(p);
            events.at.push(ts);
        }
    }

    /// Makes room for the `rows` that the files of an event table hold, as their metadata
    /// counts them. Not for e-mail events read for a few kinds only (most rows are left out).
    pub(crate) fn reserve(&mut self, table: TableKind, rows: usize) {
        let h = &mut self.history;
        match table {
            TableKind::Orders => h.orders.reserve_rows(rows),
            TableKind::EmailEvents if self.email_kinds.is_none() => {
                h.email_events.reserve_rows(rows);
            }
            TableKind::WebEvents => h.web_events.reserve_rows(rows),
            _ => {}
        }
    }

    /// Sorts a finished table by time, removes exact duplicates and (orders) returns without a
    /// purchase, and records the kept count and time range.
    pub(crate) fn finish_table(&mut self, table: TableKind, report: &mut TableReport) {
        match table {
            TableKind::Orders => self.finish_orders(report),
            TableKind::EmailEvents => {
                let e = &mut self.history.email_events;
                sort_email_events(e);
                let contacts = &self.history.contacts.ids;
                let same = |a: usize, b: usize| {
                    e.at[a] == e.at[b]
                        && e.contact[a] == e.contact[b]
                        && e.kind[a] == e.kind[b]
                        && e.campaign[a] == e.campaign[b]
                        && e.machine_open[a] == e.machine_open[b]
                };
                let keep = keep_first_of_runs(e.len(), report, same, |i| {
                    event_example(contacts.name(e.contact[i]), e.kind[i].name(), e.at[i])
                });
                e.retain_rows(&keep);
                report.rows_kept = e.len() as u64;
                report.observe_time_range(&e.at);
            }
            TableKind::WebEvents => {
                let e = &mut self.history.web_events;
                sort_web_events(e);
                let contacts = &self.history.contacts.ids;
                let same = |a: usize, b: usize| {
                    e.at[a] == e.at[b]
                        && e.contact[a] == e.contact[b]
                        && e.kind[a] == e.kind[b]
                        && e.product[a] == e.product[b]
                };
                let keep = keep_first_of_runs(e.len(), report, same, |i| {
                    event_example(contacts.name(e.contact[i]), e.kind[i].name(), e.at[i])
                });
                e.retain_rows(&keep);
                report.rows_kept = e.len() as u64;
                report.observe_time_range(&e.at);
            }
            TableKind::Contacts => {
                let created: Vec<i64> = self
                    .history
                    .contacts
                    .created_at
                    .iter()
                    .flatten()
                    .copied()
                    .collect();
                report.observe_time_range(&created);
            }
            TableKind::Products => {}
        }
    }

    fn finish_orders(&mut self, report: &mut TableReport) {
        let o = &mut self.history.orders;
        sort_orders(o);
        let names = (&self.history.contacts.ids, &self.history.products.ids);
        let same = |a: usize, b: usize| {
            o.at[a] == o.at[b]
                && o.contact[a] == o.contact[b]
                && o.order[a] == o.order[b]
                && o.product[a] == o.product[b]
                && o.quantity[a].to_bits() == o.quantity[b].to_bits()
                && o.unit_price[a].to_bits() == o.unit_price[b].to_bits()
        };
        let mut keep = keep_first_of_runs(o.len(), report, same, |i| {
            format!(
                "order {} contact {} product {}",
                o.order_ids.name(o.order[i]),
                names.0.name(o.contact[i]),
                names.1.name(o.product[i])
            )
        });
        let mut bought: HashSet<u64> = HashSet::new();
        let mut returns = 0;
        for (i, kept) in keep.iter_mut().enumerate() {
            if !*kept {
                continue;
            }
            let key = (u64::from(o.contact[i]) << 32) | u64::from(o.product[i]);
            if o.quantity[i] > 0.0 {
                bought.insert(key);
            } else if bought.contains(&key) {
                returns += 1;
            } else {
                *kept = false;
                let names = (&self.history.contacts.ids, &self.history.products.ids);
                report.drop_row(DropReason::ReturnWithoutPurchase, || {
                    format!(
                        "contact {} product {}",
                        names.0.name(o.contact[i]),
                        names.1.name(o.product[i])
                    )
                });
            }
        }
        report.note("return lines kept (product bought earlier)", returns);
        o.retain_rows(&keep);
        report.rows_kept = o.len() as u64;
        report.observe_time_range(&o.at);
    }

    /// Resolves time zones, pads attributes and judges the report.
    pub(crate) fn finish(mut self) -> (History, QualityReport) {
        let contacts = &mut self.history.contacts;
        let mut counts = [0u64; 3];
        let mut zone_names: rustc_hash::FxHashMap<&str, Option<Tz>> =
            rustc_hash::FxHashMap::default();
        let mut unknown_zones = 0u64;
        for c in 0..contacts.len() {
            let raw = self.raw_zones.get(c).and_then(|z| z.as_deref());
            // Few distinct zone names: parse each once.
            let parsed = raw.map(|r| {
                *zone_names
                    .entry(r)
                    .or_insert_with(|| r.trim().parse::<Tz>().ok())
            });
            let (zone, source) = match parsed.flatten() {
                Some(tz) => (tz, ZoneSource::Contact),
                None => resolve_zone(None, contacts.country[c], self.default_zone),
            };
            if raw.is_some_and(|r| !r.trim().is_empty()) && source != ZoneSource::Contact {
                unknown_zones += 1;
            }
            contacts.timezone[c] = zone;
            contacts.timezone_source[c] = source;
            counts[source as usize] += 1;
        }
        let sources: BTreeMap<String, u64> = [
            ZoneSource::Contact,
            ZoneSource::Country,
            ZoneSource::Default,
        ]
        .into_iter()
        .map(|s| (s.name().to_string(), counts[s as usize]))
        .filter(|(_, n)| *n > 0)
        .collect();
        contacts.pad_attributes();
        if let Some(t) = self
            .report
            .tables
            .iter_mut()
            .find(|t| t.table == TableKind::Contacts)
        {
            t.note(
                "unknown IANA time zone (fell back to country or default)",
                unknown_zones,
            );
        }
        let listed_contacts = contacts.listed.iter().filter(|l| **l).count() as u64;
        let listed_products = self.history.products.listed.iter().filter(|l| **l).count() as u64;
        self.report.contacts = contacts.len() as u64;
        self.report.contacts_derived = self.report.contacts - listed_contacts;
        self.report.products = self.history.products.len() as u64;
        self.report.products_derived = self.report.products - listed_products;
        self.report.timezone_sources = sources;
        self.report.judge();
        super::canonical::number_by_id(&mut self.history);
        (self.history, self.report)
    }
}

/// Sorts order lines by time, contact and the rest of the line. Purchases sort before returns
/// of the same instant, so a same-second return finds its purchase.
pub(super) fn sort_orders(o: &mut Orders) {
    let sorted = time_order(&o.at, &o.contact, |i| {
        (
            o.quantity[i] < 0.0,
            o.order[i],
            o.product[i],
            o.quantity[i].to_bits(),
            o.unit_price[i].to_bits(),
        )
    });
    o.apply_time_order(sorted);
}

/// Sorts e-mail events by time, contact and the rest of the event.
pub(super) fn sort_email_events(e: &mut EmailEvents) {
    let sorted = time_order(&e.at, &e.contact, |i| {
        (e.kind[i], e.campaign[i], e.machine_open[i])
    });
    e.apply_time_order(sorted);
}

/// Sorts web events by time, contact and the rest of the event.
pub(super) fn sort_web_events(e: &mut WebEvents) {
    let sorted = time_order(&e.at, &e.contact, |i| (e.kind[i], e.product[i]));
    e.apply_time_order(sorted);
}

/// An event value mapped in `event_values` (keys lower-cased), if any mapping exists.
fn mapped<K: Copy>(values: &BTreeMap<String, K>, raw: &str) -> Option<K> {
    if values.is_empty() {
        return None;
    }
    values.get(&raw.trim().to_lowercase()).copied()
}

/// A contact's event, as the report's examples name it.
fn event_example(contact: &str, kind: &str, at: i64) -> String {
    format!("contact {contact} {kind} at {}", instant(at))
}

/// An instant (UTC seconds) as RFC 3339 for an example in the report.
fn instant(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Marks every row equal to the row before it (the columns are sorted) as a duplicate to drop;
/// `describe` names a dropped row for the report's examples.
fn keep_first_of_runs(
    len: usize,
    report: &mut TableReport,
    same: impl Fn(usize, usize) -> bool,
    describe: impl Fn(usize) -> String,
) -> Vec<bool> {
    let mut keep = vec![true; len];
    for (i, kept) in keep.iter_mut().enumerate().skip(1) {
        if same(i - 1, i) {
            *kept = false;
            report.drop_row(DropReason::Duplicate, || describe(i));
        }
    }
    keep
}

/// The instant of a row, or `None` after counting why it is missing or unusable (after
/// `latest`).
fn checked_time(
    times: Option<&TimeColumn>,
    row: usize,
    latest: i64,
    report: &mut TableReport,
) -> Option<i64> {
    let Some(times) = times else {
        report.drop_row(DropReason::MissingTimestamp, String::new);
        return None;
    };
    match times.status[row] {
        TimeStatus::Ok if times.seconds[row] > latest => {
            report.drop_row(DropReason::FutureTimestamp, || instant(times.seconds[row]));
            None
        }
        TimeStatus::Ok => Some(times.seconds[row]),
        TimeStatus::Null => {
            report.drop_row(DropReason::MissingTimestamp, String::new);
            None
        }
        TimeStatus::Unparsable => {
            report.drop_row(DropReason::UnparsableTimestamp, || {
                times.bad_examples.first().cloned().unwrap_or_default()
            });
            None
        }
    }
}

fn time_at(values: &Values, row: usize) -> Option<i64> {
    values
        .times()
        .filter(|t| t.status[row] == TimeStatus::Ok)
        .map(|t| t.seconds[row])
}

fn text(values: &Values, row: usize) -> Option<Box<str>> {
    values
        .str(row)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Into::into)
}

/// Attribute values of a batch, typed once.
enum AttributeValues {
    Text(arrow::array::StringArray),
    Number(arrow::array::Float64Array),
    Flag(arrow::array::BooleanArray),
    Missing,
}

fn attribute_values(ty: AttributeType, array: &dyn Array) -> AttributeValues {
    let cast = |to: &DataType| arrow::compute::cast(array, to).ok();
    match ty {
        AttributeType::Text => cast(&DataType::Utf8).map_or(AttributeValues::Missing, |a| {
            AttributeValues::Text(a.as_string::<i32>().clone())
        }),
        AttributeType::Number => cast(&DataType::Float64).map_or(AttributeValues::Missing, |a| {
            AttributeValues::Number(a.as_primitive::<Float64Type>().clone())
        }),
        AttributeType::Flag => cast(&DataType::Boolean).map_or(AttributeValues::Missing, |a| {
            AttributeValues::Flag(a.as_boolean().clone())
        }),
    }
}

fn set_attribute(column: &mut AttributeColumn, c: usize, values: &AttributeValues, row: usize) {
    match (column, values) {
        (AttributeColumn::Text(v), AttributeValues::Text(a)) => {
            v.resize(v.len().max(c + 1), None);
            v[c] = a.is_valid(row).then(|| a.value(row).into());
        }
        (AttributeColumn::Number(v), AttributeValues::Number(a)) => {
            v.resize(v.len().max(c + 1), None);
            v[c] = a
                .is_valid(row)
                .then(|| a.value(row))
                .filter(|x| x.is_finite());
        }
        (AttributeColumn::Flag(v), AttributeValues::Flag(a)) => {
            v.resize(v.len().max(c + 1), None);
            v[c] = a.is_valid(row).then(|| a.value(row));
        }
        _ => {}
    }
}
