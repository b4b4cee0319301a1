//! metadata-host: an HTTPS host that serves client ID metadata documents and JWKS, and misbehaves
//! on cue.
//!
//! In CIMD the `client_id` is the https URL of a JSON document that the authorization server
//! fetches. Conformance scenarios need such documents at real host names, and they need to see how
//! an authorization server reacts when the host does not behave: redirects, wrong statuses,
//! missing or odd headers, oversize, endless or slow bodies, lying lengths, cache validators. One
//! [`MetadataHost`] is one loopback HTTPS listener that serves any number of virtual host names
//! (certificates come from a mock-kit [`TestCa`] via SNI). Each (host, path) is mounted with a
//! [`Route`]: a script of [`Reply`]s in which request n gets reply n and the last reply repeats.
//! Every request is journalled by mock-kit, so the judge can tell what the server fetched, how
//! often and with which headers.
//!
//! Layout:
//! - [`host`]: [`MetadataHost`], the listener, its route table and the request handler (404 for
//!   unknown routes, 405 for methods other than GET and HEAD).
//! - [`route`]: [`Route`] and [`Reply`], the builder API: bodies (document, JSON, JWKS, raw),
//!   statuses, headers, delays, ETag revalidation and body misbehaviour switches.
//! - `payload` (private): how a reply's bytes reach the wire: padding, trickling, chunked, lying and
//!   endless bodies.
//! - [`spec`]: [`RouteSpec`], the plain-data (serde) form of a route for scenario files, and its
//!   conversion into a [`Route`].

pub mod host;
mod payload;
pub mod route;
pub mod spec;

pub use host::MetadataHost;
pub use mock_kit::{Journal, JournalEntry, TestCa};
pub use route::{Reply, Route};
pub use spec::{RouteSpec, TrickleSpec};

/// Everything that can go wrong starting a metadata host or turning a [`RouteSpec`] into a route.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The loopback socket could not be bound.
    #[error("could not bind the metadata host's loopback socket: {0}")]
    Bind(#[from] std::io::Error),
    /// mock-kit could not start the HTTPS listener.
    #[error("could not start the metadata host: {0}")]
    Listen(#[from] mock_kit::KitError),
    /// A status outside 200..=999: informational statuses cannot be a final reply.
    #[error("status {0} cannot be scripted: use a final status from 200 to 999")]
    InvalidStatus(u16),
    /// Two body sources in one reply.
    #[error("a reply has one body, but both `{first}` and `{second}` are set")]
    ConflictingBodies {
        /// The first body field found.
        first: &'static str,
        /// The second body field found.
        second: &'static str,
    },
    /// `document` was not a JSON object, so it has no `client_id` member to fill in.
    #[error(
        "`document` must be a JSON object (its client_id is filled in), found {found}; load \
         fixture files before building a route, or use `json` to serve any JSON verbatim"
    )]
    DocumentNotObject {
        /// The JSON type found instead (`"a string"`, `"an array"`, ...).
        found: &'static str,
    },
    /// A reply with neither a body nor a status says nothing.
    #[error("a reply needs a body (`document`, `json` or `raw`) or a `status`")]
    NoStatusOrBody,
    /// `location` without `status`: which redirect was meant is a guess, so it is refused.
    #[error("`location` needs an explicit `status` (e.g. 302)")]
    LocationWithoutStatus,
    /// A header name that HTTP cannot carry.
    #[error("invalid header name {name:?}")]
    InvalidHeaderName {
        /// The name as given.
        name: String,
    },
    /// A header value that HTTP cannot carry (control characters, non-visible bytes).
    #[error("invalid value for header {name}: {value:?}")]
    InvalidHeaderValue {
        /// The header name.
        name: String,
        /// The value as given.
        value: String,
    },
    /// The same header twice in a `headers` map, differing only in case.
    #[error("header {name} is given twice (header names are case-insensitive)")]
    DuplicateHeader {
        /// The second spelling found.
        name: String,
    },
    /// A trickle of zero-byte chunks would never finish.
    #[error("`trickle.chunk` must be at least 1 byte")]
    ZeroTrickleChunk,
    /// `chunked` and `content_length` both choose how the body is framed.
    #[error("`chunked` and `content_length` both set the body framing; choose one")]
    ConflictingFraming,
    /// A `then` entry with its own `then`.
    #[error(
        "`then` entries cannot have a `then` of their own; list every reply in the top-level `then`"
    )]
    NestedThen,
    /// An error inside the `then` entry at `index` (0-based).
    #[error("then[{index}]: {error}")]
    InThen {
        /// Position in the `then` list.
        index: usize,
        /// What was wrong with that entry.
        error: Box<HostError>,
    },
}
