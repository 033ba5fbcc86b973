// Dates and numbers in the user's own locale and time zone. Timestamps from the engine are
// RFC 3339 UTC strings.

const dateTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

const dateOnly = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
});

const shortDateTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});

const numberFormat = new Intl.NumberFormat();

function parse(iso: string): Date | null {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "20 Jan 2024, 15:00" (en-GB) — whatever the user's locale writes. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = parse(iso);
  return d ? dateTime.format(d) : iso;
}

/** Like formatDateTime, without the year when it is this year (dense lists). */
export function formatShortDateTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "";
  const d = parse(iso);
  if (!d) return iso;
  return d.getFullYear() === now.getFullYear() ? shortDateTime.format(d) : dateTime.format(d);
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = parse(iso);
  return d ? dateOnly.format(d) : iso;
}

export function formatNumber(n: number): string {
  return numberFormat.format(n);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];

/** "3 hours ago", "yesterday", "just now". `now` is injectable for tests. */
export function formatRelative(iso: string, now: Date = new Date()): string {
  const d = parse(iso);
  if (!d) return iso;
  const seconds = Math.round((d.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return "just now";
  for (const [unit, size] of UNITS) {
    if (abs >= size) return relative.format(Math.trunc(seconds / size), unit);
  }
  return "just now";
}

/** "1 message", "3 messages" — English plural for the words this app uses. */
export function count(n: number, one: string, many: string): string {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}
