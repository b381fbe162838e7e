// Wires the page together: the session (ChatClient), what each room shows (RoomLog), and the
// views (view/). Every server frame updates state first, then the views render from state.

import { ChatClient } from "./client.js";
import { byId } from "./dom.js";
import { hueOf, initials } from "./format.js";
import { randomId } from "./ids.js";
import { mentionsMe, unreadMark } from "./mentions.js";
import * as prefs from "./prefs.js";
import * as protocol from "./protocol.js";
import { OLDER_RETRY_MS, RoomLog, isMe } from "./roomlog.js";
import { Typists, typingText } from "./typing.js";
import { DirectoryDialog } from "./view/directory.js";
import { Drawer } from "./view/drawer.js";
import { MembersPanel } from "./view/members.js";
import { MessageList } from "./view/messages.js";
import { NameDialog } from "./view/namedialog.js";
import { Notice } from "./view/notice.js";
import { Notifications } from "./view/notifications.js";
import { renderRoomChrome } from "./view/room.js";
import { renderRooms } from "./view/rooms.js";
import { StatusBar } from "./view/status.js";

class App {
  constructor() {
    this.logs = new Map();
    this.active = null;
    this.typists = new Typists();
    /** Re-renders the typing line when its next typist expires. */
    this.typingTimer = null;
    /** Token mode: the JWT from the page's fragment; the server then names this person. */
    this.token = protocol.tokenFromFragment(location.hash);
    this.me = this.token ? null : prefs.displayName();
    /** Token mode: the token's `sub`, from `welcome`, which tells this person's messages apart
     * from those of someone with the same display name. */
    this.mySub = null;
    /** The owner digest this session's messages carry, from `welcome` (issue 13): which
     * messages this person may edit, and which reactions are theirs. */
    this.myOwner = null;
    /** Direct messages asked for and not joined yet: the other person's sub -> their name. */
    this.startingDirect = new Map();

    this.el = {
      app: byId("app"),
      roomList: byId("room-list"),
      roomForm: byId("room-form"),
      roomInput: byId("room-input"),
      roomError: byId("room-error"),
      roomName: byId("room-name"),
      roomHash: byId("room-hash"),
      dmSection: byId("dm-section"),
      dmList: byId("dm-list"),
      typing: byId("typing"),
      leave: byId("leave-button"),
      emptyState: byId("empty-state"),
      emptyTitle: byId("empty-title"),
      emptyText: byId("empty-text"),
      composer: byId("composer"),
      input: byId("composer-input"),
      myName: byId("my-name"),
      myAvatar: byId("my-avatar"),
      meMode: byId("me-mode"),
      changeName: byId("change-name"),
    };
    this.messages = new MessageList(byId("messages"), byId("jump-latest"), {
      onDiscard: (ref) => this.discard(ref),
      onOlder: (room) => this.requestOlder(room),
      // Edits, deletes and reactions show once the server sends them back as `update`s.
      onEdit: (entry, text) => this.client.update(protocol.edit(this.active, entry.id, text, randomId())),
      onDelete: (entry) => this.client.update(protocol.remove(this.active, entry.id, randomId())),
      onReact: (entry, emoji, on) =>
        this.client.update(protocol.react(this.active, entry.id, emoji, on, randomId())),
    });
    this.status = new StatusBar({
      connection: byId("connection"),
      state: byId("connection-state"),
      countdown: byId("connection-countdown"),
      pod: byId("pod"),
      users: byId("users-online"),
      retry: byId("retry-now"),
    });
    this.notice = new Notice(byId("notice"));
    this.notifications = new Notifications(
      { setting: byId("notify-setting"), toggle: byId("notify-toggle"), hint: byId("notify-hint") },
      { onOpen: (room) => this.select(room) },
    );
    this.members = new MembersPanel(
      {
        toggle: byId("room-members"),
        panel: byId("members-panel"),
        title: byId("members-title"),
        list: byId("member-list"),
        more: byId("members-more"),
      },
      { onDirect: (person) => this.startDirect(person) },
    );
    this.directory = new DirectoryDialog(
      {
        dialog: byId("directory-dialog"),
        form: byId("directory-form"),
        search: byId("directory-search"),
        close: byId("directory-close"),
        summary: byId("directory-summary"),
        list: byId("directory-list"),
        more: byId("directory-more"),
      },
      {
        onQuery: (query, offset) => this.client.rooms(query, offset),
        onChoose: (room) => this.join(room),
        isJoined: (room) => this.logs.has(room),
      },
    );
    this.drawer = new Drawer({
      app: this.el.app,
      toggle: byId("rooms-toggle"),
      scrim: byId("scrim"),
      sidebar: byId("sidebar"),
    });
    this.nameDialog = new NameDialog(
      {
        dialog: byId("name-dialog"),
        form: byId("name-form"),
        input: byId("name-input"),
        error: byId("name-error"),
      },
      { onName: (name) => this.setName(name) },
    );
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
      if (!protocol.DM_ROOM.test(room)) this.logs.set(room, new RoomLog(room));
    }
    for (const [room, dm] of Object.entries(prefs.directMessages())) {
      if (!protocol.DM_ROOM.test(room)) continue;
      const log = new RoomLog(room);
      log.dm = dm;
      this.logs.set(room, log);
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
    for (const log of this.logs.values()) {
      if (log.dm) this.client.joinDirect(log.dm.with, log.name);
      else this.client.join(log.name);
    }
    this.client.start();
  }

  bindEvents() {
    this.client.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.client.addEventListener("ack", (e) => this.onAck(e.detail));
    this.client.addEventListener("sendError", (e) => this.onSendError(e.detail));
    this.client.addEventListener("joinRefused", (e) => this.onJoinRefused(e.detail));
    this.client.addEventListener("status", (e) => {
      this.status.render(e.detail);
      this.renderChat();
    });
    this.client.addEventListener("problem", () =>
      this.notice.show("The server sent something this page could not read."),
    );
    byId("retry-now").addEventListener("click", () => this.client.reconnectNow());
    byId("browse-rooms").addEventListener("click", () => this.directory.open());

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
    this.el.input.addEventListener("input", () => {
      this.fitComposer();
      if (this.active && this.el.input.value.trim()) this.client.typing(this.active);
    });
    document.addEventListener("visibilitychange", () => {
      const log = this.logs.get(this.active);
      if (!document.hidden && log?.unread) {
        log.markRead();
        this.renderAll();
      }
    });
    this.el.changeName.addEventListener("click", () => this.askName());
  }

  onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        this.me = frame.user;
        this.mySub = frame.sub ?? null;
        this.myOwner = frame.owner ?? null;
        this.renderMe();
        for (const log of this.logs.values()) log.olderLost();
        this.directory.refresh();
        if (frame.protocol !== protocol.PROTOCOL_VERSION) {
          // An old page cached across an upgrade: it may misread what the server sends.
          this.notice.show("The chat server was updated: reload the page to keep chatting.");
        }
        break;
      case "joined": {
        const log = this.logs.get(frame.room) ?? this.openedDirect(frame);
        if (!log) return;
        log.members = frame.members;
        log.addHistory(frame.history, frame.truncated, this.identity, frame.reset === true);
        break;
      }
      case "message": {
        this.typists.sent(frame);
        const log = this.logs.get(frame.room);
        const entry = log?.addMessage(frame, this.identity);
        if (entry && !entry.mine) this.onNewMessage(log, entry);
        break;
      }
      case "update":
        this.logs.get(frame.room)?.addUpdate(frame);
        break;
      case "older":
        this.logs.get(frame.room)?.addOlder(frame.messages ?? [], frame.start === true, this.identity);
        break;
      case "members": {
        const log = this.logs.get(frame.room);
        if (!log) return;
        log.members = frame.total;
        log.people = frame.people;
        log.peopleTruncated = frame.truncated;
        break;
      }
      case "typing":
        // Another tab of this same person is typing: not news to them.
        if (!this.logs.has(frame.room) || isMe(frame, this.identity)) return;
        this.typists.saw(frame, Date.now());
        this.renderTyping(); // only the typing line changed
        return;
      case "presence":
        for (const [room, members] of Object.entries(frame.rooms ?? {})) {
          const log = this.logs.get(room);
          if (log) log.members = members;
        }
        this.status.render(this.client.status);
        break;
      case "rooms":
        this.directory.show(frame);
        return;
      case "dm":
        this.calledDirect(frame);
        break;
      case "error":
        this.notice.show(protocol.describeError(frame.code, frame.message));
        return;
      default:
        return;
    }
    this.renderAll();
  }

  /** Someone else's message, live and new to this page (never history, never a replay: the
   * log shows each id once). It is unread unless the reader is looking at its room; a hidden
   * tab notifies of mentions of the reader in any room, and of every message in the open one. */
  onNewMessage(log, entry) {
    const mention = mentionsMe(entry.text, { me: this.me, names: log.authors() });
    if (log.name !== this.active || document.hidden) {
      log.unread += 1;
      if (mention) log.mentions += 1;
    }
    if (document.hidden && (mention || log.name === this.active)) {
      const { name: room, title: where } = log;
      this.notifications.show({ room, where, user: entry.user, text: entry.text, mention });
    }
  }

  onAck({ ref, room, id }) {
    this.logs.get(room)?.ack(ref, id);
    this.renderAll();
  }

  onSendError({ ref, room, code, message, retrying, type }) {
    const log = this.logs.get(room);
    if (!log) return;
    if (type !== "send") {
      // An edit, delete or reaction: nothing of it is shown until the server stores it.
      if (!retrying) this.notice.show(protocol.describeError(code, message));
      return;
    }
    if (!retrying) {
      log.fail(ref, protocol.describeError(code, message));
    } else if (code === protocol.ERROR.NOT_JOINED) {
      log.delay(ref, `Rejoining #${room}; the message follows.`);
    } else {
      log.delay(ref, protocol.describeError(code, message));
    }
    this.renderAll();
  }

  /** The server will not let this session into `room`: say so, and stop showing it. */
  onJoinRefused({ room, code, message }) {
    const said = protocol.describeError(code, message);
    if (protocol.ROOM_REFUSALS.has(code)) this.showRoomProblem(`#${room}: ${said}`);
    else this.notice.show(said);
    this.forgetRoom(room);
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
      this.remember();
      this.client.join(room);
    }
    this.select(room);
  }

  /** Open the direct message with `person` ({user, sub}), started from their name. */
  startDirect(person) {
    const open = [...this.logs.values()].find((log) => log.dm?.with === person.sub);
    if (open) {
      this.select(open.name);
      return;
    }
    this.startingDirect.set(person.sub, person.user);
    this.client.joinDirect(person.sub);
  }

  /** The log of a direct message the server just let this page into, made now if it was asked
   * for here (null for any other unknown room). */
  openedDirect(frame) {
    if (typeof frame.with !== "string" || !this.startingDirect.has(frame.with)) return null;
    const log = new RoomLog(frame.room);
    log.dm = { with: frame.with, name: this.startingDirect.get(frame.with) };
    this.startingDirect.delete(frame.with);
    this.logs.set(frame.room, log);
    this.remember();
    this.select(frame.room);
    return log;
  }

  /** Someone opened a direct message with this person: list it (unopened) and join it, so
   * what they write arrives as unread. */
  calledDirect({ room, with: other, user }) {
    if (!protocol.DM_ROOM.test(room) || this.logs.has(room)) return;
    const log = new RoomLog(room);
    log.dm = { with: other, name: user };
    this.logs.set(room, log);
    this.remember();
    this.client.joinDirect(other, room);
  }

  /** Save which rooms and direct messages this page is in, for the next visit. */
  remember() {
    const logs = [...this.logs.values()];
    prefs.setRooms(logs.filter((log) => !log.dm).map((log) => log.name));
    prefs.setDirectMessages(Object.fromEntries(logs.filter((log) => log.dm).map((log) => [log.name, log.dm])));
  }

  leave(room) {
    if (!this.logs.has(room)) return;
    this.client.leave(room);
    this.forgetRoom(room);
  }

  forgetRoom(room) {
    if (!this.logs.delete(room)) return;
    this.typists.forget(room);
    this.remember();
    if (room === this.active) this.select(this.logs.keys().next().value ?? null);
    else this.renderAll();
  }

  select(room) {
    this.active = room;
    prefs.setActiveRoom(room);
    const log = this.logs.get(room);
    log?.markRead();
    this.drawer.set(false);
    this.renderAll();
    if (log) this.el.input.focus();
    else this.el.roomInput.focus();
  }

  sendFromComposer() {
    const text = this.el.input.value.trim();
    const log = this.logs.get(this.active);
    if (!text || !log) return;
    const ref = this.client.send(log.name, text);
    log.addPending(ref, text, this.identity, Date.now() / 1000);
    this.el.input.value = "";
    this.fitComposer();
    this.renderAll();
  }

  /** The messages of `room` before the first one shown, if there may be some to ask for. */
  requestOlder(room) {
    const before = this.client.live ? this.logs.get(room)?.olderRequest(Date.now()) : null;
    if (!before) return;
    this.client.older(room, before);
    // Unanswered (refused, or lost with its connection), it is asked for again after this.
    setTimeout(() => this.renderChat(), OLDER_RETRY_MS);
  }

  /** A failed send the person dismissed (from the active room's list). */
  discard(ref) {
    this.client.forget(ref);
    this.logs.get(this.active)?.discard(ref);
    this.renderAll();
    this.el.input.focus();
  }

  askName() {
    this.nameDialog.open(this.me, { required: !this.me });
  }

  /** Who this tab's person is, for telling their messages and presence from others'. */
  get identity() {
    return { user: this.me, sub: this.mySub, owner: this.myOwner };
  }

  setName(name) {
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
    const logs = [...this.logs.values()];
    const onSelect = (room) => this.select(room);
    const directs = logs.filter((log) => log.dm);
    renderRooms(this.el.roomList, logs.filter((log) => !log.dm), this.active, { onSelect });
    renderRooms(this.el.dmList, directs, this.active, { onSelect });
    this.el.dmSection.hidden = directs.length === 0;
    this.renderChat();
    const mark = unreadMark(
      logs.reduce((sum, log) => sum + log.unread, 0),
      logs.reduce((sum, log) => sum + log.mentions, 0),
    );
    const open = this.logs.get(this.active);
    const where = open ? `${open.title} · ` : "";
    document.title = (mark ? `(${mark}) ` : "") + where + "chatcluster";
  }

  renderChat() {
    const log = this.logs.get(this.active) ?? null;
    renderRoomChrome(this.el, log);
    this.members.render(log, this.identity);
    this.messages.render(log, { live: this.client.live, me: this.me, owner: this.myOwner });
    this.renderTyping();
  }

  renderTyping() {
    const now = Date.now();
    const text = this.active ? typingText(this.typists.names(this.active, now)) : "";
    if (this.el.typing.textContent !== text) this.el.typing.textContent = text;
    clearTimeout(this.typingTimer);
    const next = this.active ? this.typists.nextExpiry(this.active) : null;
    this.typingTimer = next === null ? null : setTimeout(() => this.renderTyping(), next - now);
  }
}

new App().start();
