//! Everything that can stop a series, naming the flow file, step or database at fault.

use std::path::PathBuf;

/// A flows error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flow file is unreadable or breaks a rule.
    #[error("{}: {message}", path.display())]
    Flow {
        /// The flow file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The flows' state database.
    #[error("flow state {}: {message}", path.display())]
    State {
        /// The database file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Planning or storing a step's message.
    #[error(transparent)]
    Campaign(Box<augur_campaign::Error>),
    /// Reading the event store.
    #[error(transparent)]
    Events(Box<augur_events::Error>),
    /// An entry rule.
    #[error("entry rule: {0}")]
    Segment(#[from] augur_segment::Error),
    /// Reading the exports (the web events and orders a product trigger looks back on).
    #[error(transparent)]
    Data(Box<augur_data::Error>),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<augur_campaign::Error> for Error {
    fn from(e: augur_campaign::Error) -> Self {
        Self::Campaign(Box::new(e))
    }
}

impl From<augur_data::Error> for Error {
    fn from(e: augur_data::Error) -> Self {
        Self::Data(Box::new(e))
    }
}

impl From<augur_events::Error> for Error {
    fn from(e: augur_events::Error) -> Self {
        Self::Events(Box::new(e))
    }
}

impl Error {
    pub(crate) fn state(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::State {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
