//! Device tokens: what a desk gets once, when it pairs, and shows the relay on every request
//! after that (`Authorization: Bearer clt_…`).
//!
//! A token is 256 bits from the operating system's random source, written as `clt_` and the
//! bytes in unpadded base64url (47 characters in all). The prefix makes a leaked token easy to
//! recognise (in a paste, a log, a secret scanner's rules) and says which kind of secret it is.
//!
//! The relay keeps only [`DeviceToken::hash`], SHA-256 of the token's text, so a copy of its
//! database lets nobody pull. A plain, fast, unsalted hash is enough here, unlike for passwords:
//! salts and slow hashes exist to stop guessing a low-entropy secret from its hash, and nobody
//! can guess 256 random bits, fast hash or not. Being fast and deterministic is what lets the
//! relay find a device by the hash of the token it is shown, with one indexed lookup. Guessing
//! tokens over the network is slowed down anyway ([`crate::throttle`]).
//!
//! A token never appears in `Debug` output; [`DeviceToken::expose`] is the one way to its text.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clientele_secrets::Sensitive;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::random::{self, RandomUnavailable};

/// What every device token starts with.
pub const TOKEN_PREFIX: &str = "clt_";

/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// Length of a token's text: the prefix and 32 bytes of unpadded base64 (43 characters).
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + TOKEN_BYTES.div_ceil(3) * 4 - 1;

/// A device token: `clt_` and 256 random bits in unpadded base64url.
#[derive(Clone)]
pub struct DeviceToken(Sensitive<String>);

impl DeviceToken {
    /// A new token from the operating system's random source.
    pub fn generate() -> Result<DeviceToken, RandomUnavailable> {
        let bytes: [u8; TOKEN_BYTES] = random::bytes("device token")?;
        Ok(DeviceToken(Sensitive::new(format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))))
    }

    /// `text` as a token, if it has a token's shape: surrounding whitespace aside, `clt_` and
    /// exactly 32 bytes of unpadded base64url. Says nothing about whether any device holds it.
    pub fn parse(text: &str) -> Option<DeviceToken> {
        let text = text.trim();
        let encoded = text.strip_prefix(TOKEN_PREFIX)?;
        // Checked first so a huge header is refused without decoding it.
        if text.len() != TOKEN_LEN {
            return None;
        }
        // The decoder refuses padding, other alphabets and non-zero trailing bits, so each token
        // has exactly one spelling (and so exactly one hash).
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        (bytes.len() == TOKEN_BYTES).then(|| DeviceToken(Sensitive::new(text.to_string())))
    }

    /// SHA-256 of the token's text: what the relay stores and looks devices up by.
    pub fn hash(&self) -> [u8; 32] {
        hash_token_text(self.expose())
    }

    /// The token's text, to send or to save in the keychain. Call sites are the audit trail.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The token as the secret stores take it (`SecretStore::set_relay_token`).
    pub fn as_sensitive(&self) -> &Sensitive<String> {
        &self.0
    }
}

/// SHA-256 of a token's text, exactly as given (for text not [parsed](DeviceToken::parse) yet).
pub fn hash_token_text(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(<redacted>)")
    }
}

/// Compares in constant time, so comparing never tells how much of a guess was right.
impl PartialEq for DeviceToken {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for DeviceToken {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_token_is_the_prefix_and_256_bits_of_base64url() {
        let token = DeviceToken::generate().unwrap();
        let text = token.expose();
        assert_eq!(TOKEN_LEN, 47);
        assert_eq!(text.len(), TOKEN_LEN, "{}", text.len());
        let encoded = text.strip_prefix("clt_").expect("starts with clt_");
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "not unpadded base64url"
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 32);
    }

    #[test]
    fn tokens_do_not_repeat_and_use_every_bit() {
        let tokens: Vec<DeviceToken> = (0..200).map(|_| DeviceToken::generate().unwrap()).collect();
        let distinct: HashSet<&str> = tokens.iter().map(DeviceToken::expose).collect();
        assert_eq!(distinct.len(), tokens.len());
        // Every bit of the 256 is set in some token and clear in another: a generator that
        // left bytes zero or fixed would fail this (chance of a false failure: 256 × 2^-199).
        let decoded: Vec<Vec<u8>> = tokens
            .iter()
            .map(|t| URL_SAFE_NO_PAD.decode(&t.expose()[4..]).unwrap())
            .collect();
        for bit in 0..256 {
            let ones = decoded
                .iter()
                .filter(|b| b[bit / 8] & (1 << (bit % 8)) != 0)
                .count();
            assert!(ones > 0 && ones < decoded.len(), "bit {bit} never changes");
        }
    }

    #[test]
    fn parse_accepts_what_generate_makes_and_keeps_its_hash() {
        let token = DeviceToken::generate().unwrap();
        let parsed = DeviceToken::parse(token.expose()).expect("a generated token parses");
        assert_eq!(parsed, token);
        assert_eq!(parsed.hash(), token.hash());
        let padded = format!("  {}\r\n", token.expose());
        assert_eq!(DeviceToken::parse(&padded).unwrap(), token, "trimmed");
    }

    #[test]
    fn parse_refuses_anything_not_shaped_like_a_token() {
        let good = DeviceToken::generate().unwrap().expose().to_string();
        let body = &good[4..];
        let bad = [
            String::new(),
            "clt_".to_string(),
            body.to_string(),                            // no prefix
            format!("CLT_{body}"),                       // wrong prefix
            format!("tok_{body}"),                       // wrong prefix
            format!("{good}A"),                          // too long
            good[..good.len() - 1].to_string(),          // too short
            format!("{good}="),                          // padding
            format!("clt_{}+", &body[..body.len() - 1]), // standard base64, not url-safe
            format!("clt_{}", "A".repeat(42) + "B"),     // trailing bits set: a second spelling
            format!("clt_{}é", &body[..body.len() - 2]),
            format!("clt_ {}", &body[1..]), // a space inside
            "x".repeat(100_000),
        ];
        for text in &bad {
            assert!(DeviceToken::parse(text).is_none(), "accepted {text:?}");
        }
        assert!(DeviceToken::parse(&format!("clt_{}", "A".repeat(43))).is_some());
    }

    #[test]
    fn the_hash_is_sha256_of_the_text() {
        let token = DeviceToken::parse(&format!("clt_{}", "A".repeat(43))).unwrap();
        let expected: [u8; 32] = Sha256::digest(format!("clt_{}", "A".repeat(43))).into();
        assert_eq!(token.hash(), expected);
        assert_eq!(hash_token_text(token.expose()), expected);
        // Known answer, so the stored hashes can't change silently with a refactor.
        assert_eq!(
            hex::encode(hash_token_text("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let other = DeviceToken::generate().unwrap();
        assert_ne!(other.hash(), token.hash());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = DeviceToken::generate().unwrap();
        let shown = format!("{token:?} {token:#?} {:?}", token.as_sensitive());
        assert!(!shown.contains(&token.expose()[4..]), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
