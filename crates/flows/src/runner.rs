//! What one tick reads (the settings, flows, model, exports and event store) and what it did:
//! shared by the tick and the scans it runs.

use std::collections::BTreeMap;

use augur_campaign::Directory;
use augur_events::EventStore;
use augur_model::Artifact;
use serde::Serialize;

use crate::spec::Flow;

/// What a tick reads.
pub struct Runner<'a> {
    /// Settings (tables, `[campaigns]`, segments, the event store).
    pub settings: &'a augur_campaign::Settings,
    /// The flows.
    pub flows: &'a [Flow],
    /// The model (send times, recommendations, entry rules).
    pub artifact: &'a Artifact,
    /// The exports with live events applied.
    pub directory: &'a Directory,
    /// The event store.
    pub store: &'a EventStore,
}

/// What a tick did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TickReport {
    /// Events read from the store.
    pub events_read: usize,
    /// New triggers stored.
    pub triggered: usize,
    /// Enrollments that entered a series.
    pub entered: usize,
    /// Of those, into the control group.
    pub held_out: usize,
    /// Triggers that did not enter, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Messages queued in the outbox.
    pub queued: usize,
    /// Messages not sent (no consent, cap, quiet window…), by reason.
    pub suppressed: BTreeMap<String, usize>,
    /// Enrollments that left early, by reason.
    pub exited: BTreeMap<String, usize>,
    /// Enrollments that finished their steps.
    pub completed: usize,
}
