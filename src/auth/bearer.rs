//! The request's credential: which `Authorization` header or `access_token` query parameter
//! it carries, and the bearer token exactly as the client sent it.
//!
//! This module owns the rules of `security.md` ("Headers and credentials") for reading a
//! credential: at most one per request, the `Bearer` scheme matched case-insensitively, and
//! the token taken as the whole rest of the header value. Hub OAuth tokens for several
//! services contain single spaces (`hub-contract.md`, "Token shapes"), so the token is never
//! split; it is only limited to visible ASCII with single inner spaces and to
//! [`MAX_TOKEN_LEN`] bytes. Beyond that a token is opaque: its shape is never judged here.
//! Everything is pure and synchronous; reading a bearer credential does not allocate (a query
//! parameter name that is itself percent- or `+`-encoded is the one exception).
//!
//! HTTP Basic is read too, because JetBrains' IDE clients send it: the YouTrack plugin puts a
//! permanent token in the password (the user name is ignored), IntelliJ's Tasks connector a
//! login and an application password. A token found there is a [`Credential::BasicToken`],
//! checked exactly as if it had come as `Bearer`.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use http::HeaderValue;

/// Longest token accepted (bytes).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The scheme this module reads, in lower case (compared ASCII case-insensitively).
const SCHEME: &[u8] = b"bearer";

/// The query parameter of RFC 6750 §2.3 (compared ASCII case-insensitively, after decoding).
const QUERY_PARAMETER: &str = "access_token";

/// The scheme of HTTP Basic, in lower case.
const BASIC: &[u8] = b"basic";

/// Standard base64 with or without `=` padding, as Java's decoder (Hub's) accepts it.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The credential a request carries. Its `Debug` never shows a token or password.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No `Authorization` header and no `access_token` query parameter.
    None,
    /// `Authorization: Bearer <token>`; the token is the whole rest of the value.
    Bearer(&'a str),
    /// `Authorization: Basic` whose password is a permanent token (`perm:` or `perm-`): the
    /// token, to be checked as if sent as `Bearer`; the user name plays no part.
    BasicToken(String),
    /// `Authorization: Basic` with a login and a password that is not a token.
    BasicPassword(BasicPassword<'a>),
    /// An `Authorization` header with another scheme.
    OtherScheme,
    /// An `access_token` query parameter (and no Authorization header): never passed on unchecked.
    QueryToken,
}

/// Why the request's credential was refused. Every variant is answered 400 `invalid_request`
/// before any Hub call; the `Display` text is safe to show the client and contains no `"` or
/// `\`, so it can go into a challenge's quoted `error_description` as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// Two `Authorization` headers, an `Authorization` header and an `access_token`
    /// parameter, or two `access_token` parameters.
    #[error("more than one credential in the request")]
    TwoCredentials,
    /// `Bearer` with nothing but spaces after it.
    #[error("the bearer token is empty")]
    EmptyToken,
    /// A token longer than [`MAX_TOKEN_LEN`].
    #[error("the bearer token is too long")]
    TooLong,
    /// Something other than spaces right after `Bearer` (a tab, `:`, `"`…), or a token byte
    /// outside visible ASCII that is not a single space between visible bytes.
    #[error("the bearer credentials contain an invalid character")]
    InvalidCharacter,
    /// An `Authorization` value that is empty or does not start with a scheme (leading
    /// whitespace, say): a lenient backend might trim it and find a `Bearer` token nobody
    /// checked.
    #[error("the Authorization header has no scheme")]
    NoScheme,
    /// `Basic` that is not base64 of UTF-8 `user:password`, or whose password is a token no
    /// client could send (a lenient decoder might still find a token nobody checked).
    #[error("the Basic credentials are not base64 of user:password")]
    MalformedBasic,
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::Bearer(_) => f.write_str("Bearer(<token>)"),
            Credential::BasicToken(_) => f.write_str("BasicToken(<token>)"),
            Credential::BasicPassword(basic) => basic.fmt(f),
            Credential::OtherScheme => f.write_str("OtherScheme"),
            Credential::QueryToken => f.write_str("QueryToken"),
        }
    }
}

/// HTTP Basic with a login and a password. Its `Debug` shows the login only.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicPassword<'a> {
    /// The header as the client sent it: what a Hub probe is asked with.
    pub header: &'a HeaderValue,
    /// The decoded `login:password`, the credential's identity (its hash is its cache key).
    pub decoded: String,
    /// Where the login ends in `decoded`.
    login_end: usize,
}

impl BasicPassword<'_> {
    pub fn login(&self) -> &str {
        &self.decoded[..self.login_end]
    }
}

impl std::fmt::Debug for BasicPassword<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicPassword")
            .field("login", &self.login())
            .finish_non_exhaustive()
    }
}

/// Reads the request's credential from all its `Authorization` header values and its raw query.
pub fn credential<'a>(
    authorization: &[&'a HeaderValue],
    query: Option<&'a str>,
) -> Result<Credential<'a>, BearerError> {
    let query_tokens = query.map_or(0, count_query_tokens);
    match (authorization, query_tokens) {
        ([], 0) => Ok(Credential::None),
        ([], 1) => Ok(Credential::QueryToken),
        ([value], 0) => read_authorization(value),
        _ => Err(BearerError::TwoCredentials),
    }
}

/// How many `access_token` parameters the raw query holds, counting at most two.
///
/// Names are compared after form decoding (`access%5Ftoken` counts) and ASCII
/// case-insensitively, since a backend may do either. `;` separates parameters as well as
/// `&`: some servers split on both, and seeing one parameter too many only refuses a request.
fn count_query_tokens(query: &str) -> usize {
    query
        .split(['&', ';'])
        .filter(|pair| is_query_token(pair))
        .take(2)
        .count()
}

/// Whether one `name[=value]` pair of the query is an `access_token` parameter. Only the
/// name is decoded; it holds no `&` or `=`, so `parse` yields at most one pair.
fn is_query_token(pair: &str) -> bool {
    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
    form_urlencoded::parse(name.as_bytes())
        .any(|(name, _)| name.eq_ignore_ascii_case(QUERY_PARAMETER))
}

/// Reads the one `Authorization` value: the `Bearer` scheme and its token, or another scheme.
///
/// The scheme is the leading run of token characters (RFC 9110 `tchar`), so `Bearerperm:x`
/// is another scheme while `Bearer:x` and `Bearer<TAB>x` are malformed bearer credentials.
/// Telling the schemes apart looks at the first seven bytes only, whatever the value's length.
fn read_authorization(value: &HeaderValue) -> Result<Credential<'_>, BearerError> {
    let bytes = value.as_bytes();
    if !bytes.first().is_some_and(|&b| is_tchar(b)) {
        return Err(BearerError::NoScheme);
    }
    if is_scheme(bytes, BASIC) {
        return read_basic(value);
    }
    if !is_scheme(bytes, SCHEME) {
        return Ok(Credential::OtherScheme);
    }
    let rest = &bytes[SCHEME.len()..];
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    if spaces == 0 && !rest.is_empty() {
        return Err(BearerError::InvalidCharacter);
    }
    let token = &rest[spaces..];
    if token.is_empty() {
        return Err(BearerError::EmptyToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(BearerError::TooLong);
    }
    check_token(token)?;
    let token = std::str::from_utf8(token).map_err(|_| BearerError::InvalidCharacter)?;
    Ok(Credential::Bearer(token))
}

/// Whether the value starts with the scheme `name` (any letter case) and nothing more of it.
fn is_scheme(value: &[u8], name: &[u8]) -> bool {
    let (scheme, rest) = value.split_at_checked(name.len()).unwrap_or((value, &[]));
    scheme.eq_ignore_ascii_case(name) && !rest.first().is_some_and(|&b| is_tchar(b))
}

/// Reads `Basic <base64 of user:password>` (RFC 7617): one or more spaces, then base64 with
/// or without padding, decoding to UTF-8 with a `:`; anything else is malformed, on every
/// route (a lenient backend might decode it to a credential nobody checked).
fn read_basic(value: &HeaderValue) -> Result<Credential<'_>, BearerError> {
    let rest = &value.as_bytes()[BASIC.len()..];
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let encoded = &rest[spaces..];
    if spaces == 0 || encoded.is_empty() || encoded.len() > 2 * MAX_TOKEN_LEN {
        return Err(BearerError::MalformedBasic);
    }
    let decoded = BASIC_BASE64
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(BearerError::MalformedBasic)?;
    let login_end = decoded.find(':').ok_or(BearerError::MalformedBasic)?;
    let password = &decoded[login_end + 1..];
    if password.starts_with("perm:") || password.starts_with("perm-") {
        check_bare_token(password).map_err(|_| BearerError::MalformedBasic)?;
        return Ok(Credential::BasicToken(password.to_owned()));
    }
    if password.is_empty() || decoded.chars().any(char::is_control) {
        return Err(BearerError::MalformedBasic);
    }
    Ok(Credential::BasicPassword(BasicPassword {
        header: value,
        decoded,
        login_end,
    }))
}

/// Whether `token` is one a client could send after `Bearer ` (what a revocation by value
/// must match exactly).
pub fn check_bare_token(token: &str) -> Result<(), BearerError> {
    if token.is_empty() {
        return Err(BearerError::EmptyToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(BearerError::TooLong);
    }
    check_token(token.as_bytes())
}

/// Every byte visible ASCII, or a single space between two visible bytes.
fn check_token(token: &[u8]) -> Result<(), BearerError> {
    // Starting as if after a space also refuses a leading space.
    let mut after_space = true;
    for &b in token {
        match b {
            0x21..=0x7E => after_space = false,
            b' ' if !after_space => after_space = true,
            _ => return Err(BearerError::InvalidCharacter),
        }
    }
    if after_space {
        return Err(BearerError::InvalidCharacter);
    }
    Ok(())
}

/// RFC 9110 `tchar`: the bytes an authentication scheme is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
