//! `augur score`: predictions for every contact, from a model directory, as Parquet.

use std::path::PathBuf;
use std::process::ExitCode;

use super::settings::Settings;
use anyhow::Context as _;
use augur_model::Artifact;
use augur_model::Snapshot;
use augur_model::write_scores;
use augur_model::{Filters, Mode, Request};
use clap::{Args, ValueEnum};

use super::ConfigArg;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Repeat purchases count.
    Replenish,
    /// Only products the contact never bought.
    Discover,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Model directory (a version, or a parent with `current`).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Score as of this instant (default: the model's as-of time, from the model directory
    /// alone; another instant reads the exports named by the configuration).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Recommendation mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Replenish)]
    pub mode: ModeArg,
    /// Recommendations per contact.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Recommend only products in stock.
    #[arg(long)]
    pub in_stock: bool,
    /// Never recommend these product ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Recommend only from these categories (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub category: Vec<String>,
    /// Output Parquet file.
    #[arg(long, default_value = "predictions.parquet")]
    pub out: PathBuf,
}

/// Reads the filter options against the model's catalogue; unknown names are errors.
fn filters(args: &ScoreArgs, artifact: &Artifact, snapshot: &Snapshot) -> anyhow::Result<Filters> {
    let products = artifact.affinity.product_index();
    let exclude = args
        .exclude
        .iter()
        .map(|id| {
            products.get(id.trim()).copied().ok_or_else(|| {
                anyhow::anyhow!("--exclude: no product `{id}` in the model's catalogue")
            })
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let catalog = &snapshot.products;
    let categories = args
        .category
        .iter()
        .map(|name| {
            catalog.category_index(name.trim()).ok_or_else(|| {
                anyhow::anyhow!(
                    "--category: no category `{name}`; categories: {}",
                    catalog.categories.join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    Ok(Filters {
        in_stock_only: args.in_stock,
        exclude,
        categories,
    })
}

pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let loading = std::time::Instant::now();
    let artifact = Artifact::load(&args.models)?;
    tracing::info!(
        model = %artifact.manifest.version,
        contacts = artifact.snapshot.len(),
        seconds = format!("{:.2}", loading.elapsed().as_secs_f64()),
        "model loaded"
    );
    let as_of = match &args.as_of {
        Some(raw) => Some(super::train::parse_instant(raw)?),
        None => None,
    };
    // The model directory holds every contact's state as of the training time; another instant
    // needs the exports.
    let rebuilt = match as_of.filter(|t| *t != artifact.manifest.as_of_seconds) {
        Some(t) => {
            let settings = Settings::load(args.config.config.as_deref())?;
            let (history, _) =
                augur_data::load_checked(&settings.data).context("loading the exports")?;
            Some(augur_model::build_snapshot(
                &history,
                t,
                &artifact.models(),
            )?)
        }
        None => None,
    };
    let snapshot = rebuilt.as_ref().unwrap_or(&artifact.snapshot);
    let request = Request {
        mode: match args.mode {
            ModeArg::Replenish => Mode::Replenish,
            ModeArg::Discover => Mode::Discover,
        },
        k: args.k.clamp(1, 1000),
        filters: filters(args, &artifact, snapshot)?,
    };
    let started = std::time::Instant::now();
    let contacts = write_scores(&args.out, snapshot, &artifact.models(), &request)?;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        contacts,
        model = %artifact.manifest.version,
        seconds = format!("{secs:.2}"),
        contacts_per_second = format!("{:.0}", contacts as f64 / secs.max(1e-9)),
        out = %args.out.display(),
        "predictions written"
    );
    Ok(ExitCode::SUCCESS)
}
