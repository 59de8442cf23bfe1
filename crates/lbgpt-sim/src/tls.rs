//! HTTPS for the simulator: a self-signed certificate made at start-up.

use crate::SimError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The simulator's TLS identity: what accepts connections, and the certificate clients trust.
pub(crate) struct TlsIdentity {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) certificate_pem: String,
}

impl TlsIdentity {
    /// A new self-signed certificate for `localhost` and `127.0.0.1`, with a fresh key.
    pub(crate) fn generate() -> Result<TlsIdentity, SimError> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|err| SimError::Tls(format!("making the certificate: {err}")))?;
        let certificate_pem = certified.cert.pem();
        let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| SimError::Tls(format!("protocol versions: {err}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| SimError::Tls(format!("installing the certificate: {err}")))?;
        Ok(TlsIdentity {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate_pem,
        })
    }
}
