//! Who the client is: the socket's peer, or — only when that peer is a configured trusted
//! proxy — the right-most address in `X-Forwarded-For` that is not a trusted proxy itself. And
//! what counts as one client for budgets and connection caps: an IPv6 host owns a whole /64,
//! so addresses are grouped by a prefix (`client_ipv4_prefix`, `client_ipv6_prefix`).
//! Pure functions, no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block, `192.0.2.0/24` or `2001:db8::/32` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address[/prefix]`; the address must be the block's first (no host bits set),
    /// so `10.0.0.1/8` is refused rather than read as something else than was written.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IP address"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(text) => text
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?} is not a prefix length from 0 to {bits}"))?,
        };
        if mask(network, prefix) != network {
            return Err(format!(
                "{text:?} has host bits set (write {}/{prefix})",
                mask(network, prefix)
            ));
        }
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }

    /// Whether the block is every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// How addresses are grouped into clients, and which peers are trusted proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Clients {
    /// The client an address belongs to: the address with its host bits beyond the family's
    /// prefix cleared (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn key(&self, ip: IpAddr) -> IpAddr {
        let ip = canonical(ip);
        let prefix = if ip.is_ipv4() {
            self.ipv4_prefix
        } else {
            self.ipv6_prefix
        };
        mask(ip, prefix)
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address: `peer`, or — when `peer` is a trusted proxy — the right-most
    /// entry of the `X-Forwarded-For` values (in order) that is not a trusted proxy; if every
    /// entry is trusted, the left-most. An entry that is not an address stops the walk there
    /// (nothing left of it can be believed) and the last trusted hop is the client.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut entries: Vec<&[u8]> = forwarded_for
            .flat_map(|value| value.split(|&b| b == b','))
            .collect();
        let mut client = peer;
        while let Some(entry) = entries.pop() {
            let Some(ip) = parse_entry(entry) else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, with spaces around it; IPv6 may be bracketed.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim_matches(' ');
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok().map(canonical)
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn clients(trusted: &[&str]) -> Clients {
        Clients {
            trusted_proxies: trusted
                .iter()
                .map(|t| Cidr::parse(t).expect("cidr"))
                .collect(),
            ..Clients::default()
        }
    }

    #[test]
    fn blocks_parse_strictly_and_contain_their_addresses() {
        let block = Cidr::parse("10.1.0.0/16").expect("valid");
        assert!(block.contains(ip("10.1.200.3")));
        assert!(block.contains(ip("::ffff:10.1.2.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(!block.contains(ip("::1")));
        assert!(Cidr::parse("192.0.2.7")
            .expect("a host")
            .contains(ip("192.0.2.7")));
        assert!(Cidr::parse("0.0.0.0/0").expect("all").is_everything());
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/x",
            "host/8",
            "",
            "2001:db8::1/32",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ipv6_hosts_are_one_client_per_64() {
        let clients = Clients::default();
        assert_eq!(
            clients.key(ip("2001:db8:1:2:aaaa::1")),
            clients.key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            clients.key(ip("2001:db8:1:2::1")),
            clients.key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(clients.key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(clients.key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_from_a_trusted_proxy_only() {
        let clients = clients(&["10.0.0.0/8"]);
        let xff = |values: &[&'static str]| values.iter().map(|v| v.as_bytes()).collect::<Vec<_>>();
        // An untrusted peer's header is ignored.
        let spoofed = xff(&["6.6.6.6"]);
        assert_eq!(
            clients.client(ip("203.0.113.9"), spoofed.into_iter()),
            ip("203.0.113.9")
        );
        // From the balancer: the right-most untrusted entry, whatever the client put left of it.
        let chain = xff(&["6.6.6.6, 198.51.100.4", "10.0.0.7"]);
        assert_eq!(
            clients.client(ip("10.0.0.1"), chain.into_iter()),
            ip("198.51.100.4")
        );
        let bracketed = xff(&["[2001:db8::5]"]);
        assert_eq!(
            clients.client(ip("10.0.0.1"), bracketed.into_iter()),
            ip("2001:db8::5")
        );
        // Garbage stops the walk at the last trusted hop.
        let garbage = xff(&["198.51.100.4, nonsense, 10.0.0.9"]);
        assert_eq!(
            clients.client(ip("10.0.0.1"), garbage.into_iter()),
            ip("10.0.0.9")
        );
        assert_eq!(
            clients.client(ip("10.0.0.1"), xff(&[]).into_iter()),
            ip("10.0.0.1")
        );
    }
}
