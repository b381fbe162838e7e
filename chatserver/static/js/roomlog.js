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

import { newerEpoch, sameEpoch } from "./ids.js";

/** Messages a room keeps in the page: many histories' worth, yet bounded for a tab left open
 * for days. */
const MAX_ENTRIES = 2000;

/** `resetAt` when the whole list comes from the new log. */
export const RESET_AT_TOP = "top";

export class RoomLog {
  constructor(name) {
    this.name = name;
    this.members = null;
    /** Who is here by name, from `members` frames: [{user, sub?}], the first by name. */
    this.people = null;
    /** The server's list may leave some out (the room is bigger than its bound). */
    this.peopleTruncated = false;
    this.unread = 0;
    /** Id of the first message after a gap: the server no longer had everything in between. */
    this.gapBefore = null;
    /** Where the room's log started again: RESET_AT_TOP, the id of the new log's first message
     * shown, or null. */
    this.resetAt = null;
    this._confirmed = [];
    this._pending = [];
    this._ids = new Set();
  }

  /** Entries in display order: the shared log, then our messages still pending. */
  entries() {
    return this._confirmed.filter((e) => !e.held).concat(this._pending);
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
    for (const message of history) this.addMessage(message, me);
  }

  /** A message frame or history item; returns the entry when it is new to this room. */
  addMessage(message, me) {
    if (this._ids.has(message.id)) return null;
    const newest = this._confirmed.at(-1);
    if (newest && newerEpoch(message.id, newest.id)) this.resetAt = message.id;
    this._ids.add(message.id);
    const own = this._takeAcked(message.id);
    const entry = {
      key: own ? own.key : "id:" + message.id,
      id: message.id,
      user: message.user,
      sub: message.sub,
      text: message.text,
      ts: message.ts,
      pod: message.pod,
      mine: message.user === me,
      status: "sent",
      /** Possibly the broadcast of a send still awaiting its ack (see the top). */
      held: !own && message.user === me && this._awaitingAck(),
    };
    this._confirmed.push(entry);
    this._trim();
    return entry;
  }

  /** Forget every message shown: the room's log was replaced. Our pending sends stay (those
   * not acked yet are resent and land in the new log). */
  _restart() {
    this._confirmed = [];
    this._ids.clear();
    this.gapBefore = null;
    this.resetAt = RESET_AT_TOP;
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
    // Ids older than the window cannot come back: resumes ask only for messages after the
    // newest one seen, and a full history is never longer than this window.
    for (const dropped of this._confirmed.splice(0, excess)) this._ids.delete(dropped.id);
  }

  addPending(ref, text, me, now) {
    const entry = {
      key: "ref:" + ref,
      ref,
      id: null,
      user: me,
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
