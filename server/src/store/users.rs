//! End-users. E-mail addresses are stored lowercased, so the unique index on
//! them is case-insensitive and a login hint matches them with a plain `=`
//! (which keeps the lookup on the index on both databases).

use outband_protocol::Subject;
use sqlx::any::AnyRow;

use super::{column, flag, one_row, Store, StoreError, TestDecision, UserRecord};

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let subject: String = column(row, "subject")?;
    let test_decision = match column::<Option<String>>(row, "test_decision")? {
        None => None,
        Some(value) => Some(
            TestDecision::parse(&value)
                .ok_or_else(|| StoreError::Corrupt(format!("user {subject} has unknown test decision {value:?}")))?,
        ),
    };
    Ok(UserRecord {
        username: column(row, "username")?,
        email: column(row, "email")?,
        phone: column(row, "phone")?,
        name: column(row, "name")?,
        password_hash: column(row, "password_hash")?,
        user_code_hash: column(row, "user_code_hash")?,
        locked: column::<i64>(row, "locked")? != 0,
        test_decision,
        created_at: column(row, "created_at")?,
        subject: Subject::new(subject),
    })
}

/// Names the unique key a duplicate user collided with. PostgreSQL reports the
/// constraint (`users_email_key`), SQLite the column (`users.email`); neither
/// message includes the value, so no personal data ends up in the error.
fn user_conflict(err: sqlx::Error) -> StoreError {
    let detail = err
        .as_database_error()
        .map(|e| format!("{} {}", e.constraint().unwrap_or_default(), e.message()))
        .unwrap_or_default();
    let what = ["username", "email", "phone"]
        .into_iter()
        .find(|key| detail.contains(key))
        .map_or_else(
            || "a user with this subject".to_owned(),
            |key| format!("a user with this {key}"),
        );
    StoreError::conflict_as(what)(err)
}

impl Store {
    /// Creates a user; [`StoreError::Conflict`] when the subject, username,
    /// e-mail (in any case) or phone number is taken.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %user.subject), err(level = "debug"))]
    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (subject, username, email, phone, name, password_hash, locked, test_decision, created_at, \
             user_code_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(user.subject.as_str())
        .bind(user.username.as_str())
        .bind(user.email.as_deref().map(str::to_lowercase))
        .bind(user.phone.as_deref())
        .bind(user.name.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(flag(user.locked))
        .bind(user.test_decision.map(TestDecision::as_str))
        .bind(user.created_at)
        .bind(user.user_code_hash.as_deref())
        .execute(&self.pool)
        .await
        .map_err(user_conflict)?;
        Ok(())
    }

    /// One user, by subject.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn user(&self, subject: &Subject) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT subject, username, email, phone, name, password_hash, user_code_hash, locked, test_decision, created_at \
             FROM users WHERE subject = $1",
        )
        .bind(subject.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user a CIBA `login_hint` names: by username, e-mail (any case) or
    /// phone number, exactly. Should one hint match several users (one's
    /// username is another's e-mail), the username match wins, then the e-mail.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn user_by_login_hint(&self, hint: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT subject, username, email, phone, name, password_hash, user_code_hash, locked, test_decision, created_at \
             FROM users WHERE username = $1 OR email = $2 OR phone = $1 \
             ORDER BY CASE WHEN username = $1 THEN 0 WHEN email = $2 THEN 1 ELSE 2 END LIMIT 1",
        )
        .bind(hint)
        .bind(hint.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user, by username.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject, username, email, phone, name, password_hash, user_code_hash, locked, test_decision, created_at \
             FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Deletes a user and, in the same transaction, every token issued for
    /// them. `false` when there was no such user.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn delete_user(&self, subject: &Subject) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query("DELETE FROM users WHERE subject = $1")
            .bind(subject.as_str())
            .execute(&mut *tx)
            .await?;
        if !one_row(&result) {
            tx.rollback().await?;
            return Ok(false);
        }
        // Everything that speaks for the user goes with them: tokens, enrolled
        // devices (their device tokens cascade) and unused activation codes.
        for statement in [
            "DELETE FROM tokens WHERE subject = $1",
            "DELETE FROM devices WHERE subject = $1",
            "DELETE FROM activation_codes WHERE subject = $1",
        ] {
            sqlx::query(statement).bind(subject.as_str()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Sets or clears the user's CIBA `user_code` hash; `false` when there is no such user.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn set_user_code_hash(&self, subject: &Subject, hash: Option<&str>) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET user_code_hash = $2 WHERE subject = $1")
            .bind(subject.as_str())
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(one_row(&result))
    }

    /// Locks or unlocks a user; `false` when there is no such user.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject, locked = locked), err(level = "debug"))]
    pub async fn set_user_locked(&self, subject: &Subject, locked: bool) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET locked = $2 WHERE subject = $1")
            .bind(subject.as_str())
            .bind(flag(locked))
            .execute(&self.pool)
            .await?;
        Ok(one_row(&result))
    }

    /// Sets or clears a user's argon2 PHC string; `false` when there is no such user.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn set_password_hash(&self, subject: &Subject, hash: Option<&str>) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET password_hash = $2 WHERE subject = $1")
            .bind(subject.as_str())
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(one_row(&result))
    }

    /// Sets or clears a test user's automatic decision; `false` when there is no such user.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn set_test_decision(
        &self,
        subject: &Subject,
        decision: Option<TestDecision>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET test_decision = $2 WHERE subject = $1")
            .bind(subject.as_str())
            .bind(decision.map(TestDecision::as_str))
            .execute(&self.pool)
            .await?;
        Ok(one_row(&result))
    }
}
