//! The carriers' OAuth2 tokens kept in the database, so every process polling an account uses
//! one token and one of them at a time fetches the next (see [`crate::carriers::tokens`]).

use async_trait::async_trait;
use jiff::Timestamp;
use std::sync::Arc;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::carriers::CarrierError;
use crate::carriers::tokens::{SharedToken, SharedTokens};

/// [`SharedTokens`] in a [`Store`].
pub struct StoreTokens(Arc<dyn Store>);

impl StoreTokens {
    pub fn new(store: Arc<dyn Store>) -> Self {
        StoreTokens(store)
    }
}

impl std::fmt::Debug for StoreTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTokens")
    }
}

/// A store that cannot answer is worth retrying, like a carrier's bad minute.
fn unavailable(error: StoreError) -> CarrierError {
    CarrierError::Transient(format!("the shared token store: {error}"))
}

#[async_trait]
impl SharedTokens for StoreTokens {
    async fn get(&self, account: Uuid) -> Result<Option<SharedToken>, CarrierError> {
        self.0.carrier_token(account).await.map_err(unavailable)
    }

    async fn begin_fetch(
        &self,
        account: Uuid,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, CarrierError> {
        self.0
            .begin_carrier_token_fetch(account, owner, now, until)
            .await
            .map_err(unavailable)
    }

    async fn save(&self, account: Uuid, token: &SharedToken) -> Result<(), CarrierError> {
        self.0
            .save_carrier_token(account, token)
            .await
            .map_err(unavailable)
    }

    async fn abandon_fetch(&self, account: Uuid, owner: &str) -> Result<(), CarrierError> {
        self.0
            .abandon_carrier_token_fetch(account, owner)
            .await
            .map_err(unavailable)
    }

    async fn forget(&self, account: Uuid, id: Uuid) -> Result<(), CarrierError> {
        self.0
            .forget_carrier_token(account, id)
            .await
            .map_err(unavailable)
    }
}
