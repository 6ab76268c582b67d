//! `hubgate demo`: every request the banner suggests gets the status the banner promises,
//! sent as `curl --path-as-is` would send it, and a taken port is a clear error.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hubgate::demo::{self, DemoError, DemoLine};
use tokio::net::TcpListener;

/// The request a demo line stands for, as raw HTTP/1.1: the target exactly as given (no
/// client normalises `/api/../x` away), the bearer token, or Basic client auth and a form.
fn raw_request(gateway: SocketAddr, line: &DemoLine) -> String {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {gateway}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n",
        line.method, line.path
    );
    if let Some(token) = &line.bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some((user, password)) = &line.basic {
        let credentials = STANDARD.encode(format!("{user}:{password}"));
        head.push_str(&format!("Authorization: Basic {credentials}\r\n"));
    }
    let mut body = "";
    if let Some((id, secret, form)) = &line.basic_form {
        let credentials = STANDARD.encode(format!("{id}:{secret}"));
        head.push_str(&format!(
            "Authorization: Basic {credentials}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
        body = form;
    }
    format!("{head}\r\n{body}")
}

/// The status code of a response head, `HTTP/1.1 200 OK` → 200.
fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a response head: {head:?}"))
}

#[tokio::test]
async fn every_demo_line_gets_the_status_it_promises() {
    let demo = demo::start(0)
        .await
        .expect("the demo starts on ephemeral ports");
    let statuses: BTreeSet<u16> = demo.lines.iter().map(|line| line.status).collect();
    assert_eq!(
        statuses,
        BTreeSet::from([200, 400, 401, 403]),
        "a line of each kind"
    );
    for line in &demo.lines {
        let head = support::raw(demo.gateway, raw_request(demo.gateway, line).as_bytes()).await;
        assert_eq!(
            status_of(&head),
            line.status,
            "{}: {} {}\n{head}",
            line.what,
            line.method,
            line.path
        );
    }
}

#[tokio::test]
async fn the_banner_prints_every_line_ready_to_paste() {
    let demo = demo::start(0)
        .await
        .expect("the demo starts on ephemeral ports");
    let banner = demo.banner();
    assert!(!demo.lines.is_empty());
    for line in &demo.lines {
        let curl = line.curl(demo.gateway);
        assert!(curl.contains(&demo.gateway.to_string()), "{curl}");
        assert!(banner.contains(&curl), "missing from the banner: {curl}");
        assert!(
            banner.contains(line.what),
            "missing from the banner: {}",
            line.what
        );
    }
}

#[tokio::test]
async fn a_taken_port_is_an_error_that_names_it_and_the_way_out() {
    let held = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = held.local_addr().expect("addr").port();
    let error = match demo::start(port).await {
        Err(error) => error,
        Ok(demo) => panic!("the demo started on a taken port: {}", demo.gateway),
    };
    assert!(
        matches!(error, DemoError::PortTaken { port: p, .. } if p == port),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&port.to_string()), "{message}");
    assert!(message.contains("--port"), "{message}");
}
