//! What segment rules can read about a contact: scores, the snapshot's facts and flags, and the
//! export's extra contact columns, each under a stable name (documented in `docs/segments.md`).

use super::{FACTS, FLAGS, Models, Snapshot};
use augur_data::AttributeColumn;
use augur_segment::{Kind, Record, Schema, Value};

/// Where a schema field's value comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    ChurnRisk,
    SendTimeConfidence,
    BestSendHour,
    Fact(usize),
    Flag(usize),
    ContactId,
    ChurnTier,
    Country,
    Timezone,
    SendTimeFallback,
    TopCategory,
    Attribute(usize),
}

/// The segment schema of one model, and where each field is read.
#[derive(Debug, Clone)]
pub struct Fields {
    /// Names and kinds, in index order.
    pub schema: Schema,
    sources: Vec<Source>,
    attributes: Vec<String>,
}

impl Fields {
    /// The fields of `snapshot`: the fixed ones, then its attribute columns (a column named like
    /// a fixed field is shadowed by it).
    pub fn new(snapshot: &Snapshot) -> Self {
        let mut fields = fixed_fields();
        let mut attributes = Vec::new();
        for (name, column) in &snapshot.attributes {
            let kind = match column {
                AttributeColumn::Text(_) => Kind::Text,
                AttributeColumn::Number(_) => Kind::Number,
                AttributeColumn::Flag(_) => Kind::Bool,
            };
            fields.push((name.clone(), kind, Source::Attribute(attributes.len())));
            attributes.push(name.clone());
        }
        Self {
            schema: Schema::new(fields.iter().map(|(n, k, _)| (n.clone(), *k))),
            sources: fields.into_iter().map(|(_, _, s)| s).collect(),
            attributes,
        }
    }

    /// The fields every model offers, whatever columns its contacts export has: the list
    /// `docs/segments.md` documents.
    pub fn fixed_schema() -> Schema {
        Schema::new(fixed_fields().into_iter().map(|(n, k, _)| (n, k)))
    }

    /// Contact `c` as a record rules can read.
    pub fn record<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        models: &'a Models<'a>,
        c: usize,
    ) -> ContactRecord<'a> {
        ContactRecord {
            fields: self,
            snapshot,
            models,
            c,
            top_category: std::cell::OnceCell::new(),
            send_time: std::cell::OnceCell::new(),
        }
    }
}

/// The fields every snapshot has, with where each is read: scores, facts, texts, flags.
fn fixed_fields() -> Vec<(String, Kind, Source)> {
    let mut fields: Vec<(String, Kind, Source)> = vec![
        ("churn_risk".into(), Kind::Number, Source::ChurnRisk),
        (
            "send_time_confidence".into(),
            Kind::Number,
            Source::SendTimeConfidence,
        ),
        (
            "best_send_hour_of_week".into(),
            Kind::Number,
            Source::BestSendHour,
        ),
    ];
    fields.extend(
        FACTS
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_string(), Kind::Number, Source::Fact(i))),
    );
    fields.extend([
        ("contact_id".into(), Kind::Text, Source::ContactId),
        ("churn_tier".into(), Kind::Text, Source::ChurnTier),
        ("country".into(), Kind::Text, Source::Country),
        ("timezone".into(), Kind::Text, Source::Timezone),
        (
            "send_time_source".into(),
            Kind::Text,
            Source::SendTimeFallback,
        ),
        ("top_category".into(), Kind::Text, Source::TopCategory),
    ]);
    fields.extend(
        FLAGS
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_string(), Kind::Bool, Source::Flag(i))),
    );
    fields
}

/// One contact, read field by field as a rule asks. The derived values (top category, the
/// send-time summary) are computed at most once per contact, however many conditions read them:
/// a rule of a thousand `top_category` tests costs a thousand string comparisons, not a
/// thousand sorts of the contact's interests.
pub struct ContactRecord<'a> {
    fields: &'a Fields,
    snapshot: &'a Snapshot,
    models: &'a Models<'a>,
    c: usize,
    top_category: std::cell::OnceCell<Option<&'a str>>,
    send_time: std::cell::OnceCell<super::SendTimeSummary>,
}

impl<'a> ContactRecord<'a> {
    fn send_time(&self) -> &super::SendTimeSummary {
        self.send_time
            .get_or_init(|| self.snapshot.send_time_summary(self.models, self.c))
    }

    fn top_category(&self) -> Option<&'a str> {
        *self.top_category.get_or_init(|| {
            let s = self.snapshot;
            s.category_affinity(self.c)
                .first()
                .and_then(|(k, _)| s.products.categories.get(*k as usize))
                .map(String::as_str)
        })
    }
}

fn number(v: Option<f64>) -> Value<'static> {
    v.filter(|v| v.is_finite())
        .map_or(Value::Missing, Value::Number)
}

impl Record for ContactRecord<'_> {
    fn value(&self, field: usize) -> Value<'_> {
        let (s, c) = (self.snapshot, self.c);
        let Some(source) = self.fields.sources.get(field) else {
            return Value::Missing;
        };
        match *source {
            Source::ChurnRisk => number(s.churn_risk(c)),
            Source::SendTimeConfidence => number(Some(self.send_time().confidence)),
            Source::BestSendHour => number(self.send_time().best_hours.first().map(|h| *h as f64)),
            Source::Fact(i) => number(s.fact(i, c)),
            Source::Flag(i) => s.flag(i, c).map_or(Value::Missing, Value::Bool),
            Source::ContactId => Value::Text(s.contacts.name(c as u32)),
            Source::ChurnTier => Value::Text(s.churn_tier(c)),
            Source::Country => s.country[c].map_or(Value::Missing, Value::Text),
            Source::Timezone => Value::Text(s.timezone[c].name()),
            Source::SendTimeFallback => Value::Text(self.send_time().source),
            Source::TopCategory => self.top_category().map_or(Value::Missing, Value::Text),
            Source::Attribute(i) => match self
                .fields
                .attributes
                .get(i)
                .and_then(|name| s.attributes.get(name))
            {
                Some(AttributeColumn::Text(v)) => {
                    v[c].as_deref().map_or(Value::Missing, Value::Text)
                }
                Some(AttributeColumn::Number(v)) => number(v[c]),
                Some(AttributeColumn::Flag(v)) => v[c].map_or(Value::Missing, Value::Bool),
                None => Value::Missing,
            },
        }
    }
}
