// Identifiers: random ones this page makes, and the server's message ids, which the page reads
// only through the order rule below (the one place it looks inside them).

import { MESSAGE_ID } from "./contract.js";

// crypto.randomUUID() exists only in secure contexts, and a chat reached over plain http on a
// node port is not one; getRandomValues() works everywhere.
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A message id's epoch (the incarnation of the room's log) and offset, as BigInts (they may
 * pass 2**53); null for anything else. A bare offset is an id from before epochs: epoch 0. */
function parseMessageId(id) {
  const match = typeof id === "string" ? MESSAGE_ID.exec(id) : null;
  return match ? { epoch: BigInt(match[1] ?? 0), offset: BigInt(match[2]) } : null;
}

/**
 * The order rule of message ids (DESIGN.md section 4), the only one a client may rely on:
 * within an epoch by offset, and a newer epoch after every id of an older one. Negative when
 * `a` comes before `b`, positive after, 0 for the same id; what is no id comes first.
 */
export function compareIds(a, b) {
  const x = parseMessageId(a);
  const y = parseMessageId(b);
  if (!x || !y) return (x ? 1 : 0) - (y ? 1 : 0);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  if (x.offset !== y.offset) return x.offset < y.offset ? -1 : 1;
  return 0;
}

/** True when `id` belongs to a newer incarnation of the room's log than `than`. */
export function newerEpoch(id, than) {
  const x = parseMessageId(id);
  const y = parseMessageId(than);
  return Boolean(x && y && x.epoch > y.epoch);
}

/** True when both ids belong to the same incarnation of the room's log. */
export function sameEpoch(a, b) {
  const x = parseMessageId(a);
  const y = parseMessageId(b);
  return Boolean(x && y && x.epoch === y.epoch);
}

/** The later of two ids by the order rule (either may be undefined). */
export function laterId(a, b) {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareIds(a, b) >= 0 ? a : b;
}
