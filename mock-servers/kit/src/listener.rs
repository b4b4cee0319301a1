//! Accept loops on ephemeral loopback ports, with shutdown on drop.
//!
//! `axum::serve` has no TLS, so HTTPS is a hand-written loop: accept TCP, run the rustls handshake,
//! then let hyper-util's auto builder speak HTTP/1.1 or HTTP/2 (chosen by ALPN). Each connection
//! task watches the shutdown signal, so dropping [`Running`] closes live connections too, not just
//! the listening socket.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::KitError;
use crate::journal::{self, Journal, PeerInfo};

/// A running listener. Dropping it stops accepting and closes open connections.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    journal: Journal,
    shutdown: watch::Sender<bool>,
}

impl Running {
    /// The bound loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `"https"`, `"http"` or `"tcp"`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// `scheme://host:port` for a virtual host name served by this listener.
    pub fn origin(&self, host: &str) -> String {
        format!("{}://{host}:{}", self.scheme, self.addr.port())
    }

    /// The journal of HTTP requests received (empty for raw TCP listeners and unrecorded
    /// servers).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// A receiver that turns `true` when this listener shuts down (for long-running handlers).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Binds `127.0.0.1:0`.
async fn bind_loopback() -> Result<TcpListener, KitError> {
    Ok(TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?)
}

/// Serves `router` over plain HTTP on an ephemeral loopback port, journalling every request.
pub async fn serve_http(router: Router) -> Result<Running, KitError> {
    serve_router(bind_loopback().await?, router, None)
}

/// Serves `router` over HTTPS on an ephemeral loopback port with the given TLS configuration
/// (typically [`crate::TestCa::server_config`]), journalling every request.
pub async fn serve_https(
    router: Router,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Running, KitError> {
    serve_router(bind_loopback().await?, router, Some(tls))
}

/// Serves `router` on an already bound listener (for binaries that take `--listen`, and for
/// fixed ports a third party was told about).
///
/// Must be called inside a tokio runtime: it spawns the accept loop.
pub fn serve_router(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Running, KitError> {
    let journal = Journal::new();
    let router = router.layer(axum::middleware::from_fn_with_state(
        journal.clone(),
        journal::record,
    ));
    serve_with_journal(listener, router, tls, journal)
}

/// Serves `router` like [`serve_router`] but keeps no journal (its [`Running::journal`] stays
/// empty). For long-lived servers that are not mocks, such as the reference AS: a journal keeps
/// every request for the listener's lifetime, memory that grows without bound under load.
///
/// Must be called inside a tokio runtime: it spawns the accept loop.
pub fn serve_router_unrecorded(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Running, KitError> {
    serve_with_journal(listener, router, tls, Journal::new())
}

/// The accept loop behind [`serve_router`] and [`serve_router_unrecorded`].
fn serve_with_journal(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    journal: Journal,
) -> Result<Running, KitError> {
    let addr = listener.local_addr()?;
    let (shutdown, signal) = watch::channel(false);
    let acceptor = tls.map(TlsAcceptor::from);
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    tokio::spawn(accept_loop(
        listener,
        signal,
        move |stream, remote, signal| {
            let router = router.clone();
            let acceptor = acceptor.clone();
            async move {
                match acceptor {
                    None => {
                        let peer = PeerInfo {
                            remote,
                            sni: None,
                            scheme: "http",
                        };
                        serve_connection(stream, router, peer, signal).await;
                    }
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let sni = tls.get_ref().1.server_name().map(str::to_owned);
                            let peer = PeerInfo {
                                remote,
                                sni,
                                scheme: "https",
                            };
                            serve_connection(tls, router, peer, signal).await;
                        }
                        // A failed handshake is the peer's problem (e.g. it does not trust the CA).
                        Err(error) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                    },
                }
            }
        },
    ));
    Ok(Running {
        addr,
        scheme,
        journal,
        shutdown,
    })
}

/// Runs one HTTP connection until it ends or the listener shuts down.
async fn serve_connection<S>(
    stream: S,
    router: Router,
    peer: PeerInfo,
    mut signal: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: axum::extract::Request<_>| {
        request.extensions_mut().insert(peer.clone());
        request
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::trace!(%error, "connection ended with an error");
            }
        }
        _ = signal.wait_for(|stop| *stop) => {}
    }
}

/// Runs `handler` for every TCP connection accepted on an ephemeral loopback port (raw protocols
/// such as SMTP). The handler receives the stream, the peer address and the shutdown signal.
pub async fn serve_tcp<F, Fut>(handler: F) -> Result<Running, KitError>
where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_tcp_on(bind_loopback().await?, handler)
}

/// [`serve_tcp`] on an already bound listener (a fixed port that a third party was told about).
///
/// Must be called inside a tokio runtime: it spawns the accept loop.
pub fn serve_tcp_on<F, Fut>(listener: TcpListener, handler: F) -> Result<Running, KitError>
where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let (shutdown, signal) = watch::channel(false);
    tokio::spawn(accept_loop(listener, signal, handler));
    Ok(Running {
        addr,
        scheme: "tcp",
        journal: Journal::new(),
        shutdown,
    })
}

/// Accepts until shutdown, spawning `handler` per connection; each connection task is dropped
/// (closing its socket) when the shutdown signal fires.
async fn accept_loop<F, Fut>(listener: TcpListener, mut signal: watch::Receiver<bool>, handler: F)
where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = signal.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                let task = handler(stream, remote, signal.clone());
                let mut stop = signal.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = task => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                });
            }
            // Transient accept errors (EMFILE, ECONNABORTED) must not kill the listener.
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
