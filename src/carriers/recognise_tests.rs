use super::*;

/// tracking_number_data's courier files, read at test time so that a new copy is checked as is.
const DATASET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/carriers/tracking_number_data/couriers"
);

fn bundled() -> Recogniser {
    Recogniser::bundled().expect("the bundled carrier files load")
}

fn codes(recognition: &Recognition) -> Vec<&str> {
    recognition
        .candidates()
        .iter()
        .map(|c| c.carrier.as_str())
        .collect()
}

fn detect_only(file: &str, text: &str) -> Result<Recogniser, ProfileError> {
    Recogniser::from_files(&[], &[SourceFile { file, text }])
}

// --- check digit algorithms: the cases of tracking_number_data's CHECKSUM_ALGORITHMS.md, with
// --- numbers from its courier files.

#[test]
fn mod7_is_the_serial_number_modulo_seven() {
    assert!(Checksum::Mod7 {}.validates("331881002", "5"));
    assert!(Checksum::Mod7 {}.validates("7389105114", "6"));
    assert!(!Checksum::Mod7 {}.validates("331881001", "0"));
    assert!(!Checksum::Mod7 {}.validates("331881003", "4"));
}

#[test]
fn mod10_weights_positions_and_maps_letters_like_ups() {
    let ups = Checksum::Mod10 {
        evens_multiplier: 1,
        odds_multiplier: 2,
        reverse: false,
        offset: 0,
    };
    assert!(ups.validates("5R8939035756712", "7"));
    assert!(ups.validates("XX3150YW4407002", "3"));
    assert!(!ups.validates("111111111111111", "1"));
    let canada_post = Checksum::Mod10 {
        evens_multiplier: 3,
        odds_multiplier: 1,
        reverse: false,
        offset: 0,
    };
    assert!(canada_post.validates("007393800054929", "7"));
    assert!(!canada_post.validates("007393800054929", "2"));
    // USPS IMpb counts positions from the right.
    let impb = Checksum::Mod10 {
        evens_multiplier: 3,
        odds_multiplier: 1,
        reverse: true,
        offset: 0,
    };
    assert!(impb.validates("940011120620640626078", "7"));
    assert!(!impb.validates("943461120620640766713", "1"));
}

#[test]
fn mod10_with_an_offset_is_the_gls_check_digit() {
    // 9*3+3+8*3+3+5*3+3+6*3+8+0*3+2+5*3 = 118, plus 1 is 119: the check digit is 1.
    let gls = Checksum::Mod10 {
        evens_multiplier: 3,
        odds_multiplier: 1,
        reverse: false,
        offset: 1,
    };
    assert!(gls.validates("93835368025", "1"));
    assert!(!gls.validates("93835368025", "2"));
}

#[test]
fn s10_maps_remainders_zero_and_one_to_five_and_zero() {
    assert!(Checksum::S10 {}.validates("12345678", "5"));
    assert!(!Checksum::S10 {}.validates("12345678", "6"));
    // 8*4+6*1+4*0+2*3+3*4+5*2+9*2+7*4 = 112 = 10 * 11 + 2, so 11 - 2 = 9.
    assert!(Checksum::S10 {}.validates("41034224", "9"));
    assert!(Checksum::S10 {}.validates("00000000", "5"));
    // 4 * 3 = 12, remainder 1.
    assert!(Checksum::S10 {}.validates("00300000", "0"));
    assert!(
        !Checksum::S10 {}.validates("1234567", "5"),
        "eight digits only"
    );
}

#[test]
fn sum_product_reduces_by_both_moduli() {
    let fedex = Checksum::SumProductWithWeightingsAndModulo {
        weightings: vec![3, 1, 7, 3, 1, 7, 3, 1, 7, 3, 1],
        modulo1: 11,
        modulo2: 10,
    };
    assert!(fedex.validates("98657878885", "5"));
    assert!(fedex.validates("79053531231", "7"));
    assert!(!fedex.validates("99657878885", "5"));
    assert!(!fedex.validates("9865787888", "5"), "one weight per digit");
}

#[test]
fn luhn_doubles_every_second_digit_from_the_right() {
    assert!(Checksum::Luhn {}.validates("7992739871", "3"));
    assert!(Checksum::Luhn {}.validates("32059546393", "8"));
    assert!(!Checksum::Luhn {}.validates("32059546393", "9"));
    assert!(!Checksum::Luhn {}.validates("0720956277", "3"));
}

#[test]
fn mod_37_36_check_character_may_be_a_letter() {
    assert!(Checksum::Mod3736 {}.validates("008182709980000020033350276", "C"));
    assert!(Checksum::Mod3736 {}.validates("008182709980000020045327276", "N"));
    assert!(Checksum::Mod3736 {}.validates("09980000020033", "F"));
    assert!(Checksum::Mod3736 {}.validates("09980000020034", "D"));
    assert!(!Checksum::Mod3736 {}.validates("09980000020033", "D"));
    assert!(!Checksum::Mod3736 {}.validates("008182709980000020033350276", "A"));
}

// --- the whole dataset

/// The Waymark carrier a dataset courier's number belongs to: the courier file's name, except
/// for S10 numbers, which belong to the post of the country they end with.
fn expected_carrier(courier: &str, number: &str) -> String {
    if courier != "s10" {
        return courier.to_owned();
    }
    let cleaned: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    let country = &cleaned[cleaned.len().saturating_sub(2)..];
    match country {
        "GB" => "royalmail",
        "CA" => "canadapost",
        "AU" => "auspost",
        "US" => "usps",
        "PL" => "pocztapolska",
        "DE" => "dhl",
        "NL" => "postnl",
        _ => "upu",
    }
    .to_owned()
}

#[test]
fn every_dataset_number_is_recognised_as_its_courier_or_rejected() {
    let recogniser = bundled();
    let mut files: Vec<_> = std::fs::read_dir(DATASET)
        .expect("the dataset is in tests/fixtures/carriers")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut valid, mut invalid, mut formats) = (0, 0, 0);
    let mut valid_elsewhere = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        let courier = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let data: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The dataset's invalid numbers are invalid for their format: one may be a valid number
        // of another format of the same courier (Purolator's 331426749957 is a valid 12-digit
        // number and an invalid alpha + 9 one), and then it is rightly that courier's.
        let courier_valid: BTreeSet<String> = data["tracking_numbers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["test_numbers"]["valid"].as_array().unwrap())
            .map(|n| n.as_str().unwrap().replace(' ', ""))
            .collect();
        for format in data["tracking_numbers"].as_array().unwrap() {
            formats += 1;
            let name = format["name"].as_str().unwrap();
            for number in format["test_numbers"]["valid"].as_array().unwrap() {
                let number = number.as_str().unwrap();
                valid += 1;
                let expected = expected_carrier(&courier, number);
                let recognition = recogniser.recognise(number);
                let found = codes(&recognition);
                if !found.contains(&expected.as_str()) || found.len() > 3 {
                    failures.push(format!(
                        "{courier} / {name}: valid `{number}` should be {expected} (in at most 3), got {found:?}"
                    ));
                }
            }
            for number in format["test_numbers"]["invalid"].as_array().unwrap() {
                let number = number.as_str().unwrap();
                invalid += 1;
                if courier_valid.contains(&number.replace(' ', "")) {
                    valid_elsewhere.push(format!("{courier} {number}"));
                    continue;
                }
                let expected = expected_carrier(&courier, number);
                let recognition = recogniser.recognise(number);
                if codes(&recognition).contains(&expected.as_str()) {
                    failures.push(format!(
                        "{courier} / {name}: invalid `{number}` taken for {expected}: {recognition}"
                    ));
                }
            }
        }
    }
    println!(
        "tracking_number_data: checked {valid} valid and {invalid} invalid numbers \
         ({} in all) of {formats} formats in {} courier files; invalid for their format but \
         valid for another of the courier's, so not checked as invalid: {valid_elsewhere:?}",
        valid + invalid,
        files.len()
    );
    assert_eq!(files.len(), 18, "every courier file is read");
    assert!(
        valid >= 180 && invalid >= 70,
        "{valid} valid, {invalid} invalid"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_s10_country_of_the_dataset_has_exactly_one_postal_operator() {
    let recogniser = bundled();
    let text = std::fs::read_to_string(format!("{DATASET}/s10.json")).unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lookups = data["tracking_numbers"][0]["additional"]
        .as_array()
        .unwrap();
    let couriers = lookups
        .iter()
        .find(|l| l["name"] == "Courier")
        .expect("the S10 courier lookup");
    let mut checked = 0;
    for entry in couriers["lookup"].as_array().unwrap() {
        let country = entry["matches"].as_str().unwrap();
        // RB is none of DHL eCommerce's prefixes, so only the post may match.
        let number = format!("RB123456785{country}");
        let recognition = recogniser.recognise(&number);
        let expected = expected_carrier("s10", &number);
        match &recognition {
            Recognition::Recognised(candidate) => {
                assert_eq!(candidate.carrier.as_str(), expected, "{number}");
                assert!(candidate.confirmed, "{number}");
                if expected == "upu" {
                    assert_eq!(candidate.carrier_name, entry["courier"].as_str().unwrap());
                }
            }
            other => panic!("{number}: {other}"),
        }
        checked += 1;
    }
    assert!(checked > 180);
    assert_eq!(
        recogniser.recognise("RB123456785XX"),
        Recognition::NotRecognised,
        "no post issues XX numbers"
    );
}

// --- the formats added for carriers the dataset lacks

#[test]
fn gls_parcel_numbers_and_track_ids() {
    let recogniser = bundled();
    // GLS's API example 93835368025 with its check digit (see the GLS checksum test).
    let twelve = recogniser.recognise("9383 5368 0251");
    let first = &twelve.candidates()[0];
    assert_eq!(
        (first.carrier.as_str(), first.confirmed),
        ("gls", true),
        "{twelve}"
    );
    assert_eq!(first.format, "GLS parcel number (12)");
    assert!(
        !codes(&recogniser.recognise("938353680252")).contains(&"gls"),
        "a wrong check digit is no GLS number"
    );
    // Without the check digit, as GLS's API writes it: the shape only, so it may be listed
    // with others.
    let eleven = recogniser.recognise("93835368025");
    assert!(
        eleven
            .candidates()
            .iter()
            .any(|c| c.carrier.as_str() == "gls" && !c.confirmed),
        "{eleven}"
    );
    let Recognition::Recognised(track_id) = recogniser.recognise("zx61qjix") else {
        panic!("a Track ID is GLS's alone");
    };
    assert_eq!(
        (track_id.carrier.as_str(), track_id.format.as_str()),
        ("gls", "GLS Track ID")
    );
    for number in ["12345678", "ABCDEFGH"] {
        assert_eq!(
            recogniser.recognise(number),
            Recognition::NotRecognised,
            "a Track ID has a letter and a digit: {number}"
        );
    }
}

#[test]
fn postnl_3s_barcodes_are_ambiguous_with_dhl_parcel_and_postnl_comes_first() {
    let recogniser = bundled();
    for number in ["3SDEVC288882229", "3SDEVC317858754", "3SDEVC1726492"] {
        let recognition = recogniser.recognise(number);
        assert_eq!(codes(&recognition), ["postnl", "dhl"], "{number}");
        assert_eq!(recognition.candidates()[0].format, "PostNL 3S barcode");
    }
    // Neither 13 nor 15 characters: DHL's own example, not a PostNL barcode.
    let Recognition::Recognised(dhl) = recogniser.recognise("3SBCC000123456") else {
        panic!("DHL's 3S example is DHL's alone");
    };
    assert_eq!(dhl.carrier.as_str(), "dhl");
    // PostNL's other barcodes are S10 numbers of the NL post.
    let Recognition::Recognised(s10) = recogniser.recognise("CC123456785NL") else {
        panic!("an NL S10 number is PostNL's");
    };
    assert_eq!((s10.carrier.as_str(), s10.confirmed), ("postnl", true));
}

#[test]
fn inpost_numbers_are_24_digits() {
    let recogniser = bundled();
    for number in [
        "620999672171521435976372",
        "5200 0001 4433 3300 2183 2563",
        "620000014433330021832001",
    ] {
        let Recognition::Recognised(inpost) = recogniser.recognise(number) else {
            panic!("{number} is InPost's alone");
        };
        assert_eq!(inpost.carrier.as_str(), "inpost");
        assert_eq!(inpost.carrier_name, "InPost");
    }
    assert!(!codes(&recogniser.recognise("62099967217152143597637")).contains(&"inpost"));
    assert!(!codes(&recogniser.recognise("6209996721715214359763721")).contains(&"inpost"));
}

#[test]
fn dhl_paket_numbers_from_germany() {
    let recogniser = bundled();
    // Identcodes: the examples of paketda.de and of the BWIPP barcode library.
    for number in ["201298452277", "563102430313"] {
        let recognition = recogniser.recognise(number);
        let dhl = recognition
            .candidates()
            .iter()
            .find(|c| c.carrier.as_str() == "dhl")
            .unwrap_or_else(|| panic!("{number}: {recognition}"));
        assert_eq!(
            (dhl.format.as_str(), dhl.confirmed),
            ("DHL Paket Identcode (12)", true)
        );
    }
    assert!(!codes(&recogniser.recognise("201298452278")).contains(&"dhl"));
    // 20 digits: USPS 20 has the same check digit, so both are listed, DHL first.
    let twenty = recogniser.recognise("0034 0433 8364 4263 6597");
    assert_eq!(codes(&twenty)[..2], ["dhl", "usps"], "{twenty}");
    assert!(twenty.candidates()[0].confirmed);
    assert!(!codes(&recogniser.recognise("00340433836442636598")).contains(&"dhl"));
    // JJD numbers and DHL Express licence plates.
    for number in [
        "JJD1410302937991",
        "JJD1298765432109",
        "JD014600006281230704",
    ] {
        let Recognition::Recognised(dhl) = recogniser.recognise(number) else {
            panic!("{number} is DHL's alone");
        };
        assert_eq!(dhl.carrier.as_str(), "dhl", "{number}");
    }
    // Deutsche Post's international items.
    assert_eq!(codes(&recogniser.recognise("RR123456785DE")), ["dhl"]);
}

// --- ambiguity and the messages a user reads

#[test]
fn an_ambiguous_number_says_so_and_lists_the_candidates_best_first() {
    let recognition = bundled().recognise("3SDEVC288882229");
    let Recognition::Ambiguous(candidates) = &recognition else {
        panic!("{recognition}");
    };
    assert_eq!(candidates.len(), 2);
    assert_eq!(
        recognition.to_string(),
        "ambiguous: 2 carriers could have issued it, the most likely first:\n  \
         1. PostNL (postnl): PostNL 3S barcode, format only, no check digit\n  \
         2. DHL (dhl): DHL Parcel (3S), format only, no check digit"
    );
}

#[test]
fn a_confirmed_check_digit_outranks_a_bare_shape() {
    // RX is a DHL eCommerce prefix, and RX123456785GB is also a valid Royal Mail S10 number.
    let recognition = bundled().recognise("RX123456785GB");
    let candidates = recognition.candidates();
    assert_eq!(codes(&recognition), ["royalmail", "dhl"], "{recognition}");
    assert!(candidates[0].confirmed && !candidates[1].confirmed);
}

#[test]
fn recognised_and_unrecognised_numbers_read_well() {
    let recogniser = bundled();
    assert_eq!(
        recogniser.recognise("1z 5r89 3903 5756 7127").to_string(),
        "recognised as UPS (ups): UPS 1Z, check digit confirmed; Service: UPS United States Ground"
    );
    assert_eq!(
        recogniser.recognise("1ZXX3150YW44070023").to_string(),
        "recognised as UPS (ups): UPS 1Z, check digit confirmed; Service: UPS SurePost - \
         Delivered by the USPS"
    );
    assert_eq!(
        recogniser.recognise("TBA000000000000").to_string(),
        "recognised as Amazon Logistics (amazon): Amazon Logistics (TBA), format only, no check \
         digit; Waymark cannot track this carrier"
    );
    let none = recogniser.recognise("HELLO-WORLD");
    assert_eq!(none, Recognition::NotRecognised);
    assert_eq!(
        none.to_string(),
        "not recognised: it matches none of the tracking-number formats Waymark knows"
    );
    assert!(none.candidates().is_empty());
}

#[test]
fn restricting_to_carriers_waymark_can_poll_can_settle_an_ambiguity() {
    let recogniser = bundled();
    // Purolator has no adapter: the number is FedEx's as far as intake is concerned.
    let recognition = recogniser.recognise("287809468872");
    assert_eq!(codes(&recognition), ["fedex", "purolator"]);
    let pollable = recognition.restricted_to(|c| !c.detection_only);
    let Recognition::Recognised(fedex) = &pollable else {
        panic!("{pollable}");
    };
    assert_eq!(fedex.carrier.as_str(), "fedex");
    assert_eq!(
        recogniser
            .recognise("TBA000000000000")
            .restricted_to(|c| !c.detection_only),
        Recognition::NotRecognised
    );
}

#[test]
fn an_s10_number_of_a_post_without_an_adapter_names_the_post() {
    let Recognition::Recognised(candidate) = bundled().recognise("RB123456785CV") else {
        panic!("one post per country");
    };
    assert_eq!(candidate.carrier.as_str(), "upu");
    assert_eq!(candidate.carrier_name, "Correios de Cabo Verde");
    assert!(candidate.detection_only && candidate.confirmed);
}

// --- the engine, on files written for the test

const TWO_FORMATS: &str = r#"
code = "acme"
name = "Acme"

[[number_formats]]
name = "Acme short"
regex = 'A(?<SerialNumber>[0-9]{4})'
weight = 10

[[number_formats]]
name = "Acme checked"
regex = 'A(?<SerialNumber>[0-9]{3})(?<CheckDigit>[0-9])'
checksum = { algorithm = "mod7" }
"#;

const BROAD: &str = r#"
code = "broad"
name = "Broad"

[[number_formats]]
name = "Anything"
regex = '[A-Z][0-9]{4}'
weight = 90
"#;

#[test]
fn ranks_by_confirmation_then_weight_and_lists_each_carrier_once() {
    let recogniser = Recogniser::from_files(
        &[],
        &[
            SourceFile {
                file: "acme.toml",
                text: TWO_FORMATS,
            },
            SourceFile {
                file: "broad.toml",
                text: BROAD,
            },
        ],
    )
    .unwrap();
    assert_eq!(recogniser.len(), 3);
    // 123 mod 7 = 4: both Acme formats match, Acme is listed once, with its confirmed format,
    // ahead of the heavier but unconfirmed Broad.
    let recognition = recogniser.recognise("a1234");
    assert_eq!(codes(&recognition), ["acme", "broad"]);
    assert_eq!(recognition.candidates()[0].format, "Acme checked");
    // A wrong check digit leaves the shapes: Broad weighs more.
    let recognition = recogniser.recognise("A1235");
    assert_eq!(codes(&recognition), ["broad", "acme"]);
    assert_eq!(recognition.candidates()[1].format, "Acme short");
    assert_eq!(recogniser.recognise("A12345"), Recognition::NotRecognised);
}

#[test]
fn lookups_name_the_issuer_add_details_and_can_be_required() {
    let text = r#"
code = "post"
name = "Some post"

[[number_formats]]
name = "Post item"
regex = '(?<Service>[A-Z])(?<SerialNumber>[0-9]{8})(?<CheckDigit>[0-9])(?<Country>[A-Z]{2})'
checksum = { algorithm = "s10" }

[[number_formats.lookups]]
label = "Issued by"
group = "Country"
issuer = true
entries = [{ matches = "CV", name = "Correios de Cabo Verde" }]

[[number_formats.lookups]]
label = "Service"
group = "Service"
entries = [{ matches_regex = "[EC]", name = "Parcel" }]
"#;
    let recogniser = detect_only("post.toml", text).unwrap();
    let Recognition::Recognised(candidate) = recogniser.recognise("C123456785CV") else {
        panic!("one format");
    };
    assert_eq!(candidate.carrier_name, "Correios de Cabo Verde");
    assert_eq!(candidate.details, ["Service: Parcel"]);
    let Recognition::Recognised(candidate) = recogniser.recognise("R123456785CV") else {
        panic!("an unknown service is fine");
    };
    assert!(candidate.details.is_empty());
    assert_eq!(
        recogniser.recognise("C123456785XX"),
        Recognition::NotRecognised,
        "an issuer is required"
    );
}

#[test]
fn a_serial_prefix_counts_in_the_check_digit_unless_printed() {
    let text = r#"
code = "ontrac"
name = "OnTrac"

[[number_formats]]
name = "OnTrac C"
regex = 'C(?<SerialNumber>[0-9]{13})(?<CheckDigit>[0-9])'
checksum = { algorithm = "mod10", evens_multiplier = 1, odds_multiplier = 2 }
serial_prefix = "4"
"#;
    let recogniser = detect_only("ontrac.toml", text).unwrap();
    assert!(matches!(
        recogniser.recognise("C11031500001879"),
        Recognition::Recognised(_)
    ));
    assert_eq!(
        recogniser.recognise("C11031500001889"),
        Recognition::NotRecognised
    );
}

#[test]
fn broken_formats_are_refused_at_load_naming_file_and_format() {
    let cases = [
        (
            "regex = '(?<SerialNumber>[0-9'",
            "number format `Broken`: regex:",
        ),
        (
            "regex = '[0-9]{4}'\nchecksum = { algorithm = \"mod7\" }",
            "a checksum needs a `(?<SerialNumber>...)` group",
        ),
        (
            "regex = '(?<SerialNumber>[0-9]{3})(?<CheckDigit>[0-9])'\nchecksum = { algorithm = \"mod11\" }",
            "unknown variant `mod11`",
        ),
        ("regex = '[0-9]{4}'\nweigth = 3", "unknown field `weigth`"),
        (
            "regex = '(?<SerialNumber>[0-9]{3})(?<CheckDigit>[0-9])'\nchecksum = { algorithm = \"mod7\", modulo = 7 }",
            "unknown field `modulo`",
        ),
        (
            "regex = '(?<SerialNumber>[0-9]{3})(?<CheckDigit>[0-9])'\nchecksum = { algorithm = \"mod10\", evens_multiplyer = 3 }",
            "unknown field `evens_multiplyer`",
        ),
        (
            "regex = '[0-9]{4}'\nserial_prefix = \"4\"",
            "serial_prefix only matters with a checksum",
        ),
        (
            "regex = '[0-9]{4}'\nlookups = [{ label = \"L\", group = \"Nope\", entries = [{ matches = \"1\", name = \"x\" }] }]",
            "the regex has no group `Nope`",
        ),
        (
            "regex = '(?<G>[0-9]{4})'\nlookups = [{ label = \"L\", group = \"G\", entries = [{ name = \"x\" }] }]",
            "give exactly one of matches and matches_regex",
        ),
    ];
    for (body, expected) in cases {
        let text =
            format!("code = \"x\"\nname = \"X\"\n[[number_formats]]\nname = \"Broken\"\n{body}\n");
        let error = detect_only("carriers/detect/x.toml", &text)
            .expect_err(body)
            .to_string();
        assert!(
            error.starts_with("carriers/detect/x.toml: ") && error.contains(expected),
            "{body}: {error}"
        );
    }
}

#[test]
fn a_detection_only_file_may_not_shadow_a_carrier_profile() {
    let ups = SourceFile {
        file: "carriers/ups.toml",
        text: include_str!("../../carriers/ups.toml"),
    };
    let also_ups = SourceFile {
        file: "carriers/detect/ups.toml",
        text: "code = \"ups\"\nname = \"UPS\"\nnumber_formats = []\n",
    };
    let error = Recogniser::from_files(&[ups], &[also_ups])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("move its number formats into carriers/ups.toml"),
        "{error}"
    );
}

#[test]
fn a_carrier_profile_with_a_misspelt_format_key_is_refused() {
    let sandbox = include_str!("../../carriers/sandbox.toml");
    let text = format!("{sandbox}\n[[number_formats]]\nname = \"S\"\nregexp = 'S[0-9]+'\n");
    let error = CarrierProfile::from_toml("sandbox.toml", &text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `regexp`"), "{error}");
}

#[test]
fn files_in_the_carriers_directory_replace_and_extend_the_bundled_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("detect")).unwrap();
    std::fs::write(
        dir.path().join("detect/hermes.toml"),
        "code = \"hermes\"\nname = \"Hermes\"\n[[number_formats]]\nname = \"Hermes (14)\"\nregex = 'H[0-9]{13}'\n",
    )
    .unwrap();
    // Yodel's file replaced by one that knows no format.
    std::fs::write(
        dir.path().join("detect/yodel.toml"),
        "code = \"yodel\"\nname = \"Yodel\"\nnumber_formats = []\n",
    )
    .unwrap();
    let recogniser = Recogniser::load(Some(dir.path())).unwrap();
    assert_eq!(codes(&recogniser.recognise("H1234567890123")), ["hermes"]);
    assert!(!codes(&recogniser.recognise("JD0002242617644732")).contains(&"yodel"));
    assert!(codes(&bundled().recognise("JD0002242617644732")).contains(&"yodel"));

    std::fs::write(dir.path().join("detect/broken.toml"), "code = \"broken\"\n").unwrap();
    let error = Recogniser::load(Some(dir.path())).unwrap_err().to_string();
    assert!(error.contains("broken.toml"), "{error}");
}

#[test]
fn every_data_file_is_bundled() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/carriers");
    let stems = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
            .filter(|stem| stem != "holidays")
            .collect()
    };
    let listed = |list: &[(&str, &str)]| -> BTreeSet<String> {
        list.iter().map(|(code, _)| code.to_string()).collect()
    };
    assert_eq!(stems(root), listed(BUNDLED_CARRIERS), "carriers/*.toml");
    assert_eq!(
        stems(&format!("{root}/detect")),
        listed(BUNDLED_DETECTION_ONLY),
        "carriers/detect/*.toml"
    );
    assert!(bundled().len() > 50);
}
