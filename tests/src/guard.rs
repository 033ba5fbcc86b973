//! Processes a test starts, stopped — with every process they started — when the test ends,
//! whether it passes or fails: a failed assertion unwinds through the guard's `Drop`. Without
//! that, one failed test leaves an app, a server or a WebDriver running, and the next test trips
//! over it (the desktop app's single instance hands a new launch over to the leftover one).
//!
//! The child runs in a process group of its own, so everything it starts (WebKit's web and
//! network processes, tauri-driver's WebKitWebDriver and the app that one launches) can be
//! stopped together without signalling the test itself. Processes that leave the group are
//! still stopped if the guard saw them as descendants (see [`ProcessGuard::remember_descendants`]).

use crate::procs::descendants;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long stopped processes get to disappear before the guard gives up on them (and says so).
const REAP_WITHIN: Duration = Duration::from_secs(20);

/// One process, by its pid and its start time (clock ticks after boot): a pid that is reused
/// later names another process, which the guard must leave alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    started: u64,
}

/// `/proc/PID/stat`'s fields after the name (which may hold spaces and parentheses): state is
/// the first, the process group the third, the start time the twentieth.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

impl Proc {
    fn of(pid: u32) -> Option<Proc> {
        let fields = stat_fields(pid)?;
        Some(Proc {
            pid,
            started: fields.get(19)?.parse().ok()?,
        })
    }

    /// Still running (a zombie has finished: it only waits for its parent to reap it).
    fn alive(self) -> bool {
        stat_fields(self.pid).is_some_and(|f| {
            f.first().is_some_and(|state| state != "Z")
                && f.get(19).and_then(|s| s.parse().ok()) == Some(self.started)
        })
    }
}

/// The live processes in process group `group`.
fn group_members(group: u32) -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| {
                f.first().is_some_and(|state| state != "Z")
                    && f.get(2).and_then(|g| g.parse().ok()) == Some(group)
            })
        })
        .filter_map(Proc::of)
        .collect()
}

/// A child process (and the processes it starts) that is stopped and reaped when dropped.
#[derive(Debug)]
pub struct ProcessGuard {
    child: Child,
    name: String,
    /// Between SIGTERM and SIGKILL when stopping; zero sends SIGKILL at once.
    grace: Duration,
    /// Descendants seen so far.
    seen: Vec<Proc>,
    status: Option<ExitStatus>,
    stopped: bool,
}

impl ProcessGuard {
    /// Starts `cmd` in a process group of its own. `name` is for messages; `grace` is how long
    /// [`ProcessGuard::stop`] lets it end after SIGTERM before killing it and its group.
    pub fn spawn(name: &str, cmd: &mut Command, grace: Duration) -> std::io::Result<ProcessGuard> {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn()?;
        Ok(ProcessGuard {
            child,
            name: name.to_owned(),
            grace,
            seen: Vec::new(),
            status: None,
            stopped: false,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's standard streams, for a caller that asked for pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its exit status once it has exited (reaping it), else `None`. While it runs, notes its
    /// descendants, so they are stopped too even if they outlive it.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.remember_descendants();
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `within` for it to exit; `None` if it is still running then.
    pub fn wait_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Notes every live descendant, so [`ProcessGuard::stop`] finds them even after their
    /// parent has gone (they are then the init process's, out of reach of a walk from the child).
    pub fn remember_descendants(&mut self) {
        for pid in descendants(self.child.id()) {
            if let Some(p) = Proc::of(pid)
                && !self.seen.contains(&p)
            {
                self.seen.push(p);
            }
        }
    }

    /// Sends `signal` to the child alone (not its group), unless it has been reaped.
    pub fn signal(&mut self, signal: Signal) {
        if self.try_wait().is_none() {
            send(self.child.id(), signal);
        }
    }

    /// Sends SIGKILL to the child alone (no chance to clean up) and reaps it; what it started
    /// is left to [`ProcessGuard::stop`].
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
        }
        self.wait_within(REAP_WITHIN)
    }

    /// Stops it and everything it started: SIGTERM to the child and `grace` to end on its own,
    /// then SIGKILL to its process group and to every descendant seen; then waits (a while)
    /// for all of them to be gone. Returns the child's exit status. Safe to call again.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.stopped {
            return self.status;
        }
        self.stopped = true;
        if self.try_wait().is_none() && !self.grace.is_zero() {
            send(self.child.id(), Signal::Term);
            self.wait_within(self.grace);
        }
        let leader = self.child.id();
        // The group's id is the child's pid, which can't be reused while the child is unreaped
        // or while any process is still in the group: signalling the group is then safe.
        let members = group_members(leader);
        for p in members.iter().copied() {
            if !self.seen.contains(&p) {
                self.seen.push(p);
            }
        }
        if self.status.is_none() || !members.is_empty() {
            send_group(leader, Signal::Kill);
        }
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        for p in &self.seen {
            if p.alive() {
                send(p.pid, Signal::Kill);
            }
        }
        let deadline = Instant::now() + REAP_WITHIN;
        let mut left: Vec<Proc> = self.seen.clone();
        while !left.is_empty() {
            left.retain(|p| p.alive());
            if Instant::now() >= deadline {
                eprintln!(
                    "{}: processes it started are still running after SIGKILL: {:?}",
                    self.name,
                    left.iter().map(|p| p.pid).collect::<Vec<_>>()
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.status
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The signals a test sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    /// Freezes the process (as a laptop's lid closing does to everything on it).
    Stop,
    /// Lets a frozen process go on.
    Cont,
}

#[cfg(unix)]
impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

#[cfg(unix)]
#[allow(unsafe_code)] // kill(2): no memory is shared with the call
fn send(pid: u32, signal: Signal) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes plain integers.
        unsafe { libc::kill(pid, signal.number()) };
    }
}

#[cfg(unix)]
#[allow(unsafe_code)] // kill(2) with a negative pid: the whole process group
fn send_group(group: u32, signal: Signal) {
    if let Ok(group) = libc::pid_t::try_from(group)
        && group > 1
    {
        // SAFETY: kill(2) takes plain integers.
        unsafe { libc::kill(-group, signal.number()) };
    }
}

#[cfg(not(unix))]
fn send(_pid: u32, _signal: Signal) {}

#[cfg(not(unix))]
fn send_group(_group: u32, _signal: Signal) {}
