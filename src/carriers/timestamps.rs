//! Carriers' many ways of writing a time, turned into an [`EventTime`]: the instant in UTC, with
//! the offset the carrier gave — or, for a bare local time, the offset of the scan location's
//! zone at that moment — kept for display.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};

use crate::domain::EventTime;

/// A time that cannot be read; names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a time this carrier is known to send ({why})")]
pub struct BadTime {
    pub text: String,
    pub why: String,
}

fn bad(text: &str, why: impl Into<String>) -> BadTime {
    BadTime {
        text: text.to_owned(),
        why: why.into(),
    }
}

/// Read an ISO 8601 / RFC 3339 time: `2024-10-11T15:24:52+02:00`, `…+0200`, `…Z`, with or
/// without fractional seconds, `T` or a space. A time without offset is local to `zone` (the
/// scan location's zone, or the carrier's home zone); without a zone it is taken as UTC and no
/// offset is recorded.
pub fn parse_iso(text: &str, zone: Option<&TimeZone>) -> Result<EventTime, BadTime> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad(text, "empty"));
    }
    let normalised = trimmed.replacen(' ', "T", 1);
    if let Some(time) = with_offset(&normalised) {
        return Ok(time);
    }
    let civil: DateTime = normalised
        .parse()
        .map_err(|e: jiff::Error| bad(text, e.to_string()))?;
    local(civil, zone).map_err(|why| bad(text, why))
}

/// A time with an explicit offset or `Z`, in any of the spellings carriers use.
fn with_offset(text: &str) -> Option<EventTime> {
    // `+0200` (no colon) is what GLS sends; jiff wants `+02:00`.
    let fixed = fix_offset_colon(text);
    let text = fixed.as_deref().unwrap_or(text);
    if let Ok(zoned) = format!("{text}[{}]", offset_zone_name(text)?).parse::<Zoned>() {
        return Some(EventTime::with_offset(zoned.timestamp(), zoned.offset()));
    }
    let at: Timestamp = text.parse().ok()?;
    let offset = if text.ends_with('Z') || text.ends_with('z') {
        Offset::UTC
    } else {
        return Some(EventTime::utc(at));
    };
    Some(EventTime::with_offset(at, offset))
}

/// `+02:00` → `+02:00` as a fixed-offset zone name jiff accepts inside brackets; `Z` → `UTC`.
fn offset_zone_name(text: &str) -> Option<String> {
    if text.ends_with('Z') || text.ends_with('z') {
        return Some("UTC".into());
    }
    let sign_at = text.rfind(['+', '-'])?;
    // A date's own dashes come before the `T`.
    if sign_at < text.find('T')? {
        return None;
    }
    let offset = &text[sign_at..];
    (offset.len() == 6 && offset.as_bytes()[3] == b':').then(|| offset.to_owned())
}

fn fix_offset_colon(text: &str) -> Option<String> {
    let t_at = text.find('T')?;
    let sign_at = text.rfind(['+', '-'])?;
    if sign_at < t_at {
        return None;
    }
    let offset = &text[sign_at + 1..];
    (offset.len() == 4 && offset.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{}{}:{}", &text[..sign_at + 1], &offset[..2], &offset[2..]))
}

/// A bare local date and time at a place in `zone`.
pub fn local(civil: DateTime, zone: Option<&TimeZone>) -> Result<EventTime, String> {
    match zone {
        Some(zone) => {
            let zoned = civil.to_zoned(zone.clone()).map_err(|e| e.to_string())?;
            Ok(EventTime::with_offset(zoned.timestamp(), zoned.offset()))
        }
        None => {
            let zoned = civil.to_zoned(TimeZone::UTC).map_err(|e| e.to_string())?;
            Ok(EventTime::utc(zoned.timestamp()))
        }
    }
}

/// Read a local time in a carrier-specific layout (`%d.%m.%Y %H:%M` for DPD, `%Y%m%d%H%M%S`
/// for UPS's separate date and time fields joined) at a place in `zone`.
pub fn parse_local(
    text: &str,
    format: &str,
    zone: Option<&TimeZone>,
) -> Result<EventTime, BadTime> {
    let civil = DateTime::strptime(format, text.trim())
        .map_err(|e| bad(text, format!("expected {format}: {e}")))?;
    local(civil, zone).map_err(|why| bad(text, why))
}

/// The zone most of a country's scans happen in, for carriers that send bare local times.
pub fn zone_for_country(country: &str) -> Option<TimeZone> {
    let country = crate::domain::CountryCode::parse(if country.eq_ignore_ascii_case("UK") {
        "GB"
    } else {
        country
    })
    .ok()?;
    TimeZone::get(crate::domain::TimeZoneName::default_for(&country)?).ok()
}

/// The zone most of a region's scans happen in, for the countries that span several zones (a
/// bare 10:00 in Seattle is not 10:00 in New York): a US state or territory, a Canadian province
/// or territory, an Australian state or territory, each by its postal abbreviation, any case.
/// A region split between zones gets the zone most of its people live in. `None` for any other
/// place, which keeps its country's zone.
pub fn zone_for_region(country: &str, region: &str) -> Option<TimeZone> {
    let country = country.trim().to_ascii_uppercase();
    let region = region.trim().to_ascii_uppercase();
    let name = match (country.as_str(), region.as_str()) {
        (
            "US",
            "CT" | "DC" | "DE" | "FL" | "GA" | "MA" | "MD" | "ME" | "NC" | "NH" | "NJ" | "NY"
            | "OH" | "PA" | "RI" | "SC" | "VA" | "VT" | "WV",
        ) => "America/New_York",
        ("US", "MI") => "America/Detroit",
        ("US", "IN") => "America/Indiana/Indianapolis",
        ("US", "KY") => "America/Kentucky/Louisville",
        (
            "US",
            "AL" | "AR" | "IA" | "IL" | "KS" | "LA" | "MN" | "MO" | "MS" | "ND" | "NE" | "OK"
            | "SD" | "TN" | "TX" | "WI",
        ) => "America/Chicago",
        ("US", "CO" | "MT" | "NM" | "UT" | "WY") => "America/Denver",
        ("US", "ID") => "America/Boise",
        ("US", "AZ") => "America/Phoenix",
        ("US", "CA" | "NV" | "OR" | "WA") => "America/Los_Angeles",
        ("US", "AK") => "America/Anchorage",
        ("US", "HI") => "Pacific/Honolulu",
        ("US", "PR") => "America/Puerto_Rico",
        ("US", "VI") => "America/St_Thomas",
        ("US", "GU") => "Pacific/Guam",
        ("US", "MP") => "Pacific/Saipan",
        ("US", "AS") => "Pacific/Pago_Pago",
        // AA/AE/AP (military mail) and the freely associated states have no single zone.
        ("CA", "NL") => "America/St_Johns",
        ("CA", "NS" | "PE") => "America/Halifax",
        ("CA", "NB") => "America/Moncton",
        ("CA", "QC" | "ON") => "America/Toronto",
        ("CA", "MB") => "America/Winnipeg",
        ("CA", "SK") => "America/Regina",
        ("CA", "AB") => "America/Edmonton",
        ("CA", "BC") => "America/Vancouver",
        ("CA", "YT") => "America/Whitehorse",
        ("CA", "NT") => "America/Yellowknife",
        ("CA", "NU") => "America/Iqaluit",
        ("AU", "NSW" | "ACT") => "Australia/Sydney",
        ("AU", "VIC") => "Australia/Melbourne",
        ("AU", "QLD") => "Australia/Brisbane",
        ("AU", "SA") => "Australia/Adelaide",
        ("AU", "WA") => "Australia/Perth",
        ("AU", "TAS") => "Australia/Hobart",
        ("AU", "NT") => "Australia/Darwin",
        _ => return None,
    };
    TimeZone::get(name).ok()
}

/// The zone of a scan's place: its region's where the country spans several zones, else the
/// country's, else none.
pub fn zone_for_place(country: Option<&str>, region: Option<&str>) -> Option<TimeZone> {
    let country = country?.trim().to_ascii_uppercase();
    region
        .and_then(|region| zone_for_region(&country, region))
        .or_else(|| zone_for_country(&country))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn offsets_in_every_spelling() {
        for text in [
            "2024-10-11T15:24:52+02:00",
            "2024-10-11T15:24:52+0200",
            "2024-10-11T13:24:52Z",
            "2024-10-11 15:24:52+02:00",
            "2024-10-11T15:24:52.000+02:00",
        ] {
            let t = parse_iso(text, None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.at, "2024-10-11T13:24:52Z".parse().unwrap(), "{text}");
        }
        let with = parse_iso("2024-10-11T15:24:52+0200", None).unwrap();
        assert_eq!(with.offset_seconds, Some(7200));
        let z = parse_iso("2024-10-11T13:24:52Z", None).unwrap();
        assert_eq!(z.offset_seconds, Some(0));
    }

    #[test]
    fn a_bare_local_time_takes_the_places_zone_or_stays_utc() {
        let t = parse_iso("2018-03-02T07:53:47", Some(&berlin())).unwrap();
        assert_eq!(t.at, "2018-03-02T06:53:47Z".parse().unwrap());
        assert_eq!(t.offset_seconds, Some(3600));
        let summer = parse_iso("2018-07-02 07:53", Some(&berlin())).unwrap();
        assert_eq!(summer.offset_seconds, Some(7200));
        let unknown = parse_iso("2018-03-02T07:53:47", None).unwrap();
        assert_eq!(unknown.at, "2018-03-02T07:53:47Z".parse().unwrap());
        assert_eq!(unknown.offset_seconds, None);
    }

    #[test]
    fn carrier_layouts_and_bad_input() {
        let dpd = parse_local("02.08.2021 14:05", "%d.%m.%Y %H:%M", Some(&berlin())).unwrap();
        assert_eq!(dpd.at, "2021-08-02T12:05:00Z".parse().unwrap());
        let ups = parse_local(
            "20230302101500",
            "%Y%m%d%H%M%S",
            zone_for_country("us").as_ref(),
        )
        .unwrap();
        assert_eq!(ups.at, "2023-03-02T15:15:00Z".parse().unwrap());
        let err = parse_iso("yesterday", None).unwrap_err();
        assert!(err.to_string().contains("`yesterday`"));
        assert!(parse_iso("", None).is_err());
    }
}
