// Markdown to safe DOM. Two independent layers keep model and user text from becoming markup:
// 1. marked renders any raw HTML in the text as escaped text (so `<img onerror=...>` reads as
//    itself), and images as plain links (no remote loads);
// 2. DOMPurify then allows only a small set of formatting tags and http(s)/mailto links.
// Its result is a Trusted Types value: the page's CSP refuses any other string as HTML.
// Code blocks are then highlighted by highlight.js, whose output (the code's text, escaped, in
// spans) goes through DOMPurify too, allowing only spans and their classes.

import hljs from "./vendor/highlight.esm.min.js";
import { Marked } from "./vendor/marked.esm.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html(token) {
      const text = escapeHtml(token.text);
      return token.block ? `<p class="raw">${text}</p>` : text;
    },
    image(token) {
      const label = escapeHtml(token.text || token.href);
      return `<a href="${escapeHtml(token.href)}">${label}</a>`;
    },
  },
});

const PURIFY_CONFIG = {
  ALLOWED_TAGS: [
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
  ],
  ALLOWED_ATTR: ["href", "title", "start", "align", "class"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  ALLOW_DATA_ATTR: false,
  RETURN_TRUSTED_TYPE: true,
};

const purify = globalThis.DOMPurify;
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const CODE_CONFIG = { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"], RETURN_TRUSTED_TYPE: true };
/** Longer code is left plain: guessing its language would cost too much at each streamed render. */
const AUTO_DETECT_CHARS = 4000;

function highlight(code) {
  const named = /(?:^|\s)language-([\w+#-]+)/.exec(code.className)?.[1];
  const text = code.textContent ?? "";
  let result = null;
  if (named && hljs.getLanguage(named)) result = hljs.highlight(text, { language: named, ignoreIllegals: true });
  else if (!named && text.length <= AUTO_DETECT_CHARS) result = hljs.highlightAuto(text);
  if (!result || (result.relevance ?? 1) === 0) return;
  code.innerHTML = purify.sanitize(result.value, CODE_CONFIG);
  code.parentElement?.classList.add("hljs");
}

/** Replace the children of `element` with `text` rendered as sanitized Markdown. */
export function renderMarkdown(element, text) {
  element.innerHTML = purify.sanitize(marked.parse(text), PURIFY_CONFIG);
  for (const code of element.querySelectorAll("pre > code")) highlight(code);
}
