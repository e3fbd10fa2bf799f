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

/// Reads a country as exports spell it into its ISO 3166-1 alpha-2 code: a code (`de`, `DEU`,
/// `276`), the ISO short name in either order (`Korea, Republic of`, `Republic of Korea`), the
/// official name (`The United Kingdom of Great Britain and Northern Ireland`), a common variant
/// (`South Korea`, `Holland`, `EIRE`, `Türkiye`), with or without diacritics, articles,
/// parentheses and punctuation (`Côte d'Ivoire`, `Cote dIvoire`, `Bolivia (Plurinational State
/// of)`, `Netherlands (the)`). Names come from the tz database, the `celes` crate's ISO 3166
/// table and its aliases, and the variants listed here.
pub fn normalize_country(raw: &str) -> Option<&'static str> {
    let trimmed = raw.trim();
    if trimmed.len() == 2 {
        let upper = trimmed.to_ascii_uppercase();
        if let Ok(i) = COUNTRIES.binary_search_by(|(code, _, _)| (*code).cmp(upper.as_str())) {
            return Some(COUNTRIES[i].0);
        }
    }
    // Exports repeat a handful of spellings over millions of rows: each is resolved once per
    // thread.
    thread_local! {
        static SEEN: std::cell::RefCell<std::collections::HashMap<String, Option<&'static str>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if let Some(code) = SEEN.with(|seen| seen.borrow().get(trimmed).copied()) {
        return code;
    }
    let code = spellings(trimmed)
        .iter()
        .find_map(|name| by_squashed_name(name));
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(trimmed.to_string(), code);
    });
    code
}

/// The forms a name may be looked up in: as written, and reordered where ISO writes the
/// qualifier after a comma or in parentheses (`Korea, Republic of` → `Republic of Korea`;
/// `Bolivia (Plurinational State of)` → `Bolivia` and `Plurinational State of Bolivia`).
fn spellings(raw: &str) -> Vec<String> {
    let mut out = vec![raw.to_string()];
    if let Some((head, qualifier)) = raw.split_once(',') {
        out.push(format!("{} {}", qualifier.trim(), head.trim()));
        out.push(head.to_string());
    }
    if let Some((head, rest)) = raw.split_once('(') {
        let inner = rest.trim_end_matches(')');
        out.push(format!("{} {}", inner.trim(), head.trim()));
        out.push(head.to_string());
    }
    out
}

/// `text` with diacritics transliterated, `&` read as `and`, and only its lowercase ASCII
/// letters and digits kept: `Côte d'Ivoire` → `cotedivoire`.
fn squash(text: &str) -> String {
    deunicode::deunicode(text)
        .replace('&', " and ")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The tz database's names and the variants listed here, squashed, to their codes; built once.
fn names() -> &'static std::collections::HashMap<String, &'static str> {
    static NAMES: std::sync::OnceLock<std::collections::HashMap<String, &'static str>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut map: std::collections::HashMap<String, &'static str> = COUNTRIES
            .iter()
            .map(|(code, name, _)| (squash(name), *code))
            .collect();
        for (alias, code) in ALIASES {
            if let Ok(i) = COUNTRIES.binary_search_by(|(c, _, _)| (*c).cmp(code)) {
                map.insert(squash(alias), COUNTRIES[i].0);
            }
        }
        map
    })
}

/// A country by its squashed name (see [`squash`]), with or without a leading article.
fn by_squashed_name(name: &str) -> Option<&'static str> {
    use std::str::FromStr as _;
    let squashed = squash(name);
    let bare = squashed
        .strip_prefix("the")
        .filter(|s| s.len() > 3)
        .unwrap_or(&squashed);
    let known = |name: &str| -> Option<&'static str> {
        if let Some(code) = names().get(name) {
            return Some(code);
        }
        let found = celes::Country::from_str(name)
            .or_else(|_| celes::Country::from_str(&format!("the{name}")))
            .ok()?;
        COUNTRIES
            .binary_search_by(|(c, _, _)| (*c).cmp(found.alpha2))
            .ok()
            .map(|i| COUNTRIES[i].0)
    };
    // Official names put the form of state first (`Federal Republic of Germany`, `Kingdom of
    // Spain`); the whole name is tried first, so `Democratic Republic of the Congo` stays CD.
    known(bare).or_else(|| {
        STATE_FORMS
            .iter()
            .find_map(|form| bare.strip_prefix(form))
            .map(|rest| {
                rest.strip_prefix("the")
                    .filter(|r| r.len() > 3)
                    .unwrap_or(rest)
            })
            .and_then(known)
    })
}

/// Forms of state that official names begin with, squashed, longest first.
const STATE_FORMS: &[&str] = &[
    "federaldemocraticrepublicof",
    "democraticsocialistrepublicof",
    "bolivarianrepublicof",
    "federalrepublicof",
    "islamicrepublicof",
    "socialistrepublicof",
    "peoplesrepublicof",
    "unitedrepublicof",
    "democraticrepublicof",
    "plurinationalstateof",
    "independentstateof",
    "commonwealthof",
    "principalityof",
    "grandduchyof",
    "republicof",
    "kingdomof",
    "sultanateof",
    "stateof",
];

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
    fn names_as_exports_spell_them() {
        for (raw, code) in [
            ("Korea, Republic of", "KR"),
            ("Republic of Korea", "KR"),
            ("South Korea", "KR"),
            ("Korea, Democratic People's Republic of", "KP"),
            ("United Kingdom of Great Britain and Northern Ireland", "GB"),
            (
                "The United Kingdom of Great Britain and Northern Ireland",
                "GB",
            ),
            ("United States of America", "US"),
            ("United States", "US"),
            ("Côte d'Ivoire", "CI"),
            ("Cote d'Ivoire", "CI"),
            ("COTE DIVOIRE", "CI"),
            ("Bolivia (Plurinational State of)", "BO"),
            ("Netherlands (the)", "NL"),
            ("The Netherlands", "NL"),
            ("Iran, Islamic Republic of", "IR"),
            ("Russian Federation", "RU"),
            ("Viet Nam", "VN"),
            ("Türkiye", "TR"),
            ("Czechia", "CZ"),
            ("Réunion", "RE"),
            ("Reunion", "RE"),
            ("Curaçao", "CW"),
            ("Saint Kitts and Nevis", "KN"),
            ("St Kitts & Nevis", "KN"),
            ("Bosnia and Herzegovina", "BA"),
            ("Federal Republic of Germany", "DE"),
            ("DEU", "DE"),
            ("Åland Islands", "AX"),
            ("Aland Islands", "AX"),
            ("Taiwan, Province of China", "TW"),
            ("Tanzania, United Republic of", "TZ"),
            ("Moldova, Republic of", "MD"),
            ("Lao People's Democratic Republic", "LA"),
            ("Syrian Arab Republic", "SY"),
            ("Brunei Darussalam", "BN"),
            ("Micronesia (Federated States of)", "FM"),
            ("Congo, The Democratic Republic of the", "CD"),
            ("Holy See (Vatican City State)", "VA"),
            ("Palestine, State of", "PS"),
            ("Macao", "MO"),
            ("North Macedonia", "MK"),
            ("Eswatini", "SZ"),
            ("Cabo Verde", "CV"),
        ] {
            assert_eq!(normalize_country(raw), Some(code), "{raw}");
        }
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
