//! Business days: weekends and the destination country's public holidays do not count when
//! Waymark decides whether a parcel has gone quiet for too long.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use std::collections::HashMap;

use super::shipment::CountryCode;

/// The holiday rules shipped with Waymark (`carriers/holidays.toml`).
pub const BUNDLED_HOLIDAYS: &str = include_str!("../../carriers/holidays.toml");

/// What the holiday file says about one country.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryRules {
    #[serde(default)]
    fixed: Vec<String>,
    #[serde(default)]
    easter: Vec<i16>,
    #[serde(default)]
    weekday: Vec<NthWeekday>,
    #[serde(default)]
    observed: Option<Observed>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NthWeekday {
    month: i8,
    weekday: WeekdayName,
    nth: i8,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WeekdayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
}

impl From<WeekdayName> for Weekday {
    fn from(value: WeekdayName) -> Self {
        match value {
            WeekdayName::Monday => Weekday::Monday,
            WeekdayName::Tuesday => Weekday::Tuesday,
            WeekdayName::Wednesday => Weekday::Wednesday,
            WeekdayName::Thursday => Weekday::Thursday,
            WeekdayName::Friday => Weekday::Friday,
        }
    }
}

/// How a fixed-date holiday that falls on a weekend is made up for.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Observed {
    /// Saturday or Sunday moves to the next free Monday (United Kingdom, Canada, Australia).
    Monday,
    /// Saturday moves to Friday, Sunday to Monday (United States).
    Nearest,
}

/// A holiday file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("holiday file: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("holiday file, country {country}: {reason}")]
    Rule { country: String, reason: String },
}

/// Public holidays per country, and the business-hour arithmetic built on them.
#[derive(Debug, Clone, Default)]
pub struct HolidayCalendar {
    countries: HashMap<String, CountryRules>,
}

impl HolidayCalendar {
    /// Read rules in the format of `carriers/holidays.toml`, checking every date.
    pub fn from_toml(text: &str) -> Result<Self, CalendarError> {
        let countries: HashMap<String, CountryRules> = toml::from_str(text)?;
        for (country, rules) in &countries {
            for fixed in &rules.fixed {
                parse_month_day(fixed).ok_or_else(|| CalendarError::Rule {
                    country: country.clone(),
                    reason: format!("`{fixed}` is not a MM-DD date"),
                })?;
            }
            for rule in &rules.weekday {
                if !(1..=12).contains(&rule.month) || rule.nth == 0 || !(-5..=5).contains(&rule.nth)
                {
                    return Err(CalendarError::Rule {
                        country: country.clone(),
                        reason: format!(
                            "weekday rule month {} nth {} is out of range",
                            rule.month, rule.nth
                        ),
                    });
                }
            }
        }
        Ok(HolidayCalendar { countries })
    }

    /// The rules bundled into the binary.
    pub fn bundled() -> Self {
        Self::from_toml(BUNDLED_HOLIDAYS).expect("the bundled holiday file is valid")
    }

    /// Whether `date` is a public holiday in `country` (unknown countries have none).
    pub fn is_holiday(&self, country: &CountryCode, date: Date) -> bool {
        let Some(rules) = self.countries.get(country.as_str()) else {
            return false;
        };
        let year = date.year();
        let fixed_dates = rules
            .fixed
            .iter()
            .filter_map(|md| parse_month_day(md))
            .filter_map(|(m, d)| Date::new(year, m, d).ok());
        for holiday in fixed_dates {
            if holiday == date {
                return true;
            }
            if let Some(observed) = rules.observed {
                if observed_on(holiday, observed) == Some(date) {
                    return true;
                }
            }
        }
        if let Ok(easter) = computus::gregorian_jiff_date(i32::from(year)) {
            if rules
                .easter
                .iter()
                .any(|days| easter.checked_add(i64::from(*days).days()).ok() == Some(date))
            {
                return true;
            }
        }
        rules.weekday.iter().any(|rule| {
            rule.month == date.month()
                && nth_weekday(year, rule.month, rule.weekday.into(), rule.nth) == Some(date)
        })
    }

    /// A weekday that is not a public holiday in `country`.
    pub fn is_business_day(&self, country: &CountryCode, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.is_holiday(country, date)
    }

    /// Hours between two instants that fall on business days in `country`, reckoned in `tz`.
    pub fn business_hours_between(
        &self,
        country: &CountryCode,
        tz: &TimeZone,
        from: Timestamp,
        to: Timestamp,
    ) -> f64 {
        if to <= from {
            return 0.0;
        }
        let mut day = from.to_zoned(tz.clone()).date();
        let last = to.to_zoned(tz.clone()).date();
        let mut seconds = 0i64;
        while day <= last {
            if self.is_business_day(country, day) {
                let start = day_start(day, tz).max(from);
                let end = day
                    .tomorrow()
                    .map(|next| day_start(next, tz))
                    .unwrap_or(to)
                    .min(to);
                if end > start {
                    seconds += end.as_second() - start.as_second();
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        seconds as f64 / 3600.0
    }
}

fn day_start(day: Date, tz: &TimeZone) -> Timestamp {
    day.to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| Timestamp::MAX)
}

fn parse_month_day(text: &str) -> Option<(i8, i8)> {
    let (m, d) = text.split_once('-')?;
    let (m, d) = (m.parse::<i8>().ok()?, d.parse::<i8>().ok()?);
    Date::new(2024, m, d).ok().map(|_| (m, d))
}

fn observed_on(holiday: Date, rule: Observed) -> Option<Date> {
    match (rule, holiday.weekday()) {
        (Observed::Monday, Weekday::Saturday) => holiday.checked_add(2.days()).ok(),
        (Observed::Monday, Weekday::Sunday) => holiday.checked_add(1.days()).ok(),
        (Observed::Nearest, Weekday::Saturday) => holiday.checked_sub(1.days()).ok(),
        (Observed::Nearest, Weekday::Sunday) => holiday.checked_add(1.days()).ok(),
        _ => None,
    }
}

fn nth_weekday(year: i16, month: i8, weekday: Weekday, nth: i8) -> Option<Date> {
    // jiff counts a negative `nth` from the end of the month.
    Date::new(year, month, 1)
        .ok()?
        .nth_weekday_of_month(nth, weekday)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn country(code: &str) -> CountryCode {
        CountryCode::parse(code).unwrap()
    }

    #[test]
    fn easter_and_fixed_holidays_are_known() {
        let cal = HolidayCalendar::bundled();
        // Easter 2026 is 5 April.
        assert!(
            cal.is_holiday(&country("DE"), date(2026, 4, 3)),
            "Good Friday"
        );
        assert!(
            cal.is_holiday(&country("DE"), date(2026, 4, 6)),
            "Easter Monday"
        );
        assert!(
            cal.is_holiday(&country("PL"), date(2026, 6, 4)),
            "Corpus Christi"
        );
        assert!(
            !cal.is_holiday(&country("DE"), date(2026, 6, 4)),
            "not nationwide in DE"
        );
        assert!(cal.is_holiday(&country("DE"), date(2026, 10, 3)));
        assert!(cal.is_holiday(&country("PL"), date(2026, 11, 11)));
        assert!(!cal.is_holiday(&country("ZZ"), date(2026, 12, 25)));
    }

    #[test]
    fn weekday_rules_and_observed_days() {
        let cal = HolidayCalendar::bundled();
        assert!(
            cal.is_holiday(&country("US"), date(2026, 11, 26)),
            "Thanksgiving"
        );
        assert!(
            cal.is_holiday(&country("US"), date(2026, 5, 25)),
            "Memorial Day"
        );
        assert!(
            cal.is_holiday(&country("GB"), date(2026, 8, 31)),
            "summer bank holiday"
        );
        // 4 July 2026 is a Saturday: observed on Friday 3 July in the US.
        assert!(cal.is_holiday(&country("US"), date(2026, 7, 3)));
        // Christmas 2027 is a Saturday: Monday 27 is observed in the UK.
        assert!(cal.is_holiday(&country("GB"), date(2027, 12, 27)));
    }

    #[test]
    fn weekends_and_holidays_do_not_count_as_business_hours() {
        let cal = HolidayCalendar::bundled();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let de = country("DE");
        // Friday 18:00 to Monday 09:00 in Berlin: 6 hours of Friday and 9 of Monday.
        let from: Timestamp = "2026-03-06T18:00:00+01:00".parse().unwrap();
        let to: Timestamp = "2026-03-09T09:00:00+01:00".parse().unwrap();
        assert_eq!(cal.business_hours_between(&de, &berlin, from, to), 15.0);
        // Thursday before Easter 12:00 to Tuesday after Easter 12:00: Thursday 12 h + Tuesday 12 h.
        let from: Timestamp = "2026-04-02T12:00:00+02:00".parse().unwrap();
        let to: Timestamp = "2026-04-07T12:00:00+02:00".parse().unwrap();
        assert_eq!(cal.business_hours_between(&de, &berlin, from, to), 24.0);
        assert_eq!(cal.business_hours_between(&de, &berlin, to, from), 0.0);
    }

    #[test]
    fn a_bad_rule_names_its_country() {
        let err = HolidayCalendar::from_toml("[XX]\nfixed = [\"13-01\"]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "holiday file, country XX: `13-01` is not a MM-DD date"
        );
    }
}
