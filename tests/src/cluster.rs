//! Several `outband-server serve` processes sharing one database and one key
//! file, behind a [`Proxy`].
//!
//! Every node is configured with the same `issuer`, the proxy's URL, as nodes
//! behind a load balancer are: tokens, discovery, DPoP `htu` and request JWTs
//! all name the issuer, never a node. Each node listens on its own port.
//! `outband-pos` and `outband-device` find every endpoint through the
//! issuer's discovery document, so they cannot be pointed at one node; the
//! proxy routes each request by path instead ([`Proxy::route`]), which is how
//! a test puts the CIBA request on node A, the device's stream on node B and
//! its decision on node C.

use std::sync::Arc;

use crate::server::NodeConfig;
use crate::{binaries, free_port, Proxy, Server};

/// The nodes and their proxy.
pub struct Cluster {
    pub nodes: Vec<Server>,
    pub proxy: Proxy,
}

impl Cluster {
    /// Starts `count` nodes on one fresh database (PostgreSQL: see
    /// [`crate::on_postgres`]) with [`Server::start`]'s clients plus
    /// `extra_toml`. Node 0 starts first (it migrates the database and makes
    /// the signing keys), the others after it, concurrently.
    pub async fn start(count: usize, extra_toml: &str) -> Self {
        assert!(count >= 1, "a cluster has nodes");
        binaries();
        let home = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let issuer = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let database_url = outband_server::store::testing::fresh_database_url().await;
        let notify_port = free_port();
        let mut nodes: Vec<Server> = (0..count)
            .map(|index| {
                let config = NodeConfig {
                    issuer: &issuer,
                    port: free_port(),
                    database_url: &database_url,
                    notify_port,
                    extra_toml,
                };
                Server::configure(Arc::clone(&home), &format!("node{index}"), &config)
            })
            .collect();
        let proxy = Proxy::start(listener, nodes.iter().map(|node| node.url.clone()).collect()).await;
        let (first, others) = nodes.split_first_mut().expect("one node at least");
        first.spawn().await;
        others.iter_mut().for_each(Server::launch);
        for node in others {
            node.wait_ready().await;
        }
        Self { nodes, proxy }
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(index, node)| format!("--- node {index}:\n{}", node.log()))
            .collect()
    }
}
