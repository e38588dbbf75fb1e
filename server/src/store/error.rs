//! [`StoreError`]: what can go wrong below the Store API, sorted by what the
//! caller does about it (report a conflict, answer `temporarily_unavailable`,
//! or log a server error).

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the same unique key (id, username, e-mail, phone, token hash) exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database cannot be reached right now (pool timeout, connection refused, I/O).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not decode (bad JSON, unknown enum value, wrong column type).
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl StoreError {
    /// A unique violation becomes `Conflict(what)`; anything else converts as usual.
    /// Inserts use this so the message names the record instead of a constraint.
    pub(crate) fn conflict_as(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        move |err| match Self::from(err) {
            Self::Conflict(_) => Self::Conflict(what.into()),
            other => other,
        }
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|e| e.is_unique_violation())
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_unique_violation(&err) {
            let what = err
                .as_database_error()
                .and_then(|e| e.constraint().map(str::to_owned))
                .unwrap_or_else(|| "record".to_owned());
            return Self::Conflict(what);
        }
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.to_string()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                Self::Corrupt(err.to_string())
            }
            other => Self::Database(other),
        }
    }
}
