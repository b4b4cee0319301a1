//! Routes as plain data, for scenario files.
//!
//! A [`RouteSpec`] is what a scenario writes under `[metadata_host.routes]`; unknown keys are
//! rejected by serde, and [`Route::try_from`] rejects combinations that make no sense (two bodies,
//! a `location` without a `status`, a zero-byte trickle, ...) with an error naming the field. Fixture
//! paths are not resolved here: the loader replaces `document = "metadata/x.json"` with the file's
//! JSON before conversion, and a string left in `document` is reported as such.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use serde::Deserialize;
use serde_json::Value;

use crate::route::{entity_tag, final_status, header};
use crate::{HostError, Reply, Route};

/// One reply of a route, and through `then` the replies after it.
///
/// ```toml
/// "/clients/hop"   = { status = 302, location = "{origin}/clients/good" }
/// "/clients/flaky" = { status = 500, then = [{ document = { client_name = "Flaky" } }] }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Status code (200..=999); default 200 when there is a body, required when there is none.
    pub status: Option<u16>,
    /// `Location` header (placeholders allowed); needs `status`.
    pub location: Option<String>,
    /// A client metadata document (a JSON object); its `client_id` is set to the route's URL.
    pub document: Option<Value>,
    /// JSON served verbatim, except `{client_id}` and `{origin}` in string values.
    pub json: Option<Value>,
    /// A body served byte for byte (as UTF-8), Content-Type `application/json` unless
    /// `content_type` says otherwise.
    pub raw: Option<String>,
    /// Content-Type to send; `""` sends none at all.
    pub content_type: Option<String>,
    /// Further headers (e.g. Cache-Control, Expires); placeholders allowed in values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Milliseconds to wait before the status line.
    pub delay_ms: Option<u64>,
    /// Send the body slowly.
    pub trickle: Option<TrickleSpec>,
    /// Pad the body to this many bytes (honest Content-Length).
    pub oversize: Option<usize>,
    /// Send no Content-Length (chunked on HTTP/1.1).
    #[serde(default)]
    pub chunked: bool,
    /// Declare this Content-Length whatever the body's real length.
    pub content_length: Option<u64>,
    /// Follow the body with filler bytes forever.
    #[serde(default)]
    pub endless: bool,
    /// Send this ETag and answer a matching If-None-Match with 304.
    pub etag: Option<String>,
    /// The replies for the following requests, in order; the last one repeats.
    #[serde(default)]
    pub then: Vec<RouteSpec>,
}

/// A slow body: `chunk` bytes every `interval_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrickleSpec {
    /// Bytes per chunk (at least 1).
    pub chunk: usize,
    /// Milliseconds between chunks.
    pub interval_ms: u64,
}

impl TryFrom<RouteSpec> for Route {
    type Error = HostError;

    fn try_from(mut spec: RouteSpec) -> Result<Self, HostError> {
        let then = std::mem::take(&mut spec.then);
        let mut route = Route::new(spec.into_reply()?);
        for (index, next) in then.into_iter().enumerate() {
            let reply = if next.then.is_empty() {
                next.into_reply()
            } else {
                Err(HostError::NestedThen)
            };
            let reply = reply.map_err(|error| HostError::InThen {
                index,
                error: Box::new(error),
            })?;
            route = route.then(reply);
        }
        Ok(route)
    }
}

impl RouteSpec {
    /// This entry alone (its `then` already taken out) as a [`Reply`].
    fn into_reply(self) -> Result<Reply, HostError> {
        let status = self.status.map(final_status).transpose()?;
        if self.location.is_some() && status.is_none() {
            return Err(HostError::LocationWithoutStatus);
        }
        let mut reply = match body_of(self.document, self.json, self.raw)? {
            Some(Body::Document(Value::Object(map))) => Reply::document(Value::Object(map)),
            Some(Body::Document(other)) => {
                return Err(HostError::DocumentNotObject {
                    found: json_type(&other),
                });
            }
            Some(Body::Json(value)) => Reply::json(value),
            Some(Body::Raw(text)) => Reply::raw_untyped(Bytes::from(text)).insert_header(
                CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            ),
            None if status.is_some() => Reply::status(200),
            None => return Err(HostError::NoStatusOrBody),
        };
        if let Some(status) = status {
            reply = reply.with_status(status.as_u16());
        }
        if let Some(location) = &self.location {
            let (name, value) = header(LOCATION.as_str(), location)?;
            reply = reply.insert_header(name, value);
        }
        match self.content_type.as_deref() {
            None => {}
            Some("") => reply = reply.without_header(CONTENT_TYPE.as_str()),
            Some(content_type) => {
                let (name, value) = header(CONTENT_TYPE.as_str(), content_type)?;
                reply = reply.insert_header(name, value);
            }
        }
        let mut seen = Vec::new();
        for (name, value) in &self.headers {
            let (name_parsed, value) = header(name, value)?;
            if seen.contains(&name_parsed) {
                return Err(HostError::DuplicateHeader { name: name.clone() });
            }
            seen.push(name_parsed.clone());
            reply = reply.insert_header(name_parsed, value);
        }
        if let Some(delay_ms) = self.delay_ms {
            reply = reply.with_delay(Duration::from_millis(delay_ms));
        }
        if let Some(trickle) = self.trickle {
            if trickle.chunk == 0 {
                return Err(HostError::ZeroTrickleChunk);
            }
            reply = reply.trickle(trickle.chunk, Duration::from_millis(trickle.interval_ms));
        }
        if let Some(total) = self.oversize {
            reply = reply.oversize(total);
        }
        match (self.chunked, self.content_length) {
            (true, Some(_)) => return Err(HostError::ConflictingFraming),
            (true, None) => reply = reply.chunked(),
            (false, Some(declared)) => reply = reply.lying_content_length(declared),
            (false, None) => {}
        }
        if self.endless {
            reply = reply.endless();
        }
        if let Some(tag) = &self.etag {
            reply = reply.insert_etag(entity_tag(tag)?);
        }
        Ok(reply)
    }
}

/// The one body field that is set.
enum Body {
    Document(Value),
    Json(Value),
    Raw(String),
}

/// Picks the body field, refusing two at once.
fn body_of(
    document: Option<Value>,
    json: Option<Value>,
    raw: Option<String>,
) -> Result<Option<Body>, HostError> {
    let present = [
        document.is_some().then_some("document"),
        json.is_some().then_some("json"),
        raw.is_some().then_some("raw"),
    ];
    let mut names = present.into_iter().flatten();
    if let (Some(first), Some(second)) = (names.next(), names.next()) {
        return Err(HostError::ConflictingBodies { first, second });
    }
    Ok(document
        .map(Body::Document)
        .or(json.map(Body::Json))
        .or(raw.map(Body::Raw)))
}

/// "a string", "an array", ... for error messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
