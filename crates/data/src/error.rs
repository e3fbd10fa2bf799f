//! The one error type of `augur-core`.

use std::path::PathBuf;

/// Everything that can go wrong while reading configuration and exports.
///
/// Each variant names the file, table, column or setting at fault and, where it helps, what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration could not be read or does not match the expected shape.
    #[error("configuration error: {0}")]
    Config(String),

    /// A configuration value is present but not usable.
    #[error("configuration error in `{setting}`: {message}")]
    InvalidSetting {
        /// Dotted path of the setting, e.g. `tables.orders.timestamp_format`.
        setting: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// No table is configured, or no configured path exists.
    #[error(
        "no input tables found: configure at least `tables.orders.path` (or contacts, email_events, web_events) in augur.toml{hint}"
    )]
    NoTables {
        /// Extra context, such as the paths that were tried.
        hint: String,
    },

    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A file is not a readable Parquet file (empty, truncated, corrupt or another format).
    #[error("{}: not a readable Parquet file ({reason}); export the {table} table as Parquet", path.display())]
    NotParquet {
        /// The file.
        path: PathBuf,
        /// Table the file was configured for.
        table: &'static str,
        /// What the Parquet reader reported.
        reason: String,
    },

    /// A directory configured for a table holds no Parquet file.
    #[error("{}: no .parquet files found for the {table} table", path.display())]
    NoFiles {
        /// The directory.
        path: PathBuf,
        /// The table.
        table: &'static str,
    },

    /// A required or explicitly mapped column does not exist in a file.
    #[error(
        "{}: {table}.{field} expects column `{column}`, which is missing; columns present: {}; map it with `tables.{table}.columns.{field} = \"<column>\"`",
        path.display(), available.join(", ")
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The contract field.
        field: &'static str,
        /// The source column that was looked for.
        column: String,
        /// Columns that do exist.
        available: Vec<String>,
    },

    /// A column exists but its type cannot be read as the contract field.
    #[error(
        "{}: column `{column}` ({table}.{field}) has type {found}, expected {expected}; columns present: {}",
        path.display(), available.join(", ")
    )]
    ColumnType {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The contract field.
        field: &'static str,
        /// The source column.
        column: String,
        /// What the contract accepts.
        expected: &'static str,
        /// The Arrow type found.
        found: String,
        /// Columns that do exist.
        available: Vec<String>,
    },

    /// Reading record batches failed part-way (a corrupt page, a truncated file).
    #[error("{}: reading failed: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        reason: String,
    },

    /// The data was read but cannot be used; `augur validate` shows the full report.
    #[error("the data is unusable: {problems}; run `augur validate` for the full report")]
    Unusable {
        /// The fatal problems found.
        problems: String,
    },

    /// Writing a Parquet file failed.
    #[error("{}: writing failed: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the writer reported.
        reason: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
