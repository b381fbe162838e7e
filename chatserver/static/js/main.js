// Wires the page together: the session (ChatClient), what each room shows (RoomLog), and the
// views. Every server frame updates state first, then the views render from state.

import { ChatClient } from "./client.js";
import { byId } from "./dom.js";
import { hueOf, initials, plural } from "./format.js";
import * as prefs from "./prefs.js";
import * as protocol from "./protocol.js";
import { RoomLog } from "./roomlog.js";
import { MessageList } from "./view/messages.js";
import { renderRooms } from "./view/rooms.js";
import { StatusBar } from "./view/status.js";

/** How long a notice (an error not tied to one message) stays up. */
const NOTICE_MS = 6_000;

class App {
  constructor() {
    this.logs = new Map();
    /** ref -> room, to route acks and errors (which carry only the ref) to their room. */
    this.refRooms = new Map();
    this.active = null;
    /** Token mode: the JWT from the page's fragment; the server then names this person. */
    this.token = protocol.tokenFromFragment(location.hash);
    this.me = this.token ? null : prefs.displayName();
    this.noticeTimer = null;

    this.el = {
      app: byId("app"),
      roomList: byId("room-list"),
      roomForm: byId("room-form"),
      roomInput: byId("room-input"),
      roomError: byId("room-error"),
      roomsToggle: byId("rooms-toggle"),
      sidebar: byId("sidebar"),
      scrim: byId("scrim"),
      roomName: byId("room-name"),
      members: byId("room-members"),
      leave: byId("leave-button"),
      notice: byId("notice"),
      emptyState: byId("empty-state"),
      emptyTitle: byId("empty-title"),
      emptyText: byId("empty-text"),
      composer: byId("composer"),
      input: byId("composer-input"),
      myName: byId("my-name"),
      myAvatar: byId("my-avatar"),
      meMode: byId("me-mode"),
      changeName: byId("change-name"),
      nameDialog: byId("name-dialog"),
      nameForm: byId("name-form"),
      nameInput: byId("name-input"),
      nameError: byId("name-error"),
    };
    this.messages = new MessageList(byId("messages"), byId("jump-latest"), {
      onDiscard: (ref) => this.discard(ref),
    });
    this.status = new StatusBar({
      connection: byId("connection"),
      state: byId("connection-state"),
      countdown: byId("connection-countdown"),
      pod: byId("pod"),
      users: byId("users-online"),
      retry: byId("retry-now"),
    });
    this.client = new ChatClient({
      urlFor: () =>
        protocol.socketUrl(location, { name: this.me, client: prefs.clientId(), token: this.token }),
      usesToken: this.token !== null,
    });
  }

  start() {
    this.bindEvents();
    // A hand-edited or stale list must not send the server names it would refuse.
    for (const room of prefs.rooms().filter((r) => protocol.ROOM_NAME.test(r))) {
      this.logs.set(room, new RoomLog(room));
    }
    const saved = prefs.activeRoom();
    this.active = this.logs.has(saved) ? saved : (this.logs.keys().next().value ?? null);
    this.renderAll();
    if (this.token) {
      // The name comes from the token (`welcome.user`): no name picker.
      this.el.changeName.hidden = true;
      this.el.meMode.textContent = "Signed in with an access link";
    }
    if (this.token || this.me) this.connect();
    else this.askName();
  }

  connect() {
    this.renderMe();
    for (const room of this.logs.keys()) this.client.join(room);
    this.client.start();
  }

  bindEvents() {
    this.client.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.client.addEventListener("sendError", (e) => this.onSendError(e.detail));
    this.client.addEventListener("status", (e) => {
      this.status.render(e.detail);
      this.renderChat();
    });
    this.client.addEventListener("problem", () => this.showNotice("The server sent something this page could not read."));
    byId("retry-now").addEventListener("click", () => this.client.reconnectNow());

    this.el.roomForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.joinFromForm();
    });
    this.el.roomInput.addEventListener("input", () => this.showRoomProblem(null));
    this.el.leave.addEventListener("click", () => this.leave(this.active));
    this.el.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendFromComposer();
    });
    this.el.input.addEventListener("keydown", (e) => {
      // Enter sends, Shift+Enter makes a new line; an IME composing text keeps its Enter.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendFromComposer();
      }
    });
    this.el.input.addEventListener("input", () => this.fitComposer());
    this.el.roomsToggle.addEventListener("click", () => this.setDrawer(!this.drawerOpen()));
    this.el.scrim.addEventListener("click", () => this.setDrawer(false));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.drawerOpen()) {
        this.setDrawer(false);
        this.el.roomsToggle.focus();
      }
    });
    document.addEventListener("visibilitychange", () => {
      const log = this.logs.get(this.active);
      if (!document.hidden && log?.unread) {
        log.unread = 0;
        this.renderAll();
      }
    });
    this.el.changeName.addEventListener("click", () => this.askName());
    this.el.nameForm.addEventListener("submit", (e) => this.submitName(e));
    this.el.nameDialog.addEventListener("cancel", (e) => {
      if (!this.me) e.preventDefault(); // a first visit needs a name before it can chat
    });
  }

  onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        this.me = frame.user;
        this.renderMe();
        if (frame.protocol !== protocol.PROTOCOL_VERSION) {
          // An old page cached across an upgrade: it may misread what the server sends.
          this.showNotice("The chat server was updated: reload the page to keep chatting.");
        }
        break;
      case "joined": {
        const log = this.logs.get(frame.room);
        if (!log) return;
        log.members = frame.members;
        log.addHistory(frame.history, frame.truncated, this.me);
        break;
      }
      case "message": {
        const log = this.logs.get(frame.room);
        const entry = log?.addMessage(frame, this.me);
        if (entry && !entry.mine && (log.name !== this.active || document.hidden)) log.unread += 1;
        break;
      }
      case "ack":
        this.logs.get(this.refRooms.get(frame.ref))?.ack(frame.ref, frame.id);
        this.refRooms.delete(frame.ref);
        break;
      case "presence":
        for (const [room, members] of Object.entries(frame.rooms ?? {})) {
          const log = this.logs.get(room);
          if (log) log.members = members;
        }
        this.status.render(this.client.status);
        break;
      case "error":
        this.showNotice(protocol.describeError(frame.code, frame.message));
        return;
      default:
        return;
    }
    this.renderAll();
  }

  onSendError({ ref, room, code, message, retrying }) {
    const log = this.logs.get(room);
    if (!log) return;
    if (!retrying) {
      log.fail(ref, protocol.describeError(code, message));
      this.refRooms.delete(ref);
    } else if (code === protocol.ERROR.NOT_JOINED) {
      log.delay(ref, `Rejoining #${room}; the message follows.`);
    } else {
      log.delay(ref, protocol.describeError(code, message));
    }
    this.renderAll();
  }

  joinFromForm() {
    const room = this.el.roomInput.value.trim();
    const problem = protocol.roomNameProblem(room);
    if (problem) {
      this.showRoomProblem(problem);
      this.el.roomInput.focus();
      return;
    }
    this.el.roomInput.value = "";
    this.join(room);
  }

  join(room) {
    if (!this.logs.has(room)) {
      this.logs.set(room, new RoomLog(room));
      prefs.setRooms([...this.logs.keys()]);
      this.client.join(room);
    }
    this.select(room);
  }

  leave(room) {
    if (!this.logs.has(room)) return;
    this.client.leave(room);
    this.logs.delete(room);
    for (const [ref, refRoom] of this.refRooms) if (refRoom === room) this.refRooms.delete(ref);
    prefs.setRooms([...this.logs.keys()]);
    this.select(this.logs.keys().next().value ?? null);
  }

  select(room) {
    this.active = room;
    prefs.setActiveRoom(room);
    const log = this.logs.get(room);
    if (log) log.unread = 0;
    this.setDrawer(false);
    this.renderAll();
    if (log) this.el.input.focus();
    else this.el.roomInput.focus();
  }

  sendFromComposer() {
    const text = this.el.input.value.trim();
    const log = this.logs.get(this.active);
    if (!text || !log) return;
    const ref = this.client.send(log.name, text);
    this.refRooms.set(ref, log.name);
    log.addPending(ref, text, this.me, Date.now() / 1000);
    this.el.input.value = "";
    this.fitComposer();
    this.renderAll();
  }

  discard(ref) {
    this.client.forget(ref);
    for (const log of this.logs.values()) log.discard(ref);
    this.renderAll();
    this.el.input.focus();
  }

  askName() {
    this.el.nameInput.value = this.me ?? "";
    this.el.nameError.hidden = true;
    this.el.nameDialog.showModal();
  }

  submitName(event) {
    event.preventDefault();
    const name = this.el.nameInput.value.trim();
    if (!name) {
      this.el.nameError.textContent = "Type the name others will see.";
      this.el.nameError.hidden = false;
      this.el.nameInput.setAttribute("aria-invalid", "true");
      return;
    }
    this.el.nameInput.removeAttribute("aria-invalid");
    this.el.nameDialog.close();
    const first = !this.me;
    const changed = name !== this.me;
    this.me = name;
    prefs.setDisplayName(name);
    if (first) this.connect();
    else if (changed) this.client.reconnectNow();
    this.renderMe();
    this.el.input.focus();
  }

  showRoomProblem(problem) {
    this.el.roomError.textContent = problem ?? "";
    this.el.roomError.hidden = problem === null;
    if (problem) this.el.roomInput.setAttribute("aria-invalid", "true");
    else this.el.roomInput.removeAttribute("aria-invalid");
  }

  showNotice(text) {
    this.el.notice.textContent = text;
    this.el.notice.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.el.notice.hidden = true;
    }, NOTICE_MS);
  }

  drawerOpen() {
    return this.el.app.classList.contains("drawer-open");
  }

  setDrawer(open) {
    this.el.app.classList.toggle("drawer-open", open);
    this.el.roomsToggle.setAttribute("aria-expanded", String(open));
    if (open) this.el.sidebar.querySelector("[aria-current=page], .room, input")?.focus();
  }

  fitComposer() {
    const input = this.el.input;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 200) + "px";
  }

  renderMe() {
    this.el.myName.textContent = this.me ?? "";
    this.el.myAvatar.textContent = this.me ? initials(this.me) : "";
    this.el.myAvatar.style.setProperty("--hue", this.me ? hueOf(this.me) : 0);
  }

  renderAll() {
    renderRooms(this.el.roomList, this.logs, this.active, { onSelect: (room) => this.select(room) });
    this.renderChat();
    const unread = [...this.logs.values()].reduce((sum, log) => sum + log.unread, 0);
    document.title = (unread ? `(${unread}) ` : "") + (this.active ? `#${this.active} · ` : "") + "chatcluster";
  }

  renderChat() {
    const log = this.logs.get(this.active) ?? null;
    this.el.roomName.textContent = log ? log.name : "no room";
    this.el.members.textContent =
      log?.members === null || !log ? "" : plural(log.members, "member", "members");
    this.el.leave.hidden = !log;
    this.el.leave.setAttribute("aria-label", log ? `Leave #${log.name}` : "Leave");
    this.el.composer.hidden = !log;
    this.el.input.placeholder = log ? `Message #${log.name}` : "";
    this.el.input.setAttribute("aria-label", log ? `Message #${log.name}` : "Message");
    this.el.emptyState.hidden = Boolean(log && log.entries().length > 0);
    this.el.emptyTitle.textContent = log ? `Welcome to #${log.name}` : "You are not in any room";
    this.el.emptyText.textContent = log
      ? "No messages yet. Say hello: everyone in this room sees it at once."
      : "Join a room, or create one by typing a new name under Rooms.";
    this.messages.render(log, { live: this.client.live });
  }
}

new App().start();
