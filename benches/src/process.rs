//! Readings from `/proc`: resident memory and CPU time of a process, and the machine's facts.
//!
//! Linux only, like the load script. CPU times come from `/proc/<pid>/stat` in clock ticks;
//! Linux fixes the tick the kernel reports there (`USER_HZ`) at 100 per second on every
//! architecture this project runs on, so no `sysconf` call (and no `unsafe`) is needed.

use std::io;
use std::process::Command;
use std::time::Duration;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
fn status_field(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// Resident set size (`VmRSS`) of process `pid`, in bytes.
pub fn rss(pid: u32) -> io::Result<u64> {
    status_field(pid, "VmRSS")
}

/// Peak resident set size (`VmHWM`) of process `pid`, in bytes.
pub fn peak_rss(pid: u32) -> io::Result<u64> {
    status_field(pid, "VmHWM")
}

/// User plus system CPU time used so far by process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3 of the man page; utime is 14 and stime 15.
    let tick = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))
    };
    let ticks = tick(14 - 3)? + tick(15 - 3)?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// CPU time spent busy (not idle, not waiting for I/O) by all CPUs together since boot: the
/// machine-wide counterpart of [`cpu_time`], to tell what other processes took during a run.
pub fn machine_busy_time() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .ok_or_else(|| io::Error::other("no cpu line in /proc/stat"))?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: everything but idle (3) and iowait (4).
    let busy: u64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Ok(Duration::from_millis(busy * 1000 / TICKS_PER_SECOND))
}

/// What the `cache-memory` bin measured: its `--json` output line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CacheMemoryReading {
    /// Cached clients measured (beyond the warm-up).
    pub clients: usize,
    /// `VmRSS` before them, after the warm-up.
    pub rss_before_bytes: u64,
    /// `VmRSS` with them cached.
    pub rss_after_bytes: u64,
    /// The growth divided by `clients`.
    pub bytes_per_client: u64,
    /// Time to fetch, validate and cache them.
    pub fill_seconds: f64,
    /// Documents fetched for them (exactly `clients`, or the run fails).
    pub fetches: u64,
}

impl CacheMemoryReading {
    /// `VmRSS` growth for the measured clients.
    pub fn growth_bytes(&self) -> u64 {
        self.rss_after_bytes.saturating_sub(self.rss_before_bytes)
    }
}

/// Mebibytes, for reports.
#[allow(
    clippy::cast_precision_loss,
    reason = "memory sizes are far below 2^52 bytes"
)]
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The facts a benchmark report states about the machine, as (name, value) pairs; a fact that
/// cannot be read says why instead.
pub fn machine_facts(node: Option<&str>) -> Vec<(&'static str, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let mut facts = vec![
        // `--all`: the driver itself runs pinned, and plain `nproc` would count only its cores.
        ("nproc --all", command_line("nproc", &["--all"])),
        ("CPU", cpu),
        ("memory", memory),
        ("kernel", command_line("uname", &["-srm"])),
        ("rustc", command_line("rustc", &["--version"])),
    ];
    if let Some(node) = node {
        facts.push(("node", command_line(node, &["--version"])));
    }
    facts
}

/// The first line `program args` prints, or why it could not be run.
pub fn command_line(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        Ok(out) => format!("{program} exited with {}", out.status),
        Err(error) => format!("{program}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_this_process_memory_and_cpu_time() {
        let pid = std::process::id();
        let rss = rss(pid).unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(peak_rss(pid).unwrap() >= rss);
        // Burn a little CPU so the reading cannot be a constant zero by accident.
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(spin.elapsed());
        }
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
        assert!(machine_busy_time().unwrap() >= cpu_time(pid).unwrap());
    }
}
