//! The best instant to send inside a window: every local hour start in the window (and the
//! window's first instant) is a candidate, scored by the contact's send score for that local
//! hour of the week. Candidates are walked in UTC quarter hours and read in the contact's zone,
//! so daylight-saving changes need no special case: a skipped local hour never appears, a
//! repeated one appears twice with its two UTC instants.

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;

/// Longest window searched.
pub const MAX_WINDOW: Duration = Duration::days(14);

/// Local quiet hours, minutes after midnight: `[start, end)`, wrapping midnight if end < start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    start: u32,
    end: u32,
}

impl Quiet {
    /// Reads `HH:MM-HH:MM`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || format!("quiet: `{raw}` is not HH:MM-HH:MM (e.g. 21:00-08:00)");
        let (a, b) = raw.split_once('-').ok_or_else(bad)?;
        let minutes = |s: &str| -> Option<u32> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        Ok(Self { start, end })
    }

    /// Whether instant `at` is quiet in `zone`.
    pub fn contains_instant(self, at: DateTime<Utc>, zone: Tz) -> bool {
        let local = at.with_timezone(&zone);
        self.contains(local.hour() * 60 + local.minute())
    }

    /// Whether a local minute of the day is quiet.
    pub fn contains(self, minute: u32) -> bool {
        if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// Reads a duration such as `24h`, `90m`, `2d` or `3600s`.
pub fn parse_within(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let bad = || format!("within: `{raw}` is not a duration such as 24h, 90m, 2d or 3600s");
    let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = raw[..split].parse().map_err(|_| bad())?;
    let unit: i64 = match &raw[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let d = n
        .checked_mul(unit)
        .and_then(Duration::try_seconds)
        .unwrap_or(MAX_WINDOW + MAX_WINDOW);
    if d <= Duration::zero() || d > MAX_WINDOW {
        return Err(format!(
            "within: `{raw}` must be more than 0 and at most 14d"
        ));
    }
    Ok(d)
}

/// A candidate instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// When, in UTC.
    pub at: DateTime<Utc>,
    /// The contact's local hour of the week then (Monday 00:00 = 0).
    pub hour_of_week: usize,
    /// Send score of that hour.
    pub score: f64,
}

/// Candidates in `[after, after + within)` outside quiet hours, best first (ties: earlier).
pub fn ranked_slots(
    scores: &[f64],
    zone: Tz,
    after: DateTime<Utc>,
    within: Duration,
    quiet: Option<Quiet>,
) -> Vec<Slot> {
    let end = after + within;
    let quarter = 15 * 60;
    let first_quarter = after.timestamp().div_euclid(quarter) * quarter + quarter;
    let mut candidates = vec![after];
    let mut t = first_quarter;
    while t < end.timestamp() {
        if let Some(at) = DateTime::<Utc>::from_timestamp(t, 0)
            && at.with_timezone(&zone).minute() == 0
        {
            candidates.push(at);
        }
        t += quarter;
    }
    let mut slots: Vec<Slot> = candidates
        .into_iter()
        .filter(|at| !quiet.is_some_and(|q| q.contains_instant(*at, zone)))
        .map(|at| {
            let hour_of_week = augur_data::hour_of_week(at.timestamp(), zone);
            Slot {
                at,
                hour_of_week,
                score: scores.get(hour_of_week).copied().unwrap_or(0.0),
            }
        })
        .collect();
    slots.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.at.cmp(&b.at)));
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q = Quiet::parse("21:00-08:00").expect("parse");
        assert!(q.contains(22 * 60) && q.contains(7 * 60 + 59) && !q.contains(8 * 60));
        assert!(Quiet::parse("25:00-08:00").is_err() && Quiet::parse("nine").is_err());
    }

    #[test]
    fn best_local_hour_is_found_across_a_daylight_saving_change() {
        // Berlin leaves summer time on Sunday 2026-10-25 at 03:00 local (01:00 UTC).
        let zone: Tz = "Europe/Berlin".parse().expect("zone");
        let mut scores = vec![0.0; 168];
        scores[6 * 24 + 9] = 1.0; // Sunday 09:00 local
        let slots = ranked_slots(
            &scores,
            zone,
            utc("2026-10-24T12:00:00Z"),
            Duration::hours(36),
            None,
        );
        // After the change Berlin is UTC+1: 09:00 local is 08:00 UTC.
        assert_eq!(slots[0].at, utc("2026-10-25T08:00:00Z"));
        // The repeated local hour 02:00 appears twice, at two UTC instants.
        let twice = slots
            .iter()
            .filter(|s| s.hour_of_week == 6 * 24 + 2)
            .count();
        assert_eq!(twice, 2);
        // Spring forward: 2026-03-29 02:00 local does not exist.
        let spring = ranked_slots(
            &scores,
            zone,
            utc("2026-03-28T23:30:00Z"),
            Duration::hours(3),
            None,
        );
        assert!(spring.iter().all(|s| s.hour_of_week != 6 * 24 + 2));
    }

    #[test]
    fn quiet_hours_are_skipped_and_windows_parse() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        let mut scores = vec![0.5; 168];
        scores[2 * 24 + 22] = 1.0; // Wednesday 22:00 local, inside the quiet hours
        let quiet = Quiet::parse("21:00-08:00").ok();
        let slots = ranked_slots(
            &scores,
            zone,
            utc("2026-11-25T12:00:00Z"),
            Duration::hours(24),
            quiet,
        );
        assert!(slots.iter().all(|s| {
            let h = s.at.with_timezone(&zone).hour();
            (8..21).contains(&h)
        }));
        assert_eq!(parse_within("24h").expect("24h"), Duration::hours(24));
        assert!(parse_within("15d").is_err() && parse_within("h").is_err());
        assert!(
            parse_within("200000000000d").is_err()
                && parse_within("99999999999999999999s").is_err()
        );
    }
}
