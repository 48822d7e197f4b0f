//! FedEx's Track API answer, read for the numbers of its published example: alone and as a batch.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::fedex::{BUNDLED_PROFILE, Fedex};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<Fedex> =
    LazyLock::new(|| Fedex::new(profile("fedex", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> =
    LazyLock::new(|| numbers(&["128667043726", "123456789012", "39936862321"]));

fuzz_target!(|data: &[u8]| {
    let body = body(data);
    check(
        &NUMBERS[..1],
        CARRIER.read_answer_body(&NUMBERS[..1], &body),
    );
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body));
});
