//! Route patterns: the router's paths, and the metrics' route labels (as `&'static str`, so
//! labelling a request allocates nothing).

/// One contact.
pub const CONTACT: &str = "/v1/contacts/{id}";
/// A contact's recommendations.
pub const RECOMMENDATIONS: &str = "/v1/contacts/{id}/recommendations";
/// A contact's best send instant.
pub const SEND_TIME: &str = "/v1/contacts/{id}/send-time";
/// Batch scoring.
pub const SCORE: &str = "/v1/score";
/// The segment catalogue.
pub const SEGMENTS: &str = "/v1/segments";
/// Ad-hoc segment preview.
pub const PREVIEW: &str = "/v1/segments/preview";
/// A segment's contacts.
pub const SEGMENT_CONTACTS: &str = "/v1/segments/{name}/contacts";
/// A contact's data export (admin).
pub const EXPORT: &str = "/v1/contacts/{id}/export";
/// The one-click unsubscribe and preference page of a message's link.
pub const PREFERENCES: &str = "/u/{token}";
/// Events as they happen.
pub const EVENTS: &str = "/v1/events";
/// Model reload.
pub const RELOAD: &str = "/v1/admin/reload";
/// Liveness.
pub const HEALTHZ: &str = "/healthz";
/// Readiness.
pub const READYZ: &str = "/readyz";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// The OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";
/// Every route.
pub const ALL: [&str; 15] = [
    CONTACT,
    EXPORT,
    PREFERENCES,
    RECOMMENDATIONS,
    SEND_TIME,
    SCORE,
    SEGMENTS,
    PREVIEW,
    SEGMENT_CONTACTS,
    EVENTS,
    RELOAD,
    HEALTHZ,
    READYZ,
    METRICS,
    OPENAPI,
];
