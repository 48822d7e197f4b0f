//! Which carrier issued a tracking number, from the number alone.
//!
//! A merchant who registers a shipment without naming the carrier, or who runs
//! `waymark detect NUMBER`, gets the carriers whose number formats match, best first. The formats
//! are data, not code: `[[number_formats]]` tables in each carrier's file (`carriers/<code>.toml`)
//! and in `carriers/detect/<code>.toml` for carriers Waymark can recognise but has no adapter for
//! (Amazon, OnTrac, the national posts behind UPU S10 numbers, ...). They follow the model of
//! tracking_number_data (github.com/jkeen/tracking_number_data, MIT): one regular expression with
//! named groups per format, an optional check-digit algorithm over its `SerialNumber` and
//! `CheckDigit` groups, and lookups of group values (the S10 country, the UPS service).
//!
//! Many formats overlap: a 12-digit number may be a FedEx, a DHL or a GLS number, and its check
//! digit may happen to fit more than one algorithm. So the answer is a ranked list, and only a
//! list of one is a recognition; a number whose check digit confirms a format ranks above one
//! that merely has the right shape.

use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::profile::{CarrierProfile, ProfileError};
use crate::domain::CarrierCode;

/// The carrier files bundled in the binary, by code. A test checks that every file in
/// `carriers/` (except the holiday calendar) is listed here.
const BUNDLED_CARRIERS: &[(&str, &str)] = &[
    ("ups", include_str!("../../carriers/ups.toml")),
    ("fedex", include_str!("../../carriers/fedex.toml")),
    ("usps", include_str!("../../carriers/usps.toml")),
    ("dhl", include_str!("../../carriers/dhl.toml")),
    ("dpd", include_str!("../../carriers/dpd.toml")),
    ("gls", include_str!("../../carriers/gls.toml")),
    ("postnl", include_str!("../../carriers/postnl.toml")),
    ("inpost", include_str!("../../carriers/inpost.toml")),
    ("royalmail", include_str!("../../carriers/royalmail.toml")),
    ("canadapost", include_str!("../../carriers/canadapost.toml")),
    ("auspost", include_str!("../../carriers/auspost.toml")),
    ("sandbox", include_str!("../../carriers/sandbox.toml")),
];

/// The detection-only files bundled in the binary (`carriers/detect/<code>.toml`), by code.
const BUNDLED_DETECTION_ONLY: &[(&str, &str)] = &[
    ("amazon", include_str!("../../carriers/detect/amazon.toml")),
    ("canpar", include_str!("../../carriers/detect/canpar.toml")),
    ("gofo", include_str!("../../carriers/detect/gofo.toml")),
    (
        "landmark",
        include_str!("../../carriers/detect/landmark.toml"),
    ),
    (
        "lasership",
        include_str!("../../carriers/detect/lasership.toml"),
    ),
    (
        "old_dominion",
        include_str!("../../carriers/detect/old_dominion.toml"),
    ),
    ("ontrac", include_str!("../../carriers/detect/ontrac.toml")),
    (
        "pocztapolska",
        include_str!("../../carriers/detect/pocztapolska.toml"),
    ),
    (
        "purolator",
        include_str!("../../carriers/detect/purolator.toml"),
    ),
    (
        "speedee",
        include_str!("../../carriers/detect/speedee.toml"),
    ),
    ("upu", include_str!("../../carriers/detect/upu.toml")),
    ("yodel", include_str!("../../carriers/detect/yodel.toml")),
    (
        "yunexpress",
        include_str!("../../carriers/detect/yunexpress.toml"),
    ),
];

/// One way a carrier writes its tracking numbers: a `[[number_formats]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberFormat {
    /// Shown to the user next to the carrier ("UPS 1Z", "DHL Paket Identcode (12 digits)").
    pub name: String,
    /// Must match the whole number once spaces are removed and letters upper-cased. Named groups
    /// feed the checksum (`SerialNumber`, `CheckDigit`) and the lookups.
    pub regex: String,
    /// Further patterns the whole number must contain (searched, not anchored). They stand in
    /// for the look-aheads of the original data, which the `regex` crate does not support.
    #[serde(default)]
    pub also_match: Vec<String>,
    /// The check digit algorithm; a number that fails it is not of this format.
    #[serde(default)]
    pub checksum: Option<Checksum>,
    /// Put in front of the serial number before the checksum unless it already starts with it:
    /// some carriers print numbers without a prefix their check digit was computed with.
    #[serde(default)]
    pub serial_prefix: Option<String>,
    /// What the values of named groups mean, and which values a number may have.
    #[serde(default)]
    pub lookups: Vec<Lookup>,
    /// Orders candidates that are equally confirmed: higher first. Broad patterns (any 14
    /// digits) weigh less than ones with a fixed prefix.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    50
}

fn one() -> u32 {
    1
}

/// A check-digit algorithm, named as in tracking_number_data's `CHECKSUM_ALGORITHMS.md`.
// Variants without parameters are written `{}`: serde ignores stray keys next to the tag of a
// unit variant, and a misspelt parameter should be refused, not silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case", deny_unknown_fields)]
pub enum Checksum {
    /// Weighted digit sum; the check digit brings it to a multiple of ten. Letters count as
    /// `(ASCII code - 3) mod 10` (UPS 1Z numbers). Positions are counted from 0, from the left,
    /// or from the right when `reverse`.
    Mod10 {
        #[serde(default = "one")]
        evens_multiplier: u32,
        #[serde(default = "one")]
        odds_multiplier: u32,
        #[serde(default)]
        reverse: bool,
        /// Added to the sum before the check digit is taken: GLS adds 1.
        #[serde(default)]
        offset: u32,
    },
    /// The serial number modulo 7 (DHL Express waybills).
    Mod7 {},
    /// UPU S10: weights 8 6 4 2 3 5 9 7, modulo 11, remainders 0 and 1 mapped to 5 and 0.
    S10 {},
    /// Weighted digit sum reduced modulo `modulo1` then `modulo2` (FedEx Express).
    SumProductWithWeightingsAndModulo {
        weightings: Vec<u32>,
        modulo1: u32,
        modulo2: u32,
    },
    /// Luhn: every second digit from the right doubled, digits of products summed.
    Luhn {},
    /// ISO 7064 MOD 37,36 (hybrid), whose check character is a digit or a letter (DPD).
    #[serde(rename = "mod_37_36")]
    Mod3736 {},
}

/// What the value of one named group means (`label: entry name`), and optionally which values a
/// number of this format may have at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// Shown before the matching entry's name ("Service").
    pub label: String,
    /// The named group of the format's regex whose text is looked up.
    pub group: String,
    /// A number whose group matches no entry is not of this format (an S10 number needs a
    /// country that has a postal operator).
    #[serde(default)]
    pub required: bool,
    /// The matching entry names who issued the number; it is reported as the carrier's name.
    #[serde(default)]
    pub issuer: bool,
    pub entries: Vec<LookupEntry>,
}

/// One known value of a looked-up group: exactly one of `matches` and `matches_regex`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupEntry {
    /// The exact text of the group.
    #[serde(default)]
    pub matches: Option<String>,
    /// A pattern the whole text of the group must match.
    #[serde(default)]
    pub matches_regex: Option<String>,
    pub name: String,
}

/// `carriers/detect/<code>.toml`: a carrier whose numbers Waymark recognises but which it cannot
/// poll, so it has no carrier profile (no mapping, limits or cadence).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionOnlyCarrier {
    pub code: CarrierCode,
    pub name: String,
    pub number_formats: Vec<NumberFormat>,
}

/// A carrier that could have issued a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub carrier: CarrierCode,
    /// The carrier's name, or for a national post behind an S10 number, the post's name.
    pub carrier_name: String,
    /// The name of the format that matched.
    pub format: String,
    /// The check digit confirmed the format; false when the format has none.
    pub confirmed: bool,
    /// Waymark knows the carrier's numbers but has no adapter to poll it.
    pub detection_only: bool,
    /// What the number says about itself ("Service: UPS United States Ground").
    pub details: Vec<String>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}, {}",
            self.carrier_name,
            self.carrier,
            self.format,
            if self.confirmed {
                "check digit confirmed"
            } else {
                "format only, no check digit"
            }
        )?;
        if self.detection_only {
            f.write_str("; Waymark cannot track this carrier")?;
        }
        for detail in &self.details {
            write!(f, "; {detail}")?;
        }
        Ok(())
    }
}

/// What a number says about its carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognition {
    /// Exactly one carrier issues numbers like this one.
    Recognised(Candidate),
    /// Several carriers could have issued it; the most likely first.
    Ambiguous(Vec<Candidate>),
    /// It matches no known format.
    NotRecognised,
}

impl Recognition {
    /// Every candidate, the most likely first; empty when not recognised.
    pub fn candidates(&self) -> &[Candidate] {
        match self {
            Recognition::Recognised(candidate) => std::slice::from_ref(candidate),
            Recognition::Ambiguous(candidates) => candidates,
            Recognition::NotRecognised => &[],
        }
    }
}

impl Recognition {
    /// The same answer among the candidates `keep` accepts, re-classified: intake keeps the
    /// carriers it can poll, so that a number one of them confirms is not refused as ambiguous
    /// for a carrier Waymark cannot track anyway.
    pub fn restricted_to(self, keep: impl FnMut(&Candidate) -> bool) -> Recognition {
        let mut candidates: Vec<Candidate> = match self {
            Recognition::Recognised(candidate) => vec![candidate],
            Recognition::Ambiguous(candidates) => candidates,
            Recognition::NotRecognised => Vec::new(),
        };
        candidates.retain(keep);
        match candidates.len() {
            0 => Recognition::NotRecognised,
            1 => Recognition::Recognised(candidates.remove(0)),
            _ => Recognition::Ambiguous(candidates),
        }
    }
}

impl fmt::Display for Recognition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recognition::Recognised(candidate) => write!(f, "recognised as {candidate}"),
            Recognition::Ambiguous(candidates) => {
                write!(
                    f,
                    "ambiguous: {} carriers could have issued it, the most likely first:",
                    candidates.len()
                )?;
                for (rank, candidate) in candidates.iter().enumerate() {
                    write!(f, "\n  {}. {candidate}", rank + 1)?;
                }
                Ok(())
            }
            Recognition::NotRecognised => f.write_str(
                "not recognised: it matches none of the tracking-number formats Waymark knows",
            ),
        }
    }
}

/// The number formats of every carrier, compiled once.
#[derive(Debug)]
pub struct Recogniser {
    formats: Vec<CompiledFormat>,
}

/// A data file to read formats from: its name for error messages and its text.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Recogniser {
    /// The formats bundled in the binary.
    pub fn bundled() -> Result<Self, ProfileError> {
        Self::load(None)
    }

    /// The bundled formats, with `dir/<code>.toml` and `dir/detect/<code>.toml` replacing the
    /// bundled files of the same name (as [`CarrierProfile::load`] does), and every other
    /// `dir/detect/*.toml` added: a detection-only carrier needs no code.
    pub fn load(dir: Option<&Path>) -> Result<Self, ProfileError> {
        let mut carriers = Vec::new();
        for (code, bundled) in BUNDLED_CARRIERS {
            carriers.push(read_or_bundled(dir, "carriers", code, bundled)?);
        }
        let mut detection_only = Vec::new();
        let detect_dir = dir.map(|d| d.join("detect"));
        for (code, bundled) in BUNDLED_DETECTION_ONLY {
            detection_only.push(read_or_bundled(
                detect_dir.as_deref(),
                "carriers/detect",
                code,
                bundled,
            )?);
        }
        if let Some(detect_dir) = detect_dir.as_deref().filter(|d| d.is_dir()) {
            let io = |source| ProfileError::Io {
                file: detect_dir.display().to_string(),
                source,
            };
            let mut extra = Vec::new();
            for entry in std::fs::read_dir(detect_dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                let bundled = BUNDLED_DETECTION_ONLY.iter().any(|(code, _)| *code == stem);
                if path.extension().is_some_and(|e| e == "toml") && !bundled {
                    extra.push(path);
                }
            }
            // Directory order is arbitrary; ties between candidates are broken by load order.
            extra.sort();
            for path in extra {
                detection_only.push(read_file(&path)?);
            }
        }
        let carriers: Vec<SourceFile> = carriers
            .iter()
            .map(|(file, text)| SourceFile { file, text })
            .collect();
        let detection_only: Vec<SourceFile> = detection_only
            .iter()
            .map(|(file, text)| SourceFile { file, text })
            .collect();
        Self::from_files(&carriers, &detection_only)
    }

    /// Formats from carrier profiles (full `carriers/<code>.toml` files) and detection-only
    /// files, checked and compiled. A detection-only file may not reuse a profile's code: its
    /// formats belong in the profile.
    pub fn from_files(
        carriers: &[SourceFile],
        detection_only: &[SourceFile],
    ) -> Result<Self, ProfileError> {
        let mut formats = Vec::new();
        let mut profiled = BTreeSet::new();
        for source in carriers {
            let profile = CarrierProfile::from_toml(source.file, source.text)?;
            profiled.insert(profile.code.clone());
            for format in profile.number_formats {
                let order = formats.len();
                formats.push(CompiledFormat::compile(
                    source.file,
                    &profile.code,
                    &profile.name,
                    false,
                    format,
                    order,
                )?);
            }
        }
        for source in detection_only {
            let carrier: DetectionOnlyCarrier =
                toml::from_str(source.text).map_err(|e| ProfileError::Syntax {
                    file: source.file.to_owned(),
                    source: e,
                })?;
            if profiled.contains(&carrier.code) {
                return Err(ProfileError::Invalid {
                    file: source.file.to_owned(),
                    reason: format!(
                        "`{}` has a carrier profile; move its number formats into carriers/{}.toml",
                        carrier.code, carrier.code
                    ),
                });
            }
            for format in carrier.number_formats {
                let order = formats.len();
                formats.push(CompiledFormat::compile(
                    source.file,
                    &carrier.code,
                    &carrier.name,
                    true,
                    format,
                    order,
                )?);
            }
        }
        Ok(Recogniser { formats })
    }

    /// How many formats are known.
    pub fn len(&self) -> usize {
        self.formats.len()
    }

    /// Whether no format is known.
    pub fn is_empty(&self) -> bool {
        self.formats.is_empty()
    }

    /// The carriers that could have issued `number`, the most likely first: a confirmed check
    /// digit before a bare shape, then the format's weight, then file order. Each carrier is
    /// listed once, with its best format. The number is read through [`normalise`].
    pub fn recognise(&self, number: &str) -> Recognition {
        let number = normalise(number);
        let mut hits: Vec<(&CompiledFormat, Candidate)> = self
            .formats
            .iter()
            .filter_map(|format| format.try_match(&number).map(|c| (format, c)))
            .collect();
        hits.sort_by(|(a, ca), (b, cb)| {
            cb.confirmed
                .cmp(&ca.confirmed)
                .then(b.format.weight.cmp(&a.format.weight))
                .then(a.order.cmp(&b.order))
        });
        let mut seen = BTreeSet::new();
        let candidates: Vec<Candidate> = hits
            .into_iter()
            .map(|(_, candidate)| candidate)
            .filter(|c| seen.insert((c.carrier.clone(), c.carrier_name.clone())))
            .collect();
        Recognition::Ambiguous(candidates).restricted_to(|_| true)
    }
}

/// A number as the formats see it: without spaces, letters upper-cased (as
/// [`crate::domain::TrackingNumber::parse`] writes it, but without refusing anything).
pub fn normalise(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

/// `dir/<code>.toml` when it exists, else the bundled text (from `bundled_dir` in the source
/// tree); with the name errors should use.
fn read_or_bundled(
    dir: Option<&Path>,
    bundled_dir: &str,
    code: &str,
    bundled: &str,
) -> Result<(String, String), ProfileError> {
    if let Some(path) = dir
        .map(|d| d.join(format!("{code}.toml")))
        .filter(|p| p.exists())
    {
        return read_file(&path);
    }
    Ok((
        format!("{bundled_dir}/{code}.toml (bundled)"),
        bundled.to_owned(),
    ))
}

fn read_file(path: &Path) -> Result<(String, String), ProfileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        file: file.clone(),
        source,
    })?;
    Ok((file, text))
}

#[derive(Debug)]
struct CompiledFormat {
    carrier: CarrierCode,
    carrier_name: String,
    detection_only: bool,
    format: NumberFormat,
    regex: Regex,
    also_match: Vec<Regex>,
    lookups: Vec<CompiledLookup>,
    /// Position in load order, the last tie-breaker.
    order: usize,
}

#[derive(Debug)]
struct CompiledLookup {
    label: String,
    group: String,
    required: bool,
    issuer: bool,
    entries: Vec<(Matcher, String)>,
}

#[derive(Debug)]
enum Matcher {
    Exact(String),
    Pattern(Regex),
}

impl Matcher {
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Exact(exact) => exact == text,
            Matcher::Pattern(regex) => regex.is_match(text),
        }
    }
}

impl CompiledFormat {
    fn compile(
        file: &str,
        carrier: &CarrierCode,
        carrier_name: &str,
        detection_only: bool,
        format: NumberFormat,
        order: usize,
    ) -> Result<Self, ProfileError> {
        let invalid = |reason: String| ProfileError::Invalid {
            file: file.to_owned(),
            reason: format!("number format `{}`: {reason}", format.name),
        };
        // Anchored here so that no file can forget it: a format describes the whole number.
        let regex = Regex::new(&format!("^(?:{})$", format.regex))
            .map_err(|e| invalid(format!("regex: {e}")))?;
        let groups: BTreeSet<&str> = regex.capture_names().flatten().collect();
        let also_match = format
            .also_match
            .iter()
            .map(|p| Regex::new(p).map_err(|e| invalid(format!("also_match `{p}`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(checksum) = &format.checksum {
            for group in ["SerialNumber", "CheckDigit"] {
                if !groups.contains(group) {
                    return Err(invalid(format!(
                        "a checksum needs a `(?<{group}>...)` group in the regex"
                    )));
                }
            }
            // A match, not a let chain: the crate's rust-version (1.85) predates let chains.
            let unusable = match checksum {
                Checksum::SumProductWithWeightingsAndModulo {
                    weightings,
                    modulo1,
                    modulo2,
                } => weightings.is_empty() || *modulo1 == 0 || *modulo2 == 0,
                _ => false,
            };
            if unusable {
                return Err(invalid(
                    "sum_product_with_weightings_and_modulo needs weightings and non-zero moduli"
                        .into(),
                ));
            }
        } else if format.serial_prefix.is_some() {
            return Err(invalid("serial_prefix only matters with a checksum".into()));
        }
        if format.lookups.iter().filter(|l| l.issuer).count() > 1 {
            return Err(invalid("at most one lookup can name the issuer".into()));
        }
        let mut lookups = Vec::new();
        for lookup in &format.lookups {
            if !groups.contains(lookup.group.as_str()) {
                return Err(invalid(format!(
                    "lookup `{}`: the regex has no group `{}`",
                    lookup.label, lookup.group
                )));
            }
            if lookup.entries.is_empty() {
                return Err(invalid(format!("lookup `{}` has no entries", lookup.label)));
            }
            let mut entries = Vec::new();
            for entry in &lookup.entries {
                let matcher = match (&entry.matches, &entry.matches_regex) {
                    (Some(exact), None) => Matcher::Exact(exact.clone()),
                    (None, Some(pattern)) => {
                        Matcher::Pattern(Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                            invalid(format!("lookup `{}`: `{pattern}`: {e}", lookup.label))
                        })?)
                    }
                    _ => {
                        return Err(invalid(format!(
                            "lookup `{}`, entry `{}`: give exactly one of matches and matches_regex",
                            lookup.label, entry.name
                        )));
                    }
                };
                entries.push((matcher, entry.name.clone()));
            }
            lookups.push(CompiledLookup {
                label: lookup.label.clone(),
                group: lookup.group.clone(),
                required: lookup.required || lookup.issuer,
                issuer: lookup.issuer,
                entries,
            });
        }
        Ok(CompiledFormat {
            carrier: carrier.clone(),
            carrier_name: carrier_name.to_owned(),
            detection_only,
            format,
            regex,
            also_match,
            lookups,
            order,
        })
    }

    fn try_match(&self, number: &str) -> Option<Candidate> {
        let captures = self.regex.captures(number)?;
        if !self.also_match.iter().all(|r| r.is_match(number)) {
            return None;
        }
        let mut carrier_name = self.carrier_name.clone();
        let mut details = Vec::new();
        for lookup in &self.lookups {
            let text = captures.name(&lookup.group).map(|m| m.as_str());
            let entry = text.and_then(|text| {
                lookup
                    .entries
                    .iter()
                    .find(|(matcher, _)| matcher.matches(text))
            });
            match entry {
                Some((_, name)) if lookup.issuer => carrier_name = name.clone(),
                Some((_, name)) => details.push(format!("{}: {name}", lookup.label)),
                None if lookup.required => return None,
                None => {}
            }
        }
        let confirmed = match &self.format.checksum {
            None => false,
            Some(checksum) => {
                let serial = captures.name("SerialNumber")?.as_str();
                let check = captures.name("CheckDigit")?.as_str();
                let serial = match &self.format.serial_prefix {
                    Some(prefix) if !serial.starts_with(prefix.as_str()) => {
                        format!("{prefix}{serial}")
                    }
                    _ => serial.to_owned(),
                };
                if !checksum.validates(&serial, check) {
                    return None;
                }
                true
            }
        };
        Some(Candidate {
            carrier: self.carrier.clone(),
            carrier_name,
            format: self.format.name.clone(),
            confirmed,
            detection_only: self.detection_only,
            details,
        })
    }
}

impl Checksum {
    /// Whether `check` is the check digit (or character) of `serial`.
    pub fn validates(&self, serial: &str, check: &str) -> bool {
        match self {
            Checksum::Mod10 {
                evens_multiplier,
                odds_multiplier,
                reverse,
                offset,
            } => {
                let Some(check) = digit(check) else {
                    return false;
                };
                let values: Option<Vec<u32>> = serial.chars().map(mod10_value).collect();
                let Some(mut values) = values else {
                    return false;
                };
                if *reverse {
                    values.reverse();
                }
                let total: u32 = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v * if i % 2 == 0 {
                            evens_multiplier
                        } else {
                            odds_multiplier
                        }
                    })
                    .sum::<u32>()
                    + offset;
                (10 - total % 10) % 10 == check
            }
            Checksum::Mod7 {} => {
                let Some(check) = digit(check) else {
                    return false;
                };
                // Digit by digit: the serial may be longer than any integer type.
                let remainder = serial
                    .chars()
                    .try_fold(0u32, |r, c| c.to_digit(10).map(|d| (r * 10 + d) % 7));
                remainder == Some(check)
            }
            Checksum::S10 {} => {
                let (Some(check), true) = (digit(check), serial.len() == 8) else {
                    return false;
                };
                let total: Option<u32> = serial
                    .chars()
                    .zip([8, 6, 4, 2, 3, 5, 9, 7])
                    .map(|(c, w)| c.to_digit(10).map(|d| d * w))
                    .sum();
                let Some(total) = total else {
                    return false;
                };
                let expected = match total % 11 {
                    0 => 5,
                    1 => 0,
                    remainder => 11 - remainder,
                };
                expected == check
            }
            Checksum::SumProductWithWeightingsAndModulo {
                weightings,
                modulo1,
                modulo2,
            } => {
                let (Some(check), true) = (digit(check), serial.len() == weightings.len()) else {
                    return false;
                };
                let total: Option<u32> = serial
                    .chars()
                    .zip(weightings)
                    .map(|(c, w)| c.to_digit(10).map(|d| d * w))
                    .sum();
                total.is_some_and(|t| t % modulo1 % modulo2 == check)
            }
            Checksum::Luhn {} => {
                let Some(check) = digit(check) else {
                    return false;
                };
                // The check digit will sit right of the serial, so the serial's last digit is
                // the first one doubled.
                let total: Option<u32> = serial
                    .chars()
                    .rev()
                    .enumerate()
                    .map(|(i, c)| {
                        c.to_digit(10).map(|d| match (i % 2 == 0, d * 2) {
                            (true, doubled) if doubled > 9 => doubled - 9,
                            (true, doubled) => doubled,
                            (false, _) => d,
                        })
                    })
                    .sum();
                total.is_some_and(|t| (10 - t % 10) % 10 == check)
            }
            Checksum::Mod3736 {} => {
                mod_37_36(serial).is_some_and(|c| check.len() == 1 && check.starts_with(c))
            }
        }
    }
}

fn digit(text: &str) -> Option<u32> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => c.to_digit(10),
        _ => None,
    }
}

/// A character's value in the mod 10 sum: digits as themselves, letters as in UPS's algorithm.
fn mod10_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        'A'..='Z' => Some((c as u32 - 3) % 10),
        _ => None,
    }
}

/// The ISO 7064 MOD 37,36 check character of `serial` (digits and upper-case letters).
fn mod_37_36(serial: &str) -> Option<char> {
    const MOD: u32 = 36;
    let mut cd = MOD;
    for c in serial.chars() {
        let value = c.to_digit(36)?;
        cd += value;
        if cd > MOD {
            cd -= MOD;
        }
        cd *= 2;
        if cd > MOD {
            cd -= MOD + 1;
        }
    }
    let mut cd = (MOD + 1) - cd;
    if cd == MOD {
        cd = 0;
    }
    char::from_digit(cd, 36).map(|c| c.to_ascii_uppercase())
}

#[cfg(test)]
#[path = "recognise_tests.rs"]
mod tests;
