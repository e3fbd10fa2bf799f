//! The hidden traits of one contact — the planted truth the models must recover.

use chrono_tz::Tz;
use rand::Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};

use crate::world::{CATEGORIES, Picker, TIERS};

/// Where contacts live: country, share, and zones with their shares.
/// Zones of a country with their shares.
type Zones = &'static [(Tz, f64)];

const GEOGRAPHY: &[(&str, f64, Zones)] = &[
    (
        "US",
        0.30,
        &[
            (Tz::America__New_York, 0.45),
            (Tz::America__Chicago, 0.30),
            (Tz::America__Denver, 0.07),
            (Tz::America__Los_Angeles, 0.18),
        ],
    ),
    ("GB", 0.15, &[(Tz::Europe__London, 1.0)]),
    ("DE", 0.12, &[(Tz::Europe__Berlin, 1.0)]),
    ("FR", 0.08, &[(Tz::Europe__Paris, 1.0)]),
    ("BR", 0.08, &[(Tz::America__Sao_Paulo, 1.0)]),
    ("JP", 0.07, &[(Tz::Asia__Tokyo, 1.0)]),
    (
        "AU",
        0.06,
        &[
            (Tz::Australia__Sydney, 0.6),
            (Tz::Australia__Brisbane, 0.25),
            (Tz::Australia__Perth, 0.15),
        ],
    ),
    ("IN", 0.06, &[(Tz::Asia__Kolkata, 1.0)]),
    (
        "CA",
        0.05,
        &[(Tz::America__Toronto, 0.7), (Tz::America__Vancouver, 0.3)],
    ),
    ("ES", 0.03, &[(Tz::Europe__Madrid, 1.0)]),
];

/// Typical reading hours (local, weekdays) and how common each is.
const READING_HOURS: [(f64, f64); 8] = [
    (7.0, 0.14),
    (8.0, 0.14),
    (12.0, 0.18),
    (13.0, 0.1),
    (18.0, 0.1),
    (20.0, 0.16),
    (21.0, 0.12),
    (22.0, 0.06),
];

const FIRST_NAMES: [&str; 24] = [
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sofia", "Mateo", "Hana",
    "Kenji", "Chloe", "Leon", "Amelie", "Arjun", "Priya", "Jack", "Isla", "Lea", "Felix", "Ana",
    "Yuki", "Oscar",
];

/// One contact's hidden traits.
pub(crate) struct Traits {
    pub country: &'static str,
    pub zone: Tz,
    pub first_name: Option<&'static str>,
    pub created_at: i64,
    pub consent: Option<bool>,
    /// Expected purchases per day while alive (0 for contacts who never buy).
    pub purchase_rate: f64,
    /// When the contact stops buying for good (may lie beyond the end of history).
    pub dropout_at: i64,
    pub category_taste: Picker,
    pub top_category: usize,
    pub tier: usize,
    pub repeat_propensity: f64,
    /// Reading rhythm over the 168 local hours of the week, maximum 1.
    pub reading: [f64; 168],
    pub peak_hour_of_day: u32,
    pub peak_hour_of_week: usize,
    pub open_propensity: f64,
    pub click_propensity: f64,
    pub machine_opener: bool,
    pub bad_address: bool,
    pub browse_rate: f64,
    pub hides_zone: bool,
}

fn circular_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(24.0);
    d.min(24.0 - d)
}

fn pick_weighted<T: Copy>(rng: &mut impl Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut u = rng.random::<f64>() * total;
    for (item, w) in items {
        if u < *w {
            return *item;
        }
        u -= w;
    }
    items[items.len() - 1].0
}

fn gamma(rng: &mut impl Rng, shape: f64, scale: f64) -> f64 {
    Gamma::new(shape, scale).map_or(shape * scale, |g| g.sample(rng))
}

fn beta(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    Beta::new(a, b).map_or(a / (a + b), |d| d.sample(rng))
}

impl Traits {
    pub fn draw(rng: &mut impl Rng, start: i64, end: i64) -> Self {
        let (country, zones) = {
            let entries: Vec<_> = GEOGRAPHY.iter().map(|(c, w, z)| ((*c, *z), *w)).collect();
            pick_weighted(rng, &entries)
        };
        let zone = pick_weighted(rng, zones);
        let span = (end - 7 * 86_400 - start).max(86_400);
        let created_at = start + rng.random_range(0..span);
        let consent = match rng.random::<f64>() {
            u if u < 0.85 => Some(true),
            u if u < 0.95 => Some(false),
            _ => None,
        };
        let never_buys = rng.random_bool(0.12);
        let purchase_rate = if never_buys {
            0.0
        } else {
            gamma(rng, 0.9, 1.0 / 50.0)
        };
        let dropout_rate = gamma(rng, 1.2, 1.0 / (1.2 * 300.0));
        let lifetime_days = Exp::new(dropout_rate).map_or(300.0, |e| e.sample(rng));
        let dropout_at = created_at.saturating_add((lifetime_days.min(1e6) * 86_400.0) as i64);

        let raw: Vec<f64> = CATEGORIES.iter().map(|_| gamma(rng, 0.3, 1.0)).collect();
        let total: f64 = raw.iter().sum::<f64>().max(1e-12);
        let pop_total: f64 = CATEGORIES.iter().map(|c| c.popularity).sum();
        let taste: Vec<f64> = raw
            .iter()
            .zip(&CATEGORIES)
            .map(|(r, c)| 0.85 * r / total + 0.15 * c.popularity / pop_total)
            .collect();
        let top_category = taste
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let tier =
            pick_weighted(rng, &[(0usize, 0.25), (1, 0.35), (2, 0.28), (3, 0.12)]).min(TIERS - 1);

        let primary = pick_weighted(rng, &READING_HOURS) + rng.random_range(-0.5..0.5);
        let weekend_shift = pick_weighted(rng, &[(2.0, 0.5), (0.0, 0.3), (1.0, 0.2)]);
        let secondary = rng.random_bool(0.4).then(|| {
            (
                pick_weighted(rng, &READING_HOURS),
                rng.random_range(0.2..0.45),
            )
        });
        let sigma = rng.random_range(1.0..1.6);
        let weekend_weight = rng.random_range(0.5..1.2);
        let mut reading = [0.0; 168];
        for (how, r) in reading.iter_mut().enumerate() {
            let (day, hour) = (how / 24, (how % 24) as f64 + 0.5);
            let weekend = day >= 5;
            let shift = if weekend { weekend_shift } else { 0.0 };
            let bump = |centre: f64| {
                (-circular_distance(hour, centre + shift).powi(2) / (2.0 * sigma * sigma)).exp()
            };
            let mut v = bump(primary);
            if let Some((h, w)) = secondary {
                v += w * bump(h);
            }
            *r = 0.03 + v * if weekend { weekend_weight } else { 1.0 };
        }
        let max = reading.iter().copied().fold(0.0, f64::max);
        reading.iter_mut().for_each(|r| *r /= max);
        let peak_hour_of_week = reading
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);

        Self {
            country,
            zone,
            first_name: (!rng.random_bool(0.03))
                .then(|| FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())]),
            created_at,
            consent,
            purchase_rate,
            dropout_at,
            category_taste: Picker::new(taste.into_iter().enumerate()),
            top_category,
            tier,
            repeat_propensity: beta(rng, 2.0, 3.0),
            reading,
            peak_hour_of_day: (primary.rem_euclid(24.0)).floor() as u32,
            peak_hour_of_week,
            open_propensity: gamma(rng, 2.0, 0.3),
            click_propensity: beta(rng, 1.5, 8.0),
            machine_opener: rng.random_bool(0.12),
            bad_address: rng.random_bool(0.02),
            browse_rate: 0.3 * purchase_rate + gamma(rng, 1.0, 0.01),
            hides_zone: rng.random_bool(0.3),
        }
    }

    /// Engagement multiplier at `t`: full while active, fading over the 60 days before dropout,
    /// low afterwards — disengagement precedes churn.
    pub fn engagement(&self, t: i64) -> f64 {
        let fade = 60 * 86_400;
        if t >= self.dropout_at {
            0.15
        } else if t >= self.dropout_at - fade {
            1.0 - 0.6 * (t - (self.dropout_at - fade)) as f64 / fade as f64
        } else {
            1.0
        }
    }
}

/// Seasonal demand multiplier: November and December sell more.
pub(crate) fn season(t: i64) -> f64 {
    use chrono::Datelike;
    let month = chrono::DateTime::from_timestamp(t, 0).map_or(1, |d| d.month());
    if month >= 11 { 1.35 } else { 1.0 }
}
