//! One tick of the series: read the events that are new since the last tick and store the
//! triggers they fire; let due triggers enter (or not: entry rule, re-entry, holdout); move
//! every due enrollment through its steps until it waits, sends or ends.
//!
//! Exactly once: a trigger is an enrollment unique per flow, contact and trigger, stored with
//! the cursor in one transaction. A send step's message goes to the outbox under a run id made
//! of the flow, the step and the day it fell due (`winback-reminder-2026-11-30`), unique per
//! contact there; the enrollment moves on only after the message is stored. A crash between
//! the two leaves the enrollment at its send step, and the next tick stores the same message
//! again, which the outbox ignores. (So a contact gets a flow's step at most once a day.)

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use augur_campaign::{Inputs, Outbox, Run, Status, Suppression, TriggerProduct, Window};
use augur_data::EmailEventKind;
use augur_events::{Body, EventStore, Stored};
use augur_model::Fields;
use augur_segment::Matcher;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::runner::{Runner, TickReport};
use crate::spec::{Condition, Flow, Step, Target, Trigger};
use crate::state::{Enrollment, FlowState, Triggered};

/// Events read per batch.
const READ_BATCH: usize = 10_000;
/// Enrollments handled per batch.
const DUE_BATCH: usize = 50_000;

/// A stable number in `[0, 1)` for a purpose and some keys.
fn unit(keys: &[&str]) -> f64 {
    let mut hasher = Sha256::new();
    for k in keys {
        hasher.update(k.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) as f64 / 2f64.powi(64)
}

/// Whether the entry of `contact` into `flow` by `trigger_id` falls in the flow's holdout
/// (a stable hash: the same on every tick and every machine).
pub fn in_holdout(flow: &Flow, contact: &str, trigger_id: &str) -> bool {
    unit(&[flow.id(), "holdout", contact, trigger_id]) < flow.file.entry.holdout
}

/// Runs one tick as of `at` (Unix seconds).
///
/// # Errors
/// The event store, the state or the outbox cannot be read or written, or a step's message
/// cannot be planned.
pub fn tick(
    runner: &Runner<'_>,
    state: &mut FlowState,
    outbox: &mut Outbox,
    at: i64,
) -> Result<TickReport> {
    let mut report = TickReport::default();
    read_triggers(runner, state, &mut report)?;
    crate::scan::scan(runner, state, at, &mut report)?;
    crate::catalog::scan(runner, state, at, &mut report)?;
    let mut admission = Admission::default();
    loop {
        let pending = state.due("pending", at, DUE_BATCH)?;
        if pending.is_empty() {
            break;
        }
        let mut changed = Vec::with_capacity(pending.len());
        for mut e in pending {
            enter(runner, state, &mut admission, &mut e, &mut report)?;
            if e.entered_at.is_some() {
                let key = (e.flow_id.clone(), e.contact_id.clone());
                admission.entered.insert(key, e.clone());
            }
            changed.push(e);
        }
        state.save(&changed)?;
        admission.entered.clear();
    }
    // Each round moves every due enrollment to its next wait or send; a send is stored, then
    // the enrollment goes on in the next round. The rounds are bounded: a branch that loops
    // without a wait ends its enrollment instead of the tick.
    let max_steps = runner
        .flows
        .iter()
        .map(|f| f.steps.len())
        .max()
        .unwrap_or(0);
    for _ in 0..=(2 * max_steps + 2) {
        let due = state.due("active", at, DUE_BATCH)?;
        if due.is_empty() {
            break;
        }
        advance(runner, state, outbox, due, at, &mut report)?;
    }
    Ok(report)
}

/// Reads the events stored since the cursor and stores the triggers they fire.
fn read_triggers(
    runner: &Runner<'_>,
    state: &mut FlowState,
    report: &mut TickReport,
) -> Result<()> {
    loop {
        let events = runner.store.after(state.cursor()?, READ_BATCH)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(());
        };
        report.events_read += events.len();
        let triggered: Vec<Triggered> = events
            .iter()
            .flat_map(|e| runner.flows.iter().filter_map(move |f| fires(runner, f, e)))
            .collect();
        report.triggered += state.enroll(&triggered, last)?;
    }
}

/// The trigger `event` fires for `flow`, if it does.
fn fires(runner: &Runner<'_>, flow: &Flow, stored: &Stored) -> Option<Triggered> {
    let e = &stored.event;
    let (trigger_id, due_at) = match (&flow.trigger, &e.body) {
        (Trigger::Web(kind, within), Body::Web { event, .. }) if event == kind => {
            (e.event_id.clone(), e.occurred_at + within.unwrap_or(0))
        }
        (Trigger::Order, Body::Order { order_id, .. }) => (
            format!("order:{}", order_id.as_deref().unwrap_or(&e.event_id)),
            e.occurred_at,
        ),
        (
            Trigger::Signup,
            Body::Contact {
                email_consent: Some(true),
                ..
            },
        ) if !consented_before(runner, &e.contact_id) => ("signup".to_string(), e.occurred_at),
        _ => return None,
    };
    Some(Triggered {
        flow_id: flow.id().to_string(),
        contact_id: e.contact_id.clone(),
        trigger_id,
        triggered_at: e.occurred_at,
        due_at,
        product_id: e.body.product().map(str::to_string),
        product_was: None,
    })
}

/// Whether the model knew the contact with consent already (then a consent event is no
/// sign-up).
fn consented_before(runner: &Runner<'_>, contact: &str) -> bool {
    let snapshot = &runner.artifact.snapshot;
    let consent = augur_model::FLAGS
        .iter()
        .position(|f| *f == "email_consent")
        .unwrap_or(0);
    snapshot
        .contact(contact)
        .is_some_and(|c| snapshot.flag(consent, c) == Some(true))
}

/// What the entry checks of one tick keep from one enrollment to the next.
#[derive(Default)]
struct Admission {
    /// Enrollments entered in the batch being checked, by flow and contact: the state holds
    /// them only once the batch is saved, and two triggers of one contact often fall due
    /// together (two viewed products back in stock in the same tick).
    entered: HashMap<(String, String), Enrollment>,
    /// The model's fields, which entry rules read.
    fields: Option<Fields>,
    /// Each flow's compiled entry rule by flow id (`None`: the segment it names does not
    /// exist). Compiling a rule, or the segment catalogue it names, costs more than checking
    /// it, so it is done once per tick instead of once per enrollment.
    rules: HashMap<String, Option<Matcher>>,
}

impl Admission {
    /// Whether the contact passes the flow's entry segment or rule (a contact the model does
    /// not know passes only a flow without one).
    fn passes(&mut self, runner: &Runner<'_>, flow: &Flow, contact: &str) -> Result<bool> {
        let entry = &flow.file.entry;
        if entry.segment.is_none() && entry.rule.is_none() {
            return Ok(true);
        }
        let snapshot = &runner.artifact.snapshot;
        let Some(c) = snapshot.contact(contact) else {
            return Ok(false);
        };
        let fields = self.fields.get_or_insert_with(|| Fields::new(snapshot));
        let matcher = match self.rules.entry(flow.id().to_string()) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(match &entry.rule {
                Some(rule) => Some(rule.compile(&fields.schema).map_err(|e| Error::Flow {
                    path: flow.path.clone(),
                    message: format!("[entry] {e}"),
                })?),
                None => match &entry.segment {
                    Some(name) => crate::scan::segment_matcher(runner, fields, name)?,
                    None => None,
                },
            }),
        };
        let Some(matcher) = matcher else {
            return Ok(false);
        };
        let models = runner.artifact.models();
        Ok(matcher.matches(&fields.record(snapshot, &models, c)))
    }
}

/// The entry checks of a due trigger: ordered within the trigger's `within`, already in the
/// flow, re-entry, entry rule, then the holdout.
fn enter(
    runner: &Runner<'_>,
    state: &FlowState,
    admission: &mut Admission,
    e: &mut Enrollment,
    report: &mut TickReport,
) -> Result<()> {
    let Some(flow) = runner.flows.iter().find(|f| f.id() == e.flow_id) else {
        return skip(e, "flow_removed", report);
    };
    if matches!(flow.trigger, Trigger::Web(_, Some(_)))
        && ordered(runner.store, &e.contact_id, e.triggered_at, e.next_at)?
    {
        return skip(e, "ordered", report);
    }
    let mine: Vec<Enrollment> = state
        .of_contact(&e.contact_id)?
        .into_iter()
        .filter(|o| o.flow_id == e.flow_id && o.id != e.id)
        .chain(
            admission
                .entered
                .get(&(e.flow_id.clone(), e.contact_id.clone()))
                .cloned(),
        )
        .collect();
    if mine.iter().any(|o| o.state == "active") {
        return skip(e, "already_in_flow", report);
    }
    let last_entry = mine.iter().filter_map(|o| o.entered_at).max();
    let blocked = match (flow.reentry, last_entry) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(after), Some(t)) => e.next_at - t < after,
    };
    if blocked {
        return skip(e, "reentry", report);
    }
    if !admission.passes(runner, flow, &e.contact_id)? {
        return skip(e, "entry_rule", report);
    }
    e.entered_at = Some(e.next_at);
    e.step_at = Some(e.next_at);
    report.entered += 1;
    if in_holdout(flow, &e.contact_id, &e.trigger_id) {
        e.state = "holdout".into();
        report.held_out += 1;
    } else {
        e.state = "active".into();
    }
    Ok(())
}

fn skip(e: &mut Enrollment, reason: &str, report: &mut TickReport) -> Result<()> {
    e.state = "skipped".into();
    e.reason = Some(reason.into());
    *report.skipped.entry(reason.into()).or_default() += 1;
    Ok(())
}

/// Whether the contact ordered in `[from, to]`, by the live events.
fn ordered(store: &EventStore, contact: &str, from: i64, to: i64) -> Result<bool> {
    Ok(store
        .of_contact(contact, from, to.saturating_add(1))?
        .iter()
        .any(|s| matches!(s.event.body, Body::Order { .. })))
}

/// Whether the contact opened (humanly) or clicked the flow's messages in `[from, to]`.
fn engaged(
    store: &EventStore,
    contact: &str,
    flow: &str,
    from: i64,
    to: i64,
    kind: EmailEventKind,
) -> Result<bool> {
    Ok(store
        .of_contact(contact, from, to.saturating_add(1))?
        .iter()
        .any(|s| match &s.event.body {
            Body::Email {
                event,
                campaign_id,
                machine_open,
            } => *event == kind && !machine_open && campaign_id.as_deref() == Some(flow),
            _ => false,
        }))
}

/// A send step waiting to be planned: the enrollment (index in the round) and its run.
struct Pending {
    index: usize,
    run_id: String,
    flow: usize,
    step: usize,
}

/// Moves each due enrollment to its next wait or send, then plans and stores the sends.
fn advance(
    runner: &Runner<'_>,
    state: &mut FlowState,
    outbox: &mut Outbox,
    mut due: Vec<Enrollment>,
    at: i64,
    report: &mut TickReport,
) -> Result<()> {
    let mut sends: Vec<Pending> = Vec::new();
    let mut sunsets: Vec<augur_events::Event> = Vec::new();
    let max_hops = 2 * runner
        .flows
        .iter()
        .map(|f| f.steps.len())
        .max()
        .unwrap_or(0)
        + 2;
    for (index, e) in due.iter_mut().enumerate() {
        let Some((fi, flow)) = runner
            .flows
            .iter()
            .enumerate()
            .find(|(_, f)| f.id() == e.flow_id)
        else {
            exit(e, "flow_removed", report);
            continue;
        };
        let mut hops = 0;
        loop {
            hops += 1;
            if hops > max_hops {
                exit(e, "branch_loop", report);
                break;
            }
            let Some(step) = flow.steps.get(e.step) else {
                e.state = "completed".into();
                report.completed += 1;
                break;
            };
            match step {
                Step::Wait {
                    seconds,
                    best_hour_within,
                } => {
                    let base = e.step_at.unwrap_or(e.next_at) + seconds;
                    let t = leave_at(runner, flow, &e.contact_id, base, *best_hour_within);
                    e.step += 1;
                    e.step_at = Some(t);
                    e.next_at = t;
                    if t > at {
                        break;
                    }
                }
                Step::Sunset => {
                    let entered = e.entered_at.unwrap_or(e.triggered_at);
                    let answered = [EmailEventKind::Open, EmailEventKind::Click]
                        .into_iter()
                        .map(|kind| {
                            engaged(runner.store, &e.contact_id, flow.id(), entered, at, kind)
                        })
                        .collect::<Result<Vec<bool>>>()?
                        .contains(&true);
                    if answered {
                        e.step += 1;
                    } else {
                        sunsets.push(sunset_event(flow, e, at));
                        exit(e, "sunset", report);
                        break;
                    }
                }
                Step::Branch {
                    condition,
                    then,
                    otherwise,
                } => {
                    let holds = condition_holds(runner, flow, e, *condition, at)?;
                    match if holds { then } else { otherwise } {
                        Target::Step(i) => e.step = *i,
                        Target::End => e.step = flow.steps.len(),
                    }
                }
                Step::Send(_) => {
                    if let Some(reason) = exit_reason(runner, state, flow, e, at)? {
                        exit(e, reason, report);
                        break;
                    }
                    let day = DateTime::<Utc>::from_timestamp(e.next_at, 0)
                        .map_or_else(|| "0".into(), |d| d.format("%Y-%m-%d").to_string());
                    let name = &flow.file.steps[e.step].name;
                    sends.push(Pending {
                        index,
                        run_id: format!("{}-{name}-{day}", flow.id()),
                        flow: fi,
                        step: e.step,
                    });
                    break;
                }
            }
        }
    }
    plan_sends(runner, outbox, &mut due, &sends, at, report)?;
    if !sunsets.is_empty() {
        // Stored before the enrollments: a crash in between stores the same events again
        // (their ids are deterministic), never loses them.
        EventStore::open(runner.store.path())?.append(&sunsets, at)?;
    }
    state.save(&due)
}

/// The `unsubscribe` event that ends a contact's mail after a series it never answered; its id
/// is the enrollment's, so storing it twice stores it once.
fn sunset_event(flow: &Flow, e: &Enrollment, at: i64) -> augur_events::Event {
    augur_events::Event {
        event_id: format!("sunset:{}:{}", flow.id(), e.id),
        contact_id: e.contact_id.clone(),
        occurred_at: at,
        body: Body::Email {
            event: EmailEventKind::Unsubscribe,
            campaign_id: Some(flow.id().to_string()),
            machine_open: false,
        },
    }
}

fn exit(e: &mut Enrollment, reason: &str, report: &mut TickReport) {
    e.state = "exited".into();
    e.reason = Some(reason.into());
    *report.exited.entry(reason.into()).or_default() += 1;
}

/// Why the enrollment must leave before its next message, if it must: an order since entry
/// (when the flow says so), an opt-out or withdrawn consent, a flow of higher priority.
fn exit_reason(
    runner: &Runner<'_>,
    state: &FlowState,
    flow: &Flow,
    e: &Enrollment,
    at: i64,
) -> Result<Option<&'static str>> {
    let entered = e.entered_at.unwrap_or(e.triggered_at);
    if flow.file.exit.on_order && ordered(runner.store, &e.contact_id, entered, at)? {
        return Ok(Some("ordered"));
    }
    let d = runner.directory.contact(&e.contact_id);
    // The contact's own choices end a series when they stop all of it for good: unsubscribed
    // from everything, or the series' topic turned off. A pause or a frequency choice does not
    // end it: the step that falls in it is planned as suppressed (`paused`,
    // `frequency_choice`) and the series goes on to the next one.
    let chosen = runner
        .directory
        .choice(&e.contact_id, flow.file.topic.as_deref(), i64::MAX, [])
        .filter(|s| matches!(s, Suppression::Unsubscribed | Suppression::TopicOptOut));
    if let Some(s) = runner
        .directory
        .suppression(d, flow.file.entry.require_consent)
        .or(chosen)
    {
        return Ok(Some(s.name()));
    }
    let higher = state.of_contact(&e.contact_id)?.iter().any(|o| {
        o.state == "active"
            && o.flow_id != flow.id()
            && runner
                .flows
                .iter()
                .find(|f| f.id() == o.flow_id)
                .is_some_and(|f| f.file.priority > flow.file.priority)
    });
    Ok(higher.then_some("higher_priority_flow"))
}

fn condition_holds(
    runner: &Runner<'_>,
    flow: &Flow,
    e: &Enrollment,
    condition: Condition,
    at: i64,
) -> Result<bool> {
    let since_send = e.last_sent_at.unwrap_or(i64::MAX);
    let entered = e.entered_at.unwrap_or(e.triggered_at);
    Ok(match condition {
        Condition::OpenedLast(want) => {
            engaged(
                runner.store,
                &e.contact_id,
                flow.id(),
                since_send,
                at,
                EmailEventKind::Open,
            )? == want
        }
        Condition::ClickedLast(want) => {
            engaged(
                runner.store,
                &e.contact_id,
                flow.id(),
                since_send,
                at,
                EmailEventKind::Click,
            )? == want
        }
        Condition::Ordered(want) => ordered(runner.store, &e.contact_id, entered, at)? == want,
    })
}

/// When a wait that ends at `base` lets the series go on: `base` itself (or the first
/// instant after the quiet hours), or the contact's best hour within `best_within` seconds.
fn leave_at(
    runner: &Runner<'_>,
    flow: &Flow,
    contact: &str,
    base: i64,
    best_within: Option<i64>,
) -> i64 {
    let Some(start) = DateTime::<Utc>::from_timestamp(base, 0) else {
        return base;
    };
    let snapshot = &runner.artifact.snapshot;
    let c = snapshot.contact(contact);
    let zone = match c {
        Some(c) => snapshot.timezone[c],
        None => runner.directory.contact(contact).map_or_else(
            || runner.settings.data.default_contact_zone(),
            |d| runner.directory.history.contacts.timezone[d as usize],
        ),
    };
    let models = runner.artifact.models();
    let (scores, source) = match (best_within, c) {
        (Some(_), Some(c)) => {
            let predicted = models.send_time.predict(snapshot.engagement(c));
            (
                models.send_time.send_scores(&predicted.profile),
                predicted.source.name(),
            )
        }
        (Some(_), None) => {
            let predicted = models.send_time.predict(augur_model::Engagement::Sparse {
                hours: &[],
                weights: &[],
            });
            (
                models.send_time.send_scores(&predicted.profile),
                predicted.source.name(),
            )
        }
        (None, _) => (Vec::new(), "wait"),
    };
    let window = Window {
        start: None,
        length: Duration::seconds(best_within.unwrap_or(0).max(3600)),
        quiet: flow.quiet,
        fallback_time: None,
    };
    let first = |w: Window| {
        w.choose(start, zone, &scores, source)
            .map(|(t, _)| t.timestamp())
    };
    first(window)
        // Every hour of the span is quiet: the first allowed instant after it.
        .or_else(|| {
            first(Window {
                length: Duration::hours(36),
                ..window
            })
        })
        .unwrap_or(base)
}

/// Plans the messages of the send steps reached this round, one run per flow, step and day,
/// stores them, and moves their enrollments past the step.
fn plan_sends(
    runner: &Runner<'_>,
    outbox: &mut Outbox,
    due: &mut [Enrollment],
    sends: &[Pending],
    at: i64,
    report: &mut TickReport,
) -> Result<()> {
    let mut groups: BTreeMap<(&str, usize, usize), Vec<&Pending>> = BTreeMap::new();
    for p in sends {
        groups
            .entry((p.run_id.as_str(), p.flow, p.step))
            .or_default()
            .push(p);
    }
    let now = DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default();
    for ((run_id, fi, si), members) in groups {
        let flow = &runner.flows[fi];
        let Step::Send(campaign) = &flow.steps[si] else {
            continue;
        };
        let contacts: Vec<String> = members
            .iter()
            .map(|p| due[p.index].contact_id.clone())
            .collect();
        let triggers = members
            .iter()
            .filter_map(|p| {
                let e = &due[p.index];
                let product = TriggerProduct {
                    product_id: e.product_id.clone()?,
                    previous_price: e.product_was,
                };
                Some((e.contact_id.clone(), product))
            })
            .collect();
        let inputs = Inputs {
            config: runner.settings,
            artifact: runner.artifact,
            campaign,
            directory: runner.directory,
            at: now,
        };
        let rows =
            augur_campaign::plan_contacts(&inputs, outbox, run_id, None, &contacts, triggers)?;
        let run = Run {
            run_id: run_id.to_string(),
            campaign_id: flow.id().to_string(),
            planned_for: at,
            window_end: rows.iter().map(|r| r.expires_at).max().unwrap_or(at),
            model_version: runner.artifact.manifest.version.clone(),
            sender: campaign.file.sender.from.clone(),
            reply_to: campaign.file.sender.reply_to.clone(),
            require_consent: campaign.file.audience.require_consent,
            cap: campaign.file.caps,
            topic: campaign.file.topic.clone(),
            test: None,
        };
        let inserted = outbox.insert_plan(&run, &rows)?;
        for (i, (p, row)) in members.iter().zip(&rows).enumerate() {
            let e = &mut due[p.index];
            if inserted.capped.contains(&i) {
                *report.suppressed.entry("frequency_cap".into()).or_default() += 1;
            } else if row.status == Status::Queued {
                report.queued += 1;
                e.last_sent_at = Some(row.send_at);
            } else {
                *report
                    .suppressed
                    .entry(row.reason.unwrap_or("other").to_string())
                    .or_default() += 1;
            }
            e.step += 1;
            e.step_at = Some(row.send_at.max(at));
            e.next_at = at;
        }
    }
    Ok(())
}
