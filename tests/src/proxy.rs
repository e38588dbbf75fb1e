//! A path-routing HTTP reverse proxy: the load balancer in front of a
//! [`Cluster`](crate::Cluster). Every node has the same `issuer` (the proxy's
//! address), so the POS and the device, which derive every URL from the
//! issuer's discovery document, talk to the proxy; the test decides per
//! request path which node answers, and reads back which node served what.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Which node (index into the backends) serves a request path.
pub type Route = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// One request the proxy passed on.
#[derive(Clone, Debug)]
pub struct Served {
    /// The node's index.
    pub node: usize,
    pub method: String,
    pub path: String,
    /// The node's status, or 502 when it could not be reached.
    pub status: u16,
}

struct Inner {
    backends: Vec<String>,
    route: Mutex<Route>,
    served: Mutex<Vec<Served>>,
    http: reqwest::Client,
}

/// The proxy, served in this test process until dropped.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`: the cluster's issuer.
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

/// Request bodies larger than this are refused (the server's own limit is lower).
const MAX_BODY: usize = 1 << 20;

impl Proxy {
    /// Listens on `listener` and sends everything to node 0 until [`Proxy::route`].
    pub async fn start(listener: tokio::net::TcpListener, backends: Vec<String>) -> Self {
        let url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // A fresh connection per request: a killed node leaves no stale ones.
            .pool_max_idle_per_host(0)
            .build()
            .expect("the proxy's HTTP client");
        let inner = Arc::new(Inner {
            backends,
            route: Mutex::new(Arc::new(|_: &str| 0)),
            served: Mutex::new(Vec::new()),
            http,
        });
        let app = Router::new().fallback(forward).with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner, task }
    }

    /// From now on, `route(path)` picks the node of each request.
    pub fn route(&self, route: impl Fn(&str) -> usize + Send + Sync + 'static) {
        *self.inner.route.lock().expect("the proxy's route") = Arc::new(route);
    }

    /// Every request passed on so far.
    pub fn served(&self) -> Vec<Served> {
        self.inner.served.lock().expect("the proxy's record").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::HOST,
        header::TRANSFER_ENCODING,
        header::TE,
        header::UPGRADE,
        header::CONTENT_LENGTH,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

async fn forward(State(proxy): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    let route = Arc::clone(&proxy.route.lock().expect("the proxy's route"));
    let node = route(&path).min(proxy.backends.len() - 1);
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut outgoing = proxy
        .http
        .request(parts.method.clone(), format!("{}{target}", proxy.backends[node]))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| !hop_by_hop(name)) {
        outgoing = outgoing.header(name, value);
    }
    let record = |status: u16| {
        proxy.served.lock().expect("the proxy's record").push(Served {
            node,
            method: parts.method.to_string(),
            path: path.clone(),
            status,
        });
    };
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(err) => {
            record(502);
            return (StatusCode::BAD_GATEWAY, format!("node {node}: {err}")).into_response();
        }
    };
    record(answer.status().as_u16());
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(name, _)| !hop_by_hop(name)) {
        response = response.header(name, value);
    }
    // Streamed chunk by chunk: the device's event stream never ends by itself.
    let chunks = futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        match answer.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, reqwest::Error>(chunk), Some(answer))),
            Ok(None) => None,
            Err(err) => Some((Err(err), None)),
        }
    });
    response
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
