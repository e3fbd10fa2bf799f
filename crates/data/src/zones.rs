//! Time zones of contacts: the IANA zone the contact carries, else its country's most populous
//! zone, else the configured default, and country names or codes read into ISO 3166-1 alpha-2.

use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::zones_table::COUNTRIES;

/// Which rule gave a contact its zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ZoneSource {
    /// The contact's own `timezone` value.
    Contact,
    /// The most populous zone of the contact's country.
    Country,
    /// The configured `data.default_contact_timezone`.
    Default,
}

impl ZoneSource {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Country => "country",
            Self::Default => "default",
        }
    }
}

/// Names used in exports for countries whose tzdata name differs.
const ALIASES: &[(&str, &str)] = &[
    ("united kingdom", "GB"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("wales", "GB"),
    ("northern ireland", "GB"),
    ("eire", "IE"),
    ("republic of ireland", "IE"),
    ("usa", "US"),
    ("united states of america", "US"),
    ("america", "US"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("republic of korea", "KR"),
    ("north korea", "KP"),
    ("russia", "RU"),
    ("russian federation", "RU"),
    ("czech republic", "CZ"),
    ("czechia", "CZ"),
    ("rsa", "ZA"),
    ("uae", "AE"),
    ("united arab emirates", "AE"),
    ("holland", "NL"),
    ("the netherlands", "NL"),
    ("vietnam", "VN"),
    ("taiwan", "TW"),
    ("iran", "IR"),
    ("syria", "SY"),
    ("laos", "LA"),
    ("bolivia", "BO"),
    ("venezuela", "VE"),
    ("tanzania", "TZ"),
    ("moldova", "MD"),
    ("macedonia", "MK"),
    ("north macedonia", "MK"),
    ("channel islands", "JE"),
    ("hong kong", "HK"),
    ("turkey", "TR"),
    ("turkiye", "TR"),
    ("ivory coast", "CI"),
    ("vatican", "VA"),
    ("brasil", "BR"),
    ("deutschland", "DE"),
    ("espana", "ES"),
    ("españa", "ES"),
];

/// Reads a country code (`de`, `DEU` is not accepted) or English name (`Germany`, `EIRE`) into
/// its ISO 3166-1 alpha-2 code.
pub fn normalize_country(raw: &str) -> Option<&'static str> {
    let trimmed = raw.trim();
    if trimmed.len() == 2 {
        let upper = trimmed.to_ascii_uppercase();
        if let Ok(i) = COUNTRIES.binary_search_by(|(code, _, _)| (*code).cmp(upper.as_str())) {
            return Some(COUNTRIES[i].0);
        }
    }
    let lower = trimmed.to_lowercase();
    if let Some((_, code)) = ALIASES.iter().find(|(name, _)| *name == lower) {
        return COUNTRIES
            .iter()
            .find(|(c, _, _)| c == code)
            .map(|(c, _, _)| *c);
    }
    COUNTRIES
        .iter()
        .find(|(_, name, _)| name.to_lowercase() == lower)
        .map(|(code, _, _)| *code)
}

/// The most populous zone of a country (alpha-2 code).
pub fn country_zone(code: &str) -> Option<Tz> {
    let i = COUNTRIES
        .binary_search_by(|(c, _, _)| (*c).cmp(code))
        .ok()?;
    Tz::from_str(COUNTRIES[i].2).ok()
}

/// Resolves a contact's zone: its own IANA zone, else its country's, else `default`.
pub fn resolve_zone(
    timezone: Option<&str>,
    country: Option<&str>,
    default: Tz,
) -> (Tz, ZoneSource) {
    if let Some(tz) = timezone.and_then(|z| Tz::from_str(z.trim()).ok()) {
        return (tz, ZoneSource::Contact);
    }
    if let Some(tz) = country.and_then(country_zone) {
        return (tz, ZoneSource::Country);
    }
    (default, ZoneSource::Default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        assert_eq!(normalize_country("de"), Some("DE"));
        assert_eq!(normalize_country("United Kingdom"), Some("GB"));
        assert_eq!(normalize_country("EIRE"), Some("IE"));
        assert_eq!(normalize_country("France"), Some("FR"));
        assert_eq!(normalize_country("Unspecified"), None);
    }

    #[test]
    fn every_table_zone_exists() {
        for (code, _, zone) in COUNTRIES {
            assert!(Tz::from_str(zone).is_ok(), "{code}: {zone}");
        }
        assert!(
            COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted by code"
        );
    }

    #[test]
    fn fallback_order() {
        assert_eq!(
            resolve_zone(Some("Asia/Tokyo"), Some("DE"), Tz::UTC).1,
            ZoneSource::Contact
        );
        assert_eq!(
            resolve_zone(Some("Mars/Base"), Some("DE"), Tz::UTC),
            (Tz::Europe__Berlin, ZoneSource::Country)
        );
        assert_eq!(
            resolve_zone(None, None, Tz::UTC),
            (Tz::UTC, ZoneSource::Default)
        );
    }
}
