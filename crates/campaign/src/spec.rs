//! The campaign file: who gets what, when, from whom, how often. Documented in
//! `docs/campaigns.md`; examples in `crates/campaign/campaigns/`.

use std::path::{Path, PathBuf};

use augur_model::Mode;
use augur_model::Quiet;
use augur_segment::Rule;
use chrono::NaiveTime;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A campaign file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFile {
    /// Slug (`a-z`, `0-9`, `_`, `-`): appears in message ids, outbox rows and e-mail events.
    pub id: String,
    /// Human name for reports.
    #[serde(default)]
    pub name: String,
    /// The kind of e-mail (one of `[preferences] topics`): a contact who turned it off on the
    /// preference page gets none of it. Absent: only unsubscribing from everything stops it.
    #[serde(default)]
    pub topic: Option<String>,
    /// Who is selected.
    pub audience: AudienceSpec,
    /// When messages go out.
    #[serde(default)]
    pub schedule: ScheduleSpec,
    /// At most this many messages per contact, across all campaigns.
    pub caps: Option<CapSpec>,
    /// Envelope and headers.
    pub sender: SenderSpec,
    /// Templates and what they are given.
    pub content: ContentSpec,
    /// A/B variants (at least one).
    pub variants: Vec<VariantSpec>,
    /// An A/B test that picks its winner: a share of the audience gets the variants first, the
    /// rest gets the winner.
    pub test: Option<TestSpec>,
}

/// What decides an A/B test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Recipients with a human open (machine opens never count).
    HumanOpens,
    /// Recipients who clicked.
    Clicks,
    /// Recipients who ordered within the attribution window.
    Orders,
    /// Revenue of the attributed orders per recipient.
    RevenuePerEmail,
}

impl Metric {
    /// The name in campaign files and the outbox.
    pub fn name(self) -> &'static str {
        match self {
            Self::HumanOpens => "human_opens",
            Self::Clicks => "clicks",
            Self::Orders => "orders",
            Self::RevenuePerEmail => "revenue_per_email",
        }
    }

    /// The metric named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::HumanOpens,
            Self::Clicks,
            Self::Orders,
            Self::RevenuePerEmail,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// `[test]`: send the variants to a share of the audience first, then the winner to the rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// Share of the contacts to be mailed (the holdout apart) who get the variants first,
    /// above 0 and below 1.
    pub share: f64,
    /// What decides.
    pub metric: Metric,
    /// Earliest decision, hours after the plan.
    pub decide_after_hours: f64,
    /// Latest decision, hours after the plan: with no clear winner by then, `default` is sent.
    pub decide_by_hours: f64,
    /// Probability to be best a variant needs to win, 0.5 to 0.999.
    #[serde(default = "ninety_five")]
    pub confidence: f64,
    /// Recipients each variant needs before a winner can be declared.
    #[serde(default = "hundred")]
    pub min_per_variant: u32,
    /// The variant the rest gets when no winner is clear (default: the first).
    pub default: Option<String>,
}

fn ninety_five() -> f64 {
    0.95
}

fn hundred() -> u32 {
    100
}

/// The audience.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceSpec {
    /// A named segment (built-in or configured).
    pub segment: Option<String>,
    /// Or an inline rule in the segment language.
    pub rule: Option<Rule>,
    /// Share of the audience kept as a control group (stable per campaign and contact).
    #[serde(default)]
    pub holdout: f64,
    /// Only contacts whose consent is recorded as given (else: all but those who withheld it).
    #[serde(default = "yes")]
    pub require_consent: bool,
    /// Contacts planned for this campaign (sent or held out) within this many days are skipped,
    /// so a nightly run does not mail the same people the same message every night.
    #[serde(default = "thirty")]
    pub resend_after_days: f64,
}

fn thirty() -> f64 {
    30.0
}

fn yes() -> bool {
    true
}

/// The send window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSpec {
    /// Local time the window opens (the first such time after planning), `HH:MM`; absent = at
    /// planning time.
    pub window_start: Option<String>,
    /// Length of the window, hours.
    pub window_hours: f64,
    /// Local quiet hours, `HH:MM-HH:MM`.
    pub quiet: Option<String>,
    /// Local time for contacts whose profile is only the population's (no own or cluster
    /// evidence), `HH:MM`; absent = the population's best hour.
    pub fallback_time: Option<String>,
    /// Send each contact at its own best time (default); `false` sends everyone when the
    /// window opens (outside quiet hours).
    pub per_contact: bool,
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        Self {
            window_start: None,
            window_hours: 24.0,
            quiet: None,
            fallback_time: None,
            per_contact: true,
        }
    }
}

/// A frequency cap.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSpec {
    /// Most messages…
    pub max_messages: u32,
    /// …within this many days of each other.
    pub per_days: f64,
}

/// Envelope and reply headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSpec {
    /// `From:` (`Name <address>` or an address).
    pub from: String,
    /// `Reply-To:`.
    pub reply_to: Option<String>,
}

/// Templates and personalization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentSpec {
    /// HTML template file (relative to the campaign file).
    pub html: PathBuf,
    /// Plain-text template file.
    pub text: PathBuf,
    /// `first_name` when the contact has none.
    #[serde(default = "there")]
    pub first_name_fallback: String,
    /// Products recommended per message.
    #[serde(default = "three")]
    pub recommendations: usize,
    /// `replenish` or `discover`.
    #[serde(default = "discover")]
    pub mode: String,
    /// Only products in stock.
    #[serde(default = "yes")]
    pub in_stock: bool,
}

fn there() -> String {
    "there".into()
}
fn three() -> usize {
    3
}
fn discover() -> String {
    "discover".into()
}

/// An A/B variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Slug.
    pub name: String,
    /// Relative share of the (non-holdout) audience.
    #[serde(default = "one")]
    pub weight: f64,
    /// Subject template.
    pub subject: String,
    /// Preheader template (the inbox preview line).
    #[serde(default)]
    pub preheader: String,
    /// HTML template file replacing the campaign's.
    pub html: Option<PathBuf>,
    /// Plain-text template file replacing the campaign's.
    pub text: Option<PathBuf>,
}

fn one() -> f64 {
    1.0
}

/// A campaign file read and checked.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file as written.
    pub file: CampaignFile,
    /// Parsed window start.
    pub window_start: Option<NaiveTime>,
    /// Parsed fallback time.
    pub fallback_time: Option<NaiveTime>,
    /// Parsed quiet hours.
    pub quiet: Option<Quiet>,
    /// Window length.
    pub window: chrono::Duration,
    /// Recommendation mode.
    pub mode: Mode,
    /// Template sources, name → text (the names appear in errors).
    pub templates: Vec<(String, String)>,
}

/// Whether `s` is a slug.
pub(crate) fn is_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Campaign {
    /// Reads and checks a campaign file and the templates it names.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Campaign {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: CampaignFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        Self::from_file(path, file)
    }

    /// Checks a campaign built in memory (a series' send step), its templates read relative
    /// to `path`, which errors name.
    ///
    /// # Errors
    /// As [`Campaign::load`].
    pub fn from_file(path: &Path, file: CampaignFile) -> Result<Self> {
        let bad = |message: String| Error::Campaign {
            path: path.to_path_buf(),
            message,
        };
        if !is_slug(&file.id) {
            return Err(bad(format!(
                "id `{}`: use 1 to 64 characters of a-z, 0-9, `_` and `-`",
                file.id
            )));
        }
        if let Some(topic) = file.topic.as_deref().filter(|t| !is_slug(t)) {
            return Err(bad(format!(
                "topic `{topic}`: use 1 to 64 characters of a-z, 0-9, `_` and `-`"
            )));
        }
        let audience = &file.audience;
        if audience.segment.is_some() == audience.rule.is_some() {
            return Err(bad(
                "[audience]: give exactly one of `segment` (a segment name) or `rule` (an inline rule)".into(),
            ));
        }
        if !(0.0..1.0).contains(&audience.holdout) {
            return Err(bad(format!(
                "[audience] holdout = {}: use a share from 0 up to (not including) 1, e.g. 0.1",
                audience.holdout
            )));
        }
        if !(0.0..=3650.0).contains(&audience.resend_after_days) {
            return Err(bad(format!(
                "[audience] resend_after_days = {}: use 0 to 3650 days",
                audience.resend_after_days
            )));
        }
        let time = |setting: &str, raw: &Option<String>| -> Result<Option<NaiveTime>> {
            raw.as_deref()
                .map(|r| {
                    NaiveTime::parse_from_str(r.trim(), "%H:%M").map_err(|_| {
                        bad(format!(
                            "[schedule] {setting} = `{r}`: use HH:MM, e.g. 06:00"
                        ))
                    })
                })
                .transpose()
        };
        let schedule = &file.schedule;
        let window_start = time("window_start", &schedule.window_start)?;
        let fallback_time = time("fallback_time", &schedule.fallback_time)?;
        let quiet = schedule
            .quiet
            .as_deref()
            .map(Quiet::parse)
            .transpose()
            .map_err(|e| bad(format!("[schedule] {e}")))?;
        if !(schedule.window_hours.is_finite()
            && schedule.window_hours >= 1.0
            && schedule.window_hours <= 14.0 * 24.0)
        {
            return Err(bad(format!(
                "[schedule] window_hours = {}: use 1 to 336 hours",
                schedule.window_hours
            )));
        }
        let window = chrono::Duration::seconds((schedule.window_hours * 3600.0).round() as i64);
        if let Some(cap) = file.caps
            && (cap.max_messages == 0
                || !(cap.per_days.is_finite() && cap.per_days > 0.0 && cap.per_days <= 3650.0))
        {
            return Err(bad(
                "[caps]: max_messages must be at least 1 and per_days above 0 and at most 3650"
                    .into(),
            ));
        }
        let mode = match file.content.mode.as_str() {
            "replenish" => Mode::Replenish,
            "discover" => Mode::Discover,
            other => {
                return Err(bad(format!(
                    "[content] mode = `{other}`: use `replenish` or `discover`"
                )));
            }
        };
        if file.content.recommendations > 50 {
            return Err(bad("[content] recommendations: at most 50".into()));
        }
        crate::message::mailbox(&file.sender.from)
            .map_err(|e| bad(format!("[sender] from: {e}")))?;
        if let Some(r) = &file.sender.reply_to {
            crate::message::mailbox(r).map_err(|e| bad(format!("[sender] reply_to: {e}")))?;
        }
        if file.variants.is_empty() {
            return Err(bad(
                "no [[variants]]: give at least one with a name and a subject".into(),
            ));
        }
        let mut templates = Vec::new();
        let base = path.parent().unwrap_or(Path::new(""));
        let mut read = |file_name: &Path| -> Result<String> {
            let full = base.join(file_name);
            let name = file_name.display().to_string();
            if !templates.iter().any(|(n, _)| *n == name) {
                let source = std::fs::read_to_string(&full)
                    .map_err(|e| bad(format!("template {}: {e}", full.display())))?;
                templates.push((name.clone(), source));
            }
            Ok(name)
        };
        read(&file.content.html)?;
        read(&file.content.text)?;
        let mut names = std::collections::BTreeSet::new();
        for v in &file.variants {
            if v.name == "holdout" {
                return Err(bad(
                    "variant `holdout`: the name is reserved for the control group".into(),
                ));
            }
            if !is_slug(&v.name) || !names.insert(v.name.clone()) {
                return Err(bad(format!(
                    "variant `{}`: names are unique slugs (a-z, 0-9, `_`, `-`)",
                    v.name
                )));
            }
            if !(v.weight.is_finite() && v.weight > 0.0) {
                return Err(bad(format!("variant `{}`: weight must be above 0", v.name)));
            }
            if let Some(h) = &v.html {
                read(h)?;
            }
            if let Some(t) = &v.text {
                read(t)?;
            }
        }
        if let Some(test) = &file.test {
            check_test(test, &file.variants).map_err(|m| bad(format!("[test] {m}")))?;
        }
        for v in &file.variants {
            templates.push((format!("{}.subject", v.name), v.subject.clone()));
            templates.push((format!("{}.preheader", v.name), v.preheader.clone()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            window_start,
            fallback_time,
            quiet,
            window,
            mode,
            templates,
            file,
        })
    }

    /// The campaign id.
    pub fn id(&self) -> &str {
        &self.file.id
    }

    /// The variant an A/B test falls back to: its `default`, else the first variant.
    pub fn default_variant(&self) -> &str {
        self.file
            .test
            .as_ref()
            .and_then(|t| t.default.as_deref())
            .unwrap_or(&self.file.variants[0].name)
    }
}

/// The rules of `[test]`: what a test needs to be decidable.
fn check_test(test: &TestSpec, variants: &[VariantSpec]) -> Result<(), String> {
    if variants.len() < 2 {
        return Err("needs at least two [[variants]] to compare".into());
    }
    if !(test.share > 0.0 && test.share < 1.0) {
        return Err(format!(
            "share = {}: use a share above 0 and below 1, e.g. 0.2",
            test.share
        ));
    }
    let hours = 0.0..=14.0 * 24.0;
    if !(hours.contains(&test.decide_after_hours)
        && hours.contains(&test.decide_by_hours)
        && test.decide_after_hours <= test.decide_by_hours)
    {
        return Err(format!(
            "decide_after_hours = {}, decide_by_hours = {}: use 0 to 336 hours, the first not after the second",
            test.decide_after_hours, test.decide_by_hours
        ));
    }
    if !(0.5..=0.999).contains(&test.confidence) {
        return Err(format!(
            "confidence = {}: use a probability from 0.5 to 0.999, e.g. 0.95",
            test.confidence
        ));
    }
    if test.min_per_variant == 0 {
        return Err("min_per_variant: at least 1 recipient per variant".into());
    }
    if let Some(d) = &test.default
        && !variants.iter().any(|v| v.name == *d)
    {
        return Err(format!("default = `{d}` is not one of the [[variants]]"));
    }
    Ok(())
}
