//! Bad input is refused at the door — by the library, the `waymark` command and the CSV import —
//! with the field named, and nothing half-valid is stored.

use waymark::carriers::sandbox::Scenario;
use waymark::domain::{MerchantId, TrackingNumber};
use waymark::intake::{
    self, IMPORT_BATCH, ImportObserver, ImportReport, IntakeError, KEPT_REFUSALS, ShipmentInput,
};

use crate::helpers::{daemon_env, open_store, run_waymark, sandbox_shipment, spawn_app};

fn valid(seq: u32) -> ShipmentInput {
    sandbox_shipment(
        Scenario::OnTime,
        seq,
        "anna.nowak@example.pl",
        "Anna Nowak",
        "pl",
        "PL",
    )
}

/// The fields named by a refusal.
fn refused_fields(result: Result<impl std::fmt::Debug, IntakeError>) -> Vec<&'static str> {
    match result {
        Err(IntakeError::Invalid(fields)) => fields.iter().map(|f| f.field).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn register_refuses_each_bad_field_by_name_and_stores_nothing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    type Spoil = fn(&mut ShipmentInput);
    let cases: [(&str, Spoil); 9] = [
        ("carrier", |s| s.carrier = "dhl_express".into()),
        ("customer_email", |s| {
            s.customer_email = "anna.example.pl".into()
        }),
        ("locale", |s| s.locale = Some("12".into())),
        ("locale", |s| s.locale = Some("polish!".into())),
        ("promise", |s| s.promise = Some("next week".into())),
        ("promise", |s| {
            s.promise = Some("2026-03-06..2026-03-04".into())
        }),
        ("destination_country", |s| {
            s.destination_country = "Polska".into()
        }),
        ("time_zone", |s| s.time_zone = Some("Europe/Gdansk".into())),
        ("tracking_number", |s| {
            s.tracking_number = "SBX/ONTIME/1".into()
        }),
    ];
    for (i, (field, spoil)) in cases.into_iter().enumerate() {
        let mut input = valid(100 + i as u32);
        spoil(&mut input);
        let result = intake::register(
            app.store(),
            &app.waymark.carriers,
            MerchantId::DEFAULT,
            &input,
            app.now(),
        )
        .await;
        let message = match &result {
            Err(error) => error.to_string(),
            Ok(_) => String::new(),
        };
        assert_eq!(refused_fields(result), [field], "{input:?}");
        assert!(message.starts_with(&format!("{field}: ")), "{message}");
        if let Ok(number) = TrackingNumber::parse(&input.tracking_number) {
            assert!(
                app.store().shipments_by_number(&number).await?.is_empty(),
                "{input:?} stored"
            );
        }
    }

    // The unknown carrier is named, with the ones Waymark knows.
    let mut input = valid(200);
    input.carrier = "dhl_express".into();
    let error = app.register(&input).await.unwrap_err().to_string();
    assert!(
        error.contains("dhl_express") && error.contains("sandbox"),
        "{error}"
    );

    // Every problem at once, not just the first.
    let mut input = valid(201);
    input.carrier = "dhl_express".into();
    input.customer_email = "nobody".into();
    input.locale = Some("12".into());
    let mut fields = refused_fields(
        intake::register(
            app.store(),
            &app.waymark.carriers,
            MerchantId::DEFAULT,
            &input,
            app.now(),
        )
        .await,
    );
    fields.sort();
    assert_eq!(fields, ["carrier", "customer_email", "locale"]);

    // A number already registered on the account.
    let first = app.register(&valid(300)).await?;
    let mut again = valid(300);
    again.customer_email = "someone.else@example.pl".into();
    let result = intake::register(
        app.store(),
        &app.waymark.carriers,
        MerchantId::DEFAULT,
        &again,
        app.now(),
    )
    .await;
    assert_eq!(refused_fields(result), ["tracking_number"]);
    let stored = app
        .store()
        .shipments_by_number(&first.tracking_number)
        .await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].customer.email.as_ref().map(|e| e.as_str()),
        Some("anna.nowak@example.pl")
    );
    Ok(())
}

#[tokio::test]
async fn the_command_line_refuses_bad_shipments_naming_the_field() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = daemon_env(dir.path(), 25, 1.0);
    let add = |number: &str, carrier: &str, email: &str, locale: &str, promise: Option<&str>| {
        let mut args = vec![
            "shipments",
            "add",
            "--carrier",
            carrier,
            "--tracking-number",
            number,
            "--email",
            email,
            "--name",
            "Anna Nowak",
            "--locale",
            locale,
            "--country",
            "PL",
        ];
        if let Some(promise) = promise {
            args.extend(["--promise", promise]);
        }
        run_waymark(dir.path(), &env, &args)
    };

    let ok = add(
        "SBX-ONTIME-000001",
        "sandbox",
        "anna@example.pl",
        "pl",
        Some("2026-03-05"),
    )?;
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        ok.stdout.contains("registered sandbox SBX-ONTIME-000001"),
        "{ok:?}"
    );

    let cases = [
        (
            "carrier",
            add(
                "SBX-ONTIME-000002",
                "dhl_express",
                "anna@example.pl",
                "pl",
                None,
            )?,
        ),
        (
            "customer_email",
            add(
                "SBX-ONTIME-000003",
                "sandbox",
                "anna.example.pl",
                "pl",
                None,
            )?,
        ),
        (
            "locale",
            add(
                "SBX-ONTIME-000004",
                "sandbox",
                "anna@example.pl",
                "fr!",
                None,
            )?,
        ),
        (
            "promise",
            add(
                "SBX-ONTIME-000005",
                "sandbox",
                "anna@example.pl",
                "pl",
                Some("soon"),
            )?,
        ),
        (
            "tracking_number",
            add(
                "SBX-ONTIME-000001",
                "sandbox",
                "other@example.pl",
                "pl",
                None,
            )?,
        ),
    ];
    for (field, output) in &cases {
        assert!(!output.status.success(), "{field}: accepted: {output:?}");
        assert!(
            output.stderr.contains(&format!("{field}: ")),
            "{field} not named: {}",
            output.stderr
        );
        assert!(!output.stdout.contains("registered"), "{output:?}");
    }

    // Only the good one is in the database.
    let store = open_store(&env_value(&env, "WAYMARK_DATABASE_URL")).await?;
    for (number, count) in [
        ("SBX-ONTIME-000001", 1),
        ("SBX-ONTIME-000002", 0),
        ("SBX-ONTIME-000005", 0),
    ] {
        let found = store
            .shipments_by_number(&TrackingNumber::parse(number)?)
            .await?;
        assert_eq!(found.len(), count, "{number}");
    }
    let kept = &store
        .shipments_by_number(&TrackingNumber::parse("SBX-ONTIME-000001")?)
        .await?[0];
    assert_eq!(
        kept.customer.email.as_ref().map(|e| e.as_str()),
        Some("anna@example.pl")
    );
    Ok(())
}

fn env_value(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Two good rows (lines 2 and 8) and one bad row per kind of mistake (see [`REFUSED`]).
const CSV: &str = "\
carrier,tracking_number,customer_email,customer_name,locale,time_zone,destination_country,order_reference,promise,account
sandbox,SBX-ONTIME-000101,anna@example.pl,Anna Nowak,pl,,PL,WM-1,,
dhl_express,SBX-ONTIME-000102,jan@example.pl,Jan,pl,,PL,WM-2,,
sandbox,SBX-ONTIME-000103,not-an-address,Ola,pl,,PL,WM-3,,
sandbox,SBX-ONTIME-000104,marie@example.fr,Marie,français,,FR,WM-4,,
sandbox,SBX-ONTIME-000101,copy@example.pl,Copy,pl,,PL,WM-5,,
sandbox,SBX-ONTIME-000105,jonas@example.de,Jonas,de,,DE,WM-6,2026-03-06..2026-03-04,
sandbox,SBX-ONTIME-000106,emma@example.com,Emma,en,Europe/London,GB,WM-7,2026-03-06,
";

/// Line of the file and the field its row is refused for.
const REFUSED: [(u64, &str); 5] = [
    (3, "carrier"),
    (4, "customer_email"),
    (5, "locale"),
    (6, "tracking_number"),
    (7, "promise"),
];

#[tokio::test]
async fn a_csv_import_takes_the_good_rows_and_names_each_bad_line() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let report = intake::import_csv(
        app.store(),
        &app.waymark.carriers,
        MerchantId::DEFAULT,
        CSV.as_bytes(),
        app.now(),
    )
    .await?;
    assert_eq!(report.imported, 2, "{report:?}");
    for (number, stored) in [
        ("SBX-ONTIME-000101", 1),
        ("SBX-ONTIME-000102", 0),
        ("SBX-ONTIME-000106", 1),
    ] {
        let found = app
            .store()
            .shipments_by_number(&TrackingNumber::parse(number)?)
            .await?;
        assert_eq!(found.len(), stored, "{number}");
    }
    assert_eq!(report.refused, REFUSED.len() as u64, "{report:?}");
    assert_eq!(report.refusals.len(), REFUSED.len(), "{report:?}");
    for ((line, why), (expected_line, field)) in report.refusals.iter().zip(REFUSED) {
        assert_eq!(*line, expected_line, "{why}");
        assert!(why.starts_with(&format!("{field}: ")), "line {line}: {why}");
    }
    Ok(())
}

/// What an import told its observer, as it went.
#[derive(Default)]
struct Heard {
    refused: Vec<(u64, String)>,
    /// The counts after each stored batch: (imported, refused).
    batches: Vec<(u64, u64)>,
}

impl ImportObserver for Heard {
    fn refused(&mut self, line: u64, why: &str) {
        self.refused.push((line, why.to_owned()));
    }
    fn stored(&mut self, report: &ImportReport) {
        self.batches.push((report.imported, report.refused));
    }
}

#[tokio::test]
async fn a_csv_import_of_several_batches_names_each_bad_line_in_order() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let rows = IMPORT_BATCH * 2 + 500;
    // Line n of the file (the header is line 1) is row n - 2; the bad rows sit at the start,
    // on both sides of the first batch's end, and in the last, short batch.
    let number = |row: usize| Scenario::OnTime.example_number(row as u32).to_string();
    let boundary = IMPORT_BATCH + 2;
    let spoiled: [(usize, &str, String); 6] = [
        (
            3,
            "customer_email",
            format!("sandbox,{},anna.example.pl,pl,PL,", number(1)),
        ),
        (
            boundary - 1,
            "account",
            format!("sandbox,{},a@example.pl,pl,PL,nosuch", number(9_001)),
        ),
        // The number of line 2, from the batch before.
        (
            boundary,
            "tracking_number",
            format!("sandbox,{},b@example.pl,pl,PL,", number(0)),
        ),
        (
            boundary + 1,
            "locale",
            format!("sandbox,{},c@example.pl,f,PL,", number(9_002)),
        ),
        // Twice the same new number in one batch: the second copy is refused.
        (
            rows - 10,
            "tracking_number",
            format!("sandbox,{},d@example.pl,pl,PL,", number(rows - 20)),
        ),
        (
            rows,
            "carrier",
            format!("nosuch,{},e@example.pl,pl,PL,", number(9_003)),
        ),
    ];
    let mut csv =
        String::from("carrier,tracking_number,customer_email,locale,destination_country,account\n");
    for line in 2..rows + 2 {
        match spoiled.iter().find(|(bad, _, _)| *bad == line) {
            Some((_, _, row)) => csv.push_str(row),
            None => csv.push_str(&format!(
                "sandbox,{},customer{line}@example.pl,pl,PL,",
                number(line - 2)
            )),
        }
        csv.push('\n');
    }

    let mut heard = Heard::default();
    let report = intake::import_csv_with(
        app.store(),
        &app.waymark.carriers,
        MerchantId::DEFAULT,
        csv.as_bytes(),
        app.now(),
        &mut heard,
    )
    .await?;

    let expected: Vec<(u64, &str)> = spoiled
        .iter()
        .map(|(line, field, _)| (*line as u64, *field))
        .collect();
    let reported: Vec<(u64, &str)> = report
        .refusals
        .iter()
        .map(|(line, why)| (*line, why.split(':').next().unwrap_or_default()))
        .collect();
    assert_eq!(reported, expected, "{:?}", report.refusals);
    assert_eq!(
        heard.refused, report.refusals,
        "the observer hears every refusal, in order"
    );
    assert_eq!(report.refused, spoiled.len() as u64);
    assert_eq!(report.imported, (rows - spoiled.len()) as u64);
    assert_eq!(
        app.store().backlog().await?.active_shipments,
        report.imported
    );
    // Stored a batch at a time, and the last word is the report's.
    assert!(heard.batches.len() >= 3, "{:?}", heard.batches);
    assert_eq!(
        heard.batches.last(),
        Some(&(report.imported, report.refused))
    );
    // The copy refused at the batch boundary left the first one as it was.
    let first = app
        .store()
        .shipments_by_number(&TrackingNumber::parse(&number(0))?)
        .await?;
    let emails: Vec<&str> = first
        .iter()
        .filter_map(|s| s.customer.email.as_ref().map(|e| e.as_str()))
        .collect();
    assert_eq!(emails, ["customer2@example.pl"]);
    Ok(())
}

#[tokio::test]
async fn a_csv_import_counts_every_refusal_but_keeps_only_the_first_ones() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let bad = KEPT_REFUSALS + 25;
    let mut csv = String::from("tracking_number,customer_email,locale,destination_country\n");
    for row in 0..bad {
        csv.push_str(&format!("SBX-ONTIME-{row:06},not-an-address,pl,PL\n"));
    }
    csv.push_str("SBX-ONTIME-999999,anna@example.pl,pl,PL\n");

    let mut heard = Heard::default();
    let report = intake::import_csv_with(
        app.store(),
        &app.waymark.carriers,
        MerchantId::DEFAULT,
        csv.as_bytes(),
        app.now(),
        &mut heard,
    )
    .await?;
    assert_eq!(report.imported, 1);
    assert_eq!(report.refused, bad as u64);
    assert_eq!(report.refusals.len(), KEPT_REFUSALS);
    assert_eq!(report.refusals[..], heard.refused[..KEPT_REFUSALS]);
    assert_eq!(
        heard.refused.len(),
        bad,
        "the observer still hears of every one"
    );
    assert_eq!(
        heard.refused.last().map(|(line, _)| *line),
        Some(bad as u64 + 1)
    );
    Ok(())
}

#[tokio::test]
async fn waymark_shipments_import_reports_bad_lines_and_imports_the_rest() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = daemon_env(dir.path(), 25, 1.0);
    let file = dir.path().join("orders.csv");
    std::fs::write(&file, CSV)?;
    let file_arg = file.display().to_string();

    let output = run_waymark(dir.path(), &env, &["shipments", "import", &file_arg])?;
    assert!(
        !output.status.success(),
        "refused rows must fail the command: {output:?}"
    );
    assert!(output.stdout.contains("imported 2 shipments"), "{output:?}");
    for (line, field) in REFUSED {
        let expected = format!("{file_arg}:{line}: {field}: ");
        assert!(
            output.stderr.contains(&expected),
            "no `{expected}` in\n{}",
            output.stderr
        );
    }
    assert!(
        output.stderr.contains("5 rows refused"),
        "{}",
        output.stderr
    );
    // No progress bar when stderr is not a terminal: plain lines a script can read.
    assert!(
        !output.stderr.contains(['\x1b', '\r']),
        "control characters in {:?}",
        output.stderr
    );

    let store = open_store(&env_value(&env, "WAYMARK_DATABASE_URL")).await?;
    for (number, email) in [
        ("SBX-ONTIME-000101", Some("anna@example.pl")),
        ("SBX-ONTIME-000102", None),
        ("SBX-ONTIME-000103", None),
        ("SBX-ONTIME-000104", None),
        ("SBX-ONTIME-000105", None),
        ("SBX-ONTIME-000106", Some("emma@example.com")),
    ] {
        let found = store
            .shipments_by_number(&TrackingNumber::parse(number)?)
            .await?;
        let emails: Vec<&str> = found
            .iter()
            .filter_map(|s| s.customer.email.as_ref().map(|e| e.as_str()))
            .collect();
        assert_eq!(emails, email.into_iter().collect::<Vec<_>>(), "{number}");
    }
    Ok(())
}

/// A merchant who leaves the carrier out gets it recognised from the number, or is told which
/// carriers it could be.
#[tokio::test]
async fn a_shipment_without_a_carrier_is_recognised_from_its_number() -> anyhow::Result<()> {
    use waymark::domain::CarrierCode;
    let app = crate::helpers::spawn_app().await?;
    app.store()
        .save_carrier_account(&waymark::carriers::CarrierAccount {
            id: uuid::Uuid::now_v7(),
            merchant_id: waymark::domain::MerchantId::DEFAULT,
            carrier: CarrierCode::parse("ups")?,
            name: "default".into(),
            credentials: serde_json::json!({"client_id": "id", "client_secret": "secret"}).into(),
            base_url: None,
            daily_quota: None,
            requests_per_second: None,
        })
        .await?;
    let input = |number: &str| ShipmentInput {
        carrier: String::new(),
        tracking_number: number.into(),
        customer_email: "anna@example.com".into(),
        locale: Some("de".into()),
        destination_country: "DE".into(),
        ..ShipmentInput::default()
    };

    let ups = app.register(&input("1Z5R89390357567127")).await?;
    assert_eq!(ups.carrier.as_str(), "ups");
    let sandbox = app.register(&input("SBX-LATE-000042")).await?;
    assert_eq!(sandbox.carrier.as_str(), "sandbox");

    let unknown = app
        .register(&input("HELLO-1234"))
        .await
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("carrier: not given"), "{unknown}");
    assert!(unknown.contains("matches no carrier"), "{unknown}");

    // A PostNL 3S barcode is also a DHL Parcel format in the Benelux: the merchant must choose.
    let ambiguous = app
        .register(&input("3SABCD1234567"))
        .await
        .unwrap_err()
        .to_string();
    assert!(ambiguous.contains("could be from any of"), "{ambiguous}");
    assert!(
        ambiguous.contains("postnl") && ambiguous.contains("dhl"),
        "{ambiguous}"
    );
    Ok(())
}

/// A sandbox shipment to `country`, with `postal_code` and no time zone.
fn to(seq: u32, country: &str, postal_code: Option<&str>) -> ShipmentInput {
    let mut input = valid(seq);
    input.locale = Some("en".into());
    input.destination_country = country.into();
    input.destination_postal_code = postal_code.map(Into::into);
    input
}

#[tokio::test]
async fn a_customer_in_a_country_of_several_zones_gets_the_zone_of_their_postal_code()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cases = [
        ("US", "94105", "94105", "America/Los_Angeles"), // San Francisco
        ("US", "80202-1234", "80202-1234", "America/Denver"), // Denver
        ("US", "96813", "96813", "Pacific/Honolulu"),    // Honolulu
        ("US", "79901", "79901", "America/Denver"),      // El Paso, Texas
        ("CA", "v6b 1a1", "V6B 1A1", "America/Vancouver"), // Vancouver
        ("CA", "B3H4R2", "B3H 4R2", "America/Halifax"),  // Halifax
        ("AU", "6000", "6000", "Australia/Perth"),       // Perth
        ("AU", "2000", "2000", "Australia/Sydney"),      // Sydney
    ];
    for (seq, (country, given, written, zone)) in (400..).zip(cases) {
        let registered = app.register(&to(seq, country, Some(given))).await?;
        let stored = app.shipment(registered.id).await?;
        assert_eq!(
            stored.customer.time_zone.as_str(),
            zone,
            "{country} {given}"
        );
        assert_eq!(
            stored.destination_postal_code.as_ref().map(|c| c.as_str()),
            Some(written),
            "{country} {given}"
        );
    }

    // A zone the merchant gives wins over the postal code's.
    let mut input = to(420, "US", Some("94105"));
    input.time_zone = Some("America/New_York".into());
    let registered = app.register(&input).await?;
    assert_eq!(registered.customer.time_zone.as_str(), "America/New_York");

    // A country of one zone needs no postal code.
    let registered = app.register(&to(421, "DE", None)).await?;
    assert_eq!(registered.customer.time_zone.as_str(), "Europe/Berlin");
    assert_eq!(registered.destination_postal_code, None);
    Ok(())
}

#[tokio::test]
async fn a_shipment_to_a_country_of_several_zones_without_a_zone_waymark_can_find_is_refused()
-> anyhow::Result<()> {
    let app = &spawn_app().await?;
    let refusal = |input: ShipmentInput| async move {
        let result = intake::register(
            app.store(),
            &app.waymark.carriers,
            MerchantId::DEFAULT,
            &input,
            app.now(),
        )
        .await;
        let message = result.as_ref().err().map(ToString::to_string);
        (refused_fields(result), message.unwrap_or_default())
    };

    // Without a postal code, a US customer used to get New York's clock wherever they lived.
    let (fields, message) = refusal(to(500, "US", None)).await;
    assert_eq!(fields, ["time_zone"]);
    assert_eq!(
        message,
        "time_zone: destination US spans several time zones; give time_zone or a \
         destination_postal_code Waymark can place"
    );
    // Page, Arizona's ZIP code reaches into the Navajo Nation, which keeps summer time.
    let (fields, message) = refusal(to(501, "US", Some("86040"))).await;
    assert_eq!(fields, ["time_zone"]);
    assert!(message.contains("`86040`"), "{message}");
    // A malformed postal code is refused for what it is, not also for the zone.
    let (fields, message) = refusal(to(502, "US", Some("9410"))).await;
    assert_eq!(fields, ["destination_postal_code"]);
    assert!(
        message.contains("`9410` is not a US postal code"),
        "{message}"
    );
    let (fields, _) = refusal(to(503, "CA", Some("V6B 1A"))).await;
    assert_eq!(fields, ["destination_postal_code"]);

    for seq in 500..504 {
        let number = Scenario::OnTime.example_number(seq);
        assert!(app.store().shipments_by_number(&number).await?.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn a_csv_import_reads_the_destination_postal_code() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let csv = "\
tracking_number,customer_email,locale,destination_country,destination_postal_code
SBX-ONTIME-000601,olivia@example.com,en,US,94105
SBX-ONTIME-000602,liam@example.com,en,US,
SBX-ONTIME-000603,emma@example.ca,en,CA,v6b1a1
SBX-ONTIME-000604,anna@example.pl,pl,PL,
";
    let report = intake::import_csv(
        app.store(),
        &app.waymark.carriers,
        MerchantId::DEFAULT,
        csv.as_bytes(),
        app.now(),
    )
    .await?;
    assert_eq!(report.imported, 3, "{report:?}");
    for (number, zone, postal_code) in [
        ("SBX-ONTIME-000601", "America/Los_Angeles", Some("94105")),
        ("SBX-ONTIME-000603", "America/Vancouver", Some("V6B 1A1")),
        ("SBX-ONTIME-000604", "Europe/Warsaw", None),
    ] {
        let found = app
            .store()
            .shipments_by_number(&TrackingNumber::parse(number)?)
            .await?;
        let stored: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|s| {
                (
                    s.customer.time_zone.as_str(),
                    s.destination_postal_code.as_ref().map(|c| c.as_str()),
                )
            })
            .collect();
        assert_eq!(stored, [(zone, postal_code)], "{number}");
    }
    assert_eq!(report.refused, 1, "{report:?}");
    let (line, why) = &report.refusals[0];
    assert_eq!(*line, 3);
    assert!(why.starts_with("time_zone: destination US spans"), "{why}");
    Ok(())
}

#[tokio::test]
async fn waymark_shipments_add_takes_a_postal_code() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = daemon_env(dir.path(), 25, 1.0);
    let add = |number: &str, postal_code: Option<&str>| {
        let mut args = vec![
            "shipments",
            "add",
            "--carrier",
            "sandbox",
            "--tracking-number",
            number,
            "--email",
            "olivia@example.com",
            "--locale",
            "en",
            "--country",
            "US",
        ];
        if let Some(code) = postal_code {
            args.extend(["--postal-code", code]);
        }
        run_waymark(dir.path(), &env, &args)
    };

    let ok = add("SBX-ONTIME-000701", Some("94105"))?;
    assert!(ok.status.success(), "{ok:?}");
    let refused = add("SBX-ONTIME-000702", None)?;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("time_zone: destination US spans several time zones"),
        "{}",
        refused.stderr
    );

    let store = open_store(&env_value(&env, "WAYMARK_DATABASE_URL")).await?;
    let stored = store
        .shipments_by_number(&TrackingNumber::parse("SBX-ONTIME-000701")?)
        .await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].customer.time_zone.as_str(), "America/Los_Angeles");
    let none = store
        .shipments_by_number(&TrackingNumber::parse("SBX-ONTIME-000702")?)
        .await?;
    assert!(none.is_empty());
    Ok(())
}
