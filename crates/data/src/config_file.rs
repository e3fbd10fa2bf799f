//! Finding and reading `augur.toml`, the one configuration file every stage reads its own
//! section from.
//!
//! Precedence: `--config FILE` (or `AUGUR_CONFIG`), else `./augur.toml`, else the embedded
//! defaults (the demo data under `data/demo`). Then every `AUGUR_<SECTION>__<KEY>` variable
//! overrides the matching setting, e.g. `AUGUR_DATA__TIMEZONE=Europe/Berlin` or
//! `AUGUR_TABLES__ORDERS__PATH=/exports/orders`. Relative paths are resolved against the folder of
//! the configuration file (the working directory for the embedded defaults).
//!
//! Errors read like a person wrote them: an unknown key is named by its full dotted path (or its
//! environment variable), with the file it came from and the close matches among the keys that
//! exist, rather than the deserializer's own text.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../augur.default.toml");

/// Where the configuration came from, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk.
    File(PathBuf),
    /// The embedded defaults.
    Embedded,
    /// Text given directly (tests, benchmarks).
    Text,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Embedded => f.write_str("embedded defaults"),
            Self::Text => f.write_str("configuration text"),
        }
    }
}

/// `augur.toml` with its environment overrides, read once; each stage extracts its own section
/// with [`ConfigFile::section`].
#[derive(Debug, Clone)]
pub struct ConfigFile {
    figment: Figment,
    source: ConfigSource,
    base: PathBuf,
}

impl ConfigFile {
    /// Finds the configuration (`path` if given, else `./augur.toml` if it exists, else the
    /// embedded defaults) and lays the `AUGUR_*__*` environment variables over it.
    ///
    /// # Errors
    /// [`Error::Config`] when `path` names no file.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let local = Path::new("augur.toml");
        let (figment, source, base) = match path {
            Some(p) => {
                if !p.is_file() {
                    return Err(Error::Config(format!(
                        "{}: no such configuration file",
                        p.display()
                    )));
                }
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                let figment = Figment::from(Toml::file_exact(p));
                (figment, ConfigSource::File(p.to_path_buf()), base)
            }
            None if local.is_file() => (
                Figment::from(Toml::file_exact(local)),
                ConfigSource::File(local.to_path_buf()),
                PathBuf::new(),
            ),
            None => (
                Figment::from(Toml::string(DEFAULT_CONFIG)),
                ConfigSource::Embedded,
                PathBuf::new(),
            ),
        };
        let env = Env::prefixed("AUGUR_")
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        Ok(Self {
            figment: figment.merge(env),
            source,
            base,
        })
    }

    /// A configuration from TOML text (no environment overrides), relative paths resolved
    /// against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Self {
        Self {
            figment: Figment::from(Toml::string(text)),
            source: ConfigSource::Text,
            base: base.to_path_buf(),
        }
    }

    /// Where the configuration came from.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// Makes a relative path relative to the configuration file's folder.
    pub fn resolve(&self, path: &mut PathBuf) {
        if path.is_relative() && !self.base.as_os_str().is_empty() {
            *path = self.base.join(&*path);
        }
    }

    /// The section `key` (e.g. `serve`) as `T`; an absent section is `T::default()`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the dotted key at fault, where it came from and, for an unknown
    /// key, the close matches among the keys `T` knows.
    pub fn section<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T> {
        if !self.figment.contains(key) {
            return Ok(T::default());
        }
        self.figment
            .focus(key)
            .extract()
            .map_err(|e| Error::Config(self.describe(key, e)))
    }

    /// Checks that every top-level section is one of `known`, so that a misspelt `[campaing]`
    /// is an error instead of a silently ignored section.
    ///
    /// # Errors
    /// [`Error::Config`] naming the unknown section and the close matches.
    pub fn check_sections(&self, known: &[&str]) -> Result<()> {
        let sections: std::collections::BTreeMap<String, figment::value::Value> = self
            .figment
            .extract()
            .map_err(|e| Error::Config(self.describe("", e)))?;
        for section in sections.keys() {
            if !known.contains(&section.as_str()) {
                return Err(Error::Config(format!(
                    "{}: unknown section `{section}`{}; sections: {}",
                    self.source,
                    did_you_mean(section, known, ""),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// One line per figment error: where, which key, what is wrong.
    fn describe(&self, section: &str, errors: figment::Error) -> String {
        errors
            .into_iter()
            .map(|e| {
                // Paths are relative to the focused section.
                let path: Vec<String> = std::iter::once(section.to_owned())
                    .filter(|s| !s.is_empty())
                    .chain(e.path.iter().cloned())
                    .collect();
                let origin = e.metadata.as_ref().map_or_else(
                    || self.source.to_string(),
                    |m| match &m.source {
                        Some(figment::Source::File(f)) => f.display().to_string(),
                        _ if m.name.contains("environment") => {
                            let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                            format!(
                                "environment variable AUGUR_{}",
                                keys.join("__").to_uppercase()
                            )
                        }
                        _ => self.source.to_string(),
                    },
                );
                let key = path.join(".");
                match &e.kind {
                    Kind::UnknownField(found, expected) => {
                        let parent = &key[..key.len().saturating_sub(found.len() + 1)];
                        let prefix = if parent.is_empty() {
                            String::new()
                        } else {
                            format!("{parent}.")
                        };
                        format!(
                            "{origin}: unknown key `{key}`{}; keys here: {}",
                            did_you_mean(found, expected, &prefix),
                            expected.join(", ")
                        )
                    }
                    kind => format!("{origin}: `{key}`: {kind}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// ` (did you mean `a.b`?)` with the known names closest to `found`, or nothing when none is close.
fn did_you_mean(found: &str, known: &[&str], prefix: &str) -> String {
    let mut close: Vec<(f64, &str)> = known
        .iter()
        .map(|k| (strsim::jaro_winkler(found, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    match close.as_slice() {
        [] => String::new(),
        [(_, one)] => format!(" (did you mean `{prefix}{one}`?)"),
        many => {
            let names: Vec<String> = many.iter().map(|(_, k)| format!("`{prefix}{k}`")).collect();
            format!(" (did you mean {}?)", names.join(" or "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    /// A configuration file in its own temporary folder.
    fn file_with(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("augur-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("augur.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn an_unknown_nested_key_names_its_path_the_file_and_the_close_match() {
        let path = file_with("nested", "[tables.orders]\npth = \"orders.parquet\"\n");
        let file = ConfigFile::open(Some(&path)).expect("file exists");
        let text = Config::from_file(&file)
            .expect_err("unknown key")
            .to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("unknown key `tables.orders.pth`"), "{text}");
        assert!(
            text.contains("did you mean `tables.orders.path`?"),
            "{text}"
        );
    }

    #[test]
    fn a_key_far_from_every_known_one_gets_the_list_but_no_guess() {
        let file = ConfigFile::from_toml("[data]\nflux_capacitor = 1\n", Path::new(""));
        let text = Config::from_file(&file)
            .expect_err("unknown key")
            .to_string();
        assert!(text.contains("unknown key `data.flux_capacitor`"), "{text}");
        assert!(!text.contains("did you mean"), "{text}");
        assert!(
            text.contains("timezone, default_contact_timezone, batch_size"),
            "{text}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        let file = ConfigFile::from_toml("[data]\nbatch_size = \"many\"\n", Path::new(""));
        let text = Config::from_file(&file)
            .expect_err("wrong type")
            .to_string();
        assert!(text.contains("`data.batch_size`"), "{text}");
    }

    #[test]
    fn an_unknown_section_is_an_error_with_the_close_match() {
        let file = ConfigFile::from_toml("[campaing]\noutbox = \"x\"\n", Path::new(""));
        let text = file
            .check_sections(&["data", "tables", "campaigns"])
            .expect_err("unknown section")
            .to_string();
        assert!(text.contains("unknown section `campaing`"), "{text}");
        assert!(text.contains("did you mean `campaigns`?"), "{text}");
    }

    #[test]
    fn a_missing_section_is_its_default() {
        let file = ConfigFile::from_toml("", Path::new("/base"));
        let config = Config::from_file(&file).expect("empty is fine");
        assert_eq!(config.data.timezone, "UTC");
        assert!(config.configured_tables().is_empty());
    }
}
