// What to do about an error, in plain words. The engine's `message` says what went wrong and is
// safe to show; the `code` (from a closed list) picks the advice.

import type { UiError, UiErrorCode } from "$lib/backend";

const ADVICE: Partial<Record<UiErrorCode, string>> = {
  no_backend: "Close Clientele and open it again. If this keeps happening, copy the details and send them to whoever set Clientele up.",
  disk_full: "Free some space on this computer; Clientele carries on by itself.",
  database_busy: "Wait a moment and try again.",
  database_too_new: "Install the newest version of Clientele.",
  not_found: "It may have been removed. Go back and choose again.",
  invalid_input: "Change what you typed and try again.",
  unknown_provider: "Install the newest version of Clientele, or choose another provider.",
  connection_name_taken:
    "Choose another name. Names that differ only in capital letters, or in - and _, count as the same name.",
  keychain_locked: "Unlock your computer's keychain (log in again if asked), then try again.",
  keychain_unavailable: "Your computer's keychain isn't available. Log out and in again, then try again.",
  keychain_ambiguous: "In Providers, replace the secret of this connection; that removes the extra copies.",
  secret_empty: "Paste the secret again; it looks empty.",
  secret_unavailable: "In Providers, replace the secret of this connection, then send a test.",
  secret_unreadable: "In Providers, replace the secret of this connection.",
  secrets_read_only: "Secrets on this computer are set outside Clientele. Ask whoever set Clientele up.",
  export_profile_invalid: "Change what the message names, then save again.",
  export_folder_missing: "Choose another folder, or create this one first.",
  export_folder_not_writable: "Choose a folder you can save to, such as Documents.",
  export_path_is_folder: "Give the file a name, then export again.",
  export_write_failed: "Check that there is free space and that the file isn't open in another program, then export again.",
  export_too_many_rows: "Export to CSV instead: a CSV file has no row limit.",
  relay_unreachable:
    "Check that this computer is online. If it is, the relay may be switched off — ask whoever looks after it.",
  relay_untrusted: "Ask whoever looks after the relay to check its address and its security settings.",
  not_a_relay: "Check the relay's address with whoever looks after it.",
  relay_refused: "Ask whoever looks after the relay.",
  relay_access_removed:
    "In Settings, stop receiving through the relay, then join it again with a new pairing code from whoever looks after it.",
  relay_not_admin: "Only whoever looks after the relay can change its connections. Ask them.",
  relay_not_joined: "Join a relay in Settings, under “Receive from the internet”.",
  relay_already_joined: "In Settings, stop receiving through the relay first.",
};

const DEFAULT_ADVICE =
  "Try again. If it keeps happening, copy the details and send them to whoever set Clientele up.";

export function adviceFor(error: UiError): string {
  return ADVICE[error.code] ?? DEFAULT_ADVICE;
}

/** What "Copy details" puts on the clipboard for support. */
export function errorDetails(error: UiError, where: string): string {
  return [
    `Where: ${where}`,
    `Code: ${error.code}`,
    `Message: ${error.message}`,
    `Time: ${new Date().toISOString()}`,
    `Window: ${typeof navigator !== "undefined" ? navigator.userAgent : "unknown"}`,
  ].join("\n");
}
