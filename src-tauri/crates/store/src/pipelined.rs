//! Pure work on a second thread while this one writes: a derivation pass makes profile states,
//! identity keys and people rows (serialising, compressing, building search terms — no database
//! reads) faster than SQLite writes them, and a desk has at least two cores.

use std::sync::mpsc::sync_channel;

/// Items handed over at a time (a channel message per item would cost more than small items'
/// work).
const CHUNK: usize = 64;

/// Below this many items everything runs on this thread: a thread costs more than it saves.
const ALONE_BELOW: usize = 2 * CHUNK;

/// Calls `make` on every item, in order, on a second thread, and `take` with each item and what
/// `make` made of it, in order, on this one — `take` runs while `make` goes on with the items
/// after. Stops at `take`'s first error (the second thread stops at its next chunk).
pub(crate) fn pipelined<T: Sync, R: Send, E>(
    items: &[T],
    make: impl Fn(&T) -> R + Sync,
    mut take: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E> {
    if items.len() < ALONE_BELOW {
        for item in items {
            take(item, make(item))?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // A few chunks ahead: enough to keep both threads busy, little memory.
        let (send, made) = sync_channel::<Vec<R>>(4);
        let make = &make;
        let maker = scope.spawn(move || {
            for chunk in items.chunks(CHUNK) {
                if send.send(chunk.iter().map(make).collect()).is_err() {
                    return;
                }
            }
        });
        let taken = (|| {
            for (chunk, results) in items.chunks(CHUNK).zip(made.iter()) {
                for (item, result) in chunk.iter().zip(results) {
                    take(item, result)?;
                }
            }
            Ok(())
        })();
        // Its next send fails once nobody receives.
        drop(made);
        match maker.join() {
            Ok(()) => taken,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_taken_in_order_with_what_was_made_of_it() {
        for n in [0, 1, ALONE_BELOW - 1, ALONE_BELOW, 1000, 1001] {
            let items: Vec<u64> = (0..n as u64).collect();
            let mut taken = Vec::new();
            pipelined(
                &items,
                |i| i * 3,
                |&i, made| {
                    taken.push((i, made));
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
            assert_eq!(taken, items.iter().map(|&i| (i, i * 3)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_stops_both_threads() {
        let items: Vec<u64> = (0..10_000).collect();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let mut taken = 0;
        let result = pipelined(
            &items,
            |i| {
                made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *i
            },
            |&i, _| {
                taken += 1;
                if i == 300 { Err(i) } else { Ok(()) }
            },
        );
        assert_eq!(result, Err(300));
        assert_eq!(taken, 301);
        // The second thread stopped a few chunks ahead at most, not at the end.
        assert!(made.load(std::sync::atomic::Ordering::Relaxed) < 300 + 8 * CHUNK);
    }

    #[test]
    #[should_panic(expected = "made badly")]
    fn a_panic_while_making_reaches_the_caller() {
        let items: Vec<u64> = (0..1000).collect();
        let _ = pipelined(
            &items,
            |&i| {
                if i == 500 {
                    panic!("made badly");
                }
                i
            },
            |_, _| Ok::<(), ()>(()),
        );
    }
}
