//! Each contact's send instant: the best hour of its send-time profile inside the campaign's
//! window, read in its own zone, outside quiet hours. Windows open at a local time ("the next
//! 24 h from 06:00 local"), so a Berlin and a New York contact get different UTC windows.
//! Daylight-saving changes are handled by walking real instants (see
//! [`augur_model::send_window`]); a window start that falls into a skipped hour opens at the
//! first instant after the gap.

use augur_model::{Quiet, ranked_slots};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The window settings of a campaign.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Local opening time; `None` = at planning time.
    pub start: Option<NaiveTime>,
    /// Length.
    pub length: Duration,
    /// Quiet hours.
    pub quiet: Option<Quiet>,
    /// Local time for contacts without own or cluster evidence.
    pub fallback_time: Option<NaiveTime>,
}

/// The first instant at or after `after` whose local time in `zone` is `time` (a time inside a
/// skipped hour opens when the gap ends; a repeated one at its first occurrence).
pub fn next_local(after: DateTime<Utc>, zone: Tz, time: NaiveTime) -> DateTime<Utc> {
    let local_date = after.with_timezone(&zone).date_naive();
    for day in 0..3 {
        let date = local_date + Duration::days(day);
        let wall = date.and_time(time);
        let at = zone
            .from_local_datetime(&wall)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                // In a gap: the first instant whose local time is past the wall time.
                (1..=180).find_map(|m| {
                    zone.from_local_datetime(&(wall + Duration::minutes(m)))
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                })
            });
        if let Some(at) = at.filter(|at| *at >= after) {
            return at;
        }
    }
    after
}

impl Window {
    /// When the window opens for a contact in `zone`, planned at `at`.
    pub fn opens(&self, at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        self.start.map_or(at, |t| next_local(at, zone, t))
    }

    /// The send instant and how it was chosen, or `None` when every instant of the window is
    /// quiet. `scores` are the contact's send scores by local hour of week; `source` is the
    /// send-time prior that dominates its profile.
    pub fn choose(
        &self,
        at: DateTime<Utc>,
        zone: Tz,
        scores: &[f64],
        source: &'static str,
    ) -> Option<(DateTime<Utc>, &'static str)> {
        let opens = self.opens(at, zone);
        if source == "population"
            && let Some(t) = self.fallback_time
        {
            let candidate = next_local(opens, zone, t);
            let quiet = self
                .quiet
                .is_some_and(|q| q.contains_instant(candidate, zone));
            if candidate < opens + self.length && !quiet {
                return Some((candidate, "fallback_time"));
            }
        }
        ranked_slots(scores, zone, opens, self.length, self.quiet)
            .first()
            .map(|s| (s.at, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }
    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").expect("time")
    }

    #[test]
    fn windows_open_at_local_time_in_each_zone() {
        let at = utc("2026-11-28T02:00:00Z");
        let six = hm("06:00");
        assert_eq!(
            next_local(at, chrono_tz::Europe::Berlin, six),
            utc("2026-11-28T05:00:00Z")
        );
        assert_eq!(
            next_local(at, chrono_tz::America::New_York, six),
            utc("2026-11-28T11:00:00Z")
        );
        // Already past 06:00 in Tokyo (11:00 local): tomorrow's.
        assert_eq!(
            next_local(at, chrono_tz::Asia::Tokyo, six),
            utc("2026-11-28T21:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_nights() {
        let berlin = chrono_tz::Europe::Berlin;
        // Spring forward 2026-03-29: 02:30 does not exist; the window opens at 03:00 CEST.
        assert_eq!(
            next_local(utc("2026-03-28T23:00:00Z"), berlin, hm("02:30")),
            utc("2026-03-29T01:00:00Z")
        );
        // Fall back 2026-10-25: 02:30 happens twice; the first (CEST) is taken.
        assert_eq!(
            next_local(utc("2026-10-24T23:00:00Z"), berlin, hm("02:30")),
            utc("2026-10-25T00:30:00Z")
        );
        // A 24 h window opening at 00:00 local on the fall-back day spans 25 real hours, and the
        // best hour is found in local time: 10:00 CET = 09:00 UTC.
        let w = Window {
            start: Some(hm("00:00")),
            length: Duration::hours(25),
            quiet: None,
            fallback_time: None,
        };
        let mut scores = vec![0.0; 168];
        scores[6 * 24 + 10] = 1.0; // Sunday 10:00 local
        let (t, source) = w
            .choose(utc("2026-10-24T12:00:00Z"), berlin, &scores, "own")
            .expect("slot");
        assert_eq!((t, source), (utc("2026-10-25T09:00:00Z"), "own"));
    }

    #[test]
    fn sparse_contacts_get_the_fallback_time_unless_it_is_quiet() {
        let zone = chrono_tz::Europe::Berlin;
        let mut w = Window {
            start: Some(hm("06:00")),
            length: Duration::hours(24),
            quiet: Some(Quiet::parse("21:00-08:00").expect("quiet")),
            fallback_time: Some(hm("10:00")),
        };
        let scores = vec![1.0; 168];
        let at = utc("2026-11-28T02:00:00Z");
        assert_eq!(
            w.choose(at, zone, &scores, "population"),
            Some((utc("2026-11-28T09:00:00Z"), "fallback_time"))
        );
        // With own evidence the profile decides (flat scores: the first non-quiet hour, 08:00).
        assert_eq!(
            w.choose(at, zone, &scores, "own"),
            Some((utc("2026-11-28T07:00:00Z"), "own"))
        );
        w.fallback_time = Some(hm("22:00"));
        assert_eq!(
            w.choose(at, zone, &scores, "population"),
            Some((utc("2026-11-28T07:00:00Z"), "population"))
        );
        w.quiet = Some(Quiet::parse("00:00-23:59").expect("quiet"));
        w.length = Duration::hours(1);
        assert_eq!(w.choose(at, zone, &scores, "population"), None);
    }
}
