//! # augur-flows
//!
//! Triggered series — welcome, abandoned cart, post-purchase, win-back — started by events as
//! they happen. A [`Flow`] file names its trigger, who may enter, its steps (wait, send,
//! branch) and what ends it early; [`tick`] reads the event store, enrolls contacts, moves
//! each enrollment through its steps and puts due messages into the campaigns' outbox, which
//! the campaigns' sender delivers exactly once; [`report`] reads what each series did.

mod catalog;
mod engine;
mod error;
mod report;
mod runner;
mod scan;
mod spec;
mod state;

pub use engine::{in_holdout, tick};
pub use error::{Error, Result};
pub use report::{FlowReport, StepFigures, Uplift, report};
pub use runner::{Runner, TickReport};
pub use scan::check_flows;
pub use spec::{
    BranchSpec, Condition, DateField, EntrySpec, ExitSpec, Flow, FlowFile, ProductChange,
    ProductTrigger, SendSpec, Step, StepSpec, Target, Trigger, TriggerSpec, seconds,
};
pub use state::{Enrollment, FlowState, Listed};

/// The example flows and their templates (`crates/flows/flows/`), as relative path and text,
/// so the demo can write them next to its data.
pub const EXAMPLES: [(&str, &str); 7] = [
    ("welcome.toml", include_str!("../flows/welcome.toml")),
    (
        "abandoned_cart.toml",
        include_str!("../flows/abandoned_cart.toml"),
    ),
    (
        "post_purchase.toml",
        include_str!("../flows/post_purchase.toml"),
    ),
    ("winback.toml", include_str!("../flows/winback.toml")),
    (
        "back_in_stock.toml",
        include_str!("../flows/back_in_stock.toml"),
    ),
    (
        "templates/flow.html",
        include_str!("../flows/templates/flow.html"),
    ),
    (
        "templates/flow.txt",
        include_str!("../flows/templates/flow.txt"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_flows_load() {
        let dir = std::env::temp_dir().join(format!("augur-flow-examples-{}", std::process::id()));
        for (path, text) in EXAMPLES {
            let target = dir.join(path);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::write(&target, text).expect("write");
        }
        for (path, _) in EXAMPLES.iter().filter(|(p, _)| p.ends_with(".toml")) {
            let flow = Flow::load(&dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!flow.steps.is_empty());
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
