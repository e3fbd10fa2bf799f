//! `augur demo`: the main job on embedded defaults — demo data if absent, validation, training
//! with its backtest summary.

use std::path::PathBuf;
use std::process::ExitCode;

use augur_core::Config;
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
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
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
    let (config, _) = Config::load(Some(&config_path))?;
    let (history, report) = super::validate::validate(&config)?;
    print!("{}", report.render_text());
    if report.is_fatal() {
        return Ok(ExitCode::from(1));
    }
    println!();
    let trained = super::train::train_loaded(&history, None, 90.0, &args.models)?;
    super::train::print_summary(&trained.backtest, &trained.manifest.fallbacks);
    super::train::print_location(&args.models, &trained);
    println!(
        "Score every contact: augur score --config {} --models {} --out predictions.parquet",
        config_path.display(),
        args.models.display()
    );
    Ok(ExitCode::SUCCESS)
}
