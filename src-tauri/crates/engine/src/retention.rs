//! Applying the retention settings and the provider-delete choices by the clock, on a desk,
//! while its listener runs: once at start, then every hour.

use crate::ops::Operations;
use std::sync::Arc;

/// How often the policies are applied.
const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

pub(crate) async fn run(operations: Arc<Operations>, clock: clientele_server::Clock) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (ops, now) = (operations.clone(), clock());
        match tokio::task::spawn_blocking(move || ops.apply_retention(now)).await {
            Ok(Ok(run)) => {
                if run != Default::default() {
                    // Counts only: the erasure log says the same, without anyone's data.
                    tracing::info!(
                        inactive_people = run.inactive_people,
                        deleted_records = run.deleted_records,
                        deliveries = run.deliveries,
                        rejections = run.rejections,
                        "retention: forgot what the settings say to"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "retention couldn't run"),
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }
}
