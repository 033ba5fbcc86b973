// Whether Clientele is receiving messages, shown in the navigation on every screen ("is it
// working?"). Settings refreshes it after a change.

import { getSettings, toAppError, type ListenerStatus, type UiError } from "$lib/backend";

class EngineStatus {
  listener: ListenerStatus | null = $state(null);
  error: UiError | null = $state(null);

  async refresh(): Promise<void> {
    try {
      const settings = await getSettings();
      this.listener = settings.listener;
      this.error = null;
    } catch (e) {
      this.listener = null;
      this.error = toAppError(e);
    }
  }

  set(listener: ListenerStatus): void {
    this.listener = listener;
    this.error = null;
  }
}

export const engine = new EngineStatus();

/** "http://127.0.0.1:8787" from the listener's address, whether or not it has a scheme. */
export function listenerUrl(address: string): string {
  return /^https?:\/\//.test(address) ? address : `http://${address}`;
}
