//! The sandbox carrier: realistic journeys picked by the tracking number.
//!
//! Each [`Scenario`] is a fixed script of scans. The script is laid over the parcel's registration
//! time, and only the scans at or before the (possibly accelerated) [`Clock`] are answered, so a
//! parcel moves along its journey as time passes, exactly as a real one would, and the same
//! number asked at the same instant always gets the same answer.
//!
//! The sandbox speaks its own raw codes (`PU`, `AR`, `OD`, ...) and normalises them through the
//! mapping in `carriers/sandbox.toml`, like every real adapter: a merchant can change what a code
//! means without recompiling, and a code missing from the mapping is an unreadable answer, not a
//! crash.
//!
//! ## How a script becomes times
//!
//! The label is created the moment the shipment is registered (a zone-less UTC scan). The parcel
//! is collected on *day 0*: the registration day when registered before 12:00 in the
//! destination's zone, else the next day (a courier's collection cut-off). Every later scan is
//! written as "day N, HH:MM local time at the scan's location", which keeps scans at believable
//! hours whenever the demo starts, and keeps the delivery on the date the carrier estimated.
//! Estimates are dates "day N" in the destination's calendar.

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest, delivery_to_come,
};
use super::{DeliveryOrder, PickupPointChoice};
use crate::clock::Clock;
use crate::domain::{DeliveryWindow, EventTime, TrackingEvent, TrackingNumber};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

mod changes;

/// The sandbox's data file, compiled in; a file of the same name in the carriers directory
/// replaces it (see [`CarrierProfile::load`]).
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/sandbox.toml");

/// How long a [`Scenario::NotFound`] parcel stays unknown after registration, in hours.
pub const NOT_FOUND_FOR_HOURS: i64 = 6;

/// How long every answer for a [`Scenario::Broken`] parcel is garbage after registration, in
/// hours.
pub const BROKEN_FOR_HOURS: i64 = 12;

/// Parcels registered at or after this local hour (in the destination's zone) are collected the
/// next day.
const COLLECTION_CUT_OFF_HOUR: i8 = 12;

/// When a request carries no registration time, the parcel is taken as registered this long ago,
/// so a one-off `waymark track` shows the whole journey.
const ASSUMED_AGE_DAYS: i64 = 30;

/// The simulated carrier.
#[derive(Debug, Clone)]
pub struct Sandbox {
    profile: CarrierProfile,
    clock: Clock,
    /// The delivery changes customers made, by tracking number: later scans follow them.
    changes: Arc<RwLock<HashMap<TrackingNumber, changes::Accepted>>>,
}

impl Sandbox {
    /// A sandbox that normalises through `profile` and reads the time from `clock`.
    pub fn new(profile: CarrierProfile, clock: Clock) -> Self {
        Sandbox {
            profile,
            clock,
            changes: Arc::default(),
        }
    }

    fn change_of(&self, number: &TrackingNumber) -> Option<changes::Accepted> {
        self.changes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(number)
            .cloned()
    }

    /// Follow `order` from its time on: the latest change of a parcel wins.
    fn remember(&self, order: &DeliveryOrder) {
        self.changes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                order.parcel.tracking_number.clone(),
                changes::Accepted {
                    at: order.at,
                    details: order.details.clone(),
                },
            );
    }

    /// A sandbox with the bundled `carriers/sandbox.toml`.
    pub fn bundled(clock: Clock) -> Self {
        let profile = CarrierProfile::from_toml("carriers/sandbox.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/sandbox.toml is valid (checked by its tests)");
        Sandbox::new(profile, clock)
    }

    /// What the sandbox answers for one parcel at the instant `now`.
    ///
    /// [`Carrier::track`] calls this with the clock's time; tests and benchmarks can call it with
    /// any instant to get a reproducible answer.
    pub fn report_at(
        &self,
        request: &TrackRequest,
        now: Timestamp,
    ) -> Result<TrackReport, ParcelError> {
        let number = &request.tracking_number;
        let scenario = Scenario::for_number(number);
        let registered = request
            .registered_at
            .unwrap_or_else(|| assumed_registration(now));
        let age = now.duration_since(registered);
        match scenario {
            Scenario::NotFound if age < SignedDuration::from_hours(NOT_FOUND_FOR_HOURS) => {
                return Err(ParcelError::NotFound);
            }
            Scenario::Broken if age < SignedDuration::from_hours(BROKEN_FOR_HOURS) => {
                return Err(garbled(number, registered));
            }
            _ => {}
        }

        let journey = scenario.journey();
        let schedule = journey.schedule(registered)?;
        let mut played = schedule.played()?;
        if let Some(change) = self.change_of(number) {
            changes::apply(&mut played, &change, journey.destination.time_zone());
        }
        let seen: Vec<&Played> = played.iter().take_while(|scan| scan.at <= now).collect();
        let Some(latest) = seen.last() else {
            // Registered in the future as far as this clock is concerned: no label yet.
            return Err(ParcelError::NotFound);
        };

        let mut events = Vec::with_capacity(seen.len());
        for scan in &seen {
            let Some(mapping) = self.profile.normalise(scan.code) else {
                return Err(ParcelError::Malformed {
                    detail: format!(
                        "status code `{}` is not in the {} mapping (carriers/{}.toml)",
                        scan.code, self.profile.name, self.profile.code
                    ),
                    excerpt: scan.raw_json(),
                });
            };
            events.push(TrackingEvent {
                time: scan.time,
                status: mapping.status,
                reason: mapping.reason,
                raw_code: scan.code.to_owned(),
                raw_text: scan.text.clone(),
                location: scan.place.map(|p| p.label()),
            });
        }

        let estimate = seen.iter().rev().find_map(|scan| scan.estimate);
        let signed_by = seen.iter().rev().find_map(|scan| scan.signed_by.clone());
        let pickup_point = latest.pickup.clone();
        let change_delivery_url = events
            .last()
            .filter(|e| delivery_to_come(e.status, e.reason))
            .and_then(|_| {
                self.profile
                    .delivery_change_links(number)
                    .into_iter()
                    .next()
            })
            .map(|(_, url)| url);

        Ok(TrackReport {
            events,
            estimate,
            signed_by,
            pickup_point,
            change_delivery_url,
            other_parcels: Vec::new(),
        })
    }
}

#[async_trait]
impl Carrier for Sandbox {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    fn takes_delivery_changes(&self) -> bool {
        true
    }

    async fn pickup_points(
        &self,
        _account: &CarrierAccount,
        parcel: &TrackRequest,
    ) -> Result<Vec<PickupPointChoice>, CarrierError> {
        let city = Scenario::for_number(&parcel.tracking_number)
            .journey()
            .destination
            .city;
        Ok(changes::pickup_points(city))
    }

    async fn change_delivery(
        &self,
        _account: &CarrierAccount,
        order: &DeliveryOrder,
    ) -> Result<(), CarrierError> {
        // Like a real carrier, the sandbox refuses a change once the parcel is delivered.
        let report = self
            .report_at(&order.parcel, order.at)
            .map_err(|e| CarrierError::Permanent(e.to_string()))?;
        if let Some(last) = report.events.last()
            && !delivery_to_come(last.status, last.reason)
        {
            return Err(CarrierError::Permanent(
                "the parcel's journey is over; it can no longer be changed".into(),
            ));
        }
        self.remember(order);
        Ok(())
    }

    fn restore_delivery_change(&self, order: &DeliveryOrder) {
        self.remember(order);
    }

    async fn track(
        &self,
        _account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let limit = self.profile.limits.batch_size;
        if batch.len() > limit {
            // Real carriers refuse oversized batches; the sandbox helps catch a scheduler that
            // forgets to split them.
            return Err(CarrierError::Permanent(format!(
                "a batch of {} numbers exceeds the {} limit of {limit}",
                batch.len(),
                self.profile.name
            )));
        }
        let now = self.clock.now();
        Ok(batch
            .iter()
            .map(|request| ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome: self.report_at(request, now),
            })
            .collect())
    }
}

/// "Thirty days ago", pinned to 08:00 UTC of that day so repeated calls within a day agree on
/// every scan's time (and therefore on every scan's identity).
fn assumed_registration(now: Timestamp) -> Timestamp {
    let ago = now
        .checked_sub(SignedDuration::from_hours(24 * ASSUMED_AGE_DAYS))
        .unwrap_or(Timestamp::MIN);
    ago.to_zoned(TimeZone::UTC)
        .date()
        .at(8, 0, 0, 0)
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(ago)
}

/// The answer of a [`Scenario::Broken`] parcel: the carrier's record for it, cut off mid-string.
fn garbled(number: &TrackingNumber, registered: Timestamp) -> ParcelError {
    let excerpt = format!(
        r#"{{"trackingNumber":"{number}","events":[{{"code":"LC","timestamp":"{}","description":"Shipment informa"#,
        Timestamp::from_second(registered.as_second()).unwrap_or(registered)
    );
    // Let the JSON parser say what is wrong, in the words a real adapter would log.
    let detail = match serde_json::from_str::<serde_json::Value>(&excerpt) {
        Err(e) => format!("the parcel's record is not valid JSON: {e}"),
        Ok(_) => "the parcel's record is incomplete".to_owned(),
    };
    ParcelError::Malformed { detail, excerpt }
}

/// A journey the sandbox can simulate, picked from the tracking number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Warsaw → Berlin in three days: collected, through two hubs, out for delivery on the
    /// estimated morning, delivered and signed for that afternoon.
    OnTime,
    /// Poznań → Leipzig: a storm holds the linehaul on day 1 (estimate day 3 → day 5); on day 5
    /// the depot does not send it out because of volume (→ day 6); delivered on day 6.
    Late,
    /// New York → Munich: export, arrival in Germany, customs clearance, held by customs, duties
    /// due, released the next day, delivered on day 4.
    Customs,
    /// Wrocław → Dresden: the only delivery attempt fails (recipient not at home), the parcel
    /// waits at a parcel shop for four days and the customer collects it.
    Pickup,
    /// Łódź → Cologne: moving normally, then no scan at all for five days at the Hannover hub,
    /// then moving again and delivered on day 7.
    Stalled,
    /// Gdańsk → Frankfurt am Main: moving, then silence at the Stryków hub, declared lost on
    /// day 8 (final).
    Lost,
    /// Kraków → Stuttgart: the attempt fails on a wrong address, the parcel goes back to the
    /// sender and arrives there on day 8 (final).
    Returned,
    /// A fresh label: the carrier does not know the number for the first
    /// [`NOT_FOUND_FOR_HOURS`] hours after registration, then it travels like [`Scenario::OnTime`].
    NotFound,
    /// A carrier bug: for the first [`BROKEN_FOR_HOURS`] hours every answer for this parcel is
    /// unreadable ([`ParcelError::Malformed`]), then it travels like [`Scenario::OnTime`].
    Broken,
}

impl Scenario {
    /// The seven journeys a number without a token is spread over.
    pub const JOURNEYS: [Scenario; 7] = [
        Scenario::OnTime,
        Scenario::Late,
        Scenario::Customs,
        Scenario::Pickup,
        Scenario::Stalled,
        Scenario::Lost,
        Scenario::Returned,
    ];

    /// Every scenario, journeys first.
    pub const ALL: [Scenario; 9] = [
        Scenario::OnTime,
        Scenario::Late,
        Scenario::Customs,
        Scenario::Pickup,
        Scenario::Stalled,
        Scenario::Lost,
        Scenario::Returned,
        Scenario::NotFound,
        Scenario::Broken,
    ];

    /// Tokens in the order they are tried: longest first, so `NOTFOUND` is never taken for
    /// another scenario.
    const BY_TOKEN: [Scenario; 9] = [
        Scenario::NotFound,
        Scenario::Customs,
        Scenario::Stalled,
        Scenario::OnTime,
        Scenario::Pickup,
        Scenario::Returned,
        Scenario::Broken,
        Scenario::Late,
        Scenario::Lost,
    ];

    /// The word in a tracking number that selects this scenario.
    pub fn token(self) -> &'static str {
        match self {
            Scenario::OnTime => "ONTIME",
            Scenario::Late => "LATE",
            Scenario::Customs => "CUSTOMS",
            Scenario::Pickup => "PICKUP",
            Scenario::Stalled => "STALLED",
            Scenario::Lost => "LOST",
            Scenario::Returned => "RETURN",
            Scenario::NotFound => "NOTFOUND",
            Scenario::Broken => "BROKEN",
        }
    }

    /// The scenario a number plays: the one whose token it contains (the longest token wins),
    /// else one of the seven [`Scenario::JOURNEYS`] chosen by a stable hash of the number, so any
    /// number gets the same journey on every machine and every release.
    pub fn for_number(number: &TrackingNumber) -> Scenario {
        let text = number.as_str();
        if let Some(scenario) = Self::BY_TOKEN
            .into_iter()
            .find(|scenario| text.contains(scenario.token()))
        {
            return scenario;
        }
        let index = fnv1a(text.as_bytes()) % Self::JOURNEYS.len() as u64;
        Self::JOURNEYS[index as usize]
    }

    /// A demo number that plays this scenario, like `SBX-LATE-000042`.
    pub fn example_number(self, seq: u32) -> TrackingNumber {
        TrackingNumber::parse(&format!("SBX-{}-{seq:06}", self.token()))
            .expect("SBX-<token>-<digits> is a valid tracking number")
    }

    fn journey(self) -> &'static Journey {
        match self {
            Scenario::OnTime | Scenario::NotFound | Scenario::Broken => &ON_TIME,
            Scenario::Late => &LATE,
            Scenario::Customs => &CUSTOMS,
            Scenario::Pickup => &PICKUP,
            Scenario::Stalled => &STALLED,
            Scenario::Lost => &LOST,
            Scenario::Returned => &RETURNED,
        }
    }
}

/// 64-bit FNV-1a: tiny, stable across platforms and releases (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A place scans happen at.
#[derive(Debug, Clone, Copy)]
struct Place {
    city: &'static str,
    /// ISO 3166-1 alpha-2.
    country: &'static str,
    /// IANA zone: the scan's local time and offset.
    zone: &'static str,
}

impl Place {
    const fn new(city: &'static str, country: &'static str, zone: &'static str) -> Place {
        Place {
            city,
            country,
            zone,
        }
    }

    /// As carriers name it: "Leipzig, DE".
    fn label(self) -> String {
        format!("{}, {}", self.city, self.country)
    }

    fn time_zone(self) -> TimeZone {
        // Every zone below is checked by a test; UTC keeps a typo from becoming a crash.
        TimeZone::get(self.zone).unwrap_or(TimeZone::UTC)
    }
}

/// A parcel shop a parcel can wait at.
#[derive(Debug, Clone, Copy)]
struct Shop {
    name: &'static str,
    address: &'static str,
    /// The last day it is held, counted from day 0.
    hold_until_day: i64,
}

impl Shop {
    fn point(self, day_zero: Date) -> Result<PickupPoint, ParcelError> {
        Ok(PickupPoint {
            name: self.name.to_owned(),
            address: Some(self.address.to_owned()),
            hold_until: Some(add_days(day_zero, self.hold_until_day)?),
        })
    }
}

/// When a step happens.
#[derive(Debug, Clone, Copy)]
enum When {
    /// The instant the shipment was registered (the label is created then).
    Registration,
    /// Local wall-clock time at the step's place (the destination's when it has none) on
    /// day 0 + `day`.
    Local { day: i64, hour: i8, minute: i8 },
}

/// One scan of a script.
#[derive(Debug, Clone, Copy)]
struct Step {
    when: When,
    /// The sandbox's raw code, looked up in the profile's mapping.
    code: &'static str,
    /// The carrier's words for the scan.
    text: &'static str,
    /// Where it happened; none for scans the carrier reports without a place, in UTC.
    place: Option<Place>,
    /// A new estimate, in days from day 0: earliest and latest.
    estimate: Option<(i64, i64)>,
    /// The parcel waits here after this scan.
    pickup: Option<Shop>,
    /// Proof of delivery.
    signed_by: Option<&'static str>,
}

impl Step {
    /// The label is created: no place, a UTC time.
    const fn label_created() -> Step {
        Step {
            when: When::Registration,
            code: "LC",
            text: "Shipment information received",
            place: None,
            estimate: None,
            pickup: None,
            signed_by: None,
        }
    }

    /// A scan at `place` on day `day` at `hour:minute` local time.
    const fn at(
        day: i64,
        hour: i8,
        minute: i8,
        code: &'static str,
        text: &'static str,
        place: Place,
    ) -> Step {
        Step {
            when: When::Local { day, hour, minute },
            code,
            text,
            place: Some(place),
            estimate: None,
            pickup: None,
            signed_by: None,
        }
    }

    /// The carrier now expects delivery on day `day`.
    const fn edd(self, day: i64) -> Step {
        self.edd_between(day, day)
    }

    /// The carrier now expects delivery between day `from` and day `to`.
    const fn edd_between(self, from: i64, to: i64) -> Step {
        Step {
            estimate: Some((from, to)),
            ..self
        }
    }

    const fn waits_at(self, shop: Shop) -> Step {
        Step {
            pickup: Some(shop),
            ..self
        }
    }

    const fn signed(self, name: &'static str) -> Step {
        Step {
            signed_by: Some(name),
            ..self
        }
    }
}

/// A script: where it ends, and its steps in the order they happen.
#[derive(Debug)]
struct Journey {
    /// The customer's city: its zone decides day 0 and the estimate's dates.
    destination: Place,
    steps: &'static [Step],
}

/// A script placed in time for one parcel.
#[derive(Debug)]
struct Schedule {
    /// The collection day; scripts count days from it.
    day_zero: Date,
    /// Every step of the script, in order.
    scans: Vec<Scan>,
}

impl Schedule {
    /// The whole journey as the sandbox answers it.
    fn played(&self) -> Result<Vec<Played>, ParcelError> {
        self.scans
            .iter()
            .map(|scan| {
                Ok(Played {
                    at: scan.at,
                    time: scan.time,
                    code: scan.step.code,
                    text: scan.step.text.to_owned(),
                    place: scan.step.place,
                    estimate: scan
                        .step
                        .estimate
                        .map(|(from, to)| self.window(from, to))
                        .transpose()?,
                    pickup: scan
                        .step
                        .pickup
                        .map(|shop| shop.point(self.day_zero))
                        .transpose()?,
                    signed_by: scan.step.signed_by.map(str::to_owned),
                })
            })
            .collect()
    }

    /// An estimate of day `from` to day `to`, as dates in the destination's calendar.
    fn window(&self, from: i64, to: i64) -> Result<DeliveryWindow, ParcelError> {
        DeliveryWindow::between(add_days(self.day_zero, from)?, add_days(self.day_zero, to)?)
            .map_err(|e| ParcelError::Rejected(format!("sandbox script error: {e}")))
    }
}

/// A step placed in time.
#[derive(Debug, Clone, Copy)]
struct Scan {
    at: Timestamp,
    time: EventTime,
    step: &'static Step,
}

/// A scan as the sandbox answers it: a script's step placed in time, or one a customer's
/// delivery change put in its place.
#[derive(Debug, Clone)]
pub(crate) struct Played {
    at: Timestamp,
    time: EventTime,
    code: &'static str,
    text: String,
    place: Option<Place>,
    /// A new estimate.
    estimate: Option<DeliveryWindow>,
    /// The parcel waits here after this scan.
    pickup: Option<PickupPoint>,
    /// Proof of delivery.
    signed_by: Option<String>,
}

impl Played {
    /// The scan as the carrier would have sent it, for error excerpts.
    fn raw_json(&self) -> String {
        serde_json::json!({
            "code": self.code,
            "description": self.text,
            "location": self.place.map(|p| p.label()),
            "timestamp": self.time.local().strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        })
        .to_string()
    }
}

fn add_days(date: Date, days: i64) -> Result<Date, ParcelError> {
    date.checked_add(days.days()).map_err(out_of_range)
}

fn out_of_range(e: jiff::Error) -> ParcelError {
    ParcelError::Rejected(format!(
        "the sandbox cannot simulate a journey at this date: {e}"
    ))
}

impl Journey {
    /// The collection day for a parcel registered at `registered`.
    fn day_zero(&self, registered: Timestamp) -> Result<Date, ParcelError> {
        let local = registered.to_zoned(self.destination.time_zone());
        if local.hour() < COLLECTION_CUT_OFF_HOUR {
            Ok(local.date())
        } else {
            local.date().tomorrow().map_err(out_of_range)
        }
    }

    /// Every step of the script placed in time for a parcel registered at `registered`.
    fn schedule(&self, registered: Timestamp) -> Result<Schedule, ParcelError> {
        let day_zero = self.day_zero(registered)?;
        // Carriers report whole seconds.
        let registered = Timestamp::from_second(registered.as_second()).unwrap_or(registered);
        let scans = self
            .steps
            .iter()
            .map(|step| {
                let zone = step.place.unwrap_or(self.destination).time_zone();
                let at = match step.when {
                    When::Registration => registered,
                    When::Local { day, hour, minute } => add_days(day_zero, day)?
                        .at(hour, minute, 0, 0)
                        .to_zoned(zone.clone())
                        .map_err(out_of_range)?
                        .timestamp(),
                };
                let time = match step.place {
                    Some(_) => EventTime::with_offset(at, zone.to_offset(at)),
                    None => EventTime::utc(at),
                };
                Ok(Scan { at, time, step })
            })
            .collect::<Result<Vec<_>, ParcelError>>()?;
        Ok(Schedule { day_zero, scans })
    }
}

// Places. Hubs are where real parcel networks sort between these cities.
const WARSAW: Place = Place::new("Warsaw", "PL", "Europe/Warsaw");
const POZNAN: Place = Place::new("Poznań", "PL", "Europe/Warsaw");
const WROCLAW: Place = Place::new("Wrocław", "PL", "Europe/Warsaw");
const LODZ: Place = Place::new("Łódź", "PL", "Europe/Warsaw");
const GDANSK: Place = Place::new("Gdańsk", "PL", "Europe/Warsaw");
const PRUSZCZ: Place = Place::new("Pruszcz Gdański", "PL", "Europe/Warsaw");
const KRAKOW: Place = Place::new("Kraków", "PL", "Europe/Warsaw");
const STRYKOW: Place = Place::new("Stryków", "PL", "Europe/Warsaw");
const NEW_YORK: Place = Place::new("New York", "US", "America/New_York");
const BERLIN: Place = Place::new("Berlin", "DE", "Europe/Berlin");
const RUEDERSDORF: Place = Place::new("Rüdersdorf", "DE", "Europe/Berlin");
const LEIPZIG: Place = Place::new("Leipzig", "DE", "Europe/Berlin");
const RADEFELD: Place = Place::new("Radefeld", "DE", "Europe/Berlin");
const MUNICH: Place = Place::new("Munich", "DE", "Europe/Berlin");
const DRESDEN: Place = Place::new("Dresden", "DE", "Europe/Berlin");
const OTTENDORF: Place = Place::new("Ottendorf-Okrilla", "DE", "Europe/Berlin");
const HANNOVER: Place = Place::new("Hannover", "DE", "Europe/Berlin");
const COLOGNE: Place = Place::new("Cologne", "DE", "Europe/Berlin");
const FRANKFURT: Place = Place::new("Frankfurt am Main", "DE", "Europe/Berlin");
const NUREMBERG: Place = Place::new("Nuremberg", "DE", "Europe/Berlin");
const STUTTGART: Place = Place::new("Stuttgart", "DE", "Europe/Berlin");

// The carrier's words, one text per code where the story allows.
const PICKED_UP: &str = "Picked up by courier";
const ARRIVED: &str = "Arrived at sorting facility";
const DEPARTED: &str = "Departed from sorting facility";
const AT_DEPOT: &str = "Arrived at delivery depot";
const OUT_FOR_DELIVERY: &str = "Out for delivery";
const DELIVERED: &str = "Delivered";

// Scripts. Between two scans of a moving parcel there are under 24 hours, except where a
// scenario is about silence (Stalled, Lost): the stall detector must fire there and nowhere else.

/// Scenario::OnTime.
static ON_TIME: Journey = Journey {
    destination: BERLIN,
    steps: &[
        Step::label_created(),
        Step::at(0, 15, 40, "PU", PICKED_UP, WARSAW).edd(3),
        Step::at(0, 19, 5, "AR", ARRIVED, WARSAW),
        Step::at(0, 23, 50, "DP", DEPARTED, WARSAW),
        Step::at(1, 6, 20, "AR", ARRIVED, STRYKOW),
        Step::at(1, 13, 45, "DP", DEPARTED, STRYKOW),
        Step::at(2, 4, 30, "AR", ARRIVED, RUEDERSDORF),
        Step::at(2, 10, 10, "AD", AT_DEPOT, BERLIN),
        Step::at(3, 7, 40, "OD", OUT_FOR_DELIVERY, BERLIN),
        Step::at(3, 13, 12, "DL", DELIVERED, BERLIN).signed("M. SCHNEIDER"),
    ],
};

/// Scenario::Late.
static LATE: Journey = Journey {
    destination: LEIPZIG,
    steps: &[
        Step::label_created(),
        Step::at(0, 16, 5, "PU", PICKED_UP, POZNAN).edd(3),
        Step::at(0, 20, 30, "AR", ARRIVED, POZNAN),
        Step::at(
            1,
            16,
            20,
            "WX",
            "Delayed by severe weather: linehaul departures suspended",
            POZNAN,
        )
        .edd(5),
        Step::at(
            2,
            11,
            5,
            "WX",
            "Still delayed by severe weather: departure rescheduled",
            POZNAN,
        ),
        Step::at(3, 2, 40, "DP", DEPARTED, POZNAN),
        Step::at(3, 14, 15, "AR", ARRIVED, RADEFELD),
        Step::at(4, 4, 50, "DP", DEPARTED, RADEFELD),
        Step::at(4, 16, 30, "AD", AT_DEPOT, LEIPZIG),
        Step::at(
            5,
            6,
            40,
            "NA",
            "Not out for delivery today due to high parcel volume",
            LEIPZIG,
        )
        .edd(6),
        Step::at(5, 21, 30, "SD", "Sorted for next delivery route", LEIPZIG),
        Step::at(6, 7, 55, "OD", OUT_FOR_DELIVERY, LEIPZIG),
        Step::at(6, 14, 20, "DL", DELIVERED, LEIPZIG).signed("J. KRÜGER"),
    ],
};

/// Scenario::Customs.
static CUSTOMS: Journey = Journey {
    destination: MUNICH,
    steps: &[
        Step::label_created(),
        Step::at(0, 14, 20, "PU", PICKED_UP, NEW_YORK).edd_between(4, 6),
        Step::at(0, 19, 45, "AR", ARRIVED, NEW_YORK),
        Step::at(
            1,
            2,
            10,
            "ED",
            "Export scan: departed country of origin",
            NEW_YORK,
        ),
        Step::at(1, 18, 35, "AC", "Arrived in destination country", LEIPZIG),
        Step::at(1, 20, 5, "CC", "Customs clearance started", LEIPZIG),
        Step::at(
            2,
            9,
            40,
            "CH",
            "Held by customs: import documents under review",
            LEIPZIG,
        ),
        Step::at(
            2,
            15,
            10,
            "DD",
            "Import duties and taxes due: EUR 23.80 to pay before release",
            LEIPZIG,
        ),
        Step::at(3, 10, 25, "CR", "Released by customs", LEIPZIG).edd(4),
        Step::at(3, 18, 40, "DP", DEPARTED, LEIPZIG),
        Step::at(4, 5, 30, "AD", AT_DEPOT, MUNICH),
        Step::at(4, 8, 5, "OD", OUT_FOR_DELIVERY, MUNICH),
        Step::at(4, 12, 40, "DL", DELIVERED, MUNICH).signed("A. HUBER"),
    ],
};

/// The parcel shop of Scenario::Pickup.
const KIOSK_ALBERTPLATZ: Shop = Shop {
    name: "Kiosk am Albertplatz",
    address: "Albertplatz 3, 01097 Dresden",
    hold_until_day: 9,
};

/// Scenario::Pickup.
static PICKUP: Journey = Journey {
    destination: DRESDEN,
    steps: &[
        Step::label_created(),
        Step::at(0, 15, 10, "PU", PICKED_UP, WROCLAW).edd(2),
        Step::at(0, 21, 35, "DP", DEPARTED, WROCLAW),
        Step::at(1, 6, 5, "AR", ARRIVED, OTTENDORF),
        Step::at(1, 14, 30, "AD", AT_DEPOT, DRESDEN),
        Step::at(2, 7, 50, "OD", OUT_FOR_DELIVERY, DRESDEN),
        Step::at(
            2,
            13,
            25,
            "AF",
            "Delivery attempt failed: recipient not at home",
            DRESDEN,
        ),
        Step::at(
            2,
            17,
            5,
            "PS",
            "Ready for collection at parcel shop Kiosk am Albertplatz",
            DRESDEN,
        )
        .waits_at(KIOSK_ALBERTPLATZ),
        Step::at(
            6,
            17,
            40,
            "PC",
            "Collected by the recipient at the parcel shop",
            DRESDEN,
        )
        .signed("R. LEHMANN"),
    ],
};

/// Scenario::Stalled. The silence at Hannover lasts five days and a quarter of an hour: more
/// than 24 business hours in Germany whatever the weekday, even over Easter.
static STALLED: Journey = Journey {
    destination: COLOGNE,
    steps: &[
        Step::label_created(),
        Step::at(0, 15, 30, "PU", PICKED_UP, LODZ).edd(3),
        Step::at(0, 19, 40, "AR", ARRIVED, STRYKOW),
        Step::at(1, 1, 15, "DP", DEPARTED, STRYKOW),
        Step::at(1, 14, 50, "AR", ARRIVED, HANNOVER),
        Step::at(6, 15, 5, "DP", DEPARTED, HANNOVER).edd(7),
        Step::at(7, 4, 40, "AD", AT_DEPOT, COLOGNE),
        Step::at(7, 7, 55, "OD", OUT_FOR_DELIVERY, COLOGNE),
        Step::at(7, 13, 30, "DL", DELIVERED, COLOGNE).signed("S. WAGNER"),
    ],
};

/// Scenario::Lost.
static LOST: Journey = Journey {
    destination: FRANKFURT,
    steps: &[
        Step::label_created(),
        Step::at(0, 15, 45, "PU", PICKED_UP, GDANSK).edd(3),
        Step::at(0, 20, 10, "AR", ARRIVED, PRUSZCZ),
        Step::at(1, 3, 30, "DP", DEPARTED, PRUSZCZ),
        Step::at(1, 17, 20, "AR", ARRIVED, STRYKOW),
        Step::at(
            8,
            10,
            15,
            "LO",
            "Parcel could not be located after an investigation and is declared lost",
            STRYKOW,
        ),
    ],
};

/// Scenario::Returned.
static RETURNED: Journey = Journey {
    destination: STUTTGART,
    steps: &[
        Step::label_created(),
        Step::at(0, 15, 25, "PU", PICKED_UP, KRAKOW).edd(3),
        Step::at(0, 21, 50, "DP", DEPARTED, KRAKOW),
        Step::at(1, 12, 35, "AR", ARRIVED, NUREMBERG),
        Step::at(2, 1, 20, "DP", DEPARTED, NUREMBERG),
        Step::at(2, 9, 45, "AD", AT_DEPOT, STUTTGART),
        Step::at(3, 7, 30, "OD", OUT_FOR_DELIVERY, STUTTGART),
        Step::at(
            3,
            11,
            50,
            "AA",
            "Delivery attempt failed: address incomplete (house number missing)",
            STUTTGART,
        ),
        Step::at(
            5,
            9,
            15,
            "RS",
            "Address could not be clarified: the parcel is being returned to the sender",
            STUTTGART,
        ),
        Step::at(
            5,
            22,
            40,
            "RS",
            "Return shipment departed from sorting facility",
            NUREMBERG,
        ),
        Step::at(
            6,
            14,
            10,
            "RS",
            "Return shipment arrived at sorting facility",
            KRAKOW,
        ),
        Step::at(8, 11, 20, "RT", "Returned to sender", KRAKOW),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::detect::{Situation, Trigger, detect};
    use crate::domain::timeline::is_final;
    use crate::domain::{CountryCode, HolidayCalendar, Reason as R, Status as S, Timeline};
    use std::collections::HashSet;

    /// Monday 2 March 2026, 09:00 in Berlin: before the collection cut-off, so day 0 is that
    /// Monday, and far from any change of daylight saving time.
    const REGISTERED: &str = "2026-03-02T09:00:00+01:00";

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("a test timestamp")
    }

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_hours(h)
    }

    fn sandbox() -> Sandbox {
        Sandbox::bundled(Clock::system())
    }

    fn request(number: &TrackingNumber, registered_at: Option<Timestamp>) -> TrackRequest {
        TrackRequest {
            tracking_number: number.clone(),
            registered_at,
        }
    }

    /// The answer for `scenario`'s demo number, registered at [`REGISTERED`], asked at `now`.
    fn answer(scenario: Scenario, now: Timestamp) -> Result<TrackReport, ParcelError> {
        let number = scenario.example_number(1);
        sandbox().report_at(&request(&number, Some(ts(REGISTERED))), now)
    }

    /// The whole journey: asked long after it ended.
    fn finished(scenario: Scenario) -> TrackReport {
        answer(scenario, ts(REGISTERED) + hours(24 * 40)).expect("a finished journey")
    }

    fn steps(report: &TrackReport) -> Vec<(&str, S, Option<R>)> {
        report
            .events
            .iter()
            .map(|e| (e.raw_code.as_str(), e.status, e.reason))
            .collect()
    }

    /// The local time of the scan with `code` (the last one when the code repeats).
    fn local(report: &TrackReport, code: &str) -> String {
        report
            .events
            .iter()
            .rev()
            .find(|e| e.raw_code == code)
            .map(|e| e.time.local().strftime("%Y-%m-%dT%H:%M%:z").to_string())
            .unwrap_or_else(|| panic!("no {code} scan in {report:?}"))
    }

    fn date(text: &str) -> Date {
        text.parse().expect("a test date")
    }

    #[test]
    fn the_bundled_profile_parses_with_the_documented_values() {
        let profile = CarrierProfile::load(None, "sandbox", BUNDLED_PROFILE).expect("it parses");
        assert_eq!(profile.code.as_str(), "sandbox");
        assert_eq!(profile.limits.batch_size, 25);
        assert_eq!(profile.limits.requests_per_second, 200.0);
        assert_eq!(profile.limits.daily_quota, None);
        let c = &profile.cadence;
        assert_eq!(c.at_pickup_point, 720);
        assert_eq!(
            [
                c.before_handover,
                c.in_transit,
                c.near_estimate,
                c.out_for_delivery,
                c.waiting,
                c.not_found,
                c.max_backoff,
                c.jitter_percent
            ],
            [720, 2160, 45, 50, 240, 60, 360, 10]
        );
        assert_eq!(profile.detection.stall_after_business_hours, 24.0);
        assert_eq!(profile.detection.pickup_reminder_after_hours, 72);
        let number = Scenario::Late.example_number(7);
        assert_eq!(
            profile.tracking_url(&number),
            "https://sandbox.waymark.invalid/track/SBX-LATE-000007"
        );
        let kinds: Vec<_> = profile
            .delivery_change_links(&number)
            .into_iter()
            .map(|(kind, url)| {
                assert!(
                    url.starts_with("https://sandbox.waymark.invalid/change/SBX-LATE-000007/"),
                    "{url}"
                );
                kind
            })
            .collect();
        assert_eq!(
            kinds,
            ["another_day", "neighbour", "pickup_point", "safe_place"]
        );
    }

    #[test]
    fn every_code_the_scripts_emit_is_mapped_and_every_mapping_is_used() {
        let profile = sandbox().profile;
        let emitted: HashSet<&str> = Scenario::JOURNEYS
            .iter()
            .flat_map(|s| s.journey().steps.iter().map(|step| step.code))
            .chain(changes::CODES)
            .collect();
        for code in &emitted {
            assert!(profile.normalise(code).is_some(), "{code} is not mapped");
        }
        for code in profile.mapping.keys() {
            assert!(
                emitted.contains(code.as_str()),
                "{code} is mapped but never emitted"
            );
        }
    }

    #[test]
    fn every_place_has_a_known_zone_and_every_estimate_is_a_window() {
        for scenario in Scenario::ALL {
            let journey = scenario.journey();
            let places = journey.steps.iter().filter_map(|s| s.place);
            for place in places.chain([journey.destination]) {
                assert!(TimeZone::get(place.zone).is_ok(), "{}", place.zone);
                assert!(
                    CountryCode::parse(place.country).is_ok(),
                    "{}",
                    place.country
                );
            }
            for (from, to) in journey.steps.iter().filter_map(|s| s.estimate) {
                assert!(from <= to, "{scenario:?}: estimate day {from}..{to}");
            }
        }
    }

    /// The on-time parcel's whole journey after the customer asked for `details` on day 1.
    async fn changed(details: crate::domain::ChangeDetails) -> (Sandbox, TrackReport) {
        let sandbox = sandbox();
        let number = Scenario::OnTime.example_number(1);
        let parcel = request(&number, Some(ts(REGISTERED)));
        let order = DeliveryOrder {
            parcel: parcel.clone(),
            details,
            at: ts(REGISTERED) + hours(24),
        };
        sandbox
            .change_delivery(&account(), &order)
            .await
            .expect("the sandbox takes changes before delivery");
        let report = sandbox
            .report_at(&parcel, ts(REGISTERED) + hours(24 * 40))
            .expect("a finished journey");
        (sandbox, report)
    }

    #[tokio::test]
    async fn a_neighbour_change_ends_delivered_to_the_neighbour_who_signs() {
        let (_, report) = changed(crate::domain::ChangeDetails::Neighbour {
            name: "Jan Kowalski".into(),
            house_number: "14".into(),
        })
        .await;
        let codes: Vec<&str> = report.events.iter().map(|e| e.raw_code.as_str()).collect();
        assert!(codes.contains(&"CA"), "{codes:?}");
        let last = report.events.last().unwrap();
        assert_eq!(
            (last.raw_code.as_str(), last.status, last.reason),
            ("DN", S::Delivered, Some(R::DeliveredToNeighbour))
        );
        // At the time the script would have delivered it.
        assert_eq!(local(&report, "DN"), "2026-03-05T13:12+01:00");
        assert_eq!(
            report.signed_by.as_deref(),
            Some("Jan Kowalski (neighbour, no. 14)")
        );
    }

    #[tokio::test]
    async fn another_day_moves_the_van_and_the_estimate_to_that_day() {
        let (_, report) = changed(crate::domain::ChangeDetails::AnotherDay {
            date: date("2026-03-07"),
        })
        .await;
        assert_eq!(local(&report, "OD"), "2026-03-07T08:40+01:00");
        assert_eq!(local(&report, "DL"), "2026-03-07T14:10+01:00");
        assert_eq!(
            report.estimate,
            Some(DeliveryWindow::on(date("2026-03-07")))
        );
        let vans = report.events.iter().filter(|e| e.raw_code == "OD").count();
        assert_eq!(vans, 1, "the script's van of the 5th is gone");
    }

    #[tokio::test]
    async fn a_pickup_point_change_waits_there_and_is_collected() {
        let points = sandbox()
            .pickup_points(
                &account(),
                &request(&Scenario::OnTime.example_number(1), None),
            )
            .await
            .unwrap();
        assert!(points.len() >= 2 && points[0].address.ends_with("Berlin"));
        let point = points[0].clone();
        let (_, report) = changed(crate::domain::ChangeDetails::PickupPoint {
            point_id: point.id,
            name: point.name.clone(),
            address: Some(point.address),
        })
        .await;
        let last = report.events.last().unwrap();
        assert_eq!(last.raw_code, "PC");
        let waiting = sandbox()
            .report_at(
                &request(&Scenario::OnTime.example_number(1), Some(ts(REGISTERED))),
                ts(REGISTERED) + hours(24 * 40),
            )
            .unwrap();
        assert_eq!(
            waiting.events.last().unwrap().raw_code,
            "DL",
            "another sandbox knows nothing of it"
        );
    }

    #[tokio::test]
    async fn a_delivered_parcel_cannot_be_changed() {
        let sandbox = sandbox();
        let number = Scenario::OnTime.example_number(1);
        let order = DeliveryOrder {
            parcel: request(&number, Some(ts(REGISTERED))),
            details: crate::domain::ChangeDetails::SafePlace {
                place: "garage".into(),
            },
            at: ts(REGISTERED) + hours(24 * 10),
        };
        let refused = sandbox.change_delivery(&account(), &order).await;
        assert!(
            matches!(refused, Err(CarrierError::Permanent(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn on_time_is_delivered_and_signed_for_on_the_estimated_day() {
        let report = finished(Scenario::OnTime);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("AD", S::InTransit, None),
                ("OD", S::OutForDelivery, None),
                ("DL", S::Delivered, None),
            ]
        );
        assert_eq!(local(&report, "PU"), "2026-03-02T15:40+01:00");
        assert_eq!(local(&report, "OD"), "2026-03-05T07:40+01:00");
        assert_eq!(local(&report, "DL"), "2026-03-05T13:12+01:00");
        assert_eq!(
            report.estimate,
            Some(DeliveryWindow::on(date("2026-03-05")))
        );
        assert_eq!(report.signed_by.as_deref(), Some("M. SCHNEIDER"));
        assert_eq!(
            report.events.last().and_then(|e| e.location.as_deref()),
            Some("Berlin, DE")
        );
        assert_eq!(report.pickup_point, None);
        assert_eq!(report.change_delivery_url, None, "nothing left to change");
    }

    #[test]
    fn late_slips_its_estimate_twice_and_delivers_on_the_last_one() {
        let report = finished(Scenario::Late);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("WX", S::InTransit, Some(R::WeatherDelay)),
                ("WX", S::InTransit, Some(R::WeatherDelay)),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AD", S::InTransit, None),
                ("NA", S::InTransit, Some(R::CarrierDelay)),
                ("SD", S::InTransit, None),
                ("OD", S::OutForDelivery, None),
                ("DL", S::Delivered, None),
            ]
        );
        let estimate_at = |local_time: &str| {
            answer(Scenario::Late, ts(local_time))
                .expect("an answer")
                .estimate
        };
        let on = |d: &str| Some(DeliveryWindow::on(date(d)));
        assert_eq!(estimate_at("2026-03-02T12:00+01:00"), None, "label only");
        assert_eq!(estimate_at("2026-03-03T16:19+01:00"), on("2026-03-05"));
        // The storm scan, 40 hours into day 0, moves it two days.
        assert_eq!(estimate_at("2026-03-03T16:20+01:00"), on("2026-03-07"));
        assert_eq!(estimate_at("2026-03-07T06:39+01:00"), on("2026-03-07"));
        // On the promised morning, the depot keeps it back.
        assert_eq!(estimate_at("2026-03-07T06:40+01:00"), on("2026-03-08"));
        assert_eq!(report.estimate, on("2026-03-08"));
        assert_eq!(local(&report, "DL"), "2026-03-08T14:20+01:00");
        assert_eq!(report.signed_by.as_deref(), Some("J. KRÜGER"));
    }

    #[test]
    fn not_out_for_delivery_is_a_delay_not_a_failed_attempt() {
        let report = answer(Scenario::Late, ts("2026-03-07T07:00+01:00")).expect("an answer");
        let latest = report.events.last().expect("scans");
        assert_eq!(latest.raw_code, "NA");
        assert_eq!(
            latest.raw_text,
            "Not out for delivery today due to high parcel volume"
        );
        assert_eq!(
            (latest.status, latest.reason),
            (S::InTransit, Some(R::CarrierDelay))
        );
        assert!(report.change_delivery_url.is_some());
    }

    #[test]
    fn customs_holds_asks_for_duties_releases_and_delivers() {
        let report = finished(Scenario::Customs);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("ED", S::InTransit, None),
                ("AC", S::InTransit, Some(R::ArrivedDestinationCountry)),
                ("CC", S::InTransit, Some(R::CustomsClearanceStarted)),
                ("CH", S::Exception, Some(R::CustomsHeld)),
                ("DD", S::Exception, Some(R::DutiesDue)),
                ("CR", S::InTransit, Some(R::CustomsReleased)),
                ("DP", S::InTransit, None),
                ("AD", S::InTransit, None),
                ("OD", S::OutForDelivery, None),
                ("DL", S::Delivered, None),
            ]
        );
        // New York scans carry New York's offset, German ones Germany's.
        assert_eq!(local(&report, "PU"), "2026-03-02T14:20-05:00");
        assert_eq!(local(&report, "AC"), "2026-03-03T18:35+01:00");
        assert_eq!(report.events[1].location.as_deref(), Some("New York, US"));
        let held = answer(Scenario::Customs, ts("2026-03-04T16:00+01:00")).expect("an answer");
        assert_eq!(held.events.last().map(|e| e.raw_code.as_str()), Some("DD"));
        assert!(
            held.events
                .last()
                .is_some_and(|e| e.raw_text.contains("EUR 23.80"))
        );
        assert_eq!(
            held.estimate,
            DeliveryWindow::between(date("2026-03-06"), date("2026-03-08")).ok()
        );
        assert!(held.change_delivery_url.is_some());
        assert_eq!(
            report.estimate,
            Some(DeliveryWindow::on(date("2026-03-06")))
        );
        assert_eq!(local(&report, "DL"), "2026-03-06T12:40+01:00");
        assert_eq!(report.signed_by.as_deref(), Some("A. HUBER"));
    }

    #[test]
    fn pickup_waits_at_the_shop_long_enough_for_a_reminder() {
        let report = finished(Scenario::Pickup);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("AD", S::InTransit, None),
                ("OD", S::OutForDelivery, None),
                ("AF", S::AttemptFailed, Some(R::RecipientUnavailable)),
                ("PS", S::AvailableForPickup, None),
                ("PC", S::Delivered, Some(R::PickedUpByCustomer)),
            ]
        );
        let at_shop = |e: &TrackingEvent| e.raw_code == "PS";
        let shop_scan = report
            .events
            .iter()
            .find(|e| at_shop(e))
            .expect("a PS scan");
        let collected = report.events.last().expect("scans");
        let waited = collected.time.at.duration_since(shop_scan.time.at);
        let reminder_after = sandbox().profile.detection.pickup_reminder_after_hours;
        assert!(waited > hours(reminder_after), "waited {waited:?}");

        let waiting = answer(Scenario::Pickup, ts("2026-03-06T10:00+01:00")).expect("an answer");
        assert_eq!(
            waiting.pickup_point,
            Some(PickupPoint {
                name: "Kiosk am Albertplatz".into(),
                address: Some("Albertplatz 3, 01097 Dresden".into()),
                hold_until: Some(date("2026-03-11")),
            })
        );
        assert_eq!(waiting.signed_by, None);
        assert!(waiting.change_delivery_url.is_some());
        assert_eq!(report.pickup_point, None, "collected: no longer waiting");
        assert_eq!(report.signed_by.as_deref(), Some("R. LEHMANN"));
    }

    #[test]
    fn stalled_goes_quiet_for_five_days_then_delivers() {
        let report = finished(Scenario::Stalled);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AD", S::InTransit, None),
                ("OD", S::OutForDelivery, None),
                ("DL", S::Delivered, None),
            ]
        );
        let quiet = report.events[5]
            .time
            .at
            .duration_since(report.events[4].time.at);
        assert!(quiet > hours(24 * 5), "{quiet:?}");
        assert_eq!(local(&report, "DL"), "2026-03-09T13:30+01:00");
        assert_eq!(
            report.estimate,
            Some(DeliveryWindow::on(date("2026-03-09")))
        );
    }

    #[test]
    fn lost_goes_quiet_then_is_declared_lost_on_day_eight() {
        let report = finished(Scenario::Lost);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("LO", S::Exception, Some(R::Lost)),
            ]
        );
        assert_eq!(local(&report, "LO"), "2026-03-10T10:15+01:00");
        let last = report.events.last().expect("scans");
        assert!(is_final(last.status, last.reason));
        assert_eq!(report.change_delivery_url, None);
        assert_eq!(report.signed_by, None);
    }

    #[test]
    fn returned_goes_back_after_an_address_problem() {
        let report = finished(Scenario::Returned);
        assert_eq!(
            steps(&report),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AR", S::InTransit, None),
                ("DP", S::InTransit, None),
                ("AD", S::InTransit, None),
                ("OD", S::OutForDelivery, None),
                ("AA", S::AttemptFailed, Some(R::AddressIssue)),
                ("RS", S::Exception, Some(R::ReturningToSender)),
                ("RS", S::Exception, Some(R::ReturningToSender)),
                ("RS", S::Exception, Some(R::ReturningToSender)),
                ("RT", S::Exception, Some(R::ReturnedToSender)),
            ]
        );
        assert_eq!(local(&report, "RT"), "2026-03-10T11:20+01:00");
        assert_eq!(
            report.events.last().and_then(|e| e.location.as_deref()),
            Some("Kraków, PL")
        );
        let failed = answer(Scenario::Returned, ts("2026-03-06T12:00+01:00")).expect("an answer");
        assert!(
            failed.change_delivery_url.is_some(),
            "the address can still be fixed"
        );
        let going_back =
            answer(Scenario::Returned, ts("2026-03-07T12:00+01:00")).expect("an answer");
        assert_eq!(going_back.change_delivery_url, None, "it is going back");
        assert_eq!(report.signed_by, None);
    }

    #[test]
    fn scans_carry_the_local_offset_and_the_label_is_utc() {
        // 1 July: summer time on both sides of the Atlantic.
        let number = Scenario::Customs.example_number(3);
        let registered = ts("2026-07-01T08:00:00+02:00");
        let report = sandbox()
            .report_at(
                &request(&number, Some(registered)),
                registered + hours(24 * 30),
            )
            .expect("an answer");
        let label = &report.events[0];
        assert_eq!(label.raw_code, "LC");
        assert_eq!(label.time, EventTime::utc(registered));
        assert_eq!(label.location, None);
        assert_eq!(local(&report, "PU"), "2026-07-01T14:20-04:00");
        assert_eq!(local(&report, "DL"), "2026-07-05T12:40+02:00");
        for event in &report.events[1..] {
            assert!(event.time.offset_seconds.is_some(), "{event:?}");
        }
    }

    #[test]
    fn registering_after_the_cut_off_moves_collection_to_the_next_day() {
        let number = Scenario::OnTime.example_number(1);
        let picked_up = |registered: &str| {
            let report = sandbox()
                .report_at(
                    &request(&number, Some(ts(registered))),
                    ts(registered) + hours(24 * 30),
                )
                .expect("an answer");
            local(&report, "PU")
        };
        assert_eq!(
            picked_up("2026-03-02T11:59:59+01:00"),
            "2026-03-02T15:40+01:00"
        );
        assert_eq!(
            picked_up("2026-03-02T12:00:00+01:00"),
            "2026-03-03T15:40+01:00"
        );
        assert_eq!(
            picked_up("2026-03-02T23:30:00+01:00"),
            "2026-03-03T15:40+01:00"
        );
    }

    /// Registration instants every 20 minutes over `days` days from `start`.
    fn registrations(start: &str, days: i64) -> impl Iterator<Item = Timestamp> {
        let start = ts(start);
        (0..days * 72).map(move |i| start + SignedDuration::from_mins(20 * i))
    }

    #[test]
    fn scans_are_in_order_whenever_the_parcel_is_registered() {
        // Around both changes of daylight saving time in the US and in Europe.
        let windows = [
            ("2026-03-06T00:00:00Z", 4),
            ("2026-03-27T00:00:00Z", 4),
            ("2026-10-23T00:00:00Z", 4),
            ("2026-10-30T00:00:00Z", 4),
        ];
        for scenario in Scenario::JOURNEYS {
            for (start, days) in windows {
                for registered in registrations(start, days) {
                    let schedule = scenario.journey().schedule(registered).expect("a schedule");
                    let times: Vec<Timestamp> = schedule.scans.iter().map(|s| s.at).collect();
                    assert!(
                        times.windows(2).all(|pair| pair[0] < pair[1]),
                        "{scenario:?} registered {registered}: {times:?}"
                    );
                    // The courier comes at least three hours after the label is made.
                    assert!(times[1].duration_since(times[0]) >= hours(3));
                }
            }
        }
    }

    /// Business hours between each scan of a moving parcel and the next one, the way the stall
    /// detector counts them: (index of the scan before the silence, business hours).
    fn moving_silences(
        scenario: Scenario,
        registered: Timestamp,
        calendar: &HolidayCalendar,
    ) -> Vec<(usize, f64)> {
        let profile = sandbox().profile;
        let journey = scenario.journey();
        let country = CountryCode::parse(journey.destination.country).expect("a country");
        let zone = journey.destination.time_zone();
        let scans = journey.schedule(registered).expect("a schedule").scans;
        scans
            .windows(2)
            .enumerate()
            .filter_map(|(i, pair)| {
                let meaning = profile.normalise(pair[0].step.code)?;
                let moving = matches!(meaning.status, S::InTransit | S::OutForDelivery)
                    && !meaning
                        .reason
                        .is_some_and(|r| r.is_customs() || r.is_return());
                moving.then(|| {
                    let quiet =
                        calendar.business_hours_between(&country, &zone, pair[0].at, pair[1].at);
                    (i, quiet)
                })
            })
            .collect()
    }

    #[test]
    fn only_stalled_and_lost_go_quiet_long_enough_to_stall_whatever_the_start_day() {
        let calendar = HolidayCalendar::bundled();
        let threshold = sandbox().profile.detection.stall_after_business_hours;
        // Every day of two years, at 10:00 UTC: all weekdays, Easter, Christmas, DST changes.
        let days = (0..730).map(|d| ts("2026-01-01T10:00:00Z") + hours(24 * d));
        for registered in days {
            for scenario in Scenario::JOURNEYS {
                let silences = moving_silences(scenario, registered, &calendar);
                let stalls: Vec<usize> = silences
                    .iter()
                    .filter(|(_, quiet)| *quiet > threshold)
                    .map(|(i, _)| *i)
                    .collect();
                let expected: &[usize] = match scenario {
                    // The silence after the arrival at Hannover (scan 4).
                    Scenario::Stalled => &[4],
                    // The silence after the arrival at Stryków (scan 4).
                    Scenario::Lost => &[4],
                    _ => &[],
                };
                assert_eq!(
                    stalls, expected,
                    "{scenario:?} registered {registered}: {silences:?}"
                );
            }
        }
    }

    #[test]
    fn nothing_after_now_is_answered() {
        let number = Scenario::Late.example_number(5);
        let registered = ts(REGISTERED);
        let full = sandbox()
            .report_at(
                &request(&number, Some(registered)),
                registered + hours(24 * 30),
            )
            .expect("an answer");
        for h in [0, 5, 6, 7, 31, 40, 60, 100, 133, 150, 200] {
            let now = registered + hours(h);
            let partial = sandbox()
                .report_at(&request(&number, Some(registered)), now)
                .expect("an answer");
            let n = partial.events.len();
            assert_eq!(partial.events[..], full.events[..n], "a prefix at h{h}");
            assert!(partial.events.iter().all(|e| e.time.at <= now), "h{h}");
            if let Some(next) = full.events.get(n) {
                assert!(next.time.at > now, "h{h}: {next:?} was left out");
            }
        }
        // 6 and 7 hours in (15:00 and 16:00): the courier comes at 16:05.
        let at = |h| {
            sandbox()
                .report_at(&request(&number, Some(registered)), registered + hours(h))
                .map(|r| r.events.len())
        };
        assert_eq!(at(7), Ok(1));
        assert_eq!(at(8), Ok(2));
    }

    #[tokio::test]
    async fn the_carrier_answers_as_of_its_clock() {
        let sandbox = sandbox();
        let number = Scenario::OnTime.example_number(9);
        let registered = Timestamp::now() - hours(50);
        let answers = sandbox
            .track(&account(), &[request(&number, Some(registered))])
            .await
            .expect("a batch");
        let asked_by = Timestamp::now();
        let report = answers[0].outcome.clone().expect("a report");
        let full = sandbox
            .report_at(
                &request(&number, Some(registered)),
                registered + hours(24 * 30),
            )
            .expect("an answer");
        let n = report.events.len();
        assert!(n >= 2, "50 hours in, the parcel is moving: {report:?}");
        assert_eq!(report.events[..], full.events[..n]);
        assert!(report.events.iter().all(|e| e.time.at <= asked_by));
        if let Some(next) = full.events.get(n) {
            assert!(
                next.time.at > registered + hours(49),
                "{next:?} was left out"
            );
        }
    }

    #[test]
    fn the_same_number_always_gets_the_same_answer() {
        let number = TrackingNumber::parse("00340434161094042557").expect("a number");
        let registered = Some(ts(REGISTERED));
        let now = ts("2026-03-04T12:00:00Z");
        let first = sandbox().report_at(&request(&number, registered), now);
        let second = Sandbox::bundled(Clock::accelerated(60.0, ts(REGISTERED)))
            .report_at(&request(&number, registered), now);
        assert_eq!(first, second);
        assert!(first.is_ok());
    }

    #[test]
    fn numbers_pick_their_scenario_by_token_or_by_a_stable_hash() {
        for scenario in Scenario::ALL {
            let number = scenario.example_number(42);
            assert_eq!(number.as_str(), format!("SBX-{}-000042", scenario.token()));
            assert_eq!(Scenario::for_number(&number), scenario, "{number}");
        }
        let pick = |raw: &str| Scenario::for_number(&TrackingNumber::parse(raw).expect("a number"));
        assert_eq!(pick("sbx-notfound-1"), Scenario::NotFound);
        assert_eq!(pick("SBX-RETURNED-1"), Scenario::Returned);
        assert_eq!(
            pick("LATE-CUSTOMS-1"),
            Scenario::Customs,
            "the longest token wins"
        );
        // Pinned: a number keeps its journey across releases and machines.
        assert_eq!(pick("00340434161094042557"), Scenario::Customs);
        assert_eq!(pick("1Z999AA10123456784"), Scenario::Late);
        assert_eq!(pick("9400111899223100000000"), Scenario::Returned);
        assert_eq!(pick("JJD0001234567"), Scenario::OnTime);
        let spread: HashSet<Scenario> = (0..200).map(|i| pick(&format!("JJD{i:010}"))).collect();
        assert_eq!(spread.len(), 7, "every journey is reachable: {spread:?}");
        assert!(!spread.contains(&Scenario::NotFound) && !spread.contains(&Scenario::Broken));
    }

    #[test]
    fn not_found_is_unknown_for_six_hours_then_travels_like_on_time() {
        let registered = ts(REGISTERED);
        let at = |h: i64, m: i64| {
            answer(
                Scenario::NotFound,
                registered + hours(h) + SignedDuration::from_mins(m),
            )
        };
        assert_eq!(at(0, 0), Err(ParcelError::NotFound));
        assert_eq!(at(5, 59), Err(ParcelError::NotFound));
        let known = at(6, 0).expect("known after six hours");
        assert_eq!(steps(&known), [("LC", S::InfoReceived, None)]);
        let on_time = finished(Scenario::OnTime).events;
        assert_eq!(finished(Scenario::NotFound).events, on_time);
    }

    #[test]
    fn broken_is_unreadable_for_twelve_hours_then_travels_like_on_time() {
        let registered = ts(REGISTERED);
        for h in [0, 3, 11] {
            match answer(Scenario::Broken, registered + hours(h)) {
                Err(ParcelError::Malformed { detail, excerpt }) => {
                    assert!(detail.contains("not valid JSON"), "{detail}");
                    assert!(detail.contains("EOF while parsing"), "{detail}");
                    assert!(excerpt.contains("SBX-BROKEN-000001"), "{excerpt}");
                    assert!(excerpt.starts_with(r#"{"trackingNumber":"#), "{excerpt}");
                }
                other => panic!("h{h}: expected a malformed answer, got {other:?}"),
            }
        }
        // 21:00 on day 0: picked up at 15:40, at the Warsaw sorting facility since 19:05.
        let healed = answer(Scenario::Broken, registered + hours(12)).expect("readable");
        assert_eq!(
            steps(&healed),
            [
                ("LC", S::InfoReceived, None),
                ("PU", S::InTransit, None),
                ("AR", S::InTransit, None)
            ]
        );
        assert_eq!(
            finished(Scenario::Broken).events,
            finished(Scenario::OnTime).events
        );
    }

    #[test]
    fn a_code_missing_from_the_mapping_is_an_unreadable_answer_naming_it() {
        let mut profile = sandbox().profile;
        profile.mapping.remove("OD");
        let sandbox = Sandbox::new(profile, Clock::system());
        let number = Scenario::OnTime.example_number(1);
        let registered = Some(ts(REGISTERED));
        let before = sandbox.report_at(&request(&number, registered), ts("2026-03-05T07:00+01:00"));
        assert!(before.is_ok(), "OD has not happened yet: {before:?}");
        match sandbox.report_at(&request(&number, registered), ts("2026-03-05T08:00+01:00")) {
            Err(ParcelError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("`OD`"), "{detail}");
                assert!(detail.contains("carriers/sandbox.toml"), "{detail}");
                assert!(excerpt.contains(r#""code":"OD""#), "{excerpt}");
                assert!(excerpt.contains("2026-03-05T07:40:00+01:00"), "{excerpt}");
            }
            other => panic!("expected a malformed answer, got {other:?}"),
        }
    }

    #[test]
    fn a_changed_mapping_changes_the_meaning_without_a_recompile() {
        let edited = BUNDLED_PROFILE.replace(
            r#"NA = { status = "in_transit", reason = "carrier_delay" }"#,
            r#"NA = { status = "exception", reason = "carrier_delay" }"#,
        );
        assert_ne!(edited, BUNDLED_PROFILE);
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("sandbox.toml"), edited).expect("written");
        let profile =
            CarrierProfile::load(Some(dir.path()), "sandbox", BUNDLED_PROFILE).expect("loads");
        let sandbox = Sandbox::new(profile, Clock::system());
        let number = Scenario::Late.example_number(1);
        let report = sandbox
            .report_at(
                &request(&number, Some(ts(REGISTERED))),
                ts("2026-03-07T07:00+01:00"),
            )
            .expect("an answer");
        let latest = report.events.last().expect("scans");
        assert_eq!(
            (latest.raw_code.as_str(), latest.status),
            ("NA", S::Exception)
        );
    }

    fn account() -> CarrierAccount {
        CarrierAccount {
            id: uuid::Uuid::now_v7(),
            merchant_id: crate::domain::MerchantId::DEFAULT,
            carrier: crate::domain::CarrierCode::parse("sandbox").expect("a code"),
            name: "Sandbox".into(),
            credentials: Default::default(),
            base_url: None,
            daily_quota: None,
            requests_per_second: None,
        }
    }

    #[tokio::test]
    async fn a_batch_gets_one_answer_per_number_in_order() {
        let sandbox = sandbox();
        let now = Timestamp::now();
        let numbers = [
            Scenario::Returned.example_number(1),
            Scenario::NotFound.example_number(2),
            Scenario::Broken.example_number(3),
            Scenario::OnTime.example_number(4),
            Scenario::Returned.example_number(1),
        ];
        let batch: Vec<TrackRequest> = numbers
            .iter()
            .map(|n| request(n, Some(now - hours(1))))
            .collect();
        let answers = sandbox.track(&account(), &batch).await.expect("a batch");
        let answered: Vec<&TrackingNumber> = answers.iter().map(|a| &a.tracking_number).collect();
        assert_eq!(answered, numbers.iter().collect::<Vec<_>>());
        assert!(answers[0].outcome.is_ok());
        assert_eq!(answers[1].outcome, Err(ParcelError::NotFound));
        assert!(matches!(
            answers[2].outcome,
            Err(ParcelError::Malformed { .. })
        ));
        assert!(answers[3].outcome.is_ok());
        assert_eq!(answers[4].outcome, answers[0].outcome);

        assert_eq!(sandbox.track(&account(), &[]).await, Ok(vec![]));
        let too_many: Vec<TrackRequest> = (0..26)
            .map(|i| request(&Scenario::OnTime.example_number(i), None))
            .collect();
        match sandbox.track(&account(), &too_many).await {
            Err(CarrierError::Permanent(message)) => {
                assert!(
                    message.contains("26") && message.contains("25"),
                    "{message}"
                );
            }
            other => panic!("expected the batch to be refused, got {other:?}"),
        }
    }

    #[test]
    fn the_assumed_registration_time_holds_still_for_a_day() {
        // Repeated polls must not shift the scans, or every poll would bring "new" ones.
        let morning = assumed_registration(ts("2026-04-01T00:00:01Z"));
        let evening = assumed_registration(ts("2026-04-01T23:59:59Z"));
        assert_eq!(morning, ts("2026-03-02T08:00:00Z"));
        assert_eq!(morning, evening);
        let number = Scenario::Lost.example_number(1);
        let ask = |now| sandbox().report_at(&request(&number, None), ts(now));
        assert_eq!(ask("2026-04-01T00:00:01Z"), ask("2026-04-01T23:59:59Z"));
    }

    #[tokio::test]
    async fn without_a_registration_time_the_whole_journey_is_shown() {
        let sandbox = sandbox();
        let batch: Vec<TrackRequest> = Scenario::JOURNEYS
            .iter()
            .map(|s| request(&s.example_number(1), None))
            .collect();
        let answers = sandbox.track(&account(), &batch).await.expect("a batch");
        for answer in answers {
            let report = answer.outcome.expect("a report");
            let last = report.events.last().expect("scans");
            assert!(
                is_final(last.status, last.reason),
                "{}: {last:?}",
                answer.tracking_number
            );
        }
    }

    #[tokio::test]
    async fn an_accelerated_clock_plays_a_journey_out_in_moments() {
        let start = Timestamp::now();
        // A simulated day per 10 real milliseconds.
        let clock = Clock::accelerated(8_640_000.0, start);
        let sandbox = Sandbox::bundled(clock.clone());
        let number = Scenario::OnTime.example_number(1);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let answers = sandbox
            .track(&account(), &[request(&number, Some(start))])
            .await
            .expect("a batch");
        let report = answers[0].outcome.clone().expect("a report");
        assert_eq!(report.events.last().map(|e| e.status), Some(S::Delivered));
        assert!(report.events.iter().all(|e| e.time.at <= clock.now()));
    }

    /// Poll a journey every hour for twelve days, the way the scheduler would, and collect the
    /// messages the detectors decide to send.
    fn triggers_over_the_journey(scenario: Scenario) -> Vec<Trigger> {
        let sandbox = sandbox();
        let calendar = HolidayCalendar::bundled();
        let journey = scenario.journey();
        let country = CountryCode::parse(journey.destination.country).expect("a country");
        let zone = journey.destination.time_zone();
        let number = scenario.example_number(1);
        let registered = ts(REGISTERED);
        let mut timeline = Timeline::default();
        let mut estimate = None;
        let mut fired = HashSet::new();
        let mut triggers = Vec::new();
        for h in 0..24 * 12 {
            let now = registered + hours(h);
            let Ok(report) = sandbox.report_at(&request(&number, Some(registered)), now) else {
                continue;
            };
            timeline = timeline.merge("sandbox", report.events).timeline;
            let previous = estimate;
            estimate = report.estimate.or(previous);
            let situation = Situation {
                timeline: &timeline,
                destination_country: &country,
                time_zone: &zone,
                promise: None,
                previous_estimate: previous,
                estimate,
                now,
                policy: sandbox.profile.detection_policy(),
                calendar: &calendar,
                already_fired: &fired,
            };
            let detections = detect(&situation);
            for detection in detections {
                fired.insert(detection.dedupe_key);
                triggers.push(detection.trigger);
            }
        }
        triggers
    }

    #[test]
    fn each_journey_makes_the_detectors_tell_its_story() {
        use Trigger::*;
        let expected: [(Scenario, &[Trigger]); 9] = [
            (Scenario::OnTime, &[Shipped, OutForDelivery, Delivered]),
            (
                Scenario::Late,
                &[Shipped, Delayed, Delayed, OutForDelivery, Delivered],
            ),
            (
                Scenario::Customs,
                &[Shipped, CustomsHold, DutiesDue, OutForDelivery, Delivered],
            ),
            (
                Scenario::Pickup,
                &[
                    Shipped,
                    OutForDelivery,
                    AttemptFailed,
                    AvailableForPickup,
                    PickupReminder,
                    Delivered,
                ],
            ),
            (
                Scenario::Stalled,
                &[Shipped, Stalled, Delayed, OutForDelivery, Delivered],
            ),
            (Scenario::Lost, &[Shipped, Stalled, Exception]),
            (
                Scenario::Returned,
                &[Shipped, OutForDelivery, AttemptFailed, ReturningToSender],
            ),
            (Scenario::NotFound, &[Shipped, OutForDelivery, Delivered]),
            (Scenario::Broken, &[Shipped, OutForDelivery, Delivered]),
        ];
        for (scenario, triggers) in expected {
            assert_eq!(
                triggers_over_the_journey(scenario),
                triggers,
                "{scenario:?}"
            );
        }
    }
}
