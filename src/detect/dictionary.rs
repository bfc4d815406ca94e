//! Dictionary detector: term lists (employee names, customers, project codenames) found with
//! one hash table of terms, and allow lists that suppress findings of every detector.
//!
//! # Lists
//!
//! A [`TermList`] has a name, a kind ([`ListKind::Deny`] produces findings with the list's
//! label and score, [`ListKind::Allow`] suppresses findings), a case flag and its terms. Terms
//! come from files ([`load_terms`]: UTF-8, one term per line, surrounding whitespace trimmed,
//! blank lines and lines starting with `#` ignored; a `#` later in a line is part of the
//! term) or inline arrays in the configuration.
//!
//! # Matching
//!
//! All deny lists share one table, all allow lists another, so a text is scanned once per
//! kind whatever the number of lists. Matching is leftmost-longest and non-overlapping: terms
//! can only start where the start boundary below holds and a 3-byte prefix table says some
//! term begins; there the lengths that prefix's terms have are looked up in the table,
//! longest first (a bit filter answers most misses from the cache), those of six bytes or
//! more only when a 6-byte prefix table says some such term begins there (a Korean surname
//! syllable begins a great many words, a surname and a given-name syllable few). Why not Aho-Corasick (the
//! first version): with 100k terms the automaton's states do not fit in the caches, building
//! one million terms took ~10 s, and scanning was no faster. Now 100k terms build in ~40 ms,
//! one million in well under a second.
//!
//! Case-insensitive lists fold ASCII letters only (Hangul has no case; other scripts match
//! exactly). When case-sensitive and case-insensitive lists are mixed, keys are folded and
//! case-sensitive terms are checked byte for byte after a hit. Folding lowercases the keys
//! and a copy of each text that has ASCII capitals (offsets are unchanged). A term in several
//! lists is reported for the first list (in configuration order) whose case rule accepts the
//! match.
//!
//! Boundaries, checked in code after each match:
//! - a term that starts (ends) with an ASCII letter or digit must not be preceded (followed)
//!   by an ASCII letter, digit or `_` (`Kim` is not found in `Kimberly`);
//! - a term that starts with a Hangul syllable must not be preceded by one (`민준` is not
//!   found in `김민준`);
//! - a term that ends with a Hangul syllable may be followed by other syllables only when
//!   they split entirely into particles and titles ([`super::korean_name::is_suffix_chain`]):
//!   `김민준은`, `김민준에게서`, `김민준과장님` match the term `김민준`; `김민준호` does not.
//!
//! When the longest term at a position fails its boundary check, shorter terms starting at
//! the same position are tried (`Acme` in `Acme Corporation` when `Acme Corp` is also a
//! term), then the search resumes one character later.
//!
//! # Allow lists
//!
//! [`AllowList::suppress`] drops every finding whose span lies within (or equals) an
//! allow-listed match, optionally only findings of the list's label. [`AllowFilter`] wraps
//! the engine's detectors so that this holds for all of them (regex, dictionary, names):
//! `build_engine` puts it around the detectors when allow lists are configured. The allow
//! table is only searched in texts that produced findings.
//!
//! Limits: only ASCII case folding; a term overlapping a longer leftmost term is not found
//! (leftmost-longest, non-overlapping). Memory is 32 bytes per table slot (2-4 slots per
//! term: the table is a power of two, at most half full; a term of up to 16 bytes is held in
//! its slot), the bytes of longer terms, 2-4 bytes of filter per term, 24 bytes of list entry
//! per term, 28 KiB of prefix tables and 8 bytes per distinct 3-byte prefix bucket (at most
//! 512 KiB; one million terms of ~11 bytes: ~95 MB in all). Errors and Debug output name lists, files and line numbers, never a term or scanned
//! text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::korean_name::{is_suffix_chain, is_syllable};
use super::{DetectError, Detector, Finding, Label, Priority};

/// Default score of deny-list findings.
pub const DEFAULT_SCORE: f32 = 0.9;

/// What a list does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Every match is a finding.
    Deny,
    /// Findings inside a match are dropped.
    Allow,
}

/// One named list of terms.
#[derive(Clone)]
pub struct TermList {
    /// Used in finding detector names (`dict:<name>`) and errors.
    pub name: String,
    /// Deny lists: the findings' label. Allow lists: when set, only findings of this label
    /// are suppressed; `None` suppresses findings of every label.
    pub label: Option<Label>,
    pub kind: ListKind,
    /// ASCII letters match regardless of case.
    pub case_insensitive: bool,
    /// Score of deny-list findings.
    pub score: f32,
    pub terms: Vec<String>,
}

impl fmt::Debug for TermList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TermList")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("case_insensitive", &self.case_insensitive)
            .field("score", &self.score)
            .field("terms", &format_args!("<{} terms>", self.terms.len()))
            .finish()
    }
}

/// Why a dictionary could not be loaded or built. Never holds a term.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    #[error("dictionary `{list}`: cannot read `{file}`: {source}")]
    Io {
        list: String,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dictionary `{list}`: `{file}` line {line} is not valid UTF-8")]
    NotUtf8 {
        list: String,
        file: PathBuf,
        line: usize,
    },
    #[error("dictionary `{list}`: a deny list needs a label")]
    NoLabel { list: String },
    #[error("dictionary `{list}`: score must be between 0.0 and 1.0")]
    BadScore { list: String },
    #[error("dictionaries ({kind}): cannot build the matcher: {message}")]
    Build { kind: &'static str, message: String },
}

impl DictError {
    /// Dictionaries are operator configuration: never the client's fault.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// The error of [`super::build_engine`]: a rule pack or a dictionary failed to load.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Rules(#[from] super::regex::RuleError),
    #[error(transparent)]
    Dictionary(#[from] DictError),
}

impl BuildError {
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    pub fn fault(&self) -> &'static str {
        "internal"
    }
}

/// The terms of a list text: trimmed lines, without blank lines and `#` comment lines.
pub fn parse_terms(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Reads a term file (see the module doc). `list` names the list in errors.
pub fn load_terms(list: &str, path: &Path) -> Result<Vec<String>, DictError> {
    let bytes = std::fs::read(path).map_err(|source| DictError::Io {
        list: list.to_owned(),
        file: path.to_owned(),
        source,
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(DictError::NotUtf8 {
                list: list.to_owned(),
                file: path.to_owned(),
                line,
            });
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(parse_terms(text).map(str::to_owned).collect())
}

/// Which list a key belongs to, and the exact bytes when keys are folded but the list is
/// case-sensitive.
struct Entry {
    list: u32,
    exact: Option<Box<str>>,
}

/// One slot of the open-addressing key table: `id == EMPTY` is free. A key of up to
/// [`INLINE`] bytes is held in the slot itself, and so is its list when that is the whole
/// answer, so a hit usually reads one cache line (half of one).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    /// High bits of the key's hash, compared before the bytes.
    tag: u32,
    id: u32,
    len: u32,
    /// The key's list when it is in one list only and needs no exact check; [`NO_LIST`]
    /// otherwise (then [`Matcher::first`] and [`Matcher::more`] answer).
    list: u32,
    /// The key's bytes when it has at most [`INLINE`]; else its offset in [`Matcher::keys`]
    /// (first four bytes, little-endian).
    bytes: [u8; INLINE],
}

const INLINE: usize = 16;
/// The per-thread scan buffer of [`Matcher::for_each`] is dropped after a text
/// longer than this, so one huge text does not pin its size for the thread's life.
const KEEP_SCANNED_BYTES: usize = 1 << 20;
/// NUL bytes before the text in the buffer the scan reads ([`Matcher::pad_into`]): what the
/// candidate scan reads behind a place.
const PAD_BEFORE: usize = 3;
/// NUL bytes after the text in that buffer: what the candidate scan reads from the start of
/// its last window (37 bytes, six from each of its 32 places).
const PAD_AFTER: usize = 37;
const NO_LIST: u32 = u32::MAX;

impl Slot {
    const FREE: Slot = Slot {
        tag: 0,
        id: EMPTY,
        len: 0,
        list: NO_LIST,
        bytes: [0; INLINE],
    };

    fn key<'k>(&'k self, keys: &'k [u8]) -> &'k [u8] {
        let len = self.len as usize;
        if len <= INLINE {
            &self.bytes[..len]
        } else {
            let b = &self.bytes;
            let start = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            &keys[start..start + len]
        }
    }
}

const EMPTY: u32 = u32::MAX;

/// The terms of several lists as a hash table of byte strings, with the boundary rules of
/// the module doc.
struct Matcher {
    /// Distinct keys (ASCII-lowercased when `fold`), concatenated.
    keys: Vec<u8>,
    /// Open addressing, linear probing, at most half full; `table.len()` is a power of two.
    table: Box<[Slot]>,
    /// One bit per hash (sixteen bits per key, a power of two): a lookup whose bit is clear
    /// is a miss without touching the table, which does not fit in the caches.
    filter: Box<[u64]>,
    /// Entry of each key (its first list).
    first: Vec<Entry>,
    /// Further entries of keys that occur in several lists, in list order.
    more: HashMap<u32, Vec<Entry>>,
    /// Keys are ASCII-lowercased; texts are lowercased before the search.
    fold: bool,
    /// Which 3-byte prefixes begin a key: bit [`prefix_bit`] of every key's first three
    /// bytes (8 KiB, stays in the L1 cache; a hash, so false positives only).
    prefixes: Box<[u64; PREFIX_WORDS]>,
    /// Per occupied prefix bucket, in bucket order, the lengths of its keys: bit `n - 3` for
    /// a key of `n` bytes (`3..=65`); bit 63 when a key of the bucket is longer than 65 bytes
    /// (then every length in `long` is tried). Only occupied buckets have an entry (found
    /// with `rank`): 100k terms occupy ~10k of the 65,536 buckets, and a full table (512 KiB)
    /// was read at every candidate, missing the caches.
    lens: Box<[u64]>,
    /// Per word of `prefixes`, the number of bits set in the words before it: the index in
    /// `lens` of bucket `b` is `rank[b / 64]` plus the bits set below `b` in its word.
    rank: Box<[u32; PREFIX_WORDS]>,
    /// Which 6-byte prefixes begin a key of six bytes or more: bit [`prefix6_bit`] (16 KiB,
    /// stays in the L1 cache). At most candidates the 3-byte prefix is common (a Korean
    /// surname syllable begins many words) but the 6-byte one is not: then no key of six
    /// bytes or more is looked up.
    prefixes6: Box<[u64; PREFIX6_WORDS]>,
    /// Which 3-byte prefix buckets hold a key of three to five bytes (bits as in
    /// `prefixes`): elsewhere a candidate also needs its 6-byte prefix in `prefixes6`.
    prefixes_short: Box<[u64; PREFIX_WORDS]>,
    /// Some key begins with an ASCII byte that is not a letter or digit.
    ascii_other_begins: bool,
    /// Distinct lengths of keys longer than 65 bytes, longest first.
    long: Vec<usize>,
    /// Per first byte, keys of one byte (bit 0) and of two bytes (bit 1), longer keys
    /// ([`LONG_BEGINS`]).
    short: [u8; 256],
}

/// Bit of [`Matcher::short`]: some key of three bytes or more begins with this byte.
const LONG_BEGINS: u8 = 4;

const PREFIX_BITS: u32 = 16;
const PREFIX6_BITS: u32 = 17;
const PREFIX6_WORDS: usize = (1 << PREFIX6_BITS) / 64;
/// Bits of [`Matcher::lens`] for keys shorter than six bytes (lengths 3, 4, 5).
const LENS_BELOW_6: u64 = 0b111;
const PREFIX_WORDS: usize = (1 << PREFIX_BITS) / 64;
/// The longest key length with its own bit in [`Matcher::lens`].
const MAX_MASKED_LEN: usize = 65;

/// The bucket of the prefix tables for the three bytes `b`.
fn prefix_bit(b: &[u8]) -> usize {
    let k = u32::from_le_bytes([b[0], b[1], b[2], 0]);
    (k.wrapping_mul(0x9E37_79B1) >> (32 - PREFIX_BITS)) as usize
}

/// The bit of [`Matcher::prefixes6`] for the six bytes `b`.
fn prefix6_bit(b: &[u8]) -> usize {
    let k = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        | u64::from(u16::from_le_bytes([b[4], b[5]])) << 32;
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PREFIX6_BITS)) as usize
}

/// A fast non-cryptographic hash of a key (terms are operator data, texts cannot choose
/// which slots they probe beyond their own bytes, and a probe costs one comparison).
fn key_hash(b: &[u8]) -> u64 {
    const K: u64 = 0xF135_7AEA_2E62_A9C5;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(26);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(26);
    }
    // Final mix so that both the slot (low bits) and the tag (high bits) depend on every byte.
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^ (h >> 32)
}

/// The low `len` bytes (`1..=16`) of a little-endian `u128`.
#[inline]
fn low_bytes_mask(len: usize) -> u128 {
    u128::MAX >> (8 * (16 - len))
}

/// [`key_hash`] of `window[..len]` (`1..=16` bytes): the same value, from masked word loads.
#[inline]
fn key_hash_short(window: &[u8; INLINE], len: usize) -> u64 {
    const K: u64 = 0xF135_7AEA_2E62_A9C5;
    let word = |k: usize| u64::from_le_bytes(window[k..k + 8].try_into().expect("8 bytes"));
    let low = |n: usize| u64::MAX >> (8 * (8 - n));
    let mut h = (len as u64).wrapping_mul(K);
    if len <= 8 {
        h = (h ^ (word(0) & low(len))).wrapping_mul(K).rotate_left(26);
    } else {
        h = (h ^ word(0)).wrapping_mul(K).rotate_left(26);
        h = (h ^ (word(8) & low(len - 8)))
            .wrapping_mul(K)
            .rotate_left(26);
    }
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^ (h >> 32)
}

impl Matcher {
    /// `lists`: `(list index, case_insensitive, terms)`.
    fn build(kind: &'static str, lists: &[(u32, bool, &[String])]) -> Result<Matcher, DictError> {
        let fold = lists.iter().any(|(_, ci, _)| *ci);
        let mixed = fold && lists.iter().any(|(_, ci, _)| !*ci);
        let total: usize = lists.iter().map(|(_, _, t)| t.len()).sum();
        let cap = (total.max(4) * 2).next_power_of_two();
        let filter_words = (total.max(64) * 16).next_power_of_two() / 64;
        let mut m = Matcher {
            keys: Vec::new(),
            table: vec![Slot::FREE; cap].into_boxed_slice(),
            filter: vec![0u64; filter_words].into_boxed_slice(),
            first: Vec::with_capacity(total),
            more: HashMap::new(),
            fold,
            prefixes: Box::new([0u64; PREFIX_WORDS]),
            lens: Box::new([]),
            prefixes6: Box::new([0u64; PREFIX6_WORDS]),
            ascii_other_begins: false,
            prefixes_short: Box::new([0u64; PREFIX_WORDS]),
            rank: Box::new([0u32; PREFIX_WORDS]),
            long: Vec::new(),
            short: [0; 256],
        };
        let mut lowered = Vec::new();
        // Lengths per bucket while building, compacted into `lens` at the end.
        let mut lens = vec![0u64; 1 << PREFIX_BITS];
        for &(list, ci, terms) in lists {
            for t in terms {
                if t.is_empty() {
                    continue;
                }
                // Folding lowercases the keys here and a copy of each text at search time
                // (same byte offsets).
                let key: &[u8] = if fold && t.bytes().any(|b| b.is_ascii_uppercase()) {
                    lowered.clear();
                    lowered.extend(t.bytes().map(|b| b.to_ascii_lowercase()));
                    &lowered
                } else {
                    t.as_bytes()
                };
                // A case-sensitive term without ASCII letters needs no exact check: folding
                // changes only letters, so where its key matches the folded text, the text
                // holds the term itself (Korean names, numbers: no lookup of the entry and
                // its copy of the term, two cache misses, at each of their matches).
                let exact = mixed && !ci && t.bytes().any(|b| b.is_ascii_alphabetic());
                let entry = Entry {
                    list,
                    exact: exact.then(|| t.as_str().into()),
                };
                match m.slot_of(key) {
                    Some(si) => {
                        let id = m.table[si].id;
                        let dup = m.first[id as usize].list == list
                            && m.first[id as usize].exact == entry.exact
                            || m.more.get(&id).is_some_and(|v| {
                                v.iter().any(|e| e.list == list && e.exact == entry.exact)
                            });
                        if !dup {
                            m.table[si].list = NO_LIST;
                            m.more.entry(id).or_default().push(entry);
                        }
                    }
                    None => {
                        let id = u32::try_from(m.first.len())
                            .ok()
                            .filter(|&id| id != EMPTY)
                            .ok_or_else(|| DictError::Build {
                                kind,
                                message: "too many terms".into(),
                            })?;
                        // Slots hold u32 offsets: the keys' bytes must stay under 4 GiB.
                        let start = m.keys.len() as u32;
                        if u32::try_from(m.keys.len() + key.len()).is_err() {
                            return Err(DictError::Build {
                                kind,
                                message: "terms too large (over 4 GiB)".into(),
                            });
                        }
                        let simple = entry.exact.is_none().then_some(list);
                        m.insert(key, id, start, simple);
                        if key.len() > INLINE {
                            m.keys.extend_from_slice(key);
                        }
                        m.first.push(entry);
                        m.note_length(key, &mut lens);
                    }
                }
            }
        }
        m.long.sort_unstable_by(|a, b| b.cmp(a));
        m.long.dedup();
        let mut seen = 0u32;
        for (w, &bits) in m.prefixes.iter().enumerate() {
            m.rank[w] = seen;
            seen += bits.count_ones();
        }
        m.lens = lens.into_iter().filter(|&l| l != 0).collect();
        Ok(m)
    }

    /// Records where and how long `key` is, for [`Matcher::longest_at`].
    fn note_length(&mut self, key: &[u8], lens: &mut [u64]) {
        if key[0] < 0x80 && !key[0].is_ascii_alphanumeric() {
            self.ascii_other_begins = true;
        }
        match key.len() {
            1 | 2 => self.short[key[0] as usize] |= 1 << (key.len() - 1),
            n => {
                self.short[key[0] as usize] |= LONG_BEGINS;
                let bit = prefix_bit(key);
                if n >= 6 {
                    let bit6 = prefix6_bit(key);
                    self.prefixes6[bit6 / 64] |= 1 << (bit6 % 64);
                } else {
                    self.prefixes_short[bit / 64] |= 1 << (bit % 64);
                }
                self.prefixes[bit / 64] |= 1 << (bit % 64);
                if n <= MAX_MASKED_LEN {
                    lens[bit] |= 1 << (n - 3);
                } else {
                    lens[bit] |= 1 << 63;
                    self.long.push(n);
                }
            }
        }
    }

    /// The filter word and bit of hash `h`.
    fn filter_bit(&self, h: u64) -> (usize, u64) {
        let bit = (h >> 40) as usize & (self.filter.len() * 64 - 1);
        (bit / 64, 1 << (bit % 64))
    }

    /// The table slot of `key`, if it is a key.
    #[inline]
    fn slot_of(&self, key: &[u8]) -> Option<usize> {
        let h = key_hash(key);
        let (w, b) = self.filter_bit(h);
        if self.filter[w] & b == 0 {
            return None;
        }
        let tag = (h >> 32) as u32;
        let mask = self.table.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let s = &self.table[i];
            if s.id == EMPTY {
                return None;
            }
            if s.tag == tag && s.len as usize == key.len() && s.key(&self.keys) == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// [`Matcher::slot_of`] for the key `window[..len]` of at most [`INLINE`] bytes, read from
    /// a 16-byte window (bytes past `len` are ignored): the hash and the comparison are word
    /// loads under a mask, with no call to `memcmp` or `memcpy` (a third of a lookup's
    /// instructions, and most lookups are of short keys).
    #[inline]
    fn slot_of_short(&self, window: &[u8; INLINE], len: usize) -> Option<usize> {
        debug_assert!((1..=INLINE).contains(&len));
        let h = key_hash_short(window, len);
        let (w, b) = self.filter_bit(h);
        if self.filter[w] & b == 0 {
            return None;
        }
        let key = u128::from_le_bytes(*window) & low_bytes_mask(len);
        let tag = (h >> 32) as u32;
        let mask = self.table.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let s = &self.table[i];
            if s.id == EMPTY {
                return None;
            }
            // Inline keys are zero-padded (see `insert`), so equal keys are equal words.
            if s.tag == tag && s.len as usize == len && u128::from_le_bytes(s.bytes) == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds a key known to be absent. The table is sized for every term up front.
    fn insert(&mut self, key: &[u8], id: u32, start: u32, list: Option<u32>) {
        let h = key_hash(key);
        let (w, b) = self.filter_bit(h);
        self.filter[w] |= b;
        let mask = self.table.len() - 1;
        let mut i = h as usize & mask;
        while self.table[i].id != EMPTY {
            i = (i + 1) & mask;
        }
        let mut bytes = [0; INLINE];
        if key.len() <= INLINE {
            bytes[..key.len()].copy_from_slice(key);
        } else {
            bytes[..4].copy_from_slice(&start.to_le_bytes());
        }
        self.table[i] = Slot {
            tag: (h >> 32) as u32,
            id,
            len: key.len() as u32,
            list: list.unwrap_or(NO_LIST),
            bytes,
        };
    }

    /// Calls `f(start, end, list)` for each accepted match, left to right, non-overlapping.
    ///
    /// Only places where a term can start are tried: three bytes that may begin some term
    /// ([`Matcher::may_begin`]) where the start boundary holds ([`start_ok`]: not inside an
    /// ASCII word or a run of Hangul syllables). There the keys of the lengths the prefix
    /// has are looked up in the hash table, longest first, and the first one that passes
    /// its boundary checks is the match. This is what a leftmost-longest scan resumed after
    /// each rejected match finds (a match at any other place is rejected by its start
    /// boundary).
    fn for_each(&self, text: &str, f: impl FnMut(usize, usize, u32)) {
        // The scanned copy (lowercased when `fold`, between NUL pads) goes into a per-thread
        // buffer: no allocation per text, and the copy loop is vectorised. A nested call
        // (none today) would get its own.
        thread_local! {
            static SCANNED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCANNED.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                self.pad_into(text, &mut buf);
                self.scan(text, &buf, f);
                if buf.capacity() > KEEP_SCANNED_BYTES {
                    *buf = Vec::new();
                }
            }
            Err(_) => {
                let mut buf = Vec::new();
                self.pad_into(text, &mut buf);
                self.scan(text, &buf, f);
            }
        })
    }

    /// Fills `buf` with what the scan reads: [`PAD_BEFORE`] NUL bytes, the bytes of `text`
    /// (ASCII-lowercased when `fold`), [`PAD_AFTER`] NUL bytes. With the pads every 16-byte
    /// window of the candidate scan reads inside the buffer, so no window needs a copy of
    /// its own at the text's two ends (those copies, whose loads could not be forwarded from
    /// the stores, were a sixth of the scan on line-sized texts), and NUL is neither a
    /// letter, a digit nor a syllable, so the boundaries at the ends come out as in the text.
    fn pad_into(&self, text: &str, buf: &mut Vec<u8>) {
        buf.clear();
        buf.reserve(PAD_BEFORE + text.len() + PAD_AFTER);
        buf.extend_from_slice(&[0; PAD_BEFORE]);
        buf.extend_from_slice(text.as_bytes());
        if self.fold {
            // In place over the copy: a vectorised loop (a mapped `extend` was not).
            buf[PAD_BEFORE..].make_ascii_lowercase();
        }
        buf.extend_from_slice(&[0; PAD_AFTER]);
    }

    /// [`Matcher::for_each`] over `padded` (see [`Matcher::pad_into`]).
    fn scan(&self, text: &str, padded: &[u8], mut f: impl FnMut(usize, usize, u32)) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present.
                return unsafe { self.scan_avx2(text, padded, f) };
            }
            self.each_candidate_sse2(padded, 0, |p| self.visit(text, padded, p, &mut f))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let mut pos = 0;
            while let Some(p) = self.next_candidate(padded, pos) {
                pos = self.visit(text, padded, p, &mut f);
            }
        }
    }

    /// [`Matcher::scan`] compiled with AVX2, the visits included (one feature check per
    /// text, not one call per candidate; a visitor made outside it was not inlined).
    ///
    /// # Safety
    ///
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(&self, text: &str, padded: &[u8], mut f: impl FnMut(usize, usize, u32)) {
        // SAFETY: this function's caller guarantees AVX2.
        unsafe { self.each_candidate_avx2(padded, 0, |p| self.visit(text, padded, p, &mut f)) }
    }

    /// The scan's step at candidate `p`: reports the longest acceptable match there, if any,
    /// and returns where the scan goes on (its end, else the next char).
    #[inline(always)]
    fn visit(
        &self,
        text: &str,
        padded: &[u8],
        p: usize,
        f: &mut impl FnMut(usize, usize, u32),
    ) -> usize {
        match self.longest_at(text, padded, p) {
            Some((e, list)) => {
                f(p, e, list);
                e
            }
            None => p + text[p..].chars().next().map_or(1, char::len_utf8),
        }
    }

    /// The longest key at `p` whose match passes the boundary rules: its end and list.
    fn longest_at(&self, text: &str, padded: &[u8], p: usize) -> Option<(usize, u32)> {
        let hay = &padded[PAD_BEFORE..padded.len() - PAD_AFTER];
        let room = hay.len() - p;
        // The 16 bytes from `p` (pad bytes past the text's end: never part of a key tried).
        const _: () = assert!(PAD_AFTER >= INLINE);
        let window: &[u8; INLINE] = padded[PAD_BEFORE + p..PAD_BEFORE + p + INLINE]
            .try_into()
            .expect("16 bytes");
        let try_len = |n: usize| -> Option<(usize, u32)> {
            if n > room {
                return None;
            }
            // What the boundary rules reject whatever the key, before hashing: an end inside
            // a char (keys are whole chars), or inside an ASCII word.
            if let Some(&after) = hay.get(p + n) {
                if after & 0xC0 == 0x80
                    || is_word_byte(after) && hay[p + n - 1].is_ascii_alphanumeric()
                {
                    return None;
                }
            }
            let si = if n <= INLINE {
                self.slot_of_short(window, n)
            } else {
                self.slot_of(&hay[p..p + n])
            }?;
            self.accept(text, p, p + n, &self.table[si])
                .map(|list| (p + n, list))
        };
        let mut mask = match hay.get(p..p + 3) {
            Some(b) => self.lens_of(prefix_bit(b)),
            None => 0,
        };
        if mask & !LENS_BELOW_6 != 0 {
            let long_prefix = hay.get(p..p + 6).is_some_and(|b| {
                let bit = prefix6_bit(b);
                self.prefixes6[bit / 64] & (1 << (bit % 64)) != 0
            });
            if !long_prefix {
                mask &= LENS_BELOW_6;
            }
        }
        if mask & (1 << 63) != 0 {
            mask &= !(1 << 63);
            if let Some(hit) = self.long.iter().find_map(|&n| try_len(n)) {
                return Some(hit);
            }
        }
        while mask != 0 {
            let bit = 63 - mask.leading_zeros() as usize;
            mask &= !(1 << bit);
            if let Some(hit) = try_len(bit + 3) {
                return Some(hit);
            }
        }
        let short = self.short[hay[p] as usize];
        if short & 2 != 0 {
            if let Some(hit) = try_len(2) {
                return Some(hit);
            }
        }
        if short & 1 != 0 {
            return try_len(1);
        }
        None
    }

    /// The lengths mask of prefix bucket `bit` (0 when no key has that prefix).
    fn lens_of(&self, bit: usize) -> u64 {
        let word = self.prefixes[bit / 64];
        let below = word & ((1u64 << (bit % 64)) - 1);
        if word & (1 << (bit % 64)) == 0 {
            return 0;
        }
        self.lens[self.rank[bit / 64] as usize + below.count_ones() as usize]
    }

    /// Whether some key may begin at `hay[i..]`: a key of one or two bytes begins with its
    /// byte, or its 3-byte prefix begins a key and either a key of three to five bytes or
    /// (by its 6-byte prefix) a longer one.
    fn may_begin(&self, hay: &[u8], i: usize) -> bool {
        let short = self.short[hay[i] as usize];
        if short & 3 != 0 {
            return true;
        }
        if short & LONG_BEGINS == 0 {
            return false;
        }
        let Some(b) = hay.get(i..i + 3) else {
            return false;
        };
        let bit = prefix_bit(b);
        let (w, m) = (bit / 64, 1u64 << (bit % 64));
        if self.prefixes[w] & m == 0 {
            return false;
        }
        if self.prefixes_short[w] & m != 0 {
            return true;
        }
        hay.get(i..i + 6).is_some_and(|b| {
            let bit = prefix6_bit(b);
            self.prefixes6[bit / 64] & (1 << (bit % 64)) != 0
        })
    }

    /// The first place at or after `from` (a char boundary of the text) where a term may
    /// start, in the text that `padded` holds between its pads ([`Matcher::pad_into`]).
    ///
    /// The start boundary ([`start_ok`]) is tested first: inside an ASCII word or a run of
    /// Hangul syllables (most of any text) nothing else is looked at, and the prefix tables
    /// ([`Matcher::may_begin`]) are only consulted at word starts and other chars. On x86-64
    /// 32 (AVX2) or 16 bytes are classified at a time ([`simd::starts32`], a superset of the
    /// places where the boundary holds), the prefix tables are read for all the places it marks
    /// without a branch per place ([`Matcher::may_begin_marks`]: which place passes is
    /// unpredictable, and mispredicted branches were a third of the scan), and only the
    /// survivors are tested exactly: the start boundary, and the prefix tables again only
    /// within six bytes of the end (there the marks hashed pad bytes). Keys are valid UTF-8:
    /// they begin on a char boundary (the prefix test is a hash and can hit inside a char).
    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn next_candidate(&self, padded: &[u8], from: usize) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present.
                return first_candidate(|v| unsafe { self.each_candidate_avx2(padded, from, v) });
            }
            first_candidate(|v| self.each_candidate_sse2(padded, from, v))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let n = padded.len() - PAD_BEFORE - PAD_AFTER;
            let hay = &padded[PAD_BEFORE..PAD_BEFORE + n];
            (from..n).find(|&i| hay[i] & 0xC0 != 0x80 && start_ok(hay, i) && self.may_begin(hay, i))
        }
    }

    /// [`Matcher::candidates`] sixteen bytes at a time.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn each_candidate_sse2(&self, padded: &[u8], from: usize, visit: impl FnMut(usize) -> usize) {
        let aob = self.ascii_other_begins;
        // SAFETY: SSE2 is part of the x86-64 baseline.
        self.candidates::<16>(
            padded,
            from,
            |h, at| unsafe { simd::starts16(h, at, aob) },
            visit,
        )
    }

    /// [`Matcher::candidates`] thirty-two bytes at a time: ~4% fewer instructions for the
    /// stage than sixteen (the classification is a fixed cost per chunk).
    ///
    /// # Safety
    ///
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn each_candidate_avx2(
        &self,
        padded: &[u8],
        from: usize,
        visit: impl FnMut(usize) -> usize,
    ) {
        let aob = self.ascii_other_begins;
        // SAFETY: this function's caller guarantees AVX2.
        self.candidates::<32>(
            padded,
            from,
            |h, at| unsafe { simd::starts32(h, at, aob) },
            visit,
        )
    }

    /// The candidate scan over chunks of `W` places classified by `starts` (see
    /// [`Matcher::next_candidate`]): calls `visit` at each candidate from `from` on, left to
    /// right; `visit(j)` returns the place after `j` where the scan goes on (`usize::MAX`
    /// stops it). A chunk is classified once, not again from the end of each match in it
    /// (that had the scan classify ~1.6 chunks per 32 bytes of the bench text). Inlined into
    /// each width's function, so that it is compiled with that width's CPU features.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn candidates<const W: usize>(
        &self,
        padded: &[u8],
        from: usize,
        starts: impl Fn(&[u8], usize) -> u32,
        mut visit: impl FnMut(usize) -> usize,
    ) {
        const _: () = assert!(PAD_BEFORE >= simd::BEHIND && PAD_AFTER >= simd::window(32));
        let n = padded.len() - PAD_BEFORE - PAD_AFTER;
        let hay = &padded[PAD_BEFORE..PAD_BEFORE + n];
        let mut i = from;
        'chunks: while i < n {
            let at = PAD_BEFORE + i;
            let mut marks =
                self.may_begin_marks(&padded[at..at + simd::window(W)], starts(padded, at));
            if n - i < W {
                marks &= (1u32 << (n - i)) - 1;
            }
            while marks != 0 {
                let j = i + marks.trailing_zeros() as usize;
                marks &= marks - 1;
                if start_ok(padded, PAD_BEFORE + j) && (j + 6 <= n || self.may_begin(hay, j)) {
                    let next = visit(j);
                    debug_assert!(next > j);
                    if next >= i + W {
                        i = next;
                        continue 'chunks;
                    }
                    // A place's mark does not depend on where its chunk starts: go on with
                    // this chunk's marks from `next` instead of classifying again from there.
                    marks &= u32::MAX << (next - i);
                }
            }
            i += W;
        }
    }

    /// The places `marks` of `window` (the six bytes from each place of a chunk, as
    /// [`simd::starts16`] or [`simd::starts32`] mark them) where the prefix tables say a key
    /// may begin: a superset of where [`Matcher::may_begin`] holds (equal where six bytes are
    /// left).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn may_begin_marks(&self, window: &[u8], mut marks: u32) -> u32 {
        let mut keep = 0u32;
        while marks != 0 {
            let k = marks.trailing_zeros() as usize;
            marks &= marks - 1;
            let b = &window[k..k + 6];
            let short = u64::from(self.short[b[0] as usize]);
            let p3 = prefix_bit(b);
            let in3 = self.prefixes[p3 / 64] >> (p3 % 64);
            let three_to_five = self.prefixes_short[p3 / 64] >> (p3 % 64);
            let p6 = prefix6_bit(b);
            let in6 = self.prefixes6[p6 / 64] >> (p6 % 64);
            let ok = ((short & 3) + 3) >> 2
                | (short >> LONG_BEGINS.trailing_zeros()) & in3 & (three_to_five | in6);
            keep |= ((ok & 1) as u32) << k;
        }
        keep
    }

    fn accept(&self, text: &str, start: usize, end: usize, slot: &Slot) -> Option<u32> {
        if !boundaries_ok(text, start, end) {
            return None;
        }
        if slot.list != NO_LIST {
            return Some(slot.list);
        }
        let id = slot.id;
        let matched = &text[start..end];
        let ok = |e: &Entry| e.exact.as_deref().is_none_or(|x| x == matched);
        let first = &self.first[id as usize];
        if ok(first) {
            return Some(first.list);
        }
        self.more.get(&id)?.iter().find(|e| ok(e)).map(|e| e.list)
    }
}

/// Sixteen (SSE2) or thirty-two (AVX2) bytes at a time: where a term may start (x86-64
/// only). SSE2 is part of the x86-64 baseline; AVX2 is detected at run time
/// ([`Matcher::next_candidate`]). One body, written once as a macro over the two widths'
/// intrinsics, so the two cannot drift apart; the tests hold both to the char rule.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// Bytes before the chunk [`starts16`] and [`starts32`] read.
    pub(super) const BEHIND: usize = 3;
    /// Bytes the candidate scan reads from a chunk's start of `w` places: six from each
    /// place (more than the one byte past the chunk the classification reads).
    pub(super) const fn window(w: usize) -> usize {
        w + 5
    }

    macro_rules! starts {
        (
            $(#[$attr:meta])* $name:ident, $w:literal, $load:ident, $set1:ident, $sub:ident,
            $cmpeq:ident, $min:ident, $or:ident, $and:ident, $andnot:ident, $movemask:ident
        ) => {
            /// Bit `k` is set when `hay[at + k]` may begin a term: a superset of the char
            /// starts where [`super::start_ok`] holds. Set at: an ASCII letter or digit not
            /// after an ASCII letter, digit or `_` (exact); a non-ASCII lead byte, except a
            /// Hangul syllable right after another one where both are surely syllables by
            /// their first two bytes (the rest of U+AC00..=U+D7A3 is left to the exact
            /// test); any other ASCII byte when `ascii_other` (some key begins with one).
            /// Continuation bytes are never set.
            ///
            /// Needs `at >= BEHIND` and `at + 1 + width <= hay.len()` (asserted).
            $(#[$attr])*
            #[inline]
            pub(super) unsafe fn $name(hay: &[u8], at: usize, ascii_other: bool) -> u32 {
                const W: usize = $w;
                assert!(at >= BEHIND && at + 1 + W <= hay.len());
                // SAFETY: the assert keeps the five unaligned loads (from `at - 3` to
                // `at + 1 + W`) inside `hay`; the caller has checked the CPU feature.
                unsafe {
                    let p = hay.as_ptr();
                    let load = |k: usize| $load(p.add(k).cast());
                    let cur = load(at);
                    let next = load(at + 1);
                    let prev1 = load(at - 1);
                    let prev2 = load(at - 2);
                    let prev3 = load(at - 3);
                    let in_range = |x, lo: u8, hi: u8| {
                        let t = $sub(x, $set1(lo as i8));
                        $cmpeq($min(t, $set1((hi - lo) as i8)), t)
                    };
                    let alnum = |x| {
                        $or(
                            in_range(x, b'0', b'9'),
                            in_range($or(x, $set1(0x20)), b'a', b'z'),
                        )
                    };
                    // A syllable for sure, from its lead byte `x` and the byte after it `y`:
                    // 0xEB/0xEC (U+B000..=U+CFFF), 0xEA from 0xB0 (U+AC00..), 0xED up to
                    // 0x9D (..=U+D77F).
                    let surely_syllable = |x, y| {
                        let ea = $and($cmpeq(x, $set1(0xEAu8 as i8)), in_range(y, 0xB0, 0xBF));
                        let ed = $and($cmpeq(x, $set1(0xEDu8 as i8)), in_range(y, 0x80, 0x9D));
                        $or(in_range(x, 0xEB, 0xEC), $or(ea, ed))
                    };
                    let cur_alnum = alnum(cur);
                    let prev_word = $or(alnum(prev1), $cmpeq(prev1, $set1(b'_' as i8)));
                    let word_start = $andnot(prev_word, cur_alnum);
                    let inside_run =
                        $and(surely_syllable(cur, next), surely_syllable(prev3, prev2));
                    let other_start = $andnot(inside_run, in_range(cur, 0xC0, 0xFF));
                    let mut marks = $movemask($or(word_start, other_start)) as u32;
                    if ascii_other {
                        // ASCII (top bit clear) and not a letter or digit.
                        let lanes = u32::MAX >> (32 - W);
                        let ascii = !($movemask(cur) as u32) & lanes;
                        marks |= ascii & !($movemask(cur_alnum) as u32);
                    }
                    marks
                }
            }
        };
    }

    starts!(
        starts16,
        16,
        _mm_loadu_si128,
        _mm_set1_epi8,
        _mm_sub_epi8,
        _mm_cmpeq_epi8,
        _mm_min_epu8,
        _mm_or_si128,
        _mm_and_si128,
        _mm_andnot_si128,
        _mm_movemask_epi8
    );
    starts!(
        #[target_feature(enable = "avx2")]
        starts32,
        32,
        _mm256_loadu_si256,
        _mm256_set1_epi8,
        _mm256_sub_epi8,
        _mm256_cmpeq_epi8,
        _mm256_min_epu8,
        _mm256_or_si256,
        _mm256_and_si256,
        _mm256_andnot_si256,
        _mm256_movemask_epi8
    );
}

/// The first place a candidate scan (`each`, given the visitor) visits.
#[cfg(all(test, target_arch = "x86_64"))]
fn first_candidate(each: impl FnOnce(&mut dyn FnMut(usize) -> usize)) -> Option<usize> {
    let mut first = None;
    each(&mut |p| {
        first = Some(p);
        usize::MAX
    });
    first
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `hay[i..]` begins with a Hangul syllable (U+AC00..=U+D7A3, three bytes led by
/// 0xEA..=0xED). At a char boundary of valid UTF-8, or three bytes before one, this reads
/// exactly one char.
#[inline]
fn syllable_at(hay: &[u8], i: usize) -> bool {
    match hay.get(i..i + 3) {
        Some(&[b0 @ 0xEA..=0xED, b1, b2]) => {
            let cp =
                (u32::from(b0 & 0x0F) << 12) | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
            (0xAC00..=0xD7A3).contains(&cp)
        }
        _ => false,
    }
}

/// Whether a term may start at byte `i` of `hay` (a char boundary of valid UTF-8): the start
/// half of [`boundaries_ok`], on bytes. Not after an ASCII letter, digit or `_` when the char
/// at `i` is an ASCII letter or digit; not after a Hangul syllable when it is one.
#[inline(always)]
fn start_ok(hay: &[u8], i: usize) -> bool {
    let b = hay[i];
    if b < 0x80 {
        !(b.is_ascii_alphanumeric() && i > 0 && is_word_byte(hay[i - 1]))
    } else {
        !(i >= 3 && syllable_at(hay, i) && syllable_at(hay, i - 3))
    }
}

/// The boundary rules of the module doc for a match `start..end` of `text`.
pub(crate) fn boundaries_ok(text: &str, start: usize, end: usize) -> bool {
    let m = &text[start..end];
    let (Some(first), Some(last)) = (m.chars().next(), m.chars().next_back()) else {
        return false;
    };
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    if first.is_ascii_alphanumeric()
        && before.is_some_and(|c| c.is_ascii() && is_word_byte(c as u8))
    {
        return false;
    }
    if last.is_ascii_alphanumeric() && after.is_some_and(|c| c.is_ascii() && is_word_byte(c as u8))
    {
        return false;
    }
    if is_syllable(first) && before.is_some_and(is_syllable) {
        return false;
    }
    if is_syllable(last) && after.is_some_and(is_syllable) {
        let rest = &text[end..];
        let run = rest
            .char_indices()
            .find(|&(_, c)| !is_syllable(c))
            .map_or(rest.len(), |(i, _)| i);
        return is_suffix_chain(&rest[..run]);
    }
    true
}

/// Interns detector names so findings borrow them (grows only with distinct list names).
fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = names.get(s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.insert(n);
    n
}

struct DenyMeta {
    label: Label,
    score: f32,
    detector: &'static str,
}

/// Finds the terms of deny lists. Build it with [`build`].
pub struct DictionaryDetector {
    matcher: Matcher,
    lists: Vec<DenyMeta>,
    terms: usize,
}

impl fmt::Debug for DictionaryDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictionaryDetector")
            .field(
                "lists",
                &self.lists.iter().map(|l| l.detector).collect::<Vec<_>>(),
            )
            .field("terms", &self.terms)
            .finish()
    }
}

impl DictionaryDetector {
    /// Number of distinct terms (after case folding where lists fold).
    pub fn len(&self) -> usize {
        self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms == 0
    }
}

impl Detector for DictionaryDetector {
    fn name(&self) -> &str {
        "dictionary"
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        self.matcher.for_each(text, |start, end, list| {
            let meta = &self.lists[list as usize];
            out.push(Finding {
                start,
                end,
                label: meta.label,
                subtype: None,
                detector: Cow::Borrowed(meta.detector),
                score: meta.score,
            });
        });
        Ok(())
    }
}

/// Allow lists: spans whose findings are dropped. Build it with [`build`].
pub struct AllowList {
    matcher: Matcher,
    labels: Vec<Option<Label>>,
    names: Vec<String>,
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowList")
            .field("lists", &self.names)
            .finish()
    }
}

impl AllowList {
    /// Drops from `findings[from..]` every finding that lies within an allow-listed match of
    /// `text` (and has the list's label, when the list has one). Scans only when there is
    /// something to drop.
    pub fn suppress(&self, text: &str, findings: &mut Vec<Finding>, from: usize) {
        if findings.len() <= from {
            return;
        }
        let mut spans: Vec<(usize, usize, Option<Label>)> = Vec::new();
        self.matcher.for_each(text, |s, e, list| {
            spans.push((s, e, self.labels[list as usize]));
        });
        if spans.is_empty() {
            return;
        }
        let mut i = from;
        while i < findings.len() {
            let f = &findings[i];
            let allowed = spans.iter().any(|&(s, e, label)| {
                s <= f.start && f.end <= e && label.is_none_or(|l| l == f.label)
            });
            if allowed {
                findings.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
}

/// Builds the deny detector and the allow list from `lists` (either is `None` when no list
/// of its kind has a term). Deny lists need a label and a score in `0..=1`.
pub fn build(
    lists: &[TermList],
) -> Result<(Option<DictionaryDetector>, Option<AllowList>), DictError> {
    let mut deny_meta = Vec::new();
    let mut deny_src = Vec::new();
    let mut allow_labels = Vec::new();
    let mut allow_names = Vec::new();
    let mut allow_src = Vec::new();
    for l in lists {
        match l.kind {
            ListKind::Deny => {
                let label = l.label.ok_or_else(|| DictError::NoLabel {
                    list: l.name.clone(),
                })?;
                if !(0.0..=1.0).contains(&l.score) {
                    return Err(DictError::BadScore {
                        list: l.name.clone(),
                    });
                }
                let idx = deny_meta.len() as u32;
                deny_meta.push(DenyMeta {
                    label,
                    score: l.score,
                    detector: intern(&format!("dict:{}", l.name)),
                });
                deny_src.push((idx, l.case_insensitive, l.terms.as_slice()));
            }
            ListKind::Allow => {
                let idx = allow_labels.len() as u32;
                allow_labels.push(l.label);
                allow_names.push(l.name.clone());
                allow_src.push((idx, l.case_insensitive, l.terms.as_slice()));
            }
        }
    }
    let deny = if deny_src.iter().any(|(_, _, t)| !t.is_empty()) {
        let matcher = Matcher::build("deny", &deny_src)?;
        Some(DictionaryDetector {
            terms: matcher.first.len(),
            matcher,
            lists: deny_meta,
        })
    } else {
        None
    };
    let allow = if allow_src.iter().any(|(_, _, t)| !t.is_empty()) {
        Some(AllowList {
            matcher: Matcher::build("allow", &allow_src)?,
            labels: allow_labels,
            names: allow_names,
        })
    } else {
        None
    };
    Ok((deny, allow))
}

/// Runs detectors and drops what an [`AllowList`] allows, so allow lists apply to every
/// detector, whatever its kind. Errors of the inner detectors pass through unchanged.
pub struct AllowFilter {
    inner: Vec<Arc<dyn Detector>>,
    allow: Arc<AllowList>,
}

impl AllowFilter {
    pub fn new(inner: Vec<Arc<dyn Detector>>, allow: Arc<AllowList>) -> Self {
        AllowFilter { inner, allow }
    }
}

impl Detector for AllowFilter {
    fn name(&self) -> &str {
        "allow-filter"
    }

    fn detect(&self, text: &str, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        let from = out.len();
        for d in &self.inner {
            d.detect(text, out)?;
        }
        self.allow.suppress(text, out, from);
        Ok(())
    }

    fn detect_many(&self, texts: &[&str], out: &mut [Vec<Finding>]) -> Result<(), DetectError> {
        let from: Vec<usize> = out.iter().map(Vec::len).collect();
        for d in &self.inner {
            d.detect_many(texts, out)?;
        }
        for ((text, out), from) in texts.iter().zip(out.iter_mut()).zip(from) {
            self.allow.suppress(text, out, from);
        }
        Ok(())
    }

    /// The highest priority any inner detector gives `finding`: the detector that found it
    /// knows best (a regex rule whose checksum passed is [`Priority::Validated`]), and the
    /// others answer no higher than its name says ([`Detector::priority`]'s contract). The
    /// default (the name alone) would demote validated findings whenever an allow list is
    /// configured.
    fn priority(&self, finding: &Finding) -> Priority {
        self.inner
            .iter()
            .map(|d| d.priority(finding))
            .max()
            .unwrap_or_else(|| Priority::from_detector_name(&finding.detector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, label: Label, kind: ListKind, ci: bool, terms: &[&str]) -> TermList {
        TermList {
            name: name.into(),
            label: Some(label),
            kind,
            case_insensitive: ci,
            score: DEFAULT_SCORE,
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn deny(lists: &[TermList]) -> DictionaryDetector {
        build(lists).unwrap().0.unwrap()
    }

    fn spans<'t>(d: &dyn Detector, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        d.detect(text, &mut out).unwrap();
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn ascii_word_boundaries() {
        let d = deny(&[list(
            "people",
            Label::Person,
            ListKind::Deny,
            false,
            &["Kim", "Acme", "Acme Corp", "C#"],
        )]);
        assert_eq!(spans(&d, "Kim and Kimberly"), vec!["Kim"]);
        assert_eq!(spans(&d, "xKim Kim2 Kim_ _Kim"), Vec::<&str>::new());
        assert_eq!(spans(&d, "(Kim), Kim's"), vec!["Kim", "Kim"]);
        // Longest first; a shorter term at the same start when the longer one fails.
        assert_eq!(spans(&d, "Acme Corp."), vec!["Acme Corp"]);
        assert_eq!(spans(&d, "Acme Corporation"), vec!["Acme"]);
        // Non-alphanumeric ends are not boundary-checked.
        assert_eq!(spans(&d, "we use C#6"), vec!["C#"]);
        // Hangul next to an ASCII term is a boundary.
        assert_eq!(spans(&d, "Acme에서 Kim님"), vec!["Acme", "Kim"]);
    }

    #[test]
    fn resumes_inside_a_rejected_match() {
        let d = deny(&[list(
            "x",
            Label::Custom,
            ListKind::Deny,
            false,
            &["ab cd", "cd ef"],
        )]);
        assert_eq!(spans(&d, "xab cd ef"), vec!["cd ef"]);
    }

    #[test]
    fn hangul_boundaries_and_particles() {
        let d = deny(&[list(
            "emp",
            Label::Person,
            ListKind::Deny,
            false,
            &["김민준", "민준", "삼성"],
        )]);
        for (text, want) in [
            ("김민준 과장", vec!["김민준"]),
            ("김민준은 출장", vec!["김민준"]),
            ("김민준에게서 받은", vec!["김민준"]),
            ("김민준님께서는", vec!["김민준"]),
            ("김민준과장님이", vec!["김민준"]),
            ("저는 김민준입니다.", vec!["김민준"]),
            ("김민준ㅋㅋ 김민준123", vec!["김민준", "김민준"]),
            // Other syllables after the term make it another word.
            ("김민준호 선수", vec![]),
            // A term is not found inside a longer Hangul word.
            ("이민준 씨", vec![]),
            ("삼성전자", vec![]),
            ("(삼성)과 삼성의", vec!["삼성", "삼성"]),
            ("민준아 밥 먹자", vec!["민준"]),
        ] {
            assert_eq!(spans(&d, text), want, "{text}");
        }
    }

    /// Terms shorter than the 3-byte prefix filter, and terms ending the text, are found;
    /// a prefix-filter hit inside a multi-byte char is not a start.
    #[test]
    fn short_terms_and_text_ends() {
        let d = deny(&[list(
            "s",
            Label::Custom,
            ListKind::Deny,
            true,
            &["Q", "go", "abc", "박", "x9z"],
        )]);
        assert_eq!(spans(&d, "Q"), vec!["Q"]);
        assert_eq!(spans(&d, "let's GO"), vec!["GO"]);
        assert_eq!(spans(&d, "ab abc"), vec!["abc"]);
        assert_eq!(spans(&d, "박"), vec!["박"]);
        assert_eq!(spans(&d, "대박 x9"), Vec::<&str>::new());
        assert_eq!(spans(&d, "한글 사이 X9Z,"), vec!["X9Z"]);
        assert_eq!(spans(&d, "qq goo abcd"), Vec::<&str>::new());
    }

    #[test]
    fn case_insensitivity_per_list() {
        let d = deny(&[
            list(
                "codes",
                Label::Custom,
                ListKind::Deny,
                true,
                &["Project Falcon"],
            ),
            list(
                "exact",
                Label::Organization,
                ListKind::Deny,
                false,
                &["ACME"],
            ),
        ]);
        assert_eq!(
            spans(&d, "PROJECT FALCON and project falcon; ACME not acme"),
            vec!["PROJECT FALCON", "project falcon", "ACME"]
        );
        let mut out = Vec::new();
        d.detect("ACME", &mut out).unwrap();
        assert_eq!(out[0].label, Label::Organization);
        assert_eq!(out[0].detector, "dict:exact");
        assert!(matches!(out[0].detector, Cow::Borrowed(_)));
        // Only the case-sensitive list has the term: fold-matched text is rejected.
        let d = deny(&[list("exact", Label::Custom, ListKind::Deny, false, &["Go"])]);
        assert_eq!(spans(&d, "go Go GO"), vec!["Go"]);
    }

    #[test]
    fn duplicate_terms_report_the_first_accepting_list() {
        let d = deny(&[
            list("a", Label::Person, ListKind::Deny, false, &["Lee"]),
            list("b", Label::Organization, ListKind::Deny, true, &["lee"]),
        ]);
        let mut out = Vec::new();
        d.detect("Lee LEE", &mut out).unwrap();
        let got: Vec<_> = out.iter().map(|f| (f.start, f.label)).collect();
        assert_eq!(got, vec![(0, Label::Person), (4, Label::Organization)]);
    }

    #[test]
    fn priority_is_what_the_finding_names_say() {
        let d = deny(&[
            list("staff", Label::Person, ListKind::Deny, false, &["김민준"]),
            list(
                "code-names",
                Label::Organization,
                ListKind::Deny,
                true,
                &["Blue Falcon"],
            ),
        ]);
        let mut found = Vec::new();
        d.detect("김민준 님, blue falcon 건", &mut found).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        for f in &found {
            assert_eq!(d.priority(f), Priority::from_detector_name(&f.detector));
            assert_eq!(d.priority(f), Priority::Dictionary);
        }
    }

    #[test]
    fn allow_list_suppresses_other_detectors() {
        let rules = crate::detect::regex::RegexDetector::from_files::<&str>(&[], true).unwrap();
        // An allow list without a label suppresses findings of every label.
        let mut own = list(
            "own",
            Label::Custom,
            ListKind::Allow,
            true,
            &["support@acme.co.kr"],
        );
        own.label = None;
        let (deny_d, allow) = build(&[
            own,
            list(
                "names",
                Label::Organization,
                ListKind::Deny,
                false,
                &["acme"],
            ),
        ])
        .unwrap();
        let inner: Vec<Arc<dyn Detector>> = vec![Arc::new(rules), Arc::new(deny_d.unwrap())];
        let f = AllowFilter::new(inner, Arc::new(allow.unwrap()));
        let text = "Mail Support@ACME.co.kr or kim@example.com";
        let engine = crate::detect::Engine::new(vec![Arc::new(f)]);
        let found = engine.detect(text).unwrap();
        let got: Vec<_> = found
            .iter()
            .map(|f| (&text[f.start..f.end], f.label))
            .collect();
        assert_eq!(got, vec![("kim@example.com", Label::Email)]);
        // A finding only partly inside an allowed span is kept.
        let found = engine.detect("xsupport@acme.co.kr").unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn allow_filter_keeps_each_detectors_priority() {
        let rules = crate::detect::regex::RegexDetector::from_files::<&str>(&[], true).unwrap();
        let names = deny(&[list(
            "staff",
            Label::Person,
            ListKind::Deny,
            false,
            &["Kim Minsu"],
        )]);
        let (_, allow) = build(&[list(
            "own",
            Label::Email,
            ListKind::Allow,
            false,
            &["support@acme.co.kr"],
        )])
        .unwrap();
        let inner: Vec<Arc<dyn Detector>> = vec![Arc::new(rules), Arc::new(names)];
        let f = AllowFilter::new(inner, Arc::new(allow.unwrap()));
        let mut out = Vec::new();
        f.detect(
            "주민번호 900101-1234568, 900101-1234567, AKIAIOSFODNN7EXAMPLE, Kim Minsu",
            &mut out,
        )
        .unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|x| (x.detector.as_ref(), f.priority(x)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("regex:kr_rrn", Priority::Validated),
                ("regex:kr_rrn:checksum_failed", Priority::Pattern),
                ("regex:aws_access_key_id", Priority::Pattern),
                ("dict:staff", Priority::Dictionary),
            ]
        );
    }

    #[test]
    fn allow_list_label_filter() {
        let (_, allow) = build(&[list(
            "hq",
            Label::Location,
            ListKind::Allow,
            false,
            &["서울특별시 중구 세종대로 110"],
        )])
        .unwrap();
        let allow = allow.unwrap();
        let text = "주소: 서울특별시 중구 세종대로 110";
        let s = text.find('서').unwrap();
        let mk = |label| Finding {
            start: s,
            end: text.len(),
            label,
            subtype: None,
            detector: Cow::Borrowed("t"),
            score: 0.9,
        };
        let mut v = vec![mk(Label::Location), mk(Label::Person)];
        allow.suppress(text, &mut v, 0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].label, Label::Person);
    }

    #[test]
    fn load_terms_file_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "\u{feff}# comment\n\n  Alpha  \r\nC# dev\n#x\n베타\n").unwrap();
        assert_eq!(
            load_terms("t", &p).unwrap(),
            vec!["Alpha", "C# dev", "베타"]
        );
        std::fs::write(&p, b"ok\nok\n\xff\n").unwrap();
        let e = load_terms("secret-list", &p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("secret-list"), "{e}");
        let e = load_terms("l", &dir.path().join("missing.txt")).unwrap_err();
        assert!(e.to_string().contains("missing.txt"), "{e}");
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.fault(), "internal");
    }

    #[test]
    fn deny_list_needs_label_and_valid_score() {
        let mut l = list("x", Label::Custom, ListKind::Deny, false, &["a"]);
        l.label = None;
        assert!(matches!(build(&[l]), Err(DictError::NoLabel { .. })));
        let mut l = list("x", Label::Custom, ListKind::Deny, false, &["a"]);
        l.score = 1.5;
        assert!(matches!(build(&[l]), Err(DictError::BadScore { .. })));
        // Debug never shows terms.
        let l = list("x", Label::Custom, ListKind::Deny, false, &["topsecret"]);
        assert!(!format!("{l:?}").contains("topsecret"));
    }

    /// What the module doc promises, written the slow and obvious way: at each char, the
    /// longest term (of any list whose case rule accepts it) that passes the boundary
    /// rules, reported for the first such list; then on after it, else one char on.
    fn reference(lists: &[TermList], text: &str) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let mut best: Option<(usize, &str)> = None;
            for end in (pos + 1..=text.len()).rev() {
                if !text.is_char_boundary(end) || !boundaries_ok(text, pos, end) {
                    continue;
                }
                let m = &text[pos..end];
                let hit = lists.iter().find(|l| {
                    l.terms.iter().any(|t| {
                        if l.case_insensitive {
                            t.eq_ignore_ascii_case(m)
                        } else {
                            t == m
                        }
                    })
                });
                if let Some(l) = hit {
                    best = Some((end, &l.name));
                    break;
                }
            }
            match best {
                Some((end, name)) => {
                    out.push((pos, end, format!("dict:{name}")));
                    pos = end;
                }
                None => pos += text[pos..].chars().next().map_or(1, char::len_utf8),
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// The hash-table matcher finds exactly what the reference finds, with keys of one,
        /// two and many bytes (past the length mask), mixed case rules and Hangul suffixes.
        #[test]
        fn matcher_agrees_with_the_reference(
            terms_a in proptest::collection::vec("[aB김민은 -]{1,4}", 1..8),
            terms_b in proptest::collection::vec("[Ab민준x]{1,3}", 0..5),
            long in proptest::bool::ANY,
            text in "[aAbB김민준은x -]{0,40}",
        ) {
            let mut a = terms_a;
            if long {
                // Longer than the length mask's 65 bytes: tried from the `long` list.
                a.push("김민".repeat(12));
                a.push("a".repeat(70));
            }
            let lists = vec![
                TermList { name: "ci".into(), label: Some(Label::Custom), kind: ListKind::Deny,
                    case_insensitive: true, score: 0.9, terms: a },
                TermList { name: "cs".into(), label: Some(Label::Person), kind: ListKind::Deny,
                    case_insensitive: false, score: 0.9, terms: terms_b },
            ];
            let text = if long { format!("{text} {}은 {} {}", "김민".repeat(12), "A".repeat(70), "김민".repeat(13)) } else { text };
            let d = deny(&lists);
            let mut got = Vec::new();
            d.detect(&text, &mut got).unwrap();
            let got: Vec<_> = got.iter().map(|f| (f.start, f.end, f.detector.to_string())).collect();
            proptest::prop_assert_eq!(got, reference(&lists, &text));
        }
    }

    /// The start half of [`boundaries_ok`], on chars: what [`start_ok`] must agree with.
    fn start_ok_chars(text: &str, start: usize) -> bool {
        let first = text[start..].chars().next().expect("a char at start");
        let Some(before) = text[..start].chars().next_back() else {
            return true;
        };
        !(first.is_ascii_alphanumeric() && before.is_ascii() && is_word_byte(before as u8)
            || is_syllable(first) && is_syllable(before))
    }

    proptest::proptest! {
        /// The byte-level start test agrees with the char-level rule at every char boundary
        /// (syllables at both ends of the range, jamo and other 3-byte chars led by the
        /// same bytes as syllables, ASCII words, `_`).
        #[test]
        fn start_ok_agrees_with_the_char_rule(
            text in "[a-zA-Z0-9_ .가각힣\u{ABFF}\u{D7A4}\u{D7FF}\u{3131}\u{1100}é中]{0,24}",
        ) {
            for (i, _) in text.char_indices() {
                proptest::prop_assert_eq!(start_ok(text.as_bytes(), i), start_ok_chars(&text, i), "at {}", i);
            }
        }
    }

    proptest::proptest! {
        /// The candidate scan (sixteen bytes at a time on x86-64) stops exactly where the
        /// start rule and the prefix tables allow, from every char boundary: syllables at
        /// both ends of the range and the non-syllables led by the same bytes, next to each
        /// other and to ASCII words, in texts long enough for the chunked path.
        #[test]
        fn candidate_scan_agrees_with_the_char_rule(
            terms in proptest::collection::vec("[aZ9_.가각힣힝\u{ABFF}\u{D7A4}é]{1,3}", 1..6),
            text in "[a-zA-Z0-9_ .가각힣힝\u{ABFF}\u{D7A4}\u{D7FF}\u{3131}é中]{0,64}",
        ) {
            let m = Matcher::build("deny", &[(0, true, &terms)]).unwrap();
            let mut padded = Vec::new();
            m.pad_into(&text, &mut padded);
            let hay = text.to_ascii_lowercase();
            let hay = hay.as_bytes();
            for (from, _) in text.char_indices() {
                let want = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .find(|&i| i >= from && start_ok_chars(&text, i) && m.may_begin(hay, i));
                proptest::prop_assert_eq!(m.next_candidate(&padded, from), want, "from {}", from);
                // Both widths, whichever `next_candidate` picks on this CPU.
                #[cfg(target_arch = "x86_64")]
                {
                    let sse2 = first_candidate(|v| m.each_candidate_sse2(&padded, from, v));
                    proptest::prop_assert_eq!(sse2, want);
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: AVX2 is present.
                        let got =
                            first_candidate(|v| unsafe { m.each_candidate_avx2(&padded, from, v) });
                        proptest::prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }

    /// A large synthetic dictionary builds in reasonable time and every probe is found.
    #[test]
    fn short_key_hash_and_mask_agree_with_the_general_ones() {
        // Every length 1..=16 over windows whose bytes past the key vary: the word-load
        // hash must be `key_hash` of the key alone.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 1..=INLINE {
            for _ in 0..64 {
                let mut window = [0u8; INLINE];
                for b in &mut window {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                assert_eq!(
                    key_hash_short(&window, len),
                    key_hash(&window[..len]),
                    "len {len}"
                );
                let masked = (u128::from_le_bytes(window) & low_bytes_mask(len)).to_le_bytes();
                assert_eq!(&masked[..len], &window[..len]);
                assert!(masked[len..].iter().all(|&b| b == 0), "len {len}");
            }
        }
    }

    #[test]
    fn large_dictionary_builds_and_matches() {
        let n = if cfg!(debug_assertions) {
            200_000
        } else {
            1_000_000
        };
        let terms: Vec<String> = (0..n).map(|i| format!("emp{i:07}x")).collect();
        let t0 = std::time::Instant::now();
        let d = deny(&[TermList {
            name: "big".into(),
            label: Some(Label::Person),
            kind: ListKind::Deny,
            case_insensitive: true,
            score: 0.9,
            terms,
        }]);
        let built = t0.elapsed();
        assert_eq!(d.len(), n);
        let text = format!(
            "to EMP0000000X and emp{:07}x, not emp0000001 nor xemp0000002x",
            n - 1
        );
        let want = format!("emp{:07}x", n - 1);
        assert_eq!(spans(&d, &text), vec!["EMP0000000X", want.as_str()]);
        assert!(built.as_secs() < 60, "{built:?}");
    }
}
