//! Keep-alive connections to the upstream, proved by counting the connections it accepts:
//! one connection carries request after request whatever the body's framing; one whose body
//! a client abandoned, or that the upstream closes, is not used again; idle ones are closed
//! after the pool's idle timeout (time moved, not waited out).

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use support::resources::CountingUpstream;
use support::{collect, config_text, empty, get, send, ChannelBody, Gateway};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

async fn gateway(upstream: &CountingUpstream) -> Gateway {
    Gateway::start(&config_text(upstream.addr, "")).await
}

/// One HTTP/1.1 client connection to the gateway, driven by the returned task.
async fn client_connection<B>(gateway: &Gateway) -> (SendRequest<B>, JoinHandle<()>)
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, task)
}

#[tokio::test]
async fn requests_in_sequence_share_one_upstream_connection() {
    let upstream = CountingUpstream::start().await;
    let gateway = gateway(&upstream).await;
    let cases = [
        (Method::GET, "/", StatusCode::OK, 2),
        (Method::GET, "/big?bytes=200000", StatusCode::OK, 200_000),
        (
            Method::GET,
            "/chunked?bytes=200000",
            StatusCode::OK,
            200_000,
        ),
        (Method::GET, "/empty", StatusCode::NO_CONTENT, 0),
        (Method::HEAD, "/", StatusCode::OK, 0),
    ];
    for round in 0..3 {
        for (method, target, status, length) in &cases {
            let request = get(gateway.addr, target)
                .method(method.clone())
                .body(empty())
                .expect("request");
            let answer = send(gateway.addr, request).await;
            assert_eq!(answer.status, *status, "{method} {target}, round {round}");
            assert_eq!(
                answer.body.len(),
                *length,
                "{method} {target}, round {round}"
            );
        }
    }
    let counts = upstream.counts();
    assert_eq!(counts.arrived, 3 * cases.len());
    assert_eq!(counts.connections, 1, "{counts:?}");
}

#[tokio::test]
async fn a_body_the_client_abandons_closes_its_upstream_connection() {
    let upstream = CountingUpstream::start().await;
    let gateway = gateway(&upstream).await;
    let (mut sender, client) = client_connection(&gateway).await;
    let request = get(gateway.addr, "/big?bytes=50000000")
        .body(empty())
        .expect("request");
    let response = sender.send_request(request).await.expect("response head");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert!(first.is_data());
    drop((body, sender));
    client.abort();

    let closed = upstream.wait_for(|c| c.big_abandoned == 1 && c.open_connections == 0);
    let counts = tokio::time::timeout(Duration::from_secs(30), closed)
        .await
        .expect("the gateway closed the upstream connection");
    assert_eq!(counts.connections, 1);
    let answer = send(
        gateway.addr,
        get(gateway.addr, "/").body(empty()).expect("req"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        upstream.counts().connections,
        2,
        "the broken one was not reused"
    );
}

#[tokio::test]
async fn a_connection_the_upstream_closes_is_not_reused() {
    let upstream = CountingUpstream::start().await;
    let gateway = gateway(&upstream).await;
    for target in ["/close", "/", "/"] {
        let answer = send(
            gateway.addr,
            get(gateway.addr, target).body(empty()).expect("req"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{target}");
        assert_eq!(answer.text(), "ok");
    }
    let counts = upstream.counts();
    assert_eq!(counts.arrived, 3);
    assert_eq!(counts.connections, 2, "{counts:?}");
}

#[tokio::test]
async fn a_connection_still_taking_an_upload_is_not_reused() {
    let upstream = CountingUpstream::start().await;
    let gateway = gateway(&upstream).await;
    let (mut sender, _client) = client_connection(&gateway).await;
    let (chunks, body) = ChannelBody::new();
    let upload = Request::post("/early")
        .header("host", gateway.addr.to_string())
        .header("content-length", "8")
        .body(body)
        .expect("request");
    chunks
        .send(Bytes::from_static(b"half"))
        .await
        .expect("send");
    let answer = collect(sender.send_request(upload).await.expect("response")).await;
    assert_eq!(answer.text(), "early");

    // The upstream answered while the upload is still under way: its connection is busy.
    let next = send(
        gateway.addr,
        get(gateway.addr, "/").body(empty()).expect("req"),
    );
    let answer = tokio::time::timeout(Duration::from_secs(30), next)
        .await
        .expect("not stuck behind the upload");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(upstream.counts().connections, 2);
    chunks
        .send(Bytes::from_static(b"rest"))
        .await
        .expect("send");
}

#[tokio::test(start_paused = true)]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout() {
    let upstream = CountingUpstream::start().await;
    let gateway = gateway(&upstream).await;
    // Three at once, so that three connections are kept.
    let held: Vec<_> = (0..3)
        .map(|_| {
            let request = get(gateway.addr, "/hold").body(empty()).expect("request");
            tokio::spawn(send(gateway.addr, request))
        })
        .collect();
    upstream.wait_for(|c| c.in_flight == 3).await;
    upstream.release(3);
    for answer in held {
        assert_eq!(answer.await.expect("answer").status, StatusCode::OK);
    }
    assert_eq!(upstream.counts().open_connections, 3);

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(upstream.counts().open_connections, 3, "closed before 90 s");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let closed = upstream.wait_for(|c| c.open_connections == 0);
    let counts = tokio::time::timeout(Duration::from_secs(3600), closed)
        .await
        .expect("idle connections closed");
    assert_eq!(counts.connections, 3);
}
