// Chat protocol v1 as the browser speaks it (DESIGN.md section 4): pure functions, no I/O.
// The constants it shares with the server (version, room-name rule, close and error codes) come
// from contract.js, which is generated from the server's own Python.

import {
  CLOSE,
  DM_ROOM,
  ERROR,
  MAX_NAME_CHARS,
  MAX_ROOM_NAME_CHARS,
  PROTOCOL_VERSION,
  ROOM_NAME,
} from "./contract.js";

export { CLOSE, DM_ROOM, ERROR, PROTOCOL_VERSION, ROOM_NAME };

/** Why `name` is not a valid room name (with a valid name to try, when one is near), or null. */
export function roomNameProblem(name) {
  if (name === "") return "Type a room name.";
  if (ROOM_NAME.test(name)) return null;
  let problem = "Use only a-z, 0-9, “-” and “_”.";
  if (name.length > MAX_ROOM_NAME_CHARS) {
    problem = `A room name has at most ${MAX_ROOM_NAME_CHARS} characters.`;
  }
  else if (/[A-Z]/.test(name)) problem = "Use lowercase letters.";
  else if (!/^[a-z0-9]/.test(name)) problem = "Start with a lowercase letter or a digit.";
  const suggestion = suggestRoomName(name);
  return suggestion ? `${problem} Try “${suggestion}”.` : problem;
}

/** The valid room name closest to what a person typed ("Café Talk" -> "cafe-talk"), or null. */
export function suggestRoomName(name) {
  const slug = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "") // combining accents, split off by NFKD
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "")
    .slice(0, MAX_ROOM_NAME_CHARS)
    .replace(/[-_]+$/, "");
  return ROOM_NAME.test(slug) ? slug : null;
}

/**
 * A display name as the server will show it (chatserver/auth.py `display_name`): composed (NFC),
 * without controls, format characters (bidi overrides, zero-width) or line and paragraph
 * separators, trimmed, cut to MAX_NAME_CHARS. Empty when nothing visible is left, which the
 * server refuses.
 */
export function displayName(raw) {
  const kept = raw.normalize("NFC").replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, "").trim();
  return Array.from(kept).slice(0, MAX_NAME_CHARS).join("");
}

/**
 * The frames in one WebSocket text message. The server may batch several JSON objects separated
 * by newlines; a line that is not a JSON object is reported, not thrown, so one bad frame cannot
 * stop the ones after it.
 */
export function parseFrames(text) {
  const frames = [];
  const problems = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const frame = JSON.parse(line);
      if (frame !== null && typeof frame === "object" && typeof frame.type === "string") {
        frames.push(frame);
      } else {
        problems.push(line);
      }
    } catch {
      problems.push(line);
    }
  }
  return { frames, problems };
}

/**
 * The /ws URL. In token mode `token` is the JWT (the server then takes the name from it); the
 * same URL with an http(s) scheme answers 401 when the server refuses the token.
 */
export function socketUrl(location, { name, client, token }) {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  else if (name) url.searchParams.set("name", name);
  if (client) url.searchParams.set("client", client);
  return url.href;
}

/**
 * The access token in a page URL's fragment (`#token=<JWT>`), or null. A fragment is never sent
 * to any server, so the token stays out of access logs and Referer headers.
 */
export function tokenFromFragment(hash) {
  return new URLSearchParams(hash.replace(/^#/, "")).get("token") || null;
}

/** `updates` (added to v1 by issue 13): this page folds edits, deletes and reactions. */
export const join = (room, since) =>
  since === undefined || since === null
    ? { type: "join", room, updates: true }
    : { type: "join", room, since, updates: true };
export const leave = (room) => ({ type: "leave", room });
/** The server's page of messages before `before` (its page size: no `limit`). */
export const older = (room, before) => ({ type: "older", room, before });
export const send = (room, text, ref) => ({ type: "send", room, text, ref });
export const ping = () => ({ type: "ping" });
/** Added to v1 by issue 13: edit, delete or react to the message `id` (answered like a send). */
export const edit = (room, id, text, ref) => ({ type: "edit", room, id, text, ref });
export const remove = (room, id, ref) => ({ type: "delete", room, id, ref });
export const react = (room, id, emoji, on, ref) => ({ type: "react", room, id, emoji, on, ref });
/** Added to v1 by issue 13: this person is typing in `room` (no answer). */
export const typing = (room) => ({ type: "typing", room });
/** Added to v1 by issue 13: a page of the room directory, rooms whose name holds `query`. */
export const rooms = (query, offset) => ({ type: "rooms", query, offset });
/** Added to v1 by issue 13 (token mode): join the direct-message room shared with the person
 * whose `sub` is `other`; answered by the `joined` of that room, with `with`. */
export const dm = (other, since) =>
  since === undefined || since === null
    ? { type: "dm", with: other, updates: true }
    : { type: "dm", with: other, since, updates: true };

/** Error codes after which the same `ref` may be sent again later (it was not accepted yet). */
export const RETRYABLE_ERRORS = new Set([ERROR.UNAVAILABLE, ERROR.RATE_LIMITED]);

/** Join refusals about the room itself, said next to the room list rather than in the banner. */
export const ROOM_REFUSALS = new Set([
  ERROR.TOO_MANY_ROOMS,
  ERROR.ROOM_NOT_FOUND,
  ERROR.ROOM_LIMIT,
]);

/** What to tell a person about an error frame, by code. */
export function describeError(code, message) {
  switch (code) {
    case ERROR.RATE_LIMITED:
      return "You are sending faster than the server allows; retrying in a moment.";
    case ERROR.TOO_LARGE:
      return "That message is too long for this chat.";
    case ERROR.INVALID_ROOM:
      return "That room name is not valid.";
    case ERROR.NOT_JOINED:
      return "Join the room before sending to it.";
    case ERROR.FORBIDDEN:
      return `Access refused: ${message || "your access token does not allow that"}.`;
    case ERROR.UNAVAILABLE:
      return "The chat is briefly unavailable; retrying in a moment.";
    case ERROR.ROOM_LIMIT:
      return "No new room can be made now: this chat holds as many as it may. The rooms that exist still work.";
    case ERROR.TOO_MANY_ROOMS:
      return "You are in as many rooms as this chat allows: leave one to join another.";
    case ERROR.MESSAGE_NOT_FOUND:
      return "That message is no longer available.";
    case ERROR.ROOM_NOT_FOUND:
      return "That room does not exist, and you may not create it.";
    case ERROR.TOKEN_EXPIRED:
      return "Your session has expired: open the chat again with a new link to keep chatting.";
    default:
      return message || "The server refused that request.";
  }
}
