//! The outbound HTTP client, built on hyper's pooled client rather than reqwest: a
//! webhook needs none of reqwest's layers (redirects, retries, proxies, cookies), and in
//! profiles they cost more per attempt than hyper's own work (two URL parses each).
//! What it keeps: keep-alive pools, HTTP/1.1 and HTTP/2 (ALPN), rustls with the web
//! roots plus any configured CA, and connections only to addresses the resolver checked.
//! hyper follows no redirect and reads no proxy setting; it moves a request to a new
//! connection only if the pooled one closed before a byte of it was written, so every
//! request a receiver sees is one recorded attempt.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::resolver::GuardedResolver;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One shared client; cloning it shares its connection pools.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA bundle {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the CA bundle {path} holds no usable certificate: {reason}")]
    CaBundle {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Trusted roots: the built-in web roots and every certificate in `ca_file`.
pub(crate) fn trusted_roots(
    ca_file: Option<&std::path::Path>,
) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Some(path) = ca_file else {
        return Ok(roots);
    };
    let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| ClientError::CaBundle {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad("no PEM certificate found".into()));
    }
    for certificate in certificates {
        roots.add(certificate).map_err(|e| bad(e.to_string()))?;
    }
    Ok(roots)
}

/// A client that verifies certificates against `roots`, or (`roots` = None) one that
/// accepts any certificate but still checks the handshake's signatures.
pub(crate) fn build(
    resolver: GuardedResolver,
    roots: Option<Arc<RootCertStore>>,
) -> Result<HttpClient, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let tls = match roots {
        Some(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    let mut tcp = HttpConnector::new_with_resolver(resolver);
    // The TLS layer decides the scheme; this one only opens the socket.
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    tcp.set_nodelay(true);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(tcp);
    // The pool timer reaps connections idle past the pool's timeout (90 s); without it
    // an idle connection to a destination never sent to again would stay open.
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}

/// `tls_verify: false`: any certificate is accepted (the server must allow it), but the
/// handshake must still be signed by the key the certificate names.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl AnyCertificate {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.signature_verification_algorithms
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}
