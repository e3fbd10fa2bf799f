//! `augur campaign`: plan, send, run and report predictive campaigns.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use augur_campaign::Campaign;
use augur_campaign::Directory;
use augur_campaign::Outbox;
use augur_campaign::Settings as CampaignSettings;
use augur_campaign::{Dimension, Inputs, Summary, Verdict};
use augur_campaign::{SendOptions, SendReport, Transport, Until};
use augur_model::Artifact;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::ConfigArg;
use super::settings::Settings;
use super::train::parse_instant;

#[derive(Debug, Args)]
pub struct CampaignArgs {
    #[command(subcommand)]
    pub command: CampaignCommand,
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Select, suppress, schedule and render a run into the outbox (or preview it with --dry-run).
    Plan(PlanArgs),
    /// Deliver due messages from the outbox.
    Send(SendArgs),
    /// Plan, then send until the run's window closes.
    Run(PlanArgs),
    /// Per variant and holdout: sends, engagement, orders, revenue and uplift.
    Report(ReportArgs),
    /// Decide the campaign's A/B tests that are due and plan the rest with each winner.
    Decide(DecideArgs),
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The campaign file.
    #[arg(long)]
    pub campaign: PathBuf,
    /// Model directory (a version, or a parent with `current`).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Decide as of this instant (RFC 3339 or a date; default: now).
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The campaign file.
    #[arg(long)]
    pub campaign: PathBuf,
    /// Model directory (a version, or a parent with `current`).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Plan as of this instant (RFC 3339 or a date; default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Write the plan to Parquet and a few rendered .eml previews instead of the outbox.
    #[arg(long)]
    pub dry_run: bool,
    /// Where --dry-run writes (default: <outbox dir>/dry-run/<run id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Keep going until nothing is queued (retries included), instead of stopping when
    /// nothing more is due now.
    #[arg(long)]
    pub follow: bool,
    /// Send again messages whose outcome a crash left unknown (may duplicate them).
    #[arg(long)]
    pub resend_unknown: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Campaign id.
    #[arg(long)]
    pub campaign: String,
    /// Directory for report.json and report.html (default: <outbox dir>/reports/<id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Figures per group instead: variant, segment, churn_tier, country or send_time_source
    /// (as of the plan), each with the uplift over its own holdout; writes by-<group>.json.
    #[arg(long, value_parser = dimension)]
    pub by: Option<Dimension>,
}

fn dimension(raw: &str) -> Result<Dimension, String> {
    Dimension::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        format!("use one of {}", names.join(", "))
    })
}

pub fn run(args: &CampaignArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        CampaignCommand::Plan(a) => {
            plan(a)?;
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Send(a) => {
            let config = Settings::load(a.config.config.as_deref())?.campaign();
            let until = if a.follow {
                Until::Drained(None)
            } else {
                Until::DueNow
            };
            send(&config, until, a.resend_unknown)?;
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Run(a) => {
            let (config, summary) = plan(a)?;
            if a.dry_run {
                return Ok(ExitCode::SUCCESS);
            }
            if summary.awaiting_test > 0 {
                send_through_test(a, &config, &summary.run_id)?;
            }
            let outbox = Outbox::open(&config.campaigns.outbox)?;
            let end = outbox.window_end(&summary.run_id)?;
            drop(outbox);
            send(&config, Until::Drained(end), false)?;
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Report(a) => {
            match a.by {
                Some(by) => report_by(a, by)?,
                None => report(a)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Decide(a) => {
            let config = Settings::load(a.config.config.as_deref())?.campaign();
            decide(&config, &a.campaign, &a.models, at(a.at.as_deref())?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn at(raw: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match raw {
        None => Ok(Utc::now()),
        Some(r) => {
            let s = parse_instant(r)?;
            DateTime::from_timestamp(s, 0).context("--at is out of range")
        }
    }
}

/// Plans (or previews) a run and prints its summary.
pub fn plan(args: &PlanArgs) -> anyhow::Result<(CampaignSettings, Summary)> {
    let started = std::time::Instant::now();
    let config = Settings::load(args.config.config.as_deref())?.campaign();
    let campaign = Campaign::load(&args.campaign)?;
    let artifact = Artifact::load(&args.models)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "model loaded");
    let directory = Directory::open(&config)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "exports read");
    let at = at(args.at.as_deref())?;
    let mut outbox = Outbox::open(&config.campaigns.outbox)?;
    let inputs = Inputs {
        config: &config,
        artifact: &artifact,
        campaign: &campaign,
        directory: &directory,
        at,
    };
    let (summary, rows) = augur_campaign::plan(&inputs, &outbox)?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "planned and rendered"
    );
    let summary = if args.dry_run {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| outbox_dir(&config).join("dry-run").join(&summary.run_id));
        let envelope = augur_campaign::envelope(
            &config,
            &campaign,
            outbox.signing_key(config.campaigns.signing_key.as_deref())?,
        )?;
        let previews = augur_campaign::preview(&out, &rows, &envelope, campaign.id(), 5)?;
        outln!(
            "Dry run: plan written to {} with {previews} rendered previews (.eml); the outbox is unchanged.",
            out.display()
        );
        summary
    } else {
        augur_campaign::store_plan(&mut outbox, &inputs, summary, &rows)?
    };
    print_plan(&summary, args.dry_run, started.elapsed().as_secs_f64());
    if !args.dry_run {
        outln!("Outbox: {}", config.campaigns.outbox.display());
    }
    Ok((config, summary))
}

/// How often `campaign run` looks at an undecided A/B test.
const TEST_CHECK_SECONDS: i64 = 15 * 60;

/// `campaign run` of a campaign with an A/B test: sends the test's messages, and decides the
/// test as soon as it can (every [`TEST_CHECK_SECONDS`], from `decide_after` to `decide_by`),
/// sending meanwhile whatever falls due.
fn send_through_test(
    args: &PlanArgs,
    config: &CampaignSettings,
    run_id: &str,
) -> anyhow::Result<()> {
    loop {
        let now = Utc::now();
        let verdicts = decide(config, &args.campaign, &args.models, now)?;
        let next = verdicts.iter().find_map(|v| match v {
            Verdict::TooEarly {
                run_id: r,
                decide_after,
            } if r == run_id => Some(*decide_after),
            Verdict::Waiting {
                run_id: r,
                decide_by,
                ..
            } if r == run_id => Some((now.timestamp() + TEST_CHECK_SECONDS).min(*decide_by)),
            _ => None,
        });
        let Some(next) = next else {
            return Ok(());
        };
        send(config, Until::Drained(Some(next)), false)?;
        let wait = next - Utc::now().timestamp();
        if wait > 0 {
            std::thread::sleep(std::time::Duration::from_secs(wait.unsigned_abs()));
        }
    }
}

/// Decides the campaign's due A/B tests as of `at` and prints each verdict.
fn decide(
    config: &CampaignSettings,
    campaign: &Path,
    models: &Path,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<Verdict>> {
    let campaign = Campaign::load(campaign)?;
    let artifact = Artifact::load(models)?;
    let directory = Directory::open(config)?;
    let mut outbox = Outbox::open(&config.campaigns.outbox)?;
    let inputs = Inputs {
        config,
        artifact: &artifact,
        campaign: &campaign,
        directory: &directory,
        at,
    };
    let verdicts = augur_campaign::decide(&inputs, &mut outbox)?;
    if verdicts.is_empty() {
        outln!(
            "Campaign {} has no A/B test in the outbox (plan it with a [test] section first).",
            campaign.id()
        );
    }
    for v in &verdicts {
        print_verdict(v);
    }
    Ok(verdicts)
}

fn instant(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .map_or_else(|| seconds.to_string(), |t| t.to_rfc3339())
}

fn print_verdict(v: &Verdict) {
    match v {
        Verdict::TooEarly {
            run_id,
            decide_after,
        } => outln!(
            "Test of {run_id}: too early; the first decision is due at {}",
            instant(*decide_after)
        ),
        Verdict::Waiting {
            run_id,
            decide_by,
            evidence,
        } => {
            outln!(
                "Test of {run_id}: no clear winner yet; waiting until {} at the latest",
                instant(*decide_by)
            );
            print_evidence(Some(evidence));
        }
        Verdict::Decided {
            run_id,
            winner,
            why,
            already,
            planned,
            evidence,
            ..
        } => {
            if *already {
                outln!("Test of {run_id}: decided before: `{winner}` ({why}); nothing changed");
            } else {
                outln!(
                    "Test of {run_id}: `{winner}` is sent to the rest ({why}); {planned} messages planned, each at its contact's best hour"
                );
            }
            print_evidence(evidence.as_ref());
        }
    }
}

fn print_evidence(evidence: Option<&augur_campaign::Evidence>) {
    let Some(e) = evidence else {
        return;
    };
    outln!(
        "  {} as of {} (a winner needs {} recipients per variant and P(best) ≥ {}):",
        e.metric,
        instant(e.at),
        e.min_per_variant,
        e.confidence
    );
    for v in &e.variants {
        outln!(
            "  variant {:<12} recipients {:>7}  successes {:>6}  estimate {:>9.4}  P(best) {:.3}",
            v.variant,
            v.recipients,
            v.successes,
            v.estimate,
            v.probability_best
        );
    }
}

fn report_by(args: &ReportArgs, by: Dimension) -> anyhow::Result<()> {
    let config = Settings::load(args.config.config.as_deref())?.campaign();
    let outbox = Outbox::open(&config.campaigns.outbox)?;
    let b = augur_campaign::breakdown(&config, &outbox, &args.campaign, by)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| outbox_dir(&config).join("reports").join(&args.campaign));
    let path = augur_campaign::write_breakdown(&b, &out)?;
    outln!(
        "Campaign {} by {} (orders within {} days of sending; {}):",
        b.campaign,
        b.by,
        b.attribution_days,
        b.note
    );
    outln!(
        "  {:<20} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9} {:>7} {:>7}  uplift over the group's holdout",
        "group",
        "audience",
        "holdout",
        "sent",
        "open %",
        "click %",
        "conv %",
        "rev/email",
        "unsub %",
        "compl %"
    );
    for g in b.groups.iter().chain(std::iter::once(&b.total)) {
        let uplift = match (&g.uplift, &g.uplift_note) {
            (Some(u), _) => format!(
                "{:+.2} pp [{:+.2}, {:+.2}], p = {:.3}",
                100.0 * u.difference,
                100.0 * u.ci95[0],
                100.0 * u.ci95[1],
                u.p_value
            ),
            (None, Some(note)) => note.clone(),
            (None, None) => String::new(),
        };
        outln!(
            "  {:<20} {:>8} {:>8} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>9.3} {:>7.2} {:>7.2}  {uplift}",
            g.group,
            g.audience,
            g.holdout,
            g.sent,
            100.0 * g.open_rate,
            100.0 * g.click_rate,
            100.0 * g.conversion_rate,
            g.revenue_per_email,
            100.0 * g.unsubscribe_rate,
            100.0 * g.complaint_rate
        );
    }
    outln!("Figures: {}", path.display());
    Ok(())
}

fn outbox_dir(config: &CampaignSettings) -> PathBuf {
    config
        .campaigns
        .outbox
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn print_plan(s: &Summary, dry_run: bool, seconds: f64) {
    outln!(
        "Run {} (model {}), planned in {seconds:.1} s: audience {}, holdout {}, suppressed {}, messages {}{}",
        s.run_id,
        s.model_version,
        s.audience,
        s.holdout,
        s.suppressed.values().sum::<usize>(),
        s.messages(),
        if dry_run {
            String::new()
        } else if s.added == 0 {
            " (already planned: nothing added)".into()
        } else {
            format!(" ({} rows added to the outbox)", s.added)
        }
    );
    for (reason, n) in &s.suppressed {
        outln!("  suppressed {reason:<14} {n:>9}");
    }
    for (variant, n) in &s.variants {
        outln!("  variant {variant:<17} {n:>9}");
    }
    if s.awaiting_test > 0 {
        outln!(
            "  awaiting the test      {:>9}  (planned with the winner by `augur campaign decide`)",
            s.awaiting_test
        );
    }
    for (source, n) in &s.send_time_sources {
        outln!("  send time from {source:<10} {n:>9}");
    }
    let max = s.by_local_hour.iter().copied().max().unwrap_or(0).max(1);
    outln!("  send times by local hour:");
    for (h, n) in s.by_local_hour.iter().enumerate().filter(|(_, n)| **n > 0) {
        let bar = "#".repeat((40 * n).div_ceil(max));
        outln!("    {h:02}:00 {n:>9} {bar}");
    }
}

/// Sends and prints what happened.
pub fn send(
    config: &CampaignSettings,
    until: Until,
    resend_unknown: bool,
) -> anyhow::Result<SendReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let transport = Transport::new(config)?;
    let mut outbox = Outbox::open(&config.campaigns.outbox)?;
    outln!("Sending to {}", transport.describe());
    let options = SendOptions {
        until,
        resend_unknown,
    };
    let started = std::time::Instant::now();
    let report = runtime.block_on(augur_campaign::send(
        config,
        &mut outbox,
        &transport,
        &options,
    ))?;
    let seconds = started.elapsed().as_secs_f64();
    if report.recovered_in_doubt > 0 {
        if report.resent_in_doubt {
            outln!(
                "{} messages of unknown outcome were queued again (they may arrive twice)",
                report.recovered_in_doubt
            );
        } else {
            outln!(
                "{} messages were being sent when the last sender stopped; the server may have accepted them, so they are held as `unknown` \
                 (send them anyway with `augur campaign send --resend-unknown`)",
                report.recovered_in_doubt
            );
        }
    }
    outln!(
        "Sent {} in {seconds:.1} s ({:.0}/s); retried later {}, failed {}, suppressed at sending {}, expired {}, outcome unknown {}; {} `sent` events written",
        report.sent,
        report.sent as f64 / seconds.max(1e-9),
        report.retried,
        report.failed,
        report.suppressed,
        report.expired,
        report.unknown,
        report.events_logged
    );
    let counts = outbox.counts(None)?;
    let line: Vec<String> = counts
        .iter()
        .map(|(status, reason, n)| match reason {
            Some(r) => format!("{status} ({r}): {n}"),
            _ => format!("{status}: {n}"),
        })
        .collect();
    outln!("Outbox now: {}", line.join(", "));
    Ok(report)
}

fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let config = Settings::load(args.config.config.as_deref())?.campaign();
    let outbox = Outbox::open(&config.campaigns.outbox)?;
    let report = augur_campaign::report(&config, &outbox, &args.campaign)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| outbox_dir(&config).join("reports").join(&args.campaign));
    augur_campaign::write_report(&report, &out)?;
    outln!(
        "Campaign {} (orders within {} days of sending):",
        report.campaign,
        report.attribution_days
    );
    outln!(
        "  {:<10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>11} {:>9}",
        "group",
        "audience",
        "sent",
        "delivered",
        "bounced",
        "opened",
        "clicked",
        "unsubs",
        "orders",
        "revenue",
        "rev/email"
    );
    for g in &report.groups {
        outln!(
            "  {:<10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>11.2} {:>9.3}",
            g.group,
            g.audience,
            g.sent,
            g.delivered,
            g.bounced,
            g.opened,
            g.clicked,
            g.unsubscribed,
            g.orders,
            g.revenue,
            g.revenue_per_email
        );
    }
    if let Some(note) = &report.uplift_note {
        outln!("  uplift: {note}");
    }
    for u in &report.uplift {
        outln!(
            "  uplift {}: conversion {:.2} % vs holdout {:.2} % = {:+.2} pp, 95 % CI [{:+.2}, {:+.2}] pp, p = {:.3}",
            u.group,
            100.0 * u.rate,
            100.0 * u.holdout_rate,
            100.0 * u.difference,
            100.0 * u.ci95[0],
            100.0 * u.ci95[1],
            u.p_value
        );
    }
    for t in &report.tests {
        match (&t.winner, t.clear) {
            (Some(w), Some(true)) => outln!("  test of {}: `{w}` won on {}", t.run_id, t.metric),
            (Some(w), _) => outln!(
                "  test of {}: no clear winner on {}; the default `{w}` was sent",
                t.run_id,
                t.metric
            ),
            (None, _) => outln!(
                "  test of {}: undecided; decided on {} between {} and {}",
                t.run_id,
                t.metric,
                instant(t.decide_after),
                instant(t.decide_by)
            ),
        }
    }
    outln!("Report: {}", out.join("report.html").display());
    Ok(())
}
