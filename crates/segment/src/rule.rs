//! The rule language: the [`Rule`] tree, how it is read from JSON and TOML, and its validation.
//!
//! Reading goes through a permissive intermediate shape ([`RawRule`]: every key optional, unknown
//! keys refused) and is then validated into [`Rule`]. Doing it in two steps, instead of letting serde
//! pick an enum variant, is what lets errors say *where* the rule is wrong (`all[1].any[0]`) and
//! *what* would fix it; serde's own "data did not match any variant" says neither.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Deepest allowed nesting of `all`/`any`/`not` (the top node is level 1).
///
/// Matching recurses once per level; the cap keeps a hostile API body from exhausting the stack
/// and is far above what a person writes (real segments nest three or four levels).
pub const MAX_DEPTH: usize = 32;

/// Most nodes (conditions plus `all`/`any`/`not`) a rule may have.
///
/// Bounds compile time and the per-contact cost of matching, which runs over every contact; long
/// lists of values belong in one `in`, which counts as a single node.
pub const MAX_NODES: usize = 1_000;

/// A segment rule: a tree of combinators over conditions on one field each.
///
/// Serializes to (and deserializes from) the documented JSON/TOML shape, e.g.
/// `{"all": [{"field": "churn_tier", "in": ["high", "critical"]}, {"field": "country", "eq": "DE"}]}`.
/// A rule built in code is checked by [`Rule::validate`] and again by [`Rule::compile`](crate::Rule::compile).
///
/// **Missing values.** A condition on a missing value is false — every comparison, `ne` and `in`
/// included — and `not` turns that into true. This is a two-valued simplification of SQL's
/// three-valued logic: `{"not": {"field": "country", "eq": "DE"}}` selects contacts with no country,
/// while `{"field": "country", "ne": "DE"}` does not. Use `present` to say what you mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Every rule must match (AND); an empty list matches every contact.
    All(Vec<Rule>),
    /// At least one rule must match (OR); an empty list matches no contact.
    Any(Vec<Rule>),
    /// The rule must not match.
    Not(Box<Rule>),
    /// `field <op> value`, e.g. `churn_risk >= 0.7`.
    Compare {
        /// Field name, resolved against the schema at compile time.
        field: String,
        /// The operator.
        op: Op,
        /// The value compared with; its kind must be the field's kind.
        value: Scalar,
    },
    /// The field's value is one of a list (strings for text fields, numbers for number fields).
    In {
        /// Field name.
        field: String,
        /// The accepted values; never empty.
        values: List,
    },
    /// `low <= field <= high` on a number field.
    Between {
        /// Field name.
        field: String,
        /// Inclusive lower bound.
        low: f64,
        /// Inclusive upper bound, `>= low`.
        high: f64,
    },
    /// Whether the field has a value (`true`) or is missing (`false`).
    Present {
        /// Field name.
        field: String,
        /// `true`: has a value; `false`: is missing.
        present: bool,
    },
}

/// Comparison operator of [`Rule::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Equal: exact for numbers (`f64` equality) and for text (case-sensitive).
    Eq,
    /// Not equal (still false when the value is missing).
    Ne,
    /// Less than (numbers only).
    Lt,
    /// Less than or equal (numbers only).
    Lte,
    /// Greater than (numbers only).
    Gt,
    /// Greater than or equal (numbers only).
    Gte,
}

impl Op {
    /// Every operator, in the order the rule language lists them.
    pub const ALL: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte];

    /// The operator's key in a rule (`"gte"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
        }
    }

    /// Whether the operator orders values, which only numbers have.
    pub fn is_ordering(self) -> bool {
        !matches!(self, Op::Eq | Op::Ne)
    }

    /// `left <op> right` on numbers (`NaN` never reaches here: validation and matching exclude it).
    pub(crate) fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Lt => left < right,
            Op::Lte => left <= right,
            Op::Gt => left > right,
            Op::Gte => left >= right,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value in a condition: a number, a string or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A number; integers are read as `f64`.
    Number(f64),
    /// A string, compared exactly (case-sensitive).
    Text(String),
    /// `true` or `false`.
    Bool(bool),
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Number(v)
    }
}

impl From<&str> for Scalar {
    fn from(v: &str) -> Self {
        Scalar::Text(v.to_string())
    }
}

impl From<String> for Scalar {
    fn from(v: String) -> Self {
        Scalar::Text(v)
    }
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl fmt::Display for Scalar {
    /// As an error message would quote it: `5`, `"DE"`, `true`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Number(v) => write!(f, "{v}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Scalar {
    /// "the number 5", "text \"DE\"", "true": for error messages.
    pub(crate) fn described(&self) -> String {
        match self {
            Scalar::Number(_) => format!("the number {self}"),
            Scalar::Text(_) => format!("text {self}"),
            Scalar::Bool(_) => format!("{self}"),
        }
    }
}

/// The values of an `in` condition: all strings or all numbers, so that one kind check at compile
/// time covers the whole list.
#[derive(Debug, Clone, PartialEq)]
pub enum List {
    /// For number fields.
    Numbers(Vec<f64>),
    /// For text fields.
    Texts(Vec<String>),
}

impl List {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            List::Numbers(v) => v.len(),
            List::Texts(v) => v.len(),
        }
    }

    /// Whether there are no values (invalid in a rule).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and limits, shared with compilation.

/// Where a node sits in the rule, kept on the stack while walking and rendered only for errors,
/// so a valid rule costs no allocation for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step,
    /// Nesting level of the node: 1 for the top.
    depth: usize,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Root,
    Item(&'static str, usize),
    Not,
}

impl Path<'static> {
    /// The top of the rule.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
        depth: 1,
    };
}

impl<'a> Path<'a> {
    /// The `index`-th rule of this node's `all` or `any` list.
    pub(crate) fn item(&'a self, key: &'static str, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Step::Item(key, index),
            depth: self.depth + 1,
        }
    }

    /// The rule under this node's `not`.
    pub(crate) fn not(&'a self) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Step::Not,
            depth: self.depth + 1,
        }
    }
}

impl fmt::Display for Path<'_> {
    /// `all[1].any[0]`, `not`, or `rule` for the top node.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps = Vec::with_capacity(self.depth);
        let mut node = Some(self);
        while let Some(p) = node {
            steps.push(p.step);
            node = p.parent;
        }
        let mut first = true;
        for step in steps.iter().rev() {
            let sep = if first { "" } else { "." };
            match step {
                Step::Root => continue,
                Step::Item(key, i) => write!(f, "{sep}{key}[{i}]")?,
                Step::Not => write!(f, "{sep}not")?,
            }
            first = false;
        }
        if first {
            f.write_str("rule")?;
        }
        Ok(())
    }
}

/// Counts nodes and checks depth while walking a rule, so that limits are enforced before
/// recursing further.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    nodes: usize,
}

impl Budget {
    /// Accounts for the node at `path`.
    pub(crate) fn enter(&mut self, path: &Path<'_>) -> Result<()> {
        self.nodes += 1;
        if path.depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                path: path.to_string(),
                limit: MAX_DEPTH,
            });
        }
        if self.nodes > MAX_NODES {
            return Err(Error::TooManyNodes {
                path: path.to_string(),
                limit: MAX_NODES,
            });
        }
        Ok(())
    }
}

fn invalid(path: &Path<'_>, message: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_string(),
        message: message.into(),
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

/// The operator keys of a condition, for "give exactly one of …".
const OPERATORS: &str = "eq, ne, lt, lte, gt, gte, in, between, present";

// ---------------------------------------------------------------------------------------------
// Validation.

impl Rule {
    /// Checks what can be checked without a schema: nesting and size limits, one non-empty field
    /// name per condition, finite numbers, `between` bounds in order, `in` lists not empty,
    /// ordering operators only with numbers.
    ///
    /// Deserialized rules have passed this already; it exists for rules built in code, and
    /// [`Rule::compile`](crate::Rule::compile) runs it too.
    pub fn validate(&self) -> Result<()> {
        self.validate_at(&Path::ROOT, &mut Budget::default())
    }

    fn validate_at(&self, path: &Path<'_>, budget: &mut Budget) -> Result<()> {
        budget.enter(path)?;
        match self {
            Rule::All(rules) | Rule::Any(rules) => {
                let key = if matches!(self, Rule::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (i, rule) in rules.iter().enumerate() {
                    rule.validate_at(&path.item(key, i), budget)?;
                }
                Ok(())
            }
            Rule::Not(rule) => rule.validate_at(&path.not(), budget),
            Rule::Compare { field, op, value } => {
                check_field(field, path)?;
                check_compare(*op, value, path)
            }
            Rule::In { field, values } => {
                check_field(field, path)?;
                check_list(values, path)
            }
            Rule::Between { field, low, high } => {
                check_field(field, path)?;
                check_between(*low, *high, path)
            }
            Rule::Present { field, .. } => check_field(field, path),
        }
    }

    /// The field name of a condition; `None` for `all`, `any` and `not`.
    pub fn field(&self) -> Option<&str> {
        match self {
            Rule::All(_) | Rule::Any(_) | Rule::Not(_) => None,
            Rule::Compare { field, .. }
            | Rule::In { field, .. }
            | Rule::Between { field, .. }
            | Rule::Present { field, .. } => Some(field),
        }
    }
}

fn check_field(field: &str, path: &Path<'_>) -> Result<()> {
    if field.trim().is_empty() {
        return Err(invalid(path, "`field` is empty; name the field to test"));
    }
    Ok(())
}

fn check_finite(v: f64, key: &str, path: &Path<'_>) -> Result<()> {
    if !v.is_finite() {
        return Err(invalid(
            path,
            format!("`{key}` needs a finite number, found {v}"),
        ));
    }
    Ok(())
}

fn check_compare(op: Op, value: &Scalar, path: &Path<'_>) -> Result<()> {
    match value {
        Scalar::Number(v) => check_finite(*v, op.as_str(), path),
        Scalar::Text(_) if op.is_ordering() => Err(invalid(
            path,
            format!(
                "`{op}` compares numbers, found {}; text is matched with eq, ne or in",
                value.described()
            ),
        )),
        Scalar::Bool(_) if op.is_ordering() => Err(invalid(
            path,
            format!(
                "`{op}` compares numbers, found {}; true/false is matched with eq or ne",
                value.described()
            ),
        )),
        Scalar::Text(_) | Scalar::Bool(_) => Ok(()),
    }
}

fn check_list(values: &List, path: &Path<'_>) -> Result<()> {
    if values.is_empty() {
        return Err(invalid(
            path,
            "`in` needs at least one value (an `any` with an empty list matches nothing, if that is meant)",
        ));
    }
    if let List::Numbers(numbers) = values {
        for v in numbers {
            check_finite(*v, "in", path)?;
        }
    }
    Ok(())
}

fn check_between(low: f64, high: f64, path: &Path<'_>) -> Result<()> {
    check_finite(low, "between", path)?;
    check_finite(high, "between", path)?;
    if low > high {
        return Err(invalid(
            path,
            format!("`between` needs [low, high] with low <= high (found [{low}, {high}])"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading.

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
                    let mut extra = operators.clone();
                    if has_field {
                        extra.insert(0, "field");
                    }
                    let fix = if *key == "all" {
                        "move the condition into the `all` list"
                    } else {
                        "put both into an `all` list"
                    };
                    return Err(invalid(
                        path,
                        format!(
                            "a node with `{key}` cannot also have {}; {fix}",
                            and_list(&extra)
                        ),
                    ));
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
            let (low, high) = match bounds.as_slice() {
                [Scalar::Number(low), Scalar::Number(high)] => (*low, *high),
                [low, high] => {
                    let odd = if matches!(low, Scalar::Number(_)) {
                        high
                    } else {
                        low
                    };
                    return Err(invalid(
                        path,
                        format!(
                            "`between` needs [low, high] with low <= high as numbers (found {})",
                            odd.described()
                        ),
                    ));
                }
                other => {
                    return Err(invalid(
                        path,
                        format!(
                            "`between` needs [low, high] with low <= high (found {} values)",
                            other.len()
                        ),
                    ));
                }
            };
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

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawRule::deserialize(deserializer)?;
        Rule::from_raw(raw, &Path::ROOT, &mut Budget::default()).map_err(de::Error::custom)
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

    fn parse(json: &str) -> Result<Rule, String> {
        serde_json::from_str::<Rule>(json).map_err(|e| e.to_string())
    }

    fn parse_err(json: &str) -> String {
        match parse(json) {
            Ok(rule) => panic!("expected an error for {json}, got {rule:?}"),
            Err(e) => e,
        }
    }

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

    #[test]
    fn non_finite_numbers_are_refused() {
        let rule = Rule::Compare {
            field: "a".into(),
            op: Op::Eq,
            value: Scalar::Number(f64::NAN),
        };
        let e = rule.validate().expect_err("NaN").to_string();
        assert_eq!(e, "rule: `eq` needs a finite number, found NaN");
        let rule = Rule::Between {
            field: "a".into(),
            low: f64::NEG_INFINITY,
            high: 0.0,
        };
        assert!(rule.validate().is_err());
        let rule = Rule::In {
            field: "a".into(),
            values: List::Numbers(vec![1.0, f64::INFINITY]),
        };
        assert!(rule.validate().is_err());
    }

    #[test]
    fn depth_is_capped() {
        let leaf = r#"{"field": "a", "eq": 1}"#;
        let nest = |levels: usize| {
            let mut json = leaf.to_string();
            for _ in 1..levels {
                json = format!(r#"{{"not": {json}}}"#);
            }
            json
        };
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        let e = parse_err(&nest(MAX_DEPTH + 1));
        assert!(e.contains("deeper than 32 levels"), "{e}");
        assert!(e.starts_with(&"not.".repeat(MAX_DEPTH - 1)), "{e}");

        // Built in code, far past the limit: refused at level 33, before recursing further.
        let mut rule = Rule::Present {
            field: "a".into(),
            present: true,
        };
        for _ in 0..1_000 {
            rule = Rule::All(vec![rule]);
        }
        assert!(matches!(
            rule.validate(),
            Err(Error::TooDeep { limit: 32, .. })
        ));
    }

    #[test]
    fn node_count_is_capped() {
        let leaves = |n: usize| vec![r#"{"field": "a", "eq": 1}"#; n].join(",");
        // The `any` node plus its leaves.
        assert!(parse(&format!(r#"{{"any": [{}]}}"#, leaves(MAX_NODES - 1))).is_ok());
        let e = parse_err(&format!(r#"{{"any": [{}]}}"#, leaves(MAX_NODES)));
        assert!(e.contains("more than 1000 nodes"), "{e}");
        assert!(e.starts_with("any[999]:"), "{e}");
    }

    #[test]
    fn paths_render() {
        let root = Path::ROOT;
        assert_eq!(root.to_string(), "rule");
        let a = root.item("all", 1);
        let b = a.item("any", 0);
        let c = b.not();
        assert_eq!(c.to_string(), "all[1].any[0].not");
        assert_eq!(root.not().to_string(), "not");
    }
}
