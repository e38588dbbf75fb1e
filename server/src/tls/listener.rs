//! The TLS listener: TCP connections accepted, handshakes run concurrently (one
//! slow client never holds up the others), and each finished connection handed
//! to `axum::serve` with its [`PeerInfo`]: the TCP peer and the certificate
//! chain the client presented.
//!
//! The client certificate verifier, [`AnyClientCertificate`], accepts any chain:
//! rustls still checks the client's `CertificateVerify` signature, so the
//! client proves it holds the certificate's private key. Which certificates are
//! good enough is decided later, per client (RFC 8705 §2): chained to a
//! configured CA for `tls_client_auth`, registered in the client's JWKS for
//! `self_signed_tls_client_auth`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::ClientAuthMode;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet picked up by the server.
const BACKLOG: usize = 64;

/// The connection a request arrived on (`ConnectInfo<PeerInfo>`).
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The TCP peer (the client, or the proxy in front of us).
    pub addr: SocketAddr,
    /// The certificate chain the client presented in the TLS handshake, leaf
    /// first; empty on plain connections and when none was sent.
    pub chain: Arc<[CertificateDer<'static>]>,
}

impl Connected<IncomingStream<'_, TcpListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Self {
            addr: *stream.remote_addr(),
            chain: no_chain(),
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

fn no_chain() -> Arc<[CertificateDer<'static>]> {
    Arc::new([])
}

/// A listener that yields TLS connections (see the module docs).
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, PeerInfo)>,
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`. The accepting task stops when the
    /// listener is dropped.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self { local, ready })
    }
}

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<(TlsStream<TcpStream>, PeerInfo)>) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %err, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(peer = %addr, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let chain: Arc<[CertificateDer<'static>]> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map_or_else(no_chain, |certs| certs.iter().map(|c| c.clone().into_owned()).collect());
            let _ = tx.send((stream, PeerInfo { addr, chain })).await;
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task only ends once this receiver is gone, so this
            // is never reached; waiting forever is the honest answer if it were.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(PeerInfo {
            addr: self.local,
            chain: no_chain(),
        })
    }
}

/// Accepts any client certificate chain, but checks the handshake signature
/// made with its key (see the module docs).
#[derive(Debug)]
pub struct AnyClientCertificate {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl AnyClientCertificate {
    /// A verifier for `mode` (`Required` refuses clients without a certificate).
    pub fn new(provider: Arc<CryptoProvider>, mode: ClientAuthMode) -> Arc<Self> {
        Arc::new(Self {
            provider,
            mandatory: mode == ClientAuthMode::Required,
        })
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: self-signed certificates have no CA to name.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
