//! The claims a grant's authorization asked for at UserInfo through the
//! `claims` request parameter ([`crate::claims`]), kept with the grant (its
//! `userinfo_claims` column) so every access token of the grant, refreshed
//! ones too, gets them.

use super::{column, Store, StoreError};

impl Store {
    /// Sets the UserInfo claim names of grant `grant_id` (the latest
    /// authorization that asked for some sets them); `false` when there is no such grant.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn set_userinfo_claims(&self, grant_id: &str, names: &[String]) -> Result<bool, StoreError> {
        let text = serde_json::to_string(names).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let result = sqlx::query("UPDATE grants SET userinfo_claims = $2 WHERE grant_id = $1")
            .bind(grant_id)
            .bind(text)
            .execute(&self.pool)
            .await?;
        Ok(super::one_row(&result))
    }

    /// The UserInfo claim names requested for grant `grant_id` (none when it has none, or is unknown).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn userinfo_claims(&self, grant_id: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT userinfo_claims FROM grants WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(text) = row
            .as_ref()
            .map(|r| column::<Option<String>>(r, "userinfo_claims"))
            .transpose()?
        else {
            return Ok(Vec::new());
        };
        text.map_or(Ok(Vec::new()), |t| {
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("grant {grant_id} userinfo_claims: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use outband_protocol::{ClientId, Scope, Subject};

    use crate::store::testing::fresh_store;
    use crate::store::GrantRecord;

    #[tokio::test]
    async fn userinfo_claims_stay_with_their_grant() {
        let store = fresh_store().await;
        let grant = GrantRecord {
            grant_id: "g1".into(),
            client_id: ClientId::new("c"),
            subject: Subject::new("s"),
            scope: Scope::new("openid"),
            claims: vec!["sub".into()],
            authorization_details: None,
            created_at: 10,
            updated_at: 10,
            version: 0,
            revoked: false,
        };
        assert!(store.insert_grant(&grant).await.unwrap());
        assert!(store.userinfo_claims("g1").await.unwrap().is_empty());
        let names = vec!["email".to_owned(), "name".to_owned()];
        assert!(store.set_userinfo_claims("g1", &names).await.unwrap());
        assert_eq!(store.userinfo_claims("g1").await.unwrap(), names);
        assert!(!store.set_userinfo_claims("other", &names).await.unwrap());
        assert!(store.userinfo_claims("other").await.unwrap().is_empty());
        assert_eq!(
            store.grant("g1").await.unwrap().unwrap(),
            grant,
            "the grant itself is unchanged"
        );
    }
}
