//! The loaded model and its hot swap. Requests take the current [`Loaded`] once (an `Arc`), so
//! a reload never changes the model under a request in flight: it finishes on the old one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::config::ServeConfig;
use arc_swap::ArcSwap;
use augur_model::Artifact;
use augur_segment::{Segment, SegmentSpec};
use rayon::prelude::*;

use crate::auth::Keys;
use crate::error::Error;
use crate::metrics::Metrics;
use augur_model::Fields;

/// One loaded model directory, ready to answer from.
pub struct Loaded {
    /// Models and the contact snapshot.
    pub artifact: Artifact,
    /// What segment rules can read.
    pub fields: Fields,
    /// Built-in and configured segments, by name.
    pub segments: Vec<Segment>,
    /// Affinity-model product index by external id (for `exclude`).
    pub products: HashMap<String, u32>,
    /// Contacts per segment, counted on first ask.
    segment_sizes: OnceLock<Vec<usize>>,
    /// The erased contacts in the snapshot, found for the erasure list that is held weakly
    /// here: a new list (another erasure) is a different allocation while this one lives.
    erased: Mutex<Option<(std::sync::Weak<augur_consent::Forgotten>, Vec<usize>)>>,
}

impl Loaded {
    /// Loads and checks a model directory and compiles the segments against it.
    pub fn load(models: &Path, specs: &BTreeMap<String, SegmentSpec>) -> Result<Self, Error> {
        let artifact = Artifact::load(models)?;
        let fields = Fields::new(&artifact.snapshot);
        let segments = augur_segment::catalog(specs, &fields.schema)?;
        let products = artifact
            .affinity
            .product_index()
            .into_iter()
            .map(|(p, i)| (p.to_string(), i))
            .collect();
        Ok(Self {
            artifact,
            fields,
            segments,
            products,
            segment_sizes: OnceLock::new(),
            erased: Mutex::new(None),
        })
    }

    /// The model version.
    pub fn version(&self) -> &str {
        &self.artifact.manifest.version
    }

    /// Sets the model gauges of `metrics` to this model.
    fn report_to(&self, metrics: &Metrics) {
        metrics.model_loaded(
            self.version(),
            self.artifact.snapshot.len(),
            &self.artifact.manifest.created_at,
        );
    }

    /// The segments contact `c` belongs to.
    pub fn segments_of(&self, c: usize) -> Vec<&str> {
        let models = self.artifact.models();
        let record = self.fields.record(&self.artifact.snapshot, &models, c);
        self.segments
            .iter()
            .filter(|s| s.matcher.matches(&record))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Contacts in each segment (in `segments` order), counted once per model on all cores.
    pub fn segment_sizes(&self) -> &[usize] {
        self.segment_sizes.get_or_init(|| {
            let models = self.artifact.models();
            let snapshot = &self.artifact.snapshot;
            (0..snapshot.len())
                .into_par_iter()
                .fold(
                    || vec![0usize; self.segments.len()],
                    |mut sizes, c| {
                        let record = self.fields.record(snapshot, &models, c);
                        for (size, s) in sizes.iter_mut().zip(&self.segments) {
                            *size += usize::from(s.matcher.matches(&record));
                        }
                        sizes
                    },
                )
                .reduce(
                    || vec![0usize; self.segments.len()],
                    |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
                )
        })
    }

    /// [`Loaded::segment_sizes`] without the contacts erased since the model was trained,
    /// whom no listing shows either. Finding them hashes every contact id once per erasure
    /// list, so only when something was erased.
    pub fn listed_segment_sizes(&self, forgotten: &Arc<augur_consent::Forgotten>) -> Vec<usize> {
        let mut sizes = self.segment_sizes().to_vec();
        if forgotten.is_empty() {
            return sizes;
        }
        let snapshot = &self.artifact.snapshot;
        let mut cache = self.erased.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cache
            .as_ref()
            .is_some_and(|(of, _)| of.upgrade().is_some_and(|f| Arc::ptr_eq(&f, forgotten)));
        if !fresh {
            let erased = (0..snapshot.len())
                .into_par_iter()
                .filter(|&c| forgotten.contact(snapshot.contacts.name(c as u32)))
                .collect();
            *cache = Some((Arc::downgrade(forgotten), erased));
        }
        let models = self.artifact.models();
        for &c in cache
            .as_ref()
            .map(|(_, e)| e.as_slice())
            .unwrap_or_default()
        {
            let record = self.fields.record(snapshot, &models, c);
            for (size, s) in sizes.iter_mut().zip(&self.segments) {
                *size = size.saturating_sub(usize::from(s.matcher.matches(&record)));
            }
        }
        sizes
    }
}

/// Everything handlers share.
pub struct AppState {
    /// The model answering now.
    pub current: ArcSwap<Loaded>,
    /// The models directory given at start (a version, or a parent with `current`).
    pub models: PathBuf,
    /// Service settings.
    pub config: ServeConfig,
    /// Configured segments, compiled anew against each model.
    pub segment_specs: BTreeMap<String, SegmentSpec>,
    /// API keys, handed to the `/v1` middleware.
    pub keys: Arc<Keys>,
    /// Request and model metrics, handed to the tracking middleware.
    pub metrics: Arc<Metrics>,
    /// The event store `POST /v1/events` appends to (`None`: not opened, the route answers 500).
    pub events: Option<Arc<crate::events::Events>>,
    /// The preference store behind `/u/{token}` and erasures (`None`: those routes answer 404
    /// or 500).
    pub preferences: Option<Arc<crate::preferences::Preferences>>,
    /// What the campaign and series stages hold about contacts, for exports and erasures.
    pub records: Option<Arc<dyn crate::privacy::ContactRecords>>,
    /// Set when the shutdown signal arrives: `/readyz` answers 503 from then on.
    draining: AtomicBool,
    /// Why the newest model did not load, while the current one keeps answering.
    reload_error: Mutex<Option<String>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Batch scorings that may run at once (`POST /v1/score`): each uses every core and builds
    /// its answer in memory, so more at once only adds memory, not speed.
    pub scoring: tokio::sync::Semaphore,
}

/// See [`AppState::scoring`].
pub const SCORING_SLOTS: usize = 4;

impl AppState {
    /// Loads the model and checks the settings; nothing listens yet.
    pub fn new(
        models: PathBuf,
        config: ServeConfig,
        segment_specs: BTreeMap<String, SegmentSpec>,
        events: augur_events::EventsConfig,
    ) -> Result<Self, Error> {
        let keys = Arc::new(Keys::new(&config)?);
        let events = Some(Arc::new(
            crate::events::Events::open(events).map_err(|e| Error::Setup(e.to_string()))?,
        ));
        let loaded = Loaded::load(&models, &segment_specs)?;
        let metrics = Arc::new(Metrics::new());
        loaded.report_to(&metrics);
        Ok(Self {
            current: ArcSwap::from_pointee(loaded),
            models,
            config,
            segment_specs,
            keys,
            metrics,
            events,
            preferences: None,
            records: None,
            draining: AtomicBool::new(false),
            reload_error: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            scoring: tokio::sync::Semaphore::new(SCORING_SLOTS),
        })
    }

    /// Opens the preference store at `store` with `config`, for `/u/{token}` and erasures.
    ///
    /// # Errors
    /// The store cannot be opened, or the settings are unusable.
    pub fn with_preferences(
        mut self,
        config: augur_consent::PreferencesConfig,
        store: &std::path::Path,
    ) -> Result<Self, Error> {
        let prefs = crate::preferences::Preferences::open(config, store)
            .map_err(|e| Error::Setup(format!("preferences: {e}")))?;
        self.preferences = Some(Arc::new(prefs));
        Ok(self)
    }

    /// Adds what the campaign and series stages hold, for exports and erasures.
    pub fn with_records(mut self, records: Arc<dyn crate::privacy::ContactRecords>) -> Self {
        self.records = Some(records);
        self
    }

    /// The version of the model `models/current` names now (or of the version directory given
    /// at start), as its manifest says.
    fn newest_version(&self) -> Option<String> {
        let dir = augur_model::resolve_model_dir(&self.models).ok()?;
        let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
        let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
        manifest["version"].as_str().map(String::from)
    }

    /// Loads the newest model if it differs from the current one and swaps it in; returns the
    /// new version, or `None` when already current.
    pub async fn reload(self: &Arc<Self>) -> Result<Option<String>, Error> {
        let _one_at_a_time = self.reloading.lock().await;
        let newest = self.newest_version();
        if newest.as_deref() == Some(self.current.load().version()) {
            return Ok(None);
        }
        let state = Arc::clone(self);
        let loaded =
            tokio::task::spawn_blocking(move || Loaded::load(&state.models, &state.segment_specs))
                .await
                .map_err(|e| Error::Setup(format!("model loading stopped: {e}")))?;
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.set_reload_error(Some(e.to_string()));
                return Err(e);
            }
        };
        self.set_reload_error(None);
        let version = loaded.version().to_string();
        loaded.report_to(&self.metrics);
        self.current.store(Arc::new(loaded));
        tracing::info!(model = %version, "model reloaded");
        Ok(Some(version))
    }

    /// Checks for a newer model every `serve.reload_poll_seconds` until the process ends. A
    /// model that fails to load is reported once and the current one keeps answering.
    pub async fn watch(self: Arc<Self>) {
        let seconds = self.config.reload_poll_seconds;
        if seconds <= 0.0 {
            return;
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(seconds));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed: Option<String> = None;
        loop {
            tick.tick().await;
            let newest = self.newest_version();
            if newest.is_none() || newest == failed {
                continue;
            }
            match self.reload().await {
                Ok(_) => failed = None,
                Err(e) => {
                    tracing::warn!(error = %e, "newer model not loaded; still serving the current one");
                    failed = newest;
                }
            }
        }
    }

    /// Marks the service as shutting down: readiness fails from now on, so load balancers stop
    /// sending traffic while requests in flight finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the service should receive traffic, and if not, why: it is draining, or its
    /// model holds no contact.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::SeqCst) {
            Some("shutting down")
        } else if self.current.load().artifact.snapshot.is_empty() {
            Some("the model holds no contact")
        } else {
            None
        }
    }

    /// Why the newest model did not load, if it did not (the current one keeps answering).
    pub fn reload_error(&self) -> Option<String> {
        self.reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_reload_error(&self, error: Option<String>) {
        *self
            .reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }
}
