//! A target's own counters around a scenario: `GET {issuer}/metrics` just before its first step
//! and just after its last, parsed from the Prometheus text format, for the evidence log only.
//!
//! The reference AS counts its cache's hits, misses, fetches, revalidations, coalesced waits,
//! evictions and failed fetches; seeing them move next to the wire evidence tells the person
//! reading a report what the cache did (one fetch and three hits, say). They are never judged:
//! the oracle stays independent of the target's own account of itself (design principle 6), and
//! a target that serves no `/metrics` (most third-party servers) loses nothing. A scrape that
//! fails, answers other than 200, or is not in the text format records nothing and is never a
//! failure. The parser is small and lenient: it reads `name{labels} value [timestamp]` samples,
//! `# TYPE` lines, and skips comments and any line it cannot read.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::HarnessError;
use crate::agent::Trust;

/// How long a scrape may take: it is evidence, so a slow target must not hold the run up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The largest exposition read; a bigger answer is not a metrics page worth keeping.
const MAX_BYTES: usize = 1 << 20;

/// One parsed exposition: the samples by series, and the declared type of each family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Sample values keyed by `name{labels}` (labels in the order served, values re-escaped).
    pub samples: BTreeMap<String, f64>,
    /// `# TYPE` declarations: family name to `counter`, `gauge`, `histogram`, `summary` or
    /// `untyped`.
    pub types: BTreeMap<String, String>,
}

/// Parses a Prometheus text exposition (format 0.0.4), skipping every line it cannot read.
pub fn parse(text: &str) -> Exposition {
    let mut exposition = Exposition::default();
    for line in text.lines() {
        let line = line.trim_matches([' ', '\t']);
        if let Some(comment) = line.strip_prefix('#') {
            if let Some((family, kind)) = type_line(comment) {
                exposition.types.insert(family.to_owned(), kind.to_owned());
            }
            // `# HELP` text and other comments are documentation, not evidence.
        } else if let Some((series, value)) = sample(line) {
            exposition.samples.insert(series, value);
        }
    }
    exposition
}

/// `# TYPE name kind` (after the `#`), if well formed.
fn type_line(comment: &str) -> Option<(&str, &str)> {
    let mut words = comment.split_ascii_whitespace();
    if words.next()? != "TYPE" {
        return None;
    }
    let (name, kind) = (words.next()?, words.next()?);
    let known = ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind);
    (known && words.next().is_none() && metric_name(name).1.is_empty() && !name.is_empty())
        .then_some((name, kind))
}

/// `name{labels} value [timestamp]` as its series key and value, if well formed.
fn sample(line: &str) -> Option<(String, f64)> {
    let (name, rest) = metric_name(line);
    if name.is_empty() {
        return None;
    }
    let (labels, rest) = match rest.trim_start_matches([' ', '\t']).strip_prefix('{') {
        Some(inner) => labels(inner)?,
        None => (Vec::new(), rest),
    };
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value: f64 = fields.next()?.parse().ok()?;
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some((series_key(name, &labels), value))
}

/// Splits a leading metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) off `text`; empty if none.
fn metric_name(text: &str) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(text.len(), |(i, _)| i);
    text.split_at(end)
}

/// Reads `a="x",b="y"}` (after the `{`), unescaping `\\`, `\"` and `\n` in values; returns the
/// pairs and what follows the `}`.
fn labels(mut rest: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((pairs, after));
        }
        let end = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        let (name, after) = rest.split_at(end);
        if name.is_empty() {
            return None;
        }
        let after = after.trim_start_matches([' ', '\t']).strip_prefix('=')?;
        let after = after.trim_start_matches([' ', '\t']).strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let close = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return None,
                },
                (_, c) => value.push(c),
            }
        };
        pairs.push((name.to_owned(), value));
        rest = after[close + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

/// `name{a="x",b="y"}` (or `name` alone), with label values escaped as the format writes them.
fn series_key(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    format!("{name}{{{}}}", pairs.join(","))
}

/// Fetches and parses `{issuer}/metrics` for the evidence log.
#[derive(Debug, Clone)]
pub struct Scraper {
    http: reqwest::Client,
    url: String,
}

impl Scraper {
    /// A scraper of `issuer`'s metrics that trusts and resolves as the user agent does.
    ///
    /// Errors: [`HarnessError::Http`] when the TLS settings cannot be built.
    pub fn new(trust: &Trust, issuer: &str) -> Result<Scraper, HarnessError> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .user_agent("cimd-conformance-metrics");
        let builder = trust.apply(builder)?;
        Ok(Scraper {
            http: builder.build()?,
            url: format!("{}/metrics", issuer.trim_end_matches('/')),
        })
    }

    /// The current exposition, or `None` when the target serves none: a transport error, a
    /// status other than 200, a content type other than text, a body over 1 MiB, or text with no
    /// readable sample.
    pub async fn scrape(&self) -> Option<Exposition> {
        let mut response = self.http.get(&self.url).send().await.ok()?;
        if response.status() != reqwest::StatusCode::OK {
            return None;
        }
        if let Some(kind) = response.headers().get(reqwest::header::CONTENT_TYPE) {
            let kind = kind.to_str().ok()?.to_ascii_lowercase();
            if !(kind.starts_with("text/plain") || kind.starts_with("application/openmetrics-text"))
            {
                return None;
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.ok()? {
            if body.len() + chunk.len() > MAX_BYTES {
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        let exposition = parse(std::str::from_utf8(&body).ok()?);
        (!exposition.samples.is_empty()).then_some(exposition)
    }
}

/// The evidence entry for two scrapes: both in full, the `delta` of every series whose value
/// changed (a series absent before counts from 0, as a new counter does), the families' types,
/// and whether other scenarios used the same AS meanwhile (`shared`: then the delta includes
/// their traffic too).
pub fn entry(before: &Exposition, after: &Exposition, shared: bool) -> serde_json::Value {
    let values = |e: &Exposition| -> serde_json::Map<String, serde_json::Value> {
        e.samples
            .iter()
            .map(|(k, v)| (k.clone(), number(*v)))
            .collect()
    };
    let delta: serde_json::Map<String, serde_json::Value> = after
        .samples
        .iter()
        .filter_map(|(series, now)| {
            let then = before.samples.get(series).copied().unwrap_or(0.0);
            let change = now - then;
            // Non-finite values (NaN, ±Inf) have no meaningful difference.
            (change.is_finite() && change != 0.0).then(|| (series.clone(), number(change)))
        })
        .collect();
    let mut types = before.types.clone();
    types.extend(after.types.clone());
    serde_json::json!({
        "shared": shared,
        "before": values(before),
        "after": values(after),
        "delta": delta,
        "types": types,
    })
}

/// A sample value as JSON: an integer when it is one (counters), a float otherwise, and the
/// format's spelling for values JSON cannot hold.
fn number(value: f64) -> serde_json::Value {
    // Below 2^53 every integer is exact in an f64, so the cast loses nothing.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "checked integral and in range"
        )]
        return serde_json::Value::from(value as i64);
    }
    serde_json::Number::from_f64(value).map_or_else(
        || {
            let text = if value.is_nan() {
                "NaN"
            } else if value > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            };
            serde_json::Value::from(text)
        },
        serde_json::Value::Number,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_escapes_and_types_are_read_and_bad_lines_skipped() {
        let text = "# HELP reference_as_cache_hits_total Lookups \\\\ answered.\n\
                    # TYPE reference_as_cache_hits_total counter\n\
                    reference_as_cache_hits_total{cache=\"metadata\"} 2\n\
                    reference_as_cache_hits_total{cache=\"json\"} 0 1712345678000\n\
                    # a free comment\n\
                    \n\
                    weird{path=\"C:\\\\tmp\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",} 1.5\n\
                    up 1\n\
                    <html>\n\
                    broken{cache=\"metadata\" 3\n\
                    bad_escape{v=\"\\q\"} 1\n\
                    no_value{cache=\"x\"}\n\
                    two_values 1 2 3\n\
                    9starts_with_digit 4\n\
                    # TYPE broken_type nonsense\n";
        let parsed = parse(text);
        let expected: BTreeMap<String, f64> = [
            ("reference_as_cache_hits_total{cache=\"metadata\"}", 2.0),
            ("reference_as_cache_hits_total{cache=\"json\"}", 0.0),
            (
                "weird{path=\"C:\\\\tmp\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\"}",
                1.5,
            ),
            ("up", 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(parsed.samples, expected);
        assert_eq!(
            parsed.types.into_iter().collect::<Vec<_>>(),
            [(
                "reference_as_cache_hits_total".to_owned(),
                "counter".to_owned()
            )]
        );
    }

    #[test]
    fn the_entry_keeps_both_scrapes_and_the_changed_series_only() {
        let before = parse("# TYPE hits counter\nhits{c=\"m\"} 1\nsame 5\nratio 0.5\n");
        let after = parse("hits{c=\"m\"} 4\nsame 5\nratio 0.75\nnew 2\nodd NaN\n");
        let entry = entry(&before, &after, true);
        assert_eq!(entry["shared"], true);
        assert_eq!(entry["before"]["hits{c=\"m\"}"], 1);
        assert_eq!(entry["after"]["odd"], "NaN");
        assert_eq!(
            entry["delta"],
            serde_json::json!({ "hits{c=\"m\"}": 3, "ratio": 0.25, "new": 2 })
        );
        assert_eq!(entry["types"]["hits"], "counter");
    }
}
