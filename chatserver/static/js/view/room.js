// What surrounds the active room's messages: its header (name, Leave; the member count is the
// members panel's toggle), the empty state and the composer's labels. Nothing here when no room
// is open, and a hint where to start.

/** `el` holds roomName, leave, composer, input, emptyState, emptyTitle, emptyText. */
export function renderRoomChrome(el, log) {
  el.roomName.textContent = log ? log.name : "no room";
  el.leave.hidden = !log;
  el.leave.setAttribute("aria-label", log ? `Leave #${log.name}` : "Leave");
  el.composer.hidden = !log;
  el.input.placeholder = log ? `Message #${log.name}` : "";
  el.input.setAttribute("aria-label", log ? `Message #${log.name}` : "Message");
  el.emptyState.hidden = Boolean(log && log.entries().length > 0);
  el.emptyTitle.textContent = log ? `Welcome to #${log.name}` : "You are not in any room";
  el.emptyText.textContent = log
    ? "No messages yet. Say hello: everyone in this room sees it at once."
    : "Join a room, or create one by typing a new name under Rooms.";
}
