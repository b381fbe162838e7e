// The message list of the active room. Elements are keyed (server id, or the local ref while a
// send is pending), so a re-render after each frame moves and updates existing elements instead
// of rebuilding them: focus, selection and scroll position survive. Scrolled near the top, it
// asks for older messages (`onOlder`), and what goes in above keeps the reader's place.
// Each message shows its edits, deletion and reactions as folded by the room's log, with the
// actions of view/actions.js.

import { h } from "../dom.js";
import { clockTime, continuesGroup, dayLabel, fullTime, hueOf, initials, localDay } from "../format.js";
import { messageParts } from "../mentions.js";
import { RESET_AT_TOP } from "../roomlog.js";
import { actionParts, updateActions } from "./actions.js";

/** Within this many pixels of the bottom, the list follows new messages. */
const STICKY_PX = 80;
/** Within this many pixels of the top, older messages are asked for: before the reader gets
 * there, so they are usually in place when they do. */
const OLDER_PX = 300;

export class MessageList {
  /** `jump` is the "new messages" button shown when messages arrive below the reader's view;
   * `onOlder(room)` asks for the messages before the first one shown; `onEdit(entry, text)`,
   * `onDelete(entry)` and `onReact(entry, emoji, on)` change a message (issue 13). */
  constructor(list, jump, { onDiscard, onOlder, onEdit, onDelete, onReact }) {
    this._list = list;
    this._jump = jump;
    this._onDiscard = onDiscard;
    this._onOlder = onOlder;
    this._handlers = { onEdit, onDelete, onReact };
    this._elements = new Map();
    this._room = null;
    jump.addEventListener("click", () => {
      this.scrollToEnd();
      list.focus();
    });
    list.addEventListener("scroll", () => {
      if (this._nearBottom()) jump.hidden = true;
      this._askOlderNearTop();
    });
  }

  /** Show `log` (a RoomLog, or null); `live` says whether pending sends are on their way, `me`
   * is the reader's name (their mentions are highlighted), `owner` their owner digest (their
   * reactions are marked). */
  render(log, { live, me, owner }) {
    const switched = log?.name !== this._room;
    if (switched) {
      this._list.replaceChildren();
      this._elements.clear();
      this._room = log?.name ?? null;
    }
    const follow = switched || this._nearBottom();
    const lastBefore = this._list.lastElementChild;
    // The first message shown stays where the reader sees it when older ones go in above: its
    // bottom edge, as its top moves when it joins the group of an older message by its author.
    const anchor = follow ? null : this._list.querySelector(".msg");
    const anchorBottom = anchor?.getBoundingClientRect().bottom;
    const people = { me, names: log?.authors() };
    const wanted = log ? this._wanted(log, { live, people, owner }) : [];
    const keep = new Set(wanted.map((el) => el.dataset.key));
    for (const [key, el] of this._elements) {
      if (!keep.has(key)) {
        el.remove();
        this._elements.delete(key);
      }
    }
    let cursor = this._list.firstElementChild;
    for (const el of wanted) {
      if (el !== cursor) this._list.insertBefore(el, cursor);
      else cursor = cursor.nextElementSibling;
    }
    const newLast = wanted.at(-1) !== lastBefore;
    if (follow || (newLast && wanted.at(-1)?.classList.contains("mine"))) this.scrollToEnd();
    else {
      if (anchor?.isConnected) {
        this._list.scrollTop += anchor.getBoundingClientRect().bottom - anchorBottom;
      }
      if (newLast) this._jump.hidden = false;
    }
    this._askOlderNearTop();
  }

  _askOlderNearTop() {
    if (this._room !== null && this._list.scrollTop < OLDER_PX) this._onOlder(this._room);
  }

  scrollToEnd() {
    this._list.scrollTop = this._list.scrollHeight;
    this._jump.hidden = true;
  }

  _nearBottom() {
    const l = this._list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < STICKY_PX;
  }

  /** The elements the list should contain, in order, created or updated as needed. */
  _wanted(log, { live, people, owner }) {
    const wanted = [];
    let previous;
    const entries = log.entries(owner);
    if (entries[0]?.id) {
      const top = this._element("older", () => h("li", { class: "older", role: "status" }));
      const text = log.olderStart ? `Beginning of ${log.dm ? `your conversation with ${log.dm.name}` : log.title}` : "Loading earlier messages…";
      if (top.textContent !== text) top.textContent = text;
      top.classList.toggle("start", log.olderStart);
      wanted.push(top);
    }
    if (log.resetAt === RESET_AT_TOP) wanted.push(this._element("reset", () => resetNotice()));
    for (const entry of entries) {
      if (entry.id !== null && entry.id === log.resetAt) {
        wanted.push(this._element("reset", () => resetNotice()));
      }
      if (entry.id !== null && entry.id === log.gapBefore) {
        wanted.push(this._element("gap:" + entry.id, () => gapNotice()));
      }
      if (previous === undefined || localDay(previous.ts) !== localDay(entry.ts)) {
        const day = localDay(entry.ts);
        wanted.push(this._element("day:" + day, () => daySeparator(entry.ts)));
      }
      const el = this._element(entry.key, () => messageElement(entry, this._onDiscard, this._handlers));
      updateMessage(el, entry, { continued: continuesGroup(previous, entry), live, people });
      wanted.push(el);
      previous = entry;
    }
    return wanted;
  }

  _element(key, create) {
    let el = this._elements.get(key);
    if (!el) {
      el = create();
      el.dataset.key = key;
      this._elements.set(key, el);
    }
    return el;
  }
}

function gapNotice() {
  return h(
    "li",
    { class: "gap", role: "note" },
    "Some messages from while you were away are no longer available.",
  );
}

function resetNotice() {
  return h("li", { class: "gap reset", role: "note" }, "Earlier messages are no longer available.");
}

function daySeparator(ts) {
  return h("li", { class: "day", role: "separator" }, h("span", {}, dayLabel(ts)));
}

/** A message's element; its text and state are filled in by `updateMessage`. */
function messageElement(entry, onDiscard, handlers) {
  const time = h("time", { class: "time" });
  const state = h("p", { class: "state", hidden: true }, h("span", { class: "state-text" }));
  const discard = h(
    "button",
    { type: "button", class: "link-button", on: { click: () => onDiscard(entry.ref) } },
    "Remove",
  );
  state.append(" ", discard);
  // Focusable, so a tap on a phone (no hover) shows its actions.
  const el = h("li", { class: "msg", tabindex: "-1" });
  const { actions, reactions } = actionParts(el, handlers);
  el.append(
    h("div", { class: "avatar", style: { "--hue": hueOf(entry.user) }, "aria-hidden": "true" }, initials(entry.user)),
    h(
      "div",
      { class: "body" },
      h(
        "p",
        { class: "meta" },
        // Token mode: the sender's user id, so two people with one name can be told apart.
        h("span", { class: "author", title: entry.sub && `${entry.user} (${entry.sub})` }, entry.user),
        " ",
        time,
      ),
      // The "(edited)" mark ends the text's line, so a message grouped under the one before
      // (no header) shows it too.
      h(
        "p",
        { class: "line" },
        h("span", { class: "text" }),
        " ",
        h("span", { class: "edited", hidden: true }, "(edited)"),
      ),
      reactions,
      state,
      actions,
    ),
  );
  return el;
}

/** The text as the message shows it now: `people` (the reader and the names seen) say which
 * `@` are mentions; a deleted message says so instead. */
function renderText(el, entry, people) {
  const text = el.querySelector(".text");
  const parts = entry.deleted ? [] : messageParts(entry.text, people);
  text.replaceChildren(...(entry.deleted ? ["This message was deleted."] : parts.map(partElement)));
  el.classList.toggle("mentions-me", !entry.mine && parts.some((part) => part.me));
}

function partElement(part) {
  if (typeof part === "string") return part;
  // The reader's own name is marked (a highlight screen readers can announce); others' are styled.
  if (part.mention) return h(part.me ? "mark" : "span", { class: "mention" }, part.mention);
  // A new tab that cannot reach back into this page (noopener) and is not told where the
  // reader came from (noreferrer).
  return h("a", { href: part.url, target: "_blank", rel: "noopener noreferrer" }, part.url);
}

/** Bring an element in line with its entry: grouping, text, time (the server's once known),
 * state, edits and reactions. */
function updateMessage(el, entry, { continued, live, people }) {
  el.entry = entry;
  const shown = `${entry.deleted ? "deleted" : entry.text}\u0000${people.names?.join(",")}`;
  if (el.dataset.shown !== shown) {
    el.dataset.shown = shown;
    renderText(el, entry, people);
  }
  el.classList.toggle("deleted", entry.deleted === true);
  el.querySelector(".edited").hidden = !entry.edited || entry.deleted === true;
  updateActions(el, entry);
  el.classList.toggle("continued", continued);
  el.classList.toggle("mine", entry.mine);
  el.classList.toggle("pending", entry.status === "sending");
  el.classList.toggle("failed", entry.status === "failed");
  const time = el.querySelector(".time");
  const iso = new Date(entry.ts * 1000).toISOString();
  if (time.dateTime !== iso) {
    time.dateTime = iso;
    time.textContent = clockTime(entry.ts);
  }
  // Which backend pod accepted the message: the seed's pod identification, per message.
  const title = entry.pod ? `${fullTime(entry.ts)} · via ${entry.pod}` : fullTime(entry.ts);
  if (time.title !== title) time.title = title;
  const state = el.querySelector(".state");
  const text = stateText(entry, live);
  state.hidden = text === null;
  state.querySelector(".state-text").textContent = text ?? "";
  state.querySelector("button").hidden = entry.status !== "failed";
}

function stateText(entry, live) {
  if (entry.status === "failed") return "Not sent: " + entry.problem;
  if (entry.status !== "sending") return null;
  if (entry.problem) return entry.problem;
  return live ? "Sending…" : "Waiting for the connection; it will be sent automatically.";
}
