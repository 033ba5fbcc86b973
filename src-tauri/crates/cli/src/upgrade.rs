//! What a command prints while it converts a data folder written by an older version: nothing
//! when it is quick; past about a second, plain lines on standard error — what is happening,
//! how far ("38,000 of 95,000 messages (40%)"), and at the end how long it took and the disk
//! space given back. At most two lines a second on a terminal, one every 2 s elsewhere (logs
//! keep them: a relay's or a server's log then says why its start took a minute).

use clientele_store::{GIVING_SPACE_BACK, Store, UpgradeProgress, UpgradeReport};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// Quicker than this, an update says nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// Opens the data folder's store, converting it (with progress lines) if it is older.
pub fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let mut printer = Printer::new();
    Ok(Store::open_dir_with_progress(dir, |p| printer.show(p))?)
}

/// Turns upgrade progress into lines on standard error.
#[derive(Debug)]
pub struct Printer {
    started: Instant,
    interval: Duration,
    last: Option<Instant>,
    step: String,
    shown: bool,
}

impl Default for Printer {
    fn default() -> Self {
        Printer::new()
    }
}

impl Printer {
    pub fn new() -> Printer {
        Printer {
            started: Instant::now(),
            interval: if std::io::stderr().is_terminal() {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(2)
            },
            last: None,
            step: String::new(),
            shown: false,
        }
    }

    pub fn show(&mut self, p: &UpgradeProgress) {
        if let Some(line) = self.line(p, Instant::now()) {
            eprintln!("{line}");
        }
    }

    /// The line to print for `p` at `now`, if any.
    fn line(&mut self, p: &UpgradeProgress, now: Instant) -> Option<String> {
        match p {
            UpgradeProgress::Step {
                what,
                unit,
                done,
                total,
                ..
            } => {
                if now.duration_since(self.started) < QUIET_FOR {
                    return None;
                }
                let new_step = *what != self.step;
                let due = self
                    .last
                    .is_none_or(|last| now.duration_since(last) >= self.interval);
                if !new_step && !due {
                    return None;
                }
                self.step = what.clone();
                self.last = Some(now);
                self.shown = true;
                let mut line = step_line(what, unit, *done, *total);
                if what == GIVING_SPACE_BACK && !new_step {
                    // Said again while it lasts: how long so far, so it doesn't look stuck.
                    line = format!(
                        "{UPDATING} still giving disk space back ({:.0} s so far)",
                        now.duration_since(self.started).as_secs_f64()
                    );
                }
                Some(line)
            }
            UpgradeProgress::Finished(report) => (self.shown
                || now.duration_since(self.started) >= QUIET_FOR)
                .then(|| finished_line(report)),
        }
    }
}

const UPDATING: &str = "Updating your data for this version of Clientele…";

fn step_line(what: &str, unit: &str, done: u64, total: u64) -> String {
    if what == GIVING_SPACE_BACK {
        return format!(
            "{UPDATING} giving disk space back (this can take a minute on a big folder)"
        );
    }
    if total == 0 {
        return UPDATING.to_string();
    }
    let done = done.min(total);
    format!(
        "{UPDATING} {} of {} {unit} ({}%)",
        grouped(done),
        grouped(total),
        done * 100 / total
    )
}

fn finished_line(r: &UpgradeReport) -> String {
    let took = format!("Updated in {:.1} s", r.seconds);
    match (&r.vacuum_failed, r.freed_bytes) {
        (Some(why), _) => format!(
            "{took}; your data is converted, but the space it freed couldn't be given back to the disk yet ({why}). Clientele tries again at the next update."
        ),
        (None, freed) if freed >= 1_000_000 => {
            format!("{took}; gave back {} of disk space.", size(freed))
        }
        (None, _) => format!("{took}."),
    }
}

/// 38000 → "38,000".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in MB or GB, as a file manager shows them.
fn size(bytes: u64) -> String {
    if bytes >= 10_000_000_000 {
        format!("{} GB", bytes / 1_000_000_000)
    } else if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        format!("{} MB", grouped(bytes / 1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(what: &str, done: u64, total: u64) -> UpgradeProgress {
        UpgradeProgress::Step {
            what: what.into(),
            unit: "messages".into(),
            done,
            total,
            version: 7,
        }
    }

    fn report(freed_bytes: u64, vacuum_failed: Option<&str>) -> UpgradeReport {
        UpgradeReport {
            from_version: 6,
            to_version: 7,
            seconds: 12.34,
            freed_bytes,
            vacuum_failed: vacuum_failed.map(str::to_string),
        }
    }

    #[test]
    fn quiet_for_a_second_then_a_line_per_interval_and_on_each_new_step() {
        let mut p = Printer::new();
        p.interval = Duration::from_secs(2);
        let t0 = p.started;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let converting = "Converting your stored messages";
        assert_eq!(p.line(&step(converting, 1_000, 95_000), at(500)), None);
        assert_eq!(
            p.line(&step(converting, 38_000, 95_000), at(1_100))
                .as_deref(),
            Some(
                "Updating your data for this version of Clientele… 38,000 of 95,000 messages (40%)"
            )
        );
        assert_eq!(p.line(&step(converting, 40_000, 95_000), at(2_000)), None);
        assert!(
            p.line(&step(converting, 60_000, 95_000), at(3_200))
                .is_some()
        );
        let giving = p.line(&step(GIVING_SPACE_BACK, 0, 0), at(3_300)).unwrap();
        assert!(giving.contains("giving disk space back"), "{giving}");
        assert_eq!(
            p.line(
                &UpgradeProgress::Finished(report(180_400_000, None)),
                at(9_000)
            )
            .as_deref(),
            Some("Updated in 12.3 s; gave back 180 MB of disk space.")
        );
    }

    #[test]
    fn a_quick_update_says_nothing_and_a_failed_vacuum_is_explained() {
        let mut p = Printer::new();
        let t0 = p.started;
        assert_eq!(
            p.line(&step("Converting your stored messages", 5, 5), t0),
            None
        );
        assert_eq!(
            p.line(
                &UpgradeProgress::Finished(report(0, None)),
                t0 + Duration::from_millis(300)
            ),
            None
        );
        let line = finished_line(&report(0, Some("The disk is full")));
        assert!(
            line.contains("converted") && line.contains("The disk is full"),
            "{line}"
        );
        assert_eq!(size(2_345_000_000), "2.3 GB");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }
}
