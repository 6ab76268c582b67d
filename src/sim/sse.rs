//! Live agile boards: YouTrack's Server-Sent Events.
//!
//! `POST /api/agiles/<agile>/sprints/<sprint>/sseSubscription?fields=ticket` with a credential
//! valid for YouTrack answers `{"$type":"SseSubscription","ticket":…}` (404 for a board or
//! sprint that does not exist). `GET /api/eventSourceBus?ticket=…&fields=…` carries no header
//! at all (`EventSource` cannot send one): the ticket is the credential. An unknown ticket, or
//! one whose user is gone or banned, is YouTrack's 401. A ticket stays valid for reconnects
//! (a browser's `EventSource` reconnects with the same URL).
//!
//! The stream (`text/event-stream`, `cache-control: no-cache`) never ends by itself: an
//! `event: subscribed` right away, then every event [`Sim::publish_event`] publishes as
//! `event: sprintCellUpdate`, and a `: heartbeat` comment every [`Sim::set_sse_heartbeat`]
//! (30 s by default, on tokio's clock). It ends when the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::http::{
    json_response, param, query, with_fields, youtrack_error, youtrack_unauthorized, SimBody,
};
use super::{lock, Shared, Sim};

/// The seeded agile board and its sprint.
pub const DEMO_AGILE: &str = "108-1";
pub const DEMO_SPRINT: &str = "109-1";

const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// Tickets, the event channel, the heartbeat period and the count of open streams.
pub struct Bus {
    /// Ticket → user ID.
    tickets: Mutex<std::collections::HashMap<String, String>>,
    events: broadcast::Sender<Bytes>,
    heartbeat: watch::Sender<Duration>,
    open: Arc<AtomicUsize>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus {
            tickets: Mutex::default(),
            events: broadcast::channel(256).0,
            heartbeat: watch::channel(DEFAULT_HEARTBEAT).0,
            open: Arc::default(),
        }
    }
}

impl Sim {
    /// Sends `data` to every open event stream as `event: sprintCellUpdate` (a line break in
    /// `data` starts another `data:` line, as the format wants).
    pub fn publish_event(&self, data: &str) {
        let _ = self
            .shared
            .sse
            .events
            .send(frame_event("sprintCellUpdate", data));
    }

    /// The period of the `: heartbeat` comments (default 30 s); open streams follow at once.
    pub fn set_sse_heartbeat(&self, period: Duration) {
        self.shared.sse.heartbeat.send_replace(period);
    }

    /// Event streams open now.
    pub fn sse_streams(&self) -> usize {
        self.shared.sse.open.load(Ordering::SeqCst)
    }
}

fn frame_event(name: &str, data: &str) -> Bytes {
    let mut text = format!("event: {name}\n");
    for line in data.split('\n') {
        text.push_str("data: ");
        text.push_str(line.strip_suffix('\r').unwrap_or(line));
        text.push('\n');
    }
    text.push('\n');
    Bytes::from(text)
}

/// `POST /api/agiles/<agile>/sprints/<sprint>/sseSubscription`.
pub fn subscribe(
    shared: &Shared,
    request: &Request<Incoming>,
    agile: &str,
    sprint: &str,
) -> Response<SimBody> {
    let user = match super::youtrack::caller(shared, request) {
        Ok(user) => user,
        Err(response) => return response,
    };
    if agile != DEMO_AGILE || sprint != DEMO_SPRINT {
        let missing = if agile == DEMO_AGILE { sprint } else { agile };
        let description = format!("Entity with id {missing} not found");
        return youtrack_error(StatusCode::NOT_FOUND, &description);
    }
    let ticket: String = (0..40).map(|_| fastrand::alphanumeric()).collect();
    lock(&shared.sse.tickets).insert(ticket.clone(), user.id);
    let body = json!({"$type": "SseSubscription", "ticket": ticket});
    match with_fields(&query(request), &body) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(response) => response,
    }
}

/// `GET /api/eventSourceBus?ticket=…`.
pub fn stream(shared: &Shared, request: &Request<Incoming>) -> Response<SimBody> {
    let query = query(request);
    let user = param(&query, "ticket").and_then(|t| lock(&shared.sse.tickets).get(t).cloned());
    let valid = user.is_some_and(|id| shared.directory().user(&id).is_some_and(|u| !u.banned));
    if !valid {
        return youtrack_unauthorized();
    }
    let bus = &shared.sse;
    let (tx, rx) = mpsc::channel(16);
    let first = json!({"$type": "SseSubscribed", "agile": {"id": DEMO_AGILE},
                       "sprint": {"id": DEMO_SPRINT}});
    let first = frame_event("subscribed", &first.to_string());
    tokio::spawn(pump(
        tx,
        first,
        bus.events.subscribe(),
        bus.heartbeat.subscribe(),
    ));
    bus.open.fetch_add(1, Ordering::SeqCst);
    let body = EventBody {
        rx,
        open: bus.open.clone(),
    };
    let mut response = Response::new(body.boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream;charset=UTF-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Feeds one stream until its body is dropped.
async fn pump(
    tx: mpsc::Sender<Bytes>,
    first: Bytes,
    mut events: broadcast::Receiver<Bytes>,
    mut heartbeat: watch::Receiver<Duration>,
) {
    if tx.send(first).await.is_err() {
        return;
    }
    let mut last_beat = Instant::now();
    loop {
        let period = *heartbeat.borrow_and_update();
        let next = match last_beat.checked_add(period) {
            Some(at) => at,
            None => Instant::now() + Duration::from_secs(86_400 * 365),
        };
        let frame = tokio::select! {
            () = tx.closed() => return,
            changed = heartbeat.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = tokio::time::sleep_until(next) => {
                last_beat = Instant::now();
                Bytes::from_static(b": heartbeat\n\n")
            }
            event = events.recv() => match event {
                Ok(frame) => frame,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(frame).await.is_err() {
            return;
        }
    }
}

/// The body of one event stream; counts itself open until dropped.
struct EventBody {
    rx: mpsc::Receiver<Bytes>,
    open: Arc<AtomicUsize>,
}

impl Drop for EventBody {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_split_multiline_data() {
        let frame = super::frame_event("x", "a\r\nb");
        assert_eq!(&frame[..], b"event: x\ndata: a\ndata: b\n\n");
    }
}
