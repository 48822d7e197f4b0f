//! GLS's Track And Trace answer, read for the numbers of its published examples: alone and as a batch.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::gls::{BUNDLED_PROFILE, Gls};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<Gls> =
    LazyLock::new(|| Gls::new(profile("gls", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> =
    LazyLock::new(|| numbers(&["36301917596", "42249018928", "42249028960"]));

fuzz_target!(|data: &[u8]| {
    let body = body(data);
    check(
        &NUMBERS[..1],
        CARRIER.read_answer_body(&NUMBERS[..1], &body),
    );
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body));
});
