//! Every timestamp form of the contract, through a real Parquet file and the loader.

use std::sync::Arc;

use arrow::array::{
    Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    TimestampSecondArray,
};
use augur_data::{Config, EmailEventKind};

use crate::util::{Dir, write_parquet};

const T: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z, a Tuesday

fn load_events(dir: &Dir, occurred_at: arrow::array::ArrayRef, extra: &str) -> Vec<i64> {
    let n = occurred_at.len();
    write_parquet(
        &dir.join("email.parquet"),
        vec![
            (
                "contact_id",
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
            ),
            ("event", Arc::new(StringArray::from(vec!["open"; n]))),
            ("occurred_at", occurred_at),
        ],
    );
    let config = Config::from_toml(
        &format!("[data]\ntimezone = \"America/New_York\"\n[tables.email_events]\npath = \"email.parquet\"\n{extra}"),
        dir.path(),
    )
    .expect("config");
    let (history, report) = augur_data::load(&config).expect("load");
    assert!(!report.is_fatal(), "{}", report.render_text());
    let events = &history.email_events;
    assert!(events.kind.iter().all(|k| *k == EmailEventKind::Open));
    // Sorted by time; return in contact order to compare with the input rows.
    let mut by_contact: Vec<(u32, i64)> = events
        .contact
        .iter()
        .copied()
        .zip(events.at.iter().copied())
        .collect();
    by_contact.sort_unstable();
    by_contact
        .into_iter()
        .map(|(c, at)| {
            assert_eq!(history.contacts.ids.name(c), c.to_string());
            at
        })
        .collect()
}

#[test]
fn zoned_parquet_timestamps_are_instants() {
    let dir = Dir::new();
    let a = TimestampMicrosecondArray::from(vec![T * 1_000_000]).with_timezone("Asia/Tokyo");
    assert_eq!(load_events(&dir, Arc::new(a), ""), vec![T]);
}

#[test]
fn naive_parquet_timestamps_use_the_configured_zone() {
    let dir = Dir::new();
    let a = TimestampSecondArray::from(vec![T]);
    // 22:13:20 wall clock in New York (UTC-5 in November) is 03:13:20 UTC the next day.
    assert_eq!(load_events(&dir, Arc::new(a), ""), vec![T + 5 * 3600]);
}

#[test]
fn integer_epochs_infer_or_take_their_unit() {
    let dir = Dir::new();
    let a = Int64Array::from(vec![T, T * 1000, T * 1_000_000]);
    assert_eq!(load_events(&dir, Arc::new(a), ""), vec![T, T, T]);
    let dir = Dir::new();
    let a = Int64Array::from(vec![T]);
    let got = load_events(&dir, Arc::new(a), "timestamp_unit = \"ms\"\n");
    assert_eq!(got, vec![T / 1000]);
}

#[test]
fn integer_calendar_dates_are_dates_not_seconds_of_1970() {
    let dir = Dir::new();
    // 1997-01-01 and 2023-11-14, midnight in New York (UTC-5): as seconds, August 1970.
    let a = Int64Array::from(vec![19_970_101, 20_231_114]);
    assert_eq!(
        load_events(&dir, Arc::new(a), ""),
        vec![852_094_800, 1_699_938_000]
    );
    // Written as floats (a pandas integer column with a gap) they are dates too.
    let dir = Dir::new();
    let a = Float64Array::from(vec![19_970_101.0]);
    assert_eq!(load_events(&dir, Arc::new(a), ""), vec![852_094_800]);
}

#[test]
fn float_epochs() {
    let dir = Dir::new();
    let a = Float64Array::from(vec![T as f64 + 0.75]);
    assert_eq!(load_events(&dir, Arc::new(a), ""), vec![T]);
}

#[test]
fn iso_strings_with_and_without_offset() {
    let dir = Dir::new();
    let a = StringArray::from(vec![
        "2023-11-14T22:13:20Z",
        "2023-11-14T23:13:20+01:00",
        "2023-11-14 17:13:20",
    ]);
    assert_eq!(load_events(&dir, Arc::new(a), ""), vec![T, T, T]);
}

#[test]
fn offsets_as_exporters_print_them() {
    let dir = Dir::new();
    let a = StringArray::from(vec![
        "2023-11-14 22:13:20.123456+00",
        "2023-11-15 00:13:20+02",
        "2023-11-14 15:13:20-07",
        "2023-11-14T22:13+00:00",
        "2023-11-14T22:13:20 +0000",
        "2023-11-15T03:58:20+05:45",
        "2023-11-14t22:13:20z",
    ]);
    assert_eq!(
        load_events(&dir, Arc::new(a), ""),
        vec![T, T, T, T - 20, T, T, T]
    );
}

#[test]
fn custom_format_strings() {
    let dir = Dir::new();
    let a = StringArray::from(vec!["14/11/2023 17:13"]);
    let got = load_events(&dir, Arc::new(a), "timestamp_format = \"%d/%m/%Y %H:%M\"\n");
    assert_eq!(got, vec![T - 20]);
}

#[test]
fn parquet_dates_are_local_midnight() {
    let dir = Dir::new();
    let days = (T / 86_400) as i32; // 2023-11-14
    let a = Date32Array::from(vec![days]);
    assert_eq!(
        load_events(&dir, Arc::new(a), ""),
        vec![i64::from(days) * 86_400 + 5 * 3600]
    );
}
