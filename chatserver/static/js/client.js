// The chat session of one tab: one WebSocket at a time, reconnected for as long as the page
// lives. It owns what must survive a reconnect: the rooms joined (with the last message id seen
// in each, for `join since`) and the outbox of sends not yet acknowledged, each with its room
// (resent with their original `ref`, which the server deduplicates). Everything it hears is
// re-dispatched as events; it knows nothing about the DOM.
//
// A session the server ends for good (its token expired: close 4001; or its token is refused:
// 401 before the upgrade) is not reconnected in a loop: the state becomes "expired" or
// "refused" until `reconnectNow()` (the page's retry button). A room the server will not let
// this session join (`error` `forbidden` with that `room`) is dropped, not asked for again.
//
// Events: "status" {state, retryAt, pod, usersOnline}; "ack" {ref, room, id} for a send the
// server accepted; "sendError" {ref, room, code, message, retrying} for one it refused;
// "joinRefused" {room, code, message} for a room dropped; "frame" for every other server frame,
// a `joined` with `with` included (a direct message, issue 13: its room's name is the server's,
// learnt from that answer; from then on it is rejoined with `dm`, never `join`),
// after the client's own bookkeeping; "problem" {text} for a line it could not read.
//
// Everything it touches outside itself is passed in (the WebSocket class, timers, the network's
// online state, fetch), so tests drive it without a server or a clock.

import { fullJitterDelay } from "./backoff.js";
import { DEFAULT_RATE, TYPING_INTERVAL_SECONDS } from "./contract.js";
import { laterId, randomId } from "./ids.js";
import * as protocol from "./protocol.js";

/** How often a live connection is probed; a probe unanswered by the next one means dead. */
const KEEPALIVE_MS = 15_000;
/** Frames the server's token bucket does not charge, sent at once rather than paced. */
const FREE_FRAMES = new Set(["ping", "typing"]);
/** Wait before re-sending a `ref` (or a join) the server could not take yet. */
const RESEND_DELAY_MS = 1_500;
/**
 * Share of the server's token bucket this page spends: frames paced exactly at the server's
 * rate may still arrive bunched by the network, and a refused frame costs a round trip.
 */
const PACE_MARGIN = 0.8;

/** The browser's own online state and its `online` / `offline` events. */
export const browserNetwork = {
  isOnline: () => navigator.onLine,
  subscribe(onOnline, onOffline) {
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
  },
};

export class ChatClient extends EventTarget {
  /**
   * `urlFor()` gives the /ws URL at each attempt, so a new display name takes effect. With
   * `usesToken`, a socket that closes before it opened is checked for a refusal (browsers hide
   * the handshake's status from WebSocket code, so a plain GET asks again).
   */
  constructor({
    urlFor,
    usesToken = false,
    WebSocket = globalThis.WebSocket,
    timers = globalThis,
    network = browserNetwork,
    fetch = (...args) => globalThis.fetch(...args),
    now = Date.now,
  }) {
    super();
    this._urlFor = urlFor;
    this._usesToken = usesToken;
    this._Socket = WebSocket;
    this._timers = timers;
    this._network = network;
    this._fetch = fetch;
    this._now = now;
    this._ws = null;
    this._attempt = 0;
    this._retryTimer = null;
    this._keepaliveTimer = null;
    this._heardSinceProbe = true;
    this._everLive = false;
    /** room -> id of the newest message seen there, by the ids' order rule (undefined until
     * one is seen, and again after a reset that brought none). */
    this._joined = new Map();
    /** Rooms asked for on this connection and not `joined` yet. */
    this._joining = new Set();
    /** Direct-message rooms: room -> the other person's `sub` (rejoined with `dm`). */
    this._dmWith = new Map();
    /** Subs of direct messages asked for whose room is not known yet (no `joined` so far). */
    this._dmAsked = new Set();
    /** ref -> send frame (with its room), in send order, until acknowledged or refused. */
    this._outbox = new Map();
    /**
     * Frames waiting for a token of this page's copy of the server's bucket (`welcome.rate`):
     * a resume of many rooms and pending sends goes out at the pace the server takes, instead
     * of at once and mostly refused with `rate_limited`.
     */
    this._paced = [];
    this._pace = { perSecond: 1, burst: 1, tokens: 0, stamp: 0, timer: null };
    /** room -> when (ms) this page last said it was typing there. */
    this._typedAt = new Map();
    this.status = { state: "connecting", retryAt: null, pod: null, usersOnline: null };
  }

  get live() {
    return this.status.state === "live";
  }

  start() {
    this._network.subscribe(
      () => {
        if (!this.live) this.reconnectNow();
      },
      () => this._dropSocket(),
    );
    this._connect();
  }

  /** Drop the current connection (if any) and connect again without waiting. */
  reconnectNow() {
    this._attempt = 0;
    this._closeSocket();
    this._connect();
  }

  join(room) {
    if (!this._joined.has(room)) this._joined.set(room, undefined);
    if (this.live) this._requestJoin(room);
  }

  /** Join the direct-message room shared with the person whose `sub` is `other`; `room` when
   * this page learnt it before (a reload), else the `joined` answer names it. */
  joinDirect(other, room = null) {
    if (room === null) {
      this._dmAsked.add(other);
      if (this.live) this._transmit(protocol.dm(other));
      return;
    }
    this._dmWith.set(room, other);
    this.join(room);
  }

  leave(room) {
    this._dmWith.delete(room);
    this._joined.delete(room);
    this._typedAt.delete(room);
    this._joining.delete(room);
    for (const [ref, frame] of this._outbox) if (frame.room === room) this._outbox.delete(ref);
    this._transmit(protocol.leave(room));
  }

  /** Queue a message; it is sent now if live, else as soon as the session is back. */
  send(room, text) {
    const ref = randomId();
    const frame = protocol.send(room, text, ref);
    this._outbox.set(ref, frame);
    this._transmit(frame);
    return ref;
  }

  /** Queue an edit, delete or reaction (a frame of protocol.js with a `ref`): sent and retried
   * as a send is, answered by "ack" or "sendError" with its ref. */
  update(frame) {
    this._outbox.set(frame.ref, frame);
    this._transmit(frame);
    return frame.ref;
  }

  /** Ask for the messages of `room` before the id `before` (answered by an `older` frame);
   * dropped when not live: the caller asks again once it wants them. */
  older(room, before) {
    this._transmit(protocol.older(room, before));
  }

  /** Ask for a page of the room directory (answered by a `rooms` frame); dropped when not
   * live: the directory asks again on the next `welcome`. */
  rooms(query, offset) {
    this._transmit(protocol.rooms(query, offset));
  }

  /** The person is typing in `room`: tell the server, at most once per interval, and only for
   * a room joined on this connection (a `typing` there otherwise is refused as not joined). */
  typing(room) {
    const now = this._now();
    if (!this._joined.has(room) || this._joining.has(room)) return;
    if (now - (this._typedAt.get(room) ?? -Infinity) < TYPING_INTERVAL_SECONDS * 1000) return;
    this._typedAt.set(room, now);
    this._transmit(protocol.typing(room));
  }

  /** Forget a send the server refused, so that it is not retried. */
  forget(ref) {
    this._outbox.delete(ref);
  }

  _connect() {
    this._clearRetry();
    if (!this._network.isOnline()) {
      this._setStatus({ state: "offline", retryAt: null });
      return;
    }
    this._setStatus({ state: this._everLive ? "reconnecting" : "connecting", retryAt: null });
    const ws = new this._Socket(this._urlFor());
    this._ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event) => this._onData(event.data);
    ws.onclose = (event) => this._onClose(ws, event.code, opened);
    // An error is always followed by a close event; the close decides what happens next.
    ws.onerror = () => {};
  }

  _onData(data) {
    this._heardSinceProbe = true;
    if (typeof data !== "string") return;
    const { frames, problems } = protocol.parseFrames(data);
    for (const line of problems) this._emit("problem", { text: line });
    for (const frame of frames) this._onFrame(frame);
  }

  _onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        this._attempt = 0;
        this._everLive = true;
        this._setStatus({ state: "live", retryAt: null, pod: frame.pod, usersOnline: frame.users_online });
        this._emit("frame", frame);
        this._startPacing(frame.rate ?? DEFAULT_RATE);
        this._resume();
        this._startKeepalive();
        return;
      case "message":
      case "update":
        if (this._joined.has(frame.room)) {
          this._joined.set(frame.room, laterId(this._joined.get(frame.room), frame.id));
        }
        break;
      case "joined": {
        this._joining.delete(frame.room);
        if (typeof frame.with === "string" && this._dmAsked.delete(frame.with)) {
          this._dmWith.set(frame.room, frame.with);
          this._joined.set(frame.room, undefined);
        }
        if (!this._joined.has(frame.room)) break;
        const last = frame.history?.at(-1)?.id;
        // A reset: what this tab saw is not in the room's log any more; resume from the new one.
        const since = frame.reset ? undefined : this._joined.get(frame.room);
        this._joined.set(frame.room, laterId(since, last));
        break;
      }
      case "presence":
        this.status = { ...this.status, usersOnline: frame.users_online };
        break;
      case "ack": {
        const sent = this._outbox.get(frame.ref);
        if (!sent) return; // a late ack of a send forgotten meanwhile
        this._outbox.delete(frame.ref);
        this._emit("ack", { ref: frame.ref, room: sent.room, id: frame.id });
        return;
      }
      case "error":
        if (frame.ref && this._outbox.has(frame.ref)) {
          this._onSendError(frame);
          return;
        }
        if (frame.room && this._joined.has(frame.room)) {
          this._onJoinError(frame);
          return;
        }
        // A direct message refused before its room was known (open mode, the token's claims).
        if (!protocol.RETRYABLE_ERRORS.has(frame.code)) this._dmAsked.clear();
        if (!frame.ref && !frame.room && protocol.RETRYABLE_ERRORS.has(frame.code)) {
          // A server from before joins' errors named their room: which join it was is not
          // said, and asking again for a room already joined only returns what is new since.
          this._timers.setTimeout(() => {
            for (const room of this._joining) this._requestJoin(room);
          }, RESEND_DELAY_MS);
        }
        break;
      case "reconnect":
        // A draining backend: leave now rather than wait for its close.
        this._emit("frame", frame);
        this.reconnectNow();
        return;
      default:
        break;
    }
    this._emit("frame", frame);
  }

  /** After a welcome: rejoin every room from where we were, then resend what is unacked. */
  _resume() {
    this._joining.clear();
    for (const room of this._joined.keys()) this._requestJoin(room);
    for (const other of this._dmAsked) this._transmit(protocol.dm(other));
    for (const frame of this._outbox.values()) this._transmit(frame);
  }

  _requestJoin(room) {
    this._joining.add(room);
    const since = this._joined.get(room);
    const other = this._dmWith.get(room);
    this._transmit(other === undefined ? protocol.join(room, since) : protocol.dm(other, since));
  }

  /** A join the server could not serve now is asked again; one it refuses is dropped. */
  _onJoinError(frame) {
    const { room, code, message } = frame;
    if (protocol.RETRYABLE_ERRORS.has(code)) {
      this._timers.setTimeout(() => {
        if (this._joining.has(room)) this._requestJoin(room);
      }, RESEND_DELAY_MS);
      this._emit("frame", frame);
      return;
    }
    this._joined.delete(room);
    this._joining.delete(room);
    this._dmWith.delete(room);
    for (const [ref, sent] of this._outbox) if (sent.room === room) this._outbox.delete(ref);
    this._emit("joinRefused", { room, code, message });
  }

  /** Retry what can succeed later with the same ref; give up on the rest. */
  _onSendError(frame) {
    const sent = this._outbox.get(frame.ref);
    const { room } = sent;
    // not_joined for a room we are in means the join on this connection failed (the broker
    // was away): ask again, and the message follows once the room is back.
    const rejoin = frame.code === protocol.ERROR.NOT_JOINED && this._joined.has(room);
    const retrying = rejoin || protocol.RETRYABLE_ERRORS.has(frame.code);
    if (rejoin && !this._joining.has(room)) this._requestJoin(room);
    if (retrying) this._resendLater(frame.ref);
    else this._outbox.delete(frame.ref);
    const { ref, code, message } = frame;
    this._emit("sendError", { ref, room, code, message, retrying, type: sent.type });
  }

  _resendLater(ref) {
    this._timers.setTimeout(() => {
      const frame = this._outbox.get(ref);
      if (frame) this._transmit(frame);
    }, RESEND_DELAY_MS);
  }

  /** Send now if it is free (`ping`, `typing`), else when the rate allows; dropped when not
   * live (a resume sends again whatever still matters). */
  _transmit(frame) {
    if (!this.live || this._ws?.readyState !== this._Socket.OPEN) return;
    if (FREE_FRAMES.has(frame.type)) this._ws.send(JSON.stringify(frame));
    else {
      this._paced.push(frame);
      this._drainPaced();
    }
  }

  /** A new connection: the server's bucket starts full (a little of it kept in reserve). */
  _startPacing({ per_second, burst }) {
    this._stopPacing();
    const perSecond = per_second * PACE_MARGIN;
    const size = Math.max(1, Math.floor(burst * PACE_MARGIN));
    this._pace = { perSecond, burst: size, tokens: size, stamp: this._now(), timer: null };
  }

  _drainPaced() {
    const pace = this._pace;
    if (pace.timer !== null) return; // already waiting for the next token
    const now = this._now();
    pace.tokens = Math.min(pace.burst, pace.tokens + ((now - pace.stamp) / 1000) * pace.perSecond);
    pace.stamp = now;
    while (this._paced.length && pace.tokens >= 1) {
      if (this._ws?.readyState !== this._Socket.OPEN) return;
      this._ws.send(JSON.stringify(this._paced.shift()));
      pace.tokens -= 1;
    }
    if (this._paced.length) {
      const wait = Math.ceil(((1 - pace.tokens) / pace.perSecond) * 1000);
      pace.timer = this._timers.setTimeout(() => {
        pace.timer = null;
        this._drainPaced();
      }, wait);
    }
  }

  _stopPacing() {
    this._timers.clearTimeout(this._pace.timer);
    this._pace.timer = null;
    this._paced = [];
  }

  _onClose(ws, code, opened) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._stopKeepalive();
    this._stopPacing();
    if (code === protocol.CLOSE.SESSION_EXPIRED) this._end("expired");
    else if (!opened && this._usesToken) this._checkRefusal(ws.url);
    else this._scheduleReconnect();
  }

  /** A handshake that failed: refused (401/403, do not retry) or the server is away (retry). */
  async _checkRefusal(wsUrl) {
    const url = new URL(wsUrl);
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    let status = 0;
    try {
      status = (await this._fetch(url, { cache: "no-store" })).status;
    } catch {
      // Unreachable: the server is away, which the reconnect loop handles.
    }
    if (this._ws) return; // reconnectNow() ran meanwhile
    if (status === 401 || status === 403) this._end("refused");
    else this._scheduleReconnect();
  }

  _end(state) {
    this._clearRetry();
    this._setStatus({ state, retryAt: null, pod: null, usersOnline: null });
  }

  _scheduleReconnect() {
    if (!this._network.isOnline()) {
      this._setStatus({ state: "offline", retryAt: null });
      return;
    }
    const delay = fullJitterDelay(this._attempt);
    this._attempt += 1;
    this._setStatus({ state: "reconnecting", retryAt: this._now() + delay });
    this._retryTimer = this._timers.setTimeout(() => this._connect(), delay);
  }

  /** Close without waiting for the closing handshake, which a dead peer never completes. */
  _closeSocket() {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._stopKeepalive();
    this._stopPacing();
    ws.onmessage = ws.onclose = null;
    ws.close();
  }

  _dropSocket() {
    if (!this._ws) return;
    this._closeSocket();
    this._scheduleReconnect();
  }

  _startKeepalive() {
    this._stopKeepalive();
    this._heardSinceProbe = true;
    this._keepaliveTimer = this._timers.setInterval(() => {
      if (!this._heardSinceProbe) {
        this._dropSocket();
        return;
      }
      this._heardSinceProbe = false;
      this._transmit(protocol.ping());
    }, KEEPALIVE_MS);
  }

  _stopKeepalive() {
    this._timers.clearInterval(this._keepaliveTimer);
    this._keepaliveTimer = null;
  }

  _clearRetry() {
    this._timers.clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  _setStatus(change) {
    this.status = { ...this.status, ...change };
    this._emit("status", this.status);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
