//! The merchant API over a real socket: what a shop system does with it, what it refuses and
//! how, and that one merchant never reaches another's data.

use jiff::Timestamp;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;
use waymark::domain::{Merchant, MerchantId, MerchantSlug};

use crate::helpers::{TestApp, daemon_env, key_for, run_waymark, spawn_app, spawn_app_with};

/// `waymark serve`'s HTTP side for a test app, on a free port.
struct Api {
    base: String,
    client: Client,
    stop: tokio_util::sync::CancellationToken,
}

impl Api {
    async fn serve(app: &TestApp) -> anyhow::Result<Api> {
        let (base, stop, _server) = crate::helpers::serve_http(app).await?;
        Ok(Api {
            base: format!("{base}/api/v1"),
            client: Client::new(),
            stop,
        })
    }

    fn request(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    /// Send `body` as JSON (or nothing) and read the answer as JSON (or `null` when empty).
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.request(method, path, key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        };
        Ok((status, value))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A merchant with a sandbox account and an API key; returns its id and the key.
async fn merchant(app: &TestApp, slug: &str) -> anyhow::Result<(MerchantId, String)> {
    let merchant = Merchant {
        id: MerchantId::new(),
        slug: MerchantSlug::parse(slug)?,
        name: format!("Shop {slug}"),
        created_at: Timestamp::now(),
    };
    app.store().create_merchant(&merchant).await?;
    app.waymark.ensure_sandbox_account(merchant.id).await?;
    Ok((merchant.id, key_for(app, merchant.id).await?))
}

/// The fields a problem's `errors` name.
fn error_fields(problem: &Value) -> HashSet<&str> {
    problem["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

fn new_shipment(number: &str) -> Value {
    json!({
        "carrier": "sandbox",
        "tracking_number": number,
        "customer_email": "lena.vogel@example.de",
        "customer_name": "Lena Vogel",
        "customer_phone": "0151 23456789",
        "locale": "de",
        "destination_country": "DE",
        "destination_postal_code": "10115",
        "order_reference": "WM-2001",
        "promise": "2099-03-04..2099-03-06",
    })
}

#[tokio::test]
async fn a_merchant_registers_follows_changes_and_erases_a_shipment() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "shop-a").await?;

    // Its own carrier account; the credential goes in and never comes out.
    let (status, account) = api
        .call(
            Method::POST,
            "/carrier-accounts",
            &key,
            Some(json!({"carrier": "sandbox", "name": "main",
                        "credentials": {"api_key": "sandbox-secret-4711"}})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["credential_names"], json!(["api_key"]));
    assert!(!account.to_string().contains("sandbox-secret-4711"));
    let (status, again) = api
        .call(
            Method::POST,
            "/carrier-accounts",
            &key,
            Some(json!({"carrier": "sandbox", "name": "main"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, accounts) = api
        .call(Method::GET, "/carrier-accounts", &key, None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accounts.as_array().map(Vec::len), Some(2), "{accounts}");
    let account_path = format!(
        "/carrier-accounts/{}",
        account["id"].as_str().unwrap_or_default()
    );
    let (status, tested) = api
        .call(
            Method::POST,
            &format!("{account_path}/test"),
            &key,
            Some(json!({"tracking_number": "SBX-ONTIME-000501"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["outcome"], "ok", "{tested}");
    let (status, changed) = api
        .call(
            Method::PATCH,
            &account_path,
            &key,
            Some(json!({"daily_quota": 500, "base_url": "ftp://nope"})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{changed}");
    assert_eq!(changed["field"], "base_url");
    let (status, changed) = api
        .call(
            Method::PATCH,
            &account_path,
            &key,
            Some(json!({"daily_quota": 500})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["daily_quota"], 500);
    assert_eq!(
        changed["credential_names"],
        json!(["api_key"]),
        "credentials stay"
    );
    let (_, spare) = api
        .call(
            Method::POST,
            "/carrier-accounts",
            &key,
            Some(json!({"carrier": "dhl", "name": "spare"})),
        )
        .await?;
    let spare_path = format!(
        "/carrier-accounts/{}",
        spare["id"].as_str().unwrap_or_default()
    );
    let (status, _) = api.call(Method::DELETE, &spare_path, &key, None).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(Method::GET, &spare_path, &key, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut body = new_shipment("SBX-ONTIME-000501");
    body["account"] = json!("main");
    let (status, created) = api
        .call(Method::POST, "/shipments", &key, Some(body.clone()))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["customer_phone"], "+4915123456789");
    assert_eq!(created["carrier_account_id"], account["id"]);
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        created["tracking_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://track.shop.test/t/"))
    );

    // The natural key: the same number on the account is a 409 that hands back the shipment.
    let (status, duplicate) = api
        .call(Method::POST, "/shipments", &key, Some(body))
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{duplicate}");
    assert_eq!(duplicate["code"], "duplicate");
    assert_eq!(duplicate["field"], "tracking_number");
    assert_eq!(duplicate["existing"]["id"], json!(id));

    // An account shipments are registered on stays.
    let (status, in_use) = api.call(Method::DELETE, &account_path, &key, None).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{in_use}");
    assert_eq!(in_use["code"], "in_use");

    // The journey plays out; the API shows the timeline, the estimates and the messages.
    app.run_until_done().await?;
    let (status, detail) = api
        .call(Method::GET, &format!("/shipments/{id}"), &key, None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["status"], "delivered");
    assert!(
        detail["timeline"].as_array().is_some_and(|t| t.len() >= 3),
        "{detail}"
    );
    assert!(
        detail["estimate_history"]
            .as_array()
            .is_some_and(|h| h.iter().any(|c| c["source"] == "promise")),
        "{detail}"
    );
    let sent: Vec<&Value> = detail["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["state"] == "sent").collect())
        .unwrap_or_default();
    assert!(!sent.is_empty(), "{detail}");

    // Changes: contact details and the promise, refused field by field when wrong.
    let (status, changed) = api
        .call(
            Method::PATCH,
            &format!("/shipments/{id}"),
            &key,
            Some(json!({"customer_name": "Lena V.", "promise": "2099-03-05", "muted": true})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["customer_name"], "Lena V.");
    assert_eq!(changed["promise"]["earliest"], "2099-03-05");
    assert_eq!(changed["muted"], true);
    let (status, refused) = api
        .call(
            Method::PATCH,
            &format!("/shipments/{id}"),
            &key,
            Some(json!({"customer_email": "nope", "locale": "fr!"})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let fields = error_fields(&refused);
    assert_eq!(fields, HashSet::from(["customer_email", "locale"]));

    // Erasure keeps anonymous statistics only, and the shipment stays listed as erased.
    let (status, _) = api
        .call(Method::DELETE, &format!("/shipments/{id}"), &key, None)
        .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, erased) = api
        .call(Method::GET, &format!("/shipments/{id}"), &key, None)
        .await?;
    assert!(erased["erased_at"].is_string(), "{erased}");
    assert_eq!(erased["customer_email"], Value::Null);
    assert_eq!(erased["customer_name"], Value::Null);
    assert_eq!(erased["customer_phone"], Value::Null);
    assert_eq!(erased["tracking_url"], Value::Null);
    assert_eq!(erased["status"], "delivered");
    assert!(!erased.to_string().contains("Lena"), "{erased}");
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/shipments/{id}"),
            &key,
            Some(json!({"muted": false})),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT);
    Ok(())
}

#[tokio::test]
async fn an_idempotency_key_answers_a_retry_with_the_first_answer() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "shop-a").await?;
    let body = new_shipment("SBX-ONTIME-000601");
    let send = |body: &Value, idempotency: &str| {
        api.request(Method::POST, "/shipments", &key)
            .header("Idempotency-Key", idempotency)
            .json(body)
            .send()
    };
    let first = send(&body, "order-2001").await?;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await?;
    let retry = send(&body, "order-2001").await?;
    assert_eq!(
        retry.status(),
        StatusCode::CREATED,
        "a retry is not a conflict"
    );
    assert_eq!(retry.json::<Value>().await?, first);
    let mut other = body.clone();
    other["tracking_number"] = json!("SBX-ONTIME-000602");
    let reused = send(&other, "order-2001").await?;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reused.json::<Value>().await?["code"],
        "idempotency_key_reused"
    );
    // Keys are per merchant: another merchant's same key is its own.
    let (_, key_b) = merchant(&app, "shop-b").await?;
    let theirs = api
        .request(Method::POST, "/shipments", &key_b)
        .header("Idempotency-Key", "order-2001")
        .json(&body)
        .send()
        .await?;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    Ok(())
}

#[tokio::test]
async fn another_merchants_key_gets_404_for_everything_of_the_first() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key_a) = merchant(&app, "shop-a").await?;
    let (_, key_b) = merchant(&app, "shop-b").await?;
    let (_, shipment) = api
        .call(
            Method::POST,
            "/shipments",
            &key_a,
            Some(new_shipment("SBX-ONTIME-000701")),
        )
        .await?;
    let (_, accounts) = api
        .call(Method::GET, "/carrier-accounts", &key_a, None)
        .await?;
    let shipment_id = shipment["id"].as_str().unwrap_or_default();
    let account_id = accounts[0]["id"].as_str().unwrap_or_default();
    let routes = [
        (Method::GET, format!("/shipments/{shipment_id}"), None),
        (
            Method::PATCH,
            format!("/shipments/{shipment_id}"),
            Some(json!({"muted": true})),
        ),
        (Method::DELETE, format!("/shipments/{shipment_id}"), None),
        (Method::GET, format!("/carrier-accounts/{account_id}"), None),
        (
            Method::PATCH,
            format!("/carrier-accounts/{account_id}"),
            Some(json!({"name": "mine now"})),
        ),
        (
            Method::DELETE,
            format!("/carrier-accounts/{account_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/carrier-accounts/{account_id}/test"),
            Some(json!({"tracking_number": "SBX-ONTIME-000701"})),
        ),
    ];
    for (method, path, body) in &routes {
        let (status, problem) = api.call(method.clone(), path, &key_b, body.clone()).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
        assert_eq!(problem["code"], "not_found");
        // The same words as for something that never existed.
        let (_, never) = api
            .call(
                method.clone(),
                &path
                    .replace(shipment_id, &Uuid::now_v7().to_string())
                    .replace(account_id, &Uuid::now_v7().to_string()),
                &key_b,
                body.clone(),
            )
            .await?;
        assert_eq!(problem, never, "{method} {path}");
    }
    // Lists and their filters show B nothing of A's.
    for query in [
        "",
        "?order_reference=WM-2001",
        "?carrier=sandbox",
        "?status=pending",
    ] {
        let (status, page) = api
            .call(Method::GET, &format!("/shipments{query}"), &key_b, None)
            .await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["shipments"], json!([]), "{query}: {page}");
    }
    let (_, theirs) = api
        .call(Method::GET, "/carrier-accounts", &key_b, None)
        .await?;
    assert!(!theirs.to_string().contains(account_id));
    // A's shipment is untouched by all of it.
    let (status, mine) = api
        .call(
            Method::GET,
            &format!("/shipments/{shipment_id}"),
            &key_a,
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["muted"], false);
    assert_eq!(mine["erased_at"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn refusals_are_problem_json_with_a_code_and_the_field() -> anyhow::Result<()> {
    let app = spawn_app_with(|config| {
        config.http.api_requests_per_second = 1;
        config.http.api_burst = 30;
    })
    .await?;
    let api = Api::serve(&app).await?;
    let (merchant_id, key) = merchant(&app, "shop-a").await?;

    let problem = |response: reqwest::Response| async move {
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(kind, "application/problem+json", "{status}");
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(body["status"], status.as_u16());
        (status, body)
    };
    let url = format!("{}/shipments", api.base);

    let (status, body) = problem(api.client.get(&url).send().await?).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = problem(
        api.client
            .get(&url)
            .bearer_auth("wm_guessed_key")
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let post = || api.request(Method::POST, "/shipments", &key);
    let (status, body) = problem(post().body("tracking_number=1").send().await?).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, body) = problem(
        post()
            .header("content-type", "application/json")
            .body("{\"tracking_number\": ")
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, body) = problem(post().json(&json!({"tracking_number": "X"})).send().await?).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "customer_email", "{body}");
    let mut wrong = new_shipment("SBX-ONTIME-000801");
    wrong["customer_email"] = json!("not-an-address");
    wrong["destination_country"] = json!("Germany");
    let (status, body) = problem(post().json(&wrong).send().await?).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_field");
    let fields = error_fields(&body);
    assert_eq!(
        fields,
        HashSet::from(["customer_email", "destination_country"])
    );
    let mut wrong = new_shipment("SBX-ONTIME-000803");
    wrong["customer_phone"] = json!("0151");
    let (_, body) = problem(post().json(&wrong).send().await?).await;
    assert_eq!(body["field"], "customer_phone", "{body}");
    let mut huge = new_shipment("SBX-ONTIME-000802");
    huge["customer_name"] = json!("x".repeat(waymark::api::MAX_JSON_BODY));
    let (status, body) = problem(post().json(&huge).send().await?).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let (status, body) = problem(
        api.request(Method::GET, "/shipments?limit=0", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
    let (status, body) = problem(
        api.request(Method::GET, "/shipments/not-an-id", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = problem(
        api.request(Method::GET, "/nothing-here", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A revoked key stops working at once.
    let revoked = key_for(&app, merchant_id).await?;
    let prefix = &revoked[..11];
    let (status, _) = api.call(Method::GET, "/shipments", &revoked, None).await?;
    assert_eq!(status, StatusCode::OK);
    app.store()
        .revoke_api_key(merchant_id, prefix, Timestamp::now())
        .await?
        .expect("the key exists");
    let (status, _) = problem(
        api.request(Method::GET, "/shipments", &revoked)
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Past its burst, a key waits; `Retry-After` says how long.
    let mut limited = None;
    for _ in 0..40 {
        let response = api
            .request(Method::GET, "/carrier-accounts", &key)
            .send()
            .await?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("a key is limited past its burst");
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (_, body) = problem(limited).await;
    assert_eq!(body["code"], "rate_limited");
    Ok(())
}

#[tokio::test]
async fn pages_list_every_shipment_once_while_more_are_registered() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "shop-a").await?;
    let mut registered = HashSet::new();
    for seq in 0..25 {
        let (status, created) = api
            .call(
                Method::POST,
                "/shipments",
                &key,
                Some(new_shipment(&format!("SBX-ONTIME-0009{seq:02}"))),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        registered.insert(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/shipments?limit=10&cursor={c}"),
            None => "/shipments?limit=10".to_owned(),
        };
        let (status, page) = api.call(Method::GET, &path, &key, None).await?;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for shipment in page["shipments"].as_array().into_iter().flatten() {
            seen.push(shipment["id"].as_str().unwrap_or_default().to_owned());
        }
        // Registered between pages: newer than every page, so never in a later one.
        api.call(
            Method::POST,
            "/shipments",
            &key,
            Some(new_shipment(&format!("SBX-ONTIME-0008{pages:02}"))),
        )
        .await?;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a shipment was listed twice");
    assert_eq!(
        unique, registered,
        "every shipment registered before, each once"
    );
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    // Filters narrow the walk.
    let (_, filtered) = api
        .call(Method::GET, "/shipments?status=delivered", &key, None)
        .await?;
    assert_eq!(filtered["shipments"], json!([]));
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let document: Value = api
        .client
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "DELETE /carrier-accounts/{id}",
            "DELETE /settings/logo",
            "DELETE /shipments/{id}",
            "DELETE /templates/email/{language}/{file}",
            "GET /carrier-accounts",
            "GET /carrier-accounts/{id}",
            "GET /delivery-changes",
            "GET /delivery-changes/{id}",
            "GET /settings",
            "GET /shipments",
            "GET /shipments/{id}",
            "GET /templates",
            "PATCH /carrier-accounts/{id}",
            "PATCH /shipments/{id}",
            "POST /carrier-accounts",
            "POST /carrier-accounts/{id}/test",
            "POST /delivery-changes/{id}/approve",
            "POST /delivery-changes/{id}/reject",
            "POST /previews",
            "POST /shipments",
            "POST /shipments/import",
            "PUT /settings",
            "PUT /settings/logo",
            "PUT /templates/email/{language}/{file}",
        ]
    );
    // Every documented route exists: without a key it is refused as unauthorized, not unknown.
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap_or_default();
        let path = path
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{language}", "de")
            .replace("{file}", "delivered.html");
        let response = api
            .client
            .request(method.parse()?, format!("{}{path}", api.base))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{route}");
    }
    // And it is a valid OpenAPI 3.1 document, as an independent validator reads it.
    let file = app.dir().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document)?)?;
    let python = std::env::var("WAYMARK_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let output = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()?;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn credentials_are_nowhere_in_the_database_files() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "shop-a").await?;
    let through_api = "api-secret-7f3c9e1d";
    let (status, _) = api
        .call(
            Method::POST,
            "/carrier-accounts",
            &key,
            Some(json!({"carrier": "dhl", "credentials": {"api_key": through_api}})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED);

    // And through the CLI, on the same database and key file.
    let through_cli = "cli-secret-2b8a4c6e";
    let mut env = daemon_env(app.dir(), app.smtp.port, 1.0);
    env.retain(|(k, _)| k != "WAYMARK_DATABASE_URL");
    env.push(("WAYMARK_DATABASE_URL".into(), app.database_url().to_owned()));
    let output = run_waymark(
        app.dir(),
        &env,
        &[
            "accounts",
            "add",
            "--carrier",
            "ups",
            "--credential",
            &format!("client_secret={through_cli}"),
            "--credential",
            "client_id=waymark",
        ],
    )?;
    assert!(output.status.success(), "{output:?}");
    let listed = run_waymark(app.dir(), &env, &["accounts", "list"])?;
    assert!(listed.stdout.contains("client_secret"), "{listed:?}");
    for secret in [through_api, through_cli] {
        assert!(!listed.stdout.contains(secret) && !listed.stderr.contains(secret));
    }
    // The secrets still open for the pollers.
    let ups = waymark::domain::CarrierCode::parse("ups")?;
    let account = app
        .store()
        .carrier_account_by_name(MerchantId::DEFAULT, &ups, "default")
        .await?
        .expect("the CLI's account");
    assert_eq!(
        account.credentials.expose("client_secret"),
        Some(through_cli)
    );

    let database = app
        .database_url()
        .trim_start_matches("sqlite://")
        .to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{database}{suffix}");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for secret in [through_api, through_cli] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in {path}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn merchants_and_their_keys_are_managed_with_the_cli() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let mut env = daemon_env(app.dir(), app.smtp.port, 1.0);
    env.retain(|(k, _)| k != "WAYMARK_DATABASE_URL");
    env.push(("WAYMARK_DATABASE_URL".into(), app.database_url().to_owned()));
    let run = |args: &[&str]| run_waymark(app.dir(), &env, args);

    let created = run(&[
        "merchants",
        "create",
        "shop-berlin",
        "--name",
        "Shop Berlin",
    ])?;
    assert!(created.status.success(), "{created:?}");
    let again = run(&[
        "merchants",
        "create",
        "shop-berlin",
        "--name",
        "Shop Berlin",
    ])?;
    assert!(
        !again.status.success() && again.stderr.contains("slug"),
        "{again:?}"
    );
    let bad = run(&["merchants", "create", "Shop Berlin", "--name", "x"])?;
    assert!(
        !bad.status.success() && bad.stderr.contains("slug"),
        "{bad:?}"
    );
    let listed = run(&["merchants", "list"])?;
    assert!(
        listed.stdout.contains("default") && listed.stdout.contains("shop-berlin"),
        "{listed:?}"
    );

    let made = run(&[
        "api-keys",
        "create",
        "--merchant",
        "shop-berlin",
        "--name",
        "ERP",
    ])?;
    assert!(made.status.success(), "{made:?}");
    let key = made.stdout.trim().to_owned();
    assert!(key.starts_with("wm_") && key.len() == 44, "{key}");
    let (status, page) = api.call(Method::GET, "/shipments", &key, None).await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, accounts) = api
        .call(Method::GET, "/carrier-accounts", &key, None)
        .await?;
    assert_eq!(
        accounts[0]["carrier"], "sandbox",
        "a new merchant can try the sandbox at once"
    );

    let keys = run(&["api-keys", "list", "--merchant", "shop-berlin"])?;
    assert!(
        keys.stdout.contains(&key[..11]) && keys.stdout.contains("ERP"),
        "{keys:?}"
    );
    assert!(
        !keys.stdout.contains(&key[12..]),
        "the key is shown once only"
    );
    assert!(
        !run(&["api-keys", "list"])?.stdout.contains(&key[..11]),
        "keys are per merchant"
    );
    let unknown = run(&["api-keys", "list", "--merchant", "nobody"])?;
    assert!(
        !unknown.status.success() && unknown.stderr.contains("merchant"),
        "{unknown:?}"
    );

    let revoked = run(&[
        "api-keys",
        "revoke",
        "--merchant",
        "shop-berlin",
        &key[..11],
    ])?;
    assert!(revoked.status.success(), "{revoked:?}");
    let (status, _) = api.call(Method::GET, "/shipments", &key, None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let keys = run(&["api-keys", "list", "--merchant", "shop-berlin"])?;
    assert!(keys.stdout.contains("revoked"), "{keys:?}");
    Ok(())
}

fn branding() -> Value {
    json!({
        "branding": {
            "sender_name": "Laden Berlin",
            "sender_address": "hallo@laden.example",
            "reply_to": "hilfe@laden.example",
            "logo_url": "https://laden.example/logo.png",
            "primary_colour": "#0f766e",
            "support_email": "hilfe@laden.example",
            "support_url": "https://laden.example/hilfe",
            "legal_footer": "Laden Berlin GmbH, Marktplatz 1, 10115 Berlin, HRB 12345"
        },
        "notifications": {"channels": {"stalled": []}}
    })
}

#[tokio::test]
async fn a_merchants_branding_reaches_its_previews_and_its_customers() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "laden").await?;
    let (_, other) = merchant(&app, "other").await?;

    let (status, unset) = api.call(Method::GET, "/settings", &key, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unset["branding"]["sender_name"], Value::Null);
    let (status, saved) = api
        .call(Method::PUT, "/settings", &key, Some(branding()))
        .await?;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (_, read) = api.call(Method::GET, "/settings", &key, None).await?;
    assert_eq!(read, saved);
    let mut wrong = branding();
    wrong["branding"]["primary_colour"] = json!("teal");
    wrong["branding"]["support_url"] = json!("http://laden.example/hilfe");
    let (status, refused) = api
        .call(Method::PUT, "/settings", &key, Some(wrong))
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let fields = error_fields(&refused);
    assert_eq!(
        fields,
        HashSet::from(["branding.primary_colour", "branding.support_url"])
    );
    let (_, others) = api.call(Method::GET, "/settings", &other, None).await?;
    assert_eq!(
        others["branding"]["sender_name"],
        Value::Null,
        "settings are per merchant"
    );

    // A sample preview in German carries the branding.
    let (status, sample) = api
        .call(
            Method::POST,
            "/previews",
            &key,
            Some(json!({"trigger": "available_for_pickup", "locale": "de"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{sample}");
    let html = sample["html"].as_str().unwrap_or_default();
    for expected in [
        "https://laden.example/logo.png",
        "#0f766e",
        "mailto:hilfe@laden.example",
        "Laden Berlin GmbH",
        "Kiosk am Markt",
    ] {
        assert!(html.contains(expected), "no {expected} in {html}");
    }
    assert!(
        sample["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Fragen zu Ihrer Bestellung")
    );
    assert!(!sample["subject"].as_str().unwrap_or_default().is_empty());

    // A preview of a real shipment names it; another merchant's is not found.
    let (_, shipment) = api
        .call(
            Method::POST,
            "/shipments",
            &key,
            Some(new_shipment("SBX-ONTIME-001001")),
        )
        .await?;
    let id = shipment["id"].as_str().unwrap_or_default();
    let (status, real) = api
        .call(
            Method::POST,
            "/previews",
            &key,
            Some(json!({"trigger": "out_for_delivery", "shipment_id": id})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{real}");
    assert!(
        real["text"]
            .as_str()
            .unwrap_or_default()
            .contains("SBX-ONTIME-001001")
    );
    assert!(
        real["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Lena Vogel"),
        "{real}"
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/previews",
            &other,
            Some(json!({"trigger": "out_for_delivery", "shipment_id": id})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(
            Method::POST,
            "/previews",
            &key,
            Some(json!({"trigger": "teleported"})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Its tracking page is signed with its name and support contact.
    let page_url = shipment["tracking_url"]
        .as_str()
        .unwrap_or_default()
        .replace(
            crate::helpers::PUBLIC_URL,
            api.base.trim_end_matches("/api/v1"),
        );
    let page = api.client.get(&page_url).send().await?.text().await?;
    assert!(
        page.contains("Laden Berlin") && page.contains("mailto:hilfe@laden.example"),
        "{page}"
    );
    assert!(page.contains("HRB 12345"), "the legal line: {page}");

    // The customer's emails come from the merchant, with its look.
    app.run_until_done().await?;
    let emails: Vec<_> = app
        .smtp
        .emails()?
        .into_iter()
        .filter(|e| e.shipment_id() == id)
        .collect();
    assert!(!emails.is_empty());
    for email in &emails {
        let from = email.header("From").unwrap_or_default();
        assert!(from.contains("hallo@laden.example"), "{from}");
        assert!(from.contains("Laden Berlin"), "{from}");
        let reply_to = email.header("Reply-To").unwrap_or_default();
        assert!(reply_to.contains("hilfe@laden.example"), "{reply_to}");
        assert!(
            email.text().contains("Laden Berlin GmbH"),
            "{}",
            email.text()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_trigger_the_merchant_turned_off_is_not_sent() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "laden").await?;
    let (status, _) = api
        .call(
            Method::PUT,
            "/settings",
            &key,
            Some(json!({"notifications": {"channels": {"delivered": [], "out_for_delivery": []}}})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, shipment) = api
        .call(
            Method::POST,
            "/shipments",
            &key,
            Some(new_shipment("SBX-ONTIME-001101")),
        )
        .await?;
    let id = shipment["id"].as_str().unwrap_or_default();
    app.run_until_done().await?;
    let (_, detail) = api
        .call(Method::GET, &format!("/shipments/{id}"), &key, None)
        .await?;
    let states: Vec<(String, String)> = detail["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["trigger"].as_str().unwrap_or_default().to_owned(),
                m["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&("delivered".into(), "suppressed".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("shipped".into(), "sent".into())),
        "{states:?}"
    );
    let sent: Vec<String> = app
        .smtp
        .emails()?
        .iter()
        .filter(|e| e.shipment_id() == id)
        .map(|e| e.trigger())
        .collect();
    assert!(!sent.contains(&"delivered".to_owned()), "{sent:?}");
    assert!(!sent.contains(&"out_for_delivery".to_owned()), "{sent:?}");
    Ok(())
}

#[tokio::test]
async fn rotating_the_master_key_seals_every_credential_again() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = daemon_env(dir.path(), 25, 1.0);
    let run = |args: &[&str]| run_waymark(dir.path(), &env, args);
    let added = run(&[
        "accounts",
        "add",
        "--carrier",
        "dhl",
        "--credential",
        "api_key=rotate-me-5d1e",
    ])?;
    assert!(added.status.success(), "{added:?}");
    let key_file = dir.path().join("waymark.db.key");
    let database_url = format!("sqlite://{}", dir.path().join("waymark.db").display());
    let before = stored_credentials(&database_url).await?;
    assert!(before.iter().all(|c| c.starts_with("wmk1.")), "{before:?}");

    let rotated = run(&["keys", "rotate"])?;
    assert!(rotated.status.success(), "{rotated:?}");
    let keys: Vec<String> = std::fs::read_to_string(&key_file)?
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        keys.len(),
        2,
        "the new key first, the old one kept: {keys:?}"
    );
    let after = stored_credentials(&database_url).await?;
    assert!(
        after
            .iter()
            .all(|c| c.starts_with(&format!("wmk1.{}.", keys[0]))),
        "{after:?} not all under {}",
        keys[0]
    );
    // The credential still opens, with the key file as it now is.
    let store = crate::helpers::open_store(&database_url).await?;
    let dhl = waymark::domain::CarrierCode::parse("dhl")?;
    let account = store
        .carrier_account_by_name(MerchantId::DEFAULT, &dhl, "default")
        .await?
        .expect("the account");
    assert_eq!(
        account.credentials.expose("api_key"),
        Some("rotate-me-5d1e")
    );
    Ok(())
}

/// Every account's stored `credentials` column, as the file holds it.
async fn stored_credentials(database_url: &str) -> anyhow::Result<Vec<String>> {
    Ok(
        waymark::store::inspect::text_column(database_url, "carrier_accounts", "credentials")
            .await?
            .into_iter()
            .flatten()
            .collect(),
    )
}

#[tokio::test]
async fn a_csv_file_over_the_api_imports_the_good_rows_and_reports_the_bad() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "shop-a").await?;
    let (_, key_b) = merchant(&app, "shop-b").await?;
    let csv = "tracking_number,customer_email,locale,destination_country,order_reference\n\
               SBX-ONTIME-001201,anna@example.com,de,DE,A-1\n\
               SBX-ONTIME-001202,not-an-address,de,DE,A-2\n\
               SBX-LATE-001203,olivia@example.com,en,GB,A-3\n";
    let upload = |key: &str, kind: &str| {
        api.request(Method::POST, "/shipments/import", key)
            .header("content-type", kind)
            .body(csv)
            .send()
    };
    let response = upload(&key, "text/csv").await?;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await?;
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["refused"], 1);
    assert_eq!(report["refusals"][0]["line"], 3);
    assert!(
        report["refusals"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("customer_email: ")),
        "{report}"
    );
    let (_, page) = api
        .call(Method::GET, "/shipments?order_reference=A-3", &key, None)
        .await?;
    assert_eq!(page["shipments"][0]["tracking_number"], "SBX-LATE-001203");
    // The same file again: every number is taken on this merchant's account, not on another's.
    let again: Value = upload(&key, "text/csv").await?.json().await?;
    assert_eq!(
        (again["imported"].as_u64(), again["refused"].as_u64()),
        (Some(0), Some(3))
    );
    let theirs: Value = upload(&key_b, "text/csv").await?.json().await?;
    assert_eq!(theirs["imported"], 2, "{theirs}");
    let response = upload(&key, "application/json").await?;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Larger than a JSON body may be, smaller than the file limit.
    let mut big = String::from("tracking_number,customer_email,locale,destination_country\n");
    for seq in 0..8000 {
        big.push_str(&format!("SBX-ONTIME-2{seq:05},anna@example.com,de,DE\n"));
    }
    assert!(big.len() > waymark::api::MAX_JSON_BODY);
    let response = api
        .request(Method::POST, "/shipments/import", &key)
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await?;
    assert_eq!(report["imported"], 8000, "{report}");
    Ok(())
}

#[tokio::test]
async fn a_merchants_own_template_replaces_the_bundled_one_for_its_customers_only()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let api = Api::serve(&app).await?;
    let (_, key) = merchant(&app, "laden").await?;
    let (_, other) = merchant(&app, "other").await?;
    let path = "/templates/email/de/delivered.subject.txt";
    let subject = |key: String| {
        let api = &api;
        async move {
            let (status, preview) = api
                .call(
                    Method::POST,
                    "/previews",
                    &key,
                    Some(json!({"trigger": "delivered", "locale": "de"})),
                )
                .await?;
            anyhow::ensure!(status == StatusCode::OK, "{preview}");
            Ok(preview["subject"].as_str().unwrap_or_default().to_owned())
        }
    };
    let bundled = subject(key.clone()).await?;

    let (status, saved) = api
        .call(
            Method::PUT,
            path,
            &key,
            Some(json!({"source": "Angekommen: {{ tracking_number }}"})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(subject(key.clone()).await?, "Angekommen: SBX-ONTIME-000001");
    assert_eq!(
        subject(other.clone()).await?,
        bundled,
        "only its own customers"
    );
    let (_, listed) = api.call(Method::GET, "/templates", &key, None).await?;
    assert_eq!(
        listed[0]["name"], "email/de/delivered.subject.txt",
        "{listed}"
    );
    let (_, theirs) = api.call(Method::GET, "/templates", &other, None).await?;
    assert_eq!(theirs, json!([]));

    for broken in ["{% if %}", "{{ tracking_number | no_such_filter }}"] {
        let (status, refused) = api
            .call(Method::PUT, path, &key, Some(json!({"source": broken})))
            .await?;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{broken}: {refused}"
        );
        assert_eq!(refused["field"], "source");
    }
    assert_eq!(
        subject(key.clone()).await?,
        "Angekommen: SBX-ONTIME-000001",
        "kept"
    );
    let (status, _) = api
        .call(
            Method::PUT,
            "/templates/email/de/no_such.html",
            &key,
            Some(json!({"source": "x"})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(
            Method::PUT,
            "/templates/email/..%2F..%2Fpage/tracking.html",
            &key,
            Some(json!({"source": "x"})),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = api.call(Method::DELETE, path, &key, None).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(subject(key.clone()).await?, bundled);
    let (status, _) = api.call(Method::DELETE, path, &key, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}
