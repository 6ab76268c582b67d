//! TLS on the listener: HTTP/2 chosen by ALPN, HTTP/1.1 when the client offers only that,
//! with a certificate made in the test.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use support::{collect, config_text, Gateway, Upstream};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct TestCert {
    _dir: tempfile::TempDir,
    server_extra: String,
    der: rustls::pki_types::CertificateDer<'static>,
}

fn test_cert() -> TestCert {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    TestCert {
        server_extra: format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            key.display()
        ),
        der: certified.cert.der().clone(),
        _dir: dir,
    }
}

async fn connect(
    gateway: &Gateway,
    cert: &TestCert,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    connect_trusting(gateway, std::slice::from_ref(&cert.der), alpn).await
}

async fn connect_trusting(
    gateway: &Gateway,
    trusted: &[rustls::pki_types::CertificateDer<'static>],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for der in trusted {
        roots.add(der.clone()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

#[tokio::test]
async fn http2_over_tls_is_negotiated_by_alpn() {
    let upstream = Upstream::start().await;
    let cert = test_cert();
    let gateway = Gateway::start(&config_text(upstream.addr, &cert.server_extra)).await;
    let tls = connect(&gateway, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    let target = format!("https://localhost:{}/issues?$top=1", gateway.addr.port());
    let request = Request::get(target)
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.version(), Version::HTTP_2);
    let answer = collect(response).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = upstream.last();
    assert_eq!(seen.version, Version::HTTP_11);
    assert_eq!(seen.target, "/issues?$top=1");
    let authority = format!("localhost:{}", gateway.addr.port());
    assert_eq!(seen.header("host"), Some(authority.as_str()));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some(authority.as_str()));
    assert_eq!(seen.header("cookie"), Some("a=1; b=2"));
    assert_eq!(seen.header_count("cookie"), 1);
}

#[tokio::test]
async fn http1_over_tls_when_the_client_offers_only_http1() {
    let upstream = Upstream::start().await;
    let cert = test_cert();
    let gateway = Gateway::start(&config_text(upstream.addr, &cert.server_extra)).await;
    let tls = connect(&gateway, &cert, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(connection);
    let request = Request::get("/issues")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.version(), Version::HTTP_11);
    let answer = collect(response).await;
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.last().header("x-forwarded-proto"), Some("https"));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_the_handshake_is_cut() {
    let upstream = Upstream::start().await;
    let cert = test_cert();
    let extra = format!("{}\ntls_handshake_timeout = \"3s\"", cert.server_extra);
    let gateway = Gateway::start(&config_text(upstream.addr, &extra)).await;
    let mut tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= std::time::Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(4), "{elapsed:?}");
}

#[tokio::test]
async fn an_http2_authority_that_disagrees_with_host_is_refused() {
    let upstream = Upstream::start().await;
    let cert = test_cert();
    let gateway = Gateway::start(&config_text(upstream.addr, &cert.server_extra)).await;
    let tls = connect(&gateway, &cert, &[b"h2"]).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    let target = format!("https://localhost:{}/api/issues", gateway.addr.port());
    let request = Request::get(target)
        .header("host", "evil.example")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let answer = collect(sender.send_request(request).await.expect("response")).await;
    assert_eq!(answer.status, 400);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert!(upstream.seen().is_empty());
}

/// The certificate a TLS connection was served.
fn served(
    tls: &tokio_rustls::client::TlsStream<TcpStream>,
) -> rustls::pki_types::CertificateDer<'static> {
    let chain = tls.get_ref().1.peer_certificates().expect("a certificate");
    chain[0].clone().into_owned()
}

async fn http1_status(tls: tokio_rustls::client::TlsStream<TcpStream>) -> u16 {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(connection);
    let request = Request::get("/issues")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    collect(response).await.status.as_u16()
}

/// Certificates are read at start and at each reload: one renewed on disk is served to new
/// connections after the reload, while connections opened before keep working.
#[tokio::test]
async fn a_certificate_swapped_on_disk_is_served_after_reload() {
    let upstream = Upstream::start().await;
    let first = test_cert();
    let dir = first._dir.path();
    let config = dir.join("hubgate.toml");
    std::fs::write(&config, config_text(upstream.addr, &first.server_extra)).expect("config");
    let gateway = Gateway::from_file(&config).await;
    let renewed =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let both = [first.der.clone(), renewed.cert.der().clone()];

    let before = connect_trusting(&gateway, &both, &[b"http/1.1"]).await;
    assert_eq!(served(&before), first.der);
    std::fs::write(dir.join("cert.pem"), renewed.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), renewed.signing_key.serialize_pem()).expect("write key");
    let unreloaded = connect_trusting(&gateway, &both, &[b"http/1.1"]).await;
    assert_eq!(served(&unreloaded), first.der, "read only on reload");

    gateway.reload.reload().await.expect("reload");
    let after = connect_trusting(&gateway, &both, &[b"http/1.1"]).await;
    assert_eq!(&served(&after), renewed.cert.der());
    assert_eq!(http1_status(after).await, 200);
    assert_eq!(
        http1_status(before).await,
        200,
        "an older connection keeps working"
    );
}
