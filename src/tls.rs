//! rustls configuration: the server side (certificate + key, ALPN `h2` and `http/1.1`) and the
//! upstream side (system roots plus an optional extra CA file; certificates always verified).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setup problem, naming the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read PEM: {cause}")]
    Pem {
        path: PathBuf,
        cause: rustls_pki_types::pem::Error,
    },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {cause}")]
    Rustls { path: PathBuf, cause: rustls::Error },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |cause| TlsError::Pem {
        path: path.to_owned(),
        cause,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The listener's TLS configuration: TLS 1.2 and 1.3 only, ALPN `h2` then `http/1.1`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|cause| TlsError::Pem {
        path: key.to_owned(),
        cause,
    })?;
    let rustls_error = |cause| TlsError::Rustls {
        path: cert.to_owned(),
        cause,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rustls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client configuration for upstreams: the system's roots (when `system_roots`, i.e. for
/// `https` upstreams) plus `ca_file`.
pub fn upstream_config(
    ca_file: Option<&Path>,
    system_roots: bool,
) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if system_roots {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not load a system CA certificate");
        }
        roots.add_parsable_certificates(native.certs);
    }
    if let Some(path) = ca_file {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|cause| TlsError::Rustls {
                path: path.to_owned(),
                cause,
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|cause| TlsError::Rustls {
            path: PathBuf::new(),
            cause,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
