//! Royal Mail's events answer, read for the mail piece of its published example.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::royalmail::{BUNDLED_PROFILE, RoyalMail};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<RoyalMail> =
    LazyLock::new(|| RoyalMail::new(profile("royalmail", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> = LazyLock::new(|| numbers(&["FQ087430672GB"]));

fuzz_target!(|data: &[u8]| {
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body(data)));
});
