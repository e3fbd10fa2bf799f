//! The one error type of `augur-model`.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing a model directory, a snapshot or
/// scores. Each variant names the file at fault and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A model directory is missing, damaged, or from another version of augur.
    #[error("{}: {problem}", path.display())]
    ModelDir {
        /// The model directory or the file in it at fault.
        path: PathBuf,
        /// What is wrong and what to do (usually: retrain with `augur train`).
        problem: String,
    },

    /// More contacts or history entries than one snapshot or score file can hold.
    #[error("{0}")]
    TooLarge(String),

    /// Serialising or writing a model file, a snapshot or scores failed.
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

    /// A problem with a model directory or one of its files.
    pub fn model_dir(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::ModelDir {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
