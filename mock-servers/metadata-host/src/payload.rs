//! How a reply's bytes reach the wire.
//!
//! A body is a head, a run of filler bytes and a tail, so an oversize body is never held in memory
//! and an endless one is simply a filler run that never ends. A JSON object is padded *inside*
//! itself (`…,"x_padding":"aaaa…"}`) so an oversize document stays valid JSON and the server under
//! test has to read it all to know; other bodies are padded with trailing spaces, which JSON
//! ignores too. Streaming (chunked, trickled, padded, lying) bodies are opaque to hyper: hyper then
//! frames by the `Content-Length` header we set, or chunks when there is none.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value};

/// Largest piece handed to hyper at once when no trickle size is scripted.
const PIECE: usize = 16 * 1024;

/// How long a body shorter than its declared length waits before it ends (see `into_stream`).
const LINGER: Duration = Duration::from_millis(20);

/// Name of the member that pads an oversize JSON object.
const PADDING_MEMBER: &str = "x_padding";

/// The padding member's opening, up to the first filler byte.
const PADDING_OPEN: &str = "\"x_padding\":\"";

/// The padding member's closing and the object's end.
const PADDING_CLOSE: &str = "\"}";

/// A reply body before it becomes JSON or bytes, after placeholders were filled in.
#[derive(Debug, Clone)]
pub(crate) enum Rendered {
    /// A JSON object: padded inside itself.
    Object(Map<String, Value>),
    /// Anything else: padded with trailing spaces.
    Bytes(Bytes),
}

/// How many filler bytes follow the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    Finite(usize),
    Endless,
}

/// A body as head + filler + tail.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    head: Bytes,
    fill_byte: u8,
    fill: Fill,
    tail: Bytes,
}

impl Payload {
    /// Lays out `body`, padded to `oversize` bytes if that is larger than the body, or followed by
    /// filler forever if `endless`.
    pub(crate) fn new(body: Rendered, oversize: Option<usize>, endless: bool) -> Self {
        let plain = match &body {
            Rendered::Object(map) => Bytes::from(Value::Object(map.clone()).to_string()),
            Rendered::Bytes(bytes) => bytes.clone(),
        };
        let target = oversize.filter(|&total| total > plain.len());
        if target.is_none() && !endless {
            return Self::spaces(plain, Fill::Finite(0));
        }
        if let Rendered::Object(mut map) = body {
            // A caller's own padding member would be a duplicate key; ours replaces it.
            map.remove(PADDING_MEMBER);
            let unpadded = Value::Object(map.clone()).to_string();
            if let Some(open) = unpadded.strip_suffix('}') {
                let separator = if map.is_empty() { "" } else { "," };
                let head = format!("{open}{separator}{PADDING_OPEN}");
                let tail = if endless { "" } else { PADDING_CLOSE };
                let framing = head.len() + tail.len();
                let fill = match target {
                    _ if endless => Some(Fill::Endless),
                    Some(total) => total.checked_sub(framing).map(Fill::Finite),
                    None => None,
                };
                // A target too small to fit the member at all falls back to trailing spaces.
                if let Some(fill) = fill {
                    return Self {
                        head: Bytes::from(head),
                        fill_byte: b'a',
                        fill,
                        tail: Bytes::from_static(tail.as_bytes()),
                    };
                }
            }
        }
        let fill = match target {
            _ if endless => Fill::Endless,
            Some(total) => Fill::Finite(total - plain.len()),
            None => Fill::Finite(0),
        };
        Self::spaces(plain, fill)
    }

    /// `head` followed by `fill` spaces.
    fn spaces(head: Bytes, fill: Fill) -> Self {
        Self {
            head,
            fill_byte: b' ',
            fill,
            tail: Bytes::new(),
        }
    }

    /// The total length, or `None` for an endless body.
    pub(crate) fn len(&self) -> Option<u64> {
        match self.fill {
            Fill::Finite(fill) => u64::try_from(self.head.len() + fill + self.tail.len()).ok(),
            Fill::Endless => None,
        }
    }

    /// The whole body as one buffer, if it is just the head (no filler, no tail).
    pub(crate) fn as_plain(&self) -> Option<Bytes> {
        (self.fill == Fill::Finite(0) && self.tail.is_empty()).then(|| self.head.clone())
    }

    /// A streaming body of `piece`-byte chunks, with `interval` between chunks if given (none
    /// before the first or after the last). Its size is unknown to hyper, so hyper frames it by
    /// the response's `Content-Length` header if there is one and chunks it otherwise.
    ///
    /// `linger` holds the end back a moment. A body shorter than its declared length makes
    /// HTTP/1.1 hyper abort the connection at the end, dropping whatever it has not flushed yet;
    /// pausing first lets it flush, so the client really receives the short body.
    pub(crate) fn into_stream(
        self,
        piece: Option<usize>,
        interval: Option<Duration>,
        linger: bool,
    ) -> Body {
        let piece = piece.unwrap_or(PIECE).max(1);
        let stream =
            futures_util::stream::unfold((self, true), move |(mut rest, first)| async move {
                if rest.is_done() {
                    if linger {
                        tokio::time::sleep(LINGER).await;
                    }
                    return None;
                }
                if let (false, Some(interval)) = (first, interval) {
                    tokio::time::sleep(interval).await;
                }
                let chunk = rest.next_chunk(piece);
                Some((Ok::<Bytes, Infallible>(chunk), (rest, false)))
            });
        Body::from_stream(stream)
    }

    /// Whether every byte has been handed out.
    fn is_done(&self) -> bool {
        self.head.is_empty() && self.fill == Fill::Finite(0) && self.tail.is_empty()
    }

    /// Takes up to `max` bytes off the front (exactly `max` unless the body ends first).
    fn next_chunk(&mut self, max: usize) -> Bytes {
        let mut out = BytesMut::with_capacity(max.min(4 * PIECE));
        while out.len() < max {
            let want = max - out.len();
            if !self.head.is_empty() {
                let taken = self.head.split_to(want.min(self.head.len()));
                out.extend_from_slice(&taken);
                continue;
            }
            let filled = match &mut self.fill {
                Fill::Finite(0) => 0,
                Fill::Finite(left) => {
                    let n = want.min(*left);
                    *left -= n;
                    n
                }
                Fill::Endless => want,
            };
            if filled > 0 {
                out.resize(out.len() + filled, self.fill_byte);
                continue;
            }
            if self.tail.is_empty() {
                break;
            }
            let taken = self.tail.split_to(want.min(self.tail.len()));
            out.extend_from_slice(&taken);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Rendered {
        match value {
            Value::Object(map) => Rendered::Object(map),
            other => Rendered::Bytes(Bytes::from(other.to_string())),
        }
    }

    fn collect(mut payload: Payload, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while !payload.is_done() {
            out.extend_from_slice(&payload.next_chunk(piece));
        }
        out
    }

    #[test]
    fn pads_an_object_to_the_exact_size_with_a_padding_member() {
        for total in [40, 41, 100, 4097] {
            let payload = Payload::new(
                object(json!({"client_id": "x", "b": [1]})),
                Some(total),
                false,
            );
            assert_eq!(payload.len(), Some(total as u64));
            let bytes = collect(payload, 7);
            assert_eq!(bytes.len(), total);
            let parsed: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(parsed["client_id"], "x");
            assert!(
                parsed["x_padding"]
                    .as_str()
                    .unwrap()
                    .bytes()
                    .all(|b| b == b'a')
            );
        }
    }

    #[test]
    fn pads_an_empty_object_without_a_leading_comma() {
        let bytes = collect(Payload::new(object(json!({})), Some(30), false), 3);
        assert_eq!(bytes.len(), 30);
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed.as_object().unwrap().len(), 1);
    }

    #[test]
    fn falls_back_to_trailing_spaces_when_the_member_does_not_fit() {
        // `{"a":1}` is 7 bytes; the member needs 15 more, so 10 bytes cannot hold it.
        let bytes = collect(Payload::new(object(json!({"a": 1})), Some(10), false), 4);
        assert_eq!(bytes, b"{\"a\":1}   ");
    }

    #[test]
    fn pads_other_bodies_with_trailing_spaces_and_never_truncates() {
        let raw = Rendered::Bytes(Bytes::from_static(b"[1,2]"));
        assert_eq!(
            collect(Payload::new(raw.clone(), Some(8), false), 2),
            b"[1,2]   "
        );
        let small = Payload::new(raw, Some(2), false);
        assert_eq!(small.as_plain().unwrap(), Bytes::from_static(b"[1,2]"));
    }

    #[test]
    fn an_endless_object_opens_its_padding_member_and_never_closes_it() {
        let mut payload = Payload::new(object(json!({"a": 1})), None, true);
        assert_eq!(payload.len(), None);
        let first = payload.next_chunk(64);
        assert_eq!(first.len(), 64);
        assert!(first.starts_with(b"{\"a\":1,\"x_padding\":\"aaa"));
        for _ in 0..100 {
            assert!(payload.next_chunk(PIECE).iter().all(|&b| b == b'a'));
        }
        assert!(!payload.is_done());
    }
}
