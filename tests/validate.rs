//! `augur validate` on bad input: every problem named, nothing panics, nothing half-loaded.

use std::sync::Arc;

use arrow::array::{BooleanArray, Int64Array, ListArray, StringArray};
use arrow::datatypes::Int32Type;

use crate::util::{Dir, run, stderr, stdout, write_parquet};

fn orders_config(dir: &Dir, path: &str) {
    dir.write(
        "augur.toml",
        &format!("[tables.orders]\npath = \"{path}\"\n"),
    );
}

fn good_orders(dir: &Dir, rel: &str) {
    write_parquet(
        &dir.join(rel),
        vec![
            ("contact_id", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("product_id", Arc::new(StringArray::from(vec!["p1", "p2"]))),
            (
                "ordered_at",
                Arc::new(StringArray::from(vec![
                    "2024-01-01T10:00:00Z",
                    "2024-01-02T10:00:00Z",
                ])),
            ),
        ],
    );
}

#[test]
fn good_orders_only_validate() {
    let dir = Dir::new();
    good_orders(&dir, "orders.parquet");
    orders_config(&dir, "orders.parquet");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("contacts: 2 (2 derived from events)"));
}

#[test]
fn corrupt_empty_and_foreign_files_are_named() {
    for (name, bytes) in [
        ("empty.parquet", Vec::new()),
        ("text.parquet", b"order_id,contact_id\n1,2\n".to_vec()),
        (
            "garbage.parquet",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ] {
        let dir = Dir::new();
        std::fs::write(dir.join(name), bytes).expect("write");
        orders_config(&dir, name);
        let out = run(dir.augur().arg("validate"));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        assert!(
            err.contains(name) && err.contains("not a readable Parquet file"),
            "{name}: {err}"
        );
    }
}

#[test]
fn truncated_parquet_is_named() {
    let dir = Dir::new();
    good_orders(&dir, "full.parquet");
    let bytes = std::fs::read(dir.join("full.parquet")).expect("read");
    std::fs::write(dir.join("cut.parquet"), &bytes[..bytes.len() / 2]).expect("write");
    orders_config(&dir, "cut.parquet");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cut.parquet"));
}

#[test]
fn missing_column_lists_what_exists() {
    let dir = Dir::new();
    write_parquet(
        &dir.join("orders.parquet"),
        vec![
            ("CustomerID", Arc::new(StringArray::from(vec!["a"]))),
            ("product_id", Arc::new(StringArray::from(vec!["p1"]))),
            (
                "ordered_at",
                Arc::new(StringArray::from(vec!["2024-01-01"])),
            ),
        ],
    );
    orders_config(&dir, "orders.parquet");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for expected in [
        "orders.parquet",
        "`contact_id`",
        "CustomerID, product_id, ordered_at",
        "tables.orders.columns.contact_id",
    ] {
        assert!(err.contains(expected), "missing `{expected}`: {err}");
    }
}

#[test]
fn wrong_column_type_names_expected_and_found() {
    let dir = Dir::new();
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    write_parquet(
        &dir.join("orders.parquet"),
        vec![
            ("contact_id", Arc::new(lists)),
            ("product_id", Arc::new(StringArray::from(vec!["p1"]))),
            ("ordered_at", Arc::new(BooleanArray::from(vec![true]))),
        ],
    );
    orders_config(&dir, "orders.parquet");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("column `contact_id`")
            && err.contains("expected a string or integer id")
            && err.contains("List"),
        "{err}"
    );
}

#[test]
fn all_rows_dropped_is_fatal() {
    let dir = Dir::new();
    write_parquet(
        &dir.join("orders.parquet"),
        vec![
            ("contact_id", Arc::new(Int64Array::from(vec![1, 2]))),
            ("product_id", Arc::new(Int64Array::from(vec![1, 2]))),
            (
                "ordered_at",
                Arc::new(StringArray::from(vec!["01.02.2024", "03.02.2024"])),
            ),
        ],
    );
    orders_config(&dir, "orders.parquet");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FATAL") && text.contains("timestamp_format"),
        "{text}"
    );
}

#[test]
fn directory_without_parquet_files() {
    let dir = Dir::new();
    dir.write("exports/readme.txt", "nothing here");
    orders_config(&dir, "exports");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no .parquet files found for the orders table"));
}

#[test]
fn missing_path_and_bad_config_are_named() {
    let dir = Dir::new();
    orders_config(&dir, "nowhere.parquet");
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere.parquet"));

    dir.write(
        "augur.toml",
        "[tables.orders]\npath = \"o.parquet\"\ntimestamp_unit = \"minutes\"\n",
    );
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("timestamp_unit"), "{}", stderr(&out));

    let out = run(dir.augur().args(["validate", "--config", "absent.toml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("absent.toml"));
}

#[test]
fn hive_partitions_and_environment_overrides() {
    let dir = Dir::new();
    write_parquet(
        &dir.join("exports/contacts/country=DE/part-0.parquet"),
        vec![("contact_id", Arc::new(StringArray::from(vec!["a", "b"])))],
    );
    write_parquet(
        &dir.join("exports/contacts/country=JP/part-0.parquet"),
        vec![("contact_id", Arc::new(StringArray::from(vec!["c"])))],
    );
    good_orders(&dir, "exports/orders/part-0.parquet");
    dir.write("augur.toml", "[tables.orders]\npath = \"wrong-place\"\n");
    let out = run(dir
        .augur()
        .env("AUGUR_TABLES__ORDERS__PATH", "exports/orders")
        .env("AUGUR_TABLES__CONTACTS__PATH", "exports/contacts")
        .args(["validate", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["contacts"], 3);
    assert_eq!(json["contacts_derived"], 0);
    assert_eq!(
        json["timezone_sources"]["country"], 3,
        "zones from the partition's country"
    );
}

#[test]
fn a_reader_that_stops_early_does_not_crash_the_report() {
    let dir = Dir::new();
    good_orders(&dir, "orders.parquet");
    orders_config(&dir, "orders.parquet");
    for args in [&["validate", "--json"][..], &["validate"][..]] {
        // The read end closes before augur writes anything: every write meets a broken pipe.
        let mut child = dir
            .augur()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn augur");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn a_misspelt_setting_is_named_where_it_was_written() {
    let dir = Dir::new();
    good_orders(&dir, "orders.parquet");
    dir.write(
        "augur.toml",
        "[tables.orders]\npath = \"orders.parquet\"\n\n[campaigns.smtp]\nhost = \"relay\"\nsecurty = \"tls\"\n",
    );
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("augur.toml: unknown key `campaigns.smtp.securty`"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `campaigns.smtp.security`?"),
        "{err}"
    );

    orders_config(&dir, "orders.parquet");
    let out = run(dir
        .augur()
        .arg("validate")
        .env("AUGUR_SERVE__MAX_BACH", "5"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("environment variable AUGUR_SERVE__MAX_BACH"),
        "{err}"
    );
    assert!(err.contains("`serve.max_batch`"), "{err}");

    dir.write(
        "augur.toml",
        "[tables.orders]\npath = \"orders.parquet\"\n[campaing]\n",
    );
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown section `campaing` (did you mean `campaigns`?)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn all_null_optional_columns_are_missing_values() {
    use arrow::array::NullArray;
    let dir = Dir::new();
    good_orders(&dir, "orders.parquet");
    // pandas writes a column of `None` with the Arrow type Null.
    write_parquet(
        &dir.join("contacts.parquet"),
        vec![
            ("contact_id", Arc::new(StringArray::from(vec!["a", "b"]))),
            (
                "email",
                Arc::new(StringArray::from(vec!["a@x.example", "b@x.example"])),
            ),
            ("first_name", Arc::new(NullArray::new(2))),
            ("timezone", Arc::new(NullArray::new(2))),
            ("created_at", Arc::new(NullArray::new(2))),
            ("nickname", Arc::new(NullArray::new(2))),
        ],
    );
    write_parquet(
        &dir.join("email.parquet"),
        vec![
            ("contact_id", Arc::new(StringArray::from(vec!["a"]))),
            ("event", Arc::new(StringArray::from(vec!["open"]))),
            (
                "occurred_at",
                Arc::new(StringArray::from(vec!["2024-01-01T12:00:00Z"])),
            ),
            ("campaign_id", Arc::new(NullArray::new(1))),
        ],
    );
    dir.write(
        "augur.toml",
        "[tables.orders]\npath = \"orders.parquet\"\n[tables.contacts]\npath = \"contacts.parquet\"\n[tables.email_events]\npath = \"email.parquet\"\n",
    );
    let out = run(dir.augur().args(["validate", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json report");
    let kept = |table: &str| {
        report["tables"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["table"] == table))
            .map_or(0, |t| t["rows_kept"].as_u64().unwrap_or(0))
    };
    assert_eq!((kept("contacts"), kept("email_events")), (2, 1), "{report}");
}

#[test]
fn a_newcomer_in_an_empty_folder_learns_what_to_do() {
    let dir = Dir::new();
    for command in ["train", "validate"] {
        let out = run(dir.augur().arg(command));
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = stderr(&out);
        assert!(err.contains("embedded demo defaults"), "{command}: {err}");
        assert!(
            err.contains("augur demo") && err.contains("--config"),
            "{command}: {err}"
        );
    }
    // `augur demo` refuses a port in use before it generates or trains anything.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = run(dir
        .augur()
        .args(["demo", "--listen", &addr, "--contacts", "200"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.join("data").exists(),
        "demo data was generated before the port was checked"
    );
}

#[test]
fn hive_partition_folders_as_writers_encode_them() {
    let dir = Dir::new();
    let part = |rel: &str, ids: Vec<&str>| {
        write_parquet(
            &dir.join(rel),
            vec![
                (
                    "contact_id",
                    Arc::new(StringArray::from(ids.clone())) as arrow::array::ArrayRef,
                ),
                (
                    "email",
                    Arc::new(StringArray::from(
                        ids.iter()
                            .map(|i| format!("{i}@x.example"))
                            .collect::<Vec<_>>(),
                    )),
                ),
            ],
        );
    };
    // Percent-encoded values, the default-partition marker, and a key beyond the contract.
    part(
        "contacts/country=United%20Kingdom/club=gold%2Fplus/part-0.parquet",
        vec!["a", "b"],
    );
    part(
        "contacts/country=__HIVE_DEFAULT_PARTITION__/club=__HIVE_DEFAULT_PARTITION__/part-0.parquet",
        vec!["c"],
    );
    part(
        "contacts/country=C%C3%B4te%20d%27Ivoire/club=silver/part-0.parquet",
        vec!["d"],
    );
    let config =
        augur_data::Config::from_toml("[tables.contacts]\npath = \"contacts\"\n", dir.path())
            .expect("config");
    let (history, _) = augur_data::load(&config).expect("load");
    let contacts = &history.contacts;
    assert_eq!(contacts.len(), 4);
    let at = |id: &str| contacts.ids.get(id).expect("contact") as usize;
    assert_eq!(contacts.country[at("a")], Some("GB"));
    assert_eq!(
        contacts.country[at("c")],
        None,
        "the default partition is a missing value"
    );
    assert_eq!(contacts.country[at("d")], Some("CI"));
    let Some(augur_data::AttributeColumn::Text(club)) = contacts.attributes.get("club") else {
        panic!(
            "the extra partition key is an attribute: {:?}",
            contacts.attributes.keys()
        );
    };
    assert_eq!(club[at("a")].as_deref(), Some("gold/plus"));
    assert_eq!(club[at("c")], None);
    assert_eq!(club[at("d")].as_deref(), Some("silver"));
}

#[test]
fn augurs_own_sent_events_do_not_move_the_end_of_history() {
    let dir = Dir::new();
    good_orders(&dir, "orders.parquet");
    write_parquet(
        &dir.join("email.parquet"),
        vec![
            ("contact_id", Arc::new(StringArray::from(vec!["a", "a"]))),
            ("event", Arc::new(StringArray::from(vec!["open", "sent"]))),
            (
                "occurred_at",
                Arc::new(StringArray::from(vec![
                    "2024-01-01T12:00:00Z",
                    "2026-11-30T08:00:00Z",
                ])),
            ),
        ],
    );
    let config = augur_data::Config::from_toml(
        "[tables.orders]\npath = \"orders.parquet\"\n[tables.email_events]\npath = \"email.parquet\"\n",
        dir.path(),
    )
    .expect("config");
    let (history, _) = augur_data::load(&config).expect("load");
    let last_order = augur_data::parse_iso("2024-01-02T10:00:00Z", augur_data::Tz::UTC);
    assert_eq!(history.event_span().map(|(_, last)| last), last_order);
}
