//! `augur report list` on a small hand-made history whose weekly figures are counted by hand.

use std::sync::Arc;

use arrow::array::{BooleanArray, StringArray, TimestampSecondArray};
use serde_json::Value;

use crate::util::{Dir, run, stdout, write_parquet};

const DAY: i64 = 86_400;
/// The report's instant: 2026-03-02T00:00:00Z. Weeks: [T−21d, T−14d), [T−14d, T−7d), [T−7d, T).
const T: i64 = 1_772_409_600;

fn timestamps(values: &[Option<i64>]) -> Arc<TimestampSecondArray> {
    Arc::new(TimestampSecondArray::from(values.to_vec()).with_timezone("UTC"))
}

#[test]
fn weekly_growth_and_engagement_bands_equal_a_hand_count() {
    let dir = Dir::new();
    // c1: listed long ago, clicked 10 days before T.
    // c2: joined in week 2, opened by a human in week 2.
    // c3: joined in week 3, never engaged (new).
    // c4: listed long ago, unsubscribed in week 1 (consent now false: still counted as leaving).
    // c5: listed long ago, bounced in week 3.
    // c6: listed long ago, only a machine open 5 days before T, a human open 100 days before:
    //     inactive, not inactive for 180 days.
    // c7: never consented, no events: never on the list.
    // c8: listed long ago, opened (human) 60 days before T: 46, 53 and 60 days before the
    //     weeks' ends, moderately engaged in all three.
    // c9: listed long ago, complained in week 2.
    let ids = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];
    let long_ago = Some(T - 400 * DAY);
    write_parquet(
        &dir.join("contacts.parquet"),
        vec![
            ("contact_id", Arc::new(StringArray::from(ids.to_vec())) as _),
            (
                "created_at",
                timestamps(&[
                    long_ago,
                    Some(T - 10 * DAY),
                    Some(T - 3 * DAY),
                    long_ago,
                    long_ago,
                    long_ago,
                    long_ago,
                    long_ago,
                    long_ago,
                ]) as _,
            ),
            (
                "email_consent",
                Arc::new(BooleanArray::from(vec![
                    true, true, true, false, true, true, false, true, true,
                ])) as _,
            ),
        ],
    );
    let events: [(&str, &str, i64, bool); 8] = [
        ("c1", "click", T - 10 * DAY, false),
        ("c2", "open", T - 9 * DAY, false),
        ("c4", "unsubscribe", T - 20 * DAY, false),
        ("c5", "bounce", T - 2 * DAY, false),
        ("c6", "open", T - 5 * DAY, true),
        ("c6", "open", T - 100 * DAY, false),
        ("c8", "open", T - 60 * DAY, false),
        ("c9", "complaint", T - 12 * DAY, false),
    ];
    write_parquet(
        &dir.join("email_events.parquet"),
        vec![
            (
                "contact_id",
                Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.0))) as _,
            ),
            (
                "event",
                Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.1))) as _,
            ),
            (
                "occurred_at",
                timestamps(&events.iter().map(|e| Some(e.2)).collect::<Vec<_>>()) as _,
            ),
            (
                "machine_open",
                Arc::new(BooleanArray::from(
                    events.iter().map(|e| e.3).collect::<Vec<_>>(),
                )) as _,
            ),
        ],
    );
    dir.write(
        "augur.toml",
        "[tables.contacts]\npath = \"contacts.parquet\"\n[tables.email_events]\npath = \"email_events.parquet\"\n\
         [campaigns]\noutbox = \"out/augur.sqlite\"\n",
    );
    let out = run(dir.augur().args([
        "report",
        "list",
        "--at",
        "2026-03-02T00:00:00Z",
        "--weeks",
        "3",
        "--out",
        "list",
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("list-health.html"));
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("list/list-health.json")).expect("json"),
    )
    .expect("parse");
    let weeks = json["weeks"].as_array().expect("weeks");
    assert_eq!(weeks.len(), 3);
    let row = |w: usize, fields: &[&str]| -> Vec<i64> {
        fields
            .iter()
            .map(|f| weeks[w][*f].as_i64().unwrap_or_else(|| panic!("{f}")))
            .collect()
    };
    let growth = [
        "list_at_start",
        "joined",
        "unsubscribed",
        "bounced",
        "complained",
        "net",
        "list_at_end",
    ];
    // Listed from the start: c1, c4, c5, c6, c8, c9 (c2, c3 join later; c7 never).
    assert_eq!(row(0, &growth), [6, 0, 1, 0, 0, -1, 5], "week 1: c4 leaves");
    assert_eq!(
        row(1, &growth),
        [5, 1, 0, 0, 1, 0, 5],
        "week 2: c2 joins, c9 leaves"
    );
    assert_eq!(
        row(2, &growth),
        [5, 1, 0, 1, 0, 0, 5],
        "week 3: c3 joins, c5 bounces"
    );
    let rate = weeks[0]["growth_rate"].as_f64().expect("rate");
    assert!((rate - (-1.0 / 6.0)).abs() < 1e-12, "{rate}");
    let bands = [
        "engaged",
        "moderately_engaged",
        "inactive",
        "inactive_180",
        "new",
    ];
    // Week 1 ends T−14d: c1 (click at T−10d is later) not engaged yet → inactive, never
    // engaged → also inactive 180; c5, c9 inactive 180; c6 human open 86 days before → moderate;
    // c8 open 46 days before → moderate.
    assert_eq!(row(0, &bands), [0, 2, 3, 3, 0]);
    // Week 2 ends T−7d: c1 and c2 engaged; c6 (93 days) inactive but not 180; c8 moderate;
    // c5 inactive 180 (c9 left).
    assert_eq!(row(1, &bands), [2, 1, 2, 1, 0]);
    // Week 3 ends T: c1, c2 engaged; c8 moderate; c6 inactive; c3 new (c5 left).
    assert_eq!(row(2, &bands), [2, 1, 1, 0, 1]);
    let html = std::fs::read_to_string(dir.join("list/list-health.html")).expect("html");
    assert_eq!(html.matches("<svg").count(), 2, "two charts");
}
