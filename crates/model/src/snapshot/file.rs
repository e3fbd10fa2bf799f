//! The snapshot on disk: `contacts.arrow` (one row per contact) and `products.arrow` (one row per
//! affinity-model product), Arrow IPC files without compression, so loading is reading buffers,
//! not parsing. Layout documented in `docs/model-format.md`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, ListArray, PrimitiveArray,
    RecordBatch, StringArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Schema};
use arrow::error::ArrowError;

use super::{BEST_HOURS, Defaults, FACTS, FLAGS, NO_REASON, ProductCatalog, REASONS, Snapshot};
use crate::error::{Error, Result};
use augur_data::AttributeColumn;
use augur_data::normalize_country;
use augur_data::{IdIndex, NONE};

/// Contacts file name inside a model directory.
pub const CONTACTS_FILE: &str = "contacts.arrow";
/// Products file name inside a model directory.
pub const PRODUCTS_FILE: &str = "products.arrow";
/// Prefix of extra contact attribute columns.
const ATTRIBUTE_PREFIX: &str = "attribute.";

fn write_batch(path: &Path, columns: Vec<(String, ArrayRef)>) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(name, a.data_type().clone(), a.null_count() > 0))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| err(&e))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer =
        arrow::ipc::writer::FileWriter::try_new(std::io::BufWriter::new(file), &schema)
            .map_err(|e| err(&e))?;
    writer.write(&batch).map_err(|e| err(&e))?;
    writer.finish().map_err(|e| err(&e))
}

fn list<T: ArrowPrimitiveType>(
    offsets: &[u32],
    values: ScalarBuffer<T::Native>,
) -> Result<ArrayRef> {
    let offsets: Vec<i32> = offsets
        .iter()
        .map(|o| i32::try_from(*o))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            Error::TooLarge(
                "snapshot lists exceed 2^31 entries; score fewer contacts at once".into(),
            )
        })?;
    let values = PrimitiveArray::<T>::new(values, None);
    let field = Arc::new(Field::new("item", values.data_type().clone(), false));
    Ok(Arc::new(ListArray::new(
        field,
        OffsetBuffer::new(offsets.into()),
        Arc::new(values),
        None,
    )))
}

impl Snapshot {
    /// Writes `contacts.arrow` and `products.arrow` into `dir`; `product_ids` are the affinity
    /// model's, written alongside so a reader can check the two files belong together.
    pub fn write(&self, dir: &Path, product_ids: &[String]) -> Result<()> {
        use arrow::datatypes::{Float32Type, UInt8Type, UInt32Type};
        let n = self.len();
        let mut columns: Vec<(String, ArrayRef)> = vec![
            (
                "contact_id".into(),
                Arc::new(StringArray::from_iter_values(self.contacts.names())),
            ),
            (
                "country".into(),
                Arc::new(StringArray::from_iter(self.country.iter().copied())),
            ),
            (
                "timezone".into(),
                Arc::new(StringArray::from_iter_values(
                    self.timezone.iter().map(|z| z.name()),
                )),
            ),
            (
                "churn_risk".into(),
                Arc::new(Float64Array::from_iter(
                    self.churn_risk
                        .iter()
                        .map(|p| Some(*p).filter(|p| p.is_finite())),
                )),
            ),
        ];
        let reason_offsets: Vec<u32> = (0..=n).map(|c| (c * REASONS) as u32).collect();
        columns.push((
            "churn_reasons".into(),
            list::<UInt8Type>(
                &reason_offsets,
                self.churn_reasons.iter().flatten().copied().collect(),
            )?,
        ));
        for (name, values) in FACTS.iter().zip(&self.facts) {
            columns.push((
                (*name).into(),
                Arc::new(Float32Array::from_iter(
                    values.iter().map(|v| Some(*v).filter(|v| v.is_finite())),
                )),
            ));
        }
        for (name, values) in FLAGS.iter().zip(&self.flags) {
            columns.push(((*name).into(), Arc::new(BooleanArray::from(values.clone()))));
        }
        for (name, column) in &self.attributes {
            let array: ArrayRef = match column {
                AttributeColumn::Text(v) => {
                    Arc::new(StringArray::from_iter(v.iter().map(Option::as_deref)))
                }
                AttributeColumn::Number(v) => Arc::new(Float64Array::from(v.clone())),
                AttributeColumn::Flag(v) => Arc::new(BooleanArray::from(v.clone())),
            };
            columns.push((format!("{ATTRIBUTE_PREFIX}{name}"), array));
        }
        let (po, eo) = (&self.profile_offsets, &self.engagement_offsets);
        columns.extend([
            (
                "profile_product".into(),
                list::<UInt32Type>(po, self.profile_product.clone())?,
            ),
            (
                "profile_bought".into(),
                list::<Float32Type>(po, self.profile_bought.clone())?,
            ),
            (
                "profile_web".into(),
                list::<Float32Type>(po, self.profile_web.clone())?,
            ),
            (
                "profile_orders".into(),
                list::<Float32Type>(po, self.profile_orders.clone())?,
            ),
            (
                "profile_days_since_last".into(),
                list::<Float32Type>(po, self.profile_days_since_last.clone())?,
            ),
            (
                "profile_days_since_first".into(),
                list::<Float32Type>(po, self.profile_days_since_first.clone())?,
            ),
            (
                "engagement_hour".into(),
                list::<UInt8Type>(eo, self.engagement_hour.clone())?,
            ),
            (
                "engagement_weight".into(),
                list::<Float32Type>(eo, self.engagement_weight.clone())?,
            ),
        ]);
        let d = &self.defaults;
        let hour_offsets: Vec<u32> = (0..=n).map(|c| (c * BEST_HOURS) as u32).collect();
        columns.extend([
            (
                "recommended_product".into(),
                list::<UInt32Type>(&d.recommended_offsets, d.recommended_product.clone())?,
            ),
            (
                "recommended_score".into(),
                list::<Float32Type>(&d.recommended_offsets, d.recommended_score.clone())?,
            ),
            (
                "best_send_hours".into(),
                list::<UInt8Type>(
                    &hour_offsets,
                    d.best_hours.iter().flatten().copied().collect(),
                )?,
            ),
            (
                "send_time_confidence".into(),
                Arc::new(Float64Array::from(d.send_time_confidence.clone())) as ArrayRef,
            ),
            (
                "send_time_source".into(),
                Arc::new(arrow::array::UInt8Array::from(d.send_time_source.clone())) as ArrayRef,
            ),
        ]);
        write_batch(&dir.join(CONTACTS_FILE), columns)?;
        let p = &self.products;
        let category = p.category.iter().map(|c| {
            p.categories
                .get(*c as usize)
                .filter(|_| *c != NONE)
                .map(String::as_str)
        });
        write_batch(
            &dir.join(PRODUCTS_FILE),
            vec![
                (
                    "product_id".into(),
                    Arc::new(StringArray::from_iter_values(product_ids)),
                ),
                (
                    "name".into(),
                    Arc::new(StringArray::from_iter(p.name.iter().map(Option::as_deref))),
                ),
                (
                    "price".into(),
                    Arc::new(Float64Array::from(p.price.clone())),
                ),
                (
                    "in_stock".into(),
                    Arc::new(BooleanArray::from(p.in_stock.clone())),
                ),
                (
                    "category".into(),
                    Arc::new(StringArray::from_iter(category)),
                ),
            ],
        )
    }

    /// Reads a snapshot written by [`Snapshot::write`]; `as_of` is the manifest's and
    /// `product_ids` the affinity model's.
    pub fn read(dir: &Path, as_of: i64, product_ids: &[String]) -> Result<Self> {
        let contacts = Columns::read(&dir.join(CONTACTS_FILE))?;
        let products = Columns::read(&dir.join(PRODUCTS_FILE))?;
        if products
            .strings("product_id")?
            .iter()
            .ne(product_ids.iter().map(|p| Some(p.as_str())))
        {
            return Err(products.invalid("product_id", "does not match affinity.json"));
        }
        let ids = contacts.strings("contact_id")?;
        // Hashing every id is the longest single step of a load: it runs beside the rest.
        let (index, snapshot) = rayon::join(
            || {
                let mut index = IdIndex::with_capacity(ids.len());
                for id in ids.iter() {
                    index.intern(id.unwrap_or_default());
                }
                index
            },
            || Self::read_columns(&contacts, &products, as_of, ids.len()),
        );
        if index.len() != ids.len() {
            return Err(contacts.invalid("contact_id", "repeats an id"));
        }
        let snapshot = Snapshot {
            contacts: index,
            ..snapshot?
        };
        snapshot.check(&contacts)?;
        Ok(snapshot)
    }

    /// Every column of a snapshot but the id index (left empty), for `n` contacts.
    fn read_columns(contacts: &Columns, products: &Columns, as_of: i64, n: usize) -> Result<Self> {
        let mut zones = rustc_hash::FxHashMap::default();
        let timezone = contacts
            .strings("timezone")?
            .iter()
            .map(|z| {
                let name = z.unwrap_or("UTC");
                if let Some(tz) = zones.get(name) {
                    return Ok(*tz);
                }
                let tz: augur_data::Tz = name
                    .parse()
                    .map_err(|_| contacts.invalid("timezone", "holds an unknown time zone"))?;
                zones.insert(name.to_string(), tz);
                Ok(tz)
            })
            .collect::<Result<Vec<_>>>()?;
        let (reason_offsets, reason_codes) =
            contacts.list::<arrow::datatypes::UInt8Type>("churn_reasons")?;
        if reason_offsets.len() != n + 1 || reason_codes.len() != n * REASONS {
            return Err(contacts.invalid("churn_reasons", "does not hold 3 codes per contact"));
        }
        let churn_reasons = reason_codes
            .chunks_exact(REASONS)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let mut attributes = std::collections::BTreeMap::new();
        for (name, array) in contacts
            .batch
            .schema()
            .fields()
            .iter()
            .zip(contacts.batch.columns())
        {
            let Some(attribute) = name.name().strip_prefix(ATTRIBUTE_PREFIX) else {
                continue;
            };
            let column = match array.data_type() {
                DataType::Utf8 => AttributeColumn::Text(
                    array
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.map(Box::from))
                        .collect(),
                ),
                DataType::Float64 => AttributeColumn::Number(
                    array
                        .as_primitive::<arrow::datatypes::Float64Type>()
                        .iter()
                        .collect(),
                ),
                DataType::Boolean => AttributeColumn::Flag(array.as_boolean().iter().collect()),
                _ => return Err(contacts.invalid(name.name(), "has an unexpected type")),
            };
            attributes.insert(attribute.to_string(), column);
        }
        let (profile_offsets, profile_product) =
            contacts.list::<arrow::datatypes::UInt32Type>("profile_product")?;
        let (_, profile_bought) =
            contacts.list::<arrow::datatypes::Float32Type>("profile_bought")?;
        let (_, profile_web) = contacts.list::<arrow::datatypes::Float32Type>("profile_web")?;
        let (_, profile_orders) =
            contacts.list::<arrow::datatypes::Float32Type>("profile_orders")?;
        let (_, profile_days_since_last) =
            contacts.list::<arrow::datatypes::Float32Type>("profile_days_since_last")?;
        let (_, profile_days_since_first) =
            contacts.list::<arrow::datatypes::Float32Type>("profile_days_since_first")?;
        let (engagement_offsets, engagement_hour) =
            contacts.list::<arrow::datatypes::UInt8Type>("engagement_hour")?;
        let (_, engagement_weight) =
            contacts.list::<arrow::datatypes::Float32Type>("engagement_weight")?;
        let (recommended_offsets, recommended_product) =
            contacts.list::<arrow::datatypes::UInt32Type>("recommended_product")?;
        let (_, recommended_score) =
            contacts.list::<arrow::datatypes::Float32Type>("recommended_score")?;
        let (_, hours) = contacts.list::<arrow::datatypes::UInt8Type>("best_send_hours")?;
        if hours.len() != n * BEST_HOURS || recommended_score.len() != recommended_product.len() {
            return Err(
                contacts.invalid("best_send_hours/recommended_*", "lists disagree in length")
            );
        }
        let defaults = Defaults {
            recommended_offsets,
            recommended_product,
            recommended_score,
            best_hours: hours
                .chunks_exact(BEST_HOURS)
                .map(|h| [h[0], h[1], h[2]])
                .collect(),
            send_time_confidence: contacts
                .column("send_time_confidence")?
                .as_primitive_opt::<arrow::datatypes::Float64Type>()
                .ok_or_else(|| contacts.invalid("send_time_confidence", "is not float64"))?
                .values()
                .to_vec(),
            send_time_source: contacts
                .column("send_time_source")?
                .as_primitive_opt::<arrow::datatypes::UInt8Type>()
                .ok_or_else(|| contacts.invalid("send_time_source", "is not uint8"))?
                .values()
                .to_vec(),
        };
        let categories = products.strings("category")?;
        // Category indexes in order of first appearance, as `build` numbers them.
        let mut names: Vec<String> = Vec::new();
        for c in categories.iter().flatten() {
            if !names.iter().any(|n| n == c) {
                names.push(c.to_string());
            }
        }
        let catalog = ProductCatalog {
            // Absent from model directories written before they were kept.
            name: match products.batch.column_by_name("name") {
                None => vec![None; categories.len()],
                Some(_) => products
                    .strings("name")?
                    .iter()
                    .map(|v| v.map(Box::from))
                    .collect(),
            },
            price: match products.batch.column_by_name("price") {
                None => vec![None; categories.len()],
                Some(column) => column
                    .as_primitive_opt::<arrow::datatypes::Float64Type>()
                    .ok_or_else(|| products.invalid("price", "is not float64"))?
                    .iter()
                    .map(|v| v.filter(|v| v.is_finite()))
                    .collect(),
            },
            in_stock: products
                .column("in_stock")?
                .as_boolean_opt()
                .ok_or_else(|| products.invalid("in_stock", "is not boolean"))?
                .iter()
                .map(|v| v.unwrap_or(true))
                .collect(),
            category: categories
                .iter()
                .map(|c| {
                    c.and_then(|c| names.iter().position(|n| n == c))
                        .map_or(NONE, |i| i as u32)
                })
                .collect(),
            categories: names,
        };
        let snapshot = Snapshot {
            as_of,
            country: contacts
                .strings("country")?
                .iter()
                .map(|c| c.and_then(normalize_country))
                .collect(),
            timezone,
            churn_risk: contacts
                .column("churn_risk")?
                .as_primitive_opt::<arrow::datatypes::Float64Type>()
                .ok_or_else(|| contacts.invalid("churn_risk", "is not float64"))?
                .iter()
                .map(|p| p.unwrap_or(f64::NAN))
                .collect(),
            churn_reasons,
            facts: FACTS
                .iter()
                .map(|name| {
                    Ok(contacts
                        .column(name)?
                        .as_primitive_opt::<arrow::datatypes::Float32Type>()
                        .ok_or_else(|| contacts.invalid(name, "is not float32"))?
                        .iter()
                        .map(|v| v.unwrap_or(f32::NAN))
                        .collect())
                })
                .collect::<Result<_>>()?,
            flags: FLAGS
                .iter()
                .map(|name| {
                    Ok(contacts
                        .column(name)?
                        .as_boolean_opt()
                        .ok_or_else(|| contacts.invalid(name, "is not boolean"))?
                        .iter()
                        .collect())
                })
                .collect::<Result<_>>()?,
            attributes,
            profile_offsets,
            profile_product,
            profile_bought,
            profile_web,
            profile_orders,
            profile_days_since_last,
            profile_days_since_first,
            engagement_offsets,
            engagement_hour,
            engagement_weight,
            defaults,
            products: catalog,
            contacts: IdIndex::new(),
        };
        Ok(snapshot)
    }

    /// Cross-checks lengths and indexes, so a damaged file is refused at load, not at a request.
    fn check(&self, file: &Columns) -> Result<()> {
        let n = self.len();
        let products = self.products.in_stock.len() as u32;
        let lists_agree = self.profile_offsets.len() == n + 1
            && self.engagement_offsets.len() == n + 1
            && self.profile_bought.len() == self.profile_product.len()
            && self.profile_web.len() == self.profile_product.len()
            && self.profile_orders.len() == self.profile_product.len()
            && self.profile_days_since_last.len() == self.profile_product.len()
            && self.profile_days_since_first.len() == self.profile_product.len()
            && self.engagement_weight.len() == self.engagement_hour.len();
        if !lists_agree {
            return Err(file.invalid("profile_*/engagement_*", "lists disagree in length"));
        }
        if self.defaults.recommended_offsets.len() != n + 1
            || self
                .defaults
                .recommended_product
                .iter()
                .any(|p| *p >= products)
        {
            return Err(file.invalid(
                "recommended_product",
                "does not match the contacts or products",
            ));
        }
        if self.profile_product.iter().any(|p| *p >= products) {
            return Err(file.invalid("profile_product", "names a product outside products.arrow"));
        }
        if self
            .engagement_hour
            .iter()
            .any(|h| usize::from(*h) >= crate::send_time::HOURS)
        {
            return Err(file.invalid("engagement_hour", "holds an hour past 167"));
        }
        // Each contact's hours are distinct and in order, as training writes them: a repeated
        // hour would be counted twice.
        let ascending = self.engagement_offsets.windows(2).all(|w| {
            let hours = &self.engagement_hour[w[0] as usize..w[1] as usize];
            hours.windows(2).all(|pair| pair[0] < pair[1])
        });
        if !ascending {
            return Err(file.invalid("engagement_hour", "repeats an hour or is out of order"));
        }
        let weight_ok = |w: &f32| w.is_finite() && *w >= 0.0;
        if !self.engagement_weight.iter().all(weight_ok) {
            return Err(file.invalid("engagement_weight", "holds a negative or non-finite weight"));
        }
        if !self
            .profile_bought
            .iter()
            .chain(self.profile_web.iter())
            .chain(self.profile_orders.iter())
            .chain(self.profile_days_since_last.iter())
            .chain(self.profile_days_since_first.iter())
            .all(weight_ok)
        {
            return Err(file.invalid("profile_*", "holds a negative or non-finite weight"));
        }
        if self
            .churn_reasons
            .iter()
            .flatten()
            .any(|j| *j != NO_REASON && usize::from(*j) >= crate::features::CHURN_FEATURES.len())
        {
            return Err(file.invalid("churn_reasons", "names an unknown feature"));
        }
        Ok(())
    }
}

/// One Arrow IPC file read whole, with errors that name it.
struct Columns {
    path: std::path::PathBuf,
    batch: RecordBatch,
}

impl Columns {
    /// Reads the whole file into one buffer and decodes the batches over it without copying:
    /// the columns are views of that buffer.
    fn read(path: &Path) -> Result<Self> {
        let invalid = |e: &dyn std::fmt::Display| {
            Error::model_dir(
                path,
                format!("not a valid snapshot file ({e}); retrain with `augur train`"),
            )
        };
        let bytes = Buffer::from_vec(std::fs::read(path).map_err(|e| Error::io(path, e))?);
        let batches = decode_ipc_file(&bytes).map_err(|e| invalid(&e))?;
        let batch = match <[RecordBatch; 1]>::try_from(batches) {
            Ok([one]) => one,
            Err(many) => {
                let schema = many
                    .first()
                    .map(RecordBatch::schema)
                    .ok_or_else(|| invalid(&"no record batch"))?;
                arrow::compute::concat_batches(&schema, &many).map_err(|e| invalid(&e))?
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            batch,
        })
    }

    fn invalid(&self, column: &str, what: &str) -> Error {
        Error::model_dir(
            &self.path,
            format!(
                "column `{column}` {what}; the model directory is damaged, retrain with `augur train`"
            ),
        )
    }

    fn column(&self, name: &str) -> Result<&ArrayRef> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| self.invalid(name, "is missing"))
    }

    fn strings(&self, name: &str) -> Result<&StringArray> {
        self.column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.invalid(name, "is not text"))
    }

    /// A list column as (offsets from 0, flattened values: a view of the file's buffer).
    fn list<T: ArrowPrimitiveType>(
        &self,
        name: &str,
    ) -> Result<(Vec<u32>, ScalarBuffer<T::Native>)> {
        let list = self
            .column(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| self.invalid(name, "is not a list"))?;
        let values = list
            .values()
            .as_primitive_opt::<T>()
            .ok_or_else(|| self.invalid(name, "holds values of the wrong type"))?;
        let offsets = list.value_offsets();
        let first = offsets.first().copied().unwrap_or(0);
        let last = offsets.last().copied().unwrap_or(0);
        if first < 0 || last as usize > values.len() || offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err(self.invalid(name, "has broken offsets"));
        }
        Ok((
            offsets.iter().map(|o| (o - first) as u32).collect(),
            values
                .values()
                .slice(first as usize, (last - first) as usize),
        ))
    }
}

/// The record batches of an Arrow IPC file held in memory, decoded over its buffer.
fn decode_ipc_file(bytes: &Buffer) -> std::result::Result<Vec<RecordBatch>, ArrowError> {
    use arrow::ipc::reader::{FileDecoder, read_footer_length};
    let broken = |what: &str| ArrowError::IpcError(what.to_string());
    // The file ends with the footer, its length (4 bytes) and the magic `ARROW1` (6 bytes).
    let trailer_start = bytes
        .len()
        .checked_sub(10)
        .ok_or_else(|| broken("shorter than an Arrow file"))?;
    let trailer: [u8; 10] = bytes[trailer_start..]
        .try_into()
        .map_err(|_| broken("no trailer"))?;
    let footer_len = read_footer_length(trailer)?;
    let footer_start = trailer_start
        .checked_sub(footer_len)
        .ok_or_else(|| broken("footer longer than the file"))?;
    let footer = arrow::ipc::root_as_footer(&bytes[footer_start..trailer_start])
        .map_err(|e| broken(&e.to_string()))?;
    let schema =
        arrow::ipc::convert::try_fb_to_schema(footer.schema().ok_or_else(|| broken("no schema"))?)?;
    let mut decoder = FileDecoder::new(Arc::new(schema), footer.version());
    let block_bytes = |block: &arrow::ipc::Block| -> std::result::Result<Buffer, ArrowError> {
        let start = usize::try_from(block.offset()).map_err(|_| broken("negative offset"))?;
        // Arrow's decoder reads an 8-byte message prefix without checking the length.
        if block.metaDataLength() < 8 {
            return Err(broken("a block's metadata is too short"));
        }
        let len = usize::try_from(block.metaDataLength())
            .unwrap_or(usize::MAX)
            .saturating_add(usize::try_from(block.bodyLength()).unwrap_or(usize::MAX));
        if start.checked_add(len).is_none_or(|end| end > bytes.len()) {
            return Err(broken("a block runs past the end of the file"));
        }
        Ok(bytes.slice_with_length(start, len))
    };
    // Arrow's decoder trusts the buffer offsets inside each message and asserts on bad ones; a
    // damaged file must be an error, not a crash.
    let guarded = |decode: &mut dyn FnMut() -> std::result::Result<(), ArrowError>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
            .unwrap_or_else(|_| Err(broken("a block's buffers point outside it")))
    };
    for block in footer.dictionaries().iter().flatten() {
        let data = block_bytes(block)?;
        guarded(&mut || decoder.read_dictionary(block, &data))?;
    }
    let mut batches = Vec::new();
    for block in footer.recordBatches().iter().flatten() {
        let data = block_bytes(block)?;
        guarded(&mut || {
            if let Some(batch) = decoder.read_record_batch(block, &data)? {
                batches.push(batch);
            }
            Ok(())
        })?;
    }
    Ok(batches)
}
