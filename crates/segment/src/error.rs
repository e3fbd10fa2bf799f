//! The one error type of `augur-segment`.

use crate::schema::Kind;

/// Everything that can be wrong with a rule or a segment.
///
/// Rules arrive from HTTP bodies and from `augur.toml`, written by people; so every variant names
/// where in the rule the problem is (a path such as `all[1].any[0]`, or `rule` for the top), what
/// is wrong, and what would fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The rule is malformed: wrong operators, a missing `field`, bad values.
    #[error("{path}: {message}")]
    Invalid {
        /// Where in the rule, e.g. `all[1].any[0]`.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The rule nests deeper than [`MAX_DEPTH`](crate::MAX_DEPTH) levels.
    #[error(
        "{path}: the rule nests deeper than {limit} levels of all/any/not; flatten it (an `all` inside an `all` can be merged, `in` replaces an `any` of `eq`s)"
    )]
    TooDeep {
        /// The node at which the limit was crossed.
        path: String,
        /// The limit.
        limit: usize,
    },

    /// The rule has more than [`MAX_NODES`](crate::MAX_NODES) nodes.
    #[error(
        "{path}: the rule has more than {limit} nodes (conditions and all/any/not); simplify it (`in` replaces an `any` of `eq`s)"
    )]
    TooManyNodes {
        /// The node at which the limit was crossed.
        path: String,
        /// The limit.
        limit: usize,
    },

    /// A condition names a field the schema does not have.
    #[error("{path}: unknown field `{field}`{} fields: {}", did_you_mean(.suggestion.as_deref()), list(.fields, *.more))]
    UnknownField {
        /// Where in the rule.
        path: String,
        /// The name as written.
        field: String,
        /// The closest known name, if one is close enough to be a likely typo.
        suggestion: Option<String>,
        /// Some known field names (the closest ones first).
        fields: Vec<String>,
        /// How many known names were left out of `fields`.
        more: usize,
    },

    /// A condition does not fit the kind of its field (`gte` on a text field, `eq "5"` on a number).
    #[error("{path}: `{field}` is {}; {message}", kind.described())]
    WrongKind {
        /// Where in the rule.
        path: String,
        /// The field.
        field: String,
        /// The field's kind in the schema.
        kind: Kind,
        /// What the condition needs instead.
        message: String,
    },

    /// A configured segment name is not a slug.
    #[error(
        "segments.{name:?}: segment names must be 1 to 64 characters of a-z, 0-9, `_` and `-` (they appear in URLs and file names)"
    )]
    InvalidName {
        /// The name as configured.
        name: String,
    },

    /// A configured segment's rule is invalid for the schema.
    #[error("segments.{name}: {source}")]
    Segment {
        /// The segment.
        name: String,
        /// What is wrong with its rule.
        source: Box<Error>,
    },

    /// A built-in segment does not compile against the schema (the schema lacks its fields).
    #[error(
        "built-in segment `{name}`: {source}; the schema must offer the lifecycle fields, or replace the segment with `[segments.{name}]`"
    )]
    Builtin {
        /// The built-in segment.
        name: String,
        /// What is wrong with its rule against this schema.
        source: Box<Error>,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `"; did you mean `x`?"`, or just `";"` when nothing is close.
fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(|| ";".to_string(), |s| format!("; did you mean `{s}`?"))
}

/// The names, then how many were left out.
fn list(fields: &[String], more: usize) -> String {
    if fields.is_empty() {
        return "(the schema has none)".to_string();
    }
    let mut out = fields.join(", ");
    if more > 0 {
        out.push_str(&format!(", … ({more} more)"));
    }
    out
}
