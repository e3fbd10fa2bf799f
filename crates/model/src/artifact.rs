//! The model directory: `models/<version>/` with a manifest, one JSON file per model and the
//! contact snapshot as of the training time, and `models/current` naming the newest version.
//! Format documented in `docs/model-format.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::affinity::AffinityModel;
use crate::churn::ChurnModel;
use crate::error::{Error, Result};
use crate::partial::{Partial, unique_suffix};
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
    /// Every other file of the directory with its check, so that a directory whose files do
    /// not belong together (copied over from another version) is refused. Absent in
    /// directories written before the checks existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileCheck>,
}

/// What identifies one file of a model directory: its length and a SHA-256 of its length, its
/// first and its last MiB. Cheap to verify on every load (a snapshot of a million contacts is
/// hundreds of MB), and different for any two files of two trainings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheck {
    /// Length, bytes.
    pub bytes: u64,
    /// SHA-256 of the length (little-endian u64), the first and the last MiB, in hex.
    pub sha256_ends: String,
}

impl FileCheck {
    /// The check of the file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read.
    pub fn of(path: &Path) -> Result<Self> {
        use sha2::{Digest, Sha256};
        use std::io::{Read, Seek, SeekFrom};
        const END: u64 = 1 << 20;
        let io = |e| Error::io(path, e);
        let mut file = std::fs::File::open(path).map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        let mut hash = Sha256::new();
        hash.update(bytes.to_le_bytes());
        let mut buffer = Vec::with_capacity(END as usize);
        file.by_ref()
            .take(END)
            .read_to_end(&mut buffer)
            .map_err(io)?;
        hash.update(&buffer);
        if bytes > END {
            buffer.clear();
            file.seek(SeekFrom::Start(bytes.saturating_sub(END).max(END)))
                .map_err(io)?;
            file.read_to_end(&mut buffer).map_err(io)?;
            hash.update(&buffer);
        }
        let sha256_ends = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { bytes, sha256_ends })
    }
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
        check_files(&dir, &manifest)?;
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
    /// Writes a model directory under `root` and points `root/current` at it.
    ///
    /// Everything is written into a hidden temporary directory first, then renamed into place
    /// in one step, so that no reader ever sees half a version and two trainings never write
    /// into one directory: when `manifest.version` is taken (a run in the same second), the
    /// version becomes `<version>-2`, `-3`… Each file's [`FileCheck`] goes into the manifest.
    /// `extra` files (the training report) are written beside the models. Returns the
    /// directory and the manifest as written.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Write`] naming the file that could not be written.
    pub fn write(
        root: &Path,
        manifest: &Manifest,
        models: &Models<'_>,
        snapshot: &Snapshot,
        extra: &[(&str, &str)],
    ) -> Result<(PathBuf, Manifest)> {
        // Removed when dropped, unless moved into place.
        let mut tmp = Partial::in_dir(root, &format!(".{}", manifest.version))?;
        let manifest = write_files(&tmp.path, manifest, models, snapshot, extra)?;
        let (dir, manifest) = move_into_place(root, &mut tmp, manifest)?;
        let current = root.join("current");
        let pointer = root.join(format!(".current-{}", unique_suffix()));
        std::fs::write(&pointer, &manifest.version).map_err(|e| Error::io(&pointer, e))?;
        std::fs::rename(&pointer, &current).map_err(|e| Error::io(&current, e))?;
        Ok((dir, manifest))
    }
}

/// Writes every file but the manifest into `dir`; returns the manifest with their checks.
fn write_files(
    dir: &Path,
    manifest: &Manifest,
    models: &Models<'_>,
    snapshot: &Snapshot,
    extra: &[(&str, &str)],
) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    snapshot.write(dir, &models.affinity.product_ids)?;
    write_json(&dir.join("churn.json"), models.churn)?;
    write_json(&dir.join("affinity.json"), models.affinity)?;
    write_json(&dir.join("send_time.json"), models.send_time)?;
    write_json(&dir.join("metrics.json"), &manifest.metrics)?;
    for (name, text) in extra {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    let mut manifest = manifest.clone();
    manifest.files.clear();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        manifest
            .files
            .insert(name.to_string(), FileCheck::of(&path)?);
    }
    Ok(manifest)
}

/// Writes the manifest (last: a directory without one is unfinished) and renames `tmp` to the
/// first free version name.
fn move_into_place(
    root: &Path,
    tmp: &mut Partial,
    mut manifest: Manifest,
) -> Result<(PathBuf, Manifest)> {
    let stamp = manifest.version.clone();
    for n in 1..1000 {
        let version = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = root.join(&version);
        if dir.exists() {
            continue;
        }
        manifest.version = version;
        write_json(&tmp.path.join("manifest.json"), &manifest)?;
        // A rename onto a directory that appeared meanwhile fails (it is not empty): try the
        // next name.
        if tmp.commit_if_free(&dir) {
            return Ok((dir, manifest));
        }
    }
    Err(Error::model_dir(
        root,
        format!("no free version name after {stamp} (999 taken); remove old versions"),
    ))
}

/// Refuses a directory whose files differ from those its manifest recorded.
fn check_files(dir: &Path, manifest: &Manifest) -> Result<()> {
    for (name, expected) in &manifest.files {
        let path = dir.join(name);
        let found = FileCheck::of(&path)?;
        if &found != expected {
            return Err(Error::model_dir(
                &path,
                format!(
                    "does not belong to model {} (its length or content differs from what the manifest recorded); the directory mixes files of different trainings: retrain with `augur train`",
                    manifest.version
                ),
            ));
        }
    }
    Ok(())
}
