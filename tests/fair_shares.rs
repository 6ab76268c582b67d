//! Fair shares per client: a connection that never completes a request is cut at the header
//! timeout on HTTP/1.1 and HTTP/2 alike; one client (an address, or an IPv6 /64) holds at most
//! `max_connections_per_address` connections; behind a trusted proxy the client is the one
//! `X-Forwarded-For` names, for budgets and logs, and the chain is appended to — from anyone
//! else the header is ignored. Time is tokio's, paused and moved.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use support::resources::RawH2;
use support::{config_text, send, start_with_sim, Gateway, SimEcho, Upstream};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// Reads until the server closes the connection; how long that took (paused time).
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let read_all = async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), read_all)
        .await
        .expect("the gateway closed the connection");
    started.elapsed()
}

/// Connects to `gateway` from the loopback address `from` (127.0.0.x).
async fn connect_from(from: [u8; 4], gateway: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback address");
    socket.connect(gateway).await.expect("connect")
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_cut_at_the_header_timeout() {
    let upstream = Upstream::start().await;
    let extra = "header_read_timeout = \"5s\"\nidle_timeout = \"120s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut silent = TcpStream::connect(gateway.addr).await.expect("connect");
    let waited = closed_after(&mut silent).await;
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_http2_preface_alone_is_cut_at_the_header_timeout() {
    let upstream = Upstream::start().await;
    let extra = "header_read_timeout = \"5s\"\nidle_timeout = \"120s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let started = Instant::now();
    let mut client = RawH2::connect(gateway.addr).await;
    client.until_closed().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_in_time_keeps_the_connection_past_the_header_timeout() {
    let upstream = Upstream::start().await;
    let extra = "header_read_timeout = \"5s\"\nidle_timeout = \"120s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    let connection = tokio::spawn(connection);
    let request = support::get(gateway.addr, "/x")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let answer = sender.send_request(request).await.expect("answer");
    assert_eq!(answer.status(), 200);
    drop(answer);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(
        !connection.is_finished(),
        "cut although a request came in time"
    );
}

#[tokio::test(start_paused = true)]
async fn one_address_holds_at_most_its_share_of_connections() {
    let upstream = Upstream::start().await;
    let extra = "max_connections_per_address = 3\nheader_read_timeout = \"600s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 2], gateway.addr).await);
    }
    let mut fourth = connect_from([127, 0, 0, 2], gateway.addr).await;
    assert_eq!(
        closed_after(&mut fourth).await,
        Duration::ZERO,
        "refused at once"
    );
    // Another address is another client.
    let mut other = connect_from([127, 0, 0, 3], gateway.addr).await;
    let answer = support::raw_on(&mut other, b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A slot comes back when its connection closes.
    held.pop();
    tokio::task::yield_now().await;
    let mut again = connect_from([127, 0, 0, 2], gateway.addr).await;
    let answer = support::raw_on(&mut again, b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn addresses_group_into_clients_by_prefix() {
    let upstream = Upstream::start().await;
    let extra = "max_connections_per_address = 2\nclient_ipv4_prefix = 24\n\
                 header_read_timeout = \"600s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let _a = connect_from([127, 0, 0, 2], gateway.addr).await;
    let _b = connect_from([127, 0, 0, 3], gateway.addr).await;
    let mut third = connect_from([127, 0, 0, 4], gateway.addr).await;
    assert_eq!(
        closed_after(&mut third).await,
        Duration::ZERO,
        "the /24 is one client"
    );
}

/// A gateway in front of the simulator that trusts 127.0.0.1 as its load balancer, with a
/// small miss budget (4 backend calls; an unknown token costs two, one per service).
async fn behind_a_balancer(trusted: &str) -> (hubgate::sim::Sim, Gateway) {
    let sim = hubgate::sim::Sim::start().await.expect("simulator");
    let extra = format!("trusted_proxies = [{trusted}]");
    let text = config_text(sim.addr(), &extra) + "\n[introspection]\nclient_miss_rate = 4\n";
    let gateway = Gateway::start(&text).await;
    (sim, gateway)
}

/// `GET /api/issues` with an unknown token, as the balancer forwards it for `client`.
async fn miss_for(gateway: &Gateway, client: &str, n: u32) -> u16 {
    let request = support::get(gateway.addr, "/api/issues")
        .header("x-forwarded-for", client)
        .header("authorization", format!("Bearer unknown-{client}-{n}"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    send(gateway.addr, request).await.status.as_u16()
}

#[tokio::test]
async fn behind_a_trusted_balancer_each_client_has_its_own_budget() {
    let (_sim, gateway) = behind_a_balancer(r#""127.0.0.1""#).await;
    let spent: Vec<u16> = futures_like_sequence(&gateway, "198.51.100.7", 4).await;
    assert_eq!(
        spent,
        [401, 401, 429, 429],
        "the first client spends its burst"
    );
    // Another client behind the same balancer is unaffected.
    assert_eq!(miss_for(&gateway, "198.51.100.8", 0).await, 401);
    // IPv6 clients count per /64.
    assert_eq!(miss_for(&gateway, "2001:db8::1", 0).await, 401);
    assert_eq!(miss_for(&gateway, "2001:db8::2", 0).await, 401);
    assert_eq!(miss_for(&gateway, "2001:db8::3", 0).await, 429, "same /64");
    assert_eq!(
        miss_for(&gateway, "2001:db8:0:1::1", 0).await,
        401,
        "another /64"
    );
}

async fn futures_like_sequence(gateway: &Gateway, client: &str, count: u32) -> Vec<u16> {
    let mut statuses = Vec::new();
    for n in 0..count {
        statuses.push(miss_for(gateway, client, n).await);
    }
    statuses
}

#[tokio::test]
async fn an_untrusted_peer_cannot_name_itself_another_client() {
    let (_sim, gateway) = behind_a_balancer(r#""10.0.0.0/8""#).await;
    // 127.0.0.1 is not trusted: every request is the peer's, whatever it claims.
    assert_eq!(miss_for(&gateway, "198.51.100.7", 0).await, 401);
    assert_eq!(miss_for(&gateway, "198.51.100.8", 0).await, 401);
    assert_eq!(miss_for(&gateway, "198.51.100.9", 0).await, 429);
}

#[tokio::test]
async fn the_forwarded_chain_is_appended_to_for_a_trusted_balancer_only() {
    let (sim, trusting) = start_with_sim("").await;
    let token = support::youtrack_token(&sim);
    let forwarded = |gateway: &Gateway| {
        support::get(gateway.addr, "/api/issues")
            .header("x-forwarded-for", "198.51.100.7, 203.0.113.5")
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    // Not trusted (the default): the gateway's own view replaces the client's claim.
    let answer = send(trusting.addr, forwarded(&trusting)).await;
    assert_eq!(
        SimEcho::of(&answer).headers("x-forwarded-for"),
        ["127.0.0.1"]
    );
    // Trusted: the chain goes on with the balancer appended.
    let text = config_text(sim.addr(), "trusted_proxies = [\"127.0.0.0/8\"]");
    let balanced = Gateway::start(&text).await;
    let answer = send(balanced.addr, forwarded(&balanced)).await;
    assert_eq!(
        SimEcho::of(&answer).headers("x-forwarded-for"),
        ["198.51.100.7, 203.0.113.5, 127.0.0.1"]
    );
}
