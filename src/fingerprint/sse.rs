//! Incremental, bounded Server-Sent Events (`text/event-stream`) parser.
//!
//! Owns the SSE framing rules (WHATWG HTML, "Parsing an event stream") and nothing else. The
//! HTTP layer feeds body bytes to [`SseParser::push`] as they arrive, in whatever chunks the
//! network delivers; completed [`SseEvent`]s come back, and their `data` goes to
//! [`super::jsonrpc::classify`] (Streamable HTTP replies) or is read as the legacy transport's
//! `endpoint` URL. Pure: no I/O, no clock, no async.
//!
//! Deliberate differences from the WHATWG algorithm, all for a scanner reading untrusted peers:
//! - An event whose data is empty is dropped. WHATWG dispatches `data:` alone as an event with
//!   empty data, but no MCP message is empty, and the Rust SDK opens every stream with exactly
//!   such a priming frame.
//! - Memory is bounded by [`SseLimits`]: a line or event that would grow past
//!   `max_event_bytes`, or a stream longer than `max_total_bytes`, is an [`SseError`] rather
//!   than an ever-growing buffer.
//! - `retry` is ignored: a scanner never reconnects.
//!
//! The module is self-contained (it names nothing else in the crate) because `fuzz/` compiles
//! it on its own.

use thiserror::Error;

/// Default cap on one event: far above any MCP reply a probe asks for, small enough that a
/// hostile peer cannot make one endpoint cost much memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
/// Default cap on one whole stream: legacy SSE streams never end, so reading must stop.
pub const DEFAULT_MAX_TOTAL_BYTES: usize = 1024 * 1024;
/// The UTF-8 byte order mark, ignored once at the start of a stream (WHATWG decodes the stream
/// with "UTF-8 decode", which strips it).
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The event type when a frame has no `event` field.
const DEFAULT_EVENT_TYPE: &str = "message";

/// How much a parser may buffer and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseLimits {
    /// Most bytes held at once for the event being assembled: the partial line, the `data`
    /// lines so far, the `event` type and the last event id.
    pub max_event_bytes: usize,
    /// Most bytes accepted over the parser's life.
    pub max_total_bytes: usize,
}

impl Default for SseLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, or `message` when the frame has none.
    pub event: String,
    /// The `data` lines joined with `\n`; never empty (empty events are dropped).
    pub data: String,
    /// The last event id in effect at dispatch. As in WHATWG, an `id` persists across events
    /// until another `id` line replaces it; an empty `id` clears it (`None`).
    pub id: Option<String>,
}

/// Why a stream was abandoned. Once a parser fails it stays failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SseError {
    /// A line or event grew past [`SseLimits::max_event_bytes`].
    #[error("sse event exceeds {limit} bytes")]
    EventTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// The stream grew past [`SseLimits::max_total_bytes`].
    #[error("sse stream exceeds {limit} bytes")]
    TotalTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
}

/// Splits a byte stream into events, whatever the chunking.
///
/// Invariant: `line + data + event_type + last_id` never holds more than
/// `limits.max_event_bytes` bytes, and no buffer's capacity exceeds that limit either.
/// Completing a line never adds to the sum (a field's value is shorter than its line), so the
/// check on incoming bytes is the only one needed.
#[derive(Debug)]
pub struct SseParser {
    limits: SseLimits,
    /// The line being read, terminator excluded; raw bytes, decoded only at dispatch so that
    /// a multi-byte character split across chunks decodes the same as an unsplit one.
    line: Vec<u8>,
    /// `data` values so far, each followed by `\n`.
    data: Vec<u8>,
    /// The `event` field of the event being assembled (empty: `message`).
    event_type: Vec<u8>,
    /// The last event id (empty: none).
    last_id: Vec<u8>,
    /// The previous byte was a CR: a LF right after it (even in the next chunk) ends nothing.
    after_cr: bool,
    /// Whether the first line is done (only it may start with a BOM).
    past_first_line: bool,
    /// Bytes accepted so far.
    total: usize,
    /// The error that stopped the parser, repeated by every later `push`.
    failed: Option<SseError>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new(limits: SseLimits) -> Self {
        Self {
            limits,
            line: Vec::new(),
            data: Vec::new(),
            event_type: Vec::new(),
            last_id: Vec::new(),
            after_cr: false,
            past_first_line: false,
            total: 0,
            failed: None,
        }
    }

    /// Feed bytes as they arrive (any chunking); returns the events they complete.
    ///
    /// When a limit is hit part-way through `chunk`, the events completed before that point
    /// are still returned (`Ok`), and the error comes from the next call; a call that
    /// completes no event returns the error at once. So the events seen before the first
    /// `Err` are the same however the stream is chunked. A caller that stops feeding at end
    /// of stream may push an empty chunk to learn whether a limit was hit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let room = self.limits.max_total_bytes.saturating_sub(self.total);
        let accepted = &chunk[..chunk.len().min(room)];
        let mut events = Vec::new();
        let outcome = match self.consume(accepted, &mut events) {
            Ok(()) if accepted.len() < chunk.len() => Err(SseError::TotalTooLarge {
                limit: self.limits.max_total_bytes,
            }),
            other => other,
        };
        match outcome {
            Ok(()) => Ok(events),
            Err(err) => {
                self.fail(err);
                if events.is_empty() {
                    Err(err)
                } else {
                    Ok(events)
                }
            }
        }
    }

    /// Bytes accepted so far (never more than `max_total_bytes`).
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// Bytes currently held for the event being assembled (never more than
    /// `max_event_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.line.len() + self.data.len() + self.event_type.len() + self.last_id.len()
    }

    /// Split `bytes` into lines and process each complete one.
    fn consume(&mut self, bytes: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut rest = bytes;
        while let Some((&first, tail)) = rest.split_first() {
            if std::mem::take(&mut self.after_cr) && first == b'\n' {
                // The LF of a CRLF whose CR ended the previous line.
                self.total += 1;
                rest = tail;
                continue;
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.extend_line(&rest[..end])?;
                    self.total += 1;
                    self.after_cr = rest[end] == b'\r';
                    self.finish_line(events);
                    rest = &rest[end + 1..];
                }
                None => {
                    self.extend_line(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    /// Append to the partial line, or fail if the event would outgrow its limit.
    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        let limit = self.limits.max_event_bytes;
        let room = limit.saturating_sub(self.buffered_bytes());
        if bytes.len() > room {
            // Count the bytes that still fitted, so `total_bytes` does not depend on chunking.
            self.total += room;
            return Err(SseError::EventTooLarge { limit });
        }
        reserve_within(&mut self.line, bytes.len(), limit);
        self.line.extend_from_slice(bytes);
        self.total += bytes.len();
        Ok(())
    }

    fn finish_line(&mut self, events: &mut Vec<SseEvent>) {
        // Taken out (and handed back below) so the line can be read while fields change.
        let mut line = std::mem::take(&mut self.line);
        let mut content = line.as_slice();
        if !self.past_first_line {
            self.past_first_line = true;
            content = content.strip_prefix(BOM).unwrap_or(content);
        }
        self.process_line(content, events);
        line.clear();
        self.line = line;
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            return; // A comment (servers send them as keep-alives).
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let limit = self.limits.max_event_bytes;
        match field {
            b"event" => {
                self.event_type.clear();
                reserve_within(&mut self.event_type, value.len(), limit);
                self.event_type.extend_from_slice(value);
            }
            b"data" => {
                reserve_within(&mut self.data, value.len() + 1, limit);
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            // WHATWG ignores an id containing NUL, so that it cannot truncate a C string.
            b"id" if !value.contains(&0) => {
                self.last_id.clear();
                reserve_within(&mut self.last_id, value.len(), limit);
                self.last_id.extend_from_slice(value);
            }
            _ => {} // `retry` and unknown fields.
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let data = self.data.strip_suffix(b"\n").unwrap_or(&self.data);
        if !data.is_empty() {
            let event = if self.event_type.is_empty() {
                DEFAULT_EVENT_TYPE.to_owned()
            } else {
                lossy(&self.event_type)
            };
            events.push(SseEvent {
                event,
                data: lossy(data),
                id: (!self.last_id.is_empty()).then(|| lossy(&self.last_id)),
            });
        }
        // `clear` keeps the allocations: the next event is likely to be of similar size.
        self.data.clear();
        self.event_type.clear();
    }

    fn fail(&mut self, err: SseError) {
        self.failed = Some(err);
        // Nothing more will be parsed: give the memory back now.
        self.line = Vec::new();
        self.data = Vec::new();
        self.event_type = Vec::new();
        self.last_id = Vec::new();
    }
}

/// Invalid UTF-8 is a peer's problem, not a parse failure.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Make room for `extra` more bytes without letting the capacity pass `limit` (plain `Vec`
/// growth doubles, which could hold twice the limit). Callers guarantee `len + extra <= limit`.
fn reserve_within(buf: &mut Vec<u8>, extra: usize, limit: usize) {
    let needed = buf.len() + extra;
    if needed > buf.capacity() {
        let target = needed
            .max(buf.capacity().saturating_mul(2))
            .min(limit)
            .max(needed);
        buf.reserve_exact(target - buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) -> Vec<SseEvent> {
        SseParser::new(SseLimits::default())
            .push(bytes)
            .expect("within limits")
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    /// Everything a parser yields before its first error, the error, and the bytes taken.
    type Outcome = (Vec<SseEvent>, Option<SseError>, usize);

    fn run_chunks<'a>(limits: SseLimits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        let mut parser = SseParser::new(limits);
        let mut events = Vec::new();
        // The final empty push surfaces an error deferred by the last real one.
        for chunk in chunks.into_iter().chain([&[][..]]) {
            match parser.push(chunk) {
                Ok(mut more) => events.append(&mut more),
                Err(err) => return (events, Some(err), parser.total_bytes()),
            }
            assert_memory_bounded(&parser);
        }
        (events, None, parser.total_bytes())
    }

    fn assert_memory_bounded(parser: &SseParser) {
        let limit = parser.limits.max_event_bytes;
        assert!(
            parser.buffered_bytes() <= limit,
            "buffered {} > {limit}",
            parser.buffered_bytes()
        );
        for buf in [
            &parser.line,
            &parser.data,
            &parser.event_type,
            &parser.last_id,
        ] {
            assert!(
                buf.capacity() <= limit,
                "capacity {} > {limit}",
                buf.capacity()
            );
        }
        assert!(parser.total_bytes() <= parser.limits.max_total_bytes);
    }

    /// Split `bytes` at the given fractions of its length.
    fn split_at_points(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(bytes[start..cut].to_vec());
            start = cut;
        }
        chunks.push(bytes[start..].to_vec());
        chunks
    }

    // Streams captured from real servers (tests/fixtures/wire: mcp 1.30 FastMCP, TypeScript
    // SDK 1.32.2).
    const PY1_INITIALIZE_STREAM: &[u8] = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"serverInfo\":{\"name\":\"weather-demo\",\"version\":\"1.30.0\"}}}\r\n\r\n";
    const TS_INITIALIZE_STREAM: &[u8] =
        b"event: message\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}\n\n";
    const PY1_LEGACY_STREAM: &[u8] = b"event: endpoint\r\ndata: /messages/?session_id=4a9d15a8df044723aee4892b5c2d4068\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n";
    const TS_LEGACY_ENDPOINT: &[u8] =
        b"event: endpoint\ndata: /messages?sessionId=0df9132f-adf1-4a26-bbec-ebcbd37743d1\n\n";
    /// The `endless-sse` decoy: bare `data:` frames, no event name.
    const DECOY_TICKS: &[u8] = b"data: tick\n\ndata: tick\n\n";

    #[test]
    fn python_crlf_and_typescript_lf_frames_parse_alike() {
        assert_eq!(
            parse_all(PY1_INITIALIZE_STREAM),
            vec![ev(
                "message",
                r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"weather-demo","version":"1.30.0"}}}"#,
                None
            )]
        );
        assert_eq!(
            parse_all(TS_INITIALIZE_STREAM),
            vec![ev(
                "message",
                r#"{"result":{},"jsonrpc":"2.0","id":1}"#,
                None
            )]
        );
    }

    #[test]
    fn legacy_endpoint_event_comes_first() {
        let events = parse_all(PY1_LEGACY_STREAM);
        assert_eq!(
            events[0],
            ev(
                "endpoint",
                "/messages/?session_id=4a9d15a8df044723aee4892b5c2d4068",
                None
            )
        );
        assert_eq!(events[1].event, "message");
        assert_eq!(
            parse_all(TS_LEGACY_ENDPOINT),
            vec![ev(
                "endpoint",
                "/messages?sessionId=0df9132f-adf1-4a26-bbec-ebcbd37743d1",
                None
            )]
        );
    }

    #[test]
    fn bare_data_frames_are_messages() {
        assert_eq!(
            parse_all(DECOY_TICKS),
            vec![ev("message", "tick", None), ev("message", "tick", None)]
        );
    }

    #[test]
    fn rust_sdk_priming_frame_is_skipped_and_missing_event_means_message() {
        // The Rust SDK's shape as MCP-WIRE.md describes it (no capture of it yet).
        let stream = b"id: 0\nretry: 3000\ndata:\n\ndata: {\"id\":1}\nid: 1\n\n";
        assert_eq!(
            parse_all(stream),
            vec![ev("message", r#"{"id":1}"#, Some("1"))]
        );
    }

    #[test]
    fn keep_alive_comments_are_ignored() {
        let stream =
            b": ping - 2025-01-01 00:00:00.000000+00:00\r\n\r\nevent: endpoint\r\ndata: /m\r\n\r\n";
        assert_eq!(parse_all(stream), vec![ev("endpoint", "/m", None)]);
    }

    #[test]
    fn data_lines_join_with_newline_and_one_space_is_stripped() {
        let stream = b"data:  two spaces\ndata\ndata:x\n\n";
        assert_eq!(
            parse_all(stream),
            vec![ev("message", " two spaces\n\nx", None)]
        );
    }

    #[test]
    fn lone_cr_ends_lines() {
        assert_eq!(
            parse_all(b"event: a\rdata: b\r\r"),
            vec![ev("a", "b", None)]
        );
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let mut parser = SseParser::new(SseLimits::default());
        assert!(parser.push(b"data: a\r").unwrap().is_empty());
        // Were the LF a second line end, this would dispatch now, before `data: b`.
        assert!(parser.push(b"\ndata: b\r").unwrap().is_empty());
        assert_eq!(
            parser.push(b"\n\r\n").unwrap(),
            vec![ev("message", "a\nb", None)]
        );
        assert_eq!(parser.total_bytes(), 20);
    }

    #[test]
    fn comments_unknown_fields_and_retry_are_ignored() {
        let stream = b": hello\nretry: 10\nfoo: bar\nevent\ndata: x\n\n";
        assert_eq!(parse_all(stream), vec![ev("message", "x", None)]);
    }

    #[test]
    fn bom_is_ignored_only_at_stream_start() {
        let mut parser = SseParser::new(SseLimits::default());
        assert!(parser.push(b"\xEF\xBB").unwrap().is_empty());
        assert_eq!(
            parser.push(b"\xBFdata: a\n\n").unwrap(),
            vec![ev("message", "a", None)]
        );
        // A second BOM is part of the field name, which is then unknown.
        assert!(parser.push(b"\xEF\xBB\xBFdata: b\n\n").unwrap().is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let events = parse_all(b"event: \xFFx\ndata: a\xC3\n\n");
        assert_eq!(events, vec![ev("\u{FFFD}x", "a\u{FFFD}", None)]);
    }

    #[test]
    fn id_persists_clears_and_ignores_nul() {
        let stream = b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n";
        assert_eq!(
            parse_all(stream),
            vec![
                ev("message", "a", Some("7")),
                ev("message", "b", Some("7")),
                ev("message", "c", Some("7")),
                ev("message", "d", None),
            ]
        );
    }

    #[test]
    fn event_type_resets_after_dispatch_and_after_an_empty_event() {
        let stream = b"event: a\ndata: 1\n\nevent: b\n\ndata: 2\n\n";
        assert_eq!(
            parse_all(stream),
            vec![ev("a", "1", None), ev("message", "2", None)]
        );
    }

    #[test]
    fn unterminated_event_is_not_dispatched() {
        assert!(parse_all(b"data: a\n").is_empty());
    }

    #[test]
    fn long_line_is_an_error_not_a_buffer() {
        let limits = SseLimits {
            max_event_bytes: 16,
            max_total_bytes: 1024,
        };
        let mut parser = SseParser::new(limits);
        assert_eq!(
            parser.push(&[b'x'; 17]),
            Err(SseError::EventTooLarge { limit: 16 })
        );
        assert_eq!(parser.total_bytes(), 16);
        assert_eq!(parser.buffered_bytes(), 0);
        // Failure is sticky.
        assert_eq!(
            parser.push(b"\n\n"),
            Err(SseError::EventTooLarge { limit: 16 })
        );
    }

    #[test]
    fn many_data_lines_count_towards_the_event_limit() {
        let limits = SseLimits {
            max_event_bytes: 16,
            max_total_bytes: 1024,
        };
        let (events, err, _) = run_chunks(limits, [&b"data: 1234\n".repeat(10)[..]]);
        assert!(events.is_empty());
        assert_eq!(err, Some(SseError::EventTooLarge { limit: 16 }));
    }

    #[test]
    fn events_before_the_total_limit_are_delivered_then_the_error() {
        let limits = SseLimits {
            max_event_bytes: 64,
            max_total_bytes: 12,
        };
        let mut parser = SseParser::new(limits);
        assert_eq!(
            parser.push(b"data: a\n\ndata: b\n\n").unwrap(),
            vec![ev("message", "a", None)]
        );
        assert_eq!(parser.total_bytes(), 12);
        assert_eq!(parser.push(b""), Err(SseError::TotalTooLarge { limit: 12 }));
    }

    #[test]
    fn stream_of_exactly_the_total_limit_is_fine() {
        let stream = b"data: a\n\n";
        let limits = SseLimits {
            max_event_bytes: 64,
            max_total_bytes: stream.len(),
        };
        let (events, err, total) = run_chunks(limits, [&stream[..]]);
        assert_eq!((events.len(), err, total), (1, None, stream.len()));
        let mut parser = SseParser::new(limits);
        parser.push(stream).unwrap();
        assert_eq!(
            parser.push(b"x"),
            Err(SseError::TotalTooLarge {
                limit: stream.len()
            })
        );
    }

    #[test]
    fn error_messages_are_lowercase_and_name_the_limit() {
        assert_eq!(
            SseError::EventTooLarge { limit: 5 }.to_string(),
            "sse event exceeds 5 bytes"
        );
        assert_eq!(
            SseError::TotalTooLarge { limit: 9 }.to_string(),
            "sse stream exceeds 9 bytes"
        );
    }

    /// Byte strings made mostly of SSE syntax, so that random streams hit every rule.
    fn sse_like_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"data: ".to_vec()),
            Just(b"data:".to_vec()),
            Just(b"data".to_vec()),
            Just(b"event: ".to_vec()),
            Just(b"event:endpoint".to_vec()),
            Just(b"id: ".to_vec()),
            Just(b"id".to_vec()),
            Just(b": ping".to_vec()),
            Just(b"retry: 5".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(BOM.to_vec()),
            Just(b"\0".to_vec()),
            Just("é✓".as_bytes().to_vec()),
            Just(b"{\"jsonrpc\":\"2.0\"}".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn small_limits() -> impl Strategy<Value = SseLimits> {
        prop_oneof![
            Just(SseLimits::default()),
            (0usize..48, 0usize..400).prop_map(|(max_event_bytes, max_total_bytes)| SseLimits {
                max_event_bytes,
                max_total_bytes,
            }),
        ]
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_outcome(
            bytes in sse_like_bytes(),
            points in proptest::collection::vec(any::<usize>(), 0..12),
            limits in small_limits(),
        ) {
            let whole = run_chunks(limits, [&bytes[..]]);
            let chunks = split_at_points(&bytes, &points);
            prop_assert_eq!(&run_chunks(limits, chunks.iter().map(Vec::as_slice)), &whole);
            prop_assert_eq!(&run_chunks(limits, bytes.chunks(1)), &whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_memory_stays_bounded(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            points in proptest::collection::vec(any::<usize>(), 0..8),
            limits in small_limits(),
        ) {
            let chunks = split_at_points(&bytes, &points);
            // `run_chunks` checks the memory bound after every push.
            let (events, _, total) = run_chunks(limits, chunks.iter().map(Vec::as_slice));
            prop_assert!(total <= bytes.len());
            prop_assert!(events.iter().all(|e| !e.data.is_empty()));
        }
    }
}
