//! The vault: per conversation, which placeholder stands for which value.
//!
//! [`Vault`] is async so that a shared store (Redis, for several gateway replicas) can
//! implement it; [`MemoryVault`] is the single-process default.
//!
//! A conversation is identified by a [`ConversationId`] the pipeline derives (from the
//! `x-garim-conversation` header, else from the start of the message history; see
//! `pipeline`). Within one, the `n`-th distinct value of a label gets `[LABEL_n]`.
//!
//! [`MemoryVault`] bounds its memory: each conversation expires `ttl` after its last use,
//! and when the values held exceed `max_bytes`, the least recently used conversations are
//! evicted. A restore that comes after its conversation was evicted leaves placeholders in
//! place (and they are counted as unresolved); it never restores a wrong value.
//! Values are [`Secret`]s: never printed, zeroized when dropped.

use crate::detect::Label;
use crate::mask::Placeholder;
use crate::secret::Secret;
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Opaque conversation key. Never derived from raw values without a keyed hash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConversationId(pub String);

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConversationId({})", self.0)
    }
}

/// Placeholder -> value for one conversation, as restore needs it.
#[derive(Clone, Default)]
pub struct Mapping {
    values: HashMap<Placeholder, Secret<String>>,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapping({} placeholders)", self.values.len())
    }
}

impl Mapping {
    pub fn get(&self, p: Placeholder) -> Option<&str> {
        self.values.get(&p).map(|s| s.expose().as_str())
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn insert(&mut self, p: Placeholder, value: &str) {
        self.values.insert(p, Secret::new(value.to_owned()));
    }
}

/// Result of [`Vault::assign`].
#[derive(Debug, Clone)]
pub struct Assigned {
    /// One placeholder per value passed in, in the same order.
    pub placeholders: Vec<Placeholder>,
    /// The conversation's whole mapping after the assignment (earlier turns included).
    pub mapping: Arc<Mapping>,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The store could not be reached or answered wrongly. Never contains a value.
    #[error("vault unavailable: {0}")]
    Unavailable(String),
    /// A conversation would exceed the per-conversation bound.
    #[error("conversation holds too many values ({0} placeholders)")]
    ConversationFull(usize),
}

#[async_trait]
pub trait Vault: Send + Sync {
    /// Gives each `(label, value)` its placeholder in `conv`, reusing the one it already has.
    async fn assign(
        &self,
        conv: &ConversationId,
        values: &[(Label, &str)],
    ) -> Result<Assigned, VaultError>;

    /// The mapping of `conv` as it is now (empty when unknown or expired).
    async fn mapping(&self, conv: &ConversationId) -> Result<Arc<Mapping>, VaultError>;
}

struct Conversation {
    by_value: HashMap<(Label, Secret<String>), u32>,
    next: HashMap<Label, u32>,
    mapping: Arc<Mapping>,
    bytes: usize,
    last_used: Instant,
}

struct Inner {
    convs: HashMap<ConversationId, Conversation>,
    bytes: usize,
}

/// In-process vault with TTL and a memory bound.
pub struct MemoryVault {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_bytes: usize,
    max_per_conversation: usize,
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryVault")
            .field("ttl", &self.ttl)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Rough cost of one stored value: both maps, the key and the string.
fn entry_cost(value: &str) -> usize {
    2 * value.len() + 96
}

impl MemoryVault {
    pub fn new(ttl: Duration, max_bytes: usize, max_per_conversation: usize) -> Self {
        MemoryVault {
            inner: Mutex::new(Inner {
                convs: HashMap::new(),
                bytes: 0,
            }),
            ttl,
            max_bytes,
            max_per_conversation,
        }
    }

    /// Number of live conversations and bytes accounted (for metrics and tests).
    pub fn stats(&self) -> (usize, usize) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (g.convs.len(), g.bytes)
    }

    /// Drops expired conversations. Called on every assign; cheap when nothing expired.
    fn sweep(&self, inner: &mut Inner, now: Instant) {
        let ttl = self.ttl;
        let mut freed = 0;
        inner.convs.retain(|_, c| {
            let keep = now.duration_since(c.last_used) < ttl;
            if !keep {
                freed += c.bytes;
            }
            keep
        });
        inner.bytes -= freed;
    }

    fn evict_to_bound(&self, inner: &mut Inner, keep: &ConversationId) {
        while inner.bytes > self.max_bytes && inner.convs.len() > 1 {
            let oldest = inner
                .convs
                .iter()
                .filter(|(k, _)| *k != keep)
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    if let Some(c) = inner.convs.remove(&k) {
                        inner.bytes -= c.bytes;
                    }
                }
                None => break,
            }
        }
    }
}

#[async_trait]
impl Vault for MemoryVault {
    async fn assign(
        &self,
        conv: &ConversationId,
        values: &[(Label, &str)],
    ) -> Result<Assigned, VaultError> {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        // Sweeping every call is O(conversations); do it at most when the map is large enough
        // to matter or a value is new. Expiry of the conversation at hand is checked directly.
        if inner.convs.len() > 1024 || values.is_empty() {
            self.sweep(inner, now);
        }
        if let Some(c) = inner.convs.get(conv) {
            if now.duration_since(c.last_used) >= self.ttl {
                let c = inner.convs.remove(conv).expect("present");
                inner.bytes -= c.bytes;
            }
        }
        let c = inner
            .convs
            .entry(conv.clone())
            .or_insert_with(|| Conversation {
                by_value: HashMap::new(),
                next: HashMap::new(),
                mapping: Arc::new(Mapping::default()),
                bytes: 0,
                last_used: now,
            });
        c.last_used = now;
        let mut placeholders = Vec::with_capacity(values.len());
        let mut added = 0;
        for &(label, value) in values {
            let key = (label, Secret::new(value.to_owned()));
            let n = match c.by_value.get(&key) {
                Some(&n) => n,
                None => {
                    if c.by_value.len() >= self.max_per_conversation {
                        let held = c.by_value.len();
                        c.bytes += added;
                        inner.bytes += added;
                        return Err(VaultError::ConversationFull(held));
                    }
                    let next = c.next.entry(label).or_insert(0);
                    *next += 1;
                    let n = *next;
                    c.by_value.insert(key, n);
                    Arc::make_mut(&mut c.mapping).insert(Placeholder { label, n }, value);
                    added += entry_cost(value);
                    n
                }
            };
            placeholders.push(Placeholder { label, n });
        }
        c.bytes += added;
        let mapping = c.mapping.clone();
        inner.bytes += added;
        self.evict_to_bound(inner, conv);
        Ok(Assigned {
            placeholders,
            mapping,
        })
    }

    async fn mapping(&self, conv: &ConversationId) -> Result<Arc<Mapping>, VaultError> {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.convs.get_mut(conv) {
            Some(c) if now.duration_since(c.last_used) < self.ttl => {
                c.last_used = now;
                Ok(c.mapping.clone())
            }
            _ => Ok(Arc::new(Mapping::default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str) -> ConversationId {
        ConversationId(s.to_owned())
    }

    #[tokio::test]
    async fn same_value_same_placeholder_across_calls() {
        let v = MemoryVault::new(Duration::from_secs(60), 1 << 20, 1000);
        let a = v
            .assign(
                &conv("c"),
                &[
                    (Label::Email, "a@x.io"),
                    (Label::Phone, "010-1111-2222"),
                    (Label::Email, "b@x.io"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            a.placeholders
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["[EMAIL_1]", "[PHONE_1]", "[EMAIL_2]"]
        );
        let b = v
            .assign(
                &conv("c"),
                &[(Label::Email, "b@x.io"), (Label::Email, "c@x.io")],
            )
            .await
            .unwrap();
        assert_eq!(
            b.placeholders
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["[EMAIL_2]", "[EMAIL_3]"]
        );
        assert_eq!(
            b.mapping.get(Placeholder {
                label: Label::Email,
                n: 1
            }),
            Some("a@x.io")
        );
        // another conversation starts its own numbering and does not see these values
        let c = v
            .assign(&conv("d"), &[(Label::Email, "c@x.io")])
            .await
            .unwrap();
        assert_eq!(c.placeholders[0].to_string(), "[EMAIL_1]");
        assert_eq!(c.mapping.len(), 1);
    }

    #[tokio::test]
    async fn expires_and_bounds_memory() {
        let v = MemoryVault::new(Duration::from_millis(30), 1 << 20, 1000);
        v.assign(&conv("c"), &[(Label::Email, "a@x.io")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(v.mapping(&conv("c")).await.unwrap().is_empty());

        let v = MemoryVault::new(Duration::from_secs(60), 2_000, 1000);
        for i in 0..100 {
            let value = format!("user{i}@example.com");
            v.assign(&conv(&format!("c{i}")), &[(Label::Email, value.as_str())])
                .await
                .unwrap();
        }
        let (n, bytes) = v.stats();
        assert!(bytes <= 2_000, "{bytes}");
        assert!(n < 100 && n > 1);
        // the most recent conversation survived
        assert_eq!(v.mapping(&conv("c99")).await.unwrap().len(), 1);
        assert!(v.mapping(&conv("c0")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn bounded_per_conversation() {
        let v = MemoryVault::new(Duration::from_secs(60), 1 << 20, 2);
        let err = v
            .assign(
                &conv("c"),
                &[
                    (Label::Email, "a"),
                    (Label::Email, "b"),
                    (Label::Email, "c"),
                ],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, VaultError::ConversationFull(2)));
    }
}
