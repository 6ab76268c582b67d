//! The revocations in force, indexed for the request path: a token's check costs one hash map
//! lookup by its first 6 hash bytes (and nothing when no token is revoked), a login's one
//! lookup by its lower-case form. Readers never lock: a change builds a new index and swaps it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::{unix_now, Revocation, Target};
use crate::auth::cache::{starts_with_hex, TokenHash};

#[derive(Default)]
struct Index {
    by_id: BTreeMap<String, Revocation>,
    /// Fingerprint revocations by the first 6 bytes they cover: (fingerprint, id).
    tokens: HashMap<[u8; 6], Vec<(String, String)>>,
    /// Login revocations by lower-case login: ids.
    logins: HashMap<String, Vec<String>>,
}

impl Index {
    fn build(revocations: impl IntoIterator<Item = Revocation>) -> Index {
        let mut index = Index::default();
        for revocation in revocations {
            match &revocation.target {
                Target::Fingerprint(fingerprint) => {
                    if let Some(head) = head(fingerprint) {
                        index
                            .tokens
                            .entry(head)
                            .or_default()
                            .push((fingerprint.clone(), revocation.id.clone()));
                    }
                }
                Target::Login(login) => index
                    .logins
                    .entry(login.to_lowercase())
                    .or_default()
                    .push(revocation.id.clone()),
            }
            index.by_id.insert(revocation.id.clone(), revocation);
        }
        index
    }

    fn in_force(&self, id: &str, now: u64) -> bool {
        self.by_id.get(id).is_some_and(|r| r.in_force(now))
    }
}

/// The first 6 bytes a fingerprint of at least 12 hex digits names.
fn head(fingerprint: &str) -> Option<[u8; 6]> {
    let digits = fingerprint.as_bytes().get(..12)?;
    let mut head = [0u8; 6];
    for (byte, pair) in head.iter_mut().zip(digits.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(head)
}

/// The set in force. Cheap to read from every request; changes are rare.
pub struct RevocationSet {
    index: ArcSwap<Index>,
    /// Serialises writers (each builds the next index from the current one).
    writing: Mutex<()>,
    /// Bumped on every change: what is already open (tunnels, long responses) looks again.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for RevocationSet {
    fn default() -> Self {
        RevocationSet {
            index: ArcSwap::default(),
            writing: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl RevocationSet {
    pub fn new() -> RevocationSet {
        RevocationSet::default()
    }

    /// Tells of every change to the set.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether any revocation by token or fingerprint is recorded (in force or not).
    pub fn has_tokens(&self) -> bool {
        !self.index.load().tokens.is_empty()
    }

    /// The revocation in force for the token with this hash, if any.
    pub fn token(&self, hash: &TokenHash) -> Option<String> {
        let index = self.index.load();
        if index.tokens.is_empty() {
            return None;
        }
        let mut head = [0u8; 6];
        head.copy_from_slice(&hash[..6]);
        let candidates = index.tokens.get(&head)?;
        let now = unix_now();
        candidates
            .iter()
            .find(|(fingerprint, id)| starts_with_hex(hash, fingerprint) && index.in_force(id, now))
            .map(|(_, id)| id.clone())
    }

    /// The revocation in force for this login, if any.
    pub fn login(&self, login: &str) -> Option<String> {
        let index = self.index.load();
        if index.logins.is_empty() {
            return None;
        }
        let now = unix_now();
        index
            .logins
            .get(&login.to_lowercase())?
            .iter()
            .find(|id| index.in_force(id, now))
            .cloned()
    }

    /// Revocations in force, oldest first.
    pub fn list(&self) -> Vec<Revocation> {
        let now = unix_now();
        let mut all: Vec<Revocation> = self
            .index
            .load()
            .by_id
            .values()
            .filter(|r| r.in_force(now))
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        all
    }

    pub fn len(&self) -> usize {
        let now = unix_now();
        self.index
            .load()
            .by_id
            .values()
            .filter(|r| r.in_force(now))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the whole set (a state file or the fleet's full set); expired ones are dropped.
    pub fn replace_all(&self, revocations: Vec<Revocation>) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let now = unix_now();
        let live = revocations.into_iter().filter(|r| r.in_force(now));
        self.index.store(Arc::new(Index::build(live)));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Adds or replaces (by id) one revocation; returns whether it was new.
    pub fn put(&self, revocation: Revocation) -> bool {
        self.change(|all| all.insert(revocation.id.clone(), revocation).is_none())
    }

    /// Removes one revocation; returns it if it was there.
    pub fn remove(&self, id: &str) -> Option<Revocation> {
        self.change(|all| all.remove(id))
    }

    fn change<T>(&self, edit: impl FnOnce(&mut BTreeMap<String, Revocation>) -> T) -> T {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let now = unix_now();
        let mut all: BTreeMap<String, Revocation> = self
            .index
            .load()
            .by_id
            .iter()
            .filter(|(_, r)| r.in_force(now))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        let result = edit(&mut all);
        self.index.store(Arc::new(Index::build(all.into_values())));
        self.changes.send_modify(|n| *n += 1);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::cache::{hex, token_hash};

    fn revocation(id: &str, target: Target, expires: Option<u64>) -> Revocation {
        Revocation {
            id: id.into(),
            target,
            reason: None,
            created: 1,
            expires,
        }
    }

    #[test]
    fn tokens_match_by_hash_prefix_and_logins_by_case_folded_name() {
        let set = RevocationSet::new();
        let token = "perm:YWxpY2U=.NDctNQ==.abc";
        let hash = token_hash(token);
        let full = hex(&hash);
        assert_eq!(set.token(&hash), None);
        set.put(revocation(
            "a",
            Target::Fingerprint(full[..12].into()),
            None,
        ));
        assert_eq!(set.token(&hash).as_deref(), Some("a"));
        assert_eq!(set.token(&token_hash("another token")), None);

        set.put(revocation("b", Target::Login("Alice".into()), None));
        assert_eq!(set.login("alice").as_deref(), Some("b"));
        assert_eq!(set.login("ALICE").as_deref(), Some("b"));
        assert_eq!(set.login("bob"), None);

        assert!(set.remove("a").is_some());
        assert_eq!(set.token(&hash), None);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_longer_fingerprint_must_match_whole_and_expired_ones_do_not_count() {
        let set = RevocationSet::new();
        let hash = token_hash("t");
        let mut wrong = hex(&hash)[..13].to_owned();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(12..13, last);
        set.replace_all(vec![
            revocation("wrong", Target::Fingerprint(wrong), None),
            revocation("old", Target::Fingerprint(hex(&hash)), Some(2)),
        ]);
        assert_eq!(set.token(&hash), None);
        assert_eq!(set.list().len(), 1, "the expired one is dropped");
    }
}
