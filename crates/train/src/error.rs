//! The one error type of `augur-train`.

/// What can stop training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the data or configuration failed.
    #[error(transparent)]
    Data(Box<augur_core::Error>),
    /// A model could not be fitted.
    #[error("fitting failed: {0}")]
    Fit(String),
    /// Writing the model directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The options cannot be used.
    #[error("invalid training option: {0}")]
    Options(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<augur_core::Error> for Error {
    fn from(e: augur_core::Error) -> Self {
        Self::Data(Box::new(e))
    }
}
