//! Which language a customer page speaks: the customer's own where Waymark writes it, else the
//! first of Waymark's languages the browser asks for (`Accept-Language`), else the merchant's.

use axum::extract::FromRequestParts;
use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::request::Parts;
use std::convert::Infallible;

use crate::domain::{Language, Shipment};
use crate::notify::brand::Brand;

/// The language of Waymark's the visitor's browser prefers, if it names one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BrowserLanguage(pub Option<Language>);

impl<S: Send + Sync> FromRequestParts<S> for BrowserLanguage {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(BrowserLanguage(header.and_then(preferred)))
    }
}

/// The page's language for `shipment`: its customer's, else the browser's, else `brand`'s.
pub(super) fn page_language(
    shipment: &Shipment,
    brand: &Brand,
    browser: BrowserLanguage,
) -> Language {
    shipment
        .customer
        .locale
        .language()
        .or(browser.0)
        .unwrap_or(brand.language)
}

/// The highest-weighted language of Waymark's in an `Accept-Language` value (RFC 9110 §12.5.4):
/// `de-AT` counts as `de`, `q=0` means "not this one", and of equal weights the first wins.
pub(super) fn preferred(header: &str) -> Option<Language> {
    let mut best: Option<(f32, Language)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or_default().trim();
        let weight = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q));
        let Some(weight) = weight.filter(|q| *q > 0.0) else {
            continue;
        };
        let primary = range.split('-').next().unwrap_or_default();
        let Some(language) = Language::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(primary))
        else {
            continue;
        };
        if best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, language));
        }
    }
    best.map(|(_, language)| language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heaviest_known_language_wins() {
        assert_eq!(preferred("de-AT,de;q=0.9,en;q=0.8"), Some(Language::De));
        assert_eq!(
            preferred("fr-FR,fr;q=0.9,pl;q=0.5,en;q=0.4"),
            Some(Language::Pl)
        );
        assert_eq!(preferred("en;q=0.3, PL;q=0.7"), Some(Language::Pl));
        assert_eq!(preferred("pl, de"), Some(Language::Pl));
    }

    #[test]
    fn unknown_refused_and_malformed_ranges_count_for_nothing() {
        assert_eq!(preferred("fr, es;q=0.8"), None);
        assert_eq!(preferred("de;q=0, en;q=0.1"), Some(Language::En));
        assert_eq!(preferred("de;q=abc, pl;q=2"), None);
        assert_eq!(preferred("*"), None);
        assert_eq!(preferred(""), None);
    }
}
