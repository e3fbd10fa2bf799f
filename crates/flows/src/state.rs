//! Where each contact is in each series: one row per enrollment (flow, contact and the event
//! that started it — unique, so an event read twice enrolls once), and the position in the
//! event store up to which triggers were read. SQLite beside the outbox, durable like it.
//!
//! Triggers that no event fires are found by scans (see `crate::scan`): each scan is recorded
//! under a key (`model:<version>`, `date:<day>`) with the triggers it found, in one transaction,
//! so that a scan runs once; a segment trigger also keeps the members it saw last.
//!
//! States: `pending` (triggered; waits for the trigger's `within` or its entry checks),
//! `skipped` (did not enter, with the reason), `holdout` (entered the control group: nothing
//! is sent), `active` (at `step`, due at `next_at`), `completed`, `exited` (with the reason).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS enrollments (
    id INTEGER PRIMARY KEY,
    flow_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    trigger_id TEXT NOT NULL,
    triggered_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    entered_at INTEGER,
    step INTEGER NOT NULL DEFAULT 0,
    step_at INTEGER,
    next_at INTEGER NOT NULL,
    last_sent_at INTEGER,
    product_id TEXT,
    product_was REAL,
    UNIQUE (flow_id, contact_id, trigger_id)
);
CREATE INDEX IF NOT EXISTS enrollments_due ON enrollments (state, next_at);
CREATE INDEX IF NOT EXISTS enrollments_contact ON enrollments (contact_id, flow_id);
CREATE TABLE IF NOT EXISTS scans (
    flow_id TEXT NOT NULL,
    key TEXT NOT NULL,
    done_at INTEGER NOT NULL,
    PRIMARY KEY (flow_id, key)
);
CREATE TABLE IF NOT EXISTS members (
    flow_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (flow_id, contact_id)
);
CREATE TABLE IF NOT EXISTS catalog (
    product_id TEXT PRIMARY KEY,
    price REAL,
    in_stock INTEGER NOT NULL
);
PRAGMA user_version = 3;
";

/// Columns added to `enrollments` after schema 1, for a state written before them.
const ADDED_COLUMNS: [(&str, &str); 2] = [("product_id", "TEXT"), ("product_was", "REAL")];

/// An enrollment.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    /// Row id.
    pub id: i64,
    /// Flow.
    pub flow_id: String,
    /// Contact.
    pub contact_id: String,
    /// The trigger: an event id, `order:<id>` or `signup`.
    pub trigger_id: String,
    /// When the trigger happened (Unix seconds).
    pub triggered_at: i64,
    /// State name (see the module).
    pub state: String,
    /// Why it was skipped or exited.
    pub reason: Option<String>,
    /// When it entered.
    pub entered_at: Option<i64>,
    /// The next step, by index.
    pub step: usize,
    /// When the previous step was done: the base of the next wait.
    pub step_at: Option<i64>,
    /// When it is due.
    pub next_at: i64,
    /// When its last message was planned to leave.
    pub last_sent_at: Option<i64>,
    /// The product that started it (the carted, viewed or ordered one; the one back in stock
    /// or cheaper), which templates see as `trigger_product`.
    pub product_id: Option<String>,
    /// For a price drop, the price before it.
    pub product_was: Option<f64>,
}

/// A trigger seen in the events, to be stored as a pending enrollment.
#[derive(Debug, Clone)]
pub struct Triggered {
    /// Flow.
    pub flow_id: String,
    /// Contact.
    pub contact_id: String,
    /// Unique per flow and contact.
    pub trigger_id: String,
    /// When it happened.
    pub triggered_at: i64,
    /// When the entry checks are due.
    pub due_at: i64,
    /// The product that started it, if one did.
    pub product_id: Option<String>,
    /// For a price drop, the price before it.
    pub product_was: Option<f64>,
}

/// A product as the catalog scan last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Price, if known.
    pub price: Option<f64>,
    /// Availability.
    pub in_stock: bool,
}

/// The flows' state database.
#[derive(Debug)]
pub struct FlowState {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "id, flow_id, contact_id, trigger_id, triggered_at, state, reason, entered_at, step, step_at, next_at, last_sent_at, product_id, product_was";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Enrollment> {
    Ok(Enrollment {
        id: r.get(0)?,
        flow_id: r.get(1)?,
        contact_id: r.get(2)?,
        trigger_id: r.get(3)?,
        triggered_at: r.get(4)?,
        state: r.get(5)?,
        reason: r.get(6)?,
        entered_at: r.get(7)?,
        step: r.get::<_, i64>(8)?.max(0) as usize,
        step_at: r.get(9)?,
        next_at: r.get(10)?,
        last_sent_at: r.get(11)?,
        product_id: r.get(12)?,
        product_was: r.get(13)?,
    })
}

/// Stores triggers as pending enrollments (one already stored is left alone); how many were new.
fn insert_triggered(
    tx: &rusqlite::Transaction<'_>,
    triggered: &[Triggered],
) -> rusqlite::Result<usize> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO enrollments
         (flow_id, contact_id, trigger_id, triggered_at, state, next_at, product_id, product_was)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7)",
    )?;
    let mut added = 0;
    for t in triggered {
        added += insert.execute(params![
            t.flow_id,
            t.contact_id,
            t.trigger_id,
            t.triggered_at,
            t.due_at,
            t.product_id,
            t.product_was
        ])?;
    }
    Ok(added)
}

/// Adds the columns of [`ADDED_COLUMNS`] that `enrollments` lacks.
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('enrollments')")?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, kind) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE enrollments ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}

impl FlowState {
    /// Opens (creating if needed) the state at `path`.
    ///
    /// # Errors
    /// The file cannot be created, or was written by a newer augur.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |e: &dyn std::fmt::Display| Error::state(path, e);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| err(&e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| err(&e))?;
        // Schema 1 lacks the scan tables, schema 2 the catalog: the schema below adds them;
        // the trigger's product columns are added to an older `enrollments` table.
        if version > 3 {
            return Err(err(&format!(
                "written by a newer augur (schema {version}); upgrade augur"
            )));
        }
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        add_columns(&conn).map_err(|e| err(&e))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::state(&self.path, e)
    }

    /// The event-store position read up to.
    pub fn cursor(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT seq FROM cursor WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.err(e))
    }

    /// Stores triggers as pending enrollments (an enrollment already stored is left alone) and
    /// moves the cursor to `seq`, in one transaction. Returns how many were new.
    pub fn enroll(&mut self, triggered: &[Triggered], seq: i64) -> Result<usize> {
        self.write(|tx| {
            let added = insert_triggered(tx, triggered)?;
            tx.execute(
                "INSERT INTO cursor (id, seq) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET seq = ?1",
                params![seq],
            )?;
            Ok(added)
        })
    }

    /// Runs `work` in one immediate write transaction and commits it.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| Error::state(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = work(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Enrollments in `state` due at `at` or before, earliest first, at most `limit`.
    pub fn due(&self, state: &str, at: i64, limit: usize) -> Result<Vec<Enrollment>> {
        self.select(
            "WHERE state = ?1 AND next_at <= ?2 ORDER BY next_at, id LIMIT ?3",
            params![state, at, limit as i64],
        )
    }

    /// Every enrollment of a contact (all flows), oldest first.
    pub fn of_contact(&self, contact_id: &str) -> Result<Vec<Enrollment>> {
        self.select("WHERE contact_id = ?1 ORDER BY id", params![contact_id])
    }

    /// Deletes every enrollment of `contact_id` (its erasure); returns how many.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn forget(&mut self, contact_id: &str) -> Result<usize> {
        let err = |e| Error::state(&self.path, e);
        self.conn
            .execute("DELETE FROM members WHERE contact_id = ?1", [contact_id])
            .map_err(err)?;
        self.conn
            .execute(
                "DELETE FROM enrollments WHERE contact_id = ?1",
                [contact_id],
            )
            .map_err(err)
    }

    /// Whether the flow's scan `key` was done.
    pub fn scanned(&self, flow_id: &str, key: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM scans WHERE flow_id = ?1 AND key = ?2",
                params![flow_id, key],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// The greatest key of the flow's scans that start with `prefix` (keys of one kind sort
    /// in time order), if any.
    pub fn last_scan(&self, flow_id: &str, prefix: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT max(key) FROM scans WHERE flow_id = ?1 AND substr(key, 1, length(?2)) = ?2",
                params![flow_id, prefix],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The segment members the flow's last scan saw.
    pub fn members(&self, flow_id: &str) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT contact_id FROM members WHERE flow_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([flow_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Records the flow's scan `key` as done at `at` with the triggers it found (stored as
    /// pending enrollments, as [`FlowState::enroll`] does) and, for a segment trigger, the
    /// members it saw, in one transaction. Returns how many triggers were new.
    pub fn record_scan(
        &mut self,
        flow_id: &str,
        key: &str,
        at: i64,
        triggered: &[Triggered],
        members: Option<&[String]>,
    ) -> Result<usize> {
        self.write(|tx| {
            let added = insert_triggered(tx, triggered)?;
            if let Some(members) = members {
                tx.execute("DELETE FROM members WHERE flow_id = ?1", [flow_id])?;
                let mut member = tx.prepare_cached(
                    "INSERT OR IGNORE INTO members (flow_id, contact_id) VALUES (?1, ?2)",
                )?;
                for contact in members {
                    member.execute(params![flow_id, contact])?;
                }
            }
            tx.execute(
                "INSERT OR IGNORE INTO scans (flow_id, key, done_at) VALUES (?1, ?2, ?3)",
                params![flow_id, key, at],
            )?;
            Ok(added)
        })
    }

    /// The catalog as the last product scan saw it, by product id (empty before the first).
    pub fn catalog(&self) -> Result<std::collections::HashMap<String, Listed>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT product_id, price, in_stock FROM catalog")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let listed = Listed {
                    price: r.get(1)?,
                    in_stock: r.get(2)?,
                };
                Ok((r.get(0)?, listed))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Replaces the stored catalog with `catalog` and stores the triggers its changes fired, in
    /// one transaction (a crash repeats the product scan whole or not at all). Returns how
    /// many triggers were new.
    pub fn record_catalog(
        &mut self,
        catalog: &[(String, Listed)],
        triggered: &[Triggered],
    ) -> Result<usize> {
        self.write(|tx| {
            let added = insert_triggered(tx, triggered)?;
            tx.execute("DELETE FROM catalog", [])?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO catalog (product_id, price, in_stock) VALUES (?1, ?2, ?3)",
            )?;
            for (id, listed) in catalog {
                insert.execute(params![id, listed.price, listed.in_stock])?;
            }
            Ok(added)
        })
    }

    /// Every enrollment of a flow.
    pub fn of_flow(&self, flow_id: &str) -> Result<Vec<Enrollment>> {
        self.select("WHERE flow_id = ?1 ORDER BY id", params![flow_id])
    }

    /// The enrollments a `WHERE … ORDER BY …` clause selects.
    fn select(&self, clause: &str, params: impl rusqlite::Params) -> Result<Vec<Enrollment>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM enrollments {clause}"))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params, row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Stores enrollments as changed, in one transaction.
    pub fn save(&mut self, changed: &[Enrollment]) -> Result<()> {
        self.write(|tx| {
            let mut update = tx.prepare_cached(
                "UPDATE enrollments SET state = ?2, reason = ?3, entered_at = ?4, step = ?5,
                 step_at = ?6, next_at = ?7, last_sent_at = ?8 WHERE id = ?1",
            )?;
            for e in changed {
                update.execute(params![
                    e.id,
                    e.state,
                    e.reason,
                    e.entered_at,
                    e.step as i64,
                    e.step_at,
                    e.next_at,
                    e.last_sent_at
                ])?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_of_schema_2_gains_the_trigger_product_and_keeps_its_enrollments() {
        let dir = std::env::temp_dir().join(format!("augur-flow-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("flows.sqlite");
        {
            let old = Connection::open(&path).expect("open");
            old.execute_batch(
                "CREATE TABLE enrollments (id INTEGER PRIMARY KEY, flow_id TEXT NOT NULL,
                 contact_id TEXT NOT NULL, trigger_id TEXT NOT NULL, triggered_at INTEGER NOT NULL,
                 state TEXT NOT NULL, reason TEXT, entered_at INTEGER, step INTEGER NOT NULL DEFAULT 0,
                 step_at INTEGER, next_at INTEGER NOT NULL, last_sent_at INTEGER,
                 UNIQUE (flow_id, contact_id, trigger_id));
                 INSERT INTO enrollments (flow_id, contact_id, trigger_id, triggered_at, state, next_at)
                 VALUES ('cart', 'C1', 'e1', 10, 'pending', 20);
                 PRAGMA user_version = 2;",
            )
            .expect("schema 2");
        }
        let mut state = FlowState::open(&path).expect("upgraded");
        let new = Triggered {
            flow_id: "sale".into(),
            contact_id: "C2".into(),
            trigger_id: "price_drop:P1:30".into(),
            triggered_at: 30,
            due_at: 30,
            product_id: Some("P1".into()),
            product_was: Some(12.5),
        };
        let listed = Listed {
            price: Some(10.0),
            in_stock: true,
        };
        assert_eq!(
            state
                .record_catalog(&[("P1".into(), listed.clone())], &[new])
                .expect("stored"),
            1
        );
        let all = state.due("pending", 100, 10).expect("due");
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].contact_id.as_str(), all[0].product_id.as_deref()),
            ("C1", None)
        );
        assert_eq!(all[1].product_id.as_deref(), Some("P1"));
        assert_eq!(all[1].product_was, Some(12.5));
        assert_eq!(state.catalog().expect("catalog")["P1"], listed);
        drop(state);
        FlowState::open(&path).expect("opens again");
        std::fs::remove_dir_all(&dir).ok();
    }
}
