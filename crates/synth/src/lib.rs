//! # augur-synth
//!
//! Deterministic synthetic shop history with planted ground truth: all five tables of the data
//! contract plus `truth.parquet`, for demos, tests and benchmarks.
//!
//! What is planted, so that models have something real to recover:
//! - **purchases**: a per-contact rate and a dropout time (Pareto/NBD-like, with seasonality);
//!   e-mail and web engagement fade in the 60 days before dropout;
//! - **taste**: a sparse preference over 12 categories and a preferred price tier, a propensity to
//!   re-buy, and refill cycles for consumables;
//! - **chronotype**: a reading rhythm over the 168 local hours of the week (several zones), which
//!   drives when each e-mail is opened — and so whether it is opened at all, since attention fades;
//! - **noise**: privacy-proxy machine opens (flagged or not), abandoned carts, returns, bounces,
//!   unsubscribes, complaints, consent withheld, missing or invalid time zones.
//!
//! Every contact draws from its own random stream (seed, contact index), so output is identical
//! for a seed whatever the number of threads; contacts are generated in parallel chunks and
//! written as one Parquet row group per chunk, so memory stays bounded at any size.

mod rows;
mod simulate;
mod spec;
mod traits;
mod world;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use spec::DemoSpec;

use rows::ChunkRows;
use world::{CATEGORIES, World};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Parquet or Arrow refused a batch.
    #[error("{}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The spec cannot be generated.
    #[error("invalid demo spec: {0}")]
    Spec(String),
}

/// Result with the generator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Rows written per table.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Contacts.
    pub contacts: u64,
    /// Products.
    pub products: u64,
    /// Order lines.
    pub orders: u64,
    /// E-mail events.
    pub email_events: u64,
    /// Web events.
    pub web_events: u64,
}

impl Summary {
    /// Rows of all event tables.
    pub fn events(&self) -> u64 {
        self.orders + self.email_events + self.web_events
    }
}

/// The file names written into the output directory.
pub const FILES: [&str; 6] = [
    "contacts.parquet",
    "products.parquet",
    "orders.parquet",
    "email_events/part-0.parquet",
    "web_events.parquet",
    "truth.parquet",
];

struct Writer {
    path: PathBuf,
    inner: ArrowWriter<File>,
}

impl Writer {
    fn create(dir: &Path, name: &str, schema: SchemaRef) -> Result<Self> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let file = File::create(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(1 << 20))
            .build();
        let inner = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { path, inner })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<u64> {
        self.inner.write(batch).map_err(|e| Error::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.inner.flush().map_err(|e| Error::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(batch.num_rows() as u64)
    }

    fn close(self) -> Result<()> {
        self.inner.close().map(|_| ()).map_err(|e| Error::Write {
            path: self.path,
            reason: e.to_string(),
        })
    }
}

/// Writes the demo history into `out` (created if missing) and an `augur.toml` that reads it.
/// `progress` is called with the number of contacts done.
pub fn generate(spec: &DemoSpec, out: &Path, progress: &(dyn Fn(u64) + Sync)) -> Result<Summary> {
    if spec.contacts == 0 {
        return Err(Error::Spec("--contacts must be at least 1".into()));
    }
    if spec.days < 7 {
        return Err(Error::Spec("--days must be at least 7".into()));
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let world = World::new(spec);
    let mut summary = Summary {
        products: write_products(&world, out)?,
        ..Summary::default()
    };

    let mut contacts = Writer::create(out, FILES[0], rows::contacts_schema())?;
    let mut orders = Writer::create(out, FILES[2], rows::orders_schema())?;
    let mut email = Writer::create(out, FILES[3], rows::email_schema())?;
    let mut web = Writer::create(out, FILES[4], rows::web_schema())?;
    let mut truth = Writer::create(out, FILES[5], rows::truth_schema())?;

    let chunk = spec.chunk_contacts.max(1) as u64;
    let chunks: Vec<u64> = (0..spec.contacts.div_ceil(chunk)).collect();
    let window = 2 * rayon::current_num_threads().max(1);
    let (start, end) = (spec.start(), spec.end());
    for group in chunks.chunks(window) {
        let built: Vec<_> = group
            .par_iter()
            .map(|&c| {
                let mut rows = ChunkRows::new(end);
                for index in c * chunk..((c + 1) * chunk).min(spec.contacts) {
                    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
                    rng.set_stream(index);
                    let traits = traits::Traits::draw(&mut rng, start, end);
                    simulate::simulate(&mut rng, index, &traits, &world, end, &mut rows);
                }
                rows.finish()
            })
            .collect();
        for batches in built {
            let batches = batches.map_err(|e| Error::Write {
                path: out.to_path_buf(),
                reason: e.to_string(),
            })?;
            summary.contacts += contacts.write(&batches.contacts)?;
            summary.orders += orders.write(&batches.orders)?;
            summary.email_events += email.write(&batches.email)?;
            summary.web_events += web.write(&batches.web)?;
            truth.write(&batches.truth)?;
            progress(summary.contacts);
        }
    }
    for w in [contacts, orders, email, web, truth] {
        w.close()?;
    }
    write_config(out)?;
    Ok(summary)
}

fn write_products(world: &World, out: &Path) -> Result<u64> {
    let p = &world.products;
    let batch = RecordBatch::try_new(
        rows::products_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                p.iter().map(|p| p.id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                p.iter().map(|p| p.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                p.iter().map(|p| CATEGORIES[p.category].name),
            )),
            Arc::new(Float64Array::from_iter_values(p.iter().map(|p| p.price))),
            Arc::new(StringArray::from_iter_values(
                p.iter()
                    .map(|p| format!("https://shop.example.com/p/{}", p.id)),
            )),
            Arc::new(StringArray::from_iter_values(
                p.iter()
                    .map(|p| format!("https://shop.example.com/img/{}.jpg", p.id)),
            )),
            Arc::new(BooleanArray::from(
                p.iter().map(|p| p.in_stock).collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(|e| Error::Write {
        path: out.join(FILES[1]),
        reason: e.to_string(),
    })?;
    let mut writer = Writer::create(out, FILES[1], rows::products_schema())?;
    let n = writer.write(&batch)?;
    writer.close()?;
    Ok(n)
}

fn write_config(out: &Path) -> Result<()> {
    let text = "# Reads the demo history in this directory (written by `augur demo-data`).\n\
        [data]\ntimezone = \"UTC\"\n\n\
        [tables.contacts]\npath = \"contacts.parquet\"\n\n\
        [tables.products]\npath = \"products.parquet\"\n\n\
        [tables.orders]\npath = \"orders.parquet\"\n\n\
        [tables.email_events]\npath = \"email_events\"\n\n\
        [tables.web_events]\npath = \"web_events.parquet\"\n\n\
        [campaigns]\n\n[preferences]\n# Every message links to augur serve's own one-click unsubscribe and preference page\n# (/u/<token>, docs/privacy.md); campaigns and series name their topic.\npublic_url = \"http://127.0.0.1:8080\"\ntopics = [\n  { id = \"offers\", name = \"Offers and products picked for you\" },\n  { id = \"news\", name = \"Welcome and news from the shop\" },\n  { id = \"reminders\", name = \"Reminders about your cart and orders\" },\n]\n";
    let path = out.join("augur.toml");
    std::fs::write(&path, text).map_err(|source| Error::Io { path, source })
}
