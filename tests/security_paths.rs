//! Adversarial request paths over real sockets, written as raw bytes so that no client
//! library tidies them up first (`security.md`, "The path"): every spelling of a dot segment,
//! empty segments, `\` and `;`, escaped delimiters and controls, double encodings, invalid
//! and overlong UTF-8, raw bytes, and paths that reach a protected route only when letter case
//! is folded. Every refused target carries a token Hub grants for both services: had a check
//! let it through, it would have been forwarded and Hub asked, and the test would see both.
//!
//! Where each rule of `security.md` is tested. A refusal is always checked for its status,
//! for the gateway's own JSON where the gateway answers (rather than hyper's parser), for
//! nothing forwarded and, when the request is malformed, for no Hub call.
//!
//! | `security.md` rule | tests |
//! |---|---|
//! | **The path** | |
//! | `.`/`..` segments, `//`, `\`, `;` (`..;/`) → 400 | `security_paths`: `dot_segments_in_every_spelling_are_refused`, `empty_segments_backslashes_and_semicolons_are_refused`; `paths.rs`; `properties.rs`; `src/path/tests.rs` |
//! | a `#` reaching the server → 400 | `security_targets`: `nothing_after_a_fragment_reaches_the_upstream` (the parser cuts the target at `#`; what is routed is what is forwarded) |
//! | escapes of `/` `\` `.` `%` `;` NUL and controls, any case; `%25…` | `security_paths`: `escaped_delimiters_controls_and_double_encodings_are_refused`; `security_targets`: `http2_targets_are_checked_like_http1_ones` |
//! | escapes decoding to invalid or overlong UTF-8; raw bytes outside visible ASCII | `security_paths`: `escapes_that_are_not_utf8_or_overlong_are_refused`, `raw_bytes_outside_visible_ascii_are_refused`; `properties.rs` |
//! | absolute-form authority ≠ `Host`; `*`; `CONNECT` | `security_targets`: `asterisk_connect_and_authority_forms_are_refused`, `absolute_form_naming_another_host_is_refused`, `absolute_form_naming_the_gateway_goes_out_in_origin_form` |
//! | under a protected prefix only when case is ignored | `security_paths`: `case_variants_of_protected_prefixes_are_refused`, `escaped_unreserved_characters_are_refused`, `non_ascii_letters_that_fold_to_ascii_are_refused` |
//! | segment-boundary prefixes; the query plays no part; forward the bytes checked | `security_paths`: `look_alikes_and_queries_are_forwarded_byte_for_byte`; `paths.rs`; `forwarding.rs` |
//! | **Headers and credentials** | |
//! | one `Authorization`; scheme in any case; token = the whole rest; visible ASCII and single spaces; length cap; before any Hub call | `security_credentials`: `token_syntax_is_checked_before_hub_is_asked`, `two_authorization_headers_are_refused`; `auth_scope.rs`; `properties.rs` |
//! | two credentials → 400; `?access_token=` alone → 401 | `security_credentials`: `a_token_in_the_query_never_reaches_youtrack`, `two_authorization_headers_are_refused` |
//! | a bearer token on a public route is still validated | `security_credentials`: `a_token_on_an_unprotected_path_is_still_checked`; `auth_scope.rs` |
//! | strip hop-by-hop headers before adding own; `Connection` naming protected headers → 400; no `h2c` | `security_headers`: `connection_naming_a_header_the_gateway_must_forward_is_refused`, `headers_named_in_connection_are_stripped`, `hop_by_hop_headers_and_h2c_never_reach_the_upstream`; `forwarding.rs` (the response side) |
//! | own `X-Forwarded-*`; drop `Forwarded`, `X-Real-IP`, names with `_` | `security_headers`: `client_forwarding_headers_never_reach_the_upstream`; `security_targets`: `a_host_that_reads_as_a_list_is_refused` |
//! | missing or duplicate `Host` → 400; HTTP/2 `:authority` ≠ `Host` → 400 | `security_targets`: `host_must_be_sent_once_and_name_only_a_host`, `http2_authority_and_host_must_agree`; `tls.rs` |
//! | authenticate before reading the body (`Expect: 100-continue`) | `security_headers`: `a_refused_upload_is_answered_before_its_body_is_read`, `an_authorized_upload_gets_100_continue_after_the_check` |
//! | (framing: one request in, at most one out, each authenticated) | `security_smuggling`: every test, `a_transfer_coding_the_gateway_cannot_pass_on_is_refused` among them |
//! | **Hub must not be turned into a weapon** | |
//! | syntax first, then negative cache, single flight, per-client budget, global cap | every refusal of a malformed request in `security_*` asserts no Hub call; `flood.rs`; `auth_cache.rs`; `auth_faults.rs` (`calls_beyond_max_concurrent_are_refused_at_once`); `src/auth/cache.rs` and `src/auth/limit.rs` tests |
//! | fail closed | `auth_faults.rs`; `auth_scope.rs` (`a_failing_hub_is_a_503_with_retry_after_never_an_invalid_token`) |
//! | **Limits and timeouts** | |
//! | header read timeout (slowloris), idle timeout, max connections | `connections.rs`; `resources.rs` |
//! | TLS handshake timeout | `tls.rs` (`a_client_that_never_finishes_the_handshake_is_cut`) |
//! | upstream connect and response timeouts; stalled upstream → 504 | `upstream_errors.rs` (a refused connection → 502, a stall → 504; `connect_timeout` itself is not driven) |
//! | max header size and count → 431 | `security_headers`: `oversized_or_too_many_headers_are_431_before_hub`; `paths.rs`; `resources.rs` (HTTP/2) |
//! | HTTP/2 stream limits | `resources.rs` |
//! | **Secrets** | |
//! | raw tokens never in logs or answers; a fingerprint and the login are logged | `security_credentials`: `tokens_reach_neither_the_log_nor_the_answers` |
//! | secrets from files; masked `Debug` | `src/config/tests/files.rs` |
//! | **TLS** | |
//! | rustls only, no TLS 1.0/1.1 | `security_tls`: `tls_1_0_and_1_1_clients_are_refused`; `tls.rs` |
//! | certificates reload without a restart | not covered: nothing in `src` reloads them |
//! | upstream and Hub certificates verified (optional extra CA) | `security_tls`: `an_upstream_certificate_is_verified_and_ca_file_trusts_one`, `a_hub_certificate_is_verified_and_an_unverifiable_hub_fails_closed` (Hub has no extra-CA option) |

mod support;

use support::adversarial::{By, RawConn, Rig};

#[tokio::test]
async fn dot_segments_in_every_spelling_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        b"/api/../hub/api/rest/users",
        b"/api/./issues",
        b"/api/issues/..",
        b"/api/issues/.",
        b"/..",
        b"/./api/issues",
        b"/hub/api/rest/oauth2/../users",
        b"/hub/api/rest/oauth2/../../rest/users",
        b"/api/%2e%2e/hub/api/rest/users",
        b"/api/%2E%2E/hub/api/rest/users",
        b"/api/%2e%2E/x",
        b"/api/.%2e/x",
        b"/api/%2E./x",
        b"/api/%2e/issues",
        b"/hub/api/rest/oauth2/%2e%2e/users",
        b"/hub/api/rest/oauth2/.%2E/users",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn empty_segments_backslashes_and_semicolons_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        b"//api/issues",
        b"/api//issues",
        b"/hub//api/rest/users",
        b"/hub/api/rest/oauth2//token",
        b"///",
        b"/api\\..\\hub",
        b"/hub/api/rest/oauth2\\..\\users",
        b"/x\\api",
        b"/api/%5c../hub",
        b"/api/%5C..%5Chub",
        b"/api;/issues",
        b"/api/issues;jsessionid=1",
        b"/hub/api/rest/oauth2/..;/users",
        b"/hub/api/rest/oauth2/..;/..;/rest/users",
        b"/api/..;/x",
        b"/x/;/api",
        b"/api/%3b/x",
        b"/api/%3B/x",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn escaped_delimiters_controls_and_double_encodings_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        b"/api%2fissues",
        b"/api%2Fissues",
        b"/hub%2Fapi/rest/users",
        b"/hub/api/rest/oauth2%2f..%2f..%2fusers",
        b"/api/%252e%252e/x",
        b"/api/%252F/x",
        b"/api/%2525",
        b"/%2561pi/issues",
        b"/api/%25",
        b"/api/%00",
        b"/api/issues%00.json",
        b"/api/x%0d%0aX-Injected:%201",
        b"/api/x%0D%0A",
        b"/api/%09",
        b"/api/%1f",
        b"/api/%1F",
        b"/api/%7f",
        b"/api/%7F",
        b"/api/%3f/x",
        b"/api/%3F/x",
        b"/api/%23/x",
        // Malformed escapes, including IIS's `%u`.
        b"/api/%u002e%u002e/x",
        b"/api/%2",
        b"/api/%",
        b"/api/%zz",
        b"/api/%%32%65",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn escapes_that_are_not_utf8_or_overlong_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        // Overlong `.`, `/` and `\`: what CVE-2021-42013-style double decoding feeds on.
        b"/api/%c0%ae%c0%ae/hub",
        b"/api/%C0%AE%C0%AE/hub",
        b"/api/%e0%80%ae/x",
        b"/api/%f0%80%80%ae/x",
        b"/api/%c0%af/x",
        b"/api/%c1%9c/x",
        // A surrogate, past U+10FFFF, stray or missing continuation bytes.
        b"/api/%ed%a0%80",
        b"/api/%f4%90%80%80",
        b"/api/%ff",
        b"/api/%FE",
        b"/api/%80",
        b"/api/%c3",
        b"/api/%c3x",
        b"/api/%c3%28",
        b"/api/%e2%82",
        b"/api/%c0%2e",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn raw_bytes_outside_visible_ascii_are_refused() {
    let rig = Rig::start().await;
    // Valid UTF-8 reaches the gateway's check.
    let gateway: &[&[u8]] = &[
        b"/api/\xc3\xa9",
        b"/re\xc5\xbft/issues",
        b"/api\xc2\xa0/x",
        b"/x?q=\xc3\xa9",
    ];
    rig.assert_targets_refused(By::Gateway, gateway).await;
    // Anything else is not even a request to hyper's parser.
    let parser: &[&[u8]] = &[
        b"/api/\xff",
        b"/api/\x80",
        b"/api/\xc0\xae\xc0\xae/hub",
        b"/api/\x01",
        b"/api/\x7f",
        b"/api/\x00",
        b"/api/\x1b[31m",
        b"/api/a\tb",
        b"/api/a\x0bb",
    ];
    rig.assert_targets_refused(By::Parser, parser).await;
}

#[tokio::test]
async fn case_variants_of_protected_prefixes_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        b"/API/issues",
        b"/Api/issues",
        b"/aPI",
        b"/API/",
        b"/API?fields=id",
        b"/REST/issues",
        b"/Rest",
        b"/HUB/API/rest/users",
        b"/hub/API/rest/users",
        b"/Hub/Api/rest/users",
        b"/HUB/api/rest/users",
        b"/hub/REST/x",
        b"/HUB/API/rest/oauth2/token",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn escaped_unreserved_characters_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        b"/%61pi/issues",
        b"/%41PI/issues",
        b"/a%70i/issues",
        b"/ap%69",
        b"/%72est/issues",
        b"/hub/%61pi/rest/users",
        b"/h%75b/api/rest/users",
        b"/hub/api/rest/oauth%32/token",
        b"/api/%7Euser",
        b"/api/a%2Db",
        b"/api/a%5Fb",
        b"/api/%30",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn non_ascii_letters_that_fold_to_ascii_are_refused() {
    let rig = Rig::start().await;
    let targets: &[&[u8]] = &[
        // LATIN SMALL LETTER LONG S: upper case `S`, so `reſt` folds to `REST`.
        b"/re%C5%BFt/issues",
        b"/re%c5%bft/issues",
        // DOTLESS I (upper case `I`) and CAPITAL I WITH DOT ABOVE (lower case `i` + U+0307).
        b"/hub/ap%C4%B1/rest/users",
        b"/ap%C4%B0/issues",
        // KELVIN SIGN (lower case `k`) and the `ff` ligature (upper case `FF`), anywhere.
        b"/x/%E2%84%AA",
        b"/x/%EF%AC%80",
    ];
    rig.assert_targets_refused(By::Gateway, targets).await;
}

#[tokio::test]
async fn look_alikes_and_queries_are_forwarded_byte_for_byte() {
    let rig = Rig::start().await;
    for target in [
        "/apix",
        "/api-internal",
        "/API-docs",
        "/rest-docs",
        "/hub/apix",
        "/api/",
        "/api/.well-known/x.json",
        "/api/issues?q=../..%2F%5C%00%25;a=b&c=%2e%2e",
        "/x?/api/../hub",
        "/issue/DEMO-1/%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
        "/api/a%20b%3Ac%40d%2B%26%3D%2C%22",
        "/api/%E2%82%AC",
    ] {
        let answer = rig.exchange(&rig.get_with_token(target.as_bytes())).await;
        let answer = answer.expect("an answer");
        assert_eq!(answer.status, 200, "{target}: {answer:?}");
        assert_eq!(rig.upstream.last().target, target);
    }
    // The query plays no part in routing: it neither protects nor unprotects a path.
    let host = rig.host();
    let before = rig.forwarded().len();
    let mut conn = RawConn::open(rig.addr()).await;
    let request = format!("GET /x?/api/issues HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.write(request.as_bytes()).await;
    let answer = conn.response().await.expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    let request = format!("GET /api?/x HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.write(request.as_bytes()).await;
    let answer = conn.response().await.expect("an answer");
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.gateway_error().as_deref(), Some("unauthorized"));
    let targets: Vec<String> = rig.forwarded()[before..]
        .iter()
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(targets, ["/x?/api/issues"]);
}
