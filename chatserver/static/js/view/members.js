// The members panel of the open room: who is here by name (the server's list, bounded, first by
// name) and how many in all. Its toggle is the member count in the room's header; Escape closes
// it and gives the focus back to the toggle. Beside the messages on a wide screen, over them on
// a phone. In token mode each other person with a `sub` has a "Message" button that starts a
// direct message with them (issue 13).

import { h } from "../dom.js";
import { hueOf, initials, plural } from "../format.js";
import { isMe } from "../roomlog.js";

export class MembersPanel {
  /** `onDirect(person)` starts a direct message with `person` ({user, sub}). */
  constructor({ toggle, panel, title, list, more }, { onDirect }) {
    this._onDirect = onDirect;
    this._toggle = toggle;
    this._panel = panel;
    this._title = title;
    this._list = list;
    this._more = more;
    toggle.addEventListener("click", () => this.set(this._panel.hidden));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !panel.hidden) {
        this.set(false);
        toggle.focus();
      }
    });
  }

  set(open) {
    this._panel.hidden = !open;
    this._toggle.setAttribute("aria-expanded", String(open));
  }

  /** `log` is the open room (or null); `me` this tab's person (`{ user, sub }`), marked
   * "(you)". */
  render(log, me) {
    this._toggle.hidden = !log || log.members === null;
    if (!log) {
      this.set(false);
      return;
    }
    this._toggle.textContent = log.members === null ? "" : plural(log.members, "member", "members");
    this._title.textContent = log.dm ? `You and ${log.dm.name}` : `People in #${log.name}`;
    const people = log.people ?? [];
    this._list.replaceChildren(
      ...people.map((person) =>
        h(
          "li",
          { class: "member" },
          h(
            "span",
            { class: "avatar small", "aria-hidden": "true", style: { "--hue": hueOf(person.user) } },
            initials(person.user),
          ),
          h("span", { class: "member-name" }, person.user),
          isMe(person, me) ? h("span", { class: "member-you" }, "(you)") : null,
          me.sub && person.sub && !isMe(person, me) && !log.dm
            ? h(
                "button",
                {
                  type: "button",
                  class: "button member-dm",
                  "aria-label": `Message ${person.user} directly`,
                  on: { click: () => this._onDirect(person) },
                },
                "Message",
              )
            : null,
        ),
      ),
    );
    // The total counts connections, the list people: say why they differ.
    const total = plural(log.members ?? 0, "member", "members");
    this._more.hidden = !log.peopleTruncated && (log.members ?? 0) <= people.length;
    this._more.textContent = log.peopleTruncated
      ? `Showing the first ${people.length} by name of ${total}.`
      : `${total} here: some are in more than one tab.`;
  }
}
