//! The `waymark` command for a merchant at a terminal: asking the carrier about a number, and
//! being told exactly which setting is wrong.

use crate::helpers::{daemon_env, run_waymark};

const STATUSES: [&str; 9] = [
    "pending",
    "info_received",
    "in_transit",
    "out_for_delivery",
    "available_for_pickup",
    "attempt_failed",
    "delivered",
    "exception",
    "expired",
];

/// The normalised status on one printed event line (`in_transit` or `in_transit/reason`), and
/// the carrier's raw code (`[PU]`).
fn status_and_code(line: &str) -> Option<(String, String)> {
    let status = line.split_whitespace().find_map(|token| {
        let status = token.split('/').next().unwrap_or_default();
        STATUSES.contains(&status).then(|| status.to_owned())
    })?;
    let code = line
        .split_whitespace()
        .find(|t| t.starts_with('[') && t.ends_with(']'))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    Some((status, code))
}

#[test]
fn waymark_track_prints_the_normalised_timeline() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = daemon_env(dir.path(), 25, 1.0);
    let output = run_waymark(dir.path(), &env, &["track", "SBX-ONTIME-000001"])?;
    assert!(output.status.success(), "{output:?}");

    let mut lines = output.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("sandbox SBX-ONTIME-000001: 10 events"),
        "{}",
        output.stdout
    );
    let events: Vec<(String, String)> = output
        .stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(status_and_code)
        .collect();
    let statuses: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    let codes: Vec<&str> = events.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "info_received",
            "in_transit",
            "in_transit",
            "in_transit",
            "in_transit",
            "in_transit",
            "in_transit",
            "in_transit",
            "out_for_delivery",
            "delivered"
        ],
        "{}",
        output.stdout
    );
    assert_eq!(
        codes,
        ["LC", "PU", "AR", "DP", "AR", "DP", "AR", "AD", "OD", "DL"]
    );
    let delivered = output
        .stdout
        .lines()
        .find(|l| l.contains("[DL]"))
        .unwrap_or_default();
    assert!(delivered.contains("Berlin, DE"), "{delivered}");
    assert!(
        output.stdout.contains("signed by: M. SCHNEIDER"),
        "{}",
        output.stdout
    );

    // An unknown carrier is named as such.
    let output = run_waymark(
        dir.path(),
        &env,
        &["track", "SBX-ONTIME-000001", "--carrier", "dhl_express"],
    )?;
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("carrier: unknown carrier"),
        "{}",
        output.stderr
    );
    Ok(())
}

#[test]
fn a_bad_setting_stops_the_start_and_is_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database = dir.path().join("waymark.db");
    for (key, value, named) in [
        (
            "WAYMARK_PUBLIC_URL",
            "track.shop.test",
            "public_url `track.shop.test`",
        ),
        ("WAYMARK_QUIET_HOURS__END", "8am", "quiet_hours.end `8am`"),
        ("WAYMARK_EMAIL__FROM", "not an address", "email.from"),
        (
            "WAYMARK_DISPATCHER__MAX_ATTEMPTS",
            "0",
            "dispatcher.max_attempts",
        ),
        ("WAYMARK_MERCHANT_NMAE", "typo", "merchant_nmae"),
    ] {
        let mut env = daemon_env(dir.path(), 25, 1.0);
        env.push((key.to_owned(), value.to_owned()));
        let output = run_waymark(dir.path(), &env, &["serve"])?;
        assert!(
            !output.status.success(),
            "{key}={value} was accepted: {output:?}"
        );
        assert!(
            output.stderr.contains(named),
            "{key}={value}: {}",
            output.stderr
        );
        assert!(!database.exists(), "{key}={value}: started anyway");
    }
    Ok(())
}

/// `waymark --help` offers `WAYMARK_CONFIG` for the config file, and `WAYMARK_LOG` sets the log
/// filter: both share the prefix of the configuration's own variables and must not be taken
/// for settings.
#[test]
fn the_config_file_can_be_named_in_the_environment() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // `daemon_env` names a file that does not exist: defaults and the environment apply.
    let mut env = daemon_env(dir.path(), 25, 1.0);
    env.push(("WAYMARK_LOG".to_owned(), "warn".to_owned()));
    let output = run_waymark(dir.path(), &env, &["migrate"])?;
    assert!(output.status.success(), "{}", output.stderr);
    assert!(
        output.stdout.contains("database is up to date"),
        "{output:?}"
    );

    // A file that exists is read: its mistake is named.
    std::fs::write(
        dir.path().join("custom.toml"),
        "[dispatcher]\nmax_attempts = 0\n",
    )?;
    for (key, value) in &mut env {
        if key == "WAYMARK_CONFIG" {
            *value = dir.path().join("custom.toml").display().to_string();
        }
    }
    let output = run_waymark(dir.path(), &env, &["migrate"])?;
    assert!(!output.status.success(), "{output:?}");
    assert!(
        output.stderr.contains("dispatcher.max_attempts"),
        "{}",
        output.stderr
    );
    Ok(())
}

/// The way a merchant checks their DHL credentials: `waymark track --carrier dhl NUMBER` with the
/// key in the environment. The real endpoint cannot be reached here, so the same code path runs
/// against a stand-in serving DHL's published example answer.
#[tokio::test]
async fn waymark_track_asks_the_carrier_with_credentials_from_the_environment() -> anyhow::Result<()>
{
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let dhl = MockServer::start().await;
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/carriers/dhl/example_response.json"
    ))?;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .and(query_param("trackingNumber", "7777777770"))
        .and(header("DHL-API-Key", "merchant-key"))
        .respond_with(ResponseTemplate::new(200).set_body_string(example))
        .mount(&dhl)
        .await;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .and(header("DHL-API-Key", "wrong-key"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string(
                r#"{"status":401,"title":"Unauthorized","detail":"Invalid API key"}"#,
            ),
        )
        .mount(&dhl)
        .await;

    let dir = tempfile::tempdir()?;
    let run = |key: &'static str| {
        let mut env = daemon_env(dir.path(), 25, 1.0);
        env.push(("WAYMARK_CARRIER_ACCOUNTS__DHL__API_KEY".into(), key.into()));
        env.push(("WAYMARK_CARRIER_ACCOUNTS__DHL__BASE_URL".into(), dhl.uri()));
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            run_waymark(&dir, &env, &["track", "--carrier", "dhl", "7777777770"])
        })
    };

    let output = run("merchant-key").await??;
    assert!(output.status.success(), "{output:?}");
    let stdout = &output.stdout;
    assert!(stdout.starts_with("dhl 7777777770:"), "{stdout}");
    assert!(stdout.contains("delivered"), "{stdout}");
    assert!(stdout.contains("AMSTERDAM, NL"), "{stdout}");
    assert!(stdout.contains("signed by: John"), "{stdout}");
    assert!(
        stdout.contains("estimated delivery: 2018-08-03"),
        "{stdout}"
    );

    let refused = run("wrong-key").await??;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("authentication failed"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Invalid API key"),
        "{}",
        refused.stderr
    );
    Ok(())
}
