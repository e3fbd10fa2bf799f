//! The flow file: what starts a series, who may enter, its steps (wait, send, branch), what
//! ends it early. Documented in `docs/flows.md`; examples in `crates/flows/flows/`.
//!
//! Each send step is a campaign built in memory — the flow's sender, content and caps with the
//! step's subject and variants — so it is rendered, suppressed, capped and delivered exactly as
//! campaigns are, under the flow's id (its messages' `campaign_id`).

use std::path::{Path, PathBuf};

use augur_campaign::{
    AudienceSpec, Campaign, CampaignFile, CapSpec, ContentSpec, ScheduleSpec, SenderSpec,
    VariantSpec,
};
use augur_data::WebEventKind;
use augur_model::Quiet;
use augur_segment::Rule;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A flow file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// Slug: the `campaign_id` of its messages and e-mail events.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// A contact in a flow of higher priority leaves this one before its next message.
    #[serde(default)]
    pub priority: i32,
    /// The kind of e-mail (one of `[preferences] topics`): a contact who turned it off gets no
    /// step of this series.
    #[serde(default)]
    pub topic: Option<String>,
    /// What starts the series.
    pub trigger: TriggerSpec,
    /// Who may enter.
    #[serde(default)]
    pub entry: EntrySpec,
    /// What ends it early.
    #[serde(default)]
    pub exit: ExitSpec,
    /// Quiet hours.
    #[serde(default)]
    pub schedule: FlowSchedule,
    /// A frequency cap, counted with every campaign's messages.
    pub caps: Option<CapSpec>,
    /// Envelope.
    pub sender: SenderSpec,
    /// Templates and recommendations, as in campaigns.
    pub content: ContentSpec,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
}

/// `[trigger]`: exactly one of `event`, `segment`, `date` and `product`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// `signup` (a new contact with consent), `order`, or a web event (`add_to_cart`, `view`,
    /// `checkout`, …).
    pub event: Option<String>,
    /// A predictive segment entered (built-in or configured): a contact in it under a newly
    /// trained model that was not in it under the model the flow saw before.
    pub segment: Option<String>,
    /// An anniversary: `first_order`, or `attribute.<name>` (a contact column holding a date,
    /// `YYYY-MM-DD`, e.g. a birthday). It fires on the day (UTC) of the same month and day.
    pub date: Option<String>,
    /// A product the contact viewed or carted changed: `back_in_stock` (listed as out of stock
    /// by the catalog scan before, in stock now) or `price_drop` (cheaper by `min_drop` or more).
    pub product: Option<String>,
    /// `product`: how recent the contact's view or cart of the product must be (default 30d).
    pub viewed_within: Option<String>,
    /// `product = "price_drop"`: the least drop, as a share of the old price (default 0.1).
    pub min_drop: Option<f64>,
    /// `order`: the series starts only if the contact has not ordered within `within`.
    pub unless: Option<String>,
    /// How long to wait for the `unless` event, e.g. `1h`.
    pub within: Option<String>,
}

/// `[entry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntrySpec {
    /// A segment the contact must be in (built-in or configured), as of the model.
    pub segment: Option<String>,
    /// Or an inline rule.
    pub rule: Option<Rule>,
    /// `never`: a contact enters once; a duration (`30d`): again after that long; absent:
    /// every trigger (one enrollment at a time).
    pub reentry: Option<String>,
    /// Share of entries kept as the control group (stable per contact and trigger).
    pub holdout: f64,
    /// Only contacts whose consent is recorded as given are mailed.
    pub require_consent: bool,
}

impl Default for EntrySpec {
    fn default() -> Self {
        Self {
            segment: None,
            rule: None,
            reentry: None,
            holdout: 0.0,
            require_consent: true,
        }
    }
}

/// `[exit]`: unsubscribes, withdrawn consent and a flow of higher priority always end a series.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExitSpec {
    /// An order since entry ends the series (what most series are for).
    pub on_order: bool,
}

impl Default for ExitSpec {
    fn default() -> Self {
        Self { on_order: true }
    }
}

/// `[schedule]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSchedule {
    /// Local quiet hours, `HH:MM-HH:MM`: nothing leaves inside them.
    pub quiet: Option<String>,
}

/// One `[[steps]]` entry: exactly one of `wait`, `send`, `branch`, `sunset`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Slug, unique in the flow (branches jump to it; reports name it).
    pub name: String,
    /// Wait this long after the previous step (`30m`, `1h`, `2d`).
    pub wait: Option<String>,
    /// Then leave at the contact's best hour within this long.
    pub best_hour_within: Option<String>,
    /// Send a message.
    pub send: Option<SendSpec>,
    /// Go to another step depending on what happened.
    pub branch: Option<BranchSpec>,
    /// `true`: a contact that opened and clicked none of the series' messages is unsubscribed
    /// (an `unsubscribe` event of the flow): the end of a win-back for those who never answer.
    pub sunset: Option<bool>,
}

/// A send step's message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSpec {
    /// Subject template (one variant, named after the step).
    pub subject: Option<String>,
    /// Preheader template.
    #[serde(default)]
    pub preheader: String,
    /// HTML template replacing the flow's.
    pub html: Option<PathBuf>,
    /// Text template replacing the flow's.
    pub text: Option<PathBuf>,
    /// Or A/B variants, split by weight as in campaigns.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
}

/// A branch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    /// The condition.
    #[serde(rename = "if")]
    pub condition: Condition,
    /// The step to go to when it holds (`end`: finish).
    pub then: String,
    /// Otherwise (default: the next step).
    #[serde(rename = "else")]
    pub otherwise: Option<String>,
}

/// What a branch asks about the contact since it entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// A human open of the last message sent (`true`) or none (`false`).
    OpenedLast(bool),
    /// A click in the last message sent.
    ClickedLast(bool),
    /// An order since entry.
    Ordered(bool),
}

/// What starts a series.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A new contact with consent.
    Signup,
    /// An order (one entry per order).
    Order,
    /// A web event; with `Some(seconds)`, only if no order follows within that long.
    Web(WebEventKind, Option<i64>),
    /// A segment (by name) entered between two trained models.
    SegmentEntered(String),
    /// The yearly return of a date's month and day.
    Anniversary(DateField),
    /// A change of a product the contact showed interest in.
    Product(ProductTrigger),
}

/// A product change that starts a series for the contacts who viewed or carted the product
/// recently and have not ordered it since.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProductTrigger {
    /// Which change.
    pub change: ProductChange,
    /// How recent the view or cart must be (seconds before the change is seen).
    pub viewed_within: i64,
    /// For a price drop, the least drop as a share of the old price, in (0, 1).
    pub min_drop: f64,
}

/// A change of a product in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductChange {
    /// Out of stock before, in stock now.
    BackInStock,
    /// Cheaper than before.
    PriceDrop,
}

impl ProductChange {
    /// The name in flow files and trigger ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::BackInStock => "back_in_stock",
            Self::PriceDrop => "price_drop",
        }
    }
}

/// Default `viewed_within` of a product trigger: 30 days.
const VIEWED_WITHIN: i64 = 30 * 86_400;
/// Default `min_drop` of a price-drop trigger.
const MIN_DROP: f64 = 0.1;

/// The date an anniversary trigger reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateField {
    /// The contact's first order (from its first anniversary on).
    FirstOrder,
    /// A contact attribute holding `YYYY-MM-DD` (its name, without `attribute.`).
    Attribute(String),
}

/// Where a branch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A step, by index.
    Step(usize),
    /// The end of the series.
    End,
}

/// A checked step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Wait, then (optionally) the best hour within a span. Seconds.
    Wait {
        /// The delay.
        seconds: i64,
        /// Then the contact's best hour within this span.
        best_hour_within: Option<i64>,
    },
    /// Send the message of this campaign.
    Send(Box<Campaign>),
    /// Unsubscribe the contact unless it engaged with the series.
    Sunset,
    /// Go on depending on a condition.
    Branch {
        /// The condition.
        condition: Condition,
        /// When it holds.
        then: Target,
        /// When it does not.
        otherwise: Target,
    },
}

/// A flow file read and checked.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file as written.
    pub file: FlowFile,
    /// What starts it.
    pub trigger: Trigger,
    /// `None`: enter once; `Some(0)`: every trigger; `Some(s)`: again after `s` seconds.
    pub reentry: Option<i64>,
    /// Quiet hours.
    pub quiet: Option<Quiet>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Seconds in a duration written `90s`, `30m`, `1h`, `2d` or `1w`.
///
/// # Errors
/// The text is not a whole number followed by one of those units.
pub fn seconds(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{raw}`: write a whole number and a unit, e.g. 30m, 1h, 2d"))?;
    let unit_seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "`{raw}`: unknown unit `{other}`; use s, m, h, d or w"
            ));
        }
    };
    n.checked_mul(unit_seconds)
        .filter(|s| *s <= 366 * 86_400)
        .ok_or_else(|| format!("`{raw}`: at most a year"))
}

impl Flow {
    /// Reads and checks a flow file and the templates it names.
    ///
    /// # Errors
    /// The file cannot be read, breaks a rule (named, with what would fix it), or a send
    /// step's templates do not compile.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Flow {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: FlowFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let trigger = trigger(&file.trigger).map_err(|m| bad(format!("[trigger] {m}")))?;
        let entry = &file.entry;
        if entry.segment.is_some() && entry.rule.is_some() {
            return Err(bad("[entry]: give `segment` or `rule`, not both".into()));
        }
        if !(0.0..1.0).contains(&entry.holdout) {
            return Err(bad(format!(
                "[entry] holdout = {}: use a share from 0 up to (not including) 1",
                entry.holdout
            )));
        }
        let reentry = match entry.reentry.as_deref() {
            Some("never") => None,
            Some(raw) => Some(seconds(raw).map_err(|m| bad(format!("[entry] reentry {m}")))?),
            None => Some(0),
        };
        let quiet = file
            .schedule
            .quiet
            .as_deref()
            .map(Quiet::parse)
            .transpose()
            .map_err(|e| bad(format!("[schedule] {e}")))?;
        if file.steps.is_empty() {
            return Err(bad("no [[steps]]: give at least one".into()));
        }
        let names: Vec<&str> = file.steps.iter().map(|s| s.name.as_str()).collect();
        let mut steps = Vec::with_capacity(file.steps.len());
        for (i, spec) in file.steps.iter().enumerate() {
            let at = |m: String| bad(format!("step `{}`: {m}", spec.name));
            if names[..i].contains(&spec.name.as_str()) || spec.name == "end" {
                return Err(at("step names are unique, and `end` is reserved".into()));
            }
            steps.push(step(path, &file, spec, &names).map_err(|e| match e {
                Error::Flow { message, .. } => at(message),
                other => other,
            })?);
        }
        Ok(Self {
            path: path.to_path_buf(),
            trigger,
            reentry,
            quiet,
            steps,
            file,
        })
    }

    /// The flow id.
    pub fn id(&self) -> &str {
        &self.file.id
    }
}

fn product_trigger(change: &str, spec: &TriggerSpec) -> Result<Trigger, String> {
    let change = match change {
        "back_in_stock" => ProductChange::BackInStock,
        "price_drop" => ProductChange::PriceDrop,
        other => {
            return Err(format!(
                "product = `{other}`: use `back_in_stock` or `price_drop`"
            ));
        }
    };
    if change == ProductChange::BackInStock && spec.min_drop.is_some() {
        return Err("`min_drop` goes with `product = \"price_drop\"`".into());
    }
    let min_drop = spec.min_drop.unwrap_or(MIN_DROP);
    if !(min_drop > 0.0 && min_drop < 1.0) {
        return Err(format!(
            "min_drop = {min_drop}: give the least drop as a share of the old price, e.g. 0.1 for 10 %"
        ));
    }
    let viewed_within = match spec.viewed_within.as_deref() {
        Some(raw) => seconds(raw).map_err(|m| format!("viewed_within {m}"))?,
        None => VIEWED_WITHIN,
    };
    Ok(Trigger::Product(ProductTrigger {
        change,
        viewed_within,
        min_drop,
    }))
}

fn trigger(spec: &TriggerSpec) -> Result<Trigger, String> {
    let given = [&spec.event, &spec.segment, &spec.date, &spec.product];
    if given.iter().filter(|g| g.is_some()).count() != 1 {
        return Err(
            "give exactly one of `event`, `segment` (a segment entered), `date` (an anniversary) or `product` (back_in_stock, price_drop)"
                .into(),
        );
    }
    if spec.event.is_none() && (spec.unless.is_some() || spec.within.is_some()) {
        return Err("`unless` and `within` go with `event`".into());
    }
    if spec.product.is_none() && (spec.viewed_within.is_some() || spec.min_drop.is_some()) {
        return Err("`viewed_within` and `min_drop` go with `product`".into());
    }
    if let Some(change) = &spec.product {
        return product_trigger(change, spec);
    }
    if let Some(name) = &spec.segment {
        return Ok(Trigger::SegmentEntered(name.clone()));
    }
    if let Some(raw) = &spec.date {
        return match raw.as_str() {
            "first_order" => Ok(Trigger::Anniversary(DateField::FirstOrder)),
            other => match other.strip_prefix("attribute.") {
                Some(name) if !name.is_empty() => {
                    Ok(Trigger::Anniversary(DateField::Attribute(name.to_string())))
                }
                _ => Err(format!(
                    "date = `{other}`: use `first_order` or `attribute.<name>` (a contact column holding YYYY-MM-DD)"
                )),
            },
        };
    }
    let event = spec.event.as_deref().unwrap_or_default();
    let within = spec.within.as_deref().map(seconds).transpose()?;
    match (spec.unless.as_deref(), within) {
        (Some("order"), Some(_)) | (None, None) => {}
        (Some("order"), None) => return Err("`unless = \"order\"` needs `within`, e.g. 1h".into()),
        (Some(other), _) => return Err(format!("unless = `{other}`: only `order` is supported")),
        (None, Some(_)) => return Err("`within` goes with `unless = \"order\"`".into()),
    }
    match event {
        "signup" | "order" if within.is_some() => Err(format!("event `{event}` takes no `unless`")),
        "signup" => Ok(Trigger::Signup),
        "order" => Ok(Trigger::Order),
        raw => WebEventKind::parse(raw)
            .map(|k| Trigger::Web(k, within))
            .ok_or_else(|| {
                format!(
                    "event `{raw}`: use signup, order or a web event ({})",
                    WebEventKind::ALL.map(|k| k.name()).join(", ")
                )
            }),
    }
}

fn step(path: &Path, flow: &FlowFile, spec: &StepSpec, names: &[&str]) -> Result<Step> {
    let bad = |message: String| Error::Flow {
        path: path.to_path_buf(),
        message,
    };
    let kinds = [
        spec.wait.is_some(),
        spec.send.is_some(),
        spec.branch.is_some(),
        spec.sunset.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(bad(
            "give exactly one of `wait`, `send`, `branch` or `sunset`".into(),
        ));
    }
    if let Some(sunset) = spec.sunset {
        if !sunset {
            return Err(bad("`sunset = true`, or leave the step out".into()));
        }
        return Ok(Step::Sunset);
    }
    if spec.best_hour_within.is_some() && spec.wait.is_none() {
        return Err(bad("`best_hour_within` goes with `wait`".into()));
    }
    if let Some(raw) = &spec.wait {
        return Ok(Step::Wait {
            seconds: seconds(raw).map_err(|m| bad(format!("wait {m}")))?,
            best_hour_within: spec
                .best_hour_within
                .as_deref()
                .map(seconds)
                .transpose()
                .map_err(|m| bad(format!("best_hour_within {m}")))?,
        });
    }
    if let Some(b) = &spec.branch {
        let target = |name: &str| -> Result<Target> {
            if name == "end" {
                return Ok(Target::End);
            }
            names
                .iter()
                .position(|n| *n == name)
                .map(Target::Step)
                .ok_or_else(|| bad(format!("branch to `{name}`: no such step (or `end`)")))
        };
        let next = names
            .iter()
            .position(|n| *n == spec.name)
            .map_or(Target::End, |i| {
                if i + 1 < names.len() {
                    Target::Step(i + 1)
                } else {
                    Target::End
                }
            });
        return Ok(Step::Branch {
            condition: b.condition,
            then: target(&b.then)?,
            otherwise: b.otherwise.as_deref().map_or(Ok(next), target)?,
        });
    }
    let send = spec.send.as_ref().expect("one kind is set");
    let variants = match (&send.subject, send.variants.is_empty()) {
        (Some(subject), true) => vec![VariantSpec {
            name: spec.name.clone(),
            weight: 1.0,
            subject: subject.clone(),
            preheader: send.preheader.clone(),
            html: send.html.clone(),
            text: send.text.clone(),
        }],
        (None, false) => send.variants.clone(),
        _ => {
            return Err(bad(
                "send: give `subject` (one message) or `variants` (A/B), not both".into(),
            ));
        }
    };
    let file = CampaignFile {
        id: flow.id.clone(),
        name: if flow.name.is_empty() {
            flow.id.clone()
        } else {
            flow.name.clone()
        },
        topic: flow.topic.clone(),
        audience: AudienceSpec {
            segment: None,
            rule: Some(Rule::All(Vec::new())),
            holdout: 0.0,
            require_consent: flow.entry.require_consent,
            resend_after_days: 0.0,
        },
        schedule: ScheduleSpec {
            window_start: None,
            window_hours: 24.0,
            quiet: flow.schedule.quiet.clone(),
            fallback_time: None,
            per_contact: false,
        },
        caps: flow.caps,
        sender: flow.sender.clone(),
        content: flow.content.clone(),
        variants,
        test: None,
    };
    Ok(Step::Send(Box::new(Campaign::from_file(path, file)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_and_bad_ones_say_how_to_write_them() {
        assert_eq!(seconds("90s"), Ok(90));
        assert_eq!(seconds("30m"), Ok(1800));
        assert_eq!(seconds("1h"), Ok(3600));
        assert_eq!(seconds("2d"), Ok(172_800));
        assert_eq!(seconds("1w"), Ok(604_800));
        assert!(
            seconds("1.5h")
                .expect_err("an error")
                .contains("unknown unit")
        );
        assert!(seconds("h").expect_err("an error").contains("whole number"));
        assert!(
            seconds("400d")
                .expect_err("an error")
                .contains("at most a year")
        );
    }

    #[test]
    fn triggers_are_checked() {
        let t = |event: &str, unless: Option<&str>, within: Option<&str>| {
            trigger(&TriggerSpec {
                event: Some(event.into()),
                unless: unless.map(Into::into),
                within: within.map(Into::into),
                ..TriggerSpec::default()
            })
        };
        assert_eq!(
            t("add_to_cart", Some("order"), Some("1h")),
            Ok(Trigger::Web(WebEventKind::AddToCart, Some(3600)))
        );
        assert_eq!(t("signup", None, None), Ok(Trigger::Signup));
        assert!(t("add_to_cart", Some("order"), None).is_err());
        assert!(
            t("teleport", None, None)
                .expect_err("an error")
                .contains("add_to_cart")
        );
        let other = |segment: Option<&str>, date: Option<&str>, within: Option<&str>| {
            trigger(&TriggerSpec {
                segment: segment.map(Into::into),
                date: date.map(Into::into),
                within: within.map(Into::into),
                ..TriggerSpec::default()
            })
        };
        assert_eq!(
            other(Some("at_risk"), None, None),
            Ok(Trigger::SegmentEntered("at_risk".into()))
        );
        assert_eq!(
            other(None, Some("attribute.birthday"), None),
            Ok(Trigger::Anniversary(DateField::Attribute(
                "birthday".into()
            )))
        );
        assert_eq!(
            other(None, Some("first_order"), None),
            Ok(Trigger::Anniversary(DateField::FirstOrder))
        );
        assert!(
            other(None, Some("birthday"), None)
                .expect_err("an error")
                .contains("attribute.<name>")
        );
        assert!(other(Some("at_risk"), Some("first_order"), None).is_err());
        assert!(other(Some("at_risk"), None, Some("1h")).is_err());
        assert!(other(None, None, None).is_err());
    }

    #[test]
    fn product_triggers_are_checked() {
        let t = |product: &str, viewed: Option<&str>, min_drop: Option<f64>| {
            trigger(&TriggerSpec {
                product: Some(product.into()),
                viewed_within: viewed.map(Into::into),
                min_drop,
                ..TriggerSpec::default()
            })
        };
        assert_eq!(
            t("back_in_stock", None, None),
            Ok(Trigger::Product(ProductTrigger {
                change: ProductChange::BackInStock,
                viewed_within: 30 * 86_400,
                min_drop: 0.1,
            }))
        );
        assert_eq!(
            t("price_drop", Some("7d"), Some(0.2)),
            Ok(Trigger::Product(ProductTrigger {
                change: ProductChange::PriceDrop,
                viewed_within: 7 * 86_400,
                min_drop: 0.2,
            }))
        );
        assert!(
            t("restock", None, None)
                .expect_err("an error")
                .contains("back_in_stock")
        );
        assert!(
            t("price_drop", None, Some(1.5))
                .expect_err("an error")
                .contains("share")
        );
        assert!(t("price_drop", None, Some(f64::NAN)).is_err());
        assert!(t("back_in_stock", None, Some(0.2)).is_err());
        assert!(t("back_in_stock", Some("soon"), None).is_err());
        let mixed = trigger(&TriggerSpec {
            event: Some("view".into()),
            viewed_within: Some("7d".into()),
            ..TriggerSpec::default()
        });
        assert!(mixed.expect_err("an error").contains("go with `product`"));
    }
}
