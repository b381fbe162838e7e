// What this browser remembers between visits (localStorage), each under one named key.

import { randomId } from "./ids.js";

const KEY = {
  name: "chatcluster.name",
  client: "chatcluster.client",
  rooms: "chatcluster.rooms",
  active: "chatcluster.activeRoom",
  dms: "chatcluster.directMessages",
  notify: "chatcluster.notify",
};

export const DEFAULT_ROOMS = ["general"];

function read(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage disabled (private mode, policy): behave as a first visit
  }
}

function write(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Nothing to remember with: the session still works, it just is not remembered.
  }
}

export const displayName = () => read(KEY.name)?.trim() || null;
export const setDisplayName = (name) => write(KEY.name, name);

/** The stable id the server uses to deduplicate our resends across reconnects. */
export function clientId() {
  let id = read(KEY.client);
  if (!id) {
    id = randomId();
    write(KEY.client, id);
  }
  return id;
}

export function rooms() {
  try {
    const saved = JSON.parse(read(KEY.rooms) ?? "null");
    if (Array.isArray(saved) && saved.every((r) => typeof r === "string")) return saved;
  } catch {
    // A corrupt value is forgotten below.
  }
  return DEFAULT_ROOMS;
}
export const setRooms = (names) => write(KEY.rooms, JSON.stringify(names));

/** Direct messages (token mode): room -> {with: the other person's sub, name: their display
 * name}, so a reload rejoins them and titles them. */
export function directMessages() {
  try {
    const saved = JSON.parse(read(KEY.dms) ?? "null");
    if (saved && typeof saved === "object" && !Array.isArray(saved)) {
      return Object.fromEntries(
        Object.entries(saved).filter(
          ([, dm]) => typeof dm?.with === "string" && typeof dm?.name === "string",
        ),
      );
    }
  } catch {
    // A corrupt value is forgotten below.
  }
  return {};
}
export const setDirectMessages = (dms) => write(KEY.dms, JSON.stringify(dms));

export const activeRoom = () => read(KEY.active);
export const setActiveRoom = (room) => write(KEY.active, room);

/** Whether the person turned browser notifications on (the browser's permission aside). */
export const notifying = () => read(KEY.notify) === "on";
export const setNotifying = (on) => write(KEY.notify, on ? "on" : null);
