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
//! [`Session::find`] returns exactly the leftmost-first match that
//! `regex_automata::meta::Regex::search` returns for the same patterns from the same place
//! (tests hold it to that at every place of the rule examples and the corpus, searched
//! afresh, in order in one session, and as the scan loop visits them). The first stream is
//! that search's own forward pass (from `at`, unanchored). The second starts unanchored at
//! the midpoint of what is left (a char boundary; its start state sees the byte before, as
//! look-behind needs), so it sees every match that ends there or later, and records its
//! state after each byte. While neither reaches a tagged state both step together. Once the
//! first stream is past the midpoint it compares its state with the second's at the same
//! place: where they are equal, they are the same automaton in the same state from there on
//! (in an unanchored scan this is usually a few bytes, the end of the word in flight), so the
//! first stream jumps to where the second stopped: the end of the text with no match (the
//! answer is then none), or a tagged state (a match ahead: the first stream goes on from
//! there, splitting what is left afresh). When the first stream meets a match it goes on
//! alone exactly as the library's forward search does (longest preferred extent, until the
//! automaton dies). The match's start then comes from the reverse lazy DFA, anchored at its
//! end as the library does, but to the pattern the forward pass found, not to all of them
//! (the same start: the match is the pattern's from the leftmost place where any pattern
//! matches, so no pattern, that one included, has a match ending there that starts
//! earlier). The reverse automaton of one pattern has few states, which stay in the caches;
//! that of all ~100 patterns runs through many more (~270 ns per match of ~22 bytes on
//! the bench text, half of that now).
//!
//! The searches of one text share a [`Session`]: one cache from the pool, and the second
//! stream's work, which does not depend on where a search starts. The next search (from the
//! end of the match before, or its start + 1) takes it up where it was left, so on a text with
//! many matches each byte is still stepped about once, not once by each stream for every
//! search (−14% on 2 KB messages).
//!
//! A lazy state id names one state only until the cache is cleared: when it is cleared while
//! two streams are in flight (or between the searches of a session, for the second stream's
//! record), or the lazy DFA gives up or quits, [`Session::find`] answers `Err` and the caller
//! runs the meta regex instead; the session's next search starts afresh.
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

/// The second stream's scan of one text, kept across the searches of that text: an
/// unanchored scan from `mid`, having read `text[mid..mid + done]` with `states[i]` its state
/// after `text[mid + i]`.
struct Ahead {
    mid: usize,
    /// Its state after `text[mid + done - 1]` (its start state when `done` is 0).
    sb: LazyStateID,
    done: usize,
    end: AheadEnd,
    /// The cache's clear count when it was started: after a clear its states name nothing.
    clears: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AheadEnd {
    /// It can read on.
    Open,
    /// Its next step is a tagged state (a match, the automaton's end): it stops here.
    Blocked,
    /// It read the whole text and the end of input: no match from `mid` on.
    Clean,
}

impl SplitScan {
    /// The patterns given to the meta regex, or `None` when their lazy DFAs cannot be built.
    pub(super) fn new(patterns: &[String], cache_bytes: usize) -> Option<SplitScan> {
        let re = Regex::builder()
            .dfa(
                DFA::config()
                    .match_kind(MatchKind::LeftmostFirst)
                    .cache_capacity(cache_bytes)
                    .starts_for_each_pattern(true)
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

    /// The searches of `text`: one cache for all of them, and the second stream's work kept
    /// from one search to the next.
    pub(super) fn session<'a>(&'a self, text: &'a str) -> Session<'a> {
        Session {
            scan: self,
            guard: self.pool.get(),
            text,
            ahead: None,
        }
    }
}

/// The searches of one text ([`SplitScan::session`]).
pub(super) struct Session<'a> {
    scan: &'a SplitScan,
    guard: regex_automata::util::pool::PoolGuard<'a, SplitCache, MakeCache>,
    text: &'a str,
    ahead: Option<Ahead>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.guard.states.capacity() > KEEP_STATES {
            self.guard.states = Vec::new();
        }
    }
}

impl Session<'_> {
    /// The leftmost-first match in `text[at..]` (`at` a char boundary), as the meta regex's
    /// search of the same range finds it. After `Err` the session searches afresh.
    pub(super) fn find(&mut self, at: usize) -> Result<Option<Match>, Fallback> {
        let found = self.forward(at);
        if found.is_err() {
            self.ahead = None;
        }
        let Some(end) = found? else {
            return Ok(None);
        };
        if end.offset() == at {
            // Patterns never match the empty string (the loader checks), but stay exact.
            return Ok(Some(Match::new(end.pattern(), at..at)));
        }
        let back = Input::new(self.text)
            .span(at..end.offset())
            .anchored(Anchored::Pattern(end.pattern()))
            .earliest(false);
        let start = self
            .scan
            .re
            .reverse()
            .try_search_rev(self.guard.cache.reverse_mut(), &back)
            .map_err(|_| Fallback)?
            .ok_or(Fallback)?;
        Ok(Some(Match::new(
            end.pattern(),
            start.offset()..end.offset(),
        )))
    }

    /// The end of the leftmost-first match in `text[at..]` (see the module docs).
    fn forward(&mut self, at: usize) -> Result<Option<HalfMatch>, Fallback> {
        let text = self.text;
        let hay = text.as_bytes();
        let len = hay.len();
        let dfa = self.scan.re.forward();
        let sc = &mut *self.guard;
        let cache = sc.cache.forward_mut();
        let states = &mut sc.states;
        let mut clears = cache.clear_count();
        // The first stream, the true search: state `sid` having read `hay[..pos]`.
        let mut sid = dfa
            .start_state_forward(cache, &Input::new(text).range(at..))
            .map_err(|_| Fallback)?;
        let mut pos = at;
        if cache.clear_count() != clears {
            self.ahead = None;
            clears = cache.clear_count();
        }
        if sid.is_tagged() {
            // Start states are not tagged without a prefilter; the unchecked steps below
            // need untagged ids, so stay exact (and safe) if one is.
            return Err(Fallback);
        }
        loop {
            let usable = self
                .ahead
                .as_ref()
                .is_some_and(|r| r.clears == clears && pos < r.mid + r.done);
            if !usable {
                self.ahead = None;
                if len - pos < SPLIT_BYTES {
                    return alone(dfa, cache, hay, sid, pos);
                }
                let mut mid = pos + (len - pos).div_ceil(2);
                while !text.is_char_boundary(mid) {
                    mid += 1;
                }
                let sb = dfa
                    .start_state_forward(cache, &Input::new(text).range(mid..))
                    .map_err(|_| Fallback)?;
                if cache.clear_count() != clears {
                    // `sid` names nothing now.
                    return Err(Fallback);
                }
                if sb.is_tagged() {
                    // Start states are not tagged without a prefilter; stay safe if they are.
                    return alone(dfa, cache, hay, sid, pos);
                }
                // Every entry is written before it is read: grow the buffer, never refill it.
                if states.len() < len - mid {
                    states.resize(len - mid, sb);
                }
                self.ahead = Some(Ahead {
                    mid,
                    sb,
                    done: 0,
                    end: AheadEnd::Open,
                    clears,
                });
            }
            let r = self.ahead.as_mut().expect("set above");
            let st = &mut states[..len - r.mid];
            if pos < r.mid {
                // Both streams, until the first reaches `mid` or the second stops.
                if r.end == AheadEnd::Open {
                    let n = (r.mid - pos).min(len - r.mid - r.done);
                    let (a, b) = (&hay[pos..pos + n], &hay[r.mid + r.done..r.mid + r.done + n]);
                    let (bs, base) = (&mut st[r.done..r.done + n], pos);
                    for i in 0..n {
                        // SAFETY: `sid` and `r.sb` are untagged (checked when they were set:
                        // the start states above, `na`/`nb` here, `step`'s results) and from
                        // this cache since its last clear (a clear while they live ends the
                        // search in `Fallback`; `r` is dropped when `clears` moved), which
                        // is what the unchecked transition needs to stay in `trans`.
                        let (na, nb) = unsafe {
                            (
                                dfa.next_state_untagged_unchecked(cache, sid, a[i]),
                                dfa.next_state_untagged_unchecked(cache, r.sb, b[i]),
                            )
                        };
                        if !(na.is_tagged() | nb.is_tagged()) {
                            bs[i] = nb;
                            sid = na;
                            r.sb = nb;
                            continue;
                        }
                        // The rare tagged state: compute what is unknown, one stream after
                        // the other. A cache clear invalidates the other stream's state: then
                        // the meta regex searches.
                        let na = known(dfa, cache, sid, na, a[i], clears)?;
                        if na.is_tagged() {
                            // A match (or the automaton's end): the first stream goes on. The
                            // second one's work so far stays for the next search.
                            r.done += i;
                            return alone(dfa, cache, hay, na, base + i + 1);
                        }
                        sid = na;
                        let nb = known(dfa, cache, r.sb, nb, b[i], clears)?;
                        if nb.is_tagged() {
                            // A match ahead: the first stream finds it, or an earlier one.
                            r.done += i;
                            r.end = AheadEnd::Blocked;
                            pos = base + i + 1;
                            break;
                        }
                        bs[i] = nb;
                        r.sb = nb;
                    }
                    if r.end == AheadEnd::Open {
                        r.done += n;
                        pos = base + n;
                        if r.mid + r.done == len {
                            let end = dfa.next_eoi_state(cache, r.sb).map_err(|_| Fallback)?;
                            // (The end of input leads to the dead state where nothing matched.)
                            r.end = if end.is_match() || end.is_quit() {
                                AheadEnd::Blocked
                            } else {
                                AheadEnd::Clean
                            };
                            if cache.clear_count() != clears {
                                return Err(Fallback);
                            }
                        }
                    }
                }
                // The first stream alone up to `mid`: the second stopped, or is further on.
                while pos < r.mid {
                    let x = hay[pos];
                    let n = step(dfa, cache, sid, x, clears)?;
                    if n.is_tagged() {
                        return alone(dfa, cache, hay, n, pos + 1);
                    }
                    sid = n;
                    pos += 1;
                }
            }
            // The first stream over what the second has read, until it is where the second
            // one was: from there on they are the same automaton in the same state, so the
            // first goes on from where the second stopped.
            while pos < r.mid + r.done {
                let y = hay[pos];
                let n = step(dfa, cache, sid, y, clears)?;
                if n.is_tagged() {
                    return alone(dfa, cache, hay, n, pos + 1);
                }
                sid = n;
                if sid == st[pos - r.mid] {
                    sid = r.sb;
                    pos = r.mid + r.done;
                    if r.end == AheadEnd::Clean {
                        return Ok(None);
                    }
                    break;
                }
                pos += 1;
            }
            // The second stream's work is used up: split what is left afresh.
        }
    }
}

/// The transition from `sid` on `b`, computed when not yet known; fails when that cleared
/// the cache (`clears` was the count before).
#[inline(always)]
fn step(
    dfa: &DFA,
    cache: &mut Cache,
    sid: LazyStateID,
    b: u8,
    clears: usize,
) -> Result<LazyStateID, Fallback> {
    known(
        dfa,
        cache,
        sid,
        dfa.next_state_untagged(cache, sid, b),
        b,
        clears,
    )
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
