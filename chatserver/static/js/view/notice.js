// A notice: one line about something not tied to a message (an error, an updated server),
// shown in an alert region for a few seconds.

/** How long a notice stays up. */
const NOTICE_MS = 6_000;

export class Notice {
  constructor(element) {
    this._element = element;
    this._timer = null;
  }

  show(text) {
    this._element.textContent = text;
    this._element.hidden = false;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this._element.hidden = true;
    }, NOTICE_MS);
  }
}
