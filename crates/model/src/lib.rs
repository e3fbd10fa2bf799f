//! # augur-model
//!
//! augur's fitted models as plain numbers, and the one path that applies them: the features of a
//! contact as of an instant, the churn model, the BG/NBD buy-till-you-die view, send time and send
//! windows, product affinity, the per-contact snapshot, batch scoring, and the model directory
//! that holds them all.
//!
//! Each model is one half of a pair: `augur-train` fits it, this crate applies it, so `augur
//! serve`, `augur score` and `augur campaign` need nothing of training. Nothing here reads
//! exports (that is `augur-data`) or knows about HTTP and e-mail.

mod affinity;
mod artifact;
mod btyd;
mod churn;
mod error;
mod explain;
mod features;
mod live;
mod partial;
mod score;
mod send_time;
mod send_window;
mod snapshot;

pub use affinity::{
    AffinityModel, Catalog, Filters, Item, Mode, Profile, RANK_FEATURE_COUNT, RANK_FEATURES,
    Ranker, Rankers, Request, Signals, best_k, profiles,
};
pub use artifact::{Artifact, FORMAT_VERSION, FileCheck, Manifest, resolve_model_dir, write_json};
pub use btyd::{BgNbd, Rfa};
pub use churn::ChurnModel;
pub use error::{Error, Result};
pub use features::{
    CHURN_FEATURES, ContactState, buyers_rfa, buys_between, churn_features, contact_states,
    is_machine_open, rows_before,
};
pub use live::{LiveChurn, Since};
pub use score::{write_scores, write_scores_in_row_groups};
pub use send_time::{
    Engagement, EngagementWeights, HOURS, SendTimeModel, engagement_counts, history_clock,
    hour_of_day, normalize, smooth,
};
pub use send_window::{Quiet, Slot, parse_within, ranked_slots};
pub use snapshot::{
    AtHand, FACTS, FLAGS, Fields, Models, ProductCatalog, Snapshot, build_snapshot,
    build_snapshot_with, default_request,
};
