// What surrounds the active room's messages: its header (name, Leave; the member count is the
// members panel's toggle), the empty state and the composer's labels. Nothing here when no room
// is open, and a hint where to start.

/** `el` holds roomName, roomHash, leave, composer, input, emptyState, emptyTitle, emptyText. A
 * direct message (`log.dm`, issue 13) is titled with the other person's name. */
export function renderRoomChrome(el, log) {
  const title = log?.title ?? "";
  el.roomName.textContent = log ? (log.dm ? log.dm.name : log.name) : "no room";
  el.roomHash.hidden = Boolean(log?.dm);
  el.leave.hidden = !log;
  el.leave.setAttribute("aria-label", log ? `Leave ${title}` : "Leave");
  el.composer.hidden = !log;
  el.input.placeholder = log ? `Message ${title}` : "";
  el.input.setAttribute("aria-label", log ? `Message ${title}` : "Message");
  el.emptyState.hidden = Boolean(log && log.entries().length > 0);
  el.emptyTitle.textContent = !log
    ? "You are not in any room"
    : log.dm
      ? `Direct messages with ${log.dm.name}`
      : `Welcome to ${title}`;
  el.emptyText.textContent = !log
    ? "Join a room, or create one by typing a new name under Rooms."
    : log.dm
      ? `Only you and ${log.dm.name} can read what is written here.`
      : "No messages yet. Say hello: everyone in this room sees it at once.";
}
