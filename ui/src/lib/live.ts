// Subscribing to live updates from a component. `onLiveUpdate` resolves asynchronously, so a
// component that is destroyed before it resolves must still stop listening; and outside the
// Tauri window there are no live updates, which is not an error worth showing.

import { onLiveUpdate, type LiveUpdate } from "$lib/backend";

/** Starts listening; returns a function that stops, safe to call at any time. */
export function subscribeLive(cb: (update: LiveUpdate) => void): () => void {
  let stopped = false;
  let unlisten: (() => void) | null = null;
  onLiveUpdate((update) => {
    if (!stopped) cb(update);
  }).then(
    (fn) => {
      if (stopped) fn();
      else unlisten = fn;
    },
    () => {
      // No engine (preview) or the event system is unavailable: screens still work, just not live.
    },
  );
  return () => {
    stopped = true;
    unlisten?.();
    unlisten = null;
  };
}
