//! PostNL's Shipment Status answer, read for the barcode of its published example.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::postnl::{BUNDLED_PROFILE, PostNl};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<PostNl> =
    LazyLock::new(|| PostNl::new(profile("postnl", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> = LazyLock::new(|| numbers(&["3SDEVC288882229"]));

fuzz_target!(|data: &[u8]| {
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body(data)));
});
