//! The time zone a customer lives in: their country's, or, where the country spans several, the
//! one their postal code places them in. Quiet hours and the dates in emails follow it, so a
//! guess is worse than asking: a postal code the table cannot place is refused, not defaulted.
//!
//! The table is `time_zones.toml` beside this file, which documents its format and sources.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use super::shipment::{CountryCode, InvalidField, PostalCode, TimeZoneName};

/// The zone table bundled into Waymark.
pub const BUNDLED_ZONES: &str = include_str!("time_zones.toml");

static BUNDLED: LazyLock<ZoneTable> =
    LazyLock::new(|| ZoneTable::from_toml(BUNDLED_ZONES).expect("the bundled zone table is valid"));

/// The key under a country's `postal` table that lists prefixes no zone is given for.
const UNPLACED: &str = "unplaced";

/// One country as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryEntry {
    zone: Option<String>,
    main: Option<String>,
    usual: Option<String>,
    #[serde(default)]
    postal: BTreeMap<String, Vec<String>>,
}

/// A zone table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ZoneTableError {
    #[error("zone table: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("zone table, country {country}: {reason}")]
    Entry { country: String, reason: String },
}

#[derive(Debug, Clone)]
enum Zones {
    One(TimeZoneName),
    Several {
        main: Option<TimeZoneName>,
        /// Where nearly everyone lives (a country whose few islands keep another clock): the
        /// zone of a customer whose postal code does not say otherwise.
        usual: Option<TimeZoneName>,
        /// Empty when the country's postal codes cannot tell its zones apart.
        postal: Vec<PostalPrefix>,
    },
}

/// Postal codes whose leading characters fall between `from` and `to` (both of one length).
#[derive(Debug, Clone)]
struct PostalPrefix {
    from: String,
    to: String,
    /// `None`: the prefix straddles zones.
    zone: Option<TimeZoneName>,
}

impl PostalPrefix {
    fn matches(&self, key: &str) -> bool {
        key.get(..self.from.len())
            .is_some_and(|lead| self.from.as_str() <= lead && lead <= self.to.as_str())
    }
}

/// Countries and the zones their customers live in.
#[derive(Debug, Clone, Default)]
pub struct ZoneTable {
    countries: HashMap<String, Zones>,
}

impl ZoneTable {
    /// Read a table in the format of `time_zones.toml`, checking every zone and prefix.
    pub fn from_toml(text: &str) -> Result<Self, ZoneTableError> {
        let entries: BTreeMap<String, CountryEntry> = toml::from_str(text)?;
        let mut countries = HashMap::new();
        for (code, entry) in entries {
            let bad = |reason: String| ZoneTableError::Entry {
                country: code.clone(),
                reason,
            };
            CountryCode::parse(&code).map_err(|e| bad(e.reason))?;
            let zone = |name: &str| TimeZoneName::parse(name).map_err(|e| bad(e.reason));
            let zones = match entry {
                CountryEntry {
                    zone: Some(one),
                    main: None,
                    usual: None,
                    postal,
                } if postal.is_empty() => Zones::One(zone(&one)?),
                CountryEntry { zone: Some(_), .. } => {
                    return Err(bad(
                        "a country with one `zone` has no `main` zone or `postal` table".into(),
                    ));
                }
                CountryEntry {
                    zone: None,
                    main,
                    usual,
                    postal,
                } => {
                    let usual = usual.as_deref().map(zone).transpose()?;
                    let main = main.as_deref().map(zone).transpose()?.or(usual.clone());
                    let mut prefixes = Vec::new();
                    for (name, items) in &postal {
                        let placed = match name.as_str() {
                            UNPLACED => None,
                            name => Some(zone(name)?),
                        };
                        for item in items {
                            let (from, to) = prefix_range(item).ok_or_else(|| {
                                bad(format!(
                                    "`{item}` is not a postal prefix like `941` or a range like \
                                     `900-961`"
                                ))
                            })?;
                            prefixes.push(PostalPrefix {
                                from,
                                to,
                                zone: placed.clone(),
                            });
                        }
                    }
                    if let Some((a, b)) = overlap(&mut prefixes) {
                        return Err(bad(format!("`{a}` and `{b}` overlap")));
                    }
                    Zones::Several {
                        main,
                        usual,
                        postal: prefixes,
                    }
                }
            };
            countries.insert(code, zones);
        }
        Ok(ZoneTable { countries })
    }

    /// The table bundled into the binary.
    pub fn bundled() -> &'static ZoneTable {
        &BUNDLED
    }

    /// The zone a carrier scan in `country` that names no place is read in: the country's one
    /// zone, or the main one of a country that spans several.
    pub fn main_zone(&self, country: &CountryCode) -> Option<&TimeZoneName> {
        match self.countries.get(country.as_str())? {
            Zones::One(zone) => Some(zone),
            Zones::Several { main, .. } => main.as_ref(),
        }
    }

    /// The zone a customer in `country` lives in, placed by their postal code where the country
    /// spans several zones. Refused, naming `time_zone`, where the table cannot tell: the
    /// merchant then gives the zone.
    pub fn customer_zone(
        &self,
        country: &CountryCode,
        postal_code: Option<&PostalCode>,
    ) -> Result<TimeZoneName, InvalidField> {
        let refuse = |reason: String| Err(InvalidField::new("time_zone", reason));
        match self.countries.get(country.as_str()) {
            None => refuse(format!(
                "required for destination {country}: give the customer's zone, e.g. Europe/Berlin"
            )),
            Some(Zones::One(zone)) => Ok(zone.clone()),
            Some(Zones::Several {
                usual: Some(usual),
                postal,
                ..
            }) => Ok(postal_code
                .and_then(|code| place(postal, code))
                .unwrap_or_else(|| usual.clone())),
            Some(Zones::Several { postal, .. }) if postal.is_empty() => refuse(format!(
                "destination {country} spans several time zones, and Waymark cannot tell them \
                 apart by postal code; give time_zone"
            )),
            Some(Zones::Several { postal, .. }) => {
                let Some(code) = postal_code else {
                    return refuse(format!(
                        "destination {country} spans several time zones; give time_zone or a \
                         destination_postal_code Waymark can place"
                    ));
                };
                match place(postal, code) {
                    Some(zone) => Ok(zone),
                    None => refuse(format!(
                        "destination {country} spans several time zones, and Waymark cannot \
                         tell which one postal code `{code}` is in; give time_zone"
                    )),
                }
            }
        }
    }
}

/// The zone the longest matching prefix gives a postal code, if any.
fn place(postal: &[PostalPrefix], code: &PostalCode) -> Option<TimeZoneName> {
    let key = code.alphanumerics();
    postal
        .iter()
        .filter(|prefix| prefix.matches(&key))
        .max_by_key(|prefix| prefix.from.len())
        .and_then(|prefix| prefix.zone.clone())
}

/// `941` as (`941`, `941`), `900-961` as (`900`, `961`); letters and digits only, both ends of
/// one length, in order.
fn prefix_range(item: &str) -> Option<(String, String)> {
    let (from, to) = item.split_once('-').unwrap_or((item, item));
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    };
    (valid(from) && valid(to) && from.len() == to.len() && from <= to)
        .then(|| (from.to_owned(), to.to_owned()))
}

/// Two prefixes of one length that share a postal code, if any: the longest match could not
/// choose between them. Sorts `prefixes`.
fn overlap(prefixes: &mut [PostalPrefix]) -> Option<(String, String)> {
    prefixes.sort_by(|a, b| (a.from.len(), &a.from).cmp(&(b.from.len(), &b.from)));
    prefixes.windows(2).find_map(|pair| {
        let (a, b) = (&pair[0], &pair[1]);
        (a.from.len() == b.from.len() && b.from <= a.to).then(|| (range_text(a), range_text(b)))
    })
}

fn range_text(prefix: &PostalPrefix) -> String {
    if prefix.from == prefix.to {
        prefix.from.clone()
    } else {
        format!("{}-{}", prefix.from, prefix.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone_of(country: &str, postal_code: &str) -> Result<String, InvalidField> {
        let country = CountryCode::parse(country).unwrap();
        let code = PostalCode::parse(&country, postal_code).unwrap();
        ZoneTable::bundled()
            .customer_zone(&country, Some(&code))
            .map(|zone| zone.to_string())
    }

    #[test]
    fn us_zip_codes_place_customers_in_their_states_zone() {
        for (zip, zone) in [
            ("94105", "America/Los_Angeles"), // San Francisco
            ("98101", "America/Los_Angeles"), // Seattle
            ("80202", "America/Denver"),      // Denver
            ("84101", "America/Denver"),      // Salt Lake City
            ("85004", "America/Phoenix"),     // Phoenix: no summer time
            ("86045", "America/Denver"),      // Tuba City: the Navajo Nation has summer time
            ("96813", "Pacific/Honolulu"),    // Honolulu
            ("99501", "America/Anchorage"),   // Anchorage
            ("60601", "America/Chicago"),     // Chicago
            ("10001", "America/New_York"),    // New York
            ("48226", "America/Detroit"),     // Detroit
            ("00901", "America/Puerto_Rico"), // San Juan
            ("83702", "America/Boise"),       // Boise
            ("83814", "America/Los_Angeles"), // Coeur d'Alene, in Idaho's panhandle
        ] {
            assert_eq!(zone_of("US", zip).as_deref(), Ok(zone), "{zip}");
        }
    }

    #[test]
    fn split_states_are_placed_below_the_three_digit_prefix() {
        for (zip, zone) in [
            ("79901", "America/Denver"),      // El Paso
            ("79936", "America/Denver"),      // El Paso
            ("79835", "America/Denver"),      // Canutillo, El Paso County, in 798
            ("79830", "America/Chicago"),     // Alpine, also in 798: central time
            ("79701", "America/Chicago"),     // Midland
            ("32501", "America/Chicago"),     // Pensacola
            ("32456", "America/New_York"),    // Port St. Joe, in the panhandle's eastern part
            ("32301", "America/New_York"),    // Tallahassee
            ("67735", "America/Denver"),      // Goodland, Kansas
            ("67801", "America/Chicago"),     // Dodge City, Kansas
            ("97914", "America/Boise"),       // Ontario, Oregon
            ("97904", "America/Los_Angeles"), // Drewsey, Oregon, also in 979
            ("89883", "America/Denver"),      // West Wendover, Nevada
            ("49855", "America/Detroit"),     // Marquette, Michigan
            ("49801", "America/Menominee"),   // Iron Mountain, Michigan
        ] {
            assert_eq!(zone_of("US", zip).as_deref(), Ok(zone), "{zip}");
        }
        // ZIP+4 is read by its first five digits like any other.
        assert_eq!(
            zone_of("US", "94105-1234").as_deref(),
            Ok("America/Los_Angeles")
        );
    }

    #[test]
    fn a_zip_code_the_table_cannot_place_is_refused_naming_the_time_zone() {
        for zip in ["86040", "09012", "96201", "88888"] {
            let refused = zone_of("US", zip).unwrap_err();
            assert_eq!(refused.field, "time_zone", "{zip}");
            assert!(
                refused.reason.contains(&format!("postal code `{zip}`")),
                "{zip}: {refused}"
            );
        }
    }

    #[test]
    fn canadian_postal_codes_are_placed_by_their_sortation_area() {
        for (code, zone) in [
            ("V6B 1A1", "America/Vancouver"),   // Vancouver
            ("B3H 4R2", "America/Halifax"),     // Halifax
            ("M5V 3L9", "America/Toronto"),     // Toronto
            ("H3B 4W8", "America/Toronto"),     // Montreal
            ("T2P 2M5", "America/Edmonton"),    // Calgary
            ("S4P 3Y2", "America/Regina"),      // Regina: no daylight saving time
            ("S9V 0A1", "America/Edmonton"),    // Lloydminster keeps Alberta's clock
            ("R3C 4T3", "America/Winnipeg"),    // Winnipeg
            ("P9N 1A1", "America/Winnipeg"),    // Kenora, Ontario
            ("P3E 1A1", "America/Toronto"),     // Sudbury, Ontario
            ("A1C 5M2", "America/St_Johns"),    // St. John's
            ("A0P 1E0", "America/Goose_Bay"),   // Happy Valley-Goose Bay, Labrador
            ("E1C 4M3", "America/Moncton"),     // Moncton
            ("G4T 1A1", "America/Halifax"),     // the Magdalen Islands, Quebec
            ("V1C 4H3", "America/Edmonton"),    // Cranbrook, British Columbia
            ("Y1A 1A1", "America/Whitehorse"),  // Whitehorse
            ("X1A 2L9", "America/Yellowknife"), // Yellowknife
        ] {
            assert_eq!(zone_of("CA", code).as_deref(), Ok(zone), "{code}");
        }
        for straddles in ["X0A 0H0", "G0G 1A0", "P0T 1C0", "V0B 1G0"] {
            assert_eq!(
                zone_of("CA", straddles).unwrap_err().field,
                "time_zone",
                "{straddles}"
            );
        }
    }

    #[test]
    fn australian_postcodes_are_placed_by_their_state() {
        for (code, zone) in [
            ("2000", "Australia/Sydney"),      // Sydney
            ("2600", "Australia/Sydney"),      // Canberra
            ("2880", "Australia/Broken_Hill"), // Broken Hill
            ("3000", "Australia/Melbourne"),   // Melbourne
            ("4000", "Australia/Brisbane"),    // Brisbane: no daylight saving time
            ("5000", "Australia/Adelaide"),    // Adelaide
            ("6000", "Australia/Perth"),       // Perth
            ("7000", "Australia/Hobart"),      // Hobart
            ("0800", "Australia/Darwin"),      // Darwin
            ("0870", "Australia/Darwin"),      // Alice Springs
        ] {
            assert_eq!(zone_of("AU", code).as_deref(), Ok(zone), "{code}");
        }
        assert_eq!(zone_of("AU", "0872").unwrap_err().field, "time_zone");
    }

    #[test]
    fn spain_and_portugal_place_their_islands() {
        assert_eq!(zone_of("ES", "28013").as_deref(), Ok("Europe/Madrid"));
        assert_eq!(zone_of("ES", "35001").as_deref(), Ok("Atlantic/Canary"));
        assert_eq!(zone_of("ES", "38001").as_deref(), Ok("Atlantic/Canary"));
        assert_eq!(zone_of("PT", "1100-148").as_deref(), Ok("Europe/Lisbon"));
        assert_eq!(zone_of("PT", "9000-018").as_deref(), Ok("Atlantic/Madeira"));
        assert_eq!(zone_of("PT", "9500-150").as_deref(), Ok("Atlantic/Azores"));
    }

    #[test]
    fn without_a_postal_code_a_country_needs_one_zone_or_a_usual_one() {
        let table = ZoneTable::bundled();
        let zone = |country: &str| table.customer_zone(&CountryCode::parse(country).unwrap(), None);
        assert_eq!(zone("DE").unwrap().as_str(), "Europe/Berlin");
        assert_eq!(zone("GB").unwrap().as_str(), "Europe/London");
        // Only islands keep another clock: the mainland's, unless the postal code says so.
        assert_eq!(zone("ES").unwrap().as_str(), "Europe/Madrid");
        assert_eq!(zone("PT").unwrap().as_str(), "Europe/Lisbon");
        for several in ["US", "CA", "AU"] {
            let refused = zone(several).unwrap_err();
            assert_eq!(refused.field, "time_zone");
            assert_eq!(
                refused.reason,
                format!(
                    "destination {several} spans several time zones; give time_zone or a \
                     destination_postal_code Waymark can place"
                )
            );
        }
        let brazil = zone("BR").unwrap_err();
        assert!(
            brazil.reason.contains("spans several time zones"),
            "{brazil}"
        );
        assert!(
            zone("JP")
                .unwrap_err()
                .reason
                .contains("required for destination JP")
        );
    }

    #[test]
    fn carrier_scans_keep_their_countrys_main_zone() {
        let main = |country: &str| TimeZoneName::default_for(&CountryCode::parse(country).unwrap());
        assert_eq!(main("US"), Some("America/New_York"));
        assert_eq!(main("CA"), Some("America/Toronto"));
        assert_eq!(main("AU"), Some("Australia/Sydney"));
        assert_eq!(main("PL"), Some("Europe/Warsaw"));
        assert_eq!(main("BR"), None);
    }

    #[test]
    fn a_broken_table_is_refused_with_the_country_named() {
        for (text, says) in [
            ("[DE]\nzone = \"Europe/Gdansk\"\n", "Europe/Gdansk"),
            (
                "[US]\n[US.postal]\n\"America/Chicago\" = [\"600-629\"]\n\
                 \"America/Denver\" = [\"620\"]\n",
                "overlap",
            ),
            (
                "[US]\n[US.postal]\n\"America/Chicago\" = [\"60-629\"]\n",
                "60-629",
            ),
            (
                "[DE]\nzone = \"Europe/Berlin\"\nmain = \"Europe/Berlin\"\n",
                "one `zone`",
            ),
        ] {
            let error = ZoneTable::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }
}
