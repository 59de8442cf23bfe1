//! The running simulator and its handle.

use crate::server::serve;
use crate::state::{KeyState, State};
use crate::tls::TlsIdentity;
use crate::{
    Fault, KeyConfig, KeyStats, Latency, SeenRequest, SimConfig, SimConfigError, SimError, SimStats,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running simulator of OpenAI and Azure OpenAI chat-completions endpoints.
///
/// It serves in background tasks of the current tokio runtime until
/// [`shutdown`](Simulator::shutdown) or drop. See the [crate documentation](crate) for the
/// behaviour.
pub struct Simulator {
    addr: SocketAddr,
    /// The certificate served over HTTPS (PEM), when TLS is on.
    certificate_pem: Option<String>,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Starts a simulator on the configured listen address (`127.0.0.1:0`, a free loopback
    /// port, unless [`SimConfig::listen`] says otherwise).
    ///
    /// Must be called within a tokio runtime.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        let addr = config.listen;
        Simulator::start_on(config, addr).await
    }

    /// Starts a simulator on `addr`, whatever the configuration's listen address says.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> Result<Simulator, SimError> {
        let tls = if config.tls {
            Some(TlsIdentity::generate()?)
        } else {
            None
        };
        let state = Arc::new(State::new(config)?);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let (shutdown, watcher) = watch::channel(false);
        let (acceptor, certificate_pem) = match tls {
            Some(identity) => (Some(identity.acceptor), Some(identity.certificate_pem)),
            None => (None, None),
        };
        let task = tokio::spawn(serve(listener, state.clone(), acceptor, watcher));
        tracing::debug!(%addr, tls = certificate_pem.is_some(), "simulator listening");
        Ok(Simulator {
            addr,
            certificate_pem,
            state,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1` (`https://` with
    /// [`SimConfig::tls`]; a wildcard listen address is reported as loopback).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.endpoint())
    }

    /// The Azure-style endpoint, `http://127.0.0.1:PORT` (`https://` with [`SimConfig::tls`]).
    pub fn endpoint(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if self.certificate_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The self-signed certificate the simulator serves over HTTPS, as PEM, for clients to
    /// trust (`OpenAiConfig::root_certificate_pem` in `lbgpt-openai`); `None` without
    /// [`SimConfig::tls`].
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// Makes the next requests of `key` (its key string or id) meet these faults, one each in
    /// order, before normal service (and random faults) resume. Appends to faults already
    /// scripted. A key the simulator does not know is ignored with a warning (its requests get
    /// 401 anyway).
    pub fn script(&self, key: &str, faults: impl IntoIterator<Item = Fault>) {
        match self.state.find_key(key) {
            Some(key) => key.script(faults),
            None => tracing::warn!("simulator: script for an unknown key ignored"),
        }
    }

    /// Revokes `key` (its key string or id): from now on its requests get `401` with code
    /// `invalid_api_key`, as a deleted or rotated-out key does (counted in
    /// [`KeyStats::unauthorized`]; requests already past authentication finish normally).
    /// Returns whether the key is known.
    pub fn revoke_key(&self, key: &str) -> bool {
        self.with_key(key, |key| key.set_revoked(true))
    }

    /// Undoes [`revoke_key`](Simulator::revoke_key). Returns whether the key is known.
    pub fn restore_key(&self, key: &str) -> bool {
        self.with_key(key, |key| key.set_revoked(false))
    }

    /// Makes `key` (its key string or id) answer every request with `429` code
    /// `insufficient_quota` (the billing quota is used up; no `retry-after`), or serve normally
    /// again with `false`. Counted in [`KeyStats::insufficient_quota`]. Returns whether the key
    /// is known.
    ///
    /// A revoked key answers 401 first. While either switch applies, scripted faults wait
    /// and the key's limits are not charged.
    pub fn set_quota_exhausted(&self, key: &str, exhausted: bool) -> bool {
        self.with_key(key, |key| key.set_quota_exhausted(exhausted))
    }

    /// Starts serving another key (as if it had been configured), its limits starting now.
    /// Refused with the same checks as at start (errors name `key.<setting>`), and when its
    /// key string or id is already served. A key added under the id of a removed key counts
    /// on from the removed key's counters.
    pub fn add_key(&self, key: KeyConfig) -> Result<(), SimConfigError> {
        self.state.add_key(&key)
    }

    /// Stops serving `key` (its key string or id): from now on it is unknown (`401`
    /// `invalid_api_key`, counted nowhere per key), its script and limits are dropped, while
    /// its counters stay in [`stats`](Simulator::stats) and
    /// [`key_stats`](Simulator::key_stats). Requests already past authentication finish
    /// normally. Returns whether the key was served.
    pub fn remove_key(&self, key: &str) -> bool {
        self.state.remove_key(key)
    }

    /// Changes the latency of successful answers from now on (requests already sleeping keep
    /// theirs).
    pub fn set_latency(&self, latency: Latency) {
        self.state.set_latency(latency);
    }

    fn with_key(&self, key: &str, change: impl FnOnce(&KeyState)) -> bool {
        match self.state.find_key(key) {
            Some(key) => {
                change(&key);
                true
            }
            None => {
                tracing::warn!("simulator: change to an unknown key ignored");
                false
            }
        }
    }

    /// A snapshot of every counter (keys removed with [`remove_key`](Simulator::remove_key)
    /// included).
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// A snapshot of one key's counters, by key string or id (removed keys included); `None`
    /// for a key never served.
    pub fn key_stats(&self, key: &str) -> Option<KeyStats> {
        self.state.key_stats(key)
    }

    /// The most recent requests received (up to [`SimConfig::seen_capacity`]), oldest first,
    /// with credentials redacted.
    pub fn seen_requests(&self) -> Vec<SeenRequest> {
        self.state.seen.snapshot()
    }

    /// Stops accepting connections, closes the open ones and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("keys", &self.state.key_count())
            .finish()
    }
}
