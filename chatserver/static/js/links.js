// Web addresses in message text, found so the view can make them links; the rest stays text.
// Only http and https are found: nothing a message says can become a javascript: or data: link.

const ADDRESS = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'")\]}]$/;

/** An address found in prose ends before the punctuation around it, except a closing bracket
 * that closes one opened inside it (https://en.wikipedia.org/wiki/Mercury_(planet)). */
function trim(address) {
  let url = address;
  while (TRAILING.test(url)) {
    const last = url[url.length - 1];
    const opener = { ")": "(", "]": "[", "}": "{" }[last];
    if (opener && count(url, opener) >= count(url, last)) break;
    url = url.slice(0, -1);
  }
  return url;
}

function count(text, char) {
  return text.split(char).length - 1;
}

/** The text cut into strings and `{url}` parts, in order; joined back, they are the text. */
export function linkParts(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(ADDRESS)) {
    const url = trim(match[0]);
    if (!/^https?:\/\/[^/?#]/i.test(url)) continue; // a scheme with no host is no address
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push({ url });
    last = match.index + url.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}
