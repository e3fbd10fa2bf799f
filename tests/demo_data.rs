//! The synthetic history: deterministic per seed, and the planted structure is really there.

use std::collections::HashMap;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use augur_data::hour_of_week;
use augur_data::{Config, EmailEventKind};

use crate::util::{Dir, col, read_parquet, run};

fn generate(dir: &Dir, out: &str, contacts: u32, seed: u32) {
    let out = run(dir.augur().args([
        "demo-data",
        "--contacts",
        &contacts.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        out,
    ]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn same_seed_same_files_other_seed_other_files() {
    let dir = Dir::new();
    generate(&dir, "a", 600, 7);
    generate(&dir, "b", 600, 7);
    generate(&dir, "c", 600, 8);
    for name in augur_synth::FILES {
        let a = std::fs::read(dir.join("a").join(name)).expect("a");
        let b = std::fs::read(dir.join("b").join(name)).expect("b");
        assert!(a == b, "{name} differs between runs with the same seed");
    }
    let a = std::fs::read(dir.join("a/orders.parquet")).expect("a");
    let c = std::fs::read(dir.join("c/orders.parquet")).expect("c");
    assert!(a != c, "a different seed gives different orders");
}

#[test]
fn planted_structure_is_recoverable() {
    let dir = Dir::new();
    generate(&dir, "demo", 3000, 11);
    let config = Config::load(Some(&dir.join("demo/augur.toml")))
        .expect("config")
        .0;
    let (history, report) = augur_data::load(&config).expect("load");
    assert!(!report.is_fatal());
    assert_eq!(report.contacts, 3000);

    // Truth per contact.
    let mut peak_hour: HashMap<String, i32> = HashMap::new();
    let mut zone: HashMap<String, String> = HashMap::new();
    let mut rate: HashMap<String, f64> = HashMap::new();
    for batch in read_parquet(&dir.join("demo/truth.parquet")) {
        let ids = col(&batch, "contact_id").as_string::<i32>();
        let peaks = col(&batch, "peak_hour_of_day").as_primitive::<Int32Type>();
        let zones = col(&batch, "timezone").as_string::<i32>();
        let rates =
            col(&batch, "purchase_rate_per_day").as_primitive::<arrow::datatypes::Float64Type>();
        for i in 0..batch.num_rows() {
            peak_hour.insert(ids.value(i).to_string(), peaks.value(i));
            zone.insert(ids.value(i).to_string(), zones.value(i).to_string());
            rate.insert(ids.value(i).to_string(), rates.value(i));
        }
    }

    // Human opens peak at the planted reading hour, in the contact's own zone.
    let e = &history.email_events;
    let mut hours: HashMap<u32, [u32; 24]> = HashMap::new();
    let mut machine = 0;
    for i in 0..e.len() {
        if e.kind[i] != EmailEventKind::Open {
            continue;
        }
        if e.machine_open[i] {
            machine += 1;
            continue;
        }
        let id = history.contacts.ids.name(e.contact[i]);
        let tz: augur_data::Tz = zone[id].parse().expect("zone");
        hours.entry(e.contact[i]).or_insert([0; 24])[hour_of_week(e.at[i], tz) % 24] += 1;
    }
    assert!(machine > 0, "flagged machine opens exist");
    let (mut checked, mut near) = (0, 0);
    for (c, counts) in &hours {
        if counts.iter().sum::<u32>() < 10 {
            continue;
        }
        let mode = counts
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .map(|(h, _)| h as i32)
            .unwrap_or(0);
        let planted = peak_hour[history.contacts.ids.name(*c)];
        let d = (mode - planted).rem_euclid(24);
        checked += 1;
        near += i32::from(d.min(24 - d) <= 1);
    }
    assert!(checked > 100, "enough engaged contacts ({checked})");
    let share = f64::from(near) / f64::from(checked);
    assert!(
        share > 0.6,
        "open-hour mode within ±1 h of the planted peak for {share:.2} of contacts"
    );

    // Order counts follow the planted purchase rate.
    let mut orders_per_contact: HashMap<u32, u32> = HashMap::new();
    for &c in &history.orders.contact {
        *orders_per_contact.entry(c).or_default() += 1;
    }
    let (mut low, mut high) = ((0.0, 0.0), (0.0, 0.0));
    for (id, r) in &rate {
        let n = history
            .contacts
            .ids
            .get(id)
            .and_then(|c| orders_per_contact.get(&c))
            .copied()
            .unwrap_or(0);
        let bucket = if *r < 0.01 { &mut low } else { &mut high };
        bucket.0 += f64::from(n);
        bucket.1 += 1.0;
    }
    assert!(
        high.0 / high.1 > 2.0 * low.0 / low.1,
        "high-rate contacts order more"
    );

    // Abandoned carts: carts without a later order of that product by that contact exist.
    let carts = history
        .web_events
        .kind
        .iter()
        .filter(|k| **k == augur_data::WebEventKind::AddToCart)
        .count();
    assert!(
        carts as f64 > 1.2 * history.orders.len() as f64 * 0.7 * 0.5,
        "carts beyond those that led to orders"
    );
}
