// Pure helpers for the one error shape that reaches the UI, `{code, message}`. Kept apart from
// index.ts so component tests can mock the commands and still use the real normalizer.

import type { AppError } from "./bindings/AppError";

/** The message shown when the window runs without Clientele's engine (e.g. `vite preview`). */
export const NO_BACKEND: AppError = {
  code: "no_backend",
  message:
    "Clientele's engine isn't running, so this window can't show or change anything.",
};

function isAppError(value: unknown): value is AppError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

/**
 * Turns anything a command can throw (an AppError from Rust, a plain string from Tauri itself,
 * an Error from JavaScript) into `{code, message}` so screens handle one shape.
 */
export function toAppError(value: unknown): AppError {
  if (isAppError(value)) return { code: value.code, message: value.message };
  if (typeof value === "string" && value.trim() !== "") return { code: "unknown", message: value };
  if (value instanceof Error && value.message) return { code: "unknown", message: value.message };
  return { code: "unknown", message: "Something went wrong, and Clientele didn't say what." };
}
