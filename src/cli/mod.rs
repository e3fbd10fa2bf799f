//! Command-line interface: argument parsing, logging, and dispatch to the subcommands.

#[macro_use]
mod output;

mod campaign;
mod contacts;
mod demo;
mod demo_data;
mod flows;
mod progress;
mod report;
mod score;
mod serve;
mod settings;
mod train;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Predictive e-mail marketing: churn risk, product affinity and best send time from Parquet
/// history exports.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "AUGUR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// More detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on embedded defaults: demo data if absent, validation, training with its
    /// backtest, then the HTTP service on the new model.
    Demo(demo::DemoArgs),
    /// Write a deterministic synthetic shop history (all five tables and the planted truth).
    DemoData(demo_data::DemoDataArgs),
    /// Load the configured exports and print a data-quality report; exits 1 on fatal problems.
    Validate(validate::ValidateArgs),
    /// Fit churn, affinity and send-time models as of T, backtest them, write models/<version>.
    Train(train::TrainArgs),
    /// Score every contact with a trained model and write predictions as Parquet.
    Score(score::ScoreArgs),
    /// Answer predictions and predictive segments over HTTP from a trained model.
    Serve(serve::ServeArgs),
    /// Predictive campaigns: plan a run into the outbox, send it over SMTP, report on it.
    Campaign(campaign::CampaignArgs),
    /// Triggered series (welcome, abandoned cart, post-purchase, win-back) on events as they
    /// happen: run them, report on them.
    Flows(flows::FlowsArgs),
    /// Reports on the e-mail programme as a whole: `augur report list` for list health.
    Report(report::ReportArgs),
    /// Data-subject rights: `augur contacts export ID` and `augur contacts forget ID…`.
    Contacts(contacts::ContactsArgs),
}

/// The configuration file argument shared by subcommands that read exports.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file (default: ./augur.toml if present, else the embedded defaults).
    #[arg(long, short, env = "AUGUR_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Sets up `tracing` on stderr.
pub fn init_logging(args: &GlobalArgs) {
    let level = if args.quiet {
        "warn"
    } else {
        match args.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match args.log_format {
        LogFormat::Text => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::DemoData(args) => demo_data::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Score(args) => score::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Campaign(args) => campaign::run(&args),
        Command::Flows(args) => flows::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Contacts(args) => contacts::run(&args),
    }
}
