// What a person can do to a message (issue 13): react to anyone's, edit and delete their own.
// The controls live in the message's element and act on the entry it shows now (`el.entry`,
// set by the list on every render), so an edit starts from the text as last edited. Nothing
// changes on screen until the server sends the update back: every tab shows the same.
//
// Keyboard: the actions are buttons, shown while the message is hovered or holds the focus;
// the edit box saves with Enter and cancels with Escape; Delete asks first, in place.

import { REACTIONS } from "../contract.js";
import { h } from "../dom.js";
import { reactionTitle } from "../updates.js";

/** The controls of a message element; `handlers` are the list's onEdit, onDelete, onReact. */
export function actionParts(el, { onEdit, onDelete, onReact }) {
  const picker = h(
    "div",
    { class: "picker", role: "group", "aria-label": "Reactions", hidden: true },
    ...REACTIONS.map((emoji) =>
      h(
        "button",
        {
          type: "button",
          class: "picker-emoji",
          "aria-label": `React with ${emoji}`,
          on: {
            click: () => {
              togglePicker(el, false);
              onReact(el.entry, emoji, !mineOf(el.entry, emoji));
            },
          },
        },
        emoji,
      ),
    ),
  );
  const confirm = h(
    "div",
    { class: "confirm", role: "alertdialog", "aria-label": "Delete this message?", hidden: true },
    h("span", {}, "Delete this message?"),
    h(
      "button",
      {
        type: "button",
        class: "confirm-delete",
        on: {
          click: () => {
            askDelete(el, false);
            onDelete(el.entry);
          },
        },
      },
      "Delete",
    ),
    h("button", { type: "button", class: "confirm-cancel", on: { click: () => askDelete(el, false) } }, "Cancel"),
  );
  const actions = h(
    "div",
    { class: "actions", role: "toolbar", "aria-label": "Message actions" },
    h(
      "button",
      {
        type: "button",
        class: "action react-button",
        "aria-label": "Add reaction",
        "aria-expanded": "false",
        title: "Add reaction",
        on: { click: () => togglePicker(el, picker.hidden) },
      },
      "☺+",
    ),
    h("button", { type: "button", class: "action edit-button", on: { click: () => startEdit(el, onEdit) } }, "Edit"),
    h(
      "button",
      { type: "button", class: "action delete-button", on: { click: () => askDelete(el, true) } },
      "Delete",
    ),
    picker,
    confirm,
  );
  el.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !picker.hidden) {
      togglePicker(el, false);
      el.querySelector(".react-button").focus();
    }
  });
  const reactions = h("div", { class: "reactions", role: "group", "aria-label": "Reactions", hidden: true });
  reactions.addEventListener("click", (e) => {
    const chip = e.target.closest(".chip");
    if (chip) onReact(el.entry, chip.dataset.emoji, chip.getAttribute("aria-pressed") !== "true");
  });
  return { actions, reactions };
}

/** Bring the controls in line with `entry`: which actions it allows, its reaction chips. */
export function updateActions(el, entry) {
  const stored = entry.id !== null && !entry.deleted;
  const own = stored && entry.mine;
  el.querySelector(".actions").hidden = !stored;
  el.querySelector(".edit-button").hidden = !own;
  el.querySelector(".delete-button").hidden = !own;
  if (!own) {
    askDelete(el, false);
    if (el.classList.contains("editing")) stopEdit(el);
  }
  const box = el.querySelector(".reactions");
  const chips = entry.reactions ?? [];
  box.hidden = chips.length === 0;
  const signature = JSON.stringify(chips);
  if (box.dataset.signature === signature) return;
  box.dataset.signature = signature;
  box.replaceChildren(
    ...chips.map((r) =>
      h(
        "button",
        {
          type: "button",
          class: "chip" + (r.mine ? " mine" : ""),
          dataset: { emoji: r.emoji },
          "aria-pressed": r.mine ? "true" : "false",
          "aria-label": `${r.emoji} ${r.count}: ${reactionTitle(r)}`,
          title: reactionTitle(r),
        },
        h("span", { class: "chip-emoji" }, r.emoji),
        h("span", { class: "chip-count" }, String(r.count)),
      ),
    ),
  );
}

function mineOf(entry, emoji) {
  return (entry.reactions ?? []).some((r) => r.emoji === emoji && r.mine);
}

function togglePicker(el, open) {
  const picker = el.querySelector(".picker");
  picker.hidden = !open;
  el.querySelector(".react-button").setAttribute("aria-expanded", String(open));
  el.classList.toggle("acting", open);
  if (open) picker.querySelector("button").focus();
}

function askDelete(el, open) {
  const confirm = el.querySelector(".confirm");
  if (confirm.hidden === !open) return;
  confirm.hidden = !open;
  el.classList.toggle("acting", open);
  if (open) confirm.querySelector(".confirm-cancel").focus();
}

/** Edit in place: the text becomes a box holding it; Enter saves, Escape cancels. */
function startEdit(el, onEdit) {
  if (el.classList.contains("editing")) return;
  const original = el.entry.text;
  const input = h("textarea", {
    class: "edit-input",
    rows: "2",
    "aria-label": "Edit message",
  });
  input.value = original;
  const form = h(
    "div",
    { class: "edit-form" },
    input,
    h("p", { class: "edit-hint" }, "Enter to save · Escape to cancel"),
  );
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      stopEdit(el);
    } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      const text = input.value;
      stopEdit(el);
      if (text.trim() && text !== original) onEdit(el.entry, text);
    }
  });
  el.querySelector(".line").after(form);
  el.classList.add("editing");
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function stopEdit(el) {
  el.querySelector(".edit-form")?.remove();
  el.classList.remove("editing");
  el.querySelector(".edit-button")?.focus();
}
