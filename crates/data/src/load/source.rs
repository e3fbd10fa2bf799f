//! Finding a table's Parquet files and matching their columns to the contract, before any row is
//! read: every schema problem is reported here with the file, the column and what exists.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::config::TableConfig;
use crate::contract::{Field, FieldType, TableKind};
use crate::error::{Error, Result};
use crate::time::TimeReader;

/// Where a contract field's values come from in one file.
#[derive(Debug, Clone)]
pub(crate) enum FieldSource {
    /// Position of the column in the projected batch.
    Column(usize),
    /// A hive partition value (`key=value` folder), constant for the file; `None` for the
    /// writers' default-partition marker (a missing value).
    Partition(Option<String>),
    /// Not in this file (an optional field).
    Absent,
}

/// Kind of an attribute column (contacts only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttributeType {
    Text,
    Number,
    Flag,
}

/// One Parquet file, opened and matched to the contract.
#[derive(Debug)]
pub(crate) struct FileSource {
    pub path: PathBuf,
    pub metadata: ArrowReaderMetadata,
    pub projection: ProjectionMask,
    /// Parallel to `TableKind::fields()`.
    pub fields: Vec<FieldSource>,
    /// Attribute columns: name, position in the projected batch, type.
    pub attributes: Vec<(String, usize, AttributeType)>,
    /// Hive partition keys that are no contract field (contacts only): text attributes,
    /// constant for the file.
    pub partition_attributes: Vec<(String, Option<String>)>,
}

impl FileSource {
    pub fn row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// Rows in the file, as its metadata counts them (0 if the count is corrupt).
    pub fn rows(&self) -> usize {
        usize::try_from(self.metadata.metadata().file_metadata().num_rows()).unwrap_or(0)
    }
}

/// Lists the Parquet files of a table path: the file itself, or every `.parquet` file under a
/// directory (recursively, sorted by path, hidden and `_`-prefixed entries skipped).
pub(crate) fn list_files(path: &Path, table: TableKind) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let p = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") || name.ends_with(".parq") {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::NoFiles {
            path: path.to_path_buf(),
            table: table.name(),
        });
    }
    Ok(files)
}

/// The folder name Hive, Spark and Arrow writers give to rows whose partition value is null.
const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// `key=value` folders between the table root and the file, as writers encode them: key and
/// value percent-decoded (`city=S%C3%A3o%20Paulo`), the default-partition marker read as a
/// missing value.
fn partition_values(root: &Path, file: &Path) -> BTreeMap<String, Option<String>> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|c| {
            let c = c.as_os_str().to_string_lossy();
            let (key, value) = c.split_once('=')?;
            let value = (value != DEFAULT_PARTITION && !value.is_empty()).then(|| decode(value));
            Some((decode(key), value))
        })
        .collect()
}

/// Opens a file's footer and matches its columns to the table's contract fields.
pub(crate) fn open_file(
    root: &Path,
    path: &Path,
    table: TableKind,
    config: &TableConfig,
) -> Result<FileSource> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::NotParquet {
            path: path.into(),
            table: table.name(),
            reason: "the file is empty".into(),
        });
    }
    let metadata =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).map_err(|e| {
            Error::NotParquet {
                path: path.into(),
                table: table.name(),
                reason: e.to_string(),
            }
        })?;
    let schema: &Schema = metadata.schema();
    let available: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let partitions = partition_values(root, path);

    let mut roots: Vec<usize> = Vec::new();
    let mut field_roots: Vec<Option<usize>> = Vec::new();
    let mut sources = Vec::new();
    for field in table.fields() {
        let column = config.column_for(field.name);
        match column_index(schema, column) {
            Some(i) => {
                check_type(
                    path,
                    table,
                    field,
                    column,
                    schema.field(i).data_type(),
                    &available,
                )?;
                roots.push(i);
                field_roots.push(Some(i));
                sources.push(FieldSource::Absent);
            }
            None => {
                field_roots.push(None);
                if let Some(value) = partitions.get(column) {
                    sources.push(FieldSource::Partition(value.clone()));
                } else if field.required || config.is_mapped(field.name) {
                    return Err(Error::MissingColumn {
                        path: path.into(),
                        table: table.name(),
                        field: field.name,
                        column: column.to_string(),
                        available,
                    });
                } else {
                    sources.push(FieldSource::Absent);
                }
            }
        }
    }

    let mut attribute_roots = Vec::new();
    if table == TableKind::Contacts {
        for (i, f) in schema.fields().iter().enumerate() {
            if roots.contains(&i) {
                continue;
            }
            if let Some(ty) = attribute_type(f.data_type()) {
                attribute_roots.push((f.name().clone(), i, ty));
                roots.push(i);
            } else {
                tracing::warn!(file = %path.display(), column = %f.name(), data_type = %f.data_type(), "attribute column skipped: only strings, numbers and booleans are kept");
            }
        }
    }

    // A projected batch holds the selected root columns in schema order.
    let mut sorted = roots.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let position = |root: usize| sorted.binary_search(&root).unwrap_or(0);
    for (source, root) in sources.iter_mut().zip(&field_roots) {
        if let Some(root) = root {
            *source = FieldSource::Column(position(*root));
        }
    }
    let attributes = attribute_roots
        .into_iter()
        .map(|(name, root, ty)| (name, position(root), ty))
        .collect();
    // Partition keys that name no field and no column of the file are attributes like any
    // other column (contacts only: the other tables have no attributes).
    let partition_attributes = if table == TableKind::Contacts {
        let fields: Vec<&str> = table
            .fields()
            .iter()
            .map(|f| config.column_for(f.name))
            .collect();
        partitions
            .iter()
            .filter(|(key, _)| !fields.contains(&key.as_str()) && schema.index_of(key).is_err())
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let projection = ProjectionMask::roots(metadata.parquet_schema(), sorted.iter().copied());
    Ok(FileSource {
        path: path.to_path_buf(),
        metadata,
        projection,
        fields: sources,
        attributes,
        partition_attributes,
    })
}

/// The position of `column` in `schema`: the exact name, else the one that differs only by a
/// byte-order mark or spaces around it (a CSV's first header, or a header padded on export),
/// invisible in every listing of the columns.
fn column_index(schema: &Schema, column: &str) -> Option<usize> {
    let bare = |s: &str| s.trim_start_matches('\u{feff}').trim().to_string();
    schema.index_of(column).ok().or_else(|| {
        let wanted = bare(column);
        schema
            .fields()
            .iter()
            .position(|f| bare(f.name()) == wanted)
    })
}

fn check_type(
    path: &Path,
    table: TableKind,
    field: &Field,
    column: &str,
    data_type: &DataType,
    available: &[String],
) -> Result<()> {
    // A dictionary-encoded column (a pandas categorical) reads as its values.
    let found = data_type;
    let data_type = match data_type {
        DataType::Dictionary(_, values) => values.as_ref(),
        other => other,
    };
    // A column typed Null (pandas writes a column of `None` so) holds only missing values:
    // readable as any field, whose rows then count as missing it.
    let ok = matches!(data_type, DataType::Null)
        || match field.ty {
            // Bytes without Parquet's UTF-8 marker (older Spark and Hive write strings so) read
            // as text; a value that is not UTF-8 reads as missing.
            FieldType::Id | FieldType::Text => {
                is_stringish(data_type)
                    || data_type.is_numeric()
                    || matches!(
                        data_type,
                        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                    )
            }
            FieldType::Number => data_type.is_numeric() || is_stringish(data_type),
            FieldType::Flag => {
                matches!(data_type, DataType::Boolean)
                    || data_type.is_integer()
                    || is_stringish(data_type)
            }
            FieldType::Timestamp => TimeReader::accepts(data_type),
        };
    if ok {
        return Ok(());
    }
    Err(Error::ColumnType {
        path: path.into(),
        table: table.name(),
        field: field.name,
        column: column.to_string(),
        expected: field.ty.expected(),
        found: found.to_string(),
        available: available.to_vec(),
    })
}

pub(super) fn is_stringish(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_stringish(value),
        _ => false,
    }
}

fn attribute_type(data_type: &DataType) -> Option<AttributeType> {
    if is_stringish(data_type) || matches!(data_type, DataType::Null) {
        Some(AttributeType::Text)
    } else if matches!(data_type, DataType::Boolean) {
        Some(AttributeType::Flag)
    } else if data_type.is_numeric() {
        Some(AttributeType::Number)
    } else {
        None
    }
}
