//! Live boards: `sseSubscription` tickets and the `/api/eventSourceBus` stream.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hubgate::sim::{Sim, DEMO_AGILE, DEMO_SPRINT};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::{timeout, Instant};

use super::assert_youtrack_error;
use crate::support::sim::{call, fetch, json_body, keys, Auth};
use crate::support::Answer;

/// An event stream read as it comes.
struct EventStream {
    body: Incoming,
    buffer: String,
    connection: tokio::task::JoinHandle<()>,
}

impl EventStream {
    async fn open(sim: &Sim, ticket: &str) -> (http::response::Parts, EventStream) {
        let tcp = tokio::net::TcpStream::connect(sim.addr())
            .await
            .expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let target = format!("/api/eventSourceBus?ticket={ticket}&fields=id,name");
        let request = Request::get(target)
            .header("host", sim.addr().to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let buffer = String::new();
        (
            parts,
            EventStream {
                body,
                buffer,
                connection,
            },
        )
    }

    /// Everything up to and including `needle`.
    async fn until(&mut self, needle: &str) -> String {
        loop {
            if let Some(at) = self.buffer.find(needle) {
                let rest = self.buffer.split_off(at + needle.len());
                return std::mem::replace(&mut self.buffer, rest);
            }
            let frame = self.body.frame().await.expect("the stream stays open");
            if let Ok(data) = frame.expect("a frame").into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }

    /// The next event, skipping comments.
    async fn event(&mut self) -> String {
        loop {
            let block = self.until("\n\n").await;
            if !block.starts_with(':') {
                return block;
            }
        }
    }
}

async fn ticket(sim: &Sim, auth: Auth<'_>) -> Answer {
    let target =
        format!("/api/agiles/{DEMO_AGILE}/sprints/{DEMO_SPRINT}/sseSubscription?fields=ticket");
    call(sim.addr(), Method::POST, &target, auth).await
}

#[tokio::test]
async fn event_stream_tickets_come_from_a_credential_and_open_the_stream_alone() {
    let sim = Sim::start().await.expect("sim starts");
    for auth in [Auth::Anonymous, Auth::Bearer(&sim.demo().hub_only)] {
        assert_youtrack_error(&ticket(&sim, auth).await, 401, "Unauthorized");
    }
    let other = "/api/agiles/1-1/sprints/1-2/sseSubscription?fields=ticket";
    let other = call(
        sim.addr(),
        Method::POST,
        other,
        Auth::Bearer(&sim.demo().admin),
    )
    .await;
    assert_youtrack_error(&other, 404, "Not Found");
    let subscription = json_body(&ticket(&sim, Auth::Basic("alice", "alice")).await, 200);
    assert_eq!(keys(&subscription), ["$type", "ticket"]);
    assert_eq!(subscription["$type"], "SseSubscription");
    for target in [
        "/api/eventSourceBus?ticket=nope",
        "/api/eventSourceBus?fields=id",
    ] {
        assert_youtrack_error(
            &fetch(sim.addr(), target, Auth::Anonymous).await,
            401,
            "Unauthorized",
        );
    }
    assert_eq!(sim.sse_streams(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_event_stream_sends_events_as_they_happen_and_heartbeats() {
    let sim = Sim::start().await.expect("sim starts");
    let subscription = ticket(&sim, Auth::Bearer(&sim.demo().youtrack_only)).await;
    let ticket = json_body(&subscription, 200)["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let (head, mut stream) = EventStream::open(&sim, &ticket).await;
    assert_eq!(head.status, 200);
    let content_type = head.headers["content-type"].to_str().expect("ASCII");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(head.headers["cache-control"], "no-cache");
    let first = stream.event().await;
    assert!(first.starts_with("event: subscribed\ndata: {"), "{first:?}");
    assert_eq!(sim.sse_streams(), 1);

    sim.publish_event(r#"{"$type":"SprintCellUpdate","id":"1"}"#);
    let event = stream.event().await;
    assert_eq!(
        event,
        "event: sprintCellUpdate\ndata: {\"$type\":\"SprintCellUpdate\",\"id\":\"1\"}\n\n"
    );

    // Heartbeats every 30 s by default, on tokio's clock.
    let quiet = timeout(Duration::from_secs(29), stream.until(": heartbeat\n\n")).await;
    assert!(quiet.is_err(), "no heartbeat before the period");
    tokio::time::advance(Duration::from_secs(1)).await;
    stream.until(": heartbeat\n\n").await;
    sim.set_sse_heartbeat(Duration::from_secs(5));
    let before = Instant::now();
    stream.until(": heartbeat\n\n").await;
    assert_eq!(before.elapsed(), Duration::from_secs(5));

    // A second stream with the same ticket (a browser reconnecting), then both go away.
    let (again, second) = EventStream::open(&sim, &ticket).await;
    assert_eq!((again.status.as_u16(), sim.sse_streams()), (200, 2));
    for stream in [stream, second] {
        stream.connection.abort();
    }
    for _ in 0..10 {
        if sim.sse_streams() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert_eq!(sim.sse_streams(), 0);
}
