//! `augur demo`: the main job on embedded defaults — demo data if absent, validation, training
//! with its backtest summary, the example campaigns, then the HTTP service with the example
//! triggered series running beside it.

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
    let flows_dir = write_examples(&args.dir.join("flows"), &augur_flows::EXAMPLES)?;
    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    start_flows(args, &config_path, &flows_dir)?;
    serve(args, config, &flows_dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes example files under `dir` (each unless present); returns `dir`.
fn write_examples(dir: &Path, examples: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
    for (rel, text) in examples {
        let path = dir.join(rel);
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)?;
        }
    }
    Ok(dir.to_path_buf())
}

/// Runs the example series beside the service: a tick every 5 seconds, due messages delivered
/// (to `.eml` files without a relay).
fn start_flows(args: &DemoArgs, config_path: &Path, flows_dir: &Path) -> anyhow::Result<()> {
    let config = Settings::load(Some(config_path))?;
    let run = super::flows::RunArgs {
        config: super::ConfigArg {
            config: Some(config_path.to_path_buf()),
        },
        flows: flows_dir.to_path_buf(),
        models: args.models.clone(),
        once: false,
        at: None,
        interval: 5.0,
        send: true,
    };
    // Checked now, so that a broken flow file stops the demo with its reason.
    super::flows::load_flows(flows_dir)?;
    std::thread::spawn(move || {
        if let Err(e) = super::flows::run_loop(&config, &run) {
            tracing::error!("the example series stopped: {e:#}");
        }
    });
    Ok(())
}

/// A `curl` line posting a cart for `contact`, and when its reminder leaves: an hour after the
/// cart (the series waits for an order that long), outside the flow's quiet hours in the
/// contact's zone.
fn cart_line(
    flows_dir: &Path,
    snapshot: &augur_model::Snapshot,
    c: usize,
    product: &str,
    auth: &str,
    addr: std::net::SocketAddr,
) -> Option<(String, String)> {
    let flow = augur_flows::Flow::load(&flows_dir.join("abandoned_cart.toml")).ok()?;
    let contact = snapshot.contacts.name(c as u32);
    let now = chrono::Utc::now().timestamp();
    // An event id whose entry is not in the series' control group, so the promise holds.
    let event_id = (1..100)
        .map(|i| format!("demo-cart-{now}-{i}"))
        .find(|id| !augur_flows::in_holdout(&flow, contact, id))?;
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(now, 0)?;
    let body = format!(
        r#"{{"events":[{{"type":"web","event":"add_to_cart","event_id":"{event_id}","contact_id":"{contact}","product_id":"{product}","occurred_at":"{}"}}]}}"#,
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let curl = format!(
        "  curl -s {auth} -H 'Content-Type: application/json' -d '{body}' http://{addr}/v1/events"
    );
    let zone = snapshot.timezone[c];
    let mut leaves = at + chrono::Duration::hours(1);
    while flow.quiet.is_some_and(|q| q.contains_instant(leaves, zone)) {
        leaves += chrono::Duration::minutes(15);
    }
    let when = format!(
        "The cart's reminder leaves at {} ({} in the contact's zone, {}) unless {contact} orders first; it is written to {}.",
        leaves.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        leaves.with_timezone(&zone).format("%H:%M"),
        zone.name(),
        flows_dir
            .parent()
            .unwrap_or(flows_dir)
            .join("outbox/eml")
            .display()
    );
    Some((curl, when))
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
fn serve(args: &DemoArgs, mut config: Settings, flows_dir: &Path) -> anyhow::Result<()> {
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
    let keyring = super::contacts::keyring(&config)?;
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
        let page = super::contacts::token(&keyring, "demo", contact);
        outln!(
            "Every message links to its contact's own preference page (one-click unsubscribe, topics, frequency, pause); {contact}'s:"
        );
        outln!("  http://{addr}/u/{page}");
        // A contact who may be mailed, for the cart series.
        let mailable = (0..snapshot.len()).find(|&c| {
            let flag = |name: &str| {
                augur_model::FLAGS
                    .iter()
                    .position(|f| *f == name)
                    .and_then(|i| snapshot.flag(i, c))
            };
            flag("email_consent") == Some(true)
                && ["unsubscribed", "bounced", "complained"]
                    .iter()
                    .all(|f| flag(f) != Some(true))
        });
        if let Some((curl, when)) = mailable
            .zip(loaded.artifact.affinity.product_ids.first())
            .and_then(|(c, p)| cart_line(flows_dir, snapshot, c, p, &auth, addr))
        {
            outln!();
            outln!(
                "Triggered series run beside the service (files in {}). Post a cart:",
                flows_dir.display()
            );
            outln!("{curl}");
            outln!("{when}");
        }
    })
}
