//! What the simulator starts with: users, services, tokens, the instance's identifiers.

use super::directory::{Directory, PermStyle, Service, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use super::oauth::ACCESS_TOKEN_LIFETIME;
use super::public::Instance;

/// The tokens and credentials the simulator is seeded with (`hubgate sim` prints them; the
/// README documents them).
#[derive(Debug, Clone)]
pub struct DemoTokens {
    /// alice, permanent `perm:` token granted for YouTrack only.
    pub youtrack_only: String,
    /// alice, permanent `perm-` token granted for Hub (`0-0-0-0-0`) only.
    pub hub_only: String,
    /// alice, OAuth access token granted for YouTrack and Hub (it contains a space).
    pub both_oauth: String,
    /// alice, permanent token that has been deleted in Hub.
    pub revoked: String,
    /// bob (banned), permanent token granted for YouTrack and Hub.
    pub banned: String,
    /// admin, permanent token granted for Hub and YouTrack.
    pub admin: String,
    /// A registered service (client of the token and RFC 7662 endpoints).
    pub client_id: String,
    pub client_secret: String,
}

/// Users: `admin` (password `admin`, may manage everyone), `alice` (`alice`), `bob` (`bob`,
/// banned) and `guest`; services `hubgate` and `YouTrack Mobile` (the mobile app's client,
/// which `/api/config` names). The issue, attachment and agile board are fixed
/// (`attachments`, `sse`).
pub fn seed(directory: &mut Directory) -> (DemoTokens, Instance) {
    let admin = directory.add_user("admin", "Administrator", "admin", true);
    let alice = directory.add_user("alice", "Alice Demo", "alice", false);
    let bob = directory.add_user("bob", "Bob Banned", "bob", false);
    directory.add_user("guest", "Guest", "", false);
    if let Some(user) = directory.user_mut(&bob) {
        user.banned = true;
    }
    let (client_id, client_secret) = directory.register_service(Service {
        id: String::new(),
        name: "hubgate".into(),
        application_name: "hubgate".into(),
        secret: None,
        home_url: None,
        redirect_uris: Vec::new(),
        vendor: Some("hubgate".into()),
        version: None,
    });
    let yt = || vec![YOUTRACK_SERVICE_ID.to_owned()];
    let hub = || vec![HUB_SERVICE_ID.to_owned()];
    let both = || vec![YOUTRACK_SERVICE_ID.to_owned(), HUB_SERVICE_ID.to_owned()];
    let mut perm = |user: &str, name: &str, scope, style| {
        directory
            .mint_permanent(user, name, scope, style)
            .unwrap_or_default()
    };
    let youtrack_only = perm(&alice, "youtrack-cli", yt(), PermStyle::Named).0;
    let hub_only = perm(&alice, "hub-admin-scripts", hub(), PermStyle::Dash).0;
    let (revoked, revoked_id) = perm(&alice, "leaked", both(), PermStyle::EntityId);
    let banned = perm(&bob, "bob-cli", both(), PermStyle::EntityId).0;
    let admin_token = perm(
        &admin,
        "security-team",
        vec![HUB_SERVICE_ID.to_owned(), YOUTRACK_SERVICE_ID.to_owned()],
        PermStyle::EntityId,
    )
    .0;
    directory.delete_token(&alice, &revoked_id);
    let both_oauth = directory.mint_access(&alice, &client_id, both(), ACCESS_TOKEN_LIFETIME);
    let (mobile_id, mobile_secret) = directory.register_service(Service {
        id: String::new(),
        name: "YouTrack Mobile".into(),
        application_name: "YouTrack Mobile".into(),
        secret: None,
        home_url: None,
        redirect_uris: vec!["ytoauth://landing.url".into()],
        vendor: Some("JetBrains".into()),
        version: None,
    });
    let instance = Instance {
        uuid: directory.uuid(),
        settings_id: directory.uuid(),
        mobile_id,
        mobile_secret,
    };
    let demo = DemoTokens {
        youtrack_only,
        hub_only,
        both_oauth,
        revoked,
        banned,
        admin: admin_token,
        client_id,
        client_secret,
    };
    (demo, instance)
}
