//! What `hubgate hub discover` prints: the `[services.youtrack]` and `[services.hub]` tables
//! for the gateway's configuration, from the services Hub lists, and the routes that go with
//! them. Pure, so the text is tested
//! without a Hub.
//!
//! Everything that comes from Hub reaches the output either as a TOML string (quoted by the
//! `toml` crate) or inside a comment in Rust's escaped form, so a service name with a line
//! break cannot add a key to the block.

use std::fmt::Write as _;

use super::{HubError, ServiceInfo};

/// Hub's own service ID ("YouTrack Administration"), fixed in every Hub.
pub const HUB_SERVICE_ID: &str = "0-0-0-0-0";
/// What both probes ask `users/me` for (`hub-contract.md`, "Validating a token").
const PROBE_FIELDS: &str = "fields=id,login,name,banned,guest";

/// The ready-to-paste block for a Hub at `hub_base` (no trailing `/`) listing `services`.
pub fn render(hub_base: &str, services: &[ServiceInfo]) -> Result<String, HubError> {
    let youtrack = pick_youtrack(hub_base, services)?;
    let (youtrack_base, assumption) = youtrack_base(hub_base, youtrack)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Found in Hub at {hub_base} by `hubgate hub discover`."
    );
    let _ = writeln!(text, "# Assumed: {assumption}.");
    let _ = writeln!(text, "[services.youtrack]");
    let _ = writeln!(text, "id = {}", quoted(&youtrack.id));
    let probe = format!("{youtrack_base}/api/users/me?{PROBE_FIELDS}");
    let _ = writeln!(text, "probe = {}", quoted(&probe));
    let _ = writeln!(text);
    let _ = writeln!(text, "[services.hub]");
    let _ = writeln!(text, "id = {}", quoted(HUB_SERVICE_ID));
    let probe = format!("{hub_base}/api/rest/users/me?{PROBE_FIELDS}");
    let _ = writeln!(text, "probe = {}", quoted(&probe));
    let others: Vec<&ServiceInfo> = services
        .iter()
        .filter(|s| s.id != youtrack.id && s.id != HUB_SERVICE_ID)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(text, "\n# Other services in Hub:");
        for service in others {
            let _ = writeln!(text, "# {}", describe(service));
        }
    }
    let context = context_path(youtrack_base);
    let _ = writeln!(
        text,
        "\n# The routes every JetBrains client needs, through [upstreams.youtrack]{}.",
        if context.is_empty() {
            String::new()
        } else {
            format!(", under YouTrack's context path {}", quoted(&context))
        }
    );
    text.push_str(&routes_under(&context));
    Ok(text)
}

/// The YouTrack service: the one whose `applicationName` is YouTrack; among several, the
/// one whose home is the YouTrack this Hub is built into, else the first listed.
fn pick_youtrack<'a>(
    hub_base: &str,
    services: &'a [ServiceInfo],
) -> Result<&'a ServiceInfo, HubError> {
    let candidates: Vec<&ServiceInfo> = services.iter().filter(|s| is_youtrack(s)).collect();
    let built_in = hub_base.strip_suffix("/hub");
    let at_home = candidates
        .iter()
        .find(|s| built_in.is_some() && home(s) == built_in);
    at_home
        .or(candidates.first())
        .copied()
        .ok_or(HubError::NoYouTrackService)
}

fn is_youtrack(service: &ServiceInfo) -> bool {
    service
        .application_name
        .as_deref()
        .is_some_and(|name| name.eq_ignore_ascii_case("YouTrack"))
}

/// A service's `homeUrl` without trailing `/`, when it is an http(s) URL.
fn home(service: &ServiceInfo) -> Option<&str> {
    let url = service.home_url.as_deref()?.trim_end_matches('/');
    let web = url.starts_with("http://") || url.starts_with("https://");
    (web && !url.contains(char::is_whitespace)).then_some(url)
}

/// YouTrack's base URL and what was assumed to find it: with Hub built in, `{youtrack}/hub`
/// is Hub, so YouTrack is `hub.url` without `/hub` (the probe then goes to the same host the
/// gateway fronts); a standalone Hub knows YouTrack only by its `homeUrl`.
fn youtrack_base<'a>(
    hub_base: &'a str,
    youtrack: &'a ServiceInfo,
) -> Result<(&'a str, &'static str), HubError> {
    if let Some(base) = hub_base.strip_suffix("/hub") {
        let assumed = "Hub is built into YouTrack (hub.url ends in /hub), so YouTrack is \
                       hub.url without /hub";
        return Ok((base, assumed));
    }
    let assumed = "Hub is standalone (hub.url does not end in /hub), so YouTrack is at the \
                   homeUrl Hub lists for it";
    home(youtrack)
        .map(|base| (base, assumed))
        .ok_or(HubError::NoYouTrackUrl)
}

/// The path YouTrack lives under (`/youtrack` for `https://host/youtrack`), or "".
fn context_path(youtrack_base: &str) -> String {
    youtrack_base
        .parse::<http::Uri>()
        .map(|uri| uri.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The shipped routes with every prefix but the catch-all `/` moved under `context`; each
/// prefix written as a TOML string, since the context comes from Hub.
fn routes_under(context: &str) -> String {
    let mut text = String::new();
    for line in crate::config::YOUTRACK_ROUTES.lines() {
        let moved = line
            .strip_prefix("prefix = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|prefix| *prefix != "/");
        match moved {
            Some(prefix) => {
                let _ = writeln!(text, "prefix = {}", quoted(&format!("{context}{prefix}")));
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// `"hubgate" (applicationName "hubgate") id "…", homeUrl "…"`, every part escaped.
fn describe(service: &ServiceInfo) -> String {
    let mut text = format!(
        "{:?} (applicationName {:?}) id {:?}",
        service.name.as_deref().unwrap_or(""),
        service.application_name.as_deref().unwrap_or(""),
        service.id,
    );
    if let Some(home) = &service.home_url {
        let _ = write!(text, ", homeUrl {home:?}");
    }
    text
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str, name: &str, application: &str, home: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            id: id.into(),
            name: Some(name.into()),
            application_name: Some(application.into()),
            home_url: home.map(str::to_owned),
        }
    }

    fn parsed(text: &str) -> toml::Table {
        text.parse()
            .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
    }

    fn field<'a>(table: &'a toml::Table, service: &str, key: &str) -> &'a str {
        table["services"][service][key].as_str().expect("a string")
    }

    #[test]
    fn built_in_hub_gives_youtrack_at_the_same_base() {
        let services = [
            service("0-0-0-0-0", "YouTrack Administration", "Hub", None),
            service("6ab6", "YouTrack", "YouTrack", None),
            service(
                "c0ffee",
                "evil\"\n[server]\nlisten = \"0.0.0.0:1\"",
                "x",
                Some("http://e"),
            ),
        ];
        let text = render("https://yt.example.com/youtrack/hub", &services).expect("renders");
        let table = parsed(&text);
        assert_eq!(field(&table, "youtrack", "id"), "6ab6");
        assert_eq!(
            field(&table, "youtrack", "probe"),
            "https://yt.example.com/youtrack/api/users/me?fields=id,login,name,banned,guest"
        );
        assert_eq!(field(&table, "hub", "id"), "0-0-0-0-0");
        assert_eq!(
            field(&table, "hub", "probe"),
            "https://yt.example.com/youtrack/hub/api/rest/users/me?fields=id,login,name,banned,guest"
        );
        assert_eq!(
            table.keys().collect::<Vec<_>>(),
            ["routes", "services"],
            "{text}"
        );
        let prefixes: Vec<&str> = table["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .filter_map(|route| route["prefix"].as_str())
            .collect();
        assert!(prefixes.contains(&"/youtrack/api/files"), "{text}");
        assert!(
            prefixes.contains(&"/youtrack/hub/api/rest/oauth2"),
            "{text}"
        );
        assert!(prefixes.contains(&"/"), "{text}");
        assert!(text.contains("c0ffee"), "{text}");
    }

    #[test]
    fn standalone_hub_uses_youtrack_home_url_and_says_so() {
        let services = [
            service(
                "old",
                "YouTrack old",
                "YouTrack",
                Some("https://old.example.com/"),
            ),
            service(
                "new",
                "YouTrack",
                "youtrack",
                Some("https://yt.example.com/"),
            ),
        ];
        let text = render("https://hub.example.com", &services).expect("renders");
        let table = parsed(&text);
        assert_eq!(field(&table, "youtrack", "id"), "old");
        assert_eq!(
            field(&table, "youtrack", "probe"),
            "https://old.example.com/api/users/me?fields=id,login,name,banned,guest"
        );
        assert!(text.contains("homeUrl Hub lists"), "{text}");
        assert!(text.contains("# \"YouTrack\" (applicationName \"youtrack\") id \"new\""));
    }

    #[test]
    fn among_several_youtracks_the_one_hub_is_built_into_wins() {
        let services = [
            service(
                "other",
                "YouTrack",
                "YouTrack",
                Some("https://other.example.com"),
            ),
            service(
                "here",
                "YouTrack",
                "YouTrack",
                Some("https://yt.example.com/"),
            ),
        ];
        let text = render("https://yt.example.com/hub", &services).expect("renders");
        assert_eq!(field(&parsed(&text), "youtrack", "id"), "here");
    }

    #[test]
    fn no_youtrack_or_no_url_is_an_error() {
        let hub_only = [service("0-0-0-0-0", "YouTrack Administration", "Hub", None)];
        assert!(matches!(
            render("https://yt.example.com/hub", &hub_only),
            Err(HubError::NoYouTrackService)
        ));
        let homeless = [service(
            "6ab6",
            "YouTrack",
            "YouTrack",
            Some("javascript:x"),
        )];
        assert!(matches!(
            render("https://hub.example.com", &homeless),
            Err(HubError::NoYouTrackUrl)
        ));
    }
}
