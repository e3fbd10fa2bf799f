//! Compiling a [`Rule`] against a [`Schema`] into a [`Matcher`], and matching records.
//!
//! A segment is evaluated over every contact, a million or more per request, so everything that
//! can be decided once is decided here: field names become indexes, kinds are checked, `in` lists
//! are sorted for binary search. [`Matcher::matches`] then only reads values and compares; it
//! never allocates.

use crate::error::{Error, Result};
use crate::rule::{List, Op, Path, Rule, Scalar};
use crate::schema::{Kind, Record, Schema, Value};

/// A rule compiled against a schema: matches records by field index without allocating.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: Node,
    fields: Box<[usize]>,
}

impl Matcher {
    /// Whether the record is in the segment.
    ///
    /// Missing values (and `NaN` numbers) never satisfy a comparison, `in` or `between`; see
    /// [`Rule`] for what that means under `not`. A record value whose kind differs from the
    /// schema's counts as not matching (but as present).
    pub fn matches<R: Record + ?Sized>(&self, record: &R) -> bool {
        self.root.eval(record)
    }

    /// The schema indexes the rule reads, ascending and without repeats: what a caller must load.
    pub fn fields(&self) -> &[usize] {
        &self.fields
    }

    /// Nodes of the compiled tree, a long `in` list weighing one more per step of its binary
    /// search beyond a short list's (each step a likely cache miss): what matching one record
    /// costs at most, in node evaluations. A service budgets a rule from its client by
    /// `nodes() × records` before running it.
    pub fn nodes(&self) -> usize {
        self.root.nodes()
    }
}

impl Node {
    fn nodes(&self) -> usize {
        match self {
            Self::All(children) | Self::Any(children) => {
                1 + children.iter().map(Self::nodes).sum::<usize>()
            }
            Self::Not(child) => 1 + child.nodes(),
            Self::NumberIn { values, .. } => 1 + search_steps(values.len()),
            Self::TextIn { values, .. } => 1 + search_steps(values.len()),
            _ => 1,
        }
    }
}

/// The binary-search steps of an `in` list of `n` values beyond those of a list short enough
/// to be scanned ([`SCAN`], which costs about one comparison).
fn search_steps(n: usize) -> usize {
    let halvings = |n: usize| (usize::BITS - n.leading_zeros()) as usize;
    halvings(n).saturating_sub(halvings(SCAN))
}

/// The compiled rule tree; depth is bounded by [`crate::MAX_DEPTH`], so evaluating it
/// recursively is safe.
#[derive(Debug, Clone)]
enum Node {
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    Number {
        field: usize,
        op: Op,
        value: f64,
    },
    Between {
        field: usize,
        low: f64,
        high: f64,
    },
    Text {
        field: usize,
        equal: bool,
        value: Box<str>,
    },
    Bool {
        field: usize,
        equal: bool,
        value: bool,
    },
    /// Sorted, without repeats, `-0.0` stored as `0.0`.
    NumberIn {
        field: usize,
        values: Box<[f64]>,
    },
    /// Sorted, without repeats.
    TextIn {
        field: usize,
        values: Box<[Box<str>]>,
    },
    Present {
        field: usize,
        present: bool,
    },
}

/// Lists up to this length are scanned; longer ones are binary-searched.
const SCAN: usize = 8;

/// The number in a value, treating `NaN` as missing.
#[inline]
fn number(value: Value<'_>) -> Option<f64> {
    match value {
        Value::Number(x) if !x.is_nan() => Some(x),
        _ => None,
    }
}

impl Node {
    fn eval<R: Record + ?Sized>(&self, record: &R) -> bool {
        match self {
            Node::All(nodes) => nodes.iter().all(|n| n.eval(record)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(record)),
            Node::Not(node) => !node.eval(record),
            Node::Number { field, op, value } => {
                number(record.value(*field)).is_some_and(|x| op.holds(x, *value))
            }
            Node::Between { field, low, high } => {
                number(record.value(*field)).is_some_and(|x| *low <= x && x <= *high)
            }
            Node::Text {
                field,
                equal,
                value,
            } => match record.value(*field) {
                Value::Text(s) => (s == &**value) == *equal,
                _ => false,
            },
            Node::Bool {
                field,
                equal,
                value,
            } => match record.value(*field) {
                Value::Bool(b) => (b == *value) == *equal,
                _ => false,
            },
            Node::NumberIn { field, values } => number(record.value(*field)).is_some_and(|x| {
                // `x + 0.0` turns -0.0 into 0.0, so that `in` agrees with `eq`.
                let x = x + 0.0;
                if values.len() <= SCAN {
                    values.contains(&x)
                } else {
                    values.binary_search_by(|v| v.total_cmp(&x)).is_ok()
                }
            }),
            Node::TextIn { field, values } => match record.value(*field) {
                Value::Text(s) => {
                    if values.len() <= SCAN {
                        values.iter().any(|v| &**v == s)
                    } else {
                        values.binary_search_by(|v| (**v).cmp(s)).is_ok()
                    }
                }
                _ => false,
            },
            Node::Present { field, present } => {
                let has = match record.value(*field) {
                    Value::Missing => false,
                    Value::Number(x) => !x.is_nan(),
                    Value::Text(_) | Value::Bool(_) => true,
                };
                has == *present
            }
        }
    }
}

impl Rule {
    /// Compiles the rule against a schema: validates it ([`Rule::validate`]), resolves field
    /// names to indexes and checks each condition against its field's kind.
    ///
    /// Numbers compare as `f64` (`eq` is exact equality); text compares exactly, case-sensitive
    /// (`"de"` is not `"DE"`).
    pub fn compile(&self, schema: &Schema) -> Result<Matcher> {
        self.validate()?;
        let mut fields = Vec::new();
        let root = build(self, schema, &Path::ROOT, &mut fields)?;
        fields.sort_unstable();
        fields.dedup();
        Ok(Matcher {
            root,
            fields: fields.into_boxed_slice(),
        })
    }
}

/// Builds the node for `rule`, which has been validated (so recursion depth is bounded).
fn build(rule: &Rule, schema: &Schema, path: &Path<'_>, fields: &mut Vec<usize>) -> Result<Node> {
    let list = |key: &'static str, rules: &[Rule], fields: &mut Vec<usize>| {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| build(r, schema, &path.item(key, i), fields))
            .collect::<Result<Box<[Node]>>>()
    };
    let resolve = |name: &str, fields: &mut Vec<usize>| {
        let (index, kind) = schema
            .lookup(name)
            .ok_or_else(|| unknown_field(schema, name, path))?;
        fields.push(index);
        Ok::<_, Error>((index, kind))
    };
    let wrong = |field: &str, kind: Kind, message: String| Error::WrongKind {
        path: path.to_string(),
        field: field.to_string(),
        kind,
        message,
    };
    Ok(match rule {
        Rule::All(rules) => Node::All(list("all", rules, fields)?),
        Rule::Any(rules) => Node::Any(list("any", rules, fields)?),
        Rule::Not(rule) => Node::Not(Box::new(build(rule, schema, &path.not(), fields)?)),
        Rule::Compare { field, op, value } => {
            let (index, kind) = resolve(field, fields)?;
            let op = *op;
            match (kind, value) {
                (Kind::Number, Scalar::Number(v)) => Node::Number {
                    field: index,
                    op,
                    value: *v,
                },
                (_, _) if op.is_ordering() => {
                    let hint = if kind == Kind::Text {
                        "; text is matched with eq, ne or in"
                    } else {
                        "; true/false is matched with eq or ne"
                    };
                    return Err(wrong(
                        field,
                        kind,
                        format!("`{op}` needs a number field{hint}"),
                    ));
                }
                (Kind::Text, Scalar::Text(s)) => Node::Text {
                    field: index,
                    equal: op == Op::Eq,
                    value: s.as_str().into(),
                },
                (Kind::Bool, Scalar::Bool(b)) => Node::Bool {
                    field: index,
                    equal: op == Op::Eq,
                    value: *b,
                },
                (_, value) => {
                    let hint = match (kind, value) {
                        (Kind::Text, Scalar::Number(_) | Scalar::Bool(_)) => {
                            format!(" (write it in quotes: \"{value}\")")
                        }
                        _ => String::new(),
                    };
                    return Err(wrong(
                        field,
                        kind,
                        format!(
                            "`{op}` needs {}, found {}{hint}",
                            kind.value_described(),
                            value.described()
                        ),
                    ));
                }
            }
        }
        Rule::In { field, values } => {
            let (index, kind) = resolve(field, fields)?;
            match (kind, values) {
                (Kind::Number, List::Numbers(values)) => {
                    let mut values: Vec<f64> = values.iter().map(|v| v + 0.0).collect();
                    values.sort_unstable_by(f64::total_cmp);
                    values.dedup();
                    Node::NumberIn {
                        field: index,
                        values: values.into_boxed_slice(),
                    }
                }
                (Kind::Text, List::Texts(values)) => {
                    let mut values: Vec<Box<str>> =
                        values.iter().map(|v| v.as_str().into()).collect();
                    values.sort_unstable();
                    values.dedup();
                    Node::TextIn {
                        field: index,
                        values: values.into_boxed_slice(),
                    }
                }
                (Kind::Bool, _) => {
                    return Err(wrong(
                        field,
                        kind,
                        "`in` needs a number or text field; match true/false with eq".to_string(),
                    ));
                }
                (Kind::Number, List::Texts(_)) => {
                    return Err(wrong(
                        field,
                        kind,
                        "`in` needs a list of numbers here, found strings".to_string(),
                    ));
                }
                (Kind::Text, List::Numbers(_)) => {
                    return Err(wrong(
                        field,
                        kind,
                        "`in` needs a list of strings here, found numbers (write them in quotes)"
                            .to_string(),
                    ));
                }
            }
        }
        Rule::Between { field, low, high } => {
            let (index, kind) = resolve(field, fields)?;
            if kind != Kind::Number {
                return Err(wrong(
                    field,
                    kind,
                    "`between` needs a number field".to_string(),
                ));
            }
            Node::Between {
                field: index,
                low: *low,
                high: *high,
            }
        }
        Rule::Present { field, present } => {
            let (index, _) = resolve(field, fields)?;
            Node::Present {
                field: index,
                present: *present,
            }
        }
    })
}

/// The error for an unknown field name: the closest known name if it looks like a typo, and the
/// known names closest first (capped, since shops may export hundreds of attributes).
fn unknown_field(schema: &Schema, name: &str, path: &Path<'_>) -> Error {
    const LISTED: usize = 8;
    // A name from an API body can be megabytes long: rank and quote only its start.
    let name: String = name.chars().take(64).collect();
    let ranked = schema.closest_to(&name);
    let close_enough = name.chars().count().div_ceil(3).max(1);
    let suggestion = ranked
        .first()
        .filter(|(d, _)| *d <= close_enough)
        .map(|(_, known)| known.to_string());
    let fields = ranked
        .iter()
        .take(LISTED)
        .map(|(_, known)| known.to_string())
        .collect();
    Error::UnknownField {
        path: path.to_string(),
        field: name,
        suggestion,
        fields,
        more: ranked.len().saturating_sub(LISTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new([
            ("churn_risk", Kind::Number),
            ("orders", Kind::Number),
            ("country", Kind::Text),
            ("churn_tier", Kind::Text),
            ("email_consent", Kind::Bool),
            ("first_name", Kind::Text),
        ])
    }

    fn compile(json: &str) -> Result<Matcher> {
        let rule: Rule = serde_json::from_str(json).map_err(|e| Error::Invalid {
            path: "json".into(),
            message: e.to_string(),
        })?;
        rule.compile(&schema())
    }

    fn matcher(json: &str) -> Matcher {
        compile(json).expect("rule compiles")
    }

    fn error(json: &str) -> String {
        match compile(json) {
            Ok(m) => panic!("expected an error for {json}, got {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// churn_risk, orders, country, churn_tier, email_consent, first_name
    fn contact(
        risk: Option<f64>,
        orders: Option<f64>,
        country: Option<&'static str>,
        consent: Option<bool>,
    ) -> Vec<Value<'static>> {
        vec![
            risk.map_or(Value::Missing, Value::Number),
            orders.map_or(Value::Missing, Value::Number),
            country.map_or(Value::Missing, Value::Text),
            Value::Missing,
            consent.map_or(Value::Missing, Value::Bool),
            Value::Missing,
        ]
    }

    #[test]
    fn comparisons_on_numbers() {
        let r = contact(Some(0.7), Some(3.0), Some("DE"), Some(true));
        let low = contact(Some(0.69), Some(3.0), Some("DE"), Some(true));
        let cases = [
            (r#"{"field": "churn_risk", "gte": 0.7}"#, true, false),
            (r#"{"field": "churn_risk", "gt": 0.7}"#, false, false),
            (r#"{"field": "churn_risk", "lt": 0.7}"#, false, true),
            (r#"{"field": "churn_risk", "lte": 0.69}"#, false, true),
            (r#"{"field": "churn_risk", "eq": 0.7}"#, true, false),
            (r#"{"field": "churn_risk", "ne": 0.7}"#, false, true),
            (r#"{"field": "orders", "eq": 3}"#, true, true),
            (r#"{"field": "orders", "between": [3, 5]}"#, true, true),
            (r#"{"field": "orders", "between": [1, 2.99]}"#, false, false),
            (r#"{"field": "orders", "in": [1, 3, 7]}"#, true, true),
            (r#"{"field": "orders", "in": [1, 7]}"#, false, false),
        ];
        for (rule, on_r, on_low) in cases {
            let m = matcher(rule);
            assert_eq!(m.matches(&r), on_r, "{rule} on r");
            assert_eq!(m.matches(&low), on_low, "{rule} on low");
        }
    }

    #[test]
    fn an_in_list_weighs_its_binary_search_in_the_work_budget() {
        let countries: Vec<String> = (0..260).map(|i| format!("\"X{i}\"")).collect();
        let long = format!(r#"{{"field": "country", "in": [{}]}}"#, countries.join(","));
        assert_eq!(
            matcher(&long).nodes(),
            1 + 5,
            "260 values: 9 halvings, 4 of them a short list's"
        );
        assert_eq!(
            matcher(r#"{"field": "country", "in": ["AT", "DE"]}"#).nodes(),
            1
        );
        let many = format!(r#"{{"any": [{long}, {long}]}}"#);
        assert_eq!(matcher(&many).nodes(), 1 + 2 * 6);
    }

    #[test]
    fn text_and_bool_compare_exactly() {
        let r = contact(None, None, Some("DE"), Some(false));
        assert!(matcher(r#"{"field": "country", "eq": "DE"}"#).matches(&r));
        assert!(!matcher(r#"{"field": "country", "eq": "de"}"#).matches(&r));
        assert!(matcher(r#"{"field": "country", "ne": "AT"}"#).matches(&r));
        assert!(matcher(r#"{"field": "country", "in": ["AT", "DE"]}"#).matches(&r));
        assert!(!matcher(r#"{"field": "country", "in": ["AT", "de"]}"#).matches(&r));
        assert!(matcher(r#"{"field": "email_consent", "eq": false}"#).matches(&r));
        assert!(!matcher(r#"{"field": "email_consent", "ne": false}"#).matches(&r));
    }

    #[test]
    fn missing_never_satisfies_a_condition_but_not_inverts() {
        let r = contact(None, None, None, None);
        for rule in [
            r#"{"field": "churn_risk", "gte": 0}"#,
            r#"{"field": "churn_risk", "ne": 0.5}"#,
            r#"{"field": "orders", "between": [-1e9, 1e9]}"#,
            r#"{"field": "orders", "in": [0]}"#,
            r#"{"field": "country", "ne": "DE"}"#,
            r#"{"field": "country", "in": ["DE"]}"#,
            r#"{"field": "email_consent", "ne": true}"#,
            r#"{"field": "country", "present": true}"#,
        ] {
            assert!(!matcher(rule).matches(&r), "{rule}");
            let not = format!(r#"{{"not": {rule}}}"#);
            assert!(matcher(&not).matches(&r), "{not}");
        }
        assert!(matcher(r#"{"field": "country", "present": false}"#).matches(&r));
    }

    #[test]
    fn nan_in_a_record_reads_as_missing() {
        let r = contact(Some(f64::NAN), None, None, None);
        assert!(!matcher(r#"{"field": "churn_risk", "ne": 0.5}"#).matches(&r));
        assert!(!matcher(r#"{"field": "churn_risk", "present": true}"#).matches(&r));
    }

    #[test]
    fn combinators() {
        let r = contact(Some(0.8), Some(0.0), Some("DE"), Some(true));
        assert!(matcher(r#"{"all": []}"#).matches(&r));
        assert!(!matcher(r#"{"any": []}"#).matches(&r));
        let m = matcher(
            r#"{"all": [{"field": "churn_risk", "gte": 0.7},
                        {"any": [{"field": "country", "eq": "AT"}, {"field": "orders", "eq": 0}]}]}"#,
        );
        assert!(m.matches(&r));
        assert!(!m.matches(&contact(Some(0.8), Some(1.0), Some("DE"), Some(true))));
        assert!(!m.matches(&contact(Some(0.6), Some(0.0), Some("DE"), Some(true))));
        assert!(!m.matches(&contact(Some(0.6), Some(1.0), Some("AT"), Some(true))));
    }

    #[test]
    fn long_in_lists_are_searched_correctly() {
        let countries: Vec<String> = (0..50).map(|i| format!("\"C{i:02}\"")).collect();
        let m = matcher(&format!(
            r#"{{"field": "country", "in": [{}]}}"#,
            countries.join(",")
        ));
        for i in 0..50 {
            let name: &'static str = Box::leak(format!("C{i:02}").into_boxed_str());
            assert!(m.matches(&contact(None, None, Some(name), None)), "{name}");
        }
        assert!(!m.matches(&contact(None, None, Some("C50"), None)));
        assert!(!m.matches(&contact(None, None, Some("B00"), None)));

        let numbers: Vec<String> = (0..40).map(|i| (i * 3).to_string()).collect();
        let m = matcher(&format!(
            r#"{{"field": "orders", "in": [{}, -0.0]}}"#,
            numbers.join(",")
        ));
        assert!(m.matches(&contact(None, Some(0.0), None, None)));
        assert!(m.matches(&contact(None, Some(-0.0), None, None)));
        assert!(m.matches(&contact(None, Some(117.0), None, None)));
        assert!(!m.matches(&contact(None, Some(118.0), None, None)));
        assert!(!m.matches(&contact(None, Some(1.5), None, None)));
    }

    #[test]
    fn fields_read_are_reported() {
        let m = matcher(
            r#"{"any": [{"field": "country", "eq": "DE"}, {"not": {"field": "churn_risk", "gt": 1}},
                        {"field": "country", "present": true}]}"#,
        );
        assert_eq!(m.fields(), &[0, 2]);
    }

    #[test]
    fn unknown_fields_suggest_the_closest() {
        let e = error(r#"{"all": [{"field": "churn_rsik", "gte": 0.7}]}"#);
        assert!(
            e.starts_with("all[0]: unknown field `churn_rsik`; did you mean `churn_risk`? fields: churn_risk, "),
            "{e}"
        );
        let e = error(r#"{"field": "Country", "eq": "DE"}"#);
        assert!(e.contains("did you mean `country`?"), "{e}");
        let e = error(r#"{"field": "zzzzzzzzzzzz", "eq": "DE"}"#);
        assert!(
            e.starts_with("rule: unknown field `zzzzzzzzzzzz`; fields: "),
            "{e}"
        );
        for name in [
            "churn_risk",
            "orders",
            "country",
            "churn_tier",
            "email_consent",
            "first_name",
        ] {
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn unknown_field_list_is_capped() {
        let s = Schema::new((0..20).map(|i| (format!("attr_{i}"), Kind::Number)));
        let rule: Rule =
            serde_json::from_str(r#"{"field": "attr_x", "eq": 1}"#).expect("valid rule");
        let Err(Error::UnknownField { fields, more, .. }) = rule.compile(&s) else {
            panic!("expected an unknown field");
        };
        assert_eq!(fields.len(), 8);
        assert_eq!(more, 12);
        assert_eq!(Schema::default().index("x"), None);
    }

    #[test]
    fn kinds_must_fit() {
        let e = error(r#"{"field": "country", "gte": 5}"#);
        assert!(
            e.starts_with("rule: `country` is text; `gte` needs a number field"),
            "{e}"
        );
        let e = error(r#"{"field": "orders", "eq": "5"}"#);
        assert!(
            e.starts_with("rule: `orders` is a number; `eq` needs a number, found text \"5\""),
            "{e}"
        );
        let e = error(r#"{"field": "country", "eq": 49}"#);
        assert!(e.contains("write it in quotes: \"49\""), "{e}");
        let e = error(r#"{"field": "email_consent", "eq": "yes"}"#);
        assert!(e.contains("`eq` needs true or false"), "{e}");
        let e = error(r#"{"field": "email_consent", "in": ["yes"]}"#);
        assert!(
            e.contains("`email_consent` is a bool; `in` needs a number or text field"),
            "{e}"
        );
        let e = error(r#"{"field": "orders", "in": ["1"]}"#);
        assert!(e.contains("needs a list of numbers"), "{e}");
        let e = error(r#"{"field": "country", "in": [1]}"#);
        assert!(e.contains("needs a list of strings"), "{e}");
        let e = error(r#"{"any": [{"field": "churn_tier", "between": [1, 2]}]}"#);
        assert!(
            e.starts_with("any[0]: `churn_tier` is text; `between` needs a number field"),
            "{e}"
        );
        assert!(compile(r#"{"field": "email_consent", "present": true}"#).is_ok());
    }

    #[test]
    fn compile_revalidates_rules_built_in_code() {
        let rule = Rule::Between {
            field: "orders".into(),
            low: 5.0,
            high: 2.0,
        };
        assert!(rule.compile(&schema()).is_err());
        let rule = Rule::Compare {
            field: "orders".into(),
            op: Op::Gt,
            value: Scalar::Number(f64::INFINITY),
        };
        assert!(rule.compile(&schema()).is_err());
    }

    #[test]
    fn matchers_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Matcher>();
        assert_send_sync::<Schema>();
    }

    #[test]
    fn records_out_of_range_read_missing() {
        let values = [Value::Number(1.0)];
        assert_eq!(values[..].value(5), Value::Missing);
        let m = matcher(r#"{"field": "first_name", "present": false}"#);
        assert!(m.matches(&values[..]));
    }
}
