//! A/B tests that pick their winner (`[test]` in a campaign file; `augur campaign decide`).
//!
//! A plan sends the variants to a stable share of the audience and keeps the rest
//! `awaiting_test`. From `decide_after` on, each call compares the variants on the test's metric
//! among the messages already sent, as the exports record what followed (human opens, clicks,
//! attributed orders, revenue per e-mail): the probability that each variant is the best one,
//! from its posterior (Beta for a rate, normal for a mean; see [`crate::stats`]). A variant wins
//! when every variant has `min_per_variant` recipients and its probability reaches `confidence`.
//! Until `decide_by`, a test without a clear winner waits; at `decide_by` the default variant is
//! chosen and the decision says it was not clear. The decision and its evidence are recorded
//! with the remainder's plan in one transaction, once: deciding again changes nothing.
//!
//! Every look between `decide_after` and `decide_by` is a chance to be fooled by noise; the
//! narrower that span and the higher the confidence, the fewer false winners
//! (`docs/campaigns.md`).

use std::collections::HashMap;

use serde::Serialize;

use crate::attribution;
use crate::error::{Error, Result};
use crate::message::digest_hex;
use crate::outbox::{Decided, Decision, Outbox, RunTest, Status};
use crate::plan::{Inputs, plan_contacts};
use crate::spec::Metric;
use crate::stats::{Belief, probability_to_be_best};

/// Joint draws behind each probability to be best.
const DRAWS: usize = 20_000;

/// One variant's figures in a decision.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct VariantEvidence {
    /// Variant.
    pub variant: String,
    /// Messages sent before the decision.
    pub recipients: u64,
    /// Recipients who opened (human), clicked or ordered; for revenue, those who ordered.
    pub successes: u64,
    /// The metric: a rate (posterior mean) or revenue per recipient.
    pub estimate: f64,
    /// Probability that this variant is the best.
    pub probability_best: f64,
}

/// What a decision was made on.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Evidence {
    /// The metric.
    pub metric: String,
    /// As of (UTC seconds): only events before it counted.
    pub at: i64,
    /// Per variant.
    pub variants: Vec<VariantEvidence>,
    /// Recipients each variant needed.
    pub min_per_variant: u32,
    /// Probability to be best a winner needed.
    pub confidence: f64,
}

/// What one run's test came to.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verdict {
    /// Before `decide_after`: nothing looked at.
    TooEarly {
        /// The run.
        run_id: String,
        /// When a decision may first be made (UTC seconds).
        decide_after: i64,
    },
    /// No clear winner yet; the test goes on until `decide_by`.
    Waiting {
        /// The run.
        run_id: String,
        /// The latest decision (UTC seconds).
        decide_by: i64,
        /// The figures so far.
        evidence: Evidence,
    },
    /// Decided now, or earlier (`already`).
    Decided {
        /// The run.
        run_id: String,
        /// The variant the rest gets.
        winner: String,
        /// Whether it cleared the bar.
        clear: bool,
        /// In words.
        why: String,
        /// Decided by an earlier call: nothing changed now.
        already: bool,
        /// Contacts planned with the winner now (queued; the rest were suppressed).
        planned: usize,
        /// The figures.
        evidence: Option<Evidence>,
    },
}

/// Decides the open A/B tests of `inputs.campaign` as of `inputs.at`, plans each decided
/// test's remainder with its winner and records both; returns one verdict per run with a test.
///
/// # Errors
/// The exports or the outbox cannot be read, or the recorded winner is no longer a variant of
/// the campaign file.
pub fn decide(inputs: &Inputs<'_>, outbox: &mut Outbox) -> Result<Vec<Verdict>> {
    let campaign = inputs.campaign;
    let tests = outbox.run_tests(campaign.id())?;
    if tests.is_empty() {
        return Ok(Vec::new());
    }
    let history = attribution::load(inputs.config)?;
    let mut verdicts = Vec::new();
    for test in tests {
        verdicts.push(decide_run(inputs, outbox, &history, test)?);
    }
    Ok(verdicts)
}

/// The verdict of one run's test, acted on.
fn decide_run(
    inputs: &Inputs<'_>,
    outbox: &mut Outbox,
    history: &augur_data::History,
    test: RunTest,
) -> Result<Verdict> {
    let at = inputs.at.timestamp();
    let RunTest {
        run_id,
        test: record,
        decision,
        ..
    } = test;
    if let Some(d) = decision {
        // Contacts a plan stored as waiting after the decision get the recorded winner.
        let planned = plan_waiting(inputs, outbox, &run_id, &d)?.planned;
        return Ok(recorded(run_id, &record.default_variant, &d, planned));
    }
    if at < record.decide_after {
        return Ok(Verdict::TooEarly {
            run_id,
            decide_after: record.decide_after,
        });
    }
    let metric = Metric::parse(&record.metric).ok_or_else(|| {
        Error::outbox(
            outbox.path(),
            format!("run {run_id}: unknown test metric `{}`", record.metric),
        )
    })?;
    let variants: Vec<String> = inputs
        .campaign
        .file
        .variants
        .iter()
        .map(|v| v.name.clone())
        .collect();
    let evidence = evidence(inputs, outbox, history, &run_id, metric, &variants, at)?;
    let evidence = Evidence {
        min_per_variant: record.min_per_variant,
        confidence: record.confidence,
        ..evidence
    };
    let enough = evidence
        .variants
        .iter()
        .all(|v| v.recipients >= u64::from(record.min_per_variant));
    let best = evidence
        .variants
        .iter()
        .max_by(|a, b| a.probability_best.total_cmp(&b.probability_best))
        .filter(|b| enough && b.probability_best >= record.confidence);
    let (winner, clear) = match best {
        Some(b) => (b.variant.clone(), true),
        None if at >= record.decide_by => (record.default_variant.clone(), false),
        None => {
            return Ok(Verdict::Waiting {
                run_id,
                decide_by: record.decide_by,
                evidence,
            });
        }
    };
    let decision = Decision {
        decided_at: at,
        winner,
        clear,
        evidence: serde_json::to_string(&evidence).map_err(|e| Error::outbox(outbox.path(), e))?,
    };
    let done = plan_waiting(inputs, outbox, &run_id, &decision)?;
    if !done.recorded_now {
        // Another process decided meanwhile: its decision stands.
        let standing = outbox
            .run_tests(inputs.campaign.id())?
            .into_iter()
            .find(|t| t.run_id == run_id)
            .and_then(|t| t.decision)
            .unwrap_or(decision);
        return Ok(recorded(run_id, &record.default_variant, &standing, 0));
    }
    Ok(Verdict::Decided {
        why: why(clear, &record.default_variant),
        run_id,
        winner: decision.winner,
        clear,
        already: false,
        planned: done.planned,
        evidence: Some(evidence),
    })
}

/// Plans the run's waiting contacts with `decision`'s winner and stores them with it (see
/// [`Outbox::decide`]: a decision recorded before stands).
fn plan_waiting(
    inputs: &Inputs<'_>,
    outbox: &mut Outbox,
    run_id: &str,
    decision: &Decision,
) -> Result<Decided> {
    let waiting = outbox.awaiting_test(run_id)?;
    if waiting.is_empty() {
        return outbox.decide(run_id, decision, &[]);
    }
    let winner = &decision.winner;
    let index = inputs
        .campaign
        .file
        .variants
        .iter()
        .position(|v| v.name == *winner)
        .ok_or_else(|| Error::Campaign {
            path: inputs.campaign.path.clone(),
            message: format!(
                "[test] the decision of run {run_id} is variant `{winner}`, which the campaign file no longer has; restore it"
            ),
        })?;
    let rows = plan_contacts(
        inputs,
        outbox,
        run_id,
        Some(index),
        &waiting,
        std::collections::HashMap::new(),
    )?;
    outbox.decide(run_id, decision, &rows)
}

/// The verdict of a decision made before.
fn recorded(run_id: String, default: &str, d: &Decision, planned: usize) -> Verdict {
    Verdict::Decided {
        why: why(d.clear, default),
        run_id,
        winner: d.winner.clone(),
        clear: d.clear,
        already: true,
        planned,
        evidence: serde_json::from_str(&d.evidence).ok(),
    }
}

/// A decision in words.
fn why(clear: bool, default: &str) -> String {
    if clear {
        "the winner reached the required probability to be best".into()
    } else {
        format!(
            "no clear winner by the deadline (too few recipients, or no variant reached the required probability): the default `{default}` is sent"
        )
    }
}

/// The test's figures per variant, as of `at`.
fn evidence(
    inputs: &Inputs<'_>,
    outbox: &Outbox,
    history: &augur_data::History,
    run_id: &str,
    metric: Metric,
    variants: &[String],
    at: i64,
) -> Result<Evidence> {
    let window = (inputs.config.campaigns.attribution_days * 86_400.0) as i64;
    let rows = outbox.campaign_rows(inputs.campaign.id())?;
    let mut starts: HashMap<u32, i64> = HashMap::new();
    let mut variant_of: HashMap<u32, usize> = HashMap::new();
    for r in rows.iter().filter(|r| r.run_id == run_id) {
        let (Some(sent_at), Some(v)) = (r.sent_at, variants.iter().position(|v| *v == r.group))
        else {
            continue;
        };
        if r.status != Status::Sent || sent_at > at {
            continue;
        }
        if let Some(c) = history.contacts.ids.get(&r.contact_id) {
            starts.insert(c, sent_at);
            variant_of.insert(c, v);
        }
    }
    let outcomes = attribution::outcomes(history, inputs.campaign.id(), &starts, window, Some(at));
    let mut n = vec![0u64; variants.len()];
    let mut x = vec![0u64; variants.len()];
    let mut sum = vec![0.0; variants.len()];
    let mut sum_squares = vec![0.0; variants.len()];
    for (c, v) in &variant_of {
        n[*v] += 1;
        let Some(o) = outcomes.get(c) else {
            continue;
        };
        let success = match metric {
            Metric::HumanOpens => o.opened,
            Metric::Clicks => o.clicked,
            Metric::Orders | Metric::RevenuePerEmail => o.converted(),
        };
        x[*v] += u64::from(success);
        sum[*v] += o.revenue;
        sum_squares[*v] += o.revenue * o.revenue;
    }
    let beliefs: Vec<Belief> = (0..variants.len())
        .map(|v| match metric {
            Metric::RevenuePerEmail => Belief::mean(sum[v], sum_squares[v], n[v]),
            _ => Belief::Rate { x: x[v], n: n[v] },
        })
        .collect();
    let seed = u64::from_str_radix(&digest_hex(&[run_id, metric.name()], 8), 16).unwrap_or(0);
    let best = probability_to_be_best(&beliefs, DRAWS, seed);
    Ok(Evidence {
        metric: metric.name().to_string(),
        at,
        variants: variants
            .iter()
            .enumerate()
            .map(|(v, name)| VariantEvidence {
                variant: name.clone(),
                recipients: n[v],
                successes: x[v],
                estimate: beliefs[v].estimate(),
                probability_best: best[v],
            })
            .collect(),
        min_per_variant: 0,
        confidence: 0.0,
    })
}
