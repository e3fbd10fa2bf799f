//! # augur-campaign
//!
//! Nightly predictive campaigns: select an audience with the current model, personalize each
//! message, send each contact at its own best time, and deliver over SMTP exactly once.
//!
//! Flow: [`Campaign::load`] → [`plan()`] (audience, suppression, holdout, variants,
//! send times, rendering) → [`Outbox`] (SQLite) → [`send()`] (SMTP or `.eml`
//! files; `sent` rows appended to the e-mail events by `events::SentLog`) →
//! [`report()`]. A campaign with an A/B `[test]` keeps most of its audience waiting until
//! [`decide()`] picks the winner; [`breakdown()`] reads the results per segment, tier, country,
//! variant or send-time source.

// Errors carry the file, template or setting at fault; they are built once per failure.
#![allow(clippy::result_large_err)]

mod abtest;
mod attribution;
mod breakdown;
mod config;
mod deliver;
mod directory;
mod error;
mod events;
mod health;
mod message;
mod outbox;
mod plan;
mod relay;
mod render;
mod report;
mod schedule;
mod spec;
mod stats;

pub use abtest::{Evidence, VariantEvidence, Verdict, decide};
pub use breakdown::{
    Breakdown, Dimension, GroupFigures, MIN_UPLIFT_GROUP, breakdown, write_breakdown,
};
pub use config::{CampaignsConfig, Settings, SmtpConfig, SmtpSecurity, UnknownOutcome};
pub use deliver::{SendOptions, SendReport, Transport, Until, send};
pub use directory::Directory;
pub use directory::Suppression;
pub use error::{Error, Result};
pub use health::{ListHealth, Week, list_health, write_list_health};
pub use outbox::ReportRow;
pub use outbox::{Claimed, Due, Inserted, Outbox, PlanFacts, Planned, Run, Status};
pub use plan::{
    Inputs, Summary, TriggerProduct, envelope, plan, plan_contacts, preview, run_id, store_plan,
};
pub use report::{CampaignReport, TestSummary, report, write_report};
pub use schedule::Window;
pub use spec::{
    AudienceSpec, Campaign, CampaignFile, CapSpec, ContentSpec, Metric, ScheduleSpec, SenderSpec,
    VariantSpec,
};
pub use stats::two_proportions;

/// The example campaigns and their templates (`crates/campaign/campaigns/`), as relative path and
/// text, so the demo can write them next to its data.
pub const EXAMPLES: [(&str, &str); 6] = [
    ("winback.toml", include_str!("../campaigns/winback.toml")),
    (
        "cross_sell.toml",
        include_str!("../campaigns/cross_sell.toml"),
    ),
    ("vip.toml", include_str!("../campaigns/vip.toml")),
    ("welcome.toml", include_str!("../campaigns/welcome.toml")),
    (
        "templates/products.html",
        include_str!("../campaigns/templates/products.html"),
    ),
    (
        "templates/products.txt",
        include_str!("../campaigns/templates/products.txt"),
    ),
];
