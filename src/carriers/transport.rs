//! Talking HTTP to carrier APIs, the same way for every adapter: failures classified into
//! [`CarrierError`]s (401/403 auth, 429 with `Retry-After`, 5xx and timeouts transient, other
//! 4xx permanent), transient failures retried with back-off inside one call, OAuth2
//! client-credentials tokens cached per account and refreshed before they expire, bodies longer
//! than [`MAX_ANSWER_BYTES`] refused before they fill memory, and bodies that are not what the
//! spec says kept as an excerpt in the error — never a panic.

use jiff::Timestamp;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub use super::tokens::{SharedToken, SharedTokens, TokenAnswer, TokenCache};
use super::{CarrierAccount, CarrierError, ParcelError};

/// Most characters of a carrier's answer kept in an error.
const EXCERPT_CHARS: usize = 500;

/// The start of a body, for errors and the merchant's diagnosis.
pub fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// How long `Retry-After` asks to wait: seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// A body that could not be read as the carrier's spec says.
pub fn malformed(detail: impl Into<String>, body: &str) -> CarrierError {
    CarrierError::Malformed {
        detail: detail.into(),
        excerpt: excerpt(body),
    }
}

/// One parcel's part of an answer that could not be read as the carrier's spec says, with the
/// start of `body` kept for diagnosis.
pub fn malformed_parcel(detail: impl Into<String>, body: &str) -> ParcelError {
    ParcelError::Malformed {
        detail: detail.into(),
        excerpt: excerpt(body),
    }
}

/// Parse a JSON body, or say what was wrong with it (an HTML error page, truncated JSON).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, CarrierError> {
    serde_json::from_str(body).map_err(|e| malformed(format!("not the expected JSON: {e}"), body))
}

/// A text field read without failing: trimmed, a number (carriers send some ids and codes as
/// numbers) as its digits, and an empty string, `null` or any other value as absent.
pub fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(text)) => {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        }
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    })
}

/// A list that may be absent or `null`, read as empty.
pub fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A tracking number as carriers echo it back, for matching answers to requests: without
/// spaces, upper-cased.
pub fn number_key(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The classified failure for a non-success status. `404` is not decided here: for most
/// carriers it means "unknown number", which the adapter reports per parcel.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> CarrierError {
    let said = excerpt(body);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            CarrierError::Auth(format!("{status}: {said}"))
        }
        StatusCode::TOO_MANY_REQUESTS => CarrierError::RateLimited {
            retry_after: retry_after(headers),
        },
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            CarrierError::Transient(format!("{status}: {said}"))
        }
        _ => CarrierError::Permanent(format!("{status}: {said}")),
    }
}

/// Most bytes of an answer Waymark reads from a carrier. Tracking answers are a few kilobytes;
/// anything near this is a broken or hostile server, and reading on would only fill memory.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// A carrier's answer: status, headers and the whole body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// Read the answer, refusing a body longer than [`MAX_ANSWER_BYTES`]: up front when
    /// `Content-Length` says so, else as soon as the chunks read pass it.
    async fn read(mut response: Response) -> Result<Self, CarrierError> {
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(length) = response.content_length() {
            if length > MAX_ANSWER_BYTES as u64 {
                return Err(too_large(format!("announces {length} bytes"), &[]));
            }
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CarrierError::Transient(format!("reading the answer: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                let read = if bytes.is_empty() { &chunk[..] } else { &bytes };
                return Err(too_large("goes on".into(), read));
            }
            bytes.extend_from_slice(&chunk);
        }
        // As `Response::text` without reqwest's `charset` feature: invalid UTF-8 replaced.
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The classified error for this answer (see [`classify`]).
    pub fn error(&self) -> CarrierError {
        classify(self.status, &self.headers, &self.body)
    }
}

/// The error for an answer longer than [`MAX_ANSWER_BYTES`], keeping the start of what was read.
fn too_large(how: String, start: &[u8]) -> CarrierError {
    let start = &start[..start.len().min(4 * EXCERPT_CHARS)];
    malformed(
        format!(
            "the answer {how}, past the limit of {} MiB ({MAX_ANSWER_BYTES} bytes)",
            MAX_ANSWER_BYTES / (1024 * 1024)
        ),
        &String::from_utf8_lossy(start),
    )
}

/// The shared HTTP client and retry policy for carrier calls.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    /// Extra attempts for transient failures within one call.
    retries: u32,
    /// First back-off between attempts; doubles each time.
    backoff: Duration,
    /// Where the adapters' OAuth2 tokens are shared with the other processes.
    shared_tokens: Option<Arc<dyn SharedTokens>>,
}

impl Default for Transport {
    fn default() -> Self {
        Transport::new(Duration::from_secs(20))
    }
}

impl Transport {
    /// A client that gives up on one request after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("waymark/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Transport {
            client,
            retries: 2,
            backoff: Duration::from_millis(250),
            shared_tokens: None,
        }
    }

    /// This transport, with the adapters' OAuth2 tokens shared through `shared`.
    pub fn sharing_tokens(mut self, shared: Arc<dyn SharedTokens>) -> Self {
        self.shared_tokens = Some(shared);
        self
    }

    /// A token cache for one adapter, sharing its tokens as this transport does.
    pub fn token_cache(&self) -> TokenCache {
        TokenCache::sharing(self.shared_tokens.clone())
    }

    /// The same client with another in-call retry policy (tests use a short back-off).
    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send the request `build` makes, retrying timeouts, connection failures and 5xx answers
    /// with back-off. Any other answer (including 4xx) is returned for the adapter to judge.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, CarrierError> {
        let mut attempt = 0;
        loop {
            let outcome = match build(&self.client).send().await {
                Ok(response) => Answer::read(response).await,
                Err(e) if e.is_builder() => {
                    return Err(CarrierError::Permanent(format!(
                        "building the request: {e}"
                    )));
                }
                Err(e) => Err(CarrierError::Transient(describe(&e))),
            };
            let retryable = match &outcome {
                // SOAP services answer every fault with a 500, a refused login included; the
                // fault is an answer, not an outage, so asking again would only repeat it.
                Ok(answer) => answer.status.is_server_error() && !is_soap_fault(&answer.body),
                Err(CarrierError::Transient(_)) => true,
                Err(_) => false,
            };
            if !retryable || attempt >= self.retries {
                return outcome;
            }
            tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
            attempt += 1;
        }
    }

    /// Send the request `build` makes with the account's bearer token (from `tokens`, fetched with
    /// `fetch_token` when there is none). Carriers revoke tokens before their stated expiry (key
    /// rotation, clocks that disagree), so a `401` drops the token and the request is sent once
    /// more with a fresh one; a `401` for a fresh token is the credentials' fault, an
    /// authentication error naming `carrier`.
    pub async fn send_authorised<F, Fut>(
        &self,
        carrier: &str,
        tokens: &TokenCache,
        account: &CarrierAccount,
        fetch_token: F,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Answer, CarrierError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<TokenAnswer, CarrierError>>,
    {
        let mut renewed = false;
        loop {
            let token = tokens.token(account.id, &fetch_token).await?;
            let answer = self.send(|client| build(client, &token)).await?;
            if answer.status != StatusCode::UNAUTHORIZED {
                return Ok(answer);
            }
            tokens.invalidate(account.id).await?;
            if renewed {
                return Err(CarrierError::Auth(format!(
                    "{carrier} refused a freshly issued token: {}: {}",
                    answer.status,
                    excerpt(&answer.body)
                )));
            }
            renewed = true;
        }
    }

    /// [`Transport::send_authorised`] with an OAuth2 client-credentials token from `token_url`
    /// for the account's `client_id` and `client_secret` credentials.
    pub async fn send_with_client_credentials(
        &self,
        carrier: &str,
        tokens: &TokenCache,
        account: &CarrierAccount,
        token_url: &str,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Answer, CarrierError> {
        let client_id = credential(account, "client_id")?;
        let client_secret = credential(account, "client_secret")?;
        let fetch_token = || client_credentials(self, token_url, client_id, client_secret, &[]);
        self.send_authorised(carrier, tokens, account, fetch_token, build)
            .await
    }
}

/// Whether a body is a SOAP fault (`<soap:Fault>`, `<env:Fault>`, `<Fault>`).
pub fn is_soap_fault(body: &str) -> bool {
    body.contains(":Fault>") || body.contains("<Fault>")
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer in time: {e}")
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

/// Fetch a client-credentials token: `POST token_url` with `grant_type=client_credentials`,
/// the client id and secret as HTTP basic auth and in the form (carriers differ in which they
/// read), plus `extra` form fields.
pub async fn client_credentials(
    transport: &Transport,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    extra: &[(&str, &str)],
) -> Result<TokenAnswer, CarrierError> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret),
    ];
    form.extend_from_slice(extra);
    let answer = transport
        .send(|client| {
            client
                .post(token_url)
                .basic_auth(client_id, Some(client_secret))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&form)
        })
        .await?;
    if !answer.status.is_success() {
        return Err(match answer.error() {
            // A refused token request is always a credentials problem.
            CarrierError::Permanent(said) => CarrierError::Auth(said),
            other => other,
        });
    }
    parse_json(&answer.body)
}

/// The API base for `account`: its `base_url` (a sandbox, a test server) trimmed and without a
/// trailing `/`, else `production_default`.
pub fn base_url(account: &CarrierAccount, production_default: &str) -> String {
    account
        .base_url
        .as_deref()
        .map(|url| url.trim().trim_end_matches('/'))
        .filter(|url| !url.is_empty())
        .unwrap_or(production_default)
        .to_owned()
}

/// A credential the adapter needs, read from the account.
pub fn credential<'a>(account: &'a CarrierAccount, key: &str) -> Result<&'a str, CarrierError> {
    account
        .credentials
        .expose(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            CarrierError::Auth(format!(
                "account `{}` has no `{key}` credential",
                account.name
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_soap_fault_is_not_asked_again_but_an_outage_is() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/fault"))
            .respond_with(ResponseTemplate::new(500).set_body_string(
                "<soap:Envelope><soap:Body><soap:Fault><faultstring>LOGIN_5</faultstring></soap:Fault></soap:Body></soap:Envelope>",
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/down"))
            .respond_with(ResponseTemplate::new(503).set_body_string("<html>down</html>"))
            .expect(3)
            .mount(&server)
            .await;
        let transport = Transport::default().with_retries(2, Duration::from_millis(1));
        let fault = transport
            .send(|c| c.post(format!("{}/fault", server.uri())))
            .await
            .unwrap();
        assert_eq!(fault.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(fault.body.contains("LOGIN_5"));
        let down = transport
            .send(|c| c.post(format!("{}/down", server.uri())))
            .await
            .unwrap();
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        // `expect` counts are checked when the server drops.
    }

    #[tokio::test]
    async fn an_answer_over_the_size_limit_is_refused_and_one_at_it_is_read() {
        use wiremock::matchers::path;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(path("/over"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string("x".repeat(MAX_ANSWER_BYTES + 1)),
            )
            .mount(&server)
            .await;
        Mock::given(path("/at"))
            .respond_with(ResponseTemplate::new(200).set_body_string("y".repeat(MAX_ANSWER_BYTES)))
            .mount(&server)
            .await;
        let transport = Transport::default().with_retries(2, Duration::from_millis(1));
        match transport
            .send(|c| c.get(format!("{}/over", server.uri())))
            .await
        {
            Err(CarrierError::Malformed { detail, .. }) => {
                assert!(detail.contains("8 MiB"), "{detail}");
                assert!(
                    detail.contains(&(MAX_ANSWER_BYTES + 1).to_string()),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        let at = transport
            .send(|c| c.get(format!("{}/at", server.uri())))
            .await
            .expect("an answer of exactly the limit is read");
        assert_eq!(at.body.len(), MAX_ANSWER_BYTES);
        // A refused answer is not asked for again: it would be just as long.
        let asked = server.received_requests().await.unwrap_or_default();
        assert_eq!(asked.iter().filter(|r| r.url.path() == "/over").count(), 1);
    }

    #[tokio::test]
    async fn an_endless_answer_without_a_length_is_cut_off_at_the_limit() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // A server that streams chunks for ever (until the client hangs up), announcing no
        // length, the way a broken gateway might; it counts what it managed to send.
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = format!("10000\r\n{}\r\n", "z".repeat(0x10000));
            let mut sent = 0usize;
            while socket.write_all(chunk.as_bytes()).await.is_ok() {
                sent += 0x10000;
            }
            sent
        });
        let transport = Transport::default().with_retries(0, Duration::from_millis(1));
        let outcome = tokio::time::timeout(
            Duration::from_secs(60),
            transport.send(|c| c.get(format!("http://{address}/endless"))),
        )
        .await
        .expect("the read stops at the limit instead of waiting for the end");
        match outcome {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("8 MiB"), "{detail}");
                assert!(excerpt.starts_with("zzz"), "{excerpt}");
                assert!(excerpt.chars().count() <= EXCERPT_CHARS + 1);
            }
            other => panic!("{other:?}"),
        }
        drop(transport);
        let sent = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("the server notices the client hung up")
            .unwrap();
        // What was sent beyond the limit is what the sockets' buffers held, not the stream.
        assert!(sent < 2 * MAX_ANSWER_BYTES, "{sent} bytes sent");
    }

    #[test]
    fn statuses_are_classified() {
        let none = HeaderMap::new();
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &none, "no"),
            CarrierError::Auth(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &none, "<html>"),
            CarrierError::Transient(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &none, "bad"),
            CarrierError::Permanent(_)
        ));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
            CarrierError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn garbage_is_a_malformed_answer_with_the_carriers_words() {
        let err =
            parse_json::<serde_json::Value>("<html><body>Bad Gateway</body></html>").unwrap_err();
        match err {
            CarrierError::Malformed { detail, excerpt } => {
                assert!(detail.contains("not the expected JSON"));
                assert!(excerpt.contains("Bad Gateway"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            excerpt(&"x".repeat(2000)).chars().count(),
            EXCERPT_CHARS + 1
        );
    }
}
