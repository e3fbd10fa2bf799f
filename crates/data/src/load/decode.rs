//! Decoding one row group into contract-typed columns. This is the part that runs on all cores:
//! decompression, Parquet decoding, casts and timestamp parsing.

use std::fs::File;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Float64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::source::{AttributeType, FieldSource, FileSource};
use crate::contract::{FieldType, TableKind};
use crate::error::{Error, Result};
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
        attributes,
    })
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
