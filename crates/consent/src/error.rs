//! Everything that can stop the preference store or its settings, naming the file or setting
//! at fault.

use std::path::PathBuf;

/// A consent error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The preference store's database.
    #[error("preference store {}: {message}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A setting in `[preferences]`.
    #[error("configuration `{setting}`: {message}")]
    Setting {
        /// The dotted key.
        setting: String,
        /// What is wrong and what would fix it.
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

    pub(crate) fn setting(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Setting {
            setting: setting.into(),
            message: message.into(),
        }
    }
}
