//! UPS's Track API details answer, read for the inquiry number of its published example.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::ups::{BUNDLED_PROFILE, Ups};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<Ups> =
    LazyLock::new(|| Ups::new(profile("ups", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> = LazyLock::new(|| numbers(&["1Z1442YY7229014688"]));

fuzz_target!(|data: &[u8]| {
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body(data)));
});
