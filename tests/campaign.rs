//! `augur campaign` end to end: the real binary plans into a real SQLite outbox and delivers to
//! a real SMTP server on loopback (tests/smtp.rs).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow::array::{Array, StringArray, TimestampMicrosecondArray};
use serde_json::Value;

use crate::smtp::{self, Log, Received};
use crate::util::{Dir, col, read_parquet, run, stderr, stdout, write_parquet};

/// Demo data and a model trained on it, made once and copied into each test's directory.
pub(crate) fn fixture() -> &'static Path {
    static FIXTURE: OnceLock<Dir> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let dir = Dir::new();
            let out = run(dir.augur().args([
                "demo-data",
                "--contacts",
                "1200",
                "--seed",
                "11",
                "--out",
                "demo",
            ]));
            assert_eq!(out.status.code(), Some(0));
            let out = run(dir.augur().args([
                "train",
                "--config",
                "demo/augur.toml",
                "--models",
                "models",
            ]));
            assert_eq!(out.status.code(), Some(0));
            dir
        })
        .path()
}

pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A test directory with the fixture, `augur.toml` delivering to `smtp_port` (if given), and
/// a campaign file `c.toml` (id `now`, everyone who can be mailed, sent as soon as planned).
pub(crate) fn setup(smtp_port: Option<u16>, campaign_extra: &str, config_extra: &str) -> Dir {
    let dir = Dir::new();
    copy_tree(&fixture().join("demo"), &dir.join("demo"));
    copy_tree(&fixture().join("models"), &dir.join("models"));
    let smtp = smtp_port.map_or(String::new(), |p| {
        format!("[campaigns.smtp]\nhost = \"127.0.0.1\"\nport = {p}\nsecurity = \"none\"\ntimeout_seconds = 5\n")
    });
    let tables = std::fs::read_to_string(dir.join("demo/augur.toml")).expect("demo config");
    // The demo's own [campaigns] section is replaced by the test's.
    let tables = tables.split("[campaigns]").next().unwrap_or_default();
    let tables = tables.replace("path = \"", "path = \"demo/");
    dir.write(
        "augur.toml",
        &format!(
            "{tables}\n[campaigns]\noutbox = \"outbox/augur.sqlite\"\neml_dir = \"outbox/eml\"\n\
             messages_per_second = 2000\nretry_seconds = 1\nconnections = 4\n\
             unsubscribe_url = \"https://shop.example/unsubscribe\"\nsigning_key = \"test-signing-key\"\n\
             {config_extra}\n{smtp}"
        ),
    );
    dir.write(
        "templates/body.html",
        "<html><body>\n<p>Hi {{ first_name }},</p>\n{% for p in products %}<p class=\"product\">{{ p.name }}</p>\n{% endfor %}\
         <a href=\"{{ unsubscribe_url }}\">unsubscribe</a></body></html>\n",
    );
    dir.write(
        "templates/body.txt",
        "Hi {{ first_name }},\n{% for p in products %}* {{ p.name }}\n{% endfor %}",
    );
    dir.write(
        "c.toml",
        &format!(
            r#"id = "now"
[audience]
rule = {{ all = [] }}
holdout = 0.2
[schedule]
per_contact = false
window_hours = 24
[sender]
from = "Shop <news@shop.example>"
reply_to = "care@shop.example"
[content]
html = "templates/body.html"
text = "templates/body.txt"
first_name_fallback = "friend"
recommendations = 2
[[variants]]
name = "a"
subject = "Hi {{{{ first_name }}}}, picked for you"
preheader = "Two picks"
[[variants]]
name = "b"
subject = "{{{{ first_name }}}}: new picks"
{campaign_extra}
"#
        ),
    );
    dir
}

/// A recording SMTP server on a free loopback port that accepts everything.
pub(crate) fn smtp_server() -> (u16, Arc<Mutex<Log>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (port, smtp::start(listener, |_| false))
}

/// Replaces `from` with `to` in the test's `augur.toml`.
pub(crate) fn edit_config(dir: &Dir, from: &str, to: &str) {
    let config = std::fs::read_to_string(dir.join("augur.toml")).expect("config");
    assert!(config.contains(from), "`{from}` is not in augur.toml");
    dir.write("augur.toml", &config.replace(from, to));
}

/// `augur campaign plan --dry-run --out OUT` of `c.toml` with `extra` arguments: its output and
/// the plan it wrote.
pub(crate) fn dry_run(dir: &Dir, out: &str, extra: &[&str]) -> (String, Vec<PlanRow>) {
    let mut args = dry_run_args(out).to_vec();
    args.extend_from_slice(extra);
    let text = augur_ok(dir, &args);
    (text, plan_rows(&dir.join(out).join("plan.parquet")))
}

pub(crate) fn augur_ok(dir: &Dir, args: &[&str]) -> String {
    let out = run(dir.augur().args(args));
    assert_eq!(out.status.code(), Some(0), "augur {args:?} failed");
    stdout(&out)
}

/// `augur campaign plan` of `campaign` as of `minutes` ago: its output.
fn plan_minutes_ago(dir: &Dir, campaign: &str, minutes: i64) -> String {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339();
    augur_ok(
        dir,
        &["campaign", "plan", "--campaign", campaign, "--at", &at],
    )
}

/// Asserts that no address got two of the `.eml` files the sender wrote.
fn no_one_mailed_twice(dir: &Dir) {
    let mut recipients = HashSet::new();
    for entry in std::fs::read_dir(dir.join("outbox/eml")).expect("eml dir") {
        let eml = std::fs::read_to_string(entry.expect("entry").path()).expect("eml");
        let to = eml
            .split("\r\n")
            .find(|l| l.starts_with("To:"))
            .expect("To")
            .to_string();
        assert!(recipients.insert(to.clone()), "mailed twice: {to}");
    }
}

/// The number after `label` in `text`.
pub(crate) fn number_after(text: &str, label: &str) -> usize {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no `{label}` in:\n{text}"))
        + label.len();
    text[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{label}` in:\n{text}"))
}

/// A text column of a batch.
fn texts(batch: &arrow::array::RecordBatch, name: &str) -> StringArray {
    col(batch, name)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("text")
        .clone()
}

/// A row of a dry-run plan.
#[derive(Debug, Clone)]
pub(crate) struct PlanRow {
    pub(crate) contact: String,
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
    variant: Option<String>,
    send_at: i64,
    message_id: Option<String>,
}

/// The rows of a dry-run plan.
fn plan_rows(path: &Path) -> Vec<PlanRow> {
    let mut rows = Vec::new();
    for b in read_parquet(path) {
        let s = |name: &str| texts(&b, name);
        let (contact, status, variant, id, reason) = (
            s("contact_id"),
            s("status"),
            s("variant"),
            s("message_id"),
            s("reason"),
        );
        let at = col(&b, "send_at")
            .as_any()
            .downcast_ref::<arrow::array::TimestampSecondArray>()
            .expect("send_at")
            .clone();
        for i in 0..b.num_rows() {
            let opt = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            rows.push(PlanRow {
                contact: contact.value(i).to_string(),
                status: status.value(i).to_string(),
                reason: opt(&reason),
                variant: opt(&variant),
                send_at: at.value(i),
                message_id: opt(&id),
            });
        }
    }
    rows
}

pub(crate) fn accepted(log: &Arc<Mutex<Log>>) -> Vec<Received> {
    log.lock().expect("log").accepted.clone()
}

fn message_ids(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.header("Message-ID").expect("Message-ID"))
        .collect()
}

/// Contacts export: id → (email, first name).
pub(crate) fn contacts(dir: &Dir) -> HashMap<String, (String, Option<String>)> {
    let mut out = HashMap::new();
    for b in read_parquet(&dir.join("demo/contacts.parquet")) {
        let s = |name: &str| texts(&b, name);
        let (id, email, first) = (s("contact_id"), s("email"), s("first_name"));
        for i in 0..b.num_rows() {
            out.insert(
                id.value(i).to_string(),
                (
                    email.value(i).to_string(),
                    (!first.is_null(i)).then(|| first.value(i).to_string()),
                ),
            );
        }
    }
    out
}

#[test]
fn plans_once_and_delivers_each_message_with_its_headers_and_content() {
    let (port, log) = smtp_server();
    let dir = setup(Some(port), "", "");

    // Dry run: a plan file and previews, nothing in the outbox.
    let (out, planned) = dry_run(&dir, "dry", &[]);
    assert!(out.contains("Dry run"), "{out}");
    assert!(dir.join("dry/preview-1.eml").is_file());
    let queued: Vec<_> = planned.iter().filter(|r| r.status == "queued").collect();
    let holdout: HashSet<&str> = planned
        .iter()
        .filter(|r| r.status == "holdout")
        .map(|r| r.contact.as_str())
        .collect();
    assert!(queued.len() > 100, "{} queued", queued.len());
    let share = holdout.len() as f64 / (holdout.len() + queued.len()) as f64;
    assert!((0.12..0.28).contains(&share), "holdout share {share}");
    let sent_now = augur_ok(&dir, &["campaign", "send"]);
    assert_eq!(
        number_after(&sent_now, "Sent"),
        0,
        "the dry run queued nothing"
    );

    // Plan twice: the second adds nothing; the holdout is the dry run's.
    let first = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    assert_eq!(number_after(&first, "messages"), queued.len());
    let second = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    assert!(second.contains("nothing added"), "{second}");
    // Another day's plan of the same campaign keeps the same control group.
    let (other_day, plan2) = dry_run(&dir, "dry2", &["--at", "2030-01-02"]);
    assert!(other_day.contains("now-2030-01-02"), "{other_day}");
    let holdout2: HashSet<String> = plan2
        .into_iter()
        .filter(|r| r.status == "holdout")
        .map(|r| r.contact)
        .collect();
    assert_eq!(holdout2, holdout.iter().map(|s| s.to_string()).collect());

    let out = augur_ok(&dir, &["campaign", "send"]);
    assert_eq!(number_after(&out, "Sent"), queued.len(), "{out}");
    let received = accepted(&log);
    assert_eq!(received.len(), queued.len());
    let ids = message_ids(&received);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "a Message-ID arrived twice"
    );
    let expected: HashSet<String> = queued.iter().filter_map(|r| r.message_id.clone()).collect();
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), expected);

    let people = contacts(&dir);
    let by_id: HashMap<&str, &PlanRow> = queued
        .iter()
        .filter_map(|r| Some((r.message_id.as_deref()?, *r)))
        .collect();
    for (r, id) in received.iter().zip(&ids) {
        let row = by_id[id.as_str()];
        let (email, first) = &people[&row.contact];
        assert_eq!(r.to, vec![email.clone()], "envelope recipient");
        assert!(r.header("To").is_some_and(|t| t.contains(email.as_str())));
        assert!(
            r.header("From")
                .is_some_and(|f| f.contains("news@shop.example"))
        );
        assert!(
            r.header("Reply-To")
                .is_some_and(|f| f.contains("care@shop.example"))
        );
        let name = first.clone().unwrap_or_else(|| "friend".into());
        let subject = r.header("Subject").expect("subject");
        match row.variant.as_deref() {
            Some("a") => assert_eq!(subject, format!("Hi {name}, picked for you")),
            Some("b") => assert_eq!(subject, format!("{name}: new picks")),
            other => panic!("variant {other:?}"),
        }
        let unsubscribe = r.header("List-Unsubscribe").expect("List-Unsubscribe");
        assert!(
            unsubscribe.contains("<https://shop.example/unsubscribe?contact="),
            "{unsubscribe}"
        );
        assert!(
            unsubscribe.contains("&sig=")
                && unsubscribe.contains("<mailto:unsubscribe@shop.example?")
        );
        assert_eq!(
            r.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(
            r.data.contains(&format!("Hi {name},")),
            "greeting in the body"
        );
    }
    // Most messages list recommended products.
    assert!(received.iter().filter(|r| r.data.contains("* ")).count() > received.len() / 2);

    // Every send is a `sent` row of the e-mail events table.
    let mut sent_rows = 0;
    for entry in std::fs::read_dir(dir.join("demo/email_events")).expect("events dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("augur-sent-") {
            for b in read_parquet(&path) {
                let events = texts(&b, "event");
                assert!((0..b.num_rows()).all(|i| events.value(i) == "sent"));
                sent_rows += b.num_rows();
            }
        }
    }
    assert_eq!(sent_rows, queued.len());

    // Report: plant engagement and orders after the send, and read them back per group.
    let variant_a: Vec<&str> = queued
        .iter()
        .filter(|r| r.variant.as_deref() == Some("a"))
        .map(|r| r.contact.as_str())
        .take(3)
        .collect();
    let holdout_one = *holdout.iter().next().expect("a holdout contact");
    let later = (chrono::Utc::now().timestamp() + 3600) * 1_000_000;
    let ids = vec![variant_a[0], variant_a[1], variant_a[2], variant_a[0]];
    write_parquet(
        &dir.join("demo/email_events/engagement.parquet"),
        vec![
            ("contact_id", Arc::new(StringArray::from(ids)) as _),
            (
                "campaign_id",
                Arc::new(StringArray::from(vec!["now"; 4])) as _,
            ),
            (
                "event",
                Arc::new(StringArray::from(vec!["open", "open", "open", "click"])) as _,
            ),
            (
                "occurred_at",
                Arc::new(TimestampMicrosecondArray::from(vec![later; 4]).with_timezone("UTC")) as _,
            ),
            (
                "machine_open",
                Arc::new(arrow::array::BooleanArray::from(vec![
                    false, false, true, false,
                ])) as _,
            ),
        ],
    );
    write_parquet(
        &dir.join("demo/orders_extra/o.parquet"),
        vec![
            (
                "order_id",
                Arc::new(StringArray::from(vec!["X1", "X2"])) as _,
            ),
            (
                "contact_id",
                Arc::new(StringArray::from(vec![variant_a[0], holdout_one])) as _,
            ),
            (
                "product_id",
                Arc::new(StringArray::from(vec!["P00001", "P00001"])) as _,
            ),
            (
                "ordered_at",
                Arc::new(TimestampMicrosecondArray::from(vec![later; 2]).with_timezone("UTC")) as _,
            ),
            (
                "quantity",
                Arc::new(arrow::array::Float64Array::from(vec![2.0, 1.0])) as _,
            ),
            (
                "unit_price",
                Arc::new(arrow::array::Float64Array::from(vec![10.0, 10.0])) as _,
            ),
        ],
    );
    std::fs::create_dir_all(dir.join("demo/orders_all")).expect("mkdir");
    std::fs::rename(
        dir.join("demo/orders.parquet"),
        dir.join("demo/orders_all/a.parquet"),
    )
    .expect("move");
    std::fs::rename(
        dir.join("demo/orders_extra/o.parquet"),
        dir.join("demo/orders_all/b.parquet"),
    )
    .expect("move");
    edit_config(&dir, "demo/orders.parquet", "demo/orders_all");
    let out = augur_ok(
        &dir,
        &["campaign", "report", "--campaign", "now", "--out", "report"],
    );
    assert!(out.contains("uplift a"), "{out}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("report/report.json")).expect("json"),
    )
    .expect("parse");
    let group = |name: &str| {
        report["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["group"] == name)
            .cloned()
            .expect("group")
    };
    let a = group("a");
    assert_eq!(a["opened"], 2, "machine opens are not opens");
    assert_eq!(a["clicked"], 1);
    assert_eq!(a["orders"], 1);
    assert_eq!(a["revenue"], 20.0);
    assert_eq!(group("holdout")["orders"], 1);
    assert_eq!(group("holdout")["audience"], holdout.len());
    assert!(
        std::fs::read_to_string(dir.join("report/report.html"))
            .expect("html")
            .contains("<svg")
    );
}

/// Messages a sender found in doubt on start (from its log).
fn reported_in_doubt(log: &str) -> usize {
    log.lines()
        .filter_map(|l| {
            let end = l.find(" messages were being sent when the last sender stopped")?;
            l[..end].rsplit(' ').next()?.parse::<usize>().ok()
        })
        .sum()
}

#[test]
fn due_messages_go_out_in_send_time_order_and_later_ones_wait() {
    let (port, log) = smtp_server();
    let dir = setup(Some(port), "", "");
    edit_config(&dir, "connections = 4", "connections = 1");
    // Per-contact send times over a 24 h window that opened 20 hours ago: most are due.
    let campaign = std::fs::read_to_string(dir.join("c.toml"))
        .expect("campaign")
        .replace("per_contact = false", "per_contact = true");
    dir.write("c.toml", &campaign);
    let at = chrono::Utc::now() - chrono::Duration::hours(20);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, planned) = dry_run(&dir, "dry", &["--at", &at]);
    augur_ok(
        &dir,
        &["campaign", "plan", "--campaign", "c.toml", "--at", &at],
    );
    let now = chrono::Utc::now().timestamp();
    let send_at: HashMap<String, i64> = planned
        .iter()
        .filter(|r| r.status == "queued")
        .filter_map(|r| Some((r.message_id.clone()?, r.send_at)))
        .collect();
    let due = send_at.values().filter(|t| **t <= now).count();
    assert!(
        due > 50 && due < send_at.len(),
        "{due} of {} due",
        send_at.len()
    );

    let out = augur_ok(&dir, &["campaign", "send"]);
    let times: Vec<i64> = message_ids(&accepted(&log))
        .iter()
        .map(|id| send_at[id])
        .collect();
    assert_eq!(times.len(), due, "{out}");
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "sent in send_at order"
    );
    assert_eq!(
        number_after(&out, "queued:"),
        send_at.len() - due,
        "later ones wait"
    );
}

#[test]
fn a_killed_sender_restarts_without_sending_anything_twice() {
    let (port, log) = smtp_server();
    let dir = setup(Some(port), "", "");
    edit_config(
        &dir,
        "messages_per_second = 2000",
        "messages_per_second = 150",
    );
    let out = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let planned = number_after(&out, "messages");

    // Kill the sender twice mid-run, then let a third finish.
    let mut in_doubt = 0;
    for wait_ms in [800, 800] {
        let child = dir
            .augur()
            .args(["campaign", "send"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sender");
        std::thread::sleep(Duration::from_millis(wait_ms));
        let mut child = child;
        child.kill().expect("kill -9");
        let output = child.wait_with_output().expect("wait");
        assert_eq!(
            output.status.code(),
            None,
            "killed by a signal, not finished"
        );
        in_doubt += reported_in_doubt(&String::from_utf8_lossy(&output.stderr));
        assert!(accepted(&log).len() < planned, "killed before the end");
    }
    let finished = run(dir.augur().args(["campaign", "send", "--follow"]));
    assert_eq!(finished.status.code(), Some(0));
    in_doubt += reported_in_doubt(&stderr(&finished));
    assert!(
        in_doubt <= 8,
        "at most one batch (4 connections) per kill is in doubt, not {in_doubt}"
    );
    let again = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    assert!(again.contains("nothing added"), "{again}");
    let ids = message_ids(&accepted(&log));
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "no message went out twice");
    assert!(ids.len() <= planned);
    assert!(
        ids.len() + in_doubt >= planned,
        "every message is delivered or reported in doubt: {} + {in_doubt} < {planned}",
        ids.len()
    );

    // Releasing the in-doubt messages delivers whatever had not arrived (at most they duplicate).
    let out = augur_ok(&dir, &["campaign", "send", "--resend-unknown"]);
    let ids = message_ids(&accepted(&log));
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), planned, "{out}");
    assert!(ids.len() - distinct.len() <= in_doubt);
}

#[test]
fn retries_while_the_server_is_down_and_fails_on_5xx_without_retrying() {
    let port = smtp::free_port();
    let dir = setup(Some(port), "", "");
    let out = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let planned = number_after(&out, "messages");
    let refuse = |to: &str| {
        to.split('@')
            .next()
            .is_some_and(|local| local.ends_with('7'))
    };

    let sender = dir
        .augur()
        .args(["campaign", "send", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sender");
    std::thread::sleep(Duration::from_millis(1500));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port again");
    let log = smtp::start(listener, refuse);
    let output = sender.wait_with_output().expect("sender");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{text}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0));

    let log = log.lock().expect("log");
    let refused: HashSet<&String> = log.refused.iter().collect();
    assert!(!refused.is_empty(), "the fixture has addresses ending in 7");
    assert_eq!(refused.len(), log.refused.len(), "a 5xx is not retried");
    assert_eq!(number_after(&text, "failed"), refused.len());
    assert!(
        number_after(&text, "retried later") > 0,
        "the first attempts met a closed port"
    );
    let ids: Vec<String> = log
        .accepted
        .iter()
        .map(|r| r.header("Message-ID").expect("id"))
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert_eq!(
        ids.len() + refused.len(),
        planned,
        "every other message arrived once"
    );
    assert!(text.contains("failed (permanent error (550)"), "{text}");
}

#[test]
fn contacts_who_unsubscribe_after_planning_get_nothing() {
    let (port, log) = smtp_server();
    let dir = setup(Some(port), "", "");
    let (_, planned) = dry_run(&dir, "dry", &[]);
    augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let gone: Vec<&PlanRow> = planned
        .iter()
        .filter(|r| r.status == "queued")
        .take(3)
        .collect();
    let now = chrono::Utc::now().timestamp() * 1_000_000;
    write_parquet(
        &dir.join("demo/email_events/unsubscribes.parquet"),
        vec![
            (
                "contact_id",
                Arc::new(StringArray::from(
                    gone.iter().map(|r| r.contact.as_str()).collect::<Vec<_>>(),
                )) as _,
            ),
            (
                "event",
                Arc::new(StringArray::from(vec!["unsubscribe"; 3])) as _,
            ),
            (
                "occurred_at",
                Arc::new(TimestampMicrosecondArray::from(vec![now; 3]).with_timezone("UTC")) as _,
            ),
        ],
    );
    let out = augur_ok(&dir, &["campaign", "send"]);
    assert_eq!(number_after(&out, "suppressed at sending"), 3, "{out}");
    let ids: HashSet<String> = message_ids(&accepted(&log)).into_iter().collect();
    for r in gone {
        assert!(
            !ids.contains(r.message_id.as_deref().expect("id")),
            "{} unsubscribed and still got it",
            r.contact
        );
    }
    assert_eq!(
        ids.len(),
        planned.iter().filter(|r| r.status == "queued").count() - 3
    );
}

#[test]
fn frequency_caps_count_the_sends_of_other_campaigns() {
    let dir = setup(None, "[caps]\nmax_messages = 1\nper_days = 7\n", "");
    let first = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let sent = number_after(&first, "messages");
    let out = augur_ok(&dir, &["campaign", "send"]);
    assert_eq!(number_after(&out, "Sent"), sent);
    assert_eq!(
        std::fs::read_dir(dir.join("outbox/eml"))
            .expect("eml dir")
            .count(),
        sent,
        "one .eml per message without a relay"
    );

    let other = std::fs::read_to_string(dir.join("c.toml"))
        .expect("campaign")
        .replace("id = \"now\"", "id = \"later\"");
    dir.write("d.toml", &other);
    // A held-out contact counts as mailed, so the control group is capped like the rest.
    let held_out = number_after(&first, "holdout");
    let second = augur_ok(&dir, &["campaign", "plan", "--campaign", "d.toml"]);
    assert_eq!(
        number_after(&second, "frequency_cap"),
        sent + held_out,
        "{second}"
    );

    // The same campaign a day later skips everyone it planned today, sent or held out.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (again, _) = dry_run(&dir, "dry", &["--at", &tomorrow]);
    assert_eq!(
        number_after(&again, "recently_in_campaign"),
        sent + held_out,
        "{again}"
    );
}

#[test]
fn a_template_error_names_the_template_and_line_and_plans_nothing() {
    let dir = setup(None, "", "");
    dir.write(
        "templates/body.html",
        "<html><body>\n<p>Hi {{ first_name }}</p>\n<p>{{ contact.nickname }}</p>\n</body></html>\n",
    );
    let out = run(dir
        .augur()
        .args(["campaign", "plan", "--campaign", "c.toml"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("templates/body.html") && err.contains("line 3"),
        "{err}"
    );
    let sent = augur_ok(&dir, &["campaign", "send"]);
    assert!(sent.contains("Sent 0"), "{sent}");
    assert!(
        !dir.join("outbox/eml").exists()
            || std::fs::read_dir(dir.join("outbox/eml"))
                .expect("dir")
                .count()
                == 0
    );

    dir.write("templates/body.html", "<p>\n{% if products %}\n");
    let out = run(dir
        .augur()
        .args(["campaign", "plan", "--campaign", "c.toml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("templates/body.html"),
        "{}",
        stderr(&out)
    );

    let bad = std::fs::read_to_string(dir.join("c.toml"))
        .expect("campaign")
        .replace("holdout = 0.2", "holdout = 1.5");
    dir.write("c.toml", &bad);
    let out = run(dir
        .augur()
        .args(["campaign", "plan", "--campaign", "c.toml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("c.toml") && stderr(&out).contains("holdout"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_plans_then_delivers_everything_due_to_eml_files_without_a_relay() {
    let dir = setup(None, "", "");
    let out = augur_ok(&dir, &["campaign", "run", "--campaign", "c.toml"]);
    let planned = number_after(&out, "messages");
    assert!(
        out.contains(".eml files; no SMTP relay configured"),
        "{out}"
    );
    assert_eq!(number_after(&out, "Sent"), planned, "{out}");
    let files: Vec<String> = std::fs::read_dir(dir.join("outbox/eml"))
        .expect("eml dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), planned);
    assert!(
        files
            .iter()
            .all(|f| f.ends_with(".eml") && !f.starts_with('.'))
    );
    let one = std::fs::read_to_string(dir.join("outbox/eml").join(&files[0])).expect("eml");
    assert!(one.contains("Message-ID: <now-") && one.contains("List-Unsubscribe:"));
    // A second run the same day finds the run planned and nothing left to send.
    let again = augur_ok(&dir, &["campaign", "run", "--campaign", "c.toml"]);
    assert!(again.contains("nothing added"), "{again}");
    assert_eq!(number_after(&again, "Sent"), 0);
}

/// Sets `first_name` of `contact` in the test's contacts export.
fn set_first_name(dir: &Dir, contact: &str, first_name: &str) {
    set_contact_text(dir, contact, "first_name", first_name);
}

/// Sets the text column `column` of `contact` in the test's contacts export.
fn set_contact_text(dir: &Dir, contact: &str, column: &str, value: &str) {
    let path = dir.join("demo/contacts.parquet");
    let batches = read_parquet(&path);
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
    let ids = texts(&batch, "contact_id");
    let old = texts(&batch, column);
    let names: StringArray = (0..batch.num_rows())
        .map(|i| {
            if ids.value(i) == contact {
                Some(value.to_string())
            } else {
                (!old.is_null(i)).then(|| old.value(i).to_string())
            }
        })
        .collect();
    let schema = batch.schema();
    let columns: Vec<(&str, arrow::array::ArrayRef)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            let column = if f.name() == column {
                Arc::new(names.clone()) as arrow::array::ArrayRef
            } else {
                c.clone()
            };
            (f.name().as_str(), column)
        })
        .collect();
    write_parquet(&path, columns);
}

#[test]
fn one_contacts_bad_value_or_failing_template_skips_only_that_contact() {
    let dir = setup(None, "", "");
    let (_, before) = dry_run(&dir, "before", &[]);
    let queued: Vec<&PlanRow> = before.iter().filter(|r| r.status == "queued").collect();
    let (broken, injected) = (queued[0].contact.clone(), queued[1].contact.clone());
    let unusable = queued[2].contact.clone();
    // A header-injection attempt in one contact's first name, rendered into the subject.
    set_first_name(&dir, &injected, "Anna\r\nBcc: thief@evil.example");
    // And one in another's address: no usable address, so no message (not a failed run).
    set_contact_text(
        &dir,
        &unusable,
        "email",
        "anna@example.com\r\nBcc: thief@evil.example",
    );
    // A template that fails for one contact only.
    dir.write(
        "templates/body.html",
        &format!(
            "<html><body><p>Hi {{{{ first_name }}}}</p>\n{{% if contact.id == \"{broken}\" %}}{{{{ contact.nickname }}}}{{% endif %}}\n</body></html>\n"
        ),
    );
    let (text, after) = dry_run(&dir, "after", &[]);
    let status = |rows: &[PlanRow], c: &str| {
        rows.iter()
            .find(|r| r.contact == c)
            .map(|r| r.status.clone())
    };
    assert_eq!(
        status(&after, &broken).as_deref(),
        Some("suppressed"),
        "{text}"
    );
    assert_eq!(
        status(&after, &injected).as_deref(),
        Some("queued"),
        "{text}"
    );
    assert_eq!(
        status(&after, &unusable).as_deref(),
        Some("suppressed"),
        "{text}"
    );
    assert!(text.contains("rendering_failed"), "{text}");
    let queued_after = after.iter().filter(|r| r.status == "queued").count();
    assert_eq!(queued_after, queued.len() - 2);

    let out = augur_ok(&dir, &["campaign", "run", "--campaign", "c.toml"]);
    assert_eq!(number_after(&out, "Sent"), queued.len() - 2, "{out}");
    assert!(!out.contains("thief"), "no address printed raw: {out}");
    let email = contacts(&dir)[&injected].0.clone();
    let mut found = false;
    for entry in std::fs::read_dir(dir.join("outbox/eml")).expect("eml dir") {
        let eml = std::fs::read_to_string(entry.expect("entry").path()).expect("eml");
        let head = eml.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "a header was injected:\n{head}"
        );
        if head.contains(&email) {
            found = true;
            let subject = head
                .split("\r\n")
                .find(|l| l.starts_with("Subject:"))
                .expect("subject");
            assert!(subject.contains("Anna Bcc: thief@evil.example"), "{head}");
        }
    }
    assert!(found, "no message to {email}");
}

#[test]
fn two_plans_started_at_once_share_the_frequency_cap() {
    let dir = setup(None, "[caps]\nmax_messages = 1\nper_days = 7\n", "");
    let other = std::fs::read_to_string(dir.join("c.toml"))
        .expect("campaign")
        .replace("id = \"now\"", "id = \"other\"");
    dir.write("d.toml", &other);
    // Alone, a plan mails (or holds out) this many contacts.
    let (alone, _) = dry_run(&dir, "alone", &[]);
    let mailed_alone = number_after(&alone, "messages") + number_after(&alone, "holdout");
    assert!(mailed_alone > 100, "{alone}");

    let start = |campaign: &str| {
        dir.augur()
            .args(["campaign", "plan", "--campaign", campaign])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a plan")
    };
    let (a, b) = (start("c.toml"), start("d.toml"));
    let mut mailed = 0;
    for child in [a, b] {
        let out = child.wait_with_output().expect("plan");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        mailed += number_after(&text, "messages") + number_after(&text, "holdout");
    }
    // With at most one message per contact, the two runs together mail no one twice.
    assert!(
        mailed <= mailed_alone,
        "{mailed} contacts planned by two campaigns under a cap of one, {mailed_alone} mailable"
    );
    let sent = augur_ok(&dir, &["campaign", "send"]);
    let files = std::fs::read_dir(dir.join("outbox/eml"))
        .expect("eml dir")
        .count();
    assert_eq!(number_after(&sent, "Sent"), files);
    no_one_mailed_twice(&dir);
}

#[test]
fn the_sender_checks_the_frequency_cap_again_when_a_message_falls_due() {
    // A capped campaign is planned first; a campaign without a cap is planned after it, for an
    // hour earlier. Neither plan sees a reason to hold back, so only the sender can keep the cap:
    // the uncapped messages go first, and the capped ones due after them are suppressed.
    let dir = setup(None, "[caps]\nmax_messages = 1\nper_days = 7\n", "");
    let capped = augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let capped_messages = number_after(&capped, "messages");
    assert!(capped_messages > 100, "{capped}");
    let uncapped = std::fs::read_to_string(dir.join("c.toml"))
        .expect("campaign")
        .replace("id = \"now\"", "id = \"earlier\"")
        .replace("[caps]\nmax_messages = 1\nper_days = 7\n", "");
    dir.write("d.toml", &uncapped);
    let second = plan_minutes_ago(&dir, "d.toml", 60);
    assert!(
        !second.contains("frequency_cap"),
        "the plan without a cap checks none: {second}"
    );
    let uncapped_messages = number_after(&second, "messages");

    let out = augur_ok(&dir, &["campaign", "send"]);
    assert_eq!(number_after(&out, "Sent"), uncapped_messages, "{out}");
    assert_eq!(
        number_after(&out, "suppressed at sending"),
        capped_messages,
        "every contact had a message (or a holdout) of the earlier run: {out}"
    );
    no_one_mailed_twice(&dir);
}

#[test]
fn an_overdue_message_sent_in_the_same_batch_counts_against_the_cap() {
    // The uncapped campaign's messages are 13½ hours overdue, the cap spans half a day: what
    // counts is when a message goes out, not when it was planned to.
    let dir = setup(None, "[caps]\nmax_messages = 1\nper_days = 0.5\n", "");
    edit_config(&dir, "connections = 4", "connections = 5000");
    let uncapped = std::fs::read_to_string(dir.join("c.toml"))
        .expect("campaign")
        .replace("id = \"now\"", "id = \"overdue\"")
        .replace("[caps]\nmax_messages = 1\nper_days = 0.5\n", "");
    dir.write("d.toml", &uncapped);
    let overdue = plan_minutes_ago(&dir, "d.toml", 13 * 60 + 30);
    let capped = plan_minutes_ago(&dir, "c.toml", 60);
    let capped_messages = number_after(&capped, "messages");
    assert!(capped_messages > 100, "{capped}");
    let out = augur_ok(&dir, &["campaign", "send"]);
    // Contacts held out of the overdue run were not mailed by it (and its holdout is older
    // than the cap's half day): they get the capped message. Everyone else gets one message.
    let suppressed = number_after(&out, "suppressed at sending");
    assert!(suppressed > capped_messages / 2, "{out}");
    assert_eq!(
        number_after(&out, "Sent") + suppressed,
        number_after(&overdue, "messages") + capped_messages,
        "{out}"
    );
    no_one_mailed_twice(&dir);
}

#[test]
fn internationalized_domains_are_sent_in_idna_form_without_smtputf8() {
    let (port, log) = smtp_server();
    let dir = setup(Some(port), "", "");
    let (_, before) = dry_run(&dir, "before", &[]);
    let queued: Vec<&PlanRow> = before.iter().filter(|r| r.status == "queued").collect();
    let (idn, utf8_local) = (queued[0].contact.clone(), queued[1].contact.clone());
    set_contact_text(&dir, &idn, "email", "anna@bücher.example");
    set_contact_text(&dir, &utf8_local, "email", "jörg@shop.example");
    augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let sent = augur_ok(&dir, &["campaign", "send"]);
    let received = accepted(&log);
    assert!(
        received
            .iter()
            .any(|r| r.to.iter().any(|t| t == "anna@xn--bcher-kva.example")),
        "{sent}"
    );
    // Only a non-ASCII local part needs SMTPUTF8, which this relay does not offer: it fails, and
    // says why.
    assert!(!received.iter().any(|r| {
        r.to.iter()
            .any(|t| t.contains("shop.example") && !t.is_ascii())
    }));
    assert!(sent.contains("not ASCII, which needs SMTPUTF8"), "{sent}");
}

#[test]
fn a_report_before_anything_is_delivered_says_so() {
    let dir = setup(None, "", "");
    augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    let out = augur_ok(
        &dir,
        &["campaign", "report", "--campaign", "now", "--out", "report"],
    );
    assert!(out.contains("nothing delivered yet"), "{out}");
    assert!(!out.contains("95 % CI"), "an interval of nothing: {out}");
    let html = std::fs::read_to_string(dir.join("report/report.html")).expect("html");
    assert!(html.contains("nothing delivered yet"));
}

#[test]
fn a_typo_in_one_variants_subject_stops_the_plan_instead_of_dropping_the_variant() {
    let dir = setup(None, "", "");
    let campaign = std::fs::read_to_string(dir.join("c.toml")).expect("campaign");
    dir.write(
        "c.toml",
        &campaign.replacen(
            "{{ first_name }}: new picks",
            "{{ frist_name }}: new picks",
            1,
        ),
    );
    let said = refused_dry_run(&dir, "typo");
    assert!(
        said.contains("c.toml") && said.contains("variant `b`") && said.contains("b.subject"),
        "{said}"
    );
    assert!(
        !dir.join("outbox/augur.sqlite").exists() || {
            let db = rusqlite::Connection::open(dir.join("outbox/augur.sqlite")).expect("outbox");
            db.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
                .unwrap_or(0)
                == 0
        }
    );
}

#[test]
fn a_template_that_renders_megabytes_stops_the_plan_with_its_name() {
    let dir = setup(None, "", "");
    dir.write(
        "templates/body.html",
        "<html><body>{{ \"x\" * 3000000 }}</body></html>\n",
    );
    let said = refused_dry_run(&dir, "big");
    assert!(said.contains("renders more than 1024 KiB"), "{said}");
}

/// The arguments of a dry run of `c.toml` into `out`.
fn dry_run_args(out: &str) -> [&str; 7] {
    [
        "campaign",
        "plan",
        "--campaign",
        "c.toml",
        "--dry-run",
        "--out",
        out,
    ]
}

/// A dry run of `c.toml` into `out` that must fail as a bad campaign (exit 2): what it said.
fn refused_dry_run(dir: &Dir, out: &str) -> String {
    let run = run(dir.augur().args(dry_run_args(out)));
    let said = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{said}");
    said
}
