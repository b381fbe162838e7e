// How times and people look: local-time formatting, day labels, avatar initials and colours.
// Pure functions of their inputs (and of the reader's locale and time zone).

/** Consecutive messages of one author closer than this share one header. */
export const GROUP_WINDOW_S = 5 * 60;

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayInYear = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayOtherYear = new Intl.DateTimeFormat(undefined, { dateStyle: "long" });

export const dateOf = (ts) => new Date(ts * 1000);
export const clockTime = (ts) => clock.format(dateOf(ts));
export const fullTime = (ts) => full.format(dateOf(ts));

/** A key that is equal for two timestamps on the same local calendar day. */
export function localDay(ts) {
  const d = dateOf(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(ts, now = Date.now() / 1000) {
  if (localDay(ts) === localDay(now)) return "Today";
  if (localDay(ts) === localDay(now - 86_400)) return "Yesterday";
  const format = dateOf(ts).getFullYear() === dateOf(now).getFullYear() ? dayInYear : dayOtherYear;
  return format.format(dateOf(ts));
}

/** Whether `entry` continues the group started by `previous` (same author, same day, close). */
export function continuesGroup(previous, entry) {
  return (
    previous !== undefined &&
    previous.user === entry.user &&
    localDay(previous.ts) === localDay(entry.ts) &&
    entry.ts - previous.ts < GROUP_WINDOW_S
  );
}

export function initials(name) {
  const words = name.trim().split(/[\s._-]+/u).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[1]] : [name.trim()];
  return letters.map((w) => Array.from(w)[0] ?? "").join("").toUpperCase() || "?";
}

/** A stable hue for a name, so a person keeps their colour across sessions and tabs. */
export function hueOf(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}
