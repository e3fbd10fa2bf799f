//! A/B tests that pick their winner, and campaign figures per group, through the real binary:
//! the test's share is sent (to `.eml` files), engagement is planted in the e-mail events
//! export as an e-mail platform would write it, and `augur campaign decide --at` decides.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{BooleanArray, StringArray, TimestampMicrosecondArray};
use serde_json::Value;

use crate::campaign::{augur_ok, number_after, setup};
use crate::util::{Dir, write_parquet};

/// A test on `metric` over half the mailed audience, decidable from 1 h to 24 h after the plan.
fn test_section(metric: &str, default: &str) -> String {
    format!(
        "[test]\nshare = 0.5\nmetric = \"{metric}\"\ndecide_after_hours = 1\ndecide_by_hours = 24\n\
         confidence = 0.95\nmin_per_variant = 30\n{default}"
    )
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    contact: String,
    status: String,
    variant: Option<String>,
    send_at: i64,
    sent_at: Option<i64>,
    subject: Option<String>,
}

/// Every message row of the test's outbox, by contact.
fn outbox(dir: &Dir) -> BTreeMap<String, Row> {
    let db = rusqlite::Connection::open(dir.join("outbox/augur.sqlite")).expect("outbox");
    let mut stmt = db
        .prepare("SELECT contact_id, status, variant, send_at, sent_at, subject FROM messages")
        .expect("query");
    stmt.query_map([], |r| {
        Ok(Row {
            contact: r.get(0)?,
            status: r.get(1)?,
            variant: r.get(2)?,
            send_at: r.get(3)?,
            sent_at: r.get(4)?,
            subject: r.get(5)?,
        })
    })
    .expect("rows")
    .map(|r| {
        let r = r.expect("row");
        (r.contact.clone(), r)
    })
    .collect()
}

/// Writes e-mail events of campaign `now` (contact, event, instant, machine open) as one more
/// file of the e-mail events table.
fn plant(dir: &Dir, file: &str, events: &[(String, &str, i64, bool)]) {
    let micros = |t: i64| t * 1_000_000;
    write_parquet(
        &dir.join(&format!("demo/email_events/{file}.parquet")),
        vec![
            (
                "contact_id",
                Arc::new(StringArray::from_iter_values(events.iter().map(|e| &e.0))) as _,
            ),
            (
                "campaign_id",
                Arc::new(StringArray::from(vec!["now"; events.len()])) as _,
            ),
            (
                "event",
                Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.1))) as _,
            ),
            (
                "occurred_at",
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(events.iter().map(|e| micros(e.2)))
                        .with_timezone("UTC"),
                ) as _,
            ),
            (
                "machine_open",
                Arc::new(BooleanArray::from_iter(events.iter().map(|e| Some(e.3)))) as _,
            ),
        ],
    );
}

/// Recipients of `variant`, sorted.
fn recipients(rows: &BTreeMap<String, Row>, variant: &str) -> Vec<String> {
    rows.values()
        .filter(|r| r.status == "sent" && r.variant.as_deref() == Some(variant))
        .map(|r| r.contact.clone())
        .collect()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .expect("instant")
        .to_rfc3339()
}

/// `augur campaign decide --campaign c.toml --at T`: its output.
fn decide(dir: &Dir, at: i64) -> String {
    augur_ok(
        dir,
        &[
            "campaign",
            "decide",
            "--campaign",
            "c.toml",
            "--at",
            &rfc3339(at),
        ],
    )
}

/// Plans `c.toml` as of an hour ago and sends what is due: the test's share, to `.eml` files.
/// Returns the plan's output and the instant the sends were made.
fn plan_and_send_the_test(dir: &Dir) -> (String, i64) {
    let planned_at = chrono::Utc::now().timestamp() - 3600;
    let plan = augur_ok(
        dir,
        &[
            "campaign",
            "plan",
            "--campaign",
            "c.toml",
            "--at",
            &rfc3339(planned_at),
        ],
    );
    augur_ok(dir, &["campaign", "send"]);
    (plan, planned_at)
}

#[test]
fn a_variant_with_clearly_more_clicks_wins_and_the_rest_is_planned_with_it_once() {
    let dir = setup(None, &test_section("clicks", ""), "");
    let (plan, planned_at) = plan_and_send_the_test(&dir);
    let waiting = number_after(&plan, "awaiting the test");
    let before = outbox(&dir);
    let (a, b) = (recipients(&before, "a"), recipients(&before, "b"));
    assert!(a.len() >= 30 && b.len() >= 30, "{} / {}", a.len(), b.len());
    assert_eq!(
        before
            .values()
            .filter(|r| r.status == "awaiting_test")
            .count(),
        waiting
    );
    assert!(waiting > a.len(), "half the mailed audience waits: {plan}");

    // b's recipients click far more often than a's.
    let click_at = chrono::Utc::now().timestamp() + 600;
    let mut events: Vec<(String, &str, i64, bool)> = Vec::new();
    for (i, c) in b.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        events.push((c.clone(), "click", click_at + i as i64, false));
    }
    for c in a.iter().step_by(20) {
        events.push((c.clone(), "click", click_at, false));
    }
    plant(&dir, "clicks", &events);

    // Too early: an hour before the first decision, nothing changes.
    let early = decide(&dir, planned_at + 1800);
    assert!(early.contains("too early"), "{early}");
    assert_eq!(outbox(&dir), before);

    let decided_at = click_at + 3600;
    let out = decide(&dir, decided_at);
    assert!(out.contains("`b` is sent to the rest"), "{out}");
    let after = outbox(&dir);
    let remainder: Vec<&Row> = after
        .values()
        .filter(|r| before[&r.contact].status == "awaiting_test")
        .collect();
    assert_eq!(remainder.len(), waiting);
    let queued: Vec<&&Row> = remainder.iter().filter(|r| r.status == "queued").collect();
    assert!(!queued.is_empty());
    assert!(
        remainder
            .iter()
            .all(|r| r.status == "queued" || r.status == "suppressed"),
        "every waiting contact is planned or suppressed"
    );
    for r in &queued {
        assert_eq!(r.variant.as_deref(), Some("b"), "{r:?}");
        assert!(r.send_at >= decided_at, "sent after the decision: {r:?}");
        assert!(
            r.subject
                .as_deref()
                .is_some_and(|s| s.ends_with("new picks"))
        );
    }
    // The test's own messages are untouched.
    for (c, r) in &before {
        if r.status != "awaiting_test" {
            assert_eq!(&after[c], r);
        }
    }

    // Deciding again, later and with more evidence, changes nothing.
    plant(
        &dir,
        "more-clicks",
        &a.iter()
            .map(|c| (c.clone(), "click", decided_at + 60, false))
            .collect::<Vec<_>>(),
    );
    let again = decide(&dir, decided_at + 7200);
    assert!(again.contains("decided before: `b`"), "{again}");
    assert_eq!(outbox(&dir), after);

    // The report names the decision; per-group tables add up to the campaign.
    let report = augur_ok(
        &dir,
        &["campaign", "report", "--campaign", "now", "--out", "r"],
    );
    assert!(report.contains("`b` won on clicks"), "{report}");
    for by in ["churn_tier", "country", "send_time_source"] {
        let out = augur_ok(
            &dir,
            &[
                "campaign",
                "report",
                "--campaign",
                "now",
                "--by",
                by,
                "--out",
                "r",
            ],
        );
        assert!(out.contains("uplift over the group's holdout"), "{out}");
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(&format!("r/by-{by}.json"))).expect("json"),
        )
        .expect("parse");
        let groups = json["groups"].as_array().expect("groups");
        assert!(!groups.is_empty());
        for field in [
            "audience",
            "holdout",
            "sent",
            "opened",
            "clicked",
            "converted",
            "orders",
        ] {
            let sum: u64 = groups.iter().map(|g| g[field].as_u64().expect(field)).sum();
            assert_eq!(
                sum,
                json["total"][field].as_u64().expect(field),
                "{by} {field}"
            );
        }
        // Every contact who clicked counts once: half of b's, and all of a's by now.
        let clicked = json["total"]["clicked"].as_u64().expect("clicks");
        assert_eq!(clicked as usize, b.len().div_ceil(2) + a.len());
    }
    let segments = augur_ok(
        &dir,
        &[
            "campaign",
            "report",
            "--campaign",
            "now",
            "--by",
            "segment",
            "--out",
            "r",
        ],
    );
    assert!(segments.contains("segments overlap"), "{segments}");
}

#[test]
fn equal_variants_have_no_winner_and_machine_opens_never_tip_it() {
    let dir = setup(None, &test_section("human_opens", "default = \"b\"\n"), "");
    let (_, planned_at) = plan_and_send_the_test(&dir);
    let before = outbox(&dir);
    let (a, b) = (recipients(&before, "a"), recipients(&before, "b"));
    // Every third recipient of each variant opens; every recipient of `a` also has a machine
    // open (a privacy proxy fetching the message), which would make `a` win if it counted.
    let open_at = chrono::Utc::now().timestamp() + 600;
    let mut events: Vec<(String, &str, i64, bool)> = Vec::new();
    for list in [&a, &b] {
        for c in list.iter().step_by(3) {
            events.push((c.clone(), "open", open_at + 120, false));
        }
    }
    for c in &a {
        events.push((c.clone(), "open", open_at, true));
    }
    plant(&dir, "opens", &events);

    let waiting = decide(&dir, open_at + 3600);
    assert!(waiting.contains("no clear winner yet"), "{waiting}");
    assert_eq!(outbox(&dir), before, "an undecided test changes nothing");

    // At the deadline the default goes to the rest, and the decision says it was not clear.
    let deadline = planned_at + 24 * 3600;
    let out = decide(&dir, deadline);
    assert!(
        out.contains("`b` is sent to the rest (no clear winner"),
        "{out}"
    );
    let after = outbox(&dir);
    let planned: Vec<&Row> = after
        .values()
        .filter(|r| before[&r.contact].status == "awaiting_test" && r.status == "queued")
        .collect();
    assert!(!planned.is_empty());
    assert!(planned.iter().all(|r| r.variant.as_deref() == Some("b")));
    let report = augur_ok(
        &dir,
        &["campaign", "report", "--campaign", "now", "--out", "r"],
    );
    assert!(
        report.contains("no clear winner on human_opens; the default `b` was sent"),
        "{report}"
    );
}

#[test]
fn a_test_needs_two_variants_and_a_known_default() {
    let dir = setup(None, &test_section("clicks", "default = \"c\"\n"), "");
    let out = crate::util::run(
        dir.augur()
            .args(["campaign", "plan", "--campaign", "c.toml"]),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = crate::util::stderr(&out);
    assert!(
        err.contains("c.toml")
            && err.contains("[test] default = `c` is not one of the [[variants]]"),
        "{err}"
    );
}
