//! Australia Post's Track items answer, read for the numbers of its published example: alone and
//! as a batch.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::auspost::{AusPost, BUNDLED_PROFILE};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{body, check, numbers, profile, transport};

static CARRIER: LazyLock<AusPost> =
    LazyLock::new(|| AusPost::new(profile("auspost", BUNDLED_PROFILE), transport()));
static NUMBERS: LazyLock<Vec<TrackingNumber>> =
    LazyLock::new(|| numbers(&["7XX1000", "7XX1000634011427", "ET123456789AU"]));

fuzz_target!(|data: &[u8]| {
    let body = body(data);
    check(
        &NUMBERS[..1],
        CARRIER.read_answer_body(&NUMBERS[..1], &body),
    );
    check(&NUMBERS, CARRIER.read_answer_body(&NUMBERS, &body));
});
