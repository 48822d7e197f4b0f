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
    next_weekday: Vec<NextWeekday>,
    #[serde(default)]
    observed: Option<Observed>,
    /// Fixed holidays that are not made up for when they fall on a weekend.
    #[serde(default)]
    not_observed: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NthWeekday {
    month: i8,
    weekday: WeekdayName,
    nth: i8,
}

/// A holiday on the first given weekday on or after a date (Victoria Day: the Monday on or
/// after 18 May), or on the date itself when it falls on one of `stays_on` (Ireland's Saint
/// Brigid's Day: the first Monday of February, or 1 February when that is a Friday).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NextWeekday {
    from: String,
    weekday: WeekdayName,
    #[serde(default)]
    stays_on: Vec<WeekdayName>,
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
    /// Saturday or Sunday moves to the next day that is neither a weekend day nor another
    /// holiday or its substitute (United Kingdom, Canada, Australia): Christmas on a Saturday
    /// and Boxing Day on a Sunday give Monday and Tuesday.
    Monday,
    /// Saturday moves to Friday, Sunday to Monday (United States), further on only if that
    /// day is already a holiday.
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
            let dates = rules
                .fixed
                .iter()
                .chain(&rules.not_observed)
                .chain(rules.next_weekday.iter().map(|rule| &rule.from));
            for fixed in dates {
                parse_month_day(fixed).ok_or_else(|| CalendarError::Rule {
                    country: country.clone(),
                    reason: format!("`{fixed}` is not a MM-DD date"),
                })?;
            }
            if let Some(stray) = rules.not_observed.iter().find(|d| !rules.fixed.contains(d)) {
                return Err(CalendarError::Rule {
                    country: country.clone(),
                    reason: format!("`{stray}` is in not_observed but not in fixed"),
                });
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

    /// Whether the calendar has rules for `country`.
    pub fn knows(&self, country: &CountryCode) -> bool {
        self.countries.contains_key(country.as_str())
    }

    /// Whether `date` is a public holiday in `country`, or the day one is made up on (unknown
    /// countries have none).
    pub fn is_holiday(&self, country: &CountryCode, date: Date) -> bool {
        let Some(rules) = self.countries.get(country.as_str()) else {
            return false;
        };
        // A substitute can fall outside its holiday's year: New Year's Day on a Saturday is
        // made up on the Friday before, 31 December.
        let year = date.year();
        [year.checked_sub(1), Some(year), year.checked_add(1)]
            .into_iter()
            .flatten()
            .any(|y| holidays_of(rules, y).contains(&date))
    }

    /// A weekday that is not a public holiday in `country`.
    pub fn is_business_day(&self, country: &CountryCode, date: Date) -> bool {
        !is_weekend(date) && !self.is_holiday(country, date)
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

/// The holidays of `year` and the days they are made up on, which may lie in the year before
/// or after.
fn holidays_of(rules: &CountryRules, year: i16) -> Vec<Date> {
    let fixed: Vec<(Date, bool)> = rules
        .fixed
        .iter()
        .filter_map(|md| {
            let (m, d) = parse_month_day(md)?;
            let date = Date::new(year, m, d).ok()?;
            Some((date, !rules.not_observed.contains(md)))
        })
        .collect();
    let mut days: Vec<Date> = fixed.iter().map(|(date, _)| *date).collect();
    if let Ok(easter) = computus::gregorian_jiff_date(i32::from(year)) {
        days.extend(
            rules
                .easter
                .iter()
                .filter_map(|offset| easter.checked_add(i64::from(*offset).days()).ok()),
        );
    }
    days.extend(
        rules
            .weekday
            .iter()
            .filter_map(|rule| nth_weekday(year, rule.month, rule.weekday.into(), rule.nth)),
    );
    days.extend(
        rules
            .next_weekday
            .iter()
            .filter_map(|rule| next_weekday(year, rule)),
    );
    let Some(observed) = rules.observed else {
        return days;
    };
    // In date order, so Christmas takes the Monday and Boxing Day the Tuesday after it.
    let mut on_weekends: Vec<Date> = fixed
        .iter()
        .filter(|(date, made_up)| *made_up && is_weekend(*date))
        .map(|(date, _)| *date)
        .collect();
    on_weekends.sort();
    on_weekends.dedup();
    for holiday in on_weekends {
        if let Some(substitute) = substitute_for(holiday, observed, &days) {
            days.push(substitute);
        }
    }
    days
}

/// The first day from `holiday` in the rule's direction that is neither a weekend day nor
/// already taken by a holiday or another substitute.
fn substitute_for(holiday: Date, rule: Observed, taken: &[Date]) -> Option<Date> {
    let backwards = matches!(
        (rule, holiday.weekday()),
        (Observed::Nearest, Weekday::Saturday)
    );
    let mut day = holiday;
    // A week always holds a free weekday unless every one is a holiday; stop there rather
    // than loop on a file that makes a whole week holidays.
    for _ in 0..14 {
        day = if backwards {
            day.yesterday().ok()?
        } else {
            day.tomorrow().ok()?
        };
        if !is_weekend(day) && !taken.contains(&day) {
            return Some(day);
        }
    }
    None
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
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

fn nth_weekday(year: i16, month: i8, weekday: Weekday, nth: i8) -> Option<Date> {
    // jiff counts a negative `nth` from the end of the month.
    Date::new(year, month, 1)
        .ok()?
        .nth_weekday_of_month(nth, weekday)
        .ok()
}

fn next_weekday(year: i16, rule: &NextWeekday) -> Option<Date> {
    let (m, d) = parse_month_day(&rule.from)?;
    let from = Date::new(year, m, d).ok()?;
    let stays = rule
        .stays_on
        .iter()
        .any(|w| Weekday::from(*w) == from.weekday());
    if stays {
        return Some(from);
    }
    let weekday = Weekday::from(rule.weekday);
    // `nth_weekday(1, ..)` counts from the day after, so start the day before.
    from.yesterday().ok()?.nth_weekday(1, weekday).ok()
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
    fn christmas_on_saturday_and_boxing_day_on_sunday_give_monday_and_tuesday() {
        let cal = HolidayCalendar::bundled();
        let gb = country("GB");
        // 2027: Christmas is a Saturday, Boxing Day a Sunday.
        assert!(
            cal.is_holiday(&gb, date(2027, 12, 27)),
            "Christmas, made up"
        );
        assert!(
            cal.is_holiday(&gb, date(2027, 12, 28)),
            "Boxing Day, made up"
        );
        assert!(cal.is_business_day(&gb, date(2027, 12, 29)));
        // 2022: Christmas is a Sunday and Boxing Day already the Monday, so Christmas moves
        // on to the Tuesday.
        assert!(cal.is_holiday(&gb, date(2022, 12, 26)));
        assert!(cal.is_holiday(&gb, date(2022, 12, 27)));
        assert!(cal.is_business_day(&gb, date(2022, 12, 28)));
    }

    #[test]
    fn a_holiday_made_up_in_the_year_before_counts() {
        let cal = HolidayCalendar::bundled();
        let us = country("US");
        // New Year's Day 2022 is a Saturday: federal offices close on Friday 31 December 2021.
        assert!(cal.is_holiday(&us, date(2021, 12, 31)));
        assert!(!cal.is_business_day(&us, date(2021, 12, 31)));
        // And 1 January 2021 was a Friday: nothing moved into 2020.
        assert!(cal.is_business_day(&us, date(2020, 12, 31)));
    }

    #[test]
    fn holidays_on_a_weekday_after_a_date() {
        let cal = HolidayCalendar::bundled();
        // Victoria Day: the Monday on or after 18 May.
        assert!(cal.is_holiday(&country("CA"), date(2026, 5, 18)));
        assert!(cal.is_holiday(&country("CA"), date(2027, 5, 24)));
        // Saint Brigid's Day: the first Monday of February, or 1 February when it is a Friday.
        assert!(cal.is_holiday(&country("IE"), date(2027, 2, 1)));
        assert!(cal.is_holiday(&country("IE"), date(2030, 2, 1)));
        assert!(!cal.is_holiday(&country("IE"), date(2030, 2, 4)));
        // Midsummer Eve: the Friday on or after 19 June.
        assert!(cal.is_holiday(&country("SE"), date(2026, 6, 19)));
        assert!(cal.is_holiday(&country("SE"), date(2027, 6, 25)));
    }

    #[test]
    fn a_holiday_kept_on_its_day_is_not_made_up() {
        let cal = HolidayCalendar::bundled();
        let au = country("AU");
        // Anzac Day 2027 is a Sunday; not every state gives a Monday for it.
        assert!(cal.is_business_day(&au, date(2027, 4, 26)));
        // Boxing Day 2026 is a Saturday: Monday 28 December, as in every state.
        assert!(cal.is_holiday(&au, date(2026, 12, 28)));
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
        let err =
            HolidayCalendar::from_toml("[XX]\nfixed = [\"12-25\"]\nnot_observed = [\"12-26\"]")
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "holiday file, country XX: `12-26` is in not_observed but not in fixed"
        );
        let err = HolidayCalendar::from_toml("[XX]\nfixed = [\"13-01\"]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "holiday file, country XX: `13-01` is not a MM-DD date"
        );
    }
}

#[cfg(test)]
#[path = "calendar_reference_tests.rs"]
mod reference_tests;
