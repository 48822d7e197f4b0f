//! DHL's Shipment Tracking – Unified answer, read for the number of its published example.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::dhl::{BUNDLED_PROFILE, Dhl};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<Dhl> =
    LazyLock::new(|| Dhl::new(profile("dhl", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> = LazyLock::new(|| numbers(&["7777777770"]));

fuzz_target!(|data: &[u8]| {
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body(data)));
});
