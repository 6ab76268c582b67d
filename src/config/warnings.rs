//! Settings that are valid but risky: `hubgate check` prints them as warnings and still
//! accepts the file.

use super::Config;

impl Config {
    /// Each risky setting, with its key path and why it is risky.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let cache = &self.cache;
        if cache.stale_if_error > cache.ttl * 10 {
            warnings.push(format!(
                "cache.stale_if_error: more than ten times cache.ttl: during a Hub outage a \
                 token deleted in Hub keeps working for up to {}s on GET and HEAD",
                (cache.ttl + cache.stale_if_error).as_secs()
            ));
        }
        for (index, route) in self.routes.iter().enumerate() {
            if route.service.is_some() && route.allow_anonymous {
                warnings.push(format!(
                    "routes[{index}].allow_anonymous: requests without a token pass {} \
                     unchecked; YouTrack alone decides what guests may do",
                    route.prefix
                ));
            }
        }
        let listen = self.server.listen.ip();
        if self.server.tls.is_none() && !listen.is_loopback() {
            warnings.push(format!(
                "server.tls_cert: TLS is off on {listen}, which is not a loopback address: \
                 tokens cross the network in clear text unless a TLS proxy sits in front"
            ));
        }
        if self.admin.token.is_some() && self.admin.state_dir.is_none() && self.fleet.is_none() {
            warnings.push(
                "admin.state_dir: not set and no [fleet]: revocations last until the process \
                 stops (a restart or package upgrade forgets them)"
                    .to_owned(),
            );
        }
        if let Some(fleet) = &self.fleet {
            warnings.extend(fleet.warnings());
        }
        for block in &self.server.clients.trusted_proxies {
            if block.is_everything() {
                warnings.push(format!(
                    "server.trusted_proxies: {block} trusts X-Forwarded-For from everyone: any \
                     client can name itself another address and escape its budgets and caps; \
                     list only your load balancers"
                ));
            }
        }
        let admin = self.admin.listen.ip();
        if !admin.is_loopback() {
            warnings.push(format!(
                "admin.listen: {admin} is not a loopback address: /metrics and /readyz answer \
                 anyone who can reach it; keep it on a management network or firewall it"
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"

[upstreams.youtrack]
url = "http://127.0.0.1:8081"

[services.youtrack]
id = "6ab631e2-61a7-4806-b029-44f0753fc29a"
probe = "http://127.0.0.1:8081/api/users/me"

[[routes]]
prefix = "/api"
upstream = "youtrack"
service = "youtrack"
"#;

    fn warnings(text: &str) -> Vec<String> {
        match Config::parse(text, Path::new("test.toml")) {
            Ok(config) => config.warnings(),
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn a_careful_configuration_has_no_warnings() {
        assert_eq!(warnings(BASE), Vec::<String>::new());
    }

    #[test]
    fn risky_settings_are_named_by_their_keys() {
        let text = BASE.replace("127.0.0.1:8080", "0.0.0.0:8080").replace(
            "service = \"youtrack\"",
            "service = \"youtrack\"\nallow_anonymous = true",
        ) + "\n[cache]\nttl = \"30s\"\nstale_if_error = \"301s\"\n"
            + "\n[admin]\nlisten = \"10.0.0.5:9901\"\n";
        let found = warnings(&text);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("cache.stale_if_error:"), "{found:#?}");
        assert!(
            found[1].starts_with("routes[0].allow_anonymous:"),
            "{found:#?}"
        );
        assert!(
            found[2].starts_with("server.tls_cert: TLS is off on 0.0.0.0"),
            "{found:#?}"
        );
        assert!(
            found[3].starts_with("admin.listen: 10.0.0.5 is not a loopback"),
            "{found:#?}"
        );
        let just_enough = text.replace("301s", "300s");
        assert_eq!(warnings(&just_enough).len(), 3);
    }

    #[test]
    fn trusting_x_forwarded_for_from_everyone_is_a_warning() {
        let trusting = |blocks: &str| {
            let text = BASE.replace(
                "listen = \"127.0.0.1:8080\"",
                &format!("listen = \"127.0.0.1:8080\"\ntrusted_proxies = [{blocks}]"),
            );
            warnings(&text)
        };
        assert!(trusting(r#""10.0.0.0/8", "2001:db8::/32""#).is_empty());
        for everyone in [r#""0.0.0.0/0""#, r#""10.0.0.0/8", "::/0""#] {
            let found = trusting(everyone);
            assert_eq!(found.len(), 1, "{found:#?}");
            assert!(
                found[0].contains("trusts X-Forwarded-For from everyone"),
                "{found:#?}"
            );
        }
    }
}
