// What one room shows: the server's messages in log order, then this tab's own messages that
// are still on their way. Pure state, no DOM; the view renders `entries()`.
//
// A message is shown once however often it arrives (live, in a resumed history, from two
// backends after a failover): server ids are the dedupe key. A message this tab sent is shown
// from the moment it is typed, under a local key (its `ref`); its `ack` gives it its id, the one
// thing that ties it to its broadcast. An ack before the broadcast marks it sent and the
// broadcast takes its place in the log under the same key; a broadcast before the ack is shown
// at its place at once and the ack then drops the pending copy. Nothing is paired by its text:
// another tab of the same person may say the same words.

/** Messages a room keeps in the page: many histories' worth, yet bounded for a tab left open
 * for days. */
const MAX_ENTRIES = 2000;

export class RoomLog {
  constructor(name) {
    this.name = name;
    this.members = null;
    this.unread = 0;
    /** Id of the first message after a gap: the server no longer had everything in between. */
    this.gapBefore = null;
    this._confirmed = [];
    this._pending = [];
    this._ids = new Set();
  }

  /** Entries in display order: the shared log, then our messages still pending. */
  entries() {
    return this._confirmed.concat(this._pending);
  }

  /** The history of a `joined` frame; `truncated` says some messages before it are lost. */
  addHistory(history, truncated, me) {
    const first = history[0];
    if (truncated && first && this._confirmed.length > 0 && !this._ids.has(first.id)) {
      this.gapBefore = first.id;
    }
    for (const message of history) this.addMessage(message, me);
  }

  /** A message frame or history item; returns the entry when it is new to this room. */
  addMessage(message, me) {
    if (this._ids.has(message.id)) return null;
    this._ids.add(message.id);
    const own = this._takeAcked(message.id);
    const entry = {
      key: own ? own.key : "id:" + message.id,
      id: message.id,
      user: message.user,
      text: message.text,
      ts: message.ts,
      pod: message.pod,
      mine: message.user === me,
      status: "sent",
    };
    this._confirmed.push(entry);
    this._trim();
    return entry;
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
    if (this._ids.has(id)) {
      this._pending.splice(index, 1);
      return;
    }
    const entry = this._pending[index];
    entry.id = id;
    entry.status = "sent";
    entry.problem = null;
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
  }

  discard(ref) {
    this._pending = this._pending.filter((p) => p.ref !== ref);
  }
}
