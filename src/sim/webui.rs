//! The YouTrack web UI, played by the simulator: `GET /sim/webui` (HTML, no inline script) and
//! `GET /sim/webui.js`. Opened with `?user=U&password=P`, the page logs in through Hub's
//! implicit flow as YouTrack's own client (redirect URI `/sim/webui`, scope Hub and YouTrack),
//! then runs, in order, recording each as `{name, ok, detail}`:
//!
//! 1. `hub-settings` — `/hub/api/rest/settings/public?fields=id` without a token;
//! 2. `config` — `/api/config?fields=ring(url,serviceId),version` without a token;
//! 3. `youtrack-me` — `/api/users/me` with the bearer token;
//! 4. `hub-me` — `/hub/api/rest/users/me` with the token and `Hub-API-Version: 2`;
//! 5. `sse` — a `sseSubscription` ticket with the token, then an `EventSource` on
//!    `/api/eventSourceBus?ticket=…` until its first event (10 s at most);
//! 6. `avatar` — an `<img>` of `/hub/api/rest/avatar/<user id>?size=32&dpr=2`, decoded;
//! 7. `attachment` — `DEMO-1`'s attachment list with the token, then an `<img>` of its signed
//!    `url` (no header), decoded.
//!
//! (An error in the redirect back gives a single failed step `login`.) The page lists the
//! steps, then POSTs `{"ok","steps","userAgent"}` to `/sim/report` without a credential and
//! sets `data-done` (`ok` or `fail`) on its `<body>`. [`Sim::wait_report`] hands the reports
//! to tests.

use std::sync::Mutex;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::watch;

use super::attachments::DEMO_ISSUE;
use super::directory::YOUTRACK_SERVICE_ID;
use super::http::{empty, hub_error, read_body, typed, SimBody};
use super::login::{escape, html};
use super::sse::{DEMO_AGILE, DEMO_SPRINT};
use super::{lock, Shared, Sim};

pub const PAGE: &str = "/sim/webui";
pub const SCRIPT: &str = "/sim/webui.js";
pub const REPORT: &str = "/sim/report";

const WEBUI_HTML: &str = include_str!("webui/webui.html");
const WEBUI_JS: &str = include_str!("webui/webui.js");

/// The reports received: (how many so far, the last one), and how many tests have taken.
pub struct Reports {
    received: watch::Sender<(u64, Option<Value>)>,
    taken: Mutex<u64>,
}

impl Default for Reports {
    fn default() -> Reports {
        Reports {
            received: watch::channel((0, None)).0,
            taken: Mutex::new(0),
        }
    }
}

impl Sim {
    /// The next report of the web UI page not yet returned by this method: one that arrived
    /// since the last call (or since the start), or else the next to arrive.
    pub async fn wait_report(&self) -> Value {
        let reports = &self.shared.reports;
        let taken = *lock(&reports.taken);
        let mut received = reports.received.subscribe();
        let Ok(report) = received.wait_for(|(count, _)| *count > taken).await else {
            return Value::Null;
        };
        let (count, value) = report.clone();
        drop(report);
        *lock(&reports.taken) = count;
        value.unwrap_or(Value::Null)
    }

    /// The last report of the web UI page, if any came.
    pub fn last_report(&self) -> Option<Value> {
        self.shared.reports.received.borrow().1.clone()
    }
}

pub fn page() -> Response<SimBody> {
    let page = WEBUI_HTML
        .replace("{{client}}", &escape(YOUTRACK_SERVICE_ID))
        .replace("{{service}}", &escape(YOUTRACK_SERVICE_ID))
        .replace("{{agile}}", &escape(DEMO_AGILE))
        .replace("{{sprint}}", &escape(DEMO_SPRINT))
        .replace("{{issue}}", &escape(DEMO_ISSUE));
    html(StatusCode::OK, page)
}

pub fn script() -> Response<SimBody> {
    typed(StatusCode::OK, "text/javascript;charset=UTF-8", WEBUI_JS)
}

/// `POST /sim/report`: any JSON; 204.
pub async fn report(shared: &Shared, request: Request<Incoming>) -> Response<SimBody> {
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return hub_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed JSON");
    };
    shared.reports.received.send_modify(|(count, last)| {
        *count += 1;
        *last = Some(value);
    });
    empty(StatusCode::NO_CONTENT)
}
