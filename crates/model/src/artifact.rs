//! The model directory: `models/<version>/` with a manifest, one JSON file per model and the
//! contact snapshot as of the training time, and `models/current` naming the newest version.
//! Format documented in `docs/model-format.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::affinity::AffinityModel;
use crate::churn::ChurnModel;
use crate::error::{Error, Result};
use crate::send_time::SendTimeModel;
use crate::snapshot::{Models, Snapshot};

/// Version of the directory layout and file formats this build reads and writes. Version 2:
/// the contact snapshot's product history carries order counts and purchase ages, and the
/// affinity model a ranker per mode.
pub const FORMAT_VERSION: u32 = 2;

/// What a model directory is: when, from what, how, and how well.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Directory name, e.g. `20261128T101500Z`.
    pub version: String,
    /// When training finished (RFC 3339).
    pub created_at: String,
    /// Only events before this instant were used (RFC 3339 and UTC seconds).
    pub as_of: String,
    /// See `as_of`.
    pub as_of_seconds: i64,
    /// Churn horizon asked for and used, days.
    pub horizon_days: f64,
    /// See `horizon_days`.
    pub horizon_days_used: f64,
    /// A fingerprint of the input rows (counts and time ranges per table).
    pub data_fingerprint: String,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    /// Hyper-parameters of every model.
    pub hyperparameters: serde_json::Value,
    /// Backtest metrics (same as `metrics.json`).
    pub metrics: serde_json::Value,
    /// Fallbacks used, in words; empty when every model was fitted as intended.
    pub fallbacks: Vec<String>,
}

/// A loaded model directory.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Churn model.
    pub churn: ChurnModel,
    /// Affinity model.
    pub affinity: AffinityModel,
    /// Send-time model.
    pub send_time: SendTimeModel,
    /// Every contact's state as of the manifest's as-of time.
    pub snapshot: Snapshot,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::model_dir(
            path,
            format!("not a valid model file: {e}; retrain with `augur train`"),
        )
    })
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Resolves a models directory: a version directory (with `manifest.json`), a parent with a
/// `current` file or link naming one, or that `current` file itself (`--models models/current`).
pub fn resolve_model_dir(dir: &Path) -> Result<PathBuf> {
    if dir.join("manifest.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    if dir.is_file() {
        let parent = dir.parent().unwrap_or(Path::new(""));
        if let Some(target) = follow_current(dir, parent)? {
            return Ok(target);
        }
    }
    let current = dir.join("current");
    if current.is_dir() && current.join("manifest.json").is_file() {
        return Ok(current);
    }
    if current.is_file()
        && let Some(target) = follow_current(&current, dir)?
    {
        return Ok(target);
    }
    Err(Error::model_dir(
        dir,
        "no trained model here (no manifest.json and no `current`); run `augur train` first",
    ))
}

/// The version directory a `current` file names (relative to `models`), if it holds a model.
fn follow_current(current: &Path, models: &Path) -> Result<Option<PathBuf>> {
    let name = std::fs::read_to_string(current).map_err(|e| Error::io(current, e))?;
    let target = models.join(name.trim());
    Ok(target.join("manifest.json").is_file().then_some(target))
}

impl Artifact {
    /// Loads and checks a model directory (see [`resolve_model_dir`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = resolve_model_dir(dir)?;
        // The format version is checked before anything else, so a newer layout gets the right advice.
        let raw: serde_json::Value = read_json(&dir.join("manifest.json"))?;
        let version = raw
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(FORMAT_VERSION) {
            return Err(Error::model_dir(
                &dir,
                format!(
                    "written by a newer augur (model format {version}, this build reads up to {FORMAT_VERSION}); upgrade augur or retrain"
                ),
            ));
        }
        if version < u64::from(FORMAT_VERSION) {
            return Err(Error::model_dir(
                &dir,
                format!(
                    "written by an older augur (model format {version}, this build reads {FORMAT_VERSION}); retrain with `augur train`"
                ),
            ));
        }
        let manifest: Manifest = serde_json::from_value(raw).map_err(|e| {
            Error::model_dir(
                dir.join("manifest.json"),
                format!("not a valid manifest: {e}; retrain with `augur train`"),
            )
        })?;
        let churn: ChurnModel = read_json(&dir.join("churn.json"))?;
        let affinity: AffinityModel = read_json(&dir.join("affinity.json"))?;
        let send_time: SendTimeModel = read_json(&dir.join("send_time.json"))?;
        if churn
            .features
            .iter()
            .map(String::as_str)
            .ne(crate::features::CHURN_FEATURES)
        {
            return Err(Error::model_dir(
                &dir,
                "the churn model was trained on other features than this build computes; retrain with `augur train`",
            ));
        }
        let n = churn.features.len();
        let products = affinity.product_ids.len();
        let in_range = |p: &u32| (*p as usize) < products;
        let hours = crate::send_time::HOURS;
        if churn.mean.len() != n
            || churn.scale.len() != n
            || churn.weights.len() != n
            || send_time.population.len() != hours
            || send_time.clusters.iter().any(|c| c.len() != hours)
            || send_time.delay.is_empty()
            || affinity.neighbors.len() != products
            || affinity.popularity.len() != products
            || affinity.repeat_rate.len() != products
            || !affinity
                .neighbors
                .iter()
                .flatten()
                .all(|(q, _)| in_range(q))
            || !affinity.popular_by_country.values().flatten().all(in_range)
        {
            return Err(Error::model_dir(
                &dir,
                "model files are inconsistent; retrain with `augur train`",
            ));
        }
        let snapshot = Snapshot::read(&dir, manifest.as_of_seconds, &affinity.product_ids)?;
        Ok(Self {
            dir,
            manifest,
            churn,
            affinity,
            send_time,
            snapshot,
        })
    }

    /// The fitted models, as the scoring path takes them.
    pub fn models(&self) -> Models<'_> {
        Models {
            churn: &self.churn,
            affinity: &self.affinity,
            send_time: &self.send_time,
        }
    }

    /// Writes a model directory `root/<version>` and points `root/current` at it.
    pub fn write(
        root: &Path,
        manifest: &Manifest,
        churn: &ChurnModel,
        affinity: &AffinityModel,
        send_time: &SendTimeModel,
        snapshot: &Snapshot,
    ) -> Result<PathBuf> {
        let dir = root.join(&manifest.version);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        snapshot.write(&dir, &affinity.product_ids)?;
        write_json(&dir.join("churn.json"), churn)?;
        write_json(&dir.join("affinity.json"), affinity)?;
        write_json(&dir.join("send_time.json"), send_time)?;
        write_json(&dir.join("metrics.json"), &manifest.metrics)?;
        // The manifest last: a directory without one is an unfinished run.
        write_json(&dir.join("manifest.json"), manifest)?;
        let current = root.join("current");
        let tmp = root.join(".current.tmp");
        std::fs::write(&tmp, &manifest.version).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &current).map_err(|e| Error::io(&current, e))?;
        Ok(dir)
    }
}
