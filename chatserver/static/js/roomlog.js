// What one room shows: the server's messages in log order, then this tab's own messages that
// are still on their way. Pure state, no DOM; the view renders `entries()`.
//
// A message is shown once however often it arrives (live, in a resumed history, from two
// backends after a failover): server ids are the dedupe key. A message this tab sent is shown
// from the moment it is typed, under a local key (its `ref`); its `ack` gives it its id, the one
// thing that ties it to its broadcast. Nothing is paired by its text: another tab of the same
// person may say the same words.
//
// The server writes a send's broadcast before its ack. So while a send of ours awaits its ack, a
// message of ours that arrives keeps its place in the log but is held back unseen: the ack then
// names it (and it takes the pending entry's key, so the element moves rather than flickers), and
// once no send awaits an ack, whatever no ack named (another tab's) is shown. An ack before the
// broadcast marks the pending entry sent, and the broadcast then takes its place under its key.
//
// A room's log can start again (the server restarted with no history, its stream was deleted):
// its ids carry the log's epoch, so they never repeat an old one. A `joined` with `reset` replaces
// the list (what it held is gone from the server); a live message of a newer epoch than the last
// one shown keeps what is shown and starts the new log below it. Either way the list says that
// earlier messages are no longer available (`resetAt`).
//
// Older messages (`older`, added to v1 by issue 13) are asked for before the oldest message shown
// and go above it; only messages of that message's log and before it are taken, so an answer
// that arrives after the list changed (a reset, a reconnect) cannot put anything out of order.
//
// Edits, deletes and reactions (`update` frames, added to v1 by issue 13) come in the same
// streams as messages (live, `history`, `older`) and are folded by updates.js; `entries()`
// shows each message as its updates leave it.

import { compareIds, newerEpoch, sameEpoch } from "./ids.js";
import { Updates } from "./updates.js";

/** Messages a room keeps in the page: many histories' worth, yet bounded for a tab left open
 * for days. */
const MAX_ENTRIES = 2000;

/** `resetAt` when the whole list comes from the new log. */
export const RESET_AT_TOP = "top";

/** How long an `older` request awaits its answer before it may be asked again: one refused (the
 * server busy) or lost with its connection. */
export const OLDER_RETRY_MS = 6_000;

export class RoomLog {
  constructor(name) {
    this.name = name;
    /** A direct message (issue 13): {with: the other person's sub, name: their display name}. */
    this.dm = null;
    this.members = null;
    /** Who is here by name, from `members` frames: [{user, sub?}], the first by name. */
    this.people = null;
    /** The server's list may leave some out (the room is bigger than its bound). */
    this.peopleTruncated = false;
    this.unread = 0;
    /** How many of the unread messages mention the reader. */
    this.mentions = 0;
    /** Id of the first message after a gap: the server no longer had everything in between. */
    this.gapBefore = null;
    /** Where the room's log started again: RESET_AT_TOP, the id of the new log's first message
     * shown, or null. */
    this.resetAt = null;
    /** Nothing older than the first message shown is retained: asking for more is pointless. */
    this.olderStart = false;
    this._confirmed = [];
    this._pending = [];
    this._ids = new Set();
    this._updates = new Updates();
    /** The oldest record an `older` page brought, when older than every message shown: a page
     * of updates alone moves the next request back past them. */
    this._olderFrom = null;
    /** When the `older` request awaiting its answer was made, or null. */
    this._olderAskedAt = null;
  }

  /** What the room is called on the page: "#name", or the other person of a direct message. */
  get title() {
    return this.dm ? this.dm.name : `#${this.name}`;
  }

  /** Entries in display order: the shared log, then our messages still pending; each as its
   * updates leave it (`myOwner`, the reader's owner digest, marks the reader's reactions). */
  entries(myOwner) {
    const shown = this._confirmed.filter((e) => !e.held).map((e) => this._updates.apply(e, myOwner));
    return shown.concat(this._pending);
  }

  /** An `update` frame of this room (live, or in a history or a page). */
  addUpdate(update) {
    const newest = this._confirmed.at(-1);
    // An update of an older log than the one shown changes nothing shown.
    if (newest && !sameEpoch(update.id, newest.id) && !newerEpoch(update.id, newest.id)) return;
    this._updates.add(update);
  }

  /** The reader has seen the room: nothing in it is unread. */
  markRead() {
    this.unread = 0;
    this.mentions = 0;
  }

  /** The names of everyone whose messages are shown, for finding mentions of them. */
  authors() {
    return [...new Set(this._confirmed.map((e) => e.user))];
  }

  /** The history of a `joined` frame; `truncated` says some messages before it are lost, `reset`
   * that the room's log is not the one this list came from: the history replaces it. */
  addHistory(history, truncated, me, reset = false) {
    // A reset whose history comes from the very log shown (same epoch) is a backend that had not
    // yet read the newest message this page saw (its `since` was past that backend's end): the
    // log is the same, so nothing is dropped.
    const newest = this._confirmed.at(-1);
    if (reset && !(history[0] && newest && sameEpoch(history[0].id, newest.id))) this._restart();
    const first = history[0];
    if (truncated && first && this._confirmed.length > 0 && !this._ids.has(first.id)) {
      this.gapBefore = first.id;
    }
    for (const frame of history) {
      if (frame.type === "update") this.addUpdate(frame);
      else this.addMessage(frame, me);
    }
  }

  /** A message frame or history item; returns the entry when it is new to this room. */
  addMessage(message, me) {
    if (this._ids.has(message.id)) return null;
    const newest = this._confirmed.at(-1);
    if (newest && newerEpoch(message.id, newest.id)) this.resetAt = message.id;
    this._ids.add(message.id);
    const own = this._takeAcked(message.id);
    /** Possibly the broadcast of a send still awaiting its ack (see the top). */
    const held = !own && isMe(message, me) && this._awaitingAck();
    const entry = confirmedEntry(message, me, { key: own?.key, held });
    this._confirmed.push(entry);
    this._trim();
    return entry;
  }

  /** The id to ask older messages before, now (`now` in ms), or null: nothing shown, nothing
   * older retained, the list full, or a request still awaiting its answer. Counts as asked. */
  olderRequest(now) {
    const oldest = this._confirmed[0];
    const waiting = this._olderAskedAt !== null && now - this._olderAskedAt < OLDER_RETRY_MS;
    if (!oldest || this.olderStart || waiting || this._confirmed.length >= MAX_ENTRIES) return null;
    this._olderAskedAt = now;
    return this._olderFrom ?? oldest.id;
  }

  /** The connection the request went out on is gone, and its answer with it. */
  olderLost() {
    this._olderAskedAt = null;
  }

  /** An `older` answer: messages oldest first, `start` when nothing before them is retained.
   * Returns how many were added above what is shown. */
  addOlder(messages, start, me) {
    const oldest = this._confirmed[0];
    if (!oldest || this._olderAskedAt === null) return 0; // not asked for by this list
    this._olderAskedAt = null;
    const first = messages[0];
    if (first && sameEpoch(first.id, oldest.id) && compareIds(first.id, oldest.id) < 0) {
      this._olderFrom = first.id;
    }
    for (const update of messages.filter((m) => m.type === "update")) {
      if (sameEpoch(update.id, oldest.id)) this.addUpdate(update);
    }
    const fits = messages.filter(
      (m) =>
        m.type !== "update" &&
        !this._ids.has(m.id) &&
        sameEpoch(m.id, oldest.id) &&
        compareIds(m.id, oldest.id) < 0,
    );
    // The newest of them, as many as the list has room for: they join the messages shown.
    const taken = fits.slice(Math.max(0, fits.length - (MAX_ENTRIES - this._confirmed.length)));
    if (start && taken.length === fits.length) this.olderStart = true;
    for (const message of taken) this._ids.add(message.id);
    this._confirmed.unshift(...taken.map((m) => confirmedEntry(m, me, { held: false })));
    return taken.length;
  }

  /** Forget every message shown: the room's log was replaced. Our pending sends stay (those
   * not acked yet are resent and land in the new log). */
  _restart() {
    this._confirmed = [];
    this._ids.clear();
    this._updates.clear();
    this._olderFrom = null;
    this.gapBefore = null;
    this.resetAt = RESET_AT_TOP;
    this.olderStart = false;
    this._olderAskedAt = null;
  }

  _awaitingAck() {
    return this._pending.some((p) => p.id === null && p.status === "sending");
  }

  /** No send awaits its ack: show what no ack named. */
  _releaseHeld() {
    if (this._awaitingAck()) return;
    for (const entry of this._confirmed) entry.held = false;
  }

  /** Our pending entry already acked as `id`, taken out of the pending list; or null. */
  _takeAcked(id) {
    const index = this._pending.findIndex((p) => p.id === id);
    return index < 0 ? null : this._pending.splice(index, 1)[0];
  }

  _trim() {
    const excess = this._confirmed.length - MAX_ENTRIES;
    if (excess <= 0) return;
    // Ids older than the window come back only when asked for again (`older`): resumes ask only
    // for messages after the newest one seen, and a full history is never longer than this.
    for (const dropped of this._confirmed.splice(0, excess)) this._ids.delete(dropped.id);
    this.olderStart = false;
    this._olderFrom = null;
  }

  addPending(ref, text, me, now) {
    const entry = {
      key: "ref:" + ref,
      ref,
      id: null,
      user: me.user,
      owner: me.owner,
      text,
      ts: now,
      pod: null,
      mine: true,
      status: "sending",
      problem: null,
    };
    this._pending.push(entry);
    return entry;
  }

  /** The server accepted `ref` as message `id` (it is durable now); if its broadcast came
   * first, that is the entry shown from now on. */
  ack(ref, id) {
    const index = this._pending.findIndex((p) => p.ref === ref);
    if (index < 0) return;
    const entry = this._pending[index];
    const broadcast = this._confirmed.find((e) => e.id === id);
    if (broadcast) {
      this._pending.splice(index, 1);
      if (broadcast.held) {
        broadcast.held = false;
        broadcast.key = entry.key;
      }
    } else {
      entry.id = id;
      entry.status = "sent";
      entry.problem = null;
    }
    this._releaseHeld();
  }

  /** A send that will be retried: keep it pending, say why. */
  delay(ref, problem) {
    const entry = this._pending.find((p) => p.ref === ref);
    if (entry) entry.problem = problem;
  }

  /** A send the server refused for good. */
  fail(ref, problem) {
    const entry = this._pending.find((p) => p.ref === ref);
    if (entry) {
      entry.status = "failed";
      entry.problem = problem;
    }
    this._releaseHeld();
  }

  discard(ref) {
    this._pending = this._pending.filter((p) => p.ref !== ref);
    this._releaseHeld();
  }
}

/** Whether `author` (a message, a member) is this tab's person, `me` (`{ user, sub }`): by the
 * token's `sub` when there is one, as two people may choose one display name; else by name. */
export function isMe(author, me) {
  return me.sub ? author.sub === me.sub : author.user === me.user;
}

/** The entry of a message of the room's log; `key` is that of our own pending entry it takes
 * over, if any. */
function confirmedEntry(message, me, { key, held }) {
  return {
    key: key ?? "id:" + message.id,
    id: message.id,
    user: message.user,
    sub: message.sub,
    owner: message.owner,
    text: message.text,
    ts: message.ts,
    pod: message.pod,
    mine: isMe(message, me),
    status: "sent",
    held,
  };
}
