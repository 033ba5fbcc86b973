//! Pure work on a second thread while this one writes: a derivation pass makes profile states,
//! identity keys and people rows (serialising, compressing, building search terms — no database
//! reads) while SQLite writes what was made before, and a desk has at least two cores.

use crate::StoreError;
use std::sync::mpsc::channel;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Items made at a time (a hand-over per item would cost more than small items' work).
const CHUNK: usize = 64;

/// How many chunks the second thread may make ahead of the one being taken: enough to keep
/// both threads busy, little memory.
const AHEAD: usize = 8;

/// Below this many items everything runs on this thread: a thread costs more than it saves.
const ALONE_BELOW: usize = 2 * CHUNK;

/// Calls `make` on every item and `take` with each item and what `make` made of it, in order,
/// on this thread; meanwhile a second thread makes the chunks ahead. This thread never waits
/// while there is something left to make: when the chunk it needs next isn't made yet, it makes
/// one ahead itself (or the one it needs, if no one has started it), so the two share the
/// making whichever is faster — waiting on a thread that was just woken up cost the flush of a
/// pass a third of its time on two cores. Stops at `take`'s first error (the second thread
/// stops before its next chunk); a panic while making reaches the caller.
///
/// `take` borrows what was made, and each chunk the second thread made goes back to it to be
/// freed: memory freed by a thread other than the one that allocated it waits on the
/// allocator's lock for that thread's arena (glibc), which the making thread holds half the
/// time.
pub(crate) fn pipelined<T: Sync, R: Send, E>(
    items: &[T],
    make: impl Fn(&T) -> R + Sync,
    mut take: impl FnMut(&T, &mut R) -> Result<(), E>,
) -> Result<(), E> {
    if items.len() < ALONE_BELOW {
        for item in items {
            take(item, &mut make(item))?;
        }
        return Ok(());
    }
    let chunks: Vec<&[T]> = items.chunks(CHUNK).collect();
    let shared = Shared {
        state: Mutex::new(State {
            next: 0,
            taking: 0,
            made: (0..chunks.len()).map(|_| None).collect(),
            stop: false,
            maker_gone: false,
        }),
        changed: Condvar::new(),
    };
    let make_chunk = |c: usize| chunks[c].iter().map(&make).collect::<Vec<R>>();
    std::thread::scope(|scope| {
        // Taken chunks, back to be freed where they were made (never blocks this thread).
        let (give_back, taken_back) = channel::<Vec<R>>();
        let maker = scope.spawn(|| {
            let _gone = MakerGone(&shared);
            let mut state = shared.lock();
            loop {
                if state.stop || state.next >= chunks.len() {
                    break;
                }
                if state.next >= state.taking + AHEAD {
                    state = shared.wait(state);
                    continue;
                }
                let c = state.next;
                state.next += 1;
                drop(state);
                while let Ok(taken) = taken_back.try_recv() {
                    drop(taken);
                }
                let made = make_chunk(c);
                state = shared.lock();
                state.made[c] = Some((made, Maker::Second));
                shared.changed.notify_all();
            }
            drop(state);
            // Until this thread's side is done with every chunk it may give back.
            for taken in taken_back {
                drop(taken);
            }
        });
        // However taking ends (done, an error, a panic while this thread makes a chunk), the
        // second thread stops.
        let _stop = StopMaking(&shared);
        let taken = (|| {
            for (c, chunk) in chunks.iter().enumerate() {
                let (mut results, maker) = next_made(&shared, c, &make_chunk)?;
                for (item, result) in chunk.iter().zip(results.iter_mut()) {
                    if let Err(e) = take(item, result) {
                        return Err(Some(e));
                    }
                }
                if maker == Maker::Second {
                    let _ = give_back.send(results);
                }
                shared.lock().taking = c + 1;
                shared.changed.notify_all();
            }
            Ok(())
        })();
        drop(_stop);
        drop(give_back);
        match maker.join() {
            Ok(()) => taken.map_err(|e| e.expect("the second thread ended without a panic")),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Chunk `c`, made by the second thread or (when it hasn't started it) by this one; while it is
/// being made elsewhere, this thread makes the next chunk no one has started. `Err(None)`: the
/// second thread ended (a panic) without making it.
fn next_made<R, E>(
    shared: &Shared<R>,
    c: usize,
    make_chunk: &impl Fn(usize) -> Vec<R>,
) -> Result<(Vec<R>, Maker), Option<E>> {
    let mut state = shared.lock();
    loop {
        if let Some(made) = state.made[c].take() {
            return Ok(made);
        }
        let chunks = state.made.len();
        if state.next <= c || (state.next < chunks && state.next < c + AHEAD) {
            let mine = state.next.max(c);
            state.next = mine + 1;
            drop(state);
            let made = make_chunk(mine);
            if mine == c {
                return Ok((made, Maker::This));
            }
            state = shared.lock();
            state.made[mine] = Some((made, Maker::This));
            continue;
        }
        if state.maker_gone {
            return Err(None);
        }
        state = shared.wait(state);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maker {
    This,
    Second,
}

struct State<R> {
    /// The first chunk no thread has started making.
    next: usize,
    /// The chunk this thread takes next.
    taking: usize,
    made: Vec<Option<(Vec<R>, Maker)>>,
    /// Taking ended (done, or at an error): make nothing more.
    stop: bool,
    /// The second thread ended (it may have panicked with a chunk unmade).
    maker_gone: bool,
}

struct Shared<R> {
    state: Mutex<State<R>>,
    changed: Condvar,
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        // A panic never happens while the lock is held (making runs outside it).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State<R>>) -> MutexGuard<'a, State<R>> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tells the second thread to make nothing more.
struct StopMaking<'a, R>(&'a Shared<R>);

impl<R> Drop for StopMaking<'_, R> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

/// Tells this thread when the second one ends, however it ends.
struct MakerGone<'a, R>(&'a Shared<R>);

impl<R> Drop for MakerGone<'_, R> {
    fn drop(&mut self) {
        self.0.lock().maker_gone = true;
        self.0.changed.notify_all();
    }
}

/// For a `take` whose made value is a `Result`: its error, moved out of the borrowed result
/// (which is only freed afterwards).
pub(crate) fn take_error(error: &mut StoreError) -> StoreError {
    std::mem::replace(error, StoreError::Invalid(String::new()))
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
                    taken.push((i, *made));
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

    #[test]
    #[should_panic(expected = "made badly on the second thread")]
    fn a_panic_on_the_second_thread_reaches_the_caller() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let items: Vec<u64> = (0..1000).collect();
        let caller = std::thread::current().id();
        let started = AtomicBool::new(false);
        let _ = pipelined(
            &items,
            |&i| {
                if std::thread::current().id() == caller {
                    // So the second thread gets a chunk to fail on, however late it starts.
                    while !started.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    i
                } else {
                    started.store(true, Ordering::Release);
                    panic!("made badly on the second thread");
                }
            },
            |_, _| Ok::<(), ()>(()),
        );
    }

    /// When taking is slow, the second thread makes nearly everything; when making is slow, this
    /// thread makes its share instead of waiting.
    #[test]
    fn both_threads_make_when_making_is_the_slow_part() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<u64> = (0..2_000).collect();
        let caller = std::thread::current().id();
        let here = AtomicUsize::new(0);
        let mut taken = Vec::new();
        pipelined(
            &items,
            |&i| {
                if std::thread::current().id() == caller {
                    here.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_micros(50));
                i
            },
            |&i, made| {
                assert_eq!(i, *made);
                taken.push(i);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(taken, items);
        assert!(here.load(Ordering::Relaxed) > 0, "this thread only waited");
    }
}
