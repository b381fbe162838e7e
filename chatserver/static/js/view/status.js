// The status bar: connection state (with a countdown while waiting to reconnect), the backend
// pod serving this tab, and how many people are online in the cluster.

import { plural } from "../format.js";

const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting",
  offline: "Offline",
  expired: "Your session has expired",
  refused: "Access refused",
};
/** States in which the retry button is offered: waiting, or ended until the person asks. */
const RETRYABLE = new Set(["reconnecting", "offline", "expired", "refused"]);

export class StatusBar {
  /** `state` is a live region: it changes only with the state, never with the countdown. */
  constructor({ connection, state, countdown, pod, users, retry }) {
    this._connection = connection;
    this._state = state;
    this._countdown = countdown;
    this._pod = pod;
    this._users = users;
    this._retry = retry;
    this._ticker = null;
    this._retryAt = null;
  }

  render(status) {
    this._connection.dataset.state = status.state;
    if (this._state.textContent !== LABELS[status.state]) this._state.textContent = LABELS[status.state];
    this._retry.hidden = !RETRYABLE.has(status.state);
    this._pod.textContent = status.pod ?? "—";
    this._users.textContent =
      status.usersOnline === null || status.usersOnline === undefined
        ? "—"
        : plural(status.usersOnline, "person online", "people online");
    this._retryAt = status.state === "reconnecting" ? status.retryAt : null;
    clearInterval(this._ticker);
    this._ticker = this._retryAt ? setInterval(() => this._renderCountdown(), 250) : null;
    this._renderCountdown();
  }

  _renderCountdown() {
    const seconds = this._retryAt ? Math.max(1, Math.ceil((this._retryAt - Date.now()) / 1000)) : 0;
    this._countdown.textContent = seconds ? ` in ${seconds}s` : "";
  }
}
