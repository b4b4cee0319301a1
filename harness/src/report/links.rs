//! Where a requirement is written: section labels and links into the specifications.
//!
//! A catalogue row lists its section per revision (`{"-01" = "4", "-02" = "5"}`) or per document
//! (`{"RFC 8414" = "2"}`). Reports show the newest one and link every one: IETF drafts and RFCs
//! get `#section-N` anchors (for a draft revision, the datatracker page of that revision; for an
//! RFC, the RFC Editor page), dated specifications (MCP) the page of that date, and anything else
//! the document's own URL from its `[document]` table.

use std::cmp::Ordering;

use serde::Serialize;

use crate::catalogue::{Document, Requirement};

/// One section of one revision, with a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionLink {
    /// `-02 §5`, `RFC 8414 §2`, `2025-11-25: Token Handling`.
    pub label: String,
    /// Where to read it.
    pub url: String,
}

/// The section a report groups a requirement under: the newest revision's (the last key in
/// sorted order: `-02` after `-01`, `2026-07-28` after `2025-11-25`).
pub fn primary_section(row: &Requirement) -> Option<(&str, &str)> {
    row.sections
        .iter()
        .next_back()
        .map(|(rev, sec)| (rev.as_str(), sec.as_str()))
}

/// `-02 §5` for numbered sections, `2025-11-25: Token Handling` otherwise.
pub fn label(revision: &str, section: &str) -> String {
    if section_number(section).is_some() {
        format!("{revision} §{section}")
    } else {
        format!("{revision}: {section}")
    }
}

/// The newest section of `row` for a one-line citation: `CIMD -02 §6`, `RFC 8414 §2`
/// (a bare draft revision gets the document's key in front).
pub fn citation(row: &Requirement, document: Option<&Document>) -> Option<String> {
    let (revision, section) = primary_section(row)?;
    let label = label(revision, section);
    Some(match document {
        Some(d) if revision.starts_with('-') => format!("{} {label}", d.key),
        _ => label,
    })
}

/// Every section of `row`, newest last, linked.
pub fn sections(row: &Requirement, document: Option<&Document>) -> Vec<SectionLink> {
    let base = document.map_or("", |d| d.url.as_str());
    row.sections
        .iter()
        .map(|(rev, sec)| SectionLink {
            label: label(rev, sec),
            url: section_url(base, rev, sec),
        })
        .collect()
}

/// The first section number in `section` (`"3, 3.1"` → `3`), if it starts with one.
fn section_number(section: &str) -> Option<&str> {
    let first = section.split([',', ' ', ';']).next()?;
    let numbered = !first.is_empty()
        && first.starts_with(|c: char| c.is_ascii_digit() || c.is_ascii_uppercase())
        && first
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
        && first.bytes().any(|b| b.is_ascii_digit());
    numbered.then_some(first)
}

/// A link to `section` of `revision`, given the document's own URL `base`.
pub fn section_url(base: &str, revision: &str, section: &str) -> String {
    let anchor = section_number(section).map_or(String::new(), |n| format!("#section-{n}"));
    if let Some(number) = revision.strip_prefix("RFC ") {
        return format!("https://www.rfc-editor.org/rfc/rfc{number}{anchor}");
    }
    if revision.starts_with("draft-") {
        return format!("https://datatracker.ietf.org/doc/html/{revision}{anchor}");
    }
    // A bare draft revision (`-02`) of the document the base URL names.
    if let Some(rev) = revision.strip_prefix('-')
        && let Some(draft) = draft_name(base)
    {
        return format!("https://datatracker.ietf.org/doc/html/{draft}-{rev}{anchor}");
    }
    // A dated specification: the same page in that revision.
    if is_date(revision)
        && let Some(date) = base.split('/').find(|part| is_date(part))
    {
        return base.replacen(date, revision, 1);
    }
    base.to_owned()
}

/// `draft-ietf-oauth-…` from a datatracker document URL.
fn draft_name(url: &str) -> Option<&str> {
    url.split('/')
        .find(|part| part.starts_with("draft-"))
        .filter(|name| !name.is_empty())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Orders section labels so `4.10` follows `4.9` and numbered sections precede named ones.
pub fn compare_sections(a: &str, b: &str) -> Ordering {
    let key = |s: &str| -> Vec<(u64, String)> {
        s.split(['.', ' ', '§', ','])
            .map(|part| (part.parse::<u64>().unwrap_or(u64::MAX), part.to_owned()))
            .collect()
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIMD: &str =
        "https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/";
    const MCP: &str =
        "https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization";

    #[test]
    fn draft_revisions_and_rfcs_link_to_numbered_sections() {
        assert_eq!(
            section_url(CIMD, "-02", "4.1"),
            "https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-02#section-4.1"
        );
        assert_eq!(
            section_url(CIMD, "RFC 8414", "3, 3.1"),
            "https://www.rfc-editor.org/rfc/rfc8414#section-3"
        );
        assert_eq!(
            section_url(CIMD, "draft-ietf-oauth-rfc7523bis-11", "A.2"),
            "https://datatracker.ietf.org/doc/html/draft-ietf-oauth-rfc7523bis-11#section-A.2"
        );
    }

    #[test]
    fn dated_and_named_sections_link_to_the_page() {
        assert_eq!(
            section_url(MCP, "2026-07-28", "Token Handling"),
            "https://modelcontextprotocol.io/specification/2026-07-28/basic/authorization"
        );
        assert_eq!(section_url(CIMD, "issue #100", "discussion"), CIMD);
        assert_eq!(
            label("2025-11-25", "Token Handling"),
            "2025-11-25: Token Handling"
        );
        assert_eq!(label("-02", "5"), "-02 §5");
    }

    #[test]
    fn sections_sort_numerically() {
        assert_eq!(compare_sections("4.9", "4.10"), Ordering::Less);
        assert_eq!(compare_sections("10", "9"), Ordering::Greater);
        assert_eq!(compare_sections("3", "Introduction"), Ordering::Less);
    }
}
