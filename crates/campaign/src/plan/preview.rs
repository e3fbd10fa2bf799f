//! `--dry-run`: the plan as Parquet and a few rendered messages as `.eml` files, the outbox
//! untouched.

use crate::error::{Error, Result};
use crate::message::Envelope;
use crate::outbox::Planned;

/// `--dry-run`: writes the plan as `plan.parquet` and the first `n` messages as `.eml` files
/// into `dir`. Returns how many previews were written.
pub fn preview(
    dir: &std::path::Path,
    rows: &[Planned],
    envelope: &Envelope,
    campaign: &str,
    n: usize,
) -> Result<usize> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampSecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let path = dir.join("plan.parquet");
    let err = |e: &dyn std::fmt::Display| Error::write(&path, e);
    let text = |f: &dyn Fn(&Planned) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("contact_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("variant", DataType::Utf8, true),
        Field::new(
            "send_at",
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            false,
        ),
        Field::new("send_time_source", DataType::Utf8, true),
        Field::new("subject", DataType::Utf8, true),
        Field::new("message_id", DataType::Utf8, true),
    ]));
    let columns = vec![
        text(&|r| Some(r.contact_id.as_str())),
        text(&|r| Some(r.status.as_str())),
        text(&|r| r.reason),
        text(&|r| r.variant.as_deref()),
        Arc::new(
            TimestampSecondArray::from_iter_values(rows.iter().map(|r| r.send_at))
                .with_timezone("UTC"),
        ) as ArrayRef,
        text(&|r| Some(r.send_time_source)),
        text(&|r| r.content.as_ref().map(|c| c.subject.as_str())),
        text(&|r| r.message_id.as_deref()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
    let file = std::fs::File::create(&path).map_err(|e| err(&e))?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(|e| err(&e))?;
    writer.write(&batch).map_err(|e| err(&e))?;
    writer.close().map_err(|e| err(&e))?;

    let mut written = 0;
    for r in rows.iter().filter(|r| r.content.is_some()).take(n) {
        let (Some(content), Some(id), Some(to)) = (&r.content, &r.message_id, &r.email) else {
            continue;
        };
        let message = crate::message::build(envelope, campaign, &r.contact_id, to, id, content)
            .map_err(|e| Error::write(dir, e))?;
        let eml = dir.join(format!("preview-{}.eml", written + 1));
        std::fs::write(&eml, message.formatted()).map_err(|e| Error::write(&eml, e))?;
        written += 1;
    }
    Ok(written)
}
