//! Counters of the AS's HTTP caches and their Prometheus text exposition for `GET /metrics`.
//!
//! Every request from an ephemeral client goes through the metadata cache, so how it behaves is
//! worth watching in production and checking in tests: hits, misses, fetches, conditional
//! revalidations answered 304 or 200, callers that waited for another caller's fetch, entries
//! evicted for space, and failed fetches by reason. The counters are plain atomics bumped
//! on the request path (relaxed ordering: they are statistics, not synchronisation); the
//! exposition is written by hand in the Prometheus text format 0.0.4, because a handful of
//! counters does not justify a metrics crate.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a fetch for the cache failed: the `reason` label of `fetch_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureReason {
    /// The URL itself was refused before any connection (scheme, syntax).
    Url,
    /// The host resolved to, or was, a special-use address (CIMD-SEC-01).
    Ssrf,
    /// The host answered a status other than 200, or a 304 that matched nothing (CIMD-FETCH-02).
    Status,
    /// The host answered a redirect (CIMD-FETCH-03).
    Redirect,
    /// Connecting or reading took longer than the configured limits (CIMD-FETCH-04).
    Timeout,
    /// The connection or TLS failed for another reason (CIMD-FETCH-04).
    Network,
    /// The body passed the byte cap (CIMD-SEC-06).
    TooLarge,
    /// The response was not served as JSON (CIMD-DOC-05).
    ContentType,
    /// The body was not a valid document (or not JSON, for plain JSON fetches).
    Invalid,
    /// A valid document that this server's policy refuses (CIMD-DOC-09).
    Policy,
    /// The fetch task ended without an answer (it panicked or the runtime shut down).
    Interrupted,
}

impl FailureReason {
    /// Every reason, in label order.
    pub const ALL: [FailureReason; 11] = [
        FailureReason::Url,
        FailureReason::Ssrf,
        FailureReason::Status,
        FailureReason::Redirect,
        FailureReason::Timeout,
        FailureReason::Network,
        FailureReason::TooLarge,
        FailureReason::ContentType,
        FailureReason::Invalid,
        FailureReason::Policy,
        FailureReason::Interrupted,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Url => "url",
            FailureReason::Ssrf => "ssrf",
            FailureReason::Status => "status",
            FailureReason::Redirect => "redirect",
            FailureReason::Timeout => "timeout",
            FailureReason::Network => "network",
            FailureReason::TooLarge => "too_large",
            FailureReason::ContentType => "content_type",
            FailureReason::Invalid => "invalid",
            FailureReason::Policy => "policy",
            FailureReason::Interrupted => "interrupted",
        }
    }

    /// The position in [`FailureReason::ALL`] (and in the counter array).
    fn index(self) -> usize {
        self as usize
    }
}

/// The live counters of one cache; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct CacheMetrics {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    fetches: AtomicU64,
    not_modified: AtomicU64,
    modified: AtomicU64,
    evicted_for_size: AtomicU64,
    failures: [AtomicU64; FailureReason::ALL.len()],
}

/// Adds one to a counter.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl CacheMetrics {
    /// A lookup answered from a fresh entry, without contacting the host.
    pub fn hit(&self) {
        bump(&self.hits);
    }

    /// A lookup that found no fresh entry (none at all, or a stale one).
    pub fn miss(&self) {
        bump(&self.misses);
    }

    /// A miss that waited for a fetch another caller had already started.
    pub fn coalesced(&self) {
        bump(&self.coalesced);
    }

    /// A request sent to the host (unconditional or conditional).
    pub fn fetch(&self) {
        bump(&self.fetches);
    }

    /// A conditional request answered 304: the stored entry was refreshed.
    pub fn not_modified(&self) {
        bump(&self.not_modified);
    }

    /// A conditional request answered 200: the stored entry was replaced.
    pub fn modified(&self) {
        bump(&self.modified);
    }

    /// An entry removed to stay within the cache's bounds.
    pub fn evicted_for_size(&self) {
        bump(&self.evicted_for_size);
    }

    /// A failed fetch.
    pub fn failure(&self, reason: FailureReason) {
        if let Some(counter) = self.failures.get(reason.index()) {
            bump(counter);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> CacheCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheCounts {
            hits: read(&self.hits),
            misses: read(&self.misses),
            coalesced: read(&self.coalesced),
            fetches: read(&self.fetches),
            not_modified: read(&self.not_modified),
            modified: read(&self.modified),
            evicted_for_size: read(&self.evicted_for_size),
            failures: FailureReason::ALL
                .map(|reason| (reason, self.failures.get(reason.index()).map_or(0, read))),
        }
    }
}

/// The counters of one cache at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCounts {
    /// Lookups answered from a fresh entry.
    pub hits: u64,
    /// Lookups that found no fresh entry.
    pub misses: u64,
    /// Misses that waited for another caller's fetch instead of fetching.
    pub coalesced: u64,
    /// Requests sent to hosts.
    pub fetches: u64,
    /// Conditional requests answered 304.
    pub not_modified: u64,
    /// Conditional requests answered 200.
    pub modified: u64,
    /// Entries removed to stay within the bounds.
    pub evicted_for_size: u64,
    /// Failed fetches per reason, in [`FailureReason::ALL`] order.
    pub failures: [(FailureReason, u64); FailureReason::ALL.len()],
}

impl CacheCounts {
    /// Failed fetches for `reason`.
    pub fn failures(&self, reason: FailureReason) -> u64 {
        self.failures
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

/// One cache as the exposition shows it: its name, counters and current size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheReport {
    /// The `cache` label: `metadata` for client metadata documents, `json` for other JSON
    /// (JWKS) fetched on a client's say-so.
    pub name: &'static str,
    /// The counters.
    pub counts: CacheCounts,
    /// Entries held now, fresh or stale (a stale one waits to be revalidated or replaced).
    pub entries: u64,
    /// The entries' estimated size in bytes (what the byte bound counts).
    pub weighted_bytes: u64,
}

/// The Prometheus text exposition (format 0.0.4) of `caches`.
pub fn exposition(caches: &[CacheReport]) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, samples: &mut dyn Iterator<Item = (String, u64)>| {
            let _ = writeln!(out, "# HELP reference_as_cache_{name} {help}");
            let _ = writeln!(out, "# TYPE reference_as_cache_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "reference_as_cache_{name}{{{labels}}} {value}");
            }
        };
    let per_cache = |pick: fn(&CacheReport) -> u64| {
        caches
            .iter()
            .map(move |c| (format!("cache=\"{}\"", c.name), pick(c)))
    };
    family(
        "hits_total",
        "counter",
        "Lookups answered from a fresh entry without contacting the host.",
        &mut per_cache(|c| c.counts.hits),
    );
    family(
        "misses_total",
        "counter",
        "Lookups that found no fresh entry (none, or a stale one).",
        &mut per_cache(|c| c.counts.misses),
    );
    family(
        "coalesced_total",
        "counter",
        "Misses that waited for a fetch another caller had started instead of fetching.",
        &mut per_cache(|c| c.counts.coalesced),
    );
    family(
        "fetches_total",
        "counter",
        "Requests sent to hosts, unconditional or conditional.",
        &mut per_cache(|c| c.counts.fetches),
    );
    family(
        "revalidations_total",
        "counter",
        "Conditional requests (If-None-Match, If-Modified-Since) by answer.",
        &mut caches.iter().flat_map(|c| {
            [
                (
                    format!("cache=\"{}\",result=\"not_modified\"", c.name),
                    c.counts.not_modified,
                ),
                (
                    format!("cache=\"{}\",result=\"modified\"", c.name),
                    c.counts.modified,
                ),
            ]
        }),
    );
    family(
        "evictions_total",
        "counter",
        "Entries removed to stay within the entry and byte bounds.",
        &mut per_cache(|c| c.counts.evicted_for_size),
    );
    family(
        "fetch_failures_total",
        "counter",
        "Fetches that produced no usable response, by reason; none of them is cached.",
        &mut caches.iter().flat_map(|c| {
            c.counts.failures.iter().map(|(reason, n)| {
                (
                    format!("cache=\"{}\",reason=\"{}\"", c.name, reason.as_str()),
                    *n,
                )
            })
        }),
    );
    family(
        "entries",
        "gauge",
        "Entries held, fresh or stale (a stale one waits to be revalidated or replaced).",
        &mut per_cache(|c| c.entries),
    );
    family(
        "weighted_bytes",
        "gauge",
        "Estimated bytes held by the entries, as the byte bound counts them.",
        &mut per_cache(|c| c.weighted_bytes),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_and_label() {
        let metrics = CacheMetrics::default();
        for (n, reason) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), n);
            metrics.failure(*reason);
        }
        metrics.failure(FailureReason::Status);
        let counts = metrics.snapshot();
        assert_eq!(counts.failures(FailureReason::Status), 2);
        assert_eq!(counts.failures(FailureReason::Policy), 1);
        let labels: std::collections::BTreeSet<_> =
            FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), FailureReason::ALL.len());
    }

    #[test]
    fn the_exposition_has_help_type_and_one_sample_per_label_set() {
        let metrics = CacheMetrics::default();
        metrics.hit();
        metrics.hit();
        metrics.not_modified();
        metrics.failure(FailureReason::Timeout);
        let text = exposition(&[
            CacheReport {
                name: "metadata",
                counts: metrics.snapshot(),
                entries: 3,
                weighted_bytes: 4096,
            },
            CacheReport {
                name: "json",
                counts: CacheMetrics::default().snapshot(),
                entries: 0,
                weighted_bytes: 0,
            },
        ]);
        for line in [
            "# TYPE reference_as_cache_hits_total counter",
            "reference_as_cache_hits_total{cache=\"metadata\"} 2",
            "reference_as_cache_hits_total{cache=\"json\"} 0",
            "reference_as_cache_revalidations_total{cache=\"metadata\",result=\"not_modified\"} 1",
            "reference_as_cache_fetch_failures_total{cache=\"metadata\",reason=\"timeout\"} 1",
            "reference_as_cache_fetch_failures_total{cache=\"json\",reason=\"status\"} 0",
            "# TYPE reference_as_cache_entries gauge",
            "reference_as_cache_weighted_bytes{cache=\"metadata\"} 4096",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        // Every sample line is `name{labels} value`, so any Prometheus parser reads it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_default();
            assert!(
                series.ends_with('}') && value.parse::<u64>().is_ok(),
                "{line}"
            );
        }
    }
}
