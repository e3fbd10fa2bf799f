//! The outbox: one SQLite row per planned contact and run, carrying the rendered message and its
//! delivery state. It is what makes delivery exactly-once: a message is marked `sending` (and the
//! mark is on disk) before any byte goes to the SMTP server, and `sent` once the server accepted
//! it. A sender that finds `sending` rows on start knows it stopped abruptly in between.
//!
//! States: `holdout` and `suppressed` (planned, never sent), `queued` → `sending` → `sent`, or
//! back to `queued` with a later `next_attempt_at` after a transient failure, or `failed` (the
//! server's reply kept), or `unknown` (a crash left the outcome unknown; see
//! [`augur_data::UnknownOutcome`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::spec::CapSpec;

/// Schema; `user_version` says which.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    planned_for INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    sender TEXT NOT NULL,
    reply_to TEXT,
    require_consent INTEGER NOT NULL,
    planned_at INTEGER NOT NULL,
    cap_max INTEGER,
    cap_days REAL,
    topic TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    email TEXT,
    variant TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    send_at INTEGER NOT NULL,
    send_time_source TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    message_id TEXT,
    subject TEXT,
    html TEXT,
    text TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    events_file TEXT,
    churn_tier TEXT,
    country TEXT,
    segments TEXT,
    UNIQUE (run_id, contact_id)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (status, send_at);
CREATE INDEX IF NOT EXISTS messages_contact ON messages (contact_id, send_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ab_tests (
    run_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    decide_after INTEGER NOT NULL,
    decide_by INTEGER NOT NULL,
    confidence REAL NOT NULL,
    min_per_variant INTEGER NOT NULL,
    default_variant TEXT NOT NULL,
    decided_at INTEGER,
    winner TEXT,
    clear INTEGER,
    evidence TEXT
);
PRAGMA user_version = 4;
";

/// From schema 1: runs remember their frequency cap, so the sender checks it again.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE runs ADD COLUMN cap_max INTEGER;
ALTER TABLE runs ADD COLUMN cap_days REAL;
PRAGMA user_version = 2;
";

/// From schema 2: messages remember the contact's churn tier, country and segments as of the
/// plan, for reports by group; A/B tests that pick their winner get a table (created by
/// [`SCHEMA`]).
const MIGRATE_2_TO_3: &str = "
ALTER TABLE messages ADD COLUMN churn_tier TEXT;
ALTER TABLE messages ADD COLUMN country TEXT;
ALTER TABLE messages ADD COLUMN segments TEXT;
PRAGMA user_version = 3;
";

/// From schema 3: runs remember their topic, so the sender checks the contacts' topic
/// choices again.
const MIGRATE_3_TO_4: &str = "
ALTER TABLE runs ADD COLUMN topic TEXT;
PRAGMA user_version = 4;
";

/// The statuses that count against a frequency cap: messages on their way or gone, and the
/// holdout (a held-out contact counts as mailed, so that caps treat the control group like the
/// rest). Queued messages count when a plan is checked, not when the sender checks one due now:
/// each queued message is checked itself when it falls due.
const CAPPED_AT_SENDING: [Status; 4] = [
    Status::Sending,
    Status::Sent,
    Status::Unknown,
    Status::Holdout,
];

/// A run: one campaign planned for one day.
#[derive(Debug, Clone)]
pub struct Run {
    /// `<campaign>-<YYYY-MM-DD>`.
    pub run_id: String,
    /// Campaign id.
    pub campaign_id: String,
    /// The planning instant (UTC seconds).
    pub planned_for: i64,
    /// When the last contact's window closes (UTC seconds).
    pub window_end: i64,
    /// Model version the scores came from.
    pub model_version: String,
    /// `From:`.
    pub sender: String,
    /// `Reply-To:`.
    pub reply_to: Option<String>,
    /// Whether consent must be recorded as given (checked again at sending).
    pub require_consent: bool,
    /// The campaign's frequency cap (checked at planning and again at sending).
    pub cap: Option<CapSpec>,
    /// The campaign's topic (contacts' topic choices are checked again at sending).
    pub topic: Option<String>,
    /// The campaign's A/B test, when it has one: the rest of the audience waits for its winner.
    pub test: Option<TestRecord>,
}

/// An A/B test as the outbox keeps it: how and when its winner is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord {
    /// The metric that decides (`human_opens`, `clicks`, `orders`, `revenue_per_email`).
    pub metric: String,
    /// Earliest decision (UTC seconds).
    pub decide_after: i64,
    /// Latest decision: without a clear winner by then, the default is sent.
    pub decide_by: i64,
    /// Probability to be best a winner needs, e.g. 0.95.
    pub confidence: f64,
    /// Recipients each variant needs before any winner is declared.
    pub min_per_variant: u32,
    /// The variant sent when no winner is clear.
    pub default_variant: String,
}

/// A decision of an A/B test, recorded once.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// When it was made (UTC seconds).
    pub decided_at: i64,
    /// The variant the rest of the audience gets.
    pub winner: String,
    /// Whether the winner cleared the bar (`false`: the default, for want of a clear winner).
    pub clear: bool,
    /// The figures it was made on, as JSON.
    pub evidence: String,
}

/// What [`Outbox::decide`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    /// The decision was recorded by this call (`false`: it had been made before).
    pub recorded_now: bool,
    /// Waiting contacts queued with the winner by this call.
    pub planned: usize,
}

/// A run's A/B test and its decision, if made.
#[derive(Debug, Clone)]
pub struct RunTest {
    /// The run.
    pub run_id: String,
    /// When the run was planned (UTC seconds).
    pub planned_for: i64,
    /// The test.
    pub test: TestRecord,
    /// The decision, once made.
    pub decision: Option<Decision>,
}

/// What [`Outbox::claim_due`] found due.
#[derive(Debug, Clone, Default)]
pub struct Due {
    /// Marked `sending`: the caller sends them and records the outcomes.
    pub claimed: Vec<Claimed>,
    /// Marked suppressed (`frequency_cap`) instead: the contact's cap was used up since the plan.
    pub capped: usize,
}

/// What [`Outbox::insert_plan`] stored.
#[derive(Debug, Clone, Default)]
pub struct Inserted {
    /// Rows new in the outbox.
    pub added: usize,
    /// Indexes of the rows stored as `frequency_cap` because another plan's messages, stored
    /// since this one was computed, reached the cap.
    pub capped: Vec<usize>,
}

/// Where a message is in its life. A plan writes `queued`, `holdout` or `suppressed`; the sender
/// moves `queued` through `sending` to `sent`, `failed`, `suppressed` (consent withdrawn since the
/// plan), `unknown` (the process stopped mid-send) or back to `queued` for a retry; a window that
/// closes first makes it `expired`. Stored as its name, so the database reads on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Planned and waiting for its send time (or for a retry).
    Queued,
    /// Claimed by a sender; the SMTP outcome is not yet recorded.
    Sending,
    /// Accepted by the relay (or written as `.eml`).
    Sent,
    /// Rejected for good, or out of attempts.
    Failed,
    /// Not sent, for the reason recorded beside it.
    Suppressed,
    /// In the campaign's random holdout: never sent, kept for the uplift.
    Holdout,
    /// The sender stopped while sending: the relay may or may not have accepted it.
    Unknown,
    /// The contact's send window closed before it could be sent.
    Expired,
    /// Not in the A/B test's first share: waits for its winner, then is planned with it.
    AwaitingTest,
}

impl Status {
    /// Every status.
    pub const ALL: [Self; 9] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Suppressed,
        Self::Holdout,
        Self::Unknown,
        Self::Expired,
        Self::AwaitingTest,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
            Self::Holdout => "holdout",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::AwaitingTest => "awaiting_test",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// `('a', 'b')`: the statuses as an SQL list, for `status IN …`.
    fn sql_list(statuses: &[Self]) -> String {
        let names: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Status {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let name = value.as_str()?;
        Self::parse(name).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown message status `{name}`").into())
        })
    }
}

/// One planned row.
#[derive(Debug, Clone)]
pub struct Planned {
    /// External contact id.
    pub contact_id: String,
    /// Address.
    pub email: Option<String>,
    /// Variant, `None` for the holdout and suppressed contacts.
    pub variant: Option<String>,
    /// [`Status::Queued`], [`Status::Holdout`] or [`Status::Suppressed`].
    pub status: Status,
    /// Why suppressed.
    pub reason: Option<&'static str>,
    /// When to send (also set for the holdout, for attribution).
    pub send_at: i64,
    /// How the time was chosen.
    pub send_time_source: &'static str,
    /// When the contact's window closes: not sent by then, not sent at all.
    pub expires_at: i64,
    /// Deterministic Message-ID.
    pub message_id: Option<String>,
    /// The rendered message.
    pub content: Option<Rendered>,
    /// What the contact was as of the plan, for reports by group.
    pub facts: PlanFacts,
}

/// A contact as of its plan, kept for reports by group (`campaign report --by`): tiers and
/// segments change every night, and a report reads what they were when the message was planned.
#[derive(Debug, Clone, Default)]
pub struct PlanFacts {
    /// Churn tier (`low` … `critical`, `not_scored`).
    pub churn_tier: Option<&'static str>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<&'static str>,
    /// Names of the segments (built-in and configured) the contact was in, comma-separated.
    pub segments: String,
}

/// A rendered message.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Subject.
    pub subject: String,
    /// HTML body (preheader included).
    pub html: String,
    /// Plain-text body.
    pub text: String,
}

/// A message claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Row id.
    pub id: i64,
    /// Run.
    pub run_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// Contact.
    pub contact_id: String,
    /// Address.
    pub email: String,
    /// Message-ID.
    pub message_id: String,
    /// Content.
    pub content: Rendered,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// `From:` of its run.
    pub sender: String,
    /// `Reply-To:` of its run.
    pub reply_to: Option<String>,
    /// Whether its run requires recorded consent.
    pub require_consent: bool,
    /// Its run's topic.
    pub topic: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Accepted by the server, at this instant.
    Sent(i64),
    /// Try again at this instant; the reply or error.
    Retry(i64, String),
    /// Permanent failure; the reply.
    Failed(String),
    /// Not sent: the contact opted out after planning.
    Suppressed(&'static str),
    /// The relay may or may not have accepted it (the connection failed mid-transaction).
    Unknown(String),
}

/// The outbox database.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::outbox(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::outbox(path, e))?;
        let err = |e: rusqlite::Error| Error::outbox(path, e);
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        // WAL with FULL sync: a committed `sending` mark survives a power cut, not just a kill.
        // Switching a new (or older) database to WAL needs it to itself for a moment and does
        // not wait for the busy timeout: another process opening it at once is waited for here.
        let mut tries = 0;
        while let Err(e) = conn.pragma_update(None, "journal_mode", "WAL") {
            let busy = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
            if !busy || tries >= 300 {
                return Err(err(e));
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > 4 {
            return Err(Error::outbox(
                path,
                format!("written by a newer augur (schema {version}); upgrade augur"),
            ));
        }
        let mut outbox = Self {
            conn,
            path: path.to_path_buf(),
        };
        outbox.migrate()?;
        Ok(outbox)
    }

    /// Creates the schema, or brings an older one up to date, in one write transaction: two
    /// processes opening an old outbox at once migrate it once.
    fn migrate(&mut self) -> Result<()> {
        self.write(|tx| {
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version == 1 {
                tx.execute_batch(MIGRATE_1_TO_2)?;
            }
            if (1..=2).contains(&version) {
                tx.execute_batch(MIGRATE_2_TO_3)?;
            }
            if (1..=3).contains(&version) {
                tx.execute_batch(MIGRATE_3_TO_4)?;
            }
            tx.execute_batch(SCHEMA)
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::outbox(&self.path, e)
    }

    /// Runs `work` in one transaction and commits it. IMMEDIATE takes the write lock at the
    /// start, so a concurrent plan or sender waits for it instead of failing halfway.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = &self.path;
        let err = |e: rusqlite::Error| Error::outbox(path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = work(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// The rows of a query, each read by `row`.
    fn select<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params, row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Stores a run and its rows in one transaction; rows already planned for the run are left
    /// as they are. Returns how many rows were new.
    ///
    /// With a `cap`, each queued or held-out row is checked against the cap again inside this
    /// write transaction, which SQLite runs one at a time: two plans of different campaigns
    /// started at the same moment cannot both pass it. A row the check catches is stored as
    /// suppressed (`frequency_cap`); its index is returned in [`Inserted::capped`].
    pub fn insert_plan(&mut self, run: &Run, rows: &[Planned]) -> Result<Inserted> {
        let cap = run.cap;
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO runs (run_id, campaign_id, planned_for, window_end, model_version, sender, reply_to, require_consent, planned_at, cap_max, cap_days, topic)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, strftime('%s','now'), ?9, ?10, ?11)",
                params![run.run_id, run.campaign_id, run.planned_for, run.window_end, run.model_version,
                        run.sender, run.reply_to, run.require_consent,
                        run.cap.map(|c| c.max_messages), run.cap.map(|c| c.per_days), run.topic],
            )?;
            if let Some(t) = &run.test {
                tx.execute(
                    "INSERT OR IGNORE INTO ab_tests (run_id, campaign_id, metric, decide_after, decide_by, confidence, min_per_variant, default_variant)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![run.run_id, run.campaign_id, t.metric, t.decide_after, t.decide_by,
                            t.confidence, t.min_per_variant, t.default_variant],
                )?;
            }
            let mut added = 0;
            let mut capped = Vec::new();
            let mut already = CapCheck::prepare(tx)?;
            let mut insert = tx
                .prepare(
                    "INSERT OR IGNORE INTO messages (run_id, campaign_id, contact_id, email, variant, status, reason,
                     send_at, send_time_source, message_id, subject, html, text, next_attempt_at, expires_at,
                     churn_tier, country, segments)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?8, ?14, ?15, ?16, ?17)",
                )?;
            for (i, r) in rows.iter().enumerate() {
                let over = match cap {
                    Some(cap) if matches!(r.status, Status::Queued | Status::Holdout) => {
                        already.reached(cap, &r.contact_id, &run.run_id, r.send_at)?
                    }
                    _ => false,
                };
                if over {
                    capped.push(i);
                }
                let c = r.content.as_ref().filter(|_| !over);
                let (status, reason) = if over {
                    (Status::Suppressed, Some("frequency_cap"))
                } else {
                    (r.status, r.reason)
                };
                added += insert.execute(params![
                    run.run_id,
                    run.campaign_id,
                    r.contact_id,
                    r.email,
                    r.variant.as_ref().filter(|_| !over),
                    status,
                    reason,
                    r.send_at,
                    r.send_time_source,
                    r.message_id.as_ref().filter(|_| !over),
                    c.map(|c| &c.subject),
                    c.map(|c| &c.html),
                    c.map(|c| &c.text),
                    r.expires_at,
                    r.facts.churn_tier,
                    r.facts.country,
                    r.facts.segments,
                ])?;
            }
            Ok(Inserted { added, capped })
        })
    }

    /// The A/B tests of a campaign's runs with their decisions, earliest run first.
    pub fn run_tests(&self, campaign_id: &str) -> Result<Vec<RunTest>> {
        self.select(
            "SELECT t.run_id, r.planned_for, t.metric, t.decide_after, t.decide_by, t.confidence,
                    t.min_per_variant, t.default_variant, t.decided_at, t.winner, t.clear, t.evidence
             FROM ab_tests t JOIN runs r ON r.run_id = t.run_id
             WHERE t.campaign_id = ?1 ORDER BY r.planned_for, t.run_id",
            params![campaign_id],
            |r| {
                let decision = match r.get::<_, Option<i64>>(8)? {
                    Some(decided_at) => Some(Decision {
                        decided_at,
                        winner: r.get(9)?,
                        clear: r.get(10)?,
                        evidence: r.get(11)?,
                    }),
                    None => None,
                };
                Ok(RunTest {
                    run_id: r.get(0)?,
                    planned_for: r.get(1)?,
                    test: TestRecord {
                        metric: r.get(2)?,
                        decide_after: r.get(3)?,
                        decide_by: r.get(4)?,
                        confidence: r.get(5)?,
                        min_per_variant: r.get(6)?,
                        default_variant: r.get(7)?,
                    },
                    decision,
                })
            },
        )
    }

    /// Contacts of a run waiting for its A/B test's winner.
    pub fn awaiting_test(&self, run_id: &str) -> Result<Vec<String>> {
        self.select(
            "SELECT contact_id FROM messages WHERE run_id = ?1 AND status = ?2 ORDER BY id",
            params![run_id, Status::AwaitingTest],
            |r| r.get(0),
        )
    }

    /// Records the decision of a run's A/B test and plans the contacts that waited for it
    /// (`rows`, each queued with the winner or suppressed), in one transaction. The frequency
    /// cap of the run is checked for each queued row as at planning.
    ///
    /// A decision is made once. When the test was decided already (by an earlier call, or by
    /// another process meanwhile), the recorded decision stands: `rows` are stored only if
    /// they carry its winner (contacts a plan stored as waiting after the decision), and
    /// nothing is stored otherwise.
    pub fn decide(
        &mut self,
        run_id: &str,
        decision: &Decision,
        rows: &[Planned],
    ) -> Result<Decided> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE ab_tests SET decided_at = ?2, winner = ?3, clear = ?4, evidence = ?5
                 WHERE run_id = ?1 AND decided_at IS NULL",
                params![run_id, decision.decided_at, decision.winner, decision.clear, decision.evidence],
            )?;
            let recorded: String = tx.query_row(
                "SELECT winner FROM ab_tests WHERE run_id = ?1",
                params![run_id],
                |r| r.get(0),
            )?;
            if recorded != decision.winner {
                return Ok(Decided { recorded_now: false, planned: 0 });
            }
            let cap: Option<CapSpec> = tx.query_row(
                "SELECT cap_max, cap_days FROM runs WHERE run_id = ?1",
                params![run_id],
                |r| {
                    Ok(match (r.get::<_, Option<u32>>(0)?, r.get::<_, Option<f64>>(1)?) {
                        (Some(max_messages), Some(per_days)) => Some(CapSpec { max_messages, per_days }),
                        _ => None,
                    })
                },
            )?;
            let mut check = CapCheck::prepare(tx)?;
            let mut update = tx.prepare(
                "UPDATE messages SET status = ?3, reason = ?4, variant = ?5, send_at = ?6, next_attempt_at = ?6,
                 send_time_source = ?7, expires_at = ?8, message_id = ?9, subject = ?10, html = ?11, text = ?12,
                 email = ?14
                 WHERE run_id = ?1 AND contact_id = ?2 AND status = ?13",
            )?;
            let mut window_end = 0;
            let mut planned = 0;
            for r in rows {
                let over = match cap {
                    Some(cap) if r.status == Status::Queued => {
                        check.reached(cap, &r.contact_id, run_id, r.send_at)?
                    }
                    _ => false,
                };
                let (status, reason) = if over {
                    (Status::Suppressed, Some("frequency_cap"))
                } else {
                    (r.status, r.reason)
                };
                let c = r.content.as_ref().filter(|_| !over);
                update.execute(params![
                    run_id,
                    r.contact_id,
                    status,
                    reason,
                    r.variant.as_ref().filter(|_| !over),
                    r.send_at,
                    r.send_time_source,
                    r.expires_at,
                    r.message_id.as_ref().filter(|_| !over),
                    c.map(|c| &c.subject),
                    c.map(|c| &c.html),
                    c.map(|c| &c.text),
                    Status::AwaitingTest,
                    r.email,
                ])?;
                window_end = window_end.max(r.expires_at);
                planned += usize::from(status == Status::Queued);
            }
            tx.execute(
                "UPDATE runs SET window_end = max(window_end, ?2) WHERE run_id = ?1",
                params![run_id, window_end],
            )?;
            Ok(Decided {
                recorded_now: changed > 0,
                planned,
            })
        })
    }

    /// Suppressed messages of a campaign, per run.
    pub fn suppressed_by_run(&self, campaign_id: &str) -> Result<Vec<(String, u64)>> {
        self.select(
            "SELECT run_id, count(*) FROM messages WHERE campaign_id = ?1 AND status = ?2 GROUP BY run_id",
            params![campaign_id, Status::Suppressed],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Messages of a campaign waiting for an A/B test's winner.
    pub fn awaiting_count(&self, campaign_id: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM messages WHERE campaign_id = ?1 AND status = ?2",
                params![campaign_id, Status::AwaitingTest],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Earlier planned messages by contact, within `[from, to)`, of every run but `run_id`:
    /// queued, in flight, sent, of unknown outcome, or held out (a held-out contact counts as
    /// mailed, so that caps treat the control group like the rest).
    pub fn earlier_messages(
        &self,
        from: i64,
        to: i64,
        run_id: &str,
    ) -> Result<HashMap<String, Vec<Earlier>>> {
        use Status::{Holdout, Queued, Sending, Sent, Unknown};
        let sql = format!(
            "SELECT contact_id, coalesce(sent_at, send_at), campaign_id FROM messages
             WHERE status IN {}
             AND coalesce(sent_at, send_at) >= ?1 AND coalesce(sent_at, send_at) < ?2 AND run_id <> ?3",
            Status::sql_list(&[Queued, Sending, Sent, Unknown, Holdout])
        );
        let rows = self.select(&sql, params![from, to, run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Earlier {
                    at: r.get(1)?,
                    campaign_id: r.get(2)?,
                },
            ))
        })?;
        let mut out: HashMap<String, Vec<Earlier>> = HashMap::new();
        for (c, earlier) in rows {
            out.entry(c).or_default().push(earlier);
        }
        Ok(out)
    }

    /// Every message planned for `contact`, oldest first, as its data export shows them: run,
    /// campaign, status and reason, variant, send and sent instants (Unix seconds), subject.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn messages_of(&self, contact: &str) -> Result<Vec<serde_json::Value>> {
        self.select(
            "SELECT run_id, campaign_id, status, reason, variant, send_at, sent_at, subject, email
             FROM messages WHERE contact_id = ?1 ORDER BY send_at, id",
            [contact],
            |r| {
                Ok(serde_json::json!({
                    "run_id": r.get::<_, String>(0)?,
                    "campaign_id": r.get::<_, String>(1)?,
                    "status": r.get::<_, String>(2)?,
                    "reason": r.get::<_, Option<String>>(3)?,
                    "variant": r.get::<_, Option<String>>(4)?,
                    "send_at": r.get::<_, i64>(5)?,
                    "sent_at": r.get::<_, Option<i64>>(6)?,
                    "subject": r.get::<_, Option<String>>(7)?,
                    "email": r.get::<_, Option<String>>(8)?,
                }))
            },
        )
    }

    /// Erases `contact` here, in one transaction: its queued and waiting messages are
    /// suppressed (`erased`), and every row of it keeps only what reports count (campaign,
    /// status, instants, variant, group facts): the address, the rendered content and the
    /// contact id itself are removed (the id becomes `erased:<row>`). Returns (cancelled,
    /// rows scrubbed).
    ///
    /// # Errors
    /// The database cannot be written (nothing changed then).
    pub fn forget(&mut self, contact: &str) -> Result<(usize, usize)> {
        self.write(|tx| {
            let cancelled = tx.execute(
                "UPDATE messages SET status = ?2, reason = 'erased'
                 WHERE contact_id = ?1 AND status IN (?3, ?4)",
                params![
                    contact,
                    Status::Suppressed,
                    Status::Queued,
                    Status::AwaitingTest
                ],
            )?;
            let scrubbed = tx.execute(
                "UPDATE messages SET contact_id = 'erased:' || id, email = NULL, subject = NULL,
                 html = NULL, text = NULL, message_id = NULL WHERE contact_id = ?1",
                [contact],
            )?;
            Ok((cancelled, scrubbed))
        })
    }

    /// The key that signs unsubscribe links: `configured` if given, else one generated once and
    /// kept here, so links stay valid across runs.
    pub fn signing_key(&self, configured: Option<&str>) -> Result<Vec<u8>> {
        if let Some(k) = configured {
            return Ok(k.as_bytes().to_vec());
        }
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'signing_key'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(k) = existing {
            return Ok(k);
        }
        let key: [u8; 32] = rand::random();
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_key', ?1)",
                params![key.to_vec()],
            )
            .map_err(|e| self.err(e))?;
        self.signing_key(None)
    }

    /// Messages left `sending` by a sender that stopped abruptly: marked `unknown` (`resend`
    /// false) or queued again. Returns how many.
    pub fn recover(&mut self, resend: bool) -> Result<usize> {
        let (to, reason, from) = if resend {
            (
                Status::Queued,
                "resent after an unknown outcome",
                Status::Unknown,
            )
        } else {
            (
                Status::Unknown,
                "the sender stopped while sending; the server may or may not have accepted it",
                Status::Sending,
            )
        };
        self.conn
            .execute(
                "UPDATE messages SET status = ?1, reason = ?2,
                 sent_at = CASE WHEN ?1 = 'queued' THEN NULL ELSE sent_at END
                 WHERE status IN (?3, ?4)",
                params![to, reason, Status::Sending, from],
            )
            .map_err(|e| self.err(e))
    }

    /// Claims up to `limit` due messages (queued, `send_at` and `next_attempt_at` passed, the
    /// run's window still open), earliest first, marking them `sending` in one commit.
    ///
    /// A message whose run has a frequency cap is checked against it once more: the messages
    /// the contact got from other runs since the plan (a run planned without a cap, or one
    /// planned before this one by an older augur) may have used it up. Such a message is marked
    /// suppressed (`frequency_cap`) instead, and counted in [`Due::capped`].
    pub fn claim_due(&mut self, now: i64, limit: usize) -> Result<Due> {
        self.write(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT m.id, m.run_id, m.campaign_id, m.contact_id, m.email, m.message_id,
                            m.subject, m.html, m.text, m.attempts, r.sender, r.reply_to, r.require_consent,
                            r.cap_max, r.cap_days, r.topic
                     FROM messages m JOIN runs r ON r.run_id = m.run_id
                     WHERE m.status = ?3 AND m.send_at <= ?1 AND m.next_attempt_at <= ?1
                       AND m.expires_at > ?1
                     ORDER BY m.send_at, m.id LIMIT ?2",
                )?;
            let rows = stmt
                .query_map(params![now, limit as i64, Status::Queued], |r| {
                    let cap = match (r.get::<_, Option<u32>>(13)?, r.get::<_, Option<f64>>(14)?) {
                        (Some(max_messages), Some(per_days)) => Some(CapSpec {
                            max_messages,
                            per_days,
                        }),
                        _ => None,
                    };
                    let claimed = Claimed {
                        id: r.get(0)?,
                        run_id: r.get(1)?,
                        campaign_id: r.get(2)?,
                        contact_id: r.get(3)?,
                        email: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        message_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        content: Rendered {
                            subject: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                            html: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                            text: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                        },
                        attempts: r.get::<_, u32>(9)? + 1,
                        sender: r.get(10)?,
                        reply_to: r.get(11)?,
                        require_consent: r.get(12)?,
                        topic: r.get(15)?,
                    };
                    Ok((claimed, cap))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut counted = tx.prepare(&format!(
                "SELECT count(*) FROM messages WHERE contact_id = ?1 AND run_id <> ?2
                 AND status IN {} AND abs(coalesce(sent_at, send_at) - ?3) < ?4",
                Status::sql_list(&CAPPED_AT_SENDING)
            ))?;
            // `sent_at` holds the claim time while the outcome is open: a message on its way
            // counts against caps from now, not from its planned time (it may be overdue).
            let mut mark = tx.prepare(
                "UPDATE messages SET status = ?2, attempts = attempts + 1, sent_at = ?3 WHERE id = ?1",
            )?;
            let mut suppress = tx.prepare(
                "UPDATE messages SET status = ?2, reason = 'frequency_cap' WHERE id = ?1",
            )?;
            let mut due = Due::default();
            // One at a time, so a message marked `sending` here counts for the next one.
            for (c, cap) in rows {
                let over = match cap {
                    Some(cap) => {
                        let span = (cap.per_days * 86_400.0) as i64;
                        let n: i64 = counted.query_row(
                            params![c.contact_id, c.run_id, now, span],
                            |row| row.get(0),
                        )?;
                        n >= i64::from(cap.max_messages)
                    }
                    None => false,
                };
                if over {
                    suppress.execute(params![c.id, Status::Suppressed])?;
                    due.capped += 1;
                } else {
                    mark.execute(params![c.id, Status::Sending, now])?;
                    due.claimed.push(c);
                }
            }
            Ok(due)
        })
    }

    /// Records outcomes in one commit.
    pub fn record(&mut self, outcomes: &[(i64, Outcome)]) -> Result<()> {
        self.write(|tx| {
            let mut sent = tx.prepare(
                "UPDATE messages SET status = ?3, sent_at = ?2, reason = NULL WHERE id = ?1",
            )?;
            // Not sent after all: the claim time goes. An unknown outcome keeps it, the best
            // guess of when the relay may have accepted the message.
            let mut retry = tx.prepare(
                "UPDATE messages SET status = ?4, next_attempt_at = ?2, reason = ?3, sent_at = NULL WHERE id = ?1",
            )?;
            let mut not_sent = tx
                .prepare("UPDATE messages SET status = ?2, reason = ?3, sent_at = NULL WHERE id = ?1")?;
            let mut other =
                tx.prepare("UPDATE messages SET status = ?2, reason = ?3 WHERE id = ?1")?;
            for (id, outcome) in outcomes {
                match outcome {
                    Outcome::Sent(at) => sent.execute(params![id, at, Status::Sent]),
                    Outcome::Retry(at, why) => retry.execute(params![id, at, why, Status::Queued]),
                    Outcome::Failed(why) => not_sent.execute(params![id, Status::Failed, why]),
                    Outcome::Suppressed(why) => {
                        not_sent.execute(params![id, Status::Suppressed, why])
                    }
                    Outcome::Unknown(why) => other.execute(params![id, Status::Unknown, why]),
                }?;
            }
            Ok(())
        })
    }

    /// Queued messages whose window closed unsent are marked `expired`. Returns how many.
    pub fn expire(&mut self, now: i64) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE messages SET status = ?2, reason = coalesce(reason, 'the send window closed')
                 WHERE status = ?3 AND expires_at <= ?1",
                params![now, Status::Expired, Status::Queued],
            )
            .map_err(|e| self.err(e))
    }

    /// The next instant a queued message becomes due, if any is queued.
    pub fn next_due(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT min(max(send_at, next_attempt_at)) FROM messages WHERE status = ?1",
                params![Status::Queued],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Rows by status and reason, for a run or for everything.
    pub fn counts(&self, run_id: Option<&str>) -> Result<Vec<(Status, Option<String>, u64)>> {
        use Status::{Failed, Suppressed, Unknown};
        let sql = format!(
            "SELECT status, CASE WHEN status IN {} THEN reason END, count(*)
             FROM messages WHERE ?1 IS NULL OR run_id = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
            Status::sql_list(&[Suppressed, Failed, Unknown])
        );
        self.select(&sql, params![run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
    }

    /// Sent messages whose `sent` event is not yet in an events file, at most `limit`.
    pub fn unlogged_sends(&self, limit: usize) -> Result<Vec<SentRow>> {
        self.select(
            "SELECT id, contact_id, campaign_id, sent_at, message_id FROM messages
             WHERE status = ?2 AND events_file IS NULL ORDER BY id LIMIT ?1",
            params![limit as i64, Status::Sent],
            |r| {
                Ok(SentRow {
                    id: r.get(0)?,
                    contact_id: r.get(1)?,
                    campaign_id: r.get(2)?,
                    sent_at: r.get(3)?,
                    message_id: r.get(4)?,
                })
            },
        )
    }

    /// Marks rows as written to `file` (one commit).
    pub fn mark_logged(&mut self, ids: &[i64], file: &str) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare("UPDATE messages SET events_file = ?2 WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id, file])?;
            }
            Ok(())
        })
    }

    /// When the run ends: its last window closes (`None`: no such run).
    pub fn window_end(&self, run_id: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT window_end FROM runs WHERE run_id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Events files recorded in the outbox.
    pub fn events_files(&self) -> Result<Vec<String>> {
        self.select(
            "SELECT DISTINCT events_file FROM messages WHERE events_file IS NOT NULL",
            [],
            |r| r.get(0),
        )
    }

    /// Forgets an events file that never reached its place, so its rows are written again.
    pub fn unmark_logged(&mut self, file: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE messages SET events_file = NULL WHERE events_file = ?1",
                params![file],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The rows of a campaign that assigned a contact to a group (a variant, including messages
    /// suppressed or failed at sending, or the holdout), earliest first.
    pub fn campaign_rows(&self, campaign_id: &str) -> Result<Vec<ReportRow>> {
        self.select(
            "SELECT contact_id, coalesce(variant, 'holdout'), status, send_at, sent_at, run_id,
                    churn_tier, country, segments, send_time_source
             FROM messages WHERE campaign_id = ?1 AND (variant IS NOT NULL OR status = ?2)
             ORDER BY send_at, id",
            params![campaign_id, Status::Holdout],
            |r| {
                Ok(ReportRow {
                    contact_id: r.get(0)?,
                    group: r.get(1)?,
                    status: r.get(2)?,
                    send_at: r.get(3)?,
                    sent_at: r.get(4)?,
                    run_id: r.get(5)?,
                    churn_tier: r.get(6)?,
                    country: r.get(7)?,
                    segments: r.get(8)?,
                    send_time_source: r.get(9)?,
                })
            },
        )
    }
}

/// The frequency-cap query of a plan: the contact's messages of other runs near a send time.
struct CapCheck<'t> {
    stmt: rusqlite::Statement<'t>,
}

impl<'t> CapCheck<'t> {
    fn prepare(tx: &'t rusqlite::Transaction<'_>) -> rusqlite::Result<Self> {
        let stmt = tx.prepare(&format!(
            "SELECT count(*) FROM messages WHERE contact_id = ?1 AND run_id <> ?2
             AND status IN {} AND abs(coalesce(sent_at, send_at) - ?3) < ?4",
            Status::sql_list(&[
                Status::Queued,
                Status::Sending,
                Status::Sent,
                Status::Unknown,
                Status::Holdout,
            ])
        ))?;
        Ok(Self { stmt })
    }

    /// Whether `cap` is used up for `contact` around `send_at` by runs other than `run_id`.
    fn reached(
        &mut self,
        cap: CapSpec,
        contact: &str,
        run_id: &str,
        send_at: i64,
    ) -> rusqlite::Result<bool> {
        let span = (cap.per_days * 86_400.0) as i64;
        let n: i64 = self
            .stmt
            .query_row(params![contact, run_id, send_at, span], |row| row.get(0))?;
        Ok(n >= i64::from(cap.max_messages))
    }
}

/// A campaign row as reports read it.
#[derive(Debug, Clone)]
pub struct ReportRow {
    /// External contact id.
    pub contact_id: String,
    /// Variant name or `holdout`.
    pub group: String,
    /// Delivery state.
    pub status: Status,
    /// Planned send instant.
    pub send_at: i64,
    /// When the server accepted it.
    pub sent_at: Option<i64>,
    /// Its run.
    pub run_id: String,
    /// Churn tier as of the plan (`None`: planned by an augur that did not record it).
    pub churn_tier: Option<String>,
    /// Country as of the plan.
    pub country: Option<String>,
    /// Segments as of the plan, comma-separated.
    pub segments: Option<String>,
    /// How the send time was chosen.
    pub send_time_source: String,
}

/// A sent message, as the e-mail events table records it.
#[derive(Debug, Clone)]
pub struct SentRow {
    /// Outbox row id.
    pub id: i64,
    /// External contact id.
    pub contact_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// When the server accepted it (UTC seconds).
    pub sent_at: i64,
    /// Message-ID.
    pub message_id: String,
}

/// An earlier planned message of a contact.
#[derive(Debug, Clone)]
pub struct Earlier {
    /// When it was (or is to be) sent.
    pub at: i64,
    /// Its campaign.
    pub campaign_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_stored_by_its_name_and_read_back() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        for status in Status::ALL {
            let back: Status = conn
                .query_row("SELECT ?1", params![status], |r| r.get(0))
                .expect("round trip");
            assert_eq!(back, status);
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        let unknown = conn.query_row("SELECT 'posted'", [], |r| r.get::<_, Status>(0));
        assert!(
            unknown.is_err(),
            "an unknown status is an error, not a default"
        );
    }

    #[test]
    fn an_outbox_of_schema_1_is_migrated_through_each_version_and_keeps_its_rows() {
        let dir = std::env::temp_dir().join(format!("augur-outbox-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("outbox.sqlite");
        std::fs::remove_file(&path).ok();
        {
            let conn = rusqlite::Connection::open(&path).expect("sqlite");
            let v1 = SCHEMA
                .replace(
                    ",\n    cap_max INTEGER,\n    cap_days REAL,\n    topic TEXT",
                    "",
                )
                .replace(
                    "    churn_tier TEXT,\n    country TEXT,\n    segments TEXT,\n",
                    "",
                )
                .replace("user_version = 4", "user_version = 1");
            assert!(
                !v1.contains("cap_max") && !v1.contains("segments TEXT"),
                "the schema 1 of this test has no caps and no plan facts"
            );
            conn.execute_batch(&v1).expect("schema 1");
            conn.execute(
                "INSERT INTO runs VALUES ('r', 'c', 0, 1, 'm', 'a@b.example', NULL, 1, 0)",
                [],
            )
            .expect("a run of schema 1");
        }
        let outbox = Outbox::open(&path).expect("migrated");
        let (cap, version): (Option<i64>, i64) = outbox
            .conn
            .query_row(
                "SELECT cap_max, (SELECT user_version FROM pragma_user_version) FROM runs WHERE run_id = 'r'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the run, with a cap column");
        assert_eq!((cap, version), (None, 4));
        let facts: i64 = outbox
            .conn
            .query_row(
                "SELECT count(*) FROM messages WHERE segments IS NULL AND churn_tier IS NULL",
                [],
                |r| r.get(0),
            )
            .expect("the plan-fact columns exist");
        assert_eq!(facts, 0);
        assert!(
            outbox
                .run_tests("c")
                .expect("the A/B test table")
                .is_empty()
        );
        drop(outbox);
        Outbox::open(&path).expect("opened again: nothing left to migrate");
        std::fs::remove_dir_all(&dir).ok();
    }
}
