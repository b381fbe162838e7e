// Generated from chatserver/contract.py and chatserver/closecodes.py by
// `python -m chatserver.contract > chatserver/static/js/contract.js`: edit those, not
// this file (a unit test checks that it is current).

/** `welcome.protocol` of the protocol this page speaks (DESIGN.md section 4). */
export const PROTOCOL_VERSION = 1;

/** Room names (DESIGN.md section 4). */
export const ROOM_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const MAX_ROOM_NAME_CHARS = 64;

/** Direct-message rooms (joined with a `dm` frame), and the room directory's bounds. */
export const DM_ROOM = /^dm-[0-9a-f]{40}$/;
export const DIRECTORY_PAGE_MAX = 50;
export const DIRECTORY_QUERY_MAX_CHARS = 64;

/** Message ids `<epoch>-<offset>`; a bare offset is an id from before epochs. */
export const MESSAGE_ID = /^(?:([0-9]{1,19})-)?([0-9]{1,19})$/;

/** Display names: at most this many characters once made safe. */
export const MAX_NAME_CHARS = 64;

/** Seconds between two `typing` frames for one room, and how long one is shown. */
export const TYPING_INTERVAL_SECONDS = 2.0;
export const TYPING_SHOWN_SECONDS = 5.0;

/** The emoji a `react` may name, and the names a reaction's tooltip lists. */
export const REACTIONS = Object.freeze(["👍", "❤️", "😂", "🎉", "😮", "😢"]);
export const REACTION_NAMES_SHOWN = 20;

/** The per-connection token bucket of a server whose `welcome` does not say. */
export const DEFAULT_RATE = { per_second: 10, burst: 20 };

/** WebSocket close codes the server uses. */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  SESSION_EXPIRED: 4001,
  SLOW_CONSUMER: 4008,
});

/** Codes of `error` frames. */
export const ERROR = Object.freeze({
  BAD_REQUEST: "bad_request",
  TOO_LARGE: "too_large",
  RATE_LIMITED: "rate_limited",
  INVALID_ROOM: "invalid_room",
  NOT_JOINED: "not_joined",
  UNAVAILABLE: "unavailable",
  ROOM_LIMIT: "room_limit",
  FORBIDDEN: "forbidden",
  TOKEN_EXPIRED: "token_expired",
  TOO_MANY_ROOMS: "too_many_rooms",
  MESSAGE_NOT_FOUND: "message_not_found",
  ROOM_NOT_FOUND: "room_not_found",
});
