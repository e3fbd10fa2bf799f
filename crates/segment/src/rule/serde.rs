//! Reading and writing [`Rule`]s: the hand-written serde impls behind the JSON and TOML shape.
//!
//! Reading goes through a permissive intermediate shape ([`RawRule`]: every key optional, unknown
//! keys refused) and is then validated into [`Rule`]. Doing it in two steps, instead of letting serde
//! pick an enum variant, is what lets errors say *where* the rule is wrong (`all[1].any[0]`) and
//! *what* would fix it; serde's own "data did not match any variant" says neither.
//!
//! Writing produces the same shape, with numbers that are integers written as integers, so that a
//! rule reads back as it was written.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::{
    Budget, List, Op, Path, Rule, Scalar, check_between, check_compare, check_field, check_list,
    invalid,
};
use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Reading.

/// The operator keys of a condition, for "give exactly one of …".
const OPERATORS: &str = "eq, ne, lt, lte, gt, gte, in, between, present";

/// Every key a rule node may have, all optional; [`Rule::from_raw`] decides what the combination
/// means. Unknown keys (`gtee`, `fields`) are refused by serde with the list of valid ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    all: Option<Vec<RawRule>>,
    any: Option<Vec<RawRule>>,
    not: Option<Box<RawRule>>,
    field: Option<String>,
    eq: Option<Scalar>,
    ne: Option<Scalar>,
    lt: Option<Scalar>,
    lte: Option<Scalar>,
    gt: Option<Scalar>,
    gte: Option<Scalar>,
    #[serde(rename = "in")]
    is_in: Option<Vec<Scalar>>,
    between: Option<Vec<Scalar>>,
    present: Option<bool>,
}

impl RawRule {
    /// The combinator keys present, in the language's order.
    fn combinators(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.all.is_some() {
            keys.push("all");
        }
        if self.any.is_some() {
            keys.push("any");
        }
        if self.not.is_some() {
            keys.push("not");
        }
        keys
    }

    /// The operator keys present, in the language's order.
    fn operators(&self) -> Vec<&'static str> {
        let flags = [
            ("eq", self.eq.is_some()),
            ("ne", self.ne.is_some()),
            ("lt", self.lt.is_some()),
            ("lte", self.lte.is_some()),
            ("gt", self.gt.is_some()),
            ("gte", self.gte.is_some()),
            ("in", self.is_in.is_some()),
            ("between", self.between.is_some()),
            ("present", self.present.is_some()),
        ];
        flags
            .into_iter()
            .filter_map(|(key, set)| set.then_some(key))
            .collect()
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawRule::deserialize(deserializer)?;
        Rule::from_raw(raw, &Path::ROOT, &mut Budget::default()).map_err(de::Error::custom)
    }
}

impl Rule {
    /// Validates the intermediate shape into a rule, walking it with a path for the errors.
    fn from_raw(raw: RawRule, path: &Path<'_>, budget: &mut Budget) -> Result<Rule> {
        budget.enter(path)?;
        let combinators = raw.combinators();
        let operators = raw.operators();
        match (combinators.as_slice(), raw.field.is_some()) {
            ([_, _, ..], _) => Err(invalid(
                path,
                format!(
                    "give exactly one of all, any, not per node (found {}); nest them inside an `all` (both) or an `any` (either)",
                    and_list(&combinators)
                ),
            )),
            ([key], has_field) => {
                if has_field || !operators.is_empty() {
                    return Err(crowded(key, has_field, &operators, path));
                }
                Self::combinator(raw, path, budget)
            }
            ([], false) if operators.is_empty() => Err(invalid(
                path,
                format!("empty rule; give all, any, not, or a `field` with one of {OPERATORS}"),
            )),
            ([], false) => Err(invalid(
                path,
                format!(
                    "{} needs a `field` to test; add \"field\": \"<name>\"",
                    and_list(&operators)
                ),
            )),
            ([], true) => Self::condition(raw, &operators, path),
        }
    }

    /// A node known to have exactly one combinator and nothing else.
    fn combinator(raw: RawRule, path: &Path<'_>, budget: &mut Budget) -> Result<Rule> {
        let convert_list = |key: &'static str, list: Vec<RawRule>, budget: &mut Budget| {
            list.into_iter()
                .enumerate()
                .map(|(i, raw)| Self::from_raw(raw, &path.item(key, i), budget))
                .collect::<Result<Vec<_>>>()
        };
        if let Some(list) = raw.all {
            Ok(Rule::All(convert_list("all", list, budget)?))
        } else if let Some(list) = raw.any {
            Ok(Rule::Any(convert_list("any", list, budget)?))
        } else if let Some(inner) = raw.not {
            Ok(Rule::Not(Box::new(Self::from_raw(
                *inner,
                &path.not(),
                budget,
            )?)))
        } else {
            Err(invalid(path, "expected all, any or not"))
        }
    }

    /// A node known to have a `field` and no combinator.
    fn condition(raw: RawRule, operators: &[&str], path: &Path<'_>) -> Result<Rule> {
        let field = raw.field.unwrap_or_default();
        if operators.len() != 1 {
            let found = if operators.is_empty() {
                "none".to_string()
            } else {
                and_list(operators)
            };
            return Err(invalid(
                path,
                format!("give exactly one of {OPERATORS} (found {found})"),
            ));
        }
        check_field(&field, path)?;
        let compares = [
            (Op::Eq, raw.eq),
            (Op::Ne, raw.ne),
            (Op::Lt, raw.lt),
            (Op::Lte, raw.lte),
            (Op::Gt, raw.gt),
            (Op::Gte, raw.gte),
        ];
        for (op, value) in compares {
            if let Some(value) = value {
                check_compare(op, &value, path)?;
                return Ok(Rule::Compare { field, op, value });
            }
        }
        if let Some(values) = raw.is_in {
            let values = list_from(values, path)?;
            check_list(&values, path)?;
            return Ok(Rule::In { field, values });
        }
        if let Some(bounds) = raw.between {
            let (low, high) = between_from(&bounds, path)?;
            check_between(low, high, path)?;
            return Ok(Rule::Between { field, low, high });
        }
        if let Some(present) = raw.present {
            return Ok(Rule::Present { field, present });
        }
        Err(invalid(
            path,
            format!("give exactly one of {OPERATORS} (found none)"),
        ))
    }
}

/// The error for a node with a combinator (`key`) and also a `field` or operators: saying how to
/// combine them is more use than refusing the extra keys.
fn crowded(key: &str, has_field: bool, operators: &[&str], path: &Path<'_>) -> Error {
    let mut extra = operators.to_vec();
    if has_field {
        extra.insert(0, "field");
    }
    let fix = if key == "all" {
        "move the condition into the `all` list"
    } else {
        "put both into an `all` list"
    };
    invalid(
        path,
        format!(
            "a node with `{key}` cannot also have {}; {fix}",
            and_list(&extra)
        ),
    )
}

/// An `in` list as all numbers or all strings.
fn list_from(values: Vec<Scalar>, path: &Path<'_>) -> Result<List> {
    let mixed = || {
        invalid(
            path,
            "`in` needs all strings (for a text field) or all numbers (for a number field), not a mix",
        )
    };
    match values.first() {
        None => Ok(List::Texts(Vec::new())),
        Some(Scalar::Bool(_)) => Err(invalid(
            path,
            "`in` takes strings or numbers; match true/false with eq",
        )),
        Some(Scalar::Number(_)) => values
            .into_iter()
            .map(|v| match v {
                Scalar::Number(n) => Ok(n),
                _ => Err(mixed()),
            })
            .collect::<Result<Vec<_>>>()
            .map(List::Numbers),
        Some(Scalar::Text(_)) => values
            .into_iter()
            .map(|v| match v {
                Scalar::Text(s) => Ok(s),
                _ => Err(mixed()),
            })
            .collect::<Result<Vec<_>>>()
            .map(List::Texts),
    }
}

/// A `between` list as its two numbers, not yet checked for order (that is
/// [`check_between`]'s).
fn between_from(bounds: &[Scalar], path: &Path<'_>) -> Result<(f64, f64)> {
    match bounds {
        [Scalar::Number(low), Scalar::Number(high)] => Ok((*low, *high)),
        [low, high] => {
            let odd = if matches!(low, Scalar::Number(_)) {
                high
            } else {
                low
            };
            Err(invalid(
                path,
                format!(
                    "`between` needs [low, high] with low <= high as numbers (found {})",
                    odd.described()
                ),
            ))
        }
        other => Err(invalid(
            path,
            format!(
                "`between` needs [low, high] with low <= high (found {} values)",
                other.len()
            ),
        )),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Accepts exactly numbers, strings and booleans, so that a nested table or a date gets a
/// message naming what a value may be instead of serde's "did not match any variant".
struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, string or boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// A number written as an integer when it is one (`2`, not `2.0`), so rules read back as written.
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Below 2^53 every integer is exact in f64, so the cast loses nothing.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if self.0.fract() == 0.0 && self.0.abs() < EXACT {
            serializer.serialize_i64(self.0 as i64)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Number(v) => Num(*v).serialize(serializer),
            Scalar::Text(s) => serializer.serialize_str(s),
            Scalar::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

impl Serialize for List {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        match self {
            List::Numbers(values) => {
                for v in values {
                    seq.serialize_element(&Num(*v))?;
                }
            }
            List::Texts(values) => {
                for v in values {
                    seq.serialize_element(v)?;
                }
            }
        }
        seq.end()
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = if self.field().is_some() { 2 } else { 1 };
        let mut map = serializer.serialize_map(Some(entries))?;
        match self {
            Rule::All(rules) => map.serialize_entry("all", rules)?,
            Rule::Any(rules) => map.serialize_entry("any", rules)?,
            Rule::Not(rule) => map.serialize_entry("not", rule)?,
            Rule::Compare { field, op, value } => {
                map.serialize_entry("field", field)?;
                map.serialize_entry(op.as_str(), value)?;
            }
            Rule::In { field, values } => {
                map.serialize_entry("field", field)?;
                map.serialize_entry("in", values)?;
            }
            Rule::Between { field, low, high } => {
                map.serialize_entry("field", field)?;
                map.serialize_entry("between", &[Num(*low), Num(*high)])?;
            }
            Rule::Present { field, present } => {
                map.serialize_entry("field", field)?;
                map.serialize_entry("present", present)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::tests::{parse, parse_err};

    #[test]
    fn reads_every_node_kind() {
        let rule = parse(
            r#"{"all": [
                {"field": "churn_risk", "gte": 0.7},
                {"any": [{"field": "country", "in": ["DE", "AT"]}, {"field": "orders", "in": [1, 2]}]},
                {"not": {"field": "unsubscribed", "eq": true}},
                {"field": "orders", "between": [2, 5]},
                {"field": "first_name", "present": false}
            ]}"#,
        )
        .expect("valid rule");
        let expected = Rule::All(vec![
            Rule::Compare {
                field: "churn_risk".into(),
                op: Op::Gte,
                value: Scalar::Number(0.7),
            },
            Rule::Any(vec![
                Rule::In {
                    field: "country".into(),
                    values: List::Texts(vec!["DE".into(), "AT".into()]),
                },
                Rule::In {
                    field: "orders".into(),
                    values: List::Numbers(vec![1.0, 2.0]),
                },
            ]),
            Rule::Not(Box::new(Rule::Compare {
                field: "unsubscribed".into(),
                op: Op::Eq,
                value: Scalar::Bool(true),
            })),
            Rule::Between {
                field: "orders".into(),
                low: 2.0,
                high: 5.0,
            },
            Rule::Present {
                field: "first_name".into(),
                present: false,
            },
        ]);
        assert_eq!(rule, expected);
    }

    #[test]
    fn every_operator_is_read() {
        for op in Op::ALL {
            let rule = parse(&format!(r#"{{"field": "x", "{op}": 3}}"#)).expect("valid rule");
            assert_eq!(
                rule,
                Rule::Compare {
                    field: "x".into(),
                    op,
                    value: Scalar::Number(3.0)
                }
            );
        }
    }

    #[test]
    fn round_trips_to_the_same_json() {
        let json = serde_json::json!({"all": [
            {"field": "churn_risk", "gte": 0.7},
            {"any": [{"field": "country", "in": ["DE", "AT"]}, {"field": "orders", "in": [1, 2.5]}]},
            {"not": {"field": "unsubscribed", "ne": false}},
            {"field": "orders", "between": [2, 5]},
            {"field": "first_name", "present": true},
            {"any": []},
            {"field": "country", "lt": -3}
        ]});
        let rule: Rule = serde_json::from_value(json.clone()).expect("valid rule");
        assert_eq!(serde_json::to_value(&rule).expect("serializes"), json);
        let again: Rule = serde_json::from_str(&serde_json::to_string(&rule).expect("serializes"))
            .expect("reads back");
        assert_eq!(again, rule);
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse_err(
            r#"{"all": [{"field": "a", "eq": 1}, {"field": "orders", "between": [5, 2]}]}"#,
        );
        assert!(
            e.starts_with("all[1]: `between` needs [low, high] with low <= high (found [5, 2])"),
            "{e}"
        );

        let e = parse_err(r#"{"all": [{"any": [{"field": "a", "eq": 1, "gt": 2}]}]}"#);
        assert!(
            e.starts_with(
                "all[0].any[0]: give exactly one of eq, ne, lt, lte, gt, gte, in, between, present (found eq and gt)"
            ),
            "{e}"
        );

        let e = parse_err(r#"{"not": {"field": "a"}}"#);
        assert!(e.starts_with("not: give exactly one of"), "{e}");
        assert!(e.contains("(found none)"), "{e}");

        let e = parse_err(r#"{"gte": 0.7}"#);
        assert!(e.starts_with("rule: gte needs a `field`"), "{e}");

        let e = parse_err(r#"{}"#);
        assert!(e.starts_with("rule: empty rule"), "{e}");
    }

    #[test]
    fn combinators_and_conditions_do_not_mix() {
        let e = parse_err(r#"{"all": [], "field": "a"}"#);
        assert!(
            e.contains("a node with `all` cannot also have field"),
            "{e}"
        );
        assert!(e.contains("move the condition into the `all` list"), "{e}");
        let e = parse_err(r#"{"all": [], "any": []}"#);
        assert!(e.contains("found all and any"), "{e}");
        let e = parse_err(r#"{"not": {"field": "a", "eq": 1}, "eq": 2}"#);
        assert!(
            e.contains("cannot also have eq; put both into an `all` list"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse_err(r#"{"field": "a", "gtee": 1}"#);
        assert!(e.contains("unknown field `gtee`"), "{e}");
    }

    #[test]
    fn values_are_checked() {
        let e = parse_err(r#"{"field": "country", "gte": "DE"}"#);
        assert!(
            e.contains("`gte` compares numbers, found text \"DE\""),
            "{e}"
        );
        let e = parse_err(r#"{"field": "a", "between": [1, 2, 3]}"#);
        assert!(e.contains("found 3 values"), "{e}");
        let e = parse_err(r#"{"field": "a", "between": [1, "x"]}"#);
        assert!(e.contains("as numbers (found text \"x\")"), "{e}");
        let e = parse_err(r#"{"field": "a", "in": []}"#);
        assert!(e.contains("`in` needs at least one value"), "{e}");
        let e = parse_err(r#"{"field": "a", "in": ["DE", 1]}"#);
        assert!(e.contains("not a mix"), "{e}");
        let e = parse_err(r#"{"field": "a", "in": [true]}"#);
        assert!(e.contains("match true/false with eq"), "{e}");
        let e = parse_err(r#"{"field": "a", "eq": {"x": 1}}"#);
        assert!(e.contains("a number, string or boolean"), "{e}");
        let e = parse_err(r#"{"field": " ", "eq": 1}"#);
        assert!(e.contains("`field` is empty"), "{e}");
    }
}
