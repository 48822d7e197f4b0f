//! A carrier's data file (`carriers/<code>.toml`): how its codes map onto Waymark's taxonomy, how
//! often and how much it may be polled, and the links a customer can use. Changing a mapping
//! needs no recompile: files in the configured carriers directory replace the bundled ones.

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::domain::{CarrierCode, DetectionPolicy, Reason, Status, TrackingNumber};

/// What a carrier code means in Waymark's taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub status: Status,
    #[serde(default)]
    pub reason: Option<Reason>,
}

impl Mapping {
    /// In transit, nothing more said: what a scan means when nothing in the mapping explains it.
    pub const IN_TRANSIT: Mapping = Mapping {
        status: Status::InTransit,
        reason: None,
    };

    /// The meaning of a scan whose own code the mapping lacks, from the carrier's coarser word
    /// on it (a category, a type, the parcel's status), but only when that cannot make the
    /// parcel look worse than it is: a setback needs the scan's own code to be believed. Else
    /// the scan is in transit (its raw code and words are kept beside it).
    pub fn for_unknown_code(coarse: Option<Mapping>) -> Mapping {
        coarse
            .filter(|m| !m.is_setback())
            .unwrap_or(Self::IN_TRANSIT)
    }

    /// Whether this meaning tells of trouble: an exception, a failed attempt, a delay, a hold, a
    /// loss or a return.
    pub fn is_setback(&self) -> bool {
        matches!(
            self.status,
            Status::Exception | Status::AttemptFailed | Status::Expired
        ) || self.reason.is_some_and(|reason| {
            matches!(
                reason,
                Reason::CustomsHeld
                    | Reason::DutiesDue
                    | Reason::AddressIssue
                    | Reason::RecipientUnavailable
                    | Reason::Refused
                    | Reason::Damaged
                    | Reason::Lost
                    | Reason::ReturningToSender
                    | Reason::ReturnedToSender
                    | Reason::WeatherDelay
                    | Reason::CarrierDelay
                    | Reason::HeldForPayment
            )
        })
    }
}

/// How hard a carrier may be polled.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most numbers one call may carry.
    pub batch_size: usize,
    /// Calls per second per account.
    pub requests_per_second: f64,
    /// Calls per day per account; none when the carrier sets no daily cap.
    #[serde(default)]
    pub daily_quota: Option<u32>,
    /// Fetches of one shipment per day allowed by the carrier's terms.
    #[serde(default)]
    pub max_fetches_per_shipment_per_day: Option<u32>,
    /// When the daily quota resets, as `HH:MM` in `quota_time_zone`.
    #[serde(default = "midnight")]
    pub quota_resets_at: String,
    #[serde(default = "utc")]
    pub quota_time_zone: String,
}

fn midnight() -> String {
    "00:00".into()
}
fn utc() -> String {
    "UTC".into()
}

/// When to ask the carrier, in each phase of a journey: minutes between polls, and the hours
/// of a delivery day (local time at the destination) when the van leaves and delivers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    /// Label created, parcel not yet handed over: nothing is expected soon.
    pub before_handover: u32,
    /// Moving between hubs, delivery not expected before the next delivery day: little news
    /// comes, so rarely.
    pub in_transit: u32,
    /// On an expected delivery day, from `out_for_delivery_from` until `out_for_delivery_until`,
    /// while the out-for-delivery scan is awaited: the customer wants to know at once.
    pub near_estimate: u32,
    /// On the van: the delivery, or a failed attempt, comes within hours.
    pub out_for_delivery: u32,
    /// Held by customs, or after a failed attempt until the next delivery day.
    pub waiting: u32,
    /// Waiting at a pickup point for the customer, who collects it when they like: the news
    /// (collected) is theirs already. A poll also comes when the pickup reminder is due.
    #[serde(default = "default_at_pickup_point")]
    pub at_pickup_point: u32,
    /// The carrier does not know the number yet.
    pub not_found: u32,
    /// Longest back-off after repeated failures.
    pub max_backoff: u32,
    /// Random spread added to every interval, in percent, so polls do not bunch up.
    pub jitter_percent: u32,
    /// When the first out-for-delivery scans of a delivery day come.
    #[serde(default = "default_out_for_delivery_from")]
    pub out_for_delivery_from: jiff::civil::Time,
    /// By when the day's out-for-delivery scans have come: a parcel not on a van by then will
    /// rarely be delivered that day.
    #[serde(default = "default_out_for_delivery_until")]
    pub out_for_delivery_until: jiff::civil::Time,
    /// When the day's last deliveries are made.
    #[serde(default = "default_deliveries_until")]
    pub deliveries_until: jiff::civil::Time,
    /// The weekdays vans deliver on (`["monday", ..., "saturday"]` unless the file says
    /// otherwise).
    #[serde(default = "default_delivery_days", deserialize_with = "weekdays")]
    pub delivery_days: Vec<jiff::civil::Weekday>,
    /// Whether vans stay home on the destination's public holidays.
    #[serde(default = "yes")]
    pub no_deliveries_on_holidays: bool,
}

fn default_delivery_days() -> Vec<jiff::civil::Weekday> {
    use jiff::civil::Weekday::*;
    vec![Monday, Tuesday, Wednesday, Thursday, Friday, Saturday]
}

fn yes() -> bool {
    true
}

/// Weekday names in English, any case (`"monday"`, `"Sat"`).
fn weekdays<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<jiff::civil::Weekday>, D::Error> {
    use jiff::civil::Weekday::*;
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|name| {
            let lower = name.trim().to_lowercase();
            [
                ("mon", Monday),
                ("tue", Tuesday),
                ("wed", Wednesday),
                ("thu", Thursday),
                ("fri", Friday),
                ("sat", Saturday),
                ("sun", Sunday),
            ]
            .into_iter()
            .find(|(prefix, _)| lower.starts_with(prefix))
            .map(|(_, day)| day)
            .ok_or_else(|| serde::de::Error::custom(format!("`{name}` is not a weekday")))
        })
        .collect()
}

fn default_at_pickup_point() -> u32 {
    720
}

fn default_out_for_delivery_from() -> jiff::civil::Time {
    jiff::civil::time(7, 30, 0, 0)
}

fn default_out_for_delivery_until() -> jiff::civil::Time {
    jiff::civil::time(10, 0, 0, 0)
}

fn default_deliveries_until() -> jiff::civil::Time {
    jiff::civil::time(20, 0, 0, 0)
}

/// Thresholds the detectors use for this carrier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    pub stall_after_business_hours: f64,
    pub pickup_reminder_after_hours: i64,
}

/// A way the customer can change the delivery, and where the carrier lets them do it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryChange {
    /// `another_day`, `neighbour`, `pickup_point` or `safe_place`.
    pub kind: String,
    /// Deep link with `{tracking_number}` in it.
    pub url: String,
}

/// What the carrier takes from the customer through Waymark's own page (the `[delivery_change]`
/// table); which changes follows from `[[delivery_changes]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryChangeRules {
    /// Whether the carrier still takes a change once the parcel is out for delivery.
    #[serde(default)]
    pub while_out_for_delivery: bool,
    /// The safe places the carrier's drivers know, by name (`front_door`, `garage`, ...).
    #[serde(default = "default_safe_places")]
    pub safe_places: Vec<String>,
    /// How many of the next delivery days "another day" offers.
    #[serde(default = "default_day_choices")]
    pub another_day_choices: usize,
}

fn default_safe_places() -> Vec<String> {
    ["front_door", "porch", "garage", "back_garden"]
        .map(String::from)
        .to_vec()
}

fn default_day_choices() -> usize {
    3
}

impl Default for DeliveryChangeRules {
    fn default() -> Self {
        DeliveryChangeRules {
            while_out_for_delivery: false,
            safe_places: default_safe_places(),
            another_day_choices: default_day_choices(),
        }
    }
}

/// Everything `carriers/<code>.toml` says about one carrier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierProfile {
    pub code: CarrierCode,
    pub name: String,
    /// The carrier's public tracking page, with `{tracking_number}` in it.
    pub tracking_url: String,
    pub limits: Limits,
    pub cadence: Cadence,
    pub detection: Detection,
    #[serde(default)]
    pub delivery_changes: Vec<DeliveryChange>,
    /// Until when, and with which choices, the changes in `delivery_changes` are offered.
    #[serde(default)]
    pub delivery_change: DeliveryChangeRules,
    /// The hosts whose links from the carrier's answers (DHL's `rerouteUrl`) may go into an
    /// email: each entry allows itself and its subdomains (`dhl.de` allows `www.dhl.de`),
    /// since a carrier controls every name under its domain. Without the key, the hosts of
    /// `tracking_url` and the `delivery_changes` links; `link_hosts = []` allows none.
    #[serde(default)]
    pub link_hosts: Option<Vec<String>>,
    /// Carrier code → normalised status and reason.
    #[serde(default)]
    pub mapping: BTreeMap<String, Mapping>,
    /// How the carrier's tracking numbers look, for auto-detection (see
    /// [`super::recognise`]).
    #[serde(default)]
    pub number_formats: Vec<super::recognise::NumberFormat>,
}

/// The host name of an `https` URL, lower-cased (the URL parser does that), if it has one.
fn link_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.domain().filter(|_| parsed.scheme() == "https")?;
    Some(host.trim_end_matches('.').to_owned())
}

/// Carrier codes missing from the mapping that were already logged: each is logged once per
/// process, so the log names what to add to the data file without flooding it.
#[derive(Debug, Default)]
pub struct UnmappedCodes(Mutex<HashSet<String>>);

/// Distinct codes remembered at most: some carriers' keys are free text (DHL's and Australia
/// Post's descriptions can name places), so they are not a closed set.
const MAX_REMEMBERED_CODES: usize = 1000;

impl UnmappedCodes {
    /// Whether `key` has not been logged yet (and remember that it now is).
    pub fn first_time(&self, key: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(key) || seen.len() >= MAX_REMEMBERED_CODES {
            return false;
        }
        seen.insert(key.to_owned());
        true
    }

    /// The keys logged so far, for tests to check what an adapter reported.
    #[cfg(test)]
    pub(crate) fn logged(&self) -> HashSet<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A carrier data file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}: {source}")]
    Syntax {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl CarrierProfile {
    /// Parse and check a data file; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ProfileError> {
        let profile: CarrierProfile =
            toml::from_str(text).map_err(|source| ProfileError::Syntax {
                file: file.to_owned(),
                source,
            })?;
        let invalid = |reason: String| ProfileError::Invalid {
            file: file.to_owned(),
            reason,
        };
        if profile.limits.batch_size == 0 {
            return Err(invalid("limits.batch_size must be at least 1".into()));
        }
        if profile.limits.requests_per_second <= 0.0 {
            return Err(invalid(
                "limits.requests_per_second must be positive".into(),
            ));
        }
        if jiff::civil::Time::strptime("%H:%M", &profile.limits.quota_resets_at).is_err() {
            return Err(invalid(format!(
                "limits.quota_resets_at `{}` is not HH:MM",
                profile.limits.quota_resets_at
            )));
        }
        if jiff::tz::TimeZone::get(&profile.limits.quota_time_zone).is_err() {
            return Err(invalid(format!(
                "limits.quota_time_zone `{}` is not a time zone",
                profile.limits.quota_time_zone
            )));
        }
        if !profile.tracking_url.contains("{tracking_number}") {
            return Err(invalid(
                "tracking_url must contain {tracking_number}".into(),
            ));
        }
        for host in profile.link_hosts.iter().flatten() {
            if link_host(&format!("https://{host}/")).as_deref() != Some(host.as_str()) {
                return Err(invalid(format!(
                    "link_hosts `{host}` is not a host name in lower case, like `www.dhl.de`"
                )));
            }
        }
        for change in &profile.delivery_changes {
            if !["another_day", "neighbour", "pickup_point", "safe_place"]
                .contains(&change.kind.as_str())
            {
                return Err(invalid(format!(
                    "delivery_changes kind `{}` is not one of another_day, neighbour, pickup_point, safe_place",
                    change.kind
                )));
            }
        }
        Ok(profile)
    }

    /// Read `dir/<code>.toml` when it exists, else use the bundled text.
    pub fn load(dir: Option<&Path>, code: &str, bundled: &str) -> Result<Self, ProfileError> {
        if let Some(dir) = dir {
            let path = dir.join(format!("{code}.toml"));
            if path.exists() {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::Io {
                    file: file.clone(),
                    source,
                })?;
                return Self::from_toml(&file, &text);
            }
        }
        Self::from_toml(&format!("carriers/{code}.toml (bundled)"), bundled)
    }

    /// The normalised meaning of a carrier code, if the mapping knows it.
    pub fn normalise(&self, raw_code: &str) -> Option<Mapping> {
        self.mapping.get(raw_code.trim()).copied()
    }

    /// The meaning of the longest `~phrase` entry of the mapping found in `text`, any case: for
    /// carriers whose scans carry words rather than codes (Royal Mail, Australia Post).
    pub fn phrase(&self, text: &str) -> Option<Mapping> {
        let text = text.to_lowercase();
        self.mapping
            .iter()
            .filter_map(|(key, mapping)| {
                Some((key.strip_prefix('~')?.trim().to_lowercase(), mapping))
            })
            .filter(|(words, _)| !words.is_empty() && text.contains(words.as_str()))
            .max_by_key(|(words, _)| words.len())
            .map(|(_, mapping)| *mapping)
    }

    /// The carrier's public tracking page for a number.
    pub fn tracking_url(&self, number: &TrackingNumber) -> String {
        self.tracking_url
            .replace("{tracking_number}", number.as_str())
    }

    /// What a customer may change about this carrier's deliveries, and until when.
    pub fn change_rules(&self) -> crate::domain::delivery_change::CarrierChangeRules {
        crate::domain::delivery_change::CarrierChangeRules {
            kinds: self
                .delivery_changes
                .iter()
                .filter_map(|c| c.kind.parse().ok())
                .collect(),
            while_out_for_delivery: self.delivery_change.while_out_for_delivery,
            safe_places: self.delivery_change.safe_places.clone(),
            another_day_choices: self.delivery_change.another_day_choices,
        }
    }

    /// The delivery-change options with their deep links for a number.
    pub fn delivery_change_links(&self, number: &TrackingNumber) -> Vec<(String, String)> {
        self.delivery_changes
            .iter()
            .map(|c| {
                (
                    c.kind.clone(),
                    c.url.replace("{tracking_number}", number.as_str()),
                )
            })
            .collect()
    }

    /// The hosts links from the carrier's answers may point to (see
    /// [`CarrierProfile::link_hosts`]).
    pub fn allowed_link_hosts(&self) -> Vec<String> {
        match &self.link_hosts {
            Some(hosts) => hosts.clone(),
            None => {
                let own = std::iter::once(&self.tracking_url)
                    .chain(self.delivery_changes.iter().map(|c| &c.url));
                let mut hosts: Vec<String> = own.filter_map(|url| link_host(url)).collect();
                hosts.sort();
                hosts.dedup();
                hosts
            }
        }
    }

    /// `url`, a link the carrier sent for the customer, when it may go into an email: `https`,
    /// on an allowed host (or under one), on the standard port and with no user name or
    /// password in front of the host (`https://www.dhl.de@evil.example/` is on
    /// `evil.example`). Else why not, in words that do not repeat the link.
    pub fn trusted_link(&self, url: &str) -> Result<String, &'static str> {
        let parsed = reqwest::Url::parse(url.trim()).map_err(|_| "not a URL")?;
        if parsed.scheme() != "https" {
            return Err("not https");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("has a user name or password before the host");
        }
        if parsed.port().is_some() {
            return Err("not on the standard port");
        }
        // `domain` is none for an IP address: no carrier links to one.
        let Some(host) = parsed.domain() else {
            return Err("not on a host name");
        };
        let host = host.trim_end_matches('.');
        let allowed = self.allowed_link_hosts().iter().any(|entry| {
            host == entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        });
        if allowed {
            Ok(parsed.to_string())
        } else {
            Err("not on a host the carrier's data file allows (link_hosts)")
        }
    }

    pub fn detection_policy(&self) -> DetectionPolicy {
        DetectionPolicy {
            stall_after_business_hours: self.detection.stall_after_business_hours,
            pickup_reminder_after_hours: self.detection.pickup_reminder_after_hours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data file with these extra top-level lines.
    fn profile(extra: &str) -> Result<CarrierProfile, ProfileError> {
        let text = format!(
            r#"code = "acme"
name = "Acme Parcels"
tracking_url = "https://track.acme.example/{{tracking_number}}"
{extra}
[limits]
batch_size = 1
requests_per_second = 1.0
[cadence]
before_handover = 720
in_transit = 720
near_estimate = 60
out_for_delivery = 60
waiting = 480
not_found = 240
max_backoff = 720
jitter_percent = 10
[detection]
stall_after_business_hours = 48.0
pickup_reminder_after_hours = 72
[[delivery_changes]]
kind = "another_day"
url = "https://www.acme.example/change/{{tracking_number}}"
[[delivery_changes]]
kind = "neighbour"
url = "https://www.acme.example/neighbour/{{tracking_number}}"
"#
        );
        CarrierProfile::from_toml("acme.toml", &text)
    }

    #[test]
    fn without_link_hosts_the_hosts_of_the_files_own_links_are_allowed() {
        let acme = profile("").expect("valid");
        assert_eq!(
            acme.allowed_link_hosts(),
            ["track.acme.example", "www.acme.example"]
        );
        assert!(acme.trusted_link("https://www.acme.example/x?p=1").is_ok());
        assert!(
            acme.trusted_link("https://sub.track.acme.example/x")
                .is_ok()
        );
        // The listed host's parent is not allowed: it is not the carrier's page.
        assert!(acme.trusted_link("https://acme.example/x").is_err());
    }

    #[test]
    fn a_listed_host_allows_itself_and_its_subdomains_only_over_https() {
        let acme = profile(r#"link_hosts = ["acme.example"]"#).expect("valid");
        for allowed in [
            "https://acme.example/change",
            "https://www.acme.example/change?n=1",
            "https://WWW.ACME.EXAMPLE./change",
        ] {
            assert!(acme.trusted_link(allowed).is_ok(), "{allowed}");
        }
        for (refused, why) in [
            ("http://www.acme.example/change", "not https"),
            ("https://acme.example.evil.example/change", "link_hosts"),
            ("https://evilacme.example/change", "link_hosts"),
            ("https://www.acme.example@evil.example/", "user name"),
            ("https://user:pass@www.acme.example/", "user name"),
            ("https://www.acme.example:8443/change", "port"),
            ("https://192.0.2.1/change", "host name"),
            ("www.acme.example/change", "not a URL"),
        ] {
            let said = acme.trusted_link(refused).expect_err(refused);
            assert!(said.contains(why), "{refused}: {said}");
            assert!(
                !said.contains("acme"),
                "the reason repeats the link: {said}"
            );
        }
        let none = profile("link_hosts = []").expect("valid");
        assert!(
            none.trusted_link("https://www.acme.example/change")
                .is_err()
        );
    }

    #[test]
    fn a_link_host_must_be_a_bare_host_name() {
        for entry in [
            "https://acme.example",
            "acme.example/change",
            "Acme.example",
            "192.0.2.1",
            "acme.example.",
        ] {
            let err = profile(&format!("link_hosts = [{entry:?}]"))
                .expect_err(entry)
                .to_string();
            assert!(err.contains("link_hosts"), "{entry}: {err}");
        }
    }

    #[test]
    fn the_bundled_dhl_file_allows_dhls_reroute_link() {
        let dhl =
            CarrierProfile::from_toml("carriers/dhl.toml", include_str!("../../carriers/dhl.toml"))
                .expect("valid");
        let reroute = "https://www.dhl.de/de/privatkunden.html?piececode=7777777770&verfuegen_selected_tab=FIRST";
        assert_eq!(dhl.trusted_link(reroute).as_deref(), Ok(reroute));
        assert!(dhl.trusted_link("https://dhl.de.evil.example/").is_err());
    }
}
