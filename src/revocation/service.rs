//! The revocation service behind the admin API: checks a request, puts the revocation in
//! force at once (and purges what the cache holds for it), keeps it in the state file, shares
//! it with the fleet, and — when asked — deletes the tokens in Hub itself. A revocation the
//! fleet could not take stays in force here and is published once Redis is back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::fleet::{Fleet, FleetStatus, Sink};
use super::request::{parse, revocation};
use super::state::{StateError, StateFile};
use super::{Revocation, Target};
use crate::config::Config;
use crate::hub::{decode_permanent, HubClient, HubError};
use crate::live::{Common, Live};

/// Why a revocation request was refused: the message is safe to return (no token in it).
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no revocation {0}")]
    NotFound(String),
}

/// What a revocation did, as the admin API reports it.
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub revocation: Revocation,
    /// Whether it is in the state file (`false` with `persist_error` when writing failed).
    pub persisted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist_error: Option<String>,
    /// With `[fleet]`: `published`, or why not (it is then retried once Redis is back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
    /// With `in_hub`: what Hub said, per token deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<serde_json::Value>,
}

/// The changes this instance makes to itself: the set in force, the verdict cache, the state
/// file. What the fleet applies goes through here too.
struct Local {
    common: Common,
    live: Arc<Live>,
    state: Option<StateFile>,
    /// One change at a time, so the state file follows the set in order.
    changing: Mutex<()>,
    /// Put here while the fleet could not take them; merged into every full set the fleet
    /// loads (so a reconnect cannot drop them) until published.
    unpublished: Mutex<Vec<Revocation>>,
    /// Withdrawn here while the fleet could not take it: kept out of every full set the fleet
    /// loads (so a reconnect cannot bring them back) until the fleet has dropped them too.
    unwithdrawn: Mutex<Vec<String>>,
}

impl Local {
    /// Puts it in force and saves the set; the save's outcome is returned (and logged).
    fn put(&self, revocation: Revocation) -> Result<(), String> {
        let _one = lock(&self.changing);
        self.live.current().state.auth().forget(&revocation.target);
        self.common.revocations.put(revocation);
        self.persist_logged()
    }

    fn remove(&self, id: &str) -> Option<Revocation> {
        let _one = lock(&self.changing);
        let removed = self.common.revocations.remove(id)?;
        lock(&self.unpublished).retain(|r| r.id != id);
        let _ = self.persist_logged();
        Some(removed)
    }

    fn persist_logged(&self) -> Result<(), String> {
        let saved = self.persist();
        if let Err(error) = &saved {
            tracing::error!("revocations not saved: {error}");
        }
        saved
    }

    /// Writes the set in force to the state file, if there is one.
    fn persist(&self) -> Result<(), String> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        state
            .save(&self.common.revocations.list())
            .map_err(|error| error.to_string())
    }
}

impl Sink for Local {
    fn replace_all(&self, mut revocations: Vec<Revocation>) {
        let _one = lock(&self.changing);
        let known: HashSet<String> = self
            .common
            .revocations
            .list()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let auth = self.live.current();
        for revocation in revocations.iter().filter(|r| !known.contains(&r.id)) {
            auth.state.auth().forget(&revocation.target);
        }
        // Fail closed: what this instance enforces and the fleet lacks (a Redis restarted
        // empty, a put that never reached it) stays in force and is published again.
        let unwithdrawn = lock(&self.unwithdrawn).clone();
        revocations.retain(|r| !unwithdrawn.contains(&r.id));
        let fleet_ids: HashSet<String> = revocations.iter().map(|r| r.id.clone()).collect();
        let missing: Vec<Revocation> = self
            .common
            .revocations
            .list()
            .into_iter()
            .filter(|r| !fleet_ids.contains(&r.id))
            .collect();
        if !missing.is_empty() {
            tracing::warn!(
                count = missing.len(),
                "revocations in force here are missing from the fleet: publishing them again"
            );
        }
        let mut unpublished = lock(&self.unpublished);
        for revocation in missing {
            if !unpublished.iter().any(|r| r.id == revocation.id) {
                unpublished.push(revocation);
            }
        }
        revocations.extend(unpublished.iter().cloned());
        drop(unpublished);
        self.common.revocations.replace_all(revocations);
        let _ = self.persist_logged();
    }

    fn put(&self, revocation: Revocation, _published: SystemTime) {
        lock(&self.unpublished).retain(|r| r.id != revocation.id);
        let _ = Local::put(self, revocation);
    }

    fn delete(&self, id: &str, _published: SystemTime) {
        self.remove(id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why the revocation service could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("[hub]: {0}")]
    Hub(#[from] HubError),
    #[error("{0}")]
    Fleet(String),
}

/// The revocations of this instance: in force at once, kept in the state file, shared with
/// the fleet, and — on request — carried out in Hub.
pub struct Revoker {
    local: Arc<Local>,
    fleet: Option<Arc<Fleet>>,
    hub: Option<HubClient>,
    /// Publishes what the fleet could not take, once it is connected again.
    _republisher: Option<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Revoker {
    /// Loads the state file (if `admin.state_dir` is set) into the set in force, and starts
    /// the fleet link (if `[fleet]` is set). Must run inside a Tokio runtime.
    pub fn open(config: &Config, live: Arc<Live>) -> Result<Revoker, OpenError> {
        let common = live.common().clone();
        let state = config.admin.state_dir.as_deref().map(StateFile::new);
        if let Some(state) = &state {
            let kept = state.load()?;
            tracing::info!(
                revocations = kept.len(),
                file = %state.path().display(),
                "revocations loaded"
            );
            common.revocations.replace_all(kept);
        }
        let hub = match &config.hub {
            Some(hub) => Some(HubClient::new(
                hub,
                config.introspection.ca_file.as_deref(),
            )?),
            None => None,
        };
        let local = Arc::new(Local {
            common: common.clone(),
            live,
            state,
            changing: Mutex::new(()),
            unpublished: Mutex::new(Vec::new()),
            unwithdrawn: Mutex::new(Vec::new()),
        });
        let fleet = config.fleet.as_ref().map(|fleet| {
            let sink: Arc<dyn Sink> = local.clone();
            Arc::new(Fleet::start(fleet, sink, common.metrics.clone()))
        });
        if let Some(why) = fleet.as_ref().and_then(|f| f.unusable_url()) {
            return Err(OpenError::Fleet(format!(
                "fleet.redis_url cannot be used: {why}"
            )));
        }
        let republisher = fleet
            .as_ref()
            .map(|fleet| AbortOnDrop(tokio::spawn(republish(fleet.clone(), local.clone()))));
        Ok(Revoker {
            local,
            fleet,
            hub,
            _republisher: republisher,
        })
    }

    pub fn list(&self) -> Vec<Revocation> {
        self.local.common.revocations.list()
    }

    /// The fleet link, if `[fleet]` is configured.
    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_deref()
    }

    /// Resolves once the revocations to enforce are known: at once without a fleet, after the
    /// fleet's first full set with one.
    pub async fn loaded(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.loaded().await;
        }
    }

    /// Parses and applies a `POST /revocations` body.
    pub async fn revoke(&self, body: &[u8]) -> Result<Revoked, RevokeError> {
        let request = parse(body)?;
        let in_hub = request.in_hub;
        if in_hub && self.hub.is_none() {
            return Err(RevokeError::BadRequest(
                "in_hub needs the [hub] section in the configuration".into(),
            ));
        }
        if in_hub && request.fingerprint.is_some() {
            return Err(RevokeError::BadRequest(
                "in_hub needs the token or a login: Hub cannot find a token by fingerprint".into(),
            ));
        }
        let in_hub_target = in_hub.then(|| (request.token.clone(), request.login.clone()));
        let revocation = revocation(request)?;
        // Asked before the revocation is in force, which would hide the answer.
        let owner = match &in_hub_target {
            Some((Some(token), _)) => {
                let auth = self.local.live.current();
                Some(
                    auth.state
                        .auth()
                        .owner(token)
                        .await
                        .map(|p| p.login.clone()),
                )
            }
            _ => None,
        };
        let saved = self.local.put(revocation.clone());
        self.local.common.metrics.revocation_applied("local");
        tracing::warn!(
            id = %revocation.id,
            target = %describe(&revocation.target),
            reason = revocation.reason.as_deref().map(str::escape_debug).map(tracing::field::display),
            "revocation in force"
        );
        let persist_error = saved.err();
        let fleet = self.publish(&revocation).await;
        let hub = match (in_hub_target, &self.hub) {
            (Some((token, login)), Some(hub)) => {
                Some(in_hub_report(hub, token, login, owner.flatten()).await)
            }
            _ => None,
        };
        Ok(Revoked {
            persisted: self.local.state.is_some() && persist_error.is_none(),
            revocation,
            persist_error,
            fleet,
            hub,
        })
    }

    /// Shares a new revocation with the fleet; on failure keeps it to publish later.
    async fn publish(&self, revocation: &Revocation) -> Option<String> {
        let fleet = self.fleet.as_ref()?;
        match fleet.put(revocation).await {
            Ok(()) => Some("published".into()),
            Err(error) => {
                tracing::error!(id = %revocation.id, "revocation not shared with the fleet yet: {error}");
                lock(&self.local.unpublished).push(revocation.clone());
                Some(format!(
                    "not published yet ({error}); retried when Redis is back"
                ))
            }
        }
    }

    /// Withdraws a revocation by id, here and in the fleet; the second value says how the
    /// fleet took it (with `[fleet]`).
    pub async fn withdraw(&self, id: &str) -> Result<(Revocation, Option<String>), RevokeError> {
        let removed = self
            .local
            .remove(id)
            .ok_or_else(|| RevokeError::NotFound(id.escape_debug().to_string()))?;
        self.local.common.metrics.revocation_applied("local");
        tracing::warn!(id = %removed.id, target = %describe(&removed.target), "revocation withdrawn");
        let Some(fleet) = &self.fleet else {
            return Ok((removed, None));
        };
        let report = match fleet.delete(id).await {
            Ok(()) => "withdrawn".to_owned(),
            Err(error) => {
                tracing::error!(id, "withdrawal not shared with the fleet yet: {error}");
                lock(&self.local.unwithdrawn).push(id.to_owned());
                format!("not withdrawn from the fleet yet ({error}); retried when Redis is back")
            }
        };
        Ok((removed, Some(report)))
    }
}

/// Waits for each reconnect of the fleet and publishes what it could not take before.
async fn republish(fleet: Arc<Fleet>, local: Arc<Local>) {
    let mut status = fleet.status_changes();
    while status.changed().await.is_ok() {
        if *status.borrow_and_update() != FleetStatus::Connected {
            continue;
        }
        let withdrawals = lock(&local.unwithdrawn).clone();
        for id in withdrawals {
            match fleet.delete(&id).await {
                Ok(()) => lock(&local.unwithdrawn).retain(|pending| *pending != id),
                Err(error) => {
                    tracing::warn!(id, "still cannot withdraw from the fleet: {error}");
                    break;
                }
            }
        }
        let pending = lock(&local.unpublished).clone();
        for revocation in pending {
            match fleet.put(&revocation).await {
                Ok(()) => lock(&local.unpublished).retain(|r| r.id != revocation.id),
                Err(error) => {
                    tracing::warn!(id = %revocation.id, "still cannot publish: {error}");
                    break;
                }
            }
        }
    }
}

/// Deletes the token (or the user's tokens) in Hub; the report says what Hub said. A token
/// is deleted only if it is valid and belongs to `owner`, the user it names.
async fn in_hub_report(
    hub: &HubClient,
    token: Option<String>,
    login: Option<String>,
    owner: Option<String>,
) -> serde_json::Value {
    let report = |result: Result<serde_json::Value, HubError>| match result {
        Ok(value) => value,
        Err(error) => serde_json::json!({ "error": error.to_string() }),
    };
    match (token, login) {
        (Some(token), _) => {
            let named = decode_permanent(&token).map(|t| t.login);
            let refusal = match (&owner, &named) {
                (None, _) => Some("nothing deleted in Hub: the token is not valid there"),
                (Some(owner), Ok(named)) if owner != named => {
                    Some("nothing deleted in Hub: the token belongs to another user than it names")
                }
                _ => None,
            };
            if let Some(refusal) = refusal {
                return serde_json::json!({ "error": refusal });
            }
            report(
                hub.delete_permanent_token(&token)
                    .await
                    .map(|deleted| serde_json::json!({ "deleted": deleted })),
            )
        }
        (None, Some(login)) => report(
            hub.delete_user_tokens(&login)
                .await
                .map(|items| serde_json::json!({ "items": items })),
        ),
        (None, None) => serde_json::Value::Null,
    }
}

/// For logs: a fingerprint (never more than 12 digits of it) or a login.
fn describe(target: &Target) -> String {
    match target {
        Target::Fingerprint(fingerprint) => {
            format!("token {}", fingerprint.get(..12).unwrap_or(fingerprint))
        }
        Target::Login(login) => format!("user {}", login.escape_debug()),
    }
}
