//! Keeping customers out of what Waymark writes for its operators: log lines and the errors it
//! stores (a shipment's or a message's `last_error`, a poll error's detail and excerpt). Much of
//! that text is someone else's words — a mail server's refusal names the address it refused
//! (`550 5.1.1 <anna@example.com>: Recipient address rejected`), a carrier's error page may quote
//! its records of the recipient — so it is scrubbed before it is logged or stored. Messages
//! refer to shipments and notifications by id instead.

use regex::Regex;

use crate::domain::{Customer, EmailAddress};
use std::sync::LazyLock;

/// What stands where a customer's address, name or phone number was.
pub const CUSTOMER: &str = "<customer>";

/// Anything shaped like an email address: a local part, `@`, a domain. Generous on purpose
/// (it also takes `Message-ID`s and the shop's own address): a word too many hidden costs an
/// operator little, an address too many shown is a customer's data in a log.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*").expect("a valid pattern")
});

/// A phone number written internationally: `+`, a country code and at least six more digits,
/// maybe grouped by spaces, dots, dashes or brackets. Numbers without the `+` are left alone:
/// they cannot be told from tracking numbers, which an operator needs to see.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+\d(?:[ .\-()/]{0,2}\d){6,16}").expect("a valid pattern"));

/// `text` with every email address and international phone number in it, and each of `known`
/// (the customer's own address and name, say) wherever it stands as a whole word, in any case,
/// replaced by [`CUSTOMER`]. Known values shorter than two characters are not looked for: they
/// would hide ordinary words and name no one.
pub fn scrub<'a>(text: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let mut scrubbed = text.to_owned();
    for value in known {
        let value = value.trim();
        if value.chars().count() >= 2 {
            scrubbed = replace_words(&scrubbed, value);
        }
    }
    let scrubbed = ADDRESS.replace_all(&scrubbed, CUSTOMER);
    PHONE.replace_all(&scrubbed, CUSTOMER).into_owned()
}

/// What names `customer` in someone else's words: their address and their name (either may be
/// empty, after erasure or when the merchant gave none), for [`scrub`]'s `known`.
pub fn customer_words(customer: &Customer) -> [&str; 2] {
    [
        customer.email.as_ref().map_or("", EmailAddress::as_str),
        customer.name.as_deref().unwrap_or_default(),
    ]
}

/// `text` with `value` replaced wherever it is not part of a longer word.
///
/// This runs for every message sent and every message queued, so it compares characters in
/// place rather than compiling a pattern for each value (which cost more than the rest of a
/// poll together).
fn replace_words(text: &str, value: &str) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some((start, end)) = find_ignoring_case(text, value, from) {
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if is_word(before) || is_word(after) {
            // The next match may start inside this one: step one character on.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        out.push_str(&text[last..start]);
        out.push_str(CUSTOMER);
        last = end;
        from = end;
    }
    out.push_str(&text[last..]);
    out
}

/// The first place at or after byte `from` where `text` holds `value` in any case: its start
/// and end in bytes.
fn find_ignoring_case(text: &str, value: &str, from: usize) -> Option<(usize, usize)> {
    let first = value.chars().next()?;
    text[from..]
        .char_indices()
        .filter(|&(_, c)| same_letter(c, first))
        .find_map(|(offset, _)| {
            let start = from + offset;
            let mut rest = text[start..].char_indices();
            let mut end = start;
            for wanted in value.chars() {
                let (at, c) = rest.next()?;
                if !same_letter(c, wanted) {
                    return None;
                }
                end = start + at + c.len_utf8();
            }
            Some((start, end))
        })
}

/// Whether two characters are the same letter in any case (`ſ` and `s` included, which only
/// their upper cases show).
fn same_letter(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase()) || a.to_uppercase().eq(b.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_server_refusal_keeps_its_code_and_reason_but_not_the_address() {
        let said = "permanent error (550): 5.1.1 <anna.schmidt@example.com>: Recipient address \
                    rejected: User unknown in virtual mailbox table";
        assert_eq!(
            scrub(said, []),
            "permanent error (550): 5.1.1 <<customer>>: Recipient address rejected: User \
             unknown in virtual mailbox table"
        );
    }

    #[test]
    fn addresses_of_every_shape_are_hidden() {
        for address in [
            "anna@example.com",
            "ANNA.SCHMIDT+shop@Mail.Example.CO.UK",
            "zofia.wójcik@poczta.example.pl",
            "o'brien@example.ie",
            "jan_kowalski-1@localhost",
        ] {
            let text = format!("to {address}, refused");
            assert_eq!(scrub(&text, []), "to <customer>, refused", "{address}");
        }
    }

    #[test]
    fn the_known_name_is_hidden_in_any_case_but_not_inside_other_words() {
        let said = "Recipient ANNA SCHMIDT unknown; Anna Schmidt moved (Annaberg is a town)";
        assert_eq!(
            scrub(said, ["Anna Schmidt"]),
            "Recipient <customer> unknown; <customer> moved (Annaberg is a town)"
        );
        assert_eq!(scrub("Mailbox unavailable", ["Li"]), "Mailbox unavailable");
        assert_eq!(scrub("signed by Li", ["Li"]), "signed by <customer>");
        assert_eq!(
            scrub("Łukasz Żak signed", ["łukasz żak"]),
            "<customer> signed"
        );
        assert_eq!(
            scrub("an die Straße 5, MÜLLER; müllerin", ["Müller", "STRASSE"]),
            "an die Straße 5, <customer>; müllerin"
        );
        // A word inside a longer one is skipped, and the next one right after it still found.
        assert_eq!(scrub("AnnaAnna Anna", ["anna"]), "AnnaAnna <customer>");
        assert_eq!(
            scrub("Hanſ and Hans", ["HANS"]),
            "<customer> and <customer>"
        );
    }

    #[test]
    fn a_known_value_too_short_or_blank_hides_nothing() {
        assert_eq!(
            scrub("A parcel for a customer", ["A", " ", ""]),
            "A parcel for a customer"
        );
    }

    #[test]
    fn international_phone_numbers_are_hidden_tracking_numbers_are_not() {
        for phone in [
            "+48 601 234 567",
            "+44 (0)20 7946 0958",
            "+4915123456789",
            "+1-202-555-0143",
        ] {
            let text = format!("call {phone} first");
            assert_eq!(scrub(&text, []), "call <customer> first", "{phone}");
        }
        for number in [
            "00340434161094042557",
            "1Z5R89390357567127",
            "JJD0099999999",
            "+12",
        ] {
            let text = format!("parcel {number} not found");
            assert_eq!(scrub(&text, []), text, "{number}");
        }
    }

    #[test]
    fn text_without_customers_is_unchanged() {
        let said = "carrier refused the request: 400 Bad Request: {\"title\":\"Bad Request\"}";
        assert_eq!(scrub(said, ["Anna Schmidt", "anna@example.com"]), said);
    }
}
