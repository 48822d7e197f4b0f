//! Rendering customer messages from the templates in `templates/`.
//!
//! Every email is three templates, per language and trigger:
//! `email/<lang>/<trigger>.subject.txt`, `email/<lang>/<trigger>.txt` (the text part) and
//! `email/<lang>/<trigger>.html` (the HTML part), each language sharing `_layout.txt`,
//! `_layout.html` and the macros in `_macros.txt` / `_macros.html`. They are compiled into the
//! binary (see `build.rs`) and a merchant can replace any of them from a directory.
//!
//! Templates see the fields of [`MessageContext`], plus `subject` (the rendered subject, in the
//! text and HTML parts), and these filters, which write in the language of the template and
//! show every time in the customer's zone:
//!
//! - `{{ facts.event.at | datetime }}`: "Thursday, 5 March at 14:02"
//! - `{{ facts.estimate | date }}`: a day ("Thursday, 5 March"), or a range for a window that
//!   spans several days ("5–7 March"); also takes a plain date or a timestamp
//! - `{{ facts.event.at | time }}`: "14:02"
//! - `{{ n | plural("hour", "hours") }}`: the word form for a count; Polish takes three forms
//!   (`plural("godzina", "godziny", "godzin")`)
//!
//! A variable a template names but the context lacks is an error, never an empty string: a
//! broken email is not sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, Output, State, UndefinedBehavior, context};
use serde::{Deserialize, Serialize};

use super::format::{self, PluralForm};
use crate::domain::{DeliveryWindow, Facts, Language, TimeZoneName, Trigger};

/// Everything a template may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContext {
    /// What happened: picks the templates.
    pub trigger: Trigger,
    /// The customer's language. Templates see the language they are written in, which is
    /// English when the customer's language lacks this trigger.
    pub language: Language,
    /// As the merchant gave it; the Polish templates greet without it (see
    /// `templates/email/pl/_layout.txt`).
    pub customer_name: Option<String>,
    /// The shop the customer ordered from, as customers know it.
    pub merchant_name: String,
    /// The shop's logo, colour, support contact and legal line, where it set them.
    #[serde(default)]
    pub brand: super::brand::BrandContext,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// The carrier as customers know it ("DHL", "InPost").
    pub carrier_name: String,
    /// The merchant's order number; subjects name it when present.
    pub order_reference: Option<String>,
    /// Waymark's tracking page for this shipment: `{public_url}/t/{token}`.
    pub tracking_page_url: String,
    /// The carrier's own tracking page (where duties are paid); empty when unknown.
    pub carrier_tracking_url: String,
    /// One-click unsubscribe page: `{public_url}/u/{token}`.
    pub unsubscribe_url: String,
    /// Ways the customer can change the delivery, in the order to offer them.
    pub delivery_changes: Vec<DeliveryChangeLink>,
    /// Pickup point details when the parcel waits at one.
    pub pickup_point: Option<PickupPointContext>,
    /// What the detector saw: the scan, estimates, delay cause, quiet hours, who signed.
    pub facts: Facts,
    /// The customer's zone: every time is shown in it.
    pub time_zone: TimeZoneName,
    /// Why the message was sent, in plain English (from the detector).
    pub reason: String,
}

/// One way to change the delivery, with the link that does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryChangeLink {
    /// `another_day`, `neighbour`, `pickup_point` or `safe_place`; templates show any other
    /// kind with a generic label.
    pub kind: String,
    /// Where the customer makes the change.
    pub url: String,
}

/// The pickup point a parcel waits at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupPointContext {
    /// As the carrier names it ("Kiosk am Markt", "Paczkomat KRA01M").
    pub name: String,
    /// Street and town, one line.
    pub address: Option<String>,
    /// The last day the parcel can be collected before it goes back.
    pub hold_until: Option<Date>,
}

/// An email ready to send: a one-line subject and its text and HTML parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line, trimmed, never empty.
    pub subject: String,
    /// The `text/plain` part, not escaped, ending in one newline.
    pub text: String,
    /// The `text/html` part, a whole document.
    pub html: String,
}

/// Why a message could not be rendered (or the templates not loaded).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template does not compile, or failed while rendering (most often: it uses a
    /// variable the context does not have).
    #[error("template `{template}`: {source}")]
    Template {
        /// The template being compiled or rendered (`email/de/delivered.html`); the error
        /// itself names the file and line it happened in, which may be a layout.
        template: String,
        /// What went wrong, as minijinja says it.
        #[source]
        source: minijinja::Error,
    },
    /// Neither the customer's language nor English has this template.
    #[error("template `{template}` does not exist, and there is no English one to fall back to")]
    Missing {
        /// The template the customer's language lacks.
        template: String,
    },
    /// The subject template rendered nothing but whitespace.
    #[error("template `{template}` rendered an empty subject")]
    EmptySubject {
        /// The subject template.
        template: String,
    },
    /// The override directory, or a file in it, could not be read.
    #[error("template overrides, {path}: {source}")]
    Override {
        /// The directory or file that could not be read.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
}

/// The compiled email templates. Cheap to clone: clones share the templates.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn embedded() -> Self {
        Templates {
            env: Arc::new(environment()),
        }
    }

    /// Embedded templates, with any file under `override_dir` (same relative path, e.g.
    /// `email/de/delivered.html`) replacing the embedded one.
    ///
    /// Every override is compiled now, so a syntax error stops the start rather than a send.
    /// Files in the directory may also add templates of their own (a partial that an
    /// overridden template includes).
    pub fn load(override_dir: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = environment();
        if let Some(dir) = override_dir {
            let mut files = Vec::new();
            template_files(dir, dir, &mut files)?;
            for (name, path) in files {
                let source =
                    std::fs::read_to_string(&path).map_err(|source| RenderError::Override {
                        path: path.clone(),
                        source,
                    })?;
                if env.get_template(&name).is_ok() {
                    tracing::info!(template = %name, "template overridden");
                } else {
                    tracing::warn!(
                        template = %name,
                        "override replaces no embedded template; it is used only if another \
                         template includes it"
                    );
                }
                env.add_template_owned(name.clone(), source)
                    .map_err(|source| RenderError::Template {
                        template: name,
                        source,
                    })?;
            }
        }
        Ok(Templates { env: Arc::new(env) })
    }

    /// These templates with `overrides` (name, source) in place of the ones of the same names:
    /// a merchant's own versions. Each is compiled now; a name this set has no template of is
    /// refused, so an override can only replace, never add.
    pub fn with_overrides(&self, overrides: &[(String, String)]) -> Result<Self, RenderError> {
        let mut env = (*self.env).clone();
        for (name, source) in overrides {
            if self.env.get_template(name).is_err() {
                return Err(RenderError::Missing {
                    template: name.clone(),
                });
            }
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|source| RenderError::Template {
                    template: name.clone(),
                    source,
                })?;
        }
        Ok(Templates { env: Arc::new(env) })
    }

    /// Whether there is a template of this name (`email/de/delivered.html`).
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Render the email for `ctx.trigger` in the customer's language (or in English when that
    /// language lacks any of the trigger's three templates).
    pub fn render_email(&self, ctx: &MessageContext) -> Result<RenderedEmail, RenderError> {
        let language = self.language_for(ctx.language, ctx.trigger)?;
        let [subject_name, text_name, html_name] = email_templates(language, ctx.trigger);
        let message = Value::from_serialize(ctx);

        let subject = one_line(&self.render(
            &subject_name,
            context! { language => language, ..message.clone() },
        )?);
        if subject.is_empty() {
            return Err(RenderError::EmptySubject {
                template: subject_name,
            });
        }
        let full = context! { language => language, subject => &subject, ..message };
        let text = tidy_text(&self.render(&text_name, full.clone())?);
        let html = self.render(&html_name, full)?;
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }

    /// The language whose templates render this trigger: the customer's when it has all three
    /// of them, else English. A whole email in English beats one that mixes languages.
    fn language_for(&self, wanted: Language, trigger: Trigger) -> Result<Language, RenderError> {
        let missing = |language| {
            email_templates(language, trigger)
                .into_iter()
                .find(|name| self.env.get_template(name).is_err())
        };
        let Some(absent) = missing(wanted) else {
            return Ok(wanted);
        };
        if wanted != Language::FALLBACK && missing(Language::FALLBACK).is_none() {
            tracing::warn!(
                template = %absent,
                fallback = Language::FALLBACK.as_str(),
                "template missing; the email goes out in the fallback language"
            );
            return Ok(Language::FALLBACK);
        }
        Err(RenderError::Missing { template: absent })
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, RenderError> {
        let fail = |source| RenderError::Template {
            template: name.to_owned(),
            source,
        };
        self.env
            .get_template(name)
            .map_err(fail)?
            .render(ctx)
            .map_err(fail)
    }
}

/// Subject, text and HTML template names for one email.
fn email_templates(language: Language, trigger: Trigger) -> [String; 3] {
    let base = format!("email/{}/{}", language.as_str(), trigger.as_str());
    [
        format!("{base}.subject.txt"),
        format!("{base}.txt"),
        format!("{base}.html"),
    ]
}

/// The environment every template set starts from: settings first (they apply to templates
/// as they are compiled), then the embedded templates.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(escape_html_formatter);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // Debug info lists the values of the variables in scope: customer names and addresses
    // would end up in the logs with the error.
    env.set_debug(false);
    env.add_filter("date", date_filter);
    env.add_filter("datetime", datetime_filter);
    env.add_filter("time", time_filter);
    env.add_filter("plural", plural_filter);
    minijinja_embed::load_templates!(&mut env);
    env
}

/// Print values as minijinja does, except that HTML escaping leaves `/` alone. minijinja
/// also escapes it, which turns every link into `https:&#x2f;&#x2f;…`: valid, but unreadable in
/// the message source and no longer findable by the plain URL.
fn escape_html_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#39;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Collect the template files (`.html`, `.txt`, as `build.rs` embeds) under `dir`, named by
/// their path relative to `root` with `/` separators, in a stable order.
fn template_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), RenderError> {
    let unreadable = |source| RenderError::Override {
        path: dir.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    entries.sort();
    for path in entries {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            template_files(root, &path, out)?;
        } else if file_name.ends_with(".html") || file_name.ends_with(".txt") {
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

/// A subject is one header line: runs of whitespace, newlines included, become one space.
fn one_line(rendered: &str) -> String {
    rendered.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Templates are easier to write when blocks may leave blank lines behind: drop trailing
/// spaces, keep at most one blank line in a row, and end with a single newline.
fn tidy_text(rendered: &str) -> String {
    let mut out = String::with_capacity(rendered.len());
    let mut blank_run = true; // no blank lines at the top either
    for line in rendered.lines().map(str::trim_end) {
        if line.is_empty() {
            if !blank_run {
                out.push('\n');
            }
            blank_run = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank_run = false;
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn template_error(detail: impl Into<String>) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, detail.into())
}

/// The language the template is written in, from the render context.
fn language(state: &State) -> Result<Language, minijinja::Error> {
    let value = state
        .lookup("language")
        .ok_or_else(|| template_error("no `language` in the context"))?;
    Language::ALL
        .into_iter()
        .find(|l| Some(l.as_str()) == value.as_str())
        .ok_or_else(|| template_error("`language` is not en, de or pl"))
}

/// The customer's time zone, from the render context.
fn time_zone(state: &State) -> Result<TimeZone, minijinja::Error> {
    let value = state
        .lookup("time_zone")
        .ok_or_else(|| template_error("no `time_zone` in the context"))?;
    value
        .as_str()
        .and_then(|name| TimeZone::get(name).ok())
        .ok_or_else(|| template_error("`time_zone` is not a known time zone"))
}

fn parse_timestamp(value: &Value, filter: &str) -> Result<Timestamp, minijinja::Error> {
    value
        .as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .ok_or_else(|| {
            template_error(format!(
                "`{filter}` needs a timestamp like 2026-03-05T13:02:00Z, got {}",
                describe(value)
            ))
        })
}

/// What a value is, for an error message, without its content (it may be personal data).
fn describe(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => "an undefined value".into(),
        ValueKind::None => "none".into(),
        ValueKind::String => "a string in another format".into(),
        kind => format!("a {kind}"),
    }
}

/// `{{ x | date }}`: a civil date ("YYYY-MM-DD"), a timestamp (its day in the customer's
/// zone) or a delivery window (a day, or a range of days).
fn date_filter(state: &State, value: Value) -> Result<String, minijinja::Error> {
    let language = language(state)?;
    let civil = |v: &Value| v.as_str().and_then(|s| s.parse::<Date>().ok());
    if value.kind() == ValueKind::Map {
        let earliest = value.get_attr("earliest")?;
        let latest = value.get_attr("latest")?;
        let window = civil(&earliest)
            .zip(civil(&latest))
            .and_then(|(from, to)| DeliveryWindow::between(from, to).ok())
            .ok_or_else(|| {
                template_error("`date` needs a delivery window with `earliest` <= `latest`")
            })?;
        return Ok(format::window(language, window));
    }
    if let Some(day) = civil(&value) {
        return Ok(format::date(language, day));
    }
    if let Some(at) = value.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
        let day = at.to_zoned(time_zone(state)?).date();
        return Ok(format::date(language, day));
    }
    Err(template_error(format!(
        "`date` needs a date, a timestamp or a delivery window, got {}",
        describe(&value)
    )))
}

/// `{{ x | datetime }}`: a timestamp as a day and a time in the customer's zone.
fn datetime_filter(state: &State, value: Value) -> Result<String, minijinja::Error> {
    let at = parse_timestamp(&value, "datetime")?.to_zoned(time_zone(state)?);
    Ok(format::date_time(language(state)?, &at))
}

/// `{{ x | time }}`: a timestamp as the time of day in the customer's zone.
fn time_filter(state: &State, value: Value) -> Result<String, minijinja::Error> {
    let at = parse_timestamp(&value, "time")?.to_zoned(time_zone(state)?);
    Ok(format::time(language(state)?, &at))
}

/// `{{ n | plural(one, many) }}`, or `plural(one, few, many)` for Polish: the word form for
/// the count `n` in the template's language.
fn plural_filter(state: &State, n: i64, forms: Rest<String>) -> Result<String, minijinja::Error> {
    let form = format::plural_form(language(state)?, n);
    let index = match (form, forms.len()) {
        (PluralForm::One, 2 | 3) => 0,
        (PluralForm::Few, 3) => 1,
        (PluralForm::Few | PluralForm::Many, 2) => 1,
        (PluralForm::Many, 3) => 2,
        _ => {
            return Err(template_error(
                "`plural` takes two forms (one, many) or three (one, few, many)",
            ));
        }
    };
    Ok(forms[index].clone())
}

/// Customer web pages (`templates/page/`) share the templates' environment and filters.
impl Templates {
    /// Render a page template such as `page/tracking.html` with `ctx`.
    pub fn render_page(&self, name: &str, ctx: Value) -> Result<String, RenderError> {
        self.render(name, ctx)
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
