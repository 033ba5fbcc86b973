// What to do about an error, in plain words. The engine's `message` says what went wrong and is
// safe to show; the `code` (from a closed list) picks the advice.

import type { AppError } from "$lib/backend";

const ADVICE: Record<string, string> = {
  no_backend: "Close Clientele and open it again. If this keeps happening, copy the details and send them to whoever set Clientele up.",
  disk_full: "Free some space on this computer; Clientele carries on by itself.",
  database_busy: "Wait a moment and try again.",
  database_too_new: "Install the newest version of Clientele.",
  not_found: "It may have been removed. Go back and choose again.",
  invalid: "Change what you typed and try again.",
  keychain_locked: "Unlock your computer's keychain (log in again if asked), then try again.",
  keychain_unavailable: "Your computer's keychain isn't available. Log out and in again, then try again.",
  secret_empty: "Paste the secret again; it looks empty.",
};

const DEFAULT_ADVICE =
  "Try again. If it keeps happening, copy the details and send them to whoever set Clientele up.";

export function adviceFor(error: AppError): string {
  return ADVICE[error.code] ?? DEFAULT_ADVICE;
}

/** What "Copy details" puts on the clipboard for support. */
export function errorDetails(error: AppError, where: string): string {
  return [
    `Where: ${where}`,
    `Code: ${error.code}`,
    `Message: ${error.message}`,
    `Time: ${new Date().toISOString()}`,
    `Window: ${typeof navigator !== "undefined" ? navigator.userAgent : "unknown"}`,
  ].join("\n");
}
