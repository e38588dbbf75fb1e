//! A TCP proxy between a server and PostgreSQL that the test can cut: every
//! open connection is dropped at once and new ones are closed as soon as they
//! are accepted, as when the database restarts or the network between them
//! fails; [`DbProxy::restore`] lets connections through again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct Inner {
    upstream: String,
    cut: AtomicBool,
    /// The tasks copying the open connections, aborted (and so closed) by a cut.
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// The proxy, served in this test process until dropped.
pub struct DbProxy {
    /// `127.0.0.1:<port>`: put it in place of the database's host and port.
    pub addr: String,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl DbProxy {
    /// Listens on a free port and passes every connection on to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address").to_string();
        let inner = Arc::new(Inner {
            upstream: upstream.to_owned(),
            cut: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept(listener, Arc::clone(&inner)));
        Self { addr, inner, task }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, database_url: &str) -> String {
        let mut url = url::Url::parse(database_url).expect("a database URL");
        let (host, port) = self.addr.rsplit_once(':').expect("host:port");
        url.set_host(Some(host)).expect("a host");
        url.set_port(Some(port.parse().expect("a port"))).expect("a port");
        url.to_string()
    }

    /// Drops every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        for connection in self.inner.connections.lock().expect("the proxy's lock").drain(..) {
            connection.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.inner.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn accept(listener: TcpListener, inner: Arc<Inner>) {
    while let Ok((mut client, _)) = listener.accept().await {
        if inner.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let upstream = inner.upstream.clone();
        let connection = tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        let mut connections = inner.connections.lock().expect("the proxy's lock");
        connections.retain(|c| !c.is_finished());
        connections.push(connection);
    }
}
