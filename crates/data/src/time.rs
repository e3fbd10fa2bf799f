//! Instants: reading every timestamp form the contract accepts into UTC seconds, and the
//! local-time helpers (hour of week, naive wall-clock in a zone) shared by every later stage.
//!
//! Accepted forms, per column:
//! - Parquet timestamps with a zone (exact instants) or without one (wall-clock, read in the
//!   configured zone); Parquet dates (midnight, configured zone);
//! - integer or float epochs in s, ms, µs or ns — `timestamp_unit`, else inferred from the
//!   magnitude: below 10¹¹ seconds, below 10¹⁴ milliseconds, below 10¹⁷ microseconds, else nanoseconds;
//!   without `timestamp_unit`, a whole number in 19000101–21001231 is a calendar date
//!   `yyyymmdd` (midnight, configured zone; unparsable if no such date), not a second of 1970;
//! - strings: ISO-8601 / RFC 3339 with or without offset, with `T` or a space, or a bare date;
//!   or any `strftime` layout given as `timestamp_format` (which also applies to integers such as
//!   `19970101` with `%Y%m%d`).
//!
//! A wall-clock time that falls in a daylight-saving gap is moved forward by the gap; one that
//! occurs twice when clocks go back is read as the earlier instant.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Date64Type, Float64Type, Int64Type, TimeUnit};
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::config::EpochUnit;

/// Seconds per day.
pub const DAY: i64 = 86_400;
/// Seconds per hour.
pub const HOUR: i64 = 3_600;

/// Outcome of reading one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TimeStatus {
    /// Read.
    Ok,
    /// The value was null or empty.
    Null,
    /// The value could not be read as an instant.
    Unparsable,
}

/// A column of instants in UTC seconds, with the status of each row.
#[derive(Debug, Default)]
pub struct TimeColumn {
    /// UTC seconds since the epoch (0 where the status is not `Ok`).
    pub seconds: Vec<i64>,
    /// Per-row outcome.
    pub status: Vec<TimeStatus>,
    /// A few raw values that could not be read, for the report.
    pub bad_examples: Vec<String>,
}

impl TimeColumn {
    fn with_capacity(n: usize) -> Self {
        Self {
            seconds: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            bad_examples: Vec::new(),
        }
    }

    fn push(&mut self, value: Option<i64>, raw: impl FnOnce() -> String) {
        match value {
            Some(s) => {
                self.seconds.push(s);
                self.status.push(TimeStatus::Ok);
            }
            None => {
                self.seconds.push(0);
                self.status.push(TimeStatus::Unparsable);
                if self.bad_examples.len() < 3 {
                    self.bad_examples.push(raw());
                }
            }
        }
    }

    fn push_null(&mut self) {
        self.seconds.push(0);
        self.status.push(TimeStatus::Null);
    }
}

/// How to read one table's timestamp columns.
#[derive(Debug, Clone)]
pub struct TimeReader {
    zone: Tz,
    format: Option<String>,
    unit: Option<EpochUnit>,
}

impl TimeReader {
    /// A reader for naive values in `zone`, with an optional `strftime` format and epoch unit.
    pub fn new(zone: Tz, format: Option<String>, unit: Option<EpochUnit>) -> Self {
        Self { zone, format, unit }
    }

    /// Whether an Arrow type can hold instants for this reader.
    pub fn accepts(data_type: &DataType) -> bool {
        matches!(
            data_type,
            DataType::Null
                | DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
        ) || matches!(data_type, DataType::Dictionary(_, v) if Self::accepts(v))
    }

    /// Reads a column. The caller checks [`TimeReader::accepts`] first; other types yield all-unparsable.
    pub fn read(&self, array: &dyn Array) -> TimeColumn {
        let n = array.len();
        let mut out = TimeColumn::with_capacity(n);
        match array.data_type() {
            // An all-null column, as pandas writes a column of `None`.
            DataType::Null => (0..n).for_each(|_| out.push_null()),
            DataType::Timestamp(unit, zone) => {
                let values = cast_to::<Int64Type>(array, &DataType::Int64);
                let per_second = unit_per_second(*unit);
                for i in 0..n {
                    if values.is_null(i) {
                        out.push_null();
                        continue;
                    }
                    let v = values.value(i);
                    let secs = v.div_euclid(per_second);
                    let value = if zone.is_some() {
                        Some(secs)
                    } else {
                        self.naive_epoch_to_utc(secs)
                    };
                    out.push(value, || v.to_string());
                }
            }
            DataType::Date32 => {
                let days = array.as_primitive::<Date32Type>();
                for i in 0..n {
                    if days.is_null(i) {
                        out.push_null();
                        continue;
                    }
                    let d = i64::from(days.value(i));
                    out.push(self.naive_epoch_to_utc(d * DAY), || d.to_string());
                }
            }
            DataType::Date64 => {
                let ms = array.as_primitive::<Date64Type>();
                for i in 0..n {
                    if ms.is_null(i) {
                        out.push_null();
                        continue;
                    }
                    let v = ms.value(i);
                    out.push(self.naive_epoch_to_utc(v.div_euclid(1000)), || {
                        v.to_string()
                    });
                }
            }
            DataType::Float32 | DataType::Float64 if self.format.is_none() => {
                let values = cast_to::<Float64Type>(array, &DataType::Float64);
                for i in 0..n {
                    if values.is_null(i) {
                        out.push_null();
                        continue;
                    }
                    let v = values.value(i);
                    out.push(self.epoch_float(v), || v.to_string());
                }
            }
            t if t.is_integer() && self.format.is_none() => {
                let values = cast_to::<Int64Type>(array, &DataType::Int64);
                for i in 0..n {
                    if values.is_null(i) {
                        out.push_null();
                        continue;
                    }
                    let v = values.value(i);
                    out.push(self.epoch_int(v), || v.to_string());
                }
            }
            _ => {
                let strings = match arrow::compute::cast(array, &DataType::Utf8) {
                    Ok(s) => s,
                    Err(_) => {
                        for _ in 0..n {
                            out.push(None, || array.data_type().to_string());
                        }
                        return out;
                    }
                };
                let strings = strings.as_string::<i32>();
                for i in 0..n {
                    let raw = if strings.is_null(i) {
                        ""
                    } else {
                        strings.value(i).trim()
                    };
                    if raw.is_empty() {
                        out.push_null();
                        continue;
                    }
                    out.push(self.parse_str(raw), || raw.to_string());
                }
            }
        }
        out
    }

    fn epoch_int(&self, v: i64) -> Option<i64> {
        if self.unit.is_none() && CALENDAR_DATES.contains(&v) {
            let date = calendar_date(v)?;
            return self
                .naive_epoch_to_utc(date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
        }
        let per_second = match self.unit {
            Some(unit) => epoch_unit_per_second(unit),
            None => infer_per_second(v.unsigned_abs() as f64),
        };
        Some(v.div_euclid(per_second))
    }

    fn epoch_float(&self, v: f64) -> Option<i64> {
        if !v.is_finite() {
            return None;
        }
        // A pandas integer column with gaps is written as floats: `19970101.0` is still a date.
        #[allow(clippy::cast_possible_truncation)]
        if v.fract() == 0.0 && v.abs() < 1e15 {
            let whole = v as i64;
            if self.unit.is_none() && CALENDAR_DATES.contains(&whole) {
                return self.epoch_int(whole);
            }
        }
        let per_second = match self.unit {
            Some(unit) => epoch_unit_per_second(unit),
            None => infer_per_second(v.abs()),
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let secs = (v / per_second as f64).floor() as i64;
        Some(secs)
    }

    /// Interprets `secs` as wall-clock seconds (a naive timestamp) in the reader's zone.
    fn naive_epoch_to_utc(&self, secs: i64) -> Option<i64> {
        let naive = DateTime::from_timestamp(secs, 0)?.naive_utc();
        Some(naive_to_utc(&naive, self.zone))
    }

    /// Parses one string with the configured format, or as ISO-8601.
    pub fn parse_str(&self, raw: &str) -> Option<i64> {
        match &self.format {
            Some(format) => {
                if let Ok(dt) = DateTime::parse_from_str(raw, format) {
                    return Some(dt.timestamp());
                }
                if let Ok(naive) = NaiveDateTime::parse_from_str(raw, format) {
                    return Some(naive_to_utc(&naive, self.zone));
                }
                let date = NaiveDate::parse_from_str(raw, format).ok()?;
                Some(naive_to_utc(&date.and_hms_opt(0, 0, 0)?, self.zone))
            }
            None => parse_iso(raw, self.zone),
        }
    }
}

/// Reads an ISO-8601 date or date-time as UTC seconds; without an offset it is read in `zone`.
///
/// Accepted: a date (`2025-09-06`, local midnight), a date-time with `T` or a space, with or
/// without seconds and fractions (`2025-09-06 12:52`, `2025-09-06T12:52:00.123456`), and an
/// optional offset as exporters print it: `Z`, `+02:00`, `+0200`, the hour alone (`+02`, `-07`,
/// PostgreSQL's form), or any of them after a space.
pub fn parse_iso(raw: &str, zone: Tz) -> Option<i64> {
    let raw = raw.trim();
    let (local, offset) = split_offset(raw);
    let naive = parse_naive(local)?;
    Some(match offset {
        Some(offset) => naive.and_utc().timestamp() - offset,
        None => naive_to_utc(&naive, zone),
    })
}

/// The date-time without its offset, and the offset in seconds east of UTC, if one is written.
/// Only the part after the date is searched, so a date's own `-` is never taken for an offset.
fn split_offset(raw: &str) -> (&str, Option<i64>) {
    const DATE: usize = "2025-09-06".len();
    if raw.len() <= DATE || !raw.is_char_boundary(DATE) {
        return (raw, None);
    }
    let time = &raw[DATE..];
    if let Some(rest) = time.strip_suffix(['Z', 'z']) {
        return (raw[..DATE + rest.len()].trim_end(), Some(0));
    }
    let Some(sign_at) = time.rfind(['+', '-']) else {
        return (raw, None);
    };
    let sign = if time[sign_at..].starts_with('-') {
        -1
    } else {
        1
    };
    let digits: String = time[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i64>().ok();
    let (hours, minutes) = match digits.len() {
        2 if digits.bytes().all(|b| b.is_ascii_digit()) => (number(0..2), Some(0)),
        4 if digits.bytes().all(|b| b.is_ascii_digit()) => (number(0..2), number(2..4)),
        _ => return (raw, None),
    };
    match (hours, minutes) {
        (Some(h), Some(m)) if h <= 23 && m <= 59 => (
            raw[..DATE + sign_at].trim_end(),
            Some(sign * (h * 3600 + m * 60)),
        ),
        _ => (raw, None),
    }
}

/// A date-time without offset, or a date (its midnight). RFC 3339 allows a lowercase `t`.
fn parse_naive(local: &str) -> Option<NaiveDateTime> {
    if local.as_bytes().get(10) == Some(&b't') {
        return parse_naive(&local.replacen('t', "T", 1));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(local, format) {
            return Some(naive);
        }
    }
    NaiveDate::parse_from_str(local, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)
}

/// Reads a wall-clock time in `zone` as UTC seconds: gaps move forward, repeats take the earlier.
pub fn naive_to_utc(naive: &NaiveDateTime, zone: Tz) -> i64 {
    match zone.from_local_datetime(naive) {
        LocalResult::Single(dt) => dt.timestamp(),
        LocalResult::Ambiguous(earlier, _) => earlier.timestamp(),
        LocalResult::None => {
            // Inside a daylight-saving gap: the same wall-clock reading an hour later exists.
            let later = *naive + chrono::Duration::hours(1);
            match zone.from_local_datetime(&later) {
                LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt.timestamp(),
                LocalResult::None => naive.and_utc().timestamp(),
            }
        }
    }
}

/// Hour of the week in `zone` (0 = Monday 00:00–00:59 local, 167 = Sunday 23:00–23:59).
pub fn hour_of_week(utc_seconds: i64, zone: Tz) -> usize {
    let Some(dt) = DateTime::from_timestamp(utc_seconds, 0) else {
        return 0;
    };
    let local = dt.with_timezone(&zone);
    local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize
}

/// Fast local hour-of-week for many events: the UTC offset of each zone is looked up once per
/// UTC hour of the covered range, instead of once per event. Outside the range, or for a zone
/// it was not built for, it falls back to [`hour_of_week`]. (A transition that happens at a
/// half hour, as in Adelaide, is seen on the next whole hour.)
#[derive(Debug, Clone)]
pub struct LocalClock {
    first_hour: i64,
    zones: std::collections::HashMap<Tz, usize>,
    offsets: Vec<Vec<i32>>,
}

impl LocalClock {
    /// A clock for `zones` covering `[from, to)` (UTC seconds).
    pub fn new(zones: impl IntoIterator<Item = Tz>, from: i64, to: i64) -> Self {
        let first_hour = from.div_euclid(HOUR);
        let hours = usize::try_from((to.div_euclid(HOUR) - first_hour + 1).clamp(0, 24 * 366 * 30))
            .unwrap_or(0);
        let mut index = std::collections::HashMap::new();
        let mut offsets = Vec::new();
        for zone in zones {
            if index.contains_key(&zone) {
                continue;
            }
            index.insert(zone, offsets.len());
            let table = (0..hours)
                .map(|h| {
                    let t = (first_hour + h as i64) * HOUR;
                    DateTime::from_timestamp(t, 0).map_or(0, |dt| {
                        use chrono::Offset;
                        dt.with_timezone(&zone).offset().fix().local_minus_utc()
                    })
                })
                .collect();
            offsets.push(table);
        }
        Self {
            first_hour,
            zones: index,
            offsets,
        }
    }

    /// The clock's index of a zone, for [`LocalClock::hour_of_week_in`].
    pub fn zone_index(&self, zone: Tz) -> Option<usize> {
        self.zones.get(&zone).copied()
    }

    /// Hour of the week in `zone` (0 = Monday 00:00 local).
    pub fn hour_of_week(&self, utc_seconds: i64, zone: Tz) -> usize {
        match self.zone_index(zone) {
            Some(z) => self.hour_of_week_in(utc_seconds, z, zone),
            None => hour_of_week(utc_seconds, zone),
        }
    }

    /// [`LocalClock::hour_of_week`] with the zone's index already looked up.
    pub fn hour_of_week_in(&self, utc_seconds: i64, zone_index: usize, zone: Tz) -> usize {
        let slot = utc_seconds.div_euclid(HOUR) - self.first_hour;
        let offset = usize::try_from(slot)
            .ok()
            .and_then(|s| self.offsets[zone_index].get(s));
        match offset {
            Some(&offset) => {
                let local = utc_seconds + i64::from(offset);
                // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
                let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
                (weekday * 24 + local.rem_euclid(DAY) / HOUR) as usize
            }
            None => hour_of_week(utc_seconds, zone),
        }
    }
}

/// Formats UTC seconds as RFC 3339, for reports.
pub fn format_utc(utc_seconds: i64) -> String {
    DateTime::from_timestamp(utc_seconds, 0).map_or_else(
        || utc_seconds.to_string(),
        |dt| dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

fn cast_to<T: arrow::datatypes::ArrowPrimitiveType>(
    array: &dyn Array,
    to: &DataType,
) -> arrow::array::PrimitiveArray<T> {
    let casted = arrow::compute::cast(array, to)
        .unwrap_or_else(|_| arrow::array::new_null_array(to, array.len()));
    casted.as_primitive::<T>().clone()
}

fn unit_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

fn epoch_unit_per_second(unit: EpochUnit) -> i64 {
    match unit {
        EpochUnit::S => 1,
        EpochUnit::Ms => 1_000,
        EpochUnit::Us => 1_000_000,
        EpochUnit::Ns => 1_000_000_000,
    }
}

/// Integers read as calendar dates `yyyymmdd` of 1900–2100 (`19970101`), as exporters write
/// dates. As epoch seconds they would all fall between 9 August and 1 September 1970, when no
/// shop kept these records; one that is not a date (`19970230`) is unparsable, not 1970.
const CALENDAR_DATES: std::ops::RangeInclusive<i64> = 19_000_101..=21_001_231;

/// The date of an integer in [`CALENDAR_DATES`], if it is one.
fn calendar_date(v: i64) -> Option<NaiveDate> {
    let (year, month, day) = (v / 10_000, (v / 100) % 100, v % 100);
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)
}

fn infer_per_second(magnitude: f64) -> i64 {
    if magnitude < 1e11 {
        1
    } else if magnitude < 1e14 {
        1_000
    } else if magnitude < 1e17 {
        1_000_000
    } else {
        1_000_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
    use std::sync::Arc;

    const T: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn reader(zone: Tz) -> TimeReader {
        TimeReader::new(zone, None, None)
    }

    #[test]
    fn zoned_timestamps_are_exact() {
        let a = TimestampMillisecondArray::from(vec![Some(T * 1000), None]).with_timezone("+02:00");
        let col = reader(Tz::Europe__Berlin).read(&a);
        assert_eq!(col.seconds[0], T);
        assert_eq!(col.status[1], TimeStatus::Null);
    }

    #[test]
    fn naive_timestamps_use_the_zone() {
        let a = TimestampMillisecondArray::from(vec![T * 1000]);
        let col = reader(Tz::Europe__Berlin).read(&a);
        assert_eq!(col.seconds[0], T - 3600, "Berlin is UTC+1 in November");
    }

    #[test]
    fn epochs_in_every_unit() {
        let a = Int64Array::from(vec![T, T * 1000, T * 1_000_000, T * 1_000_000_000]);
        let col = reader(Tz::UTC).read(&a);
        assert_eq!(col.seconds, vec![T; 4]);
    }

    #[test]
    fn strings_iso_and_naive() {
        let a = Arc::new(StringArray::from(vec![
            Some("2023-11-14T22:13:20Z"),
            Some("2023-11-14T23:13:20+01:00"),
            Some("2023-11-14 23:13:20"),
            Some("2023-11-14"),
            Some("yesterday"),
            Some(""),
        ]));
        let col = reader(Tz::Europe__Berlin).read(a.as_ref());
        assert_eq!(col.seconds[..3], [T, T, T]);
        assert_eq!(col.seconds[3], T - (22 * 3600 + 13 * 60 + 20) - 3600);
        assert_eq!(col.status[4], TimeStatus::Unparsable);
        assert_eq!(col.bad_examples, vec!["yesterday".to_string()]);
        assert_eq!(col.status[5], TimeStatus::Null);
    }

    #[test]
    fn custom_format_for_strings_and_integers() {
        let r = TimeReader::new(Tz::UTC, Some("%m/%d/%Y %H:%M".into()), None);
        assert_eq!(r.parse_str("12/1/2010 8:26"), Some(1_291_191_960));
        let r = TimeReader::new(Tz::UTC, Some("%Y%m%d".into()), None);
        let col = r.read(&Int64Array::from(vec![19_970_101]));
        assert_eq!(col.seconds[0], 852_076_800);
    }

    #[test]
    fn daylight_saving_gap_and_repeat() {
        let gap = NaiveDate::from_ymd_opt(2024, 3, 31)
            .and_then(|d| d.and_hms_opt(2, 30, 0))
            .expect("valid");
        let after = NaiveDate::from_ymd_opt(2024, 3, 31)
            .and_then(|d| d.and_hms_opt(3, 30, 0))
            .expect("valid");
        assert_eq!(
            naive_to_utc(&gap, Tz::Europe__Berlin),
            naive_to_utc(&after, Tz::Europe__Berlin)
        );
        let repeat = NaiveDate::from_ymd_opt(2024, 10, 27)
            .and_then(|d| d.and_hms_opt(2, 30, 0))
            .expect("valid");
        assert_eq!(
            naive_to_utc(&repeat, Tz::Europe__Berlin),
            1_729_989_000,
            "earlier instant, UTC+2"
        );
    }

    #[test]
    fn local_clock_matches_chrono_across_daylight_saving() {
        let zones = [
            Tz::America__New_York,
            Tz::Asia__Kolkata,
            Tz::Europe__Berlin,
            Tz::Australia__Sydney,
            Tz::UTC,
        ];
        let (from, to) = (1_700_000_000 - 200 * DAY, 1_700_000_000 + 200 * DAY);
        let clock = LocalClock::new(zones, from, to);
        let mut t = from - 5 * DAY;
        while t < to + 5 * DAY {
            for z in zones {
                assert_eq!(clock.hour_of_week(t, z), hour_of_week(t, z), "{z} at {t}");
            }
            t += 1_777;
        }
    }

    #[test]
    fn hour_of_week_is_local() {
        // 2023-11-13 is a Monday; 08:00 in New York is 13:00 UTC.
        let monday_8am_ny = 1_699_880_400;
        assert_eq!(hour_of_week(monday_8am_ny, Tz::America__New_York), 8);
        assert_eq!(hour_of_week(monday_8am_ny, Tz::UTC), 13);
    }
}
