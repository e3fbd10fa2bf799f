//! What a contact offers to rules: the field [`Kind`]s, the [`Schema`] naming the fields, and the
//! [`Value`]s a [`Record`] holds for them.
//!
//! This is the vocabulary shared by the rule compiler and its errors (an error names the kind a
//! field has), so it depends on nothing else in the crate: the compiler and the error type both
//! import from here, never the other way round.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `f64` values: scores, counts, days.
    Number,
    /// Strings, compared exactly.
    Text,
    /// `true`/`false`.
    Bool,
}

impl Kind {
    /// "a number", "text", "a bool": for "`country` is text".
    pub(crate) fn described(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "text",
            Kind::Bool => "a bool",
        }
    }

    /// What a value for this kind looks like, for "`eq` needs a number".
    pub(crate) fn value_described(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "a string",
            Kind::Bool => "true or false",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Number => "number",
            Kind::Text => "text",
            Kind::Bool => "bool",
        })
    }
}

/// The fields rules may name, in the order a [`Record`] indexes them.
///
/// The crate knows no field names itself (apart from the built-in segments' rules); the service
/// decides what a contact offers and says so here.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    names: Vec<String>,
    kinds: Vec<Kind>,
    index: HashMap<String, usize>,
}

impl Schema {
    /// A schema whose field `i` is the `i`-th pair given.
    ///
    /// A name given twice keeps both positions (so that indexes still line up with the records),
    /// but rules resolve it to the first.
    pub fn new<S: Into<String>>(fields: impl IntoIterator<Item = (S, Kind)>) -> Self {
        let mut schema = Schema::default();
        for (name, kind) in fields {
            let name = name.into();
            let i = schema.names.len();
            schema.index.entry(name.clone()).or_insert(i);
            schema.names.push(name);
            schema.kinds.push(kind);
        }
        schema
    }

    /// The index of a field, as rules and records use it.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The index and kind of a field.
    pub(crate) fn lookup(&self, name: &str) -> Option<(usize, Kind)> {
        let index = self.index(name)?;
        Some((index, self.kind(index)?))
    }

    /// The kind of field `index`.
    pub fn kind(&self, index: usize) -> Option<Kind> {
        self.kinds.get(index).copied()
    }

    /// Every field with its kind, in index order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, Kind)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.kinds.iter().copied())
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the schema has no fields.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Each distinct field name with its [`distance`] from `name`, closest first (ties in index
    /// order), so that an unknown name can be answered with the likely typo and the known names.
    ///
    /// A name given twice appears once, as rules see it.
    pub(crate) fn closest_to(&self, name: &str) -> Vec<(usize, &str)> {
        let mut ranked: Vec<(usize, usize)> = self
            .index
            .values()
            .map(|&i| (distance(name, &self.names[i]), i))
            .collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .map(|(d, i)| (d, self.names[i].as_str()))
            .collect()
    }
}

/// Edit distance ignoring ASCII case, counting insertions, deletions, substitutions and swaps of
/// neighbours as one each (so `churn_rsik` is 1 from `churn_risk`, `Country` 0 from `country`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Three rows of the optimal-string-alignment table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// One field's value in one record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// No value. A `NaN` number is read as missing too, since that is how columnar stores mark
    /// a missing float.
    Missing,
    /// A number.
    Number(f64),
    /// A string.
    Text(&'a str),
    /// A boolean.
    Bool(bool),
}

/// A contact (or anything else) whose fields a [`Matcher`](crate::Matcher) reads by schema index.
///
/// Implement it over the service's columnar store so that matching reads values in place.
pub trait Record {
    /// The value of field `field` (a [`Schema`] index). Out-of-range indexes should read as
    /// [`Value::Missing`].
    fn value(&self, field: usize) -> Value<'_>;
}

/// Values in schema order, handy for tests and small callers.
impl Record for [Value<'_>] {
    fn value(&self, field: usize) -> Value<'_> {
        self.get(field).copied().unwrap_or(Value::Missing)
    }
}

/// Values in schema order.
impl Record for Vec<Value<'_>> {
    fn value(&self, field: usize) -> Value<'_> {
        self.as_slice().value(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_indexes_in_order_and_first_name_wins() {
        let s = Schema::new([("a", Kind::Number), ("b", Kind::Text), ("a", Kind::Bool)]);
        assert_eq!(s.index("a"), Some(0));
        assert_eq!(s.index("b"), Some(1));
        assert_eq!(s.index("c"), None);
        assert_eq!(s.len(), 3);
        let fields: Vec<_> = s.fields().collect();
        assert_eq!(
            fields,
            [("a", Kind::Number), ("b", Kind::Text), ("a", Kind::Bool)]
        );
    }

    #[test]
    fn distance_counts_swaps_once() {
        assert_eq!(distance("churn_rsik", "churn_risk"), 1);
        assert_eq!(distance("country", "country"), 0);
        assert_eq!(distance("cntry", "country"), 2);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("Country", "country"), 0);
    }
}
