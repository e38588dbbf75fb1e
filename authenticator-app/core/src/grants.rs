//! [`Grant`]: what the user allowed an application, as the AS lists it
//! (`GET /device/v1/grants`), and revoking one (`DELETE /device/v1/grants/{id}`,
//! which also ends every token of it). Same authentication, DPoP and nonce
//! handling as every other call ([`crate::api::DeviceApi::call`]).

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AccountId, Error, Session};

/// A grant the user gave an application, at the account's issuer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant's id at the server (what [`Session::revoke_grant`] takes).
    pub grant_id: String,
    /// The account (device) it was read with; filled in locally.
    #[serde(default = "no_account")]
    pub account: AccountId,
    /// The application's client id.
    pub client_id: String,
    /// The application's name (its client id when it has none).
    pub client_name: String,
    /// The granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The granted authorization details (RFC 9396 JSON array), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
    /// When it was given (unix seconds).
    pub created_at: i64,
    /// When it last changed (unix seconds).
    pub updated_at: i64,
    /// What the application may do, in plain words: one line per scope and
    /// authorization detail, as the server words it (e.g. "make payments you
    /// approve", "pay EUR 12.50 to Corner Café, account DE89…").
    #[serde(default)]
    pub description: Vec<String>,
}

fn no_account() -> AccountId {
    AccountId(String::new())
}

impl Session {
    /// `GET /device/v1/grants`: the live grants of this account's user, most
    /// recently changed first.
    pub async fn grants(&self) -> Result<Vec<Grant>, Error> {
        #[derive(Deserialize)]
        struct Answer {
            grants: Vec<Grant>,
        }
        let result = async {
            let response = self.api().call(Method::GET, "/device/v1/grants", None, None).await?;
            response
                .json::<Answer>()
                .await
                .map_err(|e| Error::Network(format!("the grant list is unreadable ({})", e.without_url())))
        }
        .await;
        let mut grants = self.note(result)?.grants;
        for grant in &mut grants {
            grant.account = self.account().id.clone();
        }
        Ok(grants)
    }

    /// `DELETE /device/v1/grants/{grant_id}`: revokes the user's grant and
    /// every token of it. [`Error::UnknownGrant`] when the server has no live
    /// grant of this user with that id (already revoked, or never was).
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<(), Error> {
        if grant_id.is_empty()
            || !grant_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(Error::UnknownGrant(grant_id.to_owned()));
        }
        let path = format!("/device/v1/grants/{grant_id}");
        let result = self.api().call(Method::DELETE, &path, None, None).await.map(|_| ());
        match self.note(result) {
            Err(Error::Server { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => {
                Err(Error::UnknownGrant(grant_id.to_owned()))
            }
            other => other,
        }
    }
}
