//! Personalization with minijinja. Templates compile when the campaign loads, and undefined
//! variables are errors, so a typo stops the plan (naming the template and line) before
//! anything reaches the outbox, instead of going out as an empty string to a million people.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::outbox::Rendered;
use crate::spec::Campaign;

/// What a template sees. Documented field by field in `docs/campaigns.md`.
#[derive(Debug, Serialize)]
pub struct Context<'a> {
    /// The contact.
    pub contact: ContactView<'a>,
    /// The contact's first name, or the campaign's fallback.
    pub first_name: &'a str,
    /// Recommended products, best first.
    pub products: &'a [ProductView<'a>],
    /// In a series: the product that started it (the carted, viewed or ordered one; the one
    /// back in stock or cheaper), if the exports list it.
    pub trigger_product: Option<TriggerProductView<'a>>,
    /// Categories by share of the contact's interest, highest first.
    pub category_affinity: &'a [CategoryShare<'a>],
    /// Churn tier (`low`, `medium`, `high`, `not_scored`).
    pub churn_tier: &'a str,
    /// Churn risk, if scored.
    pub churn_risk: Option<f64>,
    /// Campaign id and name.
    pub campaign: CampaignView<'a>,
    /// Variant name.
    pub variant: &'a str,
    /// One-click unsubscribe link, if an endpoint is configured.
    pub unsubscribe_url: Option<&'a str>,
    /// Planned send time in the contact's zone, RFC 3339.
    pub send_at_local: &'a str,
}

/// A contact as templates see it.
#[derive(Debug, Serialize)]
pub struct ContactView<'a> {
    /// External id.
    pub id: &'a str,
    /// Address.
    pub email: &'a str,
    /// First name as exported (may be absent).
    pub first_name: Option<&'a str>,
    /// Country code.
    pub country: Option<&'a str>,
    /// IANA zone.
    pub timezone: &'a str,
    /// Extra columns of the contacts export.
    pub attributes: std::collections::BTreeMap<&'a str, minijinja::Value>,
}

/// A recommended product.
#[derive(Debug, Serialize)]
pub struct ProductView<'a> {
    /// External id.
    pub id: &'a str,
    /// Name (the id when the export has none).
    pub name: &'a str,
    /// Price, if known.
    pub price: Option<f64>,
    /// Product page.
    pub url: Option<&'a str>,
    /// Image.
    pub image_url: Option<&'a str>,
    /// Category.
    pub category: Option<&'a str>,
    /// Affinity score.
    pub score: f64,
}

/// The product that started a series, with its price before a price drop.
#[derive(Debug, Serialize)]
pub struct TriggerProductView<'a> {
    /// The product as recommendations show it (`score` 0).
    #[serde(flatten)]
    pub product: ProductView<'a>,
    /// For a price drop, the price before it.
    pub previous_price: Option<f64>,
}

/// A category and its share of the contact's interest.
#[derive(Debug, Serialize)]
pub struct CategoryShare<'a> {
    /// Category name.
    pub name: &'a str,
    /// Share, 0–1.
    pub share: f64,
}

/// Campaign identity for templates.
#[derive(Debug, Serialize)]
pub struct CampaignView<'a> {
    /// Id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
}

struct VariantTemplates {
    subject: String,
    preheader: String,
    html: String,
    text: String,
}

/// The compiled templates of a campaign.
pub struct Templates {
    env: Environment<'static>,
    variants: Vec<VariantTemplates>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates(..)")
    }
}

fn template_error(e: &minijinja::Error, fallback: &str, contact: Option<&str>) -> Error {
    Error::Template {
        template: e.name().unwrap_or(fallback).to_string(),
        line: e.line(),
        message: e
            .detail()
            .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind())),
        contact: contact.map(str::to_string),
    }
}

impl Templates {
    /// Compiles every template of `campaign`.
    pub fn compile(campaign: &Campaign) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in &campaign.templates {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|e| template_error(&e, name, None))?;
        }
        let content = &campaign.file.content;
        let variants = campaign
            .file
            .variants
            .iter()
            .map(|v| VariantTemplates {
                subject: format!("{}.subject", v.name),
                preheader: format!("{}.preheader", v.name),
                html: v
                    .html
                    .as_ref()
                    .unwrap_or(&content.html)
                    .display()
                    .to_string(),
                text: v
                    .text
                    .as_ref()
                    .unwrap_or(&content.text)
                    .display()
                    .to_string(),
            })
            .collect();
        Ok(Self { env, variants })
    }

    /// Renders variant `variant` for one contact.
    pub fn render(&self, variant: usize, context: &Context<'_>) -> Result<Rendered> {
        let v = &self.variants[variant];
        let ctx = minijinja::Value::from_serialize(context);
        let one = |name: &str| -> Result<String> {
            let mut out = Capped(Vec::new());
            match self
                .env
                .get_template(name)
                .and_then(|t| t.render_captured_to(&ctx, &mut out).map(drop))
            {
                Ok(_) => Ok(String::from_utf8_lossy(&out.0).into_owned()),
                Err(_) if out.0.len() >= MAX_RENDERED => Err(Error::Template {
                    template: name.to_string(),
                    line: None,
                    message: format!(
                        "renders more than {} KiB; mail clients clip far shorter bodies (Gmail at 102 KB)",
                        MAX_RENDERED / 1024
                    ),
                    contact: Some(context.contact.id.to_string()),
                }),
                Err(e) => Err(template_error(&e, name, Some(context.contact.id))),
            }
        };
        let subject = one_line(&one(&v.subject)?);
        let preheader = one(&v.preheader)?;
        let html = with_preheader(&one(&v.html)?, preheader.trim());
        Ok(Rendered {
            subject,
            html,
            text: one(&v.text)?,
        })
    }
}

/// Most bytes one template may render for one contact. Every message is kept until it is
/// stored, so a template that produces megabytes (`{{ "x" * 100000000 }}`, a loop gone wrong)
/// would otherwise take the planning process's memory with it.
const MAX_RENDERED: usize = 1 << 20;

/// A rendering target that refuses to grow past [`MAX_RENDERED`] (it then holds exactly that
/// many bytes, which is how the caller tells the cap from another failure).
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = MAX_RENDERED - self.0.len();
        if bytes.len() > room {
            self.0.extend_from_slice(&bytes[..room]);
            return Err(std::io::Error::other("rendered output over the limit"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A header value on one line: every run of whitespace holding a line break or another control
/// character becomes one space, so a contact's value (a first name with CR/LF, an attempt at
/// header injection) can neither break the header nor stop the run.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.trim().chars() {
        if ch.is_control() || ch.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(ch);
    }
    out
}

/// The preheader as the first, hidden text of the HTML body: inboxes show it after the subject.
fn with_preheader(html: &str, preheader: &str) -> String {
    if preheader.is_empty() {
        return html.to_string();
    }
    let escaped = preheader
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let block = format!(
        "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">{escaped}</div>"
    );
    let at = html
        .find("<body")
        .and_then(|b| html[b..].find('>').map(|e| b + e + 1))
        .unwrap_or(0);
    format!("{}{block}{}", &html[..at], &html[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_stays_on_one_line() {
        assert_eq!(
            one_line("Hi Anna\r\nBcc: x@evil.example"),
            "Hi Anna Bcc: x@evil.example"
        );
        assert_eq!(one_line("  Hi\u{0}\tthere \n"), "Hi there");
        assert_eq!(one_line("Save 20%"), "Save 20%");
    }

    #[test]
    fn the_preheader_opens_the_body() {
        let html = with_preheader(
            "<html><body class=\"x\"><p>Hi</p></body></html>",
            "Save <20%>",
        );
        assert!(html.starts_with("<html><body class=\"x\"><div style="));
        assert!(html.contains(">Save &lt;20%&gt;</div><p>Hi</p>"));
        assert_eq!(with_preheader("<p>Hi</p>", ""), "<p>Hi</p>");
        assert!(with_preheader("<p>Hi</p>", "x").ends_with("x</div><p>Hi</p>"));
    }
}
