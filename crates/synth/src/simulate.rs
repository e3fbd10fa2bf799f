//! Living one contact's history: purchases, browsing and e-mail, driven by its hidden traits.

use augur_data::{DAY, HOUR, hour_of_week, naive_to_utc};
use chrono::{DateTime, NaiveTime};
use rand::Rng;
use rand_distr::{Distribution, Exp1, Poisson};

use crate::rows::{ChunkRows, push_time};
use crate::traits::{Traits, season};
use crate::world::{CATEGORIES, Picker, TIERS, World};

/// Hours after a send during which a contact may still open it; attention fades with a 10-hour scale.
const OPEN_WINDOW_HOURS: usize = 48;
const ATTENTION_HOURS: f64 = 10.0;

/// An instant at a local hour (fractional) on the local day of `t`.
fn at_local_hour(t: i64, zone: chrono_tz::Tz, hour: f64) -> i64 {
    let Some(dt) = DateTime::from_timestamp(t, 0) else {
        return t;
    };
    let date = dt.with_timezone(&zone).date_naive();
    let seconds = (hour.rem_euclid(24.0) * 3600.0) as u32;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0).unwrap_or_default();
    naive_to_utc(&date.and_time(time), zone)
}

/// A local hour of activity: the reading rhythm for part of it, evenings for the rest.
fn activity_hour(rng: &mut impl Rng, traits: &Traits, own_share: f64) -> f64 {
    if rng.random_bool(own_share) {
        let peak = f64::from(traits.peak_hour_of_day);
        peak + rng.random_range(-1.5..1.5)
    } else {
        19.5 + 2.5 * rng.sample::<f64, _>(rand_distr::StandardNormal)
    }
}

struct Purchase {
    at: i64,
    products: Vec<usize>,
}

/// Generates every row of one contact into `rows`.
pub(crate) fn simulate(
    rng: &mut impl Rng,
    index: u64,
    traits: &Traits,
    world: &World,
    end: i64,
    rows: &mut ChunkRows,
) {
    let id = format!("C{:07}", index + 1);
    write_contact(rng, &id, index, traits, rows);
    let purchases = simulate_orders(rng, &id, traits, world, end, rows);
    simulate_web(rng, &id, traits, world, end, &purchases, rows);
    simulate_email(rng, &id, traits, world, end, rows);
    write_truth(&id, traits, end, rows);
}

fn write_contact(rng: &mut impl Rng, id: &str, index: u64, traits: &Traits, rows: &mut ChunkRows) {
    let c = &mut rows.contacts;
    c.contact_id.append_value(id);
    c.email.append_value(format!(
        "{}.{}@example.com",
        traits.first_name.unwrap_or("guest").to_lowercase(),
        index + 1
    ));
    c.first_name.append_option(traits.first_name);
    c.country.append_value(traits.country);
    // Some contacts carry no zone (the country decides) and a few an invalid one.
    if traits.hides_zone {
        c.timezone.append_null();
    } else if rng.random_bool(0.01) {
        c.timezone.append_value("Local/Unknown");
    } else {
        c.timezone.append_value(traits.zone.name());
    }
    push_time(&mut c.created_at, traits.created_at);
    c.email_consent.append_option(traits.consent);
    let tier = if traits.purchase_rate > 0.04 {
        "gold"
    } else if traits.purchase_rate > 0.015 {
        "silver"
    } else {
        "bronze"
    };
    c.loyalty_tier.append_value(tier);
    let birth_year = (!rng.random_bool(0.1)).then(|| rng.random_range(1950..2006));
    c.birth_year.append_option(birth_year);
    // The day of the year comes from the contact's index, not the random stream, so that the
    // rest of the history stays what it was before birthdays were written.
    let day_of_year = (index.wrapping_mul(2_654_435_761) % 365) as u32 + 1;
    c.birthday.append_option(
        birth_year
            .and_then(|y| chrono::NaiveDate::from_yo_opt(y, day_of_year))
            .map(|d| d.format("%Y-%m-%d").to_string()),
    );
}

fn pick_new_product(rng: &mut impl Rng, traits: &Traits, world: &World) -> usize {
    for _ in 0..8 {
        let category = traits.category_taste.pick(rng).unwrap_or(0);
        let tier = match rng.random::<f64>() {
            u if u < 0.6 => traits.tier,
            u if u < 0.85 => {
                (traits.tier + if rng.random_bool(0.5) { 1 } else { TIERS - 1 }) % TIERS
            }
            _ => rng.random_range(0..TIERS),
        };
        let picker: &Picker = &world.by_tier[category][tier];
        if let Some(p) = picker.pick(rng) {
            return p;
        }
    }
    rng.random_range(0..world.products.len())
}

fn simulate_orders(
    rng: &mut impl Rng,
    id: &str,
    traits: &Traits,
    world: &World,
    end: i64,
    rows: &mut ChunkRows,
) -> Vec<Purchase> {
    let mut purchases = Vec::new();
    if traits.purchase_rate <= 0.0 {
        return purchases;
    }
    let stop = traits.dropout_at.min(end);
    let mut times = Vec::new();
    // Many buyers order right after signing up.
    if rng.random_bool(0.55) {
        times.push(traits.created_at + rng.random_range(0..3 * DAY));
    }
    // Poisson process with seasonal thinning.
    let max_rate = traits.purchase_rate * 1.35 / DAY as f64;
    let mut t = traits.created_at as f64;
    loop {
        t += rng.sample::<f64, _>(Exp1) / max_rate;
        if t >= stop as f64 {
            break;
        }
        if rng.random::<f64>() < season(t as i64) / 1.35 {
            times.push(t as i64);
        }
    }
    times.retain(|t| *t < stop);
    times.sort_unstable();

    let mut owned: Vec<usize> = Vec::new();
    let lines = Poisson::new(0.7).ok();
    for (n, day) in times.into_iter().enumerate() {
        let at = at_local_hour(day, traits.zone, activity_hour(rng, traits, 0.5))
            + rng.random_range(0..60);
        if at >= end || at < traits.created_at {
            continue;
        }
        let count = 1 + lines.as_ref().map_or(0, |d| d.sample(rng) as usize).min(5);
        let mut basket: Vec<usize> = Vec::with_capacity(count);
        for _ in 0..count {
            let repeat = !owned.is_empty() && rng.random_bool(traits.repeat_propensity);
            let product = if repeat {
                let weighted = Picker::new(owned.iter().map(|&p| {
                    let refill = CATEGORIES[world.products[p].category].refill_days.is_some();
                    (p, if refill { 3.0 } else { 1.0 })
                }));
                weighted.pick(rng).unwrap_or(owned[0])
            } else {
                pick_new_product(rng, traits, world)
            };
            if !basket.contains(&product) {
                basket.push(product);
            }
        }
        let order_id = format!("O{}-{}", &id[1..], n + 1);
        for &p in &basket {
            let product = &world.products[p];
            let quantity = match rng.random::<f64>() {
                u if u < 0.75 => 1,
                u if u < 0.92 => 2,
                _ => rng.random_range(3..7),
            };
            let discount = match rng.random::<f64>() {
                u if u < 0.85 => 0.0,
                u if u < 0.95 => 0.1,
                _ => 0.2,
            };
            let unit_price = ((product.price * (1.0 - discount)) * 100.0).round() / 100.0;
            let o = &mut rows.orders;
            o.order_id.append_value(&order_id);
            o.contact_id.append_value(id);
            o.product_id.append_value(&product.id);
            push_time(&mut o.ordered_at, at);
            o.quantity.append_value(quantity);
            o.unit_price.append_value(unit_price);
            if !owned.contains(&p) {
                owned.push(p);
            }
            // A few lines come back.
            if rng.random_bool(0.03) {
                let back = at + rng.random_range(5 * DAY..25 * DAY);
                if back < end {
                    o.order_id.append_value(format!("R{}", &order_id[1..]));
                    o.contact_id.append_value(id);
                    o.product_id.append_value(&product.id);
                    push_time(&mut o.ordered_at, back);
                    o.quantity.append_value(-quantity);
                    o.unit_price.append_value(unit_price);
                }
            }
        }
        purchases.push(Purchase {
            at,
            products: basket,
        });
    }
    purchases
}

fn push_web(rows: &mut ChunkRows, id: &str, event: &str, product: Option<&str>, at: i64) {
    if at >= rows.end {
        return;
    }
    let w = &mut rows.web;
    w.contact_id.append_value(id);
    w.event.append_value(event);
    w.product_id.append_option(product);
    push_time(&mut w.occurred_at, at);
}

fn simulate_web(
    rng: &mut impl Rng,
    id: &str,
    traits: &Traits,
    world: &World,
    end: i64,
    purchases: &[Purchase],
    rows: &mut ChunkRows,
) {
    // Sessions that lead to a purchase: views, then the cart.
    for purchase in purchases {
        if !rng.random_bool(0.7) {
            continue;
        }
        let mut t = purchase.at - rng.random_range(4 * 60..40 * 60);
        for &p in &purchase.products {
            push_web(rows, id, "view", Some(&world.products[p].id), t);
            t += rng.random_range(20..180);
            push_web(rows, id, "add_to_cart", Some(&world.products[p].id), t);
            t += rng.random_range(10..60);
        }
    }
    // Browsing sessions, fading with engagement; some carts are abandoned.
    let rate = traits.browse_rate / DAY as f64;
    if rate <= 0.0 {
        return;
    }
    let mut t = traits.created_at as f64;
    loop {
        t += rng.sample::<f64, _>(Exp1) / rate;
        if t >= end as f64 {
            break;
        }
        if rng.random::<f64>() > traits.engagement(t as i64) {
            continue;
        }
        let mut at = at_local_hour(t as i64, traits.zone, activity_hour(rng, traits, 0.4));
        if at < traits.created_at {
            continue;
        }
        if rng.random_bool(0.08) {
            push_web(rows, id, "search", None, at);
            at += rng.random_range(5..60);
        }
        let views = rng.random_range(1..6);
        let mut last = None;
        for _ in 0..views {
            let p = pick_new_product(rng, traits, world);
            push_web(rows, id, "view", Some(&world.products[p].id), at);
            last = Some(p);
            at += rng.random_range(15..240);
        }
        if let Some(p) = last.filter(|_| rng.random_bool(0.25)) {
            push_web(rows, id, "add_to_cart", Some(&world.products[p].id), at);
        }
    }
}

fn push_email(
    rows: &mut ChunkRows,
    id: &str,
    campaign: &str,
    event: &str,
    at: i64,
    machine: Option<bool>,
) {
    if at >= rows.end {
        return;
    }
    let e = &mut rows.email;
    e.contact_id.append_value(id);
    e.campaign_id.append_value(campaign);
    e.event.append_value(event);
    push_time(&mut e.occurred_at, at);
    e.machine_open.append_option(machine);
}

/// The first hour (after the send) in which the contact opens, if any: hazard follows its
/// reading rhythm and fades as the message sinks in the inbox.
fn first_open_hour(rng: &mut impl Rng, traits: &Traits, sent: i64, strength: f64) -> Option<usize> {
    let local = hour_of_week(sent, traits.zone);
    let threshold: f64 = rng.sample(Exp1);
    let mut cumulative = 0.0;
    for k in 0..OPEN_WINDOW_HOURS {
        let reading = traits.reading[(local + k) % 168];
        cumulative += strength * reading * (-(k as f64) / ATTENTION_HOURS).exp();
        if cumulative >= threshold {
            return Some(k);
        }
    }
    None
}

fn simulate_email(
    rng: &mut impl Rng,
    id: &str,
    traits: &Traits,
    world: &World,
    end: i64,
    rows: &mut ChunkRows,
) {
    if traits.consent != Some(true) {
        return;
    }
    let mut subscribed = true;
    for campaign in &world.campaigns {
        if !subscribed {
            break;
        }
        if campaign.send_at < traits.created_at || campaign.send_at >= end || !rng.random_bool(0.5)
        {
            continue;
        }
        let sent = campaign.send_at + rng.random_range(0..600);
        let cid = campaign.id.as_str();
        push_email(rows, id, cid, "sent", sent, None);
        if traits.bad_address {
            push_email(
                rows,
                id,
                cid,
                "bounce",
                sent + rng.random_range(5..60),
                None,
            );
            break;
        }
        let delivered = sent + rng.random_range(1..30);
        push_email(rows, id, cid, "delivered", delivered, None);
        if traits.machine_opener {
            // Privacy proxies fetch every message within seconds; only some platforms flag it.
            let flagged = rng.random_bool(0.6);
            push_email(
                rows,
                id,
                cid,
                "open",
                delivered + rng.random_range(1..20),
                Some(flagged),
            );
        }
        let engagement = traits.engagement(sent);
        let Some(hour) = first_open_hour(rng, traits, sent, traits.open_propensity * engagement)
        else {
            if rng.random_bool(0.0005) {
                push_email(
                    rows,
                    id,
                    cid,
                    "complaint",
                    delivered + rng.random_range(HOUR..DAY),
                    None,
                );
                subscribed = false;
            }
            continue;
        };
        let opened = delivered + (hour as i64) * HOUR + rng.random_range(0..HOUR);
        if opened >= end {
            continue;
        }
        if !traits.machine_opener {
            push_email(rows, id, cid, "open", opened, Some(false));
        }
        if rng.random_bool((traits.click_propensity * engagement).clamp(0.0, 1.0)) {
            let clicked = opened + rng.random_range(5..300);
            if clicked < end {
                push_email(rows, id, cid, "click", clicked, None);
            }
        }
        if rng.random_bool((0.004 + 0.02 * (1.0 - engagement)).clamp(0.0, 1.0)) {
            let gone = opened + rng.random_range(30..600);
            if gone < end {
                push_email(rows, id, cid, "unsubscribe", gone, None);
                subscribed = false;
            }
        }
    }
}

/// P(no purchase in the 90 days after `end`), from the planted rate, dropout and season.
fn p_no_purchase_90d(traits: &Traits, end: i64) -> f64 {
    if traits.purchase_rate <= 0.0 || traits.dropout_at <= end {
        return 1.0;
    }
    let mut expected = 0.0;
    for d in 0..90 {
        let t = end + d * DAY;
        if t >= traits.dropout_at {
            break;
        }
        expected += traits.purchase_rate * season(t);
    }
    (-expected).exp()
}

fn write_truth(id: &str, traits: &Traits, end: i64, rows: &mut ChunkRows) {
    let t = &mut rows.truth;
    t.contact_id.append_value(id);
    t.timezone.append_value(traits.zone.name());
    t.purchase_rate.append_value(traits.purchase_rate);
    push_time(&mut t.dropout_at, traits.dropout_at.min(end + 3650 * DAY));
    t.alive_at_end.append_value(traits.dropout_at > end);
    t.p_no_purchase.append_value(p_no_purchase_90d(traits, end));
    t.top_category
        .append_value(CATEGORIES[traits.top_category].name);
    t.price_tier.append_value(traits.tier as i32);
    t.repeat_propensity.append_value(traits.repeat_propensity);
    t.peak_hour_of_day
        .append_value(traits.peak_hour_of_day as i32);
    t.peak_hour_of_week
        .append_value(traits.peak_hour_of_week as i32);
    t.open_propensity.append_value(traits.open_propensity);
    t.click_propensity.append_value(traits.click_propensity);
    t.machine_opener.append_value(traits.machine_opener);
    t.bad_address.append_value(traits.bad_address);
}
