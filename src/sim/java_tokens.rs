//! How a Hub that reads permanent tokens structurally may see them: decoded with
//! `java.util.Base64`'s basic decoder (standard alphabet, `=` padding optional) and with
//! `perm:` and `perm-` taken alike. Off by default; `Sim::set_java_token_decoding` turns it on,
//! so tests can show that a re-spelled token is still the revoked one at the gateway.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::directory::{token_key, TokenKey};

/// `java.util.Base64.getDecoder()`: standard alphabet, padding accepted but not required,
/// unused low bits of the last character ignored.
const JAVA_BASIC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The key of a permanent token by its decoded parts, or `None` for any other shape.
pub fn structural_key(token: &str) -> Option<TokenKey> {
    let rest = token
        .strip_prefix("perm:")
        .or_else(|| token.strip_prefix("perm-"))?;
    let mut parts = rest.split('.');
    let (Some(login), Some(reference), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let login = String::from_utf8(JAVA_BASIC.decode(login).ok()?).ok()?;
    let reference = String::from_utf8(JAVA_BASIC.decode(reference).ok()?).ok()?;
    Some(token_key(&format!("perm\0{login}\0{reference}\0{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_prefix_do_not_matter_the_alphabet_does() {
        let token = "perm:YWxpY2U=.NDctNQ==.jTdKq7TVSguKeQUN3UYU3AL9zGugTt";
        let key = structural_key(token).expect("a permanent token");
        assert_eq!(structural_key(&token.replace('=', "")), Some(key));
        assert_eq!(
            structural_key(&token.replacen("perm:", "perm-", 1)),
            Some(key)
        );
        assert_ne!(
            structural_key(&token.replacen("jTdK", "jTdk", 1)),
            Some(key)
        );
        // `-` is not in Java's basic alphabet.
        assert_eq!(structural_key("perm:YW-p.NDctNQ.x"), None);
    }
}
