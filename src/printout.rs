//! Plain-text printouts of timelines and messages for the command line.

use std::fmt::Write;

use crate::carriers::TrackReport;
use crate::domain::{
    CarrierCode, EventTime, KeyedEvent, Notification, Shipment, TrackingEvent, TrackingNumber,
};

fn when(time: &EventTime) -> String {
    let utc = time.at.strftime("%Y-%m-%d %H:%M UTC");
    match time.offset() {
        Some(_) => format!("{} ({utc})", time.local().strftime("%Y-%m-%d %H:%M %:z")),
        None => format!("{utc} (no local offset given)"),
    }
}

fn event_line(out: &mut String, event: &TrackingEvent) {
    let status = match event.reason {
        Some(reason) => format!("{}/{}", event.status, reason),
        None => event.status.to_string(),
    };
    let _ = writeln!(
        out,
        "  {:<46} {:<44} [{}] {}{}",
        when(&event.time),
        status,
        event.raw_code,
        event.raw_text,
        event
            .location
            .as_deref()
            .map(|l| format!(" — {l}"))
            .unwrap_or_default()
    );
}

/// A carrier's answer about one number, as `waymark track` prints it.
pub fn report(carrier: &CarrierCode, number: &TrackingNumber, report: &TrackReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{carrier} {number}: {} events", report.events.len());
    let mut events: Vec<&TrackingEvent> = report.events.iter().collect();
    events.sort_by_key(|e| e.time.at);
    for event in events {
        event_line(&mut out, event);
    }
    if let Some(estimate) = report.estimate {
        let _ = writeln!(out, "estimated delivery: {estimate}");
    }
    if let Some(point) = &report.pickup_point {
        let _ = writeln!(
            out,
            "pickup point: {}{}{}",
            point.name,
            point
                .address
                .as_deref()
                .map(|a| format!(", {a}"))
                .unwrap_or_default(),
            point
                .hold_until
                .map(|d| format!(" (held until {d})"))
                .unwrap_or_default()
        );
    }
    if let Some(signed_by) = &report.signed_by {
        let _ = writeln!(out, "signed by: {signed_by}");
    }
    if let Some(url) = &report.change_delivery_url {
        let _ = writeln!(out, "change delivery: {url}");
    }
    out
}

/// A registered shipment with its stored timeline and messages.
pub fn shipment(shipment: &Shipment, events: &[KeyedEvent], messages: &[Notification]) -> String {
    let mut out = String::new();
    let j = &shipment.journey;
    let _ = writeln!(
        out,
        "{} {} — {}{}{}",
        shipment.carrier,
        shipment.tracking_number,
        j.status,
        j.reason.map(|r| format!("/{r}")).unwrap_or_default(),
        if j.active { "" } else { " (journey over)" }
    );
    if let Some(estimate) = j.carrier_estimate {
        let _ = writeln!(out, "estimated delivery: {estimate}");
    }
    if let Some(promise) = shipment.promise {
        let _ = writeln!(out, "promised: {promise}");
    }
    if let Some(error) = &shipment.last_error {
        let _ = writeln!(out, "last poll error: {error}");
    }
    let _ = writeln!(out, "timeline:");
    for e in events {
        event_line(&mut out, &e.event);
    }
    let _ = writeln!(out, "messages:");
    for m in messages {
        let _ = writeln!(
            out,
            "  #{} {:<22} {:<10} {}{}",
            m.seq,
            m.trigger,
            m.state.as_str(),
            m.reason,
            // A sent message keeps its earlier errors as history; they are not news.
            m.last_error
                .as_deref()
                .filter(|_| m.state != crate::domain::NotificationState::Sent)
                .map(|e| format!(" (error: {e})"))
                .unwrap_or_default()
        );
    }
    out
}
