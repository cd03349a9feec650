//! CPU time and memory of a process, from `/proc`.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, anyhow};

/// Which process to read: a PID, or the load generator itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    Pid(u32),
    SelfProc,
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Self::Pid(pid) => format!("/proc/{pid}/{file}"),
            Self::SelfProc => format!("/proc/self/{file}"),
        }
    }

    /// User plus system CPU time of all the process's threads so far.
    pub fn cpu_time(self) -> anyhow::Result<Duration> {
        let path = self.path("stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| anyhow!("bad {path}"))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 (utime) and 15 (stime) of proc(5); `after` starts at field 3.
        let ticks = |i: usize| -> anyhow::Result<u64> {
            fields
                .get(i)
                .ok_or_else(|| anyhow!("short {path}"))?
                .parse()
                .with_context(|| format!("bad {path}"))
        };
        let total = ticks(11)? + ticks(12)?;
        Ok(Duration::from_secs_f64(
            total as f64 / clock_ticks_per_second() as f64,
        ))
    }

    /// CPU time of the process's current threads with nanosecond resolution, from
    /// `/proc/<pid>/task/*/schedstat` (the clock-tick counts of [`Proc::cpu_time`] are too coarse for work that
    /// takes milliseconds). Threads that ended are not counted: use it over spans in which the server keeps its
    /// threads, and cross-check with [`Proc::cpu_time`] over longer spans.
    pub fn cpu_time_precise(self) -> anyhow::Result<Duration> {
        self.schedstat_field(0)
    }

    /// Time the process's (current) threads spent runnable but waiting for a CPU, from
    /// `/proc/<pid>/task/*/schedstat`: how much the scheduler held it back, e.g. for other processes on its core.
    pub fn run_queue_wait(self) -> anyhow::Result<Duration> {
        self.schedstat_field(1)
    }

    /// Field `field` (0: time on a CPU, 1: time waiting for one, in ns) summed over `/proc/<pid>/task/*/schedstat`.
    fn schedstat_field(self, field: usize) -> anyhow::Result<Duration> {
        let dir = self.path("task");
        let mut total_ns: u64 = 0;
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))? {
            let path = entry?.path().join("schedstat");
            // A thread may end between listing and reading.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let value = text
                .split_whitespace()
                .nth(field)
                .and_then(|v| v.parse::<u64>().ok());
            total_ns += value.ok_or_else(|| anyhow!("bad {}", path.display()))?;
        }
        Ok(Duration::from_nanos(total_ns))
    }

    /// Resident set size and its peak (VmRSS, VmHWM), in kB.
    pub fn memory_kb(self) -> anyhow::Result<Memory> {
        let path = self.path("status");
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> Option<u64> {
            status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        };
        Ok(Memory {
            rss_kb: field("VmRSS:").unwrap_or(0),
            peak_kb: field("VmHWM:").unwrap_or(0),
        })
    }

    /// Whether the process still exists (and is not a zombie).
    pub fn alive(self) -> bool {
        std::fs::read_to_string(self.path("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| !r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }
}

/// A memory reading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kb: u64,
    pub peak_kb: u64,
}

/// `sysconf(_SC_CLK_TCK)`, the unit of the times in `/proc/<pid>/stat`, asked of `getconf` once (100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = Proc::SelfProc;
        let before = me.cpu_time().unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(me.cpu_time().unwrap() >= before);
        let mem = me.memory_kb().unwrap();
        assert!(mem.rss_kb > 0 && mem.peak_kb >= mem.rss_kb);
        me.run_queue_wait().unwrap();
        assert!(me.cpu_time_precise().unwrap() > Duration::ZERO);
        assert!(me.alive());
        assert!(Proc::Pid(std::process::id()).alive());
    }
}
