//! The data stage's sections of `augur.toml`: where each table lives, how its columns map onto
//! the contract, and how to read its values. [`ConfigFile`] says where the file is found and how
//! the environment overrides it; relative table paths are resolved against the file's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config_file::{ConfigFile, ConfigSource};
use crate::contract::{EmailEventKind, TableKind, WebEventKind};
use crate::error::{Error, Result};

/// The data stage's settings: the `[data]` and `[tables.*]` sections of `augur.toml`.
///
/// The other sections belong to the stages that read them (`[serve]` to `augur-serve`,
/// `[campaigns]` to `augur-campaign`, `[segments]` to `augur-segment`); the binary reads the one
/// [`ConfigFile`] and hands each stage its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Settings that apply to every table.
    pub data: DataConfig,
    /// One section per input table.
    pub tables: TablesConfig,
}

/// Settings that apply to every table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// IANA zone in which naive timestamps (no offset, no zone) are read.
    pub timezone: String,
    /// Zone for contacts with neither a valid time zone nor a known country.
    pub default_contact_timezone: String,
    /// Rows per Arrow record batch while reading.
    pub batch_size: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            default_contact_timezone: "UTC".into(),
            batch_size: 64 * 1024,
        }
    }
}

/// One section per input table; a table without `path` is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TablesConfig {
    /// `[tables.contacts]`
    pub contacts: TableConfig,
    /// `[tables.products]`
    pub products: TableConfig,
    /// `[tables.orders]`
    pub orders: TableConfig,
    /// `[tables.email_events]`
    pub email_events: TableConfig,
    /// `[tables.web_events]`
    pub web_events: TableConfig,
}

impl TablesConfig {
    /// The section of one table.
    pub fn get(&self, kind: TableKind) -> &TableConfig {
        match kind {
            TableKind::Contacts => &self.contacts,
            TableKind::Products => &self.products,
            TableKind::Orders => &self.orders,
            TableKind::EmailEvents => &self.email_events,
            TableKind::WebEvents => &self.web_events,
        }
    }

    fn get_mut(&mut self, kind: TableKind) -> &mut TableConfig {
        match kind {
            TableKind::Contacts => &mut self.contacts,
            TableKind::Products => &mut self.products,
            TableKind::Orders => &mut self.orders,
            TableKind::EmailEvents => &mut self.email_events,
            TableKind::WebEvents => &mut self.web_events,
        }
    }
}

/// Unit of integer or float epoch timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

/// Where one table lives and how to read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableConfig {
    /// A Parquet file, or a directory of Parquet files (searched recursively; hive-style
    /// `key=value` folders supply columns missing from the files).
    pub path: Option<PathBuf>,
    /// Contract field → source column, for exports with foreign column names.
    pub columns: BTreeMap<String, String>,
    /// `strftime` format for timestamps stored as strings or integers (e.g. `%m/%d/%Y %H:%M` or
    /// `%Y%m%d`). Without it, strings are read as ISO-8601 and integers as epochs.
    pub timestamp_format: Option<String>,
    /// Unit of epoch timestamps; without it the unit is inferred from the magnitude.
    pub timestamp_unit: Option<EpochUnit>,
    /// Zone for this table's naive timestamps, overriding `data.timezone`.
    pub timezone: Option<String>,
    /// Raw event value → contract event (`"Opened" = "open"`), checked before the built-in synonyms.
    pub event_values: BTreeMap<String, String>,
    /// Orders: order ids starting with this prefix are cancellations; their lines count as returns.
    pub cancelled_order_prefix: Option<String>,
    /// Orders: product codes that are not products (postage, fees, discounts); such lines are dropped.
    pub exclude_products: Vec<String>,
    /// Orders: a regular expression; product codes matching it are dropped like `exclude_products`.
    pub exclude_product_pattern: Option<String>,
}

impl TableConfig {
    /// The source column of a contract field: the mapping, else the field's own name.
    pub fn column_for<'a>(&'a self, field: &'a str) -> &'a str {
        self.columns.get(field).map_or(field, String::as_str)
    }

    /// Whether the user mapped this field explicitly (then a missing column is an error even
    /// for optional fields).
    pub fn is_mapped(&self, field: &str) -> bool {
        self.columns.contains_key(field)
    }
}

impl Config {
    /// Reads the data stage's sections from `file`: paths resolved against the file's folder,
    /// every value checked.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key, the file and close matches for an unknown key or a value
    /// of the wrong type; [`Error::InvalidSetting`] for a value serde accepts but augur cannot use.
    pub fn from_file(file: &ConfigFile) -> Result<Self> {
        let mut config = Self {
            data: file.section("data")?,
            tables: file.section("tables")?,
        };
        for kind in TableKind::ALL {
            let table = config.tables.get_mut(kind);
            if let Some(p) = &mut table.path {
                file.resolve(p);
            }
        }
        config.check()?;
        Ok(config)
    }

    /// The configuration of `augur.toml` as [`ConfigFile::open`] finds it, and where it came from.
    ///
    /// # Errors
    /// As [`ConfigFile::open`] and [`Config::from_file`].
    pub fn load(path: Option<&Path>) -> Result<(Self, ConfigSource)> {
        let file = ConfigFile::open(path)?;
        Ok((Self::from_file(&file)?, file.source().clone()))
    }

    /// Parses the data sections of TOML text (no environment overrides), resolving relative
    /// paths against `base`.
    ///
    /// # Errors
    /// As [`Config::from_file`].
    pub fn from_toml(text: &str, base: &Path) -> Result<Self> {
        Self::from_file(&ConfigFile::from_toml(text, base))
    }

    /// The zone for naive timestamps of a table.
    pub fn naive_zone(&self, kind: TableKind) -> Tz {
        let name = self
            .tables
            .get(kind)
            .timezone
            .as_deref()
            .unwrap_or(&self.data.timezone);
        Tz::from_str(name).unwrap_or(Tz::UTC)
    }

    /// The fallback zone for contacts.
    pub fn default_contact_zone(&self) -> Tz {
        Tz::from_str(&self.data.default_contact_timezone).unwrap_or(Tz::UTC)
    }

    /// Checks every value that serde cannot: zone names, field names, patterns, event values.
    fn check(&self) -> Result<()> {
        check_zone("data.timezone", &self.data.timezone)?;
        check_zone(
            "data.default_contact_timezone",
            &self.data.default_contact_timezone,
        )?;
        if self.data.batch_size == 0 {
            return Err(invalid("data.batch_size", "must be at least 1".into()));
        }
        for kind in TableKind::ALL {
            let table = self.tables.get(kind);
            let name = kind.name();
            if let Some(zone) = &table.timezone {
                check_zone(&format!("tables.{name}.timezone"), zone)?;
            }
            for field in table.columns.keys() {
                if kind.field(field).is_none() {
                    let known: Vec<_> = kind.fields().iter().map(|f| f.name).collect();
                    return Err(invalid(
                        &format!("tables.{name}.columns.{field}"),
                        format!(
                            "`{field}` is not a field of {name}; fields: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
            if let Some(pattern) = &table.exclude_product_pattern {
                regex::Regex::new(pattern).map_err(|e| {
                    invalid(
                        &format!("tables.{name}.exclude_product_pattern"),
                        e.to_string(),
                    )
                })?;
            }
            for (raw, target) in &table.event_values {
                let known = match kind {
                    TableKind::EmailEvents => EmailEventKind::parse(target).is_some(),
                    TableKind::WebEvents => WebEventKind::parse(target).is_some(),
                    _ => false,
                };
                if !known {
                    return Err(invalid(
                        &format!("tables.{name}.event_values"),
                        format!("`{raw}` maps to `{target}`, which is not an event of {name}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tables that have a path.
    pub fn configured_tables(&self) -> Vec<TableKind> {
        TableKind::ALL
            .into_iter()
            .filter(|k| self.tables.get(*k).path.is_some())
            .collect()
    }
}

fn check_zone(setting: &str, zone: &str) -> Result<()> {
    Tz::from_str(zone).map(|_| ()).map_err(|_| {
        invalid(
            setting,
            format!("`{zone}` is not an IANA time zone (e.g. Europe/Berlin, UTC)"),
        )
    })
}

fn invalid(setting: &str, message: String) -> Error {
    Error::InvalidSetting {
        setting: setting.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        use crate::config_file::DEFAULT_CONFIG;
        let config = Config::from_toml(DEFAULT_CONFIG, Path::new("")).expect("defaults parse");
        assert_eq!(config.configured_tables().len(), 5);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Config::from_toml(
            "[tables.orders.columns]\ncustomer = \"CustomerID\"\n",
            Path::new(""),
        )
        .expect_err("unknown field");
        let text = err.to_string();
        assert!(text.contains("tables.orders.columns.customer"), "{text}");
        assert!(text.contains("contact_id"), "{text}");
    }

    #[test]
    fn typo_in_section_is_rejected() {
        let err =
            Config::from_toml("[data]\ntimezon = \"UTC\"\n", Path::new("")).expect_err("typo");
        let text = err.to_string();
        assert!(text.contains("timezon"), "{text}");
        assert!(
            text.contains("`data.timezon`"),
            "the full dotted key: {text}"
        );
        assert!(text.contains("did you mean `data.timezone`"), "{text}");
        assert!(
            !text.contains("found `"),
            "not the deserializer's own words: {text}"
        );
    }

    #[test]
    fn bad_zone_is_rejected() {
        let err = Config::from_toml("[data]\ntimezone = \"Mars/Olympus\"\n", Path::new(""))
            .expect_err("bad zone");
        assert!(err.to_string().contains("data.timezone"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Config::from_toml(
            "[tables.orders]\npath = \"o.parquet\"\n",
            Path::new("/exports"),
        )
        .expect("ok");
        assert_eq!(
            config.tables.orders.path.as_deref(),
            Some(Path::new("/exports/o.parquet"))
        );
    }
}
