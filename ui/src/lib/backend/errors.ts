// Pure helpers for the one error shape that reaches the UI, `{code, message}`. Kept apart from
// index.ts so component tests can mock the commands and still use the real normalizer.

import type { ErrorCode } from "./bindings/ErrorCode";

/**
 * Every code the screens can see: the engine's closed list (ErrorCode), and the two the window
 * makes up itself — `no_backend` (no engine to ask) and `unknown` (a failure that came without
 * one of the engine's codes).
 */
export type UiErrorCode = ErrorCode | "no_backend" | "unknown";

/** What every failed command rejects with, once normalized by `toAppError`. */
export type UiError = { code: UiErrorCode; message: string };

// A Record, so a code added to the engine's ErrorCode without a place here fails `npm run check`.
const KNOWN: Record<UiErrorCode, true> = {
  not_found: true,
  invalid_input: true,
  unknown_provider: true,
  connection_name_taken: true,
  secret_empty: true,
  secret_unavailable: true,
  secret_unreadable: true,
  secrets_read_only: true,
  keychain_unavailable: true,
  keychain_locked: true,
  keychain_ambiguous: true,
  keychain_error: true,
  disk_full: true,
  database_busy: true,
  database_too_new: true,
  database_open: true,
  data_dir: true,
  data_dir_in_use: true,
  database: true,
  database_corrupt: true,
  export_profile_invalid: true,
  export_folder_missing: true,
  export_folder_not_writable: true,
  export_path_is_folder: true,
  export_write_failed: true,
  export_too_many_rows: true,
  export_cancelled: true,
  export_running: true,
  show_in_folder: true,
  relay_unreachable: true,
  relay_untrusted: true,
  not_a_relay: true,
  relay_refused: true,
  relay_access_removed: true,
  relay_not_admin: true,
  relay_not_joined: true,
  relay_already_joined: true,
  internal: true,
  no_backend: true,
  unknown: true,
};

/** Every code a UiError can carry, at run time. */
export const UI_ERROR_CODES = Object.keys(KNOWN) as UiErrorCode[];

export function isUiErrorCode(code: string): code is UiErrorCode {
  return Object.hasOwn(KNOWN, code);
}

/** The message shown when the window runs without Clientele's engine (e.g. `vite preview`). */
export const NO_BACKEND: UiError = {
  code: "no_backend",
  message:
    "Clientele's engine isn't running, so this window can't show or change anything.",
};

function hasCodeAndMessage(value: unknown): value is { code: string; message: string } {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

/**
 * Turns anything a command can throw (an AppError from Rust, a plain string from Tauri itself,
 * an Error from JavaScript) into `{code, message}` so screens handle one shape. A code that isn't
 * on the list (an engine newer than this window) becomes `unknown`; its message is kept.
 */
export function toAppError(value: unknown): UiError {
  if (hasCodeAndMessage(value)) {
    return { code: isUiErrorCode(value.code) ? value.code : "unknown", message: value.message };
  }
  if (typeof value === "string" && value.trim() !== "") return { code: "unknown", message: value };
  if (value instanceof Error && value.message) return { code: "unknown", message: value.message };
  return { code: "unknown", message: "Something went wrong, and Clientele didn't say what." };
}
