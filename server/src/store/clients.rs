//! Registered clients. The metadata is one JSON document (the serde form of
//! [`ClientMetadata`]), so adding a metadata field needs no migration.

use outband_protocol::{ClientId, ClientMetadata};
use sqlx::any::AnyRow;

use super::{column, one_row, ClientRecord, Store, StoreError};

pub(super) fn encode_metadata(metadata: &ClientMetadata) -> Result<String, StoreError> {
    serde_json::to_string(metadata)
        .map_err(|err| StoreError::Corrupt(format!("client {} metadata does not encode: {err}", metadata.client_id)))
}

fn client_from_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    let client_id: String = column(row, "client_id")?;
    let metadata: String = column(row, "metadata")?;
    let metadata: ClientMetadata = serde_json::from_str(&metadata)
        .map_err(|err| StoreError::Corrupt(format!("client {client_id} metadata: {err}")))?;
    if metadata.client_id.as_str() != client_id {
        return Err(StoreError::Corrupt(format!(
            "client {client_id} metadata names client {}",
            metadata.client_id
        )));
    }
    Ok(ClientRecord {
        metadata,
        secret_hash: column(row, "secret_hash")?,
        created_at: column(row, "created_at")?,
    })
}

impl Store {
    /// Registers a client; [`StoreError::Conflict`] when the id is taken.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.client_id()), err(level = "debug"))]
    pub async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO clients (client_id, metadata, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(client.client_id().as_str())
            .bind(encode_metadata(&client.metadata)?)
            .bind(client.secret_hash.as_deref())
            .bind(client.created_at)
            .execute(&self.pool)
            .await
            .map_err(StoreError::conflict_as(format!("client {}", client.client_id())))?;
        Ok(())
    }

    /// Replaces a client's metadata and secret hash (its `created_at` stays);
    /// `false` when there is no such client.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client.client_id()), err(level = "debug"))]
    pub async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE clients SET metadata = $2, secret_hash = $3 WHERE client_id = $1")
            .bind(client.client_id().as_str())
            .bind(encode_metadata(&client.metadata)?)
            .bind(client.secret_hash.as_deref())
            .execute(&self.pool)
            .await?;
        Ok(one_row(&result))
    }

    /// One client.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %id), err(level = "debug"))]
    pub async fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query("SELECT client_id, metadata, secret_hash, created_at FROM clients WHERE client_id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Every client, by id.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT client_id, metadata, secret_hash, created_at FROM clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Deletes a client and, in the same transaction, every token issued to it,
    /// so no token outlives its client. `false` when there was no such client.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %id), err(level = "debug"))]
    pub async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if !one_row(&result) {
            tx.rollback().await?;
            return Ok(false);
        }
        // The foreign key cascades too; this keeps a deleted client's registration
        // access token from ever managing a later client of the same id.
        sqlx::query("DELETE FROM client_registrations WHERE client_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tokens WHERE client_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
