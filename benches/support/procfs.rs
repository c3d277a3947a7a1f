//! Process CPU time and resident memory from `/proc/self` (Linux), for the end-to-end bench.
//!
//! `/proc/self/stat` instead of `getrusage`: the crate forbids `unsafe` in every target, and
//! the figures are the same (the kernel fills both from the same task counters). Its CPU fields
//! are in USER_HZ ticks, which Linux exposes as 100 per second on every architecture
//! (`sysconf(_SC_CLK_TCK)`), so a 1.5 s window resolves CPU time to about 1%.
#![allow(dead_code)]

use std::time::Duration;

/// Linux's USER_HZ, fixed at 100 for user space.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far: this process's threads (utime + stime) and its waited-for children's
/// (cutime + cstime). `None` off Linux.
pub fn cpu_times() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'. Field 14 (utime) is then at index 11.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    let [utime, stime, cutime, cstime] = f[..] else {
        return None;
    };
    let ticks = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SECOND);
    Some((ticks(utime + stime), ticks(cutime + cstime)))
}

/// Resident set size in bytes (`/proc/self/statm` field 2, in 4 KiB pages on x86-64/aarch64).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split(' ').nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
