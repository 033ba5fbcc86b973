//! Noticing that the computer slept. A pull that was waiting when the lid closed is on a
//! connection that is most likely dead (the relay, or a NAT gateway in between, dropped it long
//! ago), and TCP won't say so until a timeout. So the puller watches for the jump a suspend leaves
//! between the wall clock (which kept going) and the monotonic clock (which stopped with the
//! computer), and on a jump drops the old connection and pulls at once on a new one.

use std::time::{Duration, Instant, SystemTime};

/// How often the clocks are compared.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A gap larger than this between the clocks' progress is taken as a suspend (a clock adjustment
/// of that size also counts; pulling again early is harmless).
pub const SUSPEND_GAP: Duration = Duration::from_secs(5);

/// Compares the two clocks' progress between checks.
#[derive(Debug, Clone, Copy)]
pub struct SuspendDetector {
    wall: SystemTime,
    mono: Instant,
}

impl SuspendDetector {
    pub fn new(wall: SystemTime, mono: Instant) -> SuspendDetector {
        SuspendDetector { wall, mono }
    }

    /// True if the computer slept since the last check.
    pub fn woke(&mut self, wall: SystemTime, mono: Instant) -> bool {
        let wall_gone = wall.duration_since(self.wall).unwrap_or_default();
        let mono_gone = mono.duration_since(self.mono);
        self.wall = wall;
        self.mono = mono;
        wall_gone > mono_gone + SUSPEND_GAP
    }
}

/// Resolves when the computer wakes from sleep (checked every [`CHECK_EVERY`]).
pub async fn next_wake() {
    let mut detector = SuspendDetector::new(SystemTime::now(), Instant::now());
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if detector.woke(SystemTime::now(), Instant::now()) {
            tracing::info!("the computer woke up; pulling from the relay again");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspend_shows_as_wall_time_the_monotonic_clock_missed() {
        let (wall, mono) = (SystemTime::now(), Instant::now());
        let mut d = SuspendDetector::new(wall, mono);
        // Awake: both clocks move together (a little jitter is not a wake).
        assert!(!d.woke(
            wall + Duration::from_secs(2),
            mono + Duration::from_millis(1_990)
        ));
        // Eight hours asleep: the wall clock moved, the monotonic one only by the check interval.
        assert!(d.woke(
            wall + Duration::from_secs(2 + 8 * 3600),
            mono + Duration::from_secs(4)
        ));
        // And awake again afterwards.
        assert!(!d.woke(
            wall + Duration::from_secs(4 + 8 * 3600),
            mono + Duration::from_secs(6)
        ));
        // A wall clock set backwards is not a wake.
        assert!(!d.woke(wall, mono + Duration::from_secs(8)));
    }
}
