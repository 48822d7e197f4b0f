//! A CSV import's rows, read and each validated against every carrier Waymark ships with
//! (carrier recognition from the number included), as `waymark shipments import` does before it
//! stores anything.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use waymark::carriers::CarrierRegistry;
use waymark::clock::Clock;
use waymark::intake::csv_rows;

static CARRIERS: LazyLock<CarrierRegistry> = LazyLock::new(|| {
    waymark::carriers::catalogue::load(None, Clock::system()).expect("the bundled carriers load")
});

fuzz_target!(|data: &[u8]| {
    let mut last_line = 0;
    for (line, row) in csv_rows(data) {
        // Refusals name the line they are about, in file order.
        assert!(line >= last_line, "line {line} after line {last_line}");
        last_line = line;
        if let Ok(input) = row {
            if let Ok(valid) = input.validate(&CARRIERS) {
                assert!(CARRIERS.get(&valid.carrier).is_some());
            }
        }
    }
});
