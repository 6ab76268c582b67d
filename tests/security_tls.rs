//! TLS (`security.md`, "TLS"): the listener refuses TLS 1.0 and 1.1 clients; upstream and
//! Hub certificates are verified, never skipped, and `ca_file` is how an upstream's private
//! CA becomes trusted. The servers here present a self-signed certificate and answer
//! everything with 200 (a granted `users/me` included), so a gateway that skipped
//! verification would let the requests through. The rule → test table is in
//! `security_paths.rs`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hubgate::sim::Sim;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::adversarial::{request, RawConn};
use support::{config_text, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A user as Hub's and YouTrack's `users/me` describe one that a token is granted for.
const GRANTED_USER: &str =
    r#"{"type":"user","id":"1-1","login":"alice","name":"Alice","banned":false,"guest":false}"#;

/// An HTTPS server for `localhost` with a self-signed certificate: every request gets 200
/// and `GRANTED_USER`. Returns its address and the certificate (PEM).
async fn self_signed_server() -> (SocketAddr, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certified.cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(key),
        )
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                    let body = Full::new(Bytes::from_static(GRANTED_USER.as_bytes()));
                    Ok::<_, std::convert::Infallible>(Response::new(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, certified.cert.pem())
}

async fn get(gateway: &Gateway, target: &str, authorization: &str) -> u16 {
    let headers = format!("Host: {}\r\n{authorization}", gateway.addr);
    let mut conn = RawConn::open(gateway.addr).await;
    conn.write(&request(&format!("GET {target} HTTP/1.1"), &headers))
        .await;
    conn.response().await.expect("an answer").status
}

#[tokio::test]
async fn an_upstream_certificate_is_verified_and_ca_file_trusts_one() {
    let sim = Sim::start().await.expect("simulator");
    let (upstream, pem) = self_signed_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca, pem).expect("write CA");
    let text = config_text(sim.addr(), "");
    let url = format!("url = \"http://{}\"", sim.addr());
    assert!(text.contains(&url), "{text}");
    let https = format!("url = \"https://localhost:{}\"", upstream.port());
    let untrusted = Gateway::start(&text.replacen(&url, &https, 1)).await;
    assert_eq!(
        get(&untrusted, "/", "").await,
        502,
        "an unverifiable upstream"
    );
    let with_ca = format!("{https}\nca_file = \"{}\"", ca.display());
    let trusted = Gateway::start(&text.replacen(&url, &with_ca, 1)).await;
    assert_eq!(
        get(&trusted, "/", "").await,
        200,
        "the CA file makes it trusted"
    );
}

#[tokio::test]
async fn a_hub_certificate_is_verified_and_an_unverifiable_hub_fails_closed() {
    let sim = Sim::start().await.expect("simulator");
    let (hub, _) = self_signed_server().await;
    let text = config_text(sim.addr(), "");
    let plain = format!("probe = \"http://{}/", sim.addr());
    assert!(text.contains(&plain), "{text}");
    let text = text.replace(
        &plain,
        &format!("probe = \"https://localhost:{}/", hub.port()),
    );
    let gateway = Gateway::start(&text).await;
    let token = sim.demo().youtrack_only.clone();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    for target in ["/api/issues", "/hub/api/rest/users", "/"] {
        assert_eq!(get(&gateway, target, &bearer).await, 503, "{target}");
    }
    // introspection.ca_file makes that Hub trusted: its answer (a granted user) now counts.
    let (hub, pem) = self_signed_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("hub-ca.pem");
    std::fs::write(&ca, pem).expect("write CA");
    let text = config_text(sim.addr(), "").replace(
        &plain,
        &format!("probe = \"https://localhost:{}/", hub.port()),
    );
    let text = format!("{text}\n[introspection]\nca_file = \"{}\"\n", ca.display());
    let trusted = Gateway::start(&text).await;
    assert_eq!(get(&trusted, "/api/issues", &bearer).await, 200);
}

/// A ClientHello offering only `version` (`[3, 1]` is TLS 1.0, `[3, 3]` TLS 1.2), without
/// the `supported_versions` extension, as clients from before TLS 1.3 send it; the suites and
/// extensions are ones the gateway accepts for TLS 1.2, so only `version` can be refused.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // no session ID
                  // ECDHE-ECDSA with AES-128-GCM (TLS 1.2) and with AES-128-CBC (TLS 1.0).
    body.extend_from_slice(&[0, 4, 0xc0, 0x2b, 0xc0, 0x09]);
    body.extend_from_slice(&[1, 0]); // null compression only
    let extensions: [u8; 24] = [
        0x00, 0x0a, 0, 6, 0, 4, 0x00, 0x1d, 0x00, 0x17, // groups: x25519, P-256
        0x00, 0x0b, 0, 2, 1, 0, // uncompressed points
        0x00, 0x0d, 0, 4, 0, 2, 0x04, 0x03, // signatures: ECDSA P-256 SHA-256
    ];
    body.extend_from_slice(&[0, 24]);
    body.extend_from_slice(&extensions);
    let mut handshake = vec![1, 0, 0, u8::try_from(body.len()).expect("short")];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1, 0, u8::try_from(handshake.len()).expect("short")];
    record.extend_from_slice(&handshake);
    record
}

/// The first record's content type and, for a handshake record, its first message type.
async fn first_answer(addr: SocketAddr, hello: &[u8]) -> (u8, Option<u8>) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(hello).await.expect("write hello");
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.len() < 6 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let content_type = *got.first().expect("an answer before the close");
    (
        content_type,
        got.get(5).copied().filter(|_| content_type == 0x16),
    )
}

#[tokio::test]
async fn tls_1_0_and_1_1_clients_are_refused() {
    let upstream = support::Upstream::start().await;
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    );
    let gateway = Gateway::start(&config_text(upstream.addr, &extra)).await;
    // The same hello as TLS 1.2 gets a ServerHello (handshake record, message type 2)...
    let answer = first_answer(gateway.addr, &client_hello([3, 3])).await;
    assert_eq!(answer, (0x16, Some(2)), "TLS 1.2");
    // ...and as TLS 1.0 or 1.1 an alert record (content type 21).
    for version in [[3, 1], [3, 2]] {
        let answer = first_answer(gateway.addr, &client_hello(version)).await;
        assert_eq!(answer, (0x15, None), "{version:?}");
    }
    assert!(upstream.seen().is_empty());
}
