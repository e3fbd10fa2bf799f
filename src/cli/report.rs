//! `augur report`: reports on the e-mail programme as a whole (campaign reports are under
//! `augur campaign report`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::ConfigArg;
use super::settings::Settings;
use super::train::parse_instant;

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// List health per week: growth net of unsubscribes, bounces and complaints, and the
    /// engaged / moderately engaged / inactive bands.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The last week ends at this instant (RFC 3339 or a date; default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Weeks to report, 1 to 520.
    #[arg(long, default_value_t = 26, value_parser = clap::value_parser!(u16).range(1..=520))]
    pub weeks: u16,
    /// Directory for list-health.json and list-health.html (default: <outbox dir>/reports/list).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ReportCommand::List(a) => list(a)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    let config = Settings::load(args.config.config.as_deref())?.campaign();
    let at = match args.at.as_deref() {
        Some(raw) => parse_instant(raw)?,
        None => chrono::Utc::now().timestamp(),
    };
    let health = augur_campaign::list_health(&config, at, usize::from(args.weeks))?;
    let out = args.out.clone().unwrap_or_else(|| {
        config
            .campaigns
            .outbox
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("reports")
            .join("list")
    });
    let page = augur_campaign::write_list_health(&health, &out)
        .with_context(|| format!("writing the list report into {}", out.display()))?;
    outln!(
        "  {:<10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}  {:>8} {:>8} {:>8} {:>8} {:>6}",
        "week from",
        "list",
        "joined",
        "unsub",
        "bounce",
        "compl",
        "net",
        "growth",
        "engaged",
        "moderate",
        "inactive",
        "idle180",
        "new"
    );
    for w in &health.weeks {
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(w.start, 0)
            .map_or_else(|| w.start.to_string(), |d| d.format("%Y-%m-%d").to_string());
        outln!(
            "  {:<10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>+7} {:>8}  {:>8} {:>8} {:>8} {:>8} {:>6}",
            start,
            w.list_at_start,
            w.joined,
            w.unsubscribed,
            w.bounced,
            w.complained,
            w.net,
            w.growth_rate
                .map_or_else(|| "–".to_string(), |r| format!("{:+.2}%", 100.0 * r)),
            w.engaged,
            w.moderately_engaged,
            w.inactive,
            w.inactive_180,
            w.new
        );
    }
    outln!("Report: {}", page.display());
    Ok(())
}
