//! The simulator's directory, as Hub keeps it: users, services and tokens. Tokens are minted
//! in the shapes real Hub issues (`perm:`/`perm-` permanent tokens, OAuth access tokens whose
//! scope part is space-separated) and stored by their SHA-256, never as text; a deleted token
//! fails at once. Application passwords live here too (`app_passwords`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::time::Instant;

use super::app_passwords::AppPassword;

/// Hub itself, "YouTrack Administration".
pub const HUB_SERVICE_ID: &str = "0-0-0-0-0";
/// The simulated YouTrack's service ID (the one `config.example.toml` names).
pub const YOUTRACK_SERVICE_ID: &str = "6ab631e2-61a7-4806-b029-44f0753fc29a";

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub login: String,
    pub name: String,
    pub banned: bool,
    pub guest: bool,
    /// May manage other users' tokens and register services.
    pub admin: bool,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub application_name: String,
    /// Client secret of a registered service (none for Hub and YouTrack themselves).
    pub secret: Option<String>,
    pub home_url: Option<String>,
    pub redirect_uris: Vec<String>,
    pub vendor: Option<String>,
    pub version: Option<String>,
}

/// Which of the observed permanent-token shapes to mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermStyle {
    /// `perm:` + base64(login) + `.` + base64(token name) + `.` + 30 alphanumerics.
    Named,
    /// `perm:` + base64(login) + `.` + base64(entity id, e.g. `47-5`) + `.` + 30 alphanumerics.
    EntityId,
    /// As `EntityId`, with the newer `perm-` prefix.
    Dash,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    Permanent {
        id: String,
        name: String,
        created_ms: u64,
        last_access_ms: Option<u64>,
    },
    Access {
        expires_at: Instant,
    },
    Refresh {
        id: String,
    },
}

/// What Hub knows of a token; the token itself is not kept.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub user_id: String,
    /// Service IDs, in the order granted.
    pub scope: Vec<String>,
    pub client_id: Option<String>,
}

/// A token as Hub sees it when it is presented.
#[derive(Debug)]
pub enum Lookup<'a> {
    Unknown,
    Expired,
    Valid(&'a TokenRecord, &'a User),
}

pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub struct Directory {
    pub users: Vec<User>,
    pub services: Vec<Service>,
    /// Application passwords (`app_passwords.rs`), kept by hash like tokens.
    pub app_passwords: Vec<AppPassword>,
    tokens: HashMap<TokenKey, TokenRecord>,
    /// Permanent tokens by their decoded parts (`java_tokens.rs`), for `java_tokens` mode.
    structural: HashMap<TokenKey, TokenKey>,
    /// Whether a permanent token is found by its decoded parts, as a Java Hub may read it.
    pub java_tokens: bool,
    rng: fastrand::Rng,
    next_entity: u32,
}

impl Directory {
    /// An empty directory with Hub and YouTrack registered; `seed` makes minting repeatable.
    pub fn new(seed: u64) -> Directory {
        let builtin = |id: &str, name: &str, application: &str| Service {
            id: id.to_owned(),
            name: name.to_owned(),
            application_name: application.to_owned(),
            secret: None,
            home_url: None,
            redirect_uris: Vec::new(),
            vendor: Some("JetBrains".to_owned()),
            version: None,
        };
        Directory {
            users: Vec::new(),
            services: vec![
                builtin(HUB_SERVICE_ID, "YouTrack Administration", "Hub"),
                builtin(YOUTRACK_SERVICE_ID, "YouTrack", "YouTrack"),
            ],
            app_passwords: Vec::new(),
            tokens: HashMap::new(),
            structural: HashMap::new(),
            java_tokens: false,
            rng: fastrand::Rng::with_seed(seed),
            next_entity: 1,
        }
    }

    pub fn uuid(&mut self) -> String {
        let hex = |rng: &mut fastrand::Rng, n: usize| -> String {
            (0..n)
                .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
                .collect()
        };
        let r = &mut self.rng;
        format!(
            "{}-{}-{}-{}-{}",
            hex(r, 8),
            hex(r, 4),
            hex(r, 4),
            hex(r, 4),
            hex(r, 12)
        )
    }

    pub fn alphanumerics(&mut self, n: usize) -> String {
        (0..n).map(|_| self.rng.alphanumeric()).collect()
    }

    /// A fresh entity ID of `class` (`47-12`), numbered across all classes.
    pub fn entity_id(&mut self, class: u32) -> String {
        let id = format!("{class}-{}", self.next_entity);
        self.next_entity += 1;
        id
    }

    pub fn add_user(&mut self, login: &str, name: &str, password: &str, admin: bool) -> String {
        let id = self.uuid();
        self.users.push(User {
            id: id.clone(),
            login: login.to_owned(),
            name: name.to_owned(),
            banned: false,
            guest: login == "guest",
            admin,
            password: password.to_owned(),
        });
        id
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.id == id)
    }

    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        self.users.iter().find(|u| u.login == login)
    }

    /// A service by ID or, as the built-in Hub also accepts, by name (`YouTrack`).
    pub fn service(&self, id_or_name: &str) -> Option<&Service> {
        let by_id = self.services.iter().find(|s| s.id == id_or_name);
        by_id.or_else(|| self.services.iter().find(|s| s.name == id_or_name))
    }

    /// Resolves a space-separated scope of service IDs or names; the unknown entry on failure.
    pub fn resolve_scope(&self, scope: &str) -> Result<Vec<String>, String> {
        let mut ids: Vec<String> = Vec::new();
        for entry in scope.split(' ').filter(|e| !e.is_empty()) {
            let service = self.service(entry).ok_or_else(|| entry.to_owned())?;
            if !ids.contains(&service.id) {
                ids.push(service.id.clone());
            }
        }
        Ok(ids)
    }

    /// The names of services in `scope`, as Hub lists them in its error messages.
    pub fn scope_names(&self, scope: &[String]) -> String {
        let names: Vec<&str> = scope
            .iter()
            .map(|id| self.service(id).map_or(id.as_str(), |s| s.name.as_str()))
            .collect();
        format!("[{}]", names.join(", "))
    }

    /// Registers a client service with a fresh ID and secret; `client_credentials` tokens
    /// act as the service's own account, which shares its ID.
    pub fn register_service(&mut self, mut service: Service) -> (String, String) {
        service.id = self.uuid();
        let secret = self.alphanumerics(24);
        service.secret = Some(secret.clone());
        let id = service.id.clone();
        self.users.push(User {
            id: id.clone(),
            login: service.name.clone(),
            name: service.name.clone(),
            banned: false,
            guest: false,
            admin: false,
            password: String::new(),
        });
        self.services.push(service);
        (id, secret)
    }

    /// Mints a permanent token for `user_id`; returns the token and its entity ID.
    pub fn mint_permanent(
        &mut self,
        user_id: &str,
        name: &str,
        scope: Vec<String>,
        style: PermStyle,
    ) -> Option<(String, String)> {
        let login = self.user(user_id)?.login.clone();
        let id = self.entity_id(47);
        let middle = if style == PermStyle::Named {
            name
        } else {
            id.as_str()
        };
        let prefix = if style == PermStyle::Dash {
            "perm-"
        } else {
            "perm:"
        };
        let token = format!(
            "{prefix}{}.{}.{}",
            STANDARD.encode(login),
            STANDARD.encode(middle),
            self.alphanumerics(30)
        );
        let kind = TokenKind::Permanent {
            id: id.clone(),
            name: name.to_owned(),
            created_ms: now_ms(),
            last_access_ms: None,
        };
        self.insert(&token, kind, user_id, scope, None);
        Some((token, id))
    }

    /// Mints an OAuth access token in the observed shape
    /// `<issuedAtMs>.<client>.<user>.<scope ids space-separated>;1.<base64 signature>`.
    pub fn mint_access(
        &mut self,
        user_id: &str,
        client_id: &str,
        scope: Vec<String>,
        lifetime: Duration,
    ) -> String {
        let signature: Vec<u8> = (0..46).map(|_| self.rng.u8(..)).collect();
        let token = format!(
            "{}.{client_id}.{user_id}.{};1.{}",
            now_ms(),
            scope.join(" "),
            STANDARD.encode(signature)
        );
        let kind = TokenKind::Access {
            expires_at: Instant::now() + lifetime,
        };
        self.insert(&token, kind, user_id, scope, Some(client_id.to_owned()));
        token
    }

    pub fn mint_refresh(&mut self, user_id: &str, client_id: &str, scope: Vec<String>) -> String {
        let id = self.entity_id(48);
        let token = format!("1.{}.{}", self.alphanumerics(20), self.alphanumerics(40));
        let kind = TokenKind::Refresh { id };
        self.insert(&token, kind, user_id, scope, Some(client_id.to_owned()));
        token
    }

    fn insert(
        &mut self,
        token: &str,
        kind: TokenKind,
        user_id: &str,
        scope: Vec<String>,
        client_id: Option<String>,
    ) {
        let record = TokenRecord {
            kind,
            user_id: user_id.to_owned(),
            scope,
            client_id,
        };
        if let Some(structural) = super::java_tokens::structural_key(token) {
            self.structural.insert(structural, token_key(token));
        }
        self.tokens.insert(token_key(token), record);
    }

    /// What Hub makes of a presented access or permanent token (refresh tokens are not
    /// bearer credentials).
    pub fn lookup(&self, token: &str) -> Lookup<'_> {
        let structural = || {
            let key = super::java_tokens::structural_key(token)?;
            self.tokens.get(self.structural.get(&key)?)
        };
        let found = self.tokens.get(&token_key(token));
        let found = found.or_else(|| self.java_tokens.then(structural).flatten());
        let Some(record) = found else {
            return Lookup::Unknown;
        };
        match &record.kind {
            TokenKind::Refresh { .. } => return Lookup::Unknown,
            TokenKind::Access { expires_at } if Instant::now() >= *expires_at => {
                return Lookup::Expired
            }
            _ => {}
        }
        match self.user(&record.user_id) {
            Some(user) => Lookup::Valid(record, user),
            None => Lookup::Unknown,
        }
    }

    pub fn refresh_record(&self, token: &str) -> Option<&TokenRecord> {
        let record = self.tokens.get(&token_key(token))?;
        matches!(record.kind, TokenKind::Refresh { .. }).then_some(record)
    }

    /// Stamps a permanent token's `lastAccessTime`.
    pub fn touch(&mut self, token: &str) {
        if let Some(TokenRecord {
            kind: TokenKind::Permanent { last_access_ms, .. },
            ..
        }) = self.tokens.get_mut(&token_key(token))
        {
            *last_access_ms = Some(now_ms());
        }
    }

    /// A user's tokens of one kind, in minting order of their entity IDs.
    pub fn tokens_of(&self, user_id: &str, refresh: bool) -> Vec<&TokenRecord> {
        let mut found: Vec<&TokenRecord> = self
            .tokens
            .values()
            .filter(|r| r.user_id == user_id)
            .filter(|r| match r.kind {
                TokenKind::Permanent { .. } => !refresh,
                TokenKind::Refresh { .. } => refresh,
                TokenKind::Access { .. } => false,
            })
            .collect();
        found.sort_by_key(|r| entity_number(&r.kind));
        found
    }

    /// Deletes a user's permanent or refresh token by entity ID; effective at once.
    pub fn delete_token(&mut self, user_id: &str, entity_id: &str) -> bool {
        let before = self.tokens.len();
        self.tokens.retain(|_, r| {
            let id = match &r.kind {
                TokenKind::Permanent { id, .. } | TokenKind::Refresh { id } => id.as_str(),
                TokenKind::Access { .. } => "",
            };
            !(r.user_id == user_id && id == entity_id)
        });
        self.tokens.len() < before
    }

    /// Deletes a token by its text, whatever its kind.
    pub fn delete_by_text(&mut self, token: &str) -> bool {
        self.tokens.remove(&token_key(token)).is_some()
    }
}

fn entity_number(kind: &TokenKind) -> u64 {
    let id = match kind {
        TokenKind::Permanent { id, .. } | TokenKind::Refresh { id } => id.as_str(),
        TokenKind::Access { .. } => "",
    };
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> (Directory, String) {
        let mut directory = Directory::new(7);
        let alice = directory.add_user("alice", "Alice", "secret", false);
        (directory, alice)
    }

    fn is_perm_shape(token: &str, prefix: &str, login: &str, middle: &str) -> bool {
        let Some(rest) = token.strip_prefix(prefix) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3
            && parts[0] == STANDARD.encode(login)
            && parts[1] == STANDARD.encode(middle)
            && parts[2].len() == 30
            && parts[2].bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn permanent_tokens_have_the_real_shapes() {
        let (mut directory, alice) = directory();
        let scope = vec![YOUTRACK_SERVICE_ID.to_owned()];
        let (named, _) = directory
            .mint_permanent(&alice, "ci", scope.clone(), PermStyle::Named)
            .expect("alice exists");
        assert!(is_perm_shape(&named, "perm:", "alice", "ci"), "{named}");
        let (dash, id) = directory
            .mint_permanent(&alice, "ci", scope, PermStyle::Dash)
            .expect("alice exists");
        assert!(is_perm_shape(&dash, "perm-", "alice", &id), "{dash}");
        assert!(named.contains('=') && named.contains(':'));
    }

    #[test]
    fn access_tokens_for_several_services_contain_spaces() {
        let (mut directory, alice) = directory();
        let scope = directory
            .resolve_scope("YouTrack 0-0-0-0-0")
            .expect("known services");
        let token = directory.mint_access(&alice, HUB_SERVICE_ID, scope, Duration::from_secs(60));
        let (head, signature) = token.split_once(";1.").expect("signature part");
        let parts: Vec<&str> = head.splitn(4, '.').collect();
        assert_eq!(parts[1], HUB_SERVICE_ID);
        assert_eq!(parts[2], alice);
        assert_eq!(parts[3], format!("{YOUTRACK_SERVICE_ID} {HUB_SERVICE_ID}"));
        assert!(STANDARD.decode(signature).is_ok());
        assert!(matches!(directory.lookup(&token), Lookup::Valid(..)));
    }

    #[tokio::test(start_paused = true)]
    async fn access_tokens_expire_and_deleted_tokens_fail_at_once() {
        let (mut directory, alice) = directory();
        let scope = vec![HUB_SERVICE_ID.to_owned()];
        let token = directory.mint_access(
            &alice,
            HUB_SERVICE_ID,
            scope.clone(),
            Duration::from_secs(60),
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(matches!(directory.lookup(&token), Lookup::Expired));
        let (perm, id) = directory
            .mint_permanent(&alice, "x", scope, PermStyle::EntityId)
            .expect("alice exists");
        assert!(matches!(directory.lookup(&perm), Lookup::Valid(..)));
        assert!(directory.delete_token(&alice, &id));
        assert!(matches!(directory.lookup(&perm), Lookup::Unknown));
    }

    #[test]
    fn scopes_resolve_ids_and_names() {
        let (directory, _) = directory();
        assert_eq!(
            directory.resolve_scope("YouTrack  0-0-0-0-0 YouTrack"),
            Ok(vec![
                YOUTRACK_SERVICE_ID.to_owned(),
                HUB_SERVICE_ID.to_owned()
            ])
        );
        assert_eq!(directory.resolve_scope("Nope"), Err("Nope".to_owned()));
        let names = directory.scope_names(&[YOUTRACK_SERVICE_ID.to_owned()]);
        assert_eq!(names, "[YouTrack]");
    }
}
