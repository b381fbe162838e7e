// The room directory (issue 13): a dialog with a search box that asks the server for the rooms
// whose name holds what was typed (`rooms` frames, a page at a time) and lists them with their
// members; choosing one joins it (or opens it, when already joined). A modal dialog: the focus
// stays inside it and Escape closes it.

import { h } from "../dom.js";
import { plural } from "../format.js";

/** Typing pauses this long before the server is asked, so a word costs one request. */
const SEARCH_DELAY_MS = 250;

export class DirectoryDialog {
  /** `onQuery(query, offset)` asks the server for a page; `onChoose(room)` joins or opens it;
   * `isJoined(room)` says which rooms this page is in already. */
  constructor({ dialog, form, search, close, summary, list, more }, { onQuery, onChoose, isJoined }) {
    this._dialog = dialog;
    this._search = search;
    this._summary = summary;
    this._list = list;
    this._more = more;
    this._onQuery = onQuery;
    this._onChoose = onChoose;
    this._isJoined = isJoined;
    this._timer = null;
    /** What the list shows: the query it answers and the rooms of its pages so far. */
    this._query = "";
    this._rooms = [];
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this._ask(0);
    });
    search.addEventListener("input", () => {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._ask(0), SEARCH_DELAY_MS);
    });
    close.addEventListener("click", () => dialog.close());
    // A search box takes the first Escape to clear itself: close at once instead, as any dialog.
    search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        dialog.close();
      }
    });
    more.addEventListener("click", () => this._ask(this._rooms.length));
  }

  get isOpen() {
    return this._dialog.open;
  }

  open() {
    if (!this._dialog.open) this._dialog.showModal();
    this._search.focus();
    this._ask(0);
  }

  /** Ask again (a new connection: the previous question may be lost with the old one). */
  refresh() {
    if (this.isOpen) this._ask(0);
  }

  /** A `rooms` frame: a page for the current query (a late answer to an older one is dropped). */
  show(frame) {
    if (frame.query !== this._normalized()) return;
    const rooms = frame.offset === 0 ? [] : this._rooms.slice(0, frame.offset);
    this._rooms = rooms.concat(frame.rooms ?? []);
    this._query = frame.query;
    this._render(frame.total ?? this._rooms.length);
  }

  _normalized() {
    return this._search.value.trim().toLowerCase();
  }

  _ask(offset) {
    clearTimeout(this._timer);
    if (offset === 0) this._summary.textContent = "Searching…";
    this._onQuery(this._normalized(), offset);
  }

  _render(total) {
    const shown = this._rooms.length;
    const what = this._query ? ` matching “${this._query}”` : "";
    this._summary.textContent =
      total === 0
        ? `No rooms${what}. Type a new name under Rooms to create one.`
        : shown < total
          ? `Showing ${shown} of ${total.toLocaleString("en")} rooms${what}.`
          : `${plural(total, "room", "rooms")}${what}.`;
    this._more.hidden = shown >= total;
    this._list.replaceChildren(
      ...this._rooms.map(({ room, members }) => {
        const joined = this._isJoined(room);
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "directory-room",
              dataset: { room },
              "aria-label": `${joined ? "Open" : "Join"} #${room}, ${plural(members, "member", "members")}`,
              on: {
                click: () => {
                  this._dialog.close();
                  this._onChoose(room);
                },
              },
            },
            h("span", { class: "hash", "aria-hidden": "true" }, "#"),
            h("span", { class: "room-name" }, room),
            joined ? h("span", { class: "joined", "aria-hidden": "true" }, "joined") : null,
            h("span", { class: "count", "aria-hidden": "true" }, plural(members, "member", "members")),
          ),
        );
      }),
    );
  }
}
