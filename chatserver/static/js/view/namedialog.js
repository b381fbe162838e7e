// The display-name dialog (open mode): asked on a first visit, and whenever the person wants
// another name. A first visit cannot dismiss it: there is no chat without a name.

import { displayName } from "../protocol.js";

export class NameDialog {
  /** `onName(name)` is called with the name the person confirmed, as the server will show it. */
  constructor({ dialog, form, input, error }, { onName }) {
    this._dialog = dialog;
    this._input = input;
    this._error = error;
    this._required = false;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this._submit(onName);
    });
    dialog.addEventListener("cancel", (e) => {
      if (this._required) e.preventDefault();
    });
  }

  /** Ask, starting from `current`; `required` while there is no name yet. */
  open(current, { required }) {
    this._required = required;
    this._input.value = current ?? "";
    this._error.hidden = true;
    this._dialog.showModal();
  }

  _submit(onName) {
    const name = displayName(this._input.value);
    if (!name) {
      this._error.textContent = "Type the name others will see.";
      this._error.hidden = false;
      this._input.setAttribute("aria-invalid", "true");
      return;
    }
    this._input.removeAttribute("aria-invalid");
    this._dialog.close();
    onName(name);
  }
}
