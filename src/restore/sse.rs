//! Restoring an SSE stream (`text/event-stream`) as it flows, event by event.
//!
//! [`SseRestorer::push`] takes upstream bytes split anywhere (inside a UTF-8 character, between
//! `\r` and `\n`) and returns the bytes to send to the client now: every event that is complete
//! (ended by a blank line). Lines may end in `\n`, `\r\n` or `\r`; output lines end in `\n`.
//! Comment (`: ping`), `event:`, `id:`, `retry:` and unknown lines are kept as they came, in
//! order. An event whose data is unchanged is re-sent byte for byte (only line endings
//! normalised); a changed one gets its data as one `data:` line of compact JSON.
//!
//! Per event whose data is JSON, [`crate::restore::formats`] says which strings are deltas of
//! which stream: those go through that stream's [`StreamText`] (so a placeholder split across
//! events is restored, and only a possible placeholder prefix is held back); every other string
//! is restored whole (`arguments` / `partial_json` as JSON source). When a stream ends, its
//! held-back text is appended to the delta the ending event carries for it, or, when it carries
//! none, sent just before it in a copy of the stream's last delta event (see
//! [`crate::restore::formats::template`]). `[DONE]` and end of input flush every stream.
//!
//! Choices made:
//! * An event whose delta became empty because its text is held back is still sent, with an
//!   empty delta (keeps the client's timing and event count; SDKs accept empty deltas).
//! * Data that is not UTF-8 or not JSON (`[DONE]`) passes through as is.
//! * Truncated input: at [`SseRestorer::finish`], a last event without its blank line is
//!   processed as complete and sent terminated, so the client does not lose its text.
//! * Bound: a line or event over `max_event_bytes` ([`DEFAULT_MAX_EVENT_BYTES`]) fails the
//!   stream with [`RestoreError::EventTooLarge`]; held-back text is at most
//!   [`crate::mask::MAX_PLACEHOLDER_LEN`] bytes per delta stream.

use crate::mask::placeholder::{parse_at, Parse};
use crate::mask::Mapping;
use crate::restore::formats::{self, DeltaLoc, Ending, Seg, StreamFormat, StreamKey};
use crate::restore::json::restore_value;
use crate::restore::text::{Escape, StreamText};
use crate::restore::{RestoreError, RestoreStats};
use bytes::Bytes;
use memchr::memchr2;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest SSE line or event kept in memory (a Responses `response.completed` event repeats
/// the whole answer, so this is generous).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 32 << 20;

/// Splits bytes into events (lists of lines without their terminators).
#[derive(Debug)]
struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    lines: Vec<Vec<u8>>,
    event_bytes: usize,
    started: bool,
    max: usize,
}

impl Parser {
    fn new(max: usize) -> Self {
        Parser {
            line: Vec::new(),
            after_cr: false,
            lines: Vec::new(),
            event_bytes: 0,
            started: false,
            max,
        }
    }

    fn feed(
        &mut self,
        mut rest: &[u8],
        events: &mut Vec<Vec<Vec<u8>>>,
    ) -> Result<(), RestoreError> {
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(i) = memchr2(b'\n', b'\r', rest) {
            self.append(&rest[..i])?;
            let cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            self.end_line(events);
            if cr {
                if rest.is_empty() {
                    self.after_cr = true;
                } else if rest[0] == b'\n' {
                    rest = &rest[1..];
                }
            }
        }
        self.append(rest)
    }

    fn append(&mut self, b: &[u8]) -> Result<(), RestoreError> {
        if self.event_bytes + self.line.len() + b.len() > self.max {
            return Err(RestoreError::EventTooLarge { limit: self.max });
        }
        self.line.extend_from_slice(b);
        Ok(())
    }

    fn end_line(&mut self, events: &mut Vec<Vec<Vec<u8>>>) {
        let mut line = std::mem::take(&mut self.line);
        if !self.started {
            self.started = true;
            if line.starts_with("\u{feff}".as_bytes()) {
                line.drain(..3);
            }
        }
        if line.is_empty() {
            if !self.lines.is_empty() {
                events.push(std::mem::take(&mut self.lines));
                self.event_bytes = 0;
            }
        } else {
            self.event_bytes += line.len() + 1;
            self.lines.push(line);
        }
    }

    /// End of input: the pending line and event, if any.
    fn finish(&mut self, events: &mut Vec<Vec<Vec<u8>>>) {
        self.after_cr = false;
        if !self.line.is_empty() {
            self.end_line(events);
        }
        if !self.lines.is_empty() {
            events.push(std::mem::take(&mut self.lines));
            self.event_bytes = 0;
        }
    }
}

/// Whether `data` has a `[` that starts a placeholder, or text that may still become one when
/// the stream goes on. JSON's own arrays (`[{`, `["`, `[1`, `[]`, `[null`) do not; a
/// placeholder's text is cut at the end of its JSON string (`"` or an escape `\`), so a
/// delta ending in `[EMA` counts.
fn may_hold_placeholder(data: &[u8]) -> bool {
    memchr::memchr_iter(b'[', data).any(|i| {
        let rest = &data[i..];
        let end = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
        !matches!(parse_at(&rest[..end]), Parse::No)
    })
}

/// Field name and value of an SSE line (`None` for a comment).
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.first() == Some(&b':') {
        return None;
    }
    match line.iter().position(|&b| b == b':') {
        Some(i) => {
            let v = &line[i + 1..];
            Some((&line[..i], v.strip_prefix(b" ").unwrap_or(v)))
        }
        None => Some((line, &[][..])),
    }
}

/// Takes the held-back text of a stream into the ending event; false when that event does
/// not carry the stream.
type AppendFn<'a> = dyn FnMut(StreamKey, &str) -> bool + 'a;

/// An event to send as the carrier of held-back text.
#[derive(Debug)]
struct Template {
    /// The `event:` lines of the original event.
    head: Vec<Vec<u8>>,
    value: Value,
    path: Vec<Seg>,
}

#[derive(Debug)]
struct Stream {
    key: StreamKey,
    text: StreamText,
    escape: Escape,
    template: Option<Template>,
}

/// Restores one SSE response stream. See the module doc.
#[derive(Debug)]
pub struct SseRestorer {
    format: StreamFormat,
    mapping: Arc<Mapping>,
    stats: RestoreStats,
    parser: Parser,
    streams: Vec<Stream>,
    index: HashMap<StreamKey, usize>,
    failed: bool,
}

impl SseRestorer {
    pub fn new(format: StreamFormat, mapping: Arc<Mapping>) -> Self {
        Self::with_limit(format, mapping, DEFAULT_MAX_EVENT_BYTES)
    }

    /// Like [`new`](Self::new) with another bound on one line or event, in bytes.
    pub fn with_limit(format: StreamFormat, mapping: Arc<Mapping>, max_event_bytes: usize) -> Self {
        SseRestorer {
            format,
            mapping,
            stats: RestoreStats::default(),
            parser: Parser::new(max_event_bytes),
            streams: Vec::new(),
            index: HashMap::new(),
            failed: false,
        }
    }

    /// What was restored so far.
    pub fn stats(&self) -> RestoreStats {
        self.stats
    }

    /// Takes upstream bytes; returns the bytes to send to the client now.
    ///
    /// After an error the stream is broken: later calls fail the same way.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Bytes, RestoreError> {
        if self.failed {
            return Err(RestoreError::EventTooLarge {
                limit: self.parser.max,
            });
        }
        let mut events = Vec::new();
        if let Err(e) = self.parser.feed(bytes, &mut events) {
            self.failed = true;
            return Err(e);
        }
        let mut out = Vec::new();
        for ev in events {
            self.event(ev, &mut out);
        }
        Ok(Bytes::from(out))
    }

    /// Upstream ended: the last (possibly unterminated) event and all held-back text.
    pub fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        if self.failed {
            return Bytes::new();
        }
        let mut events = Vec::new();
        self.parser.finish(&mut events);
        for ev in events {
            self.event(ev, &mut out);
        }
        self.end(&Ending::All, None, &mut out);
        Bytes::from(out)
    }

    fn event(&mut self, lines: Vec<Vec<u8>>, out: &mut Vec<u8>) {
        let mut data: Option<Vec<u8>> = None;
        for l in &lines {
            if let Some((b"data", v)) = field(l) {
                match &mut data {
                    Some(d) => {
                        d.push(b'\n');
                        d.extend_from_slice(v);
                    }
                    None => data = Some(v.to_vec()),
                }
            }
        }
        // Fast path: with nothing held back, an event without '[' cannot change (no
        // placeholder in it, no held text to flush at an ending): send it as it came,
        // without parsing it. This is most events of a stream.
        if let Some(d) = &data {
            if !may_hold_placeholder(d) && !self.streams.iter().any(|s| s.text.is_holding()) {
                write_raw(&lines, out);
                return;
            }
        }
        let parsed = data
            .as_deref()
            .and_then(|d| std::str::from_utf8(d).ok())
            .map(|s| (s.trim() == "[DONE]", serde_json::from_str::<Value>(s).ok()));
        match parsed {
            Some((true, _)) => {
                self.end(&Ending::All, None, out);
                write_raw(&lines, out);
            }
            Some((false, Some(v))) => self.json_event(&lines, v, out),
            _ => write_raw(&lines, out),
        }
    }

    fn json_event(&mut self, lines: &[Vec<u8>], mut v: Value, out: &mut Vec<u8>) {
        let plan = formats::plan(self.format, &v);
        let mapping = Arc::clone(&self.mapping);
        // Take the deltas out, restore everything else whole, then stream the deltas.
        let mut deltas: Vec<(DeltaLoc, String)> = Vec::with_capacity(plan.deltas.len());
        for loc in plan.deltas {
            if let Some(Value::String(s)) = formats::get_mut(&mut v, &loc.path) {
                let s = std::mem::take(s);
                deltas.push((loc, s));
            }
        }
        let mut changed = restore_value(&mut v, false, &mapping, &mut self.stats);
        let head: Vec<Vec<u8>> = lines
            .iter()
            .filter(|l| matches!(field(l), Some((b"event", _))))
            .cloned()
            .collect();
        for (loc, s) in &deltas {
            let i = self.stream_for(loc);
            let st = &mut self.streams[i];
            let emitted = st.text.push(s, &mapping, st.escape, &mut self.stats);
            changed |= emitted != *s;
            if st.text.is_holding() {
                let (value, path) = formats::template(self.format, &v, loc);
                st.template = Some(Template {
                    head: head.clone(),
                    value,
                    path,
                });
            }
            if let Some(slot) = formats::get_mut(&mut v, &loc.path) {
                *slot = Value::String(emitted);
            }
        }
        // Streams that end here: their rest goes into this event when it carries them,
        // else in copies sent before it.
        let mut before = Vec::new();
        for e in &plan.endings {
            let mut appended = |key: StreamKey, rest: &str| -> bool {
                let Some((loc, _)) = deltas.iter().rev().find(|(l, _)| l.key == key) else {
                    return false;
                };
                if let Some(Value::String(s)) = formats::get_mut(&mut v, &loc.path) {
                    s.push_str(rest);
                    changed = true;
                    return true;
                }
                false
            };
            self.end(e, Some(&mut appended), &mut before);
        }
        out.extend_from_slice(&before);
        if !changed {
            write_raw(lines, out);
            return;
        }
        let Ok(json) = serde_json::to_string(&v) else {
            // Not reachable for a parsed value; the original (masked, never raw) data goes out.
            write_raw(lines, out);
            return;
        };
        let mut wrote_data = false;
        for l in lines {
            match field(l) {
                Some((b"data", _)) => {
                    if !wrote_data {
                        wrote_data = true;
                        out.extend_from_slice(b"data: ");
                        out.extend_from_slice(json.as_bytes());
                        out.push(b'\n');
                    }
                }
                _ => {
                    out.extend_from_slice(l);
                    out.push(b'\n');
                }
            }
        }
        out.push(b'\n');
    }

    fn stream_for(&mut self, loc: &DeltaLoc) -> usize {
        if let Some(&i) = self.index.get(&loc.key) {
            return i;
        }
        self.streams.push(Stream {
            key: loc.key,
            text: StreamText::new(),
            escape: loc.escape,
            template: None,
        });
        let i = self.streams.len() - 1;
        self.index.insert(loc.key, i);
        i
    }

    /// Ends the streams `e` names. Held-back text goes to `append` when it takes it, else
    /// into a copy of the stream's template written to `out`.
    fn end(&mut self, e: &Ending, mut append: Option<&mut AppendFn<'_>>, out: &mut Vec<u8>) {
        let ends = |k: &StreamKey| match e {
            Ending::Key(x) => k == x,
            Ending::Group(g) => k.group == *g,
            Ending::All => true,
        };
        if !self.streams.iter().any(|s| ends(&s.key)) {
            return;
        }
        let streams = std::mem::take(&mut self.streams);
        self.index.clear();
        for mut s in streams {
            if !ends(&s.key) {
                self.index.insert(s.key, self.streams.len());
                self.streams.push(s);
                continue;
            }
            let rest = s.text.finish(&self.mapping, s.escape, &mut self.stats);
            if rest.is_empty() {
                continue;
            }
            if let Some(f) = append.as_mut() {
                if f(s.key, &rest) {
                    continue;
                }
            }
            if let Some(mut t) = s.template.take() {
                if let Some(slot) = formats::get_mut(&mut t.value, &t.path) {
                    *slot = Value::String(rest);
                }
                for h in &t.head {
                    out.extend_from_slice(h);
                    out.push(b'\n');
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(
                    serde_json::to_string(&t.value)
                        .unwrap_or_default()
                        .as_bytes(),
                );
                out.extend_from_slice(b"\n\n");
            }
        }
    }
}

fn write_raw(lines: &[Vec<u8>], out: &mut Vec<u8>) {
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod fast_path_tests {
    use super::may_hold_placeholder;

    #[test]
    fn json_syntax_is_not_a_placeholder_start() {
        for d in [
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
            r#"{"a":[],"b":[1,2],"c":[null,true,false],"d":[{"x":1}]}"#,
            r#"{"t":"see [1] and [note]"}"#,
        ] {
            assert!(!may_hold_placeholder(d.as_bytes()), "{d}");
        }
        for d in [
            r#"{"t":"mail [EMAIL_1] now"}"#,
            r#"{"t":"mail [EMA"}"#,
            r#"{"t":"mail ["}"#,
            // `["x"]` cannot be told from a delta ending in `[`: the slow path is taken.
            r#"{"d":["x"]}"#,
            r#"{"args":"{\"to\":\"[EMAIL_1]\"}"}"#,
            r#"{"args":"{\"to\":\"[EM"}"#,
        ] {
            assert!(may_hold_placeholder(d.as_bytes()), "{d}");
        }
    }
}
