//! Events posted to a real `augur serve` socket, and triggered series run by the real binary
//! (`augur flows run --once --at T`) into the real SQLite outbox.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::campaign::{copy_tree, fixture};
use crate::serve::{KEY, Server};
use crate::util::{Dir, run, stdout};

/// Demo data and its model, `serve.toml` (also the flows' configuration) with an event store,
/// and one flow in `flows/`: a cart reminder an hour after a cart not followed by an order,
/// a second one a day later.
fn setup() -> Dir {
    let dir = Dir::new();
    copy_tree(&fixture().join("demo"), &dir.join("demo"));
    copy_tree(&fixture().join("models"), &dir.join("models"));
    let tables = std::fs::read_to_string(dir.join("demo/augur.toml")).expect("demo config");
    let tables = tables.split("[campaigns]").next().unwrap_or_default();
    let tables = tables.replace("path = \"", "path = \"demo/");
    dir.write(
        "serve.toml",
        &format!(
            "{tables}\n[campaigns]\noutbox = \"outbox/augur.sqlite\"\neml_dir = \"outbox/eml\"\n\
             unsubscribe_url = \"https://shop.example/unsubscribe\"\nsigning_key = \"test-signing-key\"\n\
             [events]\nstore = \"events/augur-events.sqlite\"\n"
        ),
    );
    dir.write(
        "templates/cart.html",
        "<p>Hi {{ first_name }}, your cart: {{ trigger_product.id if trigger_product else 'nothing' }}; also {% for p in products %}{{ p.name }} {% endfor %}</p>",
    );
    dir.write(
        "templates/cart.txt",
        "Hi {{ first_name }}, your cart is waiting.",
    );
    dir.write(
        "flows/cart.toml",
        r#"id = "cart"
[trigger]
event = "add_to_cart"
unless = "order"
within = "1h"
[schedule]
quiet = "21:00-08:00"
[sender]
from = "Shop <news@shop.example>"
[content]
html = "../templates/cart.html"
text = "../templates/cart.txt"
recommendations = 2
[[steps]]
name = "reminder"
send = { subject = "{{ first_name }}, your cart" }
[[steps]]
name = "wait-a-day"
wait = "23h"
best_hour_within = "3h"
[[steps]]
name = "second"
send = { subject = "Still thinking it over?" }
"#,
    );
    dir
}

/// 10:00 UTC, ten days ago: a cart then, its reminder an hour later, is outside the quiet hours.
fn t0() -> i64 {
    let day = 86_400;
    (chrono::Utc::now().timestamp() / day - 10) * day + 10 * 3600
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .expect("instant")
        .to_rfc3339()
}

fn post(server: &Server, events: &Value) -> (u16, Value) {
    server.post("/v1/events", KEY, &json!({ "events": events }).to_string())
}

/// The arguments of `augur flows run --once --at T` on the test's files.
fn tick_args(at: i64) -> Vec<String> {
    tick_args_with(at, "models")
}

/// [`tick_args`] with the model directory `models`.
fn tick_args_with(at: i64, models: &str) -> Vec<String> {
    [
        "flows",
        "run",
        "--config",
        "serve.toml",
        "--flows",
        "flows",
        "--models",
        models,
        "--once",
        "--at",
    ]
    .iter()
    .map(|a| (*a).to_string())
    .chain([rfc3339(at)])
    .collect()
}

/// `augur flows run --once --at T`: its output.
fn tick(dir: &Dir, at: i64) -> String {
    tick_with(dir, at, "models")
}

/// [`tick`] with the model directory `models`.
fn tick_with(dir: &Dir, at: i64, models: &str) -> String {
    let out = run(dir.augur().args(tick_args_with(at, models)));
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::stderr(&out));
    stdout(&out)
}

/// The cart flow's messages in the outbox: (contact, run, status, send_at).
fn messages(dir: &Dir) -> Vec<(String, String, String, i64)> {
    messages_of(dir, "cart")
}

/// A flow's messages in the outbox: (contact, run, status, send_at), by contact and time.
fn messages_of(dir: &Dir, flow: &str) -> Vec<(String, String, String, i64)> {
    let path = dir.join("outbox/augur.sqlite");
    if !path.exists() {
        return Vec::new();
    }
    let db = rusqlite::Connection::open(path).expect("outbox");
    let mut stmt = db
        .prepare("SELECT contact_id, run_id, status, send_at FROM messages WHERE campaign_id = ?1 ORDER BY contact_id, send_at")
        .expect("query");
    stmt.query_map([flow], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

fn contact(id: &str, at: i64) -> Value {
    json!({"type": "contact", "contact_id": id, "occurred_at": at, "email": format!("{id}@shop.example"),
           "first_name": "Cara", "timezone": "UTC", "email_consent": true})
}

fn cart(id: &str, at: i64) -> Value {
    json!({"type": "web", "contact_id": id, "occurred_at": rfc3339(at), "event": "add_to_cart", "product_id": "P00001"})
}

#[test]
fn events_are_checked_one_by_one_stored_once_and_limited_per_batch() {
    let dir = setup();
    let server = Server::start(&dir, &[]);
    let t = t0();
    let batch = json!([
        cart("ev-1", t),
        {"type": "web", "contact_id": "ev-1", "occurred_at": t, "event": "teleport"},
        {"type": "order", "contact_id": "ev-1", "occurred_at": t, "product_id": "P00001", "order_id": "O-1", "quantity": 1, "unit_price": 5.0},
    ]);
    let (status, answer) = post(&server, &batch);
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["stored"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert!(
        answer["rejected"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not in the contract")),
        "{answer}"
    );
    // The same batch again (a client's retry): nothing stored twice.
    let (_, again) = post(&server, &batch);
    assert_eq!(
        (again["stored"].clone(), again["duplicates"].clone()),
        (json!(0), json!(2))
    );
    let (status, ok) = post(&server, &json!([cart("ev-2", t)]));
    assert_eq!((status, ok["stored"].clone()), (202, json!(1)));
    // An id given again with other content is no retry: refused by its index, the first kept.
    let reused = json!([
        {"type": "order", "contact_id": "ev-3", "occurred_at": t, "product_id": "P00001", "quantity": 1, "unit_price": 5.0, "event_id": "shop-9"},
        {"type": "order", "contact_id": "ev-4", "occurred_at": t, "product_id": "P00001", "quantity": 50, "unit_price": 9.0, "event_id": "shop-9"},
        {"type": "order", "contact_id": "ev-3", "occurred_at": t, "product_id": "P00002", "quantity": 1e30, "unit_price": 5.0},
    ]);
    let (status, answer) = post(&server, &reused);
    assert_eq!(status, 207, "{answer}");
    assert_eq!(
        (answer["accepted"].clone(), answer["stored"].clone()),
        (json!(1), json!(1)),
        "{answer}"
    );
    let reasons: Vec<(u64, String)> = answer["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(99),
                r["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{answer}");
    assert!(
        reasons[0].0 == 1
            && reasons[0]
                .1
                .contains("`event_id` `shop-9` was stored before"),
        "{answer}"
    );
    assert!(
        reasons[1].0 == 2 && reasons[1].1.contains("`quantity`"),
        "{answer}"
    );
    let many: Vec<Value> = (0..1001).map(|i| cart(&format!("c{i}"), t)).collect();
    let (status, too_many) = post(&server, &Value::Array(many));
    assert_eq!(status, 413, "{too_many}");
    let (status, empty) = post(&server, &json!([]));
    assert_eq!(status, 422, "{empty}");
    let db = rusqlite::Connection::open(dir.join("events/augur-events.sqlite")).expect("store");
    let stored: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        stored, 4,
        "two of the first batch, one more, the first `shop-9`"
    );
}

#[test]
fn a_cart_series_reminds_once_and_stops_at_an_order_or_an_unsubscribe() {
    let dir = setup();
    let server = Server::start(&dir, &[]);
    let t = t0();
    let setup_events = json!([
        contact("buyer", t - 3600),
        contact("leaver", t - 3600),
        contact("waiter", t - 3600),
        cart("buyer", t),
        cart("leaver", t),
        cart("waiter", t),
        // The same cart posted twice: one enrollment.
        cart("waiter", t),
    ]);
    let (status, answer) = post(&server, &setup_events);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicates"], 1);

    // Before the hour is up, nothing.
    tick(&dir, t + 1800);
    assert!(messages(&dir).is_empty());
    // An hour after the cart: one reminder each, outside the quiet hours.
    let out = tick(&dir, t + 3660);
    assert!(out.contains("queued 3"), "{out}");
    let first = messages(&dir);
    assert_eq!(first.len(), 3, "{first:?}");
    for (_, run_id, status, send_at) in &first {
        assert!(run_id.starts_with("cart-reminder-"), "{run_id}");
        assert_eq!(status, "queued");
        assert!(*send_at >= t + 3600, "after t + 1 h");
        let hour = (send_at.rem_euclid(86_400)) / 3600;
        assert!((8..21).contains(&hour), "outside 21:00-08:00 UTC: {hour}");
    }
    let bodies = bodies_of(&dir, "cart");
    assert!(
        bodies.values().all(|b| b.contains("your cart: P00001;")),
        "the reminder names the carted product: {bodies:?}"
    );
    // Then one buyer orders and one unsubscribes, between the two steps.
    let (status, _) = post(
        &server,
        &json!([
            {"type": "order", "contact_id": "buyer", "occurred_at": t + 2 * 3600, "product_id": "P00001",
             "order_id": "B-1", "quantity": 1, "unit_price": 12.5},
            {"type": "email", "contact_id": "leaver", "occurred_at": t + 3 * 3600, "event": "unsubscribe",
             "campaign_id": "cart"},
        ]),
    );
    assert_eq!(status, 202);
    let day_later = t + 28 * 3600;
    let out = tick(&dir, day_later);
    assert!(
        out.contains("ordered 1") && out.contains("unsubscribed 1"),
        "{out}"
    );
    let after = messages(&dir);
    let by_contact: BTreeMap<&str, Vec<&str>> =
        after
            .iter()
            .fold(BTreeMap::new(), |mut m, (c, run_id, _, _)| {
                m.entry(c.as_str()).or_default().push(run_id.as_str());
                m
            });
    assert_eq!(
        by_contact["buyer"].len(),
        1,
        "no second reminder after the order"
    );
    assert_eq!(
        by_contact["leaver"].len(),
        1,
        "no second reminder after the unsubscribe"
    );
    assert_eq!(
        by_contact["waiter"].len(),
        2,
        "the second reminder for the one who did neither"
    );
    assert!(by_contact["waiter"][1].starts_with("cart-second-"));

    // A tick again at the same instant changes nothing.
    tick(&dir, day_later);
    assert_eq!(messages(&dir), after);

    let out = run(dir.augur().args([
        "flows",
        "report",
        "--config",
        "serve.toml",
        "--flows",
        "flows",
        "--flow",
        "cart",
        "--out",
        "reports",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reports/flow-cart.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["entered"], 3);
    assert_eq!(report["completed"], 1);
    assert_eq!(report["exited"]["ordered"], 1);
    assert_eq!(report["exited"]["unsubscribed"], 1);
    assert_eq!(report["steps"][0]["planned"], 3);
    assert_eq!(report["steps"][1]["planned"], 1);
    assert_eq!(report["converted"], 1);
    assert_eq!(report["revenue"], 12.5);
}

#[test]
fn training_adds_posted_events_to_the_exports_and_counts_a_duplicate_once() {
    use std::sync::Arc;

    use arrow::array::{Float64Array, StringArray, TimestampSecondArray};
    use augur_data::LiveRow;

    let dir = Dir::new();
    let t = 1_790_000_000;
    crate::util::write_parquet(
        &dir.join("orders.parquet"),
        vec![
            ("order_id", Arc::new(StringArray::from(vec!["O1"])) as _),
            ("contact_id", Arc::new(StringArray::from(vec!["C1"])) as _),
            ("product_id", Arc::new(StringArray::from(vec!["P1"])) as _),
            (
                "ordered_at",
                Arc::new(TimestampSecondArray::from(vec![t]).with_timezone("UTC")) as _,
            ),
            ("quantity", Arc::new(Float64Array::from(vec![1.0])) as _),
            ("unit_price", Arc::new(Float64Array::from(vec![9.0])) as _),
        ],
    );
    let config =
        augur_data::Config::from_toml("[tables.orders]\npath = \"orders.parquet\"\n", dir.path())
            .expect("config");
    let line = |order: &str, contact: &str, at: i64| LiveRow::Order {
        contact_id: contact.into(),
        order_id: Some(order.into()),
        product_id: "P1".into(),
        at,
        quantity: 1.0,
        unit_price: 9.0,
    };
    let live = vec![
        // The exported line, posted live too: counted once.
        line("O1", "C1", t),
        line("O2", "C2", t + 60),
        LiveRow::Contact {
            contact_id: "C2".into(),
            email: Some("c2@shop.example".into()),
            first_name: None,
            country: Some("DE".into()),
            timezone: None,
            created_at: None,
            email_consent: Some(true),
        },
    ];
    let (history, report) = augur_data::load_with_live(&config, &live, None).expect("load");
    assert_eq!(history.orders.len(), 2, "{}", report.render_text());
    let c2 = history.contacts.ids.get("C2").expect("the live contact");
    assert_eq!(history.contacts.email_consent[c2 as usize], Some(true));
    assert_eq!(
        history.contacts.timezone[c2 as usize].name(),
        "Europe/Berlin",
        "the zone of its country"
    );
    assert!(
        history.orders.at.windows(2).all(|w| w[0] <= w[1]),
        "sorted in"
    );
}

/// Writes `flows/NAME.toml` with the test's sender and templates around `body`.
fn flow_file(dir: &Dir, name: &str, body: &str) {
    dir.write(
        &format!("flows/{name}.toml"),
        &format!(
            "{body}\n[sender]\nfrom = \"Shop <news@shop.example>\"\n[content]\nhtml = \"../templates/cart.html\"\ntext = \"../templates/cart.txt\"\n"
        ),
    );
}

/// Enrollments: (flow, contact, state, reason, step, next_at).
fn enrollments(dir: &Dir) -> Vec<(String, String, String, Option<String>, i64, i64)> {
    let db = rusqlite::Connection::open(dir.join("outbox/flows.sqlite")).expect("state");
    let mut stmt = db
        .prepare(
            "SELECT flow_id, contact_id, state, reason, step, next_at FROM enrollments ORDER BY id",
        )
        .expect("query");
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .expect("rows")
    .map(|r| r.expect("row"))
    .collect()
}

#[test]
fn a_post_purchase_step_waits_for_the_contacts_best_hour_as_the_service_gives_it() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    flow_file(
        &dir,
        "after",
        r#"id = "after"
[trigger]
event = "order"
[exit]
on_order = false
[schedule]
quiet = "21:00-08:00"
[[steps]]
name = "ten-days"
wait = "10d"
best_hour_within = "24h"
[[steps]]
name = "review"
send = { subject = "How is your order?" }"#,
    );
    let server = Server::start(&dir, &[]);
    let (status, preview) = server.post(
        "/v1/segments/preview",
        KEY,
        &json!({"rule": {"field": "send_time_source", "eq": "own"}, "sample": 1}).to_string(),
    );
    assert_eq!(status, 200, "{preview}");
    let contact = preview["sample"][0]["contact_id"]
        .as_str()
        .expect("a contact with its own send-time profile")
        .to_string();
    let t = t0();
    let order = json!([{"type": "order", "contact_id": contact, "occurred_at": t, "order_id": "R-1",
                        "product_id": "P00001", "quantity": 1, "unit_price": 20.0}]);
    assert_eq!(post(&server, &order).0, 202);
    tick(&dir, t + 60);
    let rows = enrollments(&dir);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (_, _, state, _, step, next_at) = &rows[0];
    assert_eq!(
        (state.as_str(), *step),
        ("active", 1),
        "waiting for the review"
    );
    let (status, best) = server.get_json(&format!(
        "/v1/contacts/{contact}/send-time?after={}&within=24h&quiet=21:00-08:00",
        rfc3339(t + 10 * 86_400).replace('+', "%2B")
    ));
    assert_eq!(status, 200, "{best}");
    let expected =
        chrono::DateTime::parse_from_rfc3339(best["best"]["send_at_utc"].as_str().expect("best"))
            .expect("instant")
            .timestamp();
    assert_eq!(
        *next_at, expected,
        "the series and the service agree on the best hour"
    );
}

#[test]
fn a_welcome_series_keeps_its_spacing_and_quiet_hours_across_a_daylight_saving_night() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    flow_file(
        &dir,
        "welcome",
        r#"id = "welcome"
[trigger]
event = "signup"
[entry]
reentry = "never"
[schedule]
quiet = "21:00-08:00"
[[steps]]
name = "hello"
send = { subject = "Welcome" }
[[steps]]
name = "two-days"
wait = "2d"
best_hour_within = "12h"
[[steps]]
name = "second"
send = { subject = "Bestsellers" }"#,
    );
    let server = Server::start(&dir, &[]);
    // Friday 2026-03-27 10:00 in Berlin; clocks go forward early on Sunday the 29th.
    let t = chrono::DateTime::parse_from_rfc3339("2026-03-27T09:00:00Z")
        .expect("instant")
        .timestamp();
    let mut signup = contact("newbie", t);
    signup["timezone"] = json!("Europe/Berlin");
    assert_eq!(post(&server, &json!([signup.clone()])).0, 202);
    tick(&dir, t + 30);
    let rows = enrollments(&dir);
    let next_at = rows[0].5;
    let berlin: augur_data::Tz = "Europe/Berlin".parse().expect("zone");
    let local = |s: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp(s, 0)
            .expect("instant")
            .with_timezone(&berlin)
    };
    assert!(
        (2 * 86_400..=2 * 86_400 + 12 * 3600).contains(&(next_at - (t + 30))),
        "two days after the first message, then the best hour within 12 h: {}",
        local(next_at)
    );
    let hour = chrono::Timelike::hour(&local(next_at));
    assert!(
        (8..21).contains(&hour),
        "outside the quiet hours, in summer time: {}",
        local(next_at)
    );
    tick(&dir, next_at);
    let sent = messages_of(&dir, "welcome");
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        sent[1].3, next_at,
        "the second message leaves at the chosen hour"
    );
    // The same signup again (a re-post, a consent toggled back on): no second welcome.
    let mut again = signup;
    again["occurred_at"] = json!(t + 86_400 * 5);
    assert_eq!(post(&server, &json!([again])).0, 202);
    let out = tick(&dir, next_at + 60);
    assert_eq!(messages_of(&dir, "welcome").len(), 2, "{out}");
}

#[test]
fn a_winback_stops_mailing_those_who_never_answer() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    flow_file(
        &dir,
        "winback",
        r#"id = "winback"
[trigger]
event = "session"
[[steps]]
name = "ask"
send = { subject = "Still interested?" }
[[steps]]
name = "a-week"
wait = "7d"
[[steps]]
name = "stop-if-silent"
sunset = true
[[steps]]
name = "thanks"
send = { subject = "Glad you are still here" }"#,
    );
    let server = Server::start(&dir, &[]);
    let t = t0() - 20 * 86_400;
    let visit =
        |id: &str| json!({"type": "web", "contact_id": id, "occurred_at": t, "event": "session"});
    assert_eq!(
        post(
            &server,
            &json!([
                contact("answers", t - 60),
                contact("silent", t - 60),
                visit("answers"),
                visit("silent")
            ])
        )
        .0,
        202
    );
    tick(&dir, t + 60);
    assert_eq!(messages_of(&dir, "winback").len(), 2);
    let click = json!([{"type": "email", "contact_id": "answers", "occurred_at": t + 86_400,
                        "event": "click", "campaign_id": "winback"}]);
    assert_eq!(post(&server, &click).0, 202);
    let out = tick(&dir, t + 8 * 86_400);
    assert!(out.contains("sunset 1"), "{out}");
    let sent = messages_of(&dir, "winback");
    assert_eq!(
        sent.iter().filter(|m| m.0 == "answers").count(),
        2,
        "{sent:?}"
    );
    assert_eq!(
        sent.iter().filter(|m| m.0 == "silent").count(),
        1,
        "{sent:?}"
    );
    // The silent contact is unsubscribed for everyone: a new visit starts nothing that mails it.
    let db = rusqlite::Connection::open(dir.join("events/augur-events.sqlite")).expect("store");
    let unsubscribed: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE contact_id = 'silent' AND kind = 'unsubscribe'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(unsubscribed, 1);
    let later = t + 9 * 86_400;
    assert_eq!(post(&server, &json!([{"type": "web", "contact_id": "silent", "occurred_at": later, "event": "session"}])).0, 202);
    let out = tick(&dir, later + 60);
    assert!(out.contains("unsubscribed 1"), "{out}");
    assert_eq!(
        messages_of(&dir, "winback")
            .iter()
            .filter(|m| m.0 == "silent")
            .count(),
        1
    );
}

#[test]
fn a_series_and_a_campaign_share_one_frequency_cap() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    flow_file(
        &dir,
        "capped",
        r#"id = "capped"
[trigger]
event = "add_to_cart"
[caps]
max_messages = 1
per_days = 7
[[steps]]
name = "reminder"
send = { subject = "Your cart" }"#,
    );
    let server = Server::start(&dir, &[]);
    let mailable = json!({"rule": {"all": [
        {"field": "email_consent", "eq": true},
        {"not": {"field": "unsubscribed", "eq": true}},
        {"not": {"field": "bounced", "eq": true}},
        {"not": {"field": "complained", "eq": true}}]}, "sample": 1});
    let (status, preview) = server.post("/v1/segments/preview", KEY, &mailable.to_string());
    assert_eq!(status, 200, "{preview}");
    let contact = preview["sample"][0]["contact_id"]
        .as_str()
        .expect("a mailable contact")
        .to_string();
    // A campaign message for the contact an hour ago uses the cap of one per week.
    dir.write(
        "c.toml",
        &format!(
            "id = \"weekly\"\n[audience]\nrule = {{ field = \"contact_id\", eq = \"{contact}\" }}\n\
             [schedule]\nper_contact = false\n[sender]\nfrom = \"Shop <news@shop.example>\"\n\
             [content]\nhtml = \"templates/cart.html\"\ntext = \"templates/cart.txt\"\n\
             [[variants]]\nname = \"a\"\nsubject = \"This week\"\n"
        ),
    );
    let now = chrono::Utc::now().timestamp();
    let out = run(dir.augur().args([
        "campaign",
        "plan",
        "--config",
        "serve.toml",
        "--models",
        "models",
        "--campaign",
        "c.toml",
        "--at",
        &rfc3339(now - 3600),
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("messages 1"), "{}", stdout(&out));
    assert_eq!(post(&server, &json!([cart(&contact, now - 1800)])).0, 202);
    let out = tick(&dir, now);
    assert!(out.contains("frequency_cap 1"), "{out}");
    let rows = messages_of(&dir, "capped");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].2, "suppressed",
        "the series' message is held back by the campaign's"
    );
}

#[test]
fn a_tick_killed_midway_resumes_without_a_second_or_a_lost_message() {
    let dir = setup();
    let server = Server::start(&dir, &[]);
    let t = t0();
    let n = 4000;
    for start in (0..n).step_by(250) {
        let batch: Vec<Value> = (start..start + 250)
            .flat_map(|i| {
                let id = format!("k{i}");
                [contact(&id, t - 60), cart(&id, t)]
            })
            .collect();
        assert_eq!(post(&server, &Value::Array(batch)).0, 202);
    }
    let args = tick_args(t + 3660);
    // Killed again and again at later and later points (reading triggers, entering, storing
    // messages, saving steps); each run takes over where the last one stopped.
    let mut killed_with_work_left = 0;
    for delay in [200, 400, 600, 800, 1000, 1300] {
        let mut child = dir
            .augur()
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let finished = child.try_wait().expect("status").is_some();
        child.kill().ok();
        child.wait().expect("reaped");
        killed_with_work_left += usize::from(!finished && messages(&dir).len() < n);
    }
    eprintln!("runs killed with reminders still to queue: {killed_with_work_left}");
    let out = run(dir.augur().args(&args));
    assert_eq!(out.status.code(), Some(0));
    let sent = messages(&dir);
    let mut contacts: Vec<&str> = sent.iter().map(|m| m.0.as_str()).collect();
    contacts.sort_unstable();
    contacts.dedup();
    assert_eq!(
        contacts.len(),
        sent.len(),
        "no contact got the reminder twice"
    );
    assert_eq!(sent.len(), n, "every cart got its reminder");
    let waiting: Vec<_> = enrollments(&dir)
        .into_iter()
        // Past the reminder (step 0) and into the day's wait (step 1): at the second reminder.
        .filter(|e| e.2 != "active" || e.4 != 2)
        .collect();
    assert!(
        waiting.is_empty(),
        "every enrollment moved past its reminder: {:?}",
        &waiting[..waiting.len().min(3)]
    );
}

#[test]
fn a_contact_lookup_shows_what_was_posted_since_the_model_at_once() {
    let dir = setup();
    let server = Server::start(&dir, &[]);
    let (_, preview) = server.post(
        "/v1/segments/preview",
        KEY,
        &json!({"rule": {"all": [{"field": "orders", "gte": 1}, {"field": "churn_risk", "gte": 0.5}]}, "sample": 2}).to_string(),
    );
    let sample = |i: usize| {
        preview["sample"][i]["contact_id"]
            .as_str()
            .unwrap_or_else(|| panic!("two buyers at risk: {preview}"))
            .to_string()
    };
    let (contact, browser) = (sample(0), sample(1));
    let (status, before) = server.get_json(&format!("/v1/contacts/{contact}"));
    assert_eq!(status, 200);
    assert!(before.get("live").is_none(), "nothing posted yet: {before}");
    assert_eq!(before["churn"]["source"], "model");
    let (_, browsed_before) = server.get_json(&format!("/v1/contacts/{browser}"));
    let recommended = |answer: &Value| -> Vec<String> {
        answer["recommendations"]
            .as_array()
            .expect("recommendations")
            .iter()
            .filter_map(|r| r["product_id"].as_str().map(str::to_string))
            .collect()
    };
    let first = recommended(&before);
    let bought = first.first().expect("a recommendation").clone();
    let now = chrono::Utc::now().timestamp();
    let events = json!([
        {"type": "web", "contact_id": contact, "occurred_at": now - 120, "event": "add_to_cart", "product_id": bought},
        {"type": "web", "contact_id": contact, "occurred_at": now - 110, "event": "add_to_cart", "product_id": "P00002"},
        {"type": "order", "contact_id": contact, "occurred_at": now - 60, "order_id": "LIVE-1",
         "product_id": bought, "quantity": 2, "unit_price": 4.5},
    ]);
    assert_eq!(post(&server, &events).0, 202);
    let (_, after) = server.get_json(&format!("/v1/contacts/{contact}"));
    let live = &after["live"];
    assert_eq!(live["events"], 3, "{after}");
    assert_eq!(live["orders"], 1);
    assert_eq!(live["revenue"], 9.0);
    assert_eq!(live["bought"], json!([bought]));
    assert_eq!(
        live["cart"],
        json!(["P00002"]),
        "the bought product left the cart"
    );
    assert!(live["last_order_at"].as_str().is_some());
    assert!(
        !recommended(&after).contains(&bought),
        "what was just bought is not recommended again"
    );
    // The order re-scores the churn risk at once: lower, and no longer explained by a silence.
    let risk = |answer: &Value| answer["churn"]["risk"].as_f64().expect("a risk");
    assert_eq!(after["churn"]["source"], "live", "{after}");
    assert!(
        risk(&after) < risk(&before) - 0.05,
        "an order lowers the risk: {} → {}",
        risk(&before),
        risk(&after)
    );
    let said = after["churn"]["explanations"].to_string();
    assert!(!said.contains("no order"), "{said}");
    // A cart and a return (its id padded, as exports often are) move nothing the churn model
    // reads from orders: the model's risk stays, and a return buys nothing.
    let cart_only = json!([
        {"type": "web", "contact_id": browser, "occurred_at": now - 30, "event": "add_to_cart", "product_id": "P00003"},
        {"type": "order", "contact_id": format!("  {browser}\t"), "occurred_at": now - 20, "product_id": "P00004",
         "quantity": -1, "unit_price": 3.0},
    ]);
    assert_eq!(post(&server, &cart_only).0, 202);
    let (_, browsed) = server.get_json(&format!("/v1/contacts/{browser}"));
    assert_eq!(browsed["live"]["events"], 2, "{browsed}");
    assert_eq!(browsed["live"]["bought"], json!([]), "{browsed}");
    assert_eq!(browsed["live"]["revenue"], -3.0, "{browsed}");
    assert_eq!(browsed["churn"], browsed_before["churn"]);
}

/// The contacts a flow entered, in the state.
fn entered(dir: &Dir, flow: &str) -> BTreeSet<String> {
    enrollments(dir)
        .into_iter()
        .filter(|e| e.0 == flow)
        .map(|e| e.1)
        .collect()
}

#[test]
fn birthdays_start_a_series_once_a_year_and_missed_days_are_caught_up() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    flow_file(
        &dir,
        "birthday",
        r#"id = "birthday"
[trigger]
date = "attribute.birthday"
[[steps]]
name = "wishes"
send = { subject = "Happy birthday, {{ first_name }}" }"#,
    );
    // Who has a birthday on which day, from the contacts export itself.
    let mut by_day: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for batch in crate::util::read_parquet(&dir.join("demo/contacts.parquet")) {
        let ids = crate::util::col(&batch, "contact_id")
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("ids")
            .clone();
        let days = crate::util::col(&batch, "birthday")
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("birthdays")
            .clone();
        for (id, day) in ids.iter().zip(days.iter()) {
            if let (Some(id), Some(day)) = (id, day) {
                by_day
                    .entry(day[5..].to_string())
                    .or_default()
                    .insert(id.to_string());
            }
        }
    }
    // The day of 2025 with the most birthdays (not in the year's last days, so that the days
    // after it are in the same year), at noon UTC.
    let (first_day, first) = by_day
        .iter()
        .filter(|(d, _)| d.as_str() < "12-25")
        .max_by_key(|(_, c)| c.len())
        .map(|(d, c)| (d.clone(), c.clone()))
        .expect("birthdays in the demo");
    let noon = |offset: i64| {
        chrono::NaiveDate::parse_from_str(&format!("2025-{first_day}"), "%Y-%m-%d")
            .expect("a day")
            .and_hms_opt(12, 0, 0)
            .expect("noon")
            .and_utc()
            .timestamp()
            + offset * 86_400
    };
    let out = tick(&dir, noon(0));
    assert_eq!(entered(&dir, "birthday"), first, "{out}");
    let mailed: BTreeSet<String> = messages_of(&dir, "birthday")
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert!(!mailed.is_empty() && mailed.is_subset(&first), "{mailed:?}");
    // The same day again: nobody a second time.
    tick(&dir, noon(0) + 3600);
    assert_eq!(entered(&dir, "birthday"), first);
    // Three days later: the two days in between are caught up.
    tick(&dir, noon(3));
    let mut expected = first.clone();
    for offset in 1..=3 {
        let d = chrono::DateTime::from_timestamp(noon(offset), 0)
            .expect("instant")
            .format("%m-%d")
            .to_string();
        expected.extend(by_day.get(&d).cloned().unwrap_or_default());
    }
    assert!(expected.len() > first.len());
    assert_eq!(entered(&dir, "birthday"), expected);
    // A column of numbers is no date: the tick stops and says which flow and what to map.
    flow_file(
        &dir,
        "born",
        "id = \"born\"\n[trigger]\ndate = \"attribute.birth_year\"\n[[steps]]\nname = \"hi\"\nsend = { subject = \"Hi\" }",
    );
    let out = run(dir.augur().args(tick_args(noon(4))));
    assert_ne!(out.status.code(), Some(0));
    let err = crate::util::stderr(&out);
    assert!(
        err.contains("born.toml") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
}

#[test]
fn a_segment_entered_between_two_models_starts_a_series_for_the_newcomers_only() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    flow_file(
        &dir,
        "risk",
        r#"id = "risk"
[trigger]
segment = "at_risk"
[[steps]]
name = "miss-you"
send = { subject = "We miss you" }"#,
    );
    // An older model of the same exports, 60 days before the fixture's.
    let version = std::fs::read_to_string(dir.join("models/current")).expect("current");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.join("models")
                .join(version.trim())
                .join("manifest.json"),
        )
        .expect("manifest"),
    )
    .expect("json");
    let as_of = manifest["as_of_seconds"].as_i64().expect("as of");
    let out = run(dir.augur().args([
        "train",
        "--config",
        "demo/augur.toml",
        "--as-of",
        &rfc3339(as_of - 60 * 86_400),
        "--models",
        "old",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::stderr(&out));
    let at = t0();
    tick_with(&dir, at, "old");
    assert!(
        entered(&dir, "risk").is_empty(),
        "the first model seen is the baseline"
    );
    let state = rusqlite::Connection::open(dir.join("outbox/flows.sqlite")).expect("state");
    let before: BTreeSet<String> = state
        .prepare("SELECT contact_id FROM members WHERE flow_id = 'risk'")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    assert!(!before.is_empty());
    tick_with(&dir, at + 60, "models");
    let server = Server::start(&dir, &[]);
    let (status, body) = server.get("/v1/segments/at_risk/contacts?format=jsonl", Some(KEY));
    assert_eq!(status, 200, "{body}");
    let now: BTreeSet<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json line")["contact_id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    let newcomers: BTreeSet<String> = now.difference(&before).cloned().collect();
    assert!(
        !newcomers.is_empty(),
        "the newer model has contacts newly at risk"
    );
    assert_eq!(entered(&dir, "risk"), newcomers);
    // The same model again: no one enters twice.
    tick_with(&dir, at + 120, "models");
    assert_eq!(entered(&dir, "risk"), newcomers);
    // A segment that does not exist stops the tick, naming the file.
    flow_file(
        &dir,
        "typo",
        "id = \"typo\"\n[trigger]\nsegment = \"at_rsik\"\n[[steps]]\nname = \"hi\"\nsend = { subject = \"Hi\" }",
    );
    let out = run(dir.augur().args(tick_args(at + 180)));
    assert_ne!(out.status.code(), Some(0));
    let err = crate::util::stderr(&out);
    assert!(
        err.contains("typo.toml") && err.contains("at_rsik"),
        "{err}"
    );
}

/// Rewrites the demo's products export as its rows plus `extra` (id, price, in stock).
fn products_with(dir: &Dir, original: &[arrow::array::RecordBatch], extra: &[(&str, f64, bool)]) {
    use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, StringArray};
    use std::sync::Arc;
    let mut ids: Vec<String> = Vec::new();
    let mut prices: Vec<Option<f64>> = Vec::new();
    let mut stock: Vec<Option<bool>> = Vec::new();
    for batch in original {
        let id = crate::util::col(batch, "product_id")
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("ids");
        let price = crate::util::col(batch, "price")
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("prices");
        let in_stock = crate::util::col(batch, "in_stock")
            .as_any()
            .downcast_ref::<BooleanArray>()
            .expect("stock");
        for i in 0..batch.num_rows() {
            ids.push(id.value(i).to_string());
            prices.push((!price.is_null(i)).then(|| price.value(i)));
            stock.push((!in_stock.is_null(i)).then(|| in_stock.value(i)));
        }
    }
    for (id, price, in_stock) in extra {
        ids.push((*id).to_string());
        prices.push(Some(*price));
        stock.push(Some(*in_stock));
    }
    let names: Vec<String> = ids.iter().map(|id| format!("Item {id}")).collect();
    crate::util::write_parquet(
        &dir.join("demo/products.parquet"),
        vec![
            ("product_id", Arc::new(StringArray::from(ids)) as ArrayRef),
            ("name", Arc::new(StringArray::from(names))),
            ("price", Arc::new(Float64Array::from(prices))),
            ("in_stock", Arc::new(BooleanArray::from(stock))),
        ],
    );
}

/// The rendered HTML of a flow's messages, by contact.
fn bodies_of(dir: &Dir, flow: &str) -> BTreeMap<String, String> {
    let db = rusqlite::Connection::open(dir.join("outbox/augur.sqlite")).expect("outbox");
    let mut stmt = db
        .prepare(
            "SELECT contact_id, html FROM messages WHERE campaign_id = ?1 AND status = 'queued'",
        )
        .expect("query");
    stmt.query_map([flow], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

#[test]
fn a_product_back_in_stock_or_cheaper_starts_a_series_for_those_who_viewed_it_lately() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    dir.write(
        "templates/product.html",
        "<p>{{ trigger_product.name }} now {{ trigger_product.price }}{% if trigger_product.previous_price %}, was {{ trigger_product.previous_price }}{% endif %}</p>",
    );
    for (id, change) in [
        ("restock", "product = \"back_in_stock\""),
        (
            "sale",
            "product = \"price_drop\"\nmin_drop = 0.2\nviewed_within = \"7d\"",
        ),
    ] {
        dir.write(
            &format!("flows/{id}.toml"),
            &format!(
                "id = \"{id}\"\n[trigger]\n{change}\n[sender]\nfrom = \"Shop <news@shop.example>\"\n\
                 [content]\nhtml = \"../templates/product.html\"\ntext = \"../templates/cart.txt\"\n\
                 [[steps]]\nname = \"news\"\nsend = {{ subject = \"Good news\" }}\n"
            ),
        );
    }
    let original = crate::util::read_parquet(&dir.join("demo/products.parquet"));
    let at = t0();
    let day = 86_400;
    let server = Server::start(&dir, &[]);
    let view = |id: &str, product: &str, t: i64, event: &str| json!({"type": "web", "contact_id": id, "occurred_at": t, "event": event, "product_id": product});
    let order = |id: &str, product: &str, t: i64| {
        json!({"type": "order", "contact_id": id, "occurred_at": t, "order_id": format!("O-{id}"),
               "product_id": product, "quantity": 1, "unit_price": 20.0})
    };
    let events = json!([
        contact("PA", at - 60 * day),
        contact("PB", at - 60 * day),
        contact("PC", at - 60 * day),
        contact("PD", at - 60 * day),
        contact("PE", at - 60 * day),
        view("PA", "P-BACK", at - 2 * day, "view"),
        view("PA", "P-BACK2", at - day, "view"),
        view("PB", "P-BACK", at - 40 * day, "add_to_cart"),
        view("PC", "P-BACK", at - 3 * day, "view"),
        order("PC", "P-BACK", at - day),
        view("PD", "P-SALE", at - day, "add_to_cart"),
        view("PE", "P-SALE", at - 20 * day, "view"),
    ]);
    let (status, body) = post(&server, &events);
    assert_eq!(status, 202, "{body}");
    drop(server);
    // The first scan is the baseline: P-BACK and P-BACK2 out of stock, P-SALE at 50.
    products_with(
        &dir,
        &original,
        &[
            ("P-BACK", 20.0, false),
            ("P-BACK2", 20.0, false),
            ("P-SALE", 50.0, true),
        ],
    );
    let out = tick(&dir, at - 3600);
    assert!(entered(&dir, "restock").is_empty(), "{out}");
    // Both back in stock; 10 % off is less than the sale flow's 20 %.
    products_with(
        &dir,
        &original,
        &[
            ("P-BACK", 20.0, true),
            ("P-BACK2", 20.0, true),
            ("P-SALE", 45.0, true),
        ],
    );
    let out = tick(&dir, at);
    assert_eq!(
        entered(&dir, "restock"),
        BTreeSet::from(["PA".to_string()]),
        "PB carted it too long ago, PC bought it since: {out}"
    );
    assert!(entered(&dir, "sale").is_empty(), "{out}");
    // Two of PA's products came back in the same tick: one series, one message.
    let rows: Vec<(String, Option<String>)> = enrollments(&dir)
        .into_iter()
        .filter(|e| e.0 == "restock")
        .map(|e| (e.2, e.3))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r.0 == "skipped").count(),
        1,
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.1.as_deref() == Some("already_in_flow")),
        "{rows:?}"
    );
    assert_eq!(queued(&dir, "restock"), 1);
    let bodies = bodies_of(&dir, "restock");
    assert!(bodies["PA"].contains(" now 20.0"), "{bodies:?}");
    // 45 → 35 is 22 % off: the sale flow fires for the recent cart only (PE viewed 20 days ago).
    products_with(
        &dir,
        &original,
        &[("P-BACK", 20.0, true), ("P-SALE", 35.0, true)],
    );
    tick(&dir, at + 60);
    assert_eq!(entered(&dir, "sale"), BTreeSet::from(["PD".to_string()]));
    assert_eq!(queued(&dir, "sale"), 1);
    let bodies = bodies_of(&dir, "sale");
    assert!(
        bodies["PD"].contains("Item P-SALE now 35.0, was 45.0"),
        "{bodies:?}"
    );
    // An unchanged catalog fires nothing again.
    let before = enrollments(&dir).len();
    tick(&dir, at + 120);
    assert_eq!(enrollments(&dir).len(), before);
    assert_eq!(queued(&dir, "restock") + queued(&dir, "sale"), 2);
}

/// Messages of `flow` in the outbox, one row each.
fn queued(dir: &Dir, flow: &str) -> usize {
    let db = rusqlite::Connection::open(dir.join("outbox/augur.sqlite")).expect("outbox");
    db.query_row(
        "SELECT COUNT(*) FROM messages WHERE campaign_id = ?1",
        [flow],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

#[test]
fn an_entry_rule_or_segment_admits_only_the_contacts_in_it() {
    let dir = setup();
    std::fs::remove_file(dir.join("flows/cart.toml")).expect("one flow only");
    for (id, entry) in [
        ("loyal", "rule = { field = \"orders\", gte = 3 }"),
        ("risky", "segment = \"at_risk\""),
    ] {
        flow_file(
            &dir,
            id,
            &format!(
                "id = \"{id}\"\n[trigger]\nevent = \"add_to_cart\"\n[entry]\n{entry}\nholdout = 0.0\n\
                 [[steps]]\nname = \"one\"\nsend = {{ subject = \"Hello\" }}"
            ),
        );
    }
    let server = Server::start(&dir, &[]);
    let sample = |rule: Value| -> Vec<String> {
        let (_, preview) = server.post(
            "/v1/segments/preview",
            KEY,
            &json!({"rule": rule, "sample": 4}).to_string(),
        );
        let ids: Vec<String> = preview["sample"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["contact_id"].as_str().map(str::to_string))
            .collect();
        assert_eq!(ids.len(), 4, "{preview}");
        ids
    };
    let loyal = sample(json!({"field": "orders", "gte": 3}));
    let few = sample(json!({"field": "orders", "lt": 3}));
    let at_risk = |id: &str| {
        let (_, answer) = server.get_json(&format!("/v1/contacts/{id}"));
        answer["segments"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == "at_risk"))
    };
    let everyone: Vec<String> = loyal
        .iter()
        .chain(&few)
        .cloned()
        .chain(["stranger".to_string()])
        .collect();
    let risky: BTreeSet<String> = everyone.iter().filter(|c| at_risk(c)).cloned().collect();
    assert!(
        !risky.is_empty() && risky.len() < loyal.len() + few.len(),
        "the sample holds contacts in and out of at_risk: {risky:?} of {everyone:?}"
    );
    let t = t0();
    let carts: Vec<Value> = everyone.iter().map(|c| cart(c, t)).collect();
    assert_eq!(post(&server, &json!(carts)).0, 202);
    drop(server);
    tick(&dir, t + 60);
    let rows = enrollments(&dir);
    let admitted = |flow: &str| -> BTreeSet<String> {
        rows.iter()
            .filter(|r| r.0 == flow && r.3.as_deref() != Some("entry_rule"))
            .map(|r| r.1.clone())
            .collect()
    };
    let refused = rows
        .iter()
        .filter(|r| r.3.as_deref() == Some("entry_rule"))
        .count();
    assert_eq!(
        admitted("loyal"),
        loyal.iter().cloned().collect(),
        "{rows:?}"
    );
    assert_eq!(admitted("risky"), risky, "{rows:?}");
    assert_eq!(
        refused,
        2 * everyone.len() - loyal.len() - risky.len(),
        "every other trigger is refused by the rule, the stranger by both: {rows:?}"
    );
}

#[test]
fn a_flow_naming_an_unknown_field_or_segment_is_refused_at_start_naming_its_file() {
    let dir = setup();
    for (entry, says) in [
        (
            "rule = { field = \"ordres\", gte = 3 }",
            "[entry] rule: unknown field `ordres`; did you mean `orders`?",
        ),
        (
            "segment = \"at_rsik\"",
            "[entry] segment `at_rsik` is neither built in nor configured in [segments]; segments: ",
        ),
    ] {
        flow_file(
            &dir,
            "typo",
            &format!(
                "id = \"typo\"\n[trigger]\nevent = \"add_to_cart\"\n[entry]\n{entry}\n\
                 [[steps]]\nname = \"one\"\nsend = {{ subject = \"Hello\" }}"
            ),
        );
        let out = run(dir.augur().args(tick_args_with(t0(), "models")));
        let err = crate::util::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "a configuration error: {err}");
        assert!(err.contains("typo.toml") && err.contains(says), "{err}");
        // Refused before anything ran: no state was even created.
        assert!(!dir.join("outbox/flows.sqlite").exists(), "{err}");
    }
}

#[test]
fn two_flows_runs_on_one_state_take_turns_and_report_what_each_did() {
    let dir = setup();
    let server = Server::start(&dir, &[]);
    let t = t0();
    let n = 1500;
    for start in (0..n).step_by(250) {
        let batch: Vec<Value> = (start..start + 250)
            .flat_map(|i| {
                let id = format!("p{i}");
                [contact(&id, t - 60), cart(&id, t)]
            })
            .collect();
        assert_eq!(post(&server, &Value::Array(batch)).0, 202);
    }
    drop(server);
    let args = tick_args(t + 3660);
    let spawn = || {
        dir.augur()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let outputs = [a, b].map(|child| child.wait_with_output().expect("output"));
    let count = |out: &str, word: &str| -> usize {
        out.split(&format!("{word} "))
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(0)
    };
    let mut queued = 0;
    let mut entered = 0;
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", crate::util::stderr(out));
        let text = String::from_utf8_lossy(&out.stdout);
        queued += count(&text, "queued");
        entered += count(&text, "entered");
    }
    assert_eq!(entered, n, "each cart entered once, by one of the two");
    assert_eq!(
        queued,
        messages(&dir).len(),
        "each message counted by the run that queued it"
    );
    assert_eq!(queued, n);
}
