//! cimd-benches: benchmarks and load drivers for the reference AS and its metadata cache.
//!
//! Speed is measured, never asserted in unit tests: criterion benches live in `benches/`, load
//! drivers in `src/bin/`, and each prints the command and the machine facts next to its figures.
//! `scripts/bench/side-by-side.sh` drives the `side-by-side` bin, which measures the reference AS
//! and node oidc-provider in one run and writes `BENCHMARKS.md`.
//!
//! Layout:
//! - [`latency`]: latency samples, their percentiles, and the median and range of repeated runs.
//! - [`load`]: the closed-loop HTTP load (time- and count-bounded) and the concurrent burst.
//! - [`documents`]: a document server that answers every path with a valid metadata document.
//! - [`process`]: resident memory and CPU time from `/proc`, and the machine's facts.
//! - `benches/metadata_cache.rs`: criterion benches of the metadata cache (hit, lookup, miss over
//!   HTTPS, revalidation answered by 304, 1,000 coalesced concurrent misses).
//! - `src/bin/authorize_load.rs`: authorize requests per second for one cached ephemeral client,
//!   everything in one process.
//! - `src/bin/side_by_side.rs`: the reference AS and oidc-provider, each its own pinned process.
//! - `src/bin/cache_memory.rs`: resident memory held by 100,000 cached clients.

pub mod documents;
pub mod latency;
pub mod load;
pub mod process;
