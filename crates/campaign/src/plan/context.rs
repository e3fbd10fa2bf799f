//! The pieces of a message's template context that are built per contact: its recommended
//! products, its category shares and its extra attributes.

use std::collections::BTreeMap;

use augur_data::{AttributeColumn, Contacts, NONE, Products};
use augur_model::Snapshot;

use crate::plan::TriggerProduct;
use crate::render::{CategoryShare, ProductView, TriggerProductView};

/// Recommendations (the model's product index, score) as templates see them; products the
/// exports no longer hold are left out.
pub(super) fn product_views<'a>(
    recommendations: &[(u32, f64)],
    product_of: &[Option<u32>],
    products: &'a Products,
) -> Vec<ProductView<'a>> {
    recommendations
        .iter()
        .filter_map(|&(p, score)| {
            let q = product_of.get(p as usize).copied().flatten()?;
            Some(product_view(products, q, score))
        })
        .collect()
}

/// Product `q` of the exports as templates see it.
fn product_view(products: &Products, q: u32, score: f64) -> ProductView<'_> {
    let i = q as usize;
    ProductView {
        id: products.ids.name(q),
        name: products.name[i].as_deref().unwrap_or(products.ids.name(q)),
        price: products.price[i],
        url: products.url[i].as_deref(),
        image_url: products.image_url[i].as_deref(),
        category: (products.category[i] != NONE)
            .then(|| products.categories.name(products.category[i])),
        score,
    }
}

/// The product that started a series, if the exports hold it.
pub(super) fn trigger_product_view<'a>(
    trigger: &TriggerProduct,
    products: &'a Products,
) -> Option<TriggerProductView<'a>> {
    let q = products.ids.get(&trigger.product_id)?;
    Some(TriggerProductView {
        product: product_view(products, q, 0.0),
        previous_price: trigger.previous_price,
    })
}

/// The contact's five strongest categories with their shares of its interest.
pub(super) fn category_shares(snapshot: &Snapshot, c: usize) -> Vec<CategoryShare<'_>> {
    snapshot
        .category_affinity(c)
        .into_iter()
        .take(5)
        .filter_map(|(k, share)| {
            Some(CategoryShare {
                name: snapshot.products.categories.get(k as usize)?,
                share,
            })
        })
        .collect()
}

/// The extra columns of the contacts export for contact `d` of the exports (none for a contact
/// the exports do not hold).
pub(super) fn attributes(
    contacts: &Contacts,
    d: Option<usize>,
) -> BTreeMap<&str, minijinja::Value> {
    let Some(d) = d else {
        return BTreeMap::new();
    };
    contacts
        .attributes
        .iter()
        .map(|(name, column)| {
            let v = match column {
                AttributeColumn::Text(v) => minijinja::Value::from(v[d].as_deref()),
                AttributeColumn::Number(v) => minijinja::Value::from(v[d]),
                AttributeColumn::Flag(v) => minijinja::Value::from(v[d]),
            };
            (name.as_str(), v)
        })
        .collect()
}
