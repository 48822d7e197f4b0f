//! USPS's tracking answer, read for the number of its published example: alone (an entry without a number answers a lone request) and in a batch.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::usps::{BUNDLED_PROFILE, Usps};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<Usps> =
    LazyLock::new(|| Usps::new(profile("usps", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> =
    LazyLock::new(|| numbers(&["XXXXXXXXXXXXXXXXXXXX", "9400100000000000000000"]));

fuzz_target!(|data: &[u8]| {
    let body = body(data);
    check(
        &NUMBERS[..1],
        CARRIER.read_answer_body(&NUMBERS[..1], &body),
    );
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body));
});
