//! The one error type of `augur-train`.

/// What can stop training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the data or configuration failed.
    #[error(transparent)]
    Data(Box<augur_data::Error>),
    /// Writing or reading the model directory failed.
    #[error(transparent)]
    Model(Box<augur_model::Error>),
    /// A result could not be serialised (e.g. the backtest into `metrics.json`).
    #[error("{what} could not be serialised: {reason}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// What the serialiser reported.
        reason: String,
    },
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

impl From<augur_model::Error> for Error {
    fn from(e: augur_model::Error) -> Self {
        Self::Model(Box::new(e))
    }
}

impl Error {
    /// A serialisation failure of `what`: its own kind, never "fitting failed".
    pub fn serialize(what: &'static str, e: &serde_json::Error) -> Self {
        Self::Serialize {
            what,
            reason: e.to_string(),
        }
    }
}

impl From<augur_data::Error> for Error {
    fn from(e: augur_data::Error) -> Self {
        Self::Data(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serialisation_failure_is_not_a_fitting_failure() {
        let Err(cause) = serde_json::from_str::<u8>("not json") else {
            panic!("`not json` parsed");
        };
        let text = Error::serialize("the backtest", &cause).to_string();
        assert!(!text.contains("fitting failed"), "{text}");
        assert!(
            text.starts_with("the backtest could not be serialised"),
            "{text}"
        );
    }
}
