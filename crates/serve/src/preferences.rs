//! `/u/{token}`: augur answers the links its messages carry. `POST` with the body
//! `List-Unsubscribe=One-Click` is RFC 8058's one-click unsubscribe (form-urlencoded or
//! multipart, as the RFC allows); `GET` shows the preference page (topics, frequency, a pause,
//! unsubscribe from everything), server-rendered and usable without JavaScript; the page's form
//! posts back to the same address. The token is the only credential; a token that is altered,
//! expired or names an erased contact gets the same neutral page, so the page never tells
//! whether a contact exists. Every change is durable in the preference store before the answer;
//! an unsubscribe is also appended to the event store as an e-mail event for the next training.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use augur_consent::{
    Change, Forgotten, Frequency, Keyring, Preference, PreferenceStore, PreferencesConfig,
};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const PAGE: &str = include_str!("pages/preferences.html");

/// The preference store, the keys and the page, shared by the requests.
pub struct Preferences {
    config: PreferencesConfig,
    keyring: Keyring,
    store: Mutex<PreferenceStore>,
    /// Erased contacts, read by every contact request without a lock; [`Preferences::refresh`]
    /// re-reads them when another process (`augur contacts forget`) changed the store.
    forgotten: ArcSwap<Forgotten>,
    /// The store's `data_version` when `forgotten` was read.
    seen: std::sync::atomic::AtomicI64,
    /// Changes go to one writer thread, which commits whatever has queued up together.
    writer: std::sync::mpsc::Sender<Job>,
    limiter: Limiter,
    page: minijinja::Environment<'static>,
}

impl std::fmt::Debug for Preferences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preferences")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl Preferences {
    /// Opens the store at `path` with the keys of `config` (or the store's generated key).
    ///
    /// # Errors
    /// The store cannot be opened, or the page does not compile.
    pub fn open(config: PreferencesConfig, path: &std::path::Path) -> Result<Self, String> {
        let store = PreferenceStore::open(path).map_err(|e| e.to_string())?;
        let keyring = Keyring::for_store(&config, &store).map_err(|e| e.to_string())?;
        let forgotten = store.forgotten().map_err(|e| e.to_string())?;
        let version = store.data_version().map_err(|e| e.to_string())?;
        let writing = PreferenceStore::open(path).map_err(|e| e.to_string())?;
        writing.defer_checkpoints().map_err(|e| e.to_string())?;
        let writer = spawn_writer(writing)?;
        let mut page = minijinja::Environment::new();
        page.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        page.add_template("preferences", PAGE)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            limiter: Limiter::new(config.requests_per_minute),
            config,
            keyring,
            store: Mutex::new(store),
            forgotten: ArcSwap::from_pointee(forgotten),
            seen: std::sync::atomic::AtomicI64::new(version),
            writer,
            page,
        })
    }

    /// The erased contacts as last read.
    pub fn forgotten(&self) -> Arc<Forgotten> {
        self.forgotten.load_full()
    }

    /// Re-reads the erased contacts if another process changed the store since they were read,
    /// and checkpoints the write-ahead log the writer leaves to it. Called every second.
    pub fn refresh(&self) {
        use std::sync::atomic::Ordering;
        let Ok(store) = self.store.lock() else {
            return;
        };
        if let Err(e) = store.checkpoint() {
            tracing::debug!(error = %e, "preference store checkpoint deferred");
        }
        let Ok(version) = store.data_version() else {
            return;
        };
        if version == self.seen.load(Ordering::Relaxed) {
            return;
        }
        match store.forgotten() {
            Ok(fresh) => {
                self.forgotten.store(Arc::new(fresh));
                self.seen.store(version, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "erased contacts not re-read"),
        }
    }

    /// Whether contact `id` was erased.
    pub fn is_forgotten(&self, id: &str) -> bool {
        self.forgotten().contact(id)
    }

    /// Erases contact `id` (and `email`) in the store, at once.
    ///
    /// # Errors
    /// The store cannot be written.
    pub fn forget(&self, id: &str, email: Option<&str>) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp();
        let mut store = self
            .store
            .lock()
            .map_err(|_| "the preference store failed earlier")?;
        store.forget(id, email, now).map_err(|e| e.to_string())?;
        drop(store);
        self.forgotten.rcu(|f| {
            let mut f = (**f).clone();
            f.insert(id, email);
            f
        });
        Ok(())
    }

    /// Records the unsubscribes and complaints among posted `events` as unsubscribes from
    /// everything (source `event`). A failure is logged: the events themselves are stored, and
    /// planning and sending honour them from the event store either way.
    pub fn record_opt_outs(&self, events: &[augur_events::Event]) {
        use augur_data::EmailEventKind;
        for e in events {
            let augur_events::Body::Email { event, .. } = &e.body else {
                continue;
            };
            if matches!(
                event,
                EmailEventKind::Unsubscribe | EmailEventKind::Complaint
            ) && let Err(error) =
                self.apply_blocking(&e.contact_id, &Change::UnsubscribeAll, "event")
            {
                tracing::error!(%error, "a posted opt-out was not recorded in the preference store");
            }
        }
    }

    /// A contact's choices and their history, for its data export.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn export(&self, id: &str) -> Result<serde_json::Value, String> {
        let store = self
            .store
            .lock()
            .map_err(|_| "the preference store failed earlier")?;
        store.export(id).map_err(|e| e.to_string())
    }

    /// Hands a change to the writer; the receiver gets the choices after it once its batch is
    /// committed.
    fn submit(
        &self,
        id: &str,
        change: &Change,
        source: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Preference, String>>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .send(Job {
                contact: id.to_string(),
                change: change.clone(),
                source: source.to_string(),
                reply,
            })
            .map_err(|_| "the preference store's writer stopped")?;
        Ok(answer)
    }

    /// Applies a change durably (waits for its batch's commit).
    async fn apply(&self, id: &str, change: &Change, source: &str) -> Result<Preference, String> {
        self.submit(id, change, source)?
            .await
            .map_err(|_| "the preference store's writer stopped")?
    }

    /// [`Preferences::apply`] from a thread that may block.
    fn apply_blocking(
        &self,
        id: &str,
        change: &Change,
        source: &str,
    ) -> Result<Preference, String> {
        self.submit(id, change, source)?
            .blocking_recv()
            .map_err(|_| "the preference store's writer stopped")?
    }

    fn get(&self, id: &str) -> Result<Preference, String> {
        let store = self
            .store
            .lock()
            .map_err(|_| "the preference store failed earlier")?;
        store.get(id).map_err(|e| e.to_string())
    }
}

/// One change waiting for the writer, and where its outcome goes.
struct Job {
    contact: String,
    change: Change,
    source: String,
    reply: tokio::sync::oneshot::Sender<Result<Preference, String>>,
}

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 512;

/// The writer: takes the first waiting change, everything else that queued up meanwhile, and
/// commits them in one transaction (one disk flush) before answering each. Under a burst of
/// one-click posts a request waits for at most one flush in progress and its own, instead of
/// one flush per request ahead of it. Ends when the service drops its [`Preferences`].
fn spawn_writer(mut store: PreferenceStore) -> Result<std::sync::mpsc::Sender<Job>, String> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("preference-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let changes: Vec<(&str, &Change, &str)> = jobs
                    .iter()
                    .map(|j| (j.contact.as_str(), &j.change, j.source.as_str()))
                    .collect();
                let now = chrono::Utc::now().timestamp();
                let outcome = store.apply_all(&changes, now);
                drop(changes);
                match outcome {
                    Ok(after) => {
                        for (job, p) in jobs.into_iter().zip(after) {
                            let _ = job.reply.send(Ok(p));
                        }
                    }
                    Err(e) => {
                        for job in jobs {
                            let _ = job.reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        })
        .map_err(|e| format!("the preference writer did not start: {e}"))?;
    Ok(tx)
}

/// Requests per client address per minute (a fixed one-minute window).
struct Limiter {
    per_minute: u32,
    seen: Mutex<(i64, HashMap<IpAddr, u32>)>,
}

impl Limiter {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            seen: Mutex::new((0, HashMap::new())),
        }
    }

    /// Counts a request from `ip`; false once it is over the limit this minute.
    fn allow(&self, ip: IpAddr) -> bool {
        let minute = chrono::Utc::now().timestamp() / 60;
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        if seen.0 != minute {
            *seen = (minute, HashMap::new());
        }
        let n = seen.1.entry(ip).or_default();
        *n = n.saturating_add(1);
        *n <= self.per_minute
    }
}

/// What a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Choices,
    Saved,
    Unsubscribed,
    Invalid,
    Limited,
    StaleForm,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Self::Choices => "choices",
            Self::Saved => "saved",
            Self::Unsubscribed => "unsubscribed",
            Self::Invalid => "invalid",
            Self::Limited => "limited",
            Self::StaleForm => "stale_form",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Invalid => StatusCode::NOT_FOUND,
            Self::Limited => StatusCode::TOO_MANY_REQUESTS,
            Self::StaleForm => StatusCode::FORBIDDEN,
            _ => StatusCode::OK,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Invalid => "Link not valid",
            Self::Limited => "Please wait a moment",
            Self::Unsubscribed => "Unsubscribed",
            _ => "Your e-mail preferences",
        }
    }
}

fn render(
    prefs: &Preferences,
    page: Page,
    token: &str,
    choice: Option<&Preference>,
    summary: &[String],
) -> Response {
    let now = chrono::Utc::now().timestamp();
    let topics: Vec<serde_json::Value> = prefs
        .config
        .topics
        .iter()
        .map(|t| {
            let on = choice.is_none_or(|c| !c.topics_off.contains(&t.id));
            serde_json::json!({ "id": t.id, "name": t.name, "on": on })
        })
        .collect();
    let paused_until = choice
        .and_then(|c| c.paused_until)
        .filter(|&u| u > now)
        .and_then(|u| chrono::DateTime::from_timestamp(u, 0))
        .map(|d| d.format("%-d %B %Y").to_string());
    let context = serde_json::json!({
        "page": page.name(),
        "title": page.title(),
        "form": if matches!(page, Page::Choices | Page::Saved) { prefs.keyring.form_tag(token) } else { String::new() },
        "topics": topics,
        "frequency": choice.and_then(|c| c.frequency).map_or("any", Frequency::name),
        "paused_until": paused_until,
        "pause_days": prefs.config.pause_days,
        "summary": summary,
    });
    let html = prefs
        .page
        .get_template("preferences")
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the preference page did not render");
            "<!doctype html><title>Error</title><p>Something went wrong; try again later.".into()
        });
    html_response(page.status(), html)
}

/// An HTML answer that no cache keeps, no frame embeds, no other site learns the token from (a
/// `Referer` stays on this origin), and that runs no script.
fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

/// The client's address, as the listener recorded it.
fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Checks the token and the rate limit; the contact's id when both pass. Requests with a
/// token that does not verify always count against the client address's limit (that is where
/// guessing and abuse are); a valid one-click post does not (`limit_valid` false): mail
/// providers post them for all their users from a few addresses.
fn admit(
    state: &AppState,
    peer: Option<IpAddr>,
    token: &str,
    limit_valid: bool,
) -> Result<(Arc<Preferences>, String), Box<Response>> {
    let Some(prefs) = state.preferences.clone() else {
        return Err(Box::new(html_response(
            StatusCode::NOT_FOUND,
            "<!doctype html><title>Not found</title><p>Not found.".into(),
        )));
    };
    let now = chrono::Utc::now().timestamp();
    let verified = prefs.keyring.verify(token, now);
    let counted = verified.is_err() || limit_valid;
    if counted
        && let Some(ip) = peer
        && !prefs.limiter.allow(ip)
    {
        state.metrics.preference("rate_limited");
        return Err(Box::new(render(&prefs, Page::Limited, token, None, &[])));
    }
    let link = match verified {
        Ok(link) => link,
        Err(refused) => {
            state.metrics.preference(refused.name());
            return Err(Box::new(render(&prefs, Page::Invalid, token, None, &[])));
        }
    };
    if prefs.is_forgotten(&link.contact) {
        state.metrics.preference("erased");
        return Err(Box::new(render(&prefs, Page::Invalid, token, None, &[])));
    }
    Ok((prefs, link.contact))
}

fn failed(e: &str) -> Response {
    tracing::error!(error = %e, "a preference change was not stored");
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "<!doctype html><title>Try again</title><p>Your choice could not be saved just now; nothing changed. Try again in a moment.".into(),
    )
}

/// The preference page.
#[utoipa::path(get, tag = "preferences", path = "/u/{token}", params(("token" = String, Path, description = "The signed token of a message's link")),
    responses((status = 200, description = "the preference page (HTML)"), (status = 404, description = "a neutral page: the link is altered, expired or no longer valid"), (status = 429, description = "too many requests from this address")))]
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let (prefs, contact) = match admit(&state, peer(&request), &token, true) {
        Ok(ok) => ok,
        Err(page) => return *page,
    };
    match tokio::task::spawn_blocking(move || {
        let choice = prefs.get(&contact)?;
        let page = if choice.unsubscribed_at.is_some() {
            Page::Unsubscribed
        } else {
            Page::Choices
        };
        Ok::<_, String>(render(&prefs, page, &token, Some(&choice), &[]))
    })
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => failed(&e),
        Err(e) => failed(&e.to_string()),
    }
}

/// RFC 8058 one-click unsubscribe, or the page's form.
#[utoipa::path(post, tag = "preferences", path = "/u/{token}", params(("token" = String, Path, description = "The signed token of a message's link")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click` (RFC 8058; multipart/form-data is accepted too), or the page's form"),
    responses((status = 200, description = "unsubscribed, or the choices saved (HTML confirmation)"), (status = 403, description = "the form did not come from this page"),
              (status = 404, description = "a neutral page: the link is altered, expired or no longer valid"), (status = 429, description = "too many requests from this address")))]
pub async fn post(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let peer = peer(&request);
    // An altered or expired link is refused, and counted against its address, before its
    // body is read: a client trickling bodies to made-up links holds nothing for long.
    let forged = state.preferences.as_ref().is_some_and(|p| {
        p.keyring
            .verify(&token, chrono::Utc::now().timestamp())
            .is_err()
    });
    if forged && let Err(page) = admit(&state, peer, &token, true) {
        return *page;
    }
    let headers = request.headers().clone();
    // A one-click body is a few dozen bytes and the page's form a few hundred: one that has
    // not arrived within BODY_SECONDS is not coming.
    let Ok(fields) = tokio::time::timeout(
        std::time::Duration::from_secs(BODY_SECONDS),
        read_fields(request),
    )
    .await
    else {
        state.metrics.preference("body_timeout");
        return (
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time\n",
        )
            .into_response();
    };
    let one_click = fields.as_ref().is_some_and(|fields| {
        fields
            .iter()
            .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
    });
    let (prefs, contact) = match admit(&state, peer, &token, !one_click) {
        Ok(ok) => ok,
        Err(page) => return *page,
    };
    let Some(fields) = fields else {
        return render(&prefs, Page::StaleForm, &token, None, &[]);
    };
    let (page, source, change, summary) = if one_click {
        (
            Page::Unsubscribed,
            "one_click",
            Change::UnsubscribeAll,
            Vec::new(),
        )
    } else {
        let now = chrono::Utc::now().timestamp();
        let tag = field(&fields, "form").unwrap_or_default();
        if !prefs.keyring.check_form_tag(&token, tag, now) || cross_site(&headers) {
            return render(&prefs, Page::StaleForm, &token, None, &[]);
        }
        if field(&fields, "action") == Some("unsubscribe") {
            (
                Page::Unsubscribed,
                "page",
                Change::UnsubscribeAll,
                Vec::new(),
            )
        } else {
            let (change, summary) = choices(&prefs, &fields, now);
            (Page::Saved, "page", change, summary)
        }
    };
    // No blocking-pool hop: the change goes straight to the writer thread, and the answer
    // leaves once its batch is committed. An unsubscribe is then durable: planning, sending and
    // series read it from the store, and the next training reads it as an e-mail event.
    match prefs.apply(&contact, &change, source).await {
        Ok(after) => {
            state.metrics.preference(page.name());
            if one_click {
                // RFC 8058 asks only for a success status; a short text suits mail clients.
                return (StatusCode::OK, "unsubscribed\n").into_response();
            }
            render(&prefs, page, &token, Some(&after), &summary)
        }
        Err(e) => failed(&e),
    }
}

/// The page's choices as one change, and the lines that confirm them.
fn choices(prefs: &Preferences, fields: &[(String, String)], now: i64) -> (Change, Vec<String>) {
    let on: BTreeSet<&str> = fields
        .iter()
        .filter(|(k, _)| k == "topic")
        .map(|(_, v)| v.as_str())
        .collect();
    let topics_off: BTreeSet<String> = prefs
        .config
        .topics
        .iter()
        .filter(|t| !on.contains(t.id.as_str()))
        .map(|t| t.id.clone())
        .collect();
    let frequency = field(fields, "frequency").and_then(Frequency::parse);
    let paused_until = (field(fields, "pause") == Some("on"))
        .then(|| now + (prefs.config.pause_days * 86_400.0) as i64);
    let mut summary: Vec<String> = prefs
        .config
        .topics
        .iter()
        .map(|t| {
            let state = if topics_off.contains(&t.id) {
                "off"
            } else {
                "on"
            };
            format!("{}: {state}", t.name)
        })
        .collect();
    summary.push(match frequency {
        Some(Frequency::Weekly) => "At most one e-mail a week".into(),
        Some(Frequency::Monthly) => "At most one e-mail a month".into(),
        None => "Whenever there is something for you".into(),
    });
    if paused_until.is_some() {
        summary.push(format!("Paused for {} days", prefs.config.pause_days));
    }
    (
        Change::Choose {
            topics_off,
            frequency,
            paused_until,
        },
        summary,
    )
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether the form was posted from another site: by the browser's own word
/// (`Sec-Fetch-Site` other than `same-origin` or `none`), or, from a browser that does not send
/// it, by an `Origin` naming another host (or `null`).
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, rest)| rest.trim_end_matches('/') != host),
        _ => false,
    }
}

/// Seconds a `POST /u/{token}` body may take to arrive.
const BODY_SECONDS: u64 = 5;

/// The posted fields, form-urlencoded or multipart; `None` when the body is neither.
async fn read_fields(request: Request) -> Option<Vec<(String, String)>> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if multipart {
        let mut form = Multipart::from_request(request, &()).await.ok()?;
        let mut out = Vec::new();
        while let Ok(Some(part)) = form.next_field().await {
            let name = part.name().unwrap_or_default().to_string();
            out.push((name, part.text().await.ok()?));
            if out.len() > 100 {
                return None;
            }
        }
        return Some(out);
    }
    let body = Bytes::from_request(request, &()).await.ok()?;
    Some(
        form_urlencoded::parse(&body)
            .take(100)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}
