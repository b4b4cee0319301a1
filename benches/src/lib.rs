//! cimd-benches: benchmarks and load drivers for the reference AS and its metadata cache.
//!
//! Speed is measured, never asserted in unit tests: criterion benches live in `benches/`, load
//! drivers in `src/bin/`, and each prints the command and the machine facts next to its figures.
//!
//! Layout:
//! - [`latency`]: latency samples and the percentiles the drivers report.
//! - `src/bin/authorize_load.rs`: authorize requests per second for one cached ephemeral client.

pub mod latency;
