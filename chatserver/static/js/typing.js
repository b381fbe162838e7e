// Who is typing in which room, from the server's `typing` frames (DESIGN.md section 4, added to
// v1 by issue 13). Pure state with the time passed in: a typist is shown for
// TYPING_SHOWN_SECONDS after their last frame, and no longer once their message arrives.

import { TYPING_SHOWN_SECONDS } from "./contract.js";

const SHOWN_MS = TYPING_SHOWN_SECONDS * 1000;

/** One person, however many tabs they type from: the verified `sub`, else the display name. */
const personKey = ({ user, sub }) => (sub ? `sub:${sub}` : `name:${user}`);

export class Typists {
  constructor() {
    /** room -> person key -> {user, until (ms)} */
    this._rooms = new Map();
  }

  /** A `typing` frame, received at `now` (ms). */
  saw(frame, now) {
    if (!this._rooms.has(frame.room)) this._rooms.set(frame.room, new Map());
    this._rooms.get(frame.room).set(personKey(frame), { user: frame.user, until: now + SHOWN_MS });
  }

  /** A `message` frame: its author has stopped typing (they sent it). */
  sent(frame) {
    this._rooms.get(frame.room)?.delete(personKey(frame));
  }

  /** Forget a room (left or dropped). */
  forget(room) {
    this._rooms.delete(room);
  }

  /** The display names typing in `room` at `now`, in the order they started. */
  names(room, now) {
    const typists = this._rooms.get(room);
    if (!typists) return [];
    for (const [key, { until }] of typists) if (until <= now) typists.delete(key);
    return [...typists.values()].map(({ user }) => user);
  }

  /** When (ms) the next typist shown in `room` expires, or null when none is. */
  nextExpiry(room) {
    const untils = [...(this._rooms.get(room)?.values() ?? [])].map(({ until }) => until);
    return untils.length ? Math.min(...untils) : null;
  }
}

/** "Ada is typing…", "Ada and Bob are typing…", "3 people are typing…", or "" for nobody. */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}
