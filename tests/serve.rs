//! `augur serve` over real HTTP on a real socket: every endpoint, auth, bad input, answers equal
//! to `augur score`, hot reload under load and graceful shutdown.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int32Type};
use serde_json::{Value, json};

use crate::util::{Dir, col, read_parquet, run, stderr, stdout};

pub(crate) const KEY: &str = "test-api-key-0123456789";
pub(crate) const ADMIN: &str = "test-admin-key-0123456789";

/// `augur serve` on `serve.toml` and `models`, on a free port.
fn serve_command(dir: &Dir) -> std::process::Command {
    let mut cmd = dir.augur();
    cmd.args([
        "serve",
        "--config",
        "serve.toml",
        "--models",
        "models",
        "--listen",
        "127.0.0.1:0",
    ]);
    cmd
}

/// A running `augur serve`, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) agent: ureq::Agent,
}

impl Server {
    pub(crate) fn start(dir: &Dir, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = serve_command(dir);
        cmd.env("AUGUR_SERVE__API_KEY", KEY)
            .env("AUGUR_SERVE__ADMIN_KEY", ADMIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn augur serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let base = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim()
            .to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self { child, base, agent }
    }

    pub(crate) fn get(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request.call().expect("GET");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().expect("body"))
    }

    pub(crate) fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path, Some(KEY));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub(crate) fn post(&self, path: &str, key: &str, body: &str) -> (u16, Value) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/json")
            .send(body)
            .expect("POST");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn signal_term(&self) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Demo data, a trained model and a configuration with one named segment.
fn trained(contacts: u32) -> Dir {
    let dir = Dir::new();
    let out = run(dir.augur().args([
        "demo-data",
        "--contacts",
        &contacts.to_string(),
        "--seed",
        "3",
        "--out",
        "demo",
    ]));
    assert_eq!(out.status.code(), Some(0));
    train(&dir, None);
    dir.write(
        "serve.toml",
        r#"
[serve]
reload_poll_seconds = 0.2

[segments.engaged_buyers]
description = "Bought and clicked lately"
rule = { all = [ { field = "orders", gte = 1 }, { field = "days_since_click", lte = 60 } ] }
"#,
    );
    dir
}

fn train(dir: &Dir, as_of: Option<&str>) {
    let mut cmd = dir.augur();
    cmd.args(["train", "--config", "demo/augur.toml", "--models", "models"]);
    if let Some(t) = as_of {
        cmd.args(["--as-of", t]);
    }
    assert_eq!(run(&mut cmd).status.code(), Some(0));
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every route of the router answers (not the fallback's `unknown_route`), and the OpenAPI
/// document lists exactly those routes: none missing, none stale.
fn every_route_is_served_and_documented(server: &Server) {
    let (_, openapi) = server.get_json("/openapi.json");
    let documented: Vec<&str> = openapi["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    let mut routes = augur_serve::routes::ALL.to_vec();
    routes.sort_unstable();
    routes.dedup();
    assert_eq!(
        routes.len(),
        augur_serve::routes::ALL.len(),
        "a route listed twice"
    );
    for route in &routes {
        assert!(
            documented.contains(route),
            "{route} missing from /openapi.json"
        );
        let concrete = route.replace("{id}", "C1").replace("{name}", "lapsed");
        let (status, body) = server.get(&concrete, Some(ADMIN));
        assert!(
            !body.contains("unknown_route"),
            "{route} is not served: {status} {body}"
        );
    }
    for path in &documented {
        assert!(
            routes.contains(path),
            "/openapi.json documents {path}, which is not served"
        );
    }
    parameters_are_where_clients_put_them(&openapi);
    a_standard_validator_accepts(&openapi);
    a_generated_client_calls_every_route(server, &openapi);
}

/// Every `in: path` parameter names a `{placeholder}` of its route, and every placeholder is
/// a path parameter: a client generated from the document puts each value where the router
/// reads it.
fn parameters_are_where_clients_put_them(openapi: &Value) {
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for p in &params {
                let (name, place) = (
                    p["name"].as_str().unwrap_or(""),
                    p["in"].as_str().unwrap_or(""),
                );
                if place == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is declared in the path"
                    );
                }
            }
            for placeholder in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == placeholder && p["in"] == "path"),
                    "{method} {path}: `{placeholder}` is not declared as a path parameter"
                );
            }
        }
    }
}

/// The Python (`AUGUR_TEST_PYTHON`, else `python3`) when it can import `modules`; `None`, saying
/// the check is skipped, when it cannot, unless `required_by` is set to `required` (as `.ci/run`
/// does once it has installed `package`), which makes a missing package a failure.
fn python_with(modules: &str, package: &str, required_by: &str) -> Option<String> {
    let python = std::env::var("AUGUR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if importable {
        return Some(python);
    }
    assert!(
        std::env::var(required_by).as_deref() != Ok("required"),
        "{package} is not installed for {python}"
    );
    eprintln!("skipped: {package} is not installed for {python}");
    None
}

/// The document passes `openapi-spec-validator` (Python), when it is installed; with
/// `AUGUR_OPENAPI_VALIDATOR=required` (set by `.ci/run` once it has installed it) it must be.
fn a_standard_validator_accepts(openapi: &Value) {
    let Some(python) = python_with(
        "openapi_spec_validator",
        "openapi-spec-validator",
        "AUGUR_OPENAPI_VALIDATOR",
    ) else {
        return;
    };
    let file = std::env::temp_dir().join(format!("augur-openapi-{}.json", std::process::id()));
    std::fs::write(&file, openapi.to_string()).expect("write document");
    let out = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("run the validator");
    std::fs::remove_file(&file).ok();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "openapi-spec-validator rejects /openapi.json: {}",
        said.chars().take(600).collect::<String>()
    );
}

/// A Python client generated from the document by `openapi-python-client` calls every route and
/// parses every answer into its generated models (`tests/openapi_client.py`), when the generator
/// is installed; with `AUGUR_OPENAPI_CLIENT=required` (set by `.ci/run` once it has installed
/// it) it must be.
fn a_generated_client_calls_every_route(server: &Server, openapi: &Value) {
    let Some(python) = python_with(
        "openapi_python_client, httpx, attrs",
        "openapi-python-client",
        "AUGUR_OPENAPI_CLIENT",
    ) else {
        return;
    };
    let dir = Dir::new();
    dir.write("openapi.json", &openapi.to_string());
    let generated = run(std::process::Command::new(&python)
        .current_dir(dir.path())
        .args(["-m", "openapi_python_client", "generate"])
        .args([
            "--path",
            "openapi.json",
            "--output-path",
            "client/augur_client",
        ])
        .args(["--meta", "none"]));
    assert!(
        generated.status.success() && dir.join("client/augur_client/client.py").exists(),
        "openapi-python-client could not generate a client: {}{}",
        stdout(&generated),
        stderr(&generated)
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi_client.py");
    let called = run(std::process::Command::new(&python)
        .arg(script)
        .arg(dir.join("client"))
        .args([server.base.as_str(), KEY, ADMIN]));
    let said = format!("{}{}", stdout(&called), stderr(&called));
    assert!(
        called.status.success(),
        "the generated client failed:\n{said}"
    );
    assert!(
        said.contains(&format!("{} routes called", augur_serve::routes::ALL.len())),
        "the generated client did not call every route:\n{said}"
    );
}

/// The texts of row `i` of a list-of-strings column.
fn texts_at(column: &arrow::array::ListArray, i: usize) -> Vec<String> {
    column
        .value(i)
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect()
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error shape>")
}

#[test]
fn every_endpoint_answers_and_agrees_with_augur_score() {
    let dir = trained(1500);
    let out = run(dir
        .augur()
        .args(["score", "--models", "models", "--out", "p.parquet"]));
    assert_eq!(out.status.code(), Some(0));
    let server = Server::start(&dir, &[]);

    assert_eq!(server.get("/healthz", None).0, 200);
    let (status, ready) = server.get_json("/readyz");
    assert_eq!((status, ready["contacts"].as_u64()), (200, Some(1500)));
    every_route_is_served_and_documented(&server);

    // Answers equal `augur score` on the same model.
    let mut compared = 0;
    for batch in read_parquet(&dir.join("p.parquet")) {
        let ids = col(&batch, "contact_id").as_string::<i32>();
        let risk = col(&batch, "churn_risk").as_primitive::<Float64Type>();
        let tier = col(&batch, "churn_tier").as_string::<i32>();
        let best = col(&batch, "best_send_hour_of_week").as_primitive::<Int32Type>();
        let recs = col(&batch, "recommendations").as_list::<i32>();
        let explanations = col(&batch, "churn_explanations").as_list::<i32>();
        for i in (0..batch.num_rows()).step_by(37) {
            let (status, c) = server.get_json(&format!("/v1/contacts/{}", ids.value(i)));
            assert_eq!(status, 200);
            if risk.is_null(i) {
                assert!(c["churn"]["risk"].is_null());
            } else {
                assert_eq!(c["churn"]["risk"].as_f64(), Some(risk.value(i)));
            }
            assert_eq!(c["churn"]["tier"], tier.value(i));
            assert_eq!(
                c["send_time"]["best_hours_of_week"][0].as_i64(),
                Some(i64::from(best.value(i)))
            );
            let expected = texts_at(recs, i);
            let got: Vec<String> = c["recommendations"]
                .as_array()
                .expect("recommendations")
                .iter()
                .map(|r| r["product_id"].as_str().unwrap_or_default().to_string())
                .collect();
            assert_eq!(got, expected);
            assert!(c["segments"].is_array());
            // Each reason code has its sentence beside it, the same as `augur score` writes.
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| s.as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (codes, sentences) = (
                strings(&c["churn"]["reasons"]),
                strings(&c["churn"]["explanations"]),
            );
            assert_eq!(codes.len(), sentences.len(), "{c}");
            let written = texts_at(explanations, i);
            assert_eq!(sentences, written);
            // (A contact that never bought has one reason, already a sentence.)
            for (code, sentence) in codes.iter().zip(&sentences).filter(|_| !risk.is_null(i)) {
                assert_ne!(code, sentence, "a sentence, not the code");
                assert!(
                    !sentence.ends_with(" high") && !sentence.ends_with(" low"),
                    "{sentence}"
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 30);

    // Recommendations with filters.
    let mut category_of: HashMap<String, String> = HashMap::new();
    let mut listed: HashMap<String, (String, f64)> = HashMap::new();
    for b in read_parquet(&dir.join("demo/products.parquet")) {
        let id = col(&b, "product_id").as_string::<i32>();
        let cat = col(&b, "category").as_string::<i32>();
        let name = col(&b, "name").as_string::<i32>();
        let price = col(&b, "price").as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            category_of.insert(id.value(i).to_string(), cat.value(i).to_string());
            listed.insert(
                id.value(i).to_string(),
                (name.value(i).to_string(), price.value(i)),
            );
        }
    }
    let (_, segments) = server.get_json("/v1/segments");
    let (_, page) = server.get("/v1/segments/active_buyers/contacts?limit=1", Some(KEY));
    let buyer: Value = serde_json::from_str(page.lines().next().expect("a buyer")).expect("jsonl");
    let buyer = buyer["contact_id"].as_str().expect("id").to_string();
    let (_, c) = server.get_json(&format!("/v1/contacts/{buyer}"));
    // A contact's recommendations say what each product is, as the products table does.
    let recommended = c["recommendations"].as_array().expect("recommendations");
    assert!(!recommended.is_empty(), "{c}");
    for p in recommended {
        let id = p["product_id"].as_str().expect("id");
        let (name, price) = &listed[id];
        assert_eq!(p["name"].as_str(), Some(name.as_str()), "{p}");
        assert_eq!(
            p["category"].as_str(),
            Some(category_of[id].as_str()),
            "{p}"
        );
        assert_eq!(p["price"].as_f64(), Some(*price), "{p}");
    }
    let top = c["category_affinity"][0]["category"]
        .as_str()
        .expect("category")
        .to_string();
    let (status, r) = server.get_json(&format!(
        "/v1/contacts/{buyer}/recommendations?k=4&mode=discover&in_stock=true&category={}",
        encode(&top)
    ));
    assert_eq!(status, 200);
    let products = r["recommendations"].as_array().expect("list");
    assert!(!products.is_empty() && products.len() <= 4);
    for p in products {
        assert_eq!(category_of[p["product_id"].as_str().expect("id")], top);
        assert_eq!(p["category"].as_str(), Some(top.as_str()), "{p}");
    }

    // Send time inside the window, outside quiet hours.
    let (status, s) = server.get_json(&format!(
        "/v1/contacts/{buyer}/send-time?after=2026-11-02T05:00:00Z&within=24h&quiet=21:00-08:00"
    ));
    assert_eq!(status, 200, "{s}");
    let at = chrono::DateTime::parse_from_rfc3339(s["best"]["send_at_utc"].as_str().expect("utc"))
        .expect("rfc3339");
    let local =
        chrono::DateTime::parse_from_rfc3339(s["best"]["send_at_local"].as_str().expect("local"))
            .expect("rfc3339");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T05:00:00Z").expect("t");
    assert!(at >= start && at < start + chrono::Duration::hours(24));
    assert_eq!(at, local);
    use chrono::Timelike as _;
    assert!((8..21).contains(&local.hour()), "{local}");
    assert!(s["runner_up"].as_array().is_some_and(|r| !r.is_empty()));

    // A batch with an unknown id.
    let (status, b) = server.post(
        "/v1/score",
        KEY,
        &json!({ "ids": [buyer, "nobody", "nobody-2"], "fields": ["churn"] }).to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(b["contacts"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["unknown_ids"], json!(["nobody", "nobody-2"]));
    assert!(b["contacts"][0]["recommendations"].is_null() && b["contacts"][0]["churn"].is_object());
    // An id asked twice is answered once.
    let (status, b) = server.post(
        "/v1/score",
        KEY,
        &json!({ "ids": [buyer, buyer], "fields": ["churn"] }).to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(b["contacts"].as_array().map(Vec::len), Some(1), "{b}");
    // A mistyped query parameter is an error, not a silent default.
    for query in ["in_stock_only=true", "limt=5"] {
        let (status, v) = server.get_json(&format!("/v1/contacts/{buyer}/recommendations?{query}"));
        let name = query.split('=').next().unwrap_or_default();
        assert!(
            (400..500).contains(&status) && v.to_string().contains(name),
            "{query}: {status} {v}"
        );
    }

    // Segments: the configured one is listed; pages add up to the stream and to the preview.
    let names: Vec<&str> = segments["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for name in [
        "new_subscribers",
        "active_buyers",
        "vip",
        "at_risk",
        "lapsed",
        "engaged_buyers",
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let (status, whole) = server.get("/v1/segments/at_risk/contacts?format=csv", Some(KEY));
    assert_eq!(status, 200);
    let whole: Vec<&str> = whole.lines().skip(1).collect();
    assert!(whole.len() > 10, "{}", whole.len());
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!(
            "{}/v1/segments/at_risk/contacts?format=csv&limit=7{cursor}",
            server.base
        );
        let mut response = server
            .agent
            .get(url)
            .header("Authorization", format!("Bearer {KEY}"))
            .call()
            .expect("page");
        let next = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = response.body_mut().read_to_string().expect("body");
        paged.extend(body.lines().skip(1).map(String::from));
        match next {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(paged, whole);
    let listed = segments["segments"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "at_risk"))
        .and_then(|s| s["contacts"].as_u64());
    assert_eq!(listed, Some(whole.len() as u64));
    let rule = json!({ "rule": { "all": [ { "field": "orders", "gte": 1 },
        { "field": "churn_tier", "in": ["high", "critical"] }, { "field": "days_since_last_order", "lte": 365 } ] }, "sample": 3 });
    let (status, preview) = server.post("/v1/segments/preview", KEY, &rule.to_string());
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["count"].as_u64(), Some(whole.len() as u64));
    assert_eq!(preview["sample"].as_array().map(Vec::len), Some(3));

    // Metrics name routes, never contact ids.
    let (_, metrics) = server.get("/metrics", None);
    assert!(
        metrics.contains("augur_http_requests_total{route=\"/v1/contacts/{id}\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("augur_contacts_loaded 1500"));
    assert!(!metrics.contains(&buyer));
}

#[test]
fn auth_and_bad_input_get_clear_json_errors() {
    let dir = trained(600);
    let server = Server::start(
        &dir,
        &[
            ("AUGUR_SERVE__MAX_BATCH", "5"),
            ("AUGUR_SERVE__MAX_BODY_BYTES", "2000"),
        ],
    );
    let any = "/v1/contacts/nobody";
    // Auth: none, wrong, right, wrong scope.
    assert_eq!(server.get(any, None).0, 401);
    assert_eq!(server.get(any, Some("not-a-configured-key-at-all")).0, 401);
    assert_eq!(server.get(any, Some(KEY)).0, 404);
    assert_eq!(server.get(any, Some(ADMIN)).0, 404);
    let (status, v) = server.post("/v1/admin/reload", KEY, "");
    assert_eq!((status, error_code(&v)), (403, "forbidden"));
    let (status, v) = server.post("/v1/admin/reload", ADMIN, "");
    assert_eq!((status, v["reloaded"].as_bool()), (200, Some(false)));

    let (status, v) = server.get_json(any);
    assert_eq!((status, error_code(&v)), (404, "unknown_contact"));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nobody"))
    );
    let cases = [
        ("/v1/contacts/x/recommendations?k=0", 422),
        ("/v1/contacts/x/recommendations?k=abc", 400),
        ("/v1/contacts/x/recommendations?mode=sideways", 400),
        ("/v1/segments/nope/contacts", 404),
        ("/v1/segments/vip/contacts?limit=0", 422),
        ("/v1/segments/vip/contacts?cursor=garbage", 422),
        ("/v1/segments/vip/contacts?cursor=20000101T000000Z.5", 409),
        ("/v1/segments/vip/contacts?format=xml", 400),
        ("/nowhere", 404),
    ];
    let (_, first) = server.get("/v1/segments/lapsed/contacts?limit=1", Some(KEY));
    let known: Value =
        serde_json::from_str(first.lines().next().unwrap_or("{}")).unwrap_or(Value::Null);
    let known = known["contact_id"].as_str().unwrap_or("x").to_string();
    for (path, expected) in cases {
        let path = path.replace("/x/", &format!("/{known}/"));
        let (status, body) = server.get(&path, Some(KEY));
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(status, expected, "{path}: {body}");
        assert!(v["error"]["message"].is_string(), "{path}: {body}");
    }
    for query in [
        "after=yesterday",
        "within=99d",
        "within=soon",
        "quiet=9-5",
        "within=1h&quiet=00:00-23:59",
    ] {
        let (status, v) = server.get_json(&format!("/v1/contacts/{known}/send-time?{query}"));
        assert_eq!(
            (status, error_code(&v)),
            (422, "invalid_request"),
            "{query}: {v}"
        );
    }
    // Bodies: malformed, wrong shape, too many ids, too large, bad rules.
    let bad = [
        ("/v1/score", "{not json", 400),
        ("/v1/score", r#"{"ids": "c1"}"#, 422),
        ("/v1/score", r#"{"ids": [], "extra": 1}"#, 422),
        ("/v1/score", r#"{"ids": ["1","2","3","4","5","6"]}"#, 413),
        ("/v1/score", r#"{"ids": ["1"], "k": 1000}"#, 422),
        (
            "/v1/segments/preview",
            r#"{"rule": {"field": "churn_rsik", "gte": 0.5}}"#,
            422,
        ),
        (
            "/v1/segments/preview",
            r#"{"rule": {"field": "country", "gte": 0.5}}"#,
            422,
        ),
        (
            "/v1/segments/preview",
            r#"{"rule": {"all": [{"field": "orders"}]}}"#,
            422,
        ),
    ];
    for (path, body, expected) in bad {
        let (status, v) = server.post(path, KEY, body);
        assert_eq!(status, expected, "{path} {body}: {v}");
        assert!(v["error"]["message"].is_string(), "{path} {body}: {v}");
    }
    let (_, v) = server.post(
        "/v1/segments/preview",
        KEY,
        r#"{"rule": {"field": "churn_rsik", "gte": 0.5}}"#,
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("rule: unknown field") && m.contains("churn_risk")),
        "{v}"
    );
    let big = json!({ "ids": vec!["x".repeat(100); 40] }).to_string();
    let (status, v) = server.post("/v1/score", KEY, &big);
    assert_eq!((status, error_code(&v)), (413, "too_large"), "{v}");
    let deep = format!(
        "{}{}{}",
        r#"{"rule": "#.to_string() + &r#"{"not": "#.repeat(40),
        r#"{"field": "orders", "gte": 1}"#,
        "}".repeat(41)
    );
    let (status, _) = server.post("/v1/segments/preview", KEY, &deep);
    assert_eq!(status, 422);
}

#[test]
fn start_up_errors_are_clear() {
    let dir = Dir::new();
    dir.write("serve.toml", "");
    let out = run(serve_command(&dir).env("AUGUR_SERVE__API_KEY", KEY));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("augur train"));
    let dir = trained(300);
    let out = run(&mut serve_command(&dir));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUGUR_SERVE__API_KEY"));
}

#[test]
fn hot_reload_under_load_fails_no_request_and_shutdown_is_graceful() {
    let dir = trained(800);
    let mut server = Server::start(&dir, &[]);
    let (_, first) = server.get_json("/readyz");
    let first_version = first["model_version"]
        .as_str()
        .expect("version")
        .to_string();
    let (_, page) = server.get(
        "/v1/segments/new_subscribers/contacts?limit=20&format=csv",
        Some(KEY),
    );
    let ids: Vec<String> = page
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(String::from)
        .collect();
    let (_, any) = server.get(
        "/v1/segments/lapsed/contacts?limit=20&format=csv",
        Some(KEY),
    );
    let ids: Vec<String> = ids
        .into_iter()
        .chain(
            any.lines()
                .skip(1)
                .filter_map(|l| l.split(',').next())
                .map(String::from),
        )
        .collect();
    assert!(!ids.is_empty());

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let versions = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let clients: Vec<_> = (0..3)
        .map(|t| {
            let (base, ids, stop, ok, failed, versions) = (
                server.base.clone(),
                ids.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
                versions.clone(),
            );
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let id = &ids[i % ids.len()];
                    i += 1;
                    match agent
                        .get(format!("{base}/v1/contacts/{id}"))
                        .header("Authorization", format!("Bearer {KEY}"))
                        .call()
                    {
                        Ok(mut r) if r.status().as_u16() == 200 => {
                            let v: Value = r.body_mut().read_json().unwrap_or(Value::Null);
                            if let Some(version) = v["model_version"].as_str() {
                                versions.lock().expect("lock").insert(version.to_string());
                            }
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failed
                            .lock()
                            .expect("lock")
                            .push(format!("{id}: {}", r.status())),
                        Err(e) => failed.lock().expect("lock").push(format!("{id}: {e}")),
                    }
                }
            })
        })
        .collect();
    // A newer model lands in the watched directory while the clients keep asking.
    std::thread::sleep(std::time::Duration::from_millis(300));
    train(&dir, Some("2026-10-01"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while versions.lock().expect("lock").len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let failed = failed.lock().expect("lock");
    assert!(
        failed.is_empty(),
        "failed requests during reload: {:?}",
        &failed[..failed.len().min(5)]
    );
    let versions = versions.lock().expect("lock");
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions.contains(&first_version));
    assert!(ok.load(Ordering::Relaxed) > 50);

    // Graceful shutdown: a listing already streaming finishes, then the process exits 0.
    let (_, total) = server.post("/v1/segments/preview", KEY, r#"{"rule": {"all": []}}"#);
    let total = total["count"].as_u64().expect("count");
    let mut response = server
        .agent
        .get(format!("{}/v1/segments/lapsed/contacts", server.base))
        .header("Authorization", format!("Bearer {KEY}"))
        .call()
        .expect("stream");
    assert_eq!(response.status().as_u16(), 200);
    server.signal_term();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut body = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut body)
        .expect("whole stream after SIGTERM");
    assert!(
        body.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    assert!((body.lines().count() as u64) <= total && !body.is_empty());
    assert_eq!(server.child.wait().expect("wait").code(), Some(0));
    // New connections are refused once it has stopped.
    assert!(
        ureq::get(format!("{}/healthz", server.base))
            .call()
            .is_err()
    );
}

#[test]
fn readiness_fails_while_shutting_down_and_requests_are_still_answered() {
    let dir = trained(300);
    let server = Server::start(&dir, &[("AUGUR_SERVE__SHUTDOWN_DELAY_SECONDS", "3")]);
    let (status, ready) = server.get_json("/readyz");
    assert_eq!(
        (status, ready["ready"].as_bool()),
        (200, Some(true)),
        "{ready}"
    );
    assert!(ready.get("reload_error").is_none(), "{ready}");

    server.signal_term();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let (status, ready) = loop {
        let answer = server.get_json("/readyz");
        if answer.0 != 200 || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"].as_bool(), Some(false), "{ready}");
    assert_eq!(ready["reason"].as_str(), Some("shutting down"), "{ready}");
    // Traffic that still arrives during the delay is answered.
    let (status, _) = server.get("/v1/segments", Some(KEY));
    assert_eq!(status, 200);
    let mut server = server;
    assert_eq!(server.child.wait().expect("wait").code(), Some(0));
}

#[test]
fn clients_that_never_finish_their_header_cannot_take_the_service() {
    use std::io::Write as _;
    let dir = trained(300);
    let server = Server::start(
        &dir,
        &[
            ("AUGUR_SERVE__MAX_CONNECTIONS", "40"),
            ("AUGUR_SERVE__HEADER_READ_TIMEOUT_SECONDS", "1"),
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    // Twice the connection limit, each with half a request header, never finished.
    let mut slow: Vec<std::net::TcpStream> = (0..80)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    }
    // The service answers again within a few seconds: the extra connections are closed at
    // once, the others when their header time is up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let answered = loop {
        let ok = server
            .agent
            .get(format!("{}/healthz", server.base))
            .config()
            .timeout_global(Some(std::time::Duration::from_secs(1)))
            .build()
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200);
        if ok || std::time::Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        answered,
        "/healthz never answered while slow clients held connections"
    );
    // Every slow connection has been closed by the service.
    for s in &mut slow {
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                // A 408 or other answer before the close is fine; keep reading to the end.
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false;
                }
                Err(_) => break true,
            }
        };
        assert!(closed, "a connection with half a header is still open");
    }
}

#[test]
fn hostile_requests_get_quick_json_answers() {
    use std::io::Write as _;
    let dir = trained(300);
    let server = Server::start(&dir, &[("AUGUR_SERVE__MAX_RULE_WORK", "1000")]);
    let addr = server.base.trim_start_matches("http://").to_string();
    // A body declared over serve.max_body_bytes is refused at once, before it is sent.
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "POST /v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
    )
    .expect("write");
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = s.read(&mut answer).expect("an answer within 5 s");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"too_large\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "the unread body ends the connection, and the answer says so: {answer}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));

    // A known route with the wrong method: 405 in the documented error shape.
    let mut response = server
        .agent
        .delete(format!("{}/v1/segments", server.base))
        .header("Authorization", format!("Bearer {KEY}"))
        .call()
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 405);
    let body: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("json");
    assert_eq!(error_code(&body), "method_not_allowed");

    // The scheme of Authorization is case-insensitive (RFC 7235).
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let mut response = server
            .agent
            .get(format!("{}/v1/segments", server.base))
            .header("Authorization", format!("{scheme} {KEY}"))
            .call()
            .expect("GET");
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
        response.body_mut().read_to_string().expect("body");
    }

    // An instant whose answer would not be RFC 3339 (a five-digit year) is refused.
    let (_, preview) = server.post(
        "/v1/segments/preview",
        KEY,
        r#"{"rule": {"all": []}, "sample": 1}"#,
    );
    let id = preview["sample"][0]["contact_id"]
        .as_str()
        .expect("a contact")
        .to_string();
    let (status, body) = server.get_json(&format!(
        "/v1/contacts/{id}/send-time?after=9999-12-31T23:00:00Z&within=7d"
    ));
    assert_eq!(status, 422, "{body}");
    // So is one before 1972, when some zones' offsets had seconds RFC 3339 cannot write.
    for early in ["1800-06-01T00:00:00Z", "0000-01-01T00:00:00Z"] {
        let (status, body) = server.get_json(&format!(
            "/v1/contacts/{id}/send-time?after={early}&within=24h"
        ));
        assert_eq!(status, 422, "{early}: {body}");
    }
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("9999"),
        "{body}"
    );

    // A rule built to burn CPU is refused before any work: its nodes times the contacts are
    // over serve.max_rule_work (here 1,000; 300 contacts).
    let conditions: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"field": "top_category", "eq": "c{i}"}}"#))
        .collect();
    let costly = format!(r#"{{"rule": {{"any": [{}]}}}}"#, conditions.join(", "));
    let started = std::time::Instant::now();
    let (status, body) = server.post("/v1/segments/preview", KEY, &costly);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("serve.max_rule_work"),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let (status, _) = server.post(
        "/v1/segments/preview",
        KEY,
        r#"{"rule": {"field": "top_category", "in": ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]}}"#,
    );
    assert_eq!(
        status, 200,
        "the same test as one `in` list is within the budget"
    );
}

/// Reads one HTTP/1.1 answer from `s`: its status and its body (by `content-length`).
fn read_answer(s: &mut std::net::TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("an answer");
        assert!(
            n == 1,
            "closed before a whole head: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let status = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).expect("body");
    (status, String::from_utf8_lossy(&body).to_string())
}

#[test]
fn heads_too_long_too_large_or_malformed_get_json_answers() {
    use std::io::Write as _;
    let dir = trained(300);
    let server = Server::start(&dir, &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let ask = |request: &[u8]| {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        // The server may answer (and stop reading) before a large request is all written.
        let _ = s.write_all(request);
        read_answer(&mut s)
    };
    let expect = |(status, body): (u16, String), want: u16, code: &str| {
        assert_eq!(status, want, "{body}");
        let json: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(error_code(&json), code, "{json}");
        assert!(
            !json["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    };
    for target_len in [20_000, 100_000] {
        let request = format!(
            "GET /v1/segments?x={} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(target_len)
        );
        expect(ask(request.as_bytes()), 414, "uri_too_long");
    }
    let many = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-Field-{i}: 1\r\n"))
            .collect::<String>()
    );
    expect(ask(many.as_bytes()), 431, "headers_too_large");
    for value_len in [40_000, 600_000] {
        let large = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Large: {}\r\n\r\n",
            "b".repeat(value_len)
        );
        expect(ask(large.as_bytes()), 431, "headers_too_large");
    }
    expect(
        ask(b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        400,
        "bad_request",
    );

    // Framing that hyper would refuse with an empty body, and the Host that RFC 9112 requires.
    for head in [
        "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 39\r\nContent-Length: 3\r\n\r\n",
        "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: +39\r\n\r\n",
        "POST /v1/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST /v1/score HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a b/c\r\n\r\n",
    ] {
        expect(ask(head.as_bytes()), 400, "bad_request");
    }
    // A request line made long by its method is a bad request, not a long target.
    let long_method = format!("{} / HTTP/1.1\r\nHost: x\r\n\r\n", "M".repeat(9_000));
    expect(ask(long_method.as_bytes()), 400, "bad_request");
    // A TLS hello or binary junk is refused at once, not after the header timeout.
    let started = std::time::Instant::now();
    expect(
        ask(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        400,
        "bad_request",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The head limit counts the request line too: a whole head one byte over it is refused.
    let filler = 32 * 1024 - "GET /healthz HTTP/1.1\r\nX-A: \r\n\r\n".len() + 1;
    let just_over = format!(
        "GET /healthz HTTP/1.1\r\nX-A: {}\r\n\r\n",
        "b".repeat(filler)
    );
    expect(ask(just_over.as_bytes()), 431, "headers_too_large");
    // A client that half-closes after a whole request still gets its answer.
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
        assert_eq!(read_answer(&mut s).0, 200, "no answer after a half-close");
    }
    // Bare line feeds end a head as well, as HTTP parsers accept them.
    assert_eq!(ask(b"GET /healthz HTTP/1.1\nHost: x\n\n").0, 200);
    // A head sent a byte at a time is answered once it is whole.
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" {
        s.write_all(&[*byte]).expect("a byte");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(read_answer(&mut s).0, 200);

    // A later request on a kept-alive connection is held to the same limits.
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("first");
    assert_eq!(read_answer(&mut s).0, 200);
    let long = format!(
        "GET /healthz?x={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20_000)
    );
    s.write_all(long.as_bytes()).expect("second");
    expect(read_answer(&mut s), 414, "uri_too_long");
    // …and a request within them on the same connection is answered as usual.
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("third");
    assert_eq!(read_answer(&mut s).0, 200);
}
