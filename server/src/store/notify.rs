//! Messages between the nodes that share one PostgreSQL database
//! (`NOTIFY`/`LISTEN`). SQLite means one node, so there is nobody to tell:
//! `notify` does nothing and `listen` gives `None`.
//!
//! This is the one place where the backends behave differently on purpose: it is
//! a PostgreSQL feature with no SQLite counterpart, not a dialect difference.

use sqlx::postgres::PgListener;

use super::{Backend, Store, StoreError};

impl Store {
    /// Sends `payload` to every node listening on `channel` (at most 8000 bytes).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A dedicated connection listening on `channel`; `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<PgListener>, StoreError> {
        let Some(url) = &self.postgres_url else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Some(listener))
    }
}
