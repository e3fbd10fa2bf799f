//! The event store: an append-only SQLite table of checked events, each once (its id is
//! unique), in the order they were received (`seq`). `POST /v1/events` appends a batch in one
//! durable transaction (WAL, `synchronous = FULL`) before it answers; `augur flows` reads what
//! is new since its cursor; `augur serve` and `augur train` read a contact's or everyone's.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::event::{Body, Event};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    contact_id TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_contact ON events (contact_id, occurred_at);
PRAGMA user_version = 1;
";

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Position in the store: later events have larger numbers.
    pub seq: i64,
    /// When the store received it (Unix seconds).
    pub received_at: i64,
    /// The event.
    pub event: Event,
}

/// What [`EventStore::append`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// New events stored.
    pub stored: usize,
    /// Events whose id was stored before with the same content (a retried batch): not stored
    /// again.
    pub duplicates: usize,
    /// Positions (in the appended slice) of events whose id was stored before with other
    /// content: a reused id, not a retry. Not stored; the first event keeps the id.
    pub conflicts: Vec<usize>,
}

/// The event store.
#[derive(Debug)]
pub struct EventStore {
    conn: Connection,
    path: PathBuf,
}

impl EventStore {
    /// Opens (creating if needed) the store at `path`.
    ///
    /// # Errors
    /// The file cannot be created or is not an event store of this version.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |e: &dyn std::fmt::Display| Error::store(path, e);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| err(&e))?;
        let mut tries = 0;
        while let Err(e) = conn.pragma_update(None, "journal_mode", "WAL") {
            let busy = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
            if !busy || tries >= 300 {
                return Err(err(&e));
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| err(&e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| err(&e))?;
        if version > 1 {
            return Err(err(&format!(
                "written by a newer augur (schema {version}); upgrade augur"
            )));
        }
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes every event of `contact_id` (its erasure); returns how many.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn forget(&mut self, contact_id: &str) -> Result<usize> {
        self.conn
            .execute("DELETE FROM events WHERE contact_id = ?1", [contact_id])
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::store(&self.path, e)
    }

    /// Appends `events`, received at `received_at`, in one durable transaction; an event whose
    /// id is stored already is skipped, counted as a duplicate when its content is the same
    /// and listed as a conflict when it is not.
    ///
    /// # Errors
    /// The database cannot be written (nothing of the batch is stored then).
    pub fn append(&mut self, events: &[Event], received_at: i64) -> Result<Appended> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| Error::store(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut out = Appended::default();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (event_id, contact_id, occurred_at, received_at, kind, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            let mut stored = tx
                .prepare_cached(
                    "SELECT contact_id, occurred_at, body FROM events WHERE event_id = ?1",
                )
                .map_err(err)?;
            for (position, e) in events.iter().enumerate() {
                let body = serde_json::to_string(&e.body).map_err(|x| Error::store(&path, x))?;
                let n = insert
                    .execute(params![
                        e.event_id,
                        e.contact_id,
                        e.occurred_at,
                        received_at,
                        e.body.kind(),
                        body
                    ])
                    .map_err(err)?;
                if n == 1 {
                    out.stored += 1;
                    continue;
                }
                let same = stored
                    .query_row(params![e.event_id], |r| {
                        Ok(r.get::<_, String>(0)? == e.contact_id
                            && r.get::<_, i64>(1)? == e.occurred_at
                            && r.get::<_, String>(2)? == body)
                    })
                    .map_err(err)?;
                if same {
                    out.duplicates += 1;
                } else {
                    out.conflicts.push(position);
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Up to `limit` events stored after `seq`, in order.
    ///
    /// # Errors
    /// The database cannot be read, or holds a row this version cannot read.
    pub fn after(&self, seq: i64, limit: usize) -> Result<Vec<Stored>> {
        self.select(
            "SELECT seq, received_at, event_id, contact_id, occurred_at, body FROM events
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![seq, limit as i64],
        )
    }

    /// A contact's events that happened in `[from, to)`, by time.
    ///
    /// # Errors
    /// As [`EventStore::after`].
    pub fn of_contact(&self, contact_id: &str, from: i64, to: i64) -> Result<Vec<Stored>> {
        self.select(
            "SELECT seq, received_at, event_id, contact_id, occurred_at, body FROM events
             WHERE contact_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 ORDER BY occurred_at, seq",
            params![contact_id, from, to],
        )
    }

    /// Everyone's events that happened in `[from, to)`, by time (a scan of the whole store:
    /// for rare questions such as who viewed a product that changed).
    ///
    /// # Errors
    /// As [`EventStore::after`].
    pub fn between(&self, from: i64, to: i64) -> Result<Vec<Stored>> {
        self.select(
            "SELECT seq, received_at, event_id, contact_id, occurred_at, body FROM events
             WHERE occurred_at >= ?1 AND occurred_at < ?2 ORDER BY occurred_at, seq",
            params![from, to],
        )
    }

    /// Every event, in order (for training).
    ///
    /// # Errors
    /// As [`EventStore::after`].
    pub fn all(&self) -> Result<Vec<Stored>> {
        self.after(0, usize::MAX >> 1)
    }

    /// Every contact with a stored event.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn contacts(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT contact_id FROM events")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))
    }

    /// The last stored position (0 when empty).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn last_seq(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT max(seq) FROM events", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .map(|v| v.flatten().unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    fn select(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Stored>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, received_at, event_id, contact_id, occurred_at, body) =
                row.map_err(|e| self.err(e))?;
            let body: Body = serde_json::from_str(&body)
                .map_err(|e| self.err(format!("event {event_id}: {e}")))?;
            out.push(Stored {
                seq,
                received_at,
                event: Event {
                    event_id,
                    contact_id,
                    occurred_at,
                    body,
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::check;

    #[test]
    fn a_batch_is_stored_once_and_read_back_in_order() {
        let dir = std::env::temp_dir().join(format!("augur-events-{}", std::process::id()));
        let path = dir.join("events.sqlite");
        std::fs::remove_dir_all(&dir).ok();
        let mut store = EventStore::open(&path).expect("open");
        let events: Vec<Event> = (0..3)
            .map(|i| {
                check(
                    serde_json::json!({"type": "web", "contact_id": format!("C{i}"),
                                       "occurred_at": 1000 + i, "event": "view"}),
                    2000,
                    0,
                )
                .expect("valid")
            })
            .collect();
        assert_eq!(
            store.append(&events, 2000).expect("append"),
            Appended {
                stored: 3,
                duplicates: 0,
                conflicts: vec![]
            }
        );
        assert_eq!(
            store.append(&events[1..], 2001).expect("again"),
            Appended {
                stored: 0,
                duplicates: 2,
                conflicts: vec![]
            }
        );
        // The same id with other content is no retry: refused, the first event keeps the id.
        let mut reused = events[2].clone();
        reused.occurred_at += 1;
        let fresh = check(
            serde_json::json!({"type": "web", "contact_id": "C9", "occurred_at": 1500, "event": "view"}),
            2000,
            0,
        )
        .expect("valid");
        assert_eq!(
            store
                .append(&[reused, fresh.clone()], 2002)
                .expect("reused"),
            Appended {
                stored: 1,
                duplicates: 0,
                conflicts: vec![0]
            }
        );
        drop(store);
        let store = EventStore::open(&path).expect("reopen");
        let all = store.all().expect("read");
        assert_eq!(all.len(), 4);
        assert_eq!(
            all.iter().map(|s| s.event.clone()).collect::<Vec<_>>(),
            [events.clone(), vec![fresh]].concat()
        );
        assert_eq!(store.after(all[0].seq, 10).expect("after").len(), 3);
        assert_eq!(store.of_contact("C1", 0, 2000).expect("contact").len(), 1);
        assert_eq!(store.last_seq().expect("last"), all[3].seq);
        std::fs::remove_dir_all(&dir).ok();
    }
}
