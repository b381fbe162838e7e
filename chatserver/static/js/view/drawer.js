// The rooms drawer on narrow screens: the sidebar slides over the chat, behind a scrim. Escape
// or a tap on the scrim closes it and gives the focus back to the toggle.

export class Drawer {
  constructor({ app, toggle, scrim, sidebar }) {
    this._app = app;
    this._toggle = toggle;
    this._sidebar = sidebar;
    toggle.addEventListener("click", () => this.set(!this.isOpen()));
    scrim.addEventListener("click", () => this.set(false));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.isOpen()) {
        this.set(false);
        toggle.focus();
      }
    });
  }

  isOpen() {
    return this._app.classList.contains("drawer-open");
  }

  set(open) {
    this._app.classList.toggle("drawer-open", open);
    this._toggle.setAttribute("aria-expanded", String(open));
    if (open) this._sidebar.querySelector("[aria-current=page], .room, input")?.focus();
  }
}
