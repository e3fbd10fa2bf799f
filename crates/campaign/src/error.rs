//! Everything that can stop a campaign, each naming the file, setting or template at fault.

use std::path::PathBuf;

/// A campaign error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The campaign file is unreadable or breaks a rule.
    #[error("{}: {message}", path.display())]
    Campaign {
        /// The campaign file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A template does not compile or does not render.
    #[error(
        "template `{template}`{}{}: {message}{}",
        line.map(|l| format!(", line {l}")).unwrap_or_default(),
        contact.as_ref().map(|c| format!(" (rendering for contact {c})")).unwrap_or_default(),
        if contact.is_none() { "; nothing was planned" } else { "" }
    )]
    Template {
        /// Template name (the file, or `<variant>.subject` for inline ones).
        template: String,
        /// Line in the template, when known.
        line: Option<usize>,
        /// What failed.
        message: String,
        /// The contact being rendered, when the template compiled but failed for one contact.
        contact: Option<String>,
    },
    /// The outbox database.
    #[error("outbox {}: {message}", path.display())]
    Outbox {
        /// The database file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Reading the configuration or the exports.
    #[error(transparent)]
    Data(#[from] augur_data::Error),
    /// Reading the model.
    #[error(transparent)]
    Model(#[from] augur_model::Error),
    /// An audience rule.
    #[error("audience: {0}")]
    Segment(#[from] augur_segment::Error),
    /// A setting in `[campaigns]` of the configuration.
    #[error("configuration `{setting}`: {message}")]
    Setting {
        /// The setting.
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// Writing a file (previews, plan, events, report).
    #[error("{}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Another sender holds the outbox.
    #[error("outbox {}: another `augur campaign send` holds its lock ({}); wait for it or stop it", outbox.display(), lock.display())]
    Busy {
        /// The outbox database.
        outbox: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn outbox(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::Outbox {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    pub(crate) fn write(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
