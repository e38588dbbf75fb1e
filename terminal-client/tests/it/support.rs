//! The terminal's side of its tests. The server is
//! [`outband_server::test_server::TestServer`] (feature `test-support`): a real
//! Outband server on 127.0.0.1:0, on its own runtime with real time and a
//! `ManualClock`, so a test moves the server's time by hand while its own
//! runtime may pause tokio time (polling intervals) without pausing the server.

use std::sync::Arc;

use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientSecret, SigningAlg};
use outband_server::clock::Clock;
pub use outband_server::test_server::{TestServer, T0};
use outband_terminal::{CibaClient, CibaClientBuilder, ClientAuth};

/// What the terminal's tests add to the [`TestServer`].
pub trait TerminalServer {
    /// A client builder for client `id` (secret basic), with the server's
    /// clock and an HTTP client that keeps no timers, so paused tokio time only
    /// moves when the client sleeps.
    fn client(&self, id: &str) -> CibaClientBuilder;
}

impl TerminalServer for TestServer {
    fn client(&self, id: &str) -> CibaClientBuilder {
        let clock = self.clock.clone();
        CibaClient::builder()
            .set_issuer(self.url.clone())
            .set_client_id(id)
            .set_client_auth(ClientAuth::ClientSecretBasic(ClientSecret::new(format!("{id}-secret"))))
            .set_http_client(test_http_client())
            .set_clock(Arc::new(move || clock.now()))
    }
}

/// No timeouts and no pool-idle timer: with paused time, tokio jumps to the
/// next timer whenever the runtime waits on the network, which would fire them.
fn test_http_client() -> reqwest::Client {
    reqwest::Client::builder().pool_idle_timeout(None).build().unwrap()
}

/// A fresh private key of `alg`.
pub fn new_key(alg: SigningAlg) -> SigningKey {
    SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap()
}

/// A sale of EUR 12.50 to `customer`.
pub fn sale(customer: &str) -> outband_terminal::SaleRequest {
    let mut sale = outband_terminal::SaleRequest::new(
        "12.50".parse().unwrap(),
        "EUR".parse().unwrap(),
        customer,
        "Corner Café",
    );
    sale.iban = Some("DE89370400440532013000".parse().unwrap());
    sale
}
