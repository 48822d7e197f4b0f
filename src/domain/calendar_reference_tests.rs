//! The holiday calendar checked against a source written independently of
//! `carriers/holidays.toml`: the `holidays` package from PyPI, for every country in the file and
//! every year from 2025 to 2030 (`tests/support/holidays_reference.py` prints its dates).
//!
//! Only Monday to Friday are compared: a weekend day is never a business day, so whether the
//! calendar calls it a holiday changes nothing (the package also lists Easter Sunday and other
//! Sunday holidays, which the file need not).

use super::*;
use jiff::civil::date;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const FIRST_YEAR: i16 = 2025;
const LAST_YEAR: i16 = 2030;

/// Which of the package's lists a country's rules stand for, where that is not its national
/// public holidays.
fn reference_list(country: &str) -> Value {
    match country {
        // One set of rules per country: the file keeps the bank holidays of England and Wales,
        // where most of the United Kingdom lives. The package's national list is only what all
        // four nations share, without Easter Monday or the August bank holiday.
        "GB" => json!({ "subdivision": "ENG" }),
        // The package's national list leaves out every substitute day, though each state and
        // territory makes up Christmas, Boxing Day, New Year's and Australia Day: the days that
        // are holidays in all eight are Australia's nationwide ones.
        "AU" => json!({
            "every_one_of": ["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]
        }),
        // Canada's national list holds only the few days every province keeps; the file keeps
        // the federal statutory holidays (the package's `government` category), which the
        // Canada Labour Code gives the staff of the federally regulated post and couriers.
        "CA" => json!({ "categories": ["public", "government"] }),
        // Midsummer Eve, Christmas Eve and New Year's Eve are not holidays in Swedish law but
        // days off in practice (the package's `de_facto` category).
        "SE" => json!({ "categories": ["public", "de_facto"] }),
        // 1 May, Constitution Day, Christmas Eve and New Year's Eve are not holidays in Danish
        // law but days off under many collective agreements (the package's `optional` category).
        "DK" => json!({ "categories": ["public", "optional"] }),
        _ => json!({}),
    }
}

/// A day on which the file deliberately differs from the package.
struct Deliberate {
    country: &'static str,
    day: Day,
    /// Whether the file counts the day and the package does not (or the other way round).
    waymark_counts_it: bool,
    why: &'static str,
}

enum Day {
    /// Days after Easter Sunday.
    Easter(i64),
    /// Month and day.
    Fixed(i8, i8),
}

impl Day {
    fn in_year(&self, year: i16) -> Date {
        match self {
            Day::Easter(days) => computus::gregorian_jiff_date(i32::from(year))
                .expect("Easter")
                .checked_add(days.days())
                .expect("a date"),
            Day::Fixed(month, day) => date(year, *month, *day),
        }
    }
}

/// Each difference between the file and the package that is meant, and why.
///
/// A stall counted a day late costs less than a customer told their parcel is stuck while the
/// depots are closed, so the file keeps a day that is a holiday in most of a country.
const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        country: "CH",
        day: Day::Easter(-2),
        waymark_counts_it: true,
        why: "Good Friday is a public holiday in 23 of the 26 cantons (all but Graubünden, \
              Ticino and Valais, in the package's cantonal lists); the package's national list \
              holds only the four days every canton keeps",
    },
    Deliberate {
        country: "CH",
        day: Day::Easter(1),
        waymark_counts_it: true,
        why: "Easter Monday is a public holiday in most cantons (19 of 26 in the package)",
    },
    Deliberate {
        country: "CH",
        day: Day::Easter(50),
        waymark_counts_it: true,
        why: "Whit Monday is a public holiday in most cantons (19 of 26 in the package)",
    },
    Deliberate {
        country: "CH",
        day: Day::Fixed(12, 26),
        waymark_counts_it: true,
        why: "Saint Stephen's Day is a public holiday in most cantons (16 of 26 in the package)",
    },
    Deliberate {
        country: "NL",
        day: Day::Fixed(5, 5),
        waymark_counts_it: false,
        why: "the package counts Liberation Day only every fifth year; the file has no rule for \
              that, and of those years only 5 May 2025 (past) falls on a weekday before 2031",
    },
];

fn python() -> String {
    std::env::var("WAYMARK_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// The package's holidays per country: date → name.
fn reference(countries: &[String]) -> (String, BTreeMap<String, BTreeMap<Date, String>>) {
    let request = json!({
        "first_year": FIRST_YEAR,
        "last_year": LAST_YEAR,
        "countries": countries
            .iter()
            .map(|c| (c.clone(), reference_list(c)))
            .collect::<serde_json::Map<_, _>>(),
    });
    let python = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/holidays_reference.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(request.to_string())
        .output()
        .unwrap_or_else(|e| panic!("starting {python} {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed (is the `holidays` package installed for {python}? scripts/test.sh installs \
         it): {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let version = answer["version"].as_str().unwrap_or("?").to_owned();
    let mut days = BTreeMap::new();
    for (country, dates) in answer["countries"].as_object().expect("countries") {
        let dates = dates
            .as_object()
            .expect("dates")
            .iter()
            .map(|(d, name)| {
                let d: Date = d.parse().expect("an ISO date");
                (d, name.as_str().unwrap_or_default().to_owned())
            })
            .collect();
        days.insert(country.clone(), dates);
    }
    (version, days)
}

#[test]
fn every_country_agrees_with_the_holidays_package_from_2025_to_2030() {
    let calendar = HolidayCalendar::bundled();
    let mut countries: Vec<String> = calendar.countries.keys().cloned().collect();
    countries.sort();
    let (version, reference) = reference(&countries);

    let mut differences = Vec::new();
    let mut meant_and_seen = vec![false; DELIBERATE.len()];
    for code in &countries {
        let country = CountryCode::parse(code).expect("a country code");
        let Some(theirs) = reference.get(code) else {
            differences.push(format!("{code}: the package has no holidays for it"));
            continue;
        };
        let mut day = date(FIRST_YEAR, 1, 1);
        while day <= date(LAST_YEAR, 12, 31) {
            let ours = calendar.is_holiday(&country, day);
            let their_name = theirs.get(&day);
            if !is_weekend(day) && ours != their_name.is_some() {
                let meant = DELIBERATE.iter().position(|d| {
                    d.country == code
                        && d.waymark_counts_it == ours
                        && d.day.in_year(day.year()) == day
                });
                match (meant, their_name) {
                    (Some(i), _) => meant_and_seen[i] = true,
                    (None, Some(name)) => differences.push(format!(
                        "{code} {day} ({}): the package has {name}, Waymark does not",
                        day.strftime("%a")
                    )),
                    (None, None) => differences.push(format!(
                        "{code} {day} ({}): Waymark counts a holiday the package does not have",
                        day.strftime("%a")
                    )),
                }
            }
            day = day.tomorrow().expect("a date");
        }
    }
    for (deliberate, seen) in DELIBERATE.iter().zip(meant_and_seen) {
        if !seen {
            differences.push(format!(
                "{}: the deliberate difference \"{}\" no longer differs; remove it",
                deliberate.country, deliberate.why
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "carriers/holidays.toml and the holidays package {version} differ on {} days:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
