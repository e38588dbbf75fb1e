//! Test support for CIBA: clients, users, polling and decisions.

use outband_protocol::{ClientId, ClientMetadata, GrantType, Scope};

use crate::support::{Reply, TestServer, T0};

/// The `[outbound]` section that lets the server call receivers on 127.0.0.1 over http.
pub const LOOPBACK_OUTBOUND: &str =
    "[outbound]\nallow_insecure_http_loopback = true\nallow_private = [\"127.0.0.1/32\"]\n";

impl TestServer {
    /// Registers a CIBA client (secret basic) in `mode`, notifying `endpoint` for ping/push.
    pub async fn add_ciba_client(&self, id: &str, mode: outband_protocol::DeliveryMode, endpoint: Option<&str>) {
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.client_name = Some(format!("{id} shop"));
        meta.scope = Scope::new("openid payments");
        meta.grant_types = vec![GrantType::Ciba];
        meta.backchannel_token_delivery_mode = Some(mode);
        meta.backchannel_client_notification_endpoint = endpoint.map(|e| url::Url::parse(e).unwrap());
        self.add_client(meta, Some(&format!("{id}-secret"))).await;
    }

    /// Creates a user; returns its subject.
    pub async fn add_user(&self, username: &str, test: Option<outband_server::store::TestDecision>) -> String {
        let user = outband_server::store::UserRecord {
            subject: outband_protocol::Subject::new(format!("sub-{username}")),
            username: username.to_owned(),
            email: Some(format!("{username}@example.com")),
            phone: None,
            name: None,
            password_hash: None,
            user_code_hash: None,
            locked: false,
            test_decision: test,
            created_at: T0,
        };
        self.state.store.insert_user(&user).await.unwrap();
        user.subject.to_string()
    }

    /// `POST /bc-authorize` as client `id` (secret `<id>-secret`).
    pub async fn bc_authorize(&self, id: &str, body: &str) -> Reply {
        self.post_form("/bc-authorize", body, Some((id, &format!("{id}-secret"))))
            .await
    }

    /// Polls the token endpoint with the CIBA grant.
    pub async fn poll(&self, id: &str, auth_req_id: &str) -> Reply {
        let body = format!("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={auth_req_id}");
        self.post_form("/token", &body, Some((id, &format!("{id}-secret"))))
            .await
    }

    /// The stored request of an `auth_req_id`.
    pub async fn ciba_request(&self, auth_req_id: &str) -> outband_server::store::CibaRequestRecord {
        let hash = outband_protocol::AuthReqId::new(auth_req_id).hash();
        self.state.store.ciba_request_by_hash(&hash).await.unwrap().unwrap()
    }

    /// Approves or denies like a device would, through the lifecycle.
    pub async fn decide(&self, auth_req_id: &str, approve: bool) {
        let request = self.ciba_request(auth_req_id).await;
        let decision = outband_server::store::CibaDecision {
            approve,
            device_id: None,
            amr: Some("[\"hwk\",\"pin\"]".into()),
            acr: None,
            deny_reason: (!approve).then(|| "denied".into()),
        };
        outband_server::ciba::lifecycle::decide(&self.state, &request.id, &decision)
            .await
            .unwrap();
    }

    /// The server's public keys.
    pub async fn jwks(&self) -> Vec<outband_protocol::jose::Jwk> {
        let jwks = self.get("/jwks").await.json;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| outband_protocol::jose::parse_jwk(k).unwrap())
            .collect()
    }
}
