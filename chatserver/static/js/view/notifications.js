// Browser notifications while the tab is hidden, and the switch that turns them on. The browser
// is asked for its permission only when the person flips the switch (browsers ignore or hold
// against a prompt no gesture asked for); the choice is remembered in this browser.

import * as prefs from "../prefs.js";

/** A notification shows at most this many characters of a message. */
const EXCERPT_CHARS = 140;

const HINT = {
  off: "Mentions of you, and the open room, while this tab is hidden.",
  on: "On: mentions of you, and the open room, while this tab is hidden.",
  denied: "Blocked in this browser's site settings.",
};

export class Notifications {
  /** `setting` holds the switch (`toggle`) and what it does (`hint`); `onOpen(room)` runs when
   * a notification is clicked. */
  constructor({ setting, toggle, hint }, { onOpen }) {
    this._toggle = toggle;
    this._hint = hint;
    this._onOpen = onOpen;
    // No Notification API (an iOS page not added to the home screen, an old browser): no switch.
    setting.hidden = !("Notification" in window);
    toggle.addEventListener("click", () => this._flip());
    // The person may allow or block notifications in the browser's site settings meanwhile.
    navigator.permissions
      ?.query({ name: "notifications" })
      .then((status) => status.addEventListener("change", () => this._render()))
      .catch(() => {}); // no such permission to watch in this browser: the switch still works
    this._render();
  }

  /** Whether notifications are wanted and allowed. */
  get on() {
    return "Notification" in window && Notification.permission === "granted" && prefs.notifying();
  }

  /** Say that `user` wrote `text` in `room` (called `where`: "#room", or a direct message's
   * other person); one notification per room, the newest replacing. */
  show({ room, where = `#${room}`, user, text, mention }) {
    if (!this.on) return;
    const title = mention ? `${user} mentioned you in ${where}` : `${user} in ${where}`;
    const chars = Array.from(text);
    const body = chars.length > EXCERPT_CHARS ? chars.slice(0, EXCERPT_CHARS - 1).join("") + "…" : text;
    const notification = new Notification(title, { body, tag: `chatcluster:${room}` });
    notification.addEventListener("click", () => {
      window.focus();
      this._onOpen(room);
      notification.close();
    });
  }

  async _flip() {
    if (this.on) prefs.setNotifying(false);
    else if ((await Notification.requestPermission()) === "granted") prefs.setNotifying(true);
    this._render();
  }

  _render() {
    if (!("Notification" in window)) return;
    const denied = Notification.permission === "denied";
    this._toggle.setAttribute("aria-checked", String(this.on));
    this._toggle.disabled = denied;
    this._hint.textContent = HINT[denied ? "denied" : this.on ? "on" : "off"];
  }
}
