// Text and data that come from JSON must never become markup or end a <script> early: every
// string a report renders goes through escapeHtml, every inlined value through inlineJson or
// inlineJs.

export function escapeHtml(s: unknown): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that cannot end its <script> tag early: no raw '<' (so no '</script>' and no '<!--'). */
export function inlineJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** JS source for an inline <script>: '</script' becomes '<\/script', the same text to the JS parser. */
export function inlineJs(src: string): string {
  return src.replace(/<\/(script)/gi, '<\\/$1');
}
