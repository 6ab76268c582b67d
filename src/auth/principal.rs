//! Who a token belongs to, and what one introspection said about it for one service.

use std::sync::Arc;

/// The user behind a granted token, as Hub (or the introspection endpoint) named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub login: String,
}

/// What a backend said about a token for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The token's scope includes the service, for a user who is neither guest nor banned.
    Granted(Arc<Principal>),
    /// The token may be valid, but not for this service (or its user is banned or a guest).
    NotGranted,
    /// The token is unknown, deleted or expired.
    Invalid,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Granted(_) => "granted",
            Verdict::NotGranted => "not_granted",
            Verdict::Invalid => "invalid",
        }
    }
}
