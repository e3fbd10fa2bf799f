//! One e-mail: headers (deterministic Message-ID, `List-Unsubscribe` with a signed one-click link
//! and a mailto, RFC 8058's `List-Unsubscribe-Post`) around a plain-text and an HTML part.

use std::sync::Arc;

use augur_consent::{Keyring, Link};
use hmac::{Hmac, Mac};
use lettre::Message;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::outbox::Rendered;

/// Reads `Name <address>` or a bare address.
pub fn mailbox(raw: &str) -> Result<Mailbox, String> {
    raw.parse::<Mailbox>()
        .map_err(|e| format!("`{raw}` is not an e-mail address ({e})"))
}

/// `mailbox` with its domain in IDNA ASCII form (RFC 5891, UTS #46): `anna@bücher.example`
/// becomes `anna@xn--bcher-kva.example`, which every relay delivers; only a non-ASCII local
/// part still needs SMTPUTF8.
pub fn with_ascii_domain(mailbox: Mailbox) -> Result<Mailbox, String> {
    let domain = mailbox.email.domain();
    if domain.is_ascii() {
        return Ok(mailbox);
    }
    let ascii = idna::domain_to_ascii(domain).map_err(|_| {
        format!("the domain `{domain}` is not a valid internationalized domain name")
    })?;
    let email = lettre::Address::new(mailbox.email.user(), ascii)
        .map_err(|e| format!("the domain `{domain}` in IDNA form is not usable ({e})"))?;
    Ok(Mailbox::new(mailbox.name, email))
}

/// Hex of the first `n` bytes of SHA-256 over the parts, separated by NUL.
pub(crate) fn digest_hex(parts: &[&str], n: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize()[..n])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Message-ID of a run's message to a contact: the same on every re-plan, unique per run.
pub fn message_id(run_id: &str, contact_id: &str, from: &Mailbox) -> String {
    let domain = from.email.domain();
    format!(
        "<{run_id}.{}@{domain}>",
        digest_hex(&[run_id, contact_id], 12)
    )
}

/// Signs unsubscribe links. The signature covers the campaign and the contact, so a link can
/// unsubscribe only the contact it was sent to.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer with `key`.
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    /// Hex HMAC-SHA256 of `campaign` and `contact`.
    pub fn sign(&self, campaign: &str, contact: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(campaign.as_bytes());
        mac.update(&[0]);
        mac.update(contact.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `signature` is this signer's for `campaign` and `contact` (constant time).
    pub fn verify(&self, campaign: &str, contact: &str, signature: &str) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(campaign.as_bytes());
        mac.update(&[0]);
        mac.update(contact.as_bytes());
        let Some(bytes) = unhex(signature) else {
            return false;
        };
        mac.verify_slice(&bytes).is_ok()
    }

    /// The one-click link for `contact`.
    pub fn link(&self, base: &str, campaign: &str, contact: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!(
            "{base}{sep}contact={}&campaign={campaign}&sig={}",
            utf8_percent_encode(contact, NON_ALPHANUMERIC),
            self.sign(campaign, contact)
        )
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `List-Unsubscribe`.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// How unsubscribes reach the shop.
#[derive(Debug, Clone)]
pub struct Unsubscribe {
    /// One-click endpoint, if any: the shop's own (`campaigns.unsubscribe_url`), or augur's
    /// hosted `<preferences.public_url>/u/` when `hosted` is set.
    pub url: Option<String>,
    /// `mailto:` address.
    pub mailto: String,
    /// Signs the `mailto:` subject and the shop's own endpoint's links.
    pub signer: Signer,
    /// Signs hosted `/u/<token>` links (augur serve answers them).
    pub hosted: Option<Arc<Keyring>>,
}

impl Unsubscribe {
    /// The `List-Unsubscribe` value (`<https…>, <mailto:…>`) and the link for templates; a
    /// hosted link's token is issued at `at` (Unix seconds) and expires `link_days` later.
    pub fn header_and_link(
        &self,
        campaign: &str,
        contact: &str,
        at: i64,
    ) -> (String, Option<String>) {
        let sig = self.signer.sign(campaign, contact);
        let mailto = format!(
            "<mailto:{}?subject=unsubscribe%20{campaign}%20{}%20{sig}>",
            self.mailto,
            utf8_percent_encode(contact, NON_ALPHANUMERIC)
        );
        let link = match (&self.url, &self.hosted) {
            (Some(base), Some(keyring)) => Some(format!(
                "{base}{}",
                keyring.sign(&Link {
                    contact: contact.to_string(),
                    campaign: campaign.to_string(),
                    issued: at,
                })
            )),
            (Some(base), None) => Some(self.signer.link(base, campaign, contact)),
            (None, _) => None,
        };
        match link {
            Some(link) => (format!("<{link}>, {mailto}"), Some(link)),
            None => (mailto, None),
        }
    }
}

/// The keys for hosted `/u/<token>` links, when augur hosts them: `preferences.public_url` is
/// set and `campaigns.unsubscribe_url` (an endpoint of the shop's own) is not.
///
/// # Errors
/// The preference store (where a generated key is kept) cannot be opened.
pub fn hosted_keyring(config: &crate::config::Settings) -> Result<Option<Arc<Keyring>>, String> {
    if config.campaigns.unsubscribe_url.is_some() || config.preferences.public_url.is_none() {
        return Ok(None);
    }
    let store = augur_consent::PreferenceStore::open(&config.preference_store())
        .map_err(|e| e.to_string())?;
    Keyring::for_store(&config.preferences, &store)
        .map(|k| Some(Arc::new(k)))
        .map_err(|e| e.to_string())
}

/// Everything but the recipient and content, fixed per campaign.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `From:`.
    pub from: Mailbox,
    /// `Reply-To:`.
    pub reply_to: Option<Mailbox>,
    /// Unsubscribe links.
    pub unsubscribe: Unsubscribe,
}

impl Envelope {
    /// The envelope of a run: its sender and reply-to, and the configured unsubscribe links
    /// (`mailto:` by default to `unsubscribe@` the sender's domain).
    pub fn new(
        config: &crate::config::Settings,
        from: &str,
        reply_to: Option<&str>,
        signer: Signer,
        hosted: Option<Arc<Keyring>>,
    ) -> Result<Self, String> {
        let from = mailbox(from).map_err(|e| format!("from: {e}"))?;
        let reply_to = reply_to
            .map(mailbox)
            .transpose()
            .map_err(|e| format!("reply_to: {e}"))?;
        let mailto = config
            .campaigns
            .unsubscribe_mailto
            .clone()
            .unwrap_or_else(|| format!("unsubscribe@{}", from.email.domain()));
        let url = match (&config.campaigns.unsubscribe_url, &hosted) {
            (Some(own), _) => Some(own.clone()),
            (None, Some(_)) => config
                .preferences
                .public_url
                .as_ref()
                .map(|base| format!("{}/u/", base.trim_end_matches('/'))),
            (None, None) => None,
        };
        Ok(Self {
            from,
            reply_to,
            unsubscribe: Unsubscribe {
                url,
                mailto,
                signer,
                hosted,
            },
        })
    }
}

/// Builds the message to `to`.
pub fn build(
    envelope: &Envelope,
    campaign: &str,
    contact: &str,
    to: &str,
    message_id: &str,
    content: &Rendered,
) -> Result<Message, String> {
    let to = with_ascii_domain(mailbox(to)?)?;
    let now = chrono::Utc::now().timestamp();
    let (list_unsubscribe, _) = envelope.unsubscribe.header_and_link(campaign, contact, now);
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .to(to)
        .subject(content.subject.clone())
        .message_id(Some(message_id.to_string()))
        .header(ListUnsubscribe(list_unsubscribe));
    if envelope.unsubscribe.url.is_some() {
        builder = builder.header(ListUnsubscribePost);
    }
    if let Some(r) = &envelope.reply_to {
        builder = builder.reply_to(r.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            content.text.clone(),
            content.html.clone(),
        ))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_campaign_and_contact() {
        let s = Signer::new(b"key".to_vec());
        let sig = s.sign("winback", "c1");
        assert!(s.verify("winback", "c1", &sig));
        assert!(!s.verify("winback", "c2", &sig));
        assert!(!s.verify("vip", "c1", &sig));
        assert!(!Signer::new(b"other".to_vec()).verify("winback", "c1", &sig));
        assert!(!s.verify("winback", "c1", "zz"));
    }

    #[test]
    fn message_ids_are_stable_and_distinct() {
        let from = mailbox("Shop <news@shop.example>").expect("from");
        let a = message_id("winback-2026-11-28", "c1", &from);
        assert_eq!(a, message_id("winback-2026-11-28", "c1", &from));
        assert_ne!(a, message_id("winback-2026-11-29", "c1", &from));
        assert_ne!(a, message_id("winback-2026-11-28", "c2", &from));
        assert!(a.starts_with("<winback-2026-11-28.") && a.ends_with("@shop.example>"));
    }
}
