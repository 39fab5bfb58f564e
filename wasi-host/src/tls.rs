//! TLS with rustls (the `ring` provider): reaching persistence servers over
//! `wss://` (the local service, `login`, the load generator), and serving
//! `wss://` from `hypergolix serve --tls-cert/--tls-key`.
//!
//! Servers are trusted through the Mozilla roots of `webpki-roots` and,
//! for a self-hosted CA, the certificates of a PEM file (`--ca-file`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::{Error, Result};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{}: {why}", path.display()))
}

/// Every certificate in a PEM file; an empty one is refused.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, e))?;
    if certs.is_empty() {
        return Err(tls_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The client side: webpki roots, plus the certificates of `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| tls_err(path, e))?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server side of `serve --tls-cert FILE --tls-key FILE`: the
/// certificate chain (leaf first) and its private key, PEM.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain = read_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| Error::Tls(format!("{} with {}: {e}", cert.display(), key.display())))?;
    Ok(Arc::new(config))
}

/// A websocket to a persistence server, `ws://` or `wss://`, with Nagle
/// off (small request/response messages), offering the subprotocol that
/// asks for frames' containers with the frames. `tls` is used for `wss://`.
pub async fn connect(
    url: &str,
    tls: Option<Arc<ClientConfig>>,
) -> crate::error::Result<WebSocketStream<MaybeTlsStream<TcpStream>>> {
    use crate::error::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let req = url
        .into_client_request()
        .map_err(|e| Error::Connect(e.to_string()))?;
    // Ask for frames' containers with the frames. A server that does not
    // know the subprotocol answers without one, which the handshake treats
    // as a failure: then once more without the offer.
    let mut offer = req.clone();
    offer.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(hypergolix_core::wire::remote::PUSH_CONTAINERS_SUBPROTOCOL),
    );
    let connector = tls.clone().map(Connector::Rustls);
    match tokio_tungstenite::connect_async_tls_with_config(offer, None, true, connector).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Protocol(
            ProtocolError::SecWebSocketSubProtocolError(_),
        )) => {
            let connector = tls.map(Connector::Rustls);
            tokio_tungstenite::connect_async_tls_with_config(req, None, true, connector)
                .await
                .map(|(ws, _)| ws)
                .map_err(|e| Error::Connect(describe(&e)))
        }
        Err(e) => Err(Error::Connect(describe(&e))),
    }
}

/// A connection error in words, naming the reason when TLS refused the
/// server's certificate.
pub fn describe(e: &tokio_tungstenite::tungstenite::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        // tokio-rustls reports through an io::Error, whose `source` skips
        // the error it wraps: look inside it too.
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        for candidate in [Some(s), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(c)) = candidate.downcast_ref() {
                return certificate_problem(c);
            }
        }
        source = s.source();
    }
    e.to_string()
}

fn certificate_problem(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let what = match c {
        C::UnknownIssuer => {
            "it is not signed by a trusted CA (for a self-hosted CA, give its certificate with --ca-file or `config set ca_file`)"
                .to_string()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".to_string(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".to_string(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not valid for this host name".to_string()
        }
        C::Revoked => "it is revoked".to_string(),
        other => format!("{other:?}"),
    };
    format!("TLS: the server's certificate was refused: {what} ({c})")
}
