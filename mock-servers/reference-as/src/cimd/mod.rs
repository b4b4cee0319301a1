//! Client ID Metadata Documents (CIMD): ephemeral clients whose `client_id` is an https URL.
//!
//! The reference AS is strict: every rule of draft-ietf-oauth-client-id-metadata-document that it
//! can check, it checks, and every refusal names the catalogue requirement it enforces. Each
//! validator comes in two forms: a `parse` that the AS uses (first error wins, faults may relax a
//! rule) and a `check_*` that collects every error and warning for the lint command.
//!
//! Layout:
//! - [`url`]: [`ClientIdUrl`], the raw-string rules for the client_id URL.
//! - [`document`]: [`ClientMetadata`], the rules for the fetched JSON document.
//! - [`redirect`]: registered redirect URI shapes and request-time matching.
//! - [`policy`]: [`EphemeralPolicy`], what a product admin allows ephemeral clients to do.
//! - [`cache`]: the HTTP cache (RFC 9111 lifetimes, clamping, revalidation, single-flight,
//!   entry and byte bounds) for metadata documents and JWKS.
//! - [`resolver`]: [`ClientResolver`], the whole pipeline from a raw client_id to metadata.

pub mod cache;
pub mod document;
pub mod policy;
pub mod redirect;
pub mod resolver;
pub mod url;

use std::fmt;

pub use document::{ApplicationType, AuthMethod, ClientMetadata, check_document};
pub use policy::{
    CacheSettings, DomainMode, DomainPattern, DomainPolicy, EphemeralPolicy, FetchLimits,
    ScopePolicy,
};
pub use redirect::{check_redirect_uris, redirect_uri_matches};
pub use resolver::{CimdError, ClientResolver, ResolveError};
pub use url::{ClientIdUrl, check_client_id_url, looks_like_url};

use crate::faults::Fault;

/// One broken (or, in [`Findings::warnings`], discouraged) requirement, with a precise message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The catalogue ID, e.g. `CIMD-URL-04`.
    pub requirement: &'static str,
    /// What exactly was wrong, quoting the offending value.
    pub message: String,
}

impl Finding {
    /// A finding for `requirement`.
    pub fn new(requirement: &'static str, message: impl Into<String>) -> Self {
        Self {
            requirement,
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.requirement, self.message)
    }
}

impl std::error::Error for Finding {}

/// Everything a lint run found: errors make the input invalid, warnings do not.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Findings {
    /// Broken requirements: the reference AS refuses the input.
    pub errors: Vec<Finding>,
    /// Discouraged but legal (or refused only by the strict reference AS, see each validator).
    pub warnings: Vec<Finding>,
}

impl Findings {
    /// Whether there are no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// Appends another set of findings.
    pub fn extend(&mut self, other: Findings) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
}

/// How serious an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Breaks a requirement: an error everywhere.
    Error,
    /// Legal but refused by the strict reference AS (e.g. a root path): a lint warning.
    Strict,
    /// Legal and accepted: a lint warning only.
    Warning,
}

/// A finding as the validators produce it internally: with its level and the fault (if any)
/// that makes the AS tolerate it.
#[derive(Debug, Clone)]
struct Issue {
    level: Level,
    relaxed_by: Option<Fault>,
    finding: Finding,
}

/// Collects [`Issue`]s in the order they were found.
#[derive(Debug, Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn error(&mut self, requirement: &'static str, message: impl Into<String>) {
        self.push(Level::Error, None, requirement, message);
    }

    fn relaxable(&mut self, fault: Fault, requirement: &'static str, message: impl Into<String>) {
        self.push(Level::Error, Some(fault), requirement, message);
    }

    fn strict(&mut self, requirement: &'static str, message: impl Into<String>) {
        self.push(Level::Strict, None, requirement, message);
    }

    fn warning(&mut self, requirement: &'static str, message: impl Into<String>) {
        self.push(Level::Warning, None, requirement, message);
    }

    fn push(
        &mut self,
        level: Level,
        relaxed_by: Option<Fault>,
        requirement: &'static str,
        message: impl Into<String>,
    ) {
        self.0.push(Issue {
            level,
            relaxed_by,
            finding: Finding::new(requirement, message),
        });
    }

    /// The first issue the AS refuses, given the faults switched on.
    fn first_refusal(&self, faults: &crate::faults::Faults) -> Option<&Finding> {
        self.0
            .iter()
            .find(|i| i.level != Level::Warning && !i.relaxed_by.is_some_and(|f| faults.on(f)))
            .map(|i| &i.finding)
    }

    /// The lint view: errors, and warnings for both strict refusals and plain warnings.
    fn into_findings(self) -> Findings {
        let mut findings = Findings::default();
        for issue in self.0 {
            match issue.level {
                Level::Error => findings.errors.push(issue.finding),
                Level::Strict | Level::Warning => findings.warnings.push(issue.finding),
            }
        }
        findings
    }
}

/// Quotes a peer-supplied string for a message: Debug-escaped (no raw control characters reach
/// a log or an HTML page) and cut to a readable length.
fn quote(value: &str) -> String {
    const MAX: usize = 160;
    if value.len() <= MAX {
        return format!("{value:?}");
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &value[..end])
}
