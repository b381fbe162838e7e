// Mentions in message text: `@` and a name, found so the view can highlight them and the page
// can tell a message that calls the reader by name. Pure functions; the rest stays text.
//
// The rule. A mention is an `@` that does not follow a letter, digit or `_` (so in a@b.com it
// is part of an address), followed by
//   - the longest of `names` (the people seen in the room, and the reader) that the text spells
//     there, ignoring case, ending where a word ends: `@grace hopper,`; else
//   - one word (letters, digits, `_`, with `.` or `-` only inside it): `@linus`, someone the
//     room has not seen yet.
// It mentions the reader when that name is their display name or its first word, ignoring case:
// `@ada` and `@Ada Lovelace` both call "Ada Lovelace".
// Web addresses are found first (links.js): an `@` inside a link stays part of the link.

import { linkParts } from "./links.js";

const WORD_CHAR = /^[\p{L}\p{N}\p{M}_]$/u;
const WORD = /^[\p{L}\p{N}\p{M}_]+(?:[.-][\p{L}\p{N}\p{M}_]+)*/u;

const fold = (name) => name.toLowerCase();
const isWordChar = (char) => char !== undefined && WORD_CHAR.test(char);

/** The character (code point) that ends just before `index`. */
function charBefore(text, index) {
  return Array.from(text.slice(Math.max(0, index - 2), index)).at(-1);
}

function charAt(text, index) {
  const point = text.codePointAt(index);
  return point === undefined ? undefined : String.fromCodePoint(point);
}

/** The longest of `known` (longest first) spelled at `start`, as the text spells it, or null. */
function knownNameAt(text, start, known) {
  for (const name of known) {
    const spelled = text.slice(start, start + name.length);
    if (fold(spelled) === fold(name) && !isWordChar(charAt(text, start + name.length))) {
      return spelled;
    }
  }
  return null;
}

/** `text` cut into strings and `{mention, me}` parts (`mention` is the text, `@` included), in
 * order; joined back, they are the text. `me` is the reader's name (or null), `names` the others
 * the room has seen. */
export function mentionParts(text, { me = null, names = [] } = {}) {
  const known = [...new Set([...names, me].filter(Boolean))].sort((a, b) => b.length - a.length);
  const mine = me ? new Set([fold(me), fold(me.trim().split(/\s+/u)[0])]) : new Set();
  const parts = [];
  let last = 0;
  for (let at = text.indexOf("@"); at >= 0; at = text.indexOf("@", Math.max(at + 1, last))) {
    if (isWordChar(charBefore(text, at))) continue;
    const name = knownNameAt(text, at + 1, known) ?? text.slice(at + 1).match(WORD)?.[0];
    if (!name) continue;
    if (at > last) parts.push(text.slice(last, at));
    parts.push({ mention: "@" + name, me: mine.has(fold(name)) });
    last = at + 1 + name.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/** The text cut into strings, `{url}` and `{mention, me}` parts: links first, then mentions in
 * the text between them. */
export function messageParts(text, people) {
  return linkParts(text).flatMap((part) =>
    typeof part === "string" ? mentionParts(part, people) : [part],
  );
}

/** Whether `text` mentions the reader (`people.me`). */
export function mentionsMe(text, people) {
  return people.me !== null && messageParts(text, people).some((part) => part.me === true);
}

/** The unread mark of the title and the room list: the count of unread messages, with "@" when
 * one of them mentions the reader ("3", "3@"); a single unread mention is just "@". */
export function unreadMark(unread, mentions) {
  if (mentions > 0) return unread > 1 ? `${unread}@` : "@";
  return unread > 0 ? String(unread) : "";
}
