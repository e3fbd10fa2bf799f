//! `augur validate`: load the exports and print the data-quality report.

use std::process::ExitCode;

use anyhow::Context as _;
use augur_data::{Config, History, QualityReport, TableKind};
use clap::Args;

use super::settings::Settings;
use super::{ConfigArg, progress};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(args.config.config.as_deref())?;
    tracing::info!(config = %settings.source, "configuration loaded");
    let (_, report) = validate(&settings.data).map_err(|e| settings.explain(e))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.render_text());
    }
    Ok(if report.is_fatal() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads every table with a progress counter; returns the history and its report.
pub fn validate(config: &Config) -> anyhow::Result<(History, QualityReport)> {
    let bar = progress::counter("reading");
    let started = std::time::Instant::now();
    let (history, report) = augur_data::load_with_progress(config, &|table: TableKind, rows| {
        bar.set_message(format!("{} ({rows} rows)", table.name()));
    })
    .context("loading the exports")?;
    bar.finish_and_clear();
    let rows: u64 = report.tables.iter().map(|t| t.rows_read).sum();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        rows,
        seconds = format!("{secs:.2}"),
        rows_per_second = format!("{:.0}", rows as f64 / secs.max(1e-9)),
        "exports loaded"
    );
    Ok((history, report))
}
