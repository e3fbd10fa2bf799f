//! What to generate.

use chrono::NaiveDate;

/// Parameters of a demo history. The same spec always gives the same files.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// Number of contacts.
    pub contacts: u64,
    /// Random seed.
    pub seed: u64,
    /// Days of history.
    pub days: u32,
    /// Last day of history (exclusive).
    pub end: NaiveDate,
    /// E-mail campaigns per week.
    pub campaigns_per_week: f64,
    /// Contacts per generated chunk (one Parquet row group per table per chunk).
    pub chunk_contacts: usize,
}

impl Default for DemoSpec {
    fn default() -> Self {
        Self {
            contacts: 10_000,
            seed: 42,
            days: 730,
            end: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
            campaigns_per_week: 1.5,
            chunk_contacts: 4096,
        }
    }
}

impl DemoSpec {
    /// End of history, UTC seconds.
    pub fn end(&self) -> i64 {
        self.end
            .and_hms_opt(0, 0, 0)
            .map_or(0, |d| d.and_utc().timestamp())
    }

    /// Start of history, UTC seconds.
    pub fn start(&self) -> i64 {
        self.end() - i64::from(self.days) * 86_400
    }

    /// Catalogue size: grows with the contacts, within 120..=5000.
    pub fn products(&self) -> usize {
        usize::try_from(self.contacts / 20)
            .unwrap_or(5000)
            .clamp(120, 5000)
    }
}
