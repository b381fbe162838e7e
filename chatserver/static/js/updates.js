// Edits, deletes and reactions of a room's messages (added to v1 by issue 13), folded from the
// `update` frames of the room's log. Pure state, no DOM.
//
// The server never folds: a window, a `since` replay and an `older` page bring update records
// as they are in the log, so an update may arrive before its message (a window holding the edit
// of a message before it, which `older` brings later) and after later updates of the same
// message (a page read back after the window). The fold is therefore by id, not by arrival: the
// edit with the newest id wins, a delete is final, a person's reaction is their newest `react`
// of it. Whatever the order the records come in, every page shows the same.

import { REACTION_NAMES_SHOWN, REACTIONS } from "./contract.js";
import { compareIds } from "./ids.js";

/** Messages whose updates a room keeps: as many as it shows, and a margin for updates of
 * messages not shown yet. */
const MAX_TARGETS = 4000;

export class Updates {
  constructor() {
    /** target id -> { edit, deleted, reactions: Map(emoji -> Map(owner -> react frame)) } */
    this._byTarget = new Map();
  }

  clear() {
    this._byTarget.clear();
  }

  /** Fold one `update` frame (any order, any number of times). */
  add(update) {
    let folded = this._byTarget.get(update.target);
    if (!folded) {
      folded = { edit: null, deleters: new Set(), reactions: new Map() };
      this._byTarget.set(update.target, folded);
      if (this._byTarget.size > MAX_TARGETS) {
        this._byTarget.delete(this._byTarget.keys().next().value);
      }
    }
    if (update.action === "edit") {
      if (!folded.edit || compareIds(update.id, folded.edit.id) > 0) folded.edit = update;
    } else if (update.action === "delete") {
      folded.deleters.add(update.owner);
    } else if (update.action === "react" && REACTIONS.includes(update.emoji)) {
      let people = folded.reactions.get(update.emoji);
      if (!people) folded.reactions.set(update.emoji, (people = new Map()));
      const last = people.get(update.owner);
      if (!last || compareIds(update.id, last.id) > 0) people.set(update.owner, update);
    }
  }

  /** `entry` (a message of the room) as its updates leave it: the same object when it has
   * none. Edits and deletes count only when made by the message's owner (the server refuses
   * the others; a page does not take a record's word for it). */
  apply(entry, myOwner) {
    const folded = entry.id ? this._byTarget.get(entry.id) : undefined;
    if (!folded) return entry;
    const byOwner = (owner) => owner !== undefined && owner === entry.owner;
    if (folded.deleters.has(entry.owner) && entry.owner !== undefined) {
      return { ...entry, text: "", deleted: true, edited: false, reactions: [] };
    }
    const edit = folded.edit && byOwner(folded.edit.owner) ? folded.edit : null;
    return {
      ...entry,
      text: edit ? edit.text : entry.text,
      edited: edit !== null,
      reactions: reactionsOf(folded.reactions, myOwner),
    };
  }
}

/** The reactions shown under a message, in the fixed order of the set: count, who (the first
 * REACTION_NAMES_SHOWN names), and whether the reader is among them. */
function reactionsOf(reactions, myOwner) {
  const shown = [];
  for (const emoji of REACTIONS) {
    const on = [...(reactions.get(emoji)?.values() ?? [])].filter((r) => r.on);
    if (on.length === 0) continue;
    shown.push({
      emoji,
      count: on.length,
      names: on.slice(0, REACTION_NAMES_SHOWN).map((r) => r.user),
      mine: on.some((r) => r.owner === myOwner),
    });
  }
  return shown;
}

/** The tooltip of a reaction chip: who reacted, the rest counted. */
export function reactionTitle({ emoji, count, names }) {
  const more = count - names.length;
  return `${emoji} ${names.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
}
