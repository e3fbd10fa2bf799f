//! The preference store: an SQLite database beside the outbox holding each contact's choices,
//! every change to them (who made it, when, through what), and the salted hashes of erased
//! contacts and addresses. `augur serve` writes it (the `/u/…` page, one-click posts, erasure),
//! `augur campaign` and `augur flows` read it when planning and sending, `augur train` reads
//! its erasures. Every write is one durable transaction (WAL, `synchronous = FULL`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::preference::{Frequency, Preference};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS preferences (
    contact_id TEXT PRIMARY KEY,
    unsubscribed_at INTEGER,
    topics_off TEXT NOT NULL DEFAULT '[]',
    frequency TEXT,
    paused_until INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY,
    contact_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    source TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_contact ON changes (contact_id, seq);
CREATE TABLE IF NOT EXISTS forgotten (
    hash BLOB PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
PRAGMA user_version = 1;
";

/// One change a contact (or the shop on its behalf) made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Unsubscribed from everything (RFC 8058 one-click, the page's button, a `mailto:`
    /// reply, a complaint).
    UnsubscribeAll,
    /// The page's choices, all at once.
    Choose {
        /// Topics turned off.
        topics_off: BTreeSet<String>,
        /// At most one message per period.
        frequency: Option<Frequency>,
        /// No message before (Unix seconds).
        paused_until: Option<i64>,
    },
}

/// A change as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// When (Unix seconds).
    pub at: i64,
    /// Through what: `one_click`, `page`, `mailto`, `feedback_loop`, `api`.
    pub source: String,
    /// The change.
    #[serde(flatten)]
    pub change: Change,
}

/// Erased contacts and addresses, as salted SHA-256 hashes: enough to keep them out of every
/// audience (even when an old export brings them back), not enough to say who they were.
#[derive(Debug, Clone, Default)]
pub struct Forgotten {
    salt: Vec<u8>,
    hashes: HashSet<[u8; 32]>,
}

impl Forgotten {
    /// Whether nothing was erased.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether contact `id` was erased.
    pub fn contact(&self, id: &str) -> bool {
        !self.is_empty() && self.hashes.contains(&hash(&self.salt, "contact", id))
    }

    /// Whether `email` (compared trimmed and lower-cased) was erased.
    pub fn email(&self, email: &str) -> bool {
        !self.is_empty()
            && self
                .hashes
                .contains(&hash(&self.salt, "email", &normalize(email)))
    }

    /// Adds contact `id` (and its address) here, as the store does durably.
    pub fn insert(&mut self, id: &str, email: Option<&str>) {
        self.hashes.insert(hash(&self.salt, "contact", id));
        if let Some(e) = email {
            self.hashes.insert(hash(&self.salt, "email", &normalize(e)));
        }
    }
}

fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

fn hash(salt: &[u8], kind: &str, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    h.finalize().into()
}

/// The preference store.
#[derive(Debug)]
pub struct PreferenceStore {
    conn: Connection,
    path: PathBuf,
}

impl PreferenceStore {
    /// Opens (creating if needed) the store at `path`.
    ///
    /// # Errors
    /// The file cannot be created or is not a preference store of this version.
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

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::store(&self.path, e)
    }

    /// A random value of `n` bytes kept under `key`, made on first use (two processes making it
    /// at once agree on the first one stored).
    fn secret(&self, key: &str, n: usize) -> Result<Vec<u8>> {
        let read = || -> Result<Option<Vec<u8>>> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))
        };
        if let Some(v) = read()? {
            return Ok(v);
        }
        let value: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        read()?.ok_or_else(|| self.err("the generated secret was not kept"))
    }

    /// The generated key, if one was ever made, and when configured keys replaced it (recorded
    /// the first time this is asked with `replaced_now`, so that its grace period runs from
    /// then).
    ///
    /// # Errors
    /// The database cannot be read or written.
    pub fn replaced_key(&self, replaced_now: i64) -> Result<Option<(Vec<u8>, i64)>> {
        let key: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'signing_key'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(key) = key else {
            return Ok(None);
        };
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_key_replaced_at', ?1)",
                [replaced_now.to_string().into_bytes()],
            )
            .map_err(|e| self.err(e))?;
        let at: Vec<u8> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'signing_key_replaced_at'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let at = String::from_utf8_lossy(&at).parse().unwrap_or(replaced_now);
        Ok(Some((key, at)))
    }

    /// The key that signs links when `[preferences] keys` names none.
    ///
    /// # Errors
    /// The database cannot be read or written.
    pub fn generated_key(&self) -> Result<Vec<u8>> {
        self.secret("signing_key", 32)
    }

    /// A contact's choices (the default when it made none).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn get(&self, contact: &str) -> Result<Preference> {
        self.conn
            .query_row(
                "SELECT unsubscribed_at, topics_off, frequency, paused_until
                 FROM preferences WHERE contact_id = ?1",
                [contact],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))
            .map(Option::unwrap_or_default)
    }

    /// Every contact that chose anything.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn all(&self) -> Result<HashMap<String, Preference>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT unsubscribed_at, topics_off, frequency, paused_until, contact_id
                 FROM preferences",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(4)?, row(r)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Applies `change` to `contact`'s choices at `at` (Unix seconds), recording it with its
    /// `source`, in one durable transaction. Returns the choices after it. Applying the same
    /// unsubscribe twice records it once.
    ///
    /// # Errors
    /// The database cannot be written (nothing changed then).
    pub fn apply(
        &mut self,
        contact: &str,
        change: &Change,
        at: i64,
        source: &str,
    ) -> Result<Preference> {
        let mut after = self.apply_all(&[(contact, change, source)], at)?;
        Ok(after.pop().unwrap_or_default())
    }

    /// [`PreferenceStore::apply`] of many changes, in order, in one durable transaction: one
    /// disk flush for all of them (group commit), so that a burst of one-click unsubscribes
    /// waits for one flush rather than queueing behind one flush each. Returns each contact's
    /// choices after its change.
    ///
    /// # Errors
    /// The database cannot be written (none of the changes is kept then).
    pub fn apply_all(
        &mut self,
        changes: &[(&str, &Change, &str)],
        at: i64,
    ) -> Result<Vec<Preference>> {
        self.write(|tx| {
            changes
                .iter()
                .map(|&(contact, change, source)| apply_one(tx, contact, change, at, source))
                .collect()
        })
    }

    /// Every change `contact` made, oldest first.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn history(&self, contact: &str) -> Result<Vec<Recorded>> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, source, change FROM changes WHERE contact_id = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([contact], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (at, source, change) = r.map_err(|e| self.err(e))?;
            // A change this version cannot read is left out rather than failing the export.
            if let Ok(change) = serde_json::from_str(&change) {
                out.push(Recorded { at, source, change });
            }
        }
        Ok(out)
    }

    /// A contact's choices and every change to them, as its data export shows them:
    /// `{"current": …, "history": […]}`.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn export(&self, contact: &str) -> Result<serde_json::Value> {
        Ok(serde_json::json!({
            "current": self.get(contact)?,
            "history": self.history(contact)?,
        }))
    }

    /// Erased contacts and addresses.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn forgotten(&self) -> Result<Forgotten> {
        let salt = self.secret("salt", 32)?;
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM forgotten")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.err(e))?;
        let mut hashes = HashSet::new();
        for r in rows {
            if let Ok(h) = <[u8; 32]>::try_from(r.map_err(|e| self.err(e))?.as_slice()) {
                hashes.insert(h);
            }
        }
        Ok(Forgotten { salt, hashes })
    }

    /// Erases `contact`: its choices and their history are deleted, and the salted hashes of its
    /// id and `email` are kept so that neither is mailed again. One durable transaction.
    ///
    /// # Errors
    /// The database cannot be written (nothing changed then).
    pub fn forget(&mut self, contact: &str, email: Option<&str>, at: i64) -> Result<()> {
        let salt = self.secret("salt", 32)?;
        let mut hashes = vec![hash(&salt, "contact", contact)];
        if let Some(e) = email.filter(|e| e.contains('@')) {
            hashes.push(hash(&salt, "email", &normalize(e)));
        }
        self.write(|tx| {
            for h in hashes {
                tx.execute(
                    "INSERT OR IGNORE INTO forgotten (hash, at) VALUES (?1, ?2)",
                    params![h.to_vec(), at],
                )?;
            }
            tx.execute("DELETE FROM preferences WHERE contact_id = ?1", [contact])?;
            tx.execute("DELETE FROM changes WHERE contact_id = ?1", [contact])?;
            Ok(())
        })
    }

    /// Runs `work` in one write transaction (the write lock taken at its start, so a
    /// concurrent writer waits rather than failing halfway) and commits it durably.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| Error::store(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = work(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Stops this connection from copying the write-ahead log into the database when it grows
    /// (SQLite does it in the commit that crosses 1,000 pages, which then waits for two more
    /// disk flushes); [`PreferenceStore::checkpoint`] does it off the request path instead.
    ///
    /// # Errors
    /// The setting cannot be applied.
    pub fn defer_checkpoints(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| self.err(e))
    }

    /// Copies what it can of the write-ahead log into the database without waiting for
    /// readers or writers (a passive checkpoint).
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    /// A number that changes whenever another connection commits a write: a reader polls it to
    /// know when to re-read.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

/// One change inside a transaction: the choices before, the change, and — when anything
/// changed — the new row and its history entry.
fn apply_one(
    tx: &rusqlite::Transaction<'_>,
    contact: &str,
    change: &Change,
    at: i64,
    source: &str,
) -> rusqlite::Result<Preference> {
    let before: Preference = tx
        .query_row(
            "SELECT unsubscribed_at, topics_off, frequency, paused_until
             FROM preferences WHERE contact_id = ?1",
            [contact],
            row,
        )
        .optional()?
        .unwrap_or_default();
    let mut after = before.clone();
    match change {
        Change::UnsubscribeAll => {
            after.unsubscribed_at.get_or_insert(at);
        }
        Change::Choose {
            topics_off,
            frequency,
            paused_until,
        } => {
            after.topics_off.clone_from(topics_off);
            after.frequency = *frequency;
            after.paused_until = *paused_until;
        }
    }
    if after != before {
        tx.prepare_cached(
            "INSERT INTO preferences (contact_id, unsubscribed_at, topics_off, frequency, paused_until, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (contact_id) DO UPDATE SET unsubscribed_at = ?2, topics_off = ?3,
                 frequency = ?4, paused_until = ?5, updated_at = ?6",
        )?
        .execute(params![
            contact,
            after.unsubscribed_at,
            serde_json::to_string(&after.topics_off).unwrap_or_default(),
            after.frequency.map(Frequency::name),
            after.paused_until,
            at
        ])?;
        tx.prepare_cached(
            "INSERT INTO changes (contact_id, at, source, change) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            contact,
            at,
            source,
            serde_json::to_string(change).unwrap_or_default()
        ])?;
    }
    Ok(after)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Preference> {
    let topics: String = r.get(1)?;
    let frequency: Option<String> = r.get(2)?;
    Ok(Preference {
        unsubscribed_at: r.get(0)?,
        topics_off: serde_json::from_str(&topics).unwrap_or_default(),
        frequency: frequency.as_deref().and_then(Frequency::parse),
        paused_until: r.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_kept_with_their_history_and_forgetting_keeps_only_hashes() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("p.sqlite");
        let mut store = PreferenceStore::open(&path).expect("test setup");
        let choose = Change::Choose {
            topics_off: ["offers".to_string()].into(),
            frequency: Some(Frequency::Monthly),
            paused_until: None,
        };
        store.apply("C1", &choose, 10, "page").expect("test setup");
        store
            .apply("C1", &Change::UnsubscribeAll, 20, "one_click")
            .expect("test setup");
        let again = store
            .apply("C1", &Change::UnsubscribeAll, 30, "one_click")
            .expect("test setup");
        assert_eq!(again.unsubscribed_at, Some(20));
        assert_eq!(store.history("C1").expect("test setup").len(), 2);
        let reopened = PreferenceStore::open(&path).expect("test setup");
        assert_eq!(reopened.get("C1").expect("test setup"), again);
        assert_eq!(reopened.all().expect("test setup").len(), 1);

        store
            .forget("C1", Some(" Ann@Shop.example "), 40)
            .expect("test setup");
        assert_eq!(store.get("C1").expect("test setup"), Preference::default());
        assert!(store.history("C1").expect("test setup").is_empty());
        let forgotten = reopened.forgotten().expect("test setup");
        assert!(forgotten.contact("C1"));
        assert!(forgotten.email("ann@shop.example"));
        assert!(!forgotten.contact("C2"));
        let text = std::fs::read(&path).expect("test setup");
        assert!(
            !text.windows(3).any(|w| w == b"Ann"),
            "no address in the file"
        );
    }
}
