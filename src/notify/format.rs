//! Dates, times and counted words as a customer reads them in their own language.
//!
//! Only what the messages need, written out by hand for the three languages Waymark speaks:
//! English ("Thursday, 5 March at 14:02"), German ("Donnerstag, 5. März um 14:02") and Polish
//! ("czwartek, 5 marca, 14:02", with the month in the genitive as a date needs). The year is
//! left out: a delivery message is about the coming days, and it only appears when a window
//! spans the turn of a year.

use jiff::Zoned;
use jiff::civil::Date;

use crate::domain::{DeliveryWindow, Language};

const EN_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DE_WEEKDAYS: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];
const PL_WEEKDAYS: [&str; 7] = [
    "poniedziałek",
    "wtorek",
    "środa",
    "czwartek",
    "piątek",
    "sobota",
    "niedziela",
];

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
/// Genitive: "5 marca", never the nominative "5 marzec".
const PL_MONTHS: [&str; 12] = [
    "stycznia",
    "lutego",
    "marca",
    "kwietnia",
    "maja",
    "czerwca",
    "lipca",
    "sierpnia",
    "września",
    "października",
    "listopada",
    "grudnia",
];

fn weekday_name(language: Language, date: Date) -> &'static str {
    let index = date.weekday().to_monday_zero_offset() as usize;
    match language {
        Language::En => EN_WEEKDAYS[index],
        Language::De => DE_WEEKDAYS[index],
        Language::Pl => PL_WEEKDAYS[index],
    }
}

fn month_name(language: Language, date: Date) -> &'static str {
    let index = (date.month() - 1) as usize;
    match language {
        Language::En => EN_MONTHS[index],
        Language::De => DE_MONTHS[index],
        Language::Pl => PL_MONTHS[index],
    }
}

/// Day and month without the weekday: "5 March", "5. März", "5 marca".
fn day_month(language: Language, date: Date) -> String {
    let (day, month) = (date.day(), month_name(language, date));
    match language {
        Language::En | Language::Pl => format!("{day} {month}"),
        Language::De => format!("{day}. {month}"),
    }
}

/// A day: "Thursday, 5 March", "Donnerstag, 5. März", "czwartek, 5 marca".
pub fn date(language: Language, date: Date) -> String {
    format!(
        "{}, {}",
        weekday_name(language, date),
        day_month(language, date)
    )
}

/// The time of day on the 24-hour clock, as all three languages write it: "14:02".
pub fn time(_language: Language, at: &Zoned) -> String {
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// A day and a time: "Thursday, 5 March at 14:02", "Donnerstag, 5. März um 14:02",
/// "czwartek, 5 marca, 14:02".
pub fn date_time(language: Language, at: &Zoned) -> String {
    let day = date(language, at.date());
    let time = time(language, at);
    match language {
        Language::En => format!("{day} at {time}"),
        Language::De => format!("{day} um {time}"),
        Language::Pl => format!("{day}, {time}"),
    }
}

/// A delivery window: one day reads like [`date`]; several days read as a range without
/// weekdays, sharing the month when they can: "5–7 March", "5.–7. März", "5–7 marca",
/// "30 March – 2 April".
pub fn window(language: Language, window: DeliveryWindow) -> String {
    let (from, to) = (window.earliest, window.latest);
    if from == to {
        return date(language, from);
    }
    if from.year() != to.year() {
        let with_year = |d: Date| format!("{} {}", day_month(language, d), d.year());
        return format!("{} – {}", with_year(from), with_year(to));
    }
    if from.month() != to.month() {
        return format!(
            "{} – {}",
            day_month(language, from),
            day_month(language, to)
        );
    }
    let (first, rest) = (from.day(), day_month(language, to));
    match language {
        Language::En | Language::Pl => format!("{first}–{rest}"),
        Language::De => format!("{first}.–{rest}"),
    }
}

/// Which form of a counted word a number takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluralForm {
    /// 1 hour, 1 Stunde, 1 godzina.
    One,
    /// Polish 2–4, 22–24, ... (but not 12–14): 2 godziny.
    Few,
    /// Everything else: 5 hours, 5 Stunden, 5 godzin, 12 godzin.
    Many,
}

/// The plural form `n` takes in `language`. English and German have only [`PluralForm::One`]
/// and [`PluralForm::Many`].
pub fn plural_form(language: Language, n: i64) -> PluralForm {
    let n = n.unsigned_abs();
    match language {
        Language::En | Language::De if n == 1 => PluralForm::One,
        Language::En | Language::De => PluralForm::Many,
        Language::Pl if n == 1 => PluralForm::One,
        Language::Pl if (2..=4).contains(&(n % 10)) && !(12..=14).contains(&(n % 100)) => {
            PluralForm::Few
        }
        Language::Pl => PluralForm::Many,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date as d;

    fn at(text: &str, zone: &str) -> Zoned {
        text.parse::<jiff::Timestamp>()
            .unwrap()
            .in_tz(zone)
            .unwrap()
    }

    #[test]
    fn a_day_reads_naturally_in_each_language() {
        let thursday = d(2026, 3, 5);
        assert_eq!(date(Language::En, thursday), "Thursday, 5 March");
        assert_eq!(date(Language::De, thursday), "Donnerstag, 5. März");
        assert_eq!(date(Language::Pl, thursday), "czwartek, 5 marca");
        assert_eq!(date(Language::Pl, d(2026, 9, 30)), "środa, 30 września");
    }

    #[test]
    fn a_time_is_shown_in_the_zone_it_is_given_in() {
        let berlin = at("2026-03-05T13:02:00Z", "Europe/Berlin");
        assert_eq!(
            date_time(Language::En, &berlin),
            "Thursday, 5 March at 14:02"
        );
        assert_eq!(
            date_time(Language::De, &berlin),
            "Donnerstag, 5. März um 14:02"
        );
        assert_eq!(date_time(Language::Pl, &berlin), "czwartek, 5 marca, 14:02");
        // Late evening in UTC is already the next day in Warsaw.
        let warsaw = at("2026-03-05T23:30:00Z", "Europe/Warsaw");
        assert_eq!(date_time(Language::Pl, &warsaw), "piątek, 6 marca, 00:30");
    }

    #[test]
    fn a_window_reads_as_a_range() {
        let w = |a, b| DeliveryWindow::between(a, b).unwrap();
        let march = w(d(2026, 3, 5), d(2026, 3, 7));
        assert_eq!(window(Language::En, march), "5–7 March");
        assert_eq!(window(Language::De, march), "5.–7. März");
        assert_eq!(window(Language::Pl, march), "5–7 marca");
        let across = w(d(2026, 3, 30), d(2026, 4, 2));
        assert_eq!(window(Language::En, across), "30 March – 2 April");
        assert_eq!(window(Language::De, across), "30. März – 2. April");
        assert_eq!(window(Language::Pl, across), "30 marca – 2 kwietnia");
        let new_year = w(d(2026, 12, 30), d(2027, 1, 2));
        assert_eq!(
            window(Language::De, new_year),
            "30. Dezember 2026 – 2. Januar 2027"
        );
        let one_day = DeliveryWindow::on(d(2026, 3, 5));
        assert_eq!(window(Language::En, one_day), "Thursday, 5 March");
    }

    #[test]
    fn polish_counts_have_three_forms() {
        use PluralForm::*;
        let forms: Vec<_> = [1, 2, 4, 5, 12, 14, 22, 25, 48, 52]
            .into_iter()
            .map(|n| plural_form(Language::Pl, n))
            .collect();
        assert_eq!(
            forms,
            [One, Few, Few, Many, Many, Many, Few, Many, Many, Few]
        );
        assert_eq!(plural_form(Language::De, 1), One);
        assert_eq!(plural_form(Language::En, 2), Many);
    }
}
