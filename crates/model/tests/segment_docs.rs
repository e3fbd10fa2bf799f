//! Keeps `docs/segments.md` honest: its examples parse and compile, its error messages are the
//! ones the crate produces, its field table is the service's schema and its built-in rules are
//! the built-ins.

use std::collections::BTreeMap;

use augur_model::Fields;
use augur_segment::{Kind, Rule, Schema, SegmentSpec, builtin, catalog};
use serde::Deserialize;

const DOC: &str = include_str!("../../../docs/segments.md");

/// The fields every model offers: the schema the service and campaigns compile rules against.
fn schema() -> Schema {
    Fields::fixed_schema()
}

/// The contents of every fenced block with the given language.
fn blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in DOC.lines() {
        match &mut current {
            None if line.trim() == fence => current = Some(String::new()),
            None => {}
            Some(text) if line.trim() == "```" => {
                out.push(std::mem::take(text));
                current = None;
            }
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    out
}

/// Table rows (cells, trimmed) of the section starting with `heading`.
fn rows(heading: &str) -> Vec<Vec<String>> {
    let start = DOC.find(heading).expect("section exists");
    DOC[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

#[test]
fn json_examples_parse_and_compile() {
    let examples = blocks("json");
    assert!(!examples.is_empty());
    for json in examples {
        let rule: Rule = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}\n{json}"));
        rule.compile(&schema())
            .unwrap_or_else(|e| panic!("{e}\n{json}"));
    }
}

#[test]
fn toml_examples_parse_and_compile() {
    #[derive(Deserialize)]
    struct Config {
        segments: BTreeMap<String, SegmentSpec>,
    }
    let examples = blocks("toml");
    assert!(!examples.is_empty());
    for text in examples {
        let config: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let segments = catalog(&config.segments, &schema()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(segments.len(), builtin().len() + config.segments.len());

        // The TOML segment is the JSON rule it claims to be.
        if let Some(spec) = config.segments.get("winback_de") {
            let json: Rule = serde_json::from_str(
                r#"{"all": [{"field": "churn_tier", "in": ["high", "critical"]}, {"field": "country", "eq": "DE"}]}"#,
            )
            .expect("valid rule");
            assert_eq!(spec.rule, json);
            assert_eq!(spec.description, "High-risk customers in Germany");
        }
    }
}

#[test]
fn error_examples_are_what_the_crate_says() {
    let [text] = blocks("text").try_into().expect("one text block");
    let lines: Vec<&str> = text.lines().collect();
    let json_error = |json: &str| {
        let rule: Rule = serde_json::from_str(json).expect("valid rule");
        rule.compile(&schema())
            .expect_err("does not compile")
            .to_string()
    };
    let parse_error = |json: &str| {
        serde_json::from_str::<Rule>(json)
            .expect_err("invalid rule")
            .to_string()
    };
    let produced = [
        parse_error(
            r#"{"all": [{"field": "orders", "gte": 1}, {"field": "orders", "between": [5, 2]}]}"#,
        ),
        parse_error(r#"{"any": [{"field": "orders", "eq": 1, "gt": 2}]}"#),
        {
            let mut configured = BTreeMap::new();
            configured.insert(
                "winback".to_string(),
                toml::from_str::<SegmentSpec>(
                    r#"rule = { all = [ { field = "churn_rsik", gte = 0.7 } ] }"#,
                )
                .expect("valid spec"),
            );
            catalog(&configured, &schema())
                .expect_err("typo")
                .to_string()
        },
        json_error(r#"{"field": "country", "gte": 5}"#),
    ];
    assert_eq!(lines.len(), produced.len());
    for (doc, got) in lines.iter().zip(&produced) {
        let doc = doc.trim_end_matches('…').trim_end();
        assert!(got.starts_with(doc), "doc: {doc}\ngot: {got}");
    }
}

#[test]
fn field_table_is_the_service_schema() {
    let documented: Vec<(String, Kind)> = rows("## Fields")
        .iter()
        .map(|row| {
            let kind = match row[1].as_str() {
                "number" => Kind::Number,
                "text" => Kind::Text,
                "yes/no" => Kind::Bool,
                other => panic!("kind {other}"),
            };
            (unquote(&row[0]).to_string(), kind)
        })
        .collect();
    let mut expected: Vec<(String, Kind)> =
        schema().fields().map(|(n, k)| (n.to_string(), k)).collect();
    // The table groups fields for readers; what must agree is the set of names and their kinds.
    let mut documented = documented;
    documented.sort_by(|a, b| a.0.cmp(&b.0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(documented, expected);
}

#[test]
fn builtin_table_is_the_builtins() {
    let documented: BTreeMap<String, Rule> = rows("## Built-in segments")
        .iter()
        .map(|row| {
            let rule = serde_json::from_str(unquote(&row[2])).unwrap_or_else(|e| panic!("{e}"));
            (unquote(&row[0]).to_string(), rule)
        })
        .collect();
    let actual: BTreeMap<String, Rule> = builtin()
        .into_iter()
        .map(|(name, _, rule)| (name.to_string(), rule))
        .collect();
    assert_eq!(documented, actual);
}
