// The room list: one button per joined room, with its member count and unread badge ("3", or
// "3@" when a message mentions the reader). The direct messages' list is the same, each named
// after the other person (`log.dm.name`) rather than "#room".

import { h } from "../dom.js";
import { plural } from "../format.js";
import { unreadMark } from "../mentions.js";

export function renderRooms(list, logs, active, { onSelect }) {
  const items = [...logs.values()].map((log) => {
    const current = log.name === active;
    const label = [
      log.dm ? `Direct messages with ${log.dm.name}` : log.name,
      log.members === null ? null : plural(log.members, "member", "members"),
      log.unread > 0 ? plural(log.unread, "unread message", "unread messages") : null,
      log.mentions > 0 ? plural(log.mentions, "mention of you", "mentions of you") : null,
    ]
      .filter(Boolean)
      .join(", ");
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "room" + (log.unread > 0 ? " has-unread" : ""),
          "aria-current": current ? "page" : null,
          "aria-label": label,
          dataset: { room: log.name },
          on: { click: () => onSelect(log.name) },
        },
        h("span", { class: log.dm ? "dm-mark" : "hash", "aria-hidden": "true" }, log.dm ? "@" : "#"),
        h("span", { class: "room-name" }, log.dm ? log.dm.name : log.name),
        log.unread > 0
          ? h(
              "span",
              { class: "badge" + (log.mentions > 0 ? " mention" : ""), "aria-hidden": "true" },
              unreadMark(Math.min(log.unread, 99), log.mentions),
            )
          : h("span", { class: "count", "aria-hidden": "true" }, log.members === null ? "" : String(log.members)),
      ),
    );
  });
  const focused = document.activeElement?.dataset?.room;
  list.replaceChildren(...items);
  if (focused) list.querySelector(`[data-room="${CSS.escape(focused)}"]`)?.focus();
}
