//! A raw retail export (`InvoiceNo, StockCode, …`) loads with a mapping config alone.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use augur_data::Config;
use augur_data::DropReason;

use crate::util::{Dir, run, stdout, write_parquet};

pub const RETAIL_CONFIG: &str = r#"
[data]
timezone = "Europe/London"

[tables.orders]
path = "online_retail.parquet"
timestamp_format = "%m/%d/%Y %H:%M"
cancelled_order_prefix = "C"
exclude_products = ["POST", "DOT", "M", "BANK CHARGES"]
exclude_product_pattern = "^gift_"

[tables.orders.columns]
order_id = "InvoiceNo"
product_id = "StockCode"
product_name = "Description"
quantity = "Quantity"
ordered_at = "InvoiceDate"
unit_price = "UnitPrice"
contact_id = "CustomerID"
country = "Country"
"#;

/// InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country.
type RetailRow = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    f64,
    Option<f64>,
    &'static str,
);

fn write_fixture(dir: &Dir) {
    let rows: Vec<RetailRow> = vec![
        (
            "536365",
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            6,
            "12/1/2010 8:26",
            2.55,
            Some(17850.0),
            "United Kingdom",
        ),
        (
            "536365",
            "71053",
            "WHITE METAL LANTERN",
            6,
            "12/1/2010 8:26",
            3.39,
            Some(17850.0),
            "United Kingdom",
        ),
        (
            "536365",
            "POST",
            "POSTAGE",
            1,
            "12/1/2010 8:26",
            18.0,
            Some(17850.0),
            "United Kingdom",
        ),
        // An exact duplicate line.
        (
            "536365",
            "71053",
            "WHITE METAL LANTERN",
            6,
            "12/1/2010 8:26",
            3.39,
            Some(17850.0),
            "United Kingdom",
        ),
        (
            "536370",
            "22728",
            "ALARM CLOCK BAKELIKE PINK",
            24,
            "12/1/2010 8:45",
            3.75,
            Some(12583.0),
            "France",
        ),
        // No customer.
        (
            "536414",
            "22139",
            "RETROSPOT TEA SET",
            56,
            "12/1/2010 11:52",
            0.0,
            None,
            "United Kingdom",
        ),
        // Cancellation of an earlier purchase: kept as a return.
        (
            "C536379",
            "71053",
            "WHITE METAL LANTERN",
            -2,
            "12/2/2010 9:41",
            3.39,
            Some(17850.0),
            "United Kingdom",
        ),
        // Cancellation of something never bought.
        (
            "C536383",
            "35004C",
            "SET OF 3 COLOURED FLYING DUCKS",
            -1,
            "12/2/2010 9:49",
            4.65,
            Some(15311.0),
            "United Kingdom",
        ),
        (
            "536384",
            "gift_0001_20",
            "Dotcomgiftshop Gift Voucher",
            1,
            "12/2/2010 10:00",
            17.0,
            Some(15311.0),
            "United Kingdom",
        ),
        (
            "536390",
            "22941",
            "CHRISTMAS LIGHTS 10 REINDEER",
            2,
            "not a date",
            8.5,
            Some(15311.0),
            "United Kingdom",
        ),
        (
            "536391",
            "22942",
            "CHRISTMAS LIGHTS 10 SANTAS",
            1,
            "12/3/2010 14:10",
            8.5,
            Some(15311.0),
            "EIRE",
        ),
    ];
    write_parquet(
        &dir.join("online_retail.parquet"),
        vec![
            (
                "InvoiceNo",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ),
            (
                "StockCode",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "Description",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ),
            (
                "Quantity",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
            ),
            (
                "InvoiceDate",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.4))),
            ),
            (
                "UnitPrice",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.5))),
            ),
            (
                "CustomerID",
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.6).collect::<Vec<_>>(),
                )),
            ),
            (
                "Country",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.7))),
            ),
        ],
    );
    dir.write("augur.toml", RETAIL_CONFIG);
}

#[test]
fn raw_retail_export_loads_with_config_alone() {
    let dir = Dir::new();
    write_fixture(&dir);
    let config = Config::from_toml(RETAIL_CONFIG, dir.path()).expect("config");
    let (history, report) = augur_data::load(&config).expect("load");
    let orders = report
        .table(augur_data::TableKind::Orders)
        .expect("orders report");
    assert_eq!(orders.rows_read, 11);
    let dropped = |r: DropReason| orders.dropped.get(&r).copied().unwrap_or(0);
    assert_eq!(
        dropped(DropReason::ExcludedProduct),
        2,
        "POST and the gift voucher"
    );
    assert_eq!(dropped(DropReason::Duplicate), 1);
    assert_eq!(dropped(DropReason::MissingContactId), 1);
    assert_eq!(dropped(DropReason::ReturnWithoutPurchase), 1);
    assert_eq!(dropped(DropReason::UnparsableTimestamp), 1);
    assert_eq!(orders.rows_kept, 5);

    // Float-looking ids read as integers; contacts and products derived from order lines.
    let contacts = &history.contacts;
    let c = contacts.ids.get("17850").expect("17850.0 read as 17850") as usize;
    assert_eq!(contacts.country[c], Some("GB"));
    assert_eq!(contacts.timezone[c], augur_data::Tz::Europe__London);
    let c = contacts.ids.get("15311").expect("15311") as usize;
    assert_eq!(contacts.country[c], Some("GB"), "first country seen wins");
    assert_eq!(report.contacts, 3);
    assert_eq!(report.contacts_derived, 3);
    let p = history.products.ids.get("71053").expect("product") as usize;
    assert_eq!(
        history.products.name[p].as_deref(),
        Some("WHITE METAL LANTERN")
    );
    assert_eq!(history.products.price[p], Some(3.39));

    // The cancellation is a return of the earlier purchase; naive times read in London (UTC in winter).
    let returns: Vec<usize> = (0..history.orders.len())
        .filter(|&i| history.orders.quantity[i] < 0.0)
        .collect();
    assert_eq!(returns.len(), 1);
    assert_eq!(history.orders.quantity[returns[0]], -2.0);
    assert_eq!(history.orders.at[0], 1_291_191_960, "2010-12-01T08:26Z");
}

/// Loads `columns` as the orders table (`lines.parquet`), mapped by `mapping` (the lines of
/// `[tables.orders.columns]`).
fn load_lines(
    columns: Vec<(&str, arrow::array::ArrayRef)>,
    mapping: &str,
) -> (augur_data::History, augur_data::QualityReport) {
    let dir = Dir::new();
    write_parquet(&dir.join("lines.parquet"), columns);
    let config =
        format!("[tables.orders]\npath = \"lines.parquet\"\n[tables.orders.columns]\n{mapping}");
    let config = Config::from_toml(&config, dir.path()).expect("config");
    augur_data::load(&config).expect("load")
}

#[test]
fn a_line_total_gives_the_unit_price_where_the_export_has_none() {
    let (history, _) = load_lines(
        vec![
            (
                "household",
                Arc::new(StringArray::from(vec!["h1", "h1", "h2", "h2", "h2"])) as _,
            ),
            (
                "product",
                Arc::new(StringArray::from(vec!["a", "a", "b", "c", "b"])) as _,
            ),
            (
                "units",
                Arc::new(Int64Array::from(vec![2, -1, 3, 1, -2])) as _,
            ),
            (
                "sales_value",
                Arc::new(Float64Array::from(vec![
                    Some(7.0),
                    Some(-3.5),
                    Some(1.5),
                    None,
                    Some(1.0),
                ])) as _,
            ),
            (
                "at",
                Arc::new(StringArray::from(vec![
                    "2024-03-01T10:00:00Z",
                    "2024-03-02T10:00:00Z",
                    "2024-03-01T11:00:00Z",
                    "2024-03-01T12:00:00Z",
                    "2024-03-03T10:00:00Z",
                ])) as _,
            ),
        ],
        "contact_id = \"household\"\nproduct_id = \"product\"\nquantity = \"units\"\nline_total = \"sales_value\"\nordered_at = \"at\"\n",
    );
    let o = &history.orders;
    let lines: Vec<(f64, f64)> = (0..o.len())
        .map(|i| (o.quantity[i], o.unit_price[i]))
        .collect();
    // A return's value may be written negative (−3.5 for −1) or not (1.0 for −2); a line
    // without its value has no price.
    assert_eq!(
        lines,
        vec![(2.0, 3.5), (3.0, 0.5), (1.0, 0.0), (-1.0, 3.5), (-2.0, 0.5)],
        "(quantity, unit price) by time"
    );
}

#[test]
fn the_same_export_in_another_row_order_loads_to_the_same_history() {
    // 120 lines of 7 contacts, 9 products and 40 orders, many at the same instant.
    let lines: Vec<(String, String, String, i64)> = (0..120)
        .map(|i: i64| {
            let order = i / 3;
            (
                format!("c{}", (order * 5) % 7),
                format!("p{}", (i * 4) % 9),
                format!("o{order}"),
                1_700_000_000 + 3_600 * (order % 6),
            )
        })
        .collect();
    let load = |rows: Vec<&(String, String, String, i64)>| {
        let dir = Dir::new();
        let column = |f: fn(&(String, String, String, i64)) -> &str| -> arrow::array::ArrayRef {
            Arc::new(StringArray::from(
                rows.iter().map(|r| f(r)).collect::<Vec<_>>(),
            ))
        };
        write_parquet(
            &dir.join("lines.parquet"),
            vec![
                ("contact", column(|r| &r.0)),
                ("product", column(|r| &r.1)),
                ("order", column(|r| &r.2)),
                (
                    "at",
                    Arc::new(Int64Array::from(
                        rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                    )) as _,
                ),
            ],
        );
        let config = "[tables.orders]\npath = \"lines.parquet\"\n[tables.orders.columns]\n\
                      contact_id = \"contact\"\nproduct_id = \"product\"\norder_id = \"order\"\n\
                      ordered_at = \"at\"\n";
        let config = Config::from_toml(config, dir.path()).expect("config");
        let (h, _) = augur_data::load(&config).expect("load");
        let o = &h.orders;
        (
            h.contacts.ids.names().map(String::from).collect::<Vec<_>>(),
            h.products.ids.names().map(String::from).collect::<Vec<_>>(),
            (0..o.len())
                .map(|i| {
                    (
                        o.contact[i],
                        o.product[i],
                        o.order_ids.name(o.order[i]).to_string(),
                        o.at[i],
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    let as_written = load(lines.iter().collect());
    let reversed = load(lines.iter().rev().collect());
    let by_product = {
        let mut rows: Vec<_> = lines.iter().collect();
        rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        load(rows)
    };
    assert_eq!(
        as_written.0,
        ["c0", "c1", "c2", "c3", "c4", "c5", "c6"],
        "numbered by id"
    );
    assert_eq!(as_written, reversed);
    assert_eq!(as_written, by_product);
}

#[test]
fn ids_as_categoricals_of_integers_or_as_bytes_and_headers_with_a_byte_order_mark_read() {
    use arrow::array::{BinaryArray, DictionaryArray, Int32Array};
    use arrow::datatypes::Int32Type;
    let dir = Dir::new();
    let products = DictionaryArray::<Int32Type>::new(
        Int32Array::from(vec![0, 1, 0, 1]),
        Arc::new(Int64Array::from(vec![501, 502])),
    );
    write_parquet(
        &dir.join("lines.parquet"),
        vec![
            // A CSV's byte-order mark on the first header, invisible in any listing.
            (
                "\u{feff}contact",
                Arc::new(BinaryArray::from_vec(vec![b"c1", b"c1", b"c2", b"nan"])) as _,
            ),
            ("product", Arc::new(products) as _),
            (
                "at",
                Arc::new(Int64Array::from(vec![1_700_000_000; 4])) as _,
            ),
        ],
    );
    let config = "[tables.orders]\npath = \"lines.parquet\"\n[tables.orders.columns]\n\
                  contact_id = \"contact\"\nproduct_id = \"product\"\nordered_at = \"at\"\n";
    let config = Config::from_toml(config, dir.path()).expect("config");
    let (history, report) = augur_data::load(&config).expect("load");
    let names = |ids: &augur_data::IdIndex| ids.names().map(String::from).collect::<Vec<_>>();
    assert_eq!(names(&history.contacts.ids), ["c1", "c2"]);
    assert_eq!(names(&history.products.ids), ["501", "502"]);
    let orders = report.table(augur_data::TableKind::Orders).expect("orders");
    assert_eq!(
        orders.dropped.get(&DropReason::MissingContactId).copied(),
        Some(1),
        "`nan` is a missing id, not a contact"
    );
}

#[test]
fn a_placeholder_date_in_the_future_is_dropped_and_does_not_move_the_as_of_time() {
    let (history, report) = load_lines(
        vec![
            (
                "contact",
                Arc::new(StringArray::from(vec!["c1", "c2", "c3"])) as _,
            ),
            (
                "product",
                Arc::new(StringArray::from(vec!["a", "a", "b"])) as _,
            ),
            (
                "at",
                Arc::new(StringArray::from(vec![
                    "2024-03-01T10:00:00Z",
                    "9999-12-31T00:00:00Z",
                    "2024-03-02T10:00:00Z",
                ])) as _,
            ),
        ],
        "contact_id = \"contact\"\nproduct_id = \"product\"\nordered_at = \"at\"\n",
    );
    let orders = report.table(augur_data::TableKind::Orders).expect("orders");
    assert_eq!(
        orders.dropped.get(&DropReason::FutureTimestamp).copied(),
        Some(1)
    );
    assert_eq!(
        history.event_span().map(|(_, last)| last),
        Some(1_709_373_600),
        "the last real line, 2024-03-02T10:00Z"
    );
}

#[test]
fn prices_written_as_text_read_with_their_currency_and_separators_and_the_rest_is_counted() {
    let n = 4;
    let (history, report) = load_lines(
        vec![
            (
                "contact",
                Arc::new(StringArray::from(vec!["c1", "c2", "c3", "c4"])) as _,
            ),
            ("product", Arc::new(StringArray::from(vec!["a"; n])) as _),
            (
                "price",
                Arc::new(StringArray::from(vec![
                    "$3.99", "1.234,50", "call us", "4 EUR",
                ])) as _,
            ),
            (
                "at",
                Arc::new(Int64Array::from(vec![1_700_000_000; n])) as _,
            ),
        ],
        "contact_id = \"contact\"\nproduct_id = \"product\"\nunit_price = \"price\"\nordered_at = \"at\"\n",
    );
    let o = &history.orders;
    let by_contact: Vec<(&str, f64)> = (0..o.len())
        .map(|i| (history.contacts.ids.name(o.contact[i]), o.unit_price[i]))
        .collect();
    assert_eq!(
        by_contact,
        [("c1", 3.99), ("c2", 1234.5), ("c3", 0.0), ("c4", 4.0)]
    );
    let orders = report.table(augur_data::TableKind::Orders).expect("orders");
    let notes: Vec<(&String, &u64)> = orders.notes.iter().collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].0.contains("`unit_price`") && notes[0].0.contains("call us"),
        "{notes:?}"
    );
    assert_eq!(*notes[0].1, 1);
}

#[test]
fn validate_prints_the_report_for_the_retail_export() {
    let dir = Dir::new();
    write_fixture(&dir);
    let out = run(dir.augur().arg("validate"));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for expected in [
        "orders",
        "excluded product code",
        "return without a purchase",
        "duplicate row",
        "unparsable timestamp (e.g. not a date)",
        "2010-12-01T08:26:00Z",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in report");
    }
    let out = run(dir.augur().args(["validate", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(json["contacts"], 3);
}

#[test]
fn extra_contact_columns_become_attributes() {
    use arrow::array::{BooleanArray, ListArray};
    use arrow::datatypes::Int32Type;
    use augur_data::AttributeColumn;
    let dir = Dir::new();
    write_parquet(
        &dir.join("contacts.parquet"),
        vec![
            ("contact_id", Arc::new(Int64Array::from(vec![1, 2]))),
            (
                "loyalty_tier",
                Arc::new(StringArray::from(vec![Some("gold"), None])),
            ),
            (
                "lifetime_points",
                Arc::new(Float64Array::from(vec![120.5, 3.0])),
            ),
            ("vip", Arc::new(BooleanArray::from(vec![true, false]))),
            (
                "tags",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1)]),
                    None,
                ])),
            ),
        ],
    );
    write_parquet(
        &dir.join("orders.parquet"),
        vec![
            ("contact_id", Arc::new(Int64Array::from(vec![2, 3]))),
            ("product_id", Arc::new(StringArray::from(vec!["p", "q"]))),
            (
                "ordered_at",
                Arc::new(StringArray::from(vec!["2024-01-01", "2024-01-02"])),
            ),
        ],
    );
    let config = Config::from_toml(
        "[tables.contacts]\npath = \"contacts.parquet\"\n[tables.orders]\npath = \"orders.parquet\"\n",
        dir.path(),
    )
    .expect("config");
    let (history, report) = augur_data::load(&config).expect("load");
    assert_eq!(
        (report.contacts, report.contacts_derived),
        (3, 1),
        "contact 3 appears only in orders"
    );
    let attrs = &history.contacts.attributes;
    assert!(
        !attrs.contains_key("tags"),
        "list columns are not attributes"
    );
    match &attrs["loyalty_tier"] {
        AttributeColumn::Text(v) => assert_eq!(
            v.iter().map(|x| x.as_deref()).collect::<Vec<_>>(),
            vec![Some("gold"), None, None]
        ),
        other => panic!("{other:?}"),
    }
    match &attrs["lifetime_points"] {
        AttributeColumn::Number(v) => assert_eq!(v, &vec![Some(120.5), Some(3.0), None]),
        other => panic!("{other:?}"),
    }
    match &attrs["vip"] {
        AttributeColumn::Flag(v) => assert_eq!(v, &vec![Some(true), Some(false), None]),
        other => panic!("{other:?}"),
    }
}
