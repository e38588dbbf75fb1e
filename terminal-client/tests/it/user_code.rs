//! CIBA `user_code` (CIBA Core §7.1): a client registered with
//! `backchannel_user_code_parameter` must send the customer's code, and the
//! till sends it only to a server whose discovery says it takes one.

use std::sync::Arc;

use outband_protocol::{DeliveryMode, ErrorCode, Password, SigningAlg, Subject, TokenEndpointAuthMethod};
use outband_server::store::{CibaState, TestDecision};
use outband_terminal::{CancelToken, ClientAuth, Outcome, RequestError};
use serde_json::{json, Value};

use crate::support::{new_key, sale, TerminalServer, TestServer};

const CODE: &str = "7391-blue";

/// A server with client `till` registered for `user_code` and test user bob
/// (approves at once) whose user code is [`CODE`].
async fn server() -> TestServer {
    let server = TestServer::start();
    server
        .add_client("till", DeliveryMode::Poll, None, |meta| {
            meta.backchannel_user_code_parameter = true;
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    let hash = outband_server::password::hash_user_code(&Password::new(CODE)).unwrap();
    server
        .on_server(|state| async move {
            let subject = Subject::new("sub-bob");
            assert!(state.store.set_user_code_hash(&subject, Some(&hash)).await.unwrap());
        })
        .await;
    server
}

fn with_code(code: Option<&str>) -> outband_terminal::SaleRequest {
    let mut sale = sale("bob@example.com");
    sale.user_code = code.map(Password::new);
    sale
}

fn oauth_error(result: Result<outband_terminal::Started, RequestError>) -> (u16, ErrorCode) {
    match result {
        Err(RequestError::Oauth { status, error, .. }) => (status, error.error),
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_user_code_is_sent_and_checked() {
    let server = server().await;
    let client = server.client("till").build().unwrap();
    assert!(client.supports_user_code().await.unwrap(), "discovery says so");

    assert_eq!(
        oauth_error(client.start(with_code(None)).await),
        (400, ErrorCode::MissingUserCode)
    );
    assert_eq!(
        oauth_error(client.start(with_code(Some("0000-red"))).await),
        (400, ErrorCode::InvalidUserCode)
    );

    let started = client.start(with_code(Some(CODE))).await.unwrap();
    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Redeemed);
    assert!(
        !format!("{:?}", started.sale).contains(CODE),
        "the code never shows in Debug output"
    );
}

#[tokio::test(start_paused = true)]
async fn a_signed_request_carries_the_user_code() {
    let server = server().await;
    let key = Arc::new(new_key(SigningAlg::ES256));
    let jwks = json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] });
    server
        .add_client("signed", DeliveryMode::Poll, None, |meta| {
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
            meta.jwks = Some(jwks);
            meta.backchannel_authentication_request_signing_alg = Some(SigningAlg::ES256);
            meta.backchannel_user_code_parameter = true;
        })
        .await;
    let client = server
        .client("signed")
        .set_client_auth(ClientAuth::PrivateKeyJwt(key.clone()))
        .set_request_object_key(Some(key))
        .build()
        .unwrap();
    assert_eq!(
        oauth_error(client.start(with_code(Some("0000-red"))).await),
        (400, ErrorCode::InvalidUserCode)
    );
    let started = client.start(with_code(Some(CODE))).await.unwrap();
    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
}
