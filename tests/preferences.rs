//! The contacts' own controls through the real binary: hosted RFC 8058 one-click links taken
//! from messages delivered to a real SMTP server, the preference page over real HTTP (and in a
//! real browser), choices that later plans and sends obey, and erasure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow::array::Array as _;
use serde_json::Value;

use crate::campaign::{accepted, augur_ok, contacts, dry_run, edit_config, setup, smtp_server};
use crate::serve::{ADMIN, KEY, Server};
use crate::util::Dir;

const PREFERENCES: &str = "[preferences]\npublic_url = \"https://mail.shop.example\"\n\
    topics = [{ id = \"offers\", name = \"Offers and discounts\" }, { id = \"news\", name = \"News from the shop\" }]\n";

/// The campaign test directory with hosted links: `c.toml` has the topic `offers`; `serve.toml`
/// is the same configuration, for `augur serve`.
fn hosted(port: u16) -> crate::util::Dir {
    let dir = setup(Some(port), "", PREFERENCES);
    let campaign = std::fs::read_to_string(dir.join("c.toml")).expect("campaign");
    dir.write(
        "c.toml",
        &campaign.replacen("id = \"now\"\n", "id = \"now\"\ntopic = \"offers\"\n", 1),
    );
    edit_config(
        &dir,
        "unsubscribe_url = \"https://shop.example/unsubscribe\"\n",
        "",
    );
    let config = std::fs::read_to_string(dir.join("augur.toml")).expect("config");
    dir.write("serve.toml", &config);
    dir
}

/// The one-click link of each delivered message, by recipient address.
fn links(received: &[crate::smtp::Received]) -> HashMap<String, String> {
    received
        .iter()
        .map(|r| {
            let header = r.header("List-Unsubscribe").expect("List-Unsubscribe");
            assert_eq!(
                r.header("List-Unsubscribe-Post").as_deref(),
                Some("List-Unsubscribe=One-Click"),
                "RFC 8058 needs List-Unsubscribe-Post beside an https link"
            );
            let url = header
                .split(['<', '>'])
                .find(|p| p.starts_with("https://mail.shop.example/u/"))
                .unwrap_or_else(|| panic!("no hosted link in {header}"));
            (r.to[0].clone(), url.to_string())
        })
        .collect()
}

/// The path (`/u/<token>`) of a hosted link.
fn path_of(url: &str) -> String {
    url.trim_start_matches("https://mail.shop.example")
        .to_string()
}

fn post_form(server: &Server, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let mut response = server
        .agent
        .post(format!("{}{path}", server.base))
        .header("Content-Type", content_type)
        .send(body)
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().expect("body"))
}

/// The hidden form field of a preference page.
fn form_tag(page: &str) -> String {
    page.split("name=\"form\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form tag on the page")
        .to_string()
}

/// Plans campaign file `file` (its id replaced by `id`, its topic by `topic`) and sends what is
/// due; returns the addresses that got a message.
fn plan_and_send(
    dir: &Dir,
    log: &std::sync::Arc<std::sync::Mutex<crate::smtp::Log>>,
    id: &str,
    topic: &str,
) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("c.toml")).expect("campaign");
    let text = text
        .replacen("id = \"now\"", &format!("id = \"{id}\""), 1)
        .replacen("topic = \"offers\"", &format!("topic = \"{topic}\""), 1);
    dir.write(&format!("{id}.toml"), &text);
    let before = accepted(log).len();
    augur_ok(
        dir,
        &["campaign", "plan", "--campaign", &format!("{id}.toml")],
    );
    augur_ok(dir, &["campaign", "send"]);
    accepted(log)[before..]
        .iter()
        .map(|r| r.to[0].clone())
        .collect()
}

#[test]
fn one_click_and_the_preference_page_stop_what_they_name_and_erasure_forgets() {
    let (port, log) = smtp_server();
    let dir = hosted(port);
    augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    augur_ok(&dir, &["campaign", "send"]);
    let links = links(&accepted(&log));
    assert!(links.len() > 50, "{} delivered", links.len());
    let by_email: HashMap<String, String> = contacts(&dir)
        .into_iter()
        .map(|(id, (email, _))| (email, id))
        .collect();
    let mut people: Vec<(&String, &String)> = links.iter().collect();
    people.sort();
    let [a, b, c, d, e, f, g] = [0, 1, 2, 3, 4, 5, 6].map(|i| people[i]);

    let server = Server::start(&dir, &[]);
    // RFC 8058 one-click, form-urlencoded and multipart; twice is harmless.
    let one_click = "List-Unsubscribe=One-Click";
    let form = "application/x-www-form-urlencoded";
    for _ in 0..2 {
        let (status, body) = post_form(&server, &path_of(a.1), form, one_click);
        assert_eq!(status, 200, "{body}");
    }
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let (status, _) = post_form(
        &server,
        &path_of(b.1),
        &format!("multipart/form-data; boundary={boundary}"),
        &multipart,
    );
    assert_eq!(status, 200);

    // The page: offers off for c, a pause for d, at most one a month for e.
    let choose = |who: &(&String, &String), fields: &str| {
        let (status, page) = server.get(&path_of(who.1), None);
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Offers and discounts") && !page.contains(who.0.as_str()));
        let body = format!("form={}&action=save&{fields}", form_tag(&page));
        let (status, saved) = post_form(&server, &path_of(who.1), form, &body);
        assert_eq!(status, 200, "{saved}");
        assert!(saved.contains("Your choices are saved"), "{saved}");
    };
    choose(&c, "topic=news&frequency=any");
    choose(&d, "topic=news&topic=offers&frequency=any&pause=on");
    choose(&e, "topic=news&topic=offers&frequency=monthly");
    // A form without this page's tag changes nothing.
    let (status, _) = post_form(&server, &path_of(f.1), form, "form=forged&topic=news");
    assert_eq!(status, 403);

    // A tampered token and an expired one: the same neutral page, nothing changed.
    let tampered = path_of(f.1).replacen("/u/local.", "/u/local.x", 1);
    let (status, neutral) = server.get(&tampered, None);
    assert_eq!(status, 404);
    assert!(neutral.contains("This link does not work"), "{neutral}");
    let (status, _) = post_form(&server, &tampered, form, one_click);
    assert_eq!(status, 404);
    // A `mailto:` reply, posted as an event, is an unsubscribe in the preference store too.
    let g_id = &by_email[g.0.as_str()];
    let event = serde_json::json!({"events": [{"type": "email", "contact_id": g_id,
        "occurred_at": chrono::Utc::now().to_rfc3339(), "event": "unsubscribe"}]});
    let (status, _) = server.post("/v1/events", KEY, &event.to_string());
    assert_eq!(status, 202);
    let (_, export) = server.get(&format!("/v1/contacts/{g_id}/export"), Some(ADMIN));
    let export: Value = serde_json::from_str(&export).expect("json");
    assert!(
        export["preferences"]["current"]["unsubscribed_at"].is_i64(),
        "{export}"
    );
    assert_eq!(export["preferences"]["history"][0]["source"], "event");

    // Data-subject export (admin only), then erasure of f.
    let f_id = &by_email[f.0.as_str()];
    let (status, _) = server.get(&format!("/v1/contacts/{f_id}/export"), Some(KEY));
    assert_eq!(status, 403, "an API key is not enough for an export");
    let (status, export) = server.get(&format!("/v1/contacts/{f_id}/export"), Some(ADMIN));
    assert_eq!(status, 200, "{export}");
    let export: Value = serde_json::from_str(&export).expect("json");
    assert!(export["predictions"]["churn"].is_object(), "{export}");
    assert_eq!(export["messages"].as_array().map(Vec::len), Some(1));
    let sizes = |server: &Server| -> BTreeMap<String, u64> {
        let (status, body) = server.get("/v1/segments", Some(KEY));
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).expect("json");
        list["segments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or("").to_string(),
                    s["contacts"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let (_, answer) = server.get(&format!("/v1/contacts/{f_id}"), Some(KEY));
    let answer: Value = serde_json::from_str(&answer).expect("json");
    let member: BTreeSet<String> = answer["segments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    assert!(!member.is_empty(), "f is in a segment: {answer}");
    let before = sizes(&server);
    let deleted = server
        .agent
        .delete(format!("{}/v1/contacts/{f_id}", server.base))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .call()
        .expect("DELETE");
    assert_eq!(deleted.status().as_u16(), 200);
    for route in ["", "/recommendations", "/send-time", "/export"] {
        let (status, _) = server.get(&format!("/v1/contacts/{f_id}{route}"), Some(ADMIN));
        assert_eq!(status, 404, "{route} still answers for an erased contact");
    }
    let (status, _) = server.get(&path_of(f.1), None);
    assert_eq!(status, 404, "an erased contact's page is the neutral one");
    // The catalogue counts what the listings show: f no more.
    let expected: BTreeMap<String, u64> = before
        .into_iter()
        .map(|(name, n)| {
            let gone = u64::from(member.contains(&name));
            (name, n - gone)
        })
        .collect();
    assert_eq!(sizes(&server), expected);
    drop(server);
    // Links older than `link_days` get the neutral page too.
    let strict = Server::start(&dir, &[("AUGUR_PREFERENCES__LINK_DAYS", "0.00001")]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (status, expired) = strict.get(&path_of(e.1), None);
    assert_eq!((status, expired), (404, neutral));
    drop(strict);

    // A later campaign of each topic obeys every choice; the old exports still list f.
    let offers = plan_and_send(&dir, &log, "offers2", "offers");
    let news = plan_and_send(&dir, &log, "news2", "news");
    for (who, why) in [
        (a, "one-click"),
        (b, "multipart one-click"),
        (d, "pause"),
        (g, "mailto"),
    ] {
        assert!(!offers.contains(who.0) && !news.contains(who.0), "{why}");
    }
    assert!(!offers.contains(c.0) && news.contains(c.0), "topic opt-out");
    assert!(!offers.contains(e.0) && !news.contains(e.0), "monthly");
    assert!(!offers.contains(f.0) && !news.contains(f.0), "erased");
    assert!(offers.len() > 50, "everyone else still gets offers");

    // Nothing new is stored about an erased contact.
    let server = Server::start(&dir, &[]);
    let event = serde_json::json!({"events": [{"type": "web", "contact_id": f_id,
        "occurred_at": chrono::Utc::now().to_rfc3339(), "event": "view"}]});
    let (status, answer) = server.post("/v1/events", KEY, &event.to_string());
    assert_eq!(
        (status, answer["stored"].as_u64()),
        (207, Some(0)),
        "{answer}"
    );
    // Tokens that do not verify are rate-limited per address; valid one-click posts are not
    // (mail providers post them for everyone from a few addresses).
    drop(server);
    let limited = Server::start(&dir, &[("AUGUR_PREFERENCES__REQUESTS_PER_MINUTE", "3")]);
    for _ in 0..5 {
        let (status, _) = post_form(&limited, &path_of(c.1), form, one_click);
        assert_eq!(status, 200);
    }
    let statuses: Vec<u16> = (0..5).map(|_| limited.get(&tampered, None).0).collect();
    assert_eq!(statuses, [404, 404, 404, 429, 429]);
    drop(limited);

    // The pause ends after 30 days; the erasure never does.
    let later = (chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339();
    let (_, rows) = dry_run(&dir, "later", &["--at", &later]);
    let status_of = |email: &str| {
        let id = &by_email[email];
        rows.iter()
            .find(|r| &r.contact == id)
            .map(|r| (r.status.clone(), r.reason.clone()))
    };
    assert!(
        matches!(
            status_of(d.0).expect("d planned").0.as_str(),
            "queued" | "holdout"
        ),
        "the pause is over"
    );
    assert_eq!(
        status_of(f.0).expect("f planned").1.as_deref(),
        Some("erased")
    );

    // The next training leaves f out.
    augur_ok(
        &dir,
        &["train", "--config", "augur.toml", "--models", "models2"],
    );
    augur_ok(
        &dir,
        &[
            "score",
            "--config",
            "augur.toml",
            "--models",
            "models2",
            "--out",
            "scores.parquet",
        ],
    );
    let scored = crate::util::read_parquet(&dir.join("scores.parquet"));
    let ids: Vec<String> = scored
        .iter()
        .flat_map(|b| {
            let col = crate::util::col(b, "contact_id");
            let col = col
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("ids")
                .clone();
            (0..col.len()).map(move |i| col.value(i).to_string())
        })
        .collect();
    assert!(ids.len() > 1000 && !ids.contains(f_id), "f is not scored");
}

/// `chromedriver` on a free port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    /// Starts `chromedriver`; `None` (and why) when it is not installed.
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(driver);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("chromedriver did not listen on port {port}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// WebDriver's (Chromium's) browser log: `POST /session/{id}/se/log`.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

#[test]
fn the_preference_page_works_with_the_keyboard_alone_in_a_real_browser() {
    let Some(driver) = Driver::start() else {
        assert_ne!(
            std::env::var("AUGUR_BROWSER_TEST").as_deref(),
            Ok("required"),
            "chromedriver is required here (install chromium and chromium-driver)"
        );
        eprintln!(
            "skipped: chromedriver is not installed (Debian: apt install chromium chromium-driver)"
        );
        return;
    };
    let (port, log) = smtp_server();
    let dir = hosted(port);
    augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    augur_ok(&dir, &["campaign", "send"]);
    let links = links(&accepted(&log));
    let (email, link) = links.iter().min().expect("a delivered message");
    let server = Server::start(&dir, &[]);
    let url = format!("{}{}", server.base, path_of(link));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (text, offers_checked, errors) = runtime.block_on(async {
        /// One browser step, at most 30 s (a hung browser fails the test instead of holding it).
        async fn step<T, E: std::fmt::Debug>(
            name: &str,
            work: impl std::future::Future<Output = Result<T, E>>,
        ) -> T {
            match tokio::time::timeout(std::time::Duration::from_secs(30), work).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => panic!("{name}: {e:?}"),
                Err(_) => panic!("{name}: no answer from the browser in 30 s"),
            }
        }
        use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
        use fantoccini::key::Key;
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
            },
            "goog:loggingPrefs": { "browser": "ALL" }
        });
        let client = step(
            "a browser session",
            fantoccini::ClientBuilder::new(
                hyper_util_client::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(capabilities.as_object().expect("object").clone())
            .connect(&driver.url),
        )
        .await;
        step("the page", client.goto(&url)).await;
        // Keyboard alone: Tab to each control, Space and arrows to change it, Enter to submit.
        let press = |keys: Vec<char>| {
            let mut actions = KeyActions::new("keyboard".into());
            for k in keys {
                actions = actions
                    .then(KeyAction::Down { value: k })
                    .then(KeyAction::Up { value: k });
            }
            actions
        };
        let focused = |client: &fantoccini::Client| {
            let client = client.clone();
            async move {
                let e = step("focus", client.active_element()).await;
                let name = step("name", e.attr("name")).await.unwrap_or_default();
                let value = step("value", e.attr("value")).await.unwrap_or_default();
                format!("{name}={value}")
            }
        };
        step("tab", client.perform_actions(press(vec![Key::Tab.into()]))).await;
        assert_eq!(focused(&client).await, "topic=offers");
        step("space", client.perform_actions(press(vec![' ']))).await;
        step("tab", client.perform_actions(press(vec![Key::Tab.into(), Key::Tab.into()]))).await;
        assert_eq!(focused(&client).await, "frequency=any");
        step("arrow", client.perform_actions(press(vec![Key::Down.into()]))).await;
        assert_eq!(focused(&client).await, "frequency=weekly");
        step("tab", client.perform_actions(press(vec![Key::Tab.into(), Key::Tab.into()]))).await;
        assert_eq!(focused(&client).await, "action=save");
        step("enter", client.perform_actions(press(vec![Key::Enter.into()]))).await;
        let mut page = String::new();
        for _ in 0..100 {
            page = step("the page's source", client.source()).await;
            if page.contains("role=\"status\"") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(page.contains("role=\"status\""), "no confirmation: {page}");
        let status = step(
            "a confirmation",
            client.find(fantoccini::Locator::Css("p[role=status]")),
        )
        .await;
        let text = step("text", status.text()).await;
        let main = step("main", client.find(fantoccini::Locator::Css("main"))).await;
        let body = step("text", main.text()).await;
        let offers = step(
            "the offers box",
            client.find(fantoccini::Locator::Css("input[value=offers]")),
        )
        .await;
        let offers = step("checked", offers.prop("checked")).await;
        let log = step("the browser log", client.issue_cmd(BrowserLog)).await;
        step("close", client.close()).await;
        let errors: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect();
        (format!("{text}\n{body}"), offers, errors)
    });
    assert!(text.contains("Your choices are saved"), "{text}");
    assert!(text.contains("Offers and discounts: off"), "{text}");
    assert!(text.contains("At most one e-mail a week"), "{text}");
    assert!(!text.contains(email.as_str()), "the page shows no address");
    assert_eq!(offers_checked.as_deref(), Some("false"));
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The status line of what `stream` answers within `seconds`, or why there was none.
fn status_line(stream: &mut std::net::TcpStream, seconds: u64) -> String {
    use std::io::Read as _;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(seconds)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(e) => format!("no answer: {e}"),
    }
}

#[test]
fn bodies_trickled_to_preference_links_cannot_take_the_service() {
    use std::io::Write as _;
    let (port, log) = smtp_server();
    let dir = hosted(port);
    augur_ok(&dir, &["campaign", "plan", "--campaign", "c.toml"]);
    augur_ok(&dir, &["campaign", "send"]);
    let links = links(&accepted(&log));
    let valid = path_of(links.values().next().expect("a delivered link"));
    let server = Server::start(&dir, &[("AUGUR_SERVE__MAX_CONCURRENT_REQUESTS", "8")]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let connect = || std::net::TcpStream::connect(&addr).expect("connect");
    let trickle = |path: &str| {
        let mut s = connect();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n{}\r\n",
                if path.starts_with("/v1") {
                    format!("Content-Type: application/json\r\nAuthorization: Bearer {KEY}\r\n\r\n{{\"events\": [")
                } else {
                    "Content-Type: application/x-www-form-urlencoded\r\n\r\nList-".to_string()
                }
            )
            .as_bytes(),
        )
        .expect("write");
        s
    };
    // Twice the concurrency limit of made-up links, their bodies never finished: each is
    // refused at once with the neutral page, without waiting for its body.
    for mut s in (0..16).map(|_| trickle("/u/abc.def.ghi")) {
        let line = status_line(&mut s, 3);
        assert!(line.contains(" 404"), "{line}");
    }
    // A real link whose body never comes is let go after a few seconds.
    let mut slow = trickle(&valid);
    let line = status_line(&mut slow, 15);
    assert!(line.contains(" 408"), "{line}");
    // Clients with a key that trickle bodies fill the limit: other routes are refused as
    // overloaded, but liveness and readiness still answer.
    let holders: Vec<std::net::TcpStream> = (0..8).map(|_| trickle("/v1/events")).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (status, _) = server.get("/v1/segments", Some(KEY));
    assert_eq!(status, 503, "the limit is full");
    for route in ["/healthz", "/readyz"] {
        let (status, body) = server.get(route, None);
        assert_eq!(status, 200, "{route}: {body}");
    }
    drop(holders);
}
