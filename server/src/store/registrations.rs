//! Dynamically registered clients' management state (RFC 7592): the hash of the
//! registration access token and the software statement the client registered
//! with. The client itself is an ordinary row of `clients`.

use outband_protocol::ClientId;
use sqlx::any::AnyRow;

use super::clients::encode_metadata;
use super::{column, one_row, ClientRecord, Store, StoreError, UnixTime};

/// The registration of a client created through `POST /register`.
#[derive(Clone, PartialEq)]
pub struct RegistrationRecord {
    /// The client.
    pub client_id: ClientId,
    /// SHA-256 (base64url) of the current registration access token.
    pub access_token_hash: String,
    /// The software statement JWT as received.
    pub software_statement: Option<String>,
    /// Its verified claims (a JSON object).
    pub software_statement_claims: Option<String>,
    /// When the registration was created or last updated.
    pub updated_at: UnixTime,
}

impl std::fmt::Debug for RegistrationRecord {
    // The token hash is not a secret, but there is no reason to log it either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationRecord")
            .field("client_id", &self.client_id)
            .field("software_statement", &self.software_statement.is_some())
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

fn registration_from_row(row: &AnyRow) -> Result<RegistrationRecord, StoreError> {
    Ok(RegistrationRecord {
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        access_token_hash: column(row, "access_token_hash")?,
        software_statement: column(row, "software_statement")?,
        software_statement_claims: column(row, "software_statement_claims")?,
        updated_at: column(row, "updated_at")?,
    })
}

impl Store {
    /// Registers a client and its registration in one transaction;
    /// [`StoreError::Conflict`] when the id is taken.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.client_id()), err(level = "debug"))]
    pub async fn insert_registered_client(
        &self,
        client: &ClientRecord,
        registration: &RegistrationRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO clients (client_id, metadata, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(client.client_id().as_str())
            .bind(encode_metadata(&client.metadata)?)
            .bind(client.secret_hash.as_deref())
            .bind(client.created_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::conflict_as(format!("client {}", client.client_id())))?;
        sqlx::query(
            "INSERT INTO client_registrations (client_id, access_token_hash, software_statement, \
             software_statement_claims, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(registration.client_id.as_str())
        .bind(&registration.access_token_hash)
        .bind(registration.software_statement.as_deref())
        .bind(registration.software_statement_claims.as_deref())
        .bind(registration.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The registration of a client, when it was registered dynamically.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %id), err(level = "debug"))]
    pub async fn registration(&self, id: &ClientId) -> Result<Option<RegistrationRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, access_token_hash, software_statement, software_statement_claims, updated_at \
             FROM client_registrations WHERE client_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(registration_from_row).transpose()
    }

    /// Replaces a registered client's metadata and secret hash and rotates its
    /// registration access token, in one transaction, provided the token is
    /// still `previous_hash`: of two updates made with the same token only one
    /// wins. `false` when the token was already rotated (or the client is gone).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.client_id()), err(level = "debug"))]
    pub async fn update_registered_client(
        &self,
        client: &ClientRecord,
        previous_hash: &str,
        registration: &RegistrationRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rotated = sqlx::query(
            "UPDATE client_registrations SET access_token_hash = $2, software_statement = $3, \
             software_statement_claims = $4, updated_at = $5 WHERE client_id = $1 AND access_token_hash = $6",
        )
        .bind(registration.client_id.as_str())
        .bind(&registration.access_token_hash)
        .bind(registration.software_statement.as_deref())
        .bind(registration.software_statement_claims.as_deref())
        .bind(registration.updated_at)
        .bind(previous_hash)
        .execute(&mut *tx)
        .await?;
        if !one_row(&rotated) {
            tx.rollback().await?;
            return Ok(false);
        }
        let updated = sqlx::query("UPDATE clients SET metadata = $2, secret_hash = $3 WHERE client_id = $1")
            .bind(client.client_id().as_str())
            .bind(encode_metadata(&client.metadata)?)
            .bind(client.secret_hash.as_deref())
            .execute(&mut *tx)
            .await?;
        if !one_row(&updated) {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}
