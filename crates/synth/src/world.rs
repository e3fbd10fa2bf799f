//! The shop every demo contact lives in: categories, products with price tiers and popularity,
//! and the calendar of e-mail campaigns. Drawn once per seed, shared by all contacts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

use crate::spec::DemoSpec;

/// A product category: name, base price and, for consumables, the days between refills.
pub(crate) struct Category {
    pub name: &'static str,
    pub base_price: f64,
    pub refill_days: Option<f64>,
    pub popularity: f64,
}

pub(crate) const CATEGORIES: [Category; 12] = [
    Category {
        name: "Coffee",
        base_price: 14.0,
        refill_days: Some(30.0),
        popularity: 1.6,
    },
    Category {
        name: "Tea",
        base_price: 10.0,
        refill_days: Some(40.0),
        popularity: 1.0,
    },
    Category {
        name: "Pet Food",
        base_price: 28.0,
        refill_days: Some(28.0),
        popularity: 1.2,
    },
    Category {
        name: "Skincare",
        base_price: 22.0,
        refill_days: Some(50.0),
        popularity: 1.1,
    },
    Category {
        name: "Books",
        base_price: 16.0,
        refill_days: None,
        popularity: 1.3,
    },
    Category {
        name: "Kitchen",
        base_price: 35.0,
        refill_days: None,
        popularity: 1.0,
    },
    Category {
        name: "Home Decor",
        base_price: 42.0,
        refill_days: None,
        popularity: 0.8,
    },
    Category {
        name: "Garden",
        base_price: 30.0,
        refill_days: None,
        popularity: 0.6,
    },
    Category {
        name: "Toys",
        base_price: 25.0,
        refill_days: None,
        popularity: 0.7,
    },
    Category {
        name: "Sports",
        base_price: 48.0,
        refill_days: None,
        popularity: 0.8,
    },
    Category {
        name: "Electronics",
        base_price: 95.0,
        refill_days: None,
        popularity: 0.9,
    },
    Category {
        name: "Fashion",
        base_price: 55.0,
        refill_days: None,
        popularity: 1.1,
    },
];

/// Price multiplier of each tier (budget … premium).
pub(crate) const TIER_PRICE: [f64; 4] = [0.6, 1.0, 1.6, 2.8];
/// Number of price tiers.
pub(crate) const TIERS: usize = 4;

/// One catalogue item.
pub(crate) struct Product {
    pub id: String,
    pub name: String,
    pub category: usize,
    pub price: f64,
    pub in_stock: bool,
}

/// One e-mail campaign: id and send instant (UTC seconds).
pub(crate) struct Campaign {
    pub id: String,
    pub send_at: i64,
}

/// Cumulative sampling table.
pub(crate) struct Picker {
    items: Vec<usize>,
    cumulative: Vec<f64>,
}

impl Picker {
    pub fn new(weighted: impl IntoIterator<Item = (usize, f64)>) -> Self {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (item, w) in weighted {
            if w > 0.0 {
                total += w;
                items.push(item);
                cumulative.push(total);
            }
        }
        Self { items, cumulative }
    }

    pub fn pick(&self, rng: &mut impl Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let u = rng.random::<f64>() * total;
        let i = self
            .cumulative
            .partition_point(|c| *c <= u)
            .min(self.items.len() - 1);
        Some(self.items[i])
    }
}

/// The shared world.
pub(crate) struct World {
    pub products: Vec<Product>,
    /// `by_tier[category][tier]` samples a product by popularity.
    pub by_tier: Vec<Vec<Picker>>,
    pub campaigns: Vec<Campaign>,
}

const ADJECTIVES: [&str; 12] = [
    "Classic", "Organic", "Deluxe", "Everyday", "Nordic", "Urban", "Artisan", "Eco", "Pro", "Mini",
    "Grand", "Wild",
];

impl World {
    pub fn new(spec: &DemoSpec) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(u64::MAX);
        let n_products = spec.products();
        let total_pop: f64 = CATEGORIES.iter().map(|c| c.popularity).sum();
        let category_picker = Picker::new(
            CATEGORIES
                .iter()
                .enumerate()
                .map(|(i, c)| (i, c.popularity / total_pop)),
        );
        let noise = LogNormal::new(0.0, 0.2).unwrap_or_else(|_| unreachable!("valid parameters"));
        let mut products = Vec::with_capacity(n_products);
        let mut weights: Vec<Vec<Vec<(usize, f64)>>> =
            vec![vec![Vec::new(); TIERS]; CATEGORIES.len()];
        for p in 0..n_products {
            // Every category gets products first; then by category popularity.
            let category = if p < CATEGORIES.len() * TIERS {
                p % CATEGORIES.len()
            } else {
                category_picker.pick(&mut rng).unwrap_or(0)
            };
            let tier = if p < CATEGORIES.len() * TIERS {
                p / CATEGORIES.len()
            } else {
                rng.random_range(0..TIERS)
            };
            let raw = CATEGORIES[category].base_price * TIER_PRICE[tier] * noise.sample(&mut rng);
            let price = (raw.max(1.0)).floor() + 0.99;
            let rank = weights[category][tier].len() as f64;
            weights[category][tier].push((p, 1.0 / (rank + 2.0).powf(0.9)));
            products.push(Product {
                id: format!("P{:05}", p + 1),
                name: format!(
                    "{} {} #{}",
                    ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
                    CATEGORIES[category].name,
                    p + 1
                ),
                category,
                price,
                in_stock: rng.random_bool(0.94),
            });
        }
        let by_tier = weights
            .into_iter()
            .map(|tiers| tiers.into_iter().map(Picker::new).collect())
            .collect();

        let per_week = spec.campaigns_per_week.max(0.0);
        let n_campaigns = (f64::from(spec.days) / 7.0 * per_week).round() as usize;
        let spacing = if n_campaigns > 0 {
            f64::from(spec.days) * 86_400.0 / n_campaigns as f64
        } else {
            0.0
        };
        let campaigns = (0..n_campaigns)
            .map(|k| {
                // Spread over the calendar, each at a random hour (UTC), so every contact is
                // reached at many local hours and its reading rhythm can be learnt.
                let day_start = spec.start() + (k as f64 * spacing) as i64;
                let day_start = day_start - day_start.rem_euclid(86_400);
                Campaign {
                    id: format!("CMP{:04}", k + 1),
                    send_at: day_start + rng.random_range(0..24) * 3600,
                }
            })
            .collect();
        Self {
            products,
            by_tier,
            campaigns,
        }
    }
}
