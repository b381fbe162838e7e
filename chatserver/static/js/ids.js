// Random identifiers. crypto.randomUUID() exists only in secure contexts, and a chat reached
// over plain http on a node port is not one; getRandomValues() works everywhere.

export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
