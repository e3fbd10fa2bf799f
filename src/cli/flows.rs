//! `augur flows`: run triggered series on events as they happen, and report on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use augur_campaign::{Directory, Outbox, Until};
use augur_events::EventStore;
use augur_flows::{Flow, FlowState, Runner, TickReport};
use augur_model::Artifact;
use clap::{Args, Subcommand};

use super::ConfigArg;
use super::settings::Settings;
use super::train::parse_instant;

#[derive(Debug, Args)]
pub struct FlowsArgs {
    #[command(subcommand)]
    pub command: FlowsCommand,
}

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Read new events, enroll contacts, advance every series and queue due messages, every
    /// few seconds (or once).
    Run(RunArgs),
    /// Per flow and step: entered, exited by reason, sent, opens, clicks, conversions, uplift.
    Report(FlowReportArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// A flow file, or a directory of them (every `*.toml`).
    #[arg(long, default_value = "flows")]
    pub flows: PathBuf,
    /// Model directory (a version, or a parent with `current`, watched for newer models).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// One tick, then stop (for cron and tests).
    #[arg(long)]
    pub once: bool,
    /// The tick's instant (RFC 3339 or a date; default: now). Only with --once.
    #[arg(long, requires = "once")]
    pub at: Option<String>,
    /// Seconds between ticks.
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    /// Also deliver due messages after each tick, as `augur campaign send` does (leave it off
    /// when a sender runs already).
    #[arg(long)]
    pub send: bool,
}

#[derive(Debug, Args)]
pub struct FlowReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// A flow file, or a directory of them.
    #[arg(long, default_value = "flows")]
    pub flows: PathBuf,
    /// The flow's id.
    #[arg(long)]
    pub flow: String,
    /// Directory for flow-<id>.json (default: <outbox dir>/reports).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &FlowsArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        FlowsCommand::Run(a) => run_flows(a)?,
        FlowsCommand::Report(a) => report(a)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The flows of a file or a directory, sorted by file name.
pub fn load_flows(path: &Path) -> anyhow::Result<Vec<Flow>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading the flows directory {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        anyhow::bail!(
            "{}: no flow files (*.toml); examples are in crates/flows/flows/",
            path.display()
        );
    }
    let flows = files
        .iter()
        .map(|f| Flow::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<&str> = flows.iter().map(Flow::id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("two flow files have the id `{}`; ids are unique", w[0]);
    }
    Ok(flows)
}

/// Where the flows keep their state: `flows.sqlite` beside the outbox.
pub fn state_path(settings: &augur_campaign::Settings) -> PathBuf {
    settings
        .campaigns
        .outbox
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("flows.sqlite")
}

fn run_flows(args: &RunArgs) -> anyhow::Result<()> {
    let config = Settings::load(args.config.config.as_deref())?;
    run_loop(&config, args)
}

/// Ticks (and delivers, with `send`) until stopped, or once.
pub fn run_loop(config: &Settings, args: &RunArgs) -> anyhow::Result<()> {
    let settings = config.campaign();
    let flows = load_flows(&args.flows)?;
    let at = args.at.as_deref().map(parse_instant).transpose()?;
    let mut model_dir = augur_model::resolve_model_dir(&args.models)?;
    let mut artifact = Artifact::load(&args.models)?;
    augur_flows::check_flows(&settings, &flows, &artifact)?;
    let store = EventStore::open(&config.events.store)?;
    let turns = tick_lock(&state_path(&settings))?;
    // Opening creates or upgrades the state and the outbox: one process at a time, like a tick.
    turns
        .lock()
        .context("waiting for another `augur flows run` on this state")?;
    let opened = FlowState::open(&state_path(&settings))
        .map_err(anyhow::Error::from)
        .and_then(|state| Ok((state, Outbox::open(&settings.campaigns.outbox)?)));
    turns.unlock().ok();
    let (mut state, mut outbox) = opened?;
    let mut directory = Directory::open(&settings)?;
    outln!(
        "augur flows: {} flows ({}), model {}, events from {}",
        flows.len(),
        flows.iter().map(Flow::id).collect::<Vec<_>>().join(", "),
        artifact.manifest.version,
        config.events.store.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let transport = if args.send {
        Some(augur_campaign::Transport::new(&settings)?)
    } else {
        None
    };
    loop {
        if directory.is_stale_for(&settings) {
            directory = Directory::open(&settings)?;
        }
        let newest = augur_model::resolve_model_dir(&args.models)?;
        if newest != model_dir {
            let loaded = Artifact::load(&args.models)?;
            model_dir = newest;
            // A model whose fields no longer fit a flow's entry rule is not taken: the series
            // go on with the model they started with, and the operator is told why.
            match augur_flows::check_flows(&settings, &flows, &loaded) {
                Ok(()) => {
                    artifact = loaded;
                    tracing::info!(model = %artifact.manifest.version, "newer model loaded");
                }
                Err(e) => tracing::error!(
                    model = %loaded.manifest.version,
                    "newer model not loaded, the flows keep model {}: {e}",
                    artifact.manifest.version
                ),
            }
        }
        let runner = Runner {
            settings: &settings,
            flows: &flows,
            artifact: &artifact,
            directory: &directory,
            store: &store,
        };
        let now = at.unwrap_or_else(|| chrono::Utc::now().timestamp());
        // Waits while another `flows run` on this state ticks: the two take turns, and each
        // tick starts from what the other stored instead of doing the same work beside it.
        turns
            .lock()
            .context("waiting for another `augur flows run` on this state")?;
        let started = std::time::Instant::now();
        let report = augur_flows::tick(&runner, &mut state, &mut outbox, now);
        turns.unlock().ok();
        let report = report?;
        print_tick(&report, now, started.elapsed().as_secs_f64());
        if let Some(transport) = &transport {
            let options = augur_campaign::SendOptions {
                until: Until::DueNow,
                resend_unknown: false,
            };
            runtime.block_on(augur_campaign::send(
                &settings,
                &mut outbox,
                transport,
                &options,
            ))?;
        }
        if args.once {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(args.interval.max(0.1)));
    }
}

/// The lock file beside the flow state (`flows.sqlite.lock`) whose exclusive lock a tick holds.
fn tick_lock(state: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// `reason n, reason n` of counts by reason.
fn list<N: std::fmt::Display>(counts: &std::collections::BTreeMap<String, N>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per tick that did anything, with how long the tick took (seconds; the exports and
/// the model are read before it, once per change).
fn print_tick(r: &TickReport, at: i64, seconds: f64) {
    let quiet = r.events_read == 0
        && r.triggered == 0
        && r.entered == 0
        && r.queued == 0
        && r.completed == 0
        && r.exited.is_empty()
        && r.skipped.is_empty()
        && r.suppressed.is_empty();
    if quiet {
        return;
    }
    let when = chrono::DateTime::<chrono::Utc>::from_timestamp(at, 0)
        .map_or_else(|| at.to_string(), |t| t.to_rfc3339());
    outln!(
        "tick {when} ({seconds:.2} s): events {}, triggered {}, entered {} (held out {}), queued {}, completed {}; skipped [{}]; exited [{}]; not sent [{}]",
        r.events_read,
        r.triggered,
        r.entered,
        r.held_out,
        r.queued,
        r.completed,
        list(&r.skipped),
        list(&r.exited),
        list(&r.suppressed)
    );
}

fn report(args: &FlowReportArgs) -> anyhow::Result<()> {
    let config = Settings::load(args.config.config.as_deref())?;
    let settings = config.campaign();
    let flows = load_flows(&args.flows)?;
    let flow = flows
        .iter()
        .find(|f| f.id() == args.flow)
        .with_context(|| {
            format!(
                "no flow `{}` in {}; flows: {}",
                args.flow,
                args.flows.display(),
                flows.iter().map(Flow::id).collect::<Vec<_>>().join(", ")
            )
        })?;
    let state = FlowState::open(&state_path(&settings))?;
    let outbox = Outbox::open(&settings.campaigns.outbox)?;
    let store = if config.events.store.exists() {
        Some(EventStore::open(&config.events.store)?)
    } else {
        None
    };
    let r = augur_flows::report(&settings, flow, &state, &outbox, store.as_ref())?;
    let out = args.out.clone().unwrap_or_else(|| {
        settings
            .campaigns
            .outbox
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
            .join("reports")
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(format!("flow-{}.json", r.flow));
    std::fs::write(&path, serde_json::to_string_pretty(&r)?)
        .with_context(|| format!("writing {}", path.display()))?;
    outln!(
        "Flow {}: entered {} (held out {}), active {}, completed {}; exited [{}]; did not enter [{}]",
        r.flow,
        r.entered,
        r.held_out,
        r.active,
        r.completed,
        list(&r.exited),
        list(&r.skipped)
    );
    outln!(
        "  {:<20} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "step",
        "planned",
        "sent",
        "not sent",
        "opened",
        "clicked"
    );
    for s in &r.steps {
        outln!(
            "  {:<20} {:>8} {:>8} {:>10} {:>8} {:>8}",
            s.step,
            s.planned,
            s.sent,
            s.suppressed,
            s.opened,
            s.clicked
        );
    }
    outln!(
        "  conversions within {} days of entering: mailed {} ({:.2} revenue), held out {} ({:.2} revenue)",
        r.attribution_days,
        r.converted,
        r.revenue,
        r.holdout_converted,
        r.holdout_revenue
    );
    match &r.uplift {
        Some(u) => outln!(
            "  uplift: {:+.2} pp, 95 % CI [{:+.2}, {:+.2}] pp, p = {:.3}",
            100.0 * u.difference,
            100.0 * u.ci95[0],
            100.0 * u.ci95[1],
            u.p_value
        ),
        None => outln!("  uplift: none to show (no holdout, or no conversion on either side yet)"),
    }
    if let Some(recovered) = r.revenue_recovered {
        outln!("  revenue recovered (above the holdout's rate): {recovered:.2}");
    }
    outln!("Report: {}", path.display());
    Ok(())
}
