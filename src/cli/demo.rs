//! `augur demo`: the main job on embedded defaults — demo data if absent, validation, training
//! with its backtest summary, the example campaigns, then the HTTP service.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::settings::Settings;
use anyhow::Context as _;
use augur_synth::DemoSpec;
use clap::Args;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the demo data (written if it holds no data yet).
    #[arg(long, default_value = "data/demo")]
    pub dir: PathBuf,
    /// Contacts to generate when the data is absent.
    #[arg(long, default_value_t = 10_000)]
    pub contacts: u64,
    /// Seed for generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where model versions are written.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Stop after training instead of serving the new model.
    #[arg(long)]
    pub no_serve: bool,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    // The port is checked before minutes of work, not after.
    if !args.no_serve {
        std::net::TcpListener::bind(&args.listen).with_context(|| {
            format!(
                "cannot listen on {}: choose a free address with --listen, or train only with --no-serve",
                args.listen
            )
        })?;
    }
    let config_path = args.dir.join("augur.toml");
    if config_path.is_file() {
        tracing::info!(dir = %args.dir.display(), "using existing demo data");
    } else {
        let spec = DemoSpec {
            contacts: args.contacts,
            seed: args.seed,
            ..DemoSpec::default()
        };
        super::demo_data::generate(&spec, &args.dir)?;
    }
    let config = Settings::load(Some(&config_path))?;
    let (history, report) = super::validate::validate(&config.data)?;
    out!("{}", report.render_text());
    if report.is_fatal() {
        return Ok(ExitCode::from(1));
    }
    outln!();
    let trained = super::train::train_loaded(
        &history,
        None,
        augur_train::DEFAULT_HORIZON_DAYS,
        &args.models,
    )?;
    super::train::print_summary(&trained.backtest, &trained.manifest.fallbacks);
    super::train::print_location(&args.models, &trained);
    outln!(
        "Score every contact: augur score --models {} --out predictions.parquet",
        args.models.display()
    );
    campaigns(args, &config_path, &config)?;
    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    serve(args, config)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the example campaigns next to the data (unless present), sends the welcome campaign
/// now and plans the win-back for each contact's best hour.
fn campaigns(args: &DemoArgs, config_path: &Path, config: &Settings) -> anyhow::Result<()> {
    let dir = args.dir.join("campaigns");
    for (rel, text) in augur_campaign::EXAMPLES {
        let path = dir.join(rel);
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)?;
        }
    }
    outln!();
    outln!("Predictive campaigns (files in {}):", dir.display());
    for file in ["welcome.toml", "winback.toml"] {
        outln!();
        super::campaign::plan(&super::campaign::PlanArgs {
            config: super::ConfigArg {
                config: Some(config_path.to_path_buf()),
            },
            campaign: dir.join(file),
            models: args.models.clone(),
            at: None,
            dry_run: false,
            out: None,
        })?;
    }
    outln!();
    super::campaign::send(&config.campaign(), augur_campaign::Until::DueNow, false)?;
    outln!(
        "Win-back messages wait in the outbox for each contact's best hour; deliver them as they fall due with:\n  augur campaign send --follow --config {}",
        config_path.display()
    );
    Ok(())
}

/// Serves the new model with a fresh API key (unless one is configured) and prints requests
/// that work as printed.
fn serve(args: &DemoArgs, mut config: Settings) -> anyhow::Result<()> {
    use rand::Rng as _;
    let configured = config
        .serve
        .api_key
        .clone()
        .or_else(|| config.serve.api_keys.first().cloned());
    let key = configured.unwrap_or_else(|| {
        let key: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        config.serve.api_key = Some(key.clone());
        key
    });
    super::serve::start(&args.models, &args.listen, config, |state, addr| {
        let loaded = state.current.load();
        let snapshot = &loaded.artifact.snapshot;
        // A contact with a churn score, so that every printed answer has something in it.
        let contact = (0..snapshot.len())
            .find(|c| snapshot.churn_risk(*c).is_some())
            .map_or("unknown", |c| snapshot.contacts.name(c as u32));
        let auth = format!("-H \"Authorization: Bearer {key}\"");
        outln!();
        outln!(
            "Serving model {} on http://{addr} (Ctrl-C stops). Try:",
            loaded.version()
        );
        outln!("  curl -s {auth} http://{addr}/v1/contacts/{contact}");
        outln!(
            "  curl -s {auth} 'http://{addr}/v1/contacts/{contact}/recommendations?k=5&mode=discover'"
        );
        outln!(
            "  curl -s {auth} 'http://{addr}/v1/contacts/{contact}/send-time?within=24h&quiet=21:00-08:00'"
        );
        outln!("  curl -s {auth} http://{addr}/v1/segments");
        outln!("  curl -s {auth} 'http://{addr}/v1/segments/at_risk/contacts?format=csv&limit=5'");
        outln!("  curl -s http://{addr}/metrics");
    })
}
