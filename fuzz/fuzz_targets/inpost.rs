//! InPost's ShipX tracking answer, read for one parcel number.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::inpost::{BUNDLED_PROFILE, InPost};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<InPost> =
    LazyLock::new(|| InPost::new(profile("inpost", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> =
    LazyLock::new(|| numbers(&["520113015630320011234567"]));

fuzz_target!(|data: &[u8]| {
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body(data)));
});
