//! Expected delivery: the carrier's estimate, the merchant's promise, and how they change.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A delivery date or a window of dates, in the destination's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWindow {
    pub earliest: Date,
    pub latest: Date,
}

/// A window whose end lies before its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the window ends ({latest}) before it starts ({earliest})")]
pub struct InvertedWindow {
    pub earliest: Date,
    pub latest: Date,
}

impl DeliveryWindow {
    pub fn on(date: Date) -> Self {
        DeliveryWindow {
            earliest: date,
            latest: date,
        }
    }

    pub fn between(earliest: Date, latest: Date) -> Result<Self, InvertedWindow> {
        if latest < earliest {
            return Err(InvertedWindow { earliest, latest });
        }
        Ok(DeliveryWindow { earliest, latest })
    }

    /// Parse `2026-03-04` or `2026-03-04..2026-03-06`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let date = |s: &str| {
            s.trim()
                .parse::<Date>()
                .map_err(|_| format!("`{s}` is not a date like 2026-03-04"))
        };
        match text.split_once("..") {
            Some((from, to)) => {
                DeliveryWindow::between(date(from)?, date(to)?).map_err(|e| e.to_string())
            }
            None => Ok(DeliveryWindow::on(date(text)?)),
        }
    }
}

impl fmt::Display for DeliveryWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.earliest == self.latest {
            write!(f, "{}", self.earliest)
        } else {
            write!(f, "{}..{}", self.earliest, self.latest)
        }
    }
}

/// Who said when the parcel should arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateSource {
    /// The carrier's own estimated delivery date.
    Carrier,
    /// What the merchant promised the customer at checkout.
    Promise,
}

impl EstimateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateSource::Carrier => "carrier",
            EstimateSource::Promise => "promise",
        }
    }
}

/// One change of an estimate, kept with the reason it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstimateChange {
    pub source: EstimateSource,
    pub previous: Option<DeliveryWindow>,
    pub current: Option<DeliveryWindow>,
    pub reason: String,
}

/// Compare the carrier's estimate before and after a poll; `None` when nothing changed.
pub fn carrier_estimate_change(
    previous: Option<DeliveryWindow>,
    current: Option<DeliveryWindow>,
    latest_event_text: Option<&str>,
) -> Option<EstimateChange> {
    if previous == current || current.is_none() {
        // A carrier that stops sending an estimate has not changed its mind; keep the last one.
        return None;
    }
    let reason = match (previous, current) {
        (None, Some(now)) => format!("carrier gave a first estimate: {now}"),
        (Some(before), Some(now)) if now.latest > before.latest => {
            format!("carrier moved the estimate later, from {before} to {now}")
        }
        (Some(before), Some(now)) => format!("carrier moved the estimate from {before} to {now}"),
        _ => unreachable!("current is Some"),
    };
    let reason = match latest_event_text {
        Some(text) if !text.is_empty() => format!("{reason} (latest scan: {text})"),
        _ => reason,
    };
    Some(EstimateChange {
        source: EstimateSource::Carrier,
        previous,
        current,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn parses_a_date_or_a_window() {
        assert_eq!(
            DeliveryWindow::parse("2026-03-04").unwrap(),
            DeliveryWindow::on(date(2026, 3, 4))
        );
        assert_eq!(
            DeliveryWindow::parse("2026-03-04..2026-03-06").unwrap(),
            DeliveryWindow::between(date(2026, 3, 4), date(2026, 3, 6)).unwrap()
        );
        assert!(
            DeliveryWindow::parse("2026-03-06..2026-03-04")
                .unwrap_err()
                .contains("before it starts")
        );
        assert!(
            DeliveryWindow::parse("next week")
                .unwrap_err()
                .contains("not a date")
        );
    }

    #[test]
    fn an_estimate_change_keeps_its_reason() {
        let before = DeliveryWindow::on(date(2026, 3, 4));
        let after = DeliveryWindow::on(date(2026, 3, 6));
        let change = carrier_estimate_change(Some(before), Some(after), Some("Weather delay"))
            .expect("a change");
        assert_eq!(change.previous, Some(before));
        assert_eq!(change.current, Some(after));
        assert!(change.reason.contains("later"), "{}", change.reason);
        assert!(change.reason.contains("Weather delay"));
        assert!(carrier_estimate_change(Some(after), Some(after), None).is_none());
        assert!(carrier_estimate_change(Some(after), None, None).is_none());
    }
}
