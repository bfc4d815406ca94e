//! The regex detector's unanchored search, with the forward lazy DFA stepped over the two
//! halves of the text at once.
//!
//! # Why
//!
//! The regex detector's scan is one lazy-DFA transition per byte (no prefilter applies to a
//! set of ~100 patterns, see `benches/rule_costs.rs`), and a transition is one load whose
//! address depends on the load before it: one scan runs at the cache's latency, not its
//! bandwidth. Two streams stepped in the same loop are two independent chains the CPU
//! overlaps: ~1.6x the bytes per second of one on the bench text (a scratch program, same
//! process). Most texts, and the tail of most texts after their last match, hold no match,
//! and there the second stream lets the search stop at the midpoint.
//!
//! # How
//!
//! [`SplitScan::find`] returns exactly the leftmost-first match that
//! `regex_automata::meta::Regex::search` returns for the same patterns from the same place
//! (a test holds it to that at every place of the rule examples and the corpus). The first
//! stream is that search's own forward pass (from `at`, unanchored). The second starts
//! unanchored at the midpoint (a char boundary; its start state sees the byte before, as
//! look-behind needs), so it sees every match that ends there or later, and records its
//! state after each byte. While neither reaches a match state both step together. When the
//! second stream reaches the end with no match, the first goes on past the midpoint until its
//! state equals the second's at the same place: from there on the two are the same automaton
//! in the same state, so there is no match (in an unanchored scan this is usually a few bytes,
//! the end of the word in flight). When either meets a match, the second is dropped and the
//! first goes on alone exactly as the library's forward search does (longest preferred
//! extent, until the automaton dies). The match's start then comes from the reverse lazy DFA,
//! anchored at its end, as the library does.
//!
//! A lazy state id names one state only until the cache is cleared: when it is cleared while
//! two streams are in flight, or the lazy DFA gives up or quits, [`SplitScan::find`] answers
//! `Err` and the caller runs the meta regex instead.
//!
//! # Limits
//!
//! A second pair of lazy DFAs (forward, reverse) beside the meta regex's, each cache up to
//! the same ceiling per thread; the meta regex's own are then used only for anchored searches
//! and the fallback. Where the lazy DFAs cannot be built for the patterns (the meta regex
//! falls back to other engines then), there is no split scan.

use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::regex::{self as hregex, Regex};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, HalfMatch, Input, Match, MatchKind};

/// Texts shorter than this are searched by one stream: splitting costs more than it saves.
const SPLIT_BYTES: usize = 48;
/// A per-thread state buffer grown past this many states (a huge text) is dropped after use.
const KEEP_STATES: usize = 1 << 16;

type MakeCache = Box<dyn Fn() -> SplitCache + Send + Sync + RefUnwindSafe + UnwindSafe>;

/// See the module docs.
pub(super) struct SplitScan {
    re: std::sync::Arc<Regex>,
    pool: Pool<SplitCache, MakeCache>,
}

/// One thread's lazy-DFA caches and the second stream's states.
struct SplitCache {
    cache: hregex::Cache,
    states: Vec<LazyStateID>,
}

/// The search cannot give the answer here: the caller asks the meta regex.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Fallback;

/// How the two streams stopped.
enum Split {
    /// No match anywhere.
    None,
    /// The first stream must go on alone from this state, having read the text up to this
    /// offset (the state may be a match state, not yet recorded).
    Alone(LazyStateID, usize),
}

impl SplitScan {
    /// The search for `patterns` (as given to the meta regex), or `None` when its lazy DFAs
    /// cannot be built for them.
    pub(super) fn new(patterns: &[String], cache_bytes: usize) -> Option<SplitScan> {
        let re = Regex::builder()
            .dfa(
                DFA::config()
                    .match_kind(MatchKind::LeftmostFirst)
                    .cache_capacity(cache_bytes)
                    .unicode_word_boundary(true),
            )
            .build_many(patterns)
            .ok()?;
        let re = std::sync::Arc::new(re);
        let for_pool = re.clone();
        let make: MakeCache = Box::new(move || SplitCache {
            cache: for_pool.create_cache(),
            states: Vec::new(),
        });
        Some(SplitScan {
            re,
            pool: Pool::new(make),
        })
    }

    /// The leftmost-first match in `text[at..]` (`at` a char boundary), as the meta regex's
    /// search of the same range finds it.
    pub(super) fn find(&self, text: &str, at: usize) -> Result<Option<Match>, Fallback> {
        let mut guard = self.pool.get();
        let sc = &mut *guard;
        let found = self.forward(text, at, sc);
        if sc.states.capacity() > KEEP_STATES {
            sc.states = Vec::new();
        }
        let Some(end) = found? else {
            return Ok(None);
        };
        if end.offset() == at {
            // Patterns never match the empty string (the loader checks), but stay exact.
            return Ok(Some(Match::new(end.pattern(), at..at)));
        }
        let back = Input::new(text)
            .span(at..end.offset())
            .anchored(Anchored::Yes)
            .earliest(false);
        let start = self
            .re
            .reverse()
            .try_search_rev(sc.cache.reverse_mut(), &back)
            .map_err(|_| Fallback)?
            .ok_or(Fallback)?;
        Ok(Some(Match::new(
            end.pattern(),
            start.offset()..end.offset(),
        )))
    }

    /// The end of the leftmost-first match in `text[at..]`.
    fn forward(
        &self,
        text: &str,
        at: usize,
        sc: &mut SplitCache,
    ) -> Result<Option<HalfMatch>, Fallback> {
        let dfa = self.re.forward();
        let cache = sc.cache.forward_mut();
        let start = dfa
            .start_state_forward(cache, &Input::new(text).range(at..))
            .map_err(|_| Fallback)?;
        if text.len() - at < SPLIT_BYTES {
            return alone(dfa, cache, text.as_bytes(), start, at);
        }
        match split(dfa, cache, &mut sc.states, text, at, start)? {
            Split::None => Ok(None),
            Split::Alone(sid, pos) => alone(dfa, cache, text.as_bytes(), sid, pos),
        }
    }
}

/// Both streams (see the module docs), from state `sa` at `at`.
fn split(
    dfa: &DFA,
    cache: &mut Cache,
    states: &mut Vec<LazyStateID>,
    text: &str,
    at: usize,
    mut sa: LazyStateID,
) -> Result<Split, Fallback> {
    let hay = text.as_bytes();
    let mut mid = at + (hay.len() - at).div_ceil(2);
    while !text.is_char_boundary(mid) {
        mid += 1;
    }
    let clears = cache.clear_count();
    let mut sb = dfa
        .start_state_forward(cache, &Input::new(text).range(mid..))
        .map_err(|_| Fallback)?;
    if sa.is_tagged() || sb.is_tagged() || cache.clear_count() != clears {
        // Start states are not tagged without a prefilter; stay safe if they ever are.
        return Ok(Split::Alone(sa, at));
    }
    // `mid` is at or after the true middle: the first half is the longer, by at most 3.
    let (a, b) = (&hay[at..mid], &hay[mid..]);
    let k = b.len();
    states.clear();
    states.resize(k, sb);
    let (a2, st) = (&a[..k], &mut states[..]);
    let mut i = 0;
    // Invariant at the top: `sa`, `sb` untagged, having read up to `at + i` and `mid + i`.
    while i < k {
        let na = dfa.next_state_untagged(cache, sa, a2[i]);
        let nb = dfa.next_state_untagged(cache, sb, b[i]);
        if !(na.is_tagged() | nb.is_tagged()) {
            st[i] = nb;
            sa = na;
            sb = nb;
            i += 1;
            continue;
        }
        // The rare tagged state: compute what is unknown, one stream after the other. A
        // cache clear invalidates the other stream's state: then the meta regex searches.
        let na = known(dfa, cache, sa, na, a2[i], clears)?;
        if na.is_tagged() {
            // A match in the first half (or the automaton's end): the first stream goes on.
            return Ok(Split::Alone(na, at + i + 1));
        }
        sa = na;
        let nb = known(dfa, cache, sb, nb, b[i], clears)?;
        if nb.is_tagged() {
            // A match in the second half: the first stream finds it, or an earlier one.
            return Ok(Split::Alone(sa, at + i + 1));
        }
        st[i] = nb;
        sb = nb;
        i += 1;
    }
    for (j, &x) in a.iter().enumerate().skip(k) {
        let n = known(
            dfa,
            cache,
            sa,
            dfa.next_state_untagged(cache, sa, x),
            x,
            clears,
        )?;
        if n.is_tagged() {
            return Ok(Split::Alone(n, at + j + 1));
        }
        sa = n;
    }
    let end = dfa.next_eoi_state(cache, sb).map_err(|_| Fallback)?;
    // (The end of input leads to the dead state where nothing matched.)
    if end.is_match() || end.is_quit() || cache.clear_count() != clears {
        return Ok(Split::Alone(sa, mid));
    }
    // The first stream over the second half, until it is where the second one was.
    for (j, (&y, &there)) in b.iter().zip(states.iter()).enumerate() {
        let n = known(
            dfa,
            cache,
            sa,
            dfa.next_state_untagged(cache, sa, y),
            y,
            clears,
        )?;
        if n.is_tagged() {
            return Ok(Split::Alone(n, mid + j + 1));
        }
        sa = n;
        if sa == there {
            return Ok(Split::None);
        }
    }
    // Never the same state: the first stream has read the whole text with no match; only
    // the end of input is left.
    Ok(Split::Alone(sa, hay.len()))
}

/// `next` (the untagged-path transition from `sid` on `b`) made known: computed when it was
/// not yet. Fails when that cleared the cache (`clears` was the count before).
#[inline(always)]
fn known(
    dfa: &DFA,
    cache: &mut Cache,
    sid: LazyStateID,
    next: LazyStateID,
    b: u8,
    clears: usize,
) -> Result<LazyStateID, Fallback> {
    if !next.is_unknown() {
        return Ok(next);
    }
    let next = dfa.next_state(cache, sid, b).map_err(|_| Fallback)?;
    if cache.clear_count() != clears {
        return Err(Fallback);
    }
    Ok(next)
}

/// The library's forward leftmost-first search (`hybrid::search::find_fwd`, no prefilter),
/// from state `sid` having read `hay[..pos]` (`sid` may be a match state).
fn alone(
    dfa: &DFA,
    cache: &mut Cache,
    hay: &[u8],
    mut sid: LazyStateID,
    mut pos: usize,
) -> Result<Option<HalfMatch>, Fallback> {
    let mut mat = None;
    // A tagged `sid` was reached by reading `hay[pos - 1]` (start states are not tagged):
    // classify it as the loop below does.
    if sid.is_tagged() {
        if sid.is_match() {
            mat = Some(HalfMatch::new(dfa.match_pattern(cache, sid, 0), pos - 1));
        } else if sid.is_dead() {
            return Ok(mat);
        } else if sid.is_quit() {
            return Err(Fallback);
        }
    }
    while pos < hay.len() {
        let b = hay[pos];
        let mut next = if sid.is_tagged() {
            dfa.next_state(cache, sid, b).map_err(|_| Fallback)?
        } else {
            dfa.next_state_untagged(cache, sid, b)
        };
        if next.is_unknown() {
            next = dfa.next_state(cache, sid, b).map_err(|_| Fallback)?;
        }
        sid = next;
        if sid.is_tagged() {
            if sid.is_match() {
                mat = Some(HalfMatch::new(dfa.match_pattern(cache, sid, 0), pos));
            } else if sid.is_dead() {
                return Ok(mat);
            } else if sid.is_quit() {
                return Err(Fallback);
            }
        }
        pos += 1;
    }
    let end = dfa.next_eoi_state(cache, sid).map_err(|_| Fallback)?;
    if end.is_match() {
        mat = Some(HalfMatch::new(dfa.match_pattern(cache, end, 0), hay.len()));
    } else if end.is_quit() {
        return Err(Fallback);
    }
    Ok(mat)
}
