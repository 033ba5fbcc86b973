// Subscribing to live updates from a component. `onLiveUpdate` resolves asynchronously, so a
// component that is destroyed before it resolves must still stop listening; and outside the
// Tauri window there are no live updates, which is not an error worth showing.

import { onLiveUpdate, type LiveUpdate } from "$lib/backend";

/** Starts listening; returns a function that stops, safe to call at any time. */
export function subscribeLive(cb: (update: LiveUpdate) => void): () => void {
  return subscribe(onLiveUpdate, cb);
}

/**
 * Listens with `listen` (one of the backend's `on…` event functions) until the returned function
 * is called, which is safe at any time — also before `listen` has resolved.
 */
export function subscribe<T>(listen: (cb: (value: T) => void) => Promise<() => void>, cb: (value: T) => void): () => void {
  let stopped = false;
  let unlisten: (() => void) | null = null;
  listen((value) => {
    if (!stopped) cb(value);
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
