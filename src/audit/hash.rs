//! Keyed hashes of detected values, so the audit log can correlate without holding values.
//!
//! HMAC-SHA256 over `label`, a zero byte, and the value; truncated to 128 bits and written as
//! `hmac-sha256:<32 hex digits>`. The label is part of the input so the same digits found as a
//! phone number and as an account number do not link.
//!
//! Limits: with a random per-process key ([`ValueHasher::random`]) hashes only correlate
//! within one run; configure a key to correlate across restarts and instances.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::Secret;

/// Number of MAC bytes kept in a hash.
const HASH_BYTES: usize = 16;
/// Prefix naming the scheme, so a future change of algorithm is visible in the log.
const PREFIX: &str = "hmac-sha256:";

/// Computes keyed value hashes for audit records. `Debug` prints no key.
#[derive(Clone, Debug)]
pub struct ValueHasher {
    key: Secret<Vec<u8>>,
}

impl ValueHasher {
    /// A hasher with a fresh random 256-bit key (for when no key is configured).
    pub fn random() -> Self {
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        ValueHasher {
            key: Secret::new(key),
        }
    }

    /// A hasher with the given key (any length; 32 random bytes recommended).
    pub fn from_key(key: Secret<Vec<u8>>) -> Self {
        ValueHasher { key }
    }

    /// `hmac-sha256:` followed by the first 16 bytes of HMAC-SHA256(key, label 0x00 value),
    /// in lower-case hex.
    pub fn hash(&self, label: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose())
            .expect("HMAC accepts keys of any length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PREFIX.len() + 2 * HASH_BYTES);
        out.push_str(PREFIX);
        out.push_str(&hex::encode(&digest[..HASH_BYTES]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(k: &[u8]) -> ValueHasher {
        ValueHasher::from_key(Secret::new(k.to_vec()))
    }

    #[test]
    fn stable_and_shaped() {
        let h = keyed(b"key-one");
        let a = h.hash("EMAIL", "kim.minsu@example.com");
        assert_eq!(a, h.hash("EMAIL", "kim.minsu@example.com"));
        assert_eq!(a, h.clone().hash("EMAIL", "kim.minsu@example.com"));
        assert!(a.starts_with("hmac-sha256:"));
        let hex_part = &a["hmac-sha256:".len()..];
        assert_eq!(hex_part.len(), 32);
        assert!(hex_part
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(!a.contains("kim.minsu"));
        assert!(!a.contains("example"));
    }

    #[test]
    fn matches_reference_hmac() {
        // The input is label, 0x00, value: compare with the `hmac` crate on those bytes.
        let h = keyed(b"Jefe");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"PHONE\x00010-1234-5678");
        let expect = hex::encode(&mac.finalize().into_bytes()[..16]);
        assert_eq!(
            h.hash("PHONE", "010-1234-5678"),
            format!("hmac-sha256:{expect}")
        );
        // And the primitive itself is the standard one (RFC 4231 case 2, first 16 bytes).
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(&mac.finalize().into_bytes()[..16]),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn depends_on_key_label_and_value() {
        let one = keyed(b"key-one");
        let two = keyed(b"key-two");
        let v = "010-1234-5678";
        assert_ne!(one.hash("PHONE", v), two.hash("PHONE", v));
        assert_ne!(one.hash("PHONE", v), one.hash("BANK_ACCOUNT", v));
        assert_ne!(one.hash("PHONE", v), one.hash("PHONE", "010-1234-5679"));
        // The separator keeps label/value boundaries apart.
        assert_ne!(one.hash("AB", "C"), one.hash("A", "BC"));
        let r1 = ValueHasher::random();
        let r2 = ValueHasher::random();
        assert_ne!(r1.hash("EMAIL", "a@b.c"), r2.hash("EMAIL", "a@b.c"));
        assert_eq!(r1.hash("EMAIL", "a@b.c"), r1.hash("EMAIL", "a@b.c"));
    }

    #[test]
    fn debug_hides_the_key() {
        let h = keyed(b"super-secret-key");
        let d = format!("{h:?}");
        assert!(!d.contains("super"), "{d}");
        assert!(d.contains("*****"), "{d}");
    }
}
