//! Everything that can stop the event store, naming the file or setting at fault.

use std::path::PathBuf;

/// An event-store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store's database.
    #[error("event store {}: {message}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A setting in `[events]`.
    #[error("configuration `{setting}`: {message}")]
    Setting {
        /// The setting.
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// Reading the configuration file.
    #[error(transparent)]
    Data(Box<augur_data::Error>),
}

impl From<augur_data::Error> for Error {
    fn from(e: augur_data::Error) -> Self {
        Self::Data(Box::new(e))
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn store(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
