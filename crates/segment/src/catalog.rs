//! Named segments: the built-ins plus those configured in `augur.toml`, compiled together.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::builtin::builtin;
use crate::compile::Matcher;
use crate::error::{Error, Result};
use crate::rule::Rule;
use crate::schema::Schema;

/// A segment as written in configuration (`[segments.<name>]`) or an API body.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// What the segment is for, shown to people choosing an audience.
    #[serde(default)]
    pub description: String,
    /// Who is in it.
    pub rule: Rule,
}

/// A named segment, compiled and ready to match contacts.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Slug: 1 to 64 characters of `a-z`, `0-9`, `_`, `-`.
    pub name: String,
    /// What the segment is for.
    pub description: String,
    /// The rule as written, for showing and serializing back.
    pub rule: Rule,
    /// Whether this is a built-in segment (not replaced by configuration).
    pub builtin: bool,
    /// The rule compiled against the schema.
    pub matcher: Matcher,
}

/// Longest segment name.
const MAX_NAME: usize = 64;

/// Whether `name` is a slug: names appear in URLs, file names and TOML keys, where anything else
/// needs quoting or escaping.
fn is_slug(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The built-in segments plus the configured ones, compiled against `schema`, sorted by name.
///
/// A configured segment with a built-in's name replaces the built-in, so a shop can redefine
/// (say) `vip` to its own threshold without inventing a new name. Errors name the segment:
/// `segments.<name>: …` for configured ones.
pub fn catalog(
    configured: &BTreeMap<String, SegmentSpec>,
    schema: &Schema,
) -> Result<Vec<Segment>> {
    let mut segments = BTreeMap::new();
    for (name, spec) in configured {
        if !is_slug(name) {
            return Err(Error::InvalidName { name: name.clone() });
        }
        let matcher = spec.rule.compile(schema).map_err(|e| Error::Segment {
            name: name.clone(),
            source: Box::new(e),
        })?;
        segments.insert(
            name.clone(),
            Segment {
                name: name.clone(),
                description: spec.description.clone(),
                rule: spec.rule.clone(),
                builtin: false,
                matcher,
            },
        );
    }
    for (name, description, rule) in builtin() {
        if segments.contains_key(name) {
            continue;
        }
        let matcher = rule.compile(schema).map_err(|e| Error::Builtin {
            name: name.to_string(),
            source: Box::new(e),
        })?;
        segments.insert(
            name.to_string(),
            Segment {
                name: name.to_string(),
                description: description.to_string(),
                rule,
                builtin: true,
                matcher,
            },
        );
    }
    Ok(segments.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Kind, Value};

    const NUMBERS: [&str; 15] = [
        "churn_risk",
        "send_time_confidence",
        "orders",
        "spend",
        "spend_percentile",
        "days_since_last_order",
        "days_since_first_order",
        "days_since_signup",
        "orders_90d",
        "opens_90d",
        "clicks_90d",
        "days_since_open",
        "days_since_click",
        "web_events_30d",
        "best_send_hour_of_week",
    ];
    const TEXTS: [&str; 6] = [
        "contact_id",
        "churn_tier",
        "country",
        "timezone",
        "send_time_source",
        "top_category",
    ];
    const BOOLS: [&str; 4] = ["email_consent", "unsubscribed", "bounced", "complained"];

    /// Exactly the fields the service's schema offers (without extra attributes).
    fn service_schema() -> Schema {
        Schema::new(
            NUMBERS
                .iter()
                .map(|n| (*n, Kind::Number))
                .chain(TEXTS.iter().map(|n| (*n, Kind::Text)))
                .chain(BOOLS.iter().map(|n| (*n, Kind::Bool))),
        )
    }

    /// A record over the service schema with the given fields set, everything else missing.
    fn record(schema: &Schema, set: &[(&str, Value<'static>)]) -> Vec<Value<'static>> {
        let mut values = vec![Value::Missing; schema.len()];
        for (name, value) in set {
            let i = schema.index(name).expect("field of the service schema");
            values[i] = *value;
        }
        values
    }

    fn specs(toml_text: &str) -> BTreeMap<String, SegmentSpec> {
        #[derive(Deserialize)]
        struct Config {
            segments: BTreeMap<String, SegmentSpec>,
        }
        toml::from_str::<Config>(toml_text)
            .expect("valid segments")
            .segments
    }

    #[test]
    fn every_builtin_compiles_against_the_service_schema() {
        let schema = service_schema();
        let all = builtin();
        assert_eq!(all.len(), 8);
        for (name, description, rule) in &all {
            assert!(is_slug(name), "{name}");
            assert!(!description.is_empty(), "{name}");
            rule.compile(&schema)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let names: Vec<&str> = all.iter().map(|(n, _, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn builtins_select_the_right_contacts() {
        let schema = service_schema();
        let segments = catalog(&BTreeMap::new(), &schema).expect("built-ins compile");
        let find = |name: &str| {
            &segments
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("{name}"))
                .matcher
        };
        let newbie = record(
            &schema,
            &[
                ("days_since_signup", Value::Number(12.5)),
                ("orders", Value::Number(0.0)),
            ],
        );
        let vip = record(
            &schema,
            &[
                ("orders", Value::Number(9.0)),
                ("spend_percentile", Value::Number(0.95)),
                ("days_since_last_order", Value::Number(40.0)),
                ("days_since_signup", Value::Number(900.0)),
                ("churn_tier", Value::Text("low")),
            ],
        );
        let at_risk = record(
            &schema,
            &[
                ("orders", Value::Number(2.0)),
                ("spend_percentile", Value::Number(0.3)),
                ("days_since_last_order", Value::Number(200.0)),
                ("churn_tier", Value::Text("critical")),
            ],
        );
        let lapsed = record(
            &schema,
            &[
                ("orders", Value::Number(1.0)),
                ("days_since_last_order", Value::Number(400.0)),
                ("churn_tier", Value::Text("critical")),
            ],
        );
        let cases = [
            ("new_subscribers", [true, false, false, false]),
            ("active_buyers", [false, true, false, false]),
            ("vip", [false, true, false, false]),
            ("at_risk", [false, false, true, false]),
            ("lapsed", [false, false, false, true]),
        ];
        for (name, expected) in cases {
            let got = [&newbie, &vip, &at_risk, &lapsed].map(|r| find(name).matches(r));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn engagement_bands_split_by_the_last_human_open_or_click() {
        let schema = service_schema();
        let segments = catalog(&BTreeMap::new(), &schema).expect("built-ins compile");
        let bands = |set: &[(&str, Value<'static>)]| -> Vec<&str> {
            let r = record(&schema, set);
            ["engaged", "moderately_engaged", "inactive"]
                .into_iter()
                .filter(|name| {
                    segments
                        .iter()
                        .find(|s| s.name == *name)
                        .is_some_and(|s| s.matcher.matches(&r))
                })
                .collect()
        };
        let old = ("days_since_signup", Value::Number(400.0));
        let open = |d: f64| ("days_since_open", Value::Number(d));
        let click = |d: f64| ("days_since_click", Value::Number(d));
        assert_eq!(bands(&[old, open(3.0)]), ["engaged"]);
        assert_eq!(bands(&[old, open(200.0), click(30.0)]), ["engaged"]);
        assert_eq!(bands(&[old, open(31.0)]), ["moderately_engaged"]);
        assert_eq!(bands(&[old, click(90.0)]), ["moderately_engaged"]);
        assert_eq!(bands(&[old, open(91.0), click(120.0)]), ["inactive"]);
        assert_eq!(bands(&[old]), ["inactive"], "never engaged");
        assert_eq!(bands(&[]), ["inactive"], "never engaged, sign-up unknown");
        let recent = ("days_since_signup", Value::Number(20.0));
        assert!(bands(&[recent]).is_empty(), "new: not yet inactive");
    }

    #[test]
    fn configured_segments_join_and_replace_builtins() {
        let configured = specs(
            r#"
            [segments.winback_de]
            description = "High-risk customers in Germany"
            rule = { all = [ { field = "churn_tier", in = ["high", "critical"] }, { field = "country", eq = "DE" } ] }

            [segments.vip]
            rule = { field = "spend_percentile", gte = 0.99 }
            "#,
        );
        let segments = catalog(&configured, &service_schema()).expect("segments compile");
        let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "active_buyers",
                "at_risk",
                "engaged",
                "inactive",
                "lapsed",
                "moderately_engaged",
                "new_subscribers",
                "vip",
                "winback_de"
            ]
        );
        let vip = &segments[7];
        assert!(!vip.builtin);
        assert_eq!(vip.description, "");
        assert_eq!(
            serde_json::to_value(&vip.rule).expect("serializes"),
            serde_json::json!({"field": "spend_percentile", "gte": 0.99})
        );
        assert!(segments[0].builtin);
        assert_eq!(segments[8].description, "High-risk customers in Germany");
    }

    #[test]
    fn bad_configured_segments_are_named() {
        let configured = specs(
            r#"
            [segments.winback]
            rule = { all = [ { field = "churn_rsik", gte = 0.7 } ] }
            "#,
        );
        let e = catalog(&configured, &service_schema())
            .expect_err("unknown field")
            .to_string();
        assert!(
            e.starts_with(
                "segments.winback: all[0]: unknown field `churn_rsik`; did you mean `churn_risk`?"
            ),
            "{e}"
        );

        for bad in ["Winback", "", "win back", "ü", &"x".repeat(65)] {
            let mut configured = BTreeMap::new();
            configured.insert(
                bad.to_string(),
                SegmentSpec {
                    description: String::new(),
                    rule: Rule::All(vec![]),
                },
            );
            let e = catalog(&configured, &service_schema()).expect_err("bad name");
            assert_eq!(
                e,
                Error::InvalidName {
                    name: bad.to_string()
                }
            );
            assert!(e.to_string().starts_with(&format!("segments.{bad:?}: ")));
        }
        assert!(is_slug(&"a".repeat(64)));
        assert!(is_slug("winback-de_2"));
    }

    #[test]
    fn builtins_needing_missing_fields_fail_unless_replaced() {
        let schema = Schema::new([("orders", Kind::Number)]);
        let e = catalog(&BTreeMap::new(), &schema)
            .expect_err("fields missing")
            .to_string();
        assert!(
            e.starts_with(
                "built-in segment `active_buyers`: rule: unknown field `days_since_last_order`"
            ),
            "{e}"
        );
        assert!(e.contains("[segments.active_buyers]"), "{e}");
    }

    #[test]
    fn spec_refuses_unknown_keys() {
        let e = toml::from_str::<SegmentSpec>("rules = { all = [] }").expect_err("typo");
        assert!(e.to_string().contains("unknown field `rules`"), "{e}");
        let e = toml::from_str::<SegmentSpec>("description = \"x\"").expect_err("no rule");
        assert!(e.to_string().contains("missing field `rule`"), "{e}");
    }
}
