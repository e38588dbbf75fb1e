//! The claims a grant's authorization asked for at UserInfo through the
//! `claims` request parameter ([`crate::claims`]), kept with the grant (its
//! `userinfo_claims` column) so every access token of the grant, refreshed
//! ones too, gets them. Only names the grant's scope releases are kept
//! ([`crate::claims::ClaimsRequest::userinfo_names`]); grant management sets
//! them with the grant's content ([`crate::grant_management::settle`]).

use super::grants::claims_text;
use super::{column, GrantRecord, Store, StoreError};

impl Store {
    /// Sets the UserInfo claim names of grant `grant_id`; `false` when there is no such grant.
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

    /// [`Store::update_grant`] that also sets the grant's UserInfo claim names,
    /// in the same statement (so a concurrent change of the grant makes both fail).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn update_grant_with_userinfo_claims(
        &self,
        grant: &GrantRecord,
        names: &[String],
    ) -> Result<bool, StoreError> {
        let names = serde_json::to_string(names).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let result = sqlx::query(
            "UPDATE grants SET scope = $3, claims = $4, authorization_details = $5, updated_at = $6, \
             userinfo_claims = $7, version = version + 1 WHERE grant_id = $1 AND version = $2 AND revoked = 0",
        )
        .bind(grant.grant_id.as_str())
        .bind(grant.version)
        .bind(grant.scope.as_str())
        .bind(claims_text(&grant.claims)?)
        .bind(grant.authorization_details.as_deref())
        .bind(grant.updated_at)
        .bind(names)
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
    use outband_protocol::Scope;

    use crate::store::testing::fresh_store;
    use crate::store::GrantRecord;

    #[tokio::test]
    async fn userinfo_claims_stay_with_their_grant() {
        let store = fresh_store().await;
        let grant = crate::store::grants::tests::grant("g1");
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
        let changed = GrantRecord {
            scope: Scope::new("openid phone"),
            updated_at: 11,
            ..grant.clone()
        };
        let phone = vec!["phone_number".to_owned()];
        assert!(store.update_grant_with_userinfo_claims(&changed, &phone).await.unwrap());
        assert_eq!(store.userinfo_claims("g1").await.unwrap(), phone);
        let stored = store.grant("g1").await.unwrap().unwrap();
        assert_eq!((stored.scope.as_str(), stored.version), ("openid phone", 1));
        assert!(
            !store.update_grant_with_userinfo_claims(&changed, &[]).await.unwrap(),
            "an older version changes nothing"
        );
        assert_eq!(store.userinfo_claims("g1").await.unwrap(), phone);
    }
}
