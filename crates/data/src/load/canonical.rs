//! Dense ids numbered in the order of the external ids, not in the order rows arrived in.
//!
//! Ids are interned as rows arrive, so the same export written in another row order (sorted by
//! contact, shuffled by a distributed writer) used to number contacts and products differently.
//! Everything downstream that splits, samples or breaks ties by dense id — the ranker's fitting
//! and comparison halves, the evaluation sample, the send-time clusters' seeds, the order of
//! equally popular products — then gave other recommendations and send times for the same
//! history. Renumbering once, after the last table, makes the model a function of the history
//! alone. (Contacts that only a posted contact change brings are added after it, in the order
//! the changes were posted, which the event store keeps.)

use rayon::prelude::*;

use super::assemble::{sort_email_events, sort_orders, sort_web_events};
use crate::history::{AttributeColumn, History};
use crate::ids::{IdIndex, NONE};

/// Renumbers contacts, products, categories, orders and campaigns so that dense ids follow the
/// byte order of the external ids, moves every per-contact and per-product column with them,
/// and sorts the event tables again (ties at one instant were broken by the old numbers).
pub(super) fn number_by_id(history: &mut History) {
    let contacts = Renumbering::of(&history.contacts.ids);
    let products = Renumbering::of(&history.products.ids);
    let categories = Renumbering::of(&history.products.categories);
    let orders = Renumbering::of(&history.orders.order_ids);
    let campaigns = Renumbering::of(&history.campaigns);

    let c = &mut history.contacts;
    c.ids = contacts.index(&c.ids);
    contacts.permute(&mut c.listed);
    contacts.permute(&mut c.email);
    contacts.permute(&mut c.first_name);
    contacts.permute(&mut c.country);
    contacts.permute(&mut c.timezone);
    contacts.permute(&mut c.timezone_source);
    contacts.permute(&mut c.created_at);
    contacts.permute(&mut c.email_consent);
    for column in c.attributes.values_mut() {
        match column {
            AttributeColumn::Text(v) => contacts.permute(v),
            AttributeColumn::Number(v) => contacts.permute(v),
            AttributeColumn::Flag(v) => contacts.permute(v),
        }
    }

    let p = &mut history.products;
    p.ids = products.index(&p.ids);
    products.permute(&mut p.listed);
    products.permute(&mut p.name);
    products.permute(&mut p.category);
    products.permute(&mut p.price);
    products.permute(&mut p.url);
    products.permute(&mut p.image_url);
    products.permute(&mut p.in_stock);
    p.categories = categories.index(&p.categories);
    categories.remap(&mut p.category);

    let o = &mut history.orders;
    o.order_ids = orders.index(&o.order_ids);
    orders.remap(&mut o.order);
    contacts.remap(&mut o.contact);
    products.remap(&mut o.product);
    sort_orders(o);

    history.campaigns = campaigns.index(&history.campaigns);
    let e = &mut history.email_events;
    contacts.remap(&mut e.contact);
    campaigns.remap(&mut e.campaign);
    sort_email_events(e);

    let w = &mut history.web_events;
    contacts.remap(&mut w.contact);
    products.remap(&mut w.product);
    sort_web_events(w);
}

/// One id space renumbered: `old[new]` is the old number of each new one, `new[old]` the reverse.
struct Renumbering {
    old: Vec<u32>,
    new: Vec<u32>,
}

impl Renumbering {
    /// The numbering of `ids` by their external ids' byte order (ids are distinct, so the order
    /// is total).
    fn of(ids: &IdIndex) -> Self {
        let mut old: Vec<u32> = (0..ids.len() as u32).collect();
        old.par_sort_unstable_by(|&a, &b| ids.name(a).cmp(ids.name(b)));
        let mut new = vec![0; old.len()];
        for (n, &o) in old.iter().enumerate() {
            new[o as usize] = n as u32;
        }
        Self { old, new }
    }

    /// The index with its ids in the new order.
    fn index(&self, ids: &IdIndex) -> IdIndex {
        let mut index = IdIndex::with_capacity(self.old.len());
        for &o in &self.old {
            index.intern(ids.name(o));
        }
        index
    }

    /// Moves a column indexed by this id to the new numbering.
    fn permute<T: Clone + Send + Sync>(&self, column: &mut Vec<T>) {
        debug_assert_eq!(column.len(), self.old.len(), "a column of another length");
        if column.len() != self.old.len() {
            return;
        }
        *column = self
            .old
            .par_iter()
            .map(|&o| column[o as usize].clone())
            .collect();
    }

    /// Replaces old numbers by new ones in a column that refers to this id ([`NONE`] stays).
    fn remap(&self, column: &mut [u32]) {
        column.par_iter_mut().for_each(|v| {
            if let Some(&n) = self.new.get(*v as usize) {
                *v = n;
            } else {
                debug_assert_eq!(*v, NONE);
            }
        });
    }
}
