//! Authentication devices, their one-time activation codes and their access
//! tokens. Codes, credentials and tokens are high-entropy random values kept
//! as SHA-256 hashes. Using a code and revoking a device are conditional
//! `UPDATE`s, so each happens once however many calls race.

use outband_protocol::Subject;
use sqlx::any::AnyRow;

use super::{column, one_row, ActivationCodeRecord, DeviceRecord, DeviceTokenRecord, Store, StoreError, UnixTime};

/// The columns of a [`DeviceRecord`], as a literal for `concat!`.
macro_rules! device_columns {
    () => {
        "id, subject, name, alg, public_jwk, jkt, credential_hash, created_at, last_seen_at, revoked_at"
    };
}

fn device_from_row(row: &AnyRow) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: column(row, "id")?,
        subject: Subject::new(column::<String>(row, "subject")?),
        name: column(row, "name")?,
        alg: column(row, "alg")?,
        public_jwk: column(row, "public_jwk")?,
        jkt: column(row, "jkt")?,
        credential_hash: column(row, "credential_hash")?,
        created_at: column(row, "created_at")?,
        last_seen_at: column(row, "last_seen_at")?,
        revoked_at: column(row, "revoked_at")?,
    })
}

fn devices_from_rows(rows: &[AnyRow]) -> Result<Vec<DeviceRecord>, StoreError> {
    rows.iter().map(device_from_row).collect()
}

fn device_token_from_row(row: &AnyRow) -> Result<DeviceTokenRecord, StoreError> {
    Ok(DeviceTokenRecord {
        token_hash: column(row, "token_hash")?,
        device_id: column(row, "device_id")?,
        jkt: column(row, "jkt")?,
        expires_at: column(row, "expires_at")?,
    })
}

/// Names the unique key a duplicate device collided with: PostgreSQL reports
/// the constraint (`devices_jkt_key`), SQLite the column (`devices.jkt`).
fn device_conflict(id: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| {
        let detail = err
            .as_database_error()
            .map(|e| format!("{} {}", e.constraint().unwrap_or_default(), e.message()))
            .unwrap_or_default();
        let key = ["jkt", "credential_hash"]
            .into_iter()
            .find(|key| detail.contains(key))
            .unwrap_or("id");
        StoreError::conflict_as(format!("device {id} ({key})"))(err)
    }
}

impl Store {
    /// Records an enrolled device; [`StoreError::Conflict`] (naming `id`, `jkt`
    /// or `credential_hash`) when one of its unique keys is taken.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %device.id, subject = %device.subject), err(level = "debug"))]
    pub async fn insert_device(&self, device: &DeviceRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO devices (",
            device_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(device.id.as_str())
        .bind(device.subject.as_str())
        .bind(device.name.as_str())
        .bind(device.alg.as_str())
        .bind(device.public_jwk.as_str())
        .bind(device.jkt.as_str())
        .bind(device.credential_hash.as_str())
        .bind(device.created_at)
        .bind(device.last_seen_at)
        .bind(device.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(device_conflict(&device.id))?;
        Ok(())
    }

    /// The device with this id, revoked or not.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id), err(level = "debug"))]
    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    /// The device whose credential hashes to `hash`, revoked or not (the
    /// caller refuses revoked devices).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn device_by_credential_hash(&self, hash: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE credential_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    /// The user's devices, revoked ones included, newest first.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn devices_of_subject(&self, subject: &Subject) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE subject = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await?;
        devices_from_rows(&rows)
    }

    /// Every device, revoked ones included, newest first.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn list_devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        devices_from_rows(&rows)
    }

    /// Revokes a device and, in the same transaction, deletes its access
    /// tokens. `true` only for the call that revoked it: `false` when it is
    /// unknown or was revoked already.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id), err(level = "debug"))]
    pub async fn revoke_device(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so on SQLite the transaction takes the
        // write lock (waiting out `busy_timeout`) before it reads anything.
        let result = sqlx::query("UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if !one_row(&result) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM device_tokens WHERE device_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Notes that the device called at `now`. Never moves `last_seen_at`
    /// backwards (nodes' calls may land out of order); a revoked or unknown
    /// device is left alone.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id), err(level = "debug"))]
    pub async fn touch_device(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_seen_at = $2 \
             WHERE id = $1 AND revoked_at IS NULL AND (last_seen_at IS NULL OR last_seen_at < $2)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a new activation code; [`StoreError::Conflict`] when its hash is known.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %code.subject), err(level = "debug"))]
    pub async fn insert_activation_code(&self, code: &ActivationCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO activation_codes (code_hash, subject, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code.code_hash.as_str())
        .bind(code.subject.as_str())
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(code.used_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as(format!("activation code for {}", code.subject)))?;
        Ok(())
    }

    /// Uses the activation code that hashes to `hash`: the user it enrolls for,
    /// to the one call that used it while unused and unexpired at `now`; `None`
    /// when it is unknown, expired or used already.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn consume_activation_code(&self, hash: &str, now: UnixTime) -> Result<Option<Subject>, StoreError> {
        let row = sqlx::query(
            "UPDATE activation_codes SET used_at = $2 \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING subject",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| column::<String>(row, "subject").map(Subject::new))
            .transpose()
    }

    /// Records a device access token; [`StoreError::Conflict`] when its hash is
    /// known, [`StoreError::Database`] when the device does not exist.
    #[tracing::instrument(level = "debug", skip_all, fields(device_id = %token.device_id), err(level = "debug"))]
    pub async fn insert_device_token(&self, token: &DeviceTokenRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO device_tokens (token_hash, device_id, jkt, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token.token_hash.as_str())
            .bind(token.device_id.as_str())
            .bind(token.jkt.as_str())
            .bind(token.expires_at)
            .execute(&self.pool)
            .await
            .map_err(StoreError::conflict_as(format!("device token of {}", token.device_id)))?;
        Ok(())
    }

    /// The device token that hashes to `hash`, expired ones included (the
    /// caller checks `expires_at`). Tokens of a revoked device are never
    /// returned, even one written while the device was being revoked.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn device_token(&self, hash: &str) -> Result<Option<DeviceTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT t.token_hash, t.device_id, t.jkt, t.expires_at FROM device_tokens t \
             JOIN devices d ON d.id = t.device_id WHERE t.token_hash = $1 AND d.revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(device_token_from_row).transpose()
    }

    /// Deletes the device tokens that expired before `now`; returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_expired_device_tokens(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM device_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Deletes the activation codes, used or not, that expired before `now`;
    /// returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_expired_activation_codes(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM activation_codes WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
