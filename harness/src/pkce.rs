//! PKCE (RFC 7636) values as a client makes them, written independently of the reference AS.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A code verifier and its S256 challenge.
#[derive(Clone)]
pub struct Pkce {
    /// The secret verifier (43 characters of base64url).
    pub verifier: String,
    /// BASE64URL(SHA-256(verifier)) without padding (PKCE-02).
    pub challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh random verifier (256 bits) and its challenge.
    pub fn generate() -> Self {
        Self::from_verifier(&random_token())
    }

    /// The challenge for a given verifier.
    pub fn from_verifier(verifier: &str) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
        Self {
            verifier: verifier.to_owned(),
            challenge,
        }
    }
}

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Fails only when the OS has no entropy source; a predictable verifier would be worse than stopping.
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::Pkce;

    #[test]
    fn matches_the_rfc_7636_appendix_b_example() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(Pkce::generate().verifier.len(), 43);
    }
}
