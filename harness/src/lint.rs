//! `cimd-conformance lint`: check a client metadata document before publishing it.
//!
//! The lint deliberately runs the reference AS's own validators (`reference_as::cimd`), so a
//! document that lints clean is exactly one the reference AS accepts; those validators are
//! themselves checked against an independent oracle by property tests. This is the one place the
//! harness uses reference-AS code: the conformance judge never does (design principle 6).

use reference_as::cimd::url::{ClientIdUrl, check_client_id_url};
use reference_as::cimd::{Findings, document::check_document};
use reference_as::faults::Faults;
use serde::Serialize;

/// The lint's answer, printed as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    /// True when there are no errors (warnings allowed).
    pub valid: bool,
    /// Violations that make an AS refuse the client, each naming its requirement.
    pub errors: Vec<reference_as::cimd::Finding>,
    /// Discouraged but legal choices.
    pub warnings: Vec<reference_as::cimd::Finding>,
}

/// Lints the client ID URL and, if it is well formed, the document served at it.
pub fn lint(client_id: &str, document: &[u8]) -> LintReport {
    let mut findings: Findings = check_client_id_url(client_id);
    match ClientIdUrl::parse(client_id, &Faults::none()) {
        Ok(url) => {
            let doc = check_document(&url, document);
            findings.errors.extend(doc.errors);
            findings.warnings.extend(doc.warnings);
        }
        // The URL errors are already listed; the document cannot be checked against a bad URL
        // for client_id equality, so say so rather than guessing.
        Err(_) => findings.warnings.push(reference_as::cimd::Finding {
            requirement: "CIMD-DOC-03",
            message: "the document was not checked because the client ID URL is invalid".to_owned(),
        }),
    }
    LintReport {
        valid: findings.errors.is_empty(),
        errors: findings.errors,
        warnings: findings.warnings,
    }
}
