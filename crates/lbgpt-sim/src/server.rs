//! The accept loop and per-connection serving (HTTP/1.1 with keep-alive).

use crate::handler::ConnControl;
use crate::state::State;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Accepts connections until `shutdown` changes (or its sender is dropped), then closes every
/// open connection.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    state.counters.connection();
                    connections.spawn(serve_connection(stream, state.clone(), tls.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "simulator could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Serves one connection. A handler that applies [`Fault::Reset`](crate::Fault::Reset) asks
/// for a reset through [`ConnControl`]; the connection is then closed with `SO_LINGER` 0, so
/// the kernel sends an RST instead of a FIN.
async fn serve_connection(stream: TcpStream, state: Arc<State>, tls: Option<TlsAcceptor>) {
    let _ = stream.set_nodelay(true);
    // A second descriptor of the same socket, kept here to set SO_LINGER on after hyper took
    // the stream; the RST goes out when the last descriptor closes.
    let (stream, handle) = match split_handle(stream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::warn!(%error, "simulator could not prepare a connection");
            return;
        }
    };
    match tls {
        None => serve_http(stream, state, handle).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => serve_http(stream, state, handle).await,
            Err(error) => tracing::debug!(%error, "simulator TLS handshake failed"),
        },
    }
}

/// Serves HTTP/1.1 on `stream` (plain or TLS) until it closes or a fault asks for a reset.
async fn serve_http<IO>(stream: IO, state: Arc<State>, handle: socket2::Socket)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let control = Arc::new(ConnControl::default());
    let service_control = control.clone();
    let service = service_fn(move |request| {
        let state = state.clone();
        let control = service_control.clone();
        async move { Ok::<_, Infallible>(state.handle(request, control).await) }
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "simulator connection ended with an error");
            }
        }
        () = control.reset_requested() => {
            if let Err(error) = handle.set_linger(Some(Duration::ZERO)) {
                tracing::warn!(%error, "simulator could not set SO_LINGER for a reset");
            }
        }
    }
    drop(handle);
}

/// The stream for hyper and a duplicate descriptor of the same socket.
fn split_handle(stream: TcpStream) -> std::io::Result<(TcpStream, socket2::Socket)> {
    let socket = socket2::Socket::from(stream.into_std()?);
    let handle = socket.try_clone()?;
    let std_stream: std::net::TcpStream = socket.into();
    std_stream.set_nonblocking(true)?;
    Ok((TcpStream::from_std(std_stream)?, handle))
}
