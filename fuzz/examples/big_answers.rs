//! Every carrier adapter's answer reader on answers as large as the transport lets through.
//!
//! libFuzzer keeps its inputs about as long as the seeds (a few kilobytes), so it cannot see a
//! reader that is slow only on long answers. This program takes each carrier's published example
//! (the seed its fuzz target starts from), repeats the example's list of scans until the body is
//! as long as it can be without passing the transport's `MAX_ANSWER_BYTES` (longer answers are
//! refused unread), and times the adapter's `read_answer_body` — the function the fuzz targets
//! call — on it, in two variants:
//!
//! - `same`: the list repeated as published, so every scan comes again and again unchanged;
//! - `distinct`: the same list, each scan moved to a moment of its own (one second before the
//!   previous one, starting from the example's first scan), written the way the carrier writes
//!   its times.
//!
//! Each case runs in a child process of its own, so that its peak memory is its own.
//!
//! ```sh
//! cd fuzz && cargo run --release --example big_answers            # every carrier
//! cd fuzz && cargo run --release --example big_answers -- dpd ups # some carriers
//! cd fuzz && cargo run --release --example big_answers -- --write dpd distinct /tmp/dpd.xml
//! ```
//!
//! The last writes one case's body to a file instead (variant `same` or `distinct`).
//!
//! It prints a Markdown table: carrier, variant, body size, scans in the body, events the reader
//! returned, the median time of a few reads, how far the process's resident memory rose above
//! what it was with the body already built (Linux only; `?` elsewhere), and what the reader said
//! about each number asked about (and what it said about the published example, when that
//! differs). A read slower than a second is named at the end.
#![forbid(unsafe_code)]

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use jiff::civil::DateTime;
use jiff::fmt::strtime::{self, BrokenDownTime};
use serde_json::Value;
use waymark::carriers::transport::MAX_ANSWER_BYTES;
use waymark::carriers::{CarrierError, ParcelError, ParcelResult};
use waymark::domain::TrackingNumber;
use waymark_fuzz::{numbers, profile, transport};

/// Reads per case; the median is reported.
const RUNS: usize = 5;
/// A case stops repeating its reads once they have taken this long together.
const TIME_BUDGET: Duration = Duration::from_secs(60);
/// A read of an 8 MiB answer slower than this is worth a look.
const SLOW: Duration = Duration::from_secs(1);

type Reader = Box<dyn Fn(&[TrackingNumber], &str) -> Result<Vec<ParcelResult>, CarrierError>>;

/// Where a body's list of scans is.
enum Shape {
    /// A JSON array, by its JSON pointer.
    Json(&'static str),
    /// Consecutive XML elements of this name.
    Xml(&'static str),
}

/// One part of a scan's time: where it is inside the scan (JSON keys, or XML element names one
/// inside the other) and how the carrier writes it (jiff's strftime).
struct Stamp {
    path: &'static [&'static str],
    format: &'static str,
}

struct Case {
    carrier: &'static str,
    /// The published example, from the repository's root.
    example: &'static str,
    /// The numbers asked about: those the carrier's fuzz target asks about.
    numbers: &'static [&'static str],
    shape: Shape,
    /// The parts of a scan's time; several parts (a date and a clock time) together name one
    /// moment.
    stamp: &'static [Stamp],
    reader: fn() -> Reader,
}

macro_rules! reader {
    ($module:ident, $adapter:ident) => {
        || {
            use waymark::carriers::$module::{BUNDLED_PROFILE, $adapter};
            let adapter = $adapter::new(profile(stringify!($module), BUNDLED_PROFILE), transport());
            Box::new(move |numbers, body| adapter.read_answer_body(numbers, body))
        }
    };
}

/// The repository's root, wherever the program is started from.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn cases() -> Vec<Case> {
    vec![
        Case {
            carrier: "auspost",
            example: "tests/fixtures/carriers/auspost/example_response.karrio.json",
            numbers: &["7XX1000", "7XX1000634011427", "ET123456789AU"],
            shape: Shape::Json("/tracking_results/1/trackable_items/0/events"),
            stamp: &[Stamp {
                path: &["date"],
                format: "%Y-%m-%dT%H:%M:%S%:z",
            }],
            reader: reader!(auspost, AusPost),
        },
        Case {
            carrier: "canadapost",
            example: "tests/fixtures/carriers/canadapost/example_tracking-detail.karrio-test.xml",
            numbers: &["7023210039414604"],
            shape: Shape::Xml("occurrence"),
            stamp: &[
                Stamp {
                    path: &["event-date"],
                    format: "%Y-%m-%d",
                },
                Stamp {
                    path: &["event-time"],
                    format: "%H:%M:%S",
                },
            ],
            reader: reader!(canadapost, CanadaPost),
        },
        Case {
            carrier: "dhl",
            example: "tests/fixtures/carriers/dhl/example_response.json",
            numbers: &["7777777770"],
            shape: Shape::Json("/shipments/0/events"),
            stamp: &[Stamp {
                path: &["timestamp"],
                format: "%Y-%m-%dT%H:%M:%S",
            }],
            reader: reader!(dhl, Dhl),
        },
        Case {
            carrier: "dpd",
            example: "tests/fixtures/carriers/dpd/example_getTrackingData_response.karrio-test.xml",
            numbers: &["05308801410058"],
            shape: Shape::Xml("statusInfo"),
            stamp: &[Stamp {
                path: &["date", "content"],
                format: "%-m/%-d/%Y %-I:%M:%S %p",
            }],
            reader: reader!(dpd, Dpd),
        },
        Case {
            carrier: "fedex",
            example: "tests/fixtures/carriers/fedex/example_response.json",
            numbers: &["128667043726", "123456789012", "39936862321"],
            shape: Shape::Json("/output/completeTrackResults/0/trackResults/0/scanEvents"),
            stamp: &[Stamp {
                path: &["date"],
                format: "%Y-%m-%dT%H:%M:%S%:z",
            }],
            reader: reader!(fedex, Fedex),
        },
        Case {
            carrier: "gls",
            example: "tests/fixtures/carriers/gls/example_response_200WithLinks.json",
            numbers: &["36301917596", "42249018928", "42249028960"],
            shape: Shape::Json("/parcels/0/events"),
            stamp: &[Stamp {
                path: &["eventDateTime"],
                format: "%Y-%m-%dT%H:%M:%S%z",
            }],
            reader: reader!(gls, Gls),
        },
        // InPost publishes no tracking answer: its target's seed is the one built from its
        // field list (see fuzz/README.md).
        Case {
            carrier: "inpost",
            example: "fuzz/seeds/inpost/locker_journey.json",
            numbers: &["520113015630320011234567"],
            shape: Shape::Json("/tracking_details"),
            stamp: &[Stamp {
                path: &["datetime"],
                format: "%Y-%m-%dT%H:%M:%S%.3f%:z",
            }],
            reader: reader!(inpost, InPost),
        },
        // PostNL's published answer (`CurrentStatus`) has one status and no history: that status
        // is repeated as the history (`OldStatus`) PostNL sends with it in `CompleteStatus`.
        Case {
            carrier: "postnl",
            example: "tests/fixtures/carriers/postnl/example_response_get_status_by_barcode.json",
            numbers: &["3SDEVC288882229"],
            shape: Shape::Json("/CurrentStatus/Shipment/OldStatus"),
            stamp: &[Stamp {
                path: &["TimeStamp"],
                format: "%d-%m-%Y %H:%M:%S",
            }],
            reader: reader!(postnl, PostNl),
        },
        Case {
            carrier: "royalmail",
            example: "tests/fixtures/carriers/royalmail/example_response_events.karrio-community.json",
            numbers: &["FQ087430672GB"],
            shape: Shape::Json("/mailPieces/events"),
            stamp: &[Stamp {
                path: &["eventDateTime"],
                format: "%Y-%m-%dT%H:%M:%S%:z",
            }],
            reader: reader!(royalmail, RoyalMail),
        },
        Case {
            carrier: "ups",
            example: "tests/fixtures/carriers/ups/example_response.json",
            numbers: &["1Z1442YY7229014688"],
            shape: Shape::Json("/trackResponse/shipment/0/package/0/activity"),
            stamp: &[
                Stamp {
                    path: &["date"],
                    format: "%Y%m%d",
                },
                Stamp {
                    path: &["time"],
                    format: "%H%M%S",
                },
            ],
            reader: reader!(ups, Ups),
        },
        // The detail answer carries no number of its own: it answers a lone request.
        Case {
            carrier: "usps",
            example: "tests/fixtures/carriers/usps/example_response_detail.json",
            numbers: &["XXXXXXXXXXXXXXXXXXXX"],
            shape: Shape::Json("/trackingEvents"),
            stamp: &[Stamp {
                path: &["eventTimestamp"],
                format: "%Y-%m-%dT%H:%M:%SZ",
            }],
            reader: reader!(usps, Usps),
        },
    ]
}

/// A published example cut around its list of scans.
struct Template {
    /// The body before the first scan.
    head: String,
    /// Each scan of the list, as text.
    scans: Vec<String>,
    /// What goes between two scans.
    separator: String,
    /// The body after the last scan.
    tail: String,
}

impl Template {
    fn read(case: &Case) -> Template {
        let path = format!("{ROOT}/{}", case.example);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        match case.shape {
            Shape::Json(pointer) => Template::json(&text, pointer, case),
            Shape::Xml(name) => Template::xml(&text, name),
        }
    }

    /// The body's JSON with the list's place marked, written compactly as carriers send it.
    fn json(text: &str, pointer: &str, case: &Case) -> Template {
        const MARK: &str = "\"waymark-big-answers-scans\"";
        let mut doc: Value = serde_json::from_str(text).expect("a published example is JSON");
        let scans = match pointer.rsplit_once('/') {
            // A history the example lacks (PostNL): the current status, as its only entry.
            Some((parent, "OldStatus")) => {
                let shipment = doc.pointer_mut(parent).expect("the shipment is there");
                vec![shipment["Status"].clone()]
            }
            _ => match doc.pointer(pointer) {
                Some(Value::Array(scans)) if !scans.is_empty() => scans.clone(),
                _ => panic!("{}: no list of scans at {pointer}", case.example),
            },
        };
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer inside the body");
        doc.pointer_mut(parent).expect("the list's parent")[key] =
            Value::String(MARK[1..MARK.len() - 1].to_owned());
        let compact = doc.to_string();
        let (head, tail) = compact.split_once(MARK).expect("the mark is written once");
        Template {
            head: format!("{head}["),
            scans: scans.iter().map(Value::to_string).collect(),
            separator: ",".to_owned(),
            tail: format!("]{tail}"),
        }
    }

    /// The body's XML as published, cut around its consecutive `<name>` elements.
    fn xml(text: &str, name: &str) -> Template {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let mut scans = Vec::new();
        let mut between = Vec::new();
        let mut at = 0;
        let mut last_end = None;
        while let Some(start) = text[at..].find(&open).map(|i| at + i) {
            let end =
                start + text[start..].find(&close).expect("an element is closed") + close.len();
            if let Some(last_end) = last_end {
                let gap: &str = &text[last_end..start];
                assert!(gap.trim().is_empty(), "<{name}> elements are consecutive");
                between.push(gap.to_owned());
            }
            scans.push(text[start..end].to_owned());
            last_end = Some(end);
            at = end;
        }
        let first = text.find(&open).expect("the example has the list");
        Template {
            head: text[..first].to_owned(),
            scans,
            separator: between.first().cloned().unwrap_or_default(),
            tail: text[last_end.expect("one element at least")..].to_owned(),
        }
    }

    /// The longest body the transport accepts: the scans repeated in order, each at its own
    /// moment when `distinct`. Also says how many scans it holds.
    fn grow(&self, case: &Case, distinct: bool) -> (String, usize) {
        let start = distinct.then(|| moment(case, &self.scans[0]));
        let mut body = String::with_capacity(MAX_ANSWER_BYTES);
        body.push_str(&self.head);
        let room = MAX_ANSWER_BYTES - self.tail.len();
        let mut count = 0;
        loop {
            let published = &self.scans[count % self.scans.len()];
            let scan = match start {
                Some(start) => {
                    let at = start
                        .checked_sub(jiff::SignedDuration::from_secs(count as i64))
                        .expect("within jiff's range");
                    restamp(case, published, at)
                }
                None => published.clone(),
            };
            let separator = if count == 0 { "" } else { &self.separator };
            if body.len() + separator.len() + scan.len() > room {
                break;
            }
            body.push_str(separator);
            body.push_str(&scan);
            count += 1;
        }
        body.push_str(&self.tail);
        assert!(body.len() <= MAX_ANSWER_BYTES);
        (body, count)
    }
}

/// The parts of a scan's time, as written, in `case.stamp`'s order.
fn stamp_parts(case: &Case, scan: &str) -> Vec<String> {
    match case.shape {
        Shape::Json(_) => {
            let scan: Value = serde_json::from_str(scan).expect("a scan is JSON");
            case.stamp
                .iter()
                .map(|part| {
                    let pointer: String = part.path.iter().map(|key| format!("/{key}")).collect();
                    match scan.pointer(&pointer) {
                        Some(Value::String(text)) => text.clone(),
                        other => panic!("{}: scan time {pointer} is {other:?}", case.carrier),
                    }
                })
                .collect()
        }
        Shape::Xml(_) => case
            .stamp
            .iter()
            .map(|part| {
                let (start, end) = xml_text_span(scan, part.path);
                scan[start..end].to_owned()
            })
            .collect(),
    }
}

/// The moment a scan's time names, as a civil time ([`restamp`] keeps each scan's own offset).
fn moment(case: &Case, scan: &str) -> DateTime {
    let written = stamp_parts(case, scan).join(" ");
    let format = case
        .stamp
        .iter()
        .map(|p| p.format)
        .collect::<Vec<_>>()
        .join(" ");
    strtime::parse(&format, &written)
        .and_then(|time| time.to_datetime())
        .unwrap_or_else(|e| panic!("{}: `{written}` is not `{format}`: {e}", case.carrier))
}

/// A scan with its time moved to `at`, in the carrier's format and with the offset it had.
fn restamp(case: &Case, scan: &str, at: DateTime) -> String {
    let written = stamp_parts(case, scan);
    let parts: Vec<String> = case
        .stamp
        .iter()
        .zip(&written)
        .map(|(part, old)| {
            let offset = strtime::parse(part.format, old)
                .ok()
                .and_then(|t| t.offset());
            let mut time = BrokenDownTime::from(at);
            time.set_offset(offset);
            time.to_string(part.format)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", case.carrier, part.format))
        })
        .collect();
    match case.shape {
        Shape::Json(_) => {
            let mut scan: Value = serde_json::from_str(scan).expect("a scan is JSON");
            for (part, text) in case.stamp.iter().zip(parts) {
                let pointer: String = part.path.iter().map(|key| format!("/{key}")).collect();
                *scan.pointer_mut(&pointer).expect("the time is there") = Value::String(text);
            }
            scan.to_string()
        }
        Shape::Xml(_) => {
            let mut scan = scan.to_owned();
            for (part, text) in case.stamp.iter().zip(parts) {
                let (start, end) = xml_text_span(&scan, part.path);
                scan.replace_range(start..end, &text);
            }
            scan
        }
    }
}

/// Where the text of the element at `path` (names one inside the other) is in `scan`.
fn xml_text_span(scan: &str, path: &[&str]) -> (usize, usize) {
    let mut at = 0;
    for name in path {
        let open = format!("<{name}>");
        at += scan[at..]
            .find(&open)
            .unwrap_or_else(|| panic!("no <{name}> in a scan"))
            + open.len();
    }
    let end = at + scan[at..].find('<').expect("the element is closed");
    (at, end)
}

/// What one case measured.
struct Measure {
    body_bytes: usize,
    scans: usize,
    events: usize,
    outcome: String,
    reads: Vec<Duration>,
    memory_kib: Option<u64>,
}

/// A line of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn measure(case: &Case, distinct: bool) -> Measure {
    let template = Template::read(case);
    let (body, scans) = template.grow(case, distinct);
    let numbers = numbers(case.numbers);
    let read = (case.reader)();
    // The peak from here on: the body is built, the reader not yet run. Writing 5 to
    // clear_refs resets the peak (Linux 4.0 and later).
    let before = status_kib("VmRSS:");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let mut reads = Vec::new();
    let mut result = None;
    let started = Instant::now();
    while reads.len() < RUNS && (reads.is_empty() || started.elapsed() < TIME_BUDGET) {
        let t = Instant::now();
        let outcome = read(&numbers, &body);
        reads.push(t.elapsed());
        result.get_or_insert(outcome);
    }
    let peak = status_kib("VmHWM:");
    let memory_kib = match (reset, before, peak) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before)),
        _ => None,
    };
    let result = result.expect("one read at least");
    let events = match &result {
        Ok(results) => results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok())
            .map(|report| report.events.len())
            .sum(),
        Err(_) => 0,
    };
    let mut outcome = outcomes(&result);
    // The grown body should be read as the published one is, number for number.
    let published = std::fs::read_to_string(format!("{ROOT}/{}", case.example)).expect("readable");
    let as_published = outcomes(&read(&numbers, &published));
    if as_published != outcome {
        outcome = format!("{outcome} (published example: {as_published})");
    }
    Measure {
        body_bytes: body.len(),
        scans,
        events,
        outcome,
        reads,
        memory_kib,
    }
}

/// What a read said about each number: `ok`, `not found`, `rejected`, `malformed`; or the
/// error of the whole answer.
fn outcomes(read: &Result<Vec<ParcelResult>, CarrierError>) -> String {
    match read {
        Ok(results) => results
            .iter()
            .map(|r| match &r.outcome {
                Ok(_) => "ok",
                Err(ParcelError::NotFound) => "not found",
                Err(ParcelError::Rejected(_)) => "rejected",
                Err(ParcelError::Malformed { .. }) => "malformed",
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("error: {e}").chars().take(100).collect(),
    }
}

fn median(reads: &[Duration]) -> Duration {
    let mut sorted = reads.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

const VARIANTS: [(&str, bool); 2] = [("same", false), ("distinct", true)];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        // One case's body written to a file, to look at or to replay through the fuzz target.
        [flag, carrier, variant, path] if flag == "--write" => {
            let Some(case) = cases().into_iter().find(|c| c.carrier == carrier) else {
                eprintln!("unknown carrier {carrier}");
                return ExitCode::FAILURE;
            };
            let (body, scans) = Template::read(&case).grow(&case, variant == "distinct");
            std::fs::write(path, &body).unwrap_or_else(|e| panic!("{path}: {e}"));
            println!("{path}: {} bytes, {scans} scans", body.len());
            return ExitCode::SUCCESS;
        }
        // A child: one case, its figures on one tab-separated line.
        [flag, carrier, variant] if flag == "--case" => {
            let case = cases()
                .into_iter()
                .find(|c| c.carrier == carrier)
                .expect("a known carrier");
            let m = measure(&case, variant == "distinct");
            let reads: Vec<String> = m.reads.iter().map(|d| d.as_micros().to_string()).collect();
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                m.body_bytes,
                m.scans,
                m.events,
                reads.join(","),
                m.memory_kib.map_or("?".to_owned(), |k| k.to_string()),
                m.outcome,
            );
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let all = cases();
    let chosen: Vec<&Case> = if args.is_empty() {
        all.iter().collect()
    } else {
        let unknown: Vec<&String> = args
            .iter()
            .filter(|a| !all.iter().any(|c| c.carrier == a.as_str()))
            .collect();
        if !unknown.is_empty() {
            eprintln!(
                "unknown carriers: {unknown:?}; known: {}",
                all.iter().map(|c| c.carrier).collect::<Vec<_>>().join(" ")
            );
            return ExitCode::FAILURE;
        }
        all.iter()
            .filter(|c| args.contains(&c.carrier.to_owned()))
            .collect()
    };
    let me = std::env::current_exe().expect("the program's own path");
    println!("MAX_ANSWER_BYTES = {MAX_ANSWER_BYTES}; median of up to {RUNS} reads per case\n");
    println!(
        "| carrier | variant | body (bytes) | scans in body | events read | read (median) | runs | memory over the body | each number's outcome |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|---|");
    let mut slow = Vec::new();
    let mut failed = false;
    for case in chosen {
        for (variant, _) in VARIANTS {
            let out = Command::new(&me)
                .args(["--case", case.carrier, variant])
                .output()
                .expect("the child runs");
            if !out.status.success() {
                failed = true;
                println!(
                    "| {} | {variant} | child failed ({}) | | | | | | {} |",
                    case.carrier,
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default()
                );
                continue;
            }
            let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let f: Vec<&str> = line.splitn(6, '\t').collect();
            let reads: Vec<Duration> = f[3]
                .split(',')
                .map(|us| Duration::from_micros(us.parse().expect("micros")))
                .collect();
            let time = median(&reads);
            if time > SLOW {
                slow.push(format!("{} ({variant}): {time:.2?}", case.carrier));
            }
            let memory = f[4].parse::<u64>().map_or("?".to_owned(), |kib| {
                format!("{:.1} MiB", kib as f64 / 1024.0)
            });
            println!(
                "| {} | {variant} | {} | {} | {} | {:.1?} | {} | {memory} | {} |",
                case.carrier,
                f[0],
                f[1],
                f[2],
                time,
                reads.len(),
                f[5]
            );
        }
    }
    if !slow.is_empty() {
        println!(
            "\nslower than {SLOW:?} on an answer just under {MAX_ANSWER_BYTES} bytes: {}",
            slow.join("; ")
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
