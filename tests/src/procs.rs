//! Measuring processes for the benchmarks: a command's wall time and exact peak memory, and the
//! memory of a running process and its descendants, from Linux's `/proc`.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Instant;

/// What a finished command took.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub status: ExitStatus,
    /// Wall time from spawning to exit.
    pub seconds: f64,
    /// Its peak resident memory in kB (`ru_maxrss`): the kernel's high-water mark for that one
    /// process, exact however short the peak (no polling); 0 where unavailable. It is never
    /// below the few MB of the small process that starts it (see [`MeasuredCommand`]).
    pub peak_rss_kb: u64,
    /// The CPU time it used, user and system, over all its threads (`ru_utime + ru_stime`); 0
    /// where unavailable.
    pub cpu_seconds: f64,
}

/// The first argument that turns a benchmark program into the measuring launcher.
const MEASURE_FLAG: &str = "--clientele-measure-child";

/// A command to run and measure, started through a fresh, small launcher process.
///
/// Why a launcher: Linux's `ru_maxrss` for a child counts the memory of the process it was
/// started from (the child begins as a copy of — or, with `posix_spawn`, a borrower of — its
/// parent's memory, and `exec` keeps that high-water mark). A benchmark that has just built a
/// data set is hundreds of MB, so it re-runs its own executable with [`MEASURE_FLAG`] (a few
/// MB, see [`serve_measure_request`]), which starts the command, waits for it with wait4(2)
/// and reports its time and peak.
///
/// Set the command's arguments, environment, folder and stdio on `cmd` as usual: the launcher
/// passes all of them on.
#[derive(Debug)]
pub struct MeasuredCommand {
    pub cmd: Command,
    report: tempfile::TempPath,
}

impl MeasuredCommand {
    pub fn new(program: impl AsRef<std::ffi::OsStr>) -> MeasuredCommand {
        let report = tempfile::NamedTempFile::new()
            .expect("a file for the measurement")
            .into_temp_path();
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.arg(MEASURE_FLAG).arg(&report).arg(program.as_ref());
        MeasuredCommand { cmd, report }
    }

    /// Runs the command to completion and measures it.
    pub fn run(mut self) -> std::io::Result<Measured> {
        let status = self.cmd.status()?;
        let text = std::fs::read_to_string(&self.report)?;
        let mut fields = text.split_whitespace();
        let mut next = || fields.next().unwrap_or("");
        let (raw_status, seconds, peak, cpu) = (next(), next(), next(), next());
        match (
            raw_status.parse(),
            seconds.parse(),
            peak.parse(),
            cpu.parse(),
        ) {
            (Ok(raw), Ok(seconds), Ok(peak_rss_kb), Ok(cpu_seconds)) => Ok(Measured {
                status: exit_status(raw),
                seconds,
                peak_rss_kb,
                cpu_seconds,
            }),
            _ => Err(std::io::Error::other(format!(
                "the measuring launcher failed ({status}) and reported {text:?}"
            ))),
        }
    }
}

/// In a program that uses [`MeasuredCommand`], call this first in `main`: when the program was
/// started as the measuring launcher, it runs the command, writes `STATUS SECONDS PEAK_KB CPU` to
/// the report file and exits with the command's exit code; otherwise it returns.
pub fn serve_measure_request() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(MEASURE_FLAG)) {
        return;
    }
    let (Some(report), Some(program)) = (args.next(), args.next()) else {
        eprintln!("{MEASURE_FLAG} REPORT PROGRAM [ARG…]");
        std::process::exit(64);
    };
    let started = Instant::now();
    let measured = Command::new(&program)
        .args(args)
        .spawn()
        .and_then(wait_with_peak);
    let (status, peak, cpu) = match measured {
        Ok(m) => m,
        Err(e) => {
            eprintln!("couldn't run {}: {e}", program.to_string_lossy());
            std::process::exit(127);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let line = format!("{} {seconds} {peak} {cpu}\n", raw_status(status));
    if let Err(e) = std::fs::write(&report, line) {
        eprintln!("couldn't write the measurement: {e}");
        std::process::exit(70);
    }
    std::process::exit(status.code().unwrap_or(1));
}

#[cfg(unix)]
fn raw_status(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.into_raw()
}

#[cfg(unix)]
fn exit_status(raw: i32) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(raw)
}

#[cfg(windows)]
fn raw_status(status: ExitStatus) -> i32 {
    status.code().unwrap_or(1)
}

#[cfg(windows)]
fn exit_status(raw: i32) -> ExitStatus {
    use std::os::windows::process::ExitStatusExt;
    ExitStatus::from_raw(raw as u32)
}

/// Waits for `child` with wait4(2), which reports the resource usage of that one child (std's
/// `wait` doesn't; `getrusage(RUSAGE_CHILDREN)` would mix every child ever waited for).
#[cfg(unix)]
#[allow(unsafe_code)] // two libc calls: wait4 and a zeroed plain-integer struct
fn wait_with_peak(child: std::process::Child) -> std::io::Result<(ExitStatus, u64, f64)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain integers and timevals, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are live locals, writable for the duration of the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    // The child is reaped: `Child` is dropped without waiting (dropping never waits or kills).
    drop(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // Linux reports ru_maxrss in kB.
    Ok((
        ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
    ))
}

#[cfg(not(unix))]
fn wait_with_peak(mut child: std::process::Child) -> std::io::Result<(ExitStatus, u64, f64)> {
    Ok((child.wait()?, 0, 0.0))
}

/// A `kB` figure from `/proc/PID/status` (`VmRSS`, `VmHWM`, …); `None` once the process is gone.
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    proc_kb(&format!("/proc/{pid}/status"), key)
}

/// The process's proportional set size (`Pss` in `/proc/PID/smaps_rollup`), in kB: its resident
/// memory with each shared page divided among the processes sharing it, so a sum over processes
/// counts shared libraries once.
pub fn pss_kb(pid: u32) -> Option<u64> {
    proc_kb(&format!("/proc/{pid}/smaps_rollup"), "Pss")
}

fn proc_kb(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The CPU time a running process has used so far, user and system over all its threads
/// (`/proc/PID/stat`'s utime + stime), in seconds; `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc`'s CPU times.
#[cfg(unix)]
#[allow(unsafe_code)] // sysconf(3): plain integers
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf takes and returns plain integers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(not(unix))]
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// The process's name (`/proc/PID/comm`, at most 15 bytes).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Every live descendant of `pid` (children, their children, …), parents before children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent_of(&entry.path()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, _) in parents.iter().filter(|(_, pp)| *pp == parent) {
            if !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// The parent pid from `/proc/PID/stat` (the field after the name, which may hold spaces and
/// parentheses, so it is found after the last `)`).
fn parent_of(proc_dir: &Path) -> Option<u32> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}
