//! Triggers from catalog changes (`[trigger] product`): a product the contact viewed or carted
//! coming back in stock or dropping in price.
//!
//! Every tick compares the products export as the directory reads it now (`price`, `in_stock`)
//! with the catalog the previous product scan stored. The first scan is the baseline: nothing
//! "changed" before augur saw it. A product listed out of stock before and in stock now is back
//! in stock; one whose price fell by the flow's `min_drop` or more dropped in price. Products
//! new to the catalog, and products that went out of stock or up in price, fire nothing.
//!
//! For each change, the contacts whose last view or cart of the product (web-events export and
//! live events) lies within the flow's `viewed_within` and who did not order the product after
//! it enter: one trigger per flow, contact, product and change. The new catalog and the
//! triggers are stored in one transaction (see [`FlowState::record_catalog`]): a crash repeats
//! the scan whole or not at all.

use std::collections::{HashMap, HashSet};

use augur_data::{Products, WebEventKind};
use augur_events::Body;

use crate::error::Result;
use crate::runner::{Runner, TickReport};
use crate::spec::{Flow, ProductChange, ProductTrigger, Trigger};
use crate::state::{FlowState, Listed, Triggered};

/// A product that changed since the last scan.
#[derive(Debug, Clone, PartialEq)]
struct Change<'a> {
    product: &'a str,
    back_in_stock: bool,
    /// The price before and the drop as a share of it, when the price fell.
    drop: Option<(f64, f64)>,
}

impl Change<'_> {
    /// Whether the change fires `trigger`, and the price before it for a price drop.
    fn fires(&self, trigger: &ProductTrigger) -> Option<Option<f64>> {
        match trigger.change {
            ProductChange::BackInStock => self.back_in_stock.then_some(None),
            ProductChange::PriceDrop => self
                .drop
                // A drop of exactly `min_drop` fires, whatever the rounding of the prices.
                .filter(|(_, share)| *share >= trigger.min_drop - 1e-9)
                .map(|(was, _)| Some(was)),
        }
    }
}

/// Runs the product scan when a flow has a product trigger and the catalog changed.
pub(crate) fn scan(
    runner: &Runner<'_>,
    state: &mut FlowState,
    at: i64,
    report: &mut TickReport,
) -> Result<()> {
    let flows: Vec<(&Flow, ProductTrigger)> = runner
        .flows
        .iter()
        .filter_map(|f| match f.trigger {
            Trigger::Product(p) => Some((f, p)),
            _ => None,
        })
        .collect();
    if flows.is_empty() {
        return Ok(());
    }
    let now = listed(&runner.directory.history.products);
    let before = state.catalog()?;
    if before.is_empty() {
        if !now.is_empty() {
            state.record_catalog(&now, &[])?;
        }
        return Ok(());
    }
    if now.len() == before.len() && now.iter().all(|(id, l)| before.get(id) == Some(l)) {
        return Ok(());
    }
    let changes = changes(&before, &now);
    let firing: Vec<(&Flow, &ProductTrigger, &Change<'_>, Option<f64>)> = flows
        .iter()
        .flat_map(|(flow, trigger)| {
            changes
                .iter()
                .filter_map(move |c| Some((*flow, trigger, c, c.fires(trigger)?)))
        })
        .collect();
    let mut triggered = Vec::new();
    if let Some(longest) = firing.iter().map(|(_, t, _, _)| t.viewed_within).max() {
        let products: HashSet<&str> = firing.iter().map(|(_, _, c, _)| c.product).collect();
        let interest = interest(runner, &products, at.saturating_sub(longest), at)?;
        for (flow, trigger, change, was) in firing {
            let Some(contacts) = interest.get(change.product) else {
                continue;
            };
            let since = at.saturating_sub(trigger.viewed_within);
            let mut who: Vec<&String> = contacts
                .iter()
                .filter(|(_, seen)| **seen >= since)
                .map(|(c, _)| c)
                .collect();
            who.sort();
            triggered.extend(who.into_iter().map(|contact| Triggered {
                flow_id: flow.id().to_string(),
                contact_id: contact.clone(),
                trigger_id: format!("{}:{}:{at}", trigger.change.name(), change.product),
                triggered_at: at,
                due_at: at,
                product_id: Some(change.product.to_string()),
                product_was: was,
            }));
        }
    }
    report.triggered += state.record_catalog(&now, &triggered)?;
    Ok(())
}

/// The products the exports list (rows of the products table, not ids only seen in events),
/// with their price and availability.
fn listed(products: &Products) -> Vec<(String, Listed)> {
    (0..products.len())
        .filter(|&p| products.listed[p])
        .map(|p| {
            let listed = Listed {
                price: products.price[p].filter(|v| v.is_finite()),
                in_stock: products.in_stock[p],
            };
            (products.ids.name(p as u32).to_string(), listed)
        })
        .collect()
}

/// The products of `now` that came back in stock or fell in price against `before`.
fn changes<'a>(before: &HashMap<String, Listed>, now: &'a [(String, Listed)]) -> Vec<Change<'a>> {
    now.iter()
        .filter_map(|(id, new)| {
            let old = before.get(id)?;
            let drop = match (old.price, new.price) {
                (Some(was), Some(is)) if was > 0.0 && is < was => Some((was, (was - is) / was)),
                _ => None,
            };
            let change = Change {
                product: id,
                back_in_stock: !old.in_stock && new.in_stock,
                drop,
            };
            (change.back_in_stock || change.drop.is_some()).then_some(change)
        })
        .collect()
}

/// Per product of `products`: the contacts whose last view or cart of it lies in
/// `[from, to]` and who did not order it after that, with the instant of that view or cart.
/// Read from the web-events and orders exports and from the live events.
fn interest(
    runner: &Runner<'_>,
    products: &HashSet<&str>,
    from: i64,
    to: i64,
) -> Result<HashMap<String, HashMap<String, i64>>> {
    // (product, contact) → last view or cart, last order.
    let mut seen: HashMap<(String, String), (i64, i64)> = HashMap::new();
    let mut note = |product: &str, contact: &str, at: i64, ordered: bool| {
        if at < from || at > to || !products.contains(product) {
            return;
        }
        let slot = seen
            .entry((product.to_string(), contact.to_string()))
            .or_insert((i64::MIN, i64::MIN));
        if ordered {
            slot.1 = slot.1.max(at);
        } else {
            slot.0 = slot.0.max(at);
        }
    };
    // Read only when the catalog changed: an export refresh, about once a day.
    let mut narrow = runner.settings.data.clone();
    narrow.tables.email_events.path = None;
    let (history, _) = augur_data::load_email_kinds(&narrow, &[])?;
    let name = |p: u32| history.products.ids.name(p);
    let contact = |c: u32| history.contacts.ids.name(c);
    let web = &history.web_events;
    for i in 0..web.len() {
        if is_interest(web.kind[i]) && web.product[i] != augur_data::NONE {
            note(
                name(web.product[i]),
                contact(web.contact[i]),
                web.at[i],
                false,
            );
        }
    }
    let orders = &history.orders;
    for i in 0..orders.len() {
        note(
            name(orders.product[i]),
            contact(orders.contact[i]),
            orders.at[i],
            true,
        );
    }
    for stored in runner.store.between(from, to.saturating_add(1))? {
        let e = &stored.event;
        match &e.body {
            Body::Web {
                event,
                product_id: Some(p),
            } if is_interest(*event) => note(p, &e.contact_id, e.occurred_at, false),
            Body::Order { product_id, .. } => note(product_id, &e.contact_id, e.occurred_at, true),
            _ => {}
        }
    }
    let mut out: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for ((product, contact), (viewed, ordered)) in seen {
        if viewed > ordered {
            out.entry(product).or_default().insert(contact, viewed);
        }
    }
    Ok(out)
}

/// A view or a cart: the signs of interest a product trigger follows.
fn is_interest(kind: WebEventKind) -> bool {
    matches!(kind, WebEventKind::View | WebEventKind::AddToCart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(price: Option<f64>, in_stock: bool) -> Listed {
        Listed { price, in_stock }
    }

    #[test]
    fn only_a_return_to_stock_and_a_lower_price_are_changes() {
        let before: HashMap<String, Listed> = [
            ("back".to_string(), listed(Some(10.0), false)),
            ("cheaper".to_string(), listed(Some(10.0), true)),
            ("dearer".to_string(), listed(Some(10.0), true)),
            ("gone".to_string(), listed(Some(10.0), true)),
            ("unpriced".to_string(), listed(None, true)),
        ]
        .into();
        let now = vec![
            ("back".to_string(), listed(Some(10.0), true)),
            ("cheaper".to_string(), listed(Some(8.0), true)),
            ("dearer".to_string(), listed(Some(12.0), true)),
            ("gone".to_string(), listed(Some(10.0), false)),
            ("unpriced".to_string(), listed(Some(5.0), true)),
            ("new".to_string(), listed(Some(1.0), true)),
        ];
        let found = changes(&before, &now);
        let names: Vec<&str> = found.iter().map(|c| c.product).collect();
        assert_eq!(names, ["back", "cheaper"]);
        let drop = ProductTrigger {
            change: ProductChange::PriceDrop,
            viewed_within: 86_400,
            min_drop: 0.2,
        };
        assert_eq!(
            found[1].fires(&drop),
            Some(Some(10.0)),
            "20 % off fires 0.2"
        );
        let steeper = ProductTrigger {
            min_drop: 0.25,
            ..drop
        };
        assert_eq!(found[1].fires(&steeper), None);
        assert_eq!(found[0].fires(&drop), None);
        let restock = ProductTrigger {
            change: ProductChange::BackInStock,
            ..drop
        };
        assert_eq!(found[0].fires(&restock), Some(None));
    }

    #[test]
    fn a_drop_of_exactly_the_minimum_fires_despite_rounding() {
        // (3.0 − 2.7) / 3.0 is 0.0999… in floating point.
        let before: HashMap<String, Listed> = [("p".to_string(), listed(Some(3.0), true))].into();
        let now = vec![("p".to_string(), listed(Some(2.7), true))];
        let found = changes(&before, &now);
        let tenth = ProductTrigger {
            change: ProductChange::PriceDrop,
            viewed_within: 86_400,
            min_drop: 0.1,
        };
        assert_eq!(found[0].fires(&tenth), Some(Some(3.0)));
    }
}
