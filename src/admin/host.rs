//! Which requests the admin listener answers, by the host they are addressed to. DNS
//! rebinding lets a web page in an operator's browser send requests to 127.0.0.1 under the
//! page's own name (`Host: attacker.example`), and read the answers as same-origin; so a
//! request addressed to a name is refused unless the name is in `admin.allowed_hosts`. An IP
//! literal or `localhost` cannot be rebound and is always answered.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::header::HOST;
use http::{HeaderMap, Uri, Version};

/// What the host a request is addressed to allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Addressed {
    /// An IP literal, `localhost`, a name in `admin.allowed_hosts`, or (HTTP/1.0) no host.
    Here,
    /// A well-formed name the admin listener does not answer for: 421.
    Elsewhere,
    /// No `Host` on HTTP/1.1, two of them, a malformed one, or an absolute-form target whose
    /// authority differs from `Host`: 400.
    Malformed,
}

/// Where a request is addressed: its `Host`, or the authority of an absolute-form target
/// (which must then agree with `Host`, letter case aside).
pub(super) fn addressed(
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
    allowed: &[String],
) -> Addressed {
    let mut hosts = headers.get_all(HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Addressed::Malformed,
        (host, None) => host.map(|value| value.as_bytes()),
    };
    let authority = uri.authority().map(|a| a.as_str().as_bytes());
    let stated = match (host, authority) {
        (Some(host), Some(authority)) if !host.eq_ignore_ascii_case(authority) => {
            return Addressed::Malformed;
        }
        (Some(host), _) => host,
        // HTTP/1.0 has no `Host` requirement; browsers always send one.
        (None, Some(authority)) if version < Version::HTTP_11 => authority,
        (None, None) if version < Version::HTTP_11 => return Addressed::Here,
        (None, _) => return Addressed::Malformed,
    };
    classify(stated, allowed)
}

/// `host [":" port]`, where host is an IPv4 literal, a bracketed IPv6 literal or a name.
fn classify(stated: &[u8], allowed: &[String]) -> Addressed {
    let Ok(stated) = std::str::from_utf8(stated) else {
        return Addressed::Malformed;
    };
    let (host, port) = match stated.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((literal, after)) if literal.parse::<Ipv6Addr>().is_ok() => {
                match after.strip_prefix(':') {
                    None if after.is_empty() => (None, None),
                    None => return Addressed::Malformed,
                    Some(port) => (None, Some(port)),
                }
            }
            _ => return Addressed::Malformed,
        },
        None => match stated.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(stated), None),
        },
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return Addressed::Malformed;
    }
    let Some(name) = host else {
        return Addressed::Here;
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !name_ok {
        Addressed::Malformed
    } else if name.parse::<Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
    {
        Addressed::Here
    } else {
        Addressed::Elsewhere
    }
}

#[cfg(test)]
mod tests {
    use super::{addressed, Addressed};
    use http::{HeaderMap, HeaderValue, Uri, Version};

    fn check(version: Version, target: &str, hosts: &[&str], allowed: &[&str]) -> Addressed {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append("host", HeaderValue::from_str(host).expect("host value"));
        }
        let allowed: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        let uri: Uri = target.parse().expect("target");
        addressed(version, &uri, &headers, &allowed)
    }

    fn host(value: &str) -> Addressed {
        check(Version::HTTP_11, "/metrics", &[value], &[])
    }

    #[test]
    fn ip_literals_and_localhost_are_answered() {
        for value in [
            "127.0.0.1",
            "127.0.0.1:9901",
            "10.1.2.3:80",
            "[::1]",
            "[::1]:9901",
            "[2001:db8::7]:9901",
            "[::ffff:127.0.0.1]:9901",
            "localhost",
            "LocalHost:9901",
        ] {
            assert_eq!(host(value), Addressed::Here, "{value}");
        }
    }

    #[test]
    fn names_are_elsewhere_unless_allowed() {
        for value in [
            "attacker.example",
            "attacker.example:9901",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:9901",
            "2130706433",
            "127.1",
            "0x7f.0.0.1",
            "localhost.",
            "admin.localhost",
        ] {
            assert_eq!(host(value), Addressed::Elsewhere, "{value}");
        }
        let allowed = ["hubgate.internal"];
        for value in ["hubgate.internal", "HubGate.Internal:9901"] {
            let found = check(Version::HTTP_11, "/", &[value], &allowed);
            assert_eq!(found, Addressed::Here, "{value}");
        }
        let other = check(Version::HTTP_11, "/", &["hubgate.internal.evil"], &allowed);
        assert_eq!(other, Addressed::Elsewhere);
    }

    #[test]
    fn missing_duplicate_and_malformed_hosts_are_bad_requests() {
        assert_eq!(check(Version::HTTP_11, "/", &[], &[]), Addressed::Malformed);
        let two = check(Version::HTTP_11, "/", &["127.0.0.1", "127.0.0.1"], &[]);
        assert_eq!(two, Addressed::Malformed);
        for value in [
            "",
            ":9901",
            "127.0.0.1:",
            "127.0.0.1:x",
            "127.0.0.1:123456",
            "127.0.0.1:99:1",
            "::1",
            "[::1",
            "[::1]x",
            "[fe80::1%25eth0]",
            "[v1.x]",
            "user@127.0.0.1",
            "127.0.0.1/x",
            "a b",
        ] {
            assert_eq!(host(value), Addressed::Malformed, "{value:?}");
        }
    }

    #[test]
    fn an_absolute_target_must_agree_with_host() {
        let v11 = Version::HTTP_11;
        let same = check(v11, "http://127.0.0.1:9901/m", &["127.0.0.1:9901"], &[]);
        assert_eq!(same, Addressed::Here);
        let named = check(v11, "http://attacker.example/m", &["127.0.0.1"], &[]);
        assert_eq!(named, Addressed::Malformed);
        let no_host = check(v11, "http://127.0.0.1/m", &[], &[]);
        assert_eq!(no_host, Addressed::Malformed);
        let old = check(Version::HTTP_10, "http://attacker.example/m", &[], &[]);
        assert_eq!(old, Addressed::Elsewhere);
    }

    #[test]
    fn http_1_0_may_leave_host_out() {
        assert_eq!(check(Version::HTTP_10, "/", &[], &[]), Addressed::Here);
        let named = check(Version::HTTP_10, "/", &["attacker.example"], &[]);
        assert_eq!(named, Addressed::Elsewhere);
    }
}
