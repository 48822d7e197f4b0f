//! DPD's getTrackingData answer, read for the parcel of its published example, with English
//! texts (month-first dates, the adapter's default) and with Dutch ones (day-first).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::dpd::{BUNDLED_PROFILE, Dpd};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<Dpd> =
    LazyLock::new(|| Dpd::new(profile("dpd", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> = LazyLock::new(|| numbers(&["05308801410058"]));

fuzz_target!(|data: &[u8]| {
    let body = body(data);
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body));
    let _ = CARRIER.read_tracking(&NUMBERS[0], &body, "nl_NL");
});
