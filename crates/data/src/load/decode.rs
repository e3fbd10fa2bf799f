//! Decoding one row group into contract-typed columns. This is the part that runs on all cores:
//! decompression, Parquet decoding, casts and timestamp parsing.

use std::fs::File;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Float64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::source::{AttributeType, FieldSource, FileSource, is_stringish};
use crate::contract::{FieldType, TableKind};
use crate::error::{Error, Result};
use crate::ids::is_null_spelling;
use crate::time::{TimeColumn, TimeReader};

/// Values of one contract field in one batch.
#[derive(Debug)]
pub(crate) enum Values {
    /// Ids and text, as strings.
    Strings(StringArray),
    /// Numbers.
    Numbers(Float64Array),
    /// Booleans.
    Flags(BooleanArray),
    /// Instants.
    Times(TimeColumn),
    /// The field is not in this file.
    Absent,
}

impl Values {
    pub fn str(&self, row: usize) -> Option<&str> {
        match self {
            Self::Strings(a) if a.is_valid(row) => Some(a.value(row)),
            _ => None,
        }
    }

    pub fn number(&self, row: usize) -> Option<f64> {
        match self {
            Self::Numbers(a) if a.is_valid(row) => Some(a.value(row)).filter(|v| v.is_finite()),
            _ => None,
        }
    }

    pub fn flag(&self, row: usize) -> Option<bool> {
        match self {
            Self::Flags(a) if a.is_valid(row) => Some(a.value(row)),
            _ => None,
        }
    }

    pub fn times(&self) -> Option<&TimeColumn> {
        match self {
            Self::Times(t) => Some(t),
            _ => None,
        }
    }
}

/// A decoded batch: one `Values` per contract field (in `TableKind::fields()` order) and the
/// attribute columns.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub rows: usize,
    pub fields: Vec<Values>,
    /// Per number field given as text: how many values could not be read as numbers (they
    /// read as missing) and the first of them.
    pub unreadable: Vec<(&'static str, u64, String)>,
    pub attributes: Vec<(String, AttributeType, ArrayRef)>,
}

impl Decoded {
    /// The values of a contract field by name.
    pub fn field(&self, table: TableKind, name: &str) -> &Values {
        let i = table
            .fields()
            .iter()
            .position(|f| f.name == name)
            .unwrap_or(usize::MAX);
        self.fields.get(i).unwrap_or(&Values::Absent)
    }
}

/// Reads one row group of a file into decoded batches.
pub(crate) fn decode_row_group(
    file: &FileSource,
    row_group: usize,
    table: TableKind,
    times: &TimeReader,
    batch_size: usize,
) -> Result<Vec<Decoded>> {
    let read_err = |e: &dyn std::fmt::Display| Error::Read {
        path: file.path.clone(),
        reason: e.to_string(),
    };
    let handle = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, file.metadata.clone())
        .with_projection(file.projection.clone())
        .with_row_groups(vec![row_group])
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| read_err(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| read_err(&e))?;
        out.push(decode_batch(&batch, file, table, times).map_err(|e| read_err(&e))?);
    }
    Ok(out)
}

fn decode_batch(
    batch: &RecordBatch,
    file: &FileSource,
    table: TableKind,
    times: &TimeReader,
) -> std::result::Result<Decoded, arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let mut fields = Vec::with_capacity(file.fields.len());
    let mut unreadable = Vec::new();
    for (field, source) in table.fields().iter().zip(&file.fields) {
        let array: ArrayRef = match source {
            FieldSource::Absent => {
                fields.push(Values::Absent);
                continue;
            }
            FieldSource::Column(i) => batch.column(*i).clone(),
            FieldSource::Partition(value) => {
                Arc::new(StringArray::from(vec![value.as_deref(); rows]))
            }
        };
        if field.ty == FieldType::Number && is_stringish(array.data_type()) {
            let (numbers, bad) = numbers_from_text(array.as_ref())?;
            if let Some((n, first)) = bad {
                unreadable.push((field.name, n, first));
            }
            fields.push(Values::Numbers(numbers));
            continue;
        }
        fields.push(typed(array.as_ref(), field.ty, times)?);
    }
    let mut attributes: Vec<(String, AttributeType, ArrayRef)> = file
        .attributes
        .iter()
        .map(|(name, i, ty)| (name.clone(), *ty, batch.column(*i).clone()))
        .collect();
    for (name, value) in &file.partition_attributes {
        let column: ArrayRef = Arc::new(StringArray::from(vec![value.as_deref(); rows]));
        attributes.push((name.clone(), AttributeType::Text, column));
    }
    Ok(Decoded {
        rows,
        fields,
        unreadable,
        attributes,
    })
}

/// Numbers written as text, read by [`parse_number`]; with the count and first example of the
/// non-empty values that are not numbers.
fn numbers_from_text(
    array: &dyn Array,
) -> std::result::Result<(Float64Array, Option<(u64, String)>), arrow::error::ArrowError> {
    let text = arrow::compute::cast(array, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let mut bad: Option<(u64, String)> = None;
    let numbers = (0..text.len())
        .map(|i| {
            let raw = text.value(i).trim();
            // Empty, or a spelling of "missing": missing, not unreadable.
            if text.is_null(i) || raw.is_empty() || raw == "-" || is_null_spelling(raw) {
                return None;
            }
            let v = parse_number(raw);
            if v.is_none() {
                let entry = bad.get_or_insert_with(|| (0, text.value(i).to_string()));
                entry.0 += 1;
            }
            v
        })
        .collect();
    Ok((numbers, bad))
}

/// A number as exports write it: plain (`3.99`, `-2`, `1e3`); with a currency sign or a
/// three-letter code around it (`$3.99`, `3.99 EUR`, `-€4`); negative as `(3.99)`, `3.99-` or
/// with a Unicode minus; with thousands separators in groups of three (`1,234.00`,
/// `1.234,00`, `1 234,50`) or a decimal comma (`3,99`, `0,125`). A lone comma before exactly
/// three digits after a non-zero whole part (`1,234`) is a thousands separator. `None` for
/// anything else, including units (`3 kg`).
pub(crate) fn parse_number(raw: &str) -> Option<f64> {
    let s = raw.trim();
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let (negative, s) = strip_sign(s);
    let s = strip_currency(s);
    let (negative, s) = match strip_sign(s) {
        (true, rest) => (!negative, rest),
        (false, rest) => (negative, rest),
    };
    let s: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return None;
    }
    let (whole, fraction) = match (s.rfind('.'), s.rfind(',')) {
        (Some(dot), Some(comma)) if dot > comma => (&s[..dot], Some(&s[dot + 1..])),
        (Some(_), Some(comma)) => (&s[..comma], Some(&s[comma + 1..])),
        (None, Some(comma)) => {
            let after = &s[comma + 1..];
            let lone = s.matches(',').count() == 1;
            let thousands = after.len() == 3 && !s[..comma].trim_start_matches('0').is_empty();
            if lone && !thousands {
                (&s[..comma], Some(after))
            } else {
                (s.as_str(), None)
            }
        }
        (Some(dot), None) if s.matches('.').count() == 1 => (&s[..dot], Some(&s[dot + 1..])),
        _ => (s.as_str(), None),
    };
    // The whole part: digits, or groups of three after the first, split by one kind of mark.
    let groups: Vec<&str> = whole.split(['.', ',']).collect();
    let grouped = groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3));
    if !grouped || fraction.is_some_and(|f| f.contains(['.', ','])) {
        return None;
    }
    let digits = format!("{}.{}", groups.concat(), fraction.unwrap_or("0"));
    let v = digits.parse::<f64>().ok()?;
    Some(if negative { -v } else { v })
}

/// A leading `-`, a Unicode minus, a trailing `-` or surrounding parentheses (accounting).
fn strip_sign(s: &str) -> (bool, &str) {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return (true, rest.trim());
    }
    for minus in ['-', '\u{2212}'] {
        if let Some(rest) = s.strip_prefix(minus).or_else(|| s.strip_suffix(minus)) {
            return (true, rest.trim());
        }
    }
    (false, s)
}

/// Currency signs an amount may carry.
const CURRENCY_SIGNS: &str = "$€£¥₹";

/// The amount without a currency sign or a three-letter code (`EUR`, `USD`) before or after it.
fn strip_currency(s: &str) -> &str {
    let s = s
        .trim()
        .trim_matches(|c: char| CURRENCY_SIGNS.contains(c))
        .trim();
    let code = |t: &str| t.len() == 3 && t.bytes().all(|b| b.is_ascii_uppercase());
    if let Some((head, rest)) = s.split_at_checked(3)
        && code(head)
    {
        return rest
            .trim_start_matches(|c: char| CURRENCY_SIGNS.contains(c) || c == ' ')
            .trim();
    }
    if let Some((rest, tail)) = s.len().checked_sub(3).and_then(|i| s.split_at_checked(i))
        && code(tail)
    {
        return rest
            .trim_end_matches(|c: char| CURRENCY_SIGNS.contains(c) || c == ' ')
            .trim();
    }
    s
}

fn typed(
    array: &dyn Array,
    ty: FieldType,
    times: &TimeReader,
) -> std::result::Result<Values, arrow::error::ArrowError> {
    Ok(match ty {
        FieldType::Id | FieldType::Text => Values::Strings(
            arrow::compute::cast(array, &DataType::Utf8)?
                .as_string::<i32>()
                .clone(),
        ),
        FieldType::Number => Values::Numbers(
            arrow::compute::cast(array, &DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone(),
        ),
        FieldType::Flag => Values::Flags(
            arrow::compute::cast(array, &DataType::Boolean)?
                .as_boolean()
                .clone(),
        ),
        FieldType::Timestamp => Values::Times(times.read(array)),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_number;

    #[test]
    fn numbers_as_exports_write_them() {
        for (raw, want) in [
            ("3.99", Some(3.99)),
            (" -2 ", Some(-2.0)),
            ("$3.99", Some(3.99)),
            ("3.99 EUR", Some(3.99)),
            ("€ 4", Some(4.0)),
            ("1,234.50", Some(1234.5)),
            ("1.234,50", Some(1234.5)),
            ("3,99", Some(3.99)),
            ("1,234", Some(1234.0)),
            ("1,234,567", Some(1_234_567.0)),
            ("0,125", Some(0.125)),
            ("1 234,50", Some(1234.5)),
            ("-$3.99", Some(-3.99)),
            ("-€4", Some(-4.0)),
            ("(3.99)", Some(-3.99)),
            ("3.99-", Some(-3.99)),
            ("\u{2212}3.99", Some(-3.99)),
            ("USD 12", Some(12.0)),
            ("1e5", Some(1e5)),
            ("1,5e3", None),
            ("1,2,3", None),
            ("1.2.3", None),
            ("1.5k", None),
            ("3 kg", None),
            ("2 pcs", None),
            ("12,5 %", None),
            ("n/a", None),
            ("three", None),
            ("", None),
        ] {
            assert_eq!(parse_number(raw), want, "{raw:?}");
        }
    }
}
