//! Scripted replies: what a mounted (host, path) answers, request by request.
//!
//! A [`Route`] is a non-empty list of [`Reply`]s: request n gets reply n and the last reply repeats,
//! so "first a 500, then a good document" is one route (CIMD-CACHE-03 needs exactly that). A reply
//! is built from a body constructor (`document`, `json`, `jwks`, `raw`, `status`, `redirect`) and
//! switches that script one misbehaviour each. Bodies and header values are templates: the
//! placeholders `{client_id}` (the route's own URL) and `{origin}` (`https://host:port`) are filled
//! in per request, because the port is only known once the host runs.
//!
//! The builders panic on values HTTP cannot carry (a status of 42, a header name with a space):
//! those are mistakes in test code, caught on the spot. Scenario files go through
//! [`RouteSpec`](crate::RouteSpec), which reports the same mistakes as errors instead.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::HostError;
use crate::payload::{Payload, Rendered};

/// The placeholder for the route's own URL (`https://{host}:{port}{path}`).
pub const CLIENT_ID_PLACEHOLDER: &str = "{client_id}";

/// The placeholder for the route's origin (`https://{host}:{port}`).
pub const ORIGIN_PLACEHOLDER: &str = "{origin}";

/// The media type every JSON body carries unless told otherwise.
const JSON: &str = "application/json";

/// A scripted sequence of replies for one (host, path).
#[derive(Debug, Clone)]
pub struct Route {
    first: Reply,
    rest: Vec<Reply>,
}

impl Route {
    /// A route that always answers `reply`.
    pub fn new(reply: Reply) -> Self {
        Self {
            first: reply,
            rest: Vec::new(),
        }
    }

    /// Always [`Reply::document`].
    pub fn document(json: Value) -> Self {
        Self::new(Reply::document(json))
    }

    /// Always [`Reply::json`].
    pub fn json(json: Value) -> Self {
        Self::new(Reply::json(json))
    }

    /// Always [`Reply::jwks`].
    pub fn jwks(json: Value) -> Self {
        Self::new(Reply::jwks(json))
    }

    /// Always [`Reply::status`].
    pub fn status(code: u16) -> Self {
        Self::new(Reply::status(code))
    }

    /// Always [`Reply::redirect`].
    pub fn redirect(code: u16, location: &str) -> Self {
        Self::new(Reply::redirect(code, location))
    }

    /// Always [`Reply::raw`].
    pub fn raw(bytes: impl Into<Bytes>, content_type: &str) -> Self {
        Self::new(Reply::raw(bytes, content_type))
    }

    /// Appends `reply`: it answers the next request, and every later one until another is added.
    #[must_use]
    pub fn then(mut self, reply: Reply) -> Self {
        self.rest.push(reply);
        self
    }

    /// The reply for the request numbered `n` (0-based): reply n, or the last one.
    pub(crate) fn reply_for(&self, n: usize) -> &Reply {
        match n.checked_sub(1) {
            None => &self.first,
            Some(i) => self.rest.get(i).or(self.rest.last()).unwrap_or(&self.first),
        }
    }

    /// Applies `change` to the reply added last, so `Route::document(d).with_delay(..)` reads
    /// naturally.
    fn map_last(mut self, change: impl FnOnce(Reply) -> Reply) -> Self {
        match self.rest.pop() {
            Some(last) => self.rest.push(change(last)),
            None => self.first = change(self.first),
        }
        self
    }

    /// [`Reply::with_status`] on the reply added last.
    #[must_use]
    pub fn with_status(self, code: u16) -> Self {
        self.map_last(|r| r.with_status(code))
    }

    /// [`Reply::with_header`] on the reply added last.
    #[must_use]
    pub fn with_header(self, name: &str, value: &str) -> Self {
        self.map_last(|r| r.with_header(name, value))
    }

    /// [`Reply::append_header`] on the reply added last.
    #[must_use]
    pub fn append_header(self, name: &str, value: &str) -> Self {
        self.map_last(|r| r.append_header(name, value))
    }

    /// [`Reply::without_header`] on the reply added last.
    #[must_use]
    pub fn without_header(self, name: &str) -> Self {
        self.map_last(|r| r.without_header(name))
    }

    /// [`Reply::with_delay`] on the reply added last.
    #[must_use]
    pub fn with_delay(self, delay: Duration) -> Self {
        self.map_last(|r| r.with_delay(delay))
    }

    /// [`Reply::trickle`] on the reply added last.
    #[must_use]
    pub fn trickle(self, chunk_bytes: usize, interval: Duration) -> Self {
        self.map_last(|r| r.trickle(chunk_bytes, interval))
    }

    /// [`Reply::oversize`] on the reply added last.
    #[must_use]
    pub fn oversize(self, total_bytes: usize) -> Self {
        self.map_last(|r| r.oversize(total_bytes))
    }

    /// [`Reply::chunked`] on the reply added last.
    #[must_use]
    pub fn chunked(self) -> Self {
        self.map_last(Reply::chunked)
    }

    /// [`Reply::lying_content_length`] on the reply added last.
    #[must_use]
    pub fn lying_content_length(self, declared: u64) -> Self {
        self.map_last(|r| r.lying_content_length(declared))
    }

    /// [`Reply::endless`] on the reply added last.
    #[must_use]
    pub fn endless(self) -> Self {
        self.map_last(Reply::endless)
    }

    /// [`Reply::etag`] on the reply added last.
    #[must_use]
    pub fn etag(self, tag: &str) -> Self {
        self.map_last(|r| r.etag(tag))
    }
}

impl From<Reply> for Route {
    fn from(reply: Reply) -> Self {
        Self::new(reply)
    }
}

/// Where a reply's body comes from.
#[derive(Debug, Clone)]
enum Source {
    Empty,
    /// JSON with placeholders filled in and `client_id` set to the route's URL.
    Document(Value),
    /// JSON with placeholders filled in, nothing else touched.
    Json(Value),
    /// Bytes served as they are.
    Raw(Bytes),
}

/// How the body's length is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` equal to the real length (none for an endless body).
    Honest,
    /// No `Content-Length`: chunked transfer coding on HTTP/1.1, plain DATA frames on HTTP/2.
    Chunked,
    /// `Content-Length` set to this number whatever the body is.
    Declared(u64),
}

/// A slow body: `chunk` bytes, then `interval`, then the next chunk.
#[derive(Debug, Clone, Copy)]
struct Trickle {
    chunk: usize,
    interval: Duration,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Source,
    delay: Duration,
    trickle: Option<Trickle>,
    oversize: Option<usize>,
    framing: Framing,
    endless: bool,
    etag: Option<HeaderValue>,
}

impl Reply {
    /// A reply with `body`, status 200 and, if given, a Content-Type.
    fn new(body: Source, content_type: Option<HeaderValue>) -> Self {
        let mut headers = HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        Self {
            status: StatusCode::OK,
            headers,
            body,
            delay: Duration::ZERO,
            trickle: None,
            oversize: None,
            framing: Framing::Honest,
            endless: false,
            etag: None,
        }
    }

    /// A client metadata document: `json` with placeholders filled in and its `client_id` member
    /// set to the route's exact URL (`https://{host}:{port}{path}`), as `application/json`.
    /// A `json` that is not an object is served like [`Reply::json`].
    pub fn document(json: Value) -> Self {
        Self::new(Source::Document(json), Some(HeaderValue::from_static(JSON)))
    }

    /// `json` served as `application/json`, verbatim except that `{client_id}` and `{origin}`
    /// inside string values are filled in; use it for mismatching or missing client IDs.
    pub fn json(json: Value) -> Self {
        Self::new(Source::Json(json), Some(HeaderValue::from_static(JSON)))
    }

    /// A JSON Web Key Set: the same as [`Reply::json`], named for what is served.
    pub fn jwks(json: Value) -> Self {
        Self::json(json)
    }

    /// An empty body with status `code` and no Content-Type.
    ///
    /// # Panics
    /// If `code` is not a final status (200..=999).
    pub fn status(code: u16) -> Self {
        Self::new(Source::Empty, None).with_status(code)
    }

    /// An empty body with status `code` and `Location: location` (placeholders filled in).
    ///
    /// # Panics
    /// If `code` is not a final status or `location` is not a valid header value.
    pub fn redirect(code: u16, location: &str) -> Self {
        Self::status(code).with_header(LOCATION.as_str(), location)
    }

    /// `bytes` served as they are, with the given Content-Type.
    ///
    /// # Panics
    /// If `content_type` is not a valid header value.
    pub fn raw(bytes: impl Into<Bytes>, content_type: &str) -> Self {
        Self::new(Source::Raw(bytes.into()), None).with_header(CONTENT_TYPE.as_str(), content_type)
    }

    /// A raw body without any Content-Type (the spec form adds its own).
    pub(crate) fn raw_untyped(bytes: Bytes) -> Self {
        Self::new(Source::Raw(bytes), None)
    }

    /// Answers with status `code` instead (e.g. a good document with 203).
    ///
    /// # Panics
    /// If `code` is not a final status (200..=999).
    #[must_use]
    pub fn with_status(mut self, code: u16) -> Self {
        self.status = final_status(code).unwrap_or_else(|error| panic!("{error}"));
        self
    }

    /// Sets header `name` to `value`, replacing any earlier value (including the default
    /// Content-Type). Placeholders in `value` are filled in per request.
    ///
    /// # Panics
    /// If `name` or `value` cannot be carried by HTTP.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let (name, value) = header(name, value).unwrap_or_else(|error| panic!("{error}"));
        self.headers.insert(name, value);
        self
    }

    /// Adds another `name: value` line, keeping earlier ones (e.g. two Cache-Control lines).
    ///
    /// # Panics
    /// If `name` or `value` cannot be carried by HTTP.
    #[must_use]
    pub fn append_header(mut self, name: &str, value: &str) -> Self {
        let (name, value) = header(name, value).unwrap_or_else(|error| panic!("{error}"));
        self.headers.append(name, value);
        self
    }

    /// Removes every value of header `name`, e.g. `without_header("content-type")` to serve a
    /// document with no Content-Type at all.
    #[must_use]
    pub fn without_header(mut self, name: &str) -> Self {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            self.headers.remove(name);
        }
        self
    }

    /// Sets an already validated header (the spec form's path, which reports errors instead).
    pub(crate) fn insert_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Waits `delay` before sending the status line and headers (a slow host).
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sends the body `chunk_bytes` at a time with `interval` between chunks (a slow body).
    /// The whole body takes at least `(ceil(len / chunk_bytes) - 1) * interval`. A chunk size of
    /// 0 counts as 1.
    #[must_use]
    pub fn trickle(mut self, chunk_bytes: usize, interval: Duration) -> Self {
        self.trickle = Some(Trickle {
            chunk: chunk_bytes.max(1),
            interval,
        });
        self
    }

    /// Pads the body to exactly `total_bytes` with an honest Content-Length. A JSON object gets a
    /// long `"x_padding": "aaaa…"` member so it stays valid JSON; other bodies get trailing
    /// spaces. A body already at least that long is served unpadded.
    #[must_use]
    pub fn oversize(mut self, total_bytes: usize) -> Self {
        self.oversize = Some(total_bytes);
        self
    }

    /// Streams the body with no Content-Length (chunked on HTTP/1.1). Replaces
    /// [`Reply::lying_content_length`].
    #[must_use]
    pub fn chunked(mut self) -> Self {
        self.framing = Framing::Chunked;
        self
    }

    /// Declares `Content-Length: declared` whatever the body's real length, and streams the real
    /// body. What the client then sees is bounded by the protocol: on HTTP/1.1 hyper frames by the
    /// declared length, so a longer declaration ends in a connection closed short of it (an
    /// incomplete body) and a shorter one cuts the body at `declared` bytes (the excess never
    /// leaves the server, since it would corrupt the connection); on HTTP/2 every byte is sent and
    /// a client that checks the length sees the mismatch. Replaces [`Reply::chunked`].
    #[must_use]
    pub fn lying_content_length(mut self, declared: u64) -> Self {
        self.framing = Framing::Declared(declared);
        self
    }

    /// Sends the body and then filler bytes forever (inside an open `x_padding` string for a
    /// JSON object), with no Content-Length; only the client hanging up ends it.
    #[must_use]
    pub fn endless(mut self) -> Self {
        self.endless = true;
        self
    }

    /// Sends `ETag: tag` and answers 304 with no body when the request's If-None-Match matches it
    /// (weak comparison, `*` included). A bare `tag` is quoted (`v1` → `"v1"`); `"v1"` and
    /// `W/"v1"` are kept as given.
    ///
    /// # Panics
    /// If the tag cannot be carried in a header.
    #[must_use]
    pub fn etag(mut self, tag: &str) -> Self {
        self.etag = Some(entity_tag(tag).unwrap_or_else(|error| panic!("{error}")));
        self
    }

    /// Sets an already validated entity tag (the spec form's path).
    pub(crate) fn insert_etag(mut self, tag: HeaderValue) -> Self {
        self.etag = Some(tag);
        self
    }

    /// Builds the response to one request, after the scripted delay. `head_only` answers a HEAD:
    /// the same headers, including the length a GET would declare, and no body.
    pub(crate) async fn respond(
        &self,
        context: &Context,
        request: &HeaderMap,
        head_only: bool,
    ) -> Response {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut headers = context.fill_headers(&self.headers);
        if let Some(tag) = &self.etag {
            headers.insert(ETAG, tag.clone());
            if matches_if_none_match(request, tag) {
                headers.remove(CONTENT_TYPE);
                headers.remove(CONTENT_LENGTH);
                return response(StatusCode::NOT_MODIFIED, headers, Body::empty());
            }
        }
        if matches!(
            self.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        ) {
            // These statuses have no body on the wire; hyper drops any length header too.
            return response(self.status, headers, Body::empty());
        }
        let payload = Payload::new(self.render(context), self.oversize, self.endless);
        let declared = match self.framing {
            Framing::Honest => payload.len(),
            Framing::Chunked => None,
            Framing::Declared(n) => Some(n),
        };
        // A Content-Length set through `with_header` is a lie like `lying_content_length`, and
        // takes its place.
        let custom_length = headers.contains_key(CONTENT_LENGTH);
        if !custom_length && let Some(length) = declared {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        if head_only {
            return response(self.status, headers, Body::empty());
        }
        let plain = payload.as_plain().filter(|_| {
            !custom_length && self.framing == Framing::Honest && self.trickle.is_none()
        });
        if let Some(bytes) = plain {
            // hyper's debug builds assert that a known-length body matches Content-Length, and
            // this one does.
            return response(self.status, headers, Body::from(bytes));
        }
        let announced = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let short =
            matches!((announced, payload.len()), (Some(announced), Some(real)) if real < announced);
        let body = payload.into_stream(
            self.trickle.map(|t| t.chunk),
            self.trickle.map(|t| t.interval),
            short,
        );
        response(self.status, headers, body)
    }

    /// The body with placeholders filled in.
    fn render(&self, context: &Context) -> Rendered {
        let value = match &self.body {
            Source::Empty => return Rendered::Bytes(Bytes::new()),
            Source::Raw(bytes) => return Rendered::Bytes(bytes.clone()),
            Source::Json(value) => context.fill_json(value),
            Source::Document(value) => {
                let mut value = context.fill_json(value);
                if let Value::Object(map) = &mut value {
                    map.insert(
                        "client_id".to_owned(),
                        Value::String(context.client_id.clone()),
                    );
                }
                value
            }
        };
        match value {
            Value::Object(map) => Rendered::Object(map),
            other => Rendered::Bytes(Bytes::from(other.to_string())),
        }
    }
}

/// `status` with `headers` and `body`.
fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Whether any If-None-Match value matches `tag` by weak comparison (RFC 9110 §13.1.2).
fn matches_if_none_match(request: &HeaderMap, tag: &HeaderValue) -> bool {
    let opaque = |t: &[u8]| -> Vec<u8> { t.strip_prefix(b"W/").unwrap_or(t).to_vec() };
    let ours = opaque(tag.as_bytes());
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|candidate| candidate == b"*" || opaque(candidate) == ours)
}

/// `code` as a final status.
pub(crate) fn final_status(code: u16) -> Result<StatusCode, HostError> {
    StatusCode::from_u16(code)
        .ok()
        .filter(|status| !status.is_informational())
        .ok_or(HostError::InvalidStatus(code))
}

/// `name: value` as a header pair.
pub(crate) fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), HostError> {
    let header_name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| HostError::InvalidHeaderName {
            name: name.to_owned(),
        })?;
    let header_value = HeaderValue::from_str(value).map_err(|_| HostError::InvalidHeaderValue {
        name: name.to_owned(),
        value: value.to_owned(),
    })?;
    Ok((header_name, header_value))
}

/// `tag` as an ETag value, quoted unless it already is.
pub(crate) fn entity_tag(tag: &str) -> Result<HeaderValue, HostError> {
    let quoted = if tag.starts_with('"') || tag.starts_with("W/\"") {
        tag.to_owned()
    } else {
        format!("\"{tag}\"")
    };
    header(ETAG.as_str(), &quoted).map(|(_, value)| value)
}

/// The values placeholders stand for, for one route.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    client_id: String,
    origin: String,
}

impl Context {
    /// The context of the route at `path` on `host`, served on `port`.
    pub(crate) fn new(host: &str, port: u16, path: &str) -> Self {
        let origin = format!("https://{host}:{port}");
        Self {
            client_id: format!("{origin}{path}"),
            origin,
        }
    }

    /// `text` with `{client_id}` and `{origin}` replaced, in one pass so a filled-in value is
    /// never scanned again.
    fn fill<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !text.contains('{') {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((before, after)) = rest.split_once('{') {
            out.push_str(before);
            if let Some(after) = after.strip_prefix("client_id}") {
                out.push_str(&self.client_id);
                rest = after;
            } else if let Some(after) = after.strip_prefix("origin}") {
                out.push_str(&self.origin);
                rest = after;
            } else {
                out.push('{');
                rest = after;
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// `value` with placeholders filled in inside every string value (never in member names).
    fn fill_json(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.fill(text).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.fill_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.fill_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// `headers` with placeholders filled in inside every value.
    fn fill_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut filled = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let value = match value.to_str().map(|text| self.fill(text)) {
                Ok(Cow::Owned(text)) => {
                    HeaderValue::from_str(&text).unwrap_or_else(|_| value.clone())
                }
                _ => value.clone(),
            };
            filled.append(name.clone(), value);
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn fills_placeholders_in_one_pass_and_leaves_other_braces() {
        let context = Context::new("www.client.example", 8443, "/c/{origin}");
        assert_eq!(
            context.fill("{origin}/cb {x} {client_id}"),
            "https://www.client.example:8443/cb {x} https://www.client.example:8443/c/{origin}"
        );
        assert!(matches!(context.fill("no braces"), Cow::Borrowed(_)));
    }

    #[test]
    fn fills_placeholders_in_string_values_but_not_member_names() {
        let context = Context::new("h.example", 1, "/p");
        let filled =
            context.fill_json(&json!({"{origin}": ["{origin}/a", 1, {"b": "{client_id}"}]}));
        assert_eq!(
            filled,
            json!({"{origin}": ["https://h.example:1/a", 1, {"b": "https://h.example:1/p"}]})
        );
    }

    #[test]
    fn a_route_repeats_its_last_reply() {
        let route = Route::status(500)
            .then(Reply::status(404))
            .then(Reply::status(201));
        let statuses: Vec<u16> = (0..5).map(|n| route.reply_for(n).status.as_u16()).collect();
        assert_eq!(statuses, [500, 404, 201, 201, 201]);
        assert_eq!(
            Route::status(502).reply_for(7).status,
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn route_modifiers_apply_to_the_reply_added_last() {
        let route = Route::status(500).then(Reply::status(200)).with_status(203);
        assert_eq!(route.reply_for(0).status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            route.reply_for(1).status,
            StatusCode::NON_AUTHORITATIVE_INFORMATION
        );
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let tag = entity_tag("v1").unwrap();
        let request = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(matches_if_none_match(&request("\"v1\""), &tag));
        assert!(matches_if_none_match(&request("W/\"v1\""), &tag));
        assert!(matches_if_none_match(&request("\"v0\", \"v1\""), &tag));
        assert!(matches_if_none_match(&request("*"), &tag));
        assert!(!matches_if_none_match(&request("\"v2\""), &tag));
        assert!(!matches_if_none_match(&HeaderMap::new(), &tag));
    }

    #[test]
    fn informational_and_out_of_range_statuses_are_refused() {
        assert!(matches!(
            final_status(101),
            Err(HostError::InvalidStatus(101))
        ));
        assert!(matches!(
            final_status(1000),
            Err(HostError::InvalidStatus(1000))
        ));
        assert_eq!(final_status(999).unwrap().as_u16(), 999);
    }
}
