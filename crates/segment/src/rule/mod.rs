//! The rule language: the [`Rule`] tree, its validation, and the paths and limits that reading
//! and compiling share.
//!
//! How a rule is read from and written to JSON and TOML is in the `serde` submodule. Reading
//! runs the checks defined here as it goes, so that a rule read from text and one built in code
//! pass the same checks, and reading's errors point into the rule.

use std::fmt;

use crate::error::{Error, Result};

mod serde;

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
// Paths and limits, shared with reading (the `serde` submodule) and compilation.

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

/// An [`Error::Invalid`] at `path`: the error of every check that needs no schema.
fn invalid(path: &Path<'_>, message: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule read from JSON, or serde's error message (which carries the rule's own errors).
    pub(super) fn parse(json: &str) -> Result<Rule, String> {
        serde_json::from_str::<Rule>(json).map_err(|e| e.to_string())
    }

    /// The error message for JSON expected not to read as a rule.
    pub(super) fn parse_err(json: &str) -> String {
        match parse(json) {
            Ok(rule) => panic!("expected an error for {json}, got {rule:?}"),
            Err(e) => e,
        }
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
