//! Signed links: `/u/<token>` names a contact and the campaign or series that mailed it, signed
//! with HMAC-SHA256 (RFC 2104) so that nobody can forge one for another contact. The token is
//! the credential of RFC 8058's one-click unsubscribe: no session, no password.
//!
//! Shape: `<key id>.<payload>.<tag>`, the payload base64url (RFC 4648 §5) JSON
//! `["contact", "campaign", issued_unix_seconds]` and the tag the first 16 bytes of the HMAC over
//! `augur-u1`, the key id and the payload. The key id lets a rotated key keep verifying the links
//! it signed for a grace period while a new key signs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{PreferencesConfig, is_id};
use crate::error::{Error, Result};

/// Bytes of the HMAC kept in a token: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;
/// Domain separation of link tags from form tags.
const LINK: &[u8] = b"augur-u1";
const FORM: &[u8] = b"augur-form1";

/// What a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The contact it was sent to.
    pub contact: String,
    /// The campaign or series that sent it.
    pub campaign: String,
    /// When it was signed (Unix seconds).
    pub issued: i64,
}

/// Why a token was refused. The page shown is the same for every reason, so that it does not
/// tell whether a contact exists; the reason goes to metrics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not of the token's shape.
    Malformed,
    /// Signed with a key that is not configured (or whose grace period ended).
    UnknownKey,
    /// The tag does not match: altered, or forged.
    BadSignature,
    /// Older than `link_days`.
    Expired,
}

impl Refused {
    /// Label for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
        }
    }
}

struct Key {
    id: String,
    secret: Vec<u8>,
    /// Verifies until then (Unix seconds); `None` = current.
    until: Option<i64>,
}

/// The keys that sign and verify links.
pub struct Keyring {
    keys: Vec<Key>,
    link_seconds: i64,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("keys", &ids).finish()
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
        m.update(&[0]);
    }
    m
}

impl Keyring {
    /// The configured keys, or — when none is configured — `generated` under the id `local`.
    ///
    /// # Errors
    /// No key at all.
    pub fn new(config: &PreferencesConfig, generated: Option<Vec<u8>>) -> Result<Self> {
        let grace = (config.key_grace_days * 86_400.0) as i64;
        let mut keys: Vec<Key> = config
            .keys
            .iter()
            .map(|k| Key {
                id: k.id.clone(),
                secret: k.secret.as_bytes().to_vec(),
                until: k.retired.map(|r| r.timestamp() + grace),
            })
            .collect();
        // The signing key first.
        keys.sort_by_key(|k| k.until.is_some());
        if keys.is_empty() {
            let secret = generated.ok_or_else(|| {
                Error::setting("preferences.keys", "no key configured and none generated")
            })?;
            keys.push(Key {
                id: "local".into(),
                secret,
                until: None,
            });
        }
        Ok(Self {
            keys,
            link_seconds: (config.link_days * 86_400.0) as i64,
        })
    }

    /// The configured keys, or — when none is configured — the key generated once and kept in
    /// `store`, so that every process (the planner, the sender, the service) signs and verifies
    /// with the same one.
    ///
    /// # Errors
    /// The store cannot be read or written.
    ///
    /// When keys are configured after links were signed with the generated one, the generated
    /// key keeps verifying them for `key_grace_days` from the first time the configured keys
    /// were seen, like a retired key.
    pub fn for_store(config: &PreferencesConfig, store: &crate::PreferenceStore) -> Result<Self> {
        if config.keys.is_empty() {
            return Self::new(config, Some(store.generated_key()?));
        }
        let mut ring = Self::new(config, None)?;
        let now = chrono::Utc::now().timestamp();
        if let Some((secret, replaced)) = store.replaced_key(now)? {
            ring.keys.push(Key {
                id: "local".into(),
                secret,
                until: Some(replaced + (config.key_grace_days * 86_400.0) as i64),
            });
        }
        Ok(ring)
    }

    fn signer(&self) -> &Key {
        &self.keys[0]
    }

    /// The token of `link`, signed with the current key.
    pub fn sign(&self, link: &Link) -> String {
        let key = self.signer();
        let payload = serde_json::json!([link.contact, link.campaign, link.issued]).to_string();
        let payload = B64.encode(payload);
        let tag = mac(&key.secret, &[LINK, key.id.as_bytes(), payload.as_bytes()]).finalize();
        format!(
            "{}.{payload}.{}",
            key.id,
            B64.encode(&tag.into_bytes()[..TAG_BYTES])
        )
    }

    /// What `token` names, if a configured key signed it and it has not expired at `now`
    /// (Unix seconds). The tag is compared in constant time.
    pub fn verify(&self, token: &str, now: i64) -> Result<Link, Refused> {
        let mut parts = token.split('.');
        let (Some(id), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Malformed);
        };
        if !is_id(id, true) || payload.len() > 2048 {
            return Err(Refused::Malformed);
        }
        let tag = B64.decode(tag).map_err(|_| Refused::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id && k.until.is_none_or(|u| now <= u))
            .ok_or(Refused::UnknownKey)?;
        if tag.len() != TAG_BYTES {
            return Err(Refused::BadSignature);
        }
        mac(&key.secret, &[LINK, id.as_bytes(), payload.as_bytes()])
            .verify_truncated_left(&tag)
            .map_err(|_| Refused::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| Refused::Malformed)?;
        let (contact, campaign, issued): (String, String, i64) =
            serde_json::from_slice(&json).map_err(|_| Refused::Malformed)?;
        if now - issued > self.link_seconds {
            return Err(Refused::Expired);
        }
        Ok(Link {
            contact,
            campaign,
            issued,
        })
    }

    /// The hidden form field that proves a form post came from the page this service rendered
    /// for `token`: an HMAC only the keys can make, so another site cannot build the post.
    pub fn form_tag(&self, token: &str) -> String {
        let tag = mac(&self.signer().secret, &[FORM, token.as_bytes()]).finalize();
        B64.encode(&tag.into_bytes()[..TAG_BYTES])
    }

    /// Whether `tag` is [`Keyring::form_tag`] of `token` under any key that still verifies.
    pub fn check_form_tag(&self, token: &str, tag: &str, now: i64) -> bool {
        let Ok(tag) = B64.decode(tag) else {
            return false;
        };
        tag.len() == TAG_BYTES
            && self.keys.iter().any(|k| {
                k.until.is_none_or(|u| now <= u)
                    && mac(&k.secret, &[FORM, token.as_bytes()])
                        .verify_truncated_left(&tag)
                        .is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKey;

    fn config(keys: &[(&str, &str, Option<&str>)]) -> PreferencesConfig {
        PreferencesConfig {
            keys: keys
                .iter()
                .map(|(id, secret, retired)| SigningKey {
                    id: (*id).into(),
                    secret: (*secret).into(),
                    retired: retired.map(|r| r.parse().expect("test setup")),
                })
                .collect(),
            ..PreferencesConfig::default()
        }
    }

    fn link() -> Link {
        Link {
            contact: "C-1 ü".into(),
            campaign: "winback".into(),
            issued: 1_790_000_000,
        }
    }

    #[test]
    fn a_signed_link_verifies_and_any_change_is_refused() {
        let ring = Keyring::new(&config(&[("k1", "0123456789abcdef-secret", None)]), None)
            .expect("test setup");
        let token = ring.sign(&link());
        assert_eq!(ring.verify(&token, link().issued + 60), Ok(link()));
        let mut other = link();
        other.contact = "C-2".into();
        let parts: Vec<&str> = token.split('.').collect();
        let theirs = ring.sign(&other);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            theirs.split('.').nth(1).expect("test setup"),
            parts[2]
        );
        assert_eq!(
            ring.verify(&forged, link().issued),
            Err(Refused::BadSignature)
        );
        assert_eq!(ring.verify("nonsense", 0), Err(Refused::Malformed));
        let late = link().issued + 366 * 86_400;
        assert_eq!(ring.verify(&token, late), Err(Refused::Expired));
    }

    #[test]
    fn a_retired_key_verifies_for_its_grace_period_only() {
        let old = Keyring::new(&config(&[("old", "an-old-secret-of-16+", None)]), None)
            .expect("test setup");
        let token = old.sign(&link());
        let rotated = Keyring::new(
            &config(&[
                ("old", "an-old-secret-of-16+", Some("2026-09-01T00:00:00Z")),
                ("new", "a-new-secret-of-16+!", None),
            ]),
            None,
        )
        .expect("test setup");
        let retired = 1_788_220_800; // 2026-09-01
        assert!(rotated.verify(&token, retired + 29 * 86_400).is_ok());
        assert_eq!(
            rotated.verify(&token, retired + 31 * 86_400),
            Err(Refused::UnknownKey)
        );
        assert!(rotated.sign(&link()).starts_with("new."));
    }

    #[test]
    fn links_signed_with_the_generated_key_outlive_its_replacement_for_the_grace_period() {
        let dir = tempfile::tempdir().expect("test setup");
        let store = crate::PreferenceStore::open(&dir.path().join("p.sqlite")).expect("test setup");
        let generated =
            Keyring::for_store(&PreferencesConfig::default(), &store).expect("test setup");
        let now = chrono::Utc::now().timestamp();
        let token = generated.sign(&Link {
            issued: now,
            ..link()
        });
        let configured = config(&[("k1", "0123456789abcdef-secret", None)]);
        let ring = Keyring::for_store(&configured, &store).expect("test setup");
        assert!(ring.sign(&link()).starts_with("k1."));
        assert!(ring.verify(&token, now + 29 * 86_400).is_ok());
        assert_eq!(
            ring.verify(&token, now + 31 * 86_400),
            Err(Refused::UnknownKey)
        );
    }

    #[test]
    fn form_tags_bind_the_token() {
        let ring =
            Keyring::new(&PreferencesConfig::default(), Some(vec![7; 32])).expect("test setup");
        let tag = ring.form_tag("a.b.c");
        assert!(ring.check_form_tag("a.b.c", &tag, 0));
        assert!(!ring.check_form_tag("a.b.d", &tag, 0));
        assert!(!ring.check_form_tag("a.b.c", "AAAA", 0));
    }
}
