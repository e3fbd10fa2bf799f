//! Column buffers for one chunk of contacts, and the Arrow schemas of the files written.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn timestamp_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

/// Seconds → microseconds.
pub(crate) fn micros(seconds: i64) -> i64 {
    seconds.saturating_mul(1_000_000)
}

pub(crate) fn contacts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("contact_id", false),
        utf8("email", true),
        utf8("first_name", true),
        utf8("country", true),
        utf8("timezone", true),
        Field::new("created_at", ts(), true),
        Field::new("email_consent", DataType::Boolean, true),
        utf8("loyalty_tier", true),
        Field::new("birth_year", DataType::Int32, true),
        utf8("birthday", true),
    ]))
}

pub(crate) fn products_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("product_id", false),
        utf8("name", true),
        utf8("category", true),
        Field::new("price", DataType::Float64, true),
        utf8("url", true),
        utf8("image_url", true),
        Field::new("in_stock", DataType::Boolean, true),
    ]))
}

pub(crate) fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("order_id", false),
        utf8("contact_id", false),
        utf8("product_id", false),
        Field::new("ordered_at", ts(), false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", DataType::Float64, false),
    ]))
}

pub(crate) fn email_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("contact_id", false),
        utf8("campaign_id", true),
        utf8("event", false),
        Field::new("occurred_at", ts(), false),
        Field::new("machine_open", DataType::Boolean, true),
    ]))
}

pub(crate) fn web_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("contact_id", false),
        utf8("event", false),
        utf8("product_id", true),
        Field::new("occurred_at", ts(), false),
    ]))
}

pub(crate) fn truth_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("contact_id", false),
        utf8("timezone", false),
        Field::new("purchase_rate_per_day", DataType::Float64, false),
        Field::new("dropout_at", ts(), false),
        Field::new("alive_at_end", DataType::Boolean, false),
        Field::new("p_no_purchase_90d_at_end", DataType::Float64, false),
        utf8("top_category", false),
        Field::new("price_tier", DataType::Int32, false),
        Field::new("repeat_propensity", DataType::Float64, false),
        Field::new("peak_hour_of_day", DataType::Int32, false),
        Field::new("peak_hour_of_week", DataType::Int32, false),
        Field::new("open_propensity", DataType::Float64, false),
        Field::new("click_propensity", DataType::Float64, false),
        Field::new("machine_opener", DataType::Boolean, false),
        Field::new("bad_address", DataType::Boolean, false),
    ]))
}

#[derive(Default)]
pub(crate) struct ContactRows {
    pub contact_id: StringBuilder,
    pub email: StringBuilder,
    pub first_name: StringBuilder,
    pub country: StringBuilder,
    pub timezone: StringBuilder,
    pub created_at: Option<TimestampMicrosecondBuilder>,
    pub email_consent: BooleanBuilder,
    pub loyalty_tier: StringBuilder,
    pub birth_year: Int32Builder,
    pub birthday: StringBuilder,
}

#[derive(Default)]
pub(crate) struct OrderRows {
    pub order_id: StringBuilder,
    pub contact_id: StringBuilder,
    pub product_id: StringBuilder,
    pub ordered_at: Option<TimestampMicrosecondBuilder>,
    pub quantity: Int32Builder,
    pub unit_price: Float64Builder,
}

#[derive(Default)]
pub(crate) struct EmailRows {
    pub contact_id: StringBuilder,
    pub campaign_id: StringBuilder,
    pub event: StringBuilder,
    pub occurred_at: Option<TimestampMicrosecondBuilder>,
    pub machine_open: BooleanBuilder,
}

#[derive(Default)]
pub(crate) struct WebRows {
    pub contact_id: StringBuilder,
    pub event: StringBuilder,
    pub product_id: StringBuilder,
    pub occurred_at: Option<TimestampMicrosecondBuilder>,
}

#[derive(Default)]
pub(crate) struct TruthRows {
    pub contact_id: StringBuilder,
    pub timezone: StringBuilder,
    pub purchase_rate: Float64Builder,
    pub dropout_at: Option<TimestampMicrosecondBuilder>,
    pub alive_at_end: BooleanBuilder,
    pub p_no_purchase: Float64Builder,
    pub top_category: StringBuilder,
    pub price_tier: Int32Builder,
    pub repeat_propensity: Float64Builder,
    pub peak_hour_of_day: Int32Builder,
    pub peak_hour_of_week: Int32Builder,
    pub open_propensity: Float64Builder,
    pub click_propensity: Float64Builder,
    pub machine_opener: BooleanBuilder,
    pub bad_address: BooleanBuilder,
}

/// Appends an instant to a lazily created UTC timestamp builder.
pub(crate) fn push_time(builder: &mut Option<TimestampMicrosecondBuilder>, seconds: i64) {
    builder
        .get_or_insert_with(timestamp_builder)
        .append_value(micros(seconds));
}

fn finish_time(builder: &mut Option<TimestampMicrosecondBuilder>) -> ArrayRef {
    Arc::new(builder.get_or_insert_with(timestamp_builder).finish())
}

/// All tables of one chunk; nothing at or after `end` is kept.
pub(crate) struct ChunkRows {
    pub end: i64,
    pub contacts: ContactRows,
    pub orders: OrderRows,
    pub email: EmailRows,
    pub web: WebRows,
    pub truth: TruthRows,
}

/// The finished batches of a chunk, in table order: contacts, orders, email, web, truth.
pub(crate) struct ChunkBatches {
    pub contacts: RecordBatch,
    pub orders: RecordBatch,
    pub email: RecordBatch,
    pub web: RecordBatch,
    pub truth: RecordBatch,
}

impl ChunkRows {
    pub fn new(end: i64) -> Self {
        Self {
            end,
            contacts: ContactRows::default(),
            orders: OrderRows::default(),
            email: EmailRows::default(),
            web: WebRows::default(),
            truth: TruthRows::default(),
        }
    }

    pub fn finish(mut self) -> Result<ChunkBatches, ArrowError> {
        let c = &mut self.contacts;
        let contacts = RecordBatch::try_new(
            contacts_schema(),
            vec![
                Arc::new(c.contact_id.finish()),
                Arc::new(c.email.finish()),
                Arc::new(c.first_name.finish()),
                Arc::new(c.country.finish()),
                Arc::new(c.timezone.finish()),
                finish_time(&mut c.created_at),
                Arc::new(c.email_consent.finish()),
                Arc::new(c.loyalty_tier.finish()),
                Arc::new(c.birth_year.finish()),
                Arc::new(c.birthday.finish()),
            ],
        )?;
        let o = &mut self.orders;
        let orders = RecordBatch::try_new(
            orders_schema(),
            vec![
                Arc::new(o.order_id.finish()),
                Arc::new(o.contact_id.finish()),
                Arc::new(o.product_id.finish()),
                finish_time(&mut o.ordered_at),
                Arc::new(o.quantity.finish()),
                Arc::new(o.unit_price.finish()),
            ],
        )?;
        let e = &mut self.email;
        let email = RecordBatch::try_new(
            email_schema(),
            vec![
                Arc::new(e.contact_id.finish()),
                Arc::new(e.campaign_id.finish()),
                Arc::new(e.event.finish()),
                finish_time(&mut e.occurred_at),
                Arc::new(e.machine_open.finish()),
            ],
        )?;
        let w = &mut self.web;
        let web = RecordBatch::try_new(
            web_schema(),
            vec![
                Arc::new(w.contact_id.finish()),
                Arc::new(w.event.finish()),
                Arc::new(w.product_id.finish()),
                finish_time(&mut w.occurred_at),
            ],
        )?;
        let t = &mut self.truth;
        let truth = RecordBatch::try_new(
            truth_schema(),
            vec![
                Arc::new(t.contact_id.finish()),
                Arc::new(t.timezone.finish()),
                Arc::new(t.purchase_rate.finish()),
                finish_time(&mut t.dropout_at),
                Arc::new(t.alive_at_end.finish()),
                Arc::new(t.p_no_purchase.finish()),
                Arc::new(t.top_category.finish()),
                Arc::new(t.price_tier.finish()),
                Arc::new(t.repeat_propensity.finish()),
                Arc::new(t.peak_hour_of_day.finish()),
                Arc::new(t.peak_hour_of_week.finish()),
                Arc::new(t.open_propensity.finish()),
                Arc::new(t.click_propensity.finish()),
                Arc::new(t.machine_opener.finish()),
                Arc::new(t.bad_address.finish()),
            ],
        )?;
        Ok(ChunkBatches {
            contacts,
            orders,
            email,
            web,
            truth,
        })
    }
}
