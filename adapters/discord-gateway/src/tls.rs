//! TLS for `wss://`: rustls with the `ring` provider, chosen here, so that no process-level
//! `CryptoProvider` has to be installed and nothing panics on the first connect.

use std::sync::{Arc, OnceLock};

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};

/// Why the default TLS configuration could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// No root certificate was found: the `webpki-roots` feature is off and the system
    /// store (`native-roots`) is empty or unreadable, or neither feature is on.
    #[error("no trusted root certificates: enable the `webpki-roots` or `native-roots` feature, or pass your own rustls ClientConfig")]
    NoRoots,
    /// rustls refused the protocol versions (never with the `ring` provider).
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

/// The default client configuration: the roots of the enabled features, TLS 1.2 and 1.3,
/// the `ring` provider. Built once per process and shared by every shard.
pub fn default_tls_config() -> Result<Arc<ClientConfig>, TlsError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, TlsError>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> Result<Arc<ClientConfig>, TlsError> {
    let roots = roots();
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn roots() -> RootCertStore {
    #[allow(unused_mut)]
    let mut roots = RootCertStore::empty();
    #[cfg(feature = "webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "native-roots")]
    {
        // Certificates the store cannot parse are skipped, like a browser would.
        let found = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(found.certs);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "webpki-roots")]
    #[test]
    fn the_default_config_is_built_once_with_the_mozilla_roots() {
        let a = default_tls_config().expect("config");
        let b = default_tls_config().expect("config");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(roots().len() > 100, "{}", roots().len());
    }
}
