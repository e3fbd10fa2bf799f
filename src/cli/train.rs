//! `augur train`: fit the models as of T, backtest them against baselines, write `models/<version>/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use augur_data::parse_iso;
use augur_data::{Config, History};
use augur_train::{Backtest, TrainOptions, Trained};
use clap::Args;

use super::ConfigArg;
use super::settings::Settings;

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Use only events before this instant (RFC 3339 or YYYY-MM-DD, UTC); default: all events.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Where model versions are written (a `current` file names the newest).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Churn horizon in days: risk = P(no purchase within this many days).
    #[arg(long, default_value_t = augur_train::DEFAULT_HORIZON_DAYS)]
    pub horizon_days: f64,
}

/// Parses an instant given on the command line.
pub fn parse_instant(raw: &str) -> anyhow::Result<i64> {
    parse_iso(raw, augur_data::Tz::UTC).with_context(|| {
        format!("`{raw}` is not a date or RFC 3339 time (e.g. 2026-10-01 or 2026-10-01T00:00:00Z)")
    })
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(args.config.config.as_deref())?;
    tracing::info!(config = %settings.source, "configuration loaded");
    let as_of = args.as_of.as_deref().map(parse_instant).transpose()?;
    let mut live = live_rows(&settings.events.store)?;
    live.extend(super::contacts::opt_out_rows(&settings)?);
    let erased = super::contacts::erased(&settings)?;
    let trained = train(
        &settings.data,
        &live,
        erased,
        as_of,
        args.horizon_days,
        &args.models,
    )
    .map_err(|e| settings.explain(e))?;
    print_summary(&trained.backtest, &trained.manifest.fallbacks);
    print_location(&args.models, &trained);
    Ok(ExitCode::SUCCESS)
}

/// The events posted since the exports (`POST /v1/events`), when the event store exists.
pub fn live_rows(store: &Path) -> anyhow::Result<Vec<augur_data::LiveRow>> {
    if !store.exists() {
        return Ok(Vec::new());
    }
    let events = augur_events::EventStore::open(store)?.all()?;
    if !events.is_empty() {
        tracing::info!(
            events = events.len(),
            store = %store.display(),
            "adding the posted events to the exports"
        );
    }
    Ok(events.iter().map(|s| s.event.live_row()).collect())
}

/// Loads the data (the exports, and `live` rows posted since), trains, writes the model
/// directory and its report.
pub fn train(
    config: &Config,
    live: &[augur_data::LiveRow],
    erased: Option<augur_data::Erased>,
    as_of: Option<i64>,
    horizon_days: f64,
    models: &Path,
) -> anyhow::Result<Trained> {
    let started = std::time::Instant::now();
    let (history, report) =
        augur_data::load_with_live(config, live, erased).context("loading the exports")?;
    if report.is_fatal() {
        return Err(anyhow::Error::new(augur_data::Error::Unusable {
            problems: report.fatal.join("; "),
        })
        .context("loading the exports"));
    }
    tracing::info!(
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "history loaded"
    );
    warn_dropped(&report);
    train_loaded(&history, as_of, horizon_days, models)
}

/// Says, per table, how many rows were skipped and why: training goes on without them, and
/// `augur validate` shows examples.
fn warn_dropped(report: &augur_data::QualityReport) {
    for table in &report.tables {
        let dropped = table.rows_dropped();
        if dropped == 0 {
            continue;
        }
        let reasons: Vec<String> = table
            .dropped
            .iter()
            .map(|(reason, n)| format!("{} {n}", reason.describe()))
            .collect();
        tracing::warn!(
            table = table.table.name(),
            dropped,
            read = table.rows_read,
            reasons = reasons.join(", "),
            "rows skipped; `augur validate` shows examples"
        );
    }
}

/// Trains on a loaded history and writes the model directory and its report.
pub fn train_loaded(
    history: &History,
    as_of: Option<i64>,
    horizon_days: f64,
    models: &Path,
) -> anyhow::Result<Trained> {
    let started = std::time::Instant::now();
    let now = chrono::Utc::now();
    // A run in the same second gets `-2`, `-3`… when it is written.
    let version = now.format("%Y%m%dT%H%M%SZ").to_string();
    let options = TrainOptions {
        as_of,
        horizon_days,
        ..TrainOptions::default()
    };
    let mut trained =
        augur_train::train(history, &options, &version, &now.to_rfc3339()).context("training")?;
    let dir = augur_train::write_model(models, &mut trained)
        .with_context(|| format!("writing {}", models.display()))?;
    tracing::info!(dir = %dir.display(), seconds = format!("{:.1}", started.elapsed().as_secs_f64()), "model written");
    Ok(trained)
}

/// Says where the model and its report are.
pub fn print_location(models: &Path, trained: &Trained) {
    let dir = models.join(&trained.manifest.version);
    outln!(
        "\nModel {} written to {}; report: {}",
        trained.manifest.version,
        dir.display(),
        dir.join("report.html").display()
    );
}

/// Prints the backtest against the baselines.
pub fn print_summary(backtest: &Backtest, fallbacks: &[String]) {
    outln!(
        "Backtest on held-out time {} .. {}",
        backtest.held_out_from,
        backtest.held_out_to
    );
    if !backtest.churn.is_empty() {
        outln!(
            "\nchurn ({} contacts)            ROC AUC   PR AUC    Brier  log loss  top-10% lift",
            backtest.churn.get("augur").map_or(0, |m| m.n)
        );
        for (name, m) in &backtest.churn {
            outln!(
                "  {name:<28} {:>7.3}  {:>7.3}  {:>7.4}  {:>8.4}  {:>12.2}",
                m.roc_auc,
                m.pr_auc,
                m.brier,
                m.log_loss,
                m.top_decile_lift
            );
        }
    }
    if let Some(recs) = &backtest.recommendations {
        for (label, table) in [
            ("all items", &recs.all_items),
            ("new items", &recs.new_items),
        ] {
            outln!("\nrecommendations, {label:<18} recall@10  precision@10  NDCG@10  hit rate@10");
            for (name, m) in table {
                outln!(
                    "  {name:<33} {:>9.3}  {:>12.3}  {:>7.3}  {:>11.3}",
                    m.recall_at_10,
                    m.precision_at_10,
                    m.ndcg_at_10,
                    m.hit_rate_at_10
                );
            }
        }
    }
    if !backtest.send_time.is_empty() {
        outln!(
            "\nsend time (hour of day)          log-lik/engagement  top-1 hit  ±1 h hit  log-lik by hour of week"
        );
        for (name, m) in &backtest.send_time {
            outln!(
                "  {name:<32} {:>18.3}  {:>9.3}  {:>8.3}  {:>23.3}",
                m.log_likelihood,
                m.top1_hit_rate,
                m.within_1h_hit_rate,
                m.hour_of_week_log_likelihood
            );
        }
    }
    if !backtest.served.is_empty() {
        outln!();
    }
    for line in &backtest.served {
        outln!("serves {line}");
    }
    for line in &backtest.losses {
        outln!("\nWARNING {line}");
    }
    for f in fallbacks {
        outln!("\nfallback: {f}");
    }
}
