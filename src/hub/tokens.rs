//! Deleting tokens in Hub: one leaked permanent token, found from what the token says about
//! itself, or every permanent and refresh token of a user. Hub has no "delete by value", so a
//! permanent token is decoded (`hub-contract.md`, "Token shapes") into its owner's login and
//! its entity ID (newer tokens) or name (older ones), and matched against the owner's list.
//! Only those two parts are used; the token's secret part never leaves this process.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::{malformed, HubClient, HubError, Step};

/// Standard base64; padding optional, so a token copied without its `=` still decodes.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// Length of a permanent token's secret part.
const SECRET_CHARS: usize = 30;

/// What a permanent token says about itself: whose it is and which of their tokens it is.
/// Neither part is secret (Hub shows both); the token's secret part is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermanentToken {
    pub login: String,
    /// The token's entity ID (`47-5`, newer tokens) or its name (older tokens).
    pub reference: String,
}

/// Decodes `perm:`/`perm-` + base64(login) + `.` + base64(ID or name) + `.` + 30 letters and
/// digits. Anything else is [`HubError::NotPermanentToken`], which never repeats the token.
pub fn decode_permanent(token: &str) -> Result<PermanentToken, HubError> {
    let rest = token
        .strip_prefix("perm:")
        .or_else(|| token.strip_prefix("perm-"))
        .ok_or(HubError::NotPermanentToken)?;
    let mut parts = rest.split('.');
    let (Some(login), Some(reference), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HubError::NotPermanentToken);
    };
    let secret_shaped =
        secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    if !secret_shaped {
        return Err(HubError::NotPermanentToken);
    }
    Ok(PermanentToken {
        login: decoded_text(login)?,
        reference: decoded_text(reference)?,
    })
}

/// A base64 part as text: non-empty UTF-8 without control characters.
fn decoded_text(part: &str) -> Result<String, HubError> {
    let bytes = BASE64
        .decode(part)
        .map_err(|_| HubError::NotPermanentToken)?;
    let text = String::from_utf8(bytes).map_err(|_| HubError::NotPermanentToken)?;
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(HubError::NotPermanentToken);
    }
    Ok(text)
}

/// Which kind of token an [`ItemResult`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Permanent,
    Refresh,
    /// An application password (HTTP Basic for IDE clients and scripts).
    #[serde(rename = "application_password")]
    AppPassword,
}

/// The outcome of deleting one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemResult {
    pub kind: ItemKind,
    /// Hub's entity ID of the token.
    pub id: String,
    /// A permanent token's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub ok: bool,
    /// Hub's HTTP status for the `DELETE`; `None` when Hub gave no answer.
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A permanent token deleted in Hub: whose, which, and Hub's status for the `DELETE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub login: String,
    pub user_id: String,
    pub token_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    pub status: u16,
}

/// A token as a user's listing shows it.
#[derive(Debug, Clone)]
struct Listed {
    id: String,
    name: Option<String>,
}

impl HubClient {
    /// Deletes the permanent token `token` in Hub (effective at once there). Refuses to guess:
    /// the token must match exactly one of its owner's tokens by ID or name.
    pub async fn delete_permanent_token(&self, token: &str) -> Result<Deleted, HubError> {
        let wanted = decode_permanent(token)?;
        let user_id = self.find_user(&wanted.login).await?;
        let tokens = self.listed(ItemKind::Permanent, &user_id).await?;
        let chosen = choose(&tokens, &wanted)?;
        let path = item_path(ItemKind::Permanent, &user_id, &chosen.id)?;
        let status = self.delete(Step::DeletePermanentToken, &path).await?;
        Ok(Deleted {
            login: wanted.login,
            user_id,
            token_id: chosen.id.clone(),
            token_name: chosen.name.clone(),
            status,
        })
    }

    /// Deletes every permanent token, refresh token and application password of `login`, one
    /// result per item. Every list is read before anything is deleted, so a failing listing
    /// deletes nothing. (OAuth access tokens cannot be listed; they lapse within their
    /// lifetime, an hour.)
    pub async fn delete_user_tokens(&self, login: &str) -> Result<Vec<ItemResult>, HubError> {
        let user_id = self.find_user(login).await?;
        let mut permanent = self.listed(ItemKind::Permanent, &user_id).await?;
        let refresh = self.listed(ItemKind::Refresh, &user_id).await?;
        let passwords = self.listed(ItemKind::AppPassword, &user_id).await?;
        // Revoking the bot's own user: its own token goes last, or the rest would be refused.
        if let Ok(own) = decode_permanent(self.admin_token.expose()) {
            if own.login == login {
                permanent.sort_by_key(|t| {
                    t.id == own.reference || t.name.as_ref() == Some(&own.reference)
                });
            }
        }
        let all = permanent
            .into_iter()
            .map(|token| (ItemKind::Permanent, token))
            .chain(refresh.into_iter().map(|token| (ItemKind::Refresh, token)))
            .chain(
                passwords
                    .into_iter()
                    .map(|item| (ItemKind::AppPassword, item)),
            );
        let mut results = Vec::new();
        for (kind, token) in all {
            results.push(self.delete_item(kind, &user_id, token).await);
        }
        Ok(results)
    }

    async fn delete_item(&self, kind: ItemKind, user_id: &str, token: Listed) -> ItemResult {
        let step = kind.steps().1;
        let outcome = match item_path(kind, user_id, &token.id) {
            Ok(path) => self.delete(step, &path).await,
            Err(error) => Err(error),
        };
        let (ok, status, error) = match outcome {
            Ok(status) => (true, Some(status), None),
            Err(error) => {
                let status = match &error {
                    HubError::Status { status, .. } => Some(*status),
                    _ => None,
                };
                (false, status, Some(error.to_string()))
            }
        };
        ItemResult {
            kind,
            id: token.id,
            name: token.name,
            ok,
            status,
            error,
        }
    }

    /// A user's tokens of one kind, all pages.
    async fn listed(&self, kind: ItemKind, user_id: &str) -> Result<Vec<Listed>, HubError> {
        let (step, collection, fields) = match kind {
            ItemKind::Permanent => (Step::ListPermanentTokens, "permanenttokens", "id,name"),
            ItemKind::Refresh => (Step::ListRefreshTokens, "refreshtokens", "id"),
            ItemKind::AppPassword => (Step::ListAppPasswords, "applicationPasswords", "id,name"),
        };
        let path = format!("users/{}/{collection}", segment(step, user_id)?);
        let params = format!("fields={fields}");
        let entries = self.list(step, &path, &params, collection).await?;
        entries
            .iter()
            .map(|entry| listed_token(step, entry))
            .collect()
    }
}

fn listed_token(step: Step, entry: &Value) -> Result<Listed, HubError> {
    let id = entry.get("id").and_then(Value::as_str);
    let id = id.ok_or_else(|| malformed(step, "a listed token has no id"))?;
    Ok(Listed {
        id: id.to_owned(),
        name: entry.get("name").and_then(Value::as_str).map(str::to_owned),
    })
}

/// The one token whose ID or name is the decoded reference. Newer tokens carry their ID,
/// older ones their name; a name shared by several tokens, or a name that is also another
/// token's ID, is ambiguous and nothing is deleted.
fn choose<'a>(tokens: &'a [Listed], wanted: &PermanentToken) -> Result<&'a Listed, HubError> {
    let reference = wanted.reference.as_str();
    let matching: Vec<&Listed> = tokens
        .iter()
        .filter(|t| t.id == reference || t.name.as_deref() == Some(reference))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(HubError::TokenNotFound {
            login: wanted.login.clone(),
            reference: reference.to_owned(),
        }),
        many => Err(HubError::AmbiguousToken {
            login: wanted.login.clone(),
            reference: reference.to_owned(),
            count: many.len(),
        }),
    }
}

impl ItemKind {
    /// The steps that list and delete items of this kind.
    fn steps(self) -> (Step, Step) {
        match self {
            ItemKind::Permanent => (Step::ListPermanentTokens, Step::DeletePermanentToken),
            ItemKind::Refresh => (Step::ListRefreshTokens, Step::DeleteRefreshToken),
            ItemKind::AppPassword => (Step::ListAppPasswords, Step::DeleteAppPassword),
        }
    }
}

/// `users/{user}/permanenttokens/{token}`, `…/refreshtokens/{token}` or
/// `…/applicationPasswords/{password}`.
fn item_path(kind: ItemKind, user_id: &str, token_id: &str) -> Result<String, HubError> {
    let step = kind.steps().1;
    let collection = match kind {
        ItemKind::Permanent => "permanenttokens",
        ItemKind::Refresh => "refreshtokens",
        ItemKind::AppPassword => "applicationPasswords",
    };
    Ok(format!(
        "users/{}/{collection}/{}",
        segment(step, user_id)?,
        segment(step, token_id)?
    ))
}

/// An ID Hub gave us, checked before it becomes a path segment: Hub's IDs are UUIDs and
/// `47-5`-style entity IDs, so anything that could change the path (`/`, `..`, `?`, escapes)
/// is refused rather than sent.
fn segment(step: Step, id: &str) -> Result<&str, HubError> {
    let plain = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain || id.is_empty() || id == "." || id == ".." {
        return Err(malformed(step, &format!("Hub gave an unusable ID {id:?}")));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(prefix: &str, login: &str, reference: &str, secret: &str) -> String {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        format!("{prefix}{}.{}.{secret}", encode(login), encode(reference))
    }

    const SECRET: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123";

    #[test]
    fn permanent_tokens_decode_to_login_and_reference() {
        for (prefix, reference) in [("perm:", "47-5"), ("perm-", "47-12"), ("perm:", "ci bot")] {
            let decoded = decode_permanent(&token(prefix, "alice", reference, SECRET));
            let expected = PermanentToken {
                login: "alice".into(),
                reference: reference.into(),
            };
            assert_eq!(decoded.ok(), Some(expected), "{prefix} {reference}");
        }
        let unpadded = token("perm:", "al", "47-5", SECRET).replace('=', "");
        assert_eq!(
            decode_permanent(&unpadded).map(|t| t.login).ok(),
            Some("al".into())
        );
    }

    #[test]
    fn anything_else_is_not_a_permanent_token_and_is_never_repeated() {
        let oauth = "1683065164852.be56.1e31.6ab6 0-0-0-0-0;1.MCwCFEzJ/cvl+acw==";
        let short_secret = token("perm:", "alice", "47-5", "abc");
        let punctuated = token("perm:", "alice", "47-5", &format!("{}!", &SECRET[..29]));
        let broken: Vec<String> = vec![
            oauth.into(),
            token("Perm:", "alice", "47-5", SECRET),
            token("perm:", "", "47-5", SECRET),
            token("perm:", "alice", "", SECRET),
            token("perm:", "ali\nce", "47-5", SECRET),
            short_secret,
            punctuated,
            format!("{}.x", token("perm:", "alice", "47-5", SECRET)),
            format!("perm:!!!.NDctNQ==.{SECRET}"),
            "perm:".into(),
            String::new(),
        ];
        for text in &broken {
            let error = decode_permanent(text).expect_err(text);
            assert!(matches!(error, HubError::NotPermanentToken), "{text}");
            let shown = format!("{error} {error:?}");
            assert!(text.len() < 10 || !shown.contains(text.as_str()), "{shown}");
        }
    }

    fn listed(id: &str, name: &str) -> Listed {
        Listed {
            id: id.into(),
            name: Some(name.into()),
        }
    }

    #[test]
    fn a_token_is_chosen_only_when_exactly_one_matches() {
        let tokens = [
            listed("47-1", "ci"),
            listed("47-2", "ci"),
            listed("47-3", "47-1"),
        ];
        let wanted = |reference: &str| PermanentToken {
            login: "alice".into(),
            reference: reference.into(),
        };
        assert_eq!(
            choose(&tokens[..1], &wanted("ci")).map(|t| &t.id).ok(),
            Some(&"47-1".into())
        );
        assert_eq!(
            choose(&tokens, &wanted("47-2")).map(|t| &t.id).ok(),
            Some(&"47-2".into())
        );
        assert!(matches!(
            choose(&tokens, &wanted("ci")),
            Err(HubError::AmbiguousToken { count: 2, .. })
        ));
        assert!(matches!(
            choose(&tokens, &wanted("47-1")),
            Err(HubError::AmbiguousToken { count: 2, .. })
        ));
        assert!(matches!(
            choose(&tokens, &wanted("gone")),
            Err(HubError::TokenNotFound { .. })
        ));
    }

    #[test]
    fn ids_that_would_change_the_path_are_refused() {
        for fine in ["47-5", "6ab631e2-61a7-4806-b029-44f0753fc29a", "a_b.c"] {
            assert_eq!(segment(Step::FindUser, fine).ok(), Some(fine));
        }
        for bad in ["", ".", "..", "a/b", "a?b", "a%2Fb", "a b", "a#b"] {
            assert!(segment(Step::FindUser, bad).is_err(), "{bad:?}");
        }
    }
}
