//! `augur demo-data`: write a synthetic history with planted truth.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use augur_synth::DemoSpec;
use chrono::NaiveDate;
use clap::Args;

use super::progress;

#[derive(Debug, Args)]
pub struct DemoDataArgs {
    /// Number of contacts.
    #[arg(long, default_value_t = 10_000)]
    pub contacts: u64,
    /// Random seed; the same seed gives identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long, default_value = "data/demo")]
    pub out: PathBuf,
    /// Days of history.
    #[arg(long, default_value_t = 730)]
    pub days: u32,
    /// Last day of history (exclusive), YYYY-MM-DD.
    #[arg(long, default_value = "2026-11-01")]
    pub end: NaiveDate,
    /// E-mail campaigns per week.
    #[arg(long, default_value_t = 1.5)]
    pub campaigns_per_week: f64,
}

impl DemoDataArgs {
    fn spec(&self) -> DemoSpec {
        DemoSpec {
            contacts: self.contacts,
            seed: self.seed,
            days: self.days,
            end: self.end,
            campaigns_per_week: self.campaigns_per_week,
            ..DemoSpec::default()
        }
    }
}

pub fn run(args: &DemoDataArgs) -> anyhow::Result<ExitCode> {
    generate(&args.spec(), &args.out)?;
    Ok(ExitCode::SUCCESS)
}

/// Generates with a progress bar and logs a summary.
pub fn generate(spec: &DemoSpec, out: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let bar = progress::bar(spec.contacts, "contacts");
    let summary = augur_synth::generate(spec, out, &|done| bar.set_position(done))
        .with_context(|| format!("writing demo data to {}", out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        out = %out.display(),
        contacts = summary.contacts,
        products = summary.products,
        orders = summary.orders,
        email_events = summary.email_events,
        web_events = summary.web_events,
        seconds = format!("{secs:.1}"),
        rows_per_second = format!("{:.0}", (summary.events() + summary.contacts) as f64 / secs.max(1e-9)),
        "demo data written"
    );
    Ok(())
}
