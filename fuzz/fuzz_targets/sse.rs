//! Fuzz target: the SSE parser on arbitrary bytes, fed whole and in data-driven chunks.
//!
//! Input: one control byte, then the stream. The control byte picks the limits (bit 7 clear:
//! the defaults; set: tiny limits, so the error paths are reached) and seeds the chunk
//! lengths. Oracles beyond "no panic": chunking never changes the events, the error or the
//! byte count; buffered memory stays within the limits after every push; no event has empty
//! data.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_scout_fuzz::fingerprint::sse::{SseError, SseEvent, SseLimits, SseParser};

/// Longest chunk the chunked run feeds at once (0-length pushes are included on purpose).
const MAX_CHUNK: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let limits = limits(control, stream.len());
    let whole = run(limits, [stream]);
    let chunked = run(limits, Chunks::new(stream, control));
    assert_eq!(whole, chunked, "chunking changed the outcome");
});

fn limits(control: u8, stream_len: usize) -> SseLimits {
    if control & 0x80 == 0 {
        return SseLimits::default();
    }
    SseLimits {
        max_event_bytes: usize::from(control & 0x3f) * 4,
        max_total_bytes: if control & 0x40 == 0 {
            usize::MAX
        } else {
            stream_len / 2
        },
    }
}

/// Events before the first error, the error, and the bytes accepted.
fn run<'a>(
    limits: SseLimits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<SseEvent>, Option<SseError>, usize) {
    let mut parser = SseParser::new(limits);
    let mut events = Vec::new();
    // The trailing empty push reports an error deferred by the last real one.
    for chunk in chunks.into_iter().chain([&[][..]]) {
        let result = parser.push(chunk);
        assert!(parser.buffered_bytes() <= limits.max_event_bytes);
        assert!(parser.total_bytes() <= limits.max_total_bytes);
        match result {
            Ok(more) => {
                assert!(more
                    .iter()
                    .all(|e| !e.data.is_empty() && !e.event.is_empty()));
                events.extend(more);
            }
            Err(err) => return (events, Some(err), parser.total_bytes()),
        }
    }
    (events, None, parser.total_bytes())
}

/// Splits a stream into chunks of pseudo-random length (xorshift seeded by the control byte).
struct Chunks<'a> {
    rest: &'a [u8],
    state: u32,
    done: bool,
}

impl<'a> Chunks<'a> {
    fn new(stream: &'a [u8], seed: u8) -> Self {
        Self {
            rest: stream,
            state: 0x9e37_79b9 ^ u32::from(seed),
            done: false,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        if self.rest.is_empty() {
            self.done = true;
            return Some(self.rest);
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let len = (self.state as usize % (MAX_CHUNK + 1)).min(self.rest.len());
        let (chunk, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(chunk)
    }
}
