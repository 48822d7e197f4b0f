//! A configuration file's text, read and checked as `waymark` does at start (without the
//! environment's layer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark::config::Config;
use waymark_fuzz::body;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = Config::from_toml_str(&body(data)) {
        // What passed the checks passes them again, and yields a Message-ID domain.
        let config = config
            .validated()
            .expect("a checked configuration stays valid");
        assert!(!config.message_id_domain().is_empty());
    }
});
