//! The loaded history: one struct of columns per table, every id a dense `u32`, every instant UTC
//! seconds, every event table sorted by time so that "as of T" is a binary search.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::contract::{EmailEventKind, WebEventKind};
use crate::ids::IdIndex;
use crate::zones::ZoneSource;

/// Everything augur knows about a shop, as columns.
#[derive(Debug, Default)]
pub struct History {
    /// Contacts (from the contacts table, then derived from ids seen in events).
    pub contacts: Contacts,
    /// Products (from the products table, then derived from ids seen in orders and web events).
    pub products: Products,
    /// Order lines, sorted by time.
    pub orders: Orders,
    /// E-mail events, sorted by time.
    pub email_events: EmailEvents,
    /// Web events, sorted by time.
    pub web_events: WebEvents,
    /// Campaign ids seen in e-mail events.
    pub campaigns: IdIndex,
}

impl History {
    /// First and last instant of any event (orders, e-mail, web), if there are events.
    ///
    /// `sent` e-mail events are the sender's own records, not anything a contact did: they are
    /// left out, so that the messages `augur campaign send` appends (stamped with the time of
    /// sending) do not move the default as-of time of the next training to now.
    pub fn event_span(&self) -> Option<(i64, i64)> {
        let email = &self.email_events;
        let by_contact = |i: &usize| email.kind[*i] != EmailEventKind::Sent;
        let email_first = (0..email.len()).find(by_contact).map(|i| email.at[i]);
        let email_last = (0..email.len()).rev().find(by_contact).map(|i| email.at[i]);
        let firsts = [
            self.orders.at.first().copied(),
            email_first,
            self.web_events.at.first().copied(),
        ];
        let lasts = [
            self.orders.at.last().copied(),
            email_last,
            self.web_events.at.last().copied(),
        ];
        let first = firsts.into_iter().flatten().min()?;
        let last = lasts.into_iter().flatten().max()?;
        Some((first, last))
    }
}

/// A typed column of contact attributes (columns of the contacts table outside the contract).
#[derive(Debug, Clone)]
pub enum AttributeColumn {
    /// Text values.
    Text(Vec<Option<Box<str>>>),
    /// Numeric values.
    Number(Vec<Option<f64>>),
    /// Boolean values.
    Flag(Vec<Option<bool>>),
}

impl AttributeColumn {
    fn grow(&mut self, len: usize) {
        match self {
            Self::Text(v) => v.resize(len, None),
            Self::Number(v) => v.resize(len, None),
            Self::Flag(v) => v.resize(len, None),
        }
    }
}

/// Contacts, indexed by dense contact id.
#[derive(Debug, Default)]
pub struct Contacts {
    /// External ids.
    pub ids: IdIndex,
    /// Whether the row came from the contacts table (else derived from events).
    pub listed: Vec<bool>,
    /// E-mail address.
    pub email: Vec<Option<Box<str>>>,
    /// First name.
    pub first_name: Vec<Option<Box<str>>>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Vec<Option<&'static str>>,
    /// Resolved time zone.
    pub timezone: Vec<Tz>,
    /// Which rule gave the zone.
    pub timezone_source: Vec<ZoneSource>,
    /// Sign-up time, UTC seconds.
    pub created_at: Vec<Option<i64>>,
    /// Marketing consent (`None` = unknown).
    pub email_consent: Vec<Option<bool>>,
    /// Other columns, by name.
    pub attributes: BTreeMap<String, AttributeColumn>,
}

impl Contacts {
    /// Number of contacts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds (or finds) a contact, growing every column; `listed` marks contacts-table rows.
    pub(crate) fn intern(&mut self, id: &str, default_zone: Tz) -> u32 {
        let i = self.ids.intern(id);
        let len = self.ids.len();
        if self.listed.len() < len {
            self.listed.push(false);
            self.email.push(None);
            self.first_name.push(None);
            self.country.push(None);
            self.timezone.push(default_zone);
            self.timezone_source.push(ZoneSource::Default);
            self.created_at.push(None);
            self.email_consent.push(None);
        }
        i
    }

    /// Creates or changes a contact from a live change (a contact event): the fields given
    /// replace the stored ones, absent ones are kept, and the zone is resolved again (its own,
    /// else its country's, else `default_zone`). Returns its dense index. Attribute columns
    /// grow with it.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert(
        &mut self,
        id: &str,
        email: Option<&str>,
        first_name: Option<&str>,
        country: Option<&str>,
        timezone: Option<&str>,
        created_at: Option<i64>,
        email_consent: Option<bool>,
        default_zone: Tz,
    ) -> u32 {
        let c = self.intern(id, default_zone);
        let i = c as usize;
        self.listed[i] = true;
        if let Some(e) = email {
            self.email[i] = Some(e.into());
        }
        if let Some(f) = first_name {
            self.first_name[i] = Some(f.into());
        }
        if let Some(code) = country.and_then(crate::zones::normalize_country) {
            self.country[i] = Some(code);
        }
        if created_at.is_some() {
            self.created_at[i] = created_at;
        }
        if email_consent.is_some() {
            self.email_consent[i] = email_consent;
        }
        let keep = (self.timezone_source[i] == ZoneSource::Contact).then(|| self.timezone[i]);
        let (zone, source) = match (timezone, keep) {
            (None, Some(zone)) => (zone, ZoneSource::Contact),
            _ => crate::zones::resolve_zone(timezone, self.country[i], default_zone),
        };
        self.timezone[i] = zone;
        self.timezone_source[i] = source;
        self.pad_attributes();
        c
    }

    /// Pads attribute columns to the number of contacts.
    pub(crate) fn pad_attributes(&mut self) {
        let len = self.len();
        for column in self.attributes.values_mut() {
            column.grow(len);
        }
    }
}

/// Products, indexed by dense product id.
#[derive(Debug, Default)]
pub struct Products {
    /// External ids.
    pub ids: IdIndex,
    /// Whether the row came from the products table (else derived).
    pub listed: Vec<bool>,
    /// Display name.
    pub name: Vec<Option<Box<str>>>,
    /// Dense category index into `categories`.
    pub category: Vec<u32>,
    /// Category names (`category` indexes this).
    pub categories: IdIndex,
    /// Price (from the table, else the latest positive unit price seen in orders).
    pub price: Vec<Option<f64>>,
    /// Product page.
    pub url: Vec<Option<Box<str>>>,
    /// Image.
    pub image_url: Vec<Option<Box<str>>>,
    /// Availability (unknown counts as in stock).
    pub in_stock: Vec<bool>,
}

impl Products {
    /// Number of products.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds (or finds) a product, growing every column.
    pub(crate) fn intern(&mut self, id: &str) -> u32 {
        let i = self.ids.intern(id);
        if self.listed.len() < self.ids.len() {
            self.listed.push(false);
            self.name.push(None);
            self.category.push(crate::ids::NONE);
            self.price.push(None);
            self.url.push(None);
            self.image_url.push(None);
            self.in_stock.push(true);
        }
        i
    }
}

/// Order lines, sorted by time.
#[derive(Debug, Default)]
pub struct Orders {
    /// External order ids (`order` indexes this).
    pub order_ids: IdIndex,
    /// Dense order id.
    pub order: Vec<u32>,
    /// Dense contact id.
    pub contact: Vec<u32>,
    /// Dense product id.
    pub product: Vec<u32>,
    /// UTC seconds.
    pub at: Vec<i64>,
    /// Quantity; negative for returns.
    pub quantity: Vec<f64>,
    /// Price per unit (0 when unknown).
    pub unit_price: Vec<f64>,
}

impl Orders {
    /// Number of lines.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// E-mail events, sorted by time.
#[derive(Debug, Default)]
pub struct EmailEvents {
    /// Dense contact id.
    pub contact: Vec<u32>,
    /// Dense campaign id, or [`crate::ids::NONE`].
    pub campaign: Vec<u32>,
    /// Event kind.
    pub kind: Vec<EmailEventKind>,
    /// UTC seconds.
    pub at: Vec<i64>,
    /// Flagged as a machine (privacy-proxy) open by the e-mail platform.
    pub machine_open: Vec<bool>,
}

impl EmailEvents {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// Web events, sorted by time.
#[derive(Debug, Default)]
pub struct WebEvents {
    /// Dense contact id.
    pub contact: Vec<u32>,
    /// Event kind.
    pub kind: Vec<WebEventKind>,
    /// Dense product id, or [`crate::ids::NONE`].
    pub product: Vec<u32>,
    /// UTC seconds.
    pub at: Vec<i64>,
}

impl WebEvents {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// The `(time, contact, row)` keys of a table's rows in the order that sorts it by time and
/// contact, remaining ties broken by `tie_key` (then by row index), so the result does not
/// depend on the order rows arrived in. [`Columns::apply_time_order`] puts the rows in it.
///
/// Sorting `(time, contact, row)` triples keeps comparisons on contiguous memory; only the rare
/// runs of equal time and contact look at the other columns.
pub(crate) fn time_order<K: Ord>(
    at: &[i64],
    contact: &[u32],
    tie_key: impl Fn(usize) -> K + Sync,
) -> Vec<(i64, u32, u32)> {
    use rayon::prelude::*;
    let rows = u32::try_from(at.len()).unwrap_or(u32::MAX);
    let mut keyed: Vec<(i64, u32, u32)> = (0..rows)
        .into_par_iter()
        .map(|i| (at[i as usize], contact[i as usize], i))
        .collect();
    if !keyed.windows(2).all(|w| w[0] <= w[1]) {
        keyed.par_sort_unstable();
    }
    let mut start = 0;
    while start < keyed.len() {
        let (t, c, _) = keyed[start];
        let mut end = start + 1;
        while end < keyed.len() && keyed[end].0 == t && keyed[end].1 == c {
            end += 1;
        }
        if end - start > 1 {
            keyed[start..end].sort_unstable_by_key(|&(_, _, i)| (tie_key(i as usize), i));
        }
        start = end;
    }
    keyed
}

/// An operation applied alike to every column of an event table: reserving, reordering or
/// dropping rows.
pub(crate) trait ColumnOp {
    /// Applies the operation to one column.
    fn apply<T: Copy + Send + Sync>(&mut self, column: &mut Vec<T>);
}

/// An event table of equally long columns; `time_and_contact` and `each_other_column` are
/// together the one list of its columns, so reserving, reordering and filtering cannot forget
/// one.
pub(crate) trait Columns {
    /// The time and contact columns.
    fn time_and_contact(&mut self) -> (&mut Vec<i64>, &mut Vec<u32>);

    /// Calls `op` on every column but time and contact.
    fn each_other_column(&mut self, op: &mut impl ColumnOp);

    /// Calls `op` on every column.
    fn each_column(&mut self, op: &mut impl ColumnOp) {
        let (at, contact) = self.time_and_contact();
        op.apply(at);
        op.apply(contact);
        self.each_other_column(op);
    }

    /// Makes room for `rows` more rows in every column at once. Grown by doubling instead, a
    /// column is copied at every doubling (in all, about as many bytes as it ends with), each
    /// time into fresh memory that the kernel zeroes first. Only a hint: a count the memory
    /// cannot hold (a corrupt or hostile file's metadata) reserves nothing and the columns
    /// grow as rows arrive.
    fn reserve_rows(&mut self, rows: usize) {
        struct Reserve(usize);
        impl ColumnOp for Reserve {
            fn apply<T: Copy + Send + Sync>(&mut self, column: &mut Vec<T>) {
                // An allocation failure here is not an error: nothing was read yet.
                let _ = column.try_reserve(self.0);
            }
        }
        self.each_column(&mut Reserve(rows));
    }

    /// Puts the rows in the order of `sorted`, the keys [`time_order`] returns: times and
    /// contacts are written over from the keys in place, the other columns gathered by row (a
    /// gather fills fresh memory, and times and contacts are the widest columns). Rows already
    /// in order, as a table sorted again after renumbering mostly is, stay where they are.
    fn apply_time_order(&mut self, sorted: Vec<(i64, u32, u32)>) {
        use rayon::prelude::*;
        if sorted
            .par_iter()
            .enumerate()
            .all(|(n, key)| key.2 as usize == n)
        {
            return;
        }
        struct Permute<'a>(&'a [u32]);
        impl ColumnOp for Permute<'_> {
            fn apply<T: Copy + Send + Sync>(&mut self, column: &mut Vec<T>) {
                *column = self.0.par_iter().map(|&i| column[i as usize]).collect();
            }
        }
        let (at, contact) = self.time_and_contact();
        at.par_iter_mut()
            .zip(contact.par_iter_mut())
            .zip(&sorted)
            .for_each(|((at, contact), key)| (*at, *contact) = (key.0, key.1));
        let order: Vec<u32> = sorted.into_par_iter().map(|(_, _, i)| i).collect();
        self.each_other_column(&mut Permute(&order));
    }

    /// Keeps the rows whose `keep` is true (rows past its end are kept).
    fn retain_rows(&mut self, keep: &[bool]) {
        struct Retain<'a>(&'a [bool]);
        impl ColumnOp for Retain<'_> {
            fn apply<T: Copy + Send + Sync>(&mut self, column: &mut Vec<T>) {
                let mut mask = self.0.iter();
                column.retain(|_| mask.next().copied().unwrap_or(true));
            }
        }
        self.each_column(&mut Retain(keep));
    }
}

impl Columns for Orders {
    fn time_and_contact(&mut self) -> (&mut Vec<i64>, &mut Vec<u32>) {
        (&mut self.at, &mut self.contact)
    }

    fn each_other_column(&mut self, op: &mut impl ColumnOp) {
        op.apply(&mut self.order);
        op.apply(&mut self.product);
        op.apply(&mut self.quantity);
        op.apply(&mut self.unit_price);
    }
}

impl Columns for EmailEvents {
    fn time_and_contact(&mut self) -> (&mut Vec<i64>, &mut Vec<u32>) {
        (&mut self.at, &mut self.contact)
    }

    fn each_other_column(&mut self, op: &mut impl ColumnOp) {
        op.apply(&mut self.campaign);
        op.apply(&mut self.kind);
        op.apply(&mut self.machine_open);
    }
}

impl Columns for WebEvents {
    fn time_and_contact(&mut self) -> (&mut Vec<i64>, &mut Vec<u32>) {
        (&mut self.at, &mut self.contact)
    }

    fn each_other_column(&mut self, op: &mut impl ColumnOp) {
        op.apply(&mut self.kind);
        op.apply(&mut self.product);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders(rows: &[(i64, u32, u32, f64)]) -> Orders {
        let mut o = Orders::default();
        for (i, &(at, contact, product, quantity)) in rows.iter().enumerate() {
            o.order.push(i as u32);
            o.contact.push(contact);
            o.product.push(product);
            o.at.push(at);
            o.quantity.push(quantity);
            o.unit_price.push(f64::from(product));
        }
        o
    }

    fn sort(o: &mut Orders) {
        let sorted = time_order(&o.at, &o.contact, |i| (o.product[i], o.order[i]));
        o.apply_time_order(sorted);
    }

    #[test]
    fn rows_sort_by_time_then_contact_then_the_tie_key_with_every_column_moved_alike() {
        let mut o = orders(&[
            (20, 1, 9, 1.0),
            (10, 2, 5, 2.0),
            (10, 1, 7, 3.0),
            (10, 1, 3, 4.0),
        ]);
        o.reserve_rows(1000);
        sort(&mut o);
        assert_eq!(o.at, vec![10, 10, 10, 20]);
        assert_eq!(o.contact, vec![1, 1, 2, 1]);
        assert_eq!(
            o.product,
            vec![3, 7, 5, 9],
            "equal time and contact: by the tie key"
        );
        assert_eq!(o.order, vec![3, 2, 1, 0]);
        assert_eq!(o.quantity, vec![4.0, 3.0, 2.0, 1.0]);
        assert_eq!(o.unit_price, vec![3.0, 7.0, 5.0, 9.0]);
        let before = (o.order.clone(), o.quantity.clone());
        sort(&mut o);
        assert_eq!(
            (o.order, o.quantity),
            before,
            "sorted rows stay where they are"
        );
    }

    #[test]
    fn a_row_count_no_memory_holds_reserves_nothing() {
        let mut o = orders(&[(1, 1, 1, 1.0)]);
        o.reserve_rows(usize::MAX / 2);
        o.at.push(2);
        assert_eq!(o.at, vec![1, 2]);
    }
}
