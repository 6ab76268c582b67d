//! The effective configuration as text, for `hubgate check`.

use std::fmt::Write as _;

use super::duration::format_duration as d;
use super::{Backend, Config, Route};

impl Config {
    /// Every effective value, defaults included, with the routes longest prefix first (the
    /// order they are matched in).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.describe_server(&mut out);
        self.describe_upstreams(&mut out);
        self.describe_services(&mut out);
        self.describe_introspection(&mut out);
        self.describe_routes(&mut out);
        self.describe_operations(&mut out);
        out
    }

    fn describe_operations(&self, out: &mut String) {
        let a = &self.admin;
        let post = if a.token.is_some() {
            "POST /reload with the admin token"
        } else {
            "POST disabled (no admin.token_file)"
        };
        let hub = if a.readyz_checks_hub {
            ", /readyz checks the token backend"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "admin {}: /healthz, /readyz, /metrics; {post}{hub}",
            a.listen
        );
        let l = &self.log;
        let format = match l.format {
            super::LogFormat::Text => "text",
            super::LogFormat::Json => "json",
        };
        let access = if l.access_log { "on" } else { "off" };
        let _ = writeln!(
            out,
            "log level {}, format {format}, access log {access}",
            l.level
        );
    }

    fn describe_server(&self, out: &mut String) {
        let s = &self.server;
        let mode = match &s.tls {
            None => "plain HTTP",
            Some(_) => "TLS, ALPN h2 + http/1.1",
        };
        let _ = writeln!(out, "listen {} ({mode})", s.listen);
        if let Some(tls) = &s.tls {
            let (cert, key) = (tls.cert.display(), tls.key.display());
            let _ = writeln!(out, "  cert {cert}, key {key}");
        }
        let _ = writeln!(
            out,
            "  realm {:?}; max {} connections, {} headers and {} header bytes per request, \
             {} HTTP/2 streams per connection",
            s.realm, s.max_connections, s.max_headers, s.max_header_bytes, s.max_concurrent_streams
        );
        let _ = writeln!(
            out,
            "  timeouts: header read {}, idle {}, TLS handshake {}, shutdown {}",
            d(s.header_read_timeout),
            d(s.idle_timeout),
            d(s.tls_handshake_timeout),
            d(s.shutdown_timeout)
        );
    }

    fn describe_upstreams(&self, out: &mut String) {
        let rows = self.upstreams.iter().map(|(name, upstream)| {
            let mut timeouts = format!(
                "connect {}, response {}",
                d(upstream.connect_timeout),
                d(upstream.response_timeout)
            );
            if let Some(ca) = &upstream.ca_file {
                let _ = write!(timeouts, ", ca {}", ca.display());
            }
            vec![
                format!("upstream {name}"),
                upstream.url.to_string().trim_end_matches('/').to_owned(),
                timeouts,
            ]
        });
        out.push_str(&table("", rows.collect(), "  "));
    }

    fn describe_services(&self, out: &mut String) {
        let probes = match &self.introspection.backend {
            Backend::Hub { probes } => Some(probes),
            Backend::Rfc7662 { .. } => None,
        };
        let rows = self.services.iter().map(|(name, service)| {
            let mut row = vec![format!("service {name}"), service.id.clone()];
            if let Some(probe) = probes.and_then(|probes| probes.get(name)) {
                row.push(format!("probe {probe}"));
            }
            row
        });
        out.push_str(&table("", rows.collect(), "  "));
    }

    fn describe_introspection(&self, out: &mut String) {
        let i = &self.introspection;
        let backend = match &i.backend {
            Backend::Hub { .. } => "hub".to_owned(),
            Backend::Rfc7662 {
                endpoint,
                client_id,
                ..
            } => format!("rfc7662 {endpoint} as client {client_id:?}"),
        };
        let c = &self.cache;
        let _ = write!(
            out,
            "introspection {backend}, timeout {}, max_concurrent {}, client_miss_rate {}/s; \
             cache ttl {}, negative {}, max_entries {}",
            d(i.timeout),
            i.max_concurrent,
            i.client_miss_rate,
            d(c.ttl),
            d(c.negative_ttl),
            c.max_entries
        );
        if !c.stale_if_error.is_zero() {
            let _ = write!(out, ", stale_if_error {}", d(c.stale_if_error));
        }
        out.push('\n');
    }

    fn describe_routes(&self, out: &mut String) {
        let mut routes: Vec<&Route> = self.routes.iter().collect();
        routes.sort_by(|a, b| (b.prefix.len(), &a.prefix).cmp(&(a.prefix.len(), &b.prefix)));
        let header = [
            "PREFIX",
            "UPSTREAM",
            "SERVICE",
            "WITHOUT CREDENTIAL",
            "TOKEN CHECK",
        ];
        let mut rows = vec![header.map(str::to_owned).to_vec()];
        rows.extend(routes.into_iter().map(|route| self.route_row(route)));
        out.push_str("routes (longest prefix wins):\n");
        out.push_str(&table("  ", rows, "   "));
    }

    fn route_row(&self, route: &Route) -> Vec<String> {
        let (service, anonymous) = match &route.service {
            None => ("- (public)".to_owned(), "passes".to_owned()),
            Some(name) => {
                let id = self.services.get(name).map_or("?", |s| s.id.as_str());
                (format!("{name} ({id})"), without_credential(route))
            }
        };
        let mut check = self.token_check(route);
        for (what, timeout) in [
            ("response", route.response_timeout),
            ("idle", route.idle_timeout),
        ] {
            if let Some(timeout) = timeout {
                let _ = write!(check, "; {what} timeout {}", d(timeout));
            }
        }
        vec![
            route.prefix.to_string(),
            route.upstream.clone(),
            service,
            anonymous,
            check,
        ]
    }

    /// How a token on `route` is checked: the probe of its service, or every probe (a token
    /// sent on a public route must be valid for some service), or the introspection endpoint.
    fn token_check(&self, route: &Route) -> String {
        match (&self.introspection.backend, &route.service) {
            (Backend::Rfc7662 { .. }, _) => "rfc7662 endpoint".to_owned(),
            (Backend::Hub { probes }, Some(name)) => probes
                .get(name)
                .map_or_else(|| "?".to_owned(), |probe| format!("probe {probe}")),
            (Backend::Hub { .. }, None) => "any service's probe, if a token is sent".to_owned(),
        }
    }
}

/// What a protected route does with a request that carries no credential.
fn without_credential(route: &Route) -> String {
    if route.allow_anonymous {
        return "passes (guest access)".to_owned();
    }
    let Some(capability) = &route.capability else {
        return "401".to_owned();
    };
    let methods: Vec<&str> = capability.methods.iter().map(|m| m.as_str()).collect();
    let methods = methods.join("/");
    match &capability.param {
        None => format!("{methods} passes (capability)"),
        Some(param) => format!("{methods} with ?{param}= passes (capability)"),
    }
}

/// Rows as aligned columns, each line indented and without trailing spaces.
fn table(indent: &str, rows: Vec<Vec<String>>, gap: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            let cell = |row: &Vec<String>| row.get(column).map_or(0, |c| c.chars().count());
            rows.iter().map(cell).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_owned();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}{gap}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
