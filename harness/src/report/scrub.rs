//! Scrubbing run-specific values out of report texts, so two runs of an unchanged suite produce
//! identical report files and a diff shows only behaviour that changed.
//!
//! What changes between runs: loopback ports (every party listens on an ephemeral port, so the
//! issuer and every client ID URL carry one), and random values (`state`, codes, tokens, CSRF
//! values). Ports are recognised as four or five digits after a `:` that follows a host name or
//! address; random values as runs of 16 or more base64url characters mixing upper case, lower
//! case and digits (or of 32 or more mixing cases alone), which host names (lower case),
//! requirement IDs (upper case) and JSON member names never do. Known literals, such as the issuer, can be named explicitly.

/// Replaces run-specific values with placeholders: `{port}`, `{random}` and named literals.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    literals: Vec<(String, String)>,
}

/// The shortest run of base64url characters taken for a random value.
const RANDOM_MIN: usize = 16;

impl Scrubber {
    /// A scrubber for ports and random values only.
    pub fn new() -> Scrubber {
        Scrubber::default()
    }

    /// Also replaces every occurrence of `value` with `placeholder` (before ports and random
    /// values, so `https://as.example:8443` can become `{issuer}` as a whole).
    #[must_use]
    pub fn with_literal(mut self, value: &str, placeholder: &str) -> Scrubber {
        if !value.is_empty() {
            self.literals
                .push((value.to_owned(), placeholder.to_owned()));
            // Longest first, so a literal that contains another wins.
            self.literals
                .sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        }
        self
    }

    /// `text` with every run-specific value replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (value, placeholder) in &self.literals {
            text = text.replace(value, placeholder);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        // Walk maximal runs of base64url characters; everything between them is copied as is.
        while let Some(start) = rest.find(is_token_char) {
            let (before, from) = rest.split_at(start);
            out.push_str(before);
            let len = from.find(|c| !is_token_char(c)).unwrap_or(from.len());
            let (run, after) = from.split_at(len);
            if is_port(&out, run) {
                out.push_str("{port}");
            } else if is_random(run) {
                out.push_str("{random}");
            } else {
                out.push_str(run);
            }
            rest = after;
        }
        out.push_str(rest);
        out
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Four or five digits right after `host:` (not after `"name":`, which is a JSON number).
fn is_port(before: &str, run: &str) -> bool {
    let mut back = before.chars().rev();
    (4..=5).contains(&run.len())
        && run.bytes().all(|b| b.is_ascii_digit())
        && back.next() == Some(':')
        && back
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == ']')
}

/// Runs this long that mix cases are random even without a digit: a 256-bit base64url value
/// (43 characters) holds no digit about once in 1,500 draws, which made reports flaky.
const RANDOM_NO_DIGIT_MIN: usize = 32;

fn is_random(run: &str) -> bool {
    let mixed_case =
        run.bytes().any(|b| b.is_ascii_uppercase()) && run.bytes().any(|b| b.is_ascii_lowercase());
    let digit = run.bytes().any(|b| b.is_ascii_digit());
    mixed_case && (run.len() >= RANDOM_NO_DIGIT_MIN || (run.len() >= RANDOM_MIN && digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_mixed_case_value_without_digits_is_random() {
        assert!(is_random("fb_sVLZSbxtdChZttbMjHnORqBQjtxNapjitUaaPfgA"));
        assert!(!is_random("app.flow-native-mailed-code.cimd.example"));
        assert!(!is_random("CIMD-FETCH-03"));
    }

    #[test]
    fn ports_after_a_host_become_placeholders_but_json_numbers_stay() {
        let s = Scrubber::new();
        assert_eq!(
            s.scrub(r#"iss = "https://localhost:33447", [::1]:8080, 127.0.0.1:49200/cb"#),
            r#"iss = "https://localhost:{port}", [::1]:{port}, 127.0.0.1:{port}/cb"#
        );
        assert_eq!(
            s.scrub(r#"{"expires_in":3600,"n":12345}, status 400"#),
            r#"{"expires_in":3600,"n":12345}, status 400"#
        );
    }

    #[test]
    fn random_values_become_placeholders_but_names_and_ids_stay() {
        let s = Scrubber::new();
        assert_eq!(
            s.scrub(r#"state = "b5JuC2rGOdRxKZdpXQGx7EmZYHqtp1mQ1KEE7LFOIjk" for CIMD-FETCH-03"#),
            r#"state = "{random}" for CIMD-FETCH-03"#
        );
        let stable =
            "app.flow-native-mailed-code.cimd.example /client_id_metadata_document_supported";
        assert_eq!(s.scrub(stable), stable);
    }

    #[test]
    fn literals_are_replaced_whole_and_longest_first() {
        let s = Scrubber::new()
            .with_literal("https://as.test:8443", "{issuer}")
            .with_literal("https://as.test:8443/token", "{token_endpoint}");
        assert_eq!(
            s.scrub("https://as.test:8443/token and https://as.test:8443"),
            "{token_endpoint} and {issuer}"
        );
    }
}
