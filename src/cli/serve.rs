//! `augur serve`: the HTTP service on a trained model directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::settings::Settings;
use anyhow::Context as _;
use augur_serve::AppState;
use clap::Args;

use super::ConfigArg;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Model directory (a version, or a parent with `current`, watched for newer models).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Address to listen on (default: serve.listen, 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long)]
    pub listen: Option<String>,
}

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Settings::load(args.config.config.as_deref())?;
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| config.serve.listen.clone());
    start(&args.models, &listen, config, |state, addr| {
        let loaded = state.current.load();
        outln!(
            "augur serve: model {} with {} contacts, listening on http://{addr}",
            loaded.version(),
            loaded.artifact.snapshot.len()
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Loads the model, then binds `listen`, calls `ready` and serves until Ctrl-C or SIGTERM.
pub fn start(
    models: &Path,
    listen: &str,
    config: Settings,
    ready: impl FnOnce(&AppState, SocketAddr),
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let campaign = config.campaign();
    let records = Arc::new(super::contacts::Records::new(&config));
    let state = Arc::new(
        AppState::new(
            models.to_path_buf(),
            config.serve,
            config.segments,
            config.events,
        )?
        .with_preferences(config.preferences, &campaign.preference_store())?
        .with_records(records),
    );
    tracing::info!(
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        model = %state.current.load().version(),
        "model loaded"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        ready(&state, addr);
        use std::io::Write as _;
        std::io::stdout().flush().ok();
        augur_serve::serve(state, listener, augur_serve::shutdown_signal()).await?;
        Ok(())
    });
    // A reload still loading in the background is abandoned, not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
