//! `sent` rows for the e-mail events table, so the next training and reports see every send.
//!
//! Rows are written in Parquet part files next to the table's own files, exactly once: a file is
//! written under a hidden temporary name (the loader skips names starting with `.`), then the
//! outbox records which rows it holds, then it is renamed into place. A crash before the record
//! leaves rows unlogged (written again later); a crash after it leaves a temporary file that
//! [`SentLog::recover`] renames.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use augur_data::TableKind;

use crate::config::Settings;
use parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};
use crate::outbox::{Outbox, SentRow};

/// Names of the files written here start with this.
pub const FILE_PREFIX: &str = "augur-sent-";

/// Rows per file at most.
const ROWS_PER_FILE: usize = 100_000;

/// Where `sent` rows go.
#[derive(Debug, Clone)]
pub struct SentLog {
    dir: PathBuf,
    columns: [String; 4],
}

impl SentLog {
    /// The log of `config`: `campaigns.sent_events`, else the e-mail events table's directory.
    pub fn new(config: &Settings) -> Result<Self> {
        let table = config.data.tables.get(TableKind::EmailEvents);
        let dir = match (&config.campaigns.sent_events, &table.path) {
            (Some(dir), _) => dir.clone(),
            (None, Some(p)) if p.is_dir() => p.clone(),
            (None, Some(p)) if !p.exists() => {
                return Err(Error::Setting {
                    setting: "tables.email_events.path".into(),
                    message: format!(
                        "{} does not exist; create the directory (sent rows are written there) or set campaigns.sent_events",
                        p.display()
                    ),
                });
            }
            (None, Some(p)) => {
                return Err(Error::Setting {
                    setting: "campaigns.sent_events".into(),
                    message: format!(
                        "the e-mail events table is one file ({}), and Parquet files cannot be appended to; \
                         move it into a directory and point tables.email_events.path there, or set \
                         campaigns.sent_events to a directory the table also reads",
                        p.display()
                    ),
                });
            }
            (None, None) => {
                return Err(Error::Setting {
                    setting: "campaigns.sent_events".into(),
                    message: "no e-mail events table is configured; set tables.email_events.path to a directory (sent rows are written there)".into(),
                });
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        let columns = ["contact_id", "campaign_id", "event", "occurred_at"]
            .map(|f| table.column_for(f).to_string());
        Ok(Self { dir, columns })
    }

    fn temporary(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.tmp"))
    }

    /// Finishes what a crash interrupted: files the outbox names but that are not in place.
    pub fn recover(&self, outbox: &mut Outbox) -> Result<()> {
        for name in outbox.events_files()? {
            let path = self.dir.join(&name);
            if path.exists() {
                continue;
            }
            let tmp = self.temporary(&name);
            if tmp.exists() {
                std::fs::rename(&tmp, &path).map_err(|e| Error::write(&path, e))?;
            } else {
                outbox.unmark_logged(&name)?;
            }
        }
        Ok(())
    }

    /// Writes every sent message not yet logged. Returns how many rows.
    pub fn flush(&self, outbox: &mut Outbox) -> Result<usize> {
        let mut total = 0;
        loop {
            let rows = outbox.unlogged_sends(ROWS_PER_FILE)?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                return Ok(total);
            };
            let name = format!("{FILE_PREFIX}{:012}-{:012}.parquet", first.id, last.id);
            let tmp = self.temporary(&name);
            self.write(&tmp, &rows)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            outbox.mark_logged(&ids, &name)?;
            let path = self.dir.join(&name);
            std::fs::rename(&tmp, &path).map_err(|e| Error::write(&path, e))?;
            total += rows.len();
        }
    }

    fn write(&self, path: &Path, rows: &[SentRow]) -> Result<()> {
        let err = |e: &dyn std::fmt::Display| Error::write(path, e);
        let [contact, campaign, event, at] = &self.columns;
        let schema = Arc::new(Schema::new(vec![
            Field::new(contact, DataType::Utf8, false),
            Field::new(campaign, DataType::Utf8, false),
            Field::new(event, DataType::Utf8, false),
            Field::new(
                at,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("message_id", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.contact_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.campaign_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "sent"))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.sent_at * 1_000_000),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.message_id.as_str()),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
        let file = std::fs::File::create(path).map_err(|e| err(&e))?;
        let mut writer = ArrowWriter::try_new(file, schema, None).map_err(|e| err(&e))?;
        writer.write(&batch).map_err(|e| err(&e))?;
        let file = writer.into_inner().map_err(|e| err(&e))?;
        file.sync_all().map_err(|e| err(&e))
    }
}
