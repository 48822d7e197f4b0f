//! OAuth2 access tokens per carrier account: reused until shortly before they expire, and
//! shared by every process polling the account through [`SharedTokens`] (the database), so one
//! of them fetches a token at a time and the others use it — a carrier sees one token request
//! per account, not one per replica.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

use super::CarrierError;
use crate::secret::Secret;

/// The standard OAuth2 token answer.
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    /// A secret as good as the credentials it was issued for, while it lasts.
    pub access_token: Secret,
    /// Seconds; some carriers send it as a string.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
}

fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        Some(Either::Number(n)) => Some(n),
        Some(Either::Text(t)) => t.trim().parse().ok(),
        None => None,
    })
}

/// A token as the processes polling one account share it.
#[derive(Debug, Clone)]
pub struct SharedToken {
    /// Names this token, so a process that saw it refused drops this one and not a newer one.
    pub id: Uuid,
    pub token: Secret,
    /// When Waymark stops using it (shortly before the carrier's expiry).
    pub expires_at: Timestamp,
}

/// Where the processes polling the same carrier accounts keep their tokens (the database).
/// Times are real time: tokens expire by the carrier's clock, not the simulated one.
#[async_trait]
pub trait SharedTokens: Send + Sync + std::fmt::Debug {
    /// The account's token, if one is kept (it may have expired).
    async fn get(&self, account: Uuid) -> Result<Option<SharedToken>, CarrierError>;
    /// Take the right to fetch the account's token until `until`; false while another process
    /// holds it.
    async fn begin_fetch(
        &self,
        account: Uuid,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, CarrierError>;
    /// Keep the token just fetched, and give the right to fetch back.
    async fn save(&self, account: Uuid, token: &SharedToken) -> Result<(), CarrierError>;
    /// Give the right to fetch back without a token (the fetch failed).
    async fn abandon_fetch(&self, account: Uuid, owner: &str) -> Result<(), CarrierError>;
    /// Drop the token `id` (the carrier refused it), unless another has replaced it meanwhile.
    async fn forget(&self, account: Uuid, id: Uuid) -> Result<(), CarrierError>;
}

/// Tokens are renewed this long before the carrier says they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// How long one process may take to fetch a token before another may try.
const FETCH_HOLD: SignedDuration = SignedDuration::from_secs(30);
/// How often a process waiting for another's fetch looks for the token.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// The tokens of one adapter's accounts: kept in this process, and shared through
/// [`SharedTokens`] when there is one.
#[derive(Debug)]
pub struct TokenCache {
    tokens: Mutex<HashMap<Uuid, SharedToken>>,
    shared: Option<Arc<dyn SharedTokens>>,
    /// This process's name when it takes the right to fetch.
    owner: String,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::sharing(None)
    }
}

impl TokenCache {
    /// A cache that shares its tokens through `shared`, or keeps them to itself.
    pub fn sharing(shared: Option<Arc<dyn SharedTokens>>) -> Self {
        TokenCache {
            tokens: Mutex::default(),
            shared,
            owner: format!("tokens-{}", Uuid::now_v7()),
        }
    }

    /// A valid token for `account`, fetching a new one with `fetch` when there is none or it is
    /// about to expire. With a shared store, a token another process fetched is used, and only
    /// one process fetches at a time; the others wait for it (at most [`FETCH_HOLD`]).
    pub async fn token<F, Fut>(&self, account: Uuid, fetch: F) -> Result<String, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<TokenAnswer, CarrierError>>,
    {
        if let Some(token) = self.valid(self.lock().get(&account).cloned()) {
            return Ok(token);
        }
        let Some(shared) = &self.shared else {
            return self.fetch_and_keep(account, fetch, None).await;
        };
        let give_up_waiting = Timestamp::now() + FETCH_HOLD;
        loop {
            let kept = shared.get(account).await?;
            if let Some(kept) = kept.filter(|t| t.expires_at > Timestamp::now()) {
                let token = kept.token.expose().to_owned();
                self.lock().insert(account, kept);
                return Ok(token);
            }
            let now = Timestamp::now();
            // Past the wait the other process is taken for dead (its right lapses as well).
            if now >= give_up_waiting
                || shared
                    .begin_fetch(account, &self.owner, now, now + FETCH_HOLD)
                    .await?
            {
                return self.fetch_and_keep(account, fetch, Some(shared)).await;
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    async fn fetch_and_keep<F, Fut>(
        &self,
        account: Uuid,
        fetch: F,
        shared: Option<&Arc<dyn SharedTokens>>,
    ) -> Result<String, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<TokenAnswer, CarrierError>>,
    {
        let now = Timestamp::now();
        let answer = match fetch().await {
            Ok(answer) => answer,
            Err(error) => {
                if let Some(shared) = shared {
                    shared.abandon_fetch(account, &self.owner).await?;
                }
                return Err(error);
            }
        };
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let usable = lifetime.saturating_sub(RENEW_BEFORE).max(lifetime / 2);
        let token = SharedToken {
            id: Uuid::now_v7(),
            expires_at: now
                .checked_add(SignedDuration::try_from(usable).unwrap_or_default())
                .unwrap_or(now),
            token: answer.access_token,
        };
        if let Some(shared) = shared {
            shared.save(account, &token).await?;
        }
        let text = token.token.expose().to_owned();
        self.lock().insert(account, token);
        Ok(text)
    }

    /// Forget the account's token (the carrier refused it), here and for the other processes,
    /// so the next call fetches a new one.
    pub async fn invalidate(&self, account: Uuid) -> Result<(), CarrierError> {
        let dropped = self.lock().remove(&account);
        if let (Some(shared), Some(dropped)) = (&self.shared, dropped) {
            shared.forget(account, dropped.id).await?;
        }
        Ok(())
    }

    fn valid(&self, token: Option<SharedToken>) -> Option<String> {
        token
            .filter(|t| t.expires_at > Timestamp::now())
            .map(|t| t.token.expose().to_owned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, SharedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_access_token_is_reused_but_never_shown_in_debug_output() {
        let answer: TokenAnswer =
            serde_json::from_str(r#"{"access_token": "eyJ-token-4711", "expires_in": 3599}"#)
                .expect("a token answer");
        assert!(!format!("{answer:?}").contains("eyJ-token-4711"));
        let cache = TokenCache::default();
        let account = Uuid::now_v7();
        let token = cache.token(account, || async { Ok(answer) }).await;
        assert_eq!(token.as_deref(), Ok("eyJ-token-4711"));
        let again = cache
            .token(account, || async { panic!("the cached token is reused") })
            .await;
        assert_eq!(again.as_deref(), Ok("eyJ-token-4711"));
        assert!(!format!("{cache:?}").contains("eyJ-token-4711"));
    }

    #[tokio::test]
    async fn a_token_is_reused_until_it_nears_expiry_and_refetched_after_invalidation() {
        let cache = TokenCache::default();
        let account = Uuid::now_v7();
        let fetches = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(TokenAnswer {
                access_token: format!("token-{n}").into(),
                expires_in: Some(3600),
            })
        };
        assert_eq!(cache.token(account, fetch).await.unwrap(), "token-0");
        assert_eq!(cache.token(account, fetch).await.unwrap(), "token-0");
        cache.invalidate(account).await.unwrap();
        assert_eq!(cache.token(account, fetch).await.unwrap(), "token-1");
        let expired = || async {
            Ok(TokenAnswer {
                access_token: "short".into(),
                expires_in: Some(0),
            })
        };
        let other = Uuid::now_v7();
        assert_eq!(cache.token(other, expired).await.unwrap(), "short");
        // A token with no life left is fetched again.
        assert_eq!(cache.token(other, fetch).await.unwrap(), "token-2");
    }

    /// An account's token and who is fetching the next one until when.
    type Row = (Option<SharedToken>, Option<(String, Timestamp)>);

    /// Tokens shared in memory, as the database shares them between processes.
    #[derive(Debug, Default)]
    struct Memory {
        rows: Mutex<HashMap<Uuid, Row>>,
    }

    #[async_trait]
    impl SharedTokens for Memory {
        async fn get(&self, account: Uuid) -> Result<Option<SharedToken>, CarrierError> {
            Ok(self
                .rows
                .lock()
                .unwrap()
                .get(&account)
                .and_then(|r| r.0.clone()))
        }
        async fn begin_fetch(
            &self,
            account: Uuid,
            owner: &str,
            now: Timestamp,
            until: Timestamp,
        ) -> Result<bool, CarrierError> {
            let mut rows = self.rows.lock().unwrap();
            let row = rows.entry(account).or_default();
            if row.1.as_ref().is_some_and(|(o, u)| o != owner && *u > now) {
                return Ok(false);
            }
            row.1 = Some((owner.to_owned(), until));
            Ok(true)
        }
        async fn save(&self, account: Uuid, token: &SharedToken) -> Result<(), CarrierError> {
            let mut rows = self.rows.lock().unwrap();
            *rows.entry(account).or_default() = (Some(token.clone()), None);
            Ok(())
        }
        async fn abandon_fetch(&self, account: Uuid, owner: &str) -> Result<(), CarrierError> {
            let mut rows = self.rows.lock().unwrap();
            let row = rows.entry(account).or_default();
            if row.1.as_ref().is_some_and(|(o, _)| o == owner) {
                row.1 = None;
            }
            Ok(())
        }
        async fn forget(&self, account: Uuid, id: Uuid) -> Result<(), CarrierError> {
            let mut rows = self.rows.lock().unwrap();
            let row = rows.entry(account).or_default();
            if row.0.as_ref().is_some_and(|t| t.id == id) {
                row.0 = None;
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn processes_sharing_tokens_fetch_one_at_a_time_and_reuse_each_others() {
        let shared: Arc<dyn SharedTokens> = Arc::new(Memory::default());
        let replicas: Vec<TokenCache> = (0..3)
            .map(|_| TokenCache::sharing(Some(shared.clone())))
            .collect();
        let account = Uuid::now_v7();
        let fetches = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Slow enough that the others ask while it runs.
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(TokenAnswer {
                access_token: format!("token-{n}").into(),
                expires_in: Some(3600),
            })
        };
        let tokens =
            futures::future::join_all(replicas.iter().map(|r| r.token(account, fetch))).await;
        for token in tokens {
            assert_eq!(token.unwrap(), "token-0");
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

        // One replica sees it refused: every replica fetches anew, once.
        replicas[1].invalidate(account).await.unwrap();
        assert_eq!(
            replicas[2].token(account, fetch).await.unwrap(),
            "token-0",
            "still cached here"
        );
        assert_eq!(replicas[1].token(account, fetch).await.unwrap(), "token-1");
        let fresh = TokenCache::sharing(Some(shared.clone()));
        assert_eq!(fresh.token(account, fetch).await.unwrap(), "token-1");

        // A failed fetch gives the right to fetch back at once.
        let other = Uuid::now_v7();
        let failing = || async { Err(CarrierError::Auth("bad secret".into())) };
        assert!(replicas[0].token(other, failing).await.is_err());
        assert_eq!(replicas[1].token(other, fetch).await.unwrap(), "token-2");
    }
}
